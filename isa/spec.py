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

`TIMING` is the base table. A configuration may override entries of it
(`ChipConfig.latency`, e.g. an FPGA build with an extra pipeline register in
the MXM and VXM), so everything that needs a latency reads `timing(config)`,
never `TIMING` itself.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

from .config import ChipConfig, ConfigError, SliceKind

ISA_VERSION = (0, 6)
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
    # VXM ALU instruction issued on cycle t, element k (every ALU opcode has the same latency):
    "vxm_sample": 1,        # operands V(p, t+1+k) and register values are taken
    "vxm_drive": 4,         # the result is driven onto the destination stream(s) on t+4+k
    # VSET / VLOAD issued on t (VLOAD samples its stream on t+vxm_sample):
    "vxm_reg_write": 1,     # the register is written at the end of t+1; samples from t+2 on see it
    # SXM instruction issued on cycle t, element k:
    "sxm_sample": 1,        # source group V(p, t+1+k) is taken
    "sxm_drive": 2,         # the moved vectors are driven on t+2+k
    "sxm_map_write": 1,     # SETMAP: the lane map is written at the end of t+1
    # MXM instruction issued on cycle t, element k:
    "mxm_sample": 1,        # MATMUL activation / LW weight rows V(p, t+1+k) are taken
    "mxm_cfg_write": 1,     # MXMCFG: zero points and signedness written at the end of t+1
    "mxm_install": 1,       # MATMUL swap=1: the shadow weights become active at the end of t+1
    "mxm_acc_write": 3,     # MATMUL: element k's accumulator row is written at the end of t+3+k
    "mxm_accread_access": 1,   # ACCREAD: row k is read on t+1+k (a write at the end of that cycle included)
    "mxm_accread_drive": 2,    # ACCREAD: row k is driven onto the int32 group on t+2+k
    # IFETCH issued on cycle t, vector k (each vector carries config.fetch_words instruction words):
    "ifetch_sample": 1,     # the vector V(p, t+1+k) is taken from the stream
    "ifetch_write": 2,      # its words are written into the queue at the end of t+2+k; they may issue from t+3+k
    # C2C SEND issued on cycle t, vector k: sampled on t+1+k; its link time is t+1+k*flits (isa/link.py)
    "c2c_send_sample": 1,
    # C2C RECV issued on cycle t, element k: the next received vector is taken (and checked) on t+1+k
    "c2c_recv_take": 1,
    "c2c_recv_drive": 2,    # ... and driven onto the stream on t+2+k
    # a slice's error on cycle t stops the chip at the end of t+error_stop (0: that same cycle)
    "error_stop": 0,
}
TIMING_DOC: dict[str, str] = {
    "stream_hop": "a value driven by the slice at p on cycle t is seen at p+1 (east) / p-1 (west) on t+stream_hop",
    "mem_read_access": "READ issued on t: SRAM read of element k happens on cycle t+mem_read_access+k",
    "mem_read_check": "READ issued on t: element k is ECC-checked (and counted) on cycle t+mem_read_check+k",
    "mem_read_drive": "READ issued on t: element k is driven onto the stream by the MEM slice on cycle t+mem_read_drive+k",
    "mem_write_sample": "WRITE issued on t: element k is the stream value passing the slice on cycle t+mem_write_sample+k",
    "mem_write_commit": "WRITE issued on t: element k is stored at the end of cycle t+mem_write_commit+k; "
                        "a READ access on a later cycle sees it, one on the same cycle sees the old word",
    "vxm_sample": "VXM op issued on t: element k reads its operands (streams passing the VXM, registers) on "
                  "cycle t+vxm_sample+k",
    "vxm_drive": "VXM op issued on t: element k's result is driven onto the destination group on cycle "
                 "t+vxm_drive+k",
    "vxm_reg_write": "VSET/VLOAD issued on t: the register is written at the end of cycle t+vxm_reg_write; "
                     "operand samples on later cycles see the new value, samples on that cycle the old one",
    "sxm_sample": "SXM op issued on t: element k takes the source group passing the SXM on cycle "
                  "t+sxm_sample+k",
    "sxm_drive": "SXM op issued on t: element k's moved vectors are driven on cycle t+sxm_drive+k",
    "sxm_map_write": "SETMAP issued on t: the lane map is written at the end of cycle t+sxm_map_write; "
                     "PERMUTE elements sampled on later cycles use it",
    "mxm_sample": "MATMUL / LW issued on t: element k takes its vector(s) passing the MXM on cycle t+mxm_sample+k "
                  "(LW writes the shadow rows at the end of that cycle)",
    "mxm_cfg_write": "MXMCFG issued on t: zero points and signedness apply to samples on cycles after "
                     "t+mxm_cfg_write",
    "mxm_install": "MATMUL with swap=1 issued on t: the shadow weights become the active weights at the end of "
                   "t+mxm_install (before LW writes of that same cycle); elements sampled on t+mxm_install or "
                   "later use them, earlier ones the old weights",
    "mxm_acc_write": "MATMUL issued on t: element k's accumulator row is written at the end of t+mxm_acc_write+k",
    "mxm_accread_access": "ACCREAD issued on t: row k is read on t+mxm_accread_access+k and includes a MATMUL "
                          "write at the end of that same cycle",
    "mxm_accread_drive": "ACCREAD issued on t: row k is driven onto the int32 group on t+mxm_accread_drive+k",
    "ifetch_sample": "IFETCH issued on t: vector k (fetch_words instruction words) is the stream value passing "
                     "the slice on cycle t+ifetch_sample+k",
    "ifetch_write": "IFETCH issued on t: vector k's words are written into the queue at the end of cycle "
                    "t+ifetch_write+k and may issue from the next cycle on",
    "c2c_send_sample": "SEND issued on t: vector k is the stream value passing the slice on cycle t+c2c_send_sample+k; "
                       "its link time is t+c2c_send_sample+k*flits (isa/link.py)",
    "c2c_recv_take": "RECV issued on t: element k takes the next received vector on t+c2c_recv_take+k, which must be "
                     "at least `lat` cycles after that vector's link time",
    "c2c_recv_drive": "RECV issued on t: element k's vector is driven onto the stream on t+c2c_recv_drive+k",
    "error_stop": "a slice's error on cycle t stops the chip at the end of cycle t+error_stop: the cycles between "
                  "run as usual, but a queue that has failed issues nothing more; CYCLES is t+error_stop+1 and "
                  "ERROR_INFO names the westmost failure of cycle t (a SYNC timeout stops on its own cycle)",
}


