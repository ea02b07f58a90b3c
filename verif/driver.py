"""Host driver: loads programs, runs the chip and reads results over the register map.

Written against a minimal async bus (`write_dword(addr, value)`,
`read_dword(addr)`), so the same driver runs over cocotbext-axi's
AxiLiteMaster in simulation and over a board bridge later. Everything it knows
about addresses and bits comes from isa/hostmap.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isa import hostmap as hm
from isa import spec
from isa.config import ChipConfig
from isa.ecc import code_for
from isa.image import Program, pack_words


@dataclass
class ChipStatus:
    running: bool
    done: bool
    error: bool
    ecc_uncorrectable_seen: bool
    host_error: bool
    cycles: int
    error_info: int
    ecc_corrected: int
    ecc_uncorrectable: int
    stall: int = 0              # cycles held at SYNCs (not in `cycles`)

    @property
    def error_code(self) -> spec.ErrorCode:
        return spec.ErrorCode(hm.unpack("ERROR_INFO", self.error_info)["code"])


class ChipDriver:
    """`stream`, when given, is the bulk port pair: an object with `async send_words(bytes)`,
    returning once every beat has been accepted, and `async recv_words(n) -> (bytes, [ecc])`
    (see verif/chip_tb.py). SRAM loads and unloads then move one word per beat instead of five
    or more register accesses per word."""

    def __init__(self, bus, config: ChipConfig, stream=None):
        self.bus, self.config, self.stream = bus, config, stream
        self.code = code_for(config.word_bits)

    async def write(self, name: str, value: int, index: int = 0) -> None:
        await self.bus.write_dword(hm.addr(name, index), value & 0xFFFFFFFF)

    async def read(self, name: str, index: int = 0) -> int:
        return int(await self.bus.read_dword(hm.addr(name, index)))

    async def check_identity(self) -> None:
        ident = await self.read("ID")
        want = hm.id_value(spec.ISA_VERSION)
        if ident != want:
            raise RuntimeError(f"chip ID {ident:#010x}, expected {want:#010x} (wrong bitstream or ISA version)")
        cfg0 = await self.read("CONFIG0")
        c = self.config
        if cfg0 != hm.pack("CONFIG0", **hm.config_fields(c)["CONFIG0"]):
            raise RuntimeError(f"chip CONFIG0 {cfg0:#010x} does not match configuration {c.name!r}")

    # ---- loading ----------------------------------------------------------------
    async def load_queue(self, position: int, words: list[int]) -> None:
        """Queue words from index 0, then Q_LEN. With the bulk port, whole ring rows (fetch_words words
        per beat, S_DEST = 1) go over AXI4-Stream and only a last partial row word by word."""
        await self.write("Q_SEL", position)
        await self.write("Q_ADDR", 0)
        fw = self.config.fetch_words
        whole = len(words) // fw * fw if self.stream is not None else 0
        if whole:
            await self.write("S_DEST", hm.SDEST_QUEUE)
            await self.stream.send_words(pack_words(words[:whole], self.config).tobytes())
            await self.write("S_DEST", 0)
        for w in words[whole:]:
            await self.write("Q_DATA_LO", w)
            await self.write("Q_DATA_HI", w >> 32)
        await self.write("Q_LEN", len(words))

    async def _stage(self, data: np.ndarray) -> None:
        """Put one vector into the M_DATA staging registers."""
        for i, v in enumerate(np.asarray(data, np.uint8).view("<u4")):
            await self.write("M_DATA", int(v), i)

    async def write_words(self, position: int, addr: int, data: np.ndarray) -> None:
        """Store vectors (uint8 [n, lanes]) from `addr` on; the chip computes ECC."""
        await self.write("M_SEL", position)
        await self.write("M_ADDR", addr)
        if self.stream is not None:
            await self.stream.send_words(np.ascontiguousarray(data, np.uint8).tobytes())
            return
        for row in np.asarray(data, np.uint8).reshape(-1, self.config.lanes):
            await self._stage(row)
            await self.write("M_CMD", hm.MCMD_WRITE)

    async def write_raw(self, position: int, addr: int, data: np.ndarray, ecc: int) -> None:
        """Store a word with the given ECC bits as they are (fault injection)."""
        await self.write_raw_many(position, [(addr, data, ecc)])

    async def write_raw_many(self, position: int, words: list[tuple[int, np.ndarray, int]]) -> None:
        """write_raw for many (addr, data, ecc), using M_ADDR's auto-increment for runs."""
        await self.write("M_SEL", position)
        next_addr = None
        for addr, data, ecc in sorted(words, key=lambda w: w[0]):
            if addr != next_addr:
                await self.write("M_ADDR", addr)
            await self._stage(data)
            await self.write("M_ECC", ecc)
            await self.write("M_CMD", hm.MCMD_WRITE_RAW)
            next_addr = addr + 1

    async def read_raw(self, position: int, addr: int) -> tuple[np.ndarray, int]:
        await self.write("M_SEL", position)
        await self.write("M_ADDR", addr)
        await self.write("M_CMD", hm.MCMD_READ)
        regs = [await self.read("M_DATA", i) for i in range(hm.data_regs(self.config))]
        return np.array(regs, "<u4").view(np.uint8), await self.read("M_ECC")

    async def read_words(self, position: int, addr: int, n: int) -> np.ndarray:
        """Read and ECC-correct n vectors (host reads are raw; correction happens here)."""
        L, words = self.config.lanes, self.config.mem_words
        if self.stream is not None and addr + n <= words:
            await self.write("M_SEL", position)
            await self.write("M_ADDR", addr)
            await self.write("M_COUNT", n)
            await self.write("M_CMD", hm.MCMD_READ_STREAM)
            data, eccs = await self.stream.recv_words(n)
            raw = np.frombuffer(data, np.uint8).reshape(n, L)
            return self.code.decode_bytes(raw, np.array(eccs, np.int64))[0]
        out = np.zeros((n, L), np.uint8)
        for k in range(n):
            data, ecc = await self.read_raw(position, (addr + k) % words)
            out[k] = self.code.decode_bytes(data[None], np.array([ecc]))[0][0]
        return out

    async def load(self, program: Program) -> None:
        """Load SRAM segments and every queue (queues the program leaves out are emptied)."""
        program.validate()
        for seg in program.memory:
            await self.write_words(seg.position, seg.addr, seg.data)
        for s in self.config.floorplan:
            if s.kind in spec.kinds_with_queues(self.config):
                await self.load_queue(s.position, program.queues.get(s.position, []))

    # ---- links -------------------------------------------------------------------------
    async def link(self, position: int) -> dict:
        """The link of the C2C slice at `position`: L_STATUS fields and the FEC counters."""
        await self.write("L_SEL", position)
        out = hm.unpack("L_STATUS", await self.read("L_STATUS"))
        out["corrected"] = await self.read("L_CORRECTED")
        out["uncorrectable"] = await self.read("L_UNCORRECTABLE")
        return out

    async def join(self, registers: dict[str, int]) -> None:
        """Take this chip's place in a system's SYNC tree: the values of isa/system.py
        `System.sync_registers()` for it (SYNC_TREE, SYNC_CHILDREN, SYNC_MARGIN)."""
        for name, value in registers.items():
            await self.write(name, value)

    # ---- running ------------------------------------------------------------------
    async def start(self) -> None:
        await self.write("CTRL", hm.CTRL_START)

    async def clear(self) -> None:
        await self.write("CTRL", hm.CTRL_CLEAR)

    async def status(self) -> ChipStatus:
        st = hm.unpack("STATUS", await self.read("STATUS"))
        return ChipStatus(
            running=bool(st["running"]), done=bool(st["done"]),
            error=bool(st["error"]), ecc_uncorrectable_seen=bool(st["ecc_uncorrectable"]),
            host_error=bool(st["host_err"]), cycles=await self.read("CYCLES"),
            error_info=await self.read("ERROR_INFO"), ecc_corrected=await self.read("ECC_CORRECTED"),
            ecc_uncorrectable=await self.read("ECC_UNCORRECTABLE"), stall=await self.read("STALL"))

    async def run(self, program: Program, dumps=(), poll=None) -> tuple[dict, dict]:
        """Load, start, wait for DONE, read back: the one sequence every host-port target runs
        (cocotb's tb_run, the board through its bridge). `dumps`: (position, addr, count) ranges.
        `poll`: awaited between status reads (a board waits a little; a simulation need not).
        Returns (status fields of the report, {(position, addr, count): words})."""
        await self.load(program)
        await self.start()
        while not (st := await self.status()).done:
            if poll is not None:
                await poll()
        status = {"cycles": st.cycles, "error_info": st.error_info, "error": int(st.error),
                  "ecc_corrected": st.ecc_corrected, "ecc_uncorrectable": st.ecc_uncorrectable}
        words = {}
        for pos, addr, n in dumps:
            words[(pos, addr, n)] = await self.read_words(pos, addr, n)
        return status, words
