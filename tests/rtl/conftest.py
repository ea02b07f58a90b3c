"""RTL tests: cocotb testbenches under each simulator, selected with --sim (default: both)."""
import pytest

from verif.tools import SIMULATORS


def pytest_addoption(parser):
    parser.addoption("--sim", action="append", choices=SIMULATORS,
                     help="simulator(s) to run RTL tests on (default: all)")


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        sims = metafunc.config.getoption("--sim") or list(SIMULATORS)
        metafunc.parametrize("sim", sims)