def timing(config: ChipConfig | None = None) -> dict[str, int]:
    """The latencies of `config`: a fresh copy of TIMING (read now: tests patch it) with the
    configuration's overrides applied; the base table for None."""
    out = dict(TIMING)
    for key, cycles in config.latency if config is not None else ():
        if key not in out:
            raise ConfigError(f"config {config.name!r}: latency override {key!r} is not a TIMING entry "
                              f"(entries: {', '.join(TIMING)})")
        if cycles < 1:
            raise ConfigError(f"config {config.name!r}: latency override {key} = {cycles} must be >= 1 "
                              f"(every effect comes after its issue cycle)")
        out[key] = cycles
    if config is not None and config.vxm_omit:
        vxm_alu_ops(config)             # rejects a name that is not an ALU op
    return out


class Dir(IntEnum):
    EAST = 0
    WEST = 1


class ErrorCode(IntEnum):
    """Error status codes. The chip stops at the end of the cycle it detects one (error_stop cycles later
    where the configuration gives the stop a pipeline stage: TIMING["error_stop"])."""
    NONE = 0
    ILLEGAL_OPCODE = 1      # opcode not defined for this slice kind
    BAD_FIELD = 2           # reserved bits set, a field value out of range, or a wrong type for the op
    QUEUE_UNDERRUN = 3      # the queue needed its next instruction while an IFETCH for it was still in flight
    QUEUE_OVERFLOW = 4      # a fetched vector would overwrite instructions the queue has not issued yet
    FETCH_ALIGN = 5         # IFETCH while the queue's fill point is not a multiple of fetch_words
    LINK_RECV = 6           # RECV found no vector due: the next one was sent less than `lat` cycles before, or not yet
    LINK_FEC = 7            # RECV took a vector whose frame had an uncorrectable FEC error
    LINK_DOWN = 8           # SEND or RECV on a link that is not trained (not connected, no signal, skew out of range)
    SYNC_TIMEOUT = 9        # the chip held at a SYNC longer than SYNC_TIMEOUT cycles (a chip of the system never got there)
    LINK_OVERFLOW = 10      # RECV on a link whose receive buffer overflowed during this run (a vector was lost)


class DType(IntEnum):
    """Element types on streams. A value of type T occupies `dtype_bytes(T)` adjacent streams
    (a stream group: byte plane j of every lane on stream base+j, little-endian)."""
    I8 = 0
    I16 = 1
    I32 = 2


def dtype_bytes(t: int) -> int:
    return 1 << int(t)


def dtype_range(t: int) -> tuple[int, int]:
    bits = 8 * dtype_bytes(t)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# A VXM operand field (8 bits) names a stream group or a register:
