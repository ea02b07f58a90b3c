"""ONNX backend node test cases of the ops the importer knows, through `python -m compiler run`.

    python -m compiler.conformance [--target golden|icarus|verilator] [--only NAME ...] [--markdown FILE]

Every node case (from the `onnx` package's `onnx.backend.test`) whose graph uses only the ops
the importer knows (compiler/onnx_import.py SUPPORTED) is run;
each ends as `pass` (every output equal to the ONNX expected output, dtype and bits) or
`refused` (a one-line compile error saying why). A wrong result or any other exception is a
failure. `--markdown` writes the table that docs/CONFORMANCE.md holds.
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .onnx_import import SUPPORTED

OPS = set(SUPPORTED)        # the ops the importer knows (compiler/onnx_import.py)


@functools.cache
def cases() -> dict:
    """The node cases, by name (collected once per process: the collection takes a while)."""
    from onnx.backend.test.case import node
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        found = node.collect_testcases(None)
    return {c.name: c for c in found
            if {n.op_type for n in c.model.graph.node} <= OPS and c.model.graph.node}


def run_case(case, target: str = "golden", config: str = "tiny") -> tuple[str, str, list[int]]:
    """(status, detail, cycles per data set): status is pass, refused or FAIL."""
    import contextlib
    import io
    import json

    import onnx

    from .__main__ import main
    from .graph import CompileError
    from .onnx_import import from_model
    cycles = []
    try:                                  # a refusal of the model itself, before any input file is written
        ins0 = case.data_sets[0][0]
        from_model(case.model, bind=dict(zip([i.name for i in case.model.graph.input], ins0)))
    except CompileError as e:
        return "refused", str(e).splitlines()[0], cycles
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        onnx.save(case.model, tmp / "m.onnx")
        for k, (ins, outs) in enumerate(case.data_sets):
            np.savez(tmp / "in.npz", **dict(zip([i.name for i in case.model.graph.input], ins)))
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["run", str(tmp / "m.onnx"), "--inputs", str(tmp / "in.npz"), "--outputs",
                             str(tmp / "out.npz"), "--target", target, "--config", config,
                             "--report", str(tmp / "r.json")])
            last = (err.getvalue().strip().splitlines() or [""])[-1]
            if code == 1 and last.startswith("error: "):
                return "refused", last[len("error: "):], cycles
            if code != 0:
                return "FAIL", last, cycles
            got = np.load(tmp / "out.npz")
            for o, want in zip(case.model.graph.output, outs):
                g = got[o.name]
                if g.dtype != want.dtype or g.shape != want.shape or not np.array_equal(g, want):
                    return "FAIL", f"output {o.name!r} differs from the expected output", cycles
            report = json.loads((tmp / "r.json").read_text())
            if report["cycles"] != report["predicted_cycles"]:
                return "FAIL", f"ran {report['cycles']} cycles, the compiler predicted {report['predicted_cycles']}", cycles
            cycles.append(report["cycles"])
    return "pass", "", cycles


def markdown(rows) -> str:
    out = ["| case | result | cycles (golden) | why refused |", "| --- | --- | --- | --- |"]
    for name, status, detail, cycles in rows:
        out.append(f"| `{name}` | {status} | {', '.join(map(str, cycles))} | {detail.replace('|', '/')} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m compiler.conformance", description=__doc__.split("\n")[0])
    ap.add_argument("--target", default="golden", choices=("golden", "icarus", "verilator"))
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)
    rows = []
    for name, case in sorted(cases().items()):
        if args.only and name not in args.only:
            continue
        status, detail, cycles = run_case(case, args.target, args.config)
        rows.append((name, status, detail, cycles))
        print(f"{name:45s} {status:8s} {' '.join(map(str, cycles)):8s} {detail}", flush=True)
    if args.markdown:
        args.markdown.write_text(markdown(rows))
    return 1 if any(r[1] == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
