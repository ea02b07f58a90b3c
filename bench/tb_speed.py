"""cocotb test that measures simulator speed: load a long program, start, wait on DONE without
touching the design from Python per cycle, report cycles per wall-clock second."""
import os
import time

import cocotb
from cocotb.triggers import RisingEdge

from isa.image import Program, load
from verif.chip_tb import ChipTB


@cocotb.test()
async def speed(dut):
    tb = ChipTB(dut)
    await tb.reset()
    program = load(os.environ["BENCH_PROGRAM"], tb.config)
    t_load = time.perf_counter()                     # SRAM segments over AXI4-Stream
    for seg in program.memory:
        await tb.driver.write_words(seg.position, seg.addr, seg.data)
    t_load = time.perf_counter() - t_load
    words = sum(len(seg.data) for seg in program.memory)
    await tb.driver.load(Program(program.config, program.queues, []))   # queues over AXI4-Lite
    t0 = time.perf_counter()
    await tb.driver.start()
    await RisingEdge(dut.done)
    dt = time.perf_counter() - t0
    st = await tb.driver.status()
    assert st.done and not st.error
    t_unload = time.perf_counter()                   # the same segments back over AXI4-Stream
    for seg in program.memory:
        await tb.driver.read_words(seg.position, seg.addr, len(seg.data))
    t_unload = time.perf_counter() - t_unload
    with open(os.environ["BENCH_OUT"], "w") as fh:
        fh.write(f"{st.cycles} {dt} {words} {t_load} {t_unload}\n")
