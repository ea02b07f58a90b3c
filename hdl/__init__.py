"""Amaranth RTL generator for the streaming chip. Imports isa/, never sim/ or compiler/."""
