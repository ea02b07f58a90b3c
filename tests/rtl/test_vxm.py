"""VXM / SXM regression: each cocotb test of verif/tb_vxm.py under each simulator."""
import ast
from pathlib import Path

import pytest

from verif.rtl_build import run_cocotb

CASES = ["vxm_alu_ops", "vxm_requantize_cases", "sxm_ops", "chain_mem_vxm_sxm_mem", "vxm_sxm_illegal_words"]


@pytest.mark.rtl
@pytest.mark.parametrize("case", [c for c in CASES if c != "vxm_requantize_cases"])
@pytest.mark.icarus_share("sxm_ops", "chain_mem_vxm_sxm_mem", "vxm_sxm_illegal_words")  # vxm_alu_ops: 57 s
def test_vxm_sxm(sim, case):
    run_cocotb(sim, "verif.tb_vxm", testcase=case)


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")          # 100 s under Icarus (measured): make sweep
def test_vxm_requantize(sim):
    run_cocotb(sim, "verif.tb_vxm", testcase="vxm_requantize_cases")


@pytest.mark.rtl
@pytest.mark.default_sims("icarus")             # 50 s under Icarus
def test_vxm_fpga_preset(sim):
    """On `fpga` an int32 group is every stream of a direction; one ALU with the longer
    `vxm_drive`, and the ops the preset leaves out stop the chip with ILLEGAL_OPCODE. (The preset
    has no SXM; `sxm_ops` runs on `tiny`.)"""
    run_cocotb(sim, "verif.tb_vxm", testcase="vxm_alu_ops", config="fpga")


def test_every_cocotb_test_is_listed():
    tree = ast.parse((Path(__file__).parents[2] / "verif" / "tb_vxm.py").read_text())
    defined = [f.name for f in tree.body if isinstance(f, ast.AsyncFunctionDef)
               and any("cocotb.test" in ast.unparse(d) for d in f.decorator_list)]
    assert sorted(defined) == sorted(CASES)
