"""Kernels: one graph operation (or a fused group) turned into placed bundles.

Every instruction offset inside a bundle is computed from the configuration's latencies
(spec.timing(config), kept as `Machine.T`) and slice positions; nothing here writes a latency
as a number. Two kernels exist:

* `gemm`: C = (A - a_zp) @ (B - b_zp) on the MXMs, with an optional epilogue on the VXM
  (int32 bias add, requantization to int8/uint8/int16, ReLU and clip as clamps). A's rows for a
  K tile are A's own rows, or words read by address (`a_rows`, compiler/gather.py: a
  convolution's shifted pixels, a flattened image), a READ per run on the one stream.
  Work items are (batch, row chunk, column tile); with two column tiles or more the west MXM
  takes the first half of the tiles and the east MXM the rest, otherwise row chunks alternate.
  Per item and K tile one bundle loads the next weight tile into the shadow buffer (LW, one row
  per cycle) while the current one computes, and MATMUL swap=1 installs it, so the array is busy
  every cycle when rows >= lanes. Accumulator halves alternate between items; a read-out bundle
  (ACCREAD -> [VXM chain] -> WRITEs) drains one while the next item accumulates in the other.
* `elementwise`: ADD, MUL, RELU, MAX, MIN, SRA, CVT on int8, uint8 and int16 tensors held in SRAM,
  streamed through one VXM ALU op (a constant operand set by VSET) and written back; an operand
  may be read by address (a pooling tap, a broadcast).

VXM chains: the VXM only sees values that pass it, so a result feeding a second VXM op is sent
to an SXM at the edge of the fabric, which sends it straight back (SHIFT by 0): ADD bias -> SXM
-> REQUANT -> other SXM -> MAX. Each SXM is used at most once per read-out. A chain the chip
cannot hold at once (too few ALUs or streams) is cut through SRAM (`_readout`, docs/COMPILER.md).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from isa import quant, spec
from isa.config import ChipConfig, SliceKind

from . import gather
from .graph import CompileError
from .layout import Copy, Layout, Placed, Sram
from .reserve import AluVar, Bundle, Choice, DoubleBooking, Flow, Reservations

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)
I8, I16, I32 = int(spec.DType.I8), int(spec.DType.I16), int(spec.DType.I32)
VXM_TYPE = {spec.dtype_bytes(t): int(t) for t in spec.DType}        # element bytes -> VXM operand type


def toward(src: int, dst: int) -> int:
    return E if dst > src else W


@dataclass
class MxmState:
    position: int
    feed_dir: int                 # direction of the streams it takes (toward it)
    last_sample: int = -1         # last MATMUL / LW sample of the previous kernel
    half_free: tuple = (-1, -1)   # per accumulator half: last ACCREAD access booked
    busy_mm: int = 0              # cycle after which its last MATMUL has issued (items chain on it)


class Machine:
    """The compiler's view of one chip while it schedules: floorplan, SRAM, reservations."""

    def __init__(self, config: ChipConfig, dry: bool = False, pair_weights: bool = True):
        self.config = config
        self.pair_weights = pair_weights      # weight-bound GEMMs load two rows a cycle (gemm `pairs`)
        self.T = spec.timing(config)    # the latencies every offset is computed from
        self.dry = dry                # True: allocate SRAM only, book nothing (the size check runs first)
        self.res = Reservations(config)
        self.temps: dict[tuple, Placed] = {}     # intermediates of cut epilogues (_chain_temp)
        self.temp_free: dict[tuple, int] = {}    # (intermediate, half): cycle its last item was read back
        self.sram = Sram(config)
        self.sync_resume: int | None = None      # a system's program: the cycle its start SYNC releases
        self.pads: dict[tuple, Placed] = {}      # (slice, stored byte) -> a word of it (gather.PAD reads)
        self.wide_side = E                       # the side of the last int16 GEMM result (they alternate)
        self.vxm = config.slices_of(SliceKind.VXM)[0].position
        sx = config.slices_of(SliceKind.SXM)
        self.sxm = {W: sx[0].position, E: sx[-1].position} if sx else {}     # none: chains are cut
        mems = config.slices_of(SliceKind.MEM)
        self.mems = [s.position for s in mems]
        self.side_mems = {W: sorted((p for p in self.mems if p < self.vxm), key=lambda p: self.vxm - p),
                          E: sorted((p for p in self.mems if p > self.vxm), key=lambda p: p - self.vxm)}
        mx = config.slices_of(SliceKind.MXM)
        self.mxm: dict[int, MxmState] = {}
        if mx:
            for side, near in ((W, max), (E, min)):     # per side, the one nearest the fabric's centre
                there = [s.position for s in mx if (s.position < self.vxm) == (side == W)]
                if there:                               # (mxm_east 0: the west side only)
                    self.mxm[side] = MxmState(near(there), side)

    def start_in_step(self, resume: int) -> None:
        """A chip of a system: every queue's first word is a SYNC on cycle 0 (added by `add_start_syncs`)
        and nothing else issues before `resume`, the system's release, so the chips run on one program
        time however the host started them (isa/spec.py SYNC)."""
        self.sync_resume = resume
        for s in self.config.floorplan:
            for c in range(resume):
                self.res.book_slot(s.position, c, "system start SYNC")

    def add_start_syncs(self) -> None:
        """The SYNCs `start_in_step` reserved room for: in every queue that has words, or in the first
        queue of a chip that has none (every chip of a SYNC group must take part in its release)."""
        used = sorted({pos for pos, *_ in self.res.placed}) or [self.config.floorplan[0].position]
        self.res.placed[:0] = [(pos, 0, "SYNC", {}, "system start: the chips' queues resume together")
                               for pos in used]

    # ---- placement helpers ---------------------------------------------------------------
    def host_copy(self, t: Placed, positions: list[int], tile_lo=0, tile_hi=None) -> Copy:
        """Give a host-loaded tensor a copy at these slices (one per plane), or reuse one."""
        for c in t.copies:
            if [p for p, _ in c.planes] == positions and (c.tile_lo, c.tile_hi) == (tile_lo, tile_hi):
                return c
        ntiles = (t.layout.tiles if tile_hi is None else tile_hi) - tile_lo
        c = Copy([(p, self.sram.alloc(p, t.layout.words(ntiles))) for p in positions], tile_lo, tile_hi)
        t.copies.append(c)
        return c

    def pad_word(self, position: int, stored: int) -> int:
        """The address of a word whose every byte is `stored`, in slice `position`: what a READ
        of padding (gather.PAD) reads, with stride 0. Loaded by the host with the program."""
        key = (position, stored & 0xFF)
        if key not in self.pads:
            p = Placed(f"pad {stored & 0xFF:#04x}", np.dtype(np.uint8), Layout((1, self.config.lanes), 1,
                                                                               self.config.lanes), host=True)
            self.host_copy(p, [position])
            self.pads[key] = p
        return self.pads[key].copies[0].planes[0][1]

    def side_copy_slices(self, nbytes: int, side: int) -> list[int]:
        """The slices holding one copy of a value of `nbytes` bytes on one side (nearest the VXM)."""
        s = self.side_mems[side]
        if len(s) < nbytes:
            raise CompileError(f"config {self.config.name!r}: a {8 * nbytes}-bit tensor needs {nbytes} MEM slices "
                               f"on one side of the VXM, there are {len(s)}")
        return s[:nbytes]

    def lighter_side(self) -> int:
        """The side whose two slices nearest the VXM hold fewer words: where a result goes."""
        return min((W, E), key=lambda s: sum(self.sram.top[p] for p in self.side_mems[s][:2]))

    def result_copies(self, out: Placed, words: int, side: int) -> list[Copy]:
        """Where a result computed on the chip goes, on `side`: 8-bit, a copy in each of the two
        slices nearest the VXM (one stream passes both), so two read engines can stream it; wider,
        one copy with a byte plane in each of the nearest slices."""
        if out.layout.nbytes == 1:
            return [self.result_copy(out, [p], words) for p in self.side_mems[side][:2]]
        return [self.result_copy(out, self.side_copy_slices(out.layout.nbytes, side), words)]

    def result_copy(self, out: Placed, positions: list[int], words: int) -> Copy:
        """A copy of a result computed on the chip, one plane per slice, in words a released
        tensor may have left (out.free_after then says when they may be written)."""
        planes = []
        for p in positions:
            addr, after = self.sram.alloc_reuse(p, words)
            planes.append((p, addr))
            out.free_after = max(out.free_after, after)
        return Copy(planes)

    def release(self, t: Placed) -> None:
        """t's words are free once its last READ so far has accessed them (liveness: the caller
        knows no reader is left). A host value's too: the host loads it before the run, and only
        results written later take its words."""
        if t.pinned or t.released:
            return
        t.released = True               # (its copies stay: the host still loads an input's before the run)
        for c in t.copies:
            lo, hi = c.tiles(t.layout)
            for pos, addr in c.planes:
                self.sram.release(pos, addr, t.layout.words(hi - lo), t.last_read)

    def ever_fits(self, bd: Bundle) -> bool:
        """Whether a bundle fits an idle chip (placed, it may still wait for a free cycle)."""
        return Reservations(self.config).fits(bd, max(0, -min((i.rel for i in bd.instrs), default=0)))

    def place(self, bd: Bundle, earliest: int, label: str, ins=(), outs=()) -> int:
        """Place a bundle no earlier than `earliest` nor before its inputs are in SRAM; mark
        when its outputs are."""
        omitted = sorted({i.mnemonic for i in bd.instrs} & set(self.config.vxm_omit))
        if omitted:
            raise CompileError(f"node {label!r}: needs the VXM's {', '.join(omitted)}, which config "
                               f"{self.config.name!r} leaves out (vxm_omit)")
        if self.dry:
            return max(earliest, 0)
        reads = [i.rel for i in bd.instrs if i.mnemonic == "READ"]
        if reads and ins:
            earliest = max(earliest, max(x.ready for x in ins) - min(reads) - self.T["mem_read_access"])
        writes = [i.rel for i in bd.instrs if i.mnemonic == "WRITE"]
        if writes and outs:             # words another tensor held: commit after its last read access
            earliest = max(earliest, max(o.free_after for o in outs) - min(writes) - self.T["mem_write_commit"])
        t = self.res.place(bd, earliest, label)
        if reads:
            last = t + max(i.rel + i.operands["count"] - 1 for i in bd.instrs if i.mnemonic == "READ") \
                + self.T["mem_read_access"]
            for x in ins:
                x.last_read = max(x.last_read, last)
        for i in bd.instrs:
            if i.mnemonic == "WRITE":
                done = t + i.rel + self.T["mem_write_commit"] + i.operands["count"]
                for o in outs:
                    o.ready = max(o.ready, done)
        return t

    # ---- small bundle builders -------------------------------------------------------------
    def feed(self, b: Bundle, src: int, dst: int, sample_rel: int, count: int, addr: int, note: str):
        """A READ at `src` whose words pass `dst` on sample_rel .. sample_rel + count - 1."""
        d = toward(src, dst)
        drive = sample_rel - abs(dst - src)
        f = b.flow(d, 1, src, drive, count, dst)
        b.at(src, drive - self.T["mem_read_drive"], "READ", note, stream=lambda: f.base, dir=d, addr=addr, stride=1,
             count=count)
        return f

    def feed_words(self, b: Bundle, src: int, dst: int, sample_rel: int, words: np.ndarray, base: int,
                   pad: int | None, note: str):
        """Like `feed`, for a stream whose k-th word is words[k] of a tensor copy at `base` (gather.PAD:
        a word of `pad`, the stored pad byte): a READ per run (gather.runs), all on one flow."""
        rs = gather.runs(words)
        if len(rs) == 1 and rs[0][2] != gather.PAD and rs[0][3] == 1:
            return self.feed(b, src, dst, sample_rel, len(words), base + rs[0][2], note)
        d = toward(src, dst)
        drive = sample_rel - abs(dst - src)
        f = b.flow(d, 1, src, drive, len(words), dst)
        for i0, n, w, stride in rs:
            addr = self.pad_word(src, pad) if w == gather.PAD else base + w
            b.at(src, drive + i0 - self.T["mem_read_drive"], "READ", f"{note} [{i0}:{i0 + n}]",
                 stream=lambda: f.base, dir=d, addr=addr % self.config.mem_words, stride=stride, count=n)
        return f

    def feed_pair(self, b: Bundle, srcs: tuple[int, int], dst: int, sample_rel: int, count: int,
                  addrs: tuple[int, int], note: str):
        """Two READs (at srcs[0] and srcs[1], on the same side of dst) whose words pass dst on two
        adjacent streams, base and base + 1, on sample_rel .. sample_rel + count - 1; returns the
        first flow (its base names the pair)."""
        first = self.feed(b, srcs[0], dst, sample_rel, count, addrs[0], f"{note} even rows")
        d = toward(srcs[1], dst)
        assert d == first.direction, "both halves of a pair come from one side"
        drive = sample_rel - abs(dst - srcs[1])
        second = Flow(d, 1, srcs[1], drive, count, dst)
        first.follow(second, 1)
        b.at(srcs[1], drive - self.T["mem_read_drive"], "READ", f"{note} odd rows", stream=lambda: second.base,
             dir=d, addr=addrs[1], stride=1, count=count)
        return first

    def catch(self, b: Bundle, flow, plane: int, dst: int, count: int, addr: int, note: str) -> None:
        """A WRITE at `dst` of plane `plane` of a flow as it passes. The flow must be booked up
        to `dst`: a consumer beyond its reach would read cells another flow may hold."""
        lo, hi = sorted((flow.driver, flow.reach))
        if not (lo <= dst <= hi and dst != flow.driver and (dst > flow.driver) == (flow.direction == E)):
            raise DoubleBooking(f"{note}: a WRITE at position {dst} catches a flow booked from {flow.driver} "
                                f"to {flow.reach} only")
        arrive = flow.drive + abs(dst - flow.driver)
        b.at(dst, arrive - self.T["mem_write_sample"], "WRITE", note, stream=lambda: flow.base + plane,
             dir=flow.direction, addr=addr, stride=1, count=count)


