"""Convolutions, pooling, flatten and broadcasting: the graph's reference equals onnxruntime bit for
bit, and the compiled program on the golden model equals the reference with exactly the predicted
cycles (a convolution is a GEMM whose A rows are read at shifted pixel addresses, pooling a chain
of MAX passes read the same way: compiler/gather.py)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh

from compiler.compile import compile_graph
from compiler.graph import CompileError, Graph
from compiler.onnx_import import from_model
from compiler.runtime import run
from isa.config import get_config
from tests.compiler.test_onnxruntime import ort_run

TINY = get_config("tiny")
ONNX_TYPE = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


def _rand(rng, dtype, shape):
    i = np.iinfo(dtype)
    return rng.integers(i.min, i.max + 1, shape).astype(dtype)


def _model(nodes, x: np.ndarray, out_type, inits, opset=21, out_rank=4):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", ONNX_TYPE.get(x.dtype, TensorProto.FLOAT),
                                                                          list(x.shape))],
                              [helper.make_tensor_value_info("y", out_type, [None] * out_rank)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _on_golden(model, feeds, config=TINY):
    """(the chip's outputs, report) of the imported model, checked against the graph's reference."""
    g = from_model(model)
    c = compile_graph(g, config)
    out, rep = run(c, feeds)
    want = g.evaluate({k: v for k, v in feeds.items() if k in g.inputs})
    for o in g.outputs:
        if o in want:
            assert np.array_equal(out[g.output_names[g.outputs.index(o)]], want[o]) if hasattr(g, "output_names") \
                else np.array_equal(out[o], want[o])
    assert rep["prediction_exact"], (rep["cycles"], rep["predicted_cycles"])
    return out, rep


# (x shape, x type, w shape, w type, strides, pads, dilations, group)
CONVS = [
    ((1, 1, 8, 8), np.uint8, (8, 1, 3, 3), np.int8, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 3, 7, 6), np.uint8, (5, 3, 3, 3), np.uint8, (2, 2), (0, 1, 2, 1), (1, 1), 1),
    ((1, 4, 9, 9), np.int8, (8, 2, 3, 3), np.int8, (1, 1), (2, 2, 2, 2), (2, 2), 2),
    ((1, 16, 5, 5), np.int8, (16, 1, 3, 3), np.int8, (1, 1), (1, 1, 1, 1), (1, 1), 16),     # depthwise
    ((3, 20, 4, 4), np.uint8, (24, 20, 1, 1), np.int8, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 1x1, two channel tiles
    ((1, 2, 10, 3), np.uint8, (3, 2, 2, 3), np.uint8, (3, 1), (0, 1, 1, 1), (1, 1), 1),     # rectangular
]


@pytest.mark.parametrize("case", CONVS, ids=[f"conv{i}" for i in range(len(CONVS))])
def test_conv_integer_equals_onnxruntime(case):
    xs, xt, ws, wt, st, pd, dl, grp = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w = _rand(rng, xt, xs), _rand(rng, wt, ws)
    zx, zw = np.array(rng.integers(0, 60), xt), np.array(rng.integers(0, 30), wt)
    node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"], strides=st, pads=pd, dilations=dl,
                            group=grp, name="conv")
    model = _model([node], x, TensorProto.INT32, [nh.from_array(w, "w"), nh.from_array(zx, "zx"),
                                                  nh.from_array(zw, "zw")])
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], _ort_exact(model, x))


def _ort_exact(model, x, shifted=("zx",)):
    """onnxruntime's result. A uint8 x against int8 weights is given to it as int8 x - 128, with
    the zero points `shifted` (zx; and zy when y is uint8 too) less 128: the same differences, the
    output back by 128. Its AVX2 u8 x s8 kernel sums pairs of products in int16 with saturation on
    this CPU (docs/CONFORMANCE.md), so it cannot be given the uint8 model as it is."""
    w_int8 = any(nh.to_array(i).dtype == np.int8 and nh.to_array(i).ndim == 4 for i in model.graph.initializer)
    if x.dtype != np.uint8 or not w_int8:
        return ort_run(model, {"x": x})[0]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT8
    for i in m.graph.initializer:
        if i.name in shifted:
            i.CopyFrom(nh.from_array(np.array(int(nh.to_array(i)) - 128, np.int8), i.name))
    out_u8 = m.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    if out_u8:
        m.graph.output[0].type.tensor_type.elem_type = TensorProto.INT8
    y = ort_run(m, {"x": (x.astype(np.int16) - 128).astype(np.int8)})[0]
    return (y.astype(np.int16) + 128).astype(np.uint8) if out_u8 else y


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("xt", [np.uint8, np.int8])
def test_qlinearconv_equals_onnxruntime(per_channel, xt):
    rng = np.random.default_rng(7 + per_channel)
    x = _rand(rng, xt, (2, 3, 6, 6))
    w = _rand(rng, np.int8, (6, 3, 3, 3))
    sx, sy = np.float32(0.05), np.float32(0.4)
    sw = (rng.uniform(0.002, 0.02, 6) if per_channel else rng.uniform(0.002, 0.02, ())).astype(np.float32)
    b = rng.integers(-3000, 3000, 6).astype(np.int32)
    zx, zy = np.array(rng.integers(-20, 20) + (128 if xt == np.uint8 else 0), xt), np.array(3, xt)
    node = helper.make_node("QLinearConv", ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy", "b"], ["y"],
                            pads=(1, 1, 1, 1), name="qconv")
    inits = [nh.from_array(sx, "sx"), nh.from_array(zx, "zx"), nh.from_array(w, "w"), nh.from_array(sw, "sw"),
             nh.from_array(np.zeros(sw.shape, np.int8), "zw"), nh.from_array(sy, "sy"), nh.from_array(zy, "zy"),
             nh.from_array(b, "b")]
    model = _model([node], x, ONNX_TYPE[np.dtype(xt)], inits)
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], _ort_exact(model, x, ("zx", "zy")))


@pytest.mark.parametrize("xt", [np.int8, np.uint8])
@pytest.mark.parametrize("kernel,strides,pads", [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (1, 1), (1, 1, 1, 1)),
                                                 ((3, 2), (2, 1), (1, 0, 1, 1))])
def test_maxpool_equals_onnxruntime(xt, kernel, strides, pads):
    """MaxPool of a requantize result (a uint8 one is stored with an offset, which the VXM compares
    as signed); onnxruntime pools the same values."""
    rng = np.random.default_rng(3)
    x = _rand(rng, xt, (2, 18, 7, 6))
    zy = np.array(128 if xt == np.uint8 else 0, xt)
    node_q = helper.make_node("QLinearConv", ["x", "sx", "zy", "w", "sw", "zw", "sy", "zy"], ["h"], name="qconv")
    node_p = helper.make_node("MaxPool", ["h"], ["y"], kernel_shape=kernel, strides=strides, pads=pads, name="pool")
    w = _rand(rng, np.int8, (18, 18, 1, 1))
    # scales drawn at random: with round ones (0.1 * 0.01 / 0.3) products land on exact halves, where
    # onnxruntime's float rounding and the VXM's fixed-point REQUANT may differ by one
    sx, sw, sy = (np.float32(v) for v in rng.uniform([0.05, 0.005, 0.2], [0.15, 0.015, 0.4]))
    inits = [nh.from_array(sx, "sx"), nh.from_array(zy, "zy"), nh.from_array(w, "w"),
             nh.from_array(sw, "sw"), nh.from_array(np.array(0, np.int8), "zw"), nh.from_array(sy, "sy")]
    model = _model([node_q, node_p], x, ONNX_TYPE[np.dtype(xt)], inits)
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], _ort_exact(model, x, ("zy",)))


def test_maxpool_of_inputs():
    """A uint8 input a pool reads is loaded with an offset of 128 (the VXM compares signed), even
    when a convolution reads it too; one a Mul also reads is stored as it is, and its pool is
    refused. int8 pools as it is."""
    x = np.random.default_rng(5).integers(0, 256, (1, 2, 5, 5)).astype(np.uint8)
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=(2, 2), name="pool")], x,
                   TensorProto.UINT8, [])
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], ort_run(model, {"x": x})[0])
    g = Graph()
    g.input("u", np.uint8, (1, 2, 4, 4))
    g.constant("w", np.ones((2, 2, 1, 1), np.int8))
    g.outputs += [g.conv("u", "w"), g.maxpool("u", (2, 2), name="pool")]
    feeds = {"u": np.random.default_rng(6).integers(0, 256, (1, 2, 4, 4)).astype(np.uint8)}
    out, rep = run(compile_graph(g, TINY), feeds)
    want = g.evaluate(feeds)
    assert rep["prediction_exact"] and all(np.array_equal(out[o], want[o]) for o in g.outputs)
    g = Graph()
    g.input("u", np.uint8, (1, 2, 4, 4))
    g.outputs += [g.mul("u", "u"), g.maxpool("u", (2, 2), name="pool")]
    with pytest.raises(CompileError, match=r"node 'pool' \(maxpool\): a uint8 tensor stored as is"):
        compile_graph(g, TINY)
    xi = np.arange(-16, 16, dtype=np.int8).reshape(1, 2, 4, 4)
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=(2, 2), strides=(2, 2), name="pool")],
                   xi, TensorProto.INT8, [])
    out, _ = _on_golden(model, {"x": xi})
    assert np.array_equal(out["y"], ort_run(model, {"x": xi})[0])


def _qdq_cnn(batch: int, pool: str, rng):
    """x float -> Q -> DQ -> Conv(DQ(W) per channel, DQ(bias)) -> Relu -> Q -> DQ -> pool -> Q -> DQ
    -> Flatten -> Gemm -> Q -> DQ: the QDQ form quantizers write."""
    c1 = 6
    w1 = _rand(rng, np.int8, (c1, 1, 3, 3))
    sw1 = rng.uniform(0.005, 0.02, c1).astype(np.float32)
    sx, sh, sp, so = (np.float32(v) for v in (1 / 255, 0.02, 0.02, 0.1))
    b1 = rng.integers(-500, 500, c1).astype(np.int32)
    npix = {"max": 16, "avg": 16, "global": 1}[pool]
    w2 = _rand(rng, np.int8, (10, c1 * npix))
    sw2 = np.float32(0.01)
    if pool == "avg":
        sp = np.float32(0.015)
    inits = [nh.from_array(v, k) for k, v in dict(
        sx=sx, zx=np.array(0, np.uint8), w1=w1, sw1=sw1, zw1=np.zeros(c1, np.int8), b1=b1, sb1=sx * sw1,
        zb1=np.zeros(c1, np.int32), sh=sh, zh=np.array(0, np.uint8), sp=sp, w2=w2, sw2=sw2, zw2=np.array(0, np.int8),
        so=so, zo=np.array(-5, np.int8), shape=np.array([batch, -1], np.int64)).items()]
    N = helper.make_node
    pool_node = {"max": N("MaxPool", ["hd"], ["p"], kernel_shape=(2, 2), strides=(2, 2), name="pool"),
                 "avg": N("AveragePool", ["hd"], ["p"], kernel_shape=(2, 2), strides=(2, 2), name="pool"),
                 "global": N("GlobalAveragePool", ["hd"], ["p"], name="pool")}[pool]
    nodes = [N("QuantizeLinear", ["x", "sx", "zx"], ["xq"]), N("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             N("DequantizeLinear", ["w1", "sw1", "zw1"], ["w1d"], axis=0),
             N("DequantizeLinear", ["b1", "sb1", "zb1"], ["b1d"], axis=0),
             N("Conv", ["xd", "w1d", "b1d"], ["c"], pads=(1, 1, 1, 1), name="conv"), N("Relu", ["c"], ["r"]),
             N("QuantizeLinear", ["r", "sh", "zh"], ["hq"]), N("DequantizeLinear", ["hq", "sh", "zh"], ["hd"]),
             pool_node, N("QuantizeLinear", ["p", "sp" if pool != "max" else "sh", "zh"], ["pq"]),
             N("DequantizeLinear", ["pq", "sp" if pool != "max" else "sh", "zh"], ["pd"]),
             N("Reshape", ["pd", "shape"], ["f"], name="flat"),
             N("DequantizeLinear", ["w2", "sw2", "zw2"], ["w2d"]),
             N("Gemm", ["f", "w2d"], ["o"], transB=1, name="fc"),
             N("QuantizeLinear", ["o", "so", "zo"], ["oq"]), N("DequantizeLinear", ["oq", "so", "zo"], ["y"])]
    x = rng.uniform(0, 1, (batch, 1, 8, 8)).astype(np.float32)
    return _model(nodes, x, TensorProto.FLOAT, inits, out_rank=2), x, so


@pytest.mark.parametrize("pool", ["max", "avg", "global"])
def test_qdq_cnn_within_a_step_of_onnxruntime(pool):
    """The QDQ pattern of a small CNN (per-channel conv weights, bias, ReLU, pooling, flatten, Gemm)
    compiled as integer work lands within one output step of onnxruntime running it in float
    (requantization rounds half up in fixed point, onnxruntime half to even in float)."""
    model, x, so = _qdq_cnn(3, pool, np.random.default_rng(11))
    out, _ = _on_golden(model, {"x": x})
    theirs = ort_run(model, {"x": x}, fuse=False)[0]
    assert np.abs(out["y"] - theirs).max() <= so * 1.0001


def test_broadcast_add_equals_onnxruntime():
    rng = np.random.default_rng(4)
    x = _rand(rng, np.int8, (2, 20, 3, 3))
    b = _rand(rng, np.int8, (20, 1, 1))
    model = _model([helper.make_node("Add", ["x", "b"], ["y"], name="add")], x, TensorProto.INT8,
                   [nh.from_array(b, "b")])
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], ort_run(model, {"x": x})[0])


def test_reshapes_that_move_data_and_lane_broadcasts_are_refused():
    g = Graph()
    g.input("x", np.int8, (2, 4, 3, 3))
    g.outputs = [g.reshape("x", (2, 36), name="flat")]        # a flatten leaving the graph: a real transpose
    with pytest.raises(CompileError, match=r"node 'flat' \(reshape\): \[2, 4, 3, 3\] -> \[2, 36\] would move"):
        compile_graph(g, TINY)
    g = Graph()
    g.input("x", np.int8, (2, 4, 3, 3))
    g.constant("b", np.ones((1, 1, 3, 3), np.int8))
    g.outputs = [g.add("x", "b", name="add")]
    with pytest.raises(CompileError, match=r"node 'add' \(add\): broadcasting \[1, 1, 3, 3\] to \[2, 4, 3, 3\] "
                                           r"repeats values across channels"):
        compile_graph(g, TINY)


def test_conv_refusals_name_the_node():
    g = Graph()
    g.input("x", np.int8, (1, 3, 4, 4))
    g.constant("w", np.ones((4, 2, 3, 3), np.int8))
    with pytest.raises(CompileError, match=r"node 'c' \(conv\): 3 input and 4 output channels do not split"):
        g.conv("x", "w", group=1, name="c")
    x = np.zeros((1, 1, 4, 4), np.uint8)
    node = helper.make_node("ConvInteger", ["x", "w"], ["y"], kernel_shape=(3, 3, 3), name="c3")
    model = _model([node], x, TensorProto.INT32, [nh.from_array(np.ones((1, 1, 3, 3), np.uint8), "w")])
    with pytest.raises(CompileError, match=r"node 'c3' \(ConvInteger\): kernel_shape \[3, 3, 3\] does not match"):
        from_model(model)
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=(2, 2), ceil_mode=1, name="p")
    with pytest.raises(CompileError, match=r"node 'p' \(MaxPool\): ceil_mode=1 is not supported"):
        from_model(_model([node], x, TensorProto.UINT8, []))


def test_nhwc_transpose_flatten_matmul_equals_onnxruntime():
    """Transpose to NHWC, Flatten, MatMulInteger (as TensorFlow-style exports write it): the chip
    holds images channels-last already, so the MatMul reads the pixels by address, its weight rows
    in (h, w, c) order as they come."""
    rng = np.random.default_rng(9)
    x = _rand(rng, np.int8, (3, 20, 2, 3))
    w = _rand(rng, np.int8, (120, 10))
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=(0, 2, 3, 1), name="nhwc"),
             helper.make_node("Flatten", ["t"], ["f"], name="flat"),
             helper.make_node("MatMulInteger", ["f", "w"], ["y"], name="fc")]
    model = _model(nodes, x, TensorProto.INT32, [nh.from_array(w, "w")], out_rank=2)
    out, _ = _on_golden(model, {"x": x})
    assert np.array_equal(out["y"], ort_run(model, {"x": x})[0])


def test_concat_of_channels_equals_onnxruntime():
    """Concat along the channels: each input copied into its column tiles of the result (16
    channels, then 5), read by the next convolution."""
    rng = np.random.default_rng(10)
    x = _rand(rng, np.int8, (2, 16, 3, 3))
    z = _rand(rng, np.int8, (2, 5, 3, 3))
    w = _rand(rng, np.int8, (8, 21, 1, 1))
    nodes = [helper.make_node("Concat", ["x", "z"], ["c"], axis=1, name="cat"),
             helper.make_node("ConvInteger", ["c", "w"], ["y"], name="conv")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT8, list(x.shape)),
                                           helper.make_tensor_value_info("z", TensorProto.INT8, list(z.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [None] * 4)],
                              [nh.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    out, _ = _on_golden(model, {"x": x, "z": z})
    assert np.array_equal(out["y"], ort_run(model, {"x": x, "z": z})[0])


def test_moves_across_lanes_are_refused():
    g = Graph()
    g.input("x", np.int8, (5, 20))
    g.outputs = [g.transpose("x", (1, 0), name="t")]
    with pytest.raises(CompileError, match=r"node 't' \(transpose\): \[5, 20\] -> \[20, 5\] would move elements"):
        compile_graph(g, TINY)
    g = Graph()
    g.input("x", np.int8, (2, 5, 3, 3))
    g.input("z", np.int8, (2, 5, 3, 3))
    g.outputs = [g.concat(["x", "z"], 1, name="cat")]
    with pytest.raises(CompileError, match=r"node 'cat' \(concat\): inputs of \[5, 5\] channels; each but the last "
                                           r"must be a multiple of 16"):
        compile_graph(g, TINY)


def _residual_model(rng, relu: bool):
    """x -> Q -> DQ -> Conv (per channel) -> Relu -> Q(s1) -> DQ -> Add(the block's input, dequantized
    at s0) [-> Relu] -> Q(s2) -> DQ: a residual block, the two addends at different scales."""
    c = 16
    w = _rand(rng, np.int8, (c, c, 3, 3))
    sw = rng.uniform(0.002, 0.01, c).astype(np.float32)
    s0, s1, s2 = (np.float32(v) for v in rng.uniform([0.02, 0.05, 0.06], [0.04, 0.1, 0.12]))
    N = helper.make_node
    nodes = [N("QuantizeLinear", ["x", "s0", "z0"], ["xq"]), N("DequantizeLinear", ["xq", "s0", "z0"], ["xd"]),
             N("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=0),
             N("Conv", ["xd", "wd"], ["c"], pads=(1, 1, 1, 1), name="conv"), N("Relu", ["c"], ["r"]),
             N("QuantizeLinear", ["r", "s1", "z1"], ["hq"]), N("DequantizeLinear", ["hq", "s1", "z1"], ["hd"]),
             N("Add", ["hd", "xd"], ["sum"], name="residual")]
    last = "sum"
    if relu:
        nodes.append(N("Relu", ["sum"], ["sr"]))
        last = "sr"
    nodes += [N("QuantizeLinear", [last, "s2", "z2"], ["yq"]), N("DequantizeLinear", ["yq", "s2", "z2"], ["y"])]
    inits = [nh.from_array(v, k) for k, v in dict(
        s0=s0, z0=np.array(3, np.int8), w=w, sw=sw, zw=np.zeros(c, np.int8), s1=s1, z1=np.array(0, np.uint8),
        s2=s2, z2=np.array(0 if relu else 128, np.uint8)).items()]
    x = rng.uniform(-3, 3, (2, c, 5, 5)).astype(np.float32)
    return _model(nodes, x, TensorProto.FLOAT, inits), x, s2


@pytest.mark.parametrize("relu", [False, True])
def test_residual_add_across_scales_within_a_step_of_onnxruntime(relu):
    """A residual Add of a uint8 conv output (scale s1) and the int8 block input (scale s0) into s2:
    each addend rescaled to int16 (identity weights 64 on the MXM, REQUANT on the VXM), added,
    rounded back (graph.round_shift). Within one output step of onnxruntime in float."""
    model, x, s2 = _residual_model(np.random.default_rng(12 + relu), relu)
    out, _ = _on_golden(model, {"x": x})
    theirs = ort_run(model, {"x": x}, fuse=False)[0]
    assert np.abs(out["y"] - theirs).max() <= s2 * 1.0001
    assert np.mean(out["y"] == theirs) > 0.95                 # and mostly the same bits


def test_listing_of_a_convolution_assembles_to_the_same_queues():
    """The listing of gathered READs (runs, pad words with stride 0, strided pool taps) is valid
    assembler input that gives back the same queues."""
    from isa.asm import assemble
    rng = np.random.default_rng(13)
    g = Graph()
    g.input("x", np.uint8, (2, 3, 7, 7))
    g.constant("w", _rand(rng, np.int8, (8, 3, 3, 3)))
    y = g.requantize(g.conv("x", "w", 5, 0, strides=(2, 1), pads=(1, 1, 1, 1)), 0.002, 0, np.int8)
    g.outputs = [g.maxpool(y, (2, 2), (2, 2), (0, 0, 1, 1))]
    c = compile_graph(g, TINY)
    assert "stride=0" in c.listing
    p = assemble(c.listing, TINY)
    assert {k: list(v) for k, v in p.queues.items()} == {k: list(v) for k, v in c.program.queues.items()}
