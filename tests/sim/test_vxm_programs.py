"""Whole VXM / SXM programs through the golden model (sim/golden.py) on the `tiny` preset.

Every expectation is computed here from the stream timing rule of docs/ISA.md (a value driven by
position p on cycle t is seen at p+1 eastward / p-1 westward on t+stream_hop, one position per
cycle) and the latencies in spec.TIMING, with numpy for the data. Latencies are always read from
spec.TIMING by name.

Stream data only enters from MEM READs (edge inputs are zero) and each MEM slice has one read
engine (one stream per cycle), so a full int32 group (four streams on one cycle) is assembled by
an SXM: four MEM slices each put one byte plane on a stream flowing *towards* the SXM, and the
SXM re-drives the four planes as one group (SHIFT arg=0, width 4) back towards the VXM.
"""
import zlib
from collections import defaultdict

import numpy as np
import pytest

from isa import spec
from isa.asm import AsmError, assemble
from isa.config import PRESETS
from isa.image import Program
from isa.spec import DType
from isa.timed import TimedProgram
from sim.golden import Golden

CFG = PRESETS["tiny"]
LANES = CFG.lanes
T = spec.TIMING
HOP = T["stream_hop"]
RA, RC, RD = T["mem_read_access"], T["mem_read_check"], T["mem_read_drive"]
WS, WC = T["mem_write_sample"], T["mem_write_commit"]
VS, VD, VR = T["vxm_sample"], T["vxm_drive"], T["vxm_reg_write"]
SS, SD, SM = T["sxm_sample"], T["sxm_drive"], T["sxm_map_write"]
E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)
I8, I16, I32 = int(DType.I8), int(DType.I16), int(DType.I32)
NBYTES = {I8: 1, I16: 2, I32: 4}
ERR = spec.ErrorCode
I32_MIN, I32_MAX = -2**31, 2**31 - 1


def pos(name: str) -> int:
    return CFG.slice_named(name).position


VXM = pos("VXM")
SXM_W, SXM_E = pos("SXM_W"), pos("SXM_E")


def test_floorplan_assumed_here():
    assert [s.name for s in CFG.floorplan] == ["C2C_W0", "MXM_W0", "SXM_W", "MEM_W1", "MEM_W0", "VXM", "MEM_E0",
                                               "MEM_E1", "SXM_E", "MXM_E0", "C2C_E0"]
    assert (CFG.lanes, CFG.streams, CFG.vxm_alus, CFG.vxm_regs, CFG.sxm_width) == (16, 8, 4, 8, 8)


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


def R(index: int) -> int:
    return spec.operand(index, reg=True)


def S(index: int, d: int) -> int:
    return spec.operand(index, d)


