"""Build a program from instructions placed on exact cycles (the NOPs are worked out here).

    tp = TimedProgram(config)
    tp.at("MEM_W0", 0, "READ", stream=0, dir=0, addr=0, stride=1, count=4)
    tp.at("VXM", 5, "ADD", a=..., ...)
    program = tp.program()

Each queue issues at most one instruction per cycle, and an instruction that needs an engine
must find it free (spec.ENGINE / ENGINE_START), so that it really issues on its cycle; anything
else raises ScheduleError naming the slice and the cycle. Timing facts come from isa/spec.py
(spec.timing of the configuration).
"""
from __future__ import annotations

from collections import defaultdict

from . import spec
from .config import ChipConfig, Slice
from .image import MemSegment, Program


class ScheduleError(ValueError):
    pass


class TimedProgram:
    def __init__(self, config: ChipConfig):
        self.config = config
        self._items: dict[int, list[tuple[int, int, str]]] = defaultdict(list)   # position -> (cycle, word, text)
        self.memory: list[MemSegment] = []
        self._slots: set[tuple[int, int]] = set()
        self._resume: dict[tuple[int, int], int] = {}     # (position, cycle of a SYNC) -> its release

    def slice(self, which: str | int) -> Slice:
        if isinstance(which, int):
            return self.config.floorplan[which]
        return self.config.slice_named(which)

    def at(self, which: str | int, cycle: int, mnemonic: str, **operands) -> int:
        """Place one instruction to issue on `cycle`; returns its word."""
        s = self.slice(which)
        if cycle < 0:
            raise ScheduleError(f"{s.name}: cycle {cycle} is negative")
        word = spec.encode(mnemonic, **operands)
        try:
            spec.check(word, s.kind, self.config)
        except spec.IllegalInstruction as e:
            raise ScheduleError(f"{s.name} cycle {cycle}: {e.reason}") from None
        if (s.position, cycle) in self._slots:
            raise ScheduleError(f"{s.name}: two instructions on cycle {cycle}")
        self._slots.add((s.position, cycle))
        self._items[s.position].append((cycle, word, mnemonic))
        return word

    def sync(self, which: str | int, cycle: int, resume: int) -> None:
        """Place a SYNC on `cycle`; the queue's next instruction issues on `resume` or later (the
        system's release: spec.sync_release, which the caller works out for the whole system)."""
        s = self.slice(which)
        if resume <= cycle:
            raise ScheduleError(f"{s.name}: SYNC on cycle {cycle} resumes on {resume}, not after it")
        self.at(which, cycle, "SYNC")
        self._resume[(s.position, cycle)] = resume

    def occupied(self, which: str | int, cycle: int) -> bool:
        """Whether the slice's queue already issues an instruction on `cycle`."""
        return (self.slice(which).position, cycle) in self._slots

    def load(self, which: str | int, addr: int, data) -> None:
        """Preload SRAM rows (uint8 [n, lanes]) of a MEM slice."""
        self.memory.append(MemSegment(self.slice(which).position, addr, data))

    def last_cycle(self) -> int:
        return max((c for items in self._items.values() for c, _, _ in items), default=-1)

    def streams(self) -> dict[int, list[tuple[int, int]]]:
        """Per queue, every word with the cycle it issues on (the NOPs that keep time included), in
        issue order: the queue's whole instruction stream, however long."""
        T = spec.timing(self.config)
        out = {}
        for position, items in sorted(self._items.items()):
            name = self.config.floorplan[position].name
            items = sorted(items, key=lambda i: i[0])
            words, busy, now = [], {}, 0          # now: the cycle the next word would issue on
            for cycle, word, mnemonic in items:
                if cycle < now:
                    raise ScheduleError(f"{name}: {mnemonic} on cycle {cycle}, but the queue's previous "
                                        f"instruction issues on cycle {now - 1}")
                if cycle > now:
                    words.append((now, spec.encode("NOP", cycles=cycle - now)))
                op, ops = spec.decode(word)
                engine = spec.engine_of(op, ops)
                if engine is not None:
                    first = cycle + T[spec.ENGINE_START[spec.ENGINE[op.mnemonic]]]
                    if busy.get(engine, -1) >= first:
                        raise ScheduleError(f"{name}: {mnemonic} on cycle {cycle} needs engine {engine}, "
                                            f"busy until cycle {busy[engine]}")
                    busy[engine] = first + spec.elements(op.mnemonic, ops, self.config) - 1
                words.append((cycle, word))
                now = self._resume.get((position, cycle), cycle + 1)
            out[position] = words
        return out

    def program(self) -> Program:
        """The program with every queue loaded by the host (each must fit in queue_depth)."""
        p = Program.empty(self.config)
        for position, words in self.streams().items():
            p.queues[position] = [w for _, w in words]
        p.memory = list(self.memory)
        p.validate()
        return p
