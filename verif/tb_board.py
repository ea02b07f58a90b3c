"""cocotb tests of the board top (hdl/board.py `BoardCore`, module `board`): the chip behind the
UART host bridge, driven only through its serial line, by the host code a real board runs
(verif/bridge.py over verif/driver.py) with a cocotbext-uart line instead of pyserial.

Environment: CHIP_CONFIG; run_program also RUN_PROGRAM, RUN_DUMPS, RUN_OUT (as verif/tb_run.py).
"""
import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from hdl.board import LEDS
from isa import bridge as bp
from isa import hostmap as hm
from isa.image import Program
from isa import spec
from sim.golden import Golden

from .bridge import BridgeBus, BridgeClient, BridgeError
from .chip_tb import config_from_env
from .driver import ChipDriver
from .tb_run import run_from_env

PERIOD_NS = 10
TIMING = bp.SIM_TIMING


class SimLine:
    """A bridge transport over a simulated serial line (cocotbext-uart at the bridge's bit rate).
    `read` waits in simulated time: long enough for the bytes, the bridge's timeout and a chip's
    stream words; `corrupt` (a function of the frame) damages what is sent, for fault tests."""

    def __init__(self, dut):
        baud = 1e9 / (PERIOD_NS * TIMING.divisor)
        for sig in (dut.rx, dut.tx):                 # cocotbext-uart logs every byte at INFO
            logging.getLogger(f"cocotb.{sig._path}").setLevel(logging.WARNING)
        self.source, self.sink = UartSource(dut.rx, baud=baud), UartSink(dut.tx, baud=baud)
        self.byte_ns = bp.UART_BITS * TIMING.divisor * PERIOD_NS
        self.corrupt = None
        self.sent = 0

    async def write(self, data: bytes) -> None:
        if self.corrupt is not None:
            data = self.corrupt(data)
        self.sent += len(data)
        await self.source.write(data)

    async def read(self, n: int, timeout_s: float = 0) -> bytes:
        await self.source.wait()                      # the request has left
        deadline = get_sim_time("ns") + (n + 4) * self.byte_ns + 3 * TIMING.timeout_cycles * PERIOD_NS + 100_000
        out = bytearray()
        while len(out) < n:
            left = deadline - get_sim_time("ns")
            if left <= 0:
                break
            await self.sink.wait(int(left), "ns")
            out += self.sink.read_nowait(min(n - len(out), self.sink.count()))
        return bytes(out)


class BoardTB:
    def __init__(self, dut):
        self.dut, self.config = dut, config_from_env()
        self.line = SimLine(dut)
        self.client = BridgeClient(self.line, self.config)
        bus = BridgeBus(self.client)
        self.driver = ChipDriver(bus, self.config, stream=bus)

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, PERIOD_NS, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 3)
        await self.driver.check_identity()

    def leds(self) -> dict:
        v = int(self.dut.led.value)
        return {n: v >> i & 1 for i, n in enumerate(LEDS)}

    async def raw(self, frame: bytes, cmd: bp.Cmd) -> tuple[int, int, bytes]:
        """Send bytes as they are; the one reply (status, items, payload)."""
        self.client.seq = frame[2] if len(frame) > 2 else self.client.seq
        await self.line.write(frame)
        return await self.client._reply(cmd)


@cocotb.test()
async def run_program(dut):
    """A program image through the bridge: load, start, wait, unload (python -m verif.run --target fpga)."""
    tb = BoardTB(dut)
    await tb.reset()
    await run_from_env(tb.driver, tb.config)
    leds = tb.leds()
    error = hm.unpack("STATUS", await tb.driver.read("STATUS"))["error"]
    assert leds["done"] == 1 and leds["running"] == 0 and leds["error"] == error, leds


