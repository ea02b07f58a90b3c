"""ONNX front end: the conformance node cases through the importer and the graph's integer
reference (the chip's arithmetic), and a clear one-line error for everything refused."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from compiler import conformance
from compiler.graph import CompileError, Graph
from compiler.onnx_import import from_model, load

CONFORMANCE = ["test_matmulinteger",
               "test_qlinearmatmul_2D_uint8_float32", "test_qlinearmatmul_3D_uint8_float32",
               "test_qlinearmatmul_2D_uint8_float16", "test_qlinearmatmul_3D_uint8_float16",
               "test_qlinearmatmul_2D_int8_float32", "test_qlinearmatmul_3D_int8_float32",
               "test_qlinearmatmul_2D_int8_float16", "test_qlinearmatmul_3D_int8_float16",
               "test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear",
               "test_dequantizelinear_axis", "test_add_int8", "test_add_uint8", "test_add_int16",
               "test_mul_int8", "test_mul_uint8", "test_mul_int16", "test_mul_uint16",
               "test_clip_default_int8_inbounds", "test_clip_default_int8_max", "test_clip_default_int8_min",
               "test_convinteger_without_padding", "test_qlinearconv", "test_maxpool_2d_uint8"]


@pytest.fixture(scope="module")
def node_cases():
    return conformance.cases()


@pytest.mark.parametrize("name", CONFORMANCE)
def test_node_case_bit_exact(node_cases, name):
    case = node_cases[name]
    for ins, outs in case.data_sets:
        feeds = dict(zip([i.name for i in case.model.graph.input], ins))
        g = from_model(case.model, bind=feeds)
        got = g.evaluate({k: v for k, v in feeds.items() if k in g.inputs})
        for o, want in zip(g.outputs, outs):
            assert got[o].dtype == want.dtype and np.array_equal(got[o], want), (name, got[o], want)


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_unsupported_op_is_named():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = _model([helper.make_node("Sigmoid", ["x"], ["y"], name="act3")], [x], [y])
    with pytest.raises(CompileError, match=r"^node 'act3' \(Sigmoid\): unsupported operation; the compiler takes "):
        from_model(m)


def test_float_relu_outside_qdq_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y])
    with pytest.raises(CompileError, match=r"node 'r' \(Relu\): input is float32; the chip runs Relu on integers"):
        from_model(m)


def test_matmul_of_wrong_type_is_refused():
    a = helper.make_tensor_value_info("a", TensorProto.INT16, [2, 4])
    b = helper.make_tensor_value_info("b", TensorProto.INT16, [4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 3])
    m = _model([helper.make_node("MatMulInteger", ["a", "b"], ["y"], name="mm")], [a, b], [y])
    with pytest.raises(CompileError, match=r"node 'mm' \(MatMulInteger -> matmul\): input A is int16"):
        from_model(m)


def test_per_axis_zero_point_in_matmul_is_refused():
    a = helper.make_tensor_value_info("a", TensorProto.UINT8, [2, 4])
    b = helper.make_tensor_value_info("b", TensorProto.UINT8, [4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.INT32, [2, 3])
    zp = helper.make_tensor("bzp", TensorProto.UINT8, [3], [1, 2, 3])
    azp = helper.make_tensor("azp", TensorProto.UINT8, [], [0])
    m = _model([helper.make_node("MatMulInteger", ["a", "b", "azp", "bzp"], ["y"], name="mm")], [a, b], [y], [zp, azp])
    with pytest.raises(CompileError, match=r"b_zero_point has 3 values; only per-tensor"):
        from_model(m)


def test_unbound_scale_is_refused():
    names = ["a", "a_s", "a_zp", "b", "b_s", "b_zp", "y_s", "y_zp"]
    types = [TensorProto.UINT8, TensorProto.FLOAT, TensorProto.UINT8, TensorProto.UINT8, TensorProto.FLOAT,
             TensorProto.UINT8, TensorProto.FLOAT, TensorProto.UINT8]
    shapes = [[2, 4], [], [], [4, 3], [], [], [], []]
    ins = [helper.make_tensor_value_info(n, t, s) for n, t, s in zip(names, types, shapes)]
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, [2, 3])
    m = _model([helper.make_node("QLinearMatMul", names, ["y"], name="q")], ins, [y])
    with pytest.raises(CompileError, match=r"node 'q' \(QLinearMatMul\): a_scale must be known when compiling"):
        from_model(m)


def test_symbolic_shape_is_refused():
    x = helper.make_tensor_value_info("x", TensorProto.INT8, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, ["N", 4])
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y])
    with pytest.raises(CompileError, match=r"input 'x': shape \[None, 4\] has a symbolic dimension"):
        from_model(m)


def test_unreadable_and_malformed_models(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not a model")
    with pytest.raises(CompileError, match=r"bad.onnx: not a readable ONNX model"):
        load(bad)
    x = helper.make_tensor_value_info("x", TensorProto.INT8, [4])
    y = helper.make_tensor_value_info("y", TensorProto.INT8, [4])
    m = _model([helper.make_node("Relu", ["missing"], ["y"], name="r")], [x], [y])
    with pytest.raises(CompileError, match=r"^malformed ONNX model: "):
        from_model(m)


def test_wrong_input_shape_or_dtype():
    g = Graph()
    g.input("x", np.int8, (2, 3))
    g.outputs = [g.relu("x")]
    with pytest.raises(CompileError, match=r"input 'x': got int16\[2, 3\], the model takes int8\[2, 3\]"):
        g.evaluate({"x": np.zeros((2, 3), np.int16)})
    with pytest.raises(CompileError, match=r"input 'x' is missing"):
        g.evaluate({})


def test_graph_api_requantize_matches_isa_quant():
    from isa import quant
    rng = np.random.default_rng(0)
    g = Graph()
    g.input("a", np.int8, (3, 32))
    g.constant("w", rng.integers(-128, 128, (32, 8)).astype(np.int8))
    acc = g.matmul("a", "w")
    g.outputs = [g.relu(g.requantize(acc, 0.0123, -5, np.int8))]
    a = rng.integers(-128, 128, (3, 32)).astype(np.int8)
    out = g.evaluate({"a": a})[g.outputs[0]]
    m, s = quant.quantize_multiplier(0.0123)
    want = np.maximum(quant.requantize(a.astype(np.int32) @ g.constants["w"].astype(np.int32), m, s, -5), 0)
    assert np.array_equal(out, want)
