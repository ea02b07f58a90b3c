"""cocotb testbench for a system of chips (hdl/system.py): one clock, reset and host port per
chip, a link model per direction of every link, and the scoreboard against sim/system.py.

`SystemTB.run_and_compare(programs)` runs the programs on the golden system and on the RTL and
compares, per chip, the cycle count, the error status, the ECC counters and every SRAM word, and
per link end its FEC counters. Test parameters come from the environment (the pytest side in
tests/rtl/test_system.py sets them): SYS_TEST (which scenario), SYS_SEED, SYS_SKEW (per-lane
skews, comma separated), SYS_LAT (the latency the programs assume).
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Combine, ReadOnly, RisingEdge

from isa import hostmap as hm
from isa import spec
from isa.config import SliceKind
from isa.link import min_latency
from isa.system import Link, System, get_system
from sim.system import SystemGolden

from .chip_tb import HostPort, written_words

PERIOD_PS = 10_000
TRAIN_WAIT = 1024           # cycles after reset within which every joined link must be up
ALIGN_WAIT = 4096           # ... and then within which every HAC must be aligned (three SYNC_TREE windows)


class SystemTB:
    """`inject`: watch every link's frames from reset on, so that `run_and_compare(faults=...)` can
    flip bits of chosen DATA frames (costs a coroutine per link direction and cycle)."""

    def __init__(self, dut, inject: bool = False):
        self.inject = inject
        self.dut = dut
        self.log = dut._log
        self.hw_system = get_system(os.environ.get("CHIP_CONFIG", "pair"))
        self.system = self.hw_system
        self.n = len(self.system.chips)
        self.configs = [self.system.config(i) for i in range(self.n)]
        self.clk = [getattr(dut, f"clk_{i}") for i in range(self.n)]
        self.rst = [getattr(dut, f"rst_{i}") for i in range(self.n)]
        self.ports = [HostPort(dut, self.configs[i], self.clk[i], self.rst[i], prefix=f"c{i}_") for i in range(self.n)]
        self.drivers = [p.driver for p in self.ports]
        self.clocks_started = False
        self.shadow = [None] * self.n       # SRAM each chip holds after the last compared run
        self.down: set[int] = set()
        self.plan: dict = {}                # (link, direction) -> {arriving frame index: [(codeword, bit)]}
        self.delays: dict = {}
        self.data_frames: dict = {}         # (link, direction) -> DATA frames sent since reset
        self.frame_base: dict = {}          # ... at the start of the current run
        self.injectors: list = []

    def with_latency(self, latency: int) -> None:
        """Run programs as if every link had `latency` (the hardware is the same; the link model's
        wire delay follows in `reset`)."""
        self.system = System(self.hw_system.name, self.hw_system.chips,
                             tuple(Link(lk.a, lk.b, latency) for lk in self.hw_system.links))

    def link_inputs(self, k: int, d: str):
        return (getattr(self.dut, f"link{k}_{d}_delay"), getattr(self.dut, f"link{k}_{d}_flip"),
                getattr(self.dut, f"link{k}_{d}_cut"))

    async def reset(self, skews=None, wire=None, periods=None, cut=(), slack=0):
        """(Start the clocks,) set every link model (per lane: wire + skew cycles late; `cut`: the
        (link, direction) pairs with no signal) and reset all chips together. The default wire
        makes each link exactly as slow as its latency allows, less `slack` cycles."""
        cfg = self.configs[0]
        if not self.clocks_started:
            for i in range(self.n):
                p = (periods or [PERIOD_PS] * self.n)[i]
                cocotb.start_soon(Clock(self.clk[i], p, unit="ps", period_high=p // 2).start())
            self.clocks_started = True
        for i in range(self.n):
            self.rst[i].value = 1
        for k, lk in enumerate(self.system.links):
            w = (lk.latency - slack - min_latency(cfg)) if wire is None else wire
            sk = skews or [0] * cfg.c2c_lanes
            for d in ("ab", "ba"):
                delay, flip, cutp = self.link_inputs(k, d)
                self.delays[(k, d)] = [w + s for s in sk]
                delay.value = sum((w + s) << (8 * l) for l, s in enumerate(sk))
                flip.value = 0
                cutp.value = int((k, d) in cut)
        for j in self.injectors:
            j.cancel()
        self.injectors = [cocotb.start_soon(self.injector(k, d)) for k in range(len(self.system.links))
                          for d in ("ab", "ba")] if self.inject else []
        await ClockCycles(self.clk[0], 3)
        for i in range(self.n):
            self.rst[i].value = 0
        await RisingEdge(self.clk[0])
        for d, regs in zip(self.drivers, self.system.sync_registers()):
            await d.check_identity()
            await d.join(regs)

    def joined(self) -> list[tuple[int, str]]:
        return [(e.chip, e.link) for k, lk in enumerate(self.system.links) if k not in self.down for e in (lk.a, lk.b)]

    async def link_states(self, links=None) -> dict:
        links = links if links is not None else self.joined()
        return {(c, n): await self.drivers[c].link(self.configs[c].slice_named(n).position) for c, n in links}

    async def wait_trained(self) -> None:
        """Every joined link up (within TRAIN_WAIT cycles of reset) and every chip's HAC aligned to
        its parent's (within ALIGN_WAIT), or fail naming the link or chip."""
        for _ in range(TRAIN_WAIT // 64):
            states = await self.link_states()
            if all(s["up"] for s in states.values()):
                break
            failed = [f"chip{c}.{n}" for (c, n), s in states.items() if s["failed"]]
            assert not failed, f"links failed training: {', '.join(failed)}"
            await ClockCycles(self.clk[0], 64)
        else:
            raise AssertionError(f"links not up {TRAIN_WAIT} cycles after reset")
        for _ in range(ALIGN_WAIT // 64):
            hacs = [hm.unpack("HAC", await d.read("HAC")) for d in self.drivers]
            if all(h["aligned"] for h in hacs):
                self.log.info("HAC offsets %s", [h["offset"] for h in hacs])
                return
            await ClockCycles(self.clk[0], 64)
        raise AssertionError(f"HACs not aligned {ALIGN_WAIT} cycles after training: {hacs}")

    async def run(self, programs, offsets=None):
        """Load every chip, START them (chip i `offsets[i]` of its cycles later than the first
        START, all on one cycle by default), wait until all are done; returns their status."""
        for d, p in zip(self.drivers, programs):
            await d.load(p)

        async def start(i):
            await ClockCycles(self.clk[i], (offsets or [0] * self.n)[i])
            await self.drivers[i].start()
        await Combine(*(cocotb.start_soon(start(i)) for i in range(self.n)))
        for i in range(self.n):
            for _ in range(1 << 20):
                await RisingEdge(self.clk[i])
                await ReadOnly()
                if int(getattr(self.dut, f"c{i}_done").value):
                    break
            else:
                raise AssertionError(f"chip {i} not done after {1 << 20} cycles")
        await ClockCycles(self.clk[0], 64)          # frames still on the wires land and are counted
        return [await d.status() for d in self.drivers]

    # ---- fault injection ------------------------------------------------------------------
    def aim(self, faults: dict) -> None:
        """Faults for the next run, as sim/system.py takes them: {(chip, link name): {frame: [(cw, bit)]}}."""
        assert self.inject or not faults, "faults need SystemTB(inject=True)"
        self.plan = {}
        for k, lk in enumerate(self.system.links):
            for d, dst in (("ab", lk.b), ("ba", lk.a)):
                f = faults.get((dst.chip, dst.link))
                if f:
                    self.plan[(k, d)] = f

    async def injector(self, k: int, d: str) -> None:
        """Watch what the sender of link k direction d drives; count its DATA frames from training on,
        and flip the planned bits of the planned ones as they reach the receiver."""
        from isa.link import FrameKind, LinkFormat, header_fields, lane_patterns
        cfg = self.configs[0]
        fmt = LinkFormat.of(cfg)
        LB, F = cfg.c2c_lane_bits, fmt.flits
        lk = self.system.links[k]
        src = lk.a if d == "ab" else lk.b
        clk = self.clk[src.chip]
        tx_sig = getattr(self.dut, f"link{k}_{d}_tx")
        flip_sig = self.link_inputs(k, d)[1]
        end = lane_patterns(LB)["END"]
        delays = self.delays[(k, d)]
        pending: dict[int, int] = {}        # cycle -> flip mask
        c, flit, frame_words = 0, None, []
        self.data_frames[(k, d)] = 0
        while True:
            await RisingEdge(clk)
            c += 1
            flip_sig.value = pending.pop(c, 0)
            await ReadOnly()
            tx = int(tx_sig.value)
            if flit is None:
                if tx & ((1 << LB) - 1) == end:
                    flit, frame_words = 0, []
                continue
            frame_words.append(tx)
            if len(frame_words) == F:
                start = c - F + 1
                head = header_fields(fmt.codewords_from(frame_words)[0] & ((1 << 64) - 1))
                if head["kind"] == FrameKind.DATA:
                    index = self.data_frames[(k, d)] - self.frame_base.get((k, d), 0)
                    for cw, bit in self.plan.get((k, d), {}).get(index, ()):
                        f, lane, b = fmt.frame_bit_of(cw, bit)
                        at = start + f + delays[lane]
                        pending[at] = pending.get(at, 0) ^ (1 << (lane * LB + b))
                    self.data_frames[(k, d)] += 1
                frame_words = []

    async def run_and_compare(self, programs, faults=None, dump_all=False, offsets=None):
        gold = SystemGolden(self.system, programs, faults, memories=self.shadow, down=self.down)
        res = gold.run()
        before = await self.link_states()
        self.aim(faults or {})
        self.frame_base = dict(self.data_frames)
        st = await self.run(programs, offsets)
        for i, (r, s) in enumerate(zip(res.chips, st)):
            self.log.info("chip %d golden: %s | rtl: cycles=%d error_info=%#x stall=%d", i, r, s.cycles,
                          s.error_info, s.stall)
            assert s.cycles == r.cycles, f"chip {i} cycle count: rtl {s.cycles}, golden {r.cycles}"
            assert s.error_info == r.error_info, f"chip {i} ERROR_INFO: rtl {s.error_info:#x}, golden {r.error_info:#x}"
            assert (s.ecc_corrected, s.ecc_uncorrectable) == (r.ecc_corrected, r.ecc_uncorrectable)
            assert not s.host_error, f"chip {i}: HOST_ERR set"
        after = await self.link_states()
        for (c, n), got in after.items():
            want = res.chips[c].links[n]
            delta = (got["corrected"] - before[(c, n)]["corrected"], got["uncorrectable"] - before[(c, n)]["uncorrectable"])
            assert delta == want, f"chip{c}.{n} FEC counters: rtl {delta}, golden {want}"
            assert got["up"], f"chip{c}.{n} went down"
            assert bool(got["fec_uncorrectable"]) == bool(want[1] or before[(c, n)]["fec_uncorrectable"]), \
                f"chip{c}.{n} FEC_UNCORRECTABLE status {got['fec_uncorrectable']}, golden counted {want[1]}"
        for i, g in enumerate(gold.chips):
            cfg = self.configs[i]
            touched = written_words(programs[i])
            for s in cfg.slices_of(SliceKind.MEM):
                top = max(touched.get(s.position, [-1])) + 1
                rows = range(cfg.mem_words) if dump_all else range(0, top)
                if not rows:
                    continue
                data = await self.drivers[i].read_words(s.position, rows.start, len(rows))
                want = g.memory(s.position)[rows.start:rows.stop]
                bad = np.nonzero((data != want).any(-1))[0]
                assert len(bad) == 0, (f"chip {i} {s.name}: {len(bad)} words differ, first [{bad[0] + rows.start}] "
                                       f"rtl {data[bad[0]].tobytes().hex()} golden {want[bad[0]].tobytes().hex()}")
        self.shadow = [g.sram_state() for g in gold.chips]
        for d in self.drivers:
            await d.clear()
        return gold, res, st


def skews_from_env(cfg):
    v = os.environ.get("SYS_SKEW")
    return [int(x) for x in v.split(",")] if v else [0] * cfg.c2c_lanes


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@cocotb.test()
async def transfers(dut):
    """Random transfers over every link in both directions (verif/c2c_stimulus.py), chained through
    the chips, compared with the golden system; SYS_LAT sets the latency the programs assume (the
    link model is then exactly that slow), SYS_SKEW the lanes' skews."""
    from .c2c_stimulus import random_transfers

    tb = SystemTB(dut)
    if "SYS_LAT" in os.environ:
        tb.with_latency(env_int("SYS_LAT", 0))
    await tb.reset(skews=skews_from_env(tb.configs[0]))
    await tb.wait_trained()
    rng = np.random.default_rng(env_int("SYS_SEED", cocotb.RANDOM_SEED))
    programs, trs = random_transfers(tb.system, rng, min_cycles=env_int("SYS_CYCLES", 2000),
                                     seed_words=env_int("SYS_SEED_WORDS", 256))
    tb.log.info("%d transfers, %d vectors", len(trs), sum(t.count for t in trs))
    _, res, _ = await tb.run_and_compare(programs)
    assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
    if env_int("SYS_TWICE", 0):             # the same programs again: the same cycles and results
        _, res2, _ = await tb.run_and_compare(programs)
        assert [r.cycles for r in res2.chips] == [r.cycles for r in res.chips]


@cocotb.test()
async def deskew(dut):
    """Every skew in 0..c2c_skew on every lane trains and keeps the latency; one cycle more fails
    training, and a SEND on the failed link stops with LINK_DOWN as in the golden model."""
    from .c2c_stimulus import random_transfers

    tb = SystemTB(dut)
    cfg = tb.configs[0]
    K, L = cfg.c2c_skew, cfg.c2c_lanes
    rng = np.random.default_rng(env_int("SYS_SEED", cocotb.RANDOM_SEED))
    patterns = [[(s if l == lane else 0) for l in range(L)] for s in range(1, K + 1) for lane in (int(rng.integers(L)),)]
    patterns.append([int(rng.integers(K + 1)) for _ in range(L)])
    patterns.append([K if l % 2 else 0 for l in range(L)])
    if "SYS_PATTERNS" in os.environ:        # a share: the largest single-lane skew and the mixed ones
        patterns = patterns[K - 1:K] + patterns[K:][:env_int("SYS_PATTERNS", 3) - 1]
    for sk in patterns:
        await tb.reset(skews=sk)
        await tb.wait_trained()
        programs, trs = random_transfers(tb.system, rng, min_cycles=env_int("SYS_CYCLES", 150))
        tb.log.info("skews %s: %d transfers", sk, len(trs))
        _, res, _ = await tb.run_and_compare(programs)
        assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
    # beyond the range: lane 0 on time, the last lane K+1 cycles late
    await tb.reset(skews=[0] * (L - 1) + [K + 1])
    await ClockCycles(tb.clk[0], TRAIN_WAIT)
    for (c, n), s in (await tb.link_states()).items():
        assert s["failed"] and not s["up"], f"chip{c}.{n} trained with a skew of {K + 1}: {s}"
    tb.down = set(range(len(tb.system.links)))
    programs, _ = random_transfers(tb.system, rng, min_cycles=100)
    _, res, _ = await tb.run_and_compare(programs)
    assert all(r.error == spec.ErrorCode.LINK_DOWN for r in res.chips)


@cocotb.test()
async def no_signal(dut):
    """A link with no signal in one direction fails training at that end (only)."""
    tb = SystemTB(dut)
    await tb.reset(cut={(0, "ab")})
    await ClockCycles(tb.clk[0], TRAIN_WAIT)
    lk = tb.system.links[0]
    states = await tb.link_states([(lk.a.chip, lk.a.link), (lk.b.chip, lk.b.link)])
    assert states[(lk.b.chip, lk.b.link)]["failed"], states
    assert states[(lk.a.chip, lk.a.link)]["up"], states


@cocotb.test()
async def faults(dut):
    """Seeded FEC campaigns, SRAM equal to the golden model's (no silent corruption):
    * SYS_SINGLE frames with one flipped bit, on random transfers (verif/c2c_stimulus.py): all
      corrected and counted, cycle counts and errors as without faults (timing unchanged);
    * SYS_DOUBLE frames with two flips in one codeword, on vectors sent towards idle chips
      (`send_only`, so that no RECV stops a chip and every one lands): all counted as uncorrectable
      and flagged in L_STATUS.FEC_UNCORRECTABLE;
    * one double-bit frame that a RECV takes: its chip stops with LINK_FEC, as in the golden model."""
    from sim.system import random_faults

    from .c2c_stimulus import random_transfers, send_only

    tb = SystemTB(dut, inject=True)
    await tb.reset()
    await tb.wait_trained()
    rng = np.random.default_rng(env_int("SYS_SEED", cocotb.RANDOM_SEED))
    programs, _ = random_transfers(tb.system, rng, min_cycles=env_int("SYS_CYCLES", 2000))
    clean = SystemGolden(tb.system, programs)
    clean.run()
    frames = {k: len(e.peer.sent) for k, e in clean.ends.items() if e.peer is not None}
    quiet, quiet_frames = send_only(tb.system, env_int("SYS_SEND_FRAMES", 192))
    campaigns = ((False, env_int("SYS_SINGLE", 1000), programs, frames),
                 (True, env_int("SYS_DOUBLE", 200), quiet, quiet_frames))
    for double, total, progs, where in campaigns:
        injected = counted = runs = 0
        while counted < total:
            per = {k: min(n, -(-(total - counted) // len(where))) for k, n in where.items()}
            fl = random_faults(tb.system, per, int(rng.integers(1 << 30)), where, double=double)
            gold, res, _ = await tb.run_and_compare(progs, faults=fl)
            landed = sum(1 for k, f in fl.items() for j in f if j < len(gold.ends[k].peer.sent))
            got = sum(r.links[n][int(double)] for r in res.chips for n in r.links)
            assert got == landed == sum(per.values()), f"{sum(per.values())} injected, {landed} landed, {got} counted"
            injected, counted, runs = injected + sum(per.values()), counted + got, runs + 1
            assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
            if not double:
                assert [r.cycles for r in res.chips] == [r.cycles for r in clean.result.chips], "timing changed"
            else:
                states = await tb.link_states(list(where))
                assert all(st["fec_uncorrectable"] for st in states.values()), states
        tb.log.info("%s-bit faults: %d injected, %d counted, %d silent (%d runs)",
                    "double" if double else "single", injected, counted, injected - counted, runs)
    # one double-bit error on a frame a RECV takes: LINK_FEC on the exact cycle the golden model says
    fl = random_faults(tb.system, {k: 1 for k in frames}, int(rng.integers(1 << 30)), frames, double=True)
    _, res, _ = await tb.run_and_compare(programs, faults=fl)
    assert any(r.error == spec.ErrorCode.LINK_FEC for r in res.chips)


@cocotb.test()
async def stream(dut):
    """A long streaming transfer along the system's chain of links (verif/c2c_stimulus.py
    `ring_stream`: SYS_VECTORS vectors relayed chip to chip on streams); compared with the golden
    system; with SYS_OUT set, writes the per-chip cycle counts and wall time there (bench/c2c.py)."""
    import json
    import time

    from .c2c_stimulus import ring_stream

    tb = SystemTB(dut)
    await tb.reset()
    await tb.wait_trained()
    programs, fig = ring_stream(tb.system, env_int("SYS_VECTORS", 256), np.random.default_rng(env_int("SYS_SEED", 1)))
    t0 = time.perf_counter()
    gold, res, st = await tb.run_and_compare(programs)
    wall = time.perf_counter() - t0
    assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
    last = fig["chain"][-1]
    got = gold.chips[last].memory(tb.configs[last].slice_named("MEM_W1").position)[:len(fig["data"])]
    assert np.array_equal(got, fig["data"]), "the relayed vectors did not all arrive"
    if "SYS_OUT" in os.environ:
        with open(os.environ["SYS_OUT"], "w") as fh:
            json.dump({"cycles": [s.cycles for s in st], "wall_seconds": wall}, fh)


def _phases(system, rng, n: int, cycles: int) -> list:
    """`n` phases of random transfers (verif/c2c_stimulus.py), each behind a SYNC in every queue;
    phases after the first read what SRAM holds (no preload of their own)."""
    from .c2c_stimulus import random_transfers, synced

    phases = []
    for k in range(n):
        progs, _ = random_transfers(system, rng, min_cycles=cycles)
        if k:
            for p in progs:
                p.memory = []
        phases.append(progs)
    return synced(phases)


async def _runs_agree(tb, programs, rng, span: int) -> None:
    """SYS_RUNS runs of `programs`, each chip started up to `span` cycles after the first, each
    compared with the golden model; every run gives the same per-chip cycle counts."""
    counts = []
    for run in range(env_int("SYS_RUNS", 2)):
        offsets = [int(x) for x in rng.integers(0, span + 1, tb.n)]
        _, res, st = await tb.run_and_compare(programs, offsets=offsets)
        assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
        tb.log.info("run %d: offsets %s, cycles %s, stall %s", run, offsets, [s.cycles for s in st], [s.stall for s in st])
        counts.append([s.cycles for s in st])
    assert all(c == counts[0] for c in counts)


@cocotb.test()
async def lockstep(dut):
    """Chips started by the host at random offsets (up to SYS_OFFSET cycles apart) run SYS_PHASES
    phases of random transfers, each behind a SYNC: every per-chip cycle count, error status and SRAM
    word equals the golden model's (which starts them together), and a second run with other offsets
    gives the same counts; STALL shows what the barrier absorbed."""
    tb = SystemTB(dut)
    await tb.reset()
    await tb.wait_trained()
    rng = np.random.default_rng(env_int("SYS_SEED", cocotb.RANDOM_SEED))
    programs = _phases(tb.system, rng, env_int("SYS_PHASES", 2), env_int("SYS_CYCLES", 300))
    await _runs_agree(tb, programs, rng, env_int("SYS_OFFSET", 500))


@cocotb.test()
async def drift(dut):
    """Every chip on its own clock, SYS_PPM parts per million off (chip i at +ppm or -ppm in turn),
    started at random offsets, links SYS_SLACK cycles faster than their latency (the slack the drift
    between two SYNCs uses up), SYS_PHASES phases of SYS_CYCLES each, each behind a SYNC that
    re-aligns the chips: results and per-chip cycle counts equal the golden model's, run after run."""
    tb = SystemTB(dut)
    ppm = env_int("SYS_PPM", 100)
    periods = [PERIOD_PS + (1 if i % 2 else -1) * PERIOD_PS * ppm // 1_000_000 for i in range(tb.n)]
    await tb.reset(periods=periods, slack=env_int("SYS_SLACK", 2))
    await tb.wait_trained()
    rng = np.random.default_rng(env_int("SYS_SEED", cocotb.RANDOM_SEED))
    programs = _phases(tb.system, rng, env_int("SYS_PHASES", 3), env_int("SYS_CYCLES", 2000))
    tb.log.info("periods %s ps", periods)
    await _runs_agree(tb, programs, rng, env_int("SYS_OFFSET", 100))


@cocotb.test()
async def sync_timeout(dut):
    """A chip that never reaches the SYNC its peer waits at: the peer stops with SYNC_TIMEOUT after
    SYNC_TIMEOUT cycles, ERROR_INFO naming the westmost parked queue, as the golden model says."""
    from isa.timed import TimedProgram

    tb = SystemTB(dut)
    await tb.reset()
    await tb.wait_trained()
    for d in tb.drivers:
        await d.write("SYNC_TIMEOUT", 300)
    cfg = tb.configs[0]
    progs = [TimedProgram(tb.configs[i]) for i in range(tb.n)]
    progs[1].at("VXM", 0, "NOP", cycles=5)
    p0 = progs[0].program()
    p0.queues = {cfg.slice_named("VXM").position: [spec.encode("SYNC")],
                 cfg.slice_named("MEM_E1").position: [spec.encode("NOP", cycles=3), spec.encode("SYNC")]}
    _, res, st = await tb.run_and_compare([p0] + [p.program() for p in progs[1:]])
    assert res.chips[0].error == spec.ErrorCode.SYNC_TIMEOUT
    assert st[0].stall >= 300


@cocotb.test()
async def run_images(dut):
    """The cocotb side of `python -m verif.run --system`: load one image per chip (SYS_IMAGES, a JSON
    list of paths), start them together (or chip i SYS_OFFSETS[i] cycles after the first, a JSON list),
    and write to SYS_OUT (.npz) each chip's status, its links'
    FEC counters and the SRAM ranges of SYS_DUMPS (JSON [[chip, position, addr, count], ...])."""
    import json

    from isa.image import load

    tb = SystemTB(dut)
    await tb.reset()
    await tb.wait_trained()
    programs = [load(p, tb.configs[i]) for i, p in enumerate(json.loads(os.environ["SYS_IMAGES"]))]
    before = await tb.link_states()
    st = await tb.run(programs, json.loads(os.environ.get("SYS_OFFSETS", "null")))
    after = await tb.link_states()
    chips = []
    for i, s in enumerate(st):
        links = {n: [0, 0] for n in (sl.name for sl in tb.configs[i].slices_of(SliceKind.C2C))}
        for (c, n), a in after.items():
            if c == i:
                links[n] = [a["corrected"] - before[(c, n)]["corrected"],
                            a["uncorrectable"] - before[(c, n)]["uncorrectable"]]
        chips.append({"cycles": s.cycles, "error_info": s.error_info, "ecc_corrected": s.ecc_corrected,
                      "ecc_uncorrectable": s.ecc_uncorrectable, "links": links})
    arrays = {}
    for c, pos, addr, n in json.loads(os.environ.get("SYS_DUMPS", "[]")):
        arrays[f"{c}:{pos}:{addr}:{n}"] = await tb.drivers[c].read_words(pos, addr, n)
    np.savez(os.environ["SYS_OUT"], status=json.dumps(chips), **arrays)
