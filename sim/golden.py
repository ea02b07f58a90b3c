"""Cycle-accurate golden model of the chip at stream level.

It executes the same `Program` as the RTL and must agree with it on every
SRAM word, every vector leaving the chip's edges on every cycle, the final
cycle count, the error status and the ECC counters. All latencies come from
isa/spec.py; the model is event driven (it only visits cycles on which
something happens), so long NOPs cost nothing.

Stream fabric model: a value driven eastward by position p on cycle t is
V(p+d, t+d) for d >= 1 until a position further east drives the same stream on
the same "diagonal" (t - p is constant along a value's path). So the fabric is
stored as, per (direction, stream, diagonal), the list of drives, and a
lookup takes the nearest upstream drive.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.ecc import EccStatus, code_for
from isa.image import Program, unpack_words

from . import sxm, vxm

T = spec.TIMING
assert T["vxm_reg_write"] >= T["vxm_sample"] and T["sxm_map_write"] == T["sxm_sample"]
assert T["mxm_acc_write"] - T["mxm_sample"] >= 2 and T["mxm_install"] == T["mxm_sample"], \
    "the model multiplies one cycle after the sample and installs weights on the first sample cycle"
assert T["stream_hop"] == 1, "the fabric model's diagonal bookkeeping assumes one hop per cycle"


@dataclass
class RunResult:
    cycles: int
    error: spec.ErrorCode = spec.ErrorCode.NONE
    error_position: int = 0
    error_pc: int = 0
    ecc_corrected: int = 0
    ecc_uncorrectable: int = 0

    @property
    def error_info(self) -> int:
        """The ERROR_INFO register value the RTL reports."""
        return int(self.error) | self.error_position << 8 | self.error_pc << 16


@dataclass
class _Queue:
    """A slice's instruction queue: the host-loaded words, then those IFETCH brings in."""
    words: list[int]
    pc: int = 0
    next_issue: int = 0          # earliest cycle the head may issue
    in_nop: bool = False         # the last word issued was a NOP (the RTL keeps pc on it until it ends)
    fill: int = 0                # fill point: host words plus the words of every IFETCH issued so far
    fetch_until: int = -1        # last cycle on which a fetched vector lands (the fetch is in flight until then)
    fetch_from: int = 0          # first cycle on which the queue could miss a word of that fetch
    fetch_pc: int = 0            # index of the IFETCH in flight (reported on overflow)

    def __post_init__(self):
        self.fill = len(self.words)

    @property
    def pending(self) -> bool:
        return self.pc < len(self.words)

    def fetching(self, t: int) -> bool:
        return self.fetch_from <= t <= self.fetch_until

    def unissued_after(self, t: int) -> int:
        """Words the RTL still holds for issue at the end of cycle t (a NOP counts until its last cycle)."""
        held = self.pc - (1 if self.in_nop and t < self.next_issue - 1 else 0)
        return len(self.words) - held


@dataclass
class _Slice:
    position: int
    kind: SliceKind
    queue: _Queue = field(default_factory=lambda: _Queue([]))
    last: dict = field(default_factory=dict)     # engine -> cycle of its last scheduled element
    events: dict = field(default_factory=lambda: defaultdict(list))   # cycle -> [(kind, args)]


@dataclass
class _MemSlice(_Slice):
    data: np.ndarray = None      # uint8 [words, lanes]
    ecc: np.ndarray = None       # int64 [words]: stored ECC bits


@dataclass
class _VxmSlice(_Slice):
    regs: np.ndarray = None      # int64 [vxm_regs, lanes]: int32 values


@dataclass
class _MxmSlice(_Slice):
    shadow: np.ndarray = None    # int64 [lanes (row r = activation lane), lanes (column)]: 9-bit values
    active: np.ndarray = None
    acc: np.ndarray = None       # int64 [mxm_acc_rows, lanes]: int32 values
    cfg: tuple = (0, 1, 0, 1)    # xzp byte, xsigned, wzp byte, wsigned


