"""cocotb testbench for the whole chip: clock, reset, AXI4-Lite master, edge monitor.

`ChipTB.run_and_compare(program)` is the scoreboard every chip test uses: it
runs the program on the golden model and on the RTL, then compares the cycle
count, the error status, the ECC counters, every vector that left the chip's
edges on every cycle, and every SRAM word the program could have written.
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from isa import spec
from isa.config import get_config
from isa.image import Program
from sim.golden import Golden

from .driver import ChipDriver


def config_from_env():
    return get_config(os.environ.get("CHIP_CONFIG", "tiny"))


def rng() -> np.random.Generator:
    """numpy RNG seeded from cocotb's seed (printed at start; replay with COCOTB_RANDOM_SEED)."""
    return np.random.default_rng(cocotb.RANDOM_SEED)


class ChipTB:
    def __init__(self, dut):
        self.dut = dut
        self.config = config_from_env()
        self.log = dut._log
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.driver = ChipDriver(self.axil, self.config)
        self.S, self.L = self.config.streams, self.config.lanes

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await self.driver.check_identity()

    def _vectors(self, value) -> np.ndarray:
        n = int(value)
        return np.frombuffer(n.to_bytes(self.S * self.L, "little"), np.uint8).reshape(self.S, self.L)

    async def monitor(self, store: list, n: int):
        """Record (east_out, west_out) on `n` consecutive cycles from cycle 0 (the first running cycle)."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.running.value):
                break
        for _ in range(n):
            store.append((self._vectors(dut.east_out.value), self._vectors(dut.west_out.value)))
            await RisingEdge(dut.clk)
            await ReadOnly()

    async def run(self, program: Program, faults=None, trace_cycles: int = 0):
        """Load, inject faults {position: [(addr, data, ecc)]} as raw words, start, wait for DONE.

        Returns (status, trace) with `trace_cycles` cycles of edge outputs from cycle 0."""
        await self.driver.load(program)
        for pos, words in (faults or {}).items():
            await self.driver.write_raw_many(pos, words)
        trace = []
        mon = cocotb.start_soon(self.monitor(trace, trace_cycles)) if trace_cycles else None
        await self.driver.start()
        while True:
            st = await self.driver.status()
            if st.done:
                break
        if mon is not None:
            await mon
        await RisingEdge(self.dut.clk)
        return st, trace

    async def run_and_compare(self, program: Program, flips=(), monitor: bool = True, check_words=None):
        """Run on golden and RTL and compare everything observable.

        flips: [(position, addr, bit)] stored bits to invert after loading (bit >= lanes*8
        addresses the ECC bits). SRAM is not cleared between runs, so the golden model
        starts from what the previous run in this simulator left (module-level shadow).
        """
        gold = Golden(program, memory=_SHADOW.get(self.config.name))
        faults: dict[int, dict[int, tuple]] = {}
        W = self.config.word_bits
        for pos, addr, bit in flips:
            data, ecc = faults.get(pos, {}).get(addr) or gold.host_read_raw(pos, addr)
            data = data.copy()
            if bit < W:
                data[bit // 8] ^= np.uint8(1 << (bit % 8))
            else:
                ecc ^= 1 << (bit - W)
            gold.host_write_raw(pos, addr, data, ecc)
            faults.setdefault(pos, {})[addr] = (data, ecc)
        res = gold.run()
        # edge outputs are compared on every cycle of the run and while the last values drain out
        n_trace = res.cycles + self.config.positions + 2 if monitor else 0
        st, trace = await self.run(program, {p: [(a, d, e) for a, (d, e) in w.items()] for p, w in faults.items()},
                                   n_trace)
        self.log.info("golden: %s | rtl: cycles=%d error_info=%#x ecc=%d/%d",
                      res, st.cycles, st.error_info, st.ecc_corrected, st.ecc_uncorrectable)
        assert st.cycles == res.cycles, f"cycle count: rtl {st.cycles}, golden {res.cycles}"
        assert st.error == (res.error != spec.ErrorCode.NONE), f"error flag: rtl {st.error}, golden {res.error!r}"
        assert st.error_info == res.error_info, f"ERROR_INFO: rtl {st.error_info:#x}, golden {res.error_info:#x}"
        assert st.ecc_corrected == res.ecc_corrected, f"ECC corrected: rtl {st.ecc_corrected}, golden {res.ecc_corrected}"
        assert st.ecc_uncorrectable == res.ecc_uncorrectable, \
            f"ECC uncorrectable: rtl {st.ecc_uncorrectable}, golden {res.ecc_uncorrectable}"
        assert not st.host_error, "HOST_ERR set during load"
        for t, (east, west) in enumerate(trace):
            for d, got in ((spec.Dir.EAST, east), (spec.Dir.WEST, west)):
                want = gold.edge_out(d, t)
                if not np.array_equal(got, want):
                    bad = [s for s in range(self.S) if not np.array_equal(got[s], want[s])]
                    seen = [u for u, tr in enumerate(trace) if np.array_equal(tr[int(d)][bad[0]], want[bad[0]])]
                    raise AssertionError(
                        f"cycle {t}: {d.name} edge streams {bad} differ: rtl {got[bad[0]].tobytes().hex()} "
                        f"golden {want[bad[0]].tobytes().hex()} (golden's value is on the RTL edge on cycles {seen})")
        words = check_words if check_words is not None else written_words(program)
        for pos, addrs in words.items():
            for a in addrs:
                data, ecc = await self.driver.read_raw(pos, a)
                gdata, gecc = gold.host_read_raw(pos, a)
                assert np.array_equal(data, gdata) and ecc == gecc, \
                    f"SRAM {self.config.floorplan[pos].name}[{a:#x}]: rtl {data.tobytes().hex()}/{ecc:#x}, " \
                    f"golden {gdata.tobytes().hex()}/{gecc:#x}"
        _SHADOW[self.config.name] = gold.sram_state()
        await self.driver.clear()
        return gold, res, st, trace


# SRAM contents the RTL holds after the last compared run, per configuration (see run_and_compare)
_SHADOW: dict[str, dict] = {}


def written_words(program: Program) -> dict[int, list[int]]:
    """Every SRAM address a program's WRITEs (and memory segments) can touch, per MEM slice."""
    cfg = program.config
    out: dict[int, set] = {}
    for seg in program.memory:
        out.setdefault(seg.position, set()).update((seg.addr + i) % cfg.mem_words for i in range(len(seg.data)))
    for pos, words in program.queues.items():
        for w in words:
            try:
                op, ops = spec.decode(w)
            except spec.IllegalInstruction:
                continue
            if op.mnemonic == "WRITE" and ops["count"] > 0:
                out.setdefault(pos, set()).update(
                    (ops["addr"] + k * ops["stride"]) % cfg.mem_words for k in range(ops["count"]))
    return {p: sorted(a) for p, a in out.items()}
