"""Program image: structure checks, byte format, and every ImageError path."""
import dataclasses
import json
import re
import struct
import zlib

import numpy as np
import pytest

from isa import spec
from isa.config import PRESETS, SliceKind
from isa.image import (HEADER_BYTES, ImageError, MemSegment, Program, ProgramError, config_fingerprint,
                       from_bytes, load, save, to_bytes)

TINY = PRESETS["tiny"]
FPGA = PRESETS["fpga"]


def pos(name: str, config=TINY) -> int:
    """A slice's stream position, from its name (the floorplan is derived in isa/config.py)."""
    return config.slice_named(name).position


MEM_W1, MEM_W0, VXM, MEM_E0, MEM_E1 = (pos(n) for n in ("MEM_W1", "MEM_W0", "VXM", "MEM_E0", "MEM_E1"))
NOWHERE = TINY.positions                              # the first position with no slice
LAST = TINY.positions - 1                             # the last position that has one


# --------------------------------------------------------------------------
# helpers (also used by test_asm.py)
# --------------------------------------------------------------------------
def random_word(rng, config, legal=True) -> int:
    """A word spec.check accepts on a MEM slice, or (legal=False) any 64-bit pattern."""
    if not legal:
        return int(rng.integers(0, 1 << 63)) << 1 | int(rng.integers(0, 2))
    ops = [op for op in spec.OPCODES if SliceKind.MEM in op.kinds]
    op = ops[rng.integers(len(ops))]
    lows = dict(op.min_values)
    highs = dict(spec.field_limits(op, config))
    operands = {}
    for f in op.fields:
        lo, hi = f.range()
        lo = max(lo, lows.get(f.name, lo))
        hi = min(hi, highs.get(f.name, hi + 1) - 1)
        operands[f.name] = int(rng.integers(lo, hi + 1))
    return spec.encode(op.mnemonic, **operands)


