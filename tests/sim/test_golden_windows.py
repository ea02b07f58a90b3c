"""The golden model where its vectorized evaluation has seams, checked against numpy.

sim/ computes each instruction's elements as whole arrays, keeps state per window of cycles
(sim/lazy.py WINDOW) and folds writes in at window ends. These cases put the semantics exactly
on those seams: transfers much longer than a window read back through SRAM one cycle after (and
on the cycle of) each commit, a register rewritten while an ALU op runs, MXMCFG changed in the
middle of a MATMUL whose accumulator rows wrap within the one instruction (read back on the cycle
of the second write), and an error in the middle of long transfers. Expectations are written from
spec.TIMING with numpy, never from the model's internals.
"""
import numpy as np
import pytest

from isa import spec
from isa.config import get_config
from isa.ecc import code_for
from isa.timed import TimedProgram
from sim.golden import Golden
from sim.lazy import WINDOW
from verif.stimulus import random_transfer_program, random_words

CFG = get_config("tiny")
T = spec.TIMING
L, P, R = CFG.lanes, CFG.positions, CFG.mxm_acc_rows
E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)
HOP = T["stream_hop"]
ERR = spec.ErrorCode


def pos(name):
    return CFG.slice_named(name).position


def edge_cycle(d, p, drive):
    return drive + ((P - p) if d == E else (p + 1)) * HOP


def i8(v):
    return (np.asarray(v, np.int64) + 128) % 256 - 128


@pytest.mark.parametrize("late", [1, 0])
def test_transfer_longer_than_windows_read_back_through_sram(late):
    """MEM_W0 sends N > 2 windows of words to MEM_E1, which stores them and reads each one back
    `late` cycles after the end of the cycle that stores it: 1 sees the new word, 0 (the commit's own
    cycle) the word that was there before."""
    n = 2 * WINDOW + 77
    rng = np.random.default_rng(late)
    a, old = random_words(CFG, rng, n), random_words(CFG, rng, n)
    src, dst = pos("MEM_W0"), pos("MEM_E1")
    tp = TimedProgram(CFG)
    tp.load("MEM_W0", 0, a)
    tp.load("MEM_E1", 0x1000, old)
    tp.at("MEM_W0", 0, "READ", stream=1, dir=E, addr=0, stride=1, count=n)
    t_w = T["mem_read_drive"] + (dst - src) * HOP - T["mem_write_sample"]
    tp.at("MEM_E1", t_w, "WRITE", stream=1, dir=E, addr=0x1000, stride=1, count=n)
    commit0 = t_w + T["mem_write_commit"]                       # element k stored at the end of commit0 + k
    t_r = commit0 + late - T["mem_read_access"]                 # element k read on commit0 + k + late
    tp.at("MEM_E1", t_r, "READ", stream=2, dir=E, addr=0x1000, stride=1, count=n)
    g = Golden(tp.program())
    res = g.run()
    assert res.error == ERR.NONE
    assert res.cycles == t_r + T["mem_read_drive"] + n
    want = a if late else old
    got = np.stack([g.edge_out(E, edge_cycle(E, dst, t_r + T["mem_read_drive"] + k))[2] for k in range(n)])
    assert np.array_equal(got, want)
    assert np.array_equal(g.memory(dst)[0x1000:0x1000 + n], a)


