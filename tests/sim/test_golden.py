"""The golden model (sim/golden.py) checked against plain numpy and arithmetic on spec.TIMING.

Every expectation here is written from the timing rules (isa/spec.py TIMING and
docs/ARCHITECTURE.md) with numpy indexing and integer arithmetic; nothing is taken from the
model's internals. The latencies are read from spec.TIMING, never written as numbers.
"""
import dataclasses
import zlib

import numpy as np
import pytest

from isa import spec
from isa.config import PRESETS, SliceKind
from isa.ecc import code_for
from isa.image import Program, ProgramError
from sim.golden import Golden
from verif.stimulus import random_instruction_word, random_transfer_program, random_words

CFG = PRESETS["tiny"]
T = spec.TIMING
A, CHK, D = T["mem_read_access"], T["mem_read_check"], T["mem_read_drive"]
S, C = T["mem_write_sample"], T["mem_write_commit"]
HOP = T["stream_hop"]
P = CFG.positions
WORDS = CFG.mem_words
E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)
MEMS = [s.position for s in CFG.slices_of(SliceKind.MEM)]
ERR = spec.ErrorCode


def pos(name: str) -> int:
    return CFG.slice_named(name).position


def rd(stream, d, addr, count, stride=1):
    return spec.encode("READ", stream=stream, dir=d, addr=addr, stride=stride, count=count)


def wr(stream, d, addr, count, stride=1):
    return spec.encode("WRITE", stream=stream, dir=d, addr=addr, stride=stride, count=count)


def nop(n):
    return spec.encode("NOP", cycles=n)


def at(t, word):
    """Queue words issuing `word` on cycle t from cycle 0 (nothing else in the queue)."""
    return timeline((t, word))


def timeline(*items):
    """Queue words that issue each (cycle, word) exactly on its cycle, padding with NOPs
    (cycles strictly increasing; no engine may be busy on them)."""
    out, cursor = [], 0
    for t, word in items:
        assert t >= cursor, (t, cursor)
        if t > cursor:
            out.append(nop(t - cursor))
        out.append(word)
        cursor = t + 1
    return out


def run(program: Program) -> tuple[Golden, object]:
    g = Golden(program)
    return g, g.run()


def read_done(t, n):
    """Cycle count contribution of a READ of n words issued on t: its last event + 1."""
    return t + max(A, CHK, D) + n


def write_done(t, n):
    return t + max(S, C) + n


def catch_issue(t_r, src, dst, element=0):
    """Issue cycle of a WRITE at dst whose first sample is element `element` of a READ at src."""
    return t_r + D + element + abs(dst - src) * HOP - S


def edge_cycle(d, p, drive):
    """Cycle on which a value driven by position p on `drive` is on the chip's edge output."""
    return drive + ((P - p) if d == E else (p + 1)) * HOP


def word_int(row) -> int:
    return int.from_bytes(np.asarray(row, np.uint8).tobytes(), "little")


def zeros(n=1):
    return np.zeros((n, CFG.lanes), np.uint8)


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


# --------------------------------------------------------------------------
# copies
# --------------------------------------------------------------------------
COPY_CASES = {
    # name: (read addr, read stride, count, write addr, write stride)
    "stride1": (100, 1, 40, 0x1000, 1),
    "stride3": (200, 3, 40, 0x1100, 1),
    "stride-1": (500, -1, 40, 0x1200, 1),
    "wrap_up": (WORDS - 37, 5, 40, 0x1300, -2),          # read wraps past mem_words
    "wrap_down": (20, -3, 40, 25, -1),                  # read wraps below 0, write too
    "stride_mod": (WORDS - 3, WORDS + 1, 20, WORDS - 10, 1),   # stride == 1 mod mem_words, write wraps
}


def endpoints(direction, west, east):
    """(source, destination, stream direction, source position, destination position) for a
    transfer between a western and an eastern slice, flowing in `direction`."""
    src, dst = (west, east) if direction == "east" else (east, west)
    return src, dst, (E if direction == "east" else W), pos(src), pos(dst)


