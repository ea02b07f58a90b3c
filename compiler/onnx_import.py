"""ONNX -> compiler graph, for quantized int8 models.

Accepted: MatMulInteger and QLinearMatMul (int8 / uint8, per-tensor scales and zero points, or
B's scale per column (per-channel weights), 2-D and batched 3-D), ConvInteger and QLinearConv
(2-D, strides, pads, dilations, groups; per-channel weight scales), MaxPool, Flatten, Reshape,
Add, Mul (wrapping) and Relu and Clip on integer tensors (Clip fused after a MatMul's
requantize, else two VXM passes), QuantizeLinear / DequantizeLinear at the graph's boundary
(float work the host does), and the QDQ pattern

    DequantizeLinear(x), DequantizeLinear(w) -> MatMul | Gemm | Conv [-> Add bias] [-> Relu] [-> Clip] -> QuantizeLinear

with MaxPool, Flatten and Reshape inside QDQ (on the integer values) and AveragePool /
GlobalAveragePool inside QDQ as a depthwise convolution of ones requantized by sx / (k sy).

fused into integer work: (x - zx) @ (w - zw) in int32, plus the bias rounded to the
accumulator's scale sx*sw, ReLU on the accumulator, requantization by sx*sw/sy, and a Clip
(ReLU6) as a clamp of the result at Q(min) and Q(max). A float
MatMul/Gemm result that leaves the graph without QuantizeLinear is dequantized on the host
(acc * sx*sw). Everything else is refused, before any scheduling, with the node's name, its
op type and the reason.
"""
from __future__ import annotations

import numpy as np

from .graph import CompileError, Graph, TensorType, channel_axis

SUPPORTED = ("MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv", "Add", "Mul", "Relu", "Clip",
             "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Transpose", "Concat",
             "QuantizeLinear",
             "DequantizeLinear", "MatMul", "Gemm", "Conv")


def _scale(v):
    """A float (per tensor) or a float64 vector (per output column)."""
    v = np.asarray(v, np.float64)
    return float(v.reshape(())) if v.size == 1 else v.reshape(-1)


class _Deq:
    """A DequantizeLinear output kept symbolic: (int value - zp) * scale, per tensor, or for a
    constant (weights) with one scale per index of `axis` (one zero point)."""
    def __init__(self, value, scale, zp, label, axis=None):
        self.value, self.scale, self.zp, self.label, self.axis = value, _scale(scale), int(zp), label, axis


class _Acc:
    """A float MatMul/Gemm result kept as its exact int32 accumulator times `scale`, plus a
    pending int32 bias (a constant) that is added on the chip when ReLU or QuantizeLinear
    follows, or folded into the host's dequantization when the result leaves the graph."""
    def __init__(self, value, scale, label, bias=None, clip=None):
        self.value, self.scale, self.label, self.bias = value, _scale(scale), label, bias
        self.clip = clip            # (lo, hi) float bounds of a Clip, applied when quantized

    def flush(self, g: Graph) -> "_Acc":
        if self.bias is None:
            return self
        s = _wrap(self.label, "Add", lambda: g.add(self.value, self.bias, name=self.label + "/bias"))
        return _Acc(s, self.scale, self.label, clip=self.clip)


class _Sum:
    """A float Add of two dequantized tensors (a residual add), kept until its QuantizeLinear gives
    the output scale; `relu`: a Relu came between."""
    def __init__(self, a: _Deq, b: _Deq, label, relu=False):
        self.a, self.b, self.label, self.relu = a, b, label, relu


# operand positions that must be known when compiling (they become (M, s) and zero points)
PARAMETER_INPUTS = {"MatMulInteger": (2, 3), "QLinearMatMul": (1, 2, 4, 5, 6, 7), "Clip": (1, 2),
                    "ConvInteger": (2, 3), "QLinearConv": (1, 2, 4, 5, 6, 7), "Reshape": (1,),
                    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2)}


def _input_types():
    from onnx import TensorProto as P
    return {P.FLOAT, P.FLOAT16, P.INT8, P.UINT8, P.INT16, P.UINT16, P.INT32}


