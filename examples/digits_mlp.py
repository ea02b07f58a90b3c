"""End to end: train a small MLP on scikit-learn's digits, quantize it to int8, run it on the chip.

    .venv/bin/python examples/digits_mlp.py [--target golden|icarus|verilator|fpga] [--config tiny]
                                            [--batch N] [--out DIR] [--runs 2] [--port /dev/ttyUSB0]

The steps, each a function below:

1. `load_data`: scikit-learn's bundled 8x8 digits (1797 images, no download), split 75/25 with a
   fixed seed and stratified by class; pixels (0..16) scaled to [0, 1].
2. `train`: a float MLP 64 -> 32 (ReLU) -> 10 with `MLPClassifier`; its test accuracy is the
   figure to match.
3. `quantize`: post-training quantization in numpy, the usual QDQ conventions:
   weights int8, symmetric per tensor (zero point 0, scale max|w| / 127); activations uint8 per
   tensor (zero point 0, they are >= 0), their scales calibrated on the training set (the input's
   maximum, and the hidden ReLU output's maximum, or a percentile with --calibration); biases int32
   at the accumulator's scale s_x * s_w, zero point 0; the logits int8 with a zero point, their
   range [min, max] calibrated on the training set too.
4. `export_onnx`: an ONNX model (opset 21) in QDQ form, with a fixed batch N (the compiler needs
   static shapes):

       x float32 [N, 64] -> QuantizeLinear(s_x, uint8) -> DequantizeLinear
         -> Gemm(B = DequantizeLinear(W1 int8 [32, 64]), C = DequantizeLinear(b1 int32), transB=1)
         -> Relu -> QuantizeLinear(s_h, uint8) -> DequantizeLinear
         -> Gemm(B = DequantizeLinear(W2 int8 [10, 32]), C = DequantizeLinear(b2 int32), transB=1)
         -> QuantizeLinear(s_o, z_o, int8) -> DequantizeLinear -> logits float32 [N, 10]

   The importer (compiler/onnx_import.py) fuses each DequantizeLinear -> Gemm [-> Relu] ->
   QuantizeLinear chain into integer work on the chip: int8 x uint8 -> int32 on the MXM, then
   bias, requantization (by s_x*s_w1/s_h, s_h*s_w2/s_o) and ReLU on the VXM. The input's
   QuantizeLinear and the logits' DequantizeLinear run on the host, before and after the chip.
   (The logits are requantized to int8 on the chip; ending with the float Gemm result works too,
   the host then dequantizes the int32 accumulator with the bias folded in, but an int8 result
   moves a quarter of the words back to the host.)
5. `compile_and_run`: load the saved .onnx (the importer), compile for a chip configuration,
   and run on a target through the product's Python API, the same path as

       python -m compiler run MODEL.onnx --inputs IN.npz --outputs OUT.npz --target golden

   The integer graph's numpy reference (`Graph.evaluate`) gives the bit-exact chip result; the
   chip's logits must equal it exactly, and the measured cycle count must equal the compiler's
   prediction. Exit status 0 when both hold, 1 otherwise.

Files written to --out (default build/examples/digits/): digits_mlp.onnx, inputs.npz (keyed `x`),
outputs.npz (keyed `logits`), report.json (the run report) and summary.json (the figures printed).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("compiler") is None:    # not installed (pip install -e .): use this checkout
    sys.path.insert(0, str(ROOT))

SEED = 0
HIDDEN = 32
DEFAULT_OUT = ROOT / "build" / "examples" / "digits"
OPSET, IR_VERSION = 21, 10


class UsageError(ValueError):
    """A bad argument (e.g. --batch larger than the test split)."""


# ---- 1. data ----------------------------------------------------------------------------------
def load_data(seed: int = SEED):
    """(x_train, x_test, y_train, y_test): float64 pixels in [0, 1], int labels 0..9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = d.data / 16.0
    return train_test_split(x, d.target, test_size=0.25, random_state=seed, stratify=d.target)


# ---- 2. float model ---------------------------------------------------------------------------
def train(x_train, y_train, seed: int = SEED):
    from sklearn.neural_network import MLPClassifier
    mlp = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", max_iter=1000, random_state=seed)
    return mlp.fit(x_train, y_train)


