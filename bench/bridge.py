"""UART host bridge rates (python -m bench.bridge), measured on the board top under Verilator
(verif/tb_board.py `throughput`) and stated at a board's baud rate:

* bridge_register_writes_per_s: one 32-bit register write per request (15 bytes out, 7 back)
* bridge_load_words_per_s:   SRAM words loaded through STREAM_IN frames of 64 words
* bridge_unload_words_per_s: SRAM words read back (M_CMD READ_STREAM, STREAM_OUT frames of 56)
* bridge_load_line_efficiency: SRAM payload bytes / bytes on the line, loading

Simulated time is counted in bit times of the line (the simulation runs the line at 4 clock
cycles a bit); at a board's rate B a bit lasts 1/B s. The bridge's own processing cycles are
counted as line time too, which overstates them on a board (50 clock cycles a bit at 50 MHz
and 1 Mbaud): the figures are lower bounds.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from isa.bridge import DEFAULT_BAUD
from isa.config import get_config


def figures(baud: int = DEFAULT_BAUD, sim: str = "verilator") -> dict:
    from verif.rtl_build import run_cocotb
    out = Path(tempfile.mkdtemp()) / "bridge.json"
    run_cocotb(sim, "verif.tb_board", testcase="throughput", config="board-fpga", private_dir=True,
               env={"BRIDGE_OUT": str(out)}, seed=1)
    m = json.loads(out.read_text())
    lanes = get_config("fpga").lanes
    return {"bridge_baud": baud,
            "bridge_register_writes_per_s": round(baud / m["register_write_bits"]),
            "bridge_load_words_per_s": round(baud / m["load_bits_per_word"]),
            "bridge_unload_words_per_s": round(baud / m["unload_bits_per_word"]),
            "bridge_load_line_efficiency": round(lanes / m["load_line_bytes_per_word"], 4)}


def main() -> int:
    for k, v in figures().items():
        print(f"{k}: {v}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
