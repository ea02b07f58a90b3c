"""Host side of the UART bridge (protocol: isa/bridge.py, docs/BRIDGE.md).

`BridgeBus` gives verif/driver.py's `ChipDriver` what it needs, a register bus (`write_dword`,
`read_dword`) and the bulk stream pair (`send_words`, `recv_words`), over any byte transport with
`async write(data)` and `async read(n, timeout_s) -> bytes`. Two transports exist: `SerialPort`
(a real board through pyserial) and the cocotb one in verif/tb_board.py (the board top under a
simulator through cocotbext-uart), so the code a board runs is the code the tests run.

Requests the bridge reports as not executed (BAD_CRC, TIMEOUT: the request arrived damaged or cut)
are sent again, up to `retries` times; every other failure raises `BridgeError` with one line.
A reply that arrives damaged is not retried (the request may have been executed): it raises.
"""
from __future__ import annotations

import asyncio

from isa import bridge as bp
from isa.config import ChipConfig


class BridgeError(RuntimeError):
    """The bridge refused a request, or its reply did not arrive intact."""


class BridgeClient:
    """Frames requests, checks replies. `reply_timeout_s`: how long to wait for a reply."""

    def __init__(self, transport, config: ChipConfig, retries: int = 3, reply_timeout_s: float = 2.0):
        self.transport, self.config = transport, config
        self.retries, self.reply_timeout_s = retries, reply_timeout_s
        self.seq = 0
        self.stats = {"requests": 0, "retries": 0, "bytes_out": 0, "bytes_in": 0}

    async def transact(self, cmd: bp.Cmd, addr: int = 0, count: int = 1, payload: bytes = b"") -> tuple[int, bytes]:
        """One request; returns (items, reply payload). Raises BridgeError on a refused request."""
        for attempt in range(self.retries + 1):
            self.seq = (self.seq + 1) & 0xFF
            frame = bp.request(cmd, self.seq, addr, count, payload)
            await self.transport.write(frame)
            self.stats["requests"] += 1
            self.stats["bytes_out"] += len(frame)
            status, items, body = await self._reply(cmd)
            if status == bp.Status.OK:
                return items, body
            if status in (bp.Status.BAD_CRC, bp.Status.TIMEOUT) and attempt < self.retries:
                self.stats["retries"] += 1
                continue
            what = f"{cmd.name} addr {addr:#x} count {count}"
            if status == bp.Status.STALLED:
                raise BridgeError(f"bridge: {what}: the chip stalled after {items} of {count} words")
            raise BridgeError(f"bridge: {what} refused: {bp.Status(status).name}"
                              + (f" after {attempt} retries" if attempt else ""))
        raise AssertionError("unreachable")

    async def _read(self, n: int) -> bytes:
        data = await self.transport.read(n, self.reply_timeout_s)
        if len(data) < n:
            raise BridgeError(f"bridge: no reply within {self.reply_timeout_s} s (got {len(data)} of {n} bytes): "
                              f"is the board connected, programmed, and the baud rate right?")
        self.stats["bytes_in"] += n
        return data

    async def _reply(self, cmd: bp.Cmd) -> tuple[int, int, bytes]:
        while (await self._read(1))[0] != bp.SOF_REPLY:
            pass
        head = await self._read(bp.REPLY_HEADER - 1)
        status, seq, items = head[0], head[1], int.from_bytes(head[2:4], "little")
        if status not in set(bp.Status):
            raise BridgeError(f"bridge: reply with unknown status {status}")
        per = bp.item_bytes(cmd, self.config)[1] if status in (bp.Status.OK, bp.Status.STALLED) else 0
        if items * per > bp.MAX_PAYLOAD:
            raise BridgeError(f"bridge: reply announces {items} items, more than a frame holds")
        rest = await self._read(items * per + bp.CRC_BYTES)
        body, crc = rest[:-bp.CRC_BYTES], int.from_bytes(rest[-bp.CRC_BYTES:], "little")
        if crc != bp.crc16(head + body):
            raise BridgeError("bridge: reply CRC mismatch (the request may have been executed)")
        if seq != self.seq:
            raise BridgeError(f"bridge: reply to request {seq}, expected {self.seq}")
        return status, items, body


class BridgeBus:
    """The ChipDriver bus and stream pair over a bridge."""

    def __init__(self, client: BridgeClient):
        self.client, self.config = client, client.config

    async def write_dword(self, addr: int, value: int) -> None:
        await self.client.transact(bp.Cmd.WRITE, addr, 1, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    async def read_dword(self, addr: int) -> int:
        _, body = await self.client.transact(bp.Cmd.READ, addr, 1)
        return int.from_bytes(body, "little")

    async def send_words(self, data: bytes) -> None:
        wb = bp.word_bytes(self.config)
        per = bp.max_count(bp.Cmd.STREAM_IN, self.config) * wb
        for at in range(0, len(data), per):
            chunk = data[at:at + per]
            await self.client.transact(bp.Cmd.STREAM_IN, 0, len(chunk) // wb, chunk)

    async def recv_words(self, n: int) -> tuple[bytes, list[int]]:
        wb, eb = bp.word_bytes(self.config), bp.ecc_bytes(self.config)
        most = bp.max_count(bp.Cmd.STREAM_OUT, self.config)
        data, eccs = bytearray(), []
        while len(eccs) < n:
            k = min(most, n - len(eccs))
            _, body = await self.client.transact(bp.Cmd.STREAM_OUT, 0, k)
            for i in range(k):
                item = body[i * (wb + eb):(i + 1) * (wb + eb)]
                data += item[:wb]
                eccs.append(int.from_bytes(item[wb:], "little"))
        return bytes(data), eccs


class SerialPort:
    """A board's serial port (pyserial), as a bridge transport."""

    def __init__(self, port: str, baud: int = bp.DEFAULT_BAUD):
        try:
            import serial
        except ImportError:
            raise BridgeError("pyserial is not installed: run `make test` (or pip install -e .[sim])") from None
        try:
            self.port = serial.Serial(port, baud, timeout=0.05)
        except (serial.SerialException, OSError) as e:
            raise BridgeError(f"cannot open {port}: {e}") from None
        self.port.reset_input_buffer()

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self.port.write, data)

    async def read(self, n: int, timeout_s: float) -> bytes:
        self.port.timeout = timeout_s
        return await asyncio.to_thread(self.port.read, n)

    def close(self) -> None:
        self.port.close()