@pytest.mark.parametrize("direction", ["east", "west"])
@pytest.mark.parametrize("case", list(COPY_CASES))
def test_copy_between_slices(direction, case, rng):
    raddr, rstride, n, waddr, wstride = COPY_CASES[case]
    src, dst, d, ps, pd = endpoints(direction, "MEM_W0", "MEM_E1")
    mem = random_words(CFG, rng, WORDS)
    p = Program.empty(CFG).add_memory(src, 0, mem)
    t_r = 2
    t_w = catch_issue(t_r, ps, pd)
    p.add(src, at(t_r, rd(5, d, raddr, n, rstride)))
    p.add(dst, at(t_w, wr(5, d, waddr, n, wstride)))
    g, res = run(p)
    ridx = (raddr + rstride * np.arange(n)) % WORDS
    widx = (waddr + wstride * np.arange(n)) % WORDS
    assert len(set(widx.tolist())) == n
    want = np.zeros((WORDS, CFG.lanes), np.uint8)
    want[widx] = mem[ridx]
    assert np.array_equal(g.memory(pd)[widx], mem[ridx])
    assert np.array_equal(g.memory(pd), want)
    assert np.array_equal(g.memory(ps), mem)
    assert res.error == ERR.NONE and res.ecc_corrected == 0 and res.ecc_uncorrectable == 0
    assert res.cycles == max(read_done(t_r, n), write_done(t_w, n), t_w + 1)


def test_worked_example_cycle_count():
    """docs/ARCHITECTURE.md example: READ at MEM_W0 on 0, WRITE at MEM_E1 caught on t_w."""
    p = Program.empty(CFG).add_memory("MEM_W0", 0, np.arange(4 * CFG.lanes).reshape(4, -1))
    p.add("MEM_W0", rd(1, E, 0, 4))
    t_w = D + (pos("MEM_E1") - pos("MEM_W0")) * HOP - S
    p.add("MEM_E1", at(t_w, wr(1, E, 0x10, 4)))
    g, res = run(p)
    assert res.cycles == t_w + C + 4          # last store on t_w + C + 3, plus one
    assert np.array_equal(g.memory(pos("MEM_E1"))[0x10:0x14], np.arange(4 * CFG.lanes).reshape(4, -1))


@pytest.mark.parametrize("direction", ["east", "west"])
@pytest.mark.parametrize("delta", [-2, -1, 0, 1, 2])
def test_write_timing_is_exact(direction, delta, rng):
    """A WRITE issued `delta` cycles off stores the neighbouring words (or the zero passing
    before/after the READ's words): element j stores read element j+delta."""
    n = 8
    src, dst, d, ps, pd = endpoints(direction, "MEM_W1", "MEM_E0")
    mem = random_words(CFG, rng, n)
    p = Program.empty(CFG).add_memory(src, 0x40, mem)
    t_r = 3
    p.add(src, at(t_r, rd(2, d, 0x40, n)))
    p.add(dst, at(catch_issue(t_r, ps, pd) + delta, wr(2, d, 0x80, n)))
    g, res = run(p)
    want = zeros(n)
    for j in range(n):
        if 0 <= j + delta < n:
            want[j] = mem[j + delta]
    assert np.array_equal(g.memory(pd)[0x80:0x80 + n], want)


# --------------------------------------------------------------------------
# the fabric: replacement and edges
# --------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["east", "west"])
def test_downstream_drive_replaces_value(direction, rng):
    """`up` reads 8 words; `mid` drives the same stream on the cycles elements 3..6 pass it.
    `mid` itself still sees (and stores) up's words; `down` and the edge see mid's words for
    elements 3..6 and up's for the others."""
    if direction == "east":
        up, mid, down, d = "MEM_W0", "MEM_E0", "MEM_E1", E
    else:
        up, mid, down, d = "MEM_E1", "MEM_W0", "MEM_W1", W
    pu, pm, pdn = pos(up), pos(mid), pos(down)
    n, first, m, s = 8, 3, 4, 2
    a = random_words(CFG, rng, n)
    b = random_words(CFG, rng, m)
    p = Program.empty(CFG).add_memory(up, 0, a).add_memory(mid, 0x100, b)
    p.add(up, rd(s, d, 0, n))                                   # drives on D+k
    # mid's element i is driven on the cycle up's element first+i passes mid
    t_mid = first + abs(pm - pu) * HOP
    t_wm = catch_issue(0, pu, pm)
    t_wd = catch_issue(0, pu, pdn)
    assert t_wm < t_mid                                         # queue order: WRITE, then READ
    p.add(mid, timeline((t_wm, wr(s, d, 0x200, n)), (t_mid, rd(s, d, 0x100, m))))
    p.add(down, at(t_wd, wr(s, d, 0x300, n)))
    g, res = run(p)
    mixed = a.copy()
    mixed[first:first + m] = b
    assert np.array_equal(g.memory(pm)[0x200:0x200 + n], a)
    assert np.array_equal(g.memory(pdn)[0x300:0x300 + n], mixed)
    expect = {edge_cycle(d, pu, D + k): mixed[k] for k in range(n)}
    end = res.cycles + P + 2
    for t in range(end):
        out = g.edge_out(d, t)
        assert out.shape == (CFG.streams, CFG.lanes)
        assert np.array_equal(out[s], expect.get(t, zeros()[0])), t
        assert not np.delete(out, s, axis=0).any(), t
        assert not g.edge_out(1 - d, t).any(), t
    assert res.cycles == max(read_done(0, n), read_done(t_mid, m), write_done(t_wm, n), write_done(t_wd, n))


