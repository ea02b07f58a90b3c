"""cocotb testbench for the whole chip: clock, reset, AXI4-Lite master, edge monitor.

`ChipTB.run_and_compare(program)` is the scoreboard every chip test uses: it
runs the program on the golden model and on the RTL, then compares the cycle
count, the error status, the ECC counters, every vector that left the chip's
edges on every cycle, and SRAM: every word of every MEM slice through the
simulator backdoor (default), or every word the program can write through the
AXI4-Lite port (backdoor=False).
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

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


class HostPort:
    """One chip's host ports as a testbench drives them: the AXI4-Lite master, the bulk load and
    unload streams, and a ChipDriver over them. `prefix` names the ports (`c0_` in a system top)."""

    def __init__(self, dut, config, clk, rst, prefix: str = ""):
        self.clk, self.L = clk, config.lanes
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, f"{prefix}s_axil"), clk, rst)
        self.axis = AxiStreamSource(AxiStreamBus.from_prefix(dut, f"{prefix}s_axis"), clk, rst)
        self.axis_out = AxiStreamSink(AxiStreamBus.from_prefix(dut, f"{prefix}m_axis"), clk, rst)
        self.driver = ChipDriver(self.axil, config, stream=self)

    async def send_words(self, data: bytes) -> None:
        """Bulk load port: send whole words, one per beat, and wait until all are accepted."""
        await self.axis.send(AxiStreamFrame(data))
        await self.axis.wait()
        await RisingEdge(self.clk)

    async def recv_words(self, n: int) -> tuple[bytes, list[int]]:
        """Bulk unload port: one frame of n words; returns (data bytes, stored ECC per word)."""
        frame = await self.axis_out.recv()
        data = bytes(frame.tdata)
        assert len(data) == n * self.L, f"unload frame has {len(data)} bytes, expected {n * self.L}"
        user = frame.tuser
        if isinstance(user, int):
            eccs = [user] * n
        elif len(user) == n * self.L:            # per byte lane: one value per beat repeated
            eccs = user[::self.L]
        else:
            eccs = list(user)
        assert len(eccs) == n
        return data, eccs


class ChipTB:
    """backdoor=True loads SRAM segments, injects faults and checks SRAM through the simulator's
    view of the memory arrays (fast, and it compares every word of every MEM slice);
    backdoor=False does all of it through the AXI4-Lite port, as the product's runners do."""

    def __init__(self, dut, backdoor: bool = True):
        self.dut = dut
        self.backdoor = backdoor
        self.config = config_from_env()
        self.log = dut._log
        self.port = HostPort(dut, self.config, dut.clk, dut.rst)
        self.axil, self.axis, self.axis_out = self.port.axil, self.port.axis, self.port.axis_out
        self.driver = self.port.driver
        self.S, self.L = self.config.streams, self.config.lanes

    async def send_words(self, data: bytes) -> None:
        await self.port.send_words(data)

    async def recv_words(self, n: int) -> tuple[bytes, list[int]]:
        return await self.port.recv_words(n)

    # ---- SRAM backdoor (simulation only) ------------------------------------------
    def _bank(self, position: int):
        return getattr(self.dut, self.config.floorplan[position].name).bank

    def sram_poke(self, position: int, addr: int, data: np.ndarray, ecc: int) -> None:
        self._bank(position)[addr].value = int.from_bytes(np.asarray(data, np.uint8).tobytes(), "little") \
            | ecc << self.config.word_bits

    def sram_peek_all(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        W, L = self.config.word_bits, self.L
        bank = self._bank(position)
        vals = [int(bank[a].value) for a in range(self.config.mem_words)]
        data = np.frombuffer(b"".join((v & ((1 << W) - 1)).to_bytes(L, "little") for v in vals), np.uint8)
        return data.reshape(-1, L), np.array([v >> W for v in vals], np.int64)

    def sram_snapshot(self) -> dict:
        """The SRAM state the RTL holds now, as the golden model knows it (see run_and_compare)."""
        return Golden(Program.empty(self.config), memory=_SHADOW.get(self.config.name)).sram_state()

    def sram_restore(self, state: dict) -> None:
        """Put the RTL SRAM (and the golden model's starting point) back to a snapshot."""
        for pos, (data, ecc) in state.items():
            for a in range(self.config.mem_words):
                self.sram_poke(pos, a, data[a], int(ecc[a]))
        _SHADOW[self.config.name] = state

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        await self.driver.check_identity()

    def _edge(self, side: str) -> np.ndarray:
        """uint8 [streams, lanes] currently on the `east` / `west` edge output ports."""
        dut = self.dut
        return np.stack([np.frombuffer(int(getattr(dut, f"{side}_out_{s}").value).to_bytes(self.L, "little"), np.uint8)
                         for s in range(self.S)])

    async def monitor(self, store: list, n: int):
        """Record (east_out, west_out) on `n` consecutive cycles from cycle 0 (the first running cycle)."""
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            if int(dut.running.value):
                break
        for _ in range(n):
            store.append((self._edge("east"), self._edge("west")))
            await RisingEdge(dut.clk)
            await ReadOnly()

    async def run(self, program: Program, faults=None, trace_cycles: int = 0):
        """Load, inject faults {position: [(addr, data, ecc)]} as raw words, start, wait for DONE.

        Returns (status, trace) with `trace_cycles` cycles of edge outputs from cycle 0."""
        if self.backdoor:
            code = self.driver.code
            for seg in program.memory:
                eccs = code.encode_bytes(seg.data)
                for k, row in enumerate(seg.data):
                    self.sram_poke(seg.position, (seg.addr + k) % self.config.mem_words, row, int(eccs[k]))
            for pos, words in (faults or {}).items():
                for addr, data, ecc in words:
                    self.sram_poke(pos, addr, data, ecc)
            await self.driver.load(Program(program.config, program.queues, []))
        else:
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

    async def run_and_compare(self, program: Program, flips=(), monitor: bool = True):
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
        if self.backdoor:                        # every word of every MEM slice
            for pos, (gdata, gecc) in gold.sram_state().items():
                data, ecc = self.sram_peek_all(pos)
                bad = np.nonzero((data != gdata).any(-1) | (ecc != gecc))[0]
                assert len(bad) == 0, (f"SRAM {self.config.floorplan[pos].name}: {len(bad)} words differ, first "
                                       f"[{bad[0]:#x}] rtl {data[bad[0]].tobytes().hex()}/{ecc[bad[0]]:#x} "
                                       f"golden {gdata[bad[0]].tobytes().hex()}/{gecc[bad[0]]:#x}")
        else:                                    # through the host port: the words the program can write
            for pos, addrs in written_words(program).items():
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
