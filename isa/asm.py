"""Assembler and disassembler for program images (see isa/image.py).

Text format (one statement per line; ';' or '#' starts a comment)::

    .config tiny                 ; optional; must match the config assembled for
    .queue MEM_W0                ; following instructions go to this slice's queue
        READ  stream=3 dir=E addr=0x10 stride=1 count=16
        NOP   5                  ; a one-operand instruction may give it positionally
        WRITE stream=3 dir=W addr=256 count=4   ; stride and count default to 1
    .queue VXM
        VSET  r=0 imm=-7         ; register 0 = -7 in every lane
        ADD   a=E0 b=R0 dst=4 ddir=E type=I32 alu=0 count=8   ; operands: E<n>/W<n> stream groups, R<n> registers
        .word 0x0123456789abcdef ; raw instruction word, not checked
    .mem MEM_E1 addr=0x100       ; memory preload starting at this word address
        .vec 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff   ; `lanes` hex bytes, lane 0 first
    .queue MXM_W0
        IFETCH stream=2 dir=W count=6   ; refill the queue with the 6 words of the .code block below
        ...
    .code MEM_W1 addr=0x1f00     ; the queue's following instructions live in MEM_W1's SRAM from 0x1f00
        MATMUL stream=2 dir=W acc=0 count=16   ; (fetch_words per SRAM word, see isa.image.pack_words)

A queue section's instructions up to its first `.code` are what the host loads into the queue
(at most queue_depth); each `.code` block continues the same queue's instruction stream in SRAM.

Mnemonics, operand names, field order and ranges all come from isa/spec.py,
so a new opcode or field needs no change here. Slices are named as in the
config's floorplan (or given by position number). Operands are written
name=value without spaces (commas between operands are allowed). Numbers are
decimal or 0x hex, with a leading '-' for signed fields; `dir` also takes the names of
`spec.Dir` members and their initials (E, W, EAST, WEST).

Every instruction is checked with `spec.check` for the slice it is queued on,
so an assembled program only contains words the chip accepts, except those
written with `.word` (which exist to test the chip's error status).

Command line::

    python -m isa.asm FILE.s [-o FILE.bin] [--config NAME]
    python -m isa.asm --disassemble FILE.bin [-o FILE.s] [--config NAME]
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from . import image, spec
from .config import DEFAULT, PRESETS, ChipConfig, ConfigError, Slice, SliceKind, get_config
from .image import ImageError, MemSegment, Program, ProgramError

# Operands that may be omitted, and their value (only for opcodes that have the field).
DEFAULTS: dict[str, int] = {"stride": 1, "count": 1, "alu": 0}
# Fields that also accept symbolic values: the enum's member names and their initials.
SYMBOLIC: dict[str, type[IntEnum]] = {"dir": spec.Dir, "ddir": spec.Dir, "type": spec.DType, "dtype": spec.DType}
# VXM operand fields: E<n> / W<n> (stream group from stream n, eastward / westward) or R<n> (register n).
OPERAND_FIELDS = frozenset({"a", "b", "c"})
_OPERAND = re.compile(r"([EWR])([0-9]+)", re.IGNORECASE)
# Fields the disassembler prints in hex (they are addresses).
HEX_FIELDS = frozenset({"addr"})

_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_HEX_BYTE = re.compile(r"[0-9a-fA-F]{1,2}")
_MNEMONIC_WIDTH = max(len(op.mnemonic) for op in spec.OPCODES)


class AsmError(ValueError):
    """An assembly error; str() is "<source>:<line>: <reason>"."""

    def __init__(self, source: str, line: int, reason: str):
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


# --------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------
def _symbols(enum) -> dict[str, int]:
    """Accepted spellings of an enum's members: full names, plus initials when unambiguous."""
    names = {m.name: int(m.value) for m in enum}
    initials = [m.name[0] for m in enum]
    for m in enum:
        if initials.count(m.name[0]) == 1:
            names.setdefault(m.name[0], int(m.value))
    return names


def _parse_number(text: str) -> int | None:
    if not _NUMBER.fullmatch(text):
        return None
    return int(text, 0) if "x" in text.lower() else int(text, 10)