def test_register_rewritten_while_an_alu_op_runs():
    """ADD int8 a (stream) + R1 over 60 elements; VSET R1 and then VLOADB R1 (its low byte from a
    stream, the other bytes kept) land in the middle: each element sees the register as written by the
    end of the cycle before its sample."""
    n, t_alu = 60, 10
    vx, src_a, src_b = pos("VXM"), pos("MEM_W0"), pos("MEM_W1")
    rng = np.random.default_rng(7)
    a = random_words(CFG, rng, n)
    byte = random_words(CFG, rng, 1)
    tp = TimedProgram(CFG)
    tp.load("MEM_W0", 0, a)
    tp.load("MEM_W1", 0x40, byte)
    s0 = t_alu + T["vxm_sample"]                                # element k samples on s0 + k
    tp.at("MEM_W0", s0 - (vx - src_a) * HOP - T["mem_read_drive"], "READ", stream=0, dir=E, addr=0, stride=1,
          count=n)
    imm = 0x5A3C
    tp.at("VXM", t_alu - 1, "VSET", r=1, imm=7)
    tp.at("VXM", t_alu, "ADD", a=spec.operand(0, E), b=spec.operand(1, reg=True), dst=5, ddir=E, type=0, alu=2,
          count=n)
    t_set, t_b = t_alu + 17, t_alu + 40
    tp.at("VXM", t_set, "VSET", r=1, imm=imm)
    s_b = t_b + T["vxm_sample"]
    tp.at("MEM_W1", s_b - (vx - src_b) * HOP - T["mem_read_drive"], "READ", stream=3, dir=E, addr=0x40, stride=1,
          count=1)
    tp.at("VXM", t_b, "VLOADB", a=spec.operand(3, E), r=1, plane=0)
    g = Golden(tp.program())
    assert g.run().error == ERR.NONE
    s = s0 + np.arange(n)
    reg = np.where(s > t_set + T["vxm_reg_write"], imm, 7)[:, None] * np.ones(L, np.int64)
    reg = np.where((s > s_b)[:, None], (imm & ~0xFF) | byte[0].astype(np.int64), reg)  # VLOADB writes on s_b
    want = i8(i8(a) + i8(reg)).astype(np.uint8)
    drive0 = t_alu + T["vxm_drive"]
    got = np.stack([g.edge_out(E, edge_cycle(E, vx, drive0 + k))[5] for k in range(n)])
    assert np.array_equal(got, want)


def test_mxmcfg_mid_matmul_and_accumulator_rows_wrapping_in_one_instruction():
    """One MATMUL of R + 10 elements from row R-5 (rows wrap, ten of them get two elements), the
    activation zero point changed by an MXMCFG half way, and an ACCREAD of those ten rows on the
    cycles of their second writes, which it sees."""
    mx, src_x, src_w = pos("MXM_W0"), pos("MEM_W0"), pos("MEM_W1")
    n, first = R + 10, R - 5
    rng = np.random.default_rng(11)
    wbytes = random_words(CFG, rng, L)
    x = random_words(CFG, rng, n)
    tp = TimedProgram(CFG)
    tp.load("MEM_W1", 0, wbytes)
    tp.load("MEM_W0", 0, x)
    t_lw = 4
    tp.at("MEM_W1", t_lw + T["mxm_sample"] - (src_w - mx) * HOP - T["mem_read_drive"], "READ", stream=2, dir=W,
          addr=0, stride=1, count=L)
    tp.at("MXM_W0", t_lw, "LW", stream=2, dir=W, row=0, width=1, count=L)
    t_mm = t_lw + L
    s0 = t_mm + T["mxm_sample"]
    tp.at("MEM_W0", s0 - (src_x - mx) * HOP - T["mem_read_drive"], "READ", stream=1, dir=W, addr=0, stride=1,
          count=n)
    tp.at("MXM_W0", t_mm, "MATMUL", stream=1, dir=W, accumulate=1, acc=first, swap=1, count=n)
    t_cfg, zp = t_mm + 200, 37
    tp.at("MXM_W0", t_cfg, "MXMCFG", xzp=zp, xsigned=1, wzp=0, wsigned=1)
    write0 = t_mm + T["mxm_acc_write"]                          # element k's row written at the end of write0 + k
    t_ar = write0 + R - T["mxm_accread_access"]                 # row k read on the cycle element R + k writes it
    tp.at("MXM_W0", t_ar, "ACCREAD", acc=first, dst=0, ddir=E, count=10)
    g = Golden(tp.program())
    assert g.run().error == ERR.NONE
    s = s0 + np.arange(n)
    act = i8(x) - np.where(s > t_cfg + T["mxm_cfg_write"], zp, 0)[:, None]
    y = act @ i8(wbytes)
    rows = (first + np.arange(n)) % R
    acc = np.zeros((R, L), np.int64)
    np.add.at(acc, rows, y)
    acc = (acc + 2 ** 31) % 2 ** 32 - 2 ** 31                  # wrap to int32
    assert np.array_equal(g.mxms[mx].acc, acc)
    drive0 = t_ar + T["mxm_accread_drive"]
    for k in range(10):
        planes = np.stack([g.edge_out(E, edge_cycle(E, mx, drive0 + k))[j] for j in range(4)]).astype(np.int64)
        v = planes[0] | planes[1] << 8 | planes[2] << 16 | planes[3] << 24
        assert np.array_equal(v, acc[rows[R + k]] & 0xFFFFFFFF), k


