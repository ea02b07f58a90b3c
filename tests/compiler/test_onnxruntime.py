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


def ort_run(model: onnx.ModelProto, feeds: dict, fuse: bool = True) -> list:
    """onnxruntime's outputs (CPU), the model restamped with an IR version and opset it loads (the
    operators used here have not changed since those versions). `fuse=False`: no graph
    optimizations, so a QDQ pattern runs as written, in float, instead of fused into onnxruntime's
    integer kernels (whose uint8 x int8 product saturates on this CPU, see below)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = min(m.ir_version, ORT_IR)
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = min(imp.version, ORT_OPSET)
    opts = ort.SessionOptions()
    if not fuse:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_column_weight_scales_equal_onnxruntime(seed):
    """QLinearMatMul with one B scale per column (per-channel weights): the requantize takes M and s
    per column (loaded per lane, like the bias); bit-exact against onnxruntime, compiled on golden,
    at batch 1 (paired weight loads) and at a batch of 20."""
    rng = np.random.default_rng(seed)
    for m in (1, 20):
        k, n = 48, 40
        sa, sy = np.float32(0.05), np.float32(2.0)
        sb = rng.uniform(0.001, 0.02, n).astype(np.float32)
        inits = [nh.from_array(rng.integers(-128, 128, (k, n)).astype(np.int8), "w"), nh.from_array(sa, "sa"),
                 nh.from_array(np.array(3, np.int8), "za"), nh.from_array(sb, "sb"),
                 nh.from_array(np.array(0, np.int8), "zb"), nh.from_array(sy, "sy"),
                 nh.from_array(np.array(-7, np.int8), "zy")]
        node = helper.make_node("QLinearMatMul", ["x", "sa", "za", "w", "sb", "zb", "sy", "zy"], ["y"], name="q")
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT8, [m, k])],
                                  [helper.make_tensor_value_info("y", TensorProto.INT8, [m, n])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        feeds = {"x": rng.integers(-128, 128, (m, k)).astype(np.int8)}
        out, rep = run(compile_graph(from_model(model), TINY), feeds)
        ref = ort_run(model, feeds)[0]
        assert rep["prediction_exact"] and np.array_equal(out["y"], ref)
        assert len(np.unique(ref)) > 10


def _qdq_per_channel(trans_b: bool):
    """QDQ Gemm with per-channel int8 weights (one scale per output column, as onnxruntime's
    quantizer writes them) and a per-channel int32 bias, then ReLU and QuantizeLinear."""
    rng = np.random.default_rng(9)
    k, n = 40, 24
    w = rng.integers(-127, 128, (n, k) if trans_b else (k, n)).astype(np.int8)
    sw = rng.uniform(0.002, 0.02, n).astype(np.float32)
    sx = np.float32(0.05)
    inits = [nh.from_array(sx, "sx"), nh.from_array(np.uint8(100), "zx"), nh.from_array(w, "w"),
             nh.from_array(sw, "sw"), nh.from_array(np.zeros(n, np.int8), "zw"),
             nh.from_array(rng.integers(-900, 900, n).astype(np.int32), "b"), nh.from_array(sx * sw, "sb"),
             nh.from_array(np.zeros(n, np.int32), "zb"), nh.from_array(np.float32(0.04), "sy"),
             nh.from_array(np.uint8(0), "zy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=0 if trans_b else 1),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bd"], axis=0),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["g"], name="fc", transB=int(trans_b)),
             helper.make_node("Relu", ["g"], ["r"], name="act"),
             helper.make_node("QuantizeLinear", ["r", "sy", "zy"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "sy", "zy"], ["y"], name="dq")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [12, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [12, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("trans_b", [True, False])
def test_qdq_per_channel_weights_within_a_step_of_onnxruntime(trans_b):
    """Against the pattern as written (onnxruntime unfused, float). Fused, onnxruntime runs it as a
    uint8 x int8 integer GEMM whose pair sums saturate on this CPU: off by up to 6.6 here."""
    m = _qdq_per_channel(trans_b)
    g = from_model(m)
    x = np.random.default_rng(2).standard_normal((12, 40)).astype(np.float32) * 3
    out, rep = run(compile_graph(g, TINY), {"x": x})
    assert rep["prediction_exact"]
    assert np.array_equal(out["y"], g.evaluate({"x": x})[g.outputs[0]])
    assert np.abs(out["y"] - ort_run(m, {"x": x}, fuse=False)[0]).max() <= 0.04 * 1.0001


def test_per_axis_scale_on_the_wrong_axis_is_refused():
    m = _qdq_per_channel(False)
    m.graph.node[2].attribute[0].i = 0           # per row of B (K), not per output column
    m.graph.initializer[3].CopyFrom(nh.from_array(np.full(40, 0.01, np.float32), "sw"))
    m.graph.initializer[4].CopyFrom(nh.from_array(np.zeros(40, np.int8), "zw"))
    from compiler.graph import CompileError
    with pytest.raises(CompileError, match=r"node 'fc' \(Gemm\): B's scales are per axis 0; per-channel weights "
                                           r"take one scale per output column \(axis 1 here\)"):
        from_model(m)


@pytest.mark.parametrize("lo,hi,out_type", [(0.0, 6.0, TensorProto.UINT8), (-2.0, 3.0, TensorProto.INT8),
                                            (None, 1.5, TensorProto.INT8)])
def test_qdq_clip_within_a_step_of_onnxruntime(lo, hi, out_type):
    """Gemm -> Clip (ReLU6 and others) -> QuantizeLinear: a clamp after the requantize, on the chip
    (MAX at Q(min), MIN at Q(max)); the bounds bind (the outputs reach them)."""
    rng = np.random.default_rng(10)
    k, n = 40, 24
    zy_t = np.uint8 if out_type == TensorProto.UINT8 else np.int8
    inits = [nh.from_array(np.float32(0.05), "sx"), nh.from_array(np.int8(0), "zx"),
             nh.from_array(rng.integers(-127, 128, (k, n)).astype(np.int8), "w"), nh.from_array(np.float32(0.01), "sw"),
             nh.from_array(np.int8(0), "zw"), nh.from_array(np.float32(0.03), "sy"),
             nh.from_array(zy_t(10 if zy_t == np.uint8 else -5), "zy")]
    clip_ins = ["g", "lo" if lo is not None else "", "hi"]
    if lo is not None:
        inits.append(nh.from_array(np.float32(lo), "lo"))
    inits.append(nh.from_array(np.float32(hi), "hi"))
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("MatMul", ["xd", "wd"], ["g"], name="fc"),
             helper.make_node("Clip", clip_ins, ["c"], name="clip"),
             helper.make_node("QuantizeLinear", ["c", "sy", "zy"], ["q"], name="q"),
             helper.make_node("DequantizeLinear", ["q", "sy", "zy"], ["y"], name="dq")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [10, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [10, n])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    g = from_model(m)
    x = np.random.default_rng(3).standard_normal((10, k)).astype(np.float32) * 2
    out, rep = run(compile_graph(g, TINY), {"x": x})
    ref = ort_run(m, {"x": x}, fuse=False)[0]
    assert rep["prediction_exact"] and np.array_equal(out["y"], g.evaluate({"x": x})[g.outputs[0]])
    assert np.abs(out["y"] - ref).max() <= 0.03 * 1.0001
    assert np.isclose(out["y"].max(), hi, atol=0.03) and (lo is None or np.isclose(out["y"].min(), lo, atol=0.03))


def test_clip_on_its_own():
    """A clip that does not follow a requantize: two elementwise passes (MAX at lo, MIN at hi, bounds
    in registers) on int8, on a uint8 requantize result (stored with an offset) or a uint8 input
    (loaded with the offset); a uint8 tensor stored as is (an input a Mul reads too) is refused
    (the ALU compares signed)."""
    from compiler.graph import CompileError, Graph
    rng = np.random.default_rng(1)
    g = Graph()
    g.input("x", np.int8, (6, 40))
    g.constant("w", rng.integers(-128, 128, (40, 24)).astype(np.int8))
    r = g.requantize(g.matmul("x", "w"), 1 / 600, 10, np.uint8)
    g.outputs = [g.clip("x", -20, 33), r, g.clip(r, 40, 200)]          # r has two readers: not fused
    feeds = {"x": rng.integers(-128, 128, (6, 40)).astype(np.int8)}
    out, rep = run(compile_graph(g, TINY), feeds)
    want = g.evaluate(feeds)
    assert rep["prediction_exact"] and all(np.array_equal(out[k], want[k]) for k in g.outputs)
    assert want[g.outputs[0]].min() == -20 and want[g.outputs[2]].min() == 40
    g = Graph()                 # a uint8 input is loaded with the offset when a clip reads it
    g.input("u", np.uint8, (4, 16))
    g.outputs.append(g.clip("u", 3, 200, name="c"))
    fu = {"u": rng.integers(0, 256, (4, 16)).astype(np.uint8)}
    out, rep = run(compile_graph(g, TINY), fu)
    assert rep["prediction_exact"] and np.array_equal(out[g.outputs[0]], g.evaluate(fu)[g.outputs[0]])
    g = Graph()                 # ... but not when a Mul reads it too (the product needs it as it is)
    g.input("u", np.uint8, (4, 16))
    g.outputs += [g.mul("u", "u"), g.clip("u", 3, 200, name="c")]
    with pytest.raises(CompileError, match=r"node 'c' \(clip\): a uint8 tensor stored as is compares as signed"):
        compile_graph(g, TINY)
