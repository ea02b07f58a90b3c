"""Host (AXI4-Lite) register map, as data.

Besides these registers the chip has one AXI4-Stream slave port, `s_axis_*` (tdata one whole
word, lanes * 8 bits), for bulk loads: with S_DEST = 0 each beat is stored like an M_CMD WRITE
of that word to M_SEL's slice at M_ADDR, and M_ADDR advances; with S_DEST = 1 each beat carries
fetch_words instruction words (word j = tdata bits 64j..64j+63, as an IFETCH vector) for Q_SEL's
queue at Q_ADDR (a multiple of fetch_words), and Q_ADDR advances by fetch_words. An AXI4-Stream master port, `m_axis_*`,
unloads: M_CMD READ_STREAM sends M_COUNT raw words from M_SEL's slice at M_ADDR on, tdata the
data and tuser the stored ECC bits, tlast on the last word.

The RTL register file, the host driver and docs/ISA.md (host register map) derive from this table.
All registers are 32 bits; addresses are byte offsets. "W1" bits are commands
(write 1 to act, they read back as 0).
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ChipConfig
from .ecc import code_for

DATA_BITS = 32
ID_MAGIC = 0x54535000  # "TSP\0"


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str   # "R", "W", "RW"
    doc: str


REGISTERS: tuple[Register, ...] = (
    Register("ID", 0x00, "R", "0x54535000 | ISA major << 4 | ISA minor"),
    Register("CTRL", 0x04, "W", "bit0 START (when idle: clears CYCLES, DONE, ERROR, ERROR_INFO; all queues issue from cycle 0); "
                                "bit1 CLEAR (clear DONE, ERROR, ECC counters and HOST_ERR)"),
    Register("STATUS", 0x08, "R", "bit0 RUNNING, bit1 DONE, bit2 ERROR, bit3 ECC_UNCORRECTABLE (sticky), "
                                  "bit4 HOST_ERR (host access refused: chip running, START while running, selector not a "
                                  "MEM slice, address or length beyond the configuration, SRAM access "
                                  "while unloading), bit5 UNLOADING (READ_STREAM in progress)"),
    Register("CYCLES", 0x0C, "R", "cycles since START; stops when the chip is done or halts on an error"),
    Register("ERROR_INFO", 0x10, "R", "[3:0] ErrorCode, [15:8] slice position, [31:16] queue index (pc)"),
    Register("ECC_CORRECTED", 0x14, "R", "single-bit errors corrected by program reads"),
    Register("ECC_UNCORRECTABLE", 0x18, "R", "double-bit errors detected by program reads"),
    Register("CONFIG0", 0x1C, "R", "[15:0] lanes, [23:16] streams, [31:24] positions"),
    Register("CONFIG1", 0x20, "R", "[4:0] log2 mem_words, [12:8] log2 queue_depth, [23:16] ECC bits per word"),
    Register("SYNC_TREE", 0x24, "RW", "this chip's place in the system's SYNC tree: [4:0] index of the C2C link "
                                      "(westmost 0) leading to the parent chip, 31 for the root; [31:16] cycles "
                                      "between two updates of the HAC offset, more than the link's round trip"),
    Register("SYNC_CHILDREN", 0x28, "RW", "bit i set: C2C link i leads to a child chip in the SYNC tree"),
    Register("SYNC_MARGIN", 0x2C, "RW", "[15:0] the root releases a SYNC this many HAC cycles after the system "
                                        "is quiet (at least the chip's positions)"),
    Register("L_SEL", 0x30, "RW", "[7:0] C2C slice position whose link L_* registers show"),
    Register("L_STATUS", 0x34, "R", "bit0 UP (trained), bit1 FAILED (did not train: not connected, no signal or "
                                    "lane skew beyond c2c_skew), bit2 FEC_UNCORRECTABLE (sticky since reset), "
                                    "bit3 OVERFLOW (a vector arrived at a full receive buffer since START)"),
    Register("L_CORRECTED", 0x38, "R", "codewords the link's FEC corrected since reset"),
    Register("L_UNCORRECTABLE", 0x3C, "R", "codewords with an uncorrectable error since reset"),
    Register("Q_SEL", 0x40, "RW", "[7:0] slice position whose queue Q_* registers address"),
    Register("Q_ADDR", 0x44, "RW", "instruction index; incremented by each Q_DATA_HI write"),
    Register("Q_DATA_LO", 0x48, "W", "instruction word bits [31:0] (staged)"),
    Register("Q_DATA_HI", 0x4C, "W", "instruction word bits [63:32]; stores {HI, LO} at Q_ADDR"),
    Register("Q_LEN", 0x50, "RW", "number of instructions in the selected queue"),
    Register("S_DEST", 0x54, "RW", "bit0: where s_axis beats go: 0 SRAM (M_SEL, M_ADDR), 1 the queue (Q_SEL, Q_ADDR), "
                                   "fetch_words instruction words per beat"),
    Register("SYNC_TIMEOUT", 0x58, "RW", "cycles a chip may hold at one SYNC before it stops with SYNC_TIMEOUT"),
    Register("STALL", 0x5C, "R", "cycles held at SYNCs since START (not in CYCLES)"),
    Register("M_SEL", 0x60, "RW", "[7:0] MEM slice position that M_* registers address"),
    Register("M_ADDR", 0x64, "RW", "word address; incremented after each M_CMD and each s_axis beat"),
    Register("M_CMD", 0x68, "W", "bit0 WRITE staged data (ECC computed), bit1 WRITE_RAW staged data and "
                                 "M_ECC as stored (fault injection), bit2 READ raw word into M_DATA/M_ECC, "
                                 "bit3 READ_STREAM M_COUNT words onto m_axis; the write response "
                                 "returns once a single-word access is complete"),
    Register("M_ECC", 0x6C, "RW", "stored ECC bits (check | parity << r) staged for WRITE_RAW / read back"),
    Register("M_COUNT", 0x70, "RW", "words a READ_STREAM sends (1 .. mem_words)"),
    Register("HAC", 0x74, "R", "[15:0] the hardware-aligned counter, bit16 ALIGNED (the root, or a child whose "
                               "offset to its parent's HAC has settled), [31:17] that offset"),
    Register("M_DATA", 0x80, "RW", "staged word, 32 bits per register: M_DATA+4*i holds lanes 4i..4i+3"),
)
BY_NAME = {r.name: r for r in REGISTERS}


@dataclass(frozen=True)
class Field:
    """A bit field of a register: `width` bits from bit `lsb`."""
    name: str
    lsb: int
    width: int


# The bit fields of the registers that have them. The RTL's register layouts (hdl/host_regs.py
# builds a data.StructLayout from `layout()`), the driver, the native runner and the golden model's
# ERROR_INFO all derive from this table; bits outside a field read as 0.
FIELDS: dict[str, tuple[Field, ...]] = {
    "CTRL": (Field("start", 0, 1), Field("clear", 1, 1)),
    "STATUS": (Field("running", 0, 1), Field("done", 1, 1), Field("error", 2, 1),
               Field("ecc_uncorrectable", 3, 1), Field("host_err", 4, 1), Field("unloading", 5, 1)),
    "ERROR_INFO": (Field("code", 0, 4), Field("position", 8, 8), Field("pc", 16, 16)),
    "CONFIG0": (Field("lanes", 0, 16), Field("streams", 16, 8), Field("positions", 24, 8)),
    "CONFIG1": (Field("mem_addr_bits", 0, 5), Field("queue_addr_bits", 8, 5), Field("ecc_bits", 16, 8)),
    "M_CMD": (Field("write", 0, 1), Field("write_raw", 1, 1), Field("read", 2, 1), Field("read_stream", 3, 1)),
    "S_DEST": (Field("queue", 0, 1),),
    "L_STATUS": (Field("up", 0, 1), Field("failed", 1, 1), Field("fec_uncorrectable", 2, 1), Field("overflow", 3, 1)),
    "SYNC_TREE": (Field("parent", 0, 5), Field("window", 16, 16)),
    "SYNC_MARGIN": (Field("margin", 0, 16),),
    "HAC": (Field("hac", 0, 16), Field("aligned", 16, 1), Field("offset", 17, 15)),
}
SYNC_ROOT = 31              # SYNC_TREE.parent of the root chip

# Registers whose value after reset is not 0 (a chip alone is the root of its own SYNC tree).
RESET: dict[str, int] = {"SYNC_TREE": SYNC_ROOT | 256 << 16, "SYNC_TIMEOUT": 1 << 20}


def fields(reg: str) -> dict[str, Field]:
    """The fields of register `reg`, by name, in bit order."""
    return {f.name: f for f in FIELDS[reg]}


def pack(reg: str, **values: int) -> int:
    """The register value with the given fields set (the others 0)."""
    fs = fields(reg)
    out = 0
    for name, v in values.items():
        if name not in fs:
            raise KeyError(f"{reg} has no field {name!r} (fields: {', '.join(fs)})")
        f = fs[name]
        v = int(v)
        if not 0 <= v < 1 << f.width:
            raise ValueError(f"{reg}.{name} = {v} does not fit in {f.width} bits")
        out |= v << f.lsb
    return out


def unpack(reg: str, value: int) -> dict[str, int]:
    """Every field of register `reg` from its value."""
    return {f.name: int(value) >> f.lsb & ((1 << f.width) - 1) for f in FIELDS[reg]}


def layout(reg: str) -> tuple[tuple[str, int], ...]:
    """(name, width) in bit order covering all DATA_BITS bits, the gaps between fields named
    `_reserved<lsb>`: what the RTL turns into an `amaranth.lib.data.StructLayout`."""
    out, at = [], 0
    for f in sorted(FIELDS[reg], key=lambda f: f.lsb):
        assert f.lsb >= at, f"{reg}.{f.name} overlaps the previous field"
        if f.lsb > at:
            out.append((f"_reserved{at}", f.lsb - at))
        out.append((f.name, f.width))
        at = f.lsb + f.width
    if at < DATA_BITS:
        out.append((f"_reserved{at}", DATA_BITS - at))
    return tuple(out)


def bit(reg: str, name: str) -> int:
    """The mask of one-bit field `name` (commands and status flags)."""
    return pack(reg, **{name: 1})


def config_fields(config: ChipConfig) -> dict[str, dict[str, int]]:
    """CONFIG0 and CONFIG1 as field values for `config` (the RTL's constants, what the driver checks)."""
    return {"CONFIG0": {"lanes": config.lanes, "streams": config.streams, "positions": config.positions},
            "CONFIG1": {"mem_addr_bits": config.mem_addr_bits,
                        "queue_addr_bits": (config.queue_depth - 1).bit_length(),
                        "ecc_bits": code_for(config.word_bits).stored_bits}}


def id_value(isa_version: tuple[int, int]) -> int:
    """The ID register: ID_MAGIC | major << 4 | minor."""
    return ID_MAGIC | isa_version[0] << 4 | isa_version[1]


CTRL_START = bit("CTRL", "start")
CTRL_CLEAR = bit("CTRL", "clear")
STATUS_RUNNING = bit("STATUS", "running")
STATUS_DONE = bit("STATUS", "done")
STATUS_ERROR = bit("STATUS", "error")
STATUS_ECC_UNCORRECTABLE = bit("STATUS", "ecc_uncorrectable")
STATUS_HOST_ERR = bit("STATUS", "host_err")
STATUS_UNLOADING = bit("STATUS", "unloading")
MCMD_WRITE = bit("M_CMD", "write")
MCMD_WRITE_RAW = bit("M_CMD", "write_raw")
MCMD_READ = bit("M_CMD", "read")
MCMD_READ_STREAM = bit("M_CMD", "read_stream")
SDEST_QUEUE = bit("S_DEST", "queue")


def addr(name: str, index: int = 0) -> int:
    return BY_NAME[name].offset + 4 * index


def data_regs(config: ChipConfig) -> int:
    return config.lanes // 4


def addr_bits(config: ChipConfig) -> int:
    """AXI address width: enough for the M_DATA window."""
    top = addr("M_DATA", data_regs(config))
    return max(8, (top - 1).bit_length())