def _format_value(f: spec.Field, value: int) -> str:
    if f.name in OPERAND_FIELDS:
        return spec.format_operand(value)
    enum = SYMBOLIC.get(f.name)
    if enum is not None and value in {int(m.value) for m in enum}:
        name = enum(value).name
        return name[0] if _symbols(enum).get(name[0]) == value else name
    if f.name in HEX_FIELDS and value >= 0:
        return f"{value:#x}"
    return str(value)


# --------------------------------------------------------------------------
# disassembler
# --------------------------------------------------------------------------
def format_instruction(word: int, kind: SliceKind, config: ChipConfig) -> str:
    """One instruction as canonical text (all operands, field order); illegal words as `.word`."""
    word = int(word)
    try:
        op, operands = spec.check(word, kind, config)
    except spec.IllegalInstruction as e:
        return f".word {_format_word(word)}  ; illegal: {e.reason}"
    text = " ".join(f"{f.name}={_format_value(f, operands[f.name])}" for f in op.fields)
    return f"{op.mnemonic:<{_MNEMONIC_WIDTH}} {text}".rstrip()


def _format_word(word: int) -> str:
    return f"{word:#018x}" if word >= 0 else str(word)


def disassemble(program: Program) -> str:
    """Canonical text of a program: assemble(disassemble(p)) == p for any valid p."""
    cfg = program.config
    plan = cfg.floorplan
    lines = [f".config {cfg.name}"]
    code_rows = {(c.mem, c.addr, -(-c.words // cfg.fetch_words)) for c in program.code}
    shown = [seg for seg in program.memory if (seg.position, seg.addr, len(seg.data)) in code_rows]
    for position in sorted(set(program.queues) | {c.queue for c in program.code}):
        s = plan[position] if 0 <= position < len(plan) else None
        lines += ["", f".queue {s.name if s else position}"]
        kind = s.kind if s else SliceKind.VXM
        lines += [f"    {format_instruction(int(w), kind, cfg)}" for w in program.queues.get(position, [])]
        for c in program.code:
            if c.queue != position:
                continue
            rows = -(-c.words // cfg.fetch_words)
            if (c.mem, c.addr, rows) not in {(g.position, g.addr, len(g.data)) for g in shown}:
                lines.append(f"    ; {c.words} more words in {plan[c.mem].name} from {c.addr:#x} (see .mem)")
                continue
            lines += [f".code {plan[c.mem].name} addr={c.addr:#x}"]
            words = image.unpack_words(program._sram(c.mem, c.addr, rows), c.words, cfg)
            lines += [f"    {format_instruction(int(w), kind, cfg)}" for w in words]
    for seg in sorted(program.memory, key=lambda m: (m.position, m.addr)):
        if any(seg is g for g in shown):
            continue
        name = plan[seg.position].name if 0 <= seg.position < len(plan) else seg.position
        lines += ["", f".mem {name} addr={seg.addr:#x}"]
        lines += ["    .vec " + " ".join(f"{b:02x}" for b in row) for row in np.asarray(seg.data)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# assembler
# --------------------------------------------------------------------------
@dataclass
class _MemBlock:
    slice: Slice
    addr: int
    line: int
    rows: list[list[int]] = field(default_factory=list)


class _Assembler:
    """Line-by-line state: which queue is open, which .mem block is being filled."""

    def __init__(self, config: ChipConfig, source: str):
        self.config = config
        self.source = source
        self.plan = config.floorplan
        self.program = Program.empty(config)
        self.queue: Slice | None = None              # slice whose queue receives instructions
        self.block: _MemBlock | None = None          # open .mem block
        self.code: tuple | None = None               # open .code block: (mem slice, addr, line, words)
        self.done_blocks: list[_MemBlock] = []
        self.line = 0

    def error(self, reason: str) -> AsmError:
        return AsmError(self.source, self.line, reason)

    # ---- statements -------------------------------------------------------
    def statement(self, number: int, raw: str) -> None:
        self.line = number
        text = re.split(r"[;#]", raw, maxsplit=1)[0]
        text = text.replace(",", " ").strip()
        if not text:
            return
        head, *args = text.split()
        if head.startswith("."):
            handler = getattr(self, "directive_" + head[1:].lower(), None)
            if handler is None:
                raise self.error(f"unknown directive {head!r}; directives are "
                                 f".config, .queue, .word, .mem, .vec, .code")
            handler(args)
        else:
            self.instruction(head, args)

    def directive_config(self, args: list[str]) -> None:
        if len(args) != 1:
            raise self.error(f".config takes one config name, got {len(args)} arguments")
        if args[0] != self.config.name:
            raise self.error(f".config {args[0]} does not match the config being assembled for "
                             f"({self.config.name!r})")

    def directive_queue(self, args: list[str]) -> None:
        if len(args) != 1:
            raise self.error(f".queue takes one slice name or position, got {len(args)} arguments")
        self.close_block()
        self.close_code()
        s = self.slice(args[0])
        with_queue = spec.kinds_with_queues(self.config)
        if s.kind not in with_queue:
            names = ", ".join(x.name for x in self.plan if x.kind in with_queue)
            raise self.error(f"{s.name} (position {s.position}): {s.kind.value} slices have no instruction "
                             f"queue in ISA {spec.ISA_VERSION[0]}.{spec.ISA_VERSION[1]}; "
                             f"slices with queues are {names}")
        self.queue = s
        self.program.queues.setdefault(s.position, [])

    def directive_word(self, args: list[str]) -> None:
        if len(args) != 1:
            raise self.error(f".word takes one value, got {len(args)}")
        value = _parse_number(args[0])
        if value is None:
            raise self.error(f"bad number {args[0]!r} for .word")
        if not 0 <= value < 1 << spec.WORD_BITS:
            raise self.error(f".word value {args[0]} out of range [0, {(1 << spec.WORD_BITS) - 1:#x}]")
        self.append(value, ".word")

    def directive_mem(self, args: list[str]) -> None:
        if not args:
            raise self.error(".mem needs a MEM slice and addr=ADDRESS")
        self.close_block()
        self.close_code()
        self.queue = None
        s = self.slice(args[0])
        if s.kind != SliceKind.MEM:
            names = ", ".join(x.name for x in self.plan if x.kind == SliceKind.MEM)
            raise self.error(f"not a MEM slice: {s.name} (position {s.position}) is a {s.kind.value} slice; "
                             f"MEM slices are {names}")
        addr_field = spec.Field("addr", 0, self.config.mem_addr_bits)
        operands = self.operands(".mem", (addr_field,), args[1:], positional=False)
        if "addr" not in operands:
            raise self.error("missing operand addr for .mem")
        addr = operands["addr"]
        if not 0 <= addr < self.config.mem_words:
            raise self.error(f".mem operand addr={addr} out of range [0, {self.config.mem_words - 1}] "
                             f"(mem_words {self.config.mem_words})")
        self.block = _MemBlock(s, addr, self.line)

    def directive_vec(self, args: list[str]) -> None:
        b = self.block
        if b is None:
            raise self.error(".vec outside a .mem block (write .mem SLICE addr=ADDRESS first)")
        lanes = self.config.lanes
        if len(args) != lanes:
            raise self.error(f".vec needs exactly {lanes} hex bytes (lanes of config {self.config.name}), "
                             f"got {len(args)}")
        for a in args:
            if not _HEX_BYTE.fullmatch(a):
                raise self.error(f"bad .vec byte {a!r} (expected one or two hex digits)")
        word_addr = b.addr + len(b.rows)
        if word_addr >= self.config.mem_words:
            raise self.error(f".vec at word address {word_addr:#x} is past the end of {b.slice.name} "
                             f"(mem_words {self.config.mem_words}, .mem block at line {b.line})")
        for other in self.done_blocks:
            if other.slice == b.slice and other.addr <= word_addr < other.addr + len(other.rows):
                raise self.error(f"word {word_addr:#x} of {b.slice.name} is already initialised by the "
                                 f".mem block at line {other.line}")
        b.rows.append([int(a, 16) for a in args])

    def instruction(self, mnemonic: str, args: list[str]) -> None:
        op = spec.BY_MNEMONIC.get(mnemonic.upper())
        if op is None:
            raise self.error(f"unknown mnemonic {mnemonic!r}; mnemonics are "
                             f"{', '.join(o.mnemonic for o in spec.OPCODES)}")
        self.require_queue(op.mnemonic)
        values = self.operands(op.mnemonic, op.fields, args, positional=len(op.fields) == 1)
        for f in op.fields:
            if f.name not in values:
                if f.name not in DEFAULTS:
                    raise self.error(f"{op.mnemonic}: missing operand {f.name}; operands are "
                                     f"{', '.join(x.name for x in op.fields)}")
                values[f.name] = DEFAULTS[f.name]
        word = spec.encode(op.mnemonic, **values)
        try:
            spec.check(word, self.queue.kind, self.config)
        except spec.IllegalInstruction as e:
            raise self.error(f"illegal on {self.queue.name} ({self.queue.kind.value}, config "
                             f"{self.config.name}): {e.reason}") from None
        self.append(word, op.mnemonic)

    # ---- helpers ----------------------------------------------------------
    def operands(self, what: str, fields, args: list[str], positional: bool) -> dict[str, int]:
        """Parse name=value operands (or the single positional one) against spec fields."""
        by_name = {f.name: f for f in fields}
        values: dict[str, int] = {}
        for arg in args:
            if "=" in arg:
                name, text = arg.split("=", 1)
                name = name.lower()
                if not name:
                    raise self.error(f"{what}: operand {arg!r} has no name (write name=value, no spaces)")
                if name not in by_name:
                    raise self.error(f"{what}: unknown operand {name!r}; operands are "
                                     f"{', '.join(by_name)}")
            elif positional:
                name, text = fields[0].name, arg
            else:
                raise self.error(f"{what}: operand {arg!r} must be written name=value "
                                 f"({', '.join(by_name)})")
            if name in values:
                raise self.error(f"{what}: duplicate operand {name}")
            if not text:
                raise self.error(f"{what}: operand {name} has no value")
            values[name] = self.value(what, by_name[name], text)
        return values

    def value(self, what: str, f: spec.Field, text: str) -> int:
        if f.name in OPERAND_FIELDS:
            match = _OPERAND.fullmatch(text)
            if match is None:
                raise self.error(f"{what}: bad operand {f.name}={text} (expected E<n> or W<n> for the stream "
                                 f"group starting at stream n, or R<n> for register n)")
            letter, n = match.group(1).upper(), int(match.group(2))
            if n > spec.OPERAND_INDEX:
                raise self.error(f"{what}: operand {f.name}={text}: index out of range [0, {spec.OPERAND_INDEX}]")
            return spec.operand(n, spec.Dir.WEST if letter == "W" else spec.Dir.EAST, reg=letter == "R")
        enum = SYMBOLIC.get(f.name)
        if enum is not None and text.upper() in _symbols(enum):
            return _symbols(enum)[text.upper()]
        v = _parse_number(text)
        if v is None:
            expected = "a decimal or 0x hex number"
            if enum is not None:
                expected = f"{', '.join(_symbols(enum))} or a number"
            raise self.error(f"{what}: bad value {text!r} for operand {f.name} (expected {expected})")
        lo, hi = f.range()
        if not lo <= v <= hi:
            raise self.error(f"{what}: operand {f.name}={text} out of range [{lo}, {hi}]")
        return v

    def slice(self, token: str) -> Slice:
        if token.isdigit():
            position = int(token)
            if position < len(self.plan):
                return self.plan[position]
            raise self.error(f"no slice at position {position}; config {self.config.name} has positions "
                             f"0..{len(self.plan) - 1}")
        for s in self.plan:
            if s.name == token.upper():
                return s
        raise self.error(f"unknown slice {token!r}; slices are {', '.join(s.name for s in self.plan)}")

    def require_queue(self, what: str) -> None:
        if self.queue is not None:
            return
        if self.block is not None:
            raise self.error(f"{what} inside the .mem block of line {self.block.line}; "
                             f"write .queue SLICE first")
        raise self.error(f"{what} before any .queue")

    def directive_code(self, args: list[str]) -> None:
        if self.queue is None:
            raise self.error(".code outside a queue (write .queue SLICE first: .code continues its stream in SRAM)")
        if len(args) != 2:
            raise self.error(".code needs a MEM slice and addr=ADDRESS")
        self.close_code()
        s = self.slice(args[0])
        if s.kind != SliceKind.MEM:
            raise self.error(f".code: {s.name} is not a MEM slice")
        operands = self.operands(".code", (spec.Field("addr", 0, self.config.mem_addr_bits),), args[1:],
                                 positional=False)
        if "addr" not in operands:
            raise self.error("missing operand addr for .code")
        self.code = (s, operands["addr"], self.line, [])

    def close_code(self) -> None:
        if self.code is None:
            return
        s, addr, line, words = self.code
        self.code = None
        if not words:
            self.line = line
            raise self.error(f".code block for {s.name} has no instructions")
        rows = -(-len(words) // self.config.fetch_words)
        if addr + rows > self.config.mem_words:
            self.line = line
            raise self.error(f".code block: {len(words)} words need SRAM words {addr}..{addr + rows - 1}, "
                             f"past mem_words {self.config.mem_words}")
        self.program.add_code(self.queue.position, s.position, addr, words)

    def append(self, word: int, what: str) -> None:
        self.require_queue(what)
        if self.code is not None:
            self.code[3].append(word)
            return
        q = self.program.queues[self.queue.position]
        if len(q) >= self.config.queue_depth:
            raise self.error(f"queue {self.queue.name} is full (queue_depth {self.config.queue_depth})")
        q.append(word)

    def close_block(self) -> None:
        b = self.block
        if b is None:
            return
        self.block = None
        if not b.rows:
            self.line = b.line
            raise self.error(f".mem block for {b.slice.name} has no .vec lines")
        self.done_blocks.append(b)
        self.program.memory.append(MemSegment(b.slice.position, b.addr, np.array(b.rows, dtype=np.uint8)))


def _config_for(lines: list[str], config, source: str) -> ChipConfig:
    """The config to assemble for: the argument, else the first .config line, else the default."""
    if isinstance(config, ChipConfig):
        return config
    if isinstance(config, str):
        return get_config(config)
    for number, raw in enumerate(lines, 1):
        words = re.split(r"[;#]", raw, maxsplit=1)[0].split()
        if words and words[0].lower() == ".config" and len(words) == 2:
            if words[1] not in PRESETS:
                raise AsmError(source, number, f"unknown config {words[1]!r}; presets are {', '.join(PRESETS)}")
            return PRESETS[words[1]]
    return PRESETS[DEFAULT]


def assemble(text: str, config: ChipConfig | str | None = None, source: str = "<asm>") -> Program:
    """Assemble program text. config=None takes the file's .config line, else the default preset."""
    lines = text.splitlines()
    asm = _Assembler(_config_for(lines, config, source), source)
    for number, raw in enumerate(lines, 1):
        asm.statement(number, raw)
    asm.close_block()
    asm.close_code()
    try:
        asm.program.validate()
    except ProgramError as e:       # every rule is checked per line above; this is a safety net
        raise AsmError(source, len(lines), str(e)) from None
    return asm.program


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m isa.asm",
                                     description="Assemble a program to an image, or disassemble an image.")
    parser.add_argument("input", help="assembly source (.s), or an image with --disassemble")
    parser.add_argument("-o", "--output", help="output file (default: FILE.bin; stdout with --disassemble)")
    parser.add_argument("-d", "--disassemble", action="store_true", help="disassemble an image")
    parser.add_argument("--config", help=f"chip config ({', '.join(PRESETS)}); default: the .config line "
                                         f"or {DEFAULT!r}")
    args = parser.parse_args(argv)
    try:
        config = get_config(args.config) if args.config else None
        if args.disassemble:
            try:
                text = disassemble(image.load(args.input, config))
            except ImageError as e:
                raise ImageError(f"{args.input}: {e}") from None
            if args.output:
                Path(args.output).write_text(text)
            else:
                sys.stdout.write(text)
        else:
            try:
                source = Path(args.input).read_text()
            except UnicodeDecodeError:
                print(f"error: {args.input}: not a text file (to disassemble an image use --disassemble)",
                      file=sys.stderr)
                return 1
            output = Path(args.output or Path(args.input).with_suffix(".bin"))
            if output.resolve() == Path(args.input).resolve():
                print(f"error: {args.input}: output would overwrite the source; pass -o", file=sys.stderr)
                return 1
            image.save(assemble(source, config, source=args.input), output)
    except (AsmError, ImageError, ProgramError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