def test_slice_stores_what_arrives_not_what_it_drives(rng):
    """A slice's WRITE samples the value arriving from upstream, not its own READ's drive."""
    a = random_words(CFG, rng, 4)
    p = Program.empty(CFG).add_memory("MEM_W0", 0, a).add_memory("MEM_W0", 0x10, a + 1)
    # the WRITE samples on exactly the cycles the slice's own READ drives (nobody upstream drives)
    assert D - S >= 1
    p.add("MEM_W0", timeline((0, rd(1, E, 0, 4)), (D - S, wr(1, E, 0x10, 4))))
    p.add("MEM_E0", at(catch_issue(0, pos("MEM_W0"), pos("MEM_E0")), wr(1, E, 0x20, 4)))
    g, _ = run(p)
    assert not g.memory(pos("MEM_W0"))[0x10:0x14].any()
    assert np.array_equal(g.memory(pos("MEM_E0"))[0x20:0x24], a)


# --------------------------------------------------------------------------
# NOPs, issue, stalls, cycle count
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 17, 1000, (1 << 32) - 1])
def test_nop_alone(n):
    p = Program.empty(CFG).add("MEM_E0", nop(n))
    _, res = run(p)
    assert res.cycles == n and res.error == ERR.NONE


def test_nops_add_up():
    p = Program.empty(CFG).add("MEM_E1", [nop(3), nop(4), nop(5)]).add("MEM_W1", nop(11))
    assert run(p)[1].cycles == 12


@pytest.mark.parametrize("queues", [{}, {3: []}])
def test_empty_program_takes_zero_cycles(queues):
    """docs/ARCHITECTURE.md: a program whose queues are all empty stops on cycle 0, CYCLES = 0."""
    p = Program(CFG, dict(queues), []).add_memory("MEM_W0", 0, zeros())
    assert run(p)[1].cycles == 0


@pytest.mark.parametrize("n", [1, 9])
def test_nop_then_read(n, rng):
    c = 3
    a = random_words(CFG, rng, c)
    ps = pos("MEM_W1")
    p = Program.empty(CFG).add_memory("MEM_W1", 0x30, a).add("MEM_W1", [nop(n), rd(4, W, 0x30, c)])
    g, res = run(p)
    assert res.cycles == read_done(n, c)
    for k in range(c):
        t = edge_cycle(W, ps, n + D + k)
        assert np.array_equal(g.edge_out(W, t)[4], a[k])
    assert not g.edge_out(W, edge_cycle(W, ps, n + D - 1)).any()
    assert not g.edge_out(W, edge_cycle(W, ps, n + D + c)).any()


def test_read_behind_read_stalls_back_to_back(rng):
    """A READ waits while the previous READ has accesses after the current cycle, so the two
    transfers come out back to back; the queue's next word (a WRITE) issues right after."""
    c1, c2 = 20, 5
    a, b = random_words(CFG, rng, c1), random_words(CFG, rng, c2)
    ps = pos("MEM_W0")
    p = Program.empty(CFG).add_memory("MEM_W0", 0, a).add_memory("MEM_W0", 100, b)
    p.add("MEM_W0", [rd(0, E, 0, c1), rd(0, E, 100, c2)])
    g, res = run(p)
    last_access = A + c1 - 1                 # first READ issued on 0
    t2 = max(1, last_access)                 # first cycle with no access of READ 1 after it
    assert t2 + D == D + c1                  # so the second READ's words follow the first's
    seq = np.concatenate([a, b])
    drives = list(range(D, D + c1)) + [t2 + D + k for k in range(c2)]
    assert drives == list(range(D, D + c1 + c2))
    for k, t in enumerate(drives):
        assert np.array_equal(g.edge_out(E, edge_cycle(E, ps, t))[0], seq[k])
    assert not g.edge_out(E, edge_cycle(E, ps, D + c1 + c2)).any()
    assert res.cycles == read_done(t2, c2)