# ---- 3. post-training quantization ------------------------------------------------------------
@dataclass
class Quantized:
    """Everything the ONNX model holds. Scales are float32 (as ONNX stores them); weights are
    [out, in] (transB=1), as PyTorch and most exporters lay them out."""
    s_x: np.float32          # input scale, uint8 zero point 0
    w1: np.ndarray           # int8 [32, 64]
    s_w1: np.float32
    b1: np.ndarray           # int32 [32], scale s_x * s_w1
    s_h: np.float32          # hidden activation scale, uint8 zero point 0
    w2: np.ndarray           # int8 [10, 32]
    s_w2: np.float32
    b2: np.ndarray           # int32 [10], scale s_h * s_w2
    s_o: np.float32          # logits scale, int8
    z_o: np.int8             # logits zero point (asymmetric: the logits' range is not centred)


def _weights(w):
    """Symmetric per-tensor int8: zero point 0, scale max|w| / 127."""
    s = np.float32(np.abs(w).max() / 127.0)
    return np.clip(np.rint(w / s), -127, 127).astype(np.int8), s


def _bias(b, s_acc):
    """int32 at the accumulator's scale (s_in * s_w), zero point 0."""
    return np.rint(np.asarray(b, np.float64) / float(s_acc)).astype(np.int32)


def quantize(mlp, x_calib, percentile: float = 100.0) -> Quantized:
    """Post-training quantization of `mlp`, activation ranges calibrated on `x_calib`.
    `percentile` < 100 clips the hidden range at that percentile of the calibration activations
    instead of their maximum."""
    w1_f, w2_f = mlp.coefs_[0].T, mlp.coefs_[1].T             # sklearn keeps [in, out]
    b1_f, b2_f = mlp.intercepts_
    s_x = np.float32(np.max(x_calib) / 255.0)                   # x >= 0: uint8, zero point 0
    w1, s_w1 = _weights(w1_f)
    w2, s_w2 = _weights(w2_f)
    h = np.maximum(x_calib @ w1_f.T + b1_f, 0.0)                # float hidden activations
    h_max = np.percentile(h, percentile) if percentile < 100 else h.max()
    s_h = np.float32(h_max / 255.0)
    logits = h @ w2_f.T + b2_f
    lo, hi = min(float(logits.min()), 0.0), max(float(logits.max()), 0.0)
    s_o = np.float32((hi - lo) / 255.0)                         # int8, asymmetric: [lo, hi] -> [-128, 127]
    z_o = np.int8(np.clip(np.rint(-128 - lo / s_o), -128, 127))
    # the accumulator scales are products of the float32 scales, as the importer computes them
    return Quantized(s_x, w1, s_w1, _bias(b1_f, np.float64(s_x) * np.float64(s_w1)),
                     s_h, w2, s_w2, _bias(b2_f, np.float64(s_h) * np.float64(s_w2)), s_o, z_o)


# ---- 4. ONNX export ---------------------------------------------------------------------------
class Layer(NamedTuple):
    """One QDQ Gemm layer: int8 weights [out, in] with scale s_w, int32 bias at s_in * s_w, the
    output quantized with (s_out, z_out) (uint8 zero point 0 after a ReLU, int8 for logits)."""
    w: np.ndarray
    s_w: np.float32
    b: np.ndarray
    s_in: np.float32
    s_out: np.float32
    z_out: np.integer
    relu: bool


def export_onnx(q: Quantized, batch: int, path: Path):
    """The QDQ model with a fixed batch, checked with onnx.checker and saved to `path`."""
    return export_layers([Layer(q.w1, q.s_w1, q.b1, q.s_x, q.s_h, np.uint8(0), True),
                          Layer(q.w2, q.s_w2, q.b2, q.s_h, q.s_o, q.z_o, False)], q.s_x, batch, path)


