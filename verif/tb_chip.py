"""Chip-level cocotb tests: every one compares the RTL with the golden model on every edge
vector on every cycle, every SRAM word written, the cycle count, the error status and the ECC
counters (ChipTB.run_and_compare). Seeds: cocotb prints its seed; COCOTB_RANDOM_SEED replays."""
import os

import cocotb
import numpy as np

from isa import spec
from isa.asm import assemble
from isa.image import Program

from .chip_tb import ChipTB, rng
from .stimulus import random_instruction_word, random_transfer_program, random_words

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


async def _tb(dut, backdoor: bool = True) -> ChipTB:
    tb = ChipTB(dut, backdoor)
    await tb.reset()
    return tb


def _pos(tb, name):
    return tb.config.slice_named(name).position


@cocotb.test()
async def fabric_timing(dut):
    """Words read onto every stream in both directions reach the edges on the exact cycles;
    a downstream slice driving the same stream replaces the value from its position on."""
    tb = await _tb(dut)
    r = rng()
    p = Program.empty(tb.config)
    for name in ("MEM_W1", "MEM_E1"):
        p.add_memory(name, 0, random_words(tb.config, r, 64))
    for s in range(tb.config.streams):
        d = E if s % 2 == 0 else W
        p.add("MEM_W1", spec.encode("READ", stream=s, dir=d, addr=8 * s, stride=1, count=3))
        p.add("MEM_E1", spec.encode("READ", stream=s, dir=1 - d, addr=8 * s + 4, stride=1, count=2))
    # MEM_E0 overwrites stream 0 eastward while MEM_W1's words pass (same cycle of arrival)
    lat = spec.timing(tb.config)["mem_read_drive"]
    p.add("MEM_E0", spec.encode("NOP", cycles=_pos(tb, "MEM_E0") - _pos(tb, "MEM_W1")))
    p.add("MEM_E0", spec.encode("READ", stream=0, dir=E, addr=0, stride=1, count=1))
    _, res, _, trace = await tb.run_and_compare(p)
    # MEM_W1's READs (count 3) issue every 3 cycles (the queue waits for the read engine); the last
    # one issues on 3*(streams-1), drives its last word 2 + lat cycles later
    assert res.cycles == 3 * (tb.config.streams - 1) + 2 + lat + 1, res.cycles
    assert any(t[0].any() for t in trace) and any(t[1].any() for t in trace)


@cocotb.test()
async def mem_transfer_iterate(dut):
    """READ -> stream -> timed WRITE copies words, for strides 1, 5, -1 and a wrapping range.
    Loads and checks SRAM through the AXI4-Lite port (no backdoor)."""
    tb = await _tb(dut, backdoor=False)
    cfg = tb.config
    src, dst = _pos(tb, "MEM_W0"), _pos(tb, "MEM_E1")
    dist = dst - src
    words = random_words(cfg, rng(), 48)
    p = Program.empty(cfg)
    p.add_memory("MEM_W0", 0, words[:40]).add_memory("MEM_W0", cfg.mem_words - 8, words[40:])
    T = spec.timing(cfg)
    t_w = T["mem_read_drive"] + dist - T["mem_write_sample"]   # WRITE issue cycle
    plan = [(0, 1, 16, 100, 1), (16, 5, 4, 200, 5), (39, -1, 8, 300, -1), (cfg.mem_words - 8, 1, 16, 400, 2)]
    for addr, stride, count, daddr, dstride in plan:                # READs issue count+1 apart
        p.add("MEM_W0", spec.encode("READ", stream=2, dir=E, addr=addr, stride=stride, count=count))
        p.add("MEM_W0", spec.encode("NOP", cycles=count))
    issue, now = 0, 0
    for addr, stride, count, daddr, dstride in plan:
        want = issue + t_w
        if want > now:
            p.add("MEM_E1", spec.encode("NOP", cycles=want - now))
        p.add("MEM_E1", spec.encode("WRITE", stream=2, dir=E, addr=daddr, stride=dstride, count=count))
        now = want + 1
        issue += count + 1
    gold, res, _, _ = await tb.run_and_compare(p)
    mem = gold.memory(dst)
    for addr, stride, count, daddr, dstride in plan:
        srcrows = [(addr + k * stride) % cfg.mem_words for k in range(count)]
        full = np.zeros((cfg.mem_words, cfg.lanes), np.uint8)
        full[:40], full[cfg.mem_words - 8:] = words[:40], words[40:]
        got = mem[[(daddr + k * dstride) % cfg.mem_words for k in range(count)]]
        assert np.array_equal(got, full[srcrows]), f"transfer from {addr:#x} stride {stride} did not copy"


