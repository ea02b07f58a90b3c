"""Instruction refills: queues whose instruction stream is longer than queue_depth.

The host loads a queue's first queue_depth words; the rest is cut into segments of
`chunk_words` words (VECTORS stream vectors), each kept in a MEM slice's SRAM and sent by a READ of that slice to an IFETCH of the
queue (spec: IFETCH). Both are booked in the reservation table like any transfer: the queue
slot of the IFETCH, the READ's slot and read engine, the queue's fetch engine and the stream
cells from the MEM slice to the queue. A refill is placed in the window where

* its vectors land no earlier than the ring has room for them (QUEUE_OVERFLOW otherwise), and
* its first word still issues after its vector has landed (QUEUE_UNDERRUN otherwise), with a
  margin of MARGIN words (a quarter of a small queue) for the words later refills insert before it.

A queue too shallow for that window, or a window in which no MEM slice and stream are free, is
refused with a CompileError naming the queue.

`plan` books refills on the schedule as it stands (repeating while some queue, lengthened by
the READs other queues' refills put into it, is still not covered); `finish` sets each
IFETCH's and READ's count from the final streams, turns a refill left without words into two
`NOP 1`s (same timing), and `check` verifies the final streams exactly, word by word. A
violation there is an internal compiler error: the chip never meets a late refill.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from isa import spec
from isa.config import ChipConfig

from .graph import CompileError
from .reserve import Bundle, Reservations

class RefillError(CompileError):
    """A queue's refill found no window: the schedule leaves it no read engine or stream in time."""


MARGIN = 32          # words: how far before its segment's first word a refill must have landed


