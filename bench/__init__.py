"""Benchmarks (`make bench`): figures printed as `name: value`, never asserted in tests."""
