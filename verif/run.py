"""Run a program image on the golden model or on the RTL, with one interface.

    python -m verif.run PROGRAM.bin --target {golden,icarus,verilator} [--config NAME]
                        [--dump SLICE:ADDR:COUNT ...] [--outputs OUT.npz] [--report REPORT.json]
                        [--max-cycles N] [--waves WAVES.fst]
    python -m verif.run CHIP0.bin CHIP1.bin ... --system {pair,ring4,FILE.json} --target ...
                        [--dump CHIP:SLICE:ADDR:COUNT ...] [--outputs OUT.npz] [--report REPORT.json]

With --system, one image per chip of the system (isa/system.py), in chip order: the golden target
runs sim/system.py, the RTL targets the emitted system (hdl/system.py) under cocotb (verif/tb_system.py
`run_images`; Verilator too, through cocotb: the native harness is for one chip). All chips start
together; the report has `cycles` (the last chip's), the first error among the chips, and
`chips`: per chip its cycles, error, ECC counters and per link its FEC counters (corrected,
uncorrectable). Dump keys are "chip<i>.SLICE@ADDR".

The RTL targets load the program and read results through the chip's host ports (AXI4-Lite
registers, AXI4-Stream bulk SRAM load and unload), as a board would. `verilator` runs a native
C++ harness (verif/native.py: no VPI, no cocotb; the run from START to DONE is a C++ loop, about
as fast as a bare Verilator loop); `icarus` runs the cocotb bench verif/tb_run.py.
`--dump` names SRAM ranges to read back after the run (slice name or position, address, word
count); they are written to OUT.npz as uint8 [count, lanes] arrays keyed "SLICE@ADDR". The
report holds cycles, target, config, error status and ECC counters. `--max-cycles` (verilator)
bounds the run from START (default 50 million cycles): a chip that has not finished by then is
an error. `--waves` (or WAVES=1 in the environment) records an FST: at the given path, or, with
WAVES=1 alone, build/<config>/native_verilator_waves/<program>.fst (verilator) and
build/<config>/sim_icarus_waves/chip.fst (icarus, copied to the path when one is given).
Bad arguments or images print one line and exit 1 (so does a run that times out); a program
that stops on an illegal instruction exits 3.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from isa import hostmap as hm
from isa import spec
from isa.config import DEFAULT, ConfigError, SliceKind, get_config
from isa.image import ImageError, ProgramError, load, resolve_slice

TARGETS = ("golden", "icarus", "verilator", "fpga")


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


def _error(error_info: int) -> dict:
    """The report's error fields from an ERROR_INFO value (isa/hostmap.py)."""
    f = hm.unpack("ERROR_INFO", error_info)
    return {"error": spec.ErrorCode(f["code"]).name, "error_position": f["position"], "error_pc": f["pc"]}


def run(program_path: Path, target: str, config_name: str, dumps: list[tuple[int, int, int]], *,
        max_cycles: int | None = None, waves: Path | None = None, port: str | None = None,
        baud: int | None = None) -> tuple[dict, dict]:
    """Returns (report, {key: words}); the same for every target, bit for bit and cycle for cycle.
    `waves`: write an FST of the RTL run there (WAVES=1 in the environment: a default path).
    `port`, `baud`: the fpga target's serial port (`sim:icarus` / `sim:verilator`: the board top in
    a simulator, through the same host code)."""
    from .rtl_build import BUILD, waves_requested
    config = get_config(config_name)
    if waves is None and target != "golden" and waves_requested():
        waves = BUILD / config_name / f"native_verilator_waves/{Path(program_path).stem}.fst" \
            if target == "verilator" else None
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
            words[(pos, addr, n)] = gold.read_words(pos, addr, n)
    elif target == "fpga":
        status, words = _run_board(program, program_path, config_name, dumps, port, baud)
    elif target == "verilator":
        from . import native
        if waves is not None:
            Path(waves).parent.mkdir(parents=True, exist_ok=True)
        try:
            res = native.run(program, dumps, waves=waves,
                             max_cycles=native.DEFAULT_MAX_CYCLES if max_cycles is None else max_cycles)
        except native.NativeError as e:
            raise RunError(str(e)) from None
        status, words = res.status, res.words
    else:
        saved = os.environ.get("WAVES")
        if waves is not None:
            os.environ["WAVES"] = "1"           # cocotb's runner and rtl_build read it from here
        try:
            status, words = _run_cocotb_image(target, "verif.tb_run", config_name, program_path, dumps)
        finally:
            if waves is not None:
                os.environ.pop("WAVES") if saved is None else os.environ.__setitem__("WAVES", saved)
        if waves is not None:
            Path(waves).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(BUILD / config_name / f"sim_{target}_waves" / "chip.fst", waves)
    wall = time.perf_counter() - t0
    report = {"target": target, "config": config_name, "cycles": status["cycles"], **_error(status["error_info"]),
              "ecc_corrected": status["ecc_corrected"], "ecc_uncorrectable": status["ecc_uncorrectable"],
              "wall_seconds": round(wall, 3)}
    return report, {f"{config.floorplan[p].name}@{a:#x}": w for (p, a, n), w in words.items()}