@cocotb.test()
async def damaged_requests(dut):
    """Corrupted frames (a bit flipped anywhere, garbage between frames, a cut frame, a wrong
    length) are answered with their one error reply and execute nothing; the bridge then serves
    the next request; a damaged request is retried by the client transparently."""
    tb = BoardTB(dut)
    await tb.reset()
    rnd = random.Random(cocotb.RANDOM_SEED)
    reg = hm.addr("M_ADDR")
    await tb.driver.write("M_SEL", next(s.position for s in tb.config.floorplan if s.kind.name == "MEM"))
    await tb.driver.write("M_ADDR", 5)
    for trial in range(int(os.environ.get("BOARD_TRIALS", "6"))):
        good = bp.request(bp.Cmd.WRITE, 0x40 + trial, reg, 1, (100 + trial).to_bytes(4, "little"))
        bit = rnd.randrange(8, 8 * len(good))           # any bit after the start byte
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        status, _, _ = await tb.raw(bytes(bad), bp.Cmd.WRITE)
        # a flipped count or command can also end as TIMEOUT / BAD_LENGTH / BAD_CMD / BAD_ADDR
        assert status != bp.Status.OK, f"trial {trial}: bit {bit} flipped and the request was executed"
        assert await tb.driver.read("M_ADDR") == 5, f"trial {trial}: M_ADDR changed by a damaged request"
    # garbage between frames is skipped
    await tb.line.write(bytes([0x00, 0xFF, 0x13]))
    assert await tb.driver.read("M_ADDR") == 5
    # a frame cut in the middle: TIMEOUT, then the bridge serves the next request
    cut = bp.request(bp.Cmd.WRITE, 0x77, reg, 1, (9).to_bytes(4, "little"))[:8]
    status, _, _ = await tb.raw(cut, bp.Cmd.WRITE)
    assert status == bp.Status.TIMEOUT, bp.Status(status)
    assert await tb.driver.read("M_ADDR") == 5
    # a bad address and a too long request: refused with their status, one line
    for frame, cmd, want in [(bp.request(bp.Cmd.WRITE, 1, hm.addr("STATUS"), 1, bytes(4)), bp.Cmd.WRITE, bp.Status.BAD_ADDR),
                             (bp.request(bp.Cmd.READ, 2, 0, bp.max_count(bp.Cmd.READ, tb.config) + 1), bp.Cmd.READ,
                              bp.Status.BAD_LENGTH)]:
        status, _, _ = await tb.raw(frame, cmd)
        assert status == want, (bp.Status(status), want)
    try:
        await tb.client.transact(bp.Cmd.WRITE, 0x78, 1, bytes(4))
        raise AssertionError("a write to 0x78 (no register) was accepted")
    except BridgeError as e:
        assert "BAD_ADDR" in str(e) and "\n" not in str(e)
    # the client retries a request the line damaged (the bridge says BAD_CRC: not executed)
    first = [True]

    def once(frame):
        if first[0]:
            first[0] = False
            return frame[:-1] + bytes([frame[-1] ^ 0x10])
        return frame
    tb.line.corrupt = once
    retries = tb.client.stats["retries"]
    await tb.driver.write("M_ADDR", 7)
    tb.line.corrupt = None
    assert tb.client.stats["retries"] == retries + 1
    assert await tb.driver.read("M_ADDR") == 7


@cocotb.test()
async def busy_while_running(dut):
    """While the chip runs, the bridge answers READ and refuses everything else with BUSY; the
    LEDs show RUNNING, then DONE."""
    tb = BoardTB(dut)
    await tb.reset()
    cfg = tb.config
    cycles = 8000                                      # longer than the three requests below take
    prog = Program(cfg, queues={cfg.floorplan[0].position: [spec.encode("NOP", cycles=cycles)]})
    want = Golden(prog).run().cycles
    position, words = next(iter(prog.queues.items()))
    await tb.driver.load_queue(position, words)          # every other queue is empty after reset
    await tb.driver.start()
    assert hm.unpack("STATUS", await tb.driver.read("STATUS"))["running"] and tb.leds()["running"] == 1
    try:
        await tb.driver.write("M_ADDR", 3)
        raise AssertionError("a write while running was accepted")
    except BridgeError as e:
        assert "BUSY" in str(e), e
    try:
        await tb.driver.stream.send_words(bytes(bp.word_bytes(cfg)))
        raise AssertionError("a stream load while running was accepted")
    except BridgeError as e:
        assert "BUSY" in str(e), e
    while not (st := await tb.driver.status()).done:
        pass
    assert not st.error and not st.host_error and st.cycles == want, (st, want)
    assert tb.leds() == {"running": 0, "done": 1, "error": 0, "ecc": 0}, tb.leds()
    await tb.driver.write("M_ADDR", 3)                 # served again
    assert await tb.driver.read("M_ADDR") == 3


