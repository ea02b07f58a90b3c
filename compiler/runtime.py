"""Run a compiled model on a target: host pre-processing, SRAM load, run, read-back, host post-processing.

The chip part goes through verif.run (the one runner for program images), so `golden`,
`icarus` and `verilator` differ only in the `target` argument: the same image, the same input
words, the same read-back ranges. This module is the only part of the compiler package that
imports a runner; the compiler proper (graph, kernels, scheduling) depends on `isa` alone.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from isa.image import MemSegment, Program, save

from .compile import Compiled, mxm_utilization
from .graph import _EVAL, CompileError


class InputError(CompileError):
    """Inputs that do not match the model (names, shapes, dtypes)."""


def check_feeds(graph, feeds: dict) -> dict:
    names = list(graph.inputs)
    missing = [n for n in names if n not in feeds]
    if missing:
        raise InputError(f"input {missing[0]!r} is missing (the model's inputs: {', '.join(names)})")
    extra = [k for k in feeds if k not in graph.inputs and k not in graph.constants]
    if extra:
        raise InputError(f"input {extra[0]!r} is not an input of the model (its inputs: {', '.join(names)})")
    out = {}
    for n, t in graph.inputs.items():
        v = np.asarray(feeds[n])
        if v.dtype != t.dtype or v.shape != t.shape:
            raise InputError(f"input {n!r}: got {v.dtype}{list(v.shape)}, the model takes {t.dtype}{list(t.shape)}")
        out[n] = v
    return out


def host_before(graph, pre: list, feeds: dict) -> dict:
    """The values the host has before the chip runs: constants, the checked inputs and what the
    host nodes before the chip compute from them."""
    env = dict(graph.constants)
    env.update(check_feeds(graph, feeds))
    for n in pre:
        env[n.outputs[0]] = _EVAL[n.op](n, *[env[i] for i in n.inputs])
    return env


def host_after(graph, post: list, env: dict) -> dict:
    """The model's outputs by name, once the chip's values are in `env`: the host nodes after the
    chip run on them."""
    for n in post:
        env[n.outputs[0]] = _EVAL[n.op](n, *[env[i] for i in n.inputs])
    names = getattr(graph, "output_names", None) or list(graph.outputs)
    return {name: env[v] for name, v in zip(names, graph.outputs)}


def with_inputs(program: Program, host_loads: list, constants: dict, env: dict) -> Program:
    """A copy of `program` with the run-time host values (not the constants it holds already)
    written where the compiler placed them."""
    p = Program(program.config, {k: list(v) for k, v in program.queues.items()}, list(program.memory))
    for placed, src, fn in host_loads:
        if src in constants or not placed.copies:
            continue
        v = env[src]
        for pos, addr, words in placed.segments(fn(v) if fn else v):
            p.memory.append(MemSegment(pos, addr, np.ascontiguousarray(words, np.uint8)))
    return p


def program_with_inputs(compiled: Compiled, env: dict) -> Program:
    return with_inputs(compiled.program, compiled.host_loads, compiled.graph.constants, env)


def system_programs(sc, env: dict) -> list[Program]:
    """Each chip's program of a model compiled for a system, with the host values of `env`
    (host_before) written in."""
    return [with_inputs(part.program, part.host_loads, sc.constants, env) for part in sc.chips]


def run(compiled: Compiled, feeds: dict, target: str = "golden", log=None, port: str | None = None,
        baud: int | None = None) -> tuple[dict, dict]:
    """Returns ({output name: array}, report). Raises InputError for bad inputs. `port`, `baud`:
    the fpga target's serial line (verif/run.py)."""
    from verif.run import run as run_image

    log = log or (lambda msg: None)
    g = compiled.graph
    env = host_before(g, compiled.pre, feeds)
    program = program_with_inputs(compiled, env)
    dumps, where = [], {}
    for v in compiled.chip_outputs:
        c = compiled.placed[v].whole_copy()
        n = compiled.placed[v].layout.words()
        where[v] = []
        for pos, addr in c.planes:
            dumps.append((pos, addr, n))
            where[v].append(f"{compiled.config.floorplan[pos].name}@{addr:#x}")
    log(f"running {compiled.predicted['cycles']} predicted cycles on {target} ({compiled.config.name})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.bin"
        save(program, path)
        report, words = run_image(path, target, compiled.config.name, dumps, port=port, baud=baud)
    if report["error"] != "NONE":
        raise RuntimeError(f"the chip stopped with {report['error']} at position {report['error_position']} "
                           f"pc {report['error_pc']}")
    for v in compiled.chip_outputs:
        env[v] = compiled.placed[v].unpack([words[k] for k in where[v]])
    outputs = host_after(g, compiled.post, env)
    pred = compiled.predicted
    cycles = report["cycles"]
    rep = {"target": target, "config": compiled.config.name, "cycles": cycles,
           "predicted_cycles": pred["cycles"], "prediction_exact": cycles == pred["cycles"],
           "mxm_utilization": mxm_utilization(pred["macs"], cycles, compiled.config),
           "macs": pred["macs"], "units": pred["units"], "ecc_corrected": report["ecc_corrected"],
           "ecc_uncorrectable": report["ecc_uncorrectable"], "wall_seconds": report["wall_seconds"]}
    return outputs, rep


def stderr_log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_on_system(sc, feeds: dict, target: str = "golden", log=None, workers: int | None = None,
                  scheduler: str | None = None, start_offsets: list[int] | None = None) -> tuple[dict, dict]:
    """A model compiled for a system (compiler/system.py) on a target: each chip's image with its
    inputs, the chips run together (verif.run.run_system; on golden with `workers` / `scheduler`, a
    Dask worker per chip), the outputs read back piece by piece from the chips that computed them.
    Returns ({output name: array}, report)."""
    from verif.run import run_system as run_images

    from .system import system_mxm_utilization

    log = log or (lambda msg: None)
    g = sc.graph
    env = host_before(g, sc.pre, feeds)
    dumps, where = [], {}
    for v, pieces in sc.outputs.items():
        for c, cols, piece in pieces:
            n = piece.layout.words()
            keys = []
            for pos, addr in piece.whole_copy().planes:
                dumps.append((c, pos, addr, n))
                keys.append(f"chip{c}.{sc.system.config(c).floorplan[pos].name}@{addr:#x}")
            where.setdefault(v, []).append((cols, piece, keys))
    pred = sc.predicted
    log(f"running {pred['cycles']} predicted cycles on {target} ({sc.system.name}, {len(sc.chips)} chips)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for part, program in zip(sc.chips, system_programs(sc, env)):
            path = Path(tmp) / f"chip{part.index}.bin"
            save(program, path)
            paths.append(path)
        report, words = run_images(paths, target, sc.system.name, dumps, workers, scheduler, start_offsets)
    if report["error"] != "NONE":
        bad = next(i for i, c in enumerate(report["chips"]) if c["error"] != "NONE")
        c = report["chips"][bad]
        raise RuntimeError(f"chip {bad} stopped with {c['error']} at position {c['error_position']} pc {c['error_pc']}")
    for v, pieces in where.items():
        parts = [piece.unpack([words[k] for k in keys]) for _, piece, keys in sorted(pieces, key=lambda x: x[0])]
        env[v] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    outputs = host_after(g, sc.post, env)
    chips = []
    for part, got, want in zip(sc.chips, report["chips"], pred["chips"]):
        chips.append({"chip": part.index, "cycles": got["cycles"], "predicted_cycles": want["cycles"],
                      "mxm_utilization": mxm_utilization(part.macs, got["cycles"], part.config),
                      "links": want["links"]})
    cycles = report["cycles"]
    rep = {"target": target, "system": sc.system.name, "config": sc.chips[0].config.name, "cycles": cycles,
           "predicted_cycles": pred["cycles"], "prediction_exact": cycles == pred["cycles"] and
           all(c["cycles"] == c["predicted_cycles"] for c in chips),
           "mxm_utilization": system_mxm_utilization(pred["macs"], cycles, [p.config for p in sc.chips]),
           "macs": pred["macs"], "parallel": sc.mode, "micro_batches": sc.micro_batches, "plan": sc.plan_report(),
           "chips": chips,
           "wall_seconds": report["wall_seconds"]}
    if "scale_out" in report:
        rep["scale_out"] = report["scale_out"]
    return outputs, rep
