"""cocotb test that measures simulator speed: load a long program, start, wait on DONE without
touching the design from Python per cycle, report cycles per wall-clock second."""
import os
import time

import cocotb
from cocotb.triggers import RisingEdge

from isa.image import load
from verif.chip_tb import ChipTB


@cocotb.test()
async def speed(dut):
    tb = ChipTB(dut)
    await tb.reset()
    program = load(os.environ["BENCH_PROGRAM"], tb.config)
    await tb.driver.load(program)
    t0 = time.perf_counter()
    await tb.driver.start()
    await RisingEdge(dut.done)
    dt = time.perf_counter() - t0
    st = await tb.driver.status()
    assert st.done and not st.error
    with open(os.environ["BENCH_OUT"], "w") as fh:
        fh.write(f"{st.cycles} {dt}\n")
