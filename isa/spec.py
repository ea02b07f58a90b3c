"""The instruction set and its timing, as data.

This module is the single source of truth for opcodes, field layouts,
encodings and every latency. The RTL decoders (`hdl/`), the golden model
(`sim/`), the assembler (`isa/asm.py`) and the tables in `docs/ISA.md` are all
derived from what is written here; a timing constant written anywhere else is
a bug.

Timing model (see docs/ARCHITECTURE.md for pictures):

* Cycle 0 is the first cycle after START. Every slice queue issues its first
  instruction on cycle 0 (unless it is empty).
* Streams: `V(p, t)` is the value of a stream passing position p on cycle t.
  A slice at p that *drives* an eastward stream on cycle t makes the value
  visible at p+1 on cycle t+TIMING['stream_hop'] (westward: p-1). A position that nobody
  drives passes the value on: V(p+1, t+1) = V(p, t) eastward. Values leaving
  the last position are the chip's edge outputs; edge inputs are zero.
* Each instruction has a fixed issue-relative latency for each of its
  effects, listed in `TIMING` and per opcode below.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .config import ChipConfig, SliceKind

ISA_VERSION = (0, 1)
WORD_BITS = 64          # one instruction word
OPCODE_BITS = 8

# --------------------------------------------------------------------------
# Timing (cycles). Every number the compiler, model or RTL needs lives here.
# --------------------------------------------------------------------------
TIMING: dict[str, int] = {
    # stream fabric: driven by slice p on cycle t -> seen at p+1 / p-1 on t+1
    "stream_hop": 1,
    # MEM READ issued on cycle t, element k (k = 0..count-1):
    "mem_read_access": 1,   # SRAM read port samples the address on t+1+k
    "mem_read_check": 2,    # ECC check of the word (and the ECC counters) on t+2+k
    "mem_read_drive": 3,    # corrected word driven onto the stream on t+3+k
    # MEM WRITE issued on cycle t, element k:
    "mem_write_sample": 1,  # stream value V(p, t+1+k) is taken
    "mem_write_commit": 2,  # word is stored at the end of cycle t+2+k
}
TIMING_DOC: dict[str, str] = {
    "stream_hop": "a value driven by the slice at p on cycle t is seen at p+1 (east) / p-1 (west) on t+stream_hop",
    "mem_read_access": "READ issued on t: SRAM read of element k happens on cycle t+mem_read_access+k",
    "mem_read_check": "READ issued on t: element k is ECC-checked (and counted) on cycle t+mem_read_check+k",
    "mem_read_drive": "READ issued on t: element k is driven onto the stream by the MEM slice on cycle t+mem_read_drive+k",
    "mem_write_sample": "WRITE issued on t: element k is the stream value passing the slice on cycle t+mem_write_sample+k",
    "mem_write_commit": "WRITE issued on t: element k is stored at the end of cycle t+mem_write_commit+k; "
                        "a READ access on a later cycle sees it, one on the same cycle sees the old word",
}


class Dir(IntEnum):
    EAST = 0
    WEST = 1


class ErrorCode(IntEnum):
    """Error status codes. The chip stops at the end of the cycle it detects one."""
    NONE = 0
    ILLEGAL_OPCODE = 1      # opcode not defined for this slice kind
    BAD_FIELD = 2           # reserved bits set, or a field value out of range


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    signed: bool = False
    doc: str = ""

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def range(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1
        return 0, (1 << self.width) - 1

    def get(self, word: int) -> int:
        v = (word >> self.lsb) & ((1 << self.width) - 1)
        if self.signed and v >> (self.width - 1):
            v -= 1 << self.width
        return v


@dataclass(frozen=True)
class Opcode:
    mnemonic: str
    code: int
    kinds: tuple[SliceKind, ...]     # slice kinds whose queue accepts it
    fields: tuple[Field, ...]        # operand fields (opcode field excluded)
    doc: str
    # operand lower bounds beyond the field width: (name, minimum); upper bounds that depend on
    # the configuration come from field_limits()
    min_values: tuple[tuple[str, int], ...] = ()
    latencies: tuple[str, ...] = ()  # keys of TIMING that apply

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def reserved_mask(self) -> int:
        used = OPCODE_FIELD.mask
        for f in self.fields:
            used |= f.mask
        return ((1 << WORD_BITS) - 1) & ~used


OPCODE_FIELD = Field("opcode", 0, OPCODE_BITS, doc="operation code")

_STREAM = Field("stream", 8, 6, doc="stream index within the direction")
_DIR = Field("dir", 14, 1, doc="0 = eastward, 1 = westward")
_ADDR = Field("addr", 16, 16, doc="first word address (< mem_words)")
_STRIDE = Field("stride", 32, 16, signed=True, doc="address increment per element, modulo mem_words")
_COUNT = Field("count", 48, 16, doc="number of words transferred, one per cycle (>= 1)")

OPCODES: tuple[Opcode, ...] = (
    Opcode("NOP", 0x01, tuple(SliceKind), (Field("cycles", 32, 32, doc="cycles the queue waits (>= 1)"),),
           "The queue issues nothing for `cycles` cycles; the next instruction issues `cycles` cycles later.",
           min_values=(("cycles", 1),)),
    Opcode("READ", 0x10, (SliceKind.MEM,), (_STREAM, _DIR, _ADDR, _STRIDE, _COUNT),
           "Read `count` words at addr, addr+stride, ... (modulo mem_words) and drive them, one per cycle, "
           "onto stream `stream` in direction `dir`. Dispatches to the slice's read engine; the queue "
           "waits while a previous READ still has accesses after this cycle.",
           min_values=(("count", 1),), latencies=("mem_read_access", "mem_read_check", "mem_read_drive")),
    Opcode("WRITE", 0x11, (SliceKind.MEM,), (_STREAM, _DIR, _ADDR, _STRIDE, _COUNT),
           "Take `count` consecutive vectors from stream `stream` in direction `dir` as they pass the "
           "slice and store them at addr, addr+stride, ... (modulo mem_words). Dispatches to the write "
           "engine; the queue waits while a previous WRITE still has samples after this cycle.",
           min_values=(("count", 1),), latencies=("mem_write_sample", "mem_write_commit")),
)

BY_MNEMONIC: dict[str, Opcode] = {o.mnemonic: o for o in OPCODES}
BY_CODE: dict[int, Opcode] = {o.code: o for o in OPCODES}
assert len(BY_MNEMONIC) == len(BY_CODE) == len(OPCODES)

# Which structural engine an opcode occupies after dispatch (queue waits while busy).
ENGINE: dict[str, str] = {"READ": "read", "WRITE": "write"}


class IllegalInstruction(ValueError):
    def __init__(self, code: ErrorCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode(mnemonic: str, **operands: int) -> int:
    """Encode one instruction word; raises ValueError naming the bad operand."""
    op = BY_MNEMONIC.get(mnemonic.upper())
    if op is None:
        raise ValueError(f"unknown mnemonic {mnemonic!r}")
    names = {f.name for f in op.fields}
    extra = set(operands) - names
    if extra:
        raise ValueError(f"{op.mnemonic} has no operand {sorted(extra)[0]!r}; operands are {', '.join(sorted(names))}")
    word = op.code
    for f in op.fields:
        if f.name not in operands:
            raise ValueError(f"{op.mnemonic} needs operand {f.name!r}")
        v = int(operands[f.name])
        lo, hi = f.range()
        if not lo <= v <= hi:
            raise ValueError(f"{op.mnemonic} operand {f.name}={v} out of range [{lo}, {hi}]")
        word |= (v & ((1 << f.width) - 1)) << f.lsb
    return word


def decode(word: int) -> tuple[Opcode, dict[str, int]]:
    """Split a word into opcode and operands (no legality checks beyond the opcode)."""
    code = OPCODE_FIELD.get(word)
    op = BY_CODE.get(code)
    if op is None:
        raise IllegalInstruction(ErrorCode.ILLEGAL_OPCODE, f"undefined opcode 0x{code:02x}")
    return op, {f.name: f.get(word) for f in op.fields}


def check(word: int, kind: SliceKind, config: ChipConfig) -> tuple[Opcode, dict[str, int]]:
    """Decode and check a word exactly as the hardware does for a queue of `kind`.

    Raises IllegalInstruction with the error code the chip would report.
    """
    if not 0 <= word < 1 << WORD_BITS:
        raise IllegalInstruction(ErrorCode.BAD_FIELD, f"word {word:#x} does not fit in {WORD_BITS} bits")
    op, ops = decode(word)
    if kind not in op.kinds:
        raise IllegalInstruction(ErrorCode.ILLEGAL_OPCODE, f"{op.mnemonic} is not an instruction of a {kind.value} slice")
    if word & op.reserved_mask:
        raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: reserved bits set ({word & op.reserved_mask:#x})")
    for name, lo in op.min_values:
        if ops[name] < lo:
            raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: {name}={ops[name]} must be >= {lo}")
    for name, hi in field_limits(op, config):
        if ops[name] >= hi:
            raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: {name}={ops[name]} must be < {hi}")
    return op, ops


def field_limits(op: Opcode, config: ChipConfig) -> list[tuple[str, int]]:
    """Configuration-dependent upper bounds (exclusive) the hardware checks."""
    names = {f.name for f in op.fields}
    out = []
    if "stream" in names:
        out.append(("stream", config.streams))
    if "addr" in names:
        out.append(("addr", config.mem_words))
    return out


def kinds_with_queues(config: ChipConfig) -> tuple[SliceKind, ...]:
    """Slice kinds that have hardware (and so a queue) in this ISA version."""
    return (SliceKind.MEM,)
