"""End to end: train a small CNN on scikit-learn's digits in numpy, quantize it per channel, run it on the chip.

    .venv/bin/python examples/digits_cnn.py [--target golden|icarus|verilator] [--config tiny]
                                            [--batch 50] [--batches K] [--out DIR] [--gantt FILE]

The steps, each a function below:

1. `load_data`: scikit-learn's bundled 8x8 digits, the same split as examples/digits_mlp.py, as
   images [N, 1, 8, 8] with pixels in [0, 1].
2. `train`: a float CNN in plain numpy (no framework, no download), trained with Adam on the
   training split:

       conv 3x3, 1 -> 8, pad 1 -> ReLU -> max pool 2x2 -> conv 3x3, 8 -> 16, pad 1 -> ReLU
         -> max pool 2x2 -> flatten (16 x 2 x 2 = 64) -> fully connected 64 -> 10

3. `quantize`: post-training quantization, the usual QDQ conventions: weights int8, symmetric,
   one scale per output channel; activations uint8 with zero point 0 (they follow ReLUs), scales
   calibrated on the training set; biases int32 at the accumulator's scale (per channel); the
   logits int8 with a zero point.
4. `export_onnx`: the QDQ model (opset 21) with a fixed batch: QuantizeLinear / DequantizeLinear
   around every Conv, MaxPool, Reshape and Gemm, as quantizers write it. The importer
   (compiler/onnx_import.py) turns it into integer work on the chip: each convolution a GEMM over
   pixel rows whose K tiles read shifted pixels by address, bias, ReLU and per-channel
   requantization in the read-out; each pool MAX passes on the VXM; the flatten the Gemm's
   addressing; only the input's QuantizeLinear and the logits' DequantizeLinear on the host.
5. Run: the whole test split (450 images) in batches of --batch on the target, each batch's
   logits checked bit for bit against the integer graph's reference and its cycles against the
   prediction; then one image at batch 1, for the cycles of a single inference.

Files written to --out (default build/examples/digits_cnn/): digits_cnn.onnx (the batch model),
digits_cnn_b1.onnx, summary.json. Exit status 0 when every batch is bit-exact and as predicted.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if importlib.util.find_spec("compiler") is None:    # not installed (pip install -e .): use this checkout
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from digits_mlp import IR_VERSION, OPSET, SEED, UsageError, accuracy, load_data  # noqa: E402

DEFAULT_OUT = ROOT / "build" / "examples" / "digits_cnn"
C1, C2, CLASSES = 8, 16, 10
EPOCHS, BATCH_TRAIN, LR = 60, 32, 3e-3


# ---- 2. a float CNN in numpy ----------------------------------------------------------------------
def _im2col(x, k: int, pad: int):
    """x [N, C, H, W] -> [N*H*W, C*k*k] (stride 1, 'same' output), columns in (c, kh, kw) order."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.stack([xp[:, :, i:i + h, j:j + w] for i in range(k) for j in range(k)], axis=2)  # N, C, k*k, H, W
    return cols.transpose(0, 3, 4, 1, 2).reshape(n * h * w, c * k * k)


def _col2im(cols, shape, k: int, pad: int):
    """The adjoint of _im2col: [N*H*W, C*k*k] -> [N, C, H, W] (overlaps summed)."""
    n, c, h, w = shape
    cols = cols.reshape(n, h, w, c, k * k).transpose(0, 3, 4, 1, 2)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for t in range(k * k):
        i, j = divmod(t, k)
        xp[:, :, i:i + h, j:j + w] += cols[:, :, t]
    return xp[:, :, pad:pad + h, pad:pad + w]


def conv(x, w, b):
    """3x3 convolution, padding 1, stride 1: [N, C, H, W] -> [N, OC, H, W]."""
    n, _, h, wd = x.shape
    y = _im2col(x, 3, 1) @ w.reshape(w.shape[0], -1).T + b
    return y.reshape(n, h, wd, -1).transpose(0, 3, 1, 2)


