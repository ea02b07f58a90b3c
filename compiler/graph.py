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
    op: str                      # matmul, add, mul, relu, requantize, clip; on the host: quantize, dequantize, rows, concat
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

    def relu(self, x: str, name: str | None = None) -> str:
        name = name or f"relu{len(self.nodes)}"
        return self._add("relu", name, [x], self.types[x])

    def requantize(self, x: str, scale, zero_point: int, dtype, name: str | None = None) -> str:
        """int32 -> int8 / uint8: saturate(rounding_shift(x * M, 31 + s) + zp), (M, s) from `scale`:
        one scale, or one per column (per channel: M and s become constant inputs `name/multiplier`
        and `name/shift`, int32 per column)."""
        name = name or f"requantize{len(self.nodes)}"
        dtype = np.dtype(dtype)
        if self.types[x].dtype != np.dtype(np.int32):
            raise CompileError(f"node {name!r} (requantize): input is {self.types[x].dtype}, not int32")
        if dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
            raise CompileError(f"node {name!r} (requantize): output {dtype} is not int8 or uint8")
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
            if scale.ndim != 1 or scale.size != shape[-1]:
                raise CompileError(f"node {name!r} (requantize): {scale.size} scales for {shape[-1]} columns")
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


def _saturate(x, dtype):
    info = np.iinfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


def _matmul(n, a, b):
    return np.matmul(a.astype(np.int64) - n.attrs["a_zp"], b.astype(np.int64) - n.attrs["b_zp"]).astype(np.int32)


def _requantize(n, x, m=None, s=None):
    """(m, s: the per-column constants of a per-channel requantize; else the node's own.)"""
    a = n.attrs
    m = np.int64(a["multiplier"]) if m is None else np.asarray(m, np.int64)
    s = np.int64(a["shift"]) if s is None else np.asarray(s, np.int64)
    y = (x.astype(np.int64) * m + (np.int64(1) << (30 + s))) >> (31 + s)
    return y + a["zero_point"]


_EVAL = {
    "matmul": _matmul,
    "add": lambda n, a, b: (a + b).astype(a.dtype),
    "mul": lambda n, a, b: (a.astype(np.int64) * b.astype(np.int64)).astype(a.dtype),
    "relu": lambda n, x: np.maximum(x, 0).astype(x.dtype),
    "clip": lambda n, x: np.clip(x, n.attrs["lo"], n.attrs["hi"]).astype(x.dtype),
    "requantize": lambda n, x, *ms: _saturate(_requantize(n, x, *ms), np.dtype(n.attrs["dtype"])),
    "quantize": lambda n, x, s, z: _saturate(np.rint(x / s) + z.astype(np.int64), z.dtype),
    "dequantize": lambda n, x, s, z: ((x.astype(np.int64) - z.astype(np.int64)) * s).astype(np.float32),
    "rows": lambda n, x: x[n.attrs["lo"]:n.attrs["hi"]],
    "concat": lambda n, *xs: np.concatenate(xs, axis=-2),
}
