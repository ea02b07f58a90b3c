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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """`icarus_share(*cases)`: of a test parametrized by `case` (or `name`), only these cases run
    under Icarus in the default suite; the others run under Icarus in `make sweep` (marked slow).
    Verilator runs every case by default, its build being paid once: Icarus is the slower one."""
    for item in items:
        share = item.get_closest_marker("icarus_share")
        spec = getattr(item, "callspec", None)
        if share is None or spec is None or spec.params.get("sim") != "icarus":
            continue
        case = spec.params.get("case", spec.params.get("name"))
        if case not in share.args:
            item.add_marker(pytest.mark.slow)