# --------------------------------------------------------------------------
# values <-> byte planes (written here, independently of sim/vxm.py)
# --------------------------------------------------------------------------
def planes_of(values, nb: int) -> np.ndarray:
    """int values [n, lanes] -> uint8 [n, nb, lanes], byte j of every lane on plane j."""
    v = np.asarray(values, np.int64) % (1 << (8 * nb))
    return np.stack([(v // 256**j) % 256 for j in range(nb)], axis=1).astype(np.uint8)


def values_of(planes, nb: int) -> np.ndarray:
    """uint8 [..., nb, lanes] -> signed int64 [..., lanes]."""
    p = np.asarray(planes, np.int64)
    u = sum(p[..., j, :] * 256**j for j in range(nb))
    half = 1 << (8 * nb - 1)
    return np.where(u >= half, u - 2 * half, u)


def wrap(v, nb: int):
    m = 1 << (8 * nb)
    v = np.asarray(v, object) % m
    return np.where(v >= m // 2, v - m, v).astype(np.int64)


def hops(src: int, dst: int, d: int) -> int:
    n = dst - src if d == E else src - dst
    assert n >= 1, (src, dst, d)
    return n


# --------------------------------------------------------------------------
# program builder: TimedProgram plus the bookkeeping the expectations need
# --------------------------------------------------------------------------
WRITE_BASE = 0x1000
JUNK = 0xA5


class Plan:
    def __init__(self):
        self.tp = TimedProgram(CFG)
        self.items: list[tuple[str, int, str, dict]] = []
        self.read_addr = defaultdict(int)
        self.write_addr = defaultdict(lambda: WRITE_BASE)

    def at(self, name: str, cycle: int, mnemonic: str, **ops) -> None:
        self.tp.at(name, cycle, mnemonic, **ops)
        self.items.append((name, cycle, mnemonic, ops))

    def feed(self, mem: str, d: int, stream: int, target: int, t_arrive: int, rows) -> None:
        """READ rows (uint8 [n, lanes]) from `mem` so that row k passes position `target` on stream
        (d, stream) on cycle t_arrive + k."""
        rows = np.asarray(rows, np.uint8).reshape(-1, LANES)
        addr = self.read_addr[mem]
        self.read_addr[mem] += len(rows)
        self.tp.load(mem, addr, rows)
        t = t_arrive - hops(pos(mem), target, d) * HOP - RD
        self.at(mem, t, "READ", stream=stream, dir=d, addr=addr, stride=1, count=len(rows))

    def catch(self, mem: str, d: int, stream: int, src: int, t_drive: int, n: int) -> int:
        """WRITE the n vectors that position `src` drives on (d, stream) from cycle t_drive; the
        target words are preloaded with junk so that every store is visible. Returns the address."""
        addr = self.write_addr[mem]
        self.write_addr[mem] += n
        self.tp.load(mem, addr, np.full((n, LANES), JUNK, np.uint8))
        t_pass = t_drive + hops(src, pos(mem), d) * HOP
        self.at(mem, t_pass - WS, "WRITE", stream=stream, dir=d, addr=addr, stride=1, count=n)
        return addr

    def feed_group(self, sxm: str, src: int, planes, t_sample: int) -> int:
        """Put planes (uint8 [n, w, lanes], w <= 4) on the streams src..src+w-1 flowing towards SXM `sxm`
        so that element k passes it on t_sample + k: plane j from the j-th nearest MEM slice.
        Returns the source direction."""
        p = pos(sxm)
        d = W if p < VXM else E
        mems = sorted(("MEM_W1", "MEM_W0", "MEM_E0", "MEM_E1"), key=lambda m: abs(pos(m) - p))
        planes = np.asarray(planes, np.uint8)
        for j in range(planes.shape[1]):
            self.feed(mems[j], d, src + j, p, t_sample, planes[:, j])
        return d

    def gather(self, values, t_vxm: int, ddir: int, dst: int, src: int) -> None:
        """int32 lanes `values` [n, lanes] as the group (ddir, dst..dst+3) passing the VXM on
        t_vxm + k, re-driven by SXM_W (eastward) or SXM_E (westward) from streams src..src+3."""
        sxm = "SXM_W" if ddir == E else "SXM_E"
        t_issue = t_vxm - hops(pos(sxm), VXM, ddir) * HOP - SD
        planes = planes_of(values, 4)
        d = self.feed_group(sxm, src, planes, t_issue + SS)
        self.at(sxm, t_issue, "SHIFT", stream=src, dir=d, arg=0, dst=dst, ddir=ddir, width=4, count=len(planes))

    def feed_vxm(self, d: int, base: int, planes, t_vxm: int) -> None:
        """Up to two planes (uint8 [n, nb, lanes]) on (d, base..) passing the VXM on t_vxm + k, from the
        MEM slices next to it (MEM_W0 / MEM_E0 plane 0, MEM_W1 / MEM_E1 plane 1)."""
        mems = ("MEM_W0", "MEM_W1") if d == E else ("MEM_E0", "MEM_E1")
        planes = np.asarray(planes, np.uint8)
        for j in range(planes.shape[1]):
            self.feed(mems[j], d, base + j, VXM, t_vxm, planes[:, j])

    def cycles(self) -> int:
        """Expected RunResult.cycles: the cycle of the last thing that happens (access, check, drive,
        sample, store, register or map write), plus one."""
        end = 0
        for _, t, m, ops in self.items:
            n = ops.get("count", 1)
            if m == "READ":
                last = t + max(RA, RC, RD) + n - 1
            elif m == "WRITE":
                last = t + max(WS, WC) + n - 1
            elif m == "VSET":
                last = t + VR
            elif m == "VLOAD":
                last = t + max(VS, VR)
            elif m == "SETMAP":
                last = t + max(SS, SM)
            elif m in spec.ALU_BY_MNEMONIC:
                last = t + max(VS, VD) + n - 1
            else:
                last = t + max(SS, SD) + n - 1
            end = max(end, last + 1)
        return end

    def program(self) -> Program:
        return self.tp.program()

    def run(self) -> tuple[Golden, object]:
        g = Golden(self.program())
        res = g.run()
        assert res.error == ERR.NONE, res
        return g, res


def seen(g: Golden, d: int, base: int, nb: int, position: int, cycle: int) -> np.ndarray:
    """Signed lane values of the nb-stream group (d, base) passing `position` on `cycle`."""
    planes = np.stack([g.stream_value(d, base + j, position, cycle) for j in range(nb)])
    return values_of(planes, nb)


def stored(g: Golden, mem: str, addr: int, n: int) -> np.ndarray:
    return g.memory(pos(mem))[addr:addr + n]


def rand_i32(rng, n, edges=True):
    v = rng.integers(I32_MIN, I32_MAX, (n, LANES), endpoint=True)
    if edges:
        pick = rng.random((n, LANES)) < 0.15
        v[pick] = rng.choice([I32_MIN, I32_MAX, 0, -1, 1, -128, 127, -32768, 32767], int(pick.sum()))
    return v


def rand_t(rng, n, t):
    lo, hi = spec.dtype_range(t)
    v = rng.integers(lo, hi, (n, LANES), endpoint=True)
    pick = rng.random((n, LANES)) < 0.15
    v[pick] = rng.choice([lo, hi, 0, -1, 1], int(pick.sum()))
    return v


# --------------------------------------------------------------------------
# int32 ADD of two groups read from MEM, written back on exact cycles
# --------------------------------------------------------------------------
def test_int32_add_exact_latency(rng):
    n = 2
    a, b = rand_i32(rng, n), rand_i32(rng, n)
    s0 = 40                                                  # the ADD samples its operands on s0, s0+1
    p = Plan()
    p.gather(a, s0, E, dst=0, src=0)                         # a: E0..E3 via SXM_W
    p.gather(b, s0, W, dst=4, src=4)                         # b: W4..W7 via SXM_E
    t_add = s0 - VS
    p.at("VXM", t_add, "ADD", a=S(0, E), b=S(4, W), dst=0, ddir=E, type=I32, alu=0, count=n)
    td = t_add + VD                                          # element k driven at the VXM on td + k
    # direct catches of two planes (one write engine per MEM slice, one stream each), plus one WRITE
    # a cycle early and one a cycle after the last element
    ex0 = p.catch("MEM_E0", E, 0, VXM, td, n)
    ex2 = p.catch("MEM_E1", E, 2, VXM, td, n)
    early = p.catch("MEM_E0", E, 0, VXM, td - 1, 1)
    late = p.catch("MEM_E0", E, 0, VXM, td + n, 1)
    # all four planes: SXM_E takes the group as it passes and re-drives it westward past four MEMs
    t_redir = td + hops(VXM, SXM_E, E) * HOP - SS
    p.at("SXM_E", t_redir, "SHIFT", stream=0, dir=E, arg=0, dst=0, ddir=W, width=4, count=n)
    back = {j: p.catch(m, W, j, SXM_E, t_redir + SD, n) for j, m in enumerate(("MEM_E1", "MEM_E0", "MEM_W0", "MEM_W1"))}
    g, res = p.run()

    want = wrap(a + b, 4)
    wp = planes_of(want, 4)
    assert np.array_equal(stored(g, "MEM_E0", ex0, n), wp[:, 0])
    assert np.array_equal(stored(g, "MEM_E1", ex2, n), wp[:, 2])
    assert not stored(g, "MEM_E0", early, 1).any() and not stored(g, "MEM_E0", late, 1).any()
    for j, m in enumerate(("MEM_E1", "MEM_E0", "MEM_W0", "MEM_W1")):
        assert np.array_equal(stored(g, m, back[j], n), wp[:, j]), m
    for k in range(n):
        assert np.array_equal(seen(g, E, 0, 4, VXM + 1, td + HOP + k), want[k])
    assert not seen(g, E, 0, 4, VXM + 1, td + HOP - 1).any()              # one cycle early: nothing
    assert not seen(g, E, 0, 4, VXM + 1, td + HOP + n).any()              # one cycle after the last
    assert not np.array_equal(want[0], want[1])
    assert res.cycles == p.cycles()
    # the last event is the store of the last element at MEM_W1
    t_w = t_redir + SD + hops(SXM_E, pos("MEM_W1"), W) * HOP - WS
    assert res.cycles == t_w + WC + n


# --------------------------------------------------------------------------
# registers: VSET broadcast, VSET timing, VLOAD per lane
# --------------------------------------------------------------------------
def test_vset_timing_and_truncation(rng):
    assert VS + 1 > VR, "the layout below puts the second VSET right after the first op"
    n = 6
    s0 = 20
    a = rand_t(rng, n, I8)
    old, new = 0x12345607, 0x7FFFFF90                        # read as int8: 7 and -112
    p = Plan()
    p.feed_vxm(E, 0, planes_of(a, 1), s0)
    p.at("VXM", s0 - VS - 3, "VSET", r=0, imm=old)
    p.at("VXM", s0 - VS, "ADD", a=S(0, E), b=R(0), dst=1, ddir=E, type=I8, alu=0, count=3)   # samples s0..s0+2
    t_v = s0 + 1 - VR                                        # the register is written at the end of s0+1
    p.at("VXM", t_v, "VSET", r=0, imm=new)
    p.at("VXM", s0 + 3 - VS, "ADD", a=S(0, E), b=R(0), dst=1, ddir=E, type=I8, alu=1, count=3)
    out = p.catch("MEM_E0", E, 1, VXM, s0 - VS + VD, n)
    g, res = p.run()
    sample = s0 + np.arange(n)
    b = np.where(sample <= t_v + VR, 7, -112)
    assert b.tolist() == [7, 7, -112, -112, -112, -112]
    want = wrap(a + b[:, None], 1)
    assert np.array_equal(values_of(stored(g, "MEM_E0", out, n)[:, None, :], 1), want)
    assert res.cycles == p.cycles()


def test_vset_broadcast_int32(rng):
    s0 = 30
    x = rand_i32(rng, 3)
    p = Plan()
    imms = {0: I32_MIN + 5, 1: -7, 2: -123456789, 3: I32_MAX}
    for r, v in imms.items():
        p.at("VXM", r, "VSET", r=r, imm=v)
    p.gather(x, s0, E, dst=0, src=0)
    p.at("VXM", s0 - VS, "ADD", a=S(0, E), b=R(2), dst=4, ddir=E, type=I32, alu=0, count=3)
    p.at("VXM", s0 - VS + 1, "ADD", a=R(0), b=R(1), dst=0, ddir=W, type=I32, alu=1, count=1)
    p.at("VXM", s0 - VS + 2, "SUB", a=R(1), b=R(3), dst=4, ddir=W, type=I32, alu=2, count=1)
    p.at("VXM", s0 - VS + 3, "MUL", a=R(3), b=R(3), dst=0, ddir=W, type=I32, alu=3, count=1)
    g, res = p.run()
    td = s0 - VS + VD
    for k in range(3):
        assert np.array_equal(seen(g, E, 4, 4, VXM + 1, td + k + HOP), wrap(x[k] + imms[2], 4))
    assert seen(g, W, 0, 4, VXM - 1, td + 1 + HOP).tolist() == [I32_MAX - 1] * LANES     # INT32_MIN+5-7 wraps
    assert seen(g, W, 4, 4, VXM - 1, td + 2 + HOP).tolist() == [I32_MAX - 5] * LANES     # -2**31 - 6 wraps
    assert seen(g, W, 0, 4, VXM - 1, td + 3 + HOP).tolist() == [1] * LANES               # (2**31-1)**2 mod 2**32
    assert res.cycles == p.cycles()


def test_vload_per_lane_registers(rng):
    s1 = 30
    v32 = rand_i32(rng, 1)
    v16 = rand_t(rng, 1, I16)
    v8 = rand_t(rng, 1, I8)
    p = Plan()
    p.gather(v32, s1, E, dst=0, src=0)                            # int32 group at the VXM on s1
    p.feed_vxm(E, 4, planes_of(v16, 2), s1 + 1)                   # int16 group E4..E5 on s1+1
    p.feed_vxm(W, 6, planes_of(v8, 1), s1 + 2)                    # int8 stream W6 on s1+2
    t_l = s1 - VS
    # ALU0 reads R2 on t_l+VR-1, t_l+VR (old: zero at START) and t_l+VR+1 (new)
    p.at("VXM", t_l + VR - VS - 1, "ADD", a=R(2), b=R(7), dst=0, ddir=W, type=I32, alu=0, count=3)
    p.at("VXM", t_l, "VLOAD", a=S(0, E), r=2, type=I32)
    p.at("VXM", t_l + 1, "VLOAD", a=S(4, E), r=3, type=I16)
    p.at("VXM", t_l + 2, "VLOAD", a=S(6, W), r=4, type=I8)
    t3 = t_l + 2 + VR + 1 - VS                                    # first sample after R4 is written
    p.at("VXM", t3, "ADD", a=R(3), b=R(7), dst=0, ddir=W, type=I32, alu=1, count=1)
    p.at("VXM", t3 + 1, "ADD", a=R(4), b=R(7), dst=0, ddir=W, type=I32, alu=2, count=1)
    p.at("VXM", t3 + 2, "ADD", a=R(2), b=R(7), dst=4, ddir=W, type=I8, alu=3, count=1)    # low byte of R2
    p.at("VXM", t3 + 3, "SUB", a=R(7), b=R(3), dst=4, ddir=W, type=I16, alu=0, count=1)  # R3 read as int16
    g, res = p.run()
    look = lambda t_issue, base, nb: seen(g, W, base, nb, VXM - 1, t_issue + VD + HOP)
    t0 = t_l + VR - VS - 1
    assert not look(t0, 0, 4).any() and not look(t0 + 1, 0, 4).any()
    assert np.array_equal(look(t0 + 2, 0, 4), v32[0])
    assert np.array_equal(look(t3, 0, 4), v16[0])                 # sign-extended to int32
    assert np.array_equal(look(t3 + 1, 0, 4), v8[0])
    assert np.array_equal(look(t3 + 2, 4, 1), wrap(v32[0], 1))
    assert np.array_equal(look(t3 + 3, 4, 2), wrap(-v16[0], 2))
    assert (v16 < 0).any() and (v8 < 0).any()
    assert res.cycles == p.cycles()


# --------------------------------------------------------------------------
# ALUs: several at once, back to back, a busy ALU stalls the queue, collisions
# --------------------------------------------------------------------------
def i16_ref(op, a, b):
    a16, b16 = a.astype(np.int16), b.astype(np.int16)
    with np.errstate(over="ignore"):
        if op == "ADD":
            r = a16 + b16
        elif op == "SUB":
            r = a16 - b16
        elif op == "MUL":
            r = a16 * b16
        elif op == "MAX":
            r = np.maximum(a16, b16)
        elif op == "MIN":
            r = np.minimum(a16, b16)
        elif op == "CMPLT":
            r = np.where(a16 < b16, np.int16(-1), np.int16(0))
        else:
            raise KeyError(op)
    return r.astype(np.int64)


def test_four_alus_at_once_and_back_to_back(rng):
    n = 14
    s0 = 20
    a, b = rand_t(rng, n, I16), rand_t(rng, n, I16)
    p = Plan()
    p.feed_vxm(E, 0, planes_of(a, 2), s0)                         # a on E0..E1
    p.feed_vxm(W, 0, planes_of(b, 2), s0)                         # b on W0..W1
    cnt = 8
    # (alu, op, dst, ddir): issued on consecutive cycles, all running at once
    ops = [(0, "ADD", 2, E), (1, "SUB", 4, E), (2, "MUL", 2, W), (3, "MAX", 4, W)]
    for i, (alu, op, dst, dd) in enumerate(ops):
        p.at("VXM", s0 - VS + i, op, a=S(0, E), b=S(0, W), dst=dst, ddir=dd, type=I16, alu=alu, count=cnt)
    # ALU0 again, issued so that its first sample directly follows its last one: no gap
    t_b2b = s0 - VS + cnt
    p.at("VXM", t_b2b, "CMPLT", a=S(0, E), b=S(0, W), dst=2, ddir=E, type=I16, alu=0, count=n - cnt)
    out_lo = p.catch("MEM_E0", E, 2, VXM, s0 - VS + VD, n)
    out_hi = p.catch("MEM_E1", E, 3, VXM, s0 - VS + VD, n)
    g, res = p.run()
    # every stream passing the VXM's neighbours, on every cycle of the window
    expect = defaultdict(lambda: np.zeros(LANES, np.int64))          # (d, base, drive cycle) -> int16 values
    for i, (alu, op, dst, dd) in enumerate(ops):
        for k in range(cnt):
            smp = s0 + i + k
            expect[(dd, dst, s0 - VS + i + k + VD)] = i16_ref(op, a[smp - s0], b[smp - s0])
    for k in range(n - cnt):
        expect[(E, 2, t_b2b + VD + k)] = i16_ref("CMPLT", a[cnt + k], b[cnt + k])
    for d in (E, W):
        for base in (2, 4):
            for t in range(s0, s0 + n + VD + 4):
                got = seen(g, d, base, 2, VXM + 1 if d == E else VXM - 1, t + HOP)
                assert np.array_equal(got, expect[(d, base, t)]), (d, base, t)
    want = np.stack([expect[(E, 2, s0 - VS + VD + k)] for k in range(n)])
    got = values_of(np.stack([stored(g, "MEM_E0", out_lo, n), stored(g, "MEM_E1", out_hi, n)], axis=1), 2)
    assert np.array_equal(got, want)
    assert res.cycles == p.cycles()


def test_busy_alu_stalls_the_queue(rng):
    """Raw queue: an op on a busy ALU issues once the ALU has no element left to sample after the
    current cycle; everything behind it in the queue waits too."""
    n = 16
    s0 = 10
    a = rand_t(rng, n, I8)
    p = Plan()
    p.feed_vxm(E, 0, planes_of(a, 1), s0)                        # a[k] passes the VXM on s0 + k
    prog = p.program()
    t0 = s0 - VS
    c1, c2 = 5, 3
    words = [spec.encode("NOP", cycles=t0),
             spec.encode("ADD", a=S(0, E), b=S(0, E), dst=1, ddir=E, type=I8, alu=1, count=c1),
             spec.encode("SUB", a=R(0), b=S(0, E), dst=1, ddir=E, type=I8, alu=1, count=c2),    # waits for ALU1
             spec.encode("MAX", a=S(0, E), b=R(0), dst=2, ddir=E, type=I8, alu=2, count=1),     # held back behind it
             spec.encode("RELU", a=S(0, E), dst=1, ddir=E, type=I8, alu=1, count=1)]            # ALU1 busy again
    prog.add("VXM", words)
    g = Golden(prog)
    res = g.run()
    t_sub = t0 + c1                      # SUB: the ALU's last sample is t0+VS+c1-1, so it issues on t0+c1
    t_max = t_sub + 1
    t_relu = t_sub + c2                  # RELU waits for the SUB's elements (ALU1) in turn
    sample = lambda t_issue, k=0: t_issue + VS + k - s0
    want1 = {}
    for k in range(c1):
        want1[t0 + VD + k] = wrap(2 * a[sample(t0, k)], 1)
    for k in range(c2):
        want1[t_sub + VD + k] = wrap(-a[sample(t_sub, k)], 1)
    want1[t_relu + VD] = np.maximum(a[sample(t_relu)], 0)
    for t in range(t0, t_relu + VD + 3):
        got = seen(g, E, 1, 1, VXM + 1, t + HOP)
        assert np.array_equal(got, want1.get(t, np.zeros(LANES))), t
        got = seen(g, E, 2, 1, VXM + 1, t + HOP)
        want = np.maximum(a[sample(t_max)], 0) if t == t_max + VD else np.zeros(LANES)
        assert np.array_equal(got, want), t
    # the ALU1 stream has no gap: ADD elements, then SUB elements right behind them
    assert sorted(want1) == list(range(t0 + VD, t0 + VD + c1 + c2 + 1))
    assert res.error == ERR.NONE and res.cycles == max(t_relu + VD + 1, p.cycles())


def test_two_alus_on_one_stream_higher_alu_wins(rng):
    s0 = 10
    n = 12
    a = rand_t(rng, n, I8)
    p = Plan()
    p.feed_vxm(E, 6, planes_of(a, 1), s0)
    for r, v in enumerate((0x01020304, 0, 5, -9)):
        p.at("VXM", r, "VSET", r=r, imm=v)
    t0 = s0 - VS
    # ALU0 x3 from t0, ALU1 x1 from t0+1: both drive E2 on t0+1+VD -> ALU1's value
    p.at("VXM", t0, "ADD", a=S(6, E), b=R(2), dst=2, ddir=E, type=I8, alu=0, count=3)
    p.at("VXM", t0 + 1, "SUB", a=S(6, E), b=R(2), dst=2, ddir=E, type=I8, alu=1, count=1)
    # ALU3 x3 from t0+4, ALU2 x1 from t0+5: the earlier-issued but higher ALU3 wins
    p.at("VXM", t0 + 4, "ADD", a=S(6, E), b=R(3), dst=2, ddir=E, type=I8, alu=3, count=3)
    p.at("VXM", t0 + 5, "SUB", a=S(6, E), b=R(3), dst=2, ddir=E, type=I8, alu=2, count=1)
    # partial overlaps: ALU1 int32 on E0..E3, ALU2 int8 on E1 (wins there), ALU0 int16 on E2..E3 (loses)
    p.at("VXM", t0 + 8, "ADD", a=R(0), b=R(2), dst=0, ddir=E, type=I32, alu=1, count=3)
    p.at("VXM", t0 + 9, "ADD", a=S(6, E), b=R(3), dst=1, ddir=E, type=I8, alu=2, count=1)
    p.at("VXM", t0 + 10, "MAX", a=S(6, E), b=R(2), dst=2, ddir=E, type=I16, alu=0, count=1)
    g, res = p.run()
    look = lambda t_issue, base, nb: seen(g, E, base, nb, VXM + 1, t_issue + VD + HOP)
    av = lambda t_issue: a[t_issue + VS - s0]
    assert np.array_equal(look(t0, 2, 1), wrap(av(t0) + 5, 1))
    assert np.array_equal(look(t0 + 1, 2, 1), wrap(av(t0 + 1) - 5, 1))        # ALU1 over ALU0
    assert np.array_equal(look(t0 + 2, 2, 1), wrap(av(t0 + 2) + 5, 1))
    assert np.array_equal(look(t0 + 4, 2, 1), wrap(av(t0 + 4) - 9, 1))
    assert np.array_equal(look(t0 + 5, 2, 1), wrap(av(t0 + 5) - 9, 1))        # ALU3 over ALU2
    assert np.array_equal(look(t0 + 6, 2, 1), wrap(av(t0 + 6) - 9, 1))
    r32 = planes_of(np.full((1, LANES), 0x01020304 + 5), 4)[0]                # ALU1's int32 result planes
    assert np.array_equal(look(t0 + 8, 0, 4), np.full(LANES, 0x01020304 + 5))
    t = t0 + 9 + VD + HOP
    assert np.array_equal(g.stream_value(E, 1, VXM + 1, t), planes_of(wrap(av(t0 + 9) - 9, 1)[None], 1)[0, 0])
    for j in (0, 2, 3):
        assert np.array_equal(g.stream_value(E, j, VXM + 1, t), r32[j])
    t = t0 + 10 + VD + HOP
    for j in range(4):
        assert np.array_equal(g.stream_value(E, j, VXM + 1, t), r32[j])      # ALU1 over ALU0 on E2..E3
    assert res.cycles == p.cycles()


# --------------------------------------------------------------------------
# REQUANT per tensor and per lane
# --------------------------------------------------------------------------
def requant_ref(x, m, c, nb):
    """Python big ints, per lane: s = c[4:0], zp = c[31:16] signed, round half toward +infinity."""
    out = np.zeros(np.shape(x), np.int64)
    lo, hi = -(1 << (8 * nb - 1)), (1 << (8 * nb - 1)) - 1
    for idx in np.ndindex(np.shape(x)):
        xi, mi, ci = int(x[idx]), int(np.broadcast_to(m, np.shape(x))[idx]), int(np.broadcast_to(c, np.shape(x))[idx])
        u = ci % 2**32
        s, zp = u % 32, u // 2**16
        zp -= 2**16 if zp >= 2**15 else 0
        y = (2 * xi * mi + 2**(31 + s)) // 2**(32 + s)       # floor(x*M/2**(31+s) + 1/2)
        out[idx] = min(hi, max(lo, y + zp))
    return out


def cword(s, zp, junk=0):
    u = (s & 31) | (junk & 0x7FF) << 5 | (zp & 0xFFFF) << 16
    return u - 2**32 if u >= 2**31 else u


def test_requant_per_tensor_and_per_lane(rng):
    n1 = 6                                               # elements per REQUANT
    s0 = 40                                              # row 0 of the gathered stream passes the VXM
    m_lane = rng.integers(2**30, 2**31, LANES)
    m_lane[:4] = [0, 2**31 - 1, -2**30, I32_MIN]         # the hardware takes b as int32
    s_lane = rng.integers(0, 32, LANES)
    s_lane[:3] = [0, 31, 30]
    zp_lane = rng.integers(-32768, 32768, LANES)
    zp_lane[:4] = [-32768, 32767, -128, 127]
    s_lane[4:8], zp_lane[4:8] = [20, 24, 28, 31], [-20, 3, 0, 19]       # lanes inside the int8 range
    c_lane = np.array([cword(int(s), int(z), int(j)) for s, z, j in zip(s_lane, zp_lane, rng.integers(0, 2**11, LANES))])
    x = rand_i32(rng, 4 * n1)
    x[0, :4] = [I32_MIN, I32_MAX, I32_MIN, I32_MAX]
    x[1] = rng.integers(-2**14, 2**14, LANES)            # small values: results inside the ranges
    x[n1 + 1] = rng.integers(-2**16, 2**16, LANES)
    rows = np.concatenate([m_lane[None], c_lane[None], x])
    m_t8, c_t8 = 1518500250, cword(7, -5, 0x155)         # per tensor, int8
    m_t16, c_t16 = 2**30 + 12345, cword(0, 1000)         # per tensor, int16
    p = Plan()
    p.at("VXM", 0, "VSET", r=0, imm=m_t8)
    p.at("VXM", 1, "VSET", r=1, imm=c_t8)
    p.at("VXM", 2, "VSET", r=2, imm=m_t16)
    p.at("VXM", 3, "VSET", r=3, imm=c_t16)
    p.gather(rows, s0, E, dst=0, src=0)
    p.at("VXM", s0 - VS, "VLOAD", a=S(0, E), r=4, type=I32)
    p.at("VXM", s0 + 1 - VS, "VLOAD", a=S(0, E), r=5, type=I32)
    x0 = s0 + 2                                          # x[0] passes the VXM
    assert x0 > s0 + 1 - VS + VR, "REQUANT must sample after the second VLOAD wrote R5"
    plan = [("I8 tensor", I8, R(0), R(1), 0), ("I16 tensor", I16, R(2), R(3), 1),
            ("I8 lane", I8, R(4), R(5), 2), ("I16 lane", I16, R(4), R(5), 3)]
    for i, (_, dt, mb, cc, alu) in enumerate(plan):
        p.at("VXM", x0 + i * n1 - VS, "REQUANT", a=S(0, E), b=mb, c=cc, dst=4, ddir=E, dtype=dt, alu=alu, count=n1)
    n = 4 * n1
    lo = p.catch("MEM_E0", E, 4, VXM, x0 - VS + VD, n)
    hi = p.catch("MEM_E1", E, 5, VXM, x0 - VS + VD, n)
    g, res = p.run()
    got_lo, got_hi = stored(g, "MEM_E0", lo, n), stored(g, "MEM_E1", hi, n)
    params = [(m_t8, c_t8), (m_t16, c_t16), (m_lane, c_lane), (m_lane, c_lane)]
    for i, (name, dt, *_rest) in enumerate(plan):
        sl = slice(i * n1, (i + 1) * n1)
        nb = NBYTES[dt]
        want = requant_ref(x[sl], *params[i], nb)
        wp = planes_of(want, 2) if nb == 2 else np.concatenate([planes_of(want, 1), np.zeros((n1, 1, LANES), np.uint8)], 1)
        assert np.array_equal(got_lo[sl], wp[:, 0]), name
        assert np.array_equal(got_hi[sl], wp[:, 1]), name          # int8: nobody drives E5
        lim = 2**(8 * nb - 1)
        assert ((want == -lim) | (want == lim - 1)).any() and ((want > -lim) & (want < lim - 1)).any(), name
    assert res.cycles == p.cycles()


# --------------------------------------------------------------------------
# SXM
# --------------------------------------------------------------------------
def loop_move(op, x, arg=0, lane_map=None):
    """Reference lane movement with loops: x uint8 [w, lanes]."""
    w = len(x)
    out = np.zeros_like(x)
    for j in range(w):
        for i in range(LANES):
            if op == "SHIFT":
                out[j, i] = x[j, i - arg] if 0 <= i - arg < LANES else 0
            elif op == "ROTATE":
                out[j, i] = x[j, (i - arg) % LANES]
            elif op == "BCAST":
                out[j, i] = x[j, arg]
            elif op == "PERMUTE":
                out[j, i] = x[j, lane_map[i]] if lane_map[i] < LANES else 0
            elif op == "TRANSPOSE":
                blk, ii = divmod(i, w)
                out[ii, blk * w + j] = x[j, blk * w + ii]
    return out


SXM_SEQ = [  # (op, arg, source stream, width, dst, ddir, count)
    ("ROTATE", -5, 0, 4, 0, "fwd", 2),
    ("SHIFT", 7, 0, 4, 4, "fwd", 2),
    ("BCAST", 15, 2, 1, 7, "back", 1),
    ("SHIFT", -15, 3, 1, 0, "fwd", 1),
    ("PERMUTE", 0, 0, 4, 4, "fwd", 1),            # identity map at START
    ("TRANSPOSE", 0, 0, 4, 0, "fwd", 2),
    ("ROTATE", 15, 1, 1, 3, "back", 1),
    ("SHIFT", 0, 0, 4, 2, "back", 1),
]


@pytest.mark.parametrize("sxm", ["SXM_W", "SXM_E"])
def test_sxm_ops_width_1_and_4(sxm, rng):
    n = sum(c for *_, c in SXM_SEQ)
    q = 30                                              # first sample
    x = rng.integers(0, 256, (n, 4, LANES), dtype=np.uint8)
    p = Plan()
    sd = p.feed_group(sxm, 0, x, q)
    fwd = E if sd == W else W                           # towards the chip's middle
    ps = pos(sxm)
    k0 = 0
    checks = []
    for op, arg, src, w, dst, way, cnt in SXM_SEQ:
        dd = fwd if way == "fwd" else sd
        extra = {} if op in ("PERMUTE", "TRANSPOSE") else {"arg": arg}
        t = q + k0 - SS
        p.at(sxm, t, op, stream=src, dir=sd, dst=dst, ddir=dd, width=w, count=cnt, **extra)
        for k in range(cnt):
            checks.append((t + SD + k, dd, dst, loop_move(op, x[k0 + k, src:src + w], arg, np.arange(LANES))))
        k0 += cnt
    g, res = p.run()
    for t_drive, dd, dst, want in checks:
        nxt = ps + (1 if dd == E else -1)
        for j in range(len(want)):
            assert np.array_equal(g.stream_value(dd, dst + j, nxt, t_drive + HOP), want[j]), (t_drive, dst + j)
    # nothing on the first destination stream the cycle before the first drive
    t_first, dd, dst, _ = checks[0]
    assert not g.stream_value(dd, dst, ps + (1 if dd == E else -1), t_first + HOP - 1).any()
    assert res.cycles == p.cycles()


def test_setmap_then_permute_timing(rng):
    """PERMUTE elements sampled before SETMAP's sample use the old map, the next sample the new one."""
    m1 = np.array([3, 2, 1, 0, 16, 255, 0x0103, 0xFFFF, 0x8000, 15, 15, 8, 9, 10, 11, 12])
    m2 = rng.permutation(LANES)
    m2[[1, 5]] = [LANES, 0x7FFF]
    n = 8
    data = rng.integers(1, 256, (n, 2, LANES), dtype=np.uint8)         # nonzero: a zeroed lane shows
    q = 30
    p = Plan()
    # data on E0..E1 towards SXM_E on q..q+n-1 from MEM_W1 / MEM_W0
    for j, mem in enumerate(("MEM_W0", "MEM_W1")):
        p.feed(mem, E, j, SXM_E, q, data[:, j])
    # maps (int16 groups E6..E7) from MEM_E1 / MEM_E0 passing SXM_E on the SETMAP sample cycles
    t_set1, t_set2 = q + 2 - SS, q + 5 - SS
    for t_set, mp in ((t_set1, m1), (t_set2, m2)):
        planes = planes_of(mp[None], 2)[0]
        p.feed("MEM_E1", E, 6, SXM_E, t_set + SS, planes[0])
        p.feed("MEM_E0", E, 7, SXM_E, t_set + SS, planes[1])
    t_p0, t_p1, t_p2 = q - SS, q + 3 - SS, q + 6 - SS
    p.at("SXM_E", t_p0, "PERMUTE", stream=0, dir=E, dst=0, ddir=W, width=2, count=2)     # samples q, q+1
    p.at("SXM_E", t_set1, "SETMAP", stream=6, dir=E)                                     # samples q+2
    p.at("SXM_E", t_p1, "PERMUTE", stream=0, dir=E, dst=0, ddir=W, width=2, count=2)     # q+3, q+4: m1
    p.at("SXM_E", t_set2, "SETMAP", stream=6, dir=E)                                     # q+5
    p.at("SXM_E", t_p2, "PERMUTE", stream=0, dir=E, dst=0, ddir=W, width=2, count=2)     # q+6, q+7: m2
    assert t_set1 + SM < t_p1 + SS and t_set2 + SM < t_p2 + SS, "each map is written before the next sample"
    g, res = p.run()
    maps = {q: np.arange(LANES), q + 1: np.arange(LANES), q + 3: m1, q + 4: m1, q + 6: m2, q + 7: m2}
    for smp, mp in maps.items():
        want = loop_move("PERMUTE", data[smp - q], lane_map=mp)
        t_drive = smp - SS + SD
        for j in range(2):
            assert np.array_equal(g.stream_value(W, j, SXM_E - 1, t_drive + HOP), want[j]), (smp, j)
    assert (loop_move("PERMUTE", data[3], lane_map=m1) == 0).sum() == 2 * 5
    assert res.cycles == p.cycles()


def test_setmap_waits_for_the_busy_sxm_engine(rng):
    """Raw queue: SETMAP behind a PERMUTE of count 3 waits for the engine; the PERMUTE behind it uses
    the new map from its first sample."""
    t0 = 20
    n = 5
    data = rng.integers(1, 256, (n, LANES), dtype=np.uint8)
    new_map = rng.permutation(LANES)
    new_map[0] = 0x0100
    p = Plan()
    p.feed("MEM_W0", E, 0, SXM_E, t0 + SS, data)                 # data[k] passes SXM_E on t0+SS+k
    c1 = 3
    t_set = t0 + c1                                             # SETMAP issues once the PERMUTE's last sample is done
    mp = planes_of(new_map[None], 2)[0]
    p.feed("MEM_E1", E, 6, SXM_E, t_set + SS, mp[0])
    p.feed("MEM_E0", E, 7, SXM_E, t_set + SS, mp[1])
    prog = p.program()
    prog.add("SXM_E", [spec.encode("NOP", cycles=t0),
                       spec.encode("PERMUTE", stream=0, dir=E, dst=0, ddir=W, width=1, count=c1),
                       spec.encode("SETMAP", stream=6, dir=E),
                       spec.encode("PERMUTE", stream=0, dir=E, dst=0, ddir=W, width=1, count=1)])
    g = Golden(prog)
    res = g.run()
    t_last = t_set + 1
    out = lambda t_issue: g.stream_value(W, 0, SXM_E - 1, t_issue + SD + HOP)
    for k in range(c1):
        assert np.array_equal(out(t0 + k), data[k])             # identity map
    assert not out(t_set).any()                                 # the SETMAP slot drives nothing
    k = t_last + SS - (t0 + SS)
    assert np.array_equal(out(t_last), loop_move("PERMUTE", data[k][None], lane_map=new_map)[0])
    assert res.error == ERR.NONE and res.cycles == max(p.cycles(), t_last + SD + 1)


def test_transpose_width_4_int32_group(rng):
    """TRANSPOSE of an int32 group: 4x4 byte tiles, so lane 4b+i of stream j <-> lane 4b+j of stream i."""
    q = 30
    x = rand_i32(rng, 3)
    planes = planes_of(x, 4)
    p = Plan()
    sd = p.feed_group("SXM_W", 0, planes, q)
    p.at("SXM_W", q - SS, "TRANSPOSE", stream=0, dir=sd, dst=4, ddir=E, width=4, count=3)
    lo = p.catch("MEM_W1", E, 4, SXM_W, q - SS + SD, 3)
    g, res = p.run()
    for k in range(3):
        want = loop_move("TRANSPOSE", planes[k])
        got = np.stack([g.stream_value(E, 4 + j, SXM_W + 1, q - SS + SD + k + HOP) for j in range(4)])
        assert np.array_equal(got, want)
        for blk in range(LANES // 4):
            for i in range(4):
                for j in range(4):
                    assert got[i, 4 * blk + j] == planes[k, j, 4 * blk + i]
    assert np.array_equal(stored(g, "MEM_W1", lo, 3), np.stack([loop_move("TRANSPOSE", planes[k])[0] for k in range(3)]))
    assert res.cycles == p.cycles()


# --------------------------------------------------------------------------
# a chained MEM -> VXM -> SXM -> MEM program, 1,000 elements
# --------------------------------------------------------------------------
def chain_ref(op, a16, b16, c16):
    """Result of one element as uint8 planes [2, lanes] on E4..E5 (int8 results leave E5 undriven)."""
    sh = np.mod(b16.astype(np.int64), 16).astype(np.uint16)
    u = a16.view(np.uint16)
    with np.errstate(over="ignore"):
        r = {
            "ADD": lambda: a16 + b16, "SUB": lambda: a16 - b16, "MUL": lambda: a16 * b16,
            "MIN": lambda: np.minimum(a16, b16), "MAX": lambda: np.maximum(a16, b16),
            "RELU": lambda: np.where(a16 > 0, a16, np.int16(0)),
            "SHL": lambda: np.left_shift(u, sh).view(np.int16),
            "SHR": lambda: np.right_shift(u, sh).view(np.int16),
            "SRA": lambda: np.right_shift(a16, sh.astype(np.int16)),
            "CMPEQ": lambda: np.where(a16 == b16, np.int16(-1), np.int16(0)),
            "CMPLT": lambda: np.where(a16 < b16, np.int16(-1), np.int16(0)),
            "CMPLE": lambda: np.where(a16 <= b16, np.int16(-1), np.int16(0)),
            "SELECT": lambda: np.where(a16 != 0, b16, c16),
            "MULW": lambda: a16.astype(np.int8).astype(np.int16) * b16.astype(np.int8).astype(np.int16),
        }.get(op)
        if r is not None:
            return np.ascontiguousarray(r().astype(np.int16)).view(np.uint8).reshape(LANES, 2).T
        assert op == "CVT"                                  # int16 -> int8, saturating
        v = np.clip(a16, -128, 127).astype(np.int8).view(np.uint8)
        return np.stack([v, np.zeros(LANES, np.uint8)])


CHAIN_OPS = ["ADD", "SUB", "MUL", "MIN", "MAX", "RELU", "SHL", "SHR", "SRA", "CMPEQ", "CMPLT", "CMPLE", "SELECT",
             "MULW", "CVT"]
CHAIN_MOVES = ["SHIFT", "ROTATE", "BCAST", "PERMUTE", "TRANSPOSE"]


def chunks(rng, n, lo, hi):
    out, k = [], 0
    while k < n:
        c = min(n - k, int(rng.integers(lo, hi + 1)))
        out.append((k, c))
        k += c
    return out


def test_chained_program_1000_cycles(rng):
    n = 1000
    a = rand_t(rng, n, I16)
    b = rand_t(rng, n, I16)
    a[rng.random((n, LANES)) < 0.1] = 0                      # SELECT conditions
    eq = rng.random((n, LANES)) < 0.15
    b[eq] = a[eq]
    c_imm = 0x12348765                                       # R0 read as int16: 0x8765
    c16 = np.full(LANES, 0x8765 - 0x10000, np.int16)
    lane_map = rng.integers(0, LANES, LANES)
    lane_map[[2, 9]] = [LANES, 0xFFFF]
    s0 = 30                                                  # element k passes the VXM on s0 + k
    p = Plan()
    p.at("VXM", 0, "VSET", r=0, imm=c_imm)
    p.feed_vxm(E, 0, planes_of(a, 2), s0)                    # a on E0..E1 from MEM_W0 / MEM_W1
    p.feed_vxm(W, 0, planes_of(b, 2), s0)                    # b on W0..W1 from MEM_E0 / MEM_E1
    # the PERMUTE map, early, on E6..E7 from MEM_E1 / MEM_E0 (before their operand reads start)
    t_map = 8
    mp = planes_of(lane_map[None], 2)[0]
    p.feed("MEM_E1", E, 6, SXM_E, t_map, mp[0])
    p.feed("MEM_E0", E, 7, SXM_E, t_map, mp[1])
    p.at("SXM_E", t_map - SS, "SETMAP", stream=6, dir=E)
    # VXM chunks: result element k driven at the VXM on s0 - VS + VD + k, on E4..E5
    res_planes = np.zeros((n, 2, LANES), np.uint8)
    vxm_chunks = chunks(rng, n, 5, 60)
    assert len(vxm_chunks) > len(CHAIN_OPS)
    pick = [str(o) for o in rng.permutation(CHAIN_OPS)] + [str(o) for o in rng.choice(CHAIN_OPS, len(vxm_chunks))]
    for (k0, cnt), op in zip(vxm_chunks, pick):
        alu = int(rng.integers(CFG.vxm_alus))
        ops = dict(a=S(0, E), dst=4, ddir=E, alu=alu, count=cnt)
        if op in ("MULW", "CVT"):
            ops.update(type=I8 if op == "MULW" else I16, dtype=I16 if op == "MULW" else I8)
        else:
            ops.update(type=I16)
        if op not in ("RELU", "CVT"):
            ops["b"] = S(0, W)
        if op == "SELECT":
            ops["c"] = R(0)
        p.at("VXM", s0 + k0 - VS, op, **ops)
        for k in range(k0, k0 + cnt):
            res_planes[k] = chain_ref(op, a[k].astype(np.int16), b[k].astype(np.int16), c16)
    # SXM_E chunks: element k passes SXM_E on arrive + k; moved result driven westward on W2..W3
    arrive = s0 - VS + VD + hops(VXM, SXM_E, E) * HOP
    moved = np.zeros_like(res_planes)
    sxm_chunks = chunks(rng, n, 5, 60)
    pick = [str(o) for o in rng.permutation(CHAIN_MOVES)] + [str(o) for o in rng.choice(CHAIN_MOVES, len(sxm_chunks))]
    for (k0, cnt), op in zip(sxm_chunks, pick):
        arg = int(rng.integers(0, LANES)) if op == "BCAST" else int(rng.integers(-(LANES - 1), LANES))
        extra = {"arg": arg} if op in ("SHIFT", "ROTATE", "BCAST") else {}
        p.at("SXM_E", arrive + k0 - SS, op, stream=4, dir=E, dst=2, ddir=W, width=2, count=cnt, **extra)
        for k in range(k0, k0 + cnt):
            moved[k] = loop_move(op, res_planes[k], arg, lane_map)
    t_out = arrive - SS + SD
    lo = p.catch("MEM_E1", W, 2, SXM_E, t_out, n)
    hi = p.catch("MEM_E0", W, 3, SXM_E, t_out, n)
    g, res = p.run()
    assert np.array_equal(stored(g, "MEM_E1", lo, n), moved[:, 0])
    assert np.array_equal(stored(g, "MEM_E0", hi, n), moved[:, 1])
    assert res.cycles == p.cycles() and res.cycles >= 1000
    assert res.cycles == t_out + hops(SXM_E, pos("MEM_E0"), W) * HOP - WS + WC + n


# --------------------------------------------------------------------------
# illegal VXM / SXM words
# --------------------------------------------------------------------------
ADD_OK = "ADD a=E0 b=E1 dst=2 ddir=E type=I8"
BAD_ASM = [
    ("VXM", "MULW a=E0 b=E1 dst=2 ddir=E type=I16 dtype=I16", "dtype must be wider than type"),
    ("VXM", "MULW a=E0 b=E1 dst=2 ddir=E type=I16 dtype=I8", "dtype must be wider than type"),
    ("VXM", "MULW a=E0 b=E1 dst=0 ddir=E type=I32 dtype=3", "dtype must be wider than type"),
    ("VXM", "REQUANT a=E0 b=R0 c=R1 dst=4 ddir=E dtype=I32", "requantize produces int8 or int16"),
    ("VXM", "ADD a=E0 b=E1 dst=2 ddir=E type=3", "type must be 0 (int8), 1 (int16) or 2 (int32)"),
    ("VXM", "VLOAD a=E0 r=1 type=3", "type must be 0 (int8), 1 (int16) or 2 (int32)"),
    ("VXM", "CVT a=E0 dst=2 ddir=E type=I8 dtype=3", "dtype must be 0 (int8), 1 (int16) or 2 (int32)"),
    ("VXM", "ADD a=E6 b=E0 dst=0 ddir=E type=I32", "operand a: the int32 group at stream 6 needs streams 6..9, "
                                                    "past the last stream (7)"),
    ("VXM", "ADD a=E0 b=W5 dst=0 ddir=E type=I32", "operand b:"),
    ("VXM", "SELECT a=E0 b=E1 c=W7 dst=0 ddir=E type=I16", "operand c:"),
    ("VXM", "REQUANT a=E0 b=E5 c=R1 dst=4 ddir=E dtype=I8", "operand b:"),      # b is always an int32 group
    ("VXM", "ADD a=E0 b=E0 dst=5 ddir=W type=I32", "destination group must fit below the last stream"),
    ("VXM", "MULW a=E0 b=E1 dst=6 ddir=E type=I8 dtype=I32", "destination group must fit below the last stream"),
    ("VXM", "VSET r=8 imm=1", "register must be < vxm_regs"),
    ("VXM", "VLOAD a=E0 r=15 type=I8", "register must be < vxm_regs"),
    ("VXM", "ADD a=R8 b=E0 dst=0 ddir=E type=I8", "operand a: register R8 does not exist (vxm_regs 8)"),
    ("VXM", "RELU a=R63 dst=0 ddir=E type=I8", "operand a: register R63 does not exist (vxm_regs 8)"),
    ("VXM", "VLOAD a=R0 r=1 type=I8", "operand a must be a stream group, not a register"),
    ("VXM", ADD_OK + " alu=4", "alu must be < vxm_alus"),
    ("VXM", ADD_OK + " alu=15", "alu must be < vxm_alus"),
    ("VXM", ADD_OK + " count=0", "count=0 must be >= 1"),
    ("SXM_E", "TRANSPOSE stream=0 dir=E dst=0 ddir=W width=3", "TRANSPOSE width must be a power of two >= 2 that divides lanes"),
    ("SXM_E", "TRANSPOSE stream=0 dir=E dst=0 ddir=W width=1", "TRANSPOSE width must be a power of two"),
    ("SXM_W", "BCAST stream=0 dir=W arg=16 dst=0 ddir=E width=1", "arg must be a lane index in [0, lanes)"),
    ("SXM_W", "BCAST stream=0 dir=W arg=-1 dst=0 ddir=E width=1", "arg must be a lane index in [0, lanes)"),
    ("SXM_W", "SHIFT stream=0 dir=W arg=16 dst=0 ddir=E width=1", "arg must be in [-(lanes-1), lanes-1]"),
    ("SXM_W", "ROTATE stream=0 dir=W arg=-16 dst=0 ddir=E width=1", "arg must be in [-(lanes-1), lanes-1]"),
    ("SXM_E", "SHIFT stream=0 dir=E arg=1 dst=0 ddir=W width=9", "width must be <= sxm_width"),
    ("SXM_E", "SHIFT stream=5 dir=E arg=1 dst=0 ddir=W width=4", "source and destination groups must fit below the last stream"),
    ("SXM_E", "PERMUTE stream=0 dir=E dst=6 ddir=W width=4", "source and destination groups must fit below the last stream"),
    ("SXM_E", "SHIFT stream=0 dir=E arg=1 dst=0 ddir=W width=0", "width=0 must be >= 1"),
    ("SXM_E", "SETMAP stream=7 dir=E", "the int16 group (2 streams) must fit below the last stream"),
]


@pytest.mark.parametrize("queue,line,reason", BAD_ASM, ids=[f"{i}-{b[1].split()[0]}" for i, b in enumerate(BAD_ASM)])
def test_illegal_words_in_the_assembler(queue, line, reason):
    good = {"VXM": ADD_OK, "SXM_E": "SHIFT stream=0 dir=E arg=1 dst=0 ddir=W width=1",
            "SXM_W": "SHIFT stream=0 dir=W arg=1 dst=0 ddir=E width=1"}[queue]
    text = f"; a comment\n.queue {queue}\n    {good}\n    {line}\n    {good}\n"
    assemble(text.replace(line, good), CFG)                   # the surrounding program is fine
    with pytest.raises(AsmError) as info:
        assemble(text, CFG, source="bad.s")
    e = info.value
    assert e.line == 4 and str(e).startswith("bad.s:4: ")
    assert reason in e.reason, e.reason
    assert f"illegal on {queue}" in e.reason


@pytest.mark.parametrize("queue,line", [("MEM_W0", ADD_OK), ("VXM", "SHIFT stream=0 dir=E arg=1 dst=0 ddir=W width=1"),
                                        ("SXM_W", "VSET r=0 imm=1"), ("VXM", "READ stream=0 dir=E addr=0")])
def test_instruction_on_the_wrong_slice_kind(queue, line):
    with pytest.raises(AsmError) as info:
        assemble(f".queue {queue}\n{line}\n", CFG)
    assert info.value.line == 2 and "is not an instruction of a" in info.value.reason


def raw(mnemonic, **ops):
    """Encode without the legality check (fields only need to fit)."""
    return spec.encode(mnemonic, **ops)


BAD_WORDS = {
    "mulw_same_type": ("VXM", raw("MULW", a=S(0, E), b=S(1, E), dst=2, ddir=E, type=I16, dtype=I16, alu=0, count=1)),
    "requant_i32": ("VXM", raw("REQUANT", a=S(0, E), b=R(0), c=R(1), dst=4, ddir=E, dtype=I32, alu=0, count=1)),
    "add_type3": ("VXM", raw("ADD", a=S(0, E), b=S(1, E), dst=2, ddir=E, type=3, alu=0, count=1)),
    "group_past_end": ("VXM", raw("ADD", a=S(6, E), b=S(0, E), dst=0, ddir=E, type=I32, alu=0, count=1)),
    "reg_out_of_range": ("VXM", raw("VSET", r=8, imm=5)),
    "operand_reg_out_of_range": ("VXM", raw("SUB", a=R(9), b=S(0, E), dst=0, ddir=E, type=I8, alu=0, count=1)),
    "reg_with_dir_bit": ("VXM", raw("SUB", a=R(1) | spec.OPERAND_DIR, b=S(0, E), dst=0, ddir=E, type=I8, alu=0, count=1)),
    "alu_4": ("VXM", raw("MIN", a=S(0, E), b=S(1, E), dst=2, ddir=E, type=I8, alu=4, count=1)),
    "reserved_bit": ("VXM", raw("ADD", a=S(0, E), b=S(1, E), dst=2, ddir=E, type=I8, alu=0, count=1) | 1 << 39),
    "transpose_3": ("SXM_E", raw("TRANSPOSE", stream=0, dir=E, dst=0, ddir=W, width=3, count=1)),
    "bcast_16": ("SXM_W", raw("BCAST", stream=0, dir=W, arg=16, dst=0, ddir=E, width=1, count=1)),
    "setmap_past_end": ("SXM_W", raw("SETMAP", stream=7, dir=W)),
}


@pytest.mark.parametrize("case", list(BAD_WORDS))
def test_illegal_word_stops_the_golden_model(case):
    """The bad word sits behind a legal op that waits for its busy engine: it reaches the head (and
    fails) on the cycle after that op issues. Everything before it happens."""
    queue, bad = BAD_WORDS[case]
    with pytest.raises(spec.IllegalInstruction) as e:
        spec.check(bad, CFG.slice_named(queue).kind, CFG)
    assert e.value.code == ERR.BAD_FIELD
    c1 = 4
    if queue == "VXM":
        first = spec.encode("ADD", a=R(0), b=R(0), dst=0, ddir=E, type=I8, alu=1, count=c1)
        second = spec.encode("SUB", a=R(0), b=R(0), dst=0, ddir=E, type=I8, alu=1, count=1)
    else:
        d = W if queue == "SXM_W" else E
        first = spec.encode("ROTATE", stream=0, dir=d, arg=1, dst=0, ddir=1 - d, width=1, count=c1)
        second = spec.encode("SHIFT", stream=0, dir=d, arg=1, dst=0, ddir=1 - d, width=1, count=1)
    t0 = 3
    prog = Program.empty(CFG)
    prog.add(queue, [spec.encode("NOP", cycles=t0), first, second, bad, first])
    res = Golden(prog).run()
    t_bad = t0 + c1 + 1                  # `second` waits until t0+c1 for the engine, `bad` is next
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.BAD_FIELD, pos(queue), 3, t_bad + 1)
    # the same word written with .word in the assembler
    text = f".queue {queue}\n    NOP {t0}\n    .word {first:#x}\n    .word {second:#x}\n    .word {bad:#x}\n"
    res2 = Golden(assemble(text, CFG)).run()
    assert (res2.error, res2.error_position, res2.error_pc, res2.cycles) == (ERR.BAD_FIELD, pos(queue), 3, t_bad + 1)


def test_failure_stops_alu_drives_in_flight():
    """An illegal word elsewhere stops the chip: ALU results due on the failing cycle are driven,
    later ones never are."""
    t_bad = 9
    cnt = 8
    tp = TimedProgram(CFG)
    tp.at("VXM", 0, "VSET", r=0, imm=5)
    tp.at("VXM", 1, "VSET", r=1, imm=7)
    t_add = 2
    tp.at("VXM", t_add, "ADD", a=R(0), b=R(1), dst=2, ddir=E, type=I8, alu=3, count=cnt)
    prog = tp.program()
    prog.add("MEM_W1", [spec.encode("NOP", cycles=t_bad), 0xAB])
    g = Golden(prog)
    res = g.run()
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.ILLEGAL_OPCODE, pos("MEM_W1"), 1, t_bad + 1)
    driven = [t_add + VD + k for k in range(cnt)]
    assert any(t <= t_bad for t in driven) and any(t > t_bad for t in driven)
    for t in driven:
        want = np.full(LANES, 12 if t <= t_bad else 0)
        assert np.array_equal(g.stream_value(E, 2, VXM + 1, t + HOP), want), t


def test_illegal_words_same_cycle_report_westmost():
    t_bad = 6
    prog = Program.empty(CFG)
    prog.add("SXM_E", [spec.encode("NOP", cycles=t_bad), BAD_WORDS["transpose_3"][1]])
    prog.add("VXM", [spec.encode("NOP", cycles=t_bad), BAD_WORDS["alu_4"][1]])
    prog.add("SXM_W", [spec.encode("NOP", cycles=t_bad + 1), BAD_WORDS["bcast_16"][1]])
    res = Golden(prog).run()
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.BAD_FIELD, VXM, 1, t_bad + 1)
    prog.queues[SXM_E] = [spec.encode("NOP", cycles=t_bad - 1), BAD_WORDS["transpose_3"][1]]
    res = Golden(prog).run()
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.BAD_FIELD, SXM_E, 1, t_bad)
    # a VXM word on an SXM queue is an illegal opcode there
    prog = Program.empty(CFG).add("SXM_W", [spec.encode("NOP", cycles=2), raw("VSET", r=0, imm=1)])
    res = Golden(prog).run()
    assert (res.error, res.error_position, res.error_pc, res.cycles) == (ERR.ILLEGAL_OPCODE, SXM_W, 1, 3)
