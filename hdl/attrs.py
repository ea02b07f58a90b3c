"""Attributes the RTL puts on signals for the FPGA flow (hdl/fpga.py acts on them before synthesis)."""

# A register each instance of a unit has with the same input (a control order every lane takes):
# kept one per instance. Synthesis merges registers with one input into one (even with `keep` on
# the register's wire), which would leave a single register driving every instance across the
# device; hdl/fpga.py puts `keep` on these registers' cells instead.
PER_INSTANCE = {"nomerge": 1}
