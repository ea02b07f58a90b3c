"""Chip regression: each cocotb test of verif/tb_chip.py under each simulator."""
import pytest

from verif.rtl_build import run_cocotb

CASES = ["fabric_timing", "mem_transfer_iterate", "read_write_same_cycle", "nop_timing",
         "illegal_instructions", "ecc_single_bit_corrected", "ecc_double_bit_flagged",
         "random_transfers", "random_instruction_words", "fetch_refills"]


@pytest.mark.rtl
@pytest.mark.parametrize("case", CASES)
@pytest.mark.icarus_share(*[c for c in CASES if c != "random_instruction_words"])   # 34 s under Icarus
def test_chip(sim, case):
    run_cocotb(sim, "verif.tb_chip", testcase=case)


def test_every_cocotb_test_is_listed():
    """A cocotb test added to verif/tb_chip.py but not here would silently never run."""
    import ast
    from pathlib import Path
    tree = ast.parse((Path(__file__).parents[2] / "verif" / "tb_chip.py").read_text())
    defined = [f.name for f in tree.body if isinstance(f, ast.AsyncFunctionDef)
               and any("cocotb.test" in ast.unparse(d) for d in f.decorator_list)]
    assert sorted(defined) == sorted(CASES)


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_long_random_transfers(sim, seed):
    """`make sweep`: 20,000-cycle random transfer programs, each run twice, on fixed seeds."""
    run_cocotb(sim, "verif.tb_chip", testcase="random_transfers", seed=seed,
               env={"RANDOM_MIN_CYCLES": "20000"})


@pytest.mark.rtl
@pytest.mark.parametrize("case", ["fabric_timing", "random_transfers", "random_instruction_words", "nop_timing",
                                  "fetch_refills", "illegal_instructions", "ecc_single_bit_corrected",
                                  "ecc_double_bit_flagged"])
@pytest.mark.default_sims("icarus")
@pytest.mark.icarus_share("random_transfers", "fetch_refills", "illegal_instructions",
                          "ecc_double_bit_flagged")   # the others: make sweep
def test_chip_fpga_preset(sim, case):
    """The configuration-generic chip tests on the `fpga` preset (8 lanes, 4 streams, longer
    latencies, no SXM): nothing in the RTL, model or testbench is tied to `tiny`."""
    run_cocotb(sim, "verif.tb_chip", testcase=case, config="fpga")