def random_program(config, rng, illegal_fraction=0.0) -> Program:
    """A structurally valid program: random MEM queues and non-overlapping memory segments."""
    p = Program.empty(config)
    mems = config.slices_of(SliceKind.MEM)
    for i in rng.permutation(len(mems))[:rng.integers(0, len(mems) + 1)]:
        n = int(rng.integers(0, 12))
        p.queues[mems[i].position] = [random_word(rng, config, legal=rng.random() >= illegal_fraction)
                                      for _ in range(n)]
    for s in mems:
        slots = rng.permutation(config.mem_words // 8)[:rng.integers(0, 3)]   # 8-word slots never overlap
        for slot in slots:
            n = int(rng.integers(1, 9))
            p.memory.append(MemSegment(s.position, int(slot) * 8,
                                       rng.integers(0, 256, size=(n, config.lanes), dtype=np.uint8)))
    return p


def pack_image(config, queues=(), mems=(), code=(), *, magic=b"TSPI", version=(1, 0), isa=spec.ISA_VERSION,
               name=None, fingerprint=None, trailer=True) -> bytes:
    """An image written straight from the documented format, independent of isa.image (format 1.x by
    default, which readers still accept; version=(2, 0) adds the code section count and sections)."""
    name = (config.name if name is None else name).encode()
    fingerprint = config_fingerprint(config) if fingerprint is None else fingerprint
    out = bytearray(magic + struct.pack("<HHBB", *version, *isa) + name.ljust(16, b"\0")
                    + struct.pack("<IHH", fingerprint, len(queues), len(mems)))
    if version[0] >= 2:
        out += struct.pack("<H", len(code))
    for position, words in queues:
        out += struct.pack("<HI", position, len(words)) + b"".join(struct.pack("<Q", w) for w in words)
    for position, addr, n, data in mems:
        out += struct.pack("<HII", position, addr, n) + bytes(data)
    for queue, mem, addr, words in code:
        out += struct.pack("<HHII", queue, mem, addr, words)
    if trailer:
        out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


def with_fixed_crc(blob: bytes) -> bytes:
    return blob[:-4] + struct.pack("<I", zlib.crc32(blob[:-4]))


def sample_program() -> Program:
    p = Program.empty(TINY)
    p.add("MEM_W0", [spec.encode("NOP", cycles=5), spec.encode("READ", stream=1, dir=0, addr=2, stride=1, count=3)])
    p.add(MEM_E1, 0x0123456789ABCDEF)                 # by position; illegal on purpose: allowed by validate()
    p.add_memory("MEM_E1", 0x100, np.arange(2 * TINY.lanes).reshape(2, TINY.lanes))
    return p


# --------------------------------------------------------------------------
# Program structure
# --------------------------------------------------------------------------
def test_builders_and_validate_accept_illegal_words():
    p = sample_program()
    p.validate()
    assert p.queues == {MEM_W0: [0x0000000500000001, 0x0003000100020110], MEM_E1: [0x0123456789ABCDEF]}
    assert p.memory[0].data.dtype == np.uint8 and p.memory[0].data.shape == (2, 16)
    with pytest.raises(ProgramError,
                       match=re.escape(f"queue MEM_E1 (position {MEM_E1}) instruction 0: undefined opcode 0xef")):
        p.check_instructions()


def test_check_instructions_passes_legal_program():
    random_program(TINY, np.random.default_rng(1)).check_instructions()


def test_equality_ignores_segment_order_but_not_contents():
    a = sample_program()
    b = sample_program()
    b.add_memory("MEM_W1", 0, np.zeros(16, int))
    a.memory.insert(0, MemSegment(MEM_W1, 0, np.zeros((1, 16), np.uint8)))
    assert a == b
    b.memory[0].data = b.memory[0].data.copy()
    b.memory[0].data[1, 3] ^= 1
    assert a != b
    assert Program.empty(TINY) != Program(TINY, {MEM_W0: []}, [])
    assert Program.empty(TINY) != Program.empty(FPGA)


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.queues.update({NOWHERE: [1]}),
     re.escape(f"queue for position {NOWHERE}: config 'tiny' has positions 0..{LAST}")),
    (lambda p: p.add("MEM_W0", [1] * 1023),
     re.escape(f"MEM_W0 (position {MEM_W0}): 1025 instructions exceed queue_depth 1024")),
    (lambda p: p.add("MEM_W0", 1 << 64), r"instruction 2: .* is not a 64-bit word"),
    (lambda p: p.add("MEM_W0", -1), r"instruction 2: -1 is not a 64-bit word"),
    (lambda p: p.memory.append(MemSegment(VXM, 0, np.zeros((1, 16), np.uint8))),
     re.escape(f"VXM (position {VXM}) is not a MEM slice")),
    (lambda p: p.memory.append(MemSegment(MEM_E0, 8191, np.zeros((2, 16), np.uint8))),
     r"memory segment 1 \(MEM_E0\): words 8191\.\.8192 outside 0\.\.8191"),
    (lambda p: p.memory.append(MemSegment(MEM_E1, 0x101, np.zeros((1, 16), np.uint8))),
     r"memory segment 1 \(MEM_E1\): words 257\.\.257 overlap memory segment 0 \(words 256\.\.257\)"),
    (lambda p: p.memory.append(MemSegment(MEM_E0, 0, np.zeros((1, 16), np.int16))), r"must be a uint8 numpy array"),
    (lambda p: p.memory.append(MemSegment(MEM_E0, 0, np.zeros((1, 8), np.uint8))),
     r"shape \(1, 8\) is not \[n >= 1, lanes=16\]"),
    (lambda p: p.memory.append(MemSegment(MEM_E0, 0, np.zeros((0, 16), np.uint8))), r"shape \(0, 16\)"),
])
def test_validate_rejects(mutate, message):
    p = sample_program()
    mutate(p)
    with pytest.raises(ProgramError, match=message):
        p.validate()


def test_builder_errors():
    p = Program.empty(TINY)
    with pytest.raises(ProgramError, match=re.escape("no slice named 'MEM_X'; slices are "
                                                     + ", ".join(s.name for s in TINY.floorplan)) + "$"):
        p.add("MEM_X", 1)
    with pytest.raises(ProgramError, match=re.escape(f"no slice at position {NOWHERE}; positions are 0..{LAST}")):
        p.add(NOWHERE, 1)
    with pytest.raises(ProgramError, match="byte values 0..255"):
        p.add_memory("MEM_E0", 0, np.full(16, 256))
    with pytest.raises(ProgramError, match=r"shape \(1, 15\)"):
        p.add_memory("MEM_E0", 0, np.zeros(15, np.uint8))


# --------------------------------------------------------------------------
# byte format
# --------------------------------------------------------------------------
def test_layout_matches_documented_format():
    p = sample_program()
    mem = p.memory[0]
    expected = pack_image(TINY, queues=[(MEM_W0, p.queues[MEM_W0]), (MEM_E1, p.queues[MEM_E1])],
                          mems=[(MEM_E1, 0x100, 2, mem.data.tobytes())], version=(2, 0))
    assert to_bytes(p) == expected
    assert expected[:4] == b"TSPI" and len(expected) == HEADER_BYTES + 2 * 6 + 3 * 8 + 10 + 32 + 4
    fingerprint = zlib.crc32(json.dumps(TINY.to_dict(), sort_keys=True).encode())
    assert struct.unpack_from("<I", expected, 26)[0] == fingerprint


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip_random_programs(name):
    config = PRESETS[name]
    rng = np.random.default_rng(20240607)
    for _ in range(15 if name != "tsp" else 3):
        p = random_program(config, rng, illegal_fraction=0.2)
        blob = to_bytes(p)
        q = from_bytes(blob)
        assert q == p
        assert to_bytes(q) == blob                      # canonical: byte-identical re-serialisation
        assert from_bytes(blob, config) == p


