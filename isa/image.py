"""The versioned binary program image: instruction queues plus SRAM contents.

A `Program` is what the host loads into the chip before START: one list of
64-bit instruction words per slice queue and any number of memory segments to
preload into MEM slices. `to_bytes` / `from_bytes` give it a stable on-disk
form so the compiler, the golden model, the RTL testbenches and the host
driver all consume the same artefact.

Image format 2.0 (all integers little-endian, offsets in bytes)::

    offset  size  field
    0       4     magic b"TSPI"
    4       2     image format version major (2)
    6       2     image format version minor (0)
    8       1     ISA version major (isa.spec.ISA_VERSION[0])
    9       1     ISA version minor (isa.spec.ISA_VERSION[1])
    10      16    config name, ASCII, NUL-padded
    26      4     config fingerprint: zlib.crc32(json.dumps(config.to_dict(), sort_keys=True))
    30      2     n_queue_sections
    32      2     n_mem_sections
    34      2     n_code_sections
    36            n_queue_sections x queue section:
                      u16 slice position, u32 count, count x u64 instruction words (issue order)
                  n_mem_sections x memory section:
                      u16 slice position (a MEM slice), u32 word address, u32 n,
                      n x lanes bytes (word by word, lane 0 first)
                  n_code_sections x code section (in the order the queue fetches them):
                      u16 queue position, u16 MEM slice position, u32 word address, u32 instruction words
    end-4   4     zlib.crc32 of every preceding byte

A queue section holds what the host loads into the queue before START (at most queue_depth
words). A program longer than its queue keeps the rest in SRAM: a code section says that
instruction words of a queue live in a MEM slice from an address on, `config.fetch_words` per
SRAM word (`pack_words`), to be brought in during the run by IFETCH. The words themselves are
in the memory sections, so a loader needs nothing but the queue and memory sections; the code
sections let tools show the whole instruction stream (`Program.instruction_stream`).
Format 1.x (no code sections, a 34-byte header) is still read.

Readers accept any 1.x image (by policy a minor version may only add meaning
that a 1.0 reader can safely ignore) and refuse any other major version. The ISA major
version must match `isa.spec.ISA_VERSION`, and the config fingerprint must
match the config the image is loaded for, so an image built for an older
definition of, say, "tiny" is refused rather than silently mis-run.

Structural checks (`Program.validate`) never reject an instruction word for
being illegal: tests load illegal words on purpose to exercise the chip's
error status. `Program.check_instructions` is the strict variant.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from . import spec
from .config import PRESETS, ChipConfig, ConfigError, Slice, SliceKind

MAGIC = b"TSPI"
FORMAT_VERSION = (2, 0)
CONFIG_NAME_BYTES = 16

_HEADER = struct.Struct("<4sHHBB16sIHHH")
_HEADER_V1 = struct.Struct("<4sHHBB16sIHH")
_QUEUE_HEAD = struct.Struct("<HI")
_MEM_HEAD = struct.Struct("<HII")
_CODE = struct.Struct("<HHII")
_TRAILER = struct.Struct("<I")
HEADER_BYTES = _HEADER.size
assert HEADER_BYTES == 36


class ProgramError(ValueError):
    """A program that the chip could not load (structure, not instruction legality)."""


class ImageError(ValueError):
    """A byte string that is not a loadable image; the message names field and offset."""


def config_fingerprint(config: ChipConfig) -> int:
    """CRC32 of the config's canonical JSON: changes whenever any sizing number does."""
    return zlib.crc32(json.dumps(config.to_dict(), sort_keys=True).encode())


# --------------------------------------------------------------------------
# Program
# --------------------------------------------------------------------------
@dataclass(eq=False)
class MemSegment:
    """Words preloaded into one MEM slice: data is uint8 [n, lanes], lane 0 first."""
    position: int
    addr: int
    data: np.ndarray

    def __eq__(self, other):
        if not isinstance(other, MemSegment):
            return NotImplemented
        return (self.position == other.position and self.addr == other.addr
                and np.asarray(self.data).shape == np.asarray(other.data).shape
                and np.array_equal(self.data, other.data))

    __hash__ = None


@dataclass(frozen=True)
class CodeSegment:
    """`words` instruction words of queue `queue` stored in MEM slice `mem` from `addr` on,
    config.fetch_words per SRAM word (pack_words): the part of the queue's stream that IFETCH
    brings in during the run. A queue's code segments follow its host-loaded words in order."""
    queue: int
    mem: int
    addr: int
    words: int