#   bits [5:0] index (stream group base, or register number), bit 6 dir (streams only),
#   bit 7 = 1 for a register. A register holds one int32 per lane; read as type T it is
#   truncated to T's width (its low bytes), read as int32 it is taken whole.
OPERAND_REG = 0x80
OPERAND_DIR = 0x40
OPERAND_INDEX = 0x3F


def operand(index: int, direction: int = 0, reg: bool = False) -> int:
    """Encode an operand field value: a stream group (index, direction) or register `index`."""
    return (OPERAND_REG if reg else 0) | (int(direction) & 1) << 6 | index & OPERAND_INDEX


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
    # legality rules beyond ranges: (reason, rule(v, config, X)) with v the field values; the rule
    # is written once and evaluated on ints (spec.check) and on Amaranth values (hdl/decoder.py)
    constraints: tuple[tuple[str, object], ...] = ()

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
    Opcode("IFETCH", 0x02, tuple(SliceKind), (_STREAM, _DIR, _COUNT),
           "Refill this queue from a stream: take vectors from stream `stream` (dir) as they pass the slice, "
           "one per cycle, each carrying fetch_words instruction words (word j = bytes 8j..8j+7 of the vector, "
           "little-endian), and append the first `count` words to the queue in order (the last vector may be "
           "partly used). A MEM READ elsewhere sends the vectors; the compiler times both like any transfer. "
           "Runs on the queue's fetch engine; the queue waits while a previous IFETCH still samples after "
           "this cycle. Errors: FETCH_ALIGN if the queue's fill point (Q_LEN plus the words of earlier "
           "IFETCHes) is not a multiple of fetch_words; QUEUE_OVERFLOW when a vector lands while the queue "
           "holds more than queue_depth - fetch_words unissued words; QUEUE_UNDERRUN when the queue needs its "
           "next word before it has landed.",
           min_values=(("count", 1),), latencies=("ifetch_sample", "ifetch_write")),
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
    Opcode("SYNC", 0x03, tuple(SliceKind), (),
           "Barrier of the whole system: the queue issues nothing more until the release. Once every queue "
           "of the chip is parked at a SYNC or empty and nothing is in flight (the chip is *quiet*, on cycle "
           "q), the chip holds: CYCLES stops, STALL counts. When every chip of the system is quiet, all "
           "release on one hardware-aligned counter (HAC) value, and the parked queues issue their next "
           "instruction on cycle T = max over the chips of q + sync_release(config) (`sync_release`), the "
           "same on every chip: one program time for the system, whenever the host started each chip. "
           "Error SYNC_TIMEOUT if the chip holds longer than SYNC_TIMEOUT cycles."),
)

# ---- VXM -------------------------------------------------------------------
_A = Field("a", 8, 8, doc="operand A: stream group or register (see OPERAND_*)")
_B = Field("b", 16, 8, doc="operand B: stream group or register")
_C = Field("c", 24, 8, doc="operand C: stream group or register")
_DST = Field("dst", 32, 6, doc="first stream of the destination group")
_DDIR = Field("ddir", 38, 1, doc="destination direction: 0 = eastward, 1 = westward")
_TYPE = Field("type", 40, 2, doc="operand type (DType: 0 = int8, 1 = int16, 2 = int32)")
_DTYPE = Field("dtype", 42, 2, doc="result type (DType)")
_ALU = Field("alu", 44, 4, doc="ALU (engine) that runs the op (< vxm_alus)")
_REG = Field("r", 16, 4, doc="register written (< vxm_regs)")
_IMM = Field("imm", 32, 32, signed=True, doc="value broadcast to every lane")


def _operand_ok(name: str, type_of):
    """Rule: operand `name` is a register < vxm_regs (dir bit clear), or a stream group of the
    operand type that ends at or before the last stream."""
    def rule(v, cfg, X):
        x = v[name]
        idx, is_reg, d = x & OPERAND_INDEX, (x >> 7) & 1, (x >> 6) & 1
        as_reg = X.both(idx < cfg.vxm_regs, d == 0)
        as_group = X.group_fits(idx, type_of(v), cfg.streams)
        return X.mux(is_reg, as_reg, as_group)
    return (f"operand {name}: a register must be < vxm_regs with the dir bit clear, and a stream group "
            f"must fit below the last stream", rule)


def _stream_only(name: str):
    return (f"operand {name} must be a stream group, not a register", lambda v, cfg, X: (v[name] >> 7) == 0)


def _type_ok(name: str):
    return (f"{name} must be 0 (int8), 1 (int16) or 2 (int32)", lambda v, cfg, X: v[name] <= int(DType.I32))


def _operand_type(v):
    return v["type"] if "type" in v else int(DType.I32)


def _result_type(v):
    return v["dtype"] if "dtype" in v else v["type"]


