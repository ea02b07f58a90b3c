"""Instruction queues and the issue loop (hdl/queue.py, and the run control of hdl/chip.py).

Instruction timing (issue cycles, engine stalls, NOPs, errors) depends on the instruction words
alone, except for IFETCH, whose words come off a stream, and RECV, whose errors depend on what
another chip sent. So the loop walks queue events in cycle order, one per instruction rather
than per element: a heap of (cycle, kind, chip, position) where kind 0 is a queue looking at its
head, kind 1 an IFETCH vector landing at the end of the cycle (after every issue of that cycle,
as in the RTL) and kind 2 a RECV checking the vectors it takes (sim/c2c.py). The chips of a
system (sim/system.py) share one heap, so a chip sees what another sent on earlier cycles. Each issued instruction goes to its slice
model as one op; values are computed lazily (sim/lazy.py) when an IFETCH needs its words, or
when the timeline closes a window.

Errors: a chip stops at the end of the first cycle t on which any of its queues fails, or of
t + error_stop where the configuration gives the stop a pipeline stage (spec.TIMING): the cycles
between run as usual but for the queues that have failed, which issue nothing more, and errors
on them are not reported. The other chips of a system run on. The westmost failure of cycle t is
reported, and at one position a landing overflow before the queue's own error.

SYNC (hdl/sync.py): a queue that issues SYNC on t parks. A chip whose queues are all parked or
empty and which has nothing left on the heap is quiet on q = the cycle it would be done; once
every chip of its group (a SYNC tree of the system) is quiet, all of them resume with the parked
queues issuing on T = max(q + sync_release). Program time is the group's common time, so no
chip's clock moves: a chip simply has nothing to do between its q and T. Chips still parked
when the heap runs dry wait for a release that never comes: SYNC_TIMEOUT on their cycle q.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from isa import spec
from isa.config import ChipConfig
from isa.image import unpack_words

from .lazy import WINDOW, Timeline

Err = spec.ErrorCode


def _last_effects(T: dict[str, int]) -> dict[str, int]:
    """Cycle of each instruction's last effect, relative to its issue, for its last element,
    under the latencies T (spec.timing of the chip's configuration)."""
    return {"READ": max(T["mem_read_access"], T["mem_read_check"], T["mem_read_drive"]),
            "WRITE": max(T["mem_write_sample"], T["mem_write_commit"]),
            "IFETCH": max(T["ifetch_sample"], T["ifetch_write"]),
            "VSET": T["vxm_reg_write"], "VLOAD": max(T["vxm_sample"], T["vxm_reg_write"]),
            "VLOADB": T["vxm_sample"],
            **{m: max(T["vxm_sample"], T["vxm_drive"]) for m in spec.ALU_BY_MNEMONIC},
            **{o.mnemonic: max(T["sxm_sample"], T["sxm_drive"]) for o in spec.SXM_OPCODES},
            "SETMAP": T["sxm_sample"], "MXMCFG": T["mxm_cfg_write"], "LW": T["mxm_sample"],
            "MATMUL": max(T["mxm_install"], T["mxm_sample"] + 1, T["mxm_acc_write"]),
            "ACCREAD": max(T["mxm_accread_access"], T["mxm_accread_drive"]),
            # SEND: spec.elements counts its engine cycles (a frame per vector), the last one the end
            "SEND": T["c2c_send_sample"], "RECV": max(T["c2c_recv_take"], T["c2c_recv_drive"])}


@dataclass
class Queue:
    """A slice's instruction queue: the host-loaded words, then those IFETCH brings in."""
    words: list[int]
    pc: int = 0
    next_issue: int = 0          # earliest cycle the head may issue
    in_nop: bool = False         # the last word issued was a NOP (the RTL keeps pc on it until it ends)
    fill: int = 0                # fill point: host words plus the words of every IFETCH issued so far
    fetch_until: int = -1        # last cycle on which a fetched vector lands (the fetch is in flight until then)
    fetch_from: int = 0          # first cycle on which the queue could miss a word of that fetch
    fetch_pc: int = 0            # index of the IFETCH in flight (reported on overflow)
    scheduled: bool = False      # a visit of this queue is on the heap
    parked: int | None = None    # index of the SYNC this queue is parked at

    def __post_init__(self):
        self.fill = len(self.words)


def _decoded(word: int, kind, config: ChipConfig, T: dict[str, int], last_effect: dict):
    """spec.check's verdict on a word, with what issuing it needs: (mnemonic, operands, elements,
    engine, engine start offset, offset of the last effect of its last element), or the error code.
    T: the configuration's latencies."""
    try:
        op, ops = spec.check(word, kind, config)
    except spec.IllegalInstruction as e:
        return e.code
    mn = op.mnemonic
    if mn in ("NOP", "SYNC"):
        return mn, ops, 0, None, 0, 0
    n = spec.elements(mn, ops, config)
    engine = spec.engine_of(op, ops)
    start = T[spec.ENGINE_START[spec.ENGINE[mn]]] if engine is not None else 0
    return mn, ops, n, engine, start, last_effect[mn] + n - 1


class ChipRun:
    """One chip's issue state: its queues, engines, errors and the cycle its last effect lands."""

    def __init__(self, config: ChipConfig, queues: dict[int, Queue], models: dict, kinds: dict, fabric,
                 timeline: Timeline, on_stop=None, group: int = 0):
        self.config, self.queues, self.models, self.kinds = config, queues, models, kinds
        self.group = group                      # chips of one group release their SYNCs together
        self.pending = 0                        # this chip's entries on the heap
        self.quiet_at: int | None = None        # while held at a SYNC: the cycle q it became quiet
        self.syncs = 0                          # SYNCs released
        self.sync_wait = 0                      # cycles between q and T, summed (the golden model's "stall")
        self.fabric, self.timeline = fabric, timeline
        self.on_stop = on_stop                  # called with the failing cycle when the chip halts
        self.T = spec.timing(config)
        self.last_effect = _last_effects(self.T)
        self.checked: dict[tuple, object] = {}
        self.busy: dict[tuple, int] = {}        # (position, engine) -> cycle of its last scheduled element
        self.errors = []                        # (position, priority, code, pc) of the first failing cycle
        self.t_err = None                       # the first failing cycle
        self.t_stop = None                      # the last running cycle: t_err + error_stop
        self.failed: set[int] = set()           # positions whose queues have failed (they issue nothing more)
        self.last_stage = 0

    def fail(self, t: int, pos: int, priority: int, code, pc: int, lag: int | None = None) -> None:
        """Queue `pos` fails on t. The first failing cycle stops the chip `lag` cycles later (the
        configuration's error_stop unless given: a SYNC timeout, decided beside run control, has none)."""
        self.failed.add(pos)
        if self.t_err is not None and t > self.t_err:
            return                              # within error_stop of the first: not reported
        self.errors.append((pos, priority, code, pc))
        if self.t_err is None:
            self.t_err = t
            self.t_stop = t + (self.T["error_stop"] if lag is None else lag)
            if self.on_stop is not None:
                self.on_stop(self.t_stop)

    def stopped(self, t: int, pos: int) -> bool:
        """Whether an event of position `pos` on cycle t comes too late: after the chip's stop, or
        after the cycle its own queue failed (events of the first failing cycle all count)."""
        return self.t_err is not None and (t > self.t_stop or (t > self.t_err and pos in self.failed))

    def outcome(self, max_cycles: int) -> tuple[int, tuple | None]:
        if self.t_err is not None:
            pos, _, code, pc = min(self.errors, key=lambda e: (e[0], e[1]))
            return self.t_stop + 1, (pos, code, pc)
        if not any(q.words for q in self.queues.values()):
            return 0, None                  # nothing to do: DONE on cycle 0
        if self.last_stage >= max_cycles and self.last_stage > 0:
            raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")
        return self.idle_from(), None

    def idle_from(self) -> int:
        """The first cycle on which nothing of this chip is busy (its DONE, or its quiet cycle at a SYNC)."""
        return max([self.last_stage + 1] + [q.next_issue for q in self.queues.values()])


def run_chips(chips: list[ChipRun], max_cycles: int) -> None:
    """Issue the queues of several chips in one cycle order (a system: sim/system.py), so that
    whatever one chip sends another is registered before the cycle the receiver looks for it."""
    loop = IssueLoop(chips, max_cycles)
    loop.run()
    loop.time_out()


class IssueLoop:
    """The event heap of one or more chips. Entries: (cycle, kind, chip, position, payload); kind 0
    a queue looks at its head, 1 an IFETCH vector lands at the end of the cycle, 2 a slice model's
    pending check (`check(t)`).

    `run(until)` issues the events before `until`, so a chip of a system can also advance alone,
    a batch of cycles at a time (sim/scaleout.py). With `releases=False` the loop leaves SYNC
    releases to its caller (`release`), who sees the chips of the group this loop does not hold."""

    def __init__(self, chips: list[ChipRun], max_cycles: int, releases: bool = True):
        self.chips, self.max_cycles, self.releases = chips, max_cycles, releases
        self.heap = []
        for i, chip in enumerate(chips):
            for pos in sorted(chip.queues):
                if chip.queues[pos].words:
                    self.heap.append((0, 0, i, pos, None))
                    chip.queues[pos].scheduled = True
                    chip.pending += 1
        heapq.heapify(self.heap)

    def next_event(self) -> int | None:
        """The cycle of the earliest event not yet issued (None: none left)."""
        return self.heap[0][0] if self.heap else None

    def run(self, until: int | None = None) -> None:
        """Issue every event of a cycle before `until` (all of them if None)."""
        heap, chips, max_cycles = self.heap, self.chips, self.max_cycles
        while heap and (until is None or heap[0][0] < until):
            t, kind, i, pos, land = heapq.heappop(heap)
            chip = chips[i]
            chip.pending -= 1
            if chip.stopped(t, pos):
                continue                        # this chip, or this queue, has stopped
            if t >= max_cycles and t > 0:
                raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")
            if t - chip.timeline.F >= WINDOW:
                chip.timeline.advance_to(t)
            _event(chip, heap, t, kind, i, pos, land)
            if chip.pending == 0 and chip.t_err is None and any(q.parked is not None for q in chip.queues.values()):
                chip.quiet_at = chip.idle_from()
                if self.releases:
                    self._release_group(chip.group)

    def _release_group(self, group: int) -> None:
        """Release the SYNC of `group` if every chip of it is quiet: parked queues issue on T."""
        members = [c for c in self.chips if c.group == group]
        if any(c.quiet_at is None for c in members):
            return
        t_rel = release_cycle([(c.quiet_at, c.config) for c in members])
        for i, c in enumerate(self.chips):
            if c.group == group:
                self.release(i, t_rel)

    def release(self, i: int, t_rel: int) -> None:
        """Chip i's parked queues issue on t_rel (its group's release)."""
        c = self.chips[i]
        c.syncs += 1
        c.sync_wait += t_rel - c.quiet_at
        c.quiet_at = None
        for pos, q in c.queues.items():
            if q.parked is not None:
                q.parked, q.next_issue = None, t_rel
                if q.pc < len(q.words):
                    heapq.heappush(self.heap, (t_rel, 0, i, pos, None))
                    q.scheduled = True
                    c.pending += 1

    def time_out(self) -> None:
        """No release can come any more: chips still held at a SYNC stop with SYNC_TIMEOUT."""
        for c in self.chips:
            if c.quiet_at is not None:
                for pos, q in sorted(c.queues.items()):
                    if q.parked is not None:
                        c.fail(c.quiet_at, pos, 1, Err.SYNC_TIMEOUT, q.parked, lag=0)
                c.quiet_at = None


def release_cycle(quiet: list[tuple[int, ChipConfig]]) -> int:
    """T of a SYNC group whose chips are all quiet, given (q, configuration) per chip: max of q + sync_release."""
    return max(q + spec.sync_release(config) for q, config in quiet)


def _event(chip: ChipRun, heap, t: int, kind: int, i: int, pos: int, land) -> None:
    config, fabric = chip.config, chip.fabric
    fw, depth = config.fetch_words, config.queue_depth
    q = chip.queues.get(pos)

    def push(entry):
        heapq.heappush(heap, entry)
        chip.pending += 1

    def visit_next(q, pos):
        if q.pc < len(q.words) or q.fetch_until >= q.next_issue:     # (the latter: to see an underrun)
            push((q.next_issue, 0, i, pos, None))
            q.scheduled = True

    if kind == 2:                           # a slice model's check that needed later information
        res = land.check(t)
        if isinstance(res, tuple):
            code, pc = res
            chip.fail(t, pos, 2, code, pc)      # (after the queue's own errors, as in hdl/queue.py)
        elif res is not None:
            push((res, 2, i, pos, land))
        return
    if kind == 1:                           # an IFETCH vector lands at the end of t
        held = q.pc - (1 if q.in_nop and t < q.next_issue - 1 else 0)
        if len(q.words) - held + fw > depth:
            chip.fail(t, pos, 0, Err.QUEUE_OVERFLOW, q.fetch_pc)
            return
        d, stream, nwords, sample = land
        was_pending = q.pc < len(q.words)
        q.words.extend(unpack_words(fabric.values(d, stream, pos, sample, 1), nwords, config))
        if not was_pending and not q.scheduled and q.parked is None:
            push((max(q.next_issue, t + 1), 0, i, pos, None))
            q.scheduled = True
        return
    q.scheduled = False
    if q.pc >= len(q.words):                # waiting for fetched words that have not landed
        if q.next_issue <= t and q.fetch_from <= t <= q.fetch_until:
            chip.fail(t, pos, 1, Err.QUEUE_UNDERRUN, q.pc)
        return
    word = q.words[q.pc]
    res = chip.checked.get((pos, word))
    if res is None:
        res = chip.checked[(pos, word)] = _decoded(word, chip.kinds[pos], config, chip.T, chip.last_effect)
    if not isinstance(res, tuple):
        chip.fail(t, pos, 1, res, q.pc)
        return
    mn, ops, n, engine, start, last = res
    if mn == "NOP":
        q.next_issue = t + ops["cycles"]
        q.pc += 1
        q.in_nop = True
        visit_next(q, pos)
        return
    if mn == "SYNC":                        # park until the group's release (run_chips)
        q.parked, q.next_issue, q.in_nop = q.pc, t + 1, False
        q.pc += 1
        return
    if engine is not None:
        first = t + start
        busy_until = chip.busy.get((pos, engine), -1)
        if busy_until >= first:             # engine still busy after this cycle
            q.next_issue = busy_until - first + 1 + t
            visit_next(q, pos)
            return
        if mn == "IFETCH" and q.fill % fw:
            chip.fail(t, pos, 1, Err.FETCH_ALIGN, q.pc)
            return
        chip.busy[(pos, engine)] = first + n - 1
    if mn == "IFETCH":
        count = ops["count"]
        q.fill += count
        q.fetch_from, q.fetch_until, q.fetch_pc = t + 1, t + chip.T["ifetch_write"] + n - 1, q.pc
        for k in range(n):
            push((t + chip.T["ifetch_write"] + k, 1, i, pos,
                  (ops["dir"], ops["stream"], min(fw, count - k * fw), t + chip.T["ifetch_sample"] + k)))
    else:
        model = chip.models[pos]
        refused = model.refuse(mn, ops) if hasattr(model, "refuse") else None
        if refused is not None:             # the slice cannot take it now (a link that is down)
            chip.fail(t, pos, 1, refused, q.pc)
            return
        pending = model.issue(t, mn, ops)
        if pending is not None:             # the model decides part of it later (sim/c2c.py RECV)
            pending.pc = q.pc
            push((pending.next_check, 2, i, pos, pending))
    if t + last > chip.last_stage:
        chip.last_stage = t + last
    q.pc += 1
    q.next_issue = t + 1
    q.in_nop = False
    visit_next(q, pos)
