"""ONNX -> compiler graph, for quantized int8 models.

Accepted: MatMulInteger and QLinearMatMul (int8 / uint8, per-tensor scales and zero points,
2-D and batched 3-D), Add and Relu on integer tensors, and QuantizeLinear / DequantizeLinear
at the graph's boundary (float work the host does). Everything else is refused, before any
scheduling, with the node's name, its op type and the reason.
"""
from __future__ import annotations

import numpy as np

from .graph import CompileError, Graph, TensorType

SUPPORTED = ("MatMulInteger", "QLinearMatMul", "Add", "Relu", "QuantizeLinear", "DequantizeLinear")


# operand positions that must be known when compiling (they become (M, s) and zero points)
PARAMETER_INPUTS = {"MatMulInteger": (2, 3), "QLinearMatMul": (1, 2, 4, 5, 6, 7),
                    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2)}


def load(path, bind: dict | None = None) -> Graph:
    import onnx
    try:
        model = onnx.load(str(path))
    except Exception as e:                              # noqa: BLE001 (protobuf raises several kinds)
        raise CompileError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    return from_model(model, bind)


def from_model(model, bind: dict | None = None) -> Graph:
    """`bind`: values for graph inputs that feed scale / zero-point operands (as the ONNX node
    tests have them); those inputs become compile-time constants and leave the input list."""
    import onnx
    from onnx import numpy_helper
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise CompileError(f"malformed ONNX model: {str(e).splitlines()[0]}") from None
    g = Graph()
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    params = {n.input[i] for n in model.graph.node for i in PARAMETER_INPUTS.get(n.op_type, ())
              if i < len(n.input) and n.input[i]}
    for name, value in (bind or {}).items():
        if name in params and name not in consts:
            consts[name] = np.asarray(value)
    for name, v in consts.items():
        g.constant(name, v)
    for vi in model.graph.input:
        if vi.name in consts:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        if any(d is None for d in dims):
            raise CompileError(f"input {vi.name!r}: shape {dims} has a symbolic dimension; the compiler needs fixed shapes")
        g.input(vi.name, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type), dims)
    names = {}                                          # ONNX value name -> graph value name
    for n in model.graph.node:
        label = n.name or f"{n.op_type}_{len(names)}"
        if n.op_type not in SUPPORTED:
            raise CompileError(f"node {label!r} ({n.op_type}): unsupported operation; the compiler takes "
                               f"{', '.join(SUPPORTED)}")
        if n.domain not in ("", "ai.onnx"):
            raise CompileError(f"node {label!r} ({n.op_type}): domain {n.domain!r} is not supported")
        ins = [names.get(i, i) if i else "" for i in n.input]
        out = _convert(g, n, label, ins, consts)
        names[n.output[0]] = out
    g.outputs = [names.get(o.name, o.name) for o in model.graph.output]
    g.output_names = [o.name for o in model.graph.output]
    return g


def _scalar(consts, name, label, op, what):
    if name not in consts:
        raise CompileError(f"node {label!r} ({op}): {what} must be known when compiling: an initializer, or a "
                           f"graph input bound from the inputs file")
    v = consts[name]
    if v.size != 1:
        raise CompileError(f"node {label!r} ({op}): {what} has {v.size} values; only per-tensor (scalar) is supported")
    return v.reshape(())


def _convert(g: Graph, n, label, ins, consts) -> str:
    op = n.op_type
    if op == "MatMulInteger":
        a_zp = int(_scalar(consts, ins[2], label, op, "a_zero_point")) if len(ins) > 2 and ins[2] else 0
        b_zp = int(_scalar(consts, ins[3], label, op, "b_zero_point")) if len(ins) > 3 and ins[3] else 0
        return _wrap(label, op, lambda: g.matmul(ins[0], ins[1], a_zp, b_zp, name=label))
    if op == "QLinearMatMul":
        a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = ins
        sa, sb, sy = (float(_scalar(consts, x, label, op, w)) for x, w in ((a_s, "a_scale"), (b_s, "b_scale"),
                                                                           (y_s, "y_scale")))
        za, zb, zy = (_scalar(consts, x, label, op, w) for x, w in ((a_zp, "a_zero_point"), (b_zp, "b_zero_point"),
                                                                    (y_zp, "y_zero_point")))
        acc = _wrap(label, op, lambda: g.matmul(a, b, int(za), int(zb), name=label + "/matmul"))
        return _wrap(label, op, lambda: g.requantize(acc, sa * sb / sy, int(zy), zy.dtype, name=label))
    if op == "Add":
        return _wrap(label, op, lambda: g.add(ins[0], ins[1], name=label))
    if op == "Relu":
        if g.types[ins[0]].dtype.kind not in "iu":
            raise CompileError(f"node {label!r} (Relu): input is {g.types[ins[0]].dtype}; the chip runs Relu on integers "
                               f"(float Relu belongs inside a QDQ pattern)")
        return g.relu(ins[0], name=label)
    # QuantizeLinear / DequantizeLinear: float work at the boundary, done by the host
    x, s = ins[0], ins[1]
    if s not in consts or (len(ins) > 2 and ins[2] and ins[2] not in consts):
        raise CompileError(f"node {label!r} ({op}): scale and zero point must be known when compiling: "
                           f"initializers, or graph inputs bound from the inputs file")
    axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
    if any(a.name == "block_size" and a.i for a in n.attribute):
        raise CompileError(f"node {label!r} ({op}): blocked quantization is not supported")
    shape = g.types[x].shape
    scale = consts[s]
    zp = consts[ins[2]] if len(ins) > 2 and ins[2] else np.zeros((), np.uint8 if op == "QuantizeLinear" else g.types[x].dtype)
    if scale.ndim == 1 and len(shape) > 1:              # per axis: broadcast along `axis`
        bshape = [1] * len(shape)
        bshape[axis % len(shape)] = scale.size
        scale, zp = scale.reshape(bshape), zp.reshape(bshape)
    sname, zname = g.constant(label + "/scale", scale), g.constant(label + "/zero_point", zp)
    if op == "QuantizeLinear":
        if zp.dtype not in (np.int8, np.uint8, np.int16, np.uint16):
            raise CompileError(f"node {label!r} (QuantizeLinear): output type {zp.dtype} is not supported")
        return g.host("quantize", [x, sname, zname], TensorType(zp.dtype, shape), label)
    return g.host("dequantize", [x, sname, zname], TensorType(np.dtype(np.float32), shape), label)


def _wrap(label, op, build):
    try:
        return build()
    except CompileError as e:
        raise CompileError(str(e).replace(f"node {label!r} (", f"node {label!r} ({op} -> ", 1)) from None
