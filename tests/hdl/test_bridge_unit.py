"""Unit tests of the UART host bridge (`hdl/bridge.py`) under `amaranth.sim`, against the protocol
in isa/bridge.py: a bit-level serial host on one side, a behavioural chip on the other (a register
dict behind an AXI4-Lite slave, a stream sink for loads, a stream source for unloads).

The cocotb tests (tests/rtl/test_board.py) run the same bridge in front of the real chip; these
reach the corners cheaply: every error status, a cut frame, a chip that stalls, the drain after an
error keeping request and reply paired.
"""
import random

import pytest
from amaranth.sim import Simulator

from hdl.bridge import HostBridge, crc16_next
from isa import bridge as bp
from isa.config import get_config

CFG = get_config("tiny")
T = bp.BridgeTiming(divisor=4, timeout_bits=60)
WB, EB = bp.word_bytes(CFG), bp.ecc_bytes(CFG)


def test_crc_logic_matches_the_spec():
    from amaranth.hdl import Module, Signal
    m = Module()
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m.d.comb += out.eq(crc16_next(crc, byte))
    sim = Simulator(m)
    rng = random.Random(1)

    async def bench(ctx):
        for _ in range(200):
            c, b = rng.randrange(1 << 16), rng.randrange(256)
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == bp.crc16(bytes([b]), c)

    sim.add_testbench(bench)
    sim.run()


def test_crc_reference_value():
    assert bp.crc16(b"123456789") == 0x29B1          # CRC-16/CCITT-FALSE check value


class Chip:
    """The behavioural chip: registers, the load sink, the unload source, RUNNING."""

    def __init__(self, stall_load_after=None, unload=()):
        self.regs = {}
        self.loaded = []
        self.unload = list(unload)
        self.running = False
        self.stall_load_after = stall_load_after


