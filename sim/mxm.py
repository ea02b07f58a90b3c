"""MXM (hdl/mxm.py): zero points, shadow and active weights, int32 accumulators.

MATMUL issued on t, element k: the activation is sampled on c = t+mxm_sample+k (read with the
MXMCFG written on an earlier cycle), multiplied on c+1 with the active weights, and accumulator
row (acc+k) mod rows is written at the end of t+mxm_acc_write+k (added to it if accumulate=1).
swap=1 copies the shadow weights (LW writes of earlier cycles) to the active ones at the end of
t+mxm_install. ACCREAD row k is read on t+mxm_accread_access+k, including a write at the end of
that cycle, and driven as an int32 group on t+mxm_accread_drive+k. Within one cycle: multiply
(reads the active weights) < accumulator write < accumulator read < weight install.

MATMULs share one engine, and each installs (or keeps) the weights at its first sample, after
the previous MATMUL's last multiply; so all elements of one MATMUL use one weight matrix, the
shadow buffer as of its install cycle (`_Weights`).
"""
from __future__ import annotations

from bisect import bisect_left
from functools import lru_cache

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.spec import DType

from .lazy import Op, Store
from .vxm import to_planes, wrap

_CFG0 = (0, 1, 0, 1)            # xzp byte, xsigned, wzp byte, wsigned at START
I32 = int(DType.I32)


def mxm_value(vector: np.ndarray, zp: int, signed: int) -> np.ndarray:
    """MXM operand bytes read as int8 (signed) or uint8, minus the zero point of the same type."""
    return _value_table(int(zp), int(signed))[vector]


@lru_cache(maxsize=None)
def _value_table(zp: int, signed: int) -> np.ndarray:
    v = np.arange(256, dtype=np.int64)
    if signed:
        v = np.where(v >= 128, v - 256, v)
        zp = zp - 256 if zp >= 128 else zp
    return v - zp


