# The two commands of the README's quick start are `make verilog` and `make test`.
CONFIG ?= tiny
PY := .venv/bin/python
JOBS ?= 2

.PHONY: verilog test sweep bench docs tsp lint-docs clean setup

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

clean:
	rm -rf build
