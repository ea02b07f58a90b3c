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

from isa import spec
from isa.config import SliceKind
from isa.link import min_latency
from isa.system import get_system
from sim.system import SystemGolden

from .chip_tb import HostPort

PERIOD_PS = 10_000
TRAIN_WAIT = 1024           # cycles after reset within which every joined link must be up


class SystemTB:
    def __init__(self, dut):
        self.dut = dut
        self.log = dut._log
        self.system = get_system(os.environ.get("CHIP_CONFIG", "pair"))
        self.n = len(self.system.chips)
        self.configs = [self.system.config(i) for i in range(self.n)]
        self.clk = [getattr(dut, f"clk_{i}") for i in range(self.n)]
        self.rst = [getattr(dut, f"rst_{i}") for i in range(self.n)]
        self.ports = [HostPort(dut, self.configs[i], self.clk[i], self.rst[i], prefix=f"c{i}_") for i in range(self.n)]
        self.drivers = [p.driver for p in self.ports]

    def link_inputs(self, k: int, d: str):
        return (getattr(self.dut, f"link{k}_{d}_delay"), getattr(self.dut, f"link{k}_{d}_flip"),
                getattr(self.dut, f"link{k}_{d}_cut"))

    async def reset(self, skews=None, wire=None, periods=None, cut=()):
        """Start the clocks, set every link model (per lane: wire + skew cycles late; `cut`: the
        (link, direction) pairs with no signal), reset all chips together."""
        cfg = self.configs[0]
        for i in range(self.n):
            cocotb.start_soon(Clock(self.clk[i], (periods or [PERIOD_PS] * self.n)[i], unit="ps").start())
            self.rst[i].value = 1
        for k, lk in enumerate(self.system.links):
            w = (lk.latency - min_latency(cfg)) if wire is None else wire
            sk = skews or [0] * cfg.c2c_lanes
            for d in ("ab", "ba"):
                delay, flip, cutp = self.link_inputs(k, d)
                delay.value = sum((w + s) << (8 * l) for l, s in enumerate(sk))
                flip.value = 0
                cutp.value = int((k, d) in cut)
        await ClockCycles(self.clk[0], 3)
        for i in range(self.n):
            self.rst[i].value = 0
        await RisingEdge(self.clk[0])
        for d in self.drivers:
            await d.check_identity()

    def joined(self) -> list[tuple[int, str]]:
        return [(e.chip, e.link) for lk in self.system.links for e in (lk.a, lk.b)]

    async def wait_trained(self) -> None:
        """Every joined link up (within TRAIN_WAIT cycles of reset), or fail naming it."""
        for _ in range(TRAIN_WAIT // 64):
            states = {(c, n): await self.drivers[c].link(self.configs[c].slice_named(n).position)
                      for c, n in self.joined()}
            if all(s["up"] for s in states.values()):
                return
            failed = [f"chip{c}.{n}" for (c, n), s in states.items() if s["failed"]]
            assert not failed, f"links failed training: {', '.join(failed)}"
            await ClockCycles(self.clk[0], 64)
        raise AssertionError(f"links not up {TRAIN_WAIT} cycles after reset")

    async def run(self, programs):
        """Load every chip, START them on one cycle, wait until all are done; returns their status."""
        for d, p in zip(self.drivers, programs):
            await d.load(p)
        await Combine(*(cocotb.start_soon(d.start()) for d in self.drivers))
        for i in range(self.n):
            for _ in range(1 << 20):
                await RisingEdge(self.clk[i])
                await ReadOnly()
                if int(getattr(self.dut, f"c{i}_done").value):
                    break
            else:
                raise AssertionError(f"chip {i} not done after {1 << 20} cycles")
        await RisingEdge(self.clk[0])
        return [await d.status() for d in self.drivers]

    async def run_and_compare(self, programs, faults=None, dump_all=False):
        gold = SystemGolden(self.system, programs, faults)
        res = gold.run()
        before = {(c, n): await self.drivers[c].link(self.configs[c].slice_named(n).position) for c, n in self.joined()}
        st = await self.run(programs)
        for i, (r, s) in enumerate(zip(res.chips, st)):
            self.log.info("chip %d golden: %s | rtl: cycles=%d error_info=%#x", i, r, s.cycles, s.error_info)
            assert s.cycles == r.cycles, f"chip {i} cycle count: rtl {s.cycles}, golden {r.cycles}"
            assert s.error_info == r.error_info, f"chip {i} ERROR_INFO: rtl {s.error_info:#x}, golden {r.error_info:#x}"
            assert (s.ecc_corrected, s.ecc_uncorrectable) == (r.ecc_corrected, r.ecc_uncorrectable)
            assert not s.host_error, f"chip {i}: HOST_ERR set"
        for c, n in self.joined():
            got = await self.drivers[c].link(self.configs[c].slice_named(n).position)
            want = res.chips[c].links[n]
            delta = (got["corrected"] - before[(c, n)]["corrected"], got["uncorrectable"] - before[(c, n)]["uncorrectable"])
            assert delta == want, f"chip{c}.{n} FEC counters: rtl {delta}, golden {want}"
            assert got["up"], f"chip{c}.{n} went down"
        for i, g in enumerate(gold.chips):
            cfg = self.configs[i]
            for s in cfg.slices_of(SliceKind.MEM):
                rows = range(cfg.mem_words) if dump_all else range(0, 1024)
                data = await self.drivers[i].read_words(s.position, rows.start, len(rows))
                want = g.memory(s.position)[rows.start:rows.stop]
                bad = np.nonzero((data != want).any(-1))[0]
                assert len(bad) == 0, (f"chip {i} {s.name}: {len(bad)} words differ, first [{bad[0] + rows.start}] "
                                       f"rtl {data[bad[0]].tobytes().hex()} golden {want[bad[0]].tobytes().hex()}")
        return gold, res, st


def skews_from_env(cfg):
    v = os.environ.get("SYS_SKEW")
    return [int(x) for x in v.split(",")] if v else [0] * cfg.c2c_lanes


@cocotb.test()
async def transfers(dut):
    """Random transfers over every link in both directions (verif/c2c_stimulus.py), compared with the
    golden system."""
    from .c2c_stimulus import random_transfers

    tb = SystemTB(dut)
    await tb.reset(skews=skews_from_env(tb.configs[0]))
    await tb.wait_trained()
    rng = np.random.default_rng(int(os.environ.get("SYS_SEED", cocotb.RANDOM_SEED)))
    programs, trs = random_transfers(tb.system, rng, min_cycles=int(os.environ.get("SYS_CYCLES", "2000")))
    tb.log.info("%d transfers", len(trs))
    _, res, _ = await tb.run_and_compare(programs)
    assert all(r.error == spec.ErrorCode.NONE for r in res.chips)