def _matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact int64 x @ w through float64 (BLAS): operands are 9-bit values minus a zero point
    (|.| <= 383) and lanes <= 512, so every partial sum is far below 2**53."""
    return (x.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)


class MxmSlice(Store):
    """Stores: the shadow buffer (LW writes), the accumulators (MATMUL writes); configs are known
    at issue (MXMCFG has no data), weight matrices are snapshots taken at install cycles."""

    def __init__(self, position: int, config: ChipConfig, fabric, timeline):
        T = self.T = spec.timing(config)
        assert T["mxm_acc_write"] - T["mxm_sample"] >= 2 and T["mxm_install"] == T["mxm_sample"], \
            "the model multiplies one cycle after the sample and installs weights on the first sample cycle"
        L = self.lanes = config.lanes
        self.position = position
        self.rows = config.mxm_acc_rows
        self.shadow = np.zeros((L, L), np.int64)    # row r = activation lane, column = output lane
        self.acc = np.zeros((config.mxm_acc_rows, L), np.int64)
        self.fabric, self.timeline = fabric, timeline
        self.cfg_cycles: list[int] = []              # MXMCFG write cycles, and the configs written
        self.cfgs: list[tuple] = []
        self.lws: list[LwOp] = []                    # LWs with shadow writes not yet folded, in order
        self.mms: list[MatmulOp] = []                # MATMULs with accumulator writes not yet folded
        self.weights = _Weights(self, -1, np.zeros((L, L), np.int64))   # active at START

    def issue(self, t: int, mnemonic: str, ops: dict) -> None:
        if mnemonic == "MXMCFG":
            self.cfg_cycles.append(t + self.T["mxm_cfg_write"])
            self.cfgs.append((ops["xzp"], ops["xsigned"], ops["wzp"], ops["wsigned"]))
            return
        if mnemonic == "LW":
            op = LwOp(self, t, ops)
            self.lws.append(op)
        elif mnemonic == "MATMUL":
            if ops["swap"]:
                self.weights = _Weights(self, t + self.T["mxm_install"])
                self.timeline.add(self.weights)
            op = MatmulOp(self, t, ops, self.weights)
            self.mms.append(op)
        else:
            op = AccreadOp(self, t, ops)
            for j in range(spec.dtype_bytes(I32)):
                self.fabric.drive(ops["ddir"], ops["dst"] + j, self.position, t + self.T["mxm_accread_drive"],
                                  op.n, op, j)
        self.timeline.add(op)

    def cfg_pieces(self, c0: int, m: int) -> list[tuple[int, int, tuple]]:
        """[(i0, i1, cfg)]: the config samples on cycles c0+i0 .. c0+i1-1 read."""
        cyc = self.cfg_cycles
        i = bisect_left(cyc, c0)                    # written on a cycle < c0: in force on c0
        cur = self.cfgs[i - 1] if i else _CFG0
        out, start = [], 0
        while i < len(cyc) and cyc[i] < c0 + m - 1:
            off = cyc[i] + 1 - c0
            out.append((start, off, cur))
            cur, start, i = self.cfgs[i], off, i + 1
        out.append((start, m, cur))
        return out

    # ---- shadow weights ----------------------------------------------------------
    def _fold_lw(self, s: int, w: np.ndarray) -> np.ndarray:
        """Apply onto w every pending LW row write of a cycle < s."""
        L = self.lanes
        for lw in self.lws:
            a = lw.applied
            if lw.key + a >= s:
                break
            b = min(lw.n, s - lw.key)
            lw.need(a, b)
            w[lw.row + a * lw.width:lw.row + b * lw.width] = lw.vals[a:b].reshape(-1, L)
        return w

    # ---- accumulators ------------------------------------------------------------
    def _acc_writes(self, last: int) -> list[tuple]:
        segs = []
        for op in self.mms:
            a = op.applied
            if op.write + a > last:
                break
            segs.append((op, a, min(op.n, last - op.write + 1)))
        return segs

    def _acc_after(self, segs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, write cycles, row value after each write) of the given pending writes: per row, a
        running sum from the base value (or from 0 after a write with accumulate=0), wrapped to int32."""
        for op, a, b in segs:
            op.need(a, b)
        if _disjoint(segs, self.rows):      # no row written twice: each write starts from the base
            rows = np.concatenate([op.rows[a:b] for op, a, b in segs])
            cyc = np.concatenate([op.write + np.arange(a, b) for op, a, b in segs])
            after = np.concatenate([self.acc[op.rows[a:b]] + op.vals[a:b] if op.accumulate else op.vals[a:b]
                                    for op, a, b in segs])
            return rows, cyc, wrap(after, I32)
        rows = np.concatenate([op.rows[a:b] for op, a, b in segs])
        cyc = np.concatenate([op.write + np.arange(a, b) for op, a, b in segs])
        y = np.concatenate([op.vals[a:b] for op, a, b in segs])
        acc = np.concatenate([np.full(b - a, bool(op.accumulate)) for op, a, b in segs])
        order = np.argsort(rows, kind="stable")
        r, f = rows[order], acc[order]
        cs = np.cumsum(y[order], axis=0)
        start = ~f
        start[0] = True
        start[1:] |= r[1:] != r[:-1]
        si = np.flatnonzero(start)
        sid = np.cumsum(start) - 1
        before = np.zeros((len(si), self.lanes), np.int64)
        before[si > 0] = cs[si[si > 0] - 1]
        init = np.where(f[si][:, None], self.acc[r[si]], 0)
        after = np.empty_like(cs)
        after[order] = wrap(cs - before[sid] + init[sid], I32)
        return rows, cyc, after

    def acc_at(self, rows: np.ndarray, c0: int, m: int) -> np.ndarray:
        """Accumulator rows[i] as read on cycle c0 + i (a write at the end of that cycle included)."""
        out = self.acc[rows]
        segs = self._acc_writes(c0 + m - 1)
        if not segs:
            return out
        prow, pcyc, after = self._acc_after(segs)
        hit = (prow[None, :] == rows[:, None]) & (pcyc[None, :] <= (c0 + np.arange(m))[:, None])
        sel = np.flatnonzero(hit.any(axis=1))
        if len(sel):
            out[sel] = after[hit.shape[1] - 1 - np.argmax(hit[sel, ::-1], axis=1)]
        return out

    # ---- the store interface -----------------------------------------------------
    def next_change(self):
        c = [lw.key + lw.applied for lw in self.lws[:1]] + [op.write + op.applied for op in self.mms[:1]]
        return min(c) if c else None

    def apply(self, g: int) -> None:
        self._fold_lw(g, self.shadow)
        for lw in self.lws:
            lw.applied = max(lw.applied, min(lw.n, g - lw.key))
        self.lws = [lw for lw in self.lws if lw.applied < lw.n]
        segs = self._acc_writes(g - 1)
        if segs:
            rows, _, after = self._acc_after(segs)
            _, first = np.unique(rows[::-1], return_index=True)      # the last write of each row wins
            last = len(rows) - 1 - first
            self.acc[rows[last]] = after[last]
            for op, a, b in segs:
                op.applied = b
            self.mms = [op for op in self.mms if op.applied < op.n]

    def drop_after(self, stop: int) -> None:
        self.lws, self.mms = [], []