@cocotb.test()
async def read_write_same_cycle(dut):
    """One slice reads and writes in the same cycles; a read on the commit cycle sees the old word."""
    tb = await _tb(dut)
    cfg = tb.config
    r = rng()
    p = assemble(f"""
.queue MEM_W1
    READ  stream=5 dir=E addr=0 count=16
    WRITE stream=6 dir=W addr=0 count=16
    READ  stream=4 dir=E addr=0 count=16
.queue MEM_E0
    READ  stream=6 dir=W addr=0x40 count=16
.mem MEM_W1 addr=0
""" + "".join("    .vec " + " ".join(f"{b:02x}" for b in row) + "\n" for row in random_words(cfg, r, 16)) +
    ".mem MEM_E0 addr=0x40\n" +
    "".join("    .vec " + " ".join(f"{b:02x}" for b in row) + "\n" for row in random_words(cfg, r, 16)), cfg)
    await tb.run_and_compare(p)


@cocotb.test()
async def nop_timing(dut):
    """NOP n delays the next issue by exactly n cycles; CYCLES counts to the last busy cycle."""
    tb = await _tb(dut)
    for n in (1, 2, 37, 300):
        _, res, _, _ = await tb.run_and_compare(assemble(f".queue MEM_E0\n    NOP {n}\n", tb.config))
        assert res.cycles == n
    _, res, _, _ = await tb.run_and_compare(assemble(
        ".queue MEM_W0\n NOP 10\n READ stream=0 dir=W addr=0 count=3\n.queue MEM_E1\n NOP 5\n NOP 6\n", tb.config))
    assert res.cycles == 10 + 2 + spec.timing(tb.config)["mem_read_drive"] + 1


@cocotb.test()
async def illegal_instructions(dut):
    """Every kind of illegal word stops the chip on the cycle it reaches the queue head (error_stop
    cycles later: the westmost failure of that cycle is reported, not one of the cycles after)."""
    tb = await _tb(dut)
    cfg = tb.config
    rd = spec.BY_MNEMONIC["READ"]
    good = spec.encode("READ", stream=1, dir=E, addr=0, stride=1, count=2)
    cases = [
        (0x0, spec.ErrorCode.ILLEGAL_OPCODE),                                       # zeroed memory
        (0xFF, spec.ErrorCode.ILLEGAL_OPCODE),
        (spec.encode("NOP", cycles=1) | 1 << 20, spec.ErrorCode.BAD_FIELD),          # reserved bit
        (spec.BY_MNEMONIC["NOP"].code, spec.ErrorCode.BAD_FIELD),                   # NOP 0
        (good & ~rd.field("count").mask, spec.ErrorCode.BAD_FIELD),                 # count 0
        ((good & ~rd.field("stream").mask) | cfg.streams << rd.field("stream").lsb, spec.ErrorCode.BAD_FIELD),
        ((good & ~rd.field("addr").mask) | cfg.mem_words << rd.field("addr").lsb, spec.ErrorCode.BAD_FIELD),
        (good | 1 << 15, spec.ErrorCode.BAD_FIELD),
    ]
    lag = spec.timing(cfg)["error_stop"]
    for word, code in cases:
        p = Program.empty(cfg)
        p.add("MEM_W1", [spec.encode("NOP", cycles=3), good, word, good])
        p.add("MEM_E1", [spec.encode("NOP", cycles=4), word])                       # same cycle, east: not reported
        p.add("MEM_E0", [spec.encode("NOP", cycles=20), spec.encode("WRITE", stream=1, dir=E, addr=5, stride=1, count=1)])
        # west of MEM_W1, a cycle later: runs only where the stop lags the error, and is not reported
        p.add("MXM_W0", [spec.encode("NOP", cycles=5), 0x0])
        _, res, st, _ = await tb.run_and_compare(p)
        assert res.error == code and st.error_code == code, (hex(word), res, st)
        assert res.error_position == _pos(tb, "MEM_W1") and res.error_pc == 2 and res.cycles == 5 + lag, res