def test_save_load(tmp_path):
    p = sample_program()
    save(p, tmp_path / "p.bin")
    assert load(tmp_path / "p.bin") == p
    assert load(str(tmp_path / "p.bin"), TINY) == p


def test_minor_format_and_isa_versions_are_accepted():
    blob = pack_image(TINY, version=(1, 7), isa=(spec.ISA_VERSION[0], spec.ISA_VERSION[1] + 3))
    assert from_bytes(blob) == Program.empty(TINY)


def test_other_configs_load_when_passed():
    custom = dataclasses.replace(TINY, name="custom", queue_depth=64)
    p = Program.empty(custom).add("MEM_W1", [1, 2, 3])
    blob = to_bytes(p)
    assert from_bytes(blob, custom) == p
    with pytest.raises(ImageError, match="image offset 10: unknown config name 'custom'; presets are tiny, fpga, tsp"):
        from_bytes(blob)


# --------------------------------------------------------------------------
# every ImageError path
# --------------------------------------------------------------------------
def raises(blob, message, config=None):
    with pytest.raises(ImageError, match=message) as info:
        from_bytes(blob, config)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_bad_magic():
    raises(b"TSPX" + to_bytes(sample_program())[4:], r"^image offset 0: bad magic b'TSPX' \(expected b'TSPI'\)")
    raises(b"", r"image offset 0: bad magic b''")


def test_unsupported_format_version():
    raises(pack_image(TINY, version=(3, 0)),
           r"^image offset 4: unsupported image format version 3\.0 \(this tool reads 1\.x and 2\.x\)$")
    raises(pack_image(TINY, version=(0, 9)), r"unsupported image format version 0\.9")


def test_isa_major_mismatch():
    raises(pack_image(TINY, isa=(spec.ISA_VERSION[0] + 1, 0)),
           rf"^image offset 8: image is for ISA {spec.ISA_VERSION[0] + 1}\.0; this tool implements ISA "
           rf"{spec.ISA_VERSION[0]}\.{spec.ISA_VERSION[1]}$")


def test_fingerprint_mismatch():
    changed = dataclasses.replace(TINY, queue_depth=512)           # same name, different definition
    blob = to_bytes(Program.empty(changed))
    raises(blob, r"^image offset 26: config fingerprint 0x[0-9a-f]{8} does not match 0x[0-9a-f]{8}: "
                 r"the image was built for a different config definition of 'tiny'$")
    raises(to_bytes(Program.empty(TINY)), "different config definition", config=changed)


def test_fingerprint_covers_latency_overrides():
    """A program scheduled for other latencies must not load on the base table, nor the reverse."""
    slower = dataclasses.replace(TINY, latency=(("vxm_drive", spec.TIMING["vxm_drive"] + 1),))
    assert config_fingerprint(slower) != config_fingerprint(TINY)
    raises(to_bytes(Program.empty(slower)), "different config definition of 'tiny'")
    raises(to_bytes(Program.empty(TINY)), "different config definition", config=slower)


def test_config_name_errors():
    raises(to_bytes(sample_program()), r"^image offset 10: image was built for config 'tiny', not 'fpga'$", FPGA)
    raises(pack_image(TINY, name="nosuch"), r"^image offset 10: unknown config name 'nosuch'")
    raises(pack_image(TINY, name="t\x01ny"),
           r"unknown config name 't\\x01ny'")
    blob = bytearray(pack_image(TINY))
    blob[12] = 0xC3                                                 # not ASCII
    raises(with_fixed_crc(bytes(blob)), r"^image offset 10: config name b'ti\\xc3y.*' is not NUL-padded ASCII")


