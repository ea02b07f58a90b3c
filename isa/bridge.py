"""The UART host bridge's protocol, as data (docs/BRIDGE.md explains it; hdl/bridge.py and the host
side, verif/bridge.py, derive from this file).

A host talks to a board over one serial line, 8N1. Every request is one frame and gets exactly
one reply frame; nothing is executed before the whole request has arrived and its CRC matched, so
a corrupted or cut request never writes anywhere.

Request:  SOF_REQUEST, cmd, seq, addr (4 bytes), count (2 bytes), payload, crc (2 bytes)
Reply:    SOF_REPLY, status, seq, count (2 bytes), payload, crc (2 bytes)

Multi-byte fields are little-endian. `crc` is CRC-16/CCITT-FALSE over every byte after the start
byte. `seq` is the host's, echoed. `count` counts items (32-bit registers or stream words), not
bytes; a payload holds at most MAX_PAYLOAD bytes (the bridge's buffer).

After any error the bridge discards bytes until the line has been quiet for its timeout, then
sends the one error reply: the host has finished sending by then, so request and reply stay paired
and the next request starts on a clean frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .config import ChipConfig
from .ecc import code_for
from . import hostmap as hm

SOF_REQUEST = 0xA5
SOF_REPLY = 0x5A
REQUEST_HEADER = 9        # SOF, cmd, seq, addr[4], count[2]
REPLY_HEADER = 5          # SOF, status, seq, count[2]
CRC_BYTES = 2
MAX_PAYLOAD = 1024        # bytes: the bridge's frame buffer (one DP16KD-sized RAM on ECP5, 8 bits wide)

CRC_POLY = 0x1021         # CRC-16/CCITT-FALSE: x^16 + x^12 + x^5 + 1, init 0xFFFF, no reflection
CRC_INIT = 0xFFFF

UART_BITS = 10            # 8N1: start, 8 data bits LSB first, stop


class Cmd(IntEnum):
    WRITE = 1             # count registers at addr, addr + 4, ...; payload count x 4 bytes
    READ = 2              # count registers at addr, addr + 4, ...; reply payload count x 4 bytes
    STREAM_IN = 3         # count words onto s_axis (bulk load); payload count x word bytes
    STREAM_OUT = 4        # count words from m_axis (after M_CMD READ_STREAM); reply count x (word + ECC bytes)


class Status(IntEnum):
    OK = 0
    BAD_CRC = 1           # the request's CRC did not match: nothing was executed
    BAD_CMD = 2           # unknown command
    BAD_LENGTH = 3        # count 0, or the payload (request or reply) larger than MAX_PAYLOAD
    BAD_ADDR = 4          # an address that is not a register, unaligned, or a write to a read-only register
    BUSY = 5              # the chip is running: only READ is served
    TIMEOUT = 6           # the request stopped arriving in the middle (the line was quiet for the timeout)
    STALLED = 7           # the chip did not take (STREAM_IN) or give (STREAM_OUT) a word within the timeout;
                          # the reply's count says how many items were moved


@dataclass(frozen=True)
class BridgeTiming:
    """A bridge's line parameters: clock cycles per UART bit and how many bit times of silence end
    a half-received frame (or the drain after an error)."""
    divisor: int
    timeout_bits: int

    def __post_init__(self):
        if self.divisor < 4:
            raise ValueError(f"UART divisor {self.divisor}: at least 4 clock cycles per bit")
        if self.timeout_bits < 4 * UART_BITS:
            raise ValueError(f"bridge timeout {self.timeout_bits} bit times: at least {4 * UART_BITS}")

    @property
    def timeout_cycles(self) -> int:
        return self.divisor * self.timeout_bits


# Simulation: a fast line (4 cycles a bit) and a short timeout, so tests spend their time on data.
SIM_TIMING = BridgeTiming(divisor=4, timeout_bits=120)
# A board: the baud rate the host opens the port with, and a timeout of 20,000 bit times (about
# 7 ms at 3 Mbaud, 170 ms at 115200), longer than the gaps a USB serial adapter leaves in a frame.
DEFAULT_BAUD = 1_000_000
BOARD_TIMEOUT_BITS = 20_000


def board_timing(clk_hz: int, baud: int = DEFAULT_BAUD) -> BridgeTiming:
    divisor = round(clk_hz / baud)
    if divisor < 4 or abs(clk_hz / divisor - baud) / baud > 0.02:
        raise ValueError(f"{baud} baud is not reachable from a {clk_hz / 1e6:g} MHz clock within 2 % "
                         f"(divisor {divisor}); pick a lower baud rate")
    return BridgeTiming(divisor, BOARD_TIMEOUT_BITS)


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def word_bytes(config: ChipConfig) -> int:
    return config.lanes


def ecc_bytes(config: ChipConfig) -> int:
    return (code_for(config.word_bits).stored_bits + 7) // 8


def item_bytes(cmd: Cmd, config: ChipConfig) -> tuple[int, int]:
    """(request payload bytes, reply payload bytes) per item of `cmd`."""
    return {Cmd.WRITE: (4, 0), Cmd.READ: (0, 4), Cmd.STREAM_IN: (word_bytes(config), 0),
            Cmd.STREAM_OUT: (0, word_bytes(config) + ecc_bytes(config))}[cmd]


def max_count(cmd: Cmd, config: ChipConfig) -> int:
    """Most items one request of `cmd` may carry."""
    return MAX_PAYLOAD // max(item_bytes(cmd, config))


def readable(config: ChipConfig) -> list[int]:
    """Register addresses a READ may touch."""
    return sorted(hm.addr(r.name, i) for r in hm.REGISTERS
                  for i in range(hm.data_regs(config) if r.name == "M_DATA" else 1))


def writable(config: ChipConfig) -> list[int]:
    """Register addresses a WRITE may touch (the W and RW registers)."""
    return sorted(hm.addr(r.name, i) for r in hm.REGISTERS if "W" in r.access
                  for i in range(hm.data_regs(config) if r.name == "M_DATA" else 1))


def request(cmd: int, seq: int, addr: int = 0, count: int = 0, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, seq & 0xFF]) + (addr & 0xFFFFFFFF).to_bytes(4, "little") \
        + (count & 0xFFFF).to_bytes(2, "little") + payload
    return bytes([SOF_REQUEST]) + body + crc16(body).to_bytes(2, "little")


def reply(status: int, seq: int, count: int = 0, payload: bytes = b"") -> bytes:
    body = bytes([status & 0xFF, seq & 0xFF]) + (count & 0xFFFF).to_bytes(2, "little") + payload
    return bytes([SOF_REPLY]) + body + crc16(body).to_bytes(2, "little")
