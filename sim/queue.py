"""Instruction queues and the issue loop (hdl/queue.py, and the run control of hdl/chip.py).

Instruction timing (issue cycles, engine stalls, NOPs, errors) depends on the instruction words
alone, except for IFETCH, whose words come off a stream. So the loop walks queue events in cycle
order, one per instruction rather than per element: a heap of (cycle, kind, position) where kind
0 is a queue looking at its head and kind 1 an IFETCH vector landing at the end of the cycle
(after every issue of that cycle, as in the RTL). Each issued instruction goes to its slice
model as one op; values are computed lazily (sim/lazy.py) when an IFETCH needs its words, or
when the timeline closes a window.

Errors: the chip stops at the end of the first cycle on which any queue fails; the westmost
position is reported, and at one position a landing overflow before the queue's own error.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from isa import spec
from isa.config import ChipConfig
from isa.image import unpack_words

from .lazy import WINDOW, Timeline

T = spec.TIMING
Err = spec.ErrorCode


def _last_effects() -> dict[str, int]:
    """Cycle of each instruction's last effect, relative to its issue, for its last element
    (built per run: tests change TIMING)."""
    return {"READ": max(T["mem_read_access"], T["mem_read_check"], T["mem_read_drive"]),
            "WRITE": max(T["mem_write_sample"], T["mem_write_commit"]),
            "IFETCH": max(T["ifetch_sample"], T["ifetch_write"]),
            "VSET": T["vxm_reg_write"], "VLOAD": max(T["vxm_sample"], T["vxm_reg_write"]),
            "VLOADB": T["vxm_sample"],
            **{m: max(T["vxm_sample"], T["vxm_drive"]) for m in spec.ALU_BY_MNEMONIC},
            **{o.mnemonic: max(T["sxm_sample"], T["sxm_drive"]) for o in spec.SXM_OPCODES},
            "SETMAP": T["sxm_sample"], "MXMCFG": T["mxm_cfg_write"], "LW": T["mxm_sample"],
            "MATMUL": max(T["mxm_install"], T["mxm_sample"] + 1, T["mxm_acc_write"]),
            "ACCREAD": max(T["mxm_accread_access"], T["mxm_accread_drive"])}


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

    def __post_init__(self):
        self.fill = len(self.words)


def _decoded(word: int, kind, config: ChipConfig, last_effect: dict):
    """spec.check's verdict on a word, with what issuing it needs: (mnemonic, operands, elements,
    engine, engine start offset, offset of the last effect of its last element), or the error code."""
    try:
        op, ops = spec.check(word, kind, config)
    except spec.IllegalInstruction as e:
        return e.code
    mn = op.mnemonic
    if mn == "NOP":
        return mn, ops, 0, None, 0, 0
    n = spec.elements(mn, ops, config)
    engine = spec.engine_of(op, ops)
    start = T[spec.ENGINE_START[spec.ENGINE[mn]]] if engine is not None else 0
    return mn, ops, n, engine, start, last_effect[mn] + n - 1


def run(config: ChipConfig, queues: dict[int, Queue], models: dict, kinds: dict, fabric,
        timeline: Timeline, max_cycles: int) -> tuple[int, tuple | None]:
    """Issue every queue to the end. Returns (cycles, None) or (cycles, (position, code, pc))."""
    fw, depth = config.fetch_words, config.queue_depth
    heap = []
    for pos in sorted(queues):
        if queues[pos].words:
            heap.append((0, 0, pos, None))
            queues[pos].scheduled = True
    if not heap:
        return 0, None                      # nothing to do: DONE on cycle 0
    last_effect = _last_effects()
    checked: dict[tuple, object] = {}
    busy: dict[tuple, int] = {}             # (position, engine) -> cycle of its last scheduled element
    errors = []                             # (position, priority, code, pc)
    t_err = None
    last_stage = 0

    def visit_next(q, pos):
        if q.pc < len(q.words) or q.fetch_until >= q.next_issue:     # (the latter: to see an underrun)
            heapq.heappush(heap, (q.next_issue, 0, pos, None))
            q.scheduled = True

    while heap:
        t, kind, pos, land = heap[0]
        if t_err is not None and t > t_err:
            break
        heapq.heappop(heap)
        if t >= max_cycles and t > 0:
            raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")
        if t - timeline.F >= WINDOW:
            timeline.advance_to(t)
        q = queues[pos]
        if kind == 1:                       # an IFETCH vector lands at the end of t
            held = q.pc - (1 if q.in_nop and t < q.next_issue - 1 else 0)
            if len(q.words) - held + fw > depth:
                errors.append((pos, 0, Err.QUEUE_OVERFLOW, q.fetch_pc))
                t_err = t
                continue
            d, stream, nwords, sample = land
            was_pending = q.pc < len(q.words)
            q.words.extend(unpack_words(fabric.values(d, stream, pos, sample, 1), nwords, config))
            if not was_pending and not q.scheduled:
                heapq.heappush(heap, (max(q.next_issue, t + 1), 0, pos, None))
                q.scheduled = True
            continue
        q.scheduled = False
        if q.pc >= len(q.words):            # waiting for fetched words that have not landed
            if q.next_issue <= t and q.fetch_from <= t <= q.fetch_until:
                errors.append((pos, 1, Err.QUEUE_UNDERRUN, q.pc))
                t_err = t
            continue
        word = q.words[q.pc]
        res = checked.get((pos, word))
        if res is None:
            res = checked[(pos, word)] = _decoded(word, kinds[pos], config, last_effect)
        if not isinstance(res, tuple):
            errors.append((pos, 1, res, q.pc))
            t_err = t
            continue
        mn, ops, n, engine, start, last = res
        if mn == "NOP":
            q.next_issue = t + ops["cycles"]
            q.pc += 1
            q.in_nop = True
            visit_next(q, pos)
            continue
        if engine is not None:
            first = t + start
            busy_until = busy.get((pos, engine), -1)
            if busy_until >= first:         # engine still busy after this cycle
                q.next_issue = busy_until - first + 1 + t
                visit_next(q, pos)
                continue
            if mn == "IFETCH" and q.fill % fw:
                errors.append((pos, 1, Err.FETCH_ALIGN, q.pc))
                t_err = t
                continue
            busy[(pos, engine)] = first + n - 1
        if mn == "IFETCH":
            count = ops["count"]
            q.fill += count
            q.fetch_from, q.fetch_until, q.fetch_pc = t + 1, t + T["ifetch_write"] + n - 1, q.pc
            for k in range(n):
                heapq.heappush(heap, (t + T["ifetch_write"] + k, 1, pos,
                                      (ops["dir"], ops["stream"], min(fw, count - k * fw), t + T["ifetch_sample"] + k)))
        else:
            models[pos].issue(t, mn, ops)
        if t + last > last_stage:
            last_stage = t + last
        q.pc += 1
        q.next_issue = t + 1
        q.in_nop = False
        visit_next(q, pos)

    if t_err is not None:
        pos, _, code, pc = min(errors, key=lambda e: (e[0], e[1]))
        return t_err + 1, (pos, code, pc)
    if last_stage >= max_cycles and last_stage > 0:
        raise RuntimeError(f"golden model: program still running after {max_cycles} cycles")
    return max([last_stage + 1] + [q.next_issue for q in queues.values()]), None