@cocotb.test()
async def error_stop(dut):
    """An illegal word stops the chip as the golden model says: CYCLES, ERROR_INFO, the ERROR LED.
    A slice west of the failing one fails a cycle later; where the stop lags the error (spec
    error_stop 1, the `fpga` preset) that cycle runs, and ERROR_INFO still names the first."""
    tb = BoardTB(dut)
    await tb.reset()
    cfg = tb.config
    nop = lambda n: spec.encode("NOP", cycles=n)      # noqa: E731
    prog = Program.empty(cfg)
    prog.add("MEM_W1", [nop(3), spec.encode("READ", stream=1, dir=0, addr=0, stride=1, count=2), 0xFF])
    prog.add("MXM_W0", [nop(5), 0x0])
    gold = Golden(prog).run()
    st, _ = await tb.driver.run(prog)
    info = hm.unpack("ERROR_INFO", st["error_info"])
    assert (st["cycles"], info["code"], info["position"], info["pc"]) == \
        (gold.cycles, gold.error, gold.error_position, gold.error_pc), (st, info, gold)
    assert gold.error == spec.ErrorCode.ILLEGAL_OPCODE and gold.error_position == cfg.slice_named("MEM_W1").position
    assert gold.cycles == 5 + spec.timing(cfg)["error_stop"], gold
    assert tb.leds() == {"running": 0, "done": 1, "error": 1, "ecc": 0}, tb.leds()


@cocotb.test()
async def sync_alone(dut):
    """SYNC on a chip alone: its queues hold until the release, sync_release cycles of program time
    after the chip went quiet, and CYCLES counts program time (the golden model's), however many
    cycles the hold took (STALL)."""
    tb = BoardTB(dut)
    await tb.reset()
    cfg = tb.config
    nop, sync = (lambda n: spec.encode("NOP", cycles=n)), spec.encode("SYNC")     # noqa: E731
    prog = Program.empty(cfg)
    prog.add("MEM_W1", [nop(2), sync, nop(4), sync, nop(1)])
    prog.add("MEM_E1", [nop(7), sync, nop(1), sync, nop(9)])
    gold = Golden(prog).run()
    st, _ = await tb.driver.run(prog)
    assert not st["error"] and st["cycles"] == gold.cycles, (st, gold)
    stall = await tb.driver.read("STALL")
    assert stall >= 2, f"STALL {stall}: two SYNCs held"


@cocotb.test()
async def throughput(dut):
    """Bridge rates for `python -m bench.bridge`: register writes, bulk SRAM load and unload, each
    as simulated time in bit times of the line (written to BRIDGE_OUT as JSON)."""
    tb = BoardTB(dut)
    await tb.reset()
    cfg = tb.config
    n_regs, n_words = int(os.environ.get("BRIDGE_REGS", "32")), int(os.environ.get("BRIDGE_WORDS", "256"))
    bit_ns = TIMING.divisor * PERIOD_NS
    mem = next(s.position for s in cfg.floorplan if s.kind.name == "MEM")
    data = np.random.default_rng(cocotb.RANDOM_SEED).integers(0, 256, (n_words, cfg.lanes)).astype(np.uint8)
    out = {"divisor": TIMING.divisor}
    t0 = get_sim_time("ns")
    for i in range(n_regs):
        await tb.driver.write("M_ADDR", i)
    out["register_write_bits"] = (get_sim_time("ns") - t0) / bit_ns / n_regs
    sent = tb.line.sent
    t0 = get_sim_time("ns")
    await tb.driver.write_words(mem, 0, data)
    out["load_bits_per_word"] = (get_sim_time("ns") - t0) / bit_ns / n_words
    out["load_line_bytes_per_word"] = (tb.line.sent - sent) / n_words
    t0 = get_sim_time("ns")
    back = await tb.driver.read_words(mem, 0, n_words)
    out["unload_bits_per_word"] = (get_sim_time("ns") - t0) / bit_ns / n_words
    assert np.array_equal(back, data), "words read back through the bridge differ from those loaded"
    with open(os.environ["BRIDGE_OUT"], "w") as fh:
        json.dump(out, fh)
