"""Golden model: numpy, cycle-accurate at stream level. Imports isa/, never hdl/."""