def test_write_behind_read_does_not_wait(rng):
    """READ and WRITE engines are independent: a WRITE behind a long READ issues next cycle."""
    c = 3
    a = random_words(CFG, rng, c)
    pw1, pw0 = pos("MEM_W1"), pos("MEM_W0")
    base = 6
    t_w = base + 1                                             # right after the 20-word READ
    t_r = t_w + S - D - (pw0 - pw1) * HOP                      # MEM_W1 read caught at MEM_W0
    assert t_r >= 0
    p = Program.empty(CFG).add_memory("MEM_W1", 0, a).add_memory("MEM_W0", 0x500, random_words(CFG, rng, 20))
    p.add("MEM_W1", at(t_r, rd(1, E, 0, c)))
    p.add("MEM_W0", [nop(base), rd(0, E, 0x500, 20), wr(1, E, 0x40, c)])
    g, res = run(p)
    assert np.array_equal(g.memory(pw0)[0x40:0x40 + c], a)
    assert res.cycles == read_done(base, 20)


def test_write_behind_write_stalls(rng):
    """A WRITE waits while the previous WRITE still has samples after the current cycle, so two
    WRITEs catch one 14-word READ with no gap and no overlap."""
    c1, c2 = 10, 4
    a = random_words(CFG, rng, c1 + c2)
    ps, pd = pos("MEM_W0"), pos("MEM_E1")
    t_w1 = 3
    t_r = t_w1 + S - D - (pd - ps) * HOP + 10                 # shift everything so t_r >= 0
    t_w1 += 10
    assert t_r >= 0 and catch_issue(t_r, ps, pd) == t_w1
    p = Program.empty(CFG).add_memory("MEM_W0", 0, a)
    p.add("MEM_W0", at(t_r, rd(3, E, 0, c1 + c2)))
    p.add("MEM_E1", [nop(t_w1), wr(3, E, 0x100, c1), wr(3, E, 0x200, c2)])
    g, res = run(p)
    t_w2 = t_w1 + S + c1 - 1                                   # last sample of WRITE 1
    assert t_w2 + S == t_w1 + S + c1                           # samples continue without a gap
    assert np.array_equal(g.memory(pd)[0x100:0x100 + c1], a[:c1])
    assert np.array_equal(g.memory(pd)[0x200:0x200 + c2], a[c1:])
    assert res.cycles == max(read_done(t_r, c1 + c2), write_done(t_w2, c2))


# --------------------------------------------------------------------------
# read after write through SRAM
# --------------------------------------------------------------------------
def test_read_after_write_same_slice(rng):
    """MEM_E0 stores a new word at 0x40 (commit at the end of c_w) while its own READ of 0x40
    (stride 0) accesses it on c_w-2 .. c_w+2: accesses up to c_w see the old word, later ones
    the new one."""
    old, new = random_words(CFG, rng, 1), random_words(CFG, rng, 1)
    pw, pe = pos("MEM_W0"), pos("MEM_E0")
    p = Program.empty(CFG).add_memory("MEM_W0", 0x10, new).add_memory("MEM_E0", 0x40, old)
    p.add("MEM_W0", rd(4, E, 0x10, 1))                         # drive on D
    t_w = catch_issue(0, pw, pe)
    c_w = t_w + C
    n = 5
    t_r = c_w - 2 - A                                          # first access on c_w - 2
    assert 0 <= t_r < t_w
    p.add("MEM_E0", timeline((t_r, rd(5, E, 0x40, n, stride=0)), (t_w, wr(4, E, 0x40, 1))))
    g, res = run(p)
    got = [g.edge_out(E, edge_cycle(E, pe, t_r + D + k))[5] for k in range(n)]
    for k in range(n):
        access = t_r + A + k
        want = old[0] if access <= c_w else new[0]
        assert np.array_equal(got[k], want), (k, access, c_w)
    same = c_w - (t_r + A)
    assert np.array_equal(got[same], old[0]) and np.array_equal(got[same + 1], new[0])
    assert np.array_equal(g.memory(pe)[0x40], new[0])
    assert res.cycles == read_done(t_r, n)


# --------------------------------------------------------------------------
# illegal instructions
# --------------------------------------------------------------------------
READ_OP, WRITE_OP, NOP_OP = (spec.BY_MNEMONIC[m] for m in ("READ", "WRITE", "NOP"))
GOOD = rd(1, E, 0, 2)


def _set(word, op, name, value):
    f = op.field(name)
    return (word & ~f.mask) | (value & ((1 << f.width) - 1)) << f.lsb


