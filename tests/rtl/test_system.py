"""Systems of chips (hdl/system.py) under each simulator: each cocotb test of verif/tb_system.py,
the RTL held to sim/system.py on every SRAM word, per-chip cycle count, error status and FEC
counter. The default suite runs a representative share; `make sweep` the full campaigns."""
import pytest

from isa.config import get_config
from isa.link import min_latency
from verif.rtl_build import run_cocotb

MIN_LAT = str(min_latency(get_config("tiny")))

# name: (system, cocotb test, environment on Verilator, environment on Icarus). Icarus runs the
# same scenarios shorter (it simulates a pair at about 280 cycles/s, Verilator about 6,000);
# `make sweep` runs the long versions on both.
CASES = {
    "pair-transfers-twice": ("pair", "transfers", {"SYS_TWICE": "1"}, {"SYS_CYCLES": "1000"}),
    "pair-transfers-min-latency": ("pair", "transfers", {"SYS_LAT": MIN_LAT, "SYS_CYCLES": "1000"},
                                   {"SYS_LAT": MIN_LAT, "SYS_CYCLES": "300"}),
    "pair-transfers-latency-200": ("pair", "transfers", {"SYS_LAT": "200", "SYS_CYCLES": "1000"},
                                   {"SYS_LAT": "200", "SYS_CYCLES": "400"}),
    "pair-deskew": ("pair", "deskew", {}, {"SYS_PATTERNS": "3", "SYS_CYCLES": "100"}),
    "pair-no-signal": ("pair", "no_signal", {}, {}),
    "pair-faults": ("pair", "faults", {"SYS_SINGLE": "100", "SYS_DOUBLE": "20", "SYS_CYCLES": "1000"},
                    {"SYS_SINGLE": "20", "SYS_DOUBLE": "4", "SYS_CYCLES": "300"}),
    "ring4-transfers-twice": ("ring4", "transfers", {"SYS_TWICE": "1"}, {"SYS_CYCLES": "300", "SYS_SEED_WORDS": "32"}),
    "ring4-stream": ("ring4", "stream", {"SYS_VECTORS": "256"}, {"SYS_VECTORS": "48"}),
}

SWEEP = {
    "ring4-faults": ("ring4", "faults", {"SYS_SINGLE": "1000", "SYS_DOUBLE": "200"}),
    "ring4-deskew": ("ring4", "deskew", {}),
    "ring4-transfers-long": ("ring4", "transfers", {"SYS_TWICE": "1", "SYS_CYCLES": "10000"}),
    "pair-transfers-twice": ("pair", "transfers", {"SYS_TWICE": "1"}),
    "pair-faults": ("pair", "faults", {"SYS_SINGLE": "1000", "SYS_DOUBLE": "200"}),
}
ICARUS_TOO_SLOW = {"ring4-faults", "ring4-transfers-long"}


@pytest.mark.rtl
@pytest.mark.parametrize("case", CASES)
def test_system(sim, case):
    system, test, env_verilator, env_icarus = CASES[case]
    run_cocotb(sim, "verif.tb_system", testcase=test, config=system,
               env=env_icarus if sim == "icarus" else env_verilator, seed=1)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("case", SWEEP)
def test_system_sweep(sim, case):
    if sim == "icarus" and case in ICARUS_TOO_SLOW:
        pytest.skip(f"{case}: hours under Icarus (about 140 ring4 cycles/s); its Icarus share is in the default suite")
    system, test, env = SWEEP[case]
    run_cocotb(sim, "verif.tb_system", testcase=test, config=system, env=env, seed=2)


def test_every_cocotb_test_is_used():
    """A cocotb test added to verif/tb_system.py but run by no case here would never run
    (`run_images` is python -m verif.run --system's, tested in tests/rtl/test_run.py)."""
    import ast
    from pathlib import Path
    tree = ast.parse((Path(__file__).parents[2] / "verif" / "tb_system.py").read_text())
    defined = {f.name for f in tree.body if isinstance(f, ast.AsyncFunctionDef)
               and any("cocotb.test" in ast.unparse(d) for d in f.decorator_list)}
    assert defined == {c[1] for c in CASES.values()} | {"run_images"}
