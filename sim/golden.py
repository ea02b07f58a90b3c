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
from isa.image import Program

T = spec.TIMING
# the TIMING entry at which each engine's first element happens, relative to issue
_ENGINE_START = {"read": "mem_read_access", "write": "mem_write_sample"}
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
    words: list[int]
    pc: int = 0
    next_issue: int = 0          # earliest cycle the head may issue

    @property
    def pending(self) -> bool:
        return self.pc < len(self.words)


@dataclass
class _MemSlice:
    position: int
    data: np.ndarray             # uint8 [words, lanes]
    ecc: np.ndarray              # int64 [words]: stored ECC bits
    queue: _Queue = field(default_factory=lambda: _Queue([]))
    read_last: int = -1          # cycle of the read engine's last scheduled access
    write_last: int = -1         # cycle of the write engine's last scheduled sample
    events: dict = field(default_factory=lambda: defaultdict(list))   # cycle -> [(kind, args)]


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
                s.position, np.zeros((cfg.mem_words, cfg.lanes), np.uint8), np.zeros(cfg.mem_words, np.int64))
        for pos, (data, ecc) in (memory or {}).items():
            self.mems[pos].data[:] = data
            self.mems[pos].ecc[:] = ecc
        for seg in program.memory:
            self.host_write(seg.position, seg.addr, seg.data)
        for pos, words in program.queues.items():
            self.mems[pos].queue = _Queue(list(words))
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
        self._drives[(direction, stream)][self._diagonal(direction, position, cycle)].append((position, value))

    # ---- execution -------------------------------------------------------------
    def run(self, max_cycles: int = 1 << 32) -> RunResult:
        cfg = self.config
        corr = unc = 0
        t = 0
        if not any(m.queue.pending for m in self.mems.values()):
            self.result = RunResult(0)          # nothing to do: DONE on cycle 0
            return self.result
        while True:
            # 1. events due this cycle, reads before the end-of-cycle commits
            commits = []
            for m in self.mems.values():
                for kind, args in m.events.pop(t, ()):
                    if kind == "access":          # SRAM read: the word as stored now
                        addr, stream, d = args
                        raw = (m.data[addr].copy(), int(m.ecc[addr]))
                        when = t + T["mem_read_check"] - T["mem_read_access"]
                        m.events[when].append(("check", (raw, stream, d)))
                    elif kind == "check":           # ECC decode and count
                        (data, ecc), stream, d = args
                        word, st = self.code.decode_word(data, ecc)
                        corr += st == EccStatus.CORRECTED
                        unc += st == EccStatus.UNCORRECTABLE
                        when = t + T["mem_read_drive"] - T["mem_read_check"]
                        m.events[when].append(("drive", (word, stream, d)))
                    elif kind == "drive":
                        value, stream, d = args
                        self._drive(d, stream, m.position, t, value)
                    elif kind == "sample":
                        addr, stream, d = args
                        value = self.stream_value(d, stream, m.position, t)
                        m.events[t + T["mem_write_commit"] - T["mem_write_sample"]].append(("commit", (addr, value)))
                    elif kind == "commit":
                        commits.append((m, args))
            # 2. issue
            error = None
            for pos in sorted(self.mems):
                m = self.mems[pos]
                q = m.queue
                if not q.pending or q.next_issue > t:
                    continue
                try:
                    op, ops = spec.check(q.words[q.pc], SliceKind.MEM, cfg)
                except spec.IllegalInstruction as e:
                    if error is None:
                        error = (e.code, pos, q.pc)
                    continue
                if op.mnemonic == "NOP":
                    q.next_issue = t + ops["cycles"]
                    q.pc += 1
                    continue
                engine = spec.ENGINE[op.mnemonic]                  # "read" or "write"
                first = t + T[_ENGINE_START[engine]]
                last_attr = f"{engine}_last"
                if getattr(m, last_attr) >= first:        # engine still busy after this cycle
                    q.next_issue = getattr(m, last_attr) - first + 1 + t
                    continue
                kind = "access" if engine == "read" else "sample"
                for k in range(ops["count"]):
                    addr = (ops["addr"] + k * ops["stride"]) % cfg.mem_words
                    m.events[first + k].append((kind, (addr, ops["stream"], ops["dir"])))
                setattr(m, last_attr, first + ops["count"] - 1)
                q.pc += 1
                q.next_issue = t + 1
            for m, (addr, value) in commits:
                m.data[addr] = value
                m.ecc[addr] = self.code.encode_word(value)
            if error is not None:
                code, pos, pc = error
                self.result = RunResult(t + 1, code, pos, pc, corr, unc)
                return self.result
            # 3. next cycle on which anything happens
            nxt = [min(m.events) for m in self.mems.values() if m.events]
            nxt += [max(m.queue.next_issue, t + 1) for m in self.mems.values() if m.queue.pending]
            if not nxt:
                end = max([t + 1] + [m.queue.next_issue for m in self.mems.values()])
                self.result = RunResult(end, spec.ErrorCode.NONE, 0, 0, corr, unc)
                return self.result
            t = min(nxt)
            if t >= max_cycles:
                raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")


def run(program: Program) -> tuple[Golden, RunResult]:
    g = Golden(program)
    return g, g.run()
