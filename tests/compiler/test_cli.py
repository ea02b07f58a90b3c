"""`python -m compiler`: the ONNX conformance node cases bit-exact through `run` on the golden
model, `compile` artefacts, and one-line errors with exit status 1 for every kind of bad input."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from compiler import conformance
from compiler.__main__ import main
from isa.config import get_config
from isa.image import load
from verif.rtl_build import ROOT


def test_run_report(tmp_path):
    """Outputs and report of `run` on one ONNX node case (all of them run in test_conformance.py)."""
    case = conformance.cases()["test_qlinearmatmul_3D_int8_float32"]
    onnx.save(case.model, tmp_path / "m.onnx")
    (ins, outs), = case.data_sets
    np.savez(tmp_path / "in.npz", **dict(zip([i.name for i in case.model.graph.input], ins)))
    assert main(["run", str(tmp_path / "m.onnx"), "--inputs", str(tmp_path / "in.npz"), "--outputs",
                 str(tmp_path / "out.npz"), "--report", str(tmp_path / "r.json")]) == 0
    got = np.load(tmp_path / "out.npz")
    for o, want in zip(case.model.graph.output, outs):
        assert got[o.name].dtype == want.dtype and np.array_equal(got[o.name], want)
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"cycles", "target", "config", "mxm_utilization"} <= report.keys()
    assert report["cycles"] == report["predicted_cycles"] > 0 and report["target"] == "golden"
    assert report["config"] == "tiny" and report["prediction_exact"]


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _relu_model(tmp_path, shape=(2, 16)):
    x = helper.make_tensor_value_info("x", TensorProto.INT8, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.INT8, list(shape))
    path = tmp_path / "relu.onnx"
    onnx.save(_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y]), path)
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "compiler", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_run_subprocess_and_compile_artefacts(tmp_path):
    model = _relu_model(tmp_path)
    x = np.arange(-16, 16, dtype=np.int8).reshape(2, 16)
    np.savez(tmp_path / "in.npz", x=x)
    r = _cli("run", model, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz", "--target", "golden")
    assert r.returncode == 0, r.stderr
    assert "cycles=" in r.stdout and "predicted cycles" in r.stderr
    assert np.array_equal(np.load(tmp_path / "out.npz")["y"], np.maximum(x, 0))
    r = _cli("compile", model, "-o", tmp_path / "p.bin", "--listing", tmp_path / "p.s")
    assert r.returncode == 0, r.stderr
    program = load(tmp_path / "p.bin", get_config("tiny"))
    from isa.asm import assemble
    assert assemble((tmp_path / "p.s").read_text(), get_config("tiny")).queues == program.queues
    meta = json.loads((tmp_path / "p.bin.json").read_text())
    assert meta["predicted"]["cycles"] > 0 and "x" in meta["tensors"]


def _sigmoid(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    p = tmp_path / "sig.onnx"
    onnx.save(_model([helper.make_node("Sigmoid", ["x"], ["y"], name="act3")], [x], [y]), p)
    return p


def _huge(tmp_path):
    a = helper.make_tensor_value_info("a", TensorProto.INT8, [512, 1024])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [512, 1024])
    w = helper.make_tensor("w", TensorProto.INT8, [1024, 1024], np.zeros(1024 * 1024, np.int8).tobytes(), raw=True)
    p = tmp_path / "huge.onnx"
    onnx.save(_model([helper.make_node("MatMulInteger", ["a", "w"], ["y"], name="mm")], [a], [y], [w]), p)
    return p


@pytest.mark.parametrize("make,feeds,extra,message", [
    (lambda t: t / "nope.onnx", {"x": np.zeros((2, 16), np.int8)}, [], "nope.onnx: no such file"),
    (lambda t: (t / "bad.onnx").write_bytes(b"\x00junk") and t / "bad.onnx", {}, [], "not a readable ONNX model"),
    (_sigmoid, {"x": np.zeros((1, 4), np.float32)}, [], "node 'act3' (Sigmoid): unsupported operation"),
    (_relu_model, {"x": np.zeros((3, 16), np.int8)}, [], "input 'x': got int8[3, 16], the model takes int8[2, 16]"),
    (_relu_model, {"x": np.zeros((2, 16), np.float32)}, [], "input 'x': got float32[2, 16]"),
    (_relu_model, {"z": np.zeros((2, 16), np.int8)}, [], "input 'x' is missing"),
    (_huge, {"a": np.zeros((512, 1024), np.int8)}, [], "the model does not fit in SRAM"),
    (_relu_model, {"x": np.zeros((2, 16), np.int8)}, ["--config", "huge"], "unknown configuration 'huge'"),
])
def test_errors_are_one_line(tmp_path, make, feeds, extra, message):
    model = make(tmp_path)
    np.savez(tmp_path / "in.npz", **feeds)
    r = _cli("run", model, "--inputs", tmp_path / "in.npz", "--target", "golden", *extra)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1] and "Traceback" not in r.stderr
    assert all(not ln.startswith("error") for ln in lines[:-1])


def test_unreadable_inputs_file(tmp_path):
    model = _relu_model(tmp_path)
    (tmp_path / "in.npz").write_bytes(b"nonsense")
    r = _cli("run", model, "--inputs", tmp_path / "in.npz")
    assert r.returncode == 1 and "not a readable .npz file" in r.stderr and "Traceback" not in r.stderr


def test_tsp_compile_listing_and_golden(tmp_path):
    """The published chip's dimensions: `compile --config tsp` predicts cycles and writes a listing
    that assembles back; the golden model runs the program and matches numpy in that many cycles."""
    a = helper.make_tensor_value_info("A", TensorProto.INT8, [16, 640])
    b = helper.make_tensor_value_info("B", TensorProto.INT8, [640, 320])
    c = helper.make_tensor_value_info("C", TensorProto.INT32, [16, 320])
    onnx.save(_model([helper.make_node("MatMulInteger", ["A", "B"], ["C"], name="mm")], [a, b], [c]),
              tmp_path / "mm.onnx")
    r = _cli("compile", tmp_path / "mm.onnx", "--config", "tsp", "-o", tmp_path / "p.bin", "--listing", tmp_path / "p.s")
    assert r.returncode == 0, r.stderr
    cfg = get_config("tsp")
    program = load(tmp_path / "p.bin", cfg)
    from isa.asm import assemble
    assert assemble((tmp_path / "p.s").read_text(), cfg).queues == program.queues
    predicted = json.loads((tmp_path / "p.bin.json").read_text())["predicted"]["cycles"]
    rng = np.random.default_rng(320)
    A, B = rng.integers(-128, 128, (16, 640)).astype(np.int8), rng.integers(-128, 128, (640, 320)).astype(np.int8)
    np.savez(tmp_path / "in.npz", A=A, B=B)
    assert main(["run", str(tmp_path / "mm.onnx"), "--config", "tsp", "--inputs", str(tmp_path / "in.npz"),
                 "--outputs", str(tmp_path / "out.npz"), "--report", str(tmp_path / "r.json")]) == 0
    assert np.array_equal(np.load(tmp_path / "out.npz")["C"], A.astype(np.int32) @ B.astype(np.int32))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["config"] == "tsp" and report["cycles"] == report["predicted_cycles"] == predicted > 0
