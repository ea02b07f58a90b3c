"""Assembler, disassembler and their command line."""
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from isa import spec
from isa.asm import AsmError, assemble, disassemble, format_instruction
from isa.config import PRESETS, SliceKind
from isa.image import from_bytes, load

try:                                   # tests/ is a package
    from .test_image import random_program
except ImportError:                    # rootdir-relative imports
    from test_image import random_program

TINY = PRESETS["tiny"]
REPO = Path(__file__).resolve().parents[2]


def pos(name: str, config=TINY) -> int:
    """A slice's stream position, from its name (the floorplan is derived in isa/config.py)."""
    return config.slice_named(name).position


MEM_W0, MEM_E0, MEM_E1, VXM = pos("MEM_W0"), pos("MEM_E0"), pos("MEM_E1"), pos("VXM")

EXAMPLE = """\
; comment (also '#')
.config tiny                 ; optional
.queue MEM_W0                ; following instructions go to that slice's queue
    READ  stream=3 dir=E addr=0x10 stride=1 count=16
    NOP   5                  # positional
    WRITE stream=3 dir=W addr=256 count=4      ; stride defaults to 1
    .word 0x0123456789abcdef ; raw instruction word, no checks
.mem MEM_E1 addr=0x100
    .vec 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff
    .vec ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00
"""


def one(line: str, config=TINY) -> int:
    """Assemble one instruction on MEM_W0 and return its word."""
    return assemble(f".queue MEM_W0\n{line}\n", config).queues[pos("MEM_W0", config)][0]


# --------------------------------------------------------------------------
# encodings (hand-computed from the field tables in isa/spec.py)
# --------------------------------------------------------------------------
def test_hand_computed_encodings():
    assert one("NOP 5") == 0x0000000500000001                     # cycles at bit 32, opcode 0x01
    assert one("nop cycles=5") == 0x0000000500000001
    # READ: opcode 0x10, stream<<8, dir<<14, addr<<16, stride<<32 (16-bit signed), count<<48
    assert one("READ stream=3 dir=E addr=0x10 stride=1 count=16") == 0x0010_0001_0010_0310
    assert one("WRITE stream=3 dir=W addr=256 count=4") == 0x0004_0001_0100_4311
    assert one("READ stream=0 dir=EAST addr=0 stride=-1") == 0x0001_FFFF_0000_0010
    assert one("read Stream=7, DIR=west, addr=8191, stride=-32768, count=65535") == \
        0xFFFF_8000_1FFF_4710
    assert one("WRITE stream=0 dir=1 addr=0 count=1") == 0x0001_0001_0000_4011


def test_example_program():
    p = assemble(EXAMPLE, TINY)
    assert p.queues == {MEM_W0: [0x0010000100100310, 0x0000000500000001, 0x0004000101004311, 0x0123456789ABCDEF]}
    assert len(p.memory) == 1
    seg = p.memory[0]
    assert (seg.position, seg.addr) == (MEM_E1, 0x100)
    assert seg.data.dtype == np.uint8 and seg.data.shape == (2, 16)
    assert list(seg.data[0]) == [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]
    assert seg.data[1, 0] == 0xFF
    p.validate()


def test_config_from_directive_and_queue_by_position():
    fpga_mem_w0 = pos("MEM_W0", PRESETS["fpga"])    # the same queue, by position and then by name
    text = f".config fpga\n.queue {fpga_mem_w0}\nNOP 1\n.queue MEM_W0\nNOP 2\n"
    p = assemble(text)                               # config taken from the .config line
    assert p.config == PRESETS["fpga"] and p.queues == {fpga_mem_w0: [0x0000000100000001, 0x0000000200000001]}
    assert assemble(".queue MEM_W0\nNOP 1\n").config == TINY   # no .config: the default preset
    assert assemble(".config fpga\n", "fpga").config == PRESETS["fpga"]


def test_queue_reopened_appends_and_empty_queue_is_kept():
    p = assemble(".queue MEM_W0\nNOP 1\n.queue MEM_E0\n.queue MEM_W0\nNOP 2\n", TINY)
    assert p.queues == {MEM_W0: [0x0000000100000001, 0x0000000200000001], MEM_E0: []}


W = max(len(op.mnemonic) for op in spec.OPCODES)     # the disassembler pads mnemonics to this


def test_disassembly_is_canonical():
    text = disassemble(assemble(EXAMPLE, TINY))
    assert text == f"""\
.config tiny

.queue MEM_W0
    {'READ':<{W}} stream=3 dir=E addr=0x10 stride=1 count=16
    {'NOP':<{W}} cycles=5
    {'WRITE':<{W}} stream=3 dir=W addr=0x100 stride=1 count=4
    .word 0x0123456789abcdef  ; illegal: undefined opcode 0xef

.mem MEM_E1 addr=0x100
    .vec 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff
    .vec ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00
"""


