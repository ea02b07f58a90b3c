"""Verification: simulator plumbing, runners, cocotb testbenches. Imports hdl/ outputs and sim/."""
