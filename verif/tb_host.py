"""Host-port cocotb tests: identity/config registers, queue and SRAM access rules, HOST_ERR."""
import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from isa import hostmap as hm
from isa.image import Program
from isa import spec
from isa.config import SliceKind

from .chip_tb import ChipTB, rng
from .driver import ChipDriver


@cocotb.test()
async def registers_and_refusals(dut):
    tb = ChipTB(dut)
    await tb.reset()                      # checks ID and CONFIG0
    d, cfg = tb.driver, tb.config
    code = d.code
    cfg1 = await d.read("CONFIG1")
    assert cfg1 == (cfg.mem_addr_bits | (cfg.queue_depth - 1).bit_length() << 8 | code.stored_bits << 16)
    # SRAM write/readback through the chip's ECC encoder, on every MEM slice
    r = rng()
    mems = [s.position for s in cfg.floorplan if s.kind.value == "MEM"]
    for pos in mems:
        words = r.integers(0, 256, (3, cfg.lanes), dtype=np.uint8)
        await d.write_words(pos, 0x123, words)
        for k in range(3):
            data, ecc = await d.read_raw(pos, 0x123 + k)
            assert np.array_equal(data, words[k])
            assert ecc == code.encode(int.from_bytes(words[k].tobytes(), "little"))
    # the same through the register-only path (no AXI4-Stream): five register writes per word
    lite = ChipDriver(tb.axil, cfg)
    words = r.integers(0, 256, (2, cfg.lanes), dtype=np.uint8)
    await lite.write_words(mems[1], 0x200, words)
    for k in range(2):
        data, _ = await d.read_raw(mems[1], 0x200 + k)
        assert np.array_equal(data, words[k])
    # queue length readback, per queue
    for i, pos in enumerate(mems):
        await d.load_queue(pos, [spec.encode("NOP", cycles=1)] * i)
    for i, pos in enumerate(mems):
        await d.write("Q_SEL", pos)
        assert await d.read("Q_LEN") == i
    st = await d.status()
    assert not st.host_error
    # a selector that is not a MEM slice is refused and flagged
    await d.write("M_SEL", cfg.slice_named("VXM").position)
    await d.write("M_CMD", hm.MCMD_WRITE)
    st = await d.status()
    assert st.host_error
    await d.clear()
    assert not (await d.status()).host_error
    # addresses and lengths beyond the configuration are refused too
    for reg, val, then in (("M_ADDR", cfg.mem_words, ("M_CMD", hm.MCMD_WRITE)),
                           ("Q_ADDR", cfg.queue_depth, ("Q_DATA_HI", 0)),
                           ("Q_LEN", cfg.queue_depth + 1, None)):
        await d.write("M_SEL", mems[0])
        await d.write("Q_SEL", mems[0])
        await d.write(reg, val)
        if then:
            await d.write(*then)
        assert (await d.status()).host_error, reg
        await d.clear()
    # while running, SRAM and queue writes are refused and flagged, and change nothing
    pos = mems[0]
    for p in mems:
        await d.load_queue(p, [])
    await d.load_queue(pos, [spec.encode("NOP", cycles=2000)])
    before, _ = await d.read_raw(pos, 0x123)
    await d.start()
    await d.write("M_SEL", pos)
    await d.write("M_ADDR", 0x123)
    await d.write("M_DATA", 0xDEADBEEF, 0)
    await d.write("M_CMD", hm.MCMD_WRITE)
    await d.write("Q_SEL", pos)
    await d.write("Q_LEN", 0)
    st = await d.status()
    assert st.running and st.host_error and not st.done
    await d.clear()
    await d.start()                          # START while running is refused, the run goes on
    st = await d.status()
    assert st.running and st.host_error
    while not (await d.status()).done:
        pass
    st = await d.status()
    assert st.cycles == 2000 and not st.error
    after, _ = await d.read_raw(pos, 0x123)
    assert np.array_equal(before, after)
    await d.write("Q_SEL", pos)
    assert await d.read("Q_LEN") == 1
    # START again re-runs the same program with the same cycle count; CLEAR resets DONE
    await d.clear()
    await d.start()
    while not (await d.status()).done:
        pass
    assert (await d.status()).cycles == 2000
    await d.clear()
    st = await d.status()
    assert not st.done and not st.host_error


@cocotb.test()
async def bulk_stream_load(dut):
    """AXI4-Stream bulk load: one word per beat, ECC computed by the chip, addresses advance;
    beats the chip cannot store are dropped with HOST_ERR instead of stalling the master."""
    tb = ChipTB(dut)
    await tb.reset()
    d, cfg = tb.driver, tb.config
    r = rng()
    pos = cfg.slice_named("MEM_E0").position
    words = r.integers(0, 256, (1000, cfg.lanes), dtype=np.uint8)
    t0 = cocotb.utils.get_sim_time("ns")
    await d.write_words(pos, cfg.mem_words - 500, words)          # the last 500 beats run past mem_words
    st = await d.status()
    assert st.host_error                                            # beats past mem_words were dropped
    await d.clear()
    await d.write_words(pos, 0x100, words)
    took = (cocotb.utils.get_sim_time("ns") - t0)
    assert not (await d.status()).host_error
    for k in r.choice(1000, 40, replace=False):
        data, ecc = await d.read_raw(pos, 0x100 + int(k))
        assert np.array_equal(data, words[k])
        assert ecc == d.code.encode(int.from_bytes(words[k].tobytes(), "little"))
    assert (await d.read("M_ADDR")) > 0
    tb.log.info("2 x 1000 words streamed in %d ns of simulated time", took)
    # unload over m_axis: raw words with their ECC on tuser, corrected by the driver; a flipped
    # stored bit comes back corrected
    data, ecc = await d.read_raw(pos, 0x100 + 7)
    data[3] ^= 0x10
    await d.write_raw(pos, 0x100 + 7, data, ecc)
    back = await d.read_words(pos, 0x100, 1000)
    assert np.array_equal(back, words)
    assert not (await d.status()).host_error and not (await d.status()).running
    await d.write("M_COUNT", 0)                          # an empty or out-of-range unload is refused
    await d.write("M_CMD", hm.MCMD_READ_STREAM)
    assert (await d.status()).host_error
    await d.clear()
    # while running, beats are dropped and flagged
    for p in [s.position for s in cfg.slices_of(SliceKind.MEM)]:
        await d.load_queue(p, [])
    await d.load_queue(pos, [spec.encode("NOP", cycles=500)])
    await d.start()
    await d.write_words(pos, 0x100, np.zeros((3, cfg.lanes), np.uint8))
    st = await d.status()
    assert st.running and st.host_error
    while not (await d.status()).done:
        pass
    data, _ = await d.read_raw(pos, 0x100)
    assert np.array_equal(data, words[0])


