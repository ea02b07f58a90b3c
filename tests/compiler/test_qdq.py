"""QDQ patterns from ONNX: fused into integer work on the chip, bit-exact against the graph's
integer reference and within one quantization step of onnx's float reference evaluator."""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh
from onnx.reference import ReferenceEvaluator

from compiler.compile import compile_graph
from compiler.graph import CompileError
from compiler.onnx_import import from_model
from compiler.runtime import run
from isa.config import get_config


def _qdq_model(relu: bool, quantize_out: bool, bias: bool = True, gemm_attrs=None, w_scale=np.float32(0.01)):
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [30, 40])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [30, 20])
    inits = [nh.from_array(np.float32(0.05), "sx"), nh.from_array(np.uint8(100), "zx"),
             nh.from_array(rng.integers(-127, 128, (20, 40)).astype(np.int8), "w"),
             nh.from_array(np.asarray(w_scale, np.float32), "sw"), nh.from_array(np.int8(0), "zw"),
             nh.from_array(rng.integers(-900, 900, 20).astype(np.int32), "b"), nh.from_array(np.float32(0.0005), "sb"),
             nh.from_array(np.int32(0), "zb"), nh.from_array(np.float32(0.04), "sy"), nh.from_array(np.int8(-20), "zy")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "zx"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sx", "zx"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"]),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bd"]),
             helper.make_node("Gemm", ["xd", "wd"] + (["bd"] if bias else []), ["g"], name="fc", transB=1,
                              **(gemm_attrs or {}))]
    last = "g"
    if relu:
        nodes.append(helper.make_node("Relu", [last], ["r"], name="act"))
        last = "r"
    if quantize_out:
        nodes += [helper.make_node("QuantizeLinear", [last, "sy", "zy"], ["q"], name="q"),
                  helper.make_node("DequantizeLinear", ["q", "sy", "zy"], ["y"], name="dq")]
    else:
        nodes[-1].output[0] = "y"                      # the float result leaves the graph
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 21)])


@pytest.mark.parametrize("relu,quantize_out,bias", [(True, True, True), (False, True, True), (False, False, True),
                                                    (False, False, False), (True, True, False)])
def test_qdq_gemm(relu, quantize_out, bias):
    m = _qdq_model(relu, quantize_out, bias)
    g = from_model(m)
    c = compile_graph(g, get_config("tiny"))
    x = np.random.default_rng(2).standard_normal((30, 40)).astype(np.float32) * 3
    out, rep = run(c, {"x": x})
    assert rep["prediction_exact"]
    assert np.array_equal(out["y"], g.evaluate({"x": x})[g.outputs[0]])          # bit-exact chip arithmetic
    ref = ReferenceEvaluator(m).run(None, {"x": x})[0]
    step = 0.04 if quantize_out else 1e-5 * max(1.0, float(np.abs(ref).max()))
    assert np.abs(out["y"] - ref).max() <= step * 1.0001                           # integer vs float rounding


@pytest.mark.parametrize("kw,message", [
    (dict(gemm_attrs={"alpha": 0.5}), r"node 'fc' \(Gemm\): alpha=0.5 is not supported"),
    (dict(gemm_attrs={"transA": 1}), r"node 'fc' \(Gemm\): transA=1 is not supported"),
])
def test_qdq_refusals(kw, message):
    with pytest.raises(CompileError, match=message):
        from_model(_qdq_model(True, True, **kw))
