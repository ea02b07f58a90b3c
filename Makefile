# The two commands of the README's quick start are `make verilog` and `make test`.
CONFIG ?= tiny
PY := .venv/bin/python
JOBS ?= 2

.PHONY: verilog test sweep bench docs tsp lint-docs clean setup bitstream

setup:
	@scripts/setup.sh sim

verilog:
	@scripts/setup.sh emit
	$(PY) -m hdl.build --config $(CONFIG) --out build/$(CONFIG)

test: setup
	$(PY) -m pytest -n $(JOBS) --dist loadgroup tests

sweep: setup
	$(PY) -m pytest -n $(JOBS) -m slow tests

bench: setup
	$(PY) -m bench

docs:
	@scripts/setup.sh emit
	$(PY) -m isa.docs

tsp:
	@scripts/setup.sh sim
	$(PY) -m hdl.build --config tsp --out build/tsp
	$(PY) -m verif.rtl_build lint build/tsp

# A ULX3S-85F bitstream on the open ECP5 flow (docs/FPGA.md); BOARD / FPGA_CONFIG / FREQ override.
BOARD ?= ulx3s-85f
FPGA_CONFIG ?= fpga
FREQ ?= 50
bitstream: setup
	$(PY) -m hdl.fpga build --board $(BOARD) --config $(FPGA_CONFIG) --freq $(FREQ) --out build/bitstream-$(BOARD)

clean:
	rm -rf build
