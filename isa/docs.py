"""Generate docs/ISA.md from the data in isa/ (the one source of truth).

    python -m isa.docs            write docs/ISA.md
    python -m isa.docs --check    exit 1 if the committed docs/ISA.md is not what would be generated

Every number and name in the generated tables is read from isa/config.py,
isa/spec.py, isa/ecc.py, isa/hostmap.py, isa/image.py and isa/asm.py. The
only hand-written text here is prose that states rules, never values: when a
value changes in the spec, regenerate; `--check` (run by the test suite) fails
until someone does.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import re
import sys
from pathlib import Path

from . import asm, hostmap, image, spec
from .config import DEFAULT, PRESETS, ChipConfig, SliceKind
from .ecc import code_for

ROOT = Path(__file__).resolve().parent.parent
DOC_PATH = ROOT / "docs" / "ISA.md"
COMMAND = "python -m isa.docs"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _cell(value) -> str:
    """Text for one markdown table cell (pipes escaped, no newlines)."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |",
           "| " + " | ".join("---" for _ in header) + " |"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _bits(msb: int, lsb: int) -> str:
    return f"[{msb}]" if msb == lsb else f"[{msb}:{lsb}]"


def _version(v: tuple[int, int]) -> str:
    return f"{v[0]}.{v[1]}"


def _source_comments(obj) -> dict[str, str]:
    """`NAME = ...  # comment` / `name: type  # comment` lines of a class body, by name.

    The enum members and config fields document themselves with trailing
    comments; reading them here keeps that text in one place.
    """
    out = {}
    for line in inspect.getsource(obj).splitlines():
        mo = re.match(r"\s*(\w+)\s*(?::[^=#]*)?(?:=[^#]*)?#\s*(.*\S)\s*$", line)
        if mo:
            out[mo.group(1)] = mo.group(2)
    return out


def _isa_version() -> str:
    return _version(spec.ISA_VERSION)


def _queue_kinds() -> tuple[SliceKind, ...]:
    """Slice kinds with an instruction queue in some preset (a preset without links has no C2C
    slices, and so no C2C queue, but the kind still has one)."""
    kinds = []
    for cfg in [PRESETS[DEFAULT]] + list(PRESETS.values()):
        kinds += [k for k in spec.kinds_with_queues(cfg) if k not in kinds]
    return tuple(kinds)


_DERIVED_INTS = ("positions", "word_bits", "mem_addr_bits", "sram_bytes")


def _config_symbol(op: spec.Opcode, name: str) -> str:
    """Describe the configuration-dependent bound spec.field_limits puts on one field.

    The bound is matched against every integer config quantity over all
    presets; if exactly one agrees everywhere it is named, else the per-preset
    values are listed.
    """
    bounds = {p: dict(spec.field_limits(op, cfg))[name] for p, cfg in PRESETS.items()}
    ints = [f.name for f in dataclasses.fields(ChipConfig) if f.type in ("int", int)] + list(_DERIVED_INTS)
    matches = [a for a in ints if all(getattr(PRESETS[p], a) == b for p, b in bounds.items())]
    values = ", ".join(f"{p}: {b}" for p, b in bounds.items())
    if len(matches) == 1:
        return f"`{name}` < config `{matches[0]}` ({values})"
    return f"`{name}` < a configuration-dependent bound ({values})"


def _limited_fields(op: spec.Opcode) -> list[str]:
    names: list[str] = []
    for cfg in PRESETS.values():
        for n, _ in spec.field_limits(op, cfg):
            if n not in names:
                names.append(n)
    return names


def _layout(op: spec.Opcode) -> list[tuple[int, int, str]]:
    """(msb, lsb, name) from the top bit down, reserved gaps included."""
    fields = sorted((spec.OPCODE_FIELD,) + op.fields, key=lambda f: f.lsb)
    segs, bit = [], 0
    for f in fields:
        if f.lsb > bit:
            segs.append((f.lsb - 1, bit, "reserved (0)"))
        segs.append((f.msb, f.lsb, f.name))
        bit = f.msb + 1
    if bit < spec.WORD_BITS:
        segs.append((spec.WORD_BITS - 1, bit, "reserved (0)"))
    return sorted(segs, reverse=True)


def _asm_syntax(op: spec.Opcode) -> str:
    parts = [op.mnemonic]
    if len(op.fields) == 1:
        parts.append(op.fields[0].name.upper())
    else:
        for f in op.fields:
            if f.name in asm.DEFAULTS:
                parts.append(f"[{f.name}={asm.DEFAULTS[f.name]}]")
            else:
                parts.append(f"{f.name}={f.name.upper()}")
    return " ".join(parts)


