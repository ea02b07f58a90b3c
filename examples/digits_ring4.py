"""A digits MLP too large for one chip, classified by four: trained, quantized, exported, compiled
for a system of chips (ring4 by default) and run on the golden system model or the RTL.

    .venv/bin/python examples/digits_ring4.py [--target golden|icarus|verilator] [--system ring4]
                                              [--hidden 1024,480,480] [--batch 4] [--samples N]
                                              [--out DIR] [--workers N]

The steps are examples/digits_mlp.py's (same data, quantization conventions and QDQ export), with
more hidden layers: 64 -> 1024 -> 480 -> 480 -> 10 holds 800,232 bytes of int8 weights and int32
biases, more than a `tiny` chip's SRAM (524,288 bytes), so `compiler/system.py` splits it over
the chips (the plan it prints: the 480 KiB layer over two chips' columns, the others where the
prediction says). The model is compiled once for a batch of --batch samples and the test split
classified batch by batch (the last one padded); every batch's logits must equal the integer
graph's numpy reference bit for bit and every chip's measured cycles the prediction. It prints
the accuracy against the float model, cycles per inference and each chip's utilization. With
--workers N each chip's golden model runs in a Dask worker (sim/scaleout.py), same results.

The batch is small because the compiler plans instruction refills after the kernels: a larger
batch keeps every MEM read engine busy through the big layers and leaves a refill no cycle
(the compiler refuses it in one line; docs/COMPILER.md).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("compiler") is None:    # not installed (pip install -e .): use this checkout
    sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("digits_mlp_base", Path(__file__).with_name("digits_mlp.py"))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

HIDDEN = (1024, 480, 480)
BATCH = 4
DEFAULT_OUT = ROOT / "build" / "examples" / "digits_ring4"


def train(x_train, y_train, hidden, seed: int = base.SEED):
    from sklearn.neural_network import MLPClassifier
    mlp = MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="relu", max_iter=200, random_state=seed)
    return mlp.fit(x_train, y_train)


def quantize(mlp, x_calib) -> tuple[np.float32, list]:
    """digits_mlp's conventions per layer: int8 weights symmetric per tensor, uint8 activations
    after each ReLU (range from the calibration set's maximum), int32 biases at s_in * s_w, and
    int8 logits with a zero point over their calibrated range."""
    s_x = np.float32(np.max(x_calib) / 255.0)
    layers, h, s_in = [], x_calib, s_x
    n = len(mlp.coefs_)
    for i, (w_f, b_f) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        w, s_w = base._weights(w_f.T)
        y = h @ w_f + b_f
        if i < n - 1:
            h = np.maximum(y, 0.0)
            s_out, z_out = np.float32(h.max() / 255.0), np.uint8(0)
        else:
            lo, hi = min(float(y.min()), 0.0), max(float(y.max()), 0.0)
            s_out = np.float32((hi - lo) / 255.0)
            z_out = np.int8(np.clip(np.rint(-128 - lo / s_out), -128, 127))
        layers.append(base.Layer(w, s_w, base._bias(b_f, np.float64(s_in) * np.float64(s_w)), s_in, s_out, z_out,
                                 i < n - 1))
        s_in = s_out
    return s_x, layers


def run_example(target="golden", system="ring4", hidden=HIDDEN, batch=BATCH, samples=None, out=DEFAULT_OUT,
                log=print, workers=None, gantt=None) -> dict:
    """`workers`: on golden, each chip's golden model in a Dask worker, one local cluster of that many
    processes for every batch (sim/scaleout.py; 0: the same lockstep in this process)."""
    if workers is not None and target != "golden":
        raise base.UsageError(f"--workers scales out the golden model; {target} runs the system in one simulator")
    if not workers:
        return _run_example(target, system, hidden, batch, samples, out, log, workers, gantt=gantt)
    from sim.scaleout import dask_client
    with dask_client(workers) as client:
        return _run_example(target, system, hidden, batch, samples, out, log, None, client.scheduler.address, gantt)


def _run_example(target, system, hidden, batch, samples, out, log, workers, scheduler=None, gantt=None) -> dict:
    from compiler.onnx_import import load
    from compiler.progress import progress
    from compiler.runtime import run_on_system
    from compiler.system import compile_system
    from isa.system import get_system

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = base.load_data()
    n = len(y_test) if samples is None else samples
    if not 1 <= n <= len(y_test):
        raise base.UsageError(f"--samples {samples}: the test split has {len(y_test)} samples")
    if not 1 <= batch <= n:
        raise base.UsageError(f"--batch {batch}: between 1 and the samples classified ({n})")
    x_test, y_test = x_test[:n], y_test[:n]
    t0 = time.perf_counter()
    mlp = train(x_train, y_train, hidden)
    float_acc = base.accuracy(mlp.predict_proba(x_test), y_test)
    dims = "-".join(map(str, (64, *hidden, 10)))
    log(f"float MLP {dims} trained in {time.perf_counter() - t0:.1f} s ({mlp.n_iter_} epochs)")
    s_x, layers = quantize(mlp, x_train)
    weight_bytes = sum(ly.w.size + 4 * ly.b.size for ly in layers)
    path = out / "digits_ring4.onnx"
    base.export_layers(layers, s_x, batch, path, name="digits_ring4")
    feeds = {"x": x_test[:batch].astype(np.float32)}
    np.savez(out / "inputs.npz", **feeds)
    log(f"wrote {path} ({weight_bytes} bytes of weights and biases); the same run from the command line:")
    log(f"    python -m compiler run {path} --system {system} --inputs {out / 'inputs.npz'} --target {target}")
    graph = load(path)
    sc = compile_system(graph, get_system(system))
    for st in sc.plan_report():
        log(f"  {st['stage']}: chips {st['chips']} ({st['kind']}): {st['why']}")
    if gantt:
        from compiler.gantt import picture
        picture(sc, gantt)
        log(f"wrote the schedule picture {gantt}")
    logits, exact, bit_exact = [], True, True
    for b0 in progress(range(0, n, batch), f"{target} batches", unit="batch"):
        x = np.zeros((batch, x_test.shape[1]), np.float32)
        x[:min(batch, n - b0)] = x_test[b0:b0 + batch]
        outputs, report = run_on_system(sc, {"x": x}, target, log=log if b0 == 0 else (lambda m: None),
                                        workers=workers, scheduler=scheduler)
        ref = dict(zip(graph.output_names, graph.evaluate({"x": x}).values()))["logits"]
        bit_exact &= bool(np.array_equal(outputs["logits"], ref))
        exact &= bool(report["prediction_exact"])
        logits.append(outputs["logits"][:min(batch, n - b0)])
    logits = np.concatenate(logits)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    chip_acc = base.accuracy(logits, y_test)
    summary = {
        "target": target, "system": system, "model": dims, "weight_bytes": weight_bytes, "test_samples": n,
        "batch": batch, "batches": -(-n // batch),
        "float_accuracy": round(float_acc, 2), "int8_accuracy": round(chip_acc, 2),
        "accuracy_difference_points": round(chip_acc - float_acc, 2),
        "cycles": report["cycles"], "predicted_cycles": report["predicted_cycles"],
        "cycles_per_inference": round(report["cycles"] / batch, 2), "mxm_utilization": report["mxm_utilization"],
        "chips": [{k: c[k] for k in ("chip", "cycles", "predicted_cycles", "mxm_utilization", "links")}
                  for c in report["chips"]],
        "plan": [{"stage": s["stage"], "chips": s["chips"]} for s in report["plan"]],
        "compile_seconds": round(sc.compile_seconds, 2), "scale_out": report.get("scale_out"),
        "prediction_exact": exact, "bit_exact": bit_exact,
    }
    summary["ok"] = summary["prediction_exact"] and summary["bit_exact"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(s: dict, log=print) -> None:
    log(f"model:                  {s['model']} ({s['weight_bytes']} bytes of weights and biases) on {s['system']}")
    log(f"test samples:           {s['test_samples']} ({s['batches']} batches of {s['batch']})")
    log(f"float accuracy:         {s['float_accuracy']:.2f} %")
    log(f"int8 accuracy (chips):  {s['int8_accuracy']:.2f} %  ({s['accuracy_difference_points']:+.2f} points)")
    log("chips == reference:     " + ("yes, bit for bit" if s["bit_exact"] else "NO"))
    log(f"cycles per batch:       {s['cycles']} measured, {s['predicted_cycles']} predicted, on {s['target']}")
    log(f"cycles per inference:   {s['cycles_per_inference']}")
    log(f"MXM utilization:        {s['mxm_utilization']} (system)")
    for c in s["chips"]:
        links = ", ".join(f"{k} {v}" for k, v in c["links"].items()) or "none"
        log(f"  chip {c['chip']}: {c['cycles']} cycles (predicted {c['predicted_cycles']}), MXM utilization "
            f"{c['mxm_utilization']}, links sending {links}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="examples/digits_ring4.py", description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=("golden", "icarus", "verilator"), default="golden")
    ap.add_argument("--system", default="ring4")
    ap.add_argument("--hidden", default=",".join(map(str, HIDDEN)), help="hidden layer sizes")
    ap.add_argument("--batch", type=int, default=BATCH, help=f"samples per run (compiled batch; default {BATCH})")
    ap.add_argument("--samples", type=int, help="classify the first N test samples (default: the whole test split)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--workers", type=int, metavar="N", help="golden: a Dask worker per chip on N local processes")
    ap.add_argument("--gantt", type=Path, metavar="FILE", help="draw the schedule (.png, .svg or .html)")
    args = ap.parse_args(argv)
    from compiler.graph import CompileError
    from isa.system import SystemSpecError
    from verif.run import RunError
    from verif.tools import ToolMissing
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        print(f"error: --hidden {args.hidden!r}: comma-separated layer sizes", file=sys.stderr)
        return 1
    try:
        s = run_example(args.target, args.system, hidden, args.batch, args.samples, args.out, workers=args.workers,
                        gantt=args.gantt)
    except (CompileError, SystemSpecError, base.UsageError, RunError, ToolMissing) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print_summary(s)
    if not s["ok"]:
        print("FAILED: the chips' output differs from the integer reference, or cycles from the prediction",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
