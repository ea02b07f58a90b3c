"""Directed IFETCH programs: refills timed to the cycle, a refill on the last possible cycle,
chained refills, and each fetch error. Each builder returns (program, expected), `expected`
holding the cycle count, error code, position and pc worked out by hand from the spec's
latencies (tests/sim checks the golden model against them; verif/tb_chip.py runs them on RTL).
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.image import Program, pack_words

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)
ERR = spec.ErrorCode


def _nop(n):
    return spec.encode("NOP", cycles=n)


def _read(stream, d, addr, count=1):
    return spec.encode("READ", stream=stream, dir=d, addr=addr, stride=1, count=count)


def _ifetch(stream, d, count):
    return spec.encode("IFETCH", stream=stream, dir=d, count=count)


def _expect(cycles, error=ERR.NONE, position=0, pc=0):
    return {"cycles": cycles, "error": error, "position": position, "pc": pc}


def _failed(cfg: ChipConfig, t: int, error, position: int, pc: int) -> dict:
    """What a run that fails on cycle t reports: it stops error_stop cycles later (spec.TIMING)."""
    return _expect(t + 1 + spec.timing(cfg)["error_stop"], error, position, pc)


def refill(cfg: ChipConfig, slack: int = 0, rng=None) -> tuple[Program, dict]:
    """MEM_E1's queue is refilled twice from MEM_W1's SRAM over east stream 1; the second IFETCH
    is itself a fetched word. The first fetched word issues `slack` cycles after the earliest
    cycle it may (slack=0: on the cycle after its vector lands; -1: one cycle too early, so the
    queue underruns). fetch_words must divide 4 (tiny 2, fpga 1)."""
    rng = rng or np.random.default_rng(0)
    T = spec.timing(cfg)
    p = Program.empty(cfg)
    src, dst = cfg.slice_named("MEM_W1").position, cfg.slice_named("MEM_E1").position
    dist = dst - src
    hop = T["mem_read_drive"] + dist - T["ifetch_sample"]     # IFETCH cycle - READ cycle
    r1 = 2
    f1 = r1 + hop
    # host words of MEM_E1: NOPs until f1, IFETCH (4 words), NOP b: the first fetched word issues on f1+1+b
    b = T["ifetch_write"] + slack
    c0 = f1 + 1 + b
    seg1 = [_read(0, E, 0x20, 3), _ifetch(1, E, 3), _nop(6), _read(2, E, 0x24)]     # c0, c0+1, c0+2, c0+8
    seg2 = [_read(3, E, 0x28, 2), _nop(2), _read(3, W, 0x2C)]                       # c0+9, c0+10, c0+12
    f2 = c0 + 1
    r2 = f2 - hop
    p.add("MEM_E1", [_nop(f1 - 1), _nop(1), _ifetch(1, E, len(seg1)), _nop(b)])   # Q_LEN 4: a multiple of fetch_words
    a1, a2 = 0x100, 0x180
    p.add_code("MEM_E1", "MEM_W1", a1, seg1)
    p.add_code("MEM_E1", "MEM_W1", a2, seg2)
    n1, n2 = len(pack_words(seg1, cfg)), len(pack_words(seg2, cfg))
    p.add("MEM_W1", [_nop(r1), _read(1, E, a1, n1), _nop(r2 - r1 - 1), _read(1, E, a2, n2)])
    p.add_memory("MEM_E1", 0x20, rng.integers(0, 256, (16, cfg.lanes)))
    if slack < 0:        # word 3 (the first fetched one) is needed on f1+2; its vector lands at the end of it
        return p, _failed(cfg, f1 + T["ifetch_write"], ERR.QUEUE_UNDERRUN, dst, 4)
    return p, _expect(c0 + 12 + T["mem_read_drive"] + 1)


def overflow(cfg: ChipConfig, fits: bool) -> tuple[Program, dict]:
    """A full queue whose head waits in a long NOP while fetched vectors land. fits=False: the
    vector lands with queue_depth - 1 words unissued (QUEUE_OVERFLOW, reported at the IFETCH);
    fits=True: with exactly queue_depth - fetch_words unissued, so it lands in the ring slots
    freed by the first words (the ring wraps), and the fetched (zero, illegal) word stops the chip
    when it comes up."""
    p = Program.empty(cfg)
    fw, depth = cfg.fetch_words, cfg.queue_depth
    T = spec.timing(cfg)
    # nothing is sent on the stream: the vectors are zeros, which only matters once issued
    if not fits:
        # one word per vector (fw 1): the first vector takes the slot the IFETCH freed, the second overflows
        n = 1 if fw > 1 else 2
        words = [_ifetch(1, E, n * fw), _nop(100)] + [_nop(1)] * (depth - 2)
        p.add("MEM_E1", words)
        return p, _failed(cfg, T["ifetch_write"] + n - 1, ERR.QUEUE_OVERFLOW, cfg.slice_named("MEM_E1").position, 0)
    words = [_nop(1), _ifetch(1, E, fw), _nop(100)] + [_nop(1)] * (depth - 3)
    p.add("MEM_E1", words)
    # NOP 100 on cycle 2, then depth-3 NOP 1s from cycle 102: word `depth` comes up on 102 + depth - 3
    return p, _failed(cfg, 102 + depth - 3, ERR.ILLEGAL_OPCODE, cfg.slice_named("MEM_E1").position, depth)


def misaligned(cfg: ChipConfig, second: bool) -> tuple[Program, dict]:
    """FETCH_ALIGN: the fill point is odd when an IFETCH comes up (Q_LEN odd, or a previous IFETCH
    whose count is not a multiple of fetch_words)."""
    p = Program.empty(cfg)
    pos = cfg.slice_named("MEM_E1").position
    fw = cfg.fetch_words
    if not second:
        p.add("MEM_E1", [_nop(1)] * fw + [_ifetch(1, E, fw)])      # Q_LEN = fw + 1: the IFETCH comes up on cycle fw
        return p, _failed(cfg, fw, ERR.FETCH_ALIGN, pos, fw)
    p.add("MEM_E1", [_ifetch(1, E, fw + 1), _nop(1), _ifetch(1, E, fw), _nop(50)])
    # the second IFETCH comes up on cycle 2 but the first's engine samples until cycle 1 + vectors - 1
    vectors = spec.elements("IFETCH", {"count": fw + 1}, cfg)
    at = max(2, vectors)
    return p, _failed(cfg, at, ERR.FETCH_ALIGN, pos, 2)


def bad_fields(cfg: ChipConfig, which: str) -> tuple[Program, dict]:
    """Malformed IFETCH words: count 0, a stream that does not exist, reserved bits set."""
    p = Program.empty(cfg)
    pos = cfg.slice_named("VXM").position
    word = {"count0": spec.encode("IFETCH", stream=0, dir=E, count=0),
            "stream": spec.encode("IFETCH", stream=cfg.streams, dir=E, count=2),
            "reserved": spec.encode("IFETCH", stream=0, dir=W, count=2) | 1 << 40}[which]
    p.add("VXM", [_nop(3), word])
    return p, _failed(cfg, 3, ERR.BAD_FIELD, pos, 1)


def applies(case: str, cfg: ChipConfig) -> bool:
    """FETCH_ALIGN needs more than one instruction word per vector: with fetch_words 1 (`fpga`)
    every fill point is aligned."""
    return not (case.startswith("misaligned") and cfg.fetch_words == 1)


CASES = {
    "refill": lambda cfg: refill(cfg, 0),
    "refill_slack": lambda cfg: refill(cfg, 5),
    "refill_late": lambda cfg: refill(cfg, -1),
    "overflow": lambda cfg: overflow(cfg, False),
    "overflow_boundary": lambda cfg: overflow(cfg, True),
    "misaligned_len": lambda cfg: misaligned(cfg, False),
    "misaligned_fetch": lambda cfg: misaligned(cfg, True),
    **{f"bad_{w}": (lambda w: lambda cfg: bad_fields(cfg, w))(w) for w in ("count0", "stream", "reserved")},
}
