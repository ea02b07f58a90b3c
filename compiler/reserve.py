"""The reservation table: every resource the schedule uses, by cycle, and the bundle placer.

A schedule is built from *bundles*: a few instructions on several slices whose relative
cycles are fixed by the spec's latencies (a READ that feeds an LW three positions away, an
ACCREAD and the WRITEs that catch its byte planes). `Reservations.place` finds the earliest
cycle at which a whole bundle fits and books everything it uses:

* queue slots: one instruction per slice queue per cycle;
* engines (spec.ENGINE): the cycles an engine works on an instruction's elements;
* stream cells: a value driven by the slice at p on cycle t occupies (stream, dir, q, t + |q - p|)
  for every position q from p's neighbour up to its farthest consumer. Cells are stored as
  rectangles in (diagonal, position) space, diagonal = t - q eastward and t + q westward, which
  is constant along one value's path;
* named holds: registers, MXM shadow buffers, anything else with a busy interval.

Anything booked twice raises `DoubleBooking`: a compiler bug, never a silent schedule. The
placer itself only proposes cycles and operand choices (stream groups, registers, ALUs) that
`fits` accepts, so a DoubleBooking means the table and the placer disagree.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

from isa import spec
from isa.config import ChipConfig


class DoubleBooking(AssertionError):
    """Two uses of one resource on one cycle: an internal compiler error."""


@dataclass
class Flow:
    """A value group moving on `width` adjacent streams: driven by the slice at `driver` on
    cycles drive .. drive + count - 1 (relative to the bundle), consumed up to position `reach`.
    `base` is chosen by the placer among `choices` (stream indices of the group's first stream)."""
    direction: int
    width: int
    driver: int
    drive: int
    count: int
    reach: int
    choices: tuple[int, ...] | None = None
    base: int | None = None
    followers: list = field(default_factory=list)   # (flow, offset): flows on streams base + offset

    def follow(self, other: "Flow", offset: int) -> None:
        """`other` (not in the bundle's flow list) rides on stream self.base + offset."""
        self.followers.append((other, offset))

    def rect(self, t: int) -> tuple[int, int, int, int]:
        c0 = t + self.drive
        if self.direction == spec.Dir.EAST:
            return c0 - self.driver, c0 - self.driver + self.count - 1, self.driver + 1, self.reach
        return c0 + self.driver, c0 + self.driver + self.count - 1, self.reach, self.driver - 1


@dataclass
class Choice:
    """A resource picked by the placer (a register, an ALU): `key(value)` names its hold."""
    name: str
    choices: tuple[int, ...]
    holds: list[tuple[int, int]]              # relative busy intervals (inclusive)
    key: Callable[[int], tuple]
    value: int | None = None


class AluVar:
    """An instruction's `alu` operand left to the placer: the first ALU free for its elements."""
    def __init__(self):
        self.value = None

    def __call__(self) -> int:
        return self.value


@dataclass
class Instr:
    position: int
    rel: int
    mnemonic: str
    operands: dict          # values may be callables of the bundle (resolved after choices)
    note: str = ""


@dataclass
class Bundle:
    instrs: list[Instr] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    holds: list[tuple[tuple, int, int]] = field(default_factory=list)   # (key, rel lo, rel hi)

    def at(self, position: int, rel: int, mnemonic: str, note: str = "", **operands) -> Instr:
        i = Instr(position, rel, mnemonic, operands, note)
        self.instrs.append(i)
        return i

    def flow(self, *args, **kw) -> Flow:
        f = Flow(*args, **kw)
        self.flows.append(f)
        return f

    def choice(self, *args, **kw) -> Choice:
        c = Choice(*args, **kw)
        self.choices.append(c)
        return c


class NeverFits(ValueError):
    """A bundle that does not fit even on an idle chip (the configuration is too small for it)."""


def _needs(b: Bundle, config: ChipConfig) -> str:
    alus = sum(1 for i in b.instrs if "alu" in i.operands)
    if alus > config.vxm_alus:
        return f"{alus} VXM ALUs at once, the VXM has {config.vxm_alus}"
    widths = sum(f.width for f in b.flows)
    return f"streams for {widths} values, {config.streams} per direction"


def _overlap(a_lo, a_hi, b_lo, b_hi) -> bool:
    return a_lo <= b_hi and b_lo <= a_hi


class _Spans:
    """Booked spans [lo, hi] of one resource (with what else they carry), kept sorted by lo with
    the longest span's length, so a query looks only at spans that start within reach of it: the
    placer asks many times per bundle, and a long program books thousands of spans per stream."""

    def __init__(self):
        self.starts: list[int] = []
        self.items: list[tuple] = []
        self.longest = 0

    def add(self, item: tuple) -> None:            # item = (lo, hi, ...)
        i = bisect_right(self.starts, item[0])
        self.starts.insert(i, item[0])
        self.items.insert(i, item)
        self.longest = max(self.longest, item[1] - item[0])

    def near(self, lo: int, hi: int):
        """The spans that may overlap [lo, hi] (a superset; the caller tests each)."""
        return self.items[bisect_left(self.starts, lo - self.longest):bisect_right(self.starts, hi)]


class Reservations:
    def __init__(self, config: ChipConfig):
        self.config = config
        self.T = spec.timing(config)
        assert self.T["stream_hop"] == 1, "stream cells are booked along diagonals of one hop per cycle"
        self.slots: dict[int, set[int]] = defaultdict(set)
        self.intervals: dict[tuple, list[tuple[int, int, str]]] = defaultdict(list)
        self.cells: dict[tuple[int, int], list[tuple[int, int, int, int, str]]] = defaultdict(list)
        self._interval_index: dict[tuple, _Spans] = defaultdict(_Spans)     # the same, indexed
        self._cell_index: dict[tuple[int, int], _Spans] = defaultdict(_Spans)
        self.placed: list[tuple[int, int, str, dict, str]] = []    # (position, cycle, mnemonic, operands, note)

    # ---- queries ---------------------------------------------------------------------
    def _interval_free(self, key, lo, hi) -> bool:
        idx = self._interval_index.get(key)
        return idx is None or not any(_overlap(lo, hi, a, b) for a, b, _ in idx.near(lo, hi))

    def _cells_free(self, direction, stream, rect) -> bool:
        d0, d1, p0, p1 = rect
        idx = self._cell_index.get((direction, stream))
        return idx is None or not any(_overlap(d0, d1, a0, a1) and _overlap(p0, p1, q0, q1)
                                      for a0, a1, q0, q1, _ in idx.near(d0, d1))

    def engine_interval(self, mnemonic: str, operands: dict, cycle: int):
        op = spec.BY_MNEMONIC[mnemonic]
        engine = spec.engine_of(op, operands)
        if engine is None:
            return None
        first = cycle + self.T[spec.ENGINE_START[spec.ENGINE[mnemonic]]]
        return engine, first, first + spec.elements(mnemonic, operands, self.config) - 1

    # ---- booking ---------------------------------------------------------------------
    def book_slot(self, position: int, cycle: int, who: str) -> None:
        if cycle < 0:
            raise DoubleBooking(f"{who}: negative cycle {cycle}")
        if cycle in self.slots[position]:
            raise DoubleBooking(f"{who}: queue slot of position {position} on cycle {cycle} booked twice")
        self.slots[position].add(cycle)

    def book_interval(self, key, lo, hi, who: str) -> None:
        for a, b, other in self._interval_index[key].near(lo, hi):
            if _overlap(lo, hi, a, b):
                raise DoubleBooking(f"{who}: {key} cycles {lo}..{hi} overlap {other} ({a}..{b})")
        self.intervals[key].append((lo, hi, who))
        self._interval_index[key].add((lo, hi, who))

    def book_cells(self, direction, stream, rect, who: str) -> None:
        if not self._cells_free(direction, stream, rect):
            raise DoubleBooking(f"{who}: stream {'EW'[direction]}{stream} cells {rect} booked twice")
        self.cells[(direction, stream)].append((*rect, who))
        self._cell_index[(direction, stream)].add((*rect, who))

    # ---- the placer ------------------------------------------------------------------
    def fits(self, b: Bundle, t: int) -> bool:
        """Whether bundle b fits at cycle t; on success its choices and flow bases are set."""
        own_slots = set()
        for i in b.instrs:
            c = t + i.rel
            if c < 0 or c in self.slots.get(i.position, ()) or (i.position, c) in own_slots:
                return False
            own_slots.add((i.position, c))
        for key, lo, hi in b.holds:
            if not self._interval_free(key, t + lo, t + hi):
                return False
        taken: list[tuple] = []                       # this bundle's own intervals and cells
        for ch in b.choices:
            ch.value = None
            for v in ch.choices:
                spans = [(ch.key(v), t + lo, t + hi) for lo, hi in ch.holds]
                if all(self._interval_free(k, lo, hi) and not any(k == k2 and _overlap(lo, hi, l2, h2)
                                                                  for k2, l2, h2 in taken) for k, lo, hi in spans):
                    ch.value = v
                    taken += spans
                    break
            if ch.value is None:
                return False
        own_cells: list[tuple[int, int, tuple]] = []
        for f in b.flows:
            rect = f.rect(t)
            choices = f.choices if f.choices is not None else range(self.config.streams - f.width + 1)
            f.base = None
            for base in choices:
                cells = [(f.direction, s, rect) for s in range(base, base + f.width)]
                cells += [(g.direction, base + k, g.rect(t)) for g, k in f.followers]
                if all(0 <= s < self.config.streams and self._cells_free(d, s, r) and not any(
                        d2 == d and s2 == s and _overlap(r[0], r[1], r2[0], r2[1])
                        and _overlap(r[2], r[3], r2[2], r2[3]) for d2, s2, r2 in own_cells)
                       for d, s, r in cells):
                    f.base = base
                    for g, k in f.followers:
                        g.base = base + k
                    own_cells += cells
                    break
            if f.base is None:
                return False
        for i in b.instrs:                            # engines (an AluVar takes the first free ALU)
            var = i.operands.get("alu")
            options = range(self.config.vxm_alus) if isinstance(var, AluVar) else (None,)
            found = False
            for a in options:
                if a is not None:
                    var.value = a
                ops = self.resolve(i.operands)
                iv = self.engine_interval(i.mnemonic, ops, t + i.rel)
                if iv is None:
                    found = True
                    break
                key = ("engine", i.position, iv[0])
                if self._interval_free(key, iv[1], iv[2]) and not any(
                        key == k2 and _overlap(iv[1], iv[2], l2, h2) for k2, l2, h2 in taken):
                    taken.append((key, iv[1], iv[2]))
                    found = True
                    break
            if not found:
                return False
        return True

    @staticmethod
    def resolve(operands: dict) -> dict:
        return {k: (v() if callable(v) else v) for k, v in operands.items()}

    def commit(self, b: Bundle, t: int, who: str) -> None:
        for key, lo, hi in b.holds:
            self.book_interval(key, t + lo, t + hi, who)
        for ch in b.choices:
            for lo, hi in ch.holds:
                self.book_interval(ch.key(ch.value), t + lo, t + hi, who)
        for f in b.flows:
            for s in range(f.base, f.base + f.width):
                self.book_cells(f.direction, s, f.rect(t), who)
            for g, k in f.followers:
                self.book_cells(g.direction, g.base, g.rect(t), who)
        for i in b.instrs:
            ops = self.resolve(i.operands)
            c = t + i.rel
            self.book_slot(i.position, c, who)
            iv = self.engine_interval(i.mnemonic, ops, c)
            if iv is not None:
                self.book_interval(("engine", i.position, iv[0]), iv[1], iv[2], who)
            self.placed.append((i.position, c, i.mnemonic, ops, i.note or who))

    def first_fit(self, b: Bundle, earliest: int, who: str, limit: int = 1 << 22) -> int:
        """The first cycle >= earliest where bundle b fits (its choices set for it), booking nothing."""
        t = max(earliest, -min((i.rel for i in b.instrs), default=0))
        while not self.fits(b, t):
            t += 1
            if t - earliest > limit:
                raise DoubleBooking(f"{who}: no cycle within {limit} of {earliest} fits (resources never free)")
        return t

    def place(self, b: Bundle, earliest: int, who: str, limit: int = 1 << 22) -> int:
        """Book bundle b at the first cycle >= earliest where it fits; returns that cycle."""
        if not Reservations(self.config).fits(b, max(earliest, -min((i.rel for i in b.instrs), default=0))):
            raise NeverFits(f"{who!r}: one step needs more of the chip than config {self.config.name!r} has "
                            f"({_needs(b, self.config)})")
        t = self.first_fit(b, earliest, who, limit)
        self.commit(b, t, who)
        return t