def _operand(flow):
    return lambda: spec.operand(flow.base, flow.direction)


# ==========================================================================================
# GEMM
# ==========================================================================================
@dataclass
class Epilogue:
    bias: Placed | None = None          # int32 [N]
    requant: tuple | None = None        # (multiplier, shift, stored zero point); M and s None per channel
    vectors: dict = field(default_factory=dict)     # per channel: "multiplier", "shift/zp" -> int32 [N]
    at: dict = field(default_factory=dict)          # (vector name, MXM side) -> the copy its read-outs take
    relu: bool = False                  # MAX at `floor` (the zero point, or a clip's lower bound)
    floor: int = 0
    ceil: int | None = None             # MIN at it (a clip's upper bound below 127)
    dtype: int = I8                     # what REQUANT produces (and MAX / MIN compare): int8, or int16

    def loaded(self) -> dict:
        """The int32 [N] vectors the read-outs load into registers, by name."""
        return ({"bias": self.bias} if self.bias is not None else {}) | self.vectors


def gemm(m: Machine, a: Placed, bmat: Placed, out: Placed, a_cfg: tuple[int, int], b_cfg: tuple[int, int],
         epi: Epilogue, label: str, pairs: tuple[Placed, Placed] | None = None, a_rows=None,
         a_pad: int | None = None, bias_tile: tuple[Placed, Placed] | None = None) -> None:
    """C = A @ B on the MXMs (column tiles split between the two), with the epilogue on the
    read-out. `pairs`: B's even and odd rows as two tensors; when given and both fit, each MXM
    loads its weight tiles two rows a cycle (LW width 2) from its B slice (even rows) and its A
    slice (odd rows), halving the load of a weight-bound (few rows) product. `a_rows(b, kt)`: the
    words of A that make K tile kt's rows (compiler/gather.py: a convolution's shifted pixels, a
    flattened image), gather.PAD reading a word of the stored byte `a_pad`; None: A's own rows.
    `bias_tile`: (activation word, weight tile), one more K tile whose product is the bias
    (compile.py `bias_rows`): the word read with stride 0 for every row, from A's slice."""
    cfg, L = m.config, m.config.lanes
    if not m.mxm:
        raise CompileError(f"node {label!r} (matmul): config {cfg.name!r} has no MXM")
    M = out.layout.rows
    kt_n, nt_n = bmat.layout.rows_p // L, bmat.layout.tiles
    nb = out.layout.nb
    half = cfg.mxm_acc_rows // 2
    chunks = [(m0, min(half, M - m0)) for m0 in range(0, M, half)]
    items = [(b, c, nt) for b in range(nb) for c in chunks for nt in range(nt_n)]
    sides = [sd for sd in (W, E) if sd in m.mxm]
    if len(sides) == 1:                 # one MXM (mxm_east 0): every item on it
        side_of = {it: sides[0] for it in items}
        ranges = {sides[0]: (0, None)}
    elif nt_n >= 2:
        h = -(-nt_n // 2)
        side_of = {it: (W if it[2] < h else E) for it in items}
        ranges = {W: (0, h), E: (h, nt_n)}
    else:
        side_of = {it: sides[i % 2] for i, it in enumerate(items)}
        ranges = {W: (0, None), E: (0, None)}
    used = sorted({side_of[it] for it in items})

    # sources: A from a copy per MXM, B tiles from another slice; four distinct read engines
    # one column tile: both MXMs load the same weight tiles. Held once when each item has the rows to
    # hide the other MXM's loads from the same slice (2 x lanes: a tile's load per MXM per K tile),
    # else a copy per MXM
    share_b = nt_n == 1 and len(used) == 2 and bmat.layout.nb == 1 and min(c for _, c in chunks) >= 2 * L
    a_src, b_src = _gemm_sources(m, a, used, label, share_b)
    paired = {}
    if pairs is not None:
        for s in used:
            lo, hi = ranges[s][0], nt_n if ranges[s][1] is None else ranges[s][1]
            words = (hi - lo) * pairs[0].layout.words(1)
            homes = (b_src[s], a_src[s].planes[0][0])
            if all(m.sram.top[p] + words <= m.config.mem_words - m.config.mem_words // WEIGHT_MARGIN for p in homes):
                paired[s] = tuple(m.host_copy(pp, [p], lo, ranges[s][1]) for pp, p in zip(pairs, homes))
    b_parts = {s: _weight_copies(m, bmat, ranges[s], nt_n, b_src[s], a_src[s].planes[0][0])
               for s in used if s not in paired}
    if M < L and len(used) > 1:
        # weight-load bound: the B slices read every cycle, so each side's read-outs take the bias
        # (and per-channel M, s) from its A slice (a row per tile there), or the other side's
        # read-outs wait for the B slice
        for name, vec in epi.loaded().items():
            for s in used:
                epi.at[(name, s)] = m.host_copy(vec, [a_src[s].planes[0][0]] * 4)

    # MXMCFG per MXM: after the previous kernel's last sample
    cfg_done = {}
    for s in used:
        st = m.mxm[s]
        bd = Bundle()
        bd.at(st.position, 0, "MXMCFG", f"{label}: zero points", xzp=a_cfg[0] & 0xFF, xsigned=a_cfg[1],
              wzp=b_cfg[0] & 0xFF, wsigned=b_cfg[1])
        t = m.place(bd, max(0, st.last_sample - m.T["mxm_cfg_write"]), label)
        cfg_done[s] = t + m.T["mxm_cfg_write"]
        st.busy_mm = max(st.busy_mm, cfg_done[s])
    count = {s: 0 for s in used}
    for it in items:
        s = side_of[it]
        st = m.mxm[s]
        bi, (m0, mc), nt = it
        hf = count[s] % 2
        count[s] += 1
        last_mm = None
        width = 2 if s in paired else 1
        for kt in range(kt_n + (bias_tile is not None)):
            bd = Bundle()
            ab = a.layout.nb > 1 and bi or 0
            bb = bmat.layout.nb > 1 and bi or 0
            bias = kt == kt_n               # the bias tile: its weights from B's slice, its word from A's
            lw_width = 1 if bias else width
            tile = f"bias tile n{nt}" if bias else f"tile k{kt} n{nt}"
            note = f"{label}: {tile}" if bias else f"{label}: B {tile}"
            rel_lw = m.T["mxm_install"] - m.T["mxm_sample"] - L // lw_width   # the LW's last row is sampled before the install
            if bias:
                xs, ws = bias_tile
                ca, cw = m.host_copy(xs, [a_src[s].planes[0][0]]), m.host_copy(ws, [b_src[s]])
                fb = m.feed(bd, b_src[s], st.position, rel_lw + m.T["mxm_sample"], L, cw.addr(ws.layout, 0, 0, nt, 0),
                            note)
            elif s in paired:
                (ce, co), lay = paired[s], pairs[0].layout
                fb = m.feed_pair(bd, (ce.planes[0][0], co.planes[0][0]), st.position, rel_lw + m.T["mxm_sample"],
                                 L // 2, (ce.addr(lay, 0, 0, nt, kt * L // 2), co.addr(lay, 0, 0, nt, kt * L // 2)),
                                 note)
            else:
                b_pos, b_copy = next((p, c) for p, c in b_parts[s] if c.tile_lo <= nt < c.tiles(bmat.layout)[1])
                fb = m.feed(bd, b_pos, st.position, rel_lw + m.T["mxm_sample"], L,
                            b_copy.addr(bmat.layout, 0, bb, nt, kt * L), note)
            bd.at(st.position, rel_lw, "LW", note, stream=lambda f=fb: f.base,
                  dir=st.feed_dir, row=0, width=lw_width, count=L // lw_width)
            note_a = f"{label}: A rows {m0}..{m0 + mc - 1} k{kt}"
            if bias:                        # the same word for every row: a READ of stride 0
                pos, base = ca.planes[0]
                fa = m.feed_words(bd, pos, st.position, m.T["mxm_sample"], np.zeros(mc, np.int64), base, None,
                                  f"{label}: bias word, rows {m0}..{m0 + mc - 1}")
            elif a_rows is None:
                fa = m.feed(bd, a_src[s].planes[0][0], st.position, m.T["mxm_sample"], mc,
                            a_src[s].addr(a.layout, 0, ab, kt, m0), note_a)
            else:
                pos, base = a_src[s].planes[0]
                fa = m.feed_words(bd, pos, st.position, m.T["mxm_sample"], a_rows(ab, kt)[m0:m0 + mc], base, a_pad,
                                  note_a)
            bd.at(st.position, 0, "MATMUL", f"{label}: rows {m0}..{m0 + mc - 1} x {tile}",
                  stream=lambda f=fa: f.base, dir=st.feed_dir, accumulate=int(kt > 0), acc=hf * half, swap=1,
                  count=mc)
            bd.holds.append((("shadow", st.position), rel_lw + m.T["mxm_sample"], m.T["mxm_install"] - 1))
            earliest = max(st.busy_mm, cfg_done[s] - rel_lw - m.T["mxm_sample"] + 1)
            if kt == 0:
                earliest = max(earliest, st.half_free[hf] - m.T["mxm_acc_write"] + 1)
            last_mm = m.place(bd, earliest, label, [a, bmat])
            st.busy_mm = last_mm + 1
            st.last_sample = max(st.last_sample, last_mm + m.T["mxm_sample"] + mc - 1)
        t_ar = _readout(m, st, s, hf * half, mc, out, bi, nt, m0, epi, label,
                        last_mm + m.T["mxm_acc_write"] - m.T["mxm_accread_access"])
        hfree = list(st.half_free)
        hfree[hf] = t_ar + m.T["mxm_accread_access"] + mc - 1
        st.half_free = tuple(hfree)


WEIGHT_MARGIN = 16      # 1/16 of each slice left free when weights spill (later tensors, instructions kept in SRAM)


def _weight_copies(m: Machine, bmat: Placed, rng: tuple, nt_n: int, first: int, a_pos: int) -> list[tuple[int, Copy]]:
    """Where one MXM's weight tiles (column tiles rng) live: all in slice `first` when they fit
    there, else as many whole tiles as fit, then the next slices with the most room (never the
    slice the MXM's activations stream from: its LW and MATMUL read at once). [(slice, Copy)]."""
    lo, hi = rng[0], nt_n if rng[1] is None else rng[1]
    per_tile = bmat.layout.words(1)
    cap = m.config.mem_words

    def room(p):
        return cap - m.sram.top[p]
    if room(first) >= (hi - lo) * per_tile or hi - lo <= 1:
        return [(first, m.host_copy(bmat, [first], lo, rng[1]))]
    for c in bmat.copies:          # this weight split before (another MXM, an earlier matmul): reuse
        if c.tile_lo == lo and len(bmat.copies) > 1:
            parts = [(c2.planes[0][0], c2) for c2 in bmat.copies if lo <= c2.tile_lo and c2.tiles(bmat.layout)[1] <= hi]
            if sum(c2.tiles(bmat.layout)[1] - c2.tile_lo for _, c2 in parts) == hi - lo:
                return parts
    order = [first] + sorted((p for p in m.mems if p not in (first, a_pos)), key=room, reverse=True)
    parts, t = [], lo
    for p in order:
        fit = (room(p) - cap // WEIGHT_MARGIN) // per_tile
        n = min(hi - t, max(fit, 0))
        if n <= 0:
            continue
        parts.append((p, m.host_copy(bmat, [p], t, t + n if t + n < nt_n else None)))
        t += n
        if t == hi:
            return parts
    parts.append((order[-1], m.host_copy(bmat, [order[-1]], t, rng[1])))   # over: the SRAM check names it
    return parts


def _gemm_sources(m: Machine, a: Placed, used: list[int], label: str, share_b: bool = False):
    """Per MXM side: the copy of A it streams from, and the slice its B tiles come from (`share_b`:
    one slice for both)."""
    mems = m.mems
    # host data can be copied wherever it suits (None); a chip result streams from one of its copies
    opts = [None] if a.host else [c for c in a.copies if c.tile_lo == 0 and c.tile_hi is None]
    best = None
    for a_choice in itertools.product(opts, repeat=len(used)):
        for a_pos in itertools.product(*[(mems if c is None else [c.planes[0][0]]) for c in a_choice]):
            if len(set(a_pos)) < len(a_pos):
                continue
            rest = [p for p in mems if p not in a_pos]
            options = [(p,) * len(used) for p in rest] if share_b else itertools.permutations(rest, len(used))
            for b_pos in options:
                cost = sum(abs(ap - m.mxm[s].position) + abs(bp - m.mxm[s].position)
                           for s, ap, bp in zip(used, a_pos, b_pos))
                if best is None or cost < best[0]:
                    best = (cost, a_choice, a_pos, b_pos)
    if best is None:
        raise CompileError(f"node {label!r} (matmul): not enough MEM slices to stream A and B to the MXM")
    _, a_choice, a_pos, b_pos = best
    a_src = {}
    for s, c, p in zip(used, a_choice, a_pos):
        a_src[s] = c if c is not None else m.host_copy(a, [p])
    return a_src, dict(zip(used, b_pos))


def _readout(m: Machine, st: MxmState, side: int, acc: int, mc: int, out: Placed, bi: int, nt: int, m0: int,
             epi: Epilogue, label: str, earliest: int) -> int:
    """Drain one accumulator half (ACCREAD -> [VXM epilogue] -> WRITEs); returns the ACCREAD
    bundle's cycle. The epilogue runs as one chain when the chip can hold it at once; otherwise
    it is cut, each part's result written to SRAM on the MXM's side and streamed back to the VXM
    for the next part (fewer ALUs or streams than the chain needs: docs/COMPILER.md)."""
    out_dir = 1 - st.feed_dir
    note = f"{label}: rows {m0}..{m0 + mc - 1} of tile n{nt}"
    ops = [] if epi.requant is None else (          # no epilogue: the int32 result's planes straight to SRAM
        (["bias"] if epi.bias is not None else []) + ["requant"] + (["relu"] if epi.relu else [])
        + (["ceil"] if epi.ceil is not None else []))
    src, src_copy, src_at, t_acc = None, None, None, None         # src None: the accumulator
    at = (bi, nt, m0)                                           # where this item sits in `out`
    while t_acc is None or ops:
        for k in range(len(ops), -1 if src is None else 0, -1):    # the longest part that fits
            fed = ops[:max(k - 1, 0)]       # results that feed the next op return through an SXM: one SHIFT
            if fed and (not m.sxm or any(_result_bytes(op, epi) > m.config.sxm_width for op in fed)):
                continue
            if k == len(ops):
                dst, copies, dst_at = out, out.copies, at
            else:                   # an intermediate holds one item per accumulator half: rows acc ..
                dst, copies = _chain_temp(m, out, ops[k - 1] if k else "acc", side, label, ops, epi)
                dst_at = (0, 0, acc)
            bd = Bundle()
            if src is None:
                reach = m.vxm if k else max((p for p, _ in copies[0].planes), key=lambda p: abs(p - st.position))
                flow = bd.flow(out_dir, 4, st.position, m.T["mxm_accread_drive"], mc, reach)
                bd.at(st.position, 0, "ACCREAD", note, acc=acc, dst=lambda f=flow: f.base, ddir=out_dir, count=mc)
                s0 = m.T["mxm_accread_drive"] + abs(m.vxm - st.position)
            else:
                flow, s0 = _stream_back(m, bd, src, src_copy, mc, src_at, note), m.T["vxm_sample"]
            if k:
                _vxm_chain(m, bd, flow, s0, mc, ops[:k], epi, dst, copies, dst_at, nt, label, note, side)
            else:                                               # the accumulator straight to SRAM
                for j, (p, _) in enumerate(copies[0].planes):
                    m.catch(bd, flow, j, p, mc, copies[0].addr(dst.layout, j, *dst_at), f"{note} plane {j}")
            if m.ever_fits(bd) or k <= (0 if src is None else 1):
                break
        ins = ([epi.bias] if "bias" in ops[:k] else []) + ([src] if src is not None else [])
        if dst is not out:          # the half's previous item must have been read back before it is overwritten
            earliest = max(earliest, m.temp_free.get((dst.name, acc), 0))
        t = m.place(bd, earliest, label, ins, [dst])           # raises NeverFits if even this part does not fit
        if src is not None:
            m.temp_free[(src.name, acc)] = t + max(i.rel + i.operands["count"] for i in bd.instrs
                                                     if i.mnemonic == "READ") + m.T["mem_read_access"]
        t_acc = t if t_acc is None else t_acc
        src, src_copy, src_at, ops, earliest = dst, copies[0], dst_at, ops[k:], t
    return t_acc


def _result_bytes(op: str, epi: Epilogue) -> int:
    """Bytes per element of an epilogue op's result: the int32 sum, or the requantized type."""
    return 4 if op in ("acc", "bias") else spec.dtype_bytes(epi.dtype)


def _chain_temp(m: Machine, out: Placed, after: str, side: int, label: str, ops: list[str],
                epi: Epilogue) -> tuple[Placed, list[Copy]]:
    """Where a cut epilogue keeps its intermediate (after `after`: 'acc' or 'bias' int32, 'requant'
    or 'relu' in the requantized type) for the items of the MXM on `side`: slices on that side,
    nearest the VXM."""
    key = (out.name, after, side)
    if key not in m.temps:
        nbytes = _result_bytes(after, epi)
        if len(m.side_mems[side]) < nbytes:
            raise CompileError(f"node {label!r}: its epilogue ({', '.join(ops)}) does not fit config "
                               f"{m.config.name!r} at once ({m.config.vxm_alus} VXM ALUs, {m.config.streams} streams "
                               f"per direction), and cut it needs a {8 * nbytes}-bit intermediate on {nbytes} MEM slices "
                               f"on one side of the VXM; there are {len(m.side_mems[side])}")
        rows = m.config.mxm_acc_rows                  # one item (at most half of them) per accumulator half
        t = Placed(f"{out.name}.{after}", np.dtype({4: np.int32, 2: np.int16, 1: np.int8}[nbytes]),
                   Layout((rows, m.config.lanes), nbytes, m.config.lanes))
        c = Copy([(p, m.sram.alloc(p, t.layout.words())) for p in m.side_copy_slices(nbytes, side)])
        t.copies = [c]
        m.temps[key] = t
    t = m.temps[key]
    return t, t.copies


def _stream_back(m: Machine, bd: Bundle, src: Placed, c: Copy, mc: int, at: tuple, note: str):
    """READs of one item of `src` from its byte planes, as one stream group reaching the VXM on
    m.T['vxm_sample'] (rel): the flow of the first plane, the others riding on it."""
    lead = None
    for j, (p, _) in enumerate(c.planes):
        f = m.feed(bd, p, m.vxm, m.T["vxm_sample"], mc, c.addr(src.layout, j, *at), f"{note}: {src.name} byte {j}")
        if lead is None:
            lead = f
        else:
            bd.flows.remove(f)                        # booked through the lead flow
            lead.follow(f, j)
    return lead


def _vxm_chain(m: Machine, bd: Bundle, flow, s0: int, mc: int, ops: list[str], epi: Epilogue, dst: Placed,
               copies: list[Copy], at: tuple, nt: int, label: str, note: str, side: int) -> None:
    """Append to `bd` the epilogue ops `ops` (in order, from 'bias', 'requant', 'relu') on values
    arriving at the VXM in `flow`, first sample on s0: their registers, set just before; each result
    but the last sent to an SXM and straight back (the VXM only sees values that pass it); the last
    caught into `copies` of `dst`."""
    pv = m.vxm

    def reg(name):               # a VXM register chosen by the placer; its hold is set below
        return bd.choice(name, tuple(range(m.config.vxm_regs)), [], lambda v: ("reg", pv, v))
    mult, shift, zp = epi.requant
    chain, sets = [], []                                       # (mnemonic, fields, result dtype, registers)
    loads = []                                                 # (vector name, register): four VLOADBs each
    for op in ops:
        if op == "bias":
            r_bias = reg("bias")
            chain.append(("ADD", dict(b=r_bias, type=I32), I32, [r_bias]))
            loads.append(("bias", r_bias))
        elif op == "requant":
            r_m, r_sz = reg("multiplier"), reg("shift/zp")
            chain.append(("REQUANT", dict(b=r_m, c=r_sz, dtype=epi.dtype), epi.dtype, [r_m, r_sz]))
            if epi.vectors:
                loads += [("multiplier", r_m), ("shift/zp", r_sz)]
            else:
                sets += [(r_m, mult), (r_sz, quant.pack_shift_zp(shift, zp))]
        elif op == "relu":
            r_zp = reg("relu zp")
            chain.append(("MAX", dict(b=r_zp, type=epi.dtype), epi.dtype, [r_zp]))
            sets.append((r_zp, epi.floor))
        else:
            r_hi = reg("clip ceiling")
            chain.append(("MIN", dict(b=r_hi, type=epi.dtype), epi.dtype, [r_hi]))
            sets.append((r_hi, epi.ceil))
    # setup instructions on the VXM queue, on the cycles just before the chain's first sample
    slot = s0 - m.T["vxm_sample"] - 1
    writes = {}
    for name, r in loads:
        vec = epi.loaded()[name]
        vc = epi.at.get((name, side)) or vec.whole_copy()
        for j, (p, _) in enumerate(vc.planes):
            issue = slot
            slot -= 1
            f = m.feed(bd, p, pv, issue + m.T["vxm_sample"], 1, vc.addr(vec.layout, j, 0, nt, 0),
                       f"{label}: {name} tile n{nt} byte {j}")
            bd.at(pv, issue, "VLOADB", f"{label}: {name} byte {j}", a=_operand(f), r=lambda c=r: c.value, plane=j)
            writes.setdefault(id(r), []).append(issue + m.T["vxm_reg_write"])
    for ch, imm in sets:
        issue = slot
        slot -= 1
        bd.at(pv, issue, "VSET", f"{label}: {ch.name}", r=lambda c=ch: c.value, imm=int(imm))
        writes.setdefault(id(ch), []).append(issue + m.T["vxm_reg_write"])
    s = s0
    bounce_dir = flow.direction                                # on past the VXM to the SXM beyond it
    uses = {}
    for i, (mn, fields, rtype, rchs) in enumerate(chain):
        issue = s - m.T["vxm_sample"]
        drive = issue + m.T["vxm_drive"]
        for ch in rchs:
            uses[id(ch)] = s + mc - 1
        ops_f = {k: ((lambda c=v: spec.operand(c.value, 0, reg=True)) if isinstance(v, Choice) else v)
                 for k, v in fields.items()}
        width = spec.dtype_bytes(rtype)
        if i < len(chain) - 1:
            ps = m.sxm[bounce_dir]
            nf = bd.flow(bounce_dir, width, pv, drive, mc, ps)
            bd.at(pv, issue, mn, f"{note}: {mn}", a=_operand(flow), dst=lambda f=nf: f.base, ddir=bounce_dir,
                  alu=AluVar(), count=mc, **ops_f)
            sx_issue = drive + abs(ps - pv) - m.T["sxm_sample"]
            back = 1 - bounce_dir
            bf = bd.flow(back, width, ps, sx_issue + m.T["sxm_drive"], mc, pv)
            bd.at(ps, sx_issue, "SHIFT", f"{note}: return to the VXM", stream=lambda f=nf: f.base, dir=bounce_dir,
                  arg=0, dst=lambda f=bf: f.base, ddir=back, width=width, count=mc)
            flow, s = bf, sx_issue + m.T["sxm_drive"] + abs(ps - pv)
            bounce_dir = back
        else:
            side_dir = E if copies[0].planes[0][0] > pv else W
            reach = max((p for cp in copies for p, _ in cp.planes), key=lambda p: abs(p - pv))
            nf = bd.flow(side_dir, width, pv, drive, mc, reach)
            bd.at(pv, issue, mn, f"{note}: {mn}", a=_operand(flow), dst=lambda f=nf: f.base, ddir=side_dir,
                  alu=AluVar(), count=mc, **ops_f)
            for cp in copies:
                for j, (p, _) in enumerate(cp.planes):
                    m.catch(bd, nf, j, p, mc, cp.addr(dst.layout, j, *at), f"{note}: store")
    for ch in bd.choices:
        if id(ch) in writes:
            ch.holds = [(min(writes[id(ch)]), uses[id(ch)])]


# ==========================================================================================
# Elementwise
# ==========================================================================================
ELEMENTWISE = {"add": "ADD", "mul": "MUL", "relu": "RELU", "max": "MAX", "min": "MIN",   # max, min: with `imm`
               "sra": "SRA", "cvt": "CVT"}                                                # with `imm`; to out_dtype


def elementwise(m: Machine, op: str, ins: list[Placed], out: Placed, dtype: int, label: str,
                imm: int | None = None, words: list | None = None, pads: list | None = None,
                out_dtype: int | None = None) -> None:
    """out = op(ins) over whole tensors, streamed through one VXM ALU. `imm`: the second operand is
    this constant, in a register the bundle sets (VSET) just before the op. `words[i]`: operand i's
    word for each output word (compiler/gather.py: a pooling tap, a broadcast), gather.PAD reading
    a word of the stored byte pads[i]; None: the operand's words in order."""
    pv, nbytes = m.vxm, spec.dtype_bytes(dtype)
    out_dtype = dtype if out_dtype is None else out_dtype
    out_bytes = spec.dtype_bytes(out_dtype)
    total = out.layout.words()
    words = words or [None] * len(ins)
    pads = pads or [None] * len(ins)
    same = len(ins) == 2 and ins[0] is ins[1] and words[0] is None and words[1] is None   # x + x: one stream group
    if same:
        ins = ins[:1]
    sides = [W, E] if len(ins) == 2 else [W]
    srcs = []
    taken: set[int] = set()
    for x, side in zip(ins, sides):
        c = None
        for cand in x.copies:                    # an existing copy on read engines not yet taken
            ps = [p for p, _ in cand.planes]
            if cand.tile_lo == 0 and cand.tile_hi is None and not taken & set(ps) and (
                    nbytes == 1 or all((p < pv) == (ps[0] < pv) for p in ps)):
                c = cand
                break
        if c is None:
            if not x.host:
                raise CompileError(f"node {label!r} ({op}): operands need separate MEM slices to stream from; "
                                   f"{x.name!r} is held where the other operand is")
            for sd in (side, 1 - side):
                ps = m.side_copy_slices(nbytes, sd)
                if not taken & set(ps):
                    c = m.host_copy(x, ps)
                    break
        if c is None:
            raise CompileError(f"node {label!r} ({op}): not enough MEM slices to stream its operands")
        taken |= {p for p, _ in c.planes}
        srcs.append(c)
    out_side = E if not any(p > pv for p in taken) or nbytes == 1 else W
    gathered = {p for c, w in zip(srcs, words) if w is not None for p, _ in c.planes}
    if gathered:
        # a gathered operand READs on many cycles, fixed against the op: the result's WRITEs go to a
        # side it does not read from, or their queue slots could never be free together
        sides = [sd for sd in (out_side, 1 - out_side) if not gathered & set(m.side_mems[sd][:max(2, nbytes)])]
        if not sides:
            raise CompileError(f"node {label!r} ({op}): both sides of the VXM hold operands read by address; the "
                               f"result has no side to be written to")
        out_side = sides[0]
    if not out.copies:                      # (else placed by the caller: a part of a larger tensor, a concat)
        out.copies = m.result_copies(out, total, out_side)
    step = 1 << 15
    last = 0
    for w0 in range(0, total, step):
        n = min(step, total - w0)
        bd = Bundle()
        operands = {}
        for name, x, c, wx, px in zip("ab", ins, srcs, words, pads):
            lead = None
            for j, (p, addr) in enumerate(c.planes):     # plane j on stream base + j of the operand group
                if wx is None:
                    f = m.feed(bd, p, pv, m.T["vxm_sample"], n, addr + w0, f"{label}: {x.name} byte {j}")
                else:
                    f = m.feed_words(bd, p, pv, m.T["vxm_sample"], wx[w0:w0 + n], addr, px,
                                     f"{label}: {x.name} byte {j}")
                if lead is None:
                    lead = f
                else:
                    bd.flows.remove(f)                    # booked through the lead flow
                    lead.follow(f, j)
            operands[name] = _operand(lead)
        if same:
            operands["b"] = operands["a"]
        if imm is not None:     # set on the cycle before the op, held until its last element's sample
            r = bd.choice("imm", tuple(range(m.config.vxm_regs)),
                          [(m.T["vxm_reg_write"] - 1, m.T["vxm_sample"] + n - 1)], lambda v: ("reg", pv, v))
            bd.at(pv, -1, "VSET", f"{label}: {op} bound", r=lambda c=r: c.value, imm=int(imm))
            operands["b"] = lambda c=r: spec.operand(c.value, 0, reg=True)
        reach = max((p for cp in out.copies for p, _ in cp.planes), key=lambda p: abs(p - pv))
        of = bd.flow(toward(pv, reach), out_bytes, pv, m.T["vxm_drive"], n, reach)
        conv = {"dtype": out_dtype} if op == "cvt" else {}
        bd.at(pv, 0, ELEMENTWISE[op], f"{label}: {op}", dst=lambda: of.base, ddir=of.direction, type=dtype,
              alu=AluVar(), count=n, **conv, **operands)
        for cp in out.copies:
            for j, (p, addr) in enumerate(cp.planes):
                m.catch(bd, of, j, p, n, addr + w0, f"{label}: store")
        last = m.place(bd, last, label, ins, [out])
