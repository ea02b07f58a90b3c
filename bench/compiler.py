"""Compiler figures, one `name: value` per line.

    python -m bench.compiler [--sims verilator]

* compiled_gemm256_compile_seconds: wall time to import and compile a 256x256x256 MatMulInteger
  ONNX model for `tiny` (scheduling every instruction, building the image)
* compiled_gemm256_cycles / compiled_gemm256_mac_utilization: the compiler's prediction, then the
  golden model's and each simulator's measurement (cycles must be equal; the result is checked
  against numpy); utilization = M*K*N / (cycles x 2 MXMs x lanes^2)
* compiled_gemm256_golden_cycles_per_s: the golden model's speed on that program, cycles / wall time
  of constructing the model and running it
* digits_*: the examples/digits_mlp.py model (int8 MLP on scikit-learn's digits test split):
  compile time, cycles, cycles per inference, accuracy of the chip against the float model
* digits_cnn_*: the examples/digits_cnn.py model (a CNN trained in numpy, per-channel int8): the
  whole test split on golden in batches of 50 (one batch on each simulator), accuracy, cycles per
  batch and per inference, cycles at batch 1, MXM utilization
* compiled_gemv256_sram_bandwidth_fraction: the compiled batch-1 GEMV 1x256 . 256x256: SRAM words
  read / (cycles x MEM slices), as bench's hand-scheduled gemv256_sram_bandwidth_fraction counts
  (target >= 0.9); also on each simulator (cycles equal)
* compiled_mlp784_b1_*: a batch-1 784-128-10 int8 MLP (QLinearMatMul-like: matmul + requantize,
  101,632 bytes of weights): cycles, the weight-read bound (weight bytes / the MEM slices' bytes per
  cycle) and cycles over it (target <= 1.25)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from compiler.compile import compile_graph
from compiler.onnx_import import load
from compiler.runtime import program_with_inputs, run
from isa.config import SliceKind, get_config
from sim.golden import Golden

ROOT = Path(__file__).resolve().parents[1]


def gemm_model(n: int, path: Path) -> Path:
    a = helper.make_tensor_value_info("A", TensorProto.INT8, [n, n])
    b = helper.make_tensor_value_info("B", TensorProto.INT8, [n, n])
    y = helper.make_tensor_value_info("C", TensorProto.INT32, [n, n])
    g = helper.make_graph([helper.make_node("MatMulInteger", ["A", "B"], ["C"], name="gemm")], "gemm", [a, b], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), path)
    return path


def golden_cycles_per_s(compiled, feeds: dict) -> float:
    """Cycles / wall time of Golden(program) + run() on the compiled program with these inputs
    (what bench/__main__.py's golden_speed times for the MEM program)."""
    assert not compiled.pre, "host pre-processing would have to run first"
    program = program_with_inputs(compiled, {**compiled.graph.constants, **feeds})
    t0 = time.perf_counter()
    res = Golden(program).run()
    return res.cycles / (time.perf_counter() - t0)


def gemm_figures(sims: list[str]) -> int:
    n = 256
    rng = np.random.default_rng(256)
    A = rng.integers(-128, 128, (n, n)).astype(np.int8)
    B = rng.integers(-128, 128, (n, n)).astype(np.int8)
    with tempfile.TemporaryDirectory() as tmp:
        path = gemm_model(n, Path(tmp) / "gemm.onnx")
        t0 = time.perf_counter()
        compiled = compile_graph(load(path), get_config("tiny"))
        print(f"compiled_gemm256_compile_seconds: {time.perf_counter() - t0:.2f}")
    p = compiled.predicted
    print(f"compiled_gemm256_cycles_predicted: {p['cycles']}")
    print(f"compiled_gemm256_mac_utilization_predicted: {p['mxm_utilization']}")
    want = A.astype(np.int32) @ B.astype(np.int32)
    rc = 0
    for target in ["golden", *sims]:
        out, rep = run(compiled, {"A": A, "B": B}, target)
        ok = np.array_equal(out["C"], want) and rep["cycles"] == p["cycles"]
        rc |= not ok
        print(f"compiled_gemm256_cycles_{target}: {rep['cycles']}")
        print(f"compiled_gemm256_mac_utilization_{target}: {rep['mxm_utilization']}"
              + ("" if ok else "  (MISMATCH: result or cycles differ)"))
        if target == "golden":
            print(f"compiled_gemm256_golden_cycles_per_s: {golden_cycles_per_s(compiled, {'A': A, 'B': B}):.0f}")
    return rc


def _example(name: str):
    """examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def digits_figures(sims: list[str]) -> int:
    mod = _example("digits_mlp")
    rc = 0
    for target in ["golden", *sims]:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            rc |= mod.main(["--target", target, "--out", tmp])
            d = json.loads((Path(tmp) / "summary.json").read_text())
        if target == "golden":
            print(f"digits_test_samples: {d['test_samples']}")
            print(f"digits_float_accuracy: {d['float_accuracy']}")
            print(f"digits_int8_accuracy: {d['int8_accuracy']}")
            print(f"digits_compile_seconds: {d['compile_seconds']}")
            print(f"digits_cycles_predicted: {d['predicted_cycles']}")
        print(f"digits_cycles_{target}: {d['cycles']}")
        print(f"digits_cycles_per_inference_{target}: {d['cycles_per_inference']}")
        print(f"digits_mxm_utilization_{target}: {d['mxm_utilization']}"
              + ("" if d["ok"] else "  (MISMATCH: not bit-exact or cycles differ)"))
    return rc


def cnn_figures(sims: list[str]) -> int:
    """examples/digits_cnn.py: the whole test split on golden, one batch (and batch 1) on each simulator."""
    mod = _example("digits_cnn")
    rc = 0
    for target in ["golden", *sims]:
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            rc |= mod.main(["--target", target, "--out", tmp] + ([] if target == "golden" else ["--batches", "1"]))
            d = json.loads((Path(tmp) / "summary.json").read_text())
        bad = "" if d["ok"] else "  (MISMATCH: not bit-exact or cycles differ)"
        if target == "golden":
            print(f"digits_cnn_test_images: {d['test_images']}")
            print(f"digits_cnn_float_accuracy: {d['float_accuracy']}")
            print(f"digits_cnn_int8_accuracy: {d['int8_accuracy']}")
            print(f"digits_cnn_compile_seconds: {d['compile_seconds']}")
        print(f"digits_cnn_cycles_per_batch{d['batch']}_{target}: {d['cycles_per_batch']}{bad}")
        print(f"digits_cnn_cycles_per_inference_batch{d['batch']}_{target}: {d['cycles_per_inference']}")
        print(f"digits_cnn_cycles_batch1_{target}: {d['batch1_cycles']}")
        print(f"digits_cnn_mxm_utilization_batch{d['batch']}_{target}: {d['mxm_utilization']}")
    return rc


def batch1_figures(sims: list[str]) -> int:
    """The two batch-1 figures of the module docstring."""
    from compiler.graph import Graph
    cfg = get_config("tiny")
    rng = np.random.default_rng(0)
    rc = 0
    g = Graph()
    g.input("x", np.int8, (1, 256))
    g.constant("w", rng.integers(-128, 128, (256, 256)).astype(np.int8))
    g.outputs.append(g.matmul("x", "w"))
    c = compile_graph(g, cfg)
    feeds = {"x": rng.integers(-128, 128, (1, 256)).astype(np.int8)}
    reads = sum(ops["count"] for _, _, mn, ops, _ in c.machine.res.placed if mn == "READ")
    slices = len(cfg.slices_of(SliceKind.MEM))
    for target in ["golden", *sims]:
        out, rep = run(c, feeds, target)
        ok = np.array_equal(out[g.outputs[0]], g.evaluate(feeds)[g.outputs[0]]) and rep["prediction_exact"]
        rc |= not ok
        print(f"compiled_gemv256_cycles_{target}: {rep['cycles']}" + ("" if ok else "  (MISMATCH)"))
    print(f"compiled_gemv256_sram_bandwidth_fraction: {reads / (c.predicted['cycles'] * slices):.3f}")
    g = Graph()
    g.input("x", np.int8, (1, 784))
    g.constant("w0", rng.integers(-128, 128, (784, 128)).astype(np.int8))
    g.constant("w1", rng.integers(-128, 128, (128, 10)).astype(np.int8))
    h = g.requantize(g.matmul("x", "w0"), 1 / 4096, 0, np.int8)
    g.outputs.append(g.requantize(g.matmul(h, "w1"), 1 / 1024, 0, np.int8))
    c = compile_graph(g, cfg)
    feeds = {"x": rng.integers(-128, 128, (1, 784)).astype(np.int8)}
    out, rep = run(c, feeds)
    ok = np.array_equal(out[g.outputs[0]], g.evaluate(feeds)[g.outputs[0]]) and rep["prediction_exact"]
    rc |= not ok
    bound = (784 * 128 + 128 * 10) / (slices * cfg.lanes)
    print(f"compiled_mlp784_b1_cycles: {rep['cycles']}" + ("" if ok else "  (MISMATCH)"))
    print(f"compiled_mlp784_b1_weight_read_bound: {bound:.0f}")
    print(f"compiled_mlp784_b1_vs_bound: {rep['cycles'] / bound:.3f}")
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.compiler", description=__doc__.split("\n")[0])
    ap.add_argument("--sims", default="verilator", help="comma-separated simulators to measure on too")
    args = ap.parse_args(argv)
    sims = [s for s in args.sims.split(",") if s]
    return gemm_figures(sims) | batch1_figures(sims) | digits_figures(sims) | cnn_figures(sims)


if __name__ == "__main__":
    sys.exit(main())
