"""Command line: compile an ONNX model, or compile and run it on a target.

    python -m compiler run MODEL.onnx --inputs IN.npz --outputs OUT.npz \\
        --target {golden,icarus,verilator,fpga} [--config tiny] [--report REPORT.json]
        [--port /dev/ttyUSB0 [--baud N]]      (fpga: a board through its UART bridge, docs/FPGA.md)
    python -m compiler compile MODEL.onnx -o PROGRAM.bin [--listing PROGRAM.s] [--config tiny]
        [--inputs IN.npz]     (binds scale / zero-point graph inputs, as the ONNX node tests have them)
        [--gantt FILE.png|.svg|.html]   (the schedule's picture, compiler/gantt.py)

    With --system NAME (a preset such as pair or ring4, or a .json description): the model is
    split over the system's chips (compiler/system.py; --parallel auto|one|pipeline|tensor), `run`
    runs the chips together on golden, icarus or verilator (golden with --workers N or --scheduler
    ADDRESS: a Dask worker per chip, sim/scaleout.py), and `compile -o DIR` writes one image
    and listing per chip and DIR/system.json (the system, the images, where inputs and outputs
    live, the plan and the prediction).

IN.npz / OUT.npz are keyed by the ONNX graph's input and output names. Errors print one line
and exit 1 (2 for bad command-line usage); progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from isa.config import DEFAULT, ConfigError, get_config
from isa.image import save
from isa.system import SystemSpecError
from verif.run import RunError

from .compile import compile_graph
from .gantt import check_path as check_gantt_path
from .graph import CompileError
from .onnx_import import load
from .runtime import run, stderr_log
from .system import MODES

TARGETS = ("golden", "icarus", "verilator", "fpga")


def _read_npz(path: Path) -> dict:
    if not path.exists():
        raise CompileError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:                              # noqa: BLE001 (zip / format errors of several kinds)
        raise CompileError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _compile(args, feeds):
    if not args.model.exists():
        raise CompileError(f"{args.model}: no such file")
    config = get_config(args.config)
    graph = load(args.model, bind=feeds)
    compiled = compile_graph(graph, config)
    p = compiled.predicted
    stderr_log(f"compiled {args.model.name} for {config.name} in {compiled.compile_seconds:.2f} s: "
               f"{p['cycles']} predicted cycles, MXM utilization {p['mxm_utilization']}")
    return compiled


def _compile_system(args, feeds):
    from isa.system import get_system

    from .system import compile_system
    if not args.model.exists():
        raise CompileError(f"{args.model}: no such file")
    system = get_system(args.system)
    graph = load(args.model, bind=feeds)
    sc = compile_system(graph, system, args.parallel, args.micro_batches)
    p = sc.predicted
    micro = f", {sc.micro_batches} micro-batches" if sc.micro_batches > 1 else ""
    stderr_log(f"compiled {args.model.name} for {system.name} ({len(system.chips)} chips, {sc.mode}{micro}) in "
               f"{sc.compile_seconds:.2f} s: {p['cycles']} predicted cycles, MXM utilization {p['mxm_utilization']}")
    for st in sc.plan_report():
        stderr_log(f"  {st['stage']}: chips {st['chips']} ({st['kind']}): {st['why']}")
    return sc


def cmd_compile_system(args, feeds) -> int:
    sc = _compile_system(args, feeds)
    _gantt(args, sc)
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for part in sc.chips:
        path = out / f"chip{part.index}.bin"
        save(part.program, path)
        (out / f"chip{part.index}.s").write_text(part.listing)
        images.append(path.name)

    def where(c, piece):
        return [[sc.system.config(c).floorplan[pos].name, addr] for pos, addr in piece.whole_copy().planes]
    # a micro-batch's value is rows lo..hi of the batch's (compiler/microbatch.py)
    rows_of = {n.outputs[0]: (n.inputs[0], n.attrs["lo"], n.attrs["hi"]) for n in sc.pre if n.op == "rows"}
    for n in sc.post:
        if n.op == "concat":
            lo = 0
            for v in n.inputs:
                hi = lo + sc.graph.types[v].shape[0]
                rows_of[v], lo = (n.outputs[0], lo, hi), hi
    inputs = {}
    for part in sc.chips:
        for placed, src, _ in part.host_loads:
            if src not in sc.constants and placed.copies:
                v, lo, hi = rows_of.get(src, (src, None, None))
                inputs.setdefault(v, []).append({"chip": part.index, **({"rows": [lo, hi]} if lo is not None else {}),
                                                 "copies": [[[part.config.floorplan[pos].name, addr]
                                                             for pos, addr in c.planes] for c in placed.copies]})
    names = dict(zip(sc.graph.outputs, getattr(sc.graph, "output_names", None) or sc.graph.outputs))
    outputs = {}
    for v, pieces in sc.outputs.items():
        whole, lo, hi = rows_of.get(v, (v, None, None))
        for c, cols, piece in pieces:
            outputs.setdefault(names.get(whole, whole), []).append(
                {"chip": c, "columns": list(cols), **({"rows": [lo, hi]} if lo is not None else {}),
                 "shape": list(piece.layout.shape), "dtype": str(piece.dtype), "offset": piece.offset,
                 "planes": where(c, piece)})
    manifest = {"system": sc.system.name, "chips": list(sc.system.chips), "images": images, "parallel": sc.mode,
                "micro_batches": sc.micro_batches, "plan": sc.plan_report(), "predicted": sc.predicted,
                "inputs": inputs, "outputs": outputs, "compile_seconds": round(sc.compile_seconds, 3)}
    (out / "system.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"cycles={sc.predicted['cycles']} mxm_utilization={sc.predicted['mxm_utilization']} chips={len(sc.chips)} "
          f"images={out}")
    return 0


def _gantt(args, compiled) -> None:
    if args.gantt:
        from .gantt import picture
        picture(compiled, args.gantt)
        stderr_log(f"wrote the schedule picture {args.gantt}")


def cmd_compile(args) -> int:
    if args.gantt:
        check_gantt_path(args.gantt)            # before compiling: a wrong suffix fails at once
    feeds = _read_npz(args.inputs) if args.inputs else {}
    if args.system:
        return cmd_compile_system(args, feeds)
    compiled = _compile(args, feeds)
    save(compiled.program, args.output)
    if args.listing:
        args.listing.write_text(compiled.listing)
    _gantt(args, compiled)
    io = {v: {"shape": list(p.layout.shape), "dtype": str(p.dtype), "offset": p.offset,
              "copies": [[[compiled.config.floorplan[pos].name, addr] for pos, addr in c.planes]
                         for c in p.copies]}
          for v, p in compiled.placed.items() if isinstance(v, str) and
          (v in compiled.chip_inputs or v in compiled.chip_outputs)}
    meta = {"config": compiled.config.name, "predicted": compiled.predicted, "stats": compiled.stats,
            "compile_seconds": round(compiled.compile_seconds, 3), "tensors": io}
    Path(str(args.output) + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"cycles={compiled.predicted['cycles']} mxm_utilization={compiled.predicted['mxm_utilization']} "
          f"image={args.output}")
    return 0


def cmd_run_system(args, feeds) -> int:
    from .runtime import run_on_system
    if args.target == "fpga":
        raise CompileError("--target fpga runs one chip on one board; systems run on golden, icarus and verilator")
    sc = _compile_system(args, feeds)
    feeds = {k: v for k, v in feeds.items() if k in sc.graph.inputs}
    if args.target in ("icarus", "verilator"):
        stderr_log(f"{args.target}: the first run builds the system's simulator (minutes); later runs reuse it")
    outputs, report = run_on_system(sc, feeds, args.target, log=stderr_log, workers=args.workers,
                                    scheduler=args.scheduler)
    return _write_run(args, outputs, report, ("target", "system", "cycles", "predicted_cycles", "mxm_utilization"))


def _write_run(args, outputs: dict, report: dict, keys: tuple) -> int:
    """--outputs, --report and the one summary line of a run."""
    if args.outputs:
        np.savez(args.outputs, **outputs)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(" ".join(f"{k}={report[k]}" for k in keys))
    return 0


def cmd_run(args) -> int:
    if (args.workers is not None or args.scheduler) and not args.system:
        raise CompileError("--workers / --scheduler run the chips of a system (--system) in Dask workers")
    if (args.workers is not None or args.scheduler) and args.target != "golden":
        raise CompileError(f"--workers / --scheduler scale out the golden model; {args.target} runs the whole "
                           f"system in one simulator process")
    feeds = _read_npz(args.inputs)
    if args.system:
        return cmd_run_system(args, feeds)
    compiled = _compile(args, feeds)
    g = compiled.graph
    feeds = {k: v for k, v in feeds.items() if k in g.inputs}
    if args.target in ("icarus", "verilator"):
        stderr_log(f"{args.target}: the first run builds the simulator for {compiled.config.name} (minutes); "
                   f"later runs reuse it")
    outputs, report = run(compiled, feeds, args.target, log=stderr_log, port=args.port, baud=args.baud)
    return _write_run(args, outputs, report, ("target", "config", "cycles", "predicted_cycles", "mxm_utilization"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compiler", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="compile and run a model on a target")
    r.add_argument("model", type=Path)
    r.add_argument("--inputs", type=Path, required=True)
    r.add_argument("--outputs", type=Path)
    r.add_argument("--target", choices=TARGETS, default="golden")
    r.add_argument("--config", default=DEFAULT)
    r.add_argument("--report", type=Path)
    r.add_argument("--port", help="--target fpga: the board's serial port (sim:icarus / sim:verilator: the board "
                                  "top in a simulator)")
    r.add_argument("--baud", type=int, help="--target fpga: the bridge's baud rate")
    r.add_argument("--workers", type=int, metavar="N", help="with --system on golden: each chip's golden model in a "
                                                            "Dask worker, N worker processes here (sim/scaleout.py)")
    r.add_argument("--scheduler", metavar="ADDRESS", help="with --system on golden: the chips' workers on the "
                                                          "running Dask cluster at ADDRESS (tcp://host:8786)")
    c = sub.add_parser("compile", help="compile a model to a program image")
    c.add_argument("model", type=Path)
    c.add_argument("-o", "--output", type=Path, required=True)
    c.add_argument("--listing", type=Path)
    c.add_argument("--config", default=DEFAULT)
    c.add_argument("--inputs", type=Path, help="values for scale / zero-point graph inputs")
    c.add_argument("--gantt", type=Path, metavar="FILE", help="draw the schedule: every engine and stream segment "
                                                              "by cycle, coloured by graph node (.png, .svg, .html)")
    for p in (r, c):
        p.add_argument("--system", help="split the model over a system of chips (pair, ring4, or a .json "
                                        "description); `compile -o` then names a directory")
        p.add_argument("--parallel", choices=MODES, default="auto",
                       help="with --system: how stages go to chips (auto: the plan with the fewest predicted cycles)")
        p.add_argument("--micro-batches", type=int, metavar="N",
                       help="with --system: cut the batch into N row slices that stream through the stages "
                            "(default: by prediction, compiler/microbatch.py)")
    args = ap.parse_args(argv)
    try:
        if args.micro_batches is not None and not args.system:
            raise CompileError("--micro-batches streams a batch through the stages of a system (--system)")
        return cmd_run(args) if args.cmd == "run" else cmd_compile(args)
    except (CompileError, ConfigError, SystemSpecError, RunError, OSError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except Exception as e:                              # noqa: BLE001 (a bug or a missing tool: still one line)
        from verif.tools import ToolMissing
        if isinstance(e, ToolMissing):
            print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
            return 1
        print(f"internal error ({type(e).__name__}): {str(e).splitlines()[0] if str(e) else ''} "
              f"(please report it with the model)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
