"""MXM regression: each cocotb test of verif/tb_mxm.py under each simulator."""
import ast
from pathlib import Path

import pytest

from verif.rtl_build import run_cocotb

CASES = ["mxm_gemm_signedness", "mxm_long_accumulation", "mxm_install_timing", "mxm_bench_schedules",
         "mxm_illegal_words"]


@pytest.mark.rtl
@pytest.mark.parametrize("case", CASES)
@pytest.mark.icarus_share(*[c for c in CASES if c != "mxm_bench_schedules"])   # 30 s under Icarus
def test_mxm(sim, case):
    run_cocotb(sim, "verif.tb_mxm", testcase=case)


@pytest.mark.rtl
@pytest.mark.default_sims("icarus")
def test_mxm_fpga_preset(sim):
    """The same GEMM checks on `fpga` (2 MEM slices per hemisphere, 8 lanes, 256 accumulator rows)."""
    run_cocotb(sim, "verif.tb_mxm", testcase="mxm_gemm_signedness", config="fpga")


def test_every_cocotb_test_is_listed():
    tree = ast.parse((Path(__file__).parents[2] / "verif" / "tb_mxm.py").read_text())
    defined = [f.name for f in tree.body if isinstance(f, ast.AsyncFunctionDef)
               and any("cocotb.test" in ast.unparse(d) for d in f.decorator_list)]
    assert sorted(defined) == sorted(CASES)