def _dst_ok():
    return ("destination group must fit below the last stream",
            lambda v, cfg, X: X.group_fits(v["dst"], _result_type(v), cfg.streams))


_ALU_OK = ("alu must be < vxm_alus", lambda v, cfg, X: v["alu"] < cfg.vxm_alus)
_REG_OK = ("register must be < vxm_regs", lambda v, cfg, X: v["r"] < cfg.vxm_regs)

# Result-type rules (what "wrong type for an op" means):
_DTYPE_RULES = {
    "same": None,   # no dtype field: the result has the operand type
    "wider": ("dtype must be wider than type (int8 -> int16/int32, int16 -> int32)",
              lambda v, cfg, X: X.both(v["dtype"] > v["type"], v["dtype"] <= int(DType.I32))),
    "any": ("dtype must be 0 (int8), 1 (int16) or 2 (int32)", lambda v, cfg, X: v["dtype"] <= int(DType.I32)),
    "narrow": ("requantize produces int8 or int16 (dtype 0 or 1)", lambda v, cfg, X: v["dtype"] <= int(DType.I16)),
}


@dataclass(frozen=True)
class AluOp:
    """One VXM ALU function: what it computes, element by element, on values of the operand type.

    `operands` are the operand fields it reads; `dtype` is its result-type rule (_DTYPE_RULES).
    The formula is prose here; sim/golden.py implements it and the docs print it.
    """
    mnemonic: str
    code: int
    operands: str
    dtype: str
    formula: str


# Arithmetic is two's complement; "wrap" = the low bits of the exact result; comparisons and
# min/max are signed; a mask is all ones (-1) for true and 0 for false, in the operand type.
ALU_OPS: tuple[AluOp, ...] = (
    AluOp("ADD", 0x22, "ab", "same", "a + b, wrapping"),
    AluOp("SUB", 0x23, "ab", "same", "a - b, wrapping"),
    AluOp("MUL", 0x24, "ab", "same", "a * b, low half (wrapping)"),
    AluOp("MULW", 0x25, "ab", "wider", "a * b, exact, in the wider dtype (widening multiply)"),
    AluOp("MIN", 0x26, "ab", "same", "min(a, b), signed"),
    AluOp("MAX", 0x27, "ab", "same", "max(a, b), signed"),
    AluOp("RELU", 0x28, "a", "same", "max(a, 0)"),
    AluOp("SHL", 0x29, "ab", "same", "a << (b mod bits), wrapping (bits = 8, 16 or 32 for the type)"),
    AluOp("SHR", 0x2A, "ab", "same", "a >> (b mod bits), logical (zero fill)"),
    AluOp("SRA", 0x2B, "ab", "same", "a >> (b mod bits), arithmetic (sign fill)"),
    AluOp("CMPEQ", 0x2C, "ab", "same", "mask(a == b)"),
    AluOp("CMPLT", 0x2D, "ab", "same", "mask(a < b), signed"),
    AluOp("CMPLE", 0x2E, "ab", "same", "mask(a <= b), signed"),
    AluOp("SELECT", 0x2F, "abc", "same", "b if a != 0 else c"),
    AluOp("CVT", 0x30, "a", "any", "a converted to dtype: sign-extended when widening, saturated when narrowing"),
    AluOp("REQUANT", 0x31, "abc", "narrow",
          "saturate_dtype(rounding_shift(a * b, 31 + s) + zp) with a int32, b the int32 multiplier M, "
          "s = c bits [4:0], zp = c bits [31:16] (signed); see isa/quant.py"),
)
ALU_BY_MNEMONIC = {o.mnemonic: o for o in ALU_OPS}


def _alu_opcode(a: AluOp) -> Opcode:
    fields = [_B, _C][:len(a.operands) - 1]
    fields = [_A, *fields, _DST, _DDIR]
    if a.dtype != "narrow":
        fields.append(_TYPE)
    if a.dtype != "same":
        fields.append(_DTYPE)
    fields += [_ALU, _COUNT]
    cons = []
    if a.dtype != "narrow":
        cons.append(_type_ok("type"))
    if _DTYPE_RULES[a.dtype] is not None:
        cons.append(_DTYPE_RULES[a.dtype])
    if a.mnemonic == "REQUANT":       # the multiplier and the shift/zero-point word are int32 lanes
        cons += [_operand_ok(n, lambda v: int(DType.I32)) for n in a.operands]
    else:
        cons += [_operand_ok(n, _operand_type) for n in a.operands]
    cons += [_dst_ok(), _ALU_OK]
    doc = (f"Element k (k = 0..count-1): {a.formula}. Operands are sampled on t+vxm_sample+k, the result is "
           f"driven onto the group at dst/ddir on t+vxm_drive+k. Runs on ALU `alu`; the queue waits while that "
           f"ALU still has elements to sample after this cycle.")
    return Opcode(a.mnemonic, a.code, (SliceKind.VXM,), tuple(fields), doc, min_values=(("count", 1),),
                  latencies=("vxm_sample", "vxm_drive"), constraints=tuple(cons))