INPUT_TYPES = _input_types()


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
    for t in model.graph.initializer:
        if t.data_type not in INPUT_TYPES | {onnx.TensorProto.INT64}:
            raise CompileError(f"initializer {t.name!r}: element type {onnx.TensorProto.DataType.Name(t.data_type)} is "
                               f"not supported")
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
        if tt.elem_type not in INPUT_TYPES:
            raise CompileError(f"input {vi.name!r}: element type {onnx.TensorProto.DataType.Name(tt.elem_type)} is not "
                               f"supported (inputs are float32, float16, int8, uint8, int16, uint16 or int32)")
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
    g.outputs = [_materialize(g, names.get(o.name, o.name)) for o in model.graph.output]
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


def _repeated(consts, name, label, op, what):
    """A per-tensor value that may be given once per channel, all equal (a weight zero point)."""
    v = consts.get(name)
    if v is not None and v.size > 1 and len(np.unique(v)) == 1:
        return v.reshape(-1)[0]
    return _scalar(consts, name, label, op, what)


def _one_scale(x, label, op):
    """x, a DequantizeLinear output with one scale: what pooling, moving and joining take."""
    if not isinstance(x, _Deq) or isinstance(x.scale, np.ndarray):
        raise CompileError(f"node {label!r} ({op}): takes a dequantized int8/uint8 tensor with one scale")
    return x


def _per_column(consts, name, n, label, op, what):
    """A scale given per tensor (a float) or per column of B (float64 [n]: per-channel weights)."""
    if name not in consts:
        _scalar(consts, name, label, op, what)          # (the unbound-value error)
    v = np.asarray(consts[name], np.float64)
    if v.size == 1:
        return float(v.reshape(()))
    if v.ndim != 1 or v.size != n:
        raise CompileError(f"node {label!r} ({op}): {what} has shape {list(v.shape)}; per column it takes one value "
                           f"per column of B ({n})")
    return v


def _clip_bounds(n, ins, consts, label, kind):
    """Clip's (min, max): inputs 1 and 2 (opset 11 on, optional) or attributes (before)."""
    attrs = {a.name: a.f for a in n.attribute}
    lo, hi = attrs.get("min", -np.inf), attrs.get("max", np.inf)
    for i, which in ((1, "min"), (2, "max")):
        if len(ins) > i and ins[i]:
            v = _scalar(consts, ins[i], label, "Clip", which)
            if which == "min":
                lo = v
            else:
                hi = v
    if kind is int:         # integer bounds on an integer tensor (an infinite one: the type's end)
        return (int(lo) if np.isfinite(lo) else -(1 << 31)), (int(hi) if np.isfinite(hi) else 1 << 31)
    return float(lo), float(hi)