def maxpool(x):
    """2x2, stride 2."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


@dataclass
class Cnn:
    w1: np.ndarray      # [C1, 1, 3, 3]
    b1: np.ndarray
    w2: np.ndarray      # [C2, C1, 3, 3]
    b2: np.ndarray
    w3: np.ndarray      # [10, C2*2*2] (out, in: the Gemm's transB=1 layout)
    b3: np.ndarray

    def params(self):
        return [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3]

    def forward(self, x, keep=False):
        a1 = conv(x, self.w1, self.b1)
        r1 = np.maximum(a1, 0)
        p1 = maxpool(r1)
        a2 = conv(p1, self.w2, self.b2)
        r2 = np.maximum(a2, 0)
        p2 = maxpool(r2)
        f = p2.reshape(len(x), -1)                      # ONNX Flatten / Reshape order (c, h, w)
        logits = f @ self.w3.T + self.b3
        return (logits, (x, a1, r1, p1, a2, r2, p2, f)) if keep else logits

    def activations(self, x):
        """The float tensors each QuantizeLinear of the exported model sees: conv1 and conv2 after
        ReLU (pooling keeps their scales) and the logits."""
        logits, (_, _, r1, _, _, r2, _, _) = self.forward(x, keep=True)
        return r1, r2, logits


def _pool_back(dp, r):
    """Gradient of 2x2 max pooling: to the (first) maximum of each window."""
    n, c, h, w = r.shape
    win = r.reshape(n, c, h // 2, 2, w // 2, 2)
    mask = win == win.max(axis=(3, 5), keepdims=True)
    mask &= np.cumsum(np.cumsum(mask, axis=3), axis=5) == 1            # one winner per window
    return (mask * dp[:, :, :, None, :, None]).reshape(n, c, h, w)


def _conv_back(dy, x, w):
    """(dx, dw, db) of conv(x, w, b) given dy [N, OC, H, W]."""
    oc = w.shape[0]
    d = dy.transpose(0, 2, 3, 1).reshape(-1, oc)
    cols = _im2col(x, 3, 1)
    dw = (d.T @ cols).reshape(w.shape)
    dx = _col2im(d @ w.reshape(oc, -1), x.shape, 3, 1)
    return dx, dw, d.sum(axis=0)


def _grads(m: Cnn, x, y):
    logits, (x0, a1, r1, p1, a2, r2, p2, f) = m.forward(x, keep=True)
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    dl = prob
    dl[np.arange(len(y)), y] -= 1
    dl /= len(y)
    dw3, db3 = dl.T @ f, dl.sum(axis=0)
    dp2 = (dl @ m.w3).reshape(p2.shape)
    da2 = _pool_back(dp2, r2) * (a2 > 0)
    dp1, dw2, db2 = _conv_back(da2, p1, m.w2)
    da1 = _pool_back(dp1, r1) * (a1 > 0)
    _, dw1, db1 = _conv_back(da1, x0, m.w1)
    return [dw1, db1, dw2, db2, dw3, db3]


def train(x_train, y_train, seed: int = SEED, epochs: int = EPOCHS) -> Cnn:
    """Adam, minibatches of 32, He initialization, a fixed seed: the same network every run."""
    rng = np.random.default_rng(seed)

    def he(*shape):
        return rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
    m = Cnn(he(C1, 1, 3, 3), np.zeros(C1), he(C2, C1, 3, 3), np.zeros(C2), he(CLASSES, C2 * 4), np.zeros(CLASSES))
    mom = [np.zeros_like(p) for p in m.params()]
    vel = [np.zeros_like(p) for p in m.params()]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), BATCH_TRAIN):
            idx = order[i:i + BATCH_TRAIN]
            step += 1
            for p, g, mo, ve in zip(m.params(), _grads(m, x_train[idx], y_train[idx]), mom, vel):
                mo *= 0.9
                mo += 0.1 * g
                ve *= 0.999
                ve += 0.001 * g * g
                p -= LR * (mo / (1 - 0.9 ** step)) / (np.sqrt(ve / (1 - 0.999 ** step)) + 1e-8)
    return m


# ---- 3. per-channel post-training quantization ------------------------------------------------------
@dataclass
class QLayer:
    """A quantized Conv or Gemm: int8 weights with one scale per output channel, the int32 bias at
    s_in * s_w (per channel), the output's scale and zero point."""
    w: np.ndarray
    s_w: np.ndarray        # float32 [out channels]
    b: np.ndarray          # int32 [out channels]
    s_in: np.float32
    s_out: np.float32
    z_out: np.integer


