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
    t0 = time.perf_counter()
    dumps = [tuple(d) for d in json.loads(os.environ.get("RUN_DUMPS", "[]"))]
    out, words = await tb.driver.run(program, dumps)
    out["wall_seconds"] = time.perf_counter() - t0
    arrays = {f"{pos}:{addr}:{n}": w for (pos, addr, n), w in words.items()}
    np.savez(os.environ["RUN_OUT"], status=json.dumps(out), **arrays)