ILLEGAL = {
    "zero_word": (0, ERR.ILLEGAL_OPCODE),
    "opcode_ff": (0xFF, ERR.ILLEGAL_OPCODE),
    "opcode_12": (0x12 | GOOD & ~0xFF, ERR.ILLEGAL_OPCODE),
    "opcode_04_high_bits": (0x04 | 0xDEADBEEF << 32, ERR.ILLEGAL_OPCODE),
    "sync_reserved_bits": (0x03 | 1 << 40, ERR.BAD_FIELD),
    "read_reserved_bit15": (GOOD | 1 << 15, ERR.BAD_FIELD),
    "write_reserved_bit15": (wr(1, E, 0, 2) | 1 << 15, ERR.BAD_FIELD),
    "nop_reserved_bit8": (nop(1) | 1 << 8, ERR.BAD_FIELD),
    "nop_reserved_bit31": (nop(1) | 1 << 31, ERR.BAD_FIELD),
    "read_count0": (_set(GOOD, READ_OP, "count", 0), ERR.BAD_FIELD),
    "write_count0": (_set(wr(1, E, 0, 2), WRITE_OP, "count", 0), ERR.BAD_FIELD),
    "read_stream_eq_streams": (_set(GOOD, READ_OP, "stream", CFG.streams), ERR.BAD_FIELD),
    "write_stream_63": (_set(wr(1, E, 0, 2), WRITE_OP, "stream", 63), ERR.BAD_FIELD),
    "read_addr_eq_mem_words": (_set(GOOD, READ_OP, "addr", WORDS), ERR.BAD_FIELD),
    "write_addr_ffff": (_set(wr(1, E, 0, 2), WRITE_OP, "addr", 0xFFFF), ERR.BAD_FIELD),
    "nop_0": (NOP_OP.code, ERR.BAD_FIELD),
}


@pytest.mark.parametrize("case", list(ILLEGAL))
def test_illegal_instruction(case):
    word, code = ILLEGAL[case]
    with pytest.raises(spec.IllegalInstruction) as e:
        spec.check(word, SliceKind.MEM, CFG)
    assert e.value.code == code
    p = Program.empty(CFG)
    # NOP 3 -> GOOD issues on 3 -> the bad word is at the head on 4 (behind a busy read engine)
    p.add("MEM_W1", [nop(3), GOOD, word, GOOD])
    p.add("MEM_E1", [nop(40), wr(1, E, 5, 1)])
    g, res = run(p)
    t_bad = 3 + 1
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (code, pos("MEM_W1"), 2, t_bad + 1)
    assert res.error_info == int(code) | pos("MEM_W1") << 8 | 2 << 16


def test_illegal_first_word():
    p = Program.empty(CFG).add("MEM_E1", [0xFF])
    _, res = run(p)
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.ILLEGAL_OPCODE, pos("MEM_E1"), 0, 1)


def test_same_cycle_failures_report_westmost():
    t_bad = 5
    p = Program.empty(CFG)
    p.add("MEM_E0", [nop(t_bad), NOP_OP.code])                    # BAD_FIELD, east
    p.add("MEM_W1", [nop(2), nop(t_bad - 2), GOOD | 1 << 15])     # BAD_FIELD, west, pc 2
    p.add("MEM_W0", [nop(t_bad), 0x77])                           # ILLEGAL_OPCODE, in between
    _, res = run(p)
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.BAD_FIELD, pos("MEM_W1"), 2, t_bad + 1)
    p.queues[pos("MEM_W1")] = [nop(t_bad + 1), 0]                 # now fails one cycle later
    _, res = run(p)
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.ILLEGAL_OPCODE, pos("MEM_W0"), 1, t_bad + 1)


def test_earliest_failure_wins_over_westmost():
    p = Program.empty(CFG)
    p.add("MEM_W1", [nop(9), 0])
    p.add("MEM_E1", [nop(8), NOP_OP.code])
    _, res = run(p)
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.BAD_FIELD, pos("MEM_E1"), 1, 9)