# events of one cycle on an MXM run in this order: reads of the active weights, accumulator
# writes, accumulator reads (which see a same-cycle write), then the weight install
_MXM_ORDER = {"mul": 0, "acc": 1, "accread": 2, "swap": 3}


@dataclass
class _SxmSlice(_Slice):
    lane_map: np.ndarray = None  # int64 [lanes]


class Golden:
    def __init__(self, program: Program, memory: dict | None = None):
        """`memory`: optional starting SRAM state {position: (data, ecc)}, e.g. what a previous
        run left behind (SRAM is not cleared between runs); zeros otherwise (the reset state)."""
        program.validate()
        self.config: ChipConfig = program.config
        cfg = self.config
        self.code = code_for(cfg.word_bits)
        self.mems: dict[int, _MemSlice] = {}
        for s in cfg.slices_of(SliceKind.MEM):
            self.mems[s.position] = _MemSlice(
                s.position, SliceKind.MEM, data=np.zeros((cfg.mem_words, cfg.lanes), np.uint8),
                ecc=np.zeros(cfg.mem_words, np.int64))
        for pos, (data, ecc) in (memory or {}).items():
            self.mems[pos].data[:] = data
            self.mems[pos].ecc[:] = ecc
        for seg in program.memory:
            self.host_write(seg.position, seg.addr, seg.data)
        # VXM registers and SXM lane maps start every run cleared (zeros; identity map)
        self.vxms = {s.position: _VxmSlice(s.position, SliceKind.VXM,
                                           regs=np.zeros((cfg.vxm_regs, cfg.lanes), np.int64))
                     for s in cfg.slices_of(SliceKind.VXM)}
        self.sxms = {s.position: _SxmSlice(s.position, SliceKind.SXM, lane_map=np.arange(cfg.lanes, dtype=np.int64))
                     for s in cfg.slices_of(SliceKind.SXM)}
        L = cfg.lanes
        self.mxms = {s.position: _MxmSlice(s.position, SliceKind.MXM, shadow=np.zeros((L, L), np.int64),
                                           active=np.zeros((L, L), np.int64),
                                           acc=np.zeros((cfg.mxm_acc_rows, L), np.int64))
                     for s in cfg.slices_of(SliceKind.MXM)}
        self.slices: dict[int, _Slice] = {**self.mems, **self.vxms, **self.sxms, **self.mxms}
        for pos, words in program.queues.items():
            self.slices[pos].queue = _Queue(list(words))
        # fabric: (dir, stream) -> diagonal -> list of (position, value bytes)
        self._drives: dict[tuple[int, int], dict[int, list]] = defaultdict(lambda: defaultdict(list))
        self.result: RunResult | None = None

    # ---- host side (what the AXI port does while the chip is idle) -------------
    def host_write(self, position: int, addr: int, data: np.ndarray) -> None:
        data = np.asarray(data, np.uint8).reshape(-1, self.config.lanes)
        n = len(data)
        rows = (addr + np.arange(n)) % self.config.mem_words
        m = self.mems[position]
        m.data[rows] = data
        m.ecc[rows] = self.code.encode_bytes(data)

    def host_write_raw(self, position: int, addr: int, data: np.ndarray, ecc: int) -> None:
        m = self.mems[position]
        m.data[addr] = np.asarray(data, np.uint8)
        m.ecc[addr] = ecc

    def host_read_raw(self, position: int, addr: int) -> tuple[np.ndarray, int]:
        m = self.mems[position]
        return m.data[addr].copy(), int(m.ecc[addr])

    def sram_state(self) -> dict:
        """{position: (data, ecc)} copies, to start another model where this one stopped."""
        return {p: (m.data.copy(), m.ecc.copy()) for p, m in self.mems.items()}

    def memory(self, position: int) -> np.ndarray:
        """Stored data bytes (uncorrected), uint8 [mem_words, lanes]."""
        return self.mems[position].data

    # ---- fabric ----------------------------------------------------------------
    def stream_value(self, direction: int, stream: int, position: int, cycle: int) -> np.ndarray:
        """V(position, cycle) for one stream: the vector passing `position` on `cycle`."""
        drives = self._drives[(direction, stream)].get(self._diagonal(direction, position, cycle), ())
        if direction == spec.Dir.EAST:
            cands = [(p, v) for p, v in drives if p < position]
            best = max(cands, key=lambda pv: pv[0], default=None)
        else:
            cands = [(p, v) for p, v in drives if p > position]
            best = min(cands, key=lambda pv: pv[0], default=None)
        return np.zeros(self.config.lanes, np.uint8) if best is None else best[1]

    @staticmethod
    def _diagonal(direction: int, position: int, cycle: int) -> int:
        """Constant along a value's path: V(p+d, t+d) east, V(p-d, t+d) west (stream_hop == 1)."""
        return cycle - position if direction == spec.Dir.EAST else cycle + position

    def edge_out(self, direction: int, cycle: int) -> np.ndarray:
        """Vectors leaving the chip on `cycle`: eastward at the east edge, westward at the west edge.

        Returns uint8 [streams, lanes]; matches the RTL's east_out / west_out ports.
        """
        pos = self.config.positions if direction == spec.Dir.EAST else -1
        return np.stack([self.stream_value(direction, s, pos, cycle) for s in range(self.config.streams)])

    def _drive(self, direction: int, stream: int, position: int, cycle: int, value: np.ndarray) -> None:
        """Slice at `position` drives on `cycle`: seen one hop downstream on cycle + stream_hop."""
        drives = self._drives[(direction, stream)][self._diagonal(direction, position, cycle)]
        for i, (p, _) in enumerate(drives):
            if p == position:                   # the same slice drives twice: the later one wins
                drives[i] = (position, value)
                return
        drives.append((position, value))

    def group_value(self, direction: int, base: int, t: int, position: int, cycle: int) -> np.ndarray:
        """The int64 lane values of the type-t stream group at (base, direction) passing `position`."""
        planes = [self.stream_value(direction, base + j, position, cycle) for j in range(spec.dtype_bytes(t))]
        return vxm.from_planes(np.stack(planes), t)

    def _operand(self, x: int, t: int, v: _VxmSlice, cycle: int) -> np.ndarray:
        idx = x & spec.OPERAND_INDEX
        if x & spec.OPERAND_REG:
            return vxm.wrap(v.regs[idx], t)
        return self.group_value((x >> 6) & 1, idx, t, v.position, cycle)

    # ---- execution -------------------------------------------------------------
    def run(self, max_cycles: int = 1 << 32) -> RunResult:
        self._corr = self._unc = 0
        t = 0
        slices = [self.slices[p] for p in sorted(self.slices)]
        if not any(sl.queue.pending for sl in slices):
            self.result = RunResult(0)          # nothing to do: DONE on cycle 0
            return self.result
        while True:
            # 1. events due this cycle; writes to state (SRAM, registers, lane maps) happen at the end
            late = []
            for sl in slices:
                events = sl.events.pop(t, ())
                if sl.kind == SliceKind.MXM:
                    events = sorted(events, key=lambda e: _MXM_ORDER.get(e[0], 9))
                for kind, args in events:
                    late += self._event(sl, t, kind, args)
            # 2. issue
            errors = []                             # (position, priority, code, pc)
            for sl in slices:
                q = sl.queue
                if not q.pending:
                    if q.next_issue <= t and q.fetching(t):
                        errors.append((sl.position, 1, spec.ErrorCode.QUEUE_UNDERRUN, q.pc))
                    continue
                if q.next_issue > t:
                    continue
                try:
                    op, ops = spec.check(q.words[q.pc], sl.kind, self.config)
                except spec.IllegalInstruction as e:
                    errors.append((sl.position, 1, e.code, q.pc))
                    continue
                if op.mnemonic == "NOP":
                    q.next_issue = t + ops["cycles"]
                    q.pc += 1
                    q.in_nop = True
                    continue
                engine = spec.engine_of(op, ops)
                if engine is not None:
                    first = t + T[spec.ENGINE_START[spec.ENGINE[op.mnemonic]]]
                    last = sl.last.get(engine, -1)
                    if last >= first:               # engine still busy after this cycle
                        q.next_issue = last - first + 1 + t
                        continue
                    if op.mnemonic == "IFETCH" and q.fill % self.config.fetch_words:
                        errors.append((sl.position, 1, spec.ErrorCode.FETCH_ALIGN, q.pc))
                        continue
                    sl.last[engine] = first + spec.elements(op.mnemonic, ops, self.config) - 1
                self._issue(sl, t, op.mnemonic, ops)
                q.pc += 1
                q.next_issue = t + 1
                q.in_nop = False
            for write in late:
                err = write()
                if err is not None:
                    errors.append(err)
            if errors:
                pos, _, code, pc = min(errors, key=lambda e: (e[0], e[1]))
                self.result = RunResult(t + 1, code, pos, pc, self._corr, self._unc)
                return self.result
            # 3. next cycle on which anything happens
            nxt = [min(sl.events) for sl in slices if sl.events]
            nxt += [max(sl.queue.next_issue, t + 1) for sl in slices
                    if sl.queue.pending or sl.queue.fetch_until > t]
            if not nxt:
                end = max([t + 1] + [sl.queue.next_issue for sl in slices])
                self.result = RunResult(end, spec.ErrorCode.NONE, 0, 0, self._corr, self._unc)
                return self.result
            t = min(nxt)
            if t >= max_cycles:
                raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")

    def _issue(self, sl: _Slice, t: int, mnemonic: str, ops: dict) -> None:
        """Schedule every effect of an instruction issued on cycle t."""
        cfg = self.config
        count = ops.get("count", 1)
        if mnemonic == "IFETCH":
            q, fw = sl.queue, cfg.fetch_words
            n = spec.elements(mnemonic, ops, cfg)
            q.fill += count
            q.fetch_from, q.fetch_until, q.fetch_pc = t + 1, t + T["ifetch_write"] + n - 1, q.pc
            for k in range(n):
                sl.events[t + T["ifetch_sample"] + k].append(("fetch", (ops["stream"], ops["dir"],
                                                                         min(fw, count - k * fw))))
        elif mnemonic in ("READ", "WRITE"):
            kind, first = ("access", T["mem_read_access"]) if mnemonic == "READ" else ("sample", T["mem_write_sample"])
            for k in range(count):
                addr = (ops["addr"] + k * ops["stride"]) % cfg.mem_words
                sl.events[t + first + k].append((kind, (addr, ops["stream"], ops["dir"])))
        elif mnemonic == "VSET":
            sl.events[t + T["vxm_reg_write"]].append(("reg", (ops["r"], np.full(cfg.lanes, ops["imm"], np.int64))))
        elif mnemonic == "VLOAD":
            sl.events[t + T["vxm_sample"]].append(("vload", (t, ops)))
        elif mnemonic == "VLOADB":
            sl.events[t + T["vxm_sample"]].append(("vloadb", ops))
        elif mnemonic in spec.ALU_BY_MNEMONIC:
            for k in range(count):
                sl.events[t + T["vxm_sample"] + k].append(("alu", (t + k, mnemonic, ops)))
        elif mnemonic == "SETMAP":
            sl.events[t + T["sxm_sample"]].append(("setmap", (t, ops)))
        elif mnemonic == "MXMCFG":
            sl.events[t + T["mxm_cfg_write"]].append(("mxcfg", (ops["xzp"], ops["xsigned"], ops["wzp"], ops["wsigned"])))
        elif mnemonic == "LW":
            for k in range(count):
                sl.events[t + T["mxm_sample"] + k].append(("lw", (ops, k)))
        elif mnemonic == "MATMUL":
            if ops["swap"]:
                sl.events[t + T["mxm_install"]].append(("swap", None))
            for k in range(count):
                row = (ops["acc"] + k) % cfg.mxm_acc_rows
                sl.events[t + T["mxm_sample"] + k].append(("mmx", (ops, row)))
        elif mnemonic == "ACCREAD":
            for k in range(count):
                row = (ops["acc"] + k) % cfg.mxm_acc_rows
                sl.events[t + T["mxm_accread_access"] + k].append(("accread", (t + k, row, ops)))
        else:                                       # SXM lane movement
            for k in range(count):
                sl.events[t + T["sxm_sample"] + k].append(("sxm", (t + k, mnemonic, ops)))

    def _event(self, sl: _Slice, t: int, kind: str, args) -> list:
        """Carry out one event of cycle t; returns the end-of-cycle state writes it makes."""
        if kind == "access":          # SRAM read: the word as stored now
            addr, stream, d = args
            raw = (sl.data[addr].copy(), int(sl.ecc[addr]))
            sl.events[t + T["mem_read_check"] - T["mem_read_access"]].append(("check", (raw, stream, d)))
        elif kind == "check":         # ECC decode and count
            (data, ecc), stream, d = args
            word, st = self.code.decode_word(data, ecc)
            self._corr += st == EccStatus.CORRECTED
            self._unc += st == EccStatus.UNCORRECTABLE
            sl.events[t + T["mem_read_drive"] - T["mem_read_check"]].append(("drive", (word, stream, d)))
        elif kind == "fetch":         # IFETCH: a vector of instruction words taken off the stream
            stream, d, n = args
            value = self.stream_value(d, stream, sl.position, t)
            words = unpack_words(value.reshape(1, -1), n, self.config)
            sl.events[t + T["ifetch_write"] - T["ifetch_sample"]].append(("land", words))
        elif kind == "land":          # the words are written into the queue at the end of the cycle
            words = args
            q = sl.queue

            def land():
                if q.unissued_after(t) + self.config.fetch_words > self.config.queue_depth:
                    return sl.position, 0, spec.ErrorCode.QUEUE_OVERFLOW, q.fetch_pc
                q.words.extend(words)
            return [land]
        elif kind == "drive":
            value, stream, d = args
            self._drive(d, stream, sl.position, t, value)
        elif kind == "drive_group":   # several streams from one result, in ALU order (a later ALU wins)
            for _, planes, base, d in sorted(args, key=lambda a: a[0]):
                for j, plane in enumerate(planes):
                    self._drive(d, base + j, sl.position, t, plane)
        elif kind == "sample":
            addr, stream, d = args
            value = self.stream_value(d, stream, sl.position, t)
            sl.events[t + T["mem_write_commit"] - T["mem_write_sample"]].append(("commit", (addr, value)))
        elif kind == "commit":
            addr, value = args

            def commit():
                sl.data[addr] = value
                sl.ecc[addr] = self.code.encode_word(value)
            return [commit]
        elif kind == "reg":
            r, value = args

            def write():
                sl.regs[r] = value
            return [write]
        elif kind == "vload":
            issued, ops = args
            a = ops["a"]
            value = self.group_value((a >> 6) & 1, a & spec.OPERAND_INDEX, ops["type"], sl.position, t)
            when = issued + T["vxm_reg_write"]
            if when == t:
                return self._event(sl, t, "reg", (ops["r"], value))
            sl.events[when].append(("reg", (ops["r"], value)))
        elif kind == "vloadb":
            ops = args
            a = ops["a"]
            byte = self.stream_value((a >> 6) & 1, a & spec.OPERAND_INDEX, sl.position, t).astype(np.int64)
            shift = 8 * ops["plane"]

            def write():
                old = sl.regs[ops["r"]] & 0xFFFFFFFF
                new = (old & ~(0xFF << shift)) | (byte << shift)
                sl.regs[ops["r"]] = vxm.wrap(new, int(spec.DType.I32))
            assert T["vxm_reg_write"] == T["vxm_sample"], "the model writes VLOADB on its sample cycle"
            return [write]
        elif kind == "alu":
            issued, mnemonic, ops = args
            t_in, t_out = vxm.operand_type(mnemonic, ops), vxm.result_type(mnemonic, ops)
            vals = [self._operand(ops[n], t_in, sl, t) for n in spec.ALU_BY_MNEMONIC[mnemonic].operands]
            result = vxm.alu(mnemonic, t_in, t_out, *vals)
            when = issued + T["vxm_drive"]
            entry = (ops["alu"], vxm.to_planes(result, t_out), ops["dst"], ops["ddir"])
            self._group_drive(sl, when, entry)
        elif kind == "setmap":
            issued, ops = args
            value = self.group_value(ops["dir"], ops["stream"], spec.DType.I16, sl.position, t) & 0xFFFF

            def write():
                sl.lane_map[:] = value
            assert issued + T["sxm_map_write"] == t, "the model writes the map on its sample cycle"
            return [write]
        elif kind == "sxm":
            issued, mnemonic, ops = args
            n = ops["width"]
            x = np.stack([self.stream_value(ops["dir"], ops["stream"] + j, sl.position, t) for j in range(n)])
            if mnemonic == "SHIFT":
                y = sxm.shift(x, ops["arg"])
            elif mnemonic == "ROTATE":
                y = sxm.rotate(x, ops["arg"])
            elif mnemonic == "BCAST":
                y = sxm.bcast(x, ops["arg"])
            elif mnemonic == "PERMUTE":
                y = sxm.permute(x, sl.lane_map)
            else:
                y = sxm.transpose(x)
            self._group_drive(sl, issued + T["sxm_drive"], (0, y, ops["dst"], ops["ddir"]))
        elif kind == "mxcfg":
            def write():
                sl.cfg = args
            return [write]
        elif kind == "lw":
            ops, k = args
            _, _, wzp, ws = sl.cfg
            rows = [(ops["row"] + k * ops["width"] + j,
                     _mxm_value(self.stream_value(ops["dir"], ops["stream"] + j, sl.position, t), wzp, ws))
                    for j in range(ops["width"])]

            def write():
                for r, v in rows:
                    sl.shadow[r] = v
            return [write]
        elif kind == "mmx":           # activation sampled; multiplied with the weights active next cycle
            ops, row = args
            xzp, xs, _, _ = sl.cfg
            x = _mxm_value(self.stream_value(ops["dir"], ops["stream"], sl.position, t), xzp, xs)
            sl.events[t + 1].append(("mul", (x, row, ops["accumulate"])))
        elif kind == "mul":
            x, row, accumulate = args
            y = x @ sl.active
            sl.events[t + T["mxm_acc_write"] - T["mxm_sample"] - 1].append(("acc", (y, row, accumulate)))
        elif kind == "acc":           # read-modify-write, visible to reads later in this cycle
            y, row, accumulate = args
            sl.acc[row] = vxm.wrap((sl.acc[row] if accumulate else 0) + y, int(spec.DType.I32))
        elif kind == "accread":
            issued, row, ops = args
            planes = vxm.to_planes(sl.acc[row], int(spec.DType.I32))
            self._group_drive(sl, issued + T["mxm_accread_drive"], (0, planes, ops["dst"], ops["ddir"]))
        elif kind == "swap":
            sl.active = sl.shadow.copy()
        else:
            raise AssertionError(kind)
        return []

    @staticmethod
    def _group_drive(sl: _Slice, when: int, entry) -> None:
        for kind, args in sl.events[when]:
            if kind == "drive_group":
                args.append(entry)
                return
        sl.events[when].append(("drive_group", [entry]))


def _mxm_value(vector: np.ndarray, zp: int, signed: int) -> np.ndarray:
    """MXM operand bytes read as int8 (signed) or uint8, minus the zero point of the same type."""
    v = vector.astype(np.int64)
    z = int(zp)
    if signed:
        v = np.where(v >= 128, v - 256, v)
        z = z - 256 if z >= 128 else z
    return v - z


def run(program: Program) -> tuple[Golden, RunResult]:
    g = Golden(program)
    return g, g.run()
