"""Cycle-accurate golden model of the chip at stream level: the top that wires the slice models.

It executes the same `Program` as the RTL and must agree with it on every SRAM word, every
vector on every stream on every cycle, the final cycle count, the error status and the ECC
counters. All latencies come from isa/spec.py: spec.timing of the program's configuration.

How it is fast: the queues are walked instruction by instruction (sim/queue.py); each issued
instruction becomes one op whose element values are computed lazily, a numpy operation over
many elements at a time (sim/lazy.py), and found through the stream fabric (sim/fabric.py) or
the slices' state stores (sim/mem.py, vxm.py, sxm.py, mxm.py). Long NOPs and long transfers
cost nothing per cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isa import hostmap as hm
from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.ecc import code_for
from isa.image import Program

from . import queue as issue
from . import vxm
from .c2c import C2cSlice, LinkEnd
from .fabric import Fabric
from .lazy import Timeline
from .mem import MemSlice
from .mxm import MxmSlice
from .sxm import SxmSlice
from .vxm import VxmSlice


@dataclass
class RunResult:
    cycles: int
    error: spec.ErrorCode = spec.ErrorCode.NONE
    error_position: int = 0
    error_pc: int = 0
    ecc_corrected: int = 0
    ecc_uncorrectable: int = 0
    # per C2C slice name: (FEC-corrected, uncorrectable) codewords of the frames that arrived
    links: dict = field(default_factory=dict)

    @property
    def error_info(self) -> int:
        """The ERROR_INFO register value the RTL reports."""
        return hm.pack("ERROR_INFO", code=int(self.error), position=self.error_position, pc=self.error_pc)


class Golden:
    def __init__(self, program: Program, memory: dict | None = None, links: dict | None = None):
        """`memory`: optional starting SRAM state {position: (data, ecc)}, e.g. what a previous
        run left behind (SRAM is not cleared between runs); zeros otherwise (the reset state).
        `links`: {C2C position: LinkEnd} when the chip is part of a system (sim/system.py); a
        C2C slice without one has no trained link."""
        program.validate()
        self.config: ChipConfig = program.config
        cfg = self.config
        self.code = code_for(cfg.word_bits)
        self.fabric = Fabric(cfg)
        self.timeline = Timeline([])
        args = (cfg, self.fabric, self.timeline)
        self.mems = {s.position: MemSlice(s.position, *args) for s in cfg.slices_of(SliceKind.MEM)}
        for pos, (data, ecc) in (memory or {}).items():
            self.mems[pos].set_words(slice(None), np.asarray(data, np.uint8), np.asarray(ecc, np.int64))
        for seg in program.memory:
            self.host_write(seg.position, seg.addr, seg.data)
        # VXM registers, SXM lane maps and MXM state start every run cleared
        self.vxms = {s.position: VxmSlice(s.position, *args) for s in cfg.slices_of(SliceKind.VXM)}
        self.sxms = {s.position: SxmSlice(s.position, *args) for s in cfg.slices_of(SliceKind.SXM)}
        self.mxms = {s.position: MxmSlice(s.position, *args) for s in cfg.slices_of(SliceKind.MXM)}
        links = links or {}
        self.c2cs = {s.position: C2cSlice(s.position, *args, links.get(s.position))
                     for s in cfg.slices_of(SliceKind.C2C)}
        self.slices = {**self.mems, **self.vxms, **self.sxms, **self.mxms, **self.c2cs}
        self.timeline.stores = [*self.mems.values(), *self.vxms.values(), *self.mxms.values()]
        self.queues = {pos: issue.Queue(list(words)) for pos, words in program.queues.items()}
        self.sync_group = 0         # chips of a system in one SYNC tree share a group (sim/system.py)
        self.result: RunResult | None = None

    # ---- host side (what the AXI port does while the chip is idle) -------------
    def host_write(self, position: int, addr: int, data: np.ndarray) -> None:
        data = np.asarray(data, np.uint8).reshape(-1, self.config.lanes)
        self.mems[position].set_words((addr + np.arange(len(data))) % self.config.mem_words, data)

    def host_write_raw(self, position: int, addr: int, data: np.ndarray, ecc: int) -> None:
        self.mems[position].set_words([addr], np.asarray(data, np.uint8).reshape(1, -1), [ecc])

    def host_read_raw(self, position: int, addr: int) -> tuple[np.ndarray, int]:
        m = self.mems[position]
        return m.data[addr].copy(), int(m.ecc[addr])

    def read_words(self, position: int, addr: int, n: int) -> np.ndarray:
        """n words from addr on (wrapping), ECC-corrected as the host port reads them: uint8 [n, lanes]."""
        m = self.mems[position]
        rows = (addr + np.arange(n)) % self.config.mem_words
        return self.code.decode_bytes(m.data[rows], m.ecc[rows])[0]

    def sram_state(self) -> dict:
        """{position: (data, ecc)} copies, to start another model where this one stopped."""
        return {p: (m.data.copy(), m.ecc.copy()) for p, m in self.mems.items()}

    def memory(self, position: int) -> np.ndarray:
        """Stored data bytes (uncorrected), uint8 [mem_words, lanes]."""
        return self.mems[position].data

    # ---- fabric ----------------------------------------------------------------
    def stream_value(self, direction: int, stream: int, position: int, cycle: int) -> np.ndarray:
        """V(position, cycle) for one stream: the vector passing `position` on `cycle`."""
        return self.fabric.values(direction, stream, position, cycle, 1)[0].copy()

    def edge_out(self, direction: int, cycle: int) -> np.ndarray:
        """Vectors leaving the chip on `cycle`: eastward at the east edge, westward at the west edge.

        Returns uint8 [streams, lanes]; matches the RTL's east_out / west_out ports.
        """
        return self.fabric.edge(direction, cycle)

    def group_value(self, direction: int, base: int, t: int, position: int, cycle: int) -> np.ndarray:
        """The int64 lane values of the type-t stream group at (base, direction) passing `position`."""
        return vxm.group_values(self.fabric, direction, base, t, position, cycle, 1)[0]

    # ---- execution -------------------------------------------------------------
    def run(self, max_cycles: int = 1 << 32) -> RunResult:
        chip = self.issuer()
        issue.run_chips([chip], max_cycles)
        return self.finish(*chip.outcome(max_cycles))

    def issuer(self) -> issue.ChipRun:
        """This chip's state in the issue loop (sim/queue.py), for a run of one chip or a system."""
        kinds = {s.position: s.kind for s in self.config.floorplan}
        ends = [c.end for c in self.c2cs.values() if c.end is not None]
        return issue.ChipRun(self.config, self.queues, self.slices, kinds, self.fabric, self.timeline,
                             on_stop=lambda t: [e.stop(t) for e in ends], group=self.sync_group)

    def finish(self, cycles: int, err) -> RunResult:
        """Settle the run that stopped after `cycles` cycles (err: None or (position, code, pc))."""
        self.timeline.advance_to(cycles)        # every element decided before the end, every write folded in
        for store in self.timeline.stores:
            store.drop_after(cycles)
        if err is not None:
            self.fabric.stop_at(cycles)
        self.fabric.frozen = True
        corr = unc = 0
        for m in self.mems.values():
            c, u = m.ecc_counts(cycles)
            corr, unc = corr + c, unc + u
        links = {self.config.floorplan[p].name: (c.end.counters() if c.end is not None else (0, 0))
                 for p, c in self.c2cs.items()}
        if err is None:
            self.result = RunResult(cycles, spec.ErrorCode.NONE, 0, 0, corr, unc, links)
        else:
            pos, code, pc = err
            self.result = RunResult(cycles, code, pos, pc, corr, unc, links)
        return self.result

def run(program: Program) -> tuple[Golden, RunResult]:
    g = Golden(program)
    return g, g.run()