def _disjoint(segs, n_rows: int) -> bool:
    """Whether the writes of segs (each op's rows are consecutive modulo n_rows) touch distinct rows."""
    spans = []
    for op, a, b in segs:
        if b - a > n_rows:
            return False
        lo = int(op.rows[a])
        hi = lo + b - a
        spans += [(lo, hi)] if hi <= n_rows else [(lo, n_rows), (0, hi - n_rows)]
    spans.sort()
    return all(x[1] <= y[0] for x, y in zip(spans, spans[1:]))


class _Weights(Op):
    """The active weights a swap installs: the shadow buffer as of the start of cycle `key`."""

    def __init__(self, mxm: MxmSlice, s: int, w: np.ndarray | None = None):
        super().__init__(s, 1, s)
        self.mxm, self.w = mxm, w
        if w is not None:
            self.ready = 1

    def compute(self, a, b):
        self.w = self.mxm._fold_lw(self.key, self.mxm.shadow.copy())

    def value(self) -> np.ndarray:
        self.need(0, 1)
        return self.w


class LwOp(Op):
    def __init__(self, mxm: MxmSlice, t: int, ops: dict):
        super().__init__(t, ops["count"], t + mxm.T["mxm_sample"])
        self.mxm, self.ops = mxm, ops
        self.row, self.width = ops["row"], ops["width"]
        self.applied = 0                    # elements whose rows are folded into the shadow buffer
        self.vals = np.zeros((self.n, self.width, mxm.lanes), np.int64)

    def compute(self, a: int, b: int) -> None:
        x, ops, c0, m = self.mxm, self.ops, self.key + a, b - a
        v = np.stack([x.fabric.values(ops["dir"], ops["stream"] + j, x.position, c0, m)
                      for j in range(self.width)], axis=1)
        for i0, i1, (_, _, wzp, ws) in x.cfg_pieces(c0, m):
            self.vals[a + i0:a + i1] = mxm_value(v[i0:i1], wzp, ws)


class MatmulOp(Op):
    def __init__(self, mxm: MxmSlice, t: int, ops: dict, weights: _Weights):
        super().__init__(t, ops["count"], t + mxm.T["mxm_sample"])
        self.mxm, self.ops, self.weights = mxm, ops, weights
        self.accumulate = ops["accumulate"]
        self.rows = (ops["acc"] + np.arange(self.n)) % mxm.rows
        self.write = t + mxm.T["mxm_acc_write"]    # element k's row is written at the end of write + k
        self.applied = 0
        self.vals = np.zeros((self.n, mxm.lanes), np.int64)     # x @ w per element

    def compute(self, a: int, b: int) -> None:
        x, ops, c0, m = self.mxm, self.ops, self.key + a, b - a
        v = x.fabric.values(ops["dir"], ops["stream"], x.position, c0, m)
        act = np.empty((m, x.lanes), np.int64)
        for i0, i1, (xzp, xs, _, _) in x.cfg_pieces(c0, m):
            act[i0:i1] = mxm_value(v[i0:i1], xzp, xs)
        self.vals[a:b] = _matmul(act, self.weights.value())


class AccreadOp(Op):
    def __init__(self, mxm: MxmSlice, t: int, ops: dict):
        super().__init__(t, ops["count"], t + mxm.T["mxm_accread_access"])
        self.mxm = mxm
        self.rows = (ops["acc"] + np.arange(self.n)) % mxm.rows
        self.vals = np.zeros((self.n, spec.dtype_bytes(I32), mxm.lanes), np.uint8)

    def compute(self, a: int, b: int) -> None:
        self.vals[a:b] = to_planes(self.mxm.acc_at(self.rows[a:b], self.key + a, b - a), I32)

    def drive(self, plane: int, a: int, b: int) -> np.ndarray:
        self.need(a, b)
        return self.vals[a:b, plane]