def _run_cocotb_image(sim: str, module: str, design: str, program_path: Path, dumps):
    """One program image through a cocotb module's `run_program` (verif/tb_run.py, verif/tb_board.py),
    which writes the status fields the report takes and the dumped words to RUN_OUT."""
    from .rtl_build import run_cocotb
    out = Path(tempfile.mkdtemp()) / "run.npz"
    run_cocotb(sim, module, testcase="run_program", config=design, private_dir=True,
               env={"RUN_PROGRAM": str(Path(program_path).resolve()), "RUN_OUT": str(out),
                    "RUN_DUMPS": json.dumps(dumps)})
    npz = np.load(out)
    return json.loads(str(npz["status"])), {(pos, addr, n): npz[f"{pos}:{addr}:{n}"] for pos, addr, n in dumps}


def _run_board(program, program_path: Path, config_name: str, dumps, port: str | None, baud: int | None):
    """A board through its UART host bridge (verif/bridge.py), or the board top simulated."""
    if not port:
        raise RunError("--target fpga needs --port: the board's serial port (e.g. /dev/ttyUSB0), or sim:icarus / "
                       "sim:verilator for the board top in a simulator")
    if port.startswith("sim:"):
        from .tools import SIMULATORS
        sim = port[len("sim:"):]
        if sim not in SIMULATORS:
            raise RunError(f"--port {port}: sim:{' or sim:'.join(SIMULATORS)}")
        return _run_cocotb_image(sim, "verif.tb_board", f"board-{config_name}", program_path, dumps)
    import asyncio

    from isa.bridge import DEFAULT_BAUD
    from .bridge import BridgeBus, BridgeClient, BridgeError, SerialPort
    from .driver import ChipDriver

    async def go():
        line = SerialPort(port, baud or DEFAULT_BAUD)
        try:
            bus = BridgeBus(BridgeClient(line, program.config))
            driver = ChipDriver(bus, program.config, stream=bus)
            await driver.check_identity()
            return await driver.run(program, dumps, poll=lambda: asyncio.sleep(0.001))
        finally:
            line.close()
    try:
        return asyncio.run(go())
    except BridgeError as e:
        raise RunError(str(e)) from None


