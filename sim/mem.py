"""MEM slice (hdl/mem_slice.py): SRAM with SECDED ECC, a READ engine and a WRITE engine.

READ issued on t, element k: the word at addr + k*stride (mod mem_words) as stored at the start
of cycle t+mem_read_access+k (a commit at the end of that cycle is not seen), ECC-checked and
counted on t+mem_read_check+k, the corrected word driven on t+mem_read_drive+k. WRITE element k
takes the stream passing the slice on t+mem_write_sample+k and stores it, with its ECC bits, at
the end of t+mem_write_commit+k. Each engine does one element per cycle and its instructions do
not overlap, so one slice's commits are in cycle order: the SRAM store keeps them as a list of
WRITE ops and a read compares its addresses and cycles against that list in one numpy step.
"""
from __future__ import annotations

from math import gcd

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.ecc import code_for

from .lazy import Op, Store


class MemSlice(Store):
    def __init__(self, position: int, config: ChipConfig, fabric, timeline):
        self.position = position
        self.T = spec.timing(config)
        self.words = config.mem_words
        self.data = np.zeros((config.mem_words, config.lanes), np.uint8)
        self.ecc = np.zeros(config.mem_words, np.int64)
        # words whose stored ECC bits may not match their data (only a raw host write or a given
        # starting state makes one): only those need the SECDED decoder when read
        self.dirty = np.zeros(config.mem_words, bool)
        self.pending_at = np.zeros(config.mem_words, np.int32)   # commits not yet folded in, per address
        self.secded = code_for(config.word_bits)
        self.fabric, self.timeline = fabric, timeline
        self.pending: list[WriteOp] = []     # WRITEs with commits not yet in `data`, in cycle order
        self.reads: list[ReadOp] = []

    def set_words(self, rows, data, ecc=None) -> None:
        """Store words as the host does (ECC computed unless given raw)."""
        code = self.secded.encode_bytes(data)
        self.data[rows] = data
        self.ecc[rows] = code if ecc is None else ecc
        self.dirty[rows] = False if ecc is None else np.asarray(ecc) != code

    def issue(self, t: int, mnemonic: str, ops: dict) -> None:
        n, addr, words = ops["count"], ops["addr"], self.words
        stride = ops["stride"] % words
        end = addr + ops["stride"] * (n - 1)
        run = ops["stride"] == 1 and end < words     # the common case: a run of consecutive words
        if run:
            addrs = np.arange(addr, addr + n)
        else:
            addrs = (addr + stride * np.arange(n)) % words
        period = words // gcd(stride, words)      # addresses repeat after this many elements
        bounds = (min(addr, end), max(addr, end)) if 0 <= end < words else (0, words - 1)   # (no wrap: exact)
        if mnemonic == "READ":
            op = ReadOp(self, t, n, addrs, bounds)
            self.fabric.drive(ops["dir"], ops["stream"], self.position, t + self.T["mem_read_drive"], n, op, None)
            self.reads.append(op)
        else:
            op = WriteOp(self, t, n, addrs, bounds, period, ops["dir"], ops["stream"])
            self.pending.append(op)
            if run:
                self.pending_at[addr:addr + n] += 1
            else:
                np.add.at(self.pending_at, addrs, 1)
        self.timeline.add(op)

    # ---- the SRAM store --------------------------------------------------------
    def read_raw(self, addrs: np.ndarray, c0: int, bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Stored data of addrs[i] at the start of cycle c0 + i, and which rows need decoding
        (those holding a dirty word). `bounds`: min and max of addrs."""
        m = len(addrs)
        last = c0 + m - 1                   # commits on cycles < last can matter
        lo, hi = bounds
        data, dirty = self.data[addrs], self.dirty[addrs]
        if not self.pending_at[addrs].any():
            return data, dirty
        segs = []
        for w in self.pending:
            a = w.applied
            if w.commit + a >= last:
                break
            if w.bounds[1] < lo or w.bounds[0] > hi:
                continue
            b = min(w.n, last - w.commit)
            if b > a:
                segs.append((w, a, b))
        if not segs:
            return data, dirty
        if len(segs) == 1:
            w, a, b = segs[0]
            ca, cc = w.addrs[a:b], w.commit + np.arange(a, b)
        else:
            ca = np.concatenate([w.addrs[a:b] for w, a, b in segs])
            cc = np.concatenate([w.commit + np.arange(a, b) for w, a, b in segs])
        hit = (ca[None, :] == addrs[:, None]) & (cc[None, :] < (c0 + np.arange(m))[:, None])
        rows = np.flatnonzero(hit.any(axis=1))
        if not len(rows):
            return data, dirty
        idx = hit.shape[1] - 1 - np.argmax(hit[rows, ::-1], axis=1)     # the latest commit before the read
        dirty[rows] = False                 # a committed word carries its own ECC
        off = 0
        for w, a, b in segs:
            sel = (idx >= off) & (idx < off + b - a)
            if sel.any():
                ks = idx[sel] - off + a
                w.need(int(ks.min()), int(ks.max()) + 1)
                data[rows[sel]] = w.vals[ks]
            off += b - a
        return data, dirty

    def next_change(self):
        return self.pending[0].commit + self.pending[0].applied if self.pending else None

    def apply(self, g: int) -> None:
        """Commit every WRITE element stored before the end of cycle g - 1, in cycle order."""
        parts, keep = [], []
        for w in self.pending:
            a, b = w.applied, min(w.n, g - w.commit)
            if b > a:
                w.need(a, b)
                parts.append((w, a, b))
                w.applied = b
            if w.applied < w.n:
                keep.append(w)
        self.pending = keep
        if not parts:
            return
        if len(parts) == 1:
            w, a, b = parts[0]
            idx, vals = w.addrs[a:b], w.vals[a:b]
            repeats = b - a > w.period
        else:
            idx = np.concatenate([w.addrs[a:b] for w, a, b in parts])
            vals = np.concatenate([w.vals[a:b] for w, a, b in parts])
            repeats = True
        np.subtract.at(self.pending_at, idx, 1)
        if repeats:                         # an address written twice: the later commit wins
            _, first = np.unique(idx[::-1], return_index=True)
            last = len(idx) - 1 - first
            idx, vals = idx[last], vals[last]
        self.data[idx] = vals
        self.ecc[idx] = self.secded.encode_bytes(vals)
        self.dirty[idx] = False

    def drop_after(self, stop: int) -> None:
        self.pending = []
        self.pending_at[:] = 0

    def ecc_counts(self, stop: int) -> tuple[int, int]:
        """(corrected, uncorrectable) over READ elements checked before cycle `stop`."""
        corr = unc = 0
        for op in self.reads:
            if op.status is not None:
                s = op.status[:max(0, min(op.n, stop - op.t - self.T["mem_read_check"]))]
                corr += int(np.count_nonzero(s == 1))
                unc += int(np.count_nonzero(s == 2))
        return corr, unc


class ReadOp(Op):
    def __init__(self, mem: MemSlice, t: int, n: int, addrs: np.ndarray, bounds: tuple[int, int]):
        super().__init__(t, n, t + mem.T["mem_read_access"])
        self.mem, self.addrs, self.bounds = mem, addrs, bounds
        self.vals = np.empty((n, mem.data.shape[1]), np.uint8)   # corrected words (filled as computed)
        self.status = None                                         # EccStatus per element, once any is not OK

    def compute(self, a: int, b: int) -> None:
        mem = self.mem
        words, dirty = mem.read_raw(self.addrs[a:b], self.key + a, self.bounds)
        if dirty.any():
            rows = np.flatnonzero(dirty)
            fixed, status = mem.secded.decode_bytes(words[rows], mem.ecc[self.addrs[a:b][rows]])
            if status.any():
                words[rows] = fixed
                if self.status is None:
                    self.status = np.zeros(self.n, np.int8)
                self.status[a + rows] = status
        self.vals[a:b] = words

    def drive(self, plane, a: int, b: int) -> np.ndarray:
        self.need(a, b)
        return self.vals[a:b]


class WriteOp(Op):
    def __init__(self, mem: MemSlice, t: int, n: int, addrs: np.ndarray, bounds: tuple[int, int], period: int,
                 d: int, stream: int):
        super().__init__(t, n, t + mem.T["mem_write_sample"])
        self.mem, self.addrs, self.bounds, self.period, self.d, self.stream = mem, addrs, bounds, period, d, stream
        self.commit = t + mem.T["mem_write_commit"]     # element k is stored at the end of commit + k
        self.applied = 0                             # elements already folded into the SRAM arrays
        self.vals = np.empty((n, mem.data.shape[1]), np.uint8)     # (only computed rows are ever read)

    def compute(self, a: int, b: int) -> None:
        self.vals[a:b] = self.mem.fabric.values(self.d, self.stream, self.mem.position, self.key + a, b - a)