def test_failure_stops_everyone(rng):
    """Everything due on the failing cycle happens (stores, drives, ECC counting); nothing after:
    a WRITE queued later elsewhere never happens, in-flight stores, drives and checks stop."""
    t_bad = 12
    n = 8
    pe0, pe1, pw0 = pos("MEM_E0"), pos("MEM_E1"), pos("MEM_W0")
    old_e0, words_e1, old_w0 = (random_words(CFG, rng, n) | 1 for _ in range(3))
    p = Program.empty(CFG).add_memory("MEM_E0", 0x20, old_e0).add_memory("MEM_E1", 0x30, words_e1)
    p.add_memory("MEM_W0", 0x40, old_w0)
    p.add("MEM_W1", [nop(t_bad), 0xAB])
    t0 = t_bad - C - 1                   # MEM_E0 WRITE of an undriven stream: commits t_bad-1, t_bad, ...
    p.add("MEM_E0", at(t0, wr(7, E, 0x20, n)))
    t1 = t_bad - D - 2                   # MEM_E1 READ westward: drives t_bad-2, t_bad-1, t_bad, ...
    p.add("MEM_E1", at(t1, rd(6, W, 0x30, n)))
    p.add("MEM_W0", [nop(t_bad + 5), wr(0, E, 0x40, n)])        # would store zeros
    g = Golden(p)
    for k in range(n):                   # a single flipped data bit in every word MEM_E1 reads
        data, ecc = g.host_read_raw(pe1, 0x30 + k)
        data[k % CFG.lanes] ^= 1 << (k % 8)
        g.host_write_raw(pe1, 0x30 + k, data, ecc)
    res = g.run()
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.ILLEGAL_OPCODE, pos("MEM_W1"), 1, t_bad + 1)
    stored = t0 + C + np.arange(n) <= t_bad
    want_e0 = old_e0.copy()
    want_e0[stored] = 0
    assert stored.sum() == 2 and np.array_equal(g.memory(pe0)[0x20:0x20 + n], want_e0)
    assert np.array_equal(g.memory(pw0)[0x40:0x40 + n], old_w0)
    assert res.ecc_corrected == int(np.sum(t1 + CHK + np.arange(n) <= t_bad)) and res.ecc_uncorrectable == 0
    for k in range(n):
        drive = t1 + D + k
        out = g.edge_out(W, edge_cycle(W, pe1, drive))[6]
        assert np.array_equal(out, words_e1[k] if drive <= t_bad else zeros()[0]), k
    assert sum(t1 + D + k <= t_bad for k in range(n)) == 3


def test_every_slice_has_a_queue():
    """ISA 0.3: MEM, VXM, SXM and MXM slices all run instruction queues."""
    assert set(spec.kinds_with_queues(CFG)) == {s.kind for s in CFG.floorplan}


# --------------------------------------------------------------------------
# ECC
# --------------------------------------------------------------------------
def _ecc_program(src, dst, n, base_dst=0x1000, stream=3):
    ps, pd = pos(src), pos(dst)
    d = E if pd > ps else W
    p = Program.empty(CFG)
    p.add(src, rd(stream, d, 0, n))
    p.add(dst, at(catch_issue(0, ps, pd), wr(stream, d, base_dst, n)))
    return p