VXM_OPCODES: tuple[Opcode, ...] = (
    Opcode("VSET", 0x20, (SliceKind.VXM,), (_REG, _IMM),
           "Set register r to imm in every lane (a broadcast scalar).",
           latencies=("vxm_reg_write",), constraints=(_REG_OK,)),
    Opcode("VLOAD", 0x21, (SliceKind.VXM,), (_A, _REG, _TYPE),
           "Load register r from the stream group a (one vector, sign-extended from type to int32 per lane), "
           "sampled on t+vxm_sample (per-lane parameters such as per-channel multipliers).",
           latencies=("vxm_sample", "vxm_reg_write"),
           constraints=(_REG_OK, _type_ok("type"), _stream_only("a"), _operand_ok("a", _operand_type))),
    Opcode("VLOADB", 0x33, (SliceKind.VXM,), (_A, _REG, Field("plane", 40, 2, doc="byte of the register written (0 = low)")),
           "Load byte `plane` of register r, in every lane, from the stream at a (sampled on t+vxm_sample); the "
           "other bytes keep their value. Builds int32 per-lane values from single streams when fewer MEM "
           "slices than an int32 group's 4 streams feed the VXM on one cycle (the `tiny` preset has 2 per side).",
           latencies=("vxm_sample", "vxm_reg_write"),
           constraints=(_REG_OK, _stream_only("a"), _operand_ok("a", lambda v: int(DType.I8)))),
    *(_alu_opcode(a) for a in ALU_OPS),
)

# ---- SXM -------------------------------------------------------------------
_ARG = Field("arg", 16, 16, signed=True, doc="lane count (SHIFT, ROTATE) or lane index (BCAST)")
_WIDTH = Field("width", 40, 7, doc="streams in the source and destination groups (1..sxm_width)")


def _group_ok(width):
    return ("source and destination groups must fit below the last stream",
            lambda v, cfg, X: X.both(v["stream"] + width(v) <= cfg.streams, v["dst"] + width(v) <= cfg.streams))


_WIDTH_OK = ("width must be <= sxm_width", lambda v, cfg, X: v["width"] <= cfg.sxm_width)
_SHIFT_OK = ("arg must be in [-(lanes-1), lanes-1]",
             lambda v, cfg, X: X.both(v["arg"] < cfg.lanes, v["arg"] > -cfg.lanes))


def _sxm_opcode(mnemonic, code, fields, formula, cons):
    doc = (f"Element k: {formula}, for each of the `width` streams of the group starting at `stream` "
           f"(dir) to the same stream of the group at dst (ddir). Sampled on t+sxm_sample+k, driven on "
           f"t+sxm_drive+k; the queue waits while the previous SXM op still samples after this cycle.")
    return Opcode(mnemonic, code, (SliceKind.SXM,), (_STREAM, _DIR, *fields, _DST, _DDIR, _WIDTH, _COUNT), doc,
                  min_values=(("count", 1), ("width", 1)), latencies=("sxm_sample", "sxm_drive"),
                  constraints=(_WIDTH_OK, _group_ok(lambda v: v["width"]), *cons))


SXM_OPCODES: tuple[Opcode, ...] = (
    _sxm_opcode("SHIFT", 0x40, (_ARG,), "out[i] = in[i - arg] where 0 <= i - arg < lanes, else 0", (_SHIFT_OK,)),
    _sxm_opcode("ROTATE", 0x41, (_ARG,), "out[i] = in[(i - arg) mod lanes]", (_SHIFT_OK,)),
    _sxm_opcode("BCAST", 0x42, (_ARG,), "out[i] = in[arg] (one lane to all lanes)",
                (("arg must be a lane index in [0, lanes)", lambda v, cfg, X: X.both(v["arg"] >= 0, v["arg"] < cfg.lanes)),)),
    _sxm_opcode("PERMUTE", 0x43, (), "out[i] = in[map[i]] if map[i] < lanes else 0, with the lane map "
                "last written by SETMAP (identity at START)", ()),
    _sxm_opcode("TRANSPOSE", 0x44, (), "each width x width tile of (stream j, lane b*width + i) moves to "
                "(stream i, lane b*width + j): out[i][b*width + j] = in[j][b*width + i]",
                (("TRANSPOSE width must be a power of two >= 2 that divides lanes",
                  lambda v, cfg, X: X.both(X.both(v["width"] >= 2, (v["width"] & (v["width"] - 1)) == 0),
                                           X.pow2_divides(v["width"], cfg.lanes))),)),
    Opcode("SETMAP", 0x45, (SliceKind.SXM,), (_STREAM, _DIR),
           "Take one int16 vector from the group of 2 streams at stream/dir (sampled on t+sxm_sample) as the "
           "lane map: map[i] = its lane i (read as unsigned). Uses the SXM engine like the other SXM ops.",
           latencies=("sxm_sample", "sxm_map_write"),
           constraints=(("the int16 group (2 streams) must fit below the last stream",
                         lambda v, cfg, X: v["stream"] + 2 <= cfg.streams),)),
)