@cocotb.test()
async def ecc_single_bit_corrected(dut):
    """1,000 random single-bit flips (data or ECC bits) are all corrected and counted; the
    corrected words arrive downstream unchanged."""
    tb = await _tb(dut)
    cfg = tb.config
    r = rng()
    n = 1000
    words = random_words(cfg, r, n)
    code_bits = cfg.word_bits + tb.driver.code.stored_bits
    p = Program.empty(cfg).add_memory("MEM_W1", 0, words)
    src, dst = _pos(tb, "MEM_W1"), _pos(tb, "MEM_E0")
    s, out = min(3, cfg.streams - 1), min(0x1000, cfg.mem_words - n)      # (any configuration)
    p.add("MEM_W1", spec.encode("READ", stream=s, dir=E, addr=0, stride=1, count=n))
    T = spec.timing(cfg)
    t_w = T["mem_read_drive"] + (dst - src) - T["mem_write_sample"]
    p.add("MEM_E0", [spec.encode("NOP", cycles=t_w), spec.encode("WRITE", stream=s, dir=E, addr=out, stride=1, count=n)])
    flips = [(src, a, int(r.integers(code_bits))) for a in range(n)]
    gold, res, st, _ = await tb.run_and_compare(p, flips=flips)
    assert st.ecc_corrected == n and st.ecc_uncorrectable == 0
    assert np.array_equal(gold.memory(dst)[out:out + n], words)


@cocotb.test()
async def ecc_double_bit_flagged(dut):
    """Random double-bit flips are all flagged uncorrectable (none silently 'corrected')."""
    tb = await _tb(dut)
    cfg = tb.config
    r = rng()
    n = 200
    code_bits = cfg.word_bits + tb.driver.code.stored_bits
    p = Program.empty(cfg).add_memory("MEM_E1", 0x200, random_words(cfg, r, n))
    p.add("MEM_E1", spec.encode("READ", stream=min(7, cfg.streams - 1), dir=W, addr=0x200, stride=1, count=n))
    flips = []
    for a in range(n):
        b1, b2 = r.choice(code_bits, 2, replace=False)
        flips += [(_pos(tb, "MEM_E1"), 0x200 + a, int(b1)), (_pos(tb, "MEM_E1"), 0x200 + a, int(b2))]
    _, res, st, _ = await tb.run_and_compare(p, flips=flips)
    assert st.ecc_uncorrectable == n and st.ecc_corrected == 0 and st.ecc_uncorrectable_seen


@cocotb.test()
async def random_transfers(dut):
    """A random MEM-transfer program of >= 2,000 cycles, run twice: identical to the golden
    model and to itself (outputs on every cycle, SRAM, cycle count)."""
    tb = await _tb(dut)
    p = random_transfer_program(tb.config, rng(), min_cycles=int(os.environ.get("RANDOM_MIN_CYCLES", 2000)))
    start = tb.sram_snapshot()
    _, res1, st1, trace1 = await tb.run_and_compare(p)
    tb.sram_restore(start)                  # the second run starts from the same SRAM contents
    _, res2, st2, trace2 = await tb.run_and_compare(p)
    assert res1.cycles >= 2000 and st1.cycles == st2.cycles == res1.cycles
    assert len(trace1) == len(trace2) and all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
                                              for a, b in zip(trace1, trace2))
    tb.log.info("random transfer program: %d cycles", st1.cycles)


@cocotb.test()
async def random_instruction_words(dut):
    """Random 64-bit words in every queue (MEM, VXM, SXM): legal ones run, illegal ones stop the chip the
    same way in RTL and golden model. Legal words with very long effects are re-drawn."""
    tb = await _tb(dut)
    cfg = tb.config
    r = rng()
    mems = [s.position for s in cfg.floorplan if s.kind in spec.kinds_with_queues(cfg)]
    for _ in range(12):
        p = Program.empty(cfg)
        for pos in mems:
            words = []
            while len(words) < 6:
                w = random_instruction_word(r, kind=cfg.floorplan[pos].kind)
                try:
                    op, ops = spec.check(w, cfg.floorplan[pos].kind, cfg)
                    if ops.get("cycles", 0) > 200 or ops.get("count", 0) > 200:
                        continue
                except spec.IllegalInstruction:
                    pass
                words.append(w)
            p.add(pos, words)
        await tb.run_and_compare(p)


@cocotb.test()
async def fetch_refills(dut):
    """IFETCH: refills timed to the cycle (and on the last possible cycle), chained refills, a
    ring that wraps, and each fetch error (late refill, overflow, misaligned fill point, malformed
    IFETCH words): the RTL agrees with the golden model, which agrees with the hand-worked figures."""
    from . import fetch_stimulus as fs
    tb = await _tb(dut)
    for name, build in fs.CASES.items():
        if not fs.applies(name, tb.config):
            continue
        program, want = build(tb.config)
        _, res, _, _ = await tb.run_and_compare(program)
        got = {"cycles": res.cycles, "error": res.error, "position": res.error_position, "pc": res.error_pc}
        assert got == want, f"{name}: {got} != {want}"
