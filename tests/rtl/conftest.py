"""RTL tests: cocotb testbenches under each simulator, selected with --sim (default: both)."""
import pytest

from verif.tools import SIMULATORS


def pytest_addoption(parser):
    parser.addoption("--sim", action="append", choices=SIMULATORS,
                     help="simulator(s) to run RTL tests on (default: all)")


def pytest_generate_tests(metafunc):
    """`sim` runs every selected simulator; a test marked `default_sims(...)` runs the others only
    under `make sweep` (marked slow), to keep the default suite's time in budget."""
    if "sim" in metafunc.fixturenames:
        sims = metafunc.config.getoption("--sim") or list(SIMULATORS)
        only = metafunc.definition.get_closest_marker("default_sims")
        metafunc.parametrize("sim", [s if only is None or s in only.args else pytest.param(s, marks=pytest.mark.slow)
                                     for s in sims])