def _window_attrs(n, label, x_shape, kernel=None):
    """(kernel, strides, pads (top, left, bottom, right), dilations, group) of a Conv or pooling node,
    auto_pad resolved; ceil_mode and 3-D windows refused."""
    a = {x.name: x for x in n.attribute}
    op = n.op_type
    if len(x_shape) != 4:
        raise CompileError(f"node {label!r} ({op}): input shape {list(x_shape)}; 2-D windows over (N, C, H, W) only")
    if kernel is not None and "kernel_shape" in a and tuple(a["kernel_shape"].ints) != tuple(kernel):
        raise CompileError(f"node {label!r} ({op}): kernel_shape {list(a['kernel_shape'].ints)} does not match the "
                           f"weights' {list(kernel)}")
    kernel = tuple(kernel or a["kernel_shape"].ints)
    strides = tuple(a["strides"].ints) if "strides" in a else (1, 1)
    dil = tuple(a["dilations"].ints) if "dilations" in a else (1, 1)
    pads = tuple(a["pads"].ints) if "pads" in a else (0, 0, 0, 0)
    if len(kernel) != 2:
        raise CompileError(f"node {label!r} ({op}): a {len(kernel)}-D kernel; 2-D only")
    if "ceil_mode" in a and a["ceil_mode"].i:
        raise CompileError(f"node {label!r} ({op}): ceil_mode=1 is not supported")
    auto = a["auto_pad"].s.decode() if "auto_pad" in a else "NOTSET"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        p = []
        for size, k, st, d in zip(x_shape[2:], kernel, strides, dil):
            total = max(0, (-(-size // st) - 1) * st + d * (k - 1) + 1 - size)
            p.append((total // 2, total - total // 2) if auto == "SAME_UPPER" else (total - total // 2, total // 2))
        pads = (p[0][0], p[1][0], p[0][1], p[1][1])
    elif auto == "VALID":
        pads = (0, 0, 0, 0)
    # ONNX pads are (x1_begin, x2_begin, x1_end, x2_end): (top, left, bottom, right)
    return kernel, strides, pads, dil, a["group"].i if "group" in a else 1


def _avg_pool(g: Graph, n, label, x, shape):
    """AveragePool / GlobalAveragePool as a depthwise convolution with weights 1: the int32 sum of
    (x - zx) over the window (padding holds zx, so it counts as 0, and the divisor is the whole
    window: count_include_pad=1), to be requantized by sx / (k * sy) by the QuantizeLinear after."""
    a = {x.name: x for x in n.attribute}
    if n.op_type == "GlobalAveragePool":
        kernel, strides, pads, dil = tuple(shape[2:]), (1, 1), (0, 0, 0, 0), (1, 1)
    else:
        kernel, strides, pads, dil, _ = _window_attrs(n, label, shape)
        if any(pads) and not ("count_include_pad" in a and a["count_include_pad"].i):
            raise CompileError(f"node {label!r} (AveragePool): padding with count_include_pad=0 divides each pixel by "
                               f"another count; only count_include_pad=1 (or no padding) is supported")
    c = shape[1]
    w = g.constant(label + "/ones", np.ones((c, 1) + tuple(kernel), np.int8))
    acc = _wrap(label, n.op_type, lambda: g.conv(x.value, w, x.zp, 0, strides, pads, dil, c, name=label))
    return _Acc(acc, x.scale / (kernel[0] * kernel[1]), label)


def _move(g: Graph, n, label, x, ins, consts):
    """Flatten, Reshape or Transpose of the integer value x."""
    shape = g.types[x].shape
    if n.op_type == "Transpose":
        perm = next((tuple(a.ints) for a in n.attribute if a.name == "perm"), tuple(reversed(range(len(shape)))))
        return _wrap(label, n.op_type, lambda: g.transpose(x, perm, name=label))
    target = _reshape_target(g, n, label, ins, consts, shape)
    return _wrap(label, n.op_type, lambda: g.reshape(x, target, name=label))


def _reshape_target(g, n, label, ins, consts, shape):
    if n.op_type == "Flatten":
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1) % max(len(shape), 1)
        return (int(np.prod(shape[:axis], dtype=np.int64)), int(np.prod(shape[axis:], dtype=np.int64)))
    if ins[1] not in consts:
        raise CompileError(f"node {label!r} (Reshape): the shape must be known when compiling (an initializer)")
    target = [int(v) for v in consts[ins[1]].reshape(-1)]
    allowzero = next((a.i for a in n.attribute if a.name == "allowzero"), 0)
    target = [shape[i] if v == 0 and not allowzero else v for i, v in enumerate(target)]
    if target.count(-1) == 1:
        known = int(np.prod([v for v in target if v != -1], dtype=np.int64))
        target[target.index(-1)] = int(np.prod(shape, dtype=np.int64)) // max(known, 1)
    return tuple(target)


def _materialize(g: Graph, v):
    """A symbolic value that leaves the graph: dequantized on the host."""
    if isinstance(v, _Deq):
        scale = np.float32(v.scale)
        if v.axis is not None:                          # per axis: broadcast along it
            shape = [1] * len(g.types[v.value].shape)
            shape[v.axis] = scale.size
            scale = scale.reshape(shape)
        s = g.constant(v.label + "/scale", scale)
        z = g.constant(v.label + "/zero_point", np.asarray(v.zp, g.types[v.value].dtype))
        return g.host("dequantize", [v.value, s, z], TensorType(np.dtype(np.float32), g.types[v.value].shape),
                      v.label)
    if isinstance(v, _Sum):
        raise CompileError(f"node {v.label!r} (Add): a float Add of two tensors leaves the graph; the chip adds "
                           f"them inside a QDQ pattern (quantize the sum)")
    if isinstance(v, _Acc):
        if v.clip is not None:
            raise CompileError(f"node {v.label!r}: a Clip on a MatMul/Gemm result runs on the chip only before its "
                               f"QuantizeLinear; here the float result leaves the graph")
        s = g.constant(v.label + "/scale", np.float32(v.scale))
        zp = np.int32(0) if v.bias is None else -g.constants[v.bias]      # (acc - (-bias)) * scale
        z = g.constant(v.label + "/zero_point", zp)
        return g.host("dequantize", [v.value, s, z], TensorType(np.dtype(np.float32), g.types[v.value].shape),
                      v.label + "/dequantize")
    return v


def _float_in(g, v, label, op, what):
    if isinstance(v, (_Deq, _Acc, _Sum)):
        return v
    raise CompileError(f"node {label!r} ({op}): {what} is a float tensor that does not come from DequantizeLinear; "
                       f"float {op} runs only inside a QDQ pattern")


def _qdq(g: Graph, n, label, ins, consts):
    """The float ops of a QDQ pattern, on symbolic values (see the module docstring)."""
    op = n.op_type
    attrs = {a.name: a for a in n.attribute}
    if op in ("MatMul", "Gemm"):
        a = _float_in(g, ins[0], label, op, "input A")
        b = _float_in(g, ins[1], label, op, "input B")
        for x, which in ((a, "A"), (b, "B")):
            if not isinstance(x, _Deq):
                raise CompileError(f"node {label!r} ({op}): input {which} must be dequantized int8/uint8 (a MatMul "
                                   f"result feeds another MatMul only through QuantizeLinear)")
        if isinstance(a.scale, np.ndarray):
            raise CompileError(f"node {label!r} ({op}): input A has a scale per axis; per-channel scales are "
                               f"supported on the weights (B) only")
        trans_b = op == "Gemm" and attrs.get("transB") and attrs["transB"].i
        if isinstance(b.scale, np.ndarray) and b.axis != (0 if trans_b else 1):
            raise CompileError(f"node {label!r} ({op}): B's scales are per axis {b.axis}; per-channel weights take "
                               f"one scale per output column (axis {0 if trans_b else 1} here)")
        bval = b.value
        if op == "Gemm":
            if attrs.get("transA") and attrs["transA"].i:
                raise CompileError(f"node {label!r} (Gemm): transA=1 is not supported")
            for k in ("alpha", "beta"):
                if k in attrs and attrs[k].f != 1.0:
                    raise CompileError(f"node {label!r} (Gemm): {k}={attrs[k].f} is not supported (only 1.0)")
            if attrs.get("transB") and attrs["transB"].i:
                if bval not in g.constants:
                    raise CompileError(f"node {label!r} (Gemm): transB=1 needs constant weights")
                bval = g.constant(label + "/B_transposed", np.ascontiguousarray(g.constants[bval].T))
        acc = _wrap(label, op, lambda: g.matmul(a.value, bval, a.zp, b.zp, name=label))
        res = _Acc(acc, a.scale * b.scale, label)
        if op == "Gemm" and len(ins) > 2 and ins[2]:
            res = _bias(g, res, ins[2], label, op, consts)
        return res
    if op == "Conv":
        x = _float_in(g, ins[0], label, op, "input X")
        w = _float_in(g, ins[1], label, op, "input W")
        for v, which in ((x, "X"), (w, "W")):
            if not isinstance(v, _Deq):
                raise CompileError(f"node {label!r} (Conv): input {which} must be dequantized int8/uint8")
        if isinstance(x.scale, np.ndarray):
            raise CompileError(f"node {label!r} (Conv): input X has a scale per axis; per-channel scales are "
                               f"supported on the weights only")
        if isinstance(w.scale, np.ndarray) and w.axis != 0:
            raise CompileError(f"node {label!r} (Conv): W's scales are per axis {w.axis}; per-channel weights take "
                               f"one scale per output channel (axis 0)")
        kernel, strides, pads, dil, group = _window_attrs(n, label, g.types[x.value].shape,
                                                          g.types[w.value].shape[2:])
        acc = _wrap(label, op, lambda: g.conv(x.value, w.value, x.zp, w.zp, strides, pads, dil, group, name=label))
        res = _Acc(acc, x.scale * w.scale, label)
        if len(ins) > 2 and ins[2]:
            res = _bias(g, res, ins[2], label, op, consts)
        return res
    if op in ("AveragePool", "GlobalAveragePool"):
        x = _one_scale(_float_in(g, ins[0], label, op, "the input"), label, op)
        return _avg_pool(g, n, label, x, g.types[x.value].shape)
    if op in ("MaxPool", "Flatten", "Reshape", "Transpose"):
        # they commute with dequantizing (monotonic, scale > 0; or moving elements): the integer op
        # on the values, dequantized as they were
        x = _one_scale(_float_in(g, ins[0], label, op, "the input"), label, op)
        return _Deq(_convert(g, n, label, [x.value, *ins[1:]], consts), x.scale, x.zp, label)
    if op == "Concat":
        xs = [_one_scale(_float_in(g, x, label, op, "an input"), label, op) for x in ins]
        if len({(np.float32(x.scale), x.zp) for x in xs}) != 1:
            raise CompileError(f"node {label!r} (Concat): joins dequantized tensors of one scale and zero point "
                               f"(requantize them to a common one first)")
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        return _Deq(_wrap(label, op, lambda: g.concat([x.value for x in xs], axis, name=label)), xs[0].scale,
                    xs[0].zp, label)
    if op == "Add" and all(isinstance(x, _Deq) and x.value not in g.constants for x in ins):
        if any(isinstance(x.scale, np.ndarray) for x in ins) or g.types[ins[0].value].shape != \
                g.types[ins[1].value].shape:
            raise CompileError(f"node {label!r} (Add): a residual add takes two tensors of one shape, each with one "
                               f"scale")
        return _Sum(ins[0], ins[1], label)
    if op == "Add":
        accs = [x for x in ins if isinstance(x, _Acc)]
        if len(accs) != 1:
            raise CompileError(f"node {label!r} (Add): a float Add is supported as the bias of a MatMul/Gemm in a QDQ "
                               f"pattern (one input a MatMul result, the other a constant)")
        other = ins[1] if ins[0] is accs[0] else ins[0]
        return _bias(g, accs[0], other, label, op, consts)
    if op == "Relu":
        x = _float_in(g, ins[0], label, op, "the input")
        if isinstance(x, _Sum):
            return _Sum(x.a, x.b, x.label, relu=True)
        if not isinstance(x, _Acc):
            raise CompileError(f"node {label!r} (Relu): float Relu is supported on a MatMul/Gemm result in a QDQ pattern")
        x = x.flush(g)
        return _Acc(g.relu(x.value, name=label), x.scale, label, clip=x.clip)
    if op == "Clip":
        x = _float_in(g, ins[0], label, op, "the input")
        if not isinstance(x, _Acc):
            raise CompileError(f"node {label!r} (Clip): float Clip is supported on a MatMul/Gemm result in a QDQ "
                               f"pattern (before its QuantizeLinear)")
        lo, hi = _clip_bounds(n, ins, consts, label, float)
        if x.clip:
            lo, hi = max(lo, x.clip[0]), min(hi, x.clip[1])
        return _Acc(x.value, x.scale, x.label, bias=x.bias, clip=(lo, hi))
    if op == "QuantizeLinear":
        x = ins[0]

        def out_params():
            """(y_scale, y_zero_point), read where each case needs them (so a case's own refusal comes first)."""
            return (float(_scalar(consts, ins[1], label, op, "y_scale")),
                    _scalar(consts, ins[2], label, op, "y_zero_point") if len(ins) > 2 and ins[2] else np.uint8(0))
        if isinstance(x, _Deq) and not isinstance(x.scale, np.ndarray):
            sy, zy = out_params()
            if np.float32(sy) == np.float32(x.scale) and int(zy) == x.zp and zy.dtype == g.types[x.value].dtype:
                return x.value              # Q(DQ(q)) with the same scale and zero point: q itself
        if isinstance(x, _Sum):
            return _residual(g, x, *out_params(), label)
        if not isinstance(x, _Acc):
            raise CompileError(f"node {label!r} (QuantizeLinear): quantizes a dequantized tensor again; only a "
                               f"MatMul/Gemm result (or a graph input, on the host) can be quantized")
        x = x.flush(g)
        sy, zy = out_params()
        name = label if x.clip is None else label + "/requantize"
        y = _wrap(label, op, lambda: g.requantize(x.value, x.scale / sy, int(zy), zy.dtype, name=name))
        if x.clip is None:
            return y
        # QuantizeLinear is monotonic: Q(clip(v, lo, hi)) = clip(Q(v), Q(lo), Q(hi))
        q = [np.rint(b / sy) + int(zy) if np.isfinite(b) else b for b in x.clip]
        info = np.iinfo(zy.dtype)
        lo, hi = (int(np.clip(v, info.min, info.max)) for v in q)
        return _wrap(label, op, lambda: g.clip(y, lo, hi, name=label))
    raise AssertionError(op)


RESIDUAL_WEIGHT = 64        # the identity weight: (x - zx) * 64 exact in int32, so REQUANT's scale stays < 1


def _residual(g: Graph, s: _Sum, sy: float, zy, label):
    """Q(sa (a - za) + sb (b - zb)) in integers: each operand's (x - zx) * 64 exactly on the MXM
    (identity weights 64: a MatMul, or a depthwise 1x1 convolution of an image), requantized by
    s_x * 2**f / (64 sy) to int16 on the VXM (f fraction bits, as many as keep the sum within
    2**14), the two added in int16, then rounded by 2**f and offset by zy (round_shift). Each term
    is off by at most 2**-(f+1) before the last rounding, so the result is float's within a step
    (ties aside)."""
    sa, sb = s.a.scale / sy, s.b.scale / sy
    room = (2 ** 14 - RESIDUAL_WEIGHT) / (255.0 * (sa + sb))
    if room < 2:
        raise CompileError(f"node {s.label!r} (Add): scales {s.a.scale:g} and {s.b.scale:g} against an output scale "
                           f"{sy:g} leave no room for a fraction bit in int16")
    f = min(int(np.floor(np.log2(room))), 14)
    terms = []
    for k, x in enumerate((s.a, s.b)):
        shape = g.types[x.value].shape
        c = shape[-1] if len(shape) == 2 else shape[1] if len(shape) == 4 else None
        if c is None:
            raise CompileError(f"node {s.label!r} (Add): a residual add of {len(shape)}-D tensors; 2-D or (N, C, H, W)")
        if len(shape) == 2:
            w = g.constant(f"{s.label}/identity{k}", (RESIDUAL_WEIGHT * np.eye(c)).astype(np.int8))
            acc = g.matmul(x.value, w, x.zp, 0, name=f"{s.label}/rescale{k}")
        else:
            w = g.constant(f"{s.label}/identity{k}", np.full((c, 1, 1, 1), RESIDUAL_WEIGHT, np.int8))
            acc = g.conv(x.value, w, x.zp, 0, group=c, name=f"{s.label}/rescale{k}")
        scale = (x.scale / sy) * 2 ** f / RESIDUAL_WEIGHT
        terms.append(_wrap(label, "Add", lambda acc=acc, scale=scale, k=k: g.requantize(
            acc, scale, 0, np.int16, name=f"{s.label}/term{k}")))
    total = g.add(terms[0], terms[1], name=f"{s.label}/sum")
    y = _wrap(label, "QuantizeLinear", lambda: g.round_shift(total, f, int(zy), zy.dtype, name=label))
    if s.relu and int(zy) > np.iinfo(zy.dtype).min:
        y = g.clip(y, int(zy), np.iinfo(zy.dtype).max, name=f"{label}/relu")
    return y


def _bias(g: Graph, acc: _Acc, c, label, op, consts):
    """The bias of a QDQ MatMul/Gemm, rounded to the accumulator's scale (exact when it is
    DequantizeLinear of int32 with scale sx*sw and zero point 0, as quantizers emit it)."""
    if isinstance(c, _Deq) and c.value in g.constants:
        real = (g.constants[c.value].astype(np.float64) - c.zp) * c.scale
    elif isinstance(c, str) and c in consts and consts[c].dtype.kind == "f":
        real = consts[c].astype(np.float64)
    else:
        raise CompileError(f"node {label!r} ({op}): the bias must be a constant (float, or DequantizeLinear of a "
                           f"constant)")
    q = np.round(real / acc.scale)
    if np.any(np.abs(q) >= 2 ** 31):
        raise CompileError(f"node {label!r} ({op}): the bias does not fit in int32 at the accumulator's scale")
    shape = g.types[acc.value].shape
    ax = channel_axis(shape)
    N = shape[ax]
    if not (q.size == 1 or (q.size == N and q.shape[-1] == N)):
        raise CompileError(f"node {label!r} ({op}): the bias has shape {q.shape}; one value per output channel "
                           f"({N}) or one for all is supported")
    acc = acc.flush(g)
    along = [1] * (len(shape) - ax - 1)                 # a convolution's bias runs along axis 1
    b = g.constant(label + "/bias_int32", np.broadcast_to(q.reshape(-1), (N,)).astype(np.int32).reshape(N, *along))
    return _Acc(acc.value, acc.scale, label, bias=b)


def _convert(g: Graph, n, label, ins, consts) -> str:
    op = n.op_type
    if op in ("MatMul", "Gemm", "Conv") or any(isinstance(x, (_Deq, _Acc, _Sum)) for x in ins):
        if op == "DequantizeLinear":
            raise CompileError(f"node {label!r} (DequantizeLinear): its input is already a float tensor")
        return _qdq(g, n, label, ins, consts)
    if op == "MatMulInteger":
        a_zp = int(_scalar(consts, ins[2], label, op, "a_zero_point")) if len(ins) > 2 and ins[2] else 0
        b_zp = int(_scalar(consts, ins[3], label, op, "b_zero_point")) if len(ins) > 3 and ins[3] else 0
        return _wrap(label, op, lambda: g.matmul(ins[0], ins[1], a_zp, b_zp, name=label))
    if op == "QLinearMatMul":
        a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = ins
        sa, sy = (float(_scalar(consts, x, label, op, w)) for x, w in ((a_s, "a_scale"), (y_s, "y_scale")))
        sb = _per_column(consts, b_s, g.types[b].shape[-1], label, op, "b_scale")
        za, zb, zy = (_scalar(consts, x, label, op, w) for x, w in ((a_zp, "a_zero_point"), (b_zp, "b_zero_point"),
                                                                    (y_zp, "y_zero_point")))
        acc = _wrap(label, op, lambda: g.matmul(a, b, int(za), int(zb), name=label + "/matmul"))
        return _wrap(label, op, lambda: g.requantize(acc, sa * sb / sy, int(zy), zy.dtype, name=label))
    if op in ("ConvInteger", "QLinearConv"):
        q = op == "QLinearConv"
        x, w = (ins[0], ins[3]) if q else (ins[0], ins[1])
        zx_i, zw_i = (2, 5) if q else (2, 3)
        zx = int(_scalar(consts, ins[zx_i], label, op, "x_zero_point")) if len(ins) > zx_i and ins[zx_i] else 0
        zw = int(_repeated(consts, ins[zw_i], label, op, "w_zero_point")) if len(ins) > zw_i and ins[zw_i] else 0
        kernel, strides, pads, dil, group = _window_attrs(n, label, g.types[x].shape, g.types[w].shape[2:])
        acc = _wrap(label, op, lambda: g.conv(x, w, zx, zw, strides, pads, dil, group,
                                              name=label + "/conv" if q else label))
        if not q:
            return acc
        oc = g.types[w].shape[0]
        sx, sy = (float(_scalar(consts, ins[i], label, op, what)) for i, what in ((1, "x_scale"), (6, "y_scale")))
        sw = _per_column(consts, ins[4], oc, label, op, "w_scale")
        zy = _scalar(consts, ins[7], label, op, "y_zero_point")
        if len(ins) > 8 and ins[8]:
            if ins[8] not in consts:
                raise CompileError(f"node {label!r} (QLinearConv): the bias B must be a constant")
            bias = g.constant(label + "/bias", consts[ins[8]].astype(np.int32).reshape(oc, 1, 1))
            acc = _wrap(label, op, lambda: g.add(acc, bias, name=label + "/bias"))
        return _wrap(label, op, lambda: g.requantize(acc, sx * sw / sy, int(zy), zy.dtype, name=label))
    if op == "MaxPool":
        if len(n.output) > 1 and n.output[1]:
            raise CompileError(f"node {label!r} (MaxPool): the Indices output is not supported")
        kernel, strides, pads, dil, _ = _window_attrs(n, label, g.types[ins[0]].shape)
        return _wrap(label, op, lambda: g.maxpool(ins[0], kernel, strides, pads, dil, name=label))
    if op in ("AveragePool", "GlobalAveragePool"):
        raise CompileError(f"node {label!r} ({op}): an integer average pools only inside a QDQ pattern "
                           f"(DequantizeLinear -> {op} -> QuantizeLinear), which gives its rounding")
    if op in ("Flatten", "Reshape", "Transpose"):
        return _move(g, n, label, ins[0], ins, consts)
    if op == "Concat":
        axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
        return _wrap(label, op, lambda: g.concat(ins, axis, name=label))
    if op == "Add":
        return _wrap(label, op, lambda: g.add(ins[0], ins[1], name=label))
    if op == "Mul":
        return _wrap(label, op, lambda: g.mul(ins[0], ins[1], name=label))
    if op == "Clip":
        if g.types[ins[0]].dtype.kind == "f":
            raise CompileError(f"node {label!r} (Clip): input is {g.types[ins[0]].dtype}; float Clip is supported on "
                               f"a MatMul/Gemm result in a QDQ pattern (before its QuantizeLinear)")
        lo, hi = _clip_bounds(n, ins, consts, label, int)
        return _wrap(label, op, lambda: g.clip(ins[0], lo, hi, name=label))
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
    if zp.dtype not in (np.int8, np.uint8, np.int16, np.uint16, np.int32) or scale.dtype.kind != "f":
        raise CompileError(f"node {label!r} ({op}): scale {scale.dtype} / zero point {zp.dtype} types are not supported "
                           f"(float scales, 8/16-bit integer or int32 zero points)")
    if zp.size not in (1, scale.size):
        raise CompileError(f"node {label!r} ({op}): {scale.size} scales but {zp.size} zero points")
    if scale.ndim == 1 and len(shape) > 1:              # per axis: broadcast along `axis`
        bshape = [1] * len(shape)
        bshape[axis % len(shape)] = scale.size
        if scale.size != shape[axis % len(shape)]:
            raise CompileError(f"node {label!r} ({op}): {scale.size} scales for axis {axis} of length "
                               f"{shape[axis % len(shape)]}")
        scale, zp = scale.reshape(bshape), np.broadcast_to(zp.reshape(-1), (scale.size,)).reshape(bshape)
    if op == "DequantizeLinear" and g.types[x].dtype in (np.int8, np.uint8, np.int32) and len(np.unique(zp)) == 1:
        if scale.size == 1:
            return _Deq(x, scale.reshape(()), zp.reshape(-1)[0], label)
        if x in g.constants and len(shape) <= 2:        # per-channel weights (or a per-channel int32 bias)
            return _Deq(x, scale.reshape(-1), zp.reshape(-1)[0], label, axis % 2 if len(shape) == 2 else None)
        if x in g.constants and len(shape) == 4 and axis % 4 == 0:      # per-output-channel conv weights
            return _Deq(x, scale.reshape(-1), zp.reshape(-1)[0], label, 0)
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
