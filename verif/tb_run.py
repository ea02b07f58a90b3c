"""cocotb side of `python -m verif.run`: run one program image through the real host port.

Environment: RUN_PROGRAM (image path), RUN_DUMPS (JSON list of [position, addr, count]),
RUN_OUT (path of the .npz to write: status fields and the dumped words).
"""
import json
import os
import time

import cocotb
import numpy as np

from isa.image import load

from .chip_tb import ChipTB


@cocotb.test()
async def run_program(dut):
    tb = ChipTB(dut, backdoor=False)
    await tb.reset()
    program = load(os.environ["RUN_PROGRAM"], tb.config)
    await tb.driver.load(program)
    t0 = time.perf_counter()
    await tb.driver.start()
    while not (st := await tb.driver.status()).done:
        pass
    wall = time.perf_counter() - t0
    out = {"cycles": st.cycles, "error_info": st.error_info, "error": int(st.error),
           "ecc_corrected": st.ecc_corrected, "ecc_uncorrectable": st.ecc_uncorrectable, "wall_seconds": wall}
    arrays = {}
    for pos, addr, n in json.loads(os.environ.get("RUN_DUMPS", "[]")):
        arrays[f"{pos}:{addr}:{n}"] = await tb.driver.read_words(pos, addr, n)
    np.savez(os.environ["RUN_OUT"], status=json.dumps(out), **arrays)
