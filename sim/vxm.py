"""VXM (hdl/vxm.py): element semantics, one numpy function per idea, and the slice model.

Values travel as int64 arrays holding the exact signed value of each lane. `wrap` reduces an
exact result to a type (its low bits, read signed), which is what driving only the type's
bytes onto streams does in hardware. Every function here is checked in tests/sim against
formulas written independently with Python integers; they work on any leading shape, so the
slice model applies them to all the elements of an instruction at once.

Slice model: an ALU op issued on t samples its operands (stream groups passing the VXM,
registers) on t+vxm_sample+k and drives its result's byte planes on t+vxm_drive+k; several
ALUs drive in the same cycle and a higher ALU index wins a stream they share. VSET / VLOAD /
VLOADB write one register at the end of t+vxm_reg_write (VLOADB: t+vxm_sample); a sample on
that cycle still sees the old value.
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.spec import DType

from .lazy import Op, Store


def wrap(x: np.ndarray, t: int) -> np.ndarray:
    """Low 8/16/32 bits of x, read as a signed value of type t."""
    bits = 8 * spec.dtype_bytes(t)
    x = np.asarray(x, np.int64) & ((1 << bits) - 1)
    return np.where(x >= 1 << (bits - 1), x - (1 << bits), x)


def saturate(x: np.ndarray, t: int) -> np.ndarray:
    lo, hi = spec.dtype_range(t)
    return np.clip(np.asarray(x, np.int64), lo, hi)


def from_planes(planes: np.ndarray, t: int) -> np.ndarray:
    """Stream group bytes uint8 [..., bytes(t), lanes] (byte plane j on stream base+j) -> int64
    values [..., lanes]."""
    planes = np.asarray(planes, np.int64)
    v = planes[..., 0, :].copy()
    for j in range(1, spec.dtype_bytes(t)):
        v |= planes[..., j, :] << (8 * j)
    return wrap(v, t)


def to_planes(values: np.ndarray, t: int) -> np.ndarray:
    """int64 values [..., lanes] -> uint8 [..., bytes(t), lanes], little-endian byte planes."""
    v = np.asarray(values, np.int64)
    return np.stack([((v >> (8 * j)) & 0xFF).astype(np.uint8) for j in range(spec.dtype_bytes(t))], axis=-2)


def requantize(x, m, word, dtype: int) -> np.ndarray:
    """REQUANT on int32 lanes: M = m, s = word[4:0], zp = word[31:16] (signed), saturate to dtype.

    rounding_shift(x * M, 31 + s) = floor((x * M + 2**(30 + s)) / 2**(31 + s)): round half up.
    |x * M| <= 2**62 and the rounding term <= 2**61, so int64 holds the sum exactly.
    """
    x, m, word = (np.asarray(v, np.int64) for v in (x, m, word))
    s = word & 31
    zp = word >> 16                         # arithmetic: bits [31:16] of a signed int32
    y = (x * m + (np.int64(1) << (30 + s))) >> (31 + s)
    return saturate(y + zp, dtype)


def alu(mnemonic: str, t: int, dt: int, a, b=None, c=None) -> np.ndarray:
    """One ALU op on exact operand values (already read as type t); returns the result wrapped to
    the result type dt (which equals t for ops without a dtype field)."""
    bits = 8 * spec.dtype_bytes(t)
    a = np.asarray(a, np.int64)
    b = None if b is None else np.asarray(b, np.int64)
    c = None if c is None else np.asarray(c, np.int64)
    mask = np.int64(-1)
    if mnemonic == "ADD":
        r = a + b
    elif mnemonic == "SUB":
        r = a - b
    elif mnemonic in ("MUL", "MULW"):
        r = a * b
    elif mnemonic == "MIN":
        r = np.minimum(a, b)
    elif mnemonic == "MAX":
        r = np.maximum(a, b)
    elif mnemonic == "RELU":
        r = np.maximum(a, 0)
    elif mnemonic == "SHL":
        r = a << (b & (bits - 1))
    elif mnemonic == "SHR":
        r = (a & ((1 << bits) - 1)) >> (b & (bits - 1))
    elif mnemonic == "SRA":
        r = a >> (b & (bits - 1))
    elif mnemonic == "CMPEQ":
        r = np.where(a == b, mask, 0)
    elif mnemonic == "CMPLT":
        r = np.where(a < b, mask, 0)
    elif mnemonic == "CMPLE":
        r = np.where(a <= b, mask, 0)
    elif mnemonic == "SELECT":
        r = np.where(a != 0, b, c)
    elif mnemonic == "CVT":
        r = saturate(a, dt)
    elif mnemonic == "REQUANT":
        r = requantize(a, b, c, dt)
    else:
        raise KeyError(f"not a VXM ALU op: {mnemonic}")
    return wrap(r, dt)


def operand_type(mnemonic: str, operands: dict) -> int:
    return int(DType.I32) if mnemonic == "REQUANT" else operands["type"]


def result_type(mnemonic: str, operands: dict) -> int:
    return operands.get("dtype", operands.get("type"))


def group_values(fabric, d: int, base: int, t: int, position: int, c0: int, m: int) -> np.ndarray:
    """int64 [m, lanes]: the type-t stream group at (base, d) passing `position` on c0 .. c0+m-1."""
    nb = spec.dtype_bytes(t)
    if nb == 1:
        return wrap(fabric.values(d, base, position, c0, m), t)
    return from_planes(np.stack([fabric.values(d, base + j, position, c0, m) for j in range(nb)], axis=1), t)


class _RegWrite:
    """One register write at the end of cycle `cycle`; `after` is the register's value after it."""
    __slots__ = ("cycle", "r", "kind", "src", "shift", "prev", "after")

    def __init__(self, cycle, r, kind, src, shift, prev):
        self.cycle, self.r, self.kind, self.src, self.shift, self.prev = cycle, r, kind, src, shift, prev
        self.after = None


