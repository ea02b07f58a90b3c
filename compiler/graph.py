"""The compiler's graph: integer tensors and the operations the chip runs, with exact semantics.

A `Graph` is built with the small API below (or by compiler/onnx_import.py). `evaluate` runs it
with numpy using the same integer arithmetic as the chip (requantization through isa.quant), so
it is the reference the scheduled program must reproduce bit for bit. Host operations (float
quantize / dequantize at a graph's boundary) are marked as such: they run on the host.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isa import quant

INT_DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32)
# run by the host around the chip's work: float boundaries, and a batch's rows sliced and joined
# for micro-batches (compiler/microbatch.py)
HOST_OPS = ("quantize", "dequantize", "rows", "concat")


class CompileError(ValueError):
    """A model the compiler cannot take: the message names the node, its op and the reason."""


@dataclass(frozen=True)
class TensorType:
    dtype: np.dtype
    shape: tuple[int, ...]


@dataclass
class Node:
    op: str                      # matmul, conv, add, mul, relu, requantize, clip, maxpool, reshape, transpose,
                                 # join; on the host: quantize, dequantize, rows, concat
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict = field(default_factory=dict)

    @property
    def on_host(self) -> bool:
        return self.op in HOST_OPS


@dataclass
class Graph:
    inputs: dict[str, TensorType] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    types: dict[str, TensorType] = field(default_factory=dict)

    # ---- building -------------------------------------------------------------------------
    def input(self, name: str, dtype, shape) -> str:
        t = TensorType(np.dtype(dtype), tuple(int(s) for s in shape))
        self.inputs[name] = self.types[name] = t
        return name

    def constant(self, name: str, value) -> str:
        value = np.asarray(value)
        self.constants[name] = value
        self.types[name] = TensorType(value.dtype, value.shape)
        return name

    def _add(self, op, name, inputs, out_type, **attrs) -> str:
        out = f"{name}:0"
        self.nodes.append(Node(op, name, list(inputs), [out], attrs))
        self.types[out] = out_type
        return out

    def matmul(self, a: str, b: str, a_zp: int = 0, b_zp: int = 0, name: str | None = None) -> str:
        """(a - a_zp) @ (b - b_zp) in int32; a, b int8 or uint8, 2-D or batched 3-D (numpy rules)."""
        name = name or f"matmul{len(self.nodes)}"
        ta, tb = self.types[a], self.types[b]
        for t, which in ((ta, "A"), (tb, "B")):
            if t.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
                raise CompileError(f"node {name!r} (matmul): input {which} is {t.dtype}; the MXM takes int8 or uint8")
        try:
            shape = np.matmul(np.zeros(ta.shape, np.int8), np.zeros(tb.shape, np.int8)).shape
        except ValueError as e:
            raise CompileError(f"node {name!r} (matmul): shapes {ta.shape} and {tb.shape} do not multiply ({e})") from None
        return self._add("matmul", name, [a, b], TensorType(np.dtype(np.int32), shape), a_zp=int(a_zp), b_zp=int(b_zp))

    def conv(self, x: str, w: str, x_zp: int = 0, w_zp: int = 0, strides=(1, 1), pads=(0, 0, 0, 0),
             dilations=(1, 1), group: int = 1, name: str | None = None) -> str:
        """2-D convolution in int32: x (N, C, H, W) int8 / uint8, w (OC, C/group, KH, KW) int8 / uint8
        (a constant or an input: the host loads the weights); padding holds x_zp (it contributes 0),
        pads = (top, left, bottom, right)."""
        name = name or f"conv{len(self.nodes)}"
        tx, tw = self.types[x], self.types[w]
        for t, which in ((tx, "X"), (tw, "W")):
            if t.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
                raise CompileError(f"node {name!r} (conv): input {which} is {t.dtype}; the MXM takes int8 or uint8")
        if len(tx.shape) != 4 or len(tw.shape) != 4:
            raise CompileError(f"node {name!r} (conv): 2-D convolutions only (X {list(tx.shape)}, W {list(tw.shape)})")
        n, c, h, wd = tx.shape
        oc, cg, kh, kw = tw.shape
        group = int(group)
        if group < 1 or c % group or oc % group or cg != c // group:
            raise CompileError(f"node {name!r} (conv): {c} input and {oc} output channels do not split into {group} "
                               f"groups of W's {cg} input channels")
        _, strides, pads, dilations, (oh, ow) = _window(name, "conv", (h, wd), (kh, kw), strides, pads, dilations)
        return self._add("conv", name, [x, w], TensorType(np.dtype(np.int32), (n, oc, oh, ow)), x_zp=int(x_zp),
                         w_zp=int(w_zp), strides=strides, pads=pads, dilations=dilations, group=group)

    def maxpool(self, x: str, kernel, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
                name: str | None = None) -> str:
        """2-D max pooling of x (N, C, H, W) int8 / uint8; padding never wins (the type's minimum)."""
        name = name or f"maxpool{len(self.nodes)}"
        t = self.types[x]
        if t.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)) or len(t.shape) != 4:
            raise CompileError(f"node {name!r} (maxpool): input is {t.dtype}{list(t.shape)}; the chip pools int8 / "
                               f"uint8 (N, C, H, W) tensors")
        n, c, h, w = t.shape
        kernel, strides, pads, dilations, (oh, ow) = _window(name, "maxpool", (h, w), kernel, strides, pads, dilations)
        return self._add("maxpool", name, [x], TensorType(t.dtype, (n, c, oh, ow)), kernel=kernel, strides=strides,
                         pads=pads, dilations=dilations)

    def reshape(self, x: str, shape, name: str | None = None) -> str:
        """The same elements in another shape (row-major order, as numpy and ONNX)."""
        name = name or f"reshape{len(self.nodes)}"
        t = self.types[x]
        shape = tuple(int(v) for v in shape)
        if int(np.prod(shape, dtype=np.int64)) != int(np.prod(t.shape, dtype=np.int64)):
            raise CompileError(f"node {name!r} (reshape): {list(t.shape)} has {int(np.prod(t.shape))} elements, "
                               f"{list(shape)} has {int(np.prod(shape))}")
        return self._add("reshape", name, [x], TensorType(t.dtype, shape), shape=shape)

    def transpose(self, x: str, perm, name: str | None = None) -> str:
        """The axes of x permuted (numpy's transpose, ONNX's perm)."""
        name = name or f"transpose{len(self.nodes)}"
        t = self.types[x]
        perm = tuple(int(v) for v in perm)
        if sorted(perm) != list(range(len(t.shape))):
            raise CompileError(f"node {name!r} (transpose): perm {list(perm)} is not a permutation of "
                               f"{len(t.shape)} axes")
        return self._add("transpose", name, [x], TensorType(t.dtype, tuple(t.shape[i] for i in perm)), perm=perm)

    def concat(self, xs, axis: int, name: str | None = None) -> str:
        """The tensors joined along `axis` (equal types, equal other dimensions)."""
        name = name or f"concat{len(self.nodes)}"
        ts = [self.types[x] for x in xs]
        try:
            shape = np.concatenate([np.zeros(t.shape, np.int8) for t in ts], axis=axis).shape
        except (ValueError, np.exceptions.AxisError) as e:
            raise CompileError(f"node {name!r} (concat): {[list(t.shape) for t in ts]} do not join on axis {axis} "
                               f"({e})") from None
        if len({t.dtype for t in ts}) != 1:
            raise CompileError(f"node {name!r} (concat): inputs are {[str(t.dtype) for t in ts]}; one type")
        return self._add("join", name, list(xs), TensorType(ts[0].dtype, shape), axis=int(axis) % len(shape))

    def add(self, a: str, b: str, name: str | None = None) -> str:
        """a + b, wrapping, for equal integer dtypes (numpy broadcasting)."""
        name = name or f"add{len(self.nodes)}"
        ta, tb = self.types[a], self.types[b]
        if ta.dtype != tb.dtype or ta.dtype not in [np.dtype(d) for d in INT_DTYPES]:
            raise CompileError(f"node {name!r} (add): inputs are {ta.dtype} and {tb.dtype}; the VXM adds equal integer types")
        shape = np.broadcast_shapes(ta.shape, tb.shape)
        return self._add("add", name, [a, b], TensorType(ta.dtype, shape))

    def mul(self, a: str, b: str, name: str | None = None) -> str:
        """a * b, wrapping (the low bits of the product), for equal integer dtypes."""
        name = name or f"mul{len(self.nodes)}"
        ta, tb = self.types[a], self.types[b]
        if ta.dtype != tb.dtype or ta.dtype not in [np.dtype(d) for d in INT_DTYPES]:
            raise CompileError(f"node {name!r} (mul): inputs are {ta.dtype} and {tb.dtype}; the VXM multiplies equal "
                               f"integer types")
        shape = np.broadcast_shapes(ta.shape, tb.shape)
        return self._add("mul", name, [a, b], TensorType(ta.dtype, shape))

    def clip(self, x: str, lo: int, hi: int, name: str | None = None) -> str:
        """min(max(x, lo), hi) for an int8 / uint8 x: on the chip, fused after a MatMul's requantize
        (ReLU6 and the like in a QDQ pattern)."""
        name = name or f"clip{len(self.nodes)}"
        t = self.types[x]
        if t.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise CompileError(f"node {name!r} (clip): input is {t.dtype}; the chip clips int8 / uint8 values")
        info = np.iinfo(t.dtype)
        lo, hi = max(int(lo), info.min), min(int(hi), info.max)
        if lo > hi:
            raise CompileError(f"node {name!r} (clip): bounds {lo}..{hi} are empty")
        return self._add("clip", name, [x], t, lo=lo, hi=hi)

    def round_shift(self, x: str, bits: int, zero_point: int, dtype, name: str | None = None) -> str:
        """int16 -> int8 / uint8: saturate(((x + 2**(bits-1)) >> bits) + zero_point), the additions
        wrapping in int16 as the VXM's do: x / 2**bits rounded half up, the last step of a residual
        add across scales (onnx_import.py)."""
        name = name or f"round_shift{len(self.nodes)}"
        dtype = np.dtype(dtype)
        if self.types[x].dtype != np.dtype(np.int16):
            raise CompileError(f"node {name!r} (round_shift): input is {self.types[x].dtype}, not int16")
        if dtype not in (np.dtype(np.int8), np.dtype(np.uint8)) or not 1 <= int(bits) <= 15:
            raise CompileError(f"node {name!r} (round_shift): {bits} bits to {dtype}; 1..15 bits to int8 or uint8")
        info = np.iinfo(dtype)
        if not info.min <= int(zero_point) <= info.max:
            raise CompileError(f"node {name!r} (round_shift): zero point {int(zero_point)} is outside {dtype}")
        return self._add("round_shift", name, [x], TensorType(dtype, self.types[x].shape), bits=int(bits),
                         zero_point=int(zero_point), dtype=dtype.str)

    def relu(self, x: str, name: str | None = None) -> str:
        name = name or f"relu{len(self.nodes)}"
        return self._add("relu", name, [x], self.types[x])

    def requantize(self, x: str, scale, zero_point: int, dtype, name: str | None = None) -> str:
        """int32 -> int8 / uint8 / int16: saturate(rounding_shift(x * M, 31 + s) + zp), (M, s) from `scale`:
        one scale, or one per channel (the last axis, or axis 1 of an (N, C, H, W) image: M and s
        become constant inputs `name/multiplier` and `name/shift`, int32 per channel)."""
        name = name or f"requantize{len(self.nodes)}"
        dtype = np.dtype(dtype)
        if self.types[x].dtype != np.dtype(np.int32):
            raise CompileError(f"node {name!r} (requantize): input is {self.types[x].dtype}, not int32")
        if dtype not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)):
            raise CompileError(f"node {name!r} (requantize): output {dtype} is not int8, uint8 or int16")
        info = np.iinfo(dtype)
        if not info.min <= int(zero_point) <= info.max:
            raise CompileError(f"node {name!r} (requantize): zero point {int(zero_point)} is outside {dtype} "
                               f"[{info.min}, {info.max}]")
        scale = np.asarray(scale, np.float64)
        shape = self.types[x].shape
        try:
            if scale.size == 1:
                m, s = quant.quantize_multiplier(float(scale.reshape(())))
                return self._add("requantize", name, [x], TensorType(dtype, shape),
                                 multiplier=m, shift=s, zero_point=int(zero_point), dtype=dtype.str)
            if scale.ndim != 1 or scale.size != shape[channel_axis(shape)]:
                raise CompileError(f"node {name!r} (requantize): {scale.size} scales for "
                                   f"{shape[channel_axis(shape)]} channels")
            ms = [quant.quantize_multiplier(float(v)) for v in scale]
        except quant.QuantError as e:
            raise CompileError(f"node {name!r} (requantize): {e}") from None
        mc = self.constant(f"{name}/multiplier", np.array([m for m, _ in ms], np.int32))
        sc = self.constant(f"{name}/shift", np.array([s for _, s in ms], np.int32))
        return self._add("requantize", name, [x, mc, sc], TensorType(dtype, shape), zero_point=int(zero_point),
                         dtype=dtype.str)

    def host(self, op: str, inputs, out_type: TensorType, name: str, **attrs) -> str:
        return self._add(op, name, inputs, out_type, **attrs)

    # ---- the reference ------------------------------------------------------------------
    def evaluate(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env = dict(self.constants)
        for name, t in self.inputs.items():
            if name not in feeds:
                raise CompileError(f"input {name!r} is missing")
            v = np.asarray(feeds[name])
            if v.dtype != t.dtype or v.shape != t.shape:
                raise CompileError(f"input {name!r}: got {v.dtype}{list(v.shape)}, the model takes {t.dtype}{list(t.shape)}")
            env[name] = v
        for n in self.nodes:
            args = [env[i] for i in n.inputs]
            env[n.outputs[0]] = _EVAL[n.op](n, *args)
        return {o: env[o] for o in self.outputs}


def channel_axis(shape) -> int:
    """The axis the chip holds across the lanes: 1 of an (N, C, H, W) image (held channels-last,
    compiler/layout.py), else the last."""
    return 1 if len(shape) == 4 else len(shape) - 1


def _window(name: str, op: str, hw, kernel, strides, pads, dilations):
    """(kernel, strides, pads, dilations as int tuples, the output's (height, width)) of a 2-D
    window over an image of `hw`; refused when they are not positive or the window does not fit."""
    kernel, strides, dilations = (tuple(int(v) for v in a) for a in (kernel, strides, dilations))
    pads = tuple(int(v) for v in pads)
    if min(kernel + strides + dilations) < 1 or min(pads) < 0:
        raise CompileError(f"node {name!r} ({op}): kernel {kernel}, strides {strides}, dilations {dilations} and "
                           f"pads {pads} must be positive")
    out = tuple((size + pads[i] + pads[i + 2] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
                for i, size in enumerate(hw))
    if min(out) < 1:
        raise CompileError(f"node {name!r} ({op}): the {kernel[0]}x{kernel[1]} kernel does not fit the "
                           f"{hw[0]}x{hw[1]} input")
    return kernel, strides, pads, dilations, out


def _saturate(x, dtype):
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def _matmul(n, a, b):
    return np.matmul(a.astype(np.int64) - n.attrs["a_zp"], b.astype(np.int64) - n.attrs["b_zp"]).astype(np.int32)


def _requantize(n, x, m=None, s=None):
    """(m, s: the per-column constants of a per-channel requantize; else the node's own.)"""
    a = n.attrs
    along = [1] * (x.ndim - channel_axis(x.shape) - 1)       # per channel: along the channel axis
    m = np.int64(a["multiplier"]) if m is None else np.asarray(m, np.int64).reshape(-1, *along)
    s = np.int64(a["shift"]) if s is None else np.asarray(s, np.int64).reshape(-1, *along)
    y = (x.astype(np.int64) * m + (np.int64(1) << (30 + s))) >> (31 + s)
    return y + a["zero_point"]


def _round_shift(n, x):
    """As the VXM runs it: int16 ADD of the half (wrapping), arithmetic shift right, int16 ADD of
    the stored zero point (uint8 results are stored less 128), saturating CVT to int8."""
    a = n.attrs
    off = 128 if np.dtype(a["dtype"]) == np.uint8 else 0

    def wrap(v):
        return ((v + (1 << 15)) & 0xFFFF) - (1 << 15)
    v = wrap(x.astype(np.int64) + (1 << (a["bits"] - 1))) >> a["bits"]
    return (np.clip(wrap(v + a["zero_point"] - off), -128, 127) + off).astype(a["dtype"])


def _windows(x, kernel, strides, pads, dilations, fill):
    """(kh, kw, x's window elements (N, C, OH, OW)) for every kernel tap, x padded with `fill`."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    t, l, b, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]


def _conv(n, x, w):
    a = n.attrs
    xs = x.astype(np.int64) - a["x_zp"]
    ws = w.astype(np.int64) - a["w_zp"]
    g, oc = a["group"], w.shape[0]
    cg, og = x.shape[1] // g, oc // g
    out = 0
    for i, j, win in _windows(xs, w.shape[2:], a["strides"], a["pads"], a["dilations"], 0):
        out = out + np.concatenate([np.einsum("nchw,oc->nohw", win[:, k * cg:(k + 1) * cg], ws[k * og:(k + 1) * og, :, i, j])
                                    for k in range(g)], axis=1)
    return out.astype(np.int32)


def _maxpool(n, x):
    a = n.attrs
    wins = [win for _, _, win in _windows(x, a["kernel"], a["strides"], a["pads"], a["dilations"],
                                          np.iinfo(x.dtype).min)]
    return np.maximum.reduce(wins).astype(x.dtype)


_EVAL = {
    "matmul": _matmul,
    "conv": _conv,
    "maxpool": _maxpool,
    "reshape": lambda n, x: x.reshape(n.attrs["shape"]),
    "transpose": lambda n, x: x.transpose(n.attrs["perm"]),
    "join": lambda n, *xs: np.concatenate(xs, axis=n.attrs["axis"]),
    "add": lambda n, a, b: (a + b).astype(a.dtype),
    "mul": lambda n, a, b: (a.astype(np.int64) * b.astype(np.int64)).astype(a.dtype),
    "relu": lambda n, x: np.maximum(x, 0).astype(x.dtype),
    "clip": lambda n, x: np.clip(x, n.attrs["lo"], n.attrs["hi"]).astype(x.dtype),
    "requantize": lambda n, x, *ms: _saturate(_requantize(n, x, *ms), np.dtype(n.attrs["dtype"])),
    "round_shift": lambda n, x: _round_shift(n, x),
    "quantize": lambda n, x, s, z: _saturate(np.rint(x / s) + z.astype(np.int64), z.dtype),
    "dequantize": lambda n, x, s, z: ((x.astype(np.int64) - z.astype(np.int64)) * s).astype(np.float32),
    "rows": lambda n, x: x[n.attrs["lo"]:n.attrs["hi"]],
    "concat": lambda n, *xs: np.concatenate(xs, axis=-2),
}