def test_error_in_the_middle_of_long_transfers():
    """Every word MEM_W0 reads has one flipped data bit; MEM_E1 stores them; an illegal word on
    MEM_E0 stops the chip half way. Counted corrections, stored words and edge values are those of
    cycles up to the failing one, none after."""
    n, t_err = 300, 150
    src, mid, dst = pos("MEM_W0"), pos("MEM_E0"), pos("MEM_E1")
    rng = np.random.default_rng(5)
    a = random_words(CFG, rng, n)
    tp = TimedProgram(CFG)
    tp.load("MEM_W0", 0, a)
    tp.at("MEM_W0", 0, "READ", stream=4, dir=E, addr=0, stride=1, count=n)
    t_w = T["mem_read_drive"] + (dst - src) * HOP - T["mem_write_sample"]
    tp.at("MEM_E1", t_w, "WRITE", stream=4, dir=E, addr=0x200, stride=1, count=n)
    prog = tp.program()
    prog.queues[mid] = [spec.encode("NOP", cycles=t_err), 0]     # opcode 0 is undefined
    g = Golden(prog)
    code = code_for(CFG.word_bits)
    for k in range(n):
        bad = a[k].copy()
        bad[k % L] ^= 1 << (k % 8)
        g.host_write_raw(src, k, bad, code.encode_word(a[k]))
    res = g.run()
    assert (res.cycles, res.error, res.error_position, res.error_pc) == (t_err + 1, ERR.ILLEGAL_OPCODE, mid, 1)
    checked = t_err - T["mem_read_check"] + 1                   # elements checked on cycles <= t_err
    assert (res.ecc_corrected, res.ecc_uncorrectable) == (checked, 0)
    stored = t_err - (t_w + T["mem_write_commit"]) + 1
    assert np.array_equal(g.memory(dst)[0x200:0x200 + stored], a[:stored])
    assert not g.memory(dst)[0x200 + stored:0x200 + n].any()
    driven = t_err - T["mem_read_drive"] + 1
    got = np.stack([g.edge_out(E, edge_cycle(E, src, T["mem_read_drive"] + k))[4] for k in range(n)])
    assert np.array_equal(got[:driven], a[:driven]) and not got[driven:].any()


def test_edge_out_agrees_with_stream_value_on_every_cycle():
    prog = random_transfer_program(CFG, np.random.default_rng(4), min_cycles=1500)
    g = Golden(prog)
    res = g.run()
    for t in reversed(range(res.cycles + P + 2)):
        for d, p in ((E, P), (W, -1)):
            out = g.edge_out(d, t)
            assert all(np.array_equal(out[s], g.stream_value(d, s, p, t)) for s in range(CFG.streams)), (d, t)


def test_starting_state_with_faulty_words_is_checked_on_read():
    """A starting SRAM state (what a previous run left, `memory=`) with one- and two-bit faults:
    reads correct / pass them and count them; words nobody writes keep their raw bits."""
    n = 40
    src = pos("MEM_E0")
    rng = np.random.default_rng(9)
    code = code_for(CFG.word_bits)
    good = random_words(CFG, rng, CFG.mem_words)
    data, ecc = good.copy(), code.encode_bytes(good)
    single, double = [3, 17, 30], [8, 21]
    for a in single:
        data[a, a % L] ^= 0x10
    for a in double:
        data[a, 0] ^= 0x03
    tp = TimedProgram(CFG)
    tp.at("MEM_E0", 0, "READ", stream=6, dir=W, addr=0, stride=1, count=n)
    g = Golden(tp.program(), memory={src: (data, ecc)})
    res = g.run()
    assert (res.ecc_corrected, res.ecc_uncorrectable) == (len(single), len(double))
    got = np.stack([g.edge_out(W, edge_cycle(W, src, T["mem_read_drive"] + k))[6] for k in range(n)])
    want = good[:n].copy()
    want[double] = data[double]                                 # uncorrectable: passed on unchanged
    assert np.array_equal(got, want)
    state_data, state_ecc = g.sram_state()[src]
    assert np.array_equal(state_data, data) and np.array_equal(state_ecc, ecc)
