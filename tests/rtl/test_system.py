"""Systems of chips (hdl/system.py) under each simulator: each cocotb test of verif/tb_system.py,
the RTL held to sim/system.py on every SRAM word, per-chip cycle count, error status and FEC
counter. The default suite runs a representative share; `make sweep` the full campaigns."""
import pytest

from isa.config import get_config
from isa.link import min_latency
from verif.rtl_build import run_cocotb

MIN_LAT = str(min_latency(get_config("tiny")))

# name: (system, cocotb test, {simulator: environment}). The default suite runs every scenario:
# under Verilator at full size where it runs in seconds (the campaigns, lockstep, drift: the
# system's build shows cocotb only the top's ports, verif/rtl_build.py, so Verilator optimizes the
# chips), and a short share of the basic ones under Icarus. `make sweep` runs everything long,
# on both simulators where Icarus takes less than hours.
CASES = {
    "pair-transfers": ("pair", "transfers", {"icarus": {"SYS_CYCLES": "1000"},
                                             "verilator": {"SYS_CYCLES": "2000", "SYS_TWICE": "1"}}),
    "pair-transfers-min-latency": ("pair", "transfers", {"verilator": {"SYS_LAT": MIN_LAT, "SYS_CYCLES": "2000"}}),
    "pair-transfers-latency-200": ("pair", "transfers", {"verilator": {"SYS_LAT": "200", "SYS_CYCLES": "2000"}}),
    "pair-deskew": ("pair", "deskew", {"icarus": {"SYS_PATTERNS": "1", "SYS_CYCLES": "80"}, "verilator": {}}),
    "pair-no-signal": ("pair", "no_signal", {"icarus": {}}),
    "pair-faults": ("pair", "faults", {"verilator": {"SYS_SINGLE": "1000", "SYS_DOUBLE": "200"}}),
    "ring4-transfers": ("ring4", "transfers", {"icarus": {"SYS_CYCLES": "300", "SYS_SEED_WORDS": "32"},
                                               "verilator": {"SYS_CYCLES": "2000", "SYS_TWICE": "1"}}),
    "ring4-stream": ("ring4", "stream", {"icarus": {"SYS_VECTORS": "48"}}),
    "pair-lockstep": ("pair", "lockstep", {"verilator": {"SYS_PHASES": "3", "SYS_CYCLES": "1000", "SYS_OFFSET": "2000",
                                                        "SYS_RUNS": "3"}}),
    "pair-drift": ("pair", "drift", {"verilator": {"SYS_PHASES": "3", "SYS_CYCLES": "3000"}}),
    "pair-sync-timeout": ("pair", "sync_timeout", {"icarus": {}}),
}

SWEEP = {
    "pair-transfers-twice": ("pair", "transfers", {"SYS_TWICE": "1"}),
    "ring4-transfers-twice": ("ring4", "transfers", {"SYS_TWICE": "1"}),
    "ring4-stream": ("ring4", "stream", {"SYS_VECTORS": "1024"}),
    "pair-transfers-min-latency": ("pair", "transfers", {"SYS_LAT": MIN_LAT}),
    "pair-transfers-latency-200": ("pair", "transfers", {"SYS_LAT": "200"}),
    "pair-deskew": ("pair", "deskew", {}),
    "pair-no-signal": ("pair", "no_signal", {}),
    "pair-faults": ("pair", "faults", {"SYS_SINGLE": "1000", "SYS_DOUBLE": "200"}),
    "ring4-faults": ("ring4", "faults", {"SYS_SINGLE": "1000", "SYS_DOUBLE": "200"}),
    "ring4-deskew": ("ring4", "deskew", {}),
    "ring4-transfers-long": ("ring4", "transfers", {"SYS_TWICE": "1", "SYS_CYCLES": "10000"}),
    "pair-lockstep": ("pair", "lockstep", {"SYS_PHASES": "3", "SYS_CYCLES": "1000", "SYS_OFFSET": "2000", "SYS_RUNS": "3"}),
    "ring4-lockstep": ("ring4", "lockstep", {"SYS_PHASES": "3", "SYS_CYCLES": "1000", "SYS_OFFSET": "2000", "SYS_RUNS": "3"}),
    # 4 phases of 3,000: at 4,000 cycles the random phases outgrow a C2C queue (1,024 words)
    "pair-drift": ("pair", "drift", {"SYS_PHASES": "4", "SYS_CYCLES": "3000"}),
    "ring4-drift": ("ring4", "drift", {"SYS_PHASES": "4", "SYS_CYCLES": "3000"}),
    "pair-sync-timeout": ("pair", "sync_timeout", {}),
}
# (the default suite's shares are shorter)
ICARUS_TOO_SLOW = {"ring4-faults", "ring4-transfers-long", "ring4-deskew", "pair-faults", "ring4-transfers-twice",
                   "ring4-stream", "ring4-lockstep", "ring4-drift", "pair-drift"}
# what Icarus runs of those in `make sweep` instead of hours
ICARUS_SHORT = {
    "pair-faults": {"SYS_SINGLE": "20", "SYS_DOUBLE": "20", "SYS_CYCLES": "300", "SYS_SEND_FRAMES": "32"},
    "pair-drift": {"SYS_PHASES": "2", "SYS_CYCLES": "1500", "SYS_RUNS": "1"},
}


@pytest.mark.rtl
@pytest.mark.parametrize("case,simulator", [(c, s) for c, (_, _, envs) in CASES.items() for s in envs])
def test_system(case, simulator, request):
    sims = request.config.getoption("--sim")
    if sims and simulator not in sims:
        pytest.skip(f"--sim {' '.join(sims)}")
    system, test, envs = CASES[case]
    run_cocotb(simulator, "verif.tb_system", testcase=test, config=system, env=envs[simulator], seed=1)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("case", SWEEP)
def test_system_sweep(sim, case):
    system, test, env = SWEEP[case]
    if sim == "icarus" and case in ICARUS_SHORT:
        env = ICARUS_SHORT[case]
    elif sim == "icarus" and case in ICARUS_TOO_SLOW:
        pytest.skip(f"{case}: hours under Icarus; its Icarus share is in the default suite")
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