def test_format_instruction():
    read = spec.encode("READ", stream=2, dir=1, addr=0x1F, stride=-3, count=9)
    assert format_instruction(read, SliceKind.MEM, TINY) == f"{'READ':<{W}} stream=2 dir=W addr=0x1f stride=-3 count=9"
    assert format_instruction(read, SliceKind.VXM, TINY) == \
        f".word {read:#018x}  ; illegal: READ is not an instruction of a VXM slice"
    bad_stream = spec.encode("READ", stream=9, dir=0, addr=0, stride=1, count=1)
    assert format_instruction(bad_stream, SliceKind.MEM, TINY).endswith("; illegal: READ: stream=9 must be < 8")
    assert format_instruction(0x0000000000000001, SliceKind.MEM, TINY) == \
        ".word 0x0000000000000001  ; illegal: NOP: cycles=0 must be >= 1"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip_random_programs(name):
    config = PRESETS[name]
    rng = np.random.default_rng(12345)
    for _ in range(15 if name != "tsp" else 2):
        p = random_program(config, rng, illegal_fraction=0.2)
        text = disassemble(p)
        q = assemble(text, config)
        assert q == p
        assert disassemble(q) == text


# --------------------------------------------------------------------------
# every AsmError path, with its line number
# --------------------------------------------------------------------------
Q = ".queue MEM_W0\n"             # most error cases need an open queue
ERRORS = [
    (Q + "FOO 1", 3, r"unknown mnemonic 'FOO'; mnemonics are NOP, IFETCH, READ, WRITE"),
    (Q + "READ stream=1 addr=0 dir=E bogus=3", 3, r"READ: unknown operand 'bogus'; operands are stream, dir, addr, stride, count"),
    (Q + "READ stream=1 dir=E", 3, r"READ: missing operand addr; operands are stream, dir, addr, stride, count"),
    (Q + "READ stream=1 stream=2 dir=E addr=0", 3, r"READ: duplicate operand stream"),
    (Q + "NOP 3 cycles=4", 3, r"NOP: duplicate operand cycles"),
    (Q + "NOP 3 4", 3, r"NOP: duplicate operand cycles"),
    (Q + "READ stream=1 dir=E addr=0 stride=40000", 3, r"READ: operand stride=40000 out of range \[-32768, 32767\]"),
    (Q + "READ stream=1 dir=E addr=-1", 3, r"READ: operand addr=-1 out of range \[0, 65535\]"),
    (Q + "NOP 0x100000000", 3, r"NOP: operand cycles=0x100000000 out of range \[0, 4294967295\]"),
    (Q + "READ stream=1 dir=E addr=zz", 3, r"READ: bad value 'zz' for operand addr \(expected a decimal or 0x hex number\)"),
    (Q + "READ stream=1 dir=N addr=0", 3, r"READ: bad value 'N' for operand dir \(expected EAST, WEST, E, W or a number\)"),
    (Q + "READ stream=1 dir= addr=0", 3, r"READ: operand dir has no value"),
    (Q + "READ stream =1 dir=E addr=0", 3, r"READ: operand 'stream' must be written name=value"),
    (Q + "READ stream=1 dir=E addr=0 =1", 3, r"READ: operand '=1' has no name"),
    (Q + "READ 1 E 0", 3, r"READ: operand '1' must be written name=value"),
    (Q + "READ stream=8 dir=E addr=0", 3, r"illegal on MEM_W0 \(MEM, config tiny\): READ: stream=8 must be < 8"),
    (Q + "WRITE stream=0 dir=E addr=8192", 3, r"illegal on MEM_W0 \(MEM, config tiny\): WRITE: addr=8192 must be < 8192"),
    (Q + "WRITE stream=0 dir=E addr=0 count=0", 3, r"WRITE: count=0 must be >= 1"),
    (Q + "NOP 0", 3, r"NOP: cycles=0 must be >= 1"),
    (Q + ".word 0x10000000000000000", 3, r"\.word value 0x10000000000000000 out of range \[0, 0xffffffffffffffff\]"),
    (Q + ".word -1", 3, r"\.word value -1 out of range"),
    (Q + ".word 1 2", 3, r"\.word takes one value, got 2"),
    (".bogus", 2, r"unknown directive '\.bogus'"),
    (".vec 00", 2, r"\.vec outside a \.mem block"),
    (".queue", 2, r"\.queue takes one slice name or position, got 0 arguments"),
    (".queue MEM_Q", 2, r"unknown slice 'MEM_Q'; slices are "
     + re.escape(", ".join(s.name for s in TINY.floorplan)) + "$"),
    (f".queue {TINY.positions}", 2,
     re.escape(f"no slice at position {TINY.positions}; config tiny has positions 0..{TINY.positions - 1}")),
    (".config fpga", 2, r"\.config fpga does not match the config being assembled for \('tiny'\)"),
    (".config", 2, r"\.config takes one config name"),
    (".mem VXM addr=0", 2, re.escape(f"not a MEM slice: VXM (position {VXM}) is a VXM slice; ")
     + r"MEM slices are MEM_W1, MEM_W0, MEM_E0, MEM_E1"),
    (".mem MEM_E0", 2, r"missing operand addr for \.mem"),
    (".mem MEM_E0 addr=0 addr=1", 2, r"\.mem: duplicate operand addr"),
    (".mem MEM_E0 0x10", 2, r"\.mem: operand '0x10' must be written name=value \(addr\)"),
    (".mem MEM_E0 addr=0 size=1", 2, r"\.mem: unknown operand 'size'; operands are addr"),
    (".mem MEM_E0 addr=8192", 2, r"\.mem: operand addr=8192 out of range \[0, 8191\]"),
    (".mem MEM_E0 addr=0\n.vec " + "00 " * 15, 3, r"\.vec needs exactly 16 hex bytes \(lanes of config tiny\), got 15"),
    (".mem MEM_E0 addr=0\n.vec " + "00 " * 17, 3, r"\.vec needs exactly 16 hex bytes \(lanes of config tiny\), got 17"),
    (".mem MEM_E0 addr=0\n.vec " + "00 " * 15 + "1g", 3, r"bad \.vec byte '1g' \(expected one or two hex digits\)"),
    (".mem MEM_E0 addr=0\n.vec " + "00 " * 15 + "100", 3, r"bad \.vec byte '100'"),
    (".mem MEM_E0 addr=8191\n.vec " + "00 " * 16 + "\n.vec " + "00 " * 16, 4,
     r"\.vec at word address 0x2000 is past the end of MEM_E0 \(mem_words 8192, \.mem block at line 2\)"),
    (".mem MEM_E0 addr=4\n.vec " + "00 " * 16 + "\n.vec " + "00 " * 16 + "\n.mem MEM_E0 addr=5\n.vec " + "00 " * 16,
     6, r"word 0x5 of MEM_E0 is already initialised by the \.mem block at line 2"),
    (".mem MEM_E0 addr=0\n.queue MEM_W0", 2, r"\.mem block for MEM_E0 has no \.vec lines"),
    (".mem MEM_E0 addr=0", 2, r"\.mem block for MEM_E0 has no \.vec lines"),
    (".mem MEM_E0 addr=0\n.vec " + "00 " * 16 + "\nNOP 1", 4, r"NOP inside the \.mem block of line 2; write \.queue SLICE first"),
]