# ---- MXM -------------------------------------------------------------------
_ACC = Field("acc", 16, 16, doc="first accumulator row (< mxm_acc_rows); rows wrap modulo mxm_acc_rows")
_GROUP_OK = ("stream group must fit below the last stream",
             lambda v, cfg, X: v["stream"] + v["width"] <= cfg.streams)

MXM_OPCODES: tuple[Opcode, ...] = (
    Opcode("MXMCFG", 0x50, (SliceKind.MXM,),
           (Field("xzp", 16, 8, doc="activation zero point (read with xsigned's type)"),
            Field("xsigned", 24, 1, doc="activations are int8 (1) or uint8 (0)"),
            Field("wzp", 32, 8, doc="weight zero point (read with wsigned's type)"),
            Field("wsigned", 40, 1, doc="weights are int8 (1) or uint8 (0)")),
           "Set how activation and weight bytes are read: value = byte as int8 or uint8, minus the zero point "
           "of the same type (so the array multiplies 9-bit signed values). Applies to MATMUL / LW samples "
           "after t+mxm_cfg_write. At START: int8, zero points 0.",
           latencies=("mxm_cfg_write",)),
    Opcode("LW", 0x51, (SliceKind.MXM,),
           (_STREAM, _DIR, Field("row", 16, 16, doc="first shadow weight row (< lanes)"),
            Field("width", 40, 7, doc="streams taken per cycle (1..streams)"), _COUNT),
           "Load weights into the shadow buffer: element k takes the `width` streams from `stream` (dir) and "
           "writes stream j to shadow row row + k*width + j (row r holds the weights that multiply activation "
           "lane r, one per output column). Several streams per cycle load a tile in lanes/width cycles.",
           min_values=(("count", 1), ("width", 1)), latencies=("mxm_sample",),
           constraints=(_GROUP_OK, ("rows row .. row + width*count - 1 must be < lanes",
                                    lambda v, cfg, X: X.mul_le(v["count"], v["width"], cfg.lanes - v["row"], cfg.lanes)))),
    Opcode("MATMUL", 0x52, (SliceKind.MXM,),
           (_STREAM, _DIR, Field("accumulate", 15, 1, doc="1: add to the accumulator row; 0: overwrite it"),
            _ACC, Field("swap", 39, 1, doc="1: install the shadow weights first (see mxm_install)"), _COUNT),
           "Element k: the activation vector x on `stream` (dir) times the active weights, "
           "y[c] = sum_r x[r] * w[r][c] (int32, wrapping), into accumulator row (acc + k) mod mxm_acc_rows, "
           "added to it if accumulate=1. One vector per cycle; the queue waits while a previous MATMUL "
           "still samples after this cycle.",
           min_values=(("count", 1),), latencies=("mxm_sample", "mxm_install", "mxm_acc_write")),
    Opcode("ACCREAD", 0x53, (SliceKind.MXM,), (_ACC, _DST, _DDIR, _COUNT),
           "Drive accumulator rows acc, acc+1, ... (mod mxm_acc_rows) as int32 vectors onto the 4-stream "
           "group at dst (ddir), one row per cycle.",
           min_values=(("count", 1),), latencies=("mxm_accread_access", "mxm_accread_drive"),
           constraints=(("the int32 group (4 streams) must fit below the last stream",
                         lambda v, cfg, X: v["dst"] + 4 <= cfg.streams),)),
)