@cocotb.test()
async def queue_stream_load(dut):
    """Queues loaded over AXI4-Stream (S_DEST = 1, fetch_words words per beat): the program runs as
    when loaded word by word; a beat at a Q_ADDR that is not a multiple of fetch_words, for a
    selector without a queue, or while running is dropped with HOST_ERR."""
    from .stimulus import random_transfer_program
    tb = ChipTB(dut)
    await tb.reset()
    d, cfg = tb.driver, tb.config
    fw = cfg.fetch_words
    await d.write("S_DEST", hm.SDEST_QUEUE)
    assert await d.read("S_DEST") == hm.SDEST_QUEUE
    pos = cfg.slice_named("MEM_E0").position
    for q_sel, q_addr in ((pos, 1), (cfg.positions + 3, 0), (pos, cfg.queue_depth)):
        if fw == 1 and q_addr == 1:
            continue
        await d.write("Q_SEL", q_sel)
        await d.write("Q_ADDR", q_addr)
        await tb.send_words(np.zeros((1, cfg.lanes), np.uint8).tobytes())
        assert (await d.status()).host_error, (q_sel, q_addr)
        await d.clear()
    await d.write("Q_SEL", pos)
    await d.write("Q_ADDR", 0)
    await tb.send_words(np.zeros((3, cfg.lanes), np.uint8).tobytes())
    assert await d.read("Q_ADDR") == 3 * fw and not (await d.status()).host_error
    await d.write("S_DEST", 0)
    _, res, _, _ = await tb.run_and_compare(random_transfer_program(cfg, rng(), min_cycles=300))
    assert res.cycles >= 300
    await d.load(Program.empty(cfg).add(pos, spec.encode("NOP", cycles=300)))
    await d.start()
    await d.write("S_DEST", hm.SDEST_QUEUE)
    await d.write("Q_ADDR", 0)
    await tb.send_words(np.zeros((1, cfg.lanes), np.uint8).tobytes())
    st = await d.status()
    assert st.running and st.host_error
    await d.write("S_DEST", 0)
    while not (await d.status()).done:
        pass


def _pattern(r, busy: float):
    """An endless idle / back-pressure pattern for cocotbext-axi's pause generators: 1 pauses
    the bus that cycle, with probability `busy`, in runs (a bursty master or sink)."""
    while True:
        for _ in range(int(r.integers(1, 6))):
            yield 0
        for _ in range(int(r.integers(1, 4)) if r.random() < busy else 0):
            yield 1


@cocotb.test()
async def stream_idle_and_backpressure(dut):
    """The AXI4-Stream ports under an idle master and a back-pressuring sink (cocotbext-axi pause
    generators): SRAM words and queue rows loaded with gaps, words unloaded while the sink stalls,
    and a program loaded that way runs equal to the golden model."""
    from .stimulus import random_transfer_program
    tb = ChipTB(dut, backdoor=False)
    await tb.reset()
    d, cfg = tb.driver, tb.config
    r = rng()
    tb.axis.set_pause_generator(_pattern(r, 0.6))
    tb.axis_out.set_pause_generator(_pattern(r, 0.7))
    pos = cfg.slice_named("MEM_W1").position
    words = r.integers(0, 256, (300, cfg.lanes), dtype=np.uint8)
    t0 = cocotb.utils.get_sim_time("ns")
    await d.write_words(pos, 0x40, words)
    beats_ns = cocotb.utils.get_sim_time("ns") - t0
    assert not (await d.status()).host_error
    t1 = cocotb.utils.get_sim_time("ns")
    for _ in range(10):
        await RisingEdge(dut.clk)
    period = (cocotb.utils.get_sim_time("ns") - t1) / 10
    assert beats_ns > 1.2 * 300 * period, "the idle pattern did not slow the master: it is not applied"
    assert np.array_equal(await d.read_words(pos, 0x40, 300), words)
    await d.write_words(pos, 0x40, np.zeros_like(words))     # back to the reset state the golden model assumes
    # queue rows with gaps between beats: the ring holds exactly what was sent
    queue = [spec.encode("NOP", cycles=1 + int(c)) for c in r.integers(0, 50, 4 * cfg.fetch_words + 1)]
    await d.load_queue(pos, queue)
    assert await d.read("Q_LEN") == len(queue) and not (await d.status()).host_error
    _, res, _, _ = await tb.run_and_compare(random_transfer_program(cfg, r, min_cycles=400))
    assert res.cycles >= 400
    tb.axis.clear_pause_generator()
    tb.axis_out.clear_pause_generator()