def test_truncation_names_field_and_offset():
    blob = to_bytes(sample_program())        # MEM_W0's queue at 36 (2 words), MEM_E1's at 58 (1 word), mem at 72
    cases = {
        3: "image offset 0: bad magic",
        5: r"image offset 4: truncated while reading image format version major \(need 2 bytes, 1 left\)",
        20: r"image offset 10: truncated while reading config name",
        33: r"image offset 32: truncated while reading memory section count",
        35: r"image offset 34: truncated while reading code section count",
        37: r"image offset 36: truncated while reading queue section 0 position",
        39: r"image offset 38: truncated while reading queue section 0 word count",
        52: r"image offset 42: truncated while reading queue section 0 words \(2 words\) \(need 16 bytes, 10 left\)",
        59: r"image offset 58: truncated while reading queue section 1 position",
        73: r"image offset 72: truncated while reading memory section 0 position",
        81: r"image offset 78: truncated while reading memory section 0 word count",
        102: r"image offset 82: truncated while reading memory section 0 data \(2 words of 16 bytes\)",
        len(blob) - 2: rf"image offset {len(blob) - 4}: truncated while reading checksum",
    }
    for cut, message in cases.items():
        raises(blob[:cut], "^" + message)


def test_checksum_mismatch():
    blob = bytearray(to_bytes(sample_program()))
    rng = np.random.default_rng(7)
    payload = list(range(42, 58)) + list(range(82, len(blob) - 4))  # instruction words and memory data
    for offset in rng.choice(payload, size=8, replace=False):
        bad = bytearray(blob)
        bad[offset] ^= 1 << int(rng.integers(8))
        raises(bytes(bad), r"^image: checksum mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)$")
    bad = bytearray(blob)
    bad[-1] ^= 0x80
    raises(bytes(bad), "checksum mismatch")


def test_corrupted_header_fields_are_reported_as_corruption():
    """A flipped fingerprint or position is blamed on the checksum, not on the config."""
    blob = to_bytes(sample_program())
    for offset in (12, 27, 36):                           # config name, fingerprint, queue position
        bad = bytearray(blob)
        bad[offset] ^= 0x40
        raises(bytes(bad), "^image: checksum mismatch")


def test_every_single_byte_flip_is_rejected():
    blob = to_bytes(sample_program())
    for offset in range(len(blob)):
        bad = bytearray(blob)
        bad[offset] ^= 0x10
        with pytest.raises(ImageError):
            from_bytes(bytes(bad))


def test_bad_queue_sections():
    raises(pack_image(TINY, queues=[(NOWHERE, [1])]),
           "^" + re.escape(f"image offset 34: queue section 0: no slice at position {NOWHERE} "
                           f"(config 'tiny' has positions 0..{LAST})") + "$")
    raises(pack_image(TINY, queues=[(MEM_W0, [1]), (MEM_W0, [2])]),
           r"^image offset 48: queue section 1: second queue section")
    raises(pack_image(TINY, queues=[(MEM_W0, [1] * 1025)]),
           "^" + re.escape(f"image offset 36: queue section 0: 1025 instructions for MEM_W0 (position {MEM_W0}) "
                           f"exceed queue_depth 1024") + "$")


def test_bad_memory_sections():
    row = bytes(range(16))
    raises(pack_image(TINY, mems=[(VXM, 0, 1, row)]),
           "^" + re.escape(f"image offset 34: memory section 0: VXM (position {VXM}) is not a MEM slice") + "$")
    raises(pack_image(TINY, mems=[(NOWHERE, 0, 1, row)]),
           rf"^image offset 34: memory section 0: position {NOWHERE} is not a MEM slice$")
    raises(pack_image(TINY, mems=[(MEM_E0, 8191, 2, row * 2)]),
           r"^image offset 36: memory section 0: words 8191\.\.8192 outside 0\.\.8191 of MEM_E0$")
    raises(pack_image(TINY, mems=[(MEM_E0, 0, 0, b"")]),
           r"^image offset 40: memory section 0: empty \(0 words\) for MEM_E0$")
    raises(pack_image(TINY, mems=[(MEM_E0, 10, 4, row * 4), (MEM_E0, 13, 1, row)]),
           r"^image offset 110: memory section 1: words 13\.\.13 of MEM_E0 overlap memory section 0 \(words 10\.\.13\)$")
    pack_image(TINY, mems=[(MEM_E0, 10, 4, row * 4), (MEM_E0, 14, 1, row),
                           (MEM_E1, 10, 1, row)])                               # adjacent / other slice: fine
    assert len(from_bytes(pack_image(TINY, mems=[(MEM_E0, 10, 4, row * 4), (MEM_E0, 14, 1, row)])).memory) == 2


def test_trailing_bytes():
    blob = pack_image(TINY, trailer=False) + b"\0\0"
    raises(blob + struct.pack("<I", zlib.crc32(blob)),
           r"^image offset 34: 2 unexpected bytes between the last section and the checksum$")
