"""Run a program image on the golden model or on the RTL, with one interface.

    python -m verif.run PROGRAM.bin --target {golden,icarus,verilator} [--config NAME]
                        [--dump SLICE:ADDR:COUNT ...] [--outputs OUT.npz] [--report REPORT.json]

The RTL targets load the program and read results through the chip's AXI4-Lite port (as a
board would), so large SRAM preloads are slow there (about 2k register writes per second).
`--dump` names SRAM ranges to read back after the run (slice name or position, address, word
count); they are written to OUT.npz as uint8 [count, lanes] arrays keyed "SLICE@ADDR". The
report holds cycles, target, config, error status and ECC counters. Bad arguments or images
print one line and exit 1; a program that stops on an illegal instruction exits 3.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from isa import spec
from isa.config import DEFAULT, ConfigError, SliceKind, get_config
from isa.image import ImageError, ProgramError, load, resolve_slice

TARGETS = ("golden", "icarus", "verilator")


class RunError(RuntimeError):
    pass


def parse_dump(text: str, config) -> tuple[int, int, int]:
    try:
        name, addr, count = text.split(":")
        sl = resolve_slice(config, int(name) if name.isdigit() else name)
        addr, count = int(addr, 0), int(count, 0)
    except (ValueError, ProgramError) as e:
        raise RunError(f"--dump {text!r}: expected SLICE:ADDR:COUNT with a MEM slice ({e})") from None
    if sl.kind != SliceKind.MEM:
        raise RunError(f"--dump {text!r}: {sl.name} is not a MEM slice")
    if not (0 <= addr < config.mem_words and 0 < count <= config.mem_words):
        raise RunError(f"--dump {text!r}: address/count outside 0..{config.mem_words - 1}")
    return sl.position, addr, count


def run(program_path: Path, target: str, config_name: str, dumps: list[tuple[int, int, int]]) -> tuple[dict, dict]:
    """Returns (report, {key: words}); the same for every target, bit for bit and cycle for cycle."""
    config = get_config(config_name)
    program = load(program_path, config)
    t0 = time.perf_counter()
    if target == "golden":
        from sim.golden import Golden
        gold = Golden(program)
        res = gold.run()
        status = {"cycles": res.cycles, "error_info": res.error_info, "error": int(res.error != spec.ErrorCode.NONE),
                  "ecc_corrected": res.ecc_corrected, "ecc_uncorrectable": res.ecc_uncorrectable}
        words = {}
        for pos, addr, n in dumps:
            rows = (addr + np.arange(n)) % config.mem_words
            data, _ = gold.code.decode_bytes(gold.mems[pos].data[rows], gold.mems[pos].ecc[rows])
            words[(pos, addr, n)] = data
    else:
        from .rtl_build import run_cocotb
        out = Path(tempfile.mkdtemp()) / "run.npz"
        run_cocotb(target, "verif.tb_run", config=config_name, private_dir=True,
                   env={"RUN_PROGRAM": str(Path(program_path).resolve()), "RUN_OUT": str(out),
                        "RUN_DUMPS": json.dumps(dumps)})
        npz = np.load(out)
        status = json.loads(str(npz["status"]))
        status.pop("wall_seconds", None)
        words = {(pos, addr, n): npz[f"{pos}:{addr}:{n}"] for pos, addr, n in dumps}
    wall = time.perf_counter() - t0
    code = spec.ErrorCode(status["error_info"] & 0xF)
    report = {"target": target, "config": config_name, "cycles": status["cycles"],
              "error": code.name, "error_position": status["error_info"] >> 8 & 0xFF,
              "error_pc": status["error_info"] >> 16, "ecc_corrected": status["ecc_corrected"],
              "ecc_uncorrectable": status["ecc_uncorrectable"], "wall_seconds": round(wall, 3)}
    return report, {f"{config.floorplan[p].name}@{a:#x}": w for (p, a, n), w in words.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.run", description="Run a program image on a target.")
    ap.add_argument("program", type=Path)
    ap.add_argument("--target", choices=TARGETS, default="golden")
    ap.add_argument("--config", default=DEFAULT)
    ap.add_argument("--dump", action="append", default=[], metavar="SLICE:ADDR:COUNT")
    ap.add_argument("--outputs", type=Path, help="write dumped SRAM ranges to this .npz")
    ap.add_argument("--report", type=Path, help="write the report as JSON")
    args = ap.parse_args(argv)
    try:
        config = get_config(args.config)
        if not args.program.exists():
            raise RunError(f"{args.program}: no such file")
        dumps = [parse_dump(d, config) for d in args.dump]
        report, words = run(args.program, args.target, args.config, dumps)
    except (RunError, ConfigError, ImageError, ProgramError, AssertionError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    if args.outputs:
        np.savez(args.outputs, **words)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(" ".join(f"{k}={v}" for k, v in report.items()))
    return 0 if report["error"] == "NONE" else 3


if __name__ == "__main__":
    sys.exit(main())