def run_system(paths: list[Path], target: str, system_name: str, dumps: list[tuple[int, int, int, int]],
               workers: int | None = None, scheduler: str | None = None,
               start_offsets: list[int] | None = None) -> tuple[dict, dict]:
    """One image per chip of a system on a target; returns (report, {key: words}), equal on every target.
    `workers` / `scheduler`: the golden model with a Dask worker per chip (sim/scaleout.py), on a local
    cluster of that many processes (0: the same protocol in this process) or on a running cluster.
    `start_offsets` (RTL targets): the host starts chip i that many of its cycles after the first,
    as a host with one port per chip would; a program that starts with SYNC runs the same anyway."""
    from isa.system import SYSTEMS, SystemSpecError, get_system
    try:
        sysm = get_system(system_name)
    except SystemSpecError as e:
        raise RunError(str(e)) from None
    if len(paths) != len(sysm.chips):
        raise RunError(f"system {sysm.name!r} has {len(sysm.chips)} chips; got {len(paths)} images")
    programs = [load(p, sysm.config(i)) for i, p in enumerate(paths)]
    from sim.system import SystemGolden
    try:
        gold = SystemGolden(sysm, programs)     # every target refuses what the golden model refuses
    except SystemSpecError as e:
        raise RunError(str(e)) from None
    scaled = workers is not None or scheduler is not None
    if scaled and target != "golden":
        raise RunError(f"--workers / --scheduler scale out the golden model; {target} runs the whole system in one "
                       f"simulator process")
    if workers is not None and workers < 0:
        raise RunError(f"--workers {workers}: 1 or more Dask worker processes (0: the lockstep in this process)")
    stats = None
    t0 = time.perf_counter()
    if target == "golden":
        if scaled:
            from sim.scaleout import run_scaled
            try:
                res, words, stats = run_scaled(sysm, programs, dumps, workers=workers or 0, scheduler=scheduler)
            except SystemSpecError as e:
                raise RunError(str(e)) from None
        else:
            res = gold.run()
            words = {(c, pos, addr, n): gold.chips[c].read_words(pos, addr, n) for c, pos, addr, n in dumps}
        chips = [{"cycles": r.cycles, "error_info": r.error_info, "ecc_corrected": r.ecc_corrected,
                  "ecc_uncorrectable": r.ecc_uncorrectable, "links": {n: list(v) for n, v in r.links.items()}}
                 for r in res.chips]
    else:
        from .rtl_build import run_cocotb
        if system_name not in SYSTEMS:
            raise RunError(f"--system {system_name}: RTL targets run the named systems (the emitted tops)")
        out = Path(tempfile.mkdtemp()) / "run.npz"
        run_cocotb(target, "verif.tb_system", testcase="run_images", config=system_name, private_dir=True,
                   env={"SYS_IMAGES": json.dumps([str(Path(p).resolve()) for p in paths]), "SYS_OUT": str(out),
                        "SYS_DUMPS": json.dumps(dumps), "SYS_OFFSETS": json.dumps(start_offsets)})
        npz = np.load(out)
        chips = json.loads(str(npz["status"]))
        words = {(c, pos, addr, n): npz[f"{c}:{pos}:{addr}:{n}"] for c, pos, addr, n in dumps}
    wall = time.perf_counter() - t0
    per = []
    for ch in chips:
        per.append({"cycles": ch["cycles"], **_error(ch["error_info"]), "ecc_corrected": ch["ecc_corrected"],
                    "ecc_uncorrectable": ch["ecc_uncorrectable"], "links": ch["links"]})
    first = next((c for c in per if c["error"] != "NONE"), per[0])
    report = {"target": target, "system": sysm.name, "cycles": max(c["cycles"] for c in per),
              "error": first["error"], "chips": per, "wall_seconds": round(wall, 3)}
    if stats is not None:
        report["scale_out"] = stats.as_dict()
    return report, {f"chip{c}.{sysm.config(c).floorplan[p].name}@{a:#x}": w for (c, p, a, n), w in words.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verif.run", description="Run a program image on a target.")
    ap.add_argument("program", type=Path, nargs="+", help="the image (with --system: one per chip)")
    ap.add_argument("--system", help="run a system of chips (a preset name or a .json description)")
    ap.add_argument("--target", choices=TARGETS, default="golden")
    ap.add_argument("--config", default=DEFAULT)
    ap.add_argument("--dump", action="append", default=[], metavar="SLICE:ADDR:COUNT")
    ap.add_argument("--outputs", type=Path, help="write dumped SRAM ranges to this .npz")
    ap.add_argument("--report", type=Path, help="write the report as JSON")
    ap.add_argument("--max-cycles", type=int, help="verilator: cycles from START before the run is an error "
                                                   "(default 50 million)")
    ap.add_argument("--waves", type=Path, metavar="WAVES.fst", help="RTL targets: record an FST waveform here")
    ap.add_argument("--port", help="--target fpga: the board's serial port (sim:icarus / sim:verilator: the board "
                                   "top in a simulator)")
    ap.add_argument("--baud", type=int, help="--target fpga: the bridge's baud rate (default: isa/bridge.py DEFAULT_BAUD)")
    ap.add_argument("--workers", type=int, metavar="N", help="with --system on golden: a Dask worker process per "
                                                            "chip, N processes on this machine (sim/scaleout.py)")
    ap.add_argument("--scheduler", metavar="ADDRESS", help="with --system on golden: the chips' workers on the "
                                                           "running Dask cluster at ADDRESS (tcp://host:8786)")
    args = ap.parse_args(argv)
    try:
        if (args.workers is not None or args.scheduler) and not args.system:
            raise RunError("--workers / --scheduler run the chips of a system (--system) in Dask workers")
        for p in args.program:
            if not p.exists():
                raise RunError(f"{p}: no such file")
        if args.system and args.target == "fpga":
            raise RunError("--target fpga runs one chip on one board; systems run on golden, icarus and verilator")
        if args.system:
            from isa.system import SystemSpecError, get_system
            try:
                sysm = get_system(args.system)
            except SystemSpecError as e:
                raise RunError(str(e)) from None
            dumps = []
            for d in args.dump:
                chip, _, rest = d.partition(":")
                if not chip.isdigit() or not 0 <= int(chip) < len(sysm.chips):
                    raise RunError(f"--dump {d!r}: with --system, CHIP:SLICE:ADDR:COUNT (chips 0..{len(sysm.chips) - 1})")
                dumps.append((int(chip), *parse_dump(rest, sysm.config(int(chip)))))
            report, words = run_system(args.program, args.target, args.system, dumps, args.workers, args.scheduler)
            return _finish(args, report, words)
        if len(args.program) != 1:
            raise RunError(f"{len(args.program)} images given: several need --system")
        args.program = args.program[0]
        config = get_config(args.config)
        dumps = [parse_dump(d, config) for d in args.dump]
        if args.max_cycles is not None and args.max_cycles < 1:
            raise RunError(f"--max-cycles {args.max_cycles}: must be at least 1")
        report, words = run(args.program, args.target, args.config, dumps, max_cycles=args.max_cycles,
                            waves=args.waves, port=args.port, baud=args.baud)
    except (RunError, ConfigError, ImageError, ProgramError, AssertionError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    return _finish(args, report, words)


def _finish(args, report: dict, words: dict) -> int:
    if args.outputs:
        np.savez(args.outputs, **words)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(" ".join(f"{k}={v}" for k, v in report.items() if k != "chips"))
    for i, c in enumerate(report.get("chips", [])):
        print(f"  chip{i}: " + " ".join(f"{k}={v}" for k, v in c.items()))
    return 0 if report["error"] == "NONE" else 3


if __name__ == "__main__":
    sys.exit(main())