def _flip(data, ecc, bit):
    data = data.copy()
    if bit < CFG.word_bits:
        data[bit // 8] ^= 1 << (bit % 8)
    else:
        ecc ^= 1 << (bit - CFG.word_bits)
    return data, ecc


def test_ecc_single_bit_flips_corrected(rng):
    code = code_for(CFG.word_bits)
    nbits = CFG.word_bits + code.stored_bits
    n = 1000
    words = random_words(CFG, rng, n)
    p = _ecc_program("MEM_W1", "MEM_E0", n).add_memory("MEM_W1", 0, words)
    g = Golden(p)
    ps, pd = pos("MEM_W1"), pos("MEM_E0")
    bits = rng.permutation(np.concatenate([np.arange(nbits), rng.integers(0, nbits, n - nbits)]))
    for a in range(n):
        ecc = code.encode(word_int(words[a]))                 # stored ECC from isa.ecc
        data, stored = g.host_read_raw(ps, a)
        assert np.array_equal(data, words[a]) and stored == ecc
        g.host_write_raw(ps, a, *_flip(words[a], ecc, int(bits[a])))
    res = g.run()
    assert res.error == ERR.NONE and res.ecc_corrected == n and res.ecc_uncorrectable == 0
    assert np.array_equal(g.memory(pd)[0x1000:0x1000 + n], words)
    for a in range(0, n, 7):
        data, ecc = g.host_read_raw(pd, 0x1000 + a)
        assert ecc == code.encode(word_int(words[a]))


def test_ecc_double_bit_flips_flagged(rng):
    code = code_for(CFG.word_bits)
    nbits = CFG.word_bits + code.stored_bits
    n = 600
    words = random_words(CFG, rng, n)
    p = _ecc_program("MEM_E1", "MEM_W1", n, stream=6).add_memory("MEM_E1", 0, words)
    g = Golden(p)
    ps, pd = pos("MEM_E1"), pos("MEM_W1")
    damaged = np.zeros(n, bool)
    passed = words.copy()
    for a in range(n):
        if a % 6 == 5:                                         # every sixth word left intact
            continue
        b1, b2 = rng.choice(nbits, 2, replace=False)
        data, ecc = _flip(words[a], code.encode(word_int(words[a])), int(b1))
        data, ecc = _flip(data, ecc, int(b2))
        g.host_write_raw(ps, a, data, ecc)
        damaged[a] = True
        passed[a] = data                                       # uncorrectable: passed through unchanged
    res = g.run()
    assert res.ecc_uncorrectable == damaged.sum() == 500 and res.ecc_corrected == 0
    got = g.memory(pd)[0x1000:0x1000 + n]
    assert np.array_equal(got, passed)
    assert np.array_equal(got[~damaged], words[~damaged])
    # no silent corruption: every word that arrived different from the original was flagged
    wrong = ~np.all(got == words, axis=1)
    assert not (wrong & ~damaged).any()


# --------------------------------------------------------------------------
# constrained-random programs (verif/stimulus.py)
# --------------------------------------------------------------------------
def _preload(program: Program) -> dict[int, np.ndarray]:
    out = {p: np.zeros((WORDS, CFG.lanes), np.uint8) for p in MEMS}
    for seg in program.memory:
        out[seg.position][seg.addr:seg.addr + len(seg.data)] = seg.data
    return out


@pytest.mark.parametrize("seed", range(5))
def test_random_transfer_program(seed):
    prog, plan = random_transfer_program(CFG, np.random.default_rng(seed), min_cycles=2000, return_plan=True)
    again = random_transfer_program(CFG, np.random.default_rng(seed), min_cycles=2000)
    assert prog == again                                       # the generator is deterministic
    prog.check_instructions()
    assert all(len(q) <= CFG.queue_depth for q in prog.queues.values())
    g1, r1 = run(prog)
    g2, r2 = run(prog)
    assert r1 == r2 and r1.cycles >= 2000 and r1.error == ERR.NONE
    for p in MEMS:
        assert np.array_equal(g1.memory(p), g2.memory(p))
    assert r1.cycles == plan.cycles
    assert plan.mismatches(g1) == []
    # independently of the plan's data: words copied straight from the preload arrived
    init = _preload(prog)
    written = {p: set() for p in MEMS}
    for t in plan.transfers:
        for c in t.catches:
            written[c.position].update(c.addrs.tolist())
    checked = 0
    for t in plan.transfers:
        if t.kind != "copy" or written[t.source] & set(t.read_addrs.tolist()):
            continue
        src_rows = init[t.source][t.read_addrs]
        for c in t.catches:
            rows = src_rows[c.first:c.first + c.count]
            assert np.array_equal(g1.memory(c.position)[c.addrs[c.final]], rows[c.final])
            checked += int(c.final.sum())
    assert checked > 200


def test_random_transfer_program_coverage():
    """Across a few seeds the generator produces every kind of traffic the brief asks for."""
    kinds, strides, wraps, multi, partial, stalls = set(), set(), 0, 0, 0, 0
    for seed in range(5):
        prog, plan = random_transfer_program(CFG, np.random.default_rng(seed), min_cycles=2000, return_plan=True)
        for t in plan.transfers:
            kinds.add(t.kind)
            if t.source is not None:
                strides.add(t.stride)
                end = t.addr + (t.count - 1) * t.stride
                wraps += not 0 <= end < WORDS
                partial += any(c.count < t.count for c in t.catches)
            multi += len(t.catches) > 1
        for words in prog.queues.values():      # READ directly behind READ: left to the stall
            ops = [spec.decode(w)[0].mnemonic for w in words]
            stalls += sum(a == b != "NOP" for a, b in zip(ops, ops[1:]))
    assert kinds == {"copy", "raw", "edge", "stray", "zeros"}
    assert {1, -1, 0} <= strides and min(strides) < -1 and max(strides) > 1
    assert wraps > 10 and multi > 5 and partial > 5 and stalls > 5


def test_random_transfer_program_fpga_config():
    cfg = PRESETS["fpga"]
    prog, plan = random_transfer_program(cfg, np.random.default_rng(7), min_cycles=1500, return_plan=True)
    g, res = run(prog)
    assert res.cycles >= 1500 and plan.mismatches(g) == []


@pytest.mark.parametrize("drive, commit", [(5, C), (D, 4)])
def test_random_transfer_program_other_latencies(monkeypatch, drive, commit):
    """With longer mem_read_drive / mem_write_commit (allowed by the RTL), the generator's
    timeline and the model still agree: both read TIMING, neither hard-codes it."""
    monkeypatch.setitem(spec.TIMING, "mem_read_drive", drive)
    monkeypatch.setitem(spec.TIMING, "mem_write_commit", commit)
    prog, plan = random_transfer_program(CFG, np.random.default_rng(11), min_cycles=600, return_plan=True)
    g, res = run(prog)
    assert res.cycles >= 600 and plan.mismatches(g) == []


@pytest.mark.parametrize("extra_drive, extra_commit", [(2, 0), (0, 2)])
def test_other_latencies_through_the_config(extra_drive, extra_commit):
    """The same as above with the longer latencies as the configuration's overrides
    (ChipConfig.latency) and the base table left alone: generator and model both read
    spec.timing(cfg); a READ's words and a caught WRITE's stores land on the cycles it gives."""
    cfg = dataclasses.replace(CFG, latency=(("mem_read_drive", D + extra_drive), ("mem_write_commit", C + extra_commit)))
    Tc = spec.timing(cfg)
    assert (Tc["mem_read_drive"], Tc["mem_write_commit"]) == (D + extra_drive, C + extra_commit)
    assert spec.timing(CFG) == T
    prog, plan = random_transfer_program(cfg, np.random.default_rng(11), min_cycles=600, return_plan=True)
    assert prog.config is cfg
    g, res = run(prog)
    assert res.cycles >= 600 and plan.mismatches(g) == []
    # the worked example on cfg: READ at MEM_W0 on 0, its words caught at MEM_E1 and stored
    words = np.arange(4 * cfg.lanes).reshape(4, -1)
    pw, pe = cfg.slice_named("MEM_W0").position, cfg.slice_named("MEM_E1").position
    t_w = Tc["mem_read_drive"] + (pe - pw) * Tc["stream_hop"] - Tc["mem_write_sample"]
    p = Program.empty(cfg).add_memory("MEM_W0", 0, words)
    p.add("MEM_W0", rd(1, E, 0, 4)).add("MEM_E1", at(t_w, wr(1, E, 0x10, 4)))
    g, res = run(p)
    read_end = max(Tc["mem_read_access"], Tc["mem_read_check"], Tc["mem_read_drive"])
    assert res.cycles == max(read_end, t_w + max(Tc["mem_write_sample"], Tc["mem_write_commit"])) + 4
    assert np.array_equal(g.memory(pe)[0x10:0x14], words)
    # the READ's words leave the east edge exactly mem_read_drive (+ flight) after their issue
    for k in range(4):
        edge = Tc["mem_read_drive"] + k + (cfg.positions - pw) * Tc["stream_hop"]
        assert np.array_equal(g.edge_out(E, edge)[1], words[k])
    assert not g.edge_out(E, Tc["mem_read_drive"] - 1 + (cfg.positions - pw) * Tc["stream_hop"]).any()


@pytest.mark.parametrize("min_cycles", [0, 1, 100])
def test_random_transfer_program_short(min_cycles):
    prog, plan = random_transfer_program(CFG, np.random.default_rng(3), min_cycles=min_cycles, return_plan=True)
    if not prog.queues:
        return                                   # nothing to run (see test_empty_program_takes_zero_cycles)
    g, res = run(prog)
    assert res.cycles >= min_cycles and plan.mismatches(g) == []


def test_random_words(rng):
    w = random_words(CFG, rng, 300)
    assert w.dtype == np.uint8 and w.shape == (300, CFG.lanes)
    assert w.min() == 0 and w.max() == 255


def test_random_instruction_word(rng):
    codes = []
    for _ in range(3000):
        w = random_instruction_word(rng)
        assert 0 <= w < 1 << spec.WORD_BITS
        try:
            spec.check(w, SliceKind.MEM, CFG)
            codes.append(ERR.NONE)
        except spec.IllegalInstruction as e:
            codes.append(e.code)
    codes = np.array(codes)
    legal = np.mean(codes == ERR.NONE)
    assert 0.1 < legal < 0.5
    assert np.mean(codes == ERR.ILLEGAL_OPCODE) > 0.3 and np.mean(codes == ERR.BAD_FIELD) > 0.05
    with_cfg = np.mean([_legal(random_instruction_word(rng, CFG)) for _ in range(1000)])
    assert with_cfg > legal


def _legal(word) -> bool:
    try:
        spec.check(word, SliceKind.MEM, CFG)
        return True
    except spec.IllegalInstruction:
        return False