@pytest.mark.parametrize("body, line, reason", ERRORS, ids=[f"{i}" for i in range(len(ERRORS))])
def test_errors_name_the_line(body, line, reason):
    """A comment line goes first so that line numbering is exercised; `line` counts it."""
    with pytest.raises(AsmError) as info:
        assemble("; first line\n" + body + "\n", TINY)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.line == line, str(e)
    assert str(e) == f"<asm>:{line}: {e.reason}"
    assert re.search(reason, e.reason), e.reason


def test_instruction_before_any_queue():
    for body in ("NOP 1", ".word 5"):
        with pytest.raises(AsmError, match=rf"^prog\.s:3: (NOP|\.word) before any \.queue$") as info:
            assemble(f"; x\n\n{body}\n", TINY, source="prog.s")
        assert info.value.line == 3 and info.value.source == "prog.s"


def test_unknown_config_in_directive():
    with pytest.raises(AsmError, match=r"^<asm>:2: unknown config 'huge'; presets are tiny, fpga, tsp$"):
        assemble("\n.config huge\n")


def test_queue_full():
    small = dataclasses.replace(TINY, name="small", queue_depth=4)
    text = ".queue MEM_W0\n" + "NOP 1\n" * 4
    assert len(assemble(text, small).queues[pos("MEM_W0", small)]) == 4
    with pytest.raises(AsmError, match=r"^<asm>:6: queue MEM_W0 is full \(queue_depth 4\)$"):
        assemble(text + ".word 0\n", small)


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "isa.asm", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_cli_assemble_and_disassemble(tmp_path):
    src = tmp_path / "prog.s"
    src.write_text(EXAMPLE)
    out = tmp_path / "prog.bin"
    r = run_cli(src, "-o", out, "--config", "tiny")
    assert r.returncode == 0, r.stderr
    assert load(out) == assemble(EXAMPLE, TINY)
    r = run_cli("--disassemble", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == disassemble(assemble(EXAMPLE, TINY))
    r = run_cli(src)                                 # default output: prog.bin beside the source
    assert r.returncode == 0 and from_bytes(out.read_bytes()) == assemble(EXAMPLE, TINY)


@pytest.mark.parametrize("case", ["asm_error", "config_mismatch", "bad_image", "missing_file"])
def test_cli_errors_are_one_line(tmp_path, case):
    bad = tmp_path / "bad.s"
    bad.write_text(".queue MEM_W0\nNOP 1\nFROB 2\n")
    good = tmp_path / "good.s"
    good.write_text(EXAMPLE)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"TSPI\x03\x00\x00\x00" + bytes(40))
    args, expect = {
        "asm_error": ((bad, "-o", tmp_path / "bad.bin"), f"{bad}:3: unknown mnemonic 'FROB'"),
        "config_mismatch": ((good, "--config", "fpga"), ".config tiny does not match"),
        "bad_image": (("--disassemble", junk), "image offset 4: unsupported image format version 3."),
        "missing_file": ((tmp_path / "nope.s",), "nope.s: No such file or directory"),
    }[case]
    r = run_cli(*args)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert expect in r.stderr
    assert not (tmp_path / "bad.bin").exists()