def pack_words(words, config: ChipConfig) -> np.ndarray:
    """Instruction words -> SRAM words (uint8 [ceil(n / fetch_words), lanes]) as IFETCH reads them:
    word j of a vector is its bytes 8j..8j+7, little-endian; unused bytes are zero."""
    fw = config.fetch_words
    n = len(words)
    rows = -(-n // fw)
    flat = np.zeros(rows * fw, dtype="<u8")
    flat[:n] = [int(w) for w in words]
    out = np.zeros((rows, config.lanes), np.uint8)
    out[:, :8 * fw] = flat.view(np.uint8).reshape(rows, 8 * fw)
    return out


def unpack_words(data: np.ndarray, n: int, config: ChipConfig) -> list[int]:
    """The first n instruction words carried by SRAM words `data` (inverse of pack_words)."""
    fw = config.fetch_words
    raw = np.ascontiguousarray(np.asarray(data, np.uint8)[:, :8 * fw]).view("<u8").reshape(-1)
    return [int(w) for w in raw[:n]]


@dataclass(eq=False)
class Program:
    config: ChipConfig
    queues: dict[int, list[int]] = field(default_factory=dict)   # position -> host-loaded words, issue order
    memory: list[MemSegment] = field(default_factory=list)
    code: list[CodeSegment] = field(default_factory=list)        # queue words kept in SRAM (fetched)

    @classmethod
    def empty(cls, config: ChipConfig) -> "Program":
        return cls(config, {}, [], [])

    def add_code(self, queue: str | int, mem: str | int, addr: int, words) -> "Program":
        """Store instruction words of `queue` in MEM slice `mem` from `addr` on (fetched by IFETCH)."""
        q = resolve_slice(self.config, queue).position
        m = resolve_slice(self.config, mem).position
        words = [int(w) for w in words]
        if not words:
            raise ProgramError(f"code segment for {self.config.floorplan[q].name}: no words")
        self.memory.append(MemSegment(m, int(addr), pack_words(words, self.config)))
        self.code.append(CodeSegment(q, m, int(addr), len(words)))
        return self

    def instruction_stream(self, position: int) -> list[int]:
        """Every word the queue at `position` issues from: the host-loaded ones, then its code segments."""
        words = list(self.queues.get(position, []))
        for c in self.code:
            if c.queue == position:
                words += unpack_words(self._sram(c.mem, c.addr, -(-c.words // self.config.fetch_words)),
                                      c.words, self.config)
        return words

    def _sram(self, position: int, addr: int, n: int) -> np.ndarray:
        """SRAM words addr..addr+n-1 of a MEM slice as the memory segments preload them."""
        out = np.zeros((n, self.config.lanes), np.uint8)
        for seg in self.memory:
            if seg.position == position:
                lo, hi = max(addr, seg.addr), min(addr + n, seg.addr + len(seg.data))
                if lo < hi:
                    out[lo - addr:hi - addr] = seg.data[lo - seg.addr:hi - seg.addr]
        return out

    # ---- building ---------------------------------------------------------
    def add(self, slice: str | int, words: int | Iterable[int]) -> "Program":
        """Append one word or several to a slice's queue (by slice name or position)."""
        position = resolve_slice(self.config, slice).position
        queue = self.queues.setdefault(position, [])
        if isinstance(words, (int, np.integer)):
            queue.append(int(words))
        else:
            queue.extend(int(w) for w in words)
        return self

    def add_memory(self, slice: str | int, addr: int, data) -> "Program":
        """Preload words at `addr`; data is [n, lanes] (or one word of [lanes]) byte values."""
        position = resolve_slice(self.config, slice).position
        self.memory.append(MemSegment(position, int(addr), _as_word_bytes(data, self.config.lanes)))
        return self

    # ---- checking ---------------------------------------------------------
    def validate(self) -> None:
        """Raise ProgramError unless the chip's loader could load this program as is."""
        cfg = self.config
        plan = cfg.floorplan
        with_queue = spec.kinds_with_queues(cfg)
        for position in self.queues:
            if not isinstance(position, (int, np.integer)) or not 0 <= position < len(plan):
                raise ProgramError(f"queue for position {position!r}: config {cfg.name!r} has positions "
                                   f"0..{len(plan) - 1}")
        for position in sorted(self.queues):
            words = self.queues[position]
            s = plan[position]
            if s.kind not in with_queue:
                raise ProgramError(f"queue for {_describe(s)}: {s.kind.value} slices have no instruction "
                                   f"queue in ISA {_isa_version()}")
            if len(words) > cfg.queue_depth:
                raise ProgramError(f"queue for {_describe(s)}: {len(words)} instructions exceed "
                                   f"queue_depth {cfg.queue_depth}")
            for i, w in enumerate(words):
                if not isinstance(w, (int, np.integer)) or not 0 <= w < 1 << spec.WORD_BITS:
                    raise ProgramError(f"queue for {_describe(s)} instruction {i}: {w!r} is not a "
                                       f"{spec.WORD_BITS}-bit word")
        used: dict[int, list[tuple[int, int, int]]] = {}    # position -> [(first, end, segment index)]
        for k, seg in enumerate(self.memory):
            where = f"memory segment {k}"
            if not isinstance(seg.position, (int, np.integer)) or not 0 <= seg.position < len(plan):
                raise ProgramError(f"{where}: position {seg.position!r} is not in config {cfg.name!r} "
                                   f"(positions 0..{len(plan) - 1})")
            s = plan[seg.position]
            if s.kind != SliceKind.MEM:
                raise ProgramError(f"{where}: {_describe(s)} is not a MEM slice")
            data = seg.data
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
                raise ProgramError(f"{where} ({s.name}): data must be a uint8 numpy array, got "
                                   f"{getattr(data, 'dtype', type(data).__name__)}")
            if data.ndim != 2 or data.shape[1] != cfg.lanes or data.shape[0] == 0:
                raise ProgramError(f"{where} ({s.name}): data shape {data.shape} is not [n >= 1, "
                                   f"lanes={cfg.lanes}]")
            n = data.shape[0]
            if not 0 <= seg.addr or seg.addr + n > cfg.mem_words:
                raise ProgramError(f"{where} ({s.name}): words {seg.addr}..{seg.addr + n - 1} outside "
                                   f"0..{cfg.mem_words - 1} (mem_words {cfg.mem_words})")
            for first, end, j in used.setdefault(seg.position, []):
                if seg.addr < end and first < seg.addr + n:
                    raise ProgramError(f"{where} ({s.name}): words {seg.addr}..{seg.addr + n - 1} overlap "
                                       f"memory segment {j} (words {first}..{end - 1})")
            used[seg.position].append((seg.addr, seg.addr + n, k))
        for k, c in enumerate(self.code):
            where = f"code segment {k}"
            if not (0 <= c.queue < len(plan) and plan[c.queue].kind in with_queue):
                raise ProgramError(f"{where}: position {c.queue!r} has no instruction queue")
            if not (0 <= c.mem < len(plan) and plan[c.mem].kind == SliceKind.MEM):
                raise ProgramError(f"{where}: position {c.mem!r} is not a MEM slice")
            if c.words < 1:
                raise ProgramError(f"{where}: {c.words} words")
            rows = -(-c.words // cfg.fetch_words)
            covered = sum(max(0, min(c.addr + rows, e) - max(c.addr, f)) for f, e, _ in used.get(c.mem, ()))
            if covered != rows:
                raise ProgramError(f"{where} ({plan[c.queue].name}): words {c.addr}..{c.addr + rows - 1} of "
                                   f"{plan[c.mem].name} are not all preloaded by memory segments")

    def check_instructions(self) -> None:
        """validate(), then raise ProgramError at the first word the chip would reject."""
        self.validate()
        plan = self.config.floorplan
        for position in sorted(self.queues):
            s = plan[position]
            for i, w in enumerate(self.instruction_stream(position)):
                try:
                    spec.check(int(w), s.kind, self.config)
                except spec.IllegalInstruction as e:
                    raise ProgramError(f"queue {s.name} (position {position}) instruction {i}: "
                                       f"{e.reason}") from None

    # ---- comparing --------------------------------------------------------
    def __eq__(self, other):
        """Same config, same queues (including empty ones), same memory contents in any segment order."""
        if not isinstance(other, Program):
            return NotImplemented

        def queues(p):
            return {int(k): [int(w) for w in v] for k, v in p.queues.items()}
        return (self.config == other.config and queues(self) == queues(other)
                and _sorted_segments(self.memory) == _sorted_segments(other.memory) and self.code == other.code)

    __hash__ = None


def resolve_slice(config: ChipConfig, slice: str | int) -> Slice:
    """A floorplan slice by name or position; ProgramError lists what exists."""
    plan = config.floorplan
    if isinstance(slice, (int, np.integer)) and not isinstance(slice, bool):
        if 0 <= slice < len(plan):
            return plan[slice]
        raise ProgramError(f"config {config.name!r} has no slice at position {slice}; "
                           f"positions are 0..{len(plan) - 1}")
    try:
        return config.slice_named(str(slice))
    except ConfigError as e:
        raise ProgramError(str(e)) from None


def _describe(s: Slice) -> str:
    return f"{s.name} (position {s.position})"


def _isa_version() -> str:
    return f"{spec.ISA_VERSION[0]}.{spec.ISA_VERSION[1]}"


def _sorted_segments(segments: list[MemSegment]) -> list[MemSegment]:
    return sorted(segments, key=lambda s: (s.position, s.addr, len(s.data)))


def _as_word_bytes(data, lanes: int) -> np.ndarray:
    """Byte values -> uint8 [n, lanes], refusing values that would silently wrap."""
    a = np.asarray(data)
    if a.dtype != np.uint8:
        if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() > 255):
            raise ProgramError(f"memory data must be byte values 0..255, got dtype {a.dtype}")
        a = a.astype(np.uint8)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != lanes:
        raise ProgramError(f"memory data shape {a.shape} is not [n, lanes={lanes}]")
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------
# Serialisation
# --------------------------------------------------------------------------
def to_bytes(program: Program) -> bytes:
    """Serialise a program (after validate(); never writes an image load would refuse)."""
    program.validate()
    cfg = program.config
    name = cfg.name.encode("ascii", errors="replace")
    if len(name) > CONFIG_NAME_BYTES or not cfg.name.isascii():
        raise ImageError(f"image: config name {cfg.name!r} is not ASCII of at most {CONFIG_NAME_BYTES} bytes")
    if len(program.memory) > 0xFFFF:
        raise ImageError(f"image: {len(program.memory)} memory segments exceed the format's 65535; merge them")
    if len(program.code) > 0xFFFF:
        raise ImageError(f"image: {len(program.code)} code segments exceed the format's 65535")
    out = bytearray(_HEADER.pack(MAGIC, *FORMAT_VERSION, *spec.ISA_VERSION, name,
                                 config_fingerprint(cfg), len(program.queues), len(program.memory),
                                 len(program.code)))
    for position in sorted(program.queues):
        words = program.queues[position]
        out += _QUEUE_HEAD.pack(position, len(words))
        out += np.asarray([int(w) for w in words], dtype="<u8").tobytes()
    for seg in _sorted_segments(program.memory):
        out += _MEM_HEAD.pack(seg.position, seg.addr, len(seg.data))
        out += np.ascontiguousarray(seg.data, dtype=np.uint8).tobytes()
    for c in program.code:
        out += _CODE.pack(c.queue, c.mem, c.addr, c.words)
    out += _TRAILER.pack(zlib.crc32(out))
    return bytes(out)


class _Reader:
    """Sequential reader that reports truncation with the offset and the field being read."""

    def __init__(self, blob: bytes):
        self.blob = blob
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.blob):
            raise ImageError(f"image offset {self.offset}: truncated while reading {what} "
                             f"(need {size} bytes, {len(self.blob) - self.offset} left)")
        chunk = self.blob[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]


def from_bytes(blob: bytes, config: ChipConfig | None = None) -> Program:
    """Parse and validate an image; every failure is an ImageError naming field and offset.

    Order matters for useful messages: magic and format version come first (a
    future format may move the checksum); truncation is reported as such; any
    other inconsistency is blamed on its field only once the checksum shows the
    bytes are intact, otherwise it is reported as a checksum mismatch.
    """
    blob = bytes(blob)
    r = _Reader(blob)
    if len(blob) < len(MAGIC) or blob[:len(MAGIC)] != MAGIC:
        raise ImageError(f"image offset 0: bad magic {blob[:len(MAGIC)]!r} (expected {MAGIC!r}); "
                         f"not a program image")
    r.take(len(MAGIC), "magic")
    major = r.unpack("<H", "image format version major")
    minor = r.unpack("<H", "image format version minor")
    if major not in (1, FORMAT_VERSION[0]):
        raise ImageError(f"image offset 4: unsupported image format version {major}.{minor} "
                         f"(this tool reads 1.x and {FORMAT_VERSION[0]}.x)")

    def checksum_error() -> ImageError | None:
        if len(blob) < HEADER_BYTES + _TRAILER.size:
            return None
        stored = _TRAILER.unpack_from(blob, len(blob) - _TRAILER.size)[0]
        computed = zlib.crc32(blob[:-_TRAILER.size])
        if stored != computed:
            return ImageError(f"image: checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
        return None

    def fail(offset: int, message: str):
        raise checksum_error() or ImageError(f"image offset {offset}: {message}")

    isa_major = r.unpack("<B", "ISA version major")
    isa_minor = r.unpack("<B", "ISA version minor")
    raw_name = r.take(CONFIG_NAME_BYTES, "config name")
    fingerprint = r.unpack("<I", "config fingerprint")
    n_queues = r.unpack("<H", "queue section count")
    n_mems = r.unpack("<H", "memory section count")
    n_code = r.unpack("<H", "code section count") if major >= 2 else 0

    if isa_major != spec.ISA_VERSION[0]:
        fail(8, f"image is for ISA {isa_major}.{isa_minor}; this tool implements ISA {_isa_version()}")
    try:
        name = raw_name.rstrip(b"\0").decode("ascii")
        if "\0" in name:
            raise UnicodeDecodeError("ascii", raw_name, 0, 1, "NUL inside name")
    except UnicodeDecodeError:
        fail(10, f"config name {raw_name!r} is not NUL-padded ASCII")
    if config is None:
        config = PRESETS.get(name)
        if config is None:
            fail(10, f"unknown config name {name!r}; presets are {', '.join(PRESETS)} "
                     f"(pass the config explicitly to load other configurations)")
    elif config.name != name:
        fail(10, f"image was built for config {name!r}, not {config.name!r}")
    expected = config_fingerprint(config)
    if fingerprint != expected:
        fail(26, f"config fingerprint {fingerprint:#010x} does not match {expected:#010x}: the image "
                 f"was built for a different config definition of {name!r}")

    plan = config.floorplan
    with_queue = spec.kinds_with_queues(config)
    program = Program.empty(config)
    for i in range(n_queues):
        at = r.offset
        position = r.unpack("<H", f"queue section {i} position")
        count = r.unpack("<I", f"queue section {i} word count")
        words = np.frombuffer(r.take(8 * count, f"queue section {i} words ({count} words)"), dtype="<u8")
        if position >= len(plan):
            fail(at, f"queue section {i}: no slice at position {position} (config {config.name!r} has "
                     f"positions 0..{len(plan) - 1})")
        s = plan[position]
        if s.kind not in with_queue:
            fail(at, f"queue section {i}: queue for {_describe(s)}: {s.kind.value} slices have no "
                     f"instruction queue in ISA {_isa_version()}")
        if position in program.queues:
            fail(at, f"queue section {i}: second queue section for {_describe(s)}")
        if count > config.queue_depth:
            fail(at + 2, f"queue section {i}: {count} instructions for {_describe(s)} exceed "
                         f"queue_depth {config.queue_depth}")
        program.queues[position] = [int(w) for w in words]
    extents: dict[int, list[tuple[int, int, int]]] = {}   # position -> [(first, end, section)]
    for i in range(n_mems):
        at = r.offset
        position = r.unpack("<H", f"memory section {i} position")
        addr = r.unpack("<I", f"memory section {i} address")
        n = r.unpack("<I", f"memory section {i} word count")
        data = r.take(n * config.lanes, f"memory section {i} data ({n} words of {config.lanes} bytes)")
        if position >= len(plan) or plan[position].kind != SliceKind.MEM:
            what = _describe(plan[position]) if position < len(plan) else f"position {position}"
            fail(at, f"memory section {i}: {what} is not a MEM slice")
        if n == 0:
            fail(at + 6, f"memory section {i}: empty (0 words) for {plan[position].name}")
        if addr + n > config.mem_words:
            fail(at + 2, f"memory section {i}: words {addr}..{addr + n - 1} outside 0..{config.mem_words - 1} "
                         f"of {plan[position].name}")
        for first, end, j in extents.setdefault(position, []):
            if addr < end and first < addr + n:
                fail(at + 2, f"memory section {i}: words {addr}..{addr + n - 1} of {plan[position].name} "
                             f"overlap memory section {j} (words {first}..{end - 1})")
        extents[position].append((addr, addr + n, i))
        program.memory.append(MemSegment(position, addr,
                                         np.frombuffer(data, np.uint8).reshape(n, config.lanes).copy()))
    for i in range(n_code):
        queue = r.unpack("<H", f"code section {i} queue position")
        mem = r.unpack("<H", f"code section {i} MEM position")
        addr = r.unpack("<I", f"code section {i} address")
        words = r.unpack("<I", f"code section {i} word count")
        program.code.append(CodeSegment(queue, mem, addr, words))
    trailer_at = r.offset
    r.take(_TRAILER.size, "checksum")
    if r.offset != len(blob):
        fail(trailer_at, f"{len(blob) - r.offset} unexpected bytes between the last section and the checksum")
    error = checksum_error()
    if error:
        raise error
    try:
        program.validate()
    except ProgramError as e:
        raise ImageError(f"image: {e}") from None
    return program


def save(program: Program, path) -> None:
    Path(path).write_bytes(to_bytes(program))


def load(path, config: ChipConfig | None = None) -> Program:
    return from_bytes(Path(path).read_bytes(), config)