def export_layers(layers: list[Layer], s_x, batch: int, path: Path, name: str = "digits_mlp"):
    """x float32 [batch, in] -> QuantizeLinear(s_x, uint8) -> DequantizeLinear -> one QDQ Gemm
    layer per entry (`fc1`, `fc2`, ...) -> logits float32; checked and saved to `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    nodes = []

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    u8_zero, i8_zero, i32_zero = np.uint8(0), np.int8(0), np.int32(0)
    x = node("QuantizeLinear", ["x", const("s_x", s_x), const("z_x", u8_zero)], "x_q")
    x = node("DequantizeLinear", [x, "s_x", "z_x"], "x_dq")

    def layer(name, x, ly: Layer, out):
        """DequantizeLinear(W), DequantizeLinear(b) -> Gemm [-> Relu] -> QuantizeLinear -> DequantizeLinear."""
        wd = node("DequantizeLinear", [const(f"{name}.w", ly.w), const(f"{name}.s_w", ly.s_w),
                                       const(f"{name}.z_w", i8_zero)], f"{name}.w_dq")
        bd = node("DequantizeLinear", [const(f"{name}.b", ly.b), const(f"{name}.s_b", np.float32(ly.s_in * ly.s_w)),
                                       const(f"{name}.z_b", i32_zero)], f"{name}.b_dq")
        y = node("Gemm", [x, wd, bd], f"{name}.gemm", transB=1)
        if ly.relu:
            y = node("Relu", [y], f"{name}.relu")
        y = node("QuantizeLinear", [y, const(f"{name}.s_y", ly.s_out), const(f"{name}.z_y", ly.z_out)], f"{name}.q")
        return node("DequantizeLinear", [y, f"{name}.s_y", f"{name}.z_y"], out)

    for i, ly in enumerate(layers):
        last = i == len(layers) - 1
        x = layer(f"fc{i + 1}", x, ly, "logits" if last else f"fc{i + 1}.dq")
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, layers[0].w.shape[1]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, layers[-1].w.shape[0]])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=f"streamchip examples ({name})")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return model


# ---- 5. compile and run -------------------------------------------------------------------------
def compile_and_run(model_path: Path, feeds: dict, target: str, config_name: str, runs: int = 1, port=None):
    """(graph, compiled, [(outputs, report) per run]) through the product's Python API."""
    from compiler.compile import compile_graph
    from compiler.onnx_import import load
    from compiler.runtime import run
    from isa.config import get_config

    graph = load(model_path)
    compiled = compile_graph(graph, get_config(config_name))
    results = [run(compiled, feeds, target, port=port) for _ in range(runs)]
    return graph, compiled, results


def accuracy(logits, labels) -> float:
    """In percent."""
    return 100.0 * float(np.mean(np.argmax(logits, axis=1) == labels))