def _compress(names: list[str]) -> str:
    """Slice names with long numbered runs shortened: MEM_W43 … MEM_W0 (44)."""
    def split(n):
        mo = re.fullmatch(r"(.*?)(\d+)", n)
        return (mo.group(1), int(mo.group(2))) if mo else (n, None)

    out, i = [], 0
    while i < len(names):
        prefix, num = split(names[i])
        j = i + 1
        if num is not None:
            step = None
            while j < len(names):
                p, n = split(names[j])
                d = None if n is None else n - split(names[j - 1])[1]
                if p != prefix or d not in (1, -1) or (step is not None and d != step):
                    break
                step, j = d, j + 1
        if j - i >= 4:
            out.append(f"{names[i]} … {names[j - 1]} ({j - i})")
        else:
            j = i + 1
            out.append(names[i])
        i = j
    return ", ".join(out)


def _kib(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n} B ({n // size} {unit})"
    return f"{n} B"


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------
def _intro() -> list[str]:
    kinds = ", ".join(k.value for k in _queue_kinds())
    return [
        "# Instruction set reference",
        "",
        f"<!-- Generated by `{COMMAND}` from isa/. Do not edit by hand: change the Python data and "
        f"regenerate; `{COMMAND} --check` (run by the tests) fails while this file is stale. -->",
        "",
        "This is the reference for the instruction set, its timing, the error codes, the SRAM "
        "ECC layout, the host register map and the configuration presets. Every table below is "
        "generated from the Python data in `isa/` (`isa/spec.py`, `isa/config.py`, `isa/ecc.py`, "
        "`isa/hostmap.py`), the same data from which the RTL decoders, the golden model and the "
        "assembler are built, so it cannot disagree with them. For how the machine works and why, "
        "read docs/ARCHITECTURE.md and docs/DECISIONS.md.",
        "",
        f"- ISA version: **{_isa_version()}** (reported in the `ID` register and stored in every "
        f"program image).",
        f"- Program image format: {_version(image.FORMAT_VERSION)} (see `isa/image.py`).",
        f"- Slice kinds with an instruction queue in ISA {_isa_version()}: {kinds}. The other "
        f"positions of the floorplan exist in the stream fabric and pass streams through.",
        "",
    ]


def _word_layout() -> list[str]:
    of = spec.OPCODE_FIELD
    codes = ", ".join(f"`0x{o.code:02x}` {o.mnemonic}" for o in spec.OPCODES)
    lines = [
        "## Instruction word",
        "",
        f"An instruction is one {spec.WORD_BITS}-bit word. The opcode is bits "
        f"{_bits(of.msb, of.lsb)} ({of.width} bits); the operand fields depend on the opcode. "
        f"Bits that no field of the opcode uses are reserved and must be zero. Defined opcodes: "
        f"{codes}; every other value is illegal"
        + (", including `0x00`, so zeroed queue memory never decodes as an instruction." if 0 not in spec.BY_CODE
           else ".") ,
        "",
        "Layout of every opcode, most significant bits first:",
        "",
    ]
    rows = []
    for op in spec.OPCODES:
        rows.append([op.mnemonic, " \u2502 ".join(f"{_bits(msb, lsb)} {name}" for msb, lsb, name in _layout(op))])
    lines += _table(["opcode", "fields"], rows)
    lines += ["",
              "Signed fields are two's complement. Operands are shared where two opcodes use the same "
              "field name: the field then has the same bits in both.", ""]
    return lines


def _legality() -> list[str]:
    E = spec.ErrorCode
    return [
        "## Legality",
        "",
        "A queue checks the instruction at its head on the cycle it would issue, in this order "
        "(`isa.spec.check`, and the RTL decoder generated from the same data):",
        "",
        f"1. the opcode is defined and accepted by this slice kind, and implemented by the configuration (a VXM "
        f"may leave ALU ops out: `vxm_omit`), else `{E.ILLEGAL_OPCODE.name}`;",
        f"2. reserved bits are zero, else `{E.BAD_FIELD.name}`;",
        f"3. every operand meets its minimum and its configuration-dependent bound (listed per "
        f"opcode below), else `{E.BAD_FIELD.name}`;",
        f"4. the opcode's own rules hold (types allowed for the op, stream groups that end at or before "
        f"the last stream, register and ALU numbers that exist; listed per opcode), else `{E.BAD_FIELD.name}`.",
        "",
        "An illegal instruction stops the chip at the end of the cycle on which it would issue "
        "(see Error codes). Legal words behind it in the queue and illegal words never reached are "
        "never looked at.",
        "",
    ]


def _opcodes() -> list[str]:
    lines = ["## Instructions", ""]
    queue_kinds = _queue_kinds()
    for op in spec.OPCODES:
        kinds = ", ".join(k.value for k in op.kinds)
        with_q = [k.value for k in op.kinds if k in queue_kinds]
        lines += [f"### {op.mnemonic}", ""]
        lines += _table(["mnemonic", "code", "slice kinds", "engine", "reserved-bit mask"],
                        [[op.mnemonic, f"0x{op.code:02x}",
                          kinds + (f" (with a queue in ISA {_isa_version()}: {', '.join(with_q)})"
                                   if len(with_q) != len(op.kinds) else ""),
                          {"alu": "ALU number `alu`", None: "none (handled by the queue)"}.get(
                              spec.ENGINE.get(op.mnemonic), spec.ENGINE.get(op.mnemonic)),
                          f"0x{op.reserved_mask:016x}"]])
        lines += ["", op.doc, "", f"Assembler: `{_asm_syntax(op)}`", ""]
        rows = []
        for f in op.fields:
            lo, hi = f.range()
            symbols = asm.SYMBOLIC.get(f.name)
            extra = ""
            if symbols is not None:
                extra = "; assembler names: " + ", ".join(asm._symbols(symbols))
            rows.append([f"`{f.name}`", _bits(f.msb, f.lsb), f.width, "signed" if f.signed else "unsigned",
                         f"{lo} .. {hi}", f.doc + extra])
        lines += _table(["field", "bits", "width", "signedness", "encodable", "meaning"], rows)
        lines += [""]
        cons = [f"`{n}` >= {lo}" for n, lo in op.min_values]
        cons += [_config_symbol(op, n) for n in _limited_fields(op)]
        if op.reserved_mask:
            cons.append("reserved bits zero")
        cons += [reason for reason, _ in op.constraints]
        lines += ["Constraints (else `BAD_FIELD`): " + ("; ".join(cons) if cons else "none") + ".", ""]
        if op.latencies:
            lines += ["Latencies (cycles after issue; see Timing):", ""]
            lines += _table(["name", "cycles", "meaning"],
                            [[f"`{k}`", spec.TIMING[k], spec.TIMING_DOC[k]] for k in op.latencies])
            lines += [""]
        else:
            lines += ["Latencies: none beyond the queue's own timing (below).", ""]
    return lines


def _vxm_sxm() -> list[str]:
    types = ", ".join(f"{t.name} = {int(t)} ({spec.dtype_bytes(t)} stream{'s' if spec.dtype_bytes(t) > 1 else ''})"
                      for t in spec.DType)
    lines = [
        "## Vector (VXM) and switch (SXM) slices",
        "",
        f"**Types and stream groups.** {types}. A value of a wider type occupies a *stream group*: "
        "adjacent streams base, base+1, ... in one direction, stream base+j carrying byte j of every lane "
        "(little-endian byte planes). A group must end at or before the last stream.",
        "",
        "**Operands** (`a`, `b`, `c`; 8 bits): bits [5:0] index, bit 6 direction, bit 7 register flag. "
        "A stream operand is the group of the operand type starting at stream `index` in that direction, "
        "as it passes the VXM on the sample cycle. A register operand (`R<n>`, dir bit 0) is register n: "
        "every register holds one int32 per lane; read as int8/int16 it is truncated to its low bytes. "
        "`VSET` gives a broadcast scalar (the immediate form of every op), `VLOAD` per-lane values "
        "(per-channel parameters). Registers are zero at START. Assembler: `E<n>`, `W<n>`, `R<n>`.",
        "",
        "**ALUs.** Every lane has `vxm_alus` ALUs; each is an engine, so up to `vxm_alus` instructions "
        "(issued on consecutive cycles) run at once, each producing one result vector per cycle. All ALU "
        "opcodes have the same latency (`vxm_sample`, `vxm_drive`), so results never overtake each other. "
        "If two ALUs drive the same stream on the same cycle, the higher-numbered ALU's value is the one "
        "driven (a schedule that does this is a compiler bug; the hardware result is still defined).",
        "",
        "Element semantics (two's complement; *wrapping* keeps the low bits of the exact result; masks "
        "are all ones for true and 0 for false, in the operand type):",
        "",
    ]
    rules = {"same": "type", "wider": "dtype > type", "any": "any dtype", "narrow": "int32 -> int8/int16"}
    lines += _table(["opcode", "operands", "types", "result"],
                    [[a.mnemonic, ", ".join(a.operands), rules[a.dtype], a.formula] for a in spec.ALU_OPS])
    lines += [
        "",
        "**Requantization rounding.** `REQUANT` computes, per lane, with x = a, M = b (int32), "
        "s = c[4:0], zp = c[31:16] read signed: `y = floor((x*M + 2**(30+s)) / 2**(31+s))` (round half "
        "toward +infinity; exact in 64-bit arithmetic), then `saturate_dtype(y + zp)`. With M in "
        "[2**30, 2**31) from `isa.quant.quantize_multiplier(scale)` the represented scale M / 2**(31+s) "
        "is within 2**-31 relative error of the real scale (round to nearest on a 31-bit mantissa). "
        "Per tensor: `VSET` M and `s | zp << 16` into registers; per channel: `VLOAD` them per lane.",
        "",
        "**SXM.** One per hemisphere (none where the configuration's `sxm` is 0). An SXM op moves `width` streams (1..`sxm_width`) at once, applying "
        "the same lane movement to each; the lane map for `PERMUTE` (one unsigned int16 per lane, "
        "identity at START) is loaded by `SETMAP` from a 2-stream group. Map entries >= lanes give 0.",
        "",
    ]
    return lines


def _timing() -> list[str]:
    T = spec.TIMING
    missing = set(T) ^ set(spec.TIMING_DOC)
    if missing:
        raise RuntimeError(f"TIMING and TIMING_DOC disagree on {sorted(missing)}")
    lines = ["## Timing", "",
             "Every latency of the machine. Cycle 0 is the first cycle after START; an instruction "
             "\"issued on t\" left its queue on cycle t.", ""]
    lines += _table(["name", "cycles", "meaning"], [[f"`{k}`", v, spec.TIMING_DOC[k]] for k, v in T.items()])
    lines += ["",
              "This is the base table (`isa.spec.TIMING`). A configuration may override entries of it "
              "(`ChipConfig.latency`: an implementation with more pipeline registers, such as an FPGA, is "
              "the same ISA with longer latencies); the compiler, the golden model, the stimuli and the RTL "
              "units all read `spec.timing(config)`, the table with the configuration's overrides applied, "
              "and the image fingerprint covers them. Overrides per preset:", ""]
    lines += _table(["preset", "latency overrides"], [[c.name, _latency_text(c)] for c in PRESETS.values()])
    lines += [
        "",
        "Queue timing: every non-empty queue issues its first instruction on cycle 0. The next "
        "instruction issues on the cycle after, except that `NOP cycles=n` makes the next one issue "
        "n cycles after the NOP, and an instruction whose engine is still busy waits (below). A "
        "queue is in order: a waiting instruction holds back everything behind it.",
        "",
        "Engines: an opcode with an engine (see each opcode) dispatches to that engine of its slice "
        "and occupies it for `count` consecutive cycles. An instruction that needs an engine issues "
        "once the engine has no element left after the current cycle, so back-to-back transfers "
        "on one engine leave no gap; different engines of one slice run at the same time.",
        "",
    ]
    return lines


def _latency_text(cfg: ChipConfig) -> str:
    """A configuration's overrides of TIMING, each with its base value; "none" without any."""
    t = spec.timing(cfg)
    return ", ".join(f"`{k}` {t[k]} (base {spec.TIMING[k]})" for k, _ in cfg.latency) or "none"


def _streams() -> list[str]:
    T = spec.TIMING
    hop = T["stream_hop"]
    gap = T["mem_read_drive"] - T["mem_write_sample"]
    E, W = spec.Dir.EAST, spec.Dir.WEST
    return [
        "## Stream visibility rule",
        "",
        f"`V(p, t)` is the value of one stream passing position p on cycle t. Positions are "
        f"numbered from 0 at the west edge. Directions: `dir` {int(E)} = {E.name.lower()}ward, "
        f"{int(W)} = {W.name.lower()}ward.",
        "",
        f"- A slice at p that drives an eastward stream on cycle t makes the value visible at p+1 "
        f"on cycle t+`stream_hop` (= t+{hop}); westward, at p-1.",
        f"- A position that nobody drives passes the value on unchanged: "
        f"`V(p+1, t+{hop}) = V(p, t)` eastward, `V(p-1, t+{hop}) = V(p, t)` westward. "
        f"A drive replaces the value arriving from upstream.",
        "- Values leaving the last position are the chip's edge outputs (`east_out`, `west_out`); "
        "the stream inputs at the edges are zero.",
        "",
        "Putting the rule together with the MEM latencies: a READ issued on t_r at position p_r "
        "puts element k on the stream at p_r + d (d >= 1 hops downstream) on cycle",
        "",
        f"    t_r + mem_read_drive + d*stream_hop + k  =  t_r + {T['mem_read_drive']} + {hop}*d + k",
        "",
        "and a WRITE at that position catches element 0 when it issues on",
        "",
        f"    t_w = t_r + mem_read_drive + d*stream_hop - mem_write_sample  =  t_r + {hop}*d + {gap}",
        "",
    ]


def _errors() -> list[str]:
    comments = _source_comments(spec.ErrorCode)
    lines = ["## Error codes", "", inspect.cleandoc(spec.ErrorCode.__doc__ or ""), "",
             "`ERROR_INFO` holds the code, the slice position and the queue index (pc) of the failing "
             "instruction (layout in the register map). When several queues fail on the same cycle, "
             "the westmost (lowest position) is reported. Everything scheduled for the failing cycle "
             "still happens; nothing issues, reads, writes or drives after it, and `CYCLES` is the "
             "failing cycle + 1.", ""]
    lines += _table(["code", "name", "meaning"],
                    [[int(e), f"`{e.name}`", comments.get(e.name) or ("no error" if int(e) == 0 else "")]
                     for e in spec.ErrorCode])
    return lines + [""]


def _ecc() -> list[str]:
    lines = [
        "## SECDED ECC",
        "",
        "Each stored SRAM word is the data (D = `lanes` * 8 bits), r Hamming check bits and one "
        "overall parity bit: `stored = data | check << D | parity << (D + r)`. Data bit i sits at "
        "Hamming position `positions[i]`, the i-th integer >= 3 that is not a power of two; check "
        "bit j covers every data bit whose position has bit j set; the parity bit covers data and "
        "check bits. The host sees the ECC bits as `M_ECC = check | parity << r`.",
        "",
        "Decoding (the same in RTL, golden model and host driver):",
        "",
    ]
    lines += _table(["syndrome", "overall parity", "result"], [
        ["0", "even", "no error"],
        ["any", "odd", "single error: flip the bit the syndrome names (0 = parity bit, 2^j = check bit j, "
                       "else a data bit); counted in `ECC_CORRECTED`. A syndrome that names no bit is "
                       "uncorrectable"],
        ["nonzero", "even", "double error: uncorrectable, data passed on unchanged; counted in "
                            "`ECC_UNCORRECTABLE`, sticky STATUS bit set"],
    ])
    lines += ["", "Per preset:", ""]
    rows = []
    for cfg in PRESETS.values():
        c = code_for(cfg.word_bits)
        D, r = c.data_bits, c.check_bits
        rows.append([cfg.name, cfg.lanes, D, r, 1, c.stored_bits, c.word_bits,
                     f"data {_bits(D - 1, 0)}, check {_bits(D + r - 1, D)}, parity {_bits(D + r, D + r)}"])
    lines += _table(["preset", "lanes", "data bits", "check bits", "parity bits", "ECC bits stored",
                     "stored word bits", "stored word layout"], rows)
    return lines + [""]


def _hostmap() -> list[str]:
    lines = [
        "## Host register map",
        "",
        f"AXI4-Lite, {hostmap.DATA_BITS}-bit registers at byte offsets. Access: R = read, W = write, "
        "RW = both. Write-only and unmapped offsets read as 0; writes to read-only registers are "
        "ignored. Command bits act when written as 1 and are not stored.",
        "",
    ]
    rows = [[f"0x{r.offset:02X}", f"`{r.name}`", r.access, r.doc] for r in hostmap.REGISTERS]
    lines += _table(["offset", "name", "access", "description"], rows)
    consts = [(n, v) for n, v in vars(hostmap).items()
              if re.fullmatch(r"(CTRL|STATUS|MCMD)_[A-Z_]+", n) and isinstance(v, int)]
    lines += ["", "Bit constants (`isa/hostmap.py`):", ""]
    lines += _table(["constant", "value", "bit"], [[f"`{n}`", f"0x{v:X}", v.bit_length() - 1] for n, v in consts])
    lines += ["", f"`ID` reads `0x{hostmap.ID_MAGIC:08X}` | major << 4 | minor "
                  f"(`0x{hostmap.ID_MAGIC | spec.ISA_VERSION[0] << 4 | spec.ISA_VERSION[1]:08X}` "
                  f"for ISA {_isa_version()}).", "", "M_DATA window and AXI address width per preset:", ""]
    rows = []
    for cfg in PRESETS.values():
        n = hostmap.data_regs(cfg)
        first, last = hostmap.addr("M_DATA"), hostmap.addr("M_DATA", n - 1)
        rows.append([cfg.name, n, f"0x{first:X} .. 0x{last:X}", hostmap.addr_bits(cfg)])
    lines += _table(["preset", "M_DATA registers", "M_DATA offsets", "AXI address bits"], rows)
    return lines + [""]


def _presets() -> list[str]:
    comments = _source_comments(ChipConfig)
    cfgs = list(PRESETS.values())
    lines = ["## Configuration presets", "",
             f"A configuration is one `ChipConfig` (isa/config.py); these are the named presets "
             f"(default: `{DEFAULT}`). Derived rows are computed from the fields.", ""]
    rows = []
    for f in dataclasses.fields(ChipConfig):
        meaning = comments.get(f.name, "")
        if f.name == "name":
            meaning = "preset name (`--config`)"
        elif not f.compare:
            meaning = "free text; not part of the configuration's identity (image fingerprint)"
        cell = {"latency": _latency_text,
                "vxm_omit": lambda c: ", ".join(c.vxm_omit) or "none"}.get(f.name, lambda c, n=f.name: getattr(c, n))
        rows.append([f"`{f.name}`", meaning] + [cell(c) for c in cfgs])
    derived = [
        ("positions", "stream positions (slices west to east)", lambda c: c.positions),
        ("word_bits", "bits per stream vector / SRAM data word", lambda c: c.word_bits),
        ("mem_addr_bits", "SRAM address bits (addresses wrap modulo mem_words)", lambda c: c.mem_addr_bits),
        ("sram_bytes", "total SRAM data bytes (both hemispheres)", lambda c: _kib(c.sram_bytes)),
        ("stored word bits", "SRAM word including ECC", lambda c: code_for(c.word_bits).word_bits),
        ("MEM slices", "MEM slices in total", lambda c: len(c.slices_of(SliceKind.MEM))),
    ]
    rows += [[f"{name} (derived)", meaning] + [fn(c) for c in cfgs] for name, meaning, fn in derived]
    lines += _table(["parameter", "meaning"] + [c.name for c in cfgs], rows)
    lines += ["", "### Floorplans", "",
              "Position 0 is the westmost slice. Long numbered runs are shortened as `first … last (count)`.",
              ""]
    for c in cfgs:
        lines += [f"- `{c.name}` ({c.positions} positions): " + _compress([s.name for s in c.floorplan])]
    return lines + [""]


def generate() -> str:
    """The full text of docs/ISA.md."""
    parts = [_intro(), _word_layout(), _legality(), _opcodes(), _vxm_sxm(), _timing(), _streams(), _errors(),
             _ecc(), _hostmap(), _presets()]
    text = "\n".join(line.rstrip() for part in parts for line in part)
    return text.rstrip("\n") + "\n"


def write(path: Path = DOC_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(generate())
    return path


def check(path: Path = DOC_PATH) -> str | None:
    """None if `path` holds exactly what would be generated, else a message saying how it differs."""
    path = Path(path)
    want = generate()
    if not path.exists():
        return f"{path} does not exist; run `{COMMAND}` to generate it"
    have = path.read_text()
    if have == want:
        return None
    diff = list(difflib.unified_diff(have.splitlines(), want.splitlines(), f"{path} (committed)",
                                     f"{path} (generated)", lineterm="", n=1))
    shown = "\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else "")
    return f"{path} is out of date with isa/; run `{COMMAND}` and commit the result\n{shown}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description="Generate docs/ISA.md from the data in isa/.")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be generated")
    ap.add_argument("--out", type=Path, default=DOC_PATH, help=f"output file (default {DOC_PATH.relative_to(ROOT)})")
    args = ap.parse_args(argv)
    if args.check:
        problem = check(args.out)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    print(f"wrote {write(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