class VxmSlice(Store):
    """The register file is the store: writes are single vectors, at most one per cycle (every
    register write is issue + vxm_reg_write and the queue issues one word per cycle)."""

    def __init__(self, position: int, config: ChipConfig, fabric, timeline):
        T = self.T = spec.timing(config)
        assert T["vxm_reg_write"] >= T["vxm_sample"], "VLOAD writes its register on or after its sample"
        assert T["vxm_reg_write"] == T["vxm_sample"], "the model writes VLOADB on its sample cycle"
        self.position = position
        self.lanes = config.lanes
        self.regs = np.zeros((config.vxm_regs, config.lanes), np.int64)
        self.fabric, self.timeline = fabric, timeline
        self.pending: list[_RegWrite] = []
        self._last: dict[int, _RegWrite] = {}

    def issue(self, t: int, mnemonic: str, ops: dict) -> None:
        if mnemonic == "VSET":
            self._write(t + self.T["vxm_reg_write"], ops["r"], "set", np.full(self.lanes, ops["imm"], np.int64), 0)
        elif mnemonic in ("VLOAD", "VLOADB"):
            a = ops["a"]
            t_in = ops["type"] if mnemonic == "VLOAD" else int(DType.I8)
            op = _Load(self, t, (a >> 6) & 1, a & spec.OPERAND_INDEX, t_in)
            if mnemonic == "VLOAD":
                self._write(t + self.T["vxm_reg_write"], ops["r"], "set", op, 0)
            else:
                self._write(t + self.T["vxm_sample"], ops["r"], "byte", op, 8 * ops["plane"])
            self.timeline.add(op)
        else:
            op = AluOp(self, t, mnemonic, ops)
            for j in range(spec.dtype_bytes(op.t_out)):
                self.fabric.drive(ops["ddir"], ops["dst"] + j, self.position, t + self.T["vxm_drive"], op.n, op, j,
                                  prio=ops["alu"])
            self.timeline.add(op)

    def _write(self, cycle, r, kind, src, shift):
        w = _RegWrite(cycle, r, kind, src, shift, self._last.get(r))
        self._last[r] = w
        self.pending.append(w)

    def _after(self, w: _RegWrite) -> np.ndarray:
        if w.after is None:
            v = w.src if isinstance(w.src, np.ndarray) else w.src.value()
            if w.kind == "byte":            # VLOADB: one byte plane of the register, the others kept
                old = (self._after(w.prev) if w.prev is not None else self.regs[w.r]) & 0xFFFFFFFF
                v = wrap((old & ~(0xFF << w.shift)) | ((v & 0xFF) << w.shift), int(DType.I32))
            w.after = v
        return w.after

    def reg_values(self, r: int, c0: int, m: int) -> np.ndarray:
        """Register r as sampled on cycles c0 .. c0+m-1: int64 [m, lanes] (or [1, lanes] if constant)."""
        changes = [w for w in self.pending if w.r == r and w.cycle < c0 + m - 1]
        if not changes:
            return self.regs[r][None]
        out = np.empty((m, self.lanes), np.int64)
        out[:] = self.regs[r]
        for w in changes:
            out[max(0, w.cycle + 1 - c0):] = self._after(w)
        return out

    def next_change(self):
        return self.pending[0].cycle if self.pending else None

    def apply(self, g: int) -> None:
        while self.pending and self.pending[0].cycle < g:
            w = self.pending.pop(0)
            self.regs[w.r] = self._after(w)
            w.prev = None
            if self._last.get(w.r) is w:
                del self._last[w.r]

    def drop_after(self, stop: int) -> None:
        self.pending = []
        self._last = {}


class _Load(Op):
    """VLOAD / VLOADB: one vector sampled on t+vxm_sample (the group's values, or a byte plane)."""

    def __init__(self, vxm: VxmSlice, t: int, d: int, base: int, t_in: int):
        super().__init__(t, 1, t + vxm.T["vxm_sample"])
        self.vxm, self.d, self.base, self.t_in = vxm, d, base, t_in
        self.val = None

    def compute(self, a, b):
        v = self.vxm
        self.val = group_values(v.fabric, self.d, self.base, self.t_in, v.position, self.key, 1)[0]

    def value(self) -> np.ndarray:
        self.need(0, 1)
        return self.val


class AluOp(Op):
    def __init__(self, vxm: VxmSlice, t: int, mnemonic: str, ops: dict):
        super().__init__(t, ops["count"], t + vxm.T["vxm_sample"])
        self.vxm, self.mnemonic, self.ops = vxm, mnemonic, ops
        self.t_in, self.t_out = operand_type(mnemonic, ops), result_type(mnemonic, ops)
        self.operands = [ops[n] for n in spec.ALU_BY_MNEMONIC[mnemonic].operands]
        self.vals = np.zeros((self.n, spec.dtype_bytes(self.t_out), vxm.lanes), np.uint8)

    def compute(self, a: int, b: int) -> None:
        v, c0, m = self.vxm, self.key + a, b - a
        args = []
        for x in self.operands:
            idx = x & spec.OPERAND_INDEX
            if x & spec.OPERAND_REG:
                args.append(wrap(v.reg_values(idx, c0, m), self.t_in))
            else:
                args.append(group_values(v.fabric, (x >> 6) & 1, idx, self.t_in, v.position, c0, m))
        self.vals[a:b] = to_planes(alu(self.mnemonic, self.t_in, self.t_out, *args), self.t_out)

    def drive(self, plane: int, a: int, b: int) -> np.ndarray:
        self.need(a, b)
        return self.vals[a:b, plane]