def run_example(target="golden", config="tiny", batch=None, out=DEFAULT_OUT, runs=1,
                percentile=100.0, log=print, port=None, gantt=None) -> dict:
    """Steps 1-5; returns the figures (also written to OUT/summary.json). `gantt`: a path to draw
    the schedule to (compiler/gantt.py: .png, .svg or .html)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = load_data()
    n_all = len(y_test)
    n = n_all if batch is None else batch
    if not 1 <= n <= n_all:
        raise UsageError(f"--batch {batch}: the test split has {n_all} samples")
    x_test, y_test = x_test[:n], y_test[:n]

    t0 = time.perf_counter()
    mlp = train(x_train, y_train)
    float_acc = accuracy(mlp.predict_proba(x_test), y_test)
    log(f"float MLP 64-{HIDDEN}-10 trained in {time.perf_counter() - t0:.1f} s ({mlp.n_iter_} epochs)")

    q = quantize(mlp, x_train, percentile)
    model_path = out / "digits_mlp.onnx"
    export_onnx(q, n, model_path)
    feeds = {"x": x_test.astype(np.float32)}
    np.savez(out / "inputs.npz", **feeds)
    log(f"wrote {model_path} and {out / 'inputs.npz'} (N={n}); the same run from the command line:")
    log(f"    python -m compiler run {model_path} --inputs {out / 'inputs.npz'} --outputs {out / 'outputs.npz'} "
        f"--target {target} --config {config} --report {out / 'report.json'}" + (f" --port {port}" if port else ""))
    if target in ("icarus", "verilator"):
        log(f"{target}: the first run builds the simulator for {config} (minutes); later runs reuse it")

    graph, compiled, results = compile_and_run(model_path, feeds, target, config, runs, port)
    if gantt:
        from compiler.gantt import picture
        picture(compiled, gantt)
        log(f"wrote the schedule picture {gantt}")
    ref = dict(zip(graph.output_names, graph.evaluate(feeds).values()))["logits"]
    outputs, report = results[0]
    logits = outputs["logits"]
    np.savez(out / "outputs.npz", **outputs)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    chip_acc = accuracy(logits, y_test)
    repeat_ok = all(np.array_equal(o["logits"], logits) and r["cycles"] == report["cycles"]
                    for o, r in results[1:])
    cycles = report["cycles"]
    summary = {
        "target": target, "config": compiled.config.name, "test_samples": n,
        "float_accuracy": round(float_acc, 2), "int8_accuracy": round(chip_acc, 2),
        "reference_accuracy": round(accuracy(ref, y_test), 2),
        "accuracy_difference_points": round(chip_acc - float_acc, 2),
        "predicted_cycles": report["predicted_cycles"], "cycles": cycles,
        "cycles_per_inference": round(cycles / n, 2),
        "mxm_utilization": report["mxm_utilization"], "macs": report["macs"],
        "compile_seconds": round(compiled.compile_seconds, 3),
        "run_wall_seconds": round(report["wall_seconds"], 3),
        "prediction_exact": bool(report["prediction_exact"]),
        "bit_exact": bool(np.array_equal(logits, ref)),
        "samples_differing_from_reference": int(np.any(logits != ref, axis=1).sum()),
        "runs": runs, "runs_identical": bool(repeat_ok),
        "quantization": {"s_x": float(q.s_x), "s_w1": float(q.s_w1), "s_h": float(q.s_h), "s_w2": float(q.s_w2),
                         "s_o": float(q.s_o), "z_o": int(q.z_o), "hidden_percentile": percentile},
    }
    summary["ok"] = summary["prediction_exact"] and summary["bit_exact"] and summary["runs_identical"]
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(s: dict, log=print) -> None:
    log(f"test samples:           {s['test_samples']}")
    log(f"float accuracy:         {s['float_accuracy']:.2f} %")
    log(f"int8 accuracy (chip):   {s['int8_accuracy']:.2f} %  ({s['accuracy_difference_points']:+.2f} points)")
    log(f"int8 accuracy (numpy):  {s['reference_accuracy']:.2f} %  (integer graph reference)")
    log("chip == reference:      " + ("yes, bit for bit" if s["bit_exact"] else
                                       f"NO ({s['samples_differing_from_reference']} samples differ)"))
    log(f"predicted cycles:       {s['predicted_cycles']}")
    log(f"measured cycles:        {s['cycles']} on {s['target']} ({s['config']})")
    log(f"predicted == measured:  {'yes' if s['prediction_exact'] else 'NO'}")
    log(f"cycles per inference:   {s['cycles_per_inference']}")
    log(f"MXM utilization:        {s['mxm_utilization']}")
    log(f"compile time:           {s['compile_seconds']:.2f} s")
    if s["runs"] > 1:
        log(f"{s['runs']} runs identical:      {'yes' if s['runs_identical'] else 'NO'} (outputs and cycles)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="examples/digits_mlp.py", description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=("golden", "icarus", "verilator", "fpga"), default="golden")
    ap.add_argument("--port", help="--target fpga: the board's serial port (docs/FPGA.md)")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, help="the first N test samples (default: the whole test split)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--runs", type=int, default=1, help="run N times and check identical outputs and cycles")
    ap.add_argument("--calibration", type=float, default=100.0, metavar="PERCENTILE",
                    help="hidden activation range: this percentile of the training activations (100 = max)")
    ap.add_argument("--gantt", type=Path, metavar="FILE", help="draw the schedule (.png, .svg or .html)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    from compiler.graph import CompileError
    from isa.config import ConfigError
    from verif.run import RunError
    from verif.tools import ToolMissing
    try:
        s = run_example(args.target, args.config, args.batch, args.out, args.runs, args.calibration, port=args.port,
                        gantt=args.gantt)
    except (CompileError, ConfigError, ToolMissing, UsageError, RunError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print_summary(s)
    if abs(s["accuracy_difference_points"]) > 1.0:
        print(f"note: int8 accuracy is {s['accuracy_difference_points']:+.2f} points from the float model",
              file=sys.stderr)
    if not s["ok"]:
        print("FAILED: " + "; ".join(m for m, bad in (
            ("chip output differs from the integer reference", not s["bit_exact"]),
            ("measured cycles differ from the prediction", not s["prediction_exact"]),
            ("repeated runs differ", not s["runs_identical"])) if bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
