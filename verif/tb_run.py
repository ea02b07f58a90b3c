"""cocotb side of `python -m verif.run`: run one program image through the real host port.

Environment: RUN_PROGRAM (image path), RUN_DUMPS (JSON list of [position, addr, count]),
RUN_OUT (path of the .npz to write: status fields and the dumped words).
"""
import json
import os

import cocotb
import numpy as np

from isa.image import load

from .chip_tb import ChipTB


async def run_from_env(driver, config) -> None:
    """RUN_PROGRAM through `driver` (ChipDriver.run), its status and RUN_DUMPS' words to RUN_OUT;
    shared with the board's bench (verif/tb_board.py), which runs it over the UART bridge."""
    program = load(os.environ["RUN_PROGRAM"], config)
    dumps = [tuple(d) for d in json.loads(os.environ.get("RUN_DUMPS", "[]"))]
    status, words = await driver.run(program, dumps)
    np.savez(os.environ["RUN_OUT"], status=json.dumps(status),
             **{f"{pos}:{addr}:{n}": w for (pos, addr, n), w in words.items()})


@cocotb.test()
async def run_program(dut):
    tb = ChipTB(dut, backdoor=False)
    await tb.reset()
    await run_from_env(tb.driver, tb.config)