# ---- C2C -------------------------------------------------------------------
C2C_OPCODES: tuple[Opcode, ...] = (
    Opcode("SEND", 0x60, (SliceKind.C2C,), (_STREAM, _DIR, _COUNT),
           "Send `count` vectors over this slice's link: vector k is stream `stream` (dir) passing the slice "
           "on t+c2c_send_sample+k, and its link time is t+c2c_send_sample+k*flits (isa/link.py: one frame "
           "per vector, `flits` cycles each). The send engine is busy for count*flits cycles; the queue "
           "waits while it is. Error LINK_DOWN if the link is not trained.",
           min_values=(("count", 1),), latencies=("c2c_send_sample",),
           constraints=(("count must be <= c2c_depth (the send buffer)", lambda v, cfg, X: v["count"] <= cfg.c2c_depth),)),
    Opcode("RECV", 0x61, (SliceKind.C2C,),
           (_STREAM, _DIR, Field("lat", 16, 16, doc="the link latency the schedule assumes (>= the system's)"), _COUNT),
           "Drive the next `count` vectors received over this slice's link onto stream `stream` (dir), in the "
           "order they were sent: element k takes its vector on t+c2c_recv_take+k and drives it on "
           "t+c2c_recv_drive+k. Errors: LINK_RECV if that vector's link time is not at least `lat` cycles "
           "before the take (or nothing was sent), LINK_FEC if its frame had an uncorrectable error, LINK_DOWN "
           "if the link is not trained, LINK_OVERFLOW if a vector arrived at a full receive buffer during this run "
           "(a schedule must never leave more than c2c_depth vectors waiting: sim/system.py refuses it).",
           min_values=(("count", 1), ("lat", 1)), latencies=("c2c_recv_take", "c2c_recv_drive")),
)

OPCODES = OPCODES + VXM_OPCODES + SXM_OPCODES + MXM_OPCODES + C2C_OPCODES

BY_MNEMONIC: dict[str, Opcode] = {o.mnemonic: o for o in OPCODES}
BY_CODE: dict[int, Opcode] = {o.code: o for o in OPCODES}
assert len(BY_MNEMONIC) == len(BY_CODE) == len(OPCODES)

# Which structural engine an opcode occupies after dispatch (queue waits while busy).
# VXM ALU ops occupy ALU `alu` ("alu" + its number); VSET/VLOAD use none (one register write per cycle).
ENGINE: dict[str, str] = {"READ": "read", "WRITE": "write",
                          **{a.mnemonic: "alu" for a in ALU_OPS},
                          **{o.mnemonic: "sxm" for o in SXM_OPCODES},
                          "LW": "lw", "MATMUL": "mm", "ACCREAD": "accread", "IFETCH": "fetch",
                          "SEND": "send", "RECV": "recv"}


# The TIMING entry at which an engine's first element happens, relative to issue.
ENGINE_START: dict[str, str] = {"read": "mem_read_access", "write": "mem_write_sample",
                                "alu": "vxm_sample", "sxm": "sxm_sample",
                                "lw": "mxm_sample", "mm": "mxm_sample", "accread": "mxm_accread_access",
                                "fetch": "ifetch_sample", "send": "c2c_send_sample", "recv": "c2c_recv_take"}


def sync_release(config: ChipConfig) -> int:
    """Program cycles from a chip's quiet cycle q to the first issue after a SYNC, at least: the
    fabric's length, so that a vector driven before the SYNC has left the chip before anything
    issues after it, however long the chip held (hdl/run_control.py, sim/queue.py)."""
    return config.positions