def _per_channel(w):
    """Symmetric int8 per output channel (axis 0): zero point 0, scale max|w| / 127 per channel."""
    s = (np.abs(w).reshape(len(w), -1).max(axis=1) / 127.0).astype(np.float32)
    s = np.where(s > 0, s, np.float32(1.0))
    q = np.clip(np.rint(w / s.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
    return q, s


def _layer(w, b, s_in, s_out, z_out) -> QLayer:
    q, s_w = _per_channel(w)
    s_acc = np.float64(s_in) * s_w.astype(np.float64)             # as the importer computes it
    return QLayer(q, s_w, np.rint(b / s_acc).astype(np.int32), np.float32(s_in), np.float32(s_out), z_out)


def quantize(m: Cnn, x_calib) -> tuple[np.float32, list[QLayer]]:
    """(input scale, [conv1, conv2, fc]) with activation ranges calibrated on `x_calib`."""
    s_x = np.float32(1.0 / 255.0)                                  # pixels in [0, 1]: uint8, zero point 0
    r1, r2, logits = m.activations(x_calib)
    s1, s2 = np.float32(r1.max() / 255.0), np.float32(r2.max() / 255.0)
    lo, hi = min(float(logits.min()), 0.0), max(float(logits.max()), 0.0)
    s_o = np.float32((hi - lo) / 255.0)
    z_o = np.int8(np.clip(np.rint(-128 - lo / s_o), -128, 127))
    return s_x, [_layer(m.w1, m.b1, s_x, s1, np.uint8(0)), _layer(m.w2, m.b2, s1, s2, np.uint8(0)),
                 _layer(m.w3, m.b3, s2, s_o, z_o)]


# ---- 4. ONNX export -------------------------------------------------------------------------------
def export_onnx(s_x, layers: list[QLayer], batch: int, path: Path):
    """x float32 [batch, 1, 8, 8] -> Q -> DQ -> (Conv -> Relu -> Q -> DQ -> MaxPool -> Q -> DQ) x 2
    -> Reshape [batch, 64] -> Gemm -> Q (int8) -> DQ -> logits [batch, 10]; checked and saved."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def qdq(x, name, s, z):
        q = node("QuantizeLinear", [x, const(f"{name}.s", s), const(f"{name}.z", z)], f"{name}.q")
        return node("DequantizeLinear", [q, f"{name}.s", f"{name}.z"], f"{name}.dq")

    def weights(name, ly: QLayer):
        wd = node("DequantizeLinear", [const(f"{name}.w", ly.w), const(f"{name}.s_w", ly.s_w),
                                       const(f"{name}.z_w", np.zeros(len(ly.s_w), np.int8))], f"{name}.w_dq", axis=0)
        bd = node("DequantizeLinear", [const(f"{name}.b", ly.b), const(f"{name}.s_b", (ly.s_in * ly.s_w).astype(np.float32)),
                                       const(f"{name}.z_b", np.zeros(len(ly.s_w), np.int32))], f"{name}.b_dq", axis=0)
        return wd, bd

    x = qdq("x", "input", s_x, np.uint8(0))
    for i, ly in enumerate(layers[:2], 1):
        wd, bd = weights(f"conv{i}", ly)
        y = node("Relu", [node("Conv", [x, wd, bd], f"conv{i}", kernel_shape=(3, 3), pads=(1, 1, 1, 1))], f"relu{i}")
        y = qdq(y, f"act{i}", ly.s_out, ly.z_out)
        y = node("MaxPool", [y], f"pool{i}", kernel_shape=(2, 2), strides=(2, 2))
        x = qdq(y, f"pool{i}", ly.s_out, ly.z_out)                # pooling keeps the scale
    x = node("Reshape", [x, const("flat.shape", np.array([batch, -1], np.int64))], "flatten")
    wd, bd = weights("fc", layers[2])
    y = node("Gemm", [x, wd, bd], "fc", transB=1)
    q = node("QuantizeLinear", [y, const("logits.s", layers[2].s_out), const("logits.z", layers[2].z_out)], "logits.q")
    node("DequantizeLinear", [q, "logits.s", "logits.z"], "logits")
    graph = helper.make_graph(nodes, "digits_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, CLASSES])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="streamchip examples (digits_cnn)")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return model


# ---- 5. compile and run -------------------------------------------------------------------------
def _compile(path: Path, config: str):
    from compiler.compile import compile_graph
    from compiler.onnx_import import load
    from isa.config import get_config
    graph = load(path)
    return graph, compile_graph(graph, get_config(config))


def run_example(target="golden", config="tiny", batch=50, batches=None, out=DEFAULT_OUT, log=print,
                gantt=None) -> dict:
    """Steps 1-5; returns the figures (also written to OUT/summary.json). `batches`: run only the
    first K batches of the test split (a quick check); `gantt`: draw the batch schedule there."""
    from compiler.progress import progress
    from compiler.runtime import run

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x_train, x_test, y_train, y_test = load_data()
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    if not 1 <= batch <= len(y_test):
        raise UsageError(f"--batch {batch}: the test split has {len(y_test)} samples")
    n_batches = len(y_test) // batch
    if batches is not None:
        n_batches = max(1, min(n_batches, batches))

    t0 = time.perf_counter()
    cnn = train(x_train, y_train)
    float_all = accuracy(cnn.forward(x_test), y_test)
    log(f"float CNN trained in {time.perf_counter() - t0:.1f} s ({EPOCHS} epochs): {float_all:.2f} % on the "
        f"{len(y_test)} test images")
    s_x, layers = quantize(cnn, x_train)

    export_onnx(s_x, layers, batch, out / "digits_cnn.onnx")
    graph, compiled = _compile(out / "digits_cnn.onnx", config)
    log(f"compiled for batch {batch} in {compiled.compile_seconds:.1f} s: {compiled.predicted['cycles']} predicted "
        f"cycles, {compiled.stats['refills']} instruction refills")
    if gantt:
        from compiler.gantt import picture
        picture(compiled, gantt)
        log(f"wrote the schedule picture {gantt}")
    if target in ("icarus", "verilator"):
        log(f"{target}: the first run builds the simulator for {config} (minutes); later runs reuse it")
    logits, ok_bits, ok_cycles, reports = [], True, True, []
    for k in progress(range(n_batches), "batches"):
        feeds = {"x": x_test[k * batch:(k + 1) * batch].astype(np.float32)}
        outputs, rep = run(compiled, feeds, target)
        ref = dict(zip(graph.output_names, graph.evaluate(feeds).values()))["logits"]
        ok_bits &= bool(np.array_equal(outputs["logits"], ref))
        ok_cycles &= bool(rep["prediction_exact"])
        logits.append(outputs["logits"])
        reports.append(rep)
    n = n_batches * batch
    logits = np.concatenate(logits)

    export_onnx(s_x, layers, 1, out / "digits_cnn_b1.onnx")
    graph1, compiled1 = _compile(out / "digits_cnn_b1.onnx", config)
    one = {"x": x_test[:1].astype(np.float32)}
    out1, rep1 = run(compiled1, one, target)
    ref1 = dict(zip(graph1.output_names, graph1.evaluate(one).values()))["logits"]
    ok_bits &= bool(np.array_equal(out1["logits"], ref1))
    ok_cycles &= bool(rep1["prediction_exact"])

    rep = reports[0]
    summary = {
        "target": target, "config": compiled.config.name, "test_images": n, "batch": batch,
        "float_accuracy": round(accuracy(cnn.forward(x_test[:n]), y_test[:n]), 2),
        "int8_accuracy": round(accuracy(logits, y_test[:n]), 2),
        "cycles_per_batch": rep["cycles"], "cycles_per_inference": round(rep["cycles"] / batch, 2),
        "mxm_utilization": rep["mxm_utilization"], "macs_per_batch": rep["macs"],
        "batch1_cycles": rep1["cycles"], "batch1_mxm_utilization": rep1["mxm_utilization"],
        "units": {k: v for k, v in rep["units"].items() if v >= 0.05},
        "compile_seconds": round(compiled.compile_seconds, 2), "refills": compiled.stats["refills"],
        "instruction_sram_bytes": compiled.stats["instruction_sram_bytes"],
        "bit_exact": ok_bits, "prediction_exact": ok_cycles,
        "quantization": {"s_x": float(s_x), "s_act1": float(layers[0].s_out), "s_act2": float(layers[1].s_out),
                         "s_logits": float(layers[2].s_out), "z_logits": int(layers[2].z_out),
                         "weights": "int8, symmetric, per output channel"},
    }
    summary["accuracy_difference_points"] = round(summary["int8_accuracy"] - summary["float_accuracy"], 2)
    summary["ok"] = ok_bits and ok_cycles
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_summary(s: dict, log=print) -> None:
    log(f"test images:            {s['test_images']} in batches of {s['batch']} on {s['target']} ({s['config']})")
    log(f"float accuracy:         {s['float_accuracy']:.2f} %")
    log(f"int8 accuracy (chip):   {s['int8_accuracy']:.2f} %  ({s['accuracy_difference_points']:+.2f} points)")
    log("chip == reference:      " + ("yes, bit for bit, every batch" if s["bit_exact"] else "NO"))
    log(f"predicted == measured:  {'yes, every batch' if s['prediction_exact'] else 'NO'}")
    log(f"cycles per batch:       {s['cycles_per_batch']} ({s['cycles_per_inference']} per inference)")
    log(f"cycles at batch 1:      {s['batch1_cycles']}")
    log(f"MXM utilization:        {s['mxm_utilization']} (batch {s['batch']}), {s['batch1_mxm_utilization']} (batch 1)")
    log(f"compile time:           {s['compile_seconds']:.1f} s ({s['refills']} instruction refills)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="examples/digits_cnn.py", description=__doc__.split("\n")[0])
    ap.add_argument("--target", choices=("golden", "icarus", "verilator"), default="golden")
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=50, help="images per run (default 50; the split has 450)")
    ap.add_argument("--batches", type=int, help="run only the first K batches")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    ap.add_argument("--gantt", type=Path, metavar="FILE", help="draw the batch schedule (.png, .svg or .html)")
    args = ap.parse_args(argv)

    from compiler.graph import CompileError
    from isa.config import ConfigError
    from verif.run import RunError
    from verif.tools import ToolMissing
    try:
        s = run_example(args.target, args.config, args.batch, args.batches, args.out, gantt=args.gantt)
    except (CompileError, ConfigError, ToolMissing, UsageError, RunError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    print_summary(s)
    if abs(s["accuracy_difference_points"]) > 1.0:
        print(f"note: int8 accuracy is {s['accuracy_difference_points']:+.2f} points from the float model",
              file=sys.stderr)
    if not s["ok"]:
        print("FAILED: the chip's output or cycles differ from the reference or the prediction", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