def margin(config: ChipConfig) -> int:
    return min(MARGIN, config.queue_depth // 4)


@dataclass
class Refill:
    queue: int           # position of the queue it fills
    index: int           # first word of its segment in the queue's stream
    source: int          # MEM slice position holding the segment
    addr: int            # first SRAM word of the segment there
    cycle: int           # cycle of its IFETCH
    ifetch: int          # index of its IFETCH and its READ in Reservations.placed
    read: int
    words: int = 0       # final segment length (0: a spare, turned into NOPs)


VECTORS = 8         # vectors per refill: a READ short enough for the gaps a dense GEMM leaves


def chunk_words(config: ChipConfig) -> int:
    """Words per refill: VECTORS vectors, at most an eighth of the queue (so that a refill's window,
    from room in the ring to its first word's issue, spans most of the ring)."""
    fw = config.fetch_words
    return max(fw, min(VECTORS * fw, config.queue_depth // 8 // fw * fw))


def timeline(res: Reservations, position: int, sync_resume: int | None = None) -> tuple[list[int], list[int]]:
    """(issue cycles, release cycles) of every word of a queue's stream, the time-keeping NOPs
    included; a NOP is released on its last cycle (the queue keeps it until then). A SYNC's next
    word issues on `sync_resume` at the earliest (a system's start, isa/timed.py `sync`)."""
    issue, release, now = [], [], 0
    for c, mn in sorted((c, mn) for p, c, mn, *_ in res.placed if p == position):
        if c > now:
            issue.append(now)
            release.append(c - 1)
        issue.append(c)
        release.append(c)
        now = sync_resume if mn == "SYNC" else c + 1
    return issue, release


def plan(m, config: ChipConfig) -> list[Refill]:
    """Book refills for every queue whose stream exceeds queue_depth; allocates their SRAM."""
    res, depth, C = m.res, config.queue_depth, chunk_words(config)
    refills: list[Refill] = []
    covered: dict[int, int] = {}             # queue -> words its host part and refills hold
    changed = True
    while changed:
        changed = False
        # queues without MEM slices first: their refills lengthen the MEM queues planned after them
        queues = sorted({p for p, *_ in res.placed}, key=lambda p: (config.floorplan[p].kind.value == "MEM", p))
        for q in queues:
            while True:
                issue, release = timeline(res, q, m.sync_resume)
                have = covered.get(q, depth)
                if len(issue) <= depth or have >= len(issue) + margin(config):
                    break
                after = max((r.cycle for r in refills if r.queue == q), default=-1)
                refills.append(_book(m, config, q, have, issue, release, C, after))
                covered[q] = have + C
                changed = True
    return refills


def _book(m, config: ChipConfig, q: int, s: int, issue: list[int], release: list[int], C: int,
          after: int) -> Refill:
    """Book the refill of words s .. s+C-1 of queue q at the earliest cycle its window allows (and
    after the queue's previous refill, `after`: segments land in order)."""
    res, depth, fw, T = m.res, config.queue_depth, config.fetch_words, m.T
    K = C // fw
    name = config.floorplan[q].name
    # room: when vector k lands (f + ifetch_write + k), s + (k+1)*fw - depth words must be released
    lo = after + 1
    for k in range(K):
        need = s + (k + 1) * fw - depth
        if need > len(release):
            raise AssertionError(f"internal compiler error (refill): {name} never frees room for words {s}..")
        if need > 0:
            lo = max(lo, release[need - 1] - T["ifetch_write"] - k)
    first = s - margin(config)
    hi = (issue[first] if first < len(issue) else issue[-1]) - T["ifetch_write"] - 1
    if hi < max(lo, 0):
        raise RefillError(f"queue {name}: queue_depth {depth} is too small to refill words {s}.. in time "
                           f"(room for them from cycle {lo}, needed by cycle {hi}); use a deeper queue")
    sources = sorted((p for p in m.mems if p != q), key=lambda p: (abs(p - q), p))
    sources = [p for p in sources if m.sram.top[p] + K <= config.mem_words] or sources   # (a full slice: the
    # SRAM check names it)
    for t in range(max(lo, 0), hi + 1):
        for src in sources:
            b, flow = _bundle(T, q, src, C, K)
            if res.fits(b, t):
                addr = m.sram.alloc(src, K)
                n = len(res.placed)
                res.commit(b, t, f"refill {name} words {s}..{s + C - 1} from "
                                 f"{config.floorplan[src].name}@{addr:#x}")
                entries = {mn: i for i, (_, _, mn, _, _) in enumerate(res.placed[n:], n)}
                return Refill(q, s, src, addr, t, entries["IFETCH"], entries["READ"])
    raise RefillError(f"queue {name}: no cycle in {max(lo, 0)}..{hi} can refill words {s}..{s + C - 1} "
                       f"(every MEM read engine or stream path to it is taken); use a deeper queue")


def _bundle(T: dict[str, int], q: int, src: int, C: int, K: int):
    """The IFETCH of C words at q and the READ of K vectors at src feeding it, under latencies T."""
    d = int(spec.Dir.EAST) if src < q else int(spec.Dir.WEST)
    rel = -(T["mem_read_drive"] + abs(q - src) - T["ifetch_sample"])      # the READ, relative to the IFETCH
    b = Bundle()
    flow = b.flow(d, 1, src, rel + T["mem_read_drive"], K, q)
    b.at(q, 0, "IFETCH", stream=lambda: flow.base, dir=d, count=C)
    b.at(src, rel, "READ", stream=lambda: flow.base, dir=d, addr=0, stride=1, count=K)
    return b, flow


def finish(res: Reservations, config: ChipConfig, refills: list[Refill], lengths: dict[int, int]) -> None:
    """Set every refill's final word count (streams' lengths are final once all are booked)."""
    C, fw = chunk_words(config), config.fetch_words
    for r in refills:
        r.words = max(0, min(C, lengths[r.queue] - r.index))
        for i, mnemonic in ((r.ifetch, "IFETCH"), (r.read, "READ")):
            pos, cycle, _, ops, note = res.placed[i]
            if r.words == 0:                 # a spare: same slots, nothing moved
                res.placed[i] = (pos, cycle, "NOP", {"cycles": 1}, note + " (spare: nothing left to fetch)")
            elif mnemonic == "IFETCH":
                ops["count"] = r.words
            else:
                ops.update(count=-(-r.words // fw), addr=r.addr)


def check(config: ChipConfig, streams: dict[int, list[tuple[int, int]]], refills: list[Refill]) -> None:
    """Replay each refilled queue word by word: every word lands before it issues, no vector lands
    while the ring is full, every fetch starts at a multiple of fetch_words. Raises AssertionError."""
    fw, depth, T = config.fetch_words, config.queue_depth, spec.timing(config)
    by_queue: dict[int, list[Refill]] = {}
    for r in refills:
        if r.words:
            by_queue.setdefault(r.queue, []).append(r)
    for q, rs in by_queue.items():
        name = config.floorplan[q].name
        words = streams[q]
        issue = [c for c, _ in words]
        release = []
        for c, w in words:
            op, ops = spec.decode(w)
            release.append(c + ops["cycles"] - 1 if op.mnemonic == "NOP" else c)
        rs.sort(key=lambda r: r.index)
        at, prev = depth, -1
        for r in rs:
            f = r.cycle
            if f <= prev:
                raise AssertionError(f"internal compiler error (refill): {name} segment at word {r.index} is "
                                     f"fetched on cycle {f}, before the previous one (cycle {prev})")
            prev = f
            if r.index != at or r.index % fw:
                raise AssertionError(f"internal compiler error (refill): {name} segment at word {r.index}, expected {at}")
            for k in range(-(-r.words // fw)):
                land = f + T["ifetch_write"] + k
                first = r.index + k * fw
                if issue[first] <= land:
                    raise AssertionError(f"internal compiler error (refill): {name} word {first} issues on cycle "
                                         f"{issue[first]}, its vector lands at the end of {land}")
                released = bisect_right(release, land)
                if first - released + fw > depth:
                    raise AssertionError(f"internal compiler error (refill): {name} vector of words {first}.. "
                                         f"lands on cycle {land} with {first - released} words unissued")
            at = r.index + r.words
        if at != len(words):
            raise AssertionError(f"internal compiler error (refill): {name} has {len(words)} words, "
                                 f"its host part and refills hold {at}")

