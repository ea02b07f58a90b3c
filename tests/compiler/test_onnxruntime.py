"""onnxruntime as the independent reference: the integer operators the compiler takes give
onnxruntime's results bit for bit (the graph's reference, and the compiled program on the golden
model), and the float QDQ pattern lands within one output quantization step of it."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh

from compiler import conformance
from compiler.compile import compile_graph
from compiler.onnx_import import from_model
from compiler.runtime import run
from isa.config import get_config
from tests.compiler.test_onnx_import import CONFORMANCE
from tests.compiler.test_qdq import _qdq_model

TINY = get_config("tiny")
ORT_IR = 10          # onnx 1.23 writes IR version 14; onnxruntime 1.30 reads up to 13
ORT_OPSET = 26       # ... and refuses opsets newer than its release (the node cases are stamped 28)


def ort_run(model: onnx.ModelProto, feeds: dict) -> list:
    """onnxruntime's outputs (CPU), the model restamped with an IR version and opset it loads (the
    operators used here have not changed since those versions)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = min(m.ir_version, ORT_IR)
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = min(imp.version, ORT_OPSET)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v) for k, v in feeds.items()})


def _qlinear(seed: int, layers: int = 1):
    """A chain of QLinearMatMuls with random shapes, scales and zero points (int8 or uint8)."""
    rng = np.random.default_rng(seed)
    dt, tp = (np.int8, TensorProto.INT8) if seed % 2 == 0 else (np.uint8, TensorProto.UINT8)
    lo, hi = (-128, 128) if dt == np.int8 else (0, 256)
    m, dims = int(rng.integers(1, 24)), [int(d) for d in rng.integers(8, 72, layers + 1)]
    inits, nodes, prev, sa = [], [], "x", np.float32(rng.uniform(0.01, 0.1))
    za = dt(rng.integers(lo // 2, hi // 2))
    inits += [nh.from_array(sa, "s0"), nh.from_array(np.array(za, dt), "z0")]
    for i, (k, n) in enumerate(zip(dims, dims[1:])):
        sw = np.float32(rng.uniform(0.001, 0.05))
        sy = np.float32(sa * sw * k * rng.uniform(4, 30))         # a scale the result fits
        inits += [nh.from_array(rng.integers(lo, hi, (k, n)).astype(dt), f"w{i}"), nh.from_array(sw, f"sw{i}"),
                  nh.from_array(np.array(dt(rng.integers(lo // 4, hi // 4)), dt), f"zw{i}"),
                  nh.from_array(sy, f"s{i + 1}"), nh.from_array(np.array(dt(rng.integers(lo // 2, hi // 2)), dt),
                                                                f"z{i + 1}")]
        out = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("QLinearMatMul", [prev, f"s{i}", f"z{i}", f"w{i}", f"sw{i}", f"zw{i}",
                                                        f"s{i + 1}", f"z{i + 1}"], [out], name=f"q{i}"))
        prev, sa = out, sy
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", tp, [m, dims[0]])],
                              [helper.make_tensor_value_info("y", tp, [m, dims[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    return model, {"x": rng.integers(lo, hi, (m, dims[0])).astype(dt)}


@pytest.mark.parametrize("seed", range(12))
def test_qlinearmatmul_equals_onnxruntime(seed):
    model, feeds = _qlinear(seed)
    g = from_model(model)
    assert np.array_equal(g.evaluate(feeds)[g.outputs[0]], ort_run(model, feeds)[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_chain_on_golden_equals_onnxruntime(seed):
    model, feeds = _qlinear(100 + seed, layers=3)
    out, rep = run(compile_graph(from_model(model), TINY), feeds)
    assert rep["prediction_exact"]
    assert np.array_equal(out["y"], ort_run(model, feeds)[0])


INT8 = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


@pytest.mark.parametrize("ta,tb", [(np.uint8, np.uint8), (np.int8, np.int8), (np.int8, np.uint8), (np.uint8, np.int8)])
def test_matmulinteger_equals_onnxruntime(ta, tb):
    """Exact int32 products on the chip. onnxruntime agrees except for uint8 x int8 on a CPU
    without VNNI (this one): its AVX2 kernel sums pairs of products in int16 with saturation, so
    there the exact product is the reference (docs/CONFORMANCE.md)."""
    rng = np.random.default_rng(5)
    rng_of = {np.int8: (-128, 128), np.uint8: (0, 256)}
    a, b = rng.integers(*rng_of[ta], (9, 40)).astype(ta), rng.integers(*rng_of[tb], (40, 24)).astype(tb)
    za, zb = ta(rng.integers(0, 100)), tb(rng.integers(0, 100))
    node = helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("a", INT8[np.dtype(ta)], [9, 40])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [9, 24])],
                              [nh.from_array(b, "b"), nh.from_array(np.array(za, ta), "za"),
                               nh.from_array(np.array(zb, tb), "zb")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    out, _ = run(compile_graph(from_model(model), TINY), {"a": a})
    exact = (a.astype(np.int64) - int(za)) @ (b.astype(np.int64) - int(zb))
    assert np.array_equal(out["y"], exact)
    if (ta, tb) != (np.uint8, np.int8):
        assert np.array_equal(out["y"], ort_run(model, {"a": a})[0])


@pytest.mark.parametrize("name", [c for c in CONFORMANCE if "float16" not in c])
def test_node_cases_agree_with_onnxruntime(name):
    """The ONNX backend node cases the importer takes: our reference, onnxruntime and the case's
    expected outputs are the same bits."""
    case = conformance.cases()[name]
    for ins, outs in case.data_sets:
        feeds = dict(zip([i.name for i in case.model.graph.input], ins))
        g = from_model(case.model, bind=feeds)
        got = g.evaluate({k: v for k, v in feeds.items() if k in g.inputs})
        theirs = ort_run(case.model, feeds)
        for o, want, r in zip(g.outputs, outs, theirs):
            assert np.array_equal(r, want) and np.array_equal(got[o], r), name


def test_qdq_gemm_within_a_step_of_onnxruntime():
    m = _qdq_model(relu=True, quantize_out=True)
    x = np.random.default_rng(2).standard_normal((30, 40)).astype(np.float32) * 3
    out, _ = run(compile_graph(from_model(m), TINY), {"x": x})
    assert np.abs(out["y"] - ort_run(m, {"x": x})[0]).max() <= 0.04 * 1.0001


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_integer_mul_equals_onnxruntime(dtype):
    """Mul of two integer tensors wraps (the low bits of the product), as onnxruntime computes it;
    compiled and run on the golden model, y = x * x and z = x * w (a constant)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(7)
    tp = {np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8, np.int16: TensorProto.INT16}[dtype]
    x = rng.integers(info.min, info.max + 1, (5, 40)).astype(dtype)
    w = rng.integers(info.min, info.max + 1, (5, 40)).astype(dtype)
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"], name="sq"), helper.make_node("Mul", ["x", "w"], ["z"], name="mw")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", tp, [5, 40])],
                              [helper.make_tensor_value_info("y", tp, [5, 40]),
                               helper.make_tensor_value_info("z", tp, [5, 40])], [nh.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    g = from_model(model)
    c = compile_graph(g, TINY)
    out, rep = run(c, {"x": x})
    ref = ort_run(model, {"x": x})
    assert rep["prediction_exact"]
    assert np.array_equal(out["y"], ref[0]) and np.array_equal(out["z"], ref[1])


def test_mul_of_an_offset_uint8_result_is_refused():
    """A uint8 requantize result is stored as value - 128; a product of stored values would be wrong."""
    from compiler.graph import CompileError, Graph
    g = Graph()
    g.input("x", np.int8, (4, 16))
    g.constant("w", np.ones((16, 16), np.int8))
    y = g.requantize(g.matmul("x", "w"), 1 / 64, 3, np.uint8, name="rq")
    g.outputs.append(g.mul(y, y, name="sq"))
    with pytest.raises(CompileError, match=r"node 'sq' \(mul\): 'rq:0' is a uint8 requantize result, stored as "
                                           r"value - 128"):
        compile_graph(g, TINY)