def run(requests, chip=None, gap_after=None, max_cycles=60_000):
    """Send each request's bytes (a request may be cut: `gap_after[i]` = bytes sent before the line
    goes quiet); returns the list of reply frames (bytes), in order."""
    chip = chip or Chip()
    gap_after = gap_after or {}
    dut = HostBridge(CFG, T)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    replies, expected = [], len(requests)
    D = T.divisor

    async def host(ctx):
        for i, req in enumerate(requests):
            data = req[:gap_after.get(i, len(req))]
            for b in data:
                for bit in [0] + [(b >> j) & 1 for j in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    await ctx.tick().repeat(D)
            n = len(replies)
            for _ in range(max_cycles):
                if len(replies) > n:
                    break
                await ctx.tick()
            else:
                raise AssertionError(f"request {i}: no reply")

    async def line(ctx):                              # the host's receiver
        buf = bytearray()
        while True:
            while ctx.get(dut.tx):
                await ctx.tick()
            await ctx.tick().repeat(D // 2)
            b = 0
            for j in range(8):
                await ctx.tick().repeat(D)
                b |= ctx.get(dut.tx) << j
            await ctx.tick().repeat(D)
            assert ctx.get(dut.tx) == 1, "stop bit"
            buf.append(b)
            if len(buf) >= bp.REPLY_HEADER:
                n = int.from_bytes(buf[3:5], "little")
                status = buf[1]
                per = bp.item_bytes(cmd_of[len(replies)], CFG)[1] if status in (bp.Status.OK, bp.Status.STALLED) else 0
                if len(buf) == bp.REPLY_HEADER + n * per + bp.CRC_BYTES:
                    replies.append(bytes(buf))
                    buf.clear()

    async def axil(ctx):
        pending_w = None
        while True:
            ctx.set(dut.running, chip.running)
            aw, w = ctx.get(dut.m_axil_awvalid), ctx.get(dut.m_axil_wvalid)
            ctx.set(dut.m_axil_awready, 1)
            ctx.set(dut.m_axil_wready, 1)
            ctx.set(dut.m_axil_arready, 1)
            if aw and w:
                chip.regs[ctx.get(dut.m_axil_awaddr)] = ctx.get(dut.m_axil_wdata)
                pending_w = 2
            arv, ar = ctx.get(dut.m_axil_arvalid), ctx.get(dut.m_axil_araddr)
            await ctx.tick()
            ctx.set(dut.m_axil_bvalid, 0)
            ctx.set(dut.m_axil_rvalid, 0)
            if pending_w is not None:
                pending_w -= 1
                if pending_w == 0:
                    ctx.set(dut.m_axil_bvalid, 1)
                    pending_w = None
            if arv:
                ctx.set(dut.m_axil_rdata, chip.regs.get(ar, 0xDEAD0000 | ar))
                ctx.set(dut.m_axil_rvalid, 1)

    async def streams(ctx):
        while True:
            ready = chip.stall_load_after is None or len(chip.loaded) < chip.stall_load_after
            ctx.set(dut.load_tready, ready)
            if chip.unload:
                data, ecc = chip.unload[0]
                ctx.set(dut.unload_tdata, data)
                ctx.set(dut.unload_tuser, ecc)
                ctx.set(dut.unload_tvalid, 1)
            else:
                ctx.set(dut.unload_tvalid, 0)
            take_load = ready and ctx.get(dut.load_tvalid)
            take_unload = chip.unload and ctx.get(dut.unload_tready)
            word = ctx.get(dut.load_tdata)
            await ctx.tick()
            if take_load:
                chip.loaded.append(word)
            if take_unload:
                chip.unload.pop(0)

    cmd_of = [r[1] for r in requests]
    sim.add_testbench(host)
    sim.add_testbench(line, background=True)
    sim.add_testbench(axil, background=True)
    sim.add_testbench(streams, background=True)
    sim.run()
    for r in replies:
        assert r[0] == bp.SOF_REPLY
        assert int.from_bytes(r[-2:], "little") == bp.crc16(r[1:-2]), "reply CRC"
    return replies


def status(reply):
    return bp.Status(reply[1])


def test_write_then_read_registers():
    chip = Chip()
    vals = [0x11223344, 0xCAFEF00D, 7]
    wr = bp.request(bp.Cmd.WRITE, 5, 0x80, 3, b"".join(v.to_bytes(4, "little") for v in vals))
    rd = bp.request(bp.Cmd.READ, 6, 0x80, 3)
    r = run([wr, rd], chip)
    assert (status(r[0]), r[0][2], int.from_bytes(r[0][3:5], "little")) == (bp.Status.OK, 5, 3)
    assert chip.regs == {0x80: vals[0], 0x84: vals[1], 0x88: vals[2]}
    assert status(r[1]) == bp.Status.OK and r[1][2] == 6
    assert [int.from_bytes(r[1][5 + 4 * i:9 + 4 * i], "little") for i in range(3)] == vals


def test_stream_in_and_out():
    words = [random.Random(i).randrange(1 << (8 * WB)) for i in range(5)]
    unload = [(w, i + 1) for i, w in enumerate(words)]
    chip = Chip(unload=unload)
    payload = b"".join(w.to_bytes(WB, "little") for w in words)
    r = run([bp.request(bp.Cmd.STREAM_IN, 1, 0, 5, payload), bp.request(bp.Cmd.STREAM_OUT, 2, 0, 5)], chip)
    assert status(r[0]) == bp.Status.OK and chip.loaded == words
    assert status(r[1]) == bp.Status.OK
    body = r[1][5:-2]
    per = WB + EB
    got = [(int.from_bytes(body[per * i:per * i + WB], "little"), int.from_bytes(body[per * i + WB:per * (i + 1)], "little"))
           for i in range(5)]
    assert got == unload


@pytest.mark.parametrize("what,want", [
    ("bad_crc", bp.Status.BAD_CRC), ("bad_cmd", bp.Status.BAD_CMD), ("count0", bp.Status.BAD_LENGTH),
    ("too_long", bp.Status.BAD_LENGTH), ("hole", bp.Status.BAD_ADDR), ("read_only", bp.Status.BAD_ADDR),
    ("beyond", bp.Status.BAD_ADDR), ("unaligned", bp.Status.BAD_ADDR), ("busy", bp.Status.BUSY),
    ("cut", bp.Status.TIMEOUT), ("stall_in", bp.Status.STALLED), ("stall_out", bp.Status.STALLED)])
def test_errors_execute_nothing_and_keep_pairing(what, want):
    """Each bad request gets its one error reply, writes nothing, and the next request works."""
    chip = Chip()
    ok = bp.request(bp.Cmd.WRITE, 9, 0x64, 1, (42).to_bytes(4, "little"))
    one = (5).to_bytes(4, "little")
    bad, gap = {
        "bad_crc": (bp.request(bp.Cmd.WRITE, 1, 0x60, 1, one)[:-1] + b"\x00", None),
        "bad_cmd": (bp.request(9, 1, 0x60, 1, one), None),
        "count0": (bp.request(bp.Cmd.WRITE, 1, 0x60, 0), None),
        "too_long": (bp.request(bp.Cmd.READ, 1, 0x60, bp.max_count(bp.Cmd.READ, CFG) + 1), None),
        "hole": (bp.request(bp.Cmd.READ, 1, 0x74, 2), None),               # 0x78 is not a register
        "read_only": (bp.request(bp.Cmd.WRITE, 1, 0x08, 1, one), None),     # STATUS
        "beyond": (bp.request(bp.Cmd.WRITE, 1, 0x8000_0060, 1, one), None),
        "unaligned": (bp.request(bp.Cmd.WRITE, 1, 0x62, 1, one), None),
        "busy": (bp.request(bp.Cmd.WRITE, 1, 0x60, 1, one), None),
        "cut": (bp.request(bp.Cmd.WRITE, 1, 0x60, 1, one), 7),
        "stall_in": (bp.request(bp.Cmd.STREAM_IN, 1, 0, 3, bytes(3 * WB)), None),
        "stall_out": (bp.request(bp.Cmd.STREAM_OUT, 1, 0, 3), None),
    }[what]
    if what == "busy":
        chip.running = True
    if what == "stall_in":
        chip.stall_load_after = 2
    if what == "stall_out":
        chip.unload = [(1, 0), (2, 0)]
    reqs = [bad] if what == "busy" else [bad, ok]
    r = run(reqs, chip, gap_after={0: gap} if gap else None)
    assert status(r[0]) == want
    if want == bp.Status.STALLED:
        assert int.from_bytes(r[0][3:5], "little") == 2            # two items moved
        assert status(r[1]) == bp.Status.OK and chip.regs == {0x64: 42}
    elif what != "busy":
        assert chip.regs == {0x64: 42} and status(r[1]) == bp.Status.OK and r[1][2] == 9
    else:
        assert chip.regs == {}
