"""Golden model of a system of chips (isa/system.py): one `Golden` per chip, the links between them.

All chips start on the same cycle of program time (a run in lockstep: with SYNC as the first
instruction, whenever the host starts each chip) and their queues are issued in one cycle
order (sim/queue.py `run_chips`), so what one chip sends is registered before any chip looks
for it. Each chip stops on its own (DONE, or an error); the others run on. Link faults are given
per receiving end as {frame index: [(codeword, bit), ...]} (frame index = the n-th vector sent
towards that end), or drawn from a seed by `random_faults`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa import spec
from isa.config import SliceKind
from isa.image import Program
from isa.link import CODEWORD_BITS, LinkFormat
from isa.system import System, SystemSpecError

from . import queue as issue
from .c2c import LinkEnd
from .golden import Golden, RunResult


@dataclass
class SystemResult:
    chips: list[RunResult]

    @property
    def cycles(self) -> int:
        """From the common start to the last chip's stop."""
        return max(r.cycles for r in self.chips)


class SystemGolden:
    def __init__(self, system: System, programs: list[Program], faults: dict | None = None,
                 memories: list | None = None, down: set | frozenset = frozenset()):
        """`faults`: {(chip, C2C slice name): {frame index: [(codeword, bit), ...]}} on frames arriving there.
        `memories`: per chip, a starting SRAM state (Golden's `memory`). `down`: indices of links that
        failed training (both ends down, as if not joined)."""
        check_programs(system, programs)
        self.system = system
        ends = link_ends(system, faults, down)
        self.ends = ends
        for i, p in enumerate(programs):
            check_recv_latency(system, i, p, ends)
        memories = memories or [None] * len(programs)
        self.chips = [Golden(p, memories[i], {e.position: e for (c, _), e in ends.items() if c == i})
                      for i, p in enumerate(programs)]
        for i, g in enumerate(self.chips):      # one SYNC group per tree, named by its root
            g.sync_group = sync_root(system, i)
        self.result: SystemResult | None = None

    def run(self, max_cycles: int = 1 << 32) -> SystemResult:
        runs = [g.issuer() for g in self.chips]
        issue.run_chips(runs, max_cycles)
        outcomes = [r.outcome(max_cycles) for r in runs]
        for (chip, name), e in self.ends.items():
            check_buffer(self.system, e, outcomes[chip][0])
        # a chip may take vectors another sent after that one's own end: settle every chip's
        # issue decisions first (above), then the values
        self.result = SystemResult([g.finish(*o) for g, o in zip(self.chips, outcomes)])
        return self.result


def check_programs(system: System, programs: list[Program]) -> None:
    """One program per chip, each for its chip's configuration."""
    if len(programs) != len(system.chips):
        raise SystemSpecError(f"system {system.name!r} has {len(system.chips)} chips, got {len(programs)} programs")
    for i, p in enumerate(programs):
        if p.config != system.config(i):
            raise SystemSpecError(f"system {system.name!r}: chip {i} is {system.chips[i]!r}, its program is for "
                                  f"{p.config.name!r}")


def link_ends(system: System, faults: dict | None = None, down: set | frozenset = frozenset()) -> dict:
    """{(chip, C2C slice name): LinkEnd} of every chip, joined over the links that trained (not in
    `down`), with the given faults on arriving frames (SystemGolden's arguments)."""
    ends: dict[tuple[int, str], LinkEnd] = {}
    for i in range(len(system.chips)):
        for s in system.config(i).slices_of(SliceKind.C2C):
            ends[(i, s.name)] = LinkEnd(i, s.name, s.position)
    for k, link in enumerate(system.links):
        if k in down:
            continue
        a, b = ends[(link.a.chip, link.a.link)], ends[(link.b.chip, link.b.link)]
        a.peer, b.peer, a.latency, b.latency = b, a, link.latency, link.latency
    for (chip, name), frames in (faults or {}).items():
        if (chip, name) not in ends:
            raise SystemSpecError(f"fault on chip{chip}.{name}: no such link end")
        ends[(chip, name)].faults = {int(j): [tuple(f) for f in fl] for j, fl in frames.items()}
    return ends


def check_buffer(system: System, end: LinkEnd, until: int) -> None:
    """A receive buffer that would have to hold more vectors than c2c_depth is the program's error."""
    cfg = system.config(end.chip)
    most, at = end.most_waiting(cfg, until)
    if most > cfg.c2c_depth:
        raise SystemSpecError(f"chip{end.chip}.{end.name}: {most} vectors wait in the receive buffer at cycle {at}, "
                              f"more than it holds (c2c_depth {cfg.c2c_depth}; isa/link.py waiting)")


def sync_root(system: System, chip: int) -> int:
    tree = system.sync_tree()
    while tree[chip][0] is not None:
        lk = tree[chip][0]
        chip = lk.a.chip if lk.b.chip == chip else lk.b.chip
    return chip


def check_recv_latency(system: System, chip: int, program: Program, ends) -> None:
    """Every RECV must assume at least its link's latency: a shorter `lat` could take a vector before
    the hardware guarantees it has arrived."""
    cfg = program.config
    for s in cfg.slices_of(SliceKind.C2C):
        end = ends[(chip, s.name)]
        for pc, w in enumerate(program.instruction_stream(s.position)):
            try:
                op, ops = spec.decode(w)
            except spec.IllegalInstruction:
                continue
            if op.mnemonic == "RECV" and end.peer is not None and ops["lat"] < end.latency:
                raise SystemSpecError(f"chip{chip}.{s.name} instruction {pc}: RECV lat={ops['lat']} is below the "
                                      f"latency of its link in system {system.name!r} ({end.latency})")


def random_faults(system: System, counts: dict, seed: int, frames: dict, double: bool = False) -> dict:
    """Seeded faults: for each receiving end (chip, name) in `counts`, that many frames among the first
    `frames[(chip, name)]` get one flipped bit in one codeword (two in one codeword if `double`)."""
    rng = np.random.default_rng(seed)
    out = {}
    for (chip, name), n in counts.items():
        fmt = LinkFormat.of(system.config(chip))
        picks = rng.choice(frames[(chip, name)], size=n, replace=False)
        faults = {}
        for j in sorted(int(x) for x in picks):
            cw = int(rng.integers(fmt.codewords))
            bits = rng.choice(CODEWORD_BITS, size=2 if double else 1, replace=False)
            faults[j] = [(cw, int(b)) for b in bits]
        out[(chip, name)] = faults
    return out