def elements(mnemonic: str, operands: dict[str, int], config: ChipConfig) -> int:
    """How many elements (engine cycles) an instruction has: `count`, except IFETCH, whose count is in
    instruction words and which takes one vector of config.fetch_words words per cycle, and SEND,
    whose engine stays busy for one frame (isa/link.py `flits` cycles) per vector."""
    count = operands.get("count", 1)
    if mnemonic == "IFETCH":
        return -(-count // config.fetch_words)
    if mnemonic == "SEND":
        from .link import LinkFormat
        return count * LinkFormat.of(config).flits
    return count


def engine_of(op: Opcode, operands: dict[str, int]) -> str | None:
    """The engine an instruction occupies: "read", "write", "alu0".."alu15", "sxm", or None."""
    e = ENGINE.get(op.mnemonic)
    return f"alu{operands['alu']}" if e == "alu" else e


class IntRules:
    """Evaluates constraint rules on Python ints (the hardware decoder has an Amaranth twin)."""
    @staticmethod
    def mux(c, a, b):
        return a if c else b

    @staticmethod
    def both(a, b):
        return bool(a) and bool(b)

    @staticmethod
    def group_fits(first, t, limit):
        """A group of 2**t streams from `first` ends at or before `limit`."""
        return first + (1 << t) <= limit

    @staticmethod
    def mul_le(a, b, limit, cap):
        """a * b <= limit, for a, b >= 0 and limit <= cap (a constant: what lets hardware multiply
        only the low bits that can matter)."""
        return a * b <= limit

    @staticmethod
    def pow2_divides(w, n):
        return w > 0 and n % w == 0


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
    if op not in slice_opcodes(kind, config):
        raise IllegalInstruction(ErrorCode.ILLEGAL_OPCODE, f"{op.mnemonic} is not implemented by config "
                                                           f"{config.name!r} (its VXM leaves it out: vxm_omit)")
    if word & op.reserved_mask:
        raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: reserved bits set ({word & op.reserved_mask:#x})")
    for name, lo in op.min_values:
        if ops[name] < lo:
            raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: {name}={ops[name]} must be >= {lo}")
    for name, hi in field_limits(op, config):
        if ops[name] >= hi:
            raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: {name}={ops[name]} must be < {hi}")
    for reason, rule in op.constraints:
        if not rule(ops, config, IntRules):
            shown = ", ".join(f"{k}={_show(k, v)}" for k, v in ops.items() if k != "count")
            detail = _operand_detail(op, reason, ops, config)
            raise IllegalInstruction(ErrorCode.BAD_FIELD, f"{op.mnemonic}: {detail or reason} ({shown})")
    return op, ops


def _operand_detail(op: Opcode, reason: str, ops: dict, config: ChipConfig) -> str | None:
    """A precise message for a failed operand rule: which register or which streams."""
    if not reason.startswith("operand ") or ":" not in reason:
        return None
    name = reason.split()[1].rstrip(":")
    x = ops[name]
    idx = x & OPERAND_INDEX
    if x & OPERAND_REG:
        if x & OPERAND_DIR:
            return f"operand {name}: a register operand has the dir bit set ({x:#04x})"
        return f"operand {name}: register R{idx} does not exist (vxm_regs {config.vxm_regs})"
    if "not a register" in reason:
        return None
    t = int(DType.I32) if op.mnemonic == "REQUANT" else ops.get("type", int(DType.I8))
    if op.mnemonic == "VLOADB":
        t = int(DType.I8)
    n = dtype_bytes(t)
    return (f"operand {name}: the int{8 * n} group at stream {idx} needs streams {idx}..{idx + n - 1}, "
            f"past the last stream ({config.streams - 1})")


def _show(name: str, value: int) -> str:
    if name in ("a", "b", "c"):
        return format_operand(value)
    return str(value)


def format_operand(x: int) -> str:
    """Operand field value as assembler text: R<n> for a register, E<n> / W<n> for a stream group."""
    idx = x & OPERAND_INDEX
    if x & OPERAND_REG:
        return f"R{idx}" if not x & OPERAND_DIR else f"{x:#x}"
    return ("W" if x & OPERAND_DIR else "E") + str(idx)


def field_limits(op: Opcode, config: ChipConfig) -> list[tuple[str, int]]:
    """Configuration-dependent upper bounds (exclusive) the hardware checks."""
    names = {f.name for f in op.fields}
    out = []
    if "stream" in names:
        out.append(("stream", config.streams))
    if "addr" in names:
        out.append(("addr", config.mem_words))
    if "acc" in names:
        out.append(("acc", config.mxm_acc_rows))
    if "row" in names:
        out.append(("row", config.lanes))
    return out


def vxm_alu_ops(config: ChipConfig) -> tuple[AluOp, ...]:
    """The ALU ops this configuration's VXM implements: every one but those in `vxm_omit` (a
    chip for a small FPGA leaves out what its compiler does not use; on it they are illegal
    opcodes; docs/DECISIONS.md "A VXM without the ops no kernel uses"). Rejects a name that is
    not an ALU op."""
    unknown = [n for n in config.vxm_omit if n not in ALU_BY_MNEMONIC]
    if unknown:
        raise ConfigError(f"config {config.name!r}: vxm_omit names {', '.join(unknown)}, not ALU ops "
                          f"(ALU ops: {', '.join(ALU_BY_MNEMONIC)})")
    return tuple(a for a in ALU_OPS if a.mnemonic not in config.vxm_omit)


@functools.lru_cache(maxsize=None)
def slice_opcodes(kind: SliceKind, config: ChipConfig) -> tuple[Opcode, ...]:
    """The opcodes a queue of `kind` implements on `config` (the others are illegal opcodes there)."""
    vxm_alu_ops(config)                 # rejects a name that is not an ALU op
    return tuple(op for op in OPCODES if kind in op.kinds and op.mnemonic not in config.vxm_omit)


def kinds_with_queues(config: ChipConfig) -> tuple[SliceKind, ...]:
    """Slice kinds that have hardware (and so a queue) in this ISA version."""
    return ((SliceKind.MEM, SliceKind.VXM) + ((SliceKind.SXM,) if config.sxm else ())
            + ((SliceKind.MXM,) if config.mxm else ())
            + ((SliceKind.C2C,) if config.c2c_links else ()))
