"""Figures of models compiled over systems of chips (compiler/system.py), one `name: value` per line.

    python -m bench.multichip

Each model is compiled for a system, run on the golden system model (outputs checked against the
graph's integer reference, every chip's cycles against the prediction) and reported:

* gemm_<M>x<K>x<N>_<system>_*: an int8 GEMM (with a requantize) whose weights do not fit one
  `tiny` chip: cycles (from the common start to the last chip's done), MAC utilization of the
  system (MACs / (cycles x every MXM's MACs per cycle)) and of each chip, and the busiest link
  end's utilization (SEND engine cycles / cycles)
* mlp_<dims>_<system>_pipeline_cycles vs mlp_<dims>_one_chip_cycles: a batch-1 MLP with a stage
  per chip, against the best single-chip schedule (compile_graph on `tiny`)
* mlp_512_1024_512_ring4_*: the 512-1024-512 MLP of issue 14 at batch 1 (two chips per layer)
* mlp_128x128x3_b128_*: a batch of 128 rows through a 3-stage pipeline on ring4, whole and in
  micro-batches (compiler/microbatch.py; `_micro_batches` is the count chosen), and on one chip
* *_compile_s: compile time, wall clock
* scaleout_<workload>_*: the golden system model with a Dask worker per chip (sim/scaleout.py):
  `single_process_s` is SystemGolden in this process; `workers<N>_s` the lockstep's wall time on a
  local cluster of N worker processes (cluster start and actor creation not included; they are
  `workers<N>_start_s`), with its `rounds` and `exchange_ms_per_round` (wall time beyond the
  busiest worker's steps, per round). Results are checked equal to the single-process run.
  Workloads: the GEMM above on ring4 (every chip computes at once), the 512-1024-512 MLP at batch
  4 (a pipeline: the chips take turns), and random transfers over every ring4 link (many rounds)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from compiler.compile import compile_graph
from compiler.graph import Graph
from compiler.runtime import host_before, run, run_on_system, system_programs
from compiler.system import compile_system
from isa.config import get_config
from isa.system import get_system
from sim.scaleout import run_scaled
from sim.system import SystemGolden
from verif.c2c_stimulus import random_transfers


def mlp(rng, m: int, dims: list[int]) -> Graph:
    g = Graph()
    g.input("x", np.int8, (m, dims[0]))
    y = "x"
    for i, (k, n) in enumerate(zip(dims, dims[1:])):
        g.constant(f"w{i}", rng.integers(-128, 128, (k, n)).astype(np.int8))
        g.constant(f"b{i}", rng.integers(-3000, 3000, n).astype(np.int32))
        y = g.requantize(g.relu(g.add(g.matmul(y, f"w{i}", 0, 0), f"b{i}")), 1 / 2048, 0, np.int8)
    g.outputs.append(y)
    return g


def _run(name: str, g: Graph, system: str, mode: str, micro_batches: int | None = None):
    """Compile, run on golden, check, print the figures; returns (compiled, feeds, report), or None
    when the run differs from the reference or the prediction."""
    rng = np.random.default_rng(0)
    feeds = {"x": rng.integers(-128, 128, g.types["x"].shape).astype(np.int8)}
    t0 = time.perf_counter()
    sc = compile_system(g, get_system(system), mode, micro_batches)
    print(f"{name}_compile_s: {time.perf_counter() - t0:.1f}")
    out, rep = run_on_system(sc, feeds, "golden")
    want = g.evaluate(feeds)
    if not all(np.array_equal(out[k], want[k]) for k in g.outputs) or not rep["prediction_exact"]:
        print(f"error: {name}: outputs or cycles differ from the reference / prediction", file=sys.stderr)
        return None
    print(f"{name}_cycles: {rep['cycles']}")
    print(f"{name}_mac_utilization: {rep['mxm_utilization']}")
    for c in rep["chips"]:
        print(f"{name}_chip{c['chip']}_mac_utilization: {c['mxm_utilization']}")
    links = [v for c in sc.predicted["chips"] for v in c["links"].values()]
    print(f"{name}_busiest_link_utilization: {max(links, default=0.0)}")
    print(f"{name}_plan: {' '.join('+'.join(map(str, s.chips)) for s in sc.plan)}")
    print(f"{name}_micro_batches: {sc.micro_batches}")
    return sc, feeds, rep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.multichip")
    ap.parse_args(argv)
    tiny = get_config("tiny")
    rng = np.random.default_rng(2026)
    M, K, N = 32, 1024, 576            # 589,824 bytes of weights: more than a tiny chip's SRAM (524,288)
    g = Graph()
    g.input("x", np.int8, (M, K))
    g.constant("w", rng.integers(-128, 128, (K, N)).astype(np.int8))
    g.outputs.append(g.requantize(g.matmul("x", "w"), 1 / 8192, 0, np.int8))
    runs = {system: _run(f"gemm_{M}x{K}x{N}_{system}", g, system, "auto") for system in ("pair", "ring4")}
    if None in runs.values():
        return 1

    dims = [256, 256, 256, 128]
    g = mlp(np.random.default_rng(7), 1, dims)
    tag = "_".join(map(str, dims))
    feeds = {"x": np.random.default_rng(0).integers(-128, 128, (1, dims[0])).astype(np.int8)}
    one = compile_graph(g, tiny)
    _, rep = run(one, feeds, "golden")
    print(f"mlp_{tag}_one_chip_cycles: {rep['cycles']}")
    r = _run(f"mlp_{tag}_ring4_pipeline", g, "ring4", "pipeline")
    if r is None:
        return 1
    print(f"mlp_{tag}_ring4_pipeline_latency_vs_one_chip: {r[2]['cycles'] / rep['cycles']:.3f}")

    if _run("mlp_512_1024_512_ring4", mlp(np.random.default_rng(12), 1, [512, 1024, 512]), "ring4", "auto") is None:
        return 1

    # a batch streamed through a pipeline in micro-batches of rows, against it whole and one chip
    g = mlp(np.random.default_rng(9), 128, [128, 128, 128, 128])
    _, rep = run(compile_graph(g, tiny), {"x": np.random.default_rng(0).integers(-128, 128, (128, 128)).astype(np.int8)},
                 "golden")
    print(f"mlp_128x128x3_b128_one_chip_cycles: {rep['cycles']}")
    whole = _run("mlp_128x128x3_b128_ring4_pipeline_whole", g, "ring4", "pipeline", micro_batches=1)
    streamed = _run("mlp_128x128x3_b128_ring4_pipeline_micro", g, "ring4", "pipeline")
    if whole is None or streamed is None:
        return 1
    print(f"mlp_128x128x3_b128_ring4_micro_speedup: {whole[2]['cycles'] / streamed[2]['cycles']:.2f}")
    sc, feeds, _ = runs["ring4"]
    return scale_out(f"gemm_{M}x{K}x{N}_ring4", sc, feeds)


def _programs(sc, feeds) -> list:
    return system_programs(sc, host_before(sc.graph, sc.pre, feeds))


def _scale_out_one(name: str, system, programs: list, workers: tuple[int, ...]) -> bool:
    t0 = time.perf_counter()
    gold = SystemGolden(system, programs)
    want = gold.run()
    print(f"scaleout_{name}_single_process_s: {time.perf_counter() - t0:.3f}")
    print(f"scaleout_{name}_cycles: {want.cycles}")
    for n in workers:
        t0 = time.perf_counter()
        got, _, st = run_scaled(system, programs, workers=n)
        if got.chips != want.chips:
            print(f"error: scaleout_{name}: {n} workers differ from the single-process run", file=sys.stderr)
            return False
        print(f"scaleout_{name}_workers{n}_s: {st.wall_seconds:.3f}")
        print(f"scaleout_{name}_workers{n}_start_s: {time.perf_counter() - t0 - st.wall_seconds:.3f}")
        print(f"scaleout_{name}_workers{n}_rounds: {st.rounds}")
        print(f"scaleout_{name}_workers{n}_exchange_ms_per_round: {1e3 * st.exchange_seconds / st.rounds:.2f}")
    return True


def scale_out(gemm_name: str, gemm_sc, gemm_feeds: dict) -> int:
    """The scale-out figures (module docstring); the GEMM is the one main() compiled for ring4."""
    print(f"scaleout_cores: {os.cpu_count()}")
    workers = (1, 2, 4)
    ring4 = get_system("ring4")
    if not _scale_out_one(gemm_name, ring4, _programs(gemm_sc, gemm_feeds), workers):
        return 1
    g = mlp(np.random.default_rng(12), 4, [512, 1024, 512])
    sc = compile_system(g, ring4, "pipeline")
    feeds = {"x": np.random.default_rng(2026).integers(-128, 128, (4, 512)).astype(np.int8)}
    if not _scale_out_one("mlp_512_1024_512_b4_ring4", ring4, _programs(sc, feeds), workers):
        return 1
    progs, _ = random_transfers(ring4, np.random.default_rng(3), min_cycles=12000)
    if not _scale_out_one("transfers_ring4", ring4, progs, workers):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
