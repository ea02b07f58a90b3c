"""How tensors sit in SRAM: the word layout, byte planes, copies, and the SRAM allocator.

Word layout. A tensor of shape (..., R, C) is viewed as `nb` batches of an R x C matrix (nb =
product of the leading dimensions; a 1-D tensor is 1 x C). Columns are cut into tiles of
`lanes`; one word holds one row of one tile, and the words run batch-major, then tile, then
row:  word(b, tile, r) = (b * tiles + tile) * rows_padded + r.  This is exactly what the MXM
wants: a MATMUL streams the rows of one K tile of A, an LW the 16 rows of one K x N tile of B,
and an ACCREAD's rows land as the rows of one output column tile, so a layer's output is the
next layer's A without any reshuffling.

Images. A 4-D tensor is an (N, C, H, W) image, held channels-last: the N*H*W x C matrix of its
pixels (rows, image-major, then row, then column) by channels. A convolution is then a GEMM
over pixel rows whose K tiles are read at shifted pixel addresses (compiler/gather.py), and
its output is the next convolution's input as it stands.

Byte planes. An element of b bytes occupies b words at the same word index, one per byte
plane (little-endian), each in a different MEM slice, because a stream group of b streams is
fed by b READs on the same cycle.

Copies. A tensor can be held in several places (a `Copy` each: one (slice, address) per plane,
and optionally only a range of column tiles), so that two MXMs, or both operands of an add, can
stream at full rate from different read engines.

Stored values. uint8 tensors may be stored with an offset of 128 (stored = value - 128, i.e.
the sign bit flipped), which is how the VXM's signed int8 requantization produces uint8
results; the host adds the offset back when it reads them (see docs/COMPILER.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isa.config import ChipConfig, SliceKind

from .graph import CompileError


NBYTES = {np.dtype(np.int8): 1, np.dtype(np.uint8): 1, np.dtype(np.int16): 2, np.dtype(np.uint16): 2,
          np.dtype(np.int32): 4}            # element type -> bytes (byte planes) the chip holds it in


@dataclass(frozen=True)
class Layout:
    shape: tuple[int, ...]
    nbytes: int
    lanes: int
    rows_padded: int = 0          # 0: the logical row count

    @property
    def image(self) -> bool:
        """(N, C, H, W), held as the N*H*W x C matrix of pixels by channels."""
        return len(self.shape) == 4

    @property
    def nb(self) -> int:
        return int(np.prod(self.shape[:-2], dtype=np.int64)) if len(self.shape) > 2 and not self.image else 1

    @property
    def rows(self) -> int:
        if self.image:
            n, _, h, w = self.shape
            return n * h * w
        return self.shape[-2] if len(self.shape) >= 2 else 1

    @property
    def cols(self) -> int:
        return self.shape[1] if self.image else self.shape[-1] if self.shape else 1

    def matrix(self, values: np.ndarray) -> np.ndarray:
        """Values of the logical shape -> nb x rows x cols (an image: pixels by channels)."""
        v = np.asarray(values)
        if self.image:
            v = v.transpose(0, 2, 3, 1)
        return v.reshape(self.nb, self.rows, self.cols)

    def unmatrix(self, m: np.ndarray) -> np.ndarray:
        """The inverse of `matrix`."""
        if self.image:
            n, c, h, w = self.shape
            return m.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        return m.reshape(self.shape)

    @property
    def rows_p(self) -> int:
        return self.rows_padded or self.rows

    @property
    def tiles(self) -> int:
        return -(-self.cols // self.lanes)

    def word(self, b: int, tile: int, row: int, tile_lo: int = 0, tiles: int | None = None) -> int:
        return (b * (tiles or self.tiles) + tile - tile_lo) * self.rows_p + row

    def words(self, tiles: int | None = None) -> int:
        return self.nb * (tiles or self.tiles) * self.rows_p


@dataclass
class Copy:
    planes: list[tuple[int, int]]            # per byte plane: (slice position, first word address)
    tile_lo: int = 0
    tile_hi: int | None = None               # None: all tiles

    def tiles(self, layout: Layout) -> tuple[int, int]:
        return self.tile_lo, layout.tiles if self.tile_hi is None else self.tile_hi

    def addr(self, layout: Layout, plane: int, b: int, tile: int, row: int) -> int:
        lo, hi = self.tiles(layout)
        if not lo <= tile < hi:
            raise AssertionError(f"tile {tile} is not held by this copy ({lo}..{hi - 1})")
        return self.planes[plane][1] + layout.word(b, tile, row, lo, hi - lo)


@dataclass
class Placed:
    """A tensor as the chip holds it."""
    name: str
    dtype: np.dtype               # the logical element type
    layout: Layout
    offset: int = 0               # stored = (value - offset) mod 2**8 (uint8 only: 0 or 128)
    pad: int = 0                  # value of padding elements (rows and columns beyond the shape)
    copies: list[Copy] = field(default_factory=list)
    ready: int = 0                # first cycle a READ access may see every word (host data: 0)
    host: bool = False            # loaded by the host (an input or a constant)
    free_after: int = -1          # its words held another tensor until this cycle (a READ access):
                                  # no WRITE of it may commit before the cycle after
    last_read: int = -1           # the last cycle a READ of it accesses SRAM (so far)
    pinned: bool = False          # never released (another name shares its words: an alias, a view)
    released: bool = False        # its words went back to the allocator

    # ---- host side: values <-> words ------------------------------------------------
    def pack(self, values: np.ndarray) -> np.ndarray:
        """Values of the logical shape -> words [plane][nb, tiles, rows_p, lanes] as uint8."""
        L, lay = self.layout.lanes, self.layout
        v = lay.matrix(np.asarray(values).astype(np.int64))
        full = np.full((lay.nb, lay.rows_p, lay.tiles * L), self.pad, np.int64)
        full[:, :lay.rows, :lay.cols] = v
        stored = (full - self.offset) & ((1 << (8 * lay.nbytes)) - 1)
        tiled = stored.reshape(lay.nb, lay.rows_p, lay.tiles, L).transpose(0, 2, 1, 3)
        return np.stack([((tiled >> (8 * j)) & 0xFF).astype(np.uint8) for j in range(lay.nbytes)])

    def segments(self, values: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """(slice position, address, words) for every plane of every copy."""
        planes = self.pack(values)
        out = []
        for c in self.copies:
            lo, hi = c.tiles(self.layout)
            for j, (pos, addr) in enumerate(c.planes):
                out.append((pos, addr, planes[j][:, lo:hi].reshape(-1, self.layout.lanes)))
        return out

    def unpack(self, planes: list[np.ndarray]) -> np.ndarray:
        """Words of each plane of a whole-tensor copy -> values of the logical shape."""
        lay, L = self.layout, self.layout.lanes
        acc = np.zeros((lay.nb, lay.tiles, lay.rows_p, L), np.int64)
        for j, words in enumerate(planes):
            acc |= np.asarray(words, np.int64).reshape(lay.nb, lay.tiles, lay.rows_p, L) << (8 * j)
        bits = 8 * lay.nbytes
        acc = (acc + self.offset) & ((1 << bits) - 1)
        if self.dtype.kind == "i":
            acc = np.where(acc >= 1 << (bits - 1), acc - (1 << bits), acc)
        m = acc.transpose(0, 2, 1, 3).reshape(lay.nb, lay.rows_p, lay.tiles * L)[:, :lay.rows, :lay.cols]
        return lay.unmatrix(m).astype(self.dtype)

    def copies_from_tile(self, t0: int) -> list[Copy]:
        """Its whole copies seen from column tile t0 on (one batch): where a part of its columns,
        from channel t0 * lanes, is written as a tensor of its own."""
        rows = self.layout.rows_p
        return [Copy([(p, a + t0 * rows) for p, a in c.planes]) for c in self.copies]

    def whole_copy(self) -> Copy:
        for c in self.copies:
            if c.tile_lo == 0 and c.tile_hi is None:
                return c
        raise AssertionError(f"{self.name}: no copy holds the whole tensor")


class Sram:
    """Per-slice allocation: a bump pointer, and holes left by released tensors (liveness: a
    tensor, a chip result or a host input, is released after its last reader, and its words go to
    a later result, which may not be written before that reader's last access)."""

    def __init__(self, config: ChipConfig):
        self.config = config
        self.mems = [s.position for s in config.slices_of(SliceKind.MEM)]
        self.top = {p: 0 for p in self.mems}
        self.need = {p: 0 for p in self.mems}        # what was asked for, even past the end
        self.holes = {p: [] for p in self.mems}      # [addr, words, free after cycle], by address
        self.reused = 0                              # words handed out a second time (stats)

    def alloc(self, position: int, words: int) -> int:
        addr = self.top[position]
        self.top[position] += words
        self.need[position] += words
        return addr

    def alloc_reuse(self, position: int, words: int) -> tuple[int, int]:
        """(address, the cycle after which it may be written): the smallest hole that fits (its
        earliest-freed end first), else new words (-1)."""
        fits = [h for h in self.holes[position] if h[1] >= words]
        if not fits:
            return self.alloc(position, words), -1
        h = min(fits, key=lambda h: (h[1], h[2]))
        addr, after = h[0], h[2]
        h[0] += words
        h[1] -= words
        if h[1] == 0:
            self.holes[position].remove(h)
        self.reused += words
        return addr, after

    def release(self, position: int, addr: int, words: int, after: int) -> None:
        """Words that may be reused by a result written after cycle `after`; a hole that joins a
        neighbour merges with it (the later cycle of the two)."""
        hs = self.holes[position]
        hs.append([addr, words, after])
        hs.sort()
        merged = [hs[0]]
        for h in hs[1:]:
            last = merged[-1]
            if last[0] + last[1] == h[0]:
                last[1] += h[1]
                last[2] = max(last[2], h[2])
            else:
                merged.append(h)
        self.holes[position] = merged

    def check(self) -> None:
        cfg = self.config
        over = {p: n for p, n in self.need.items() if n > cfg.mem_words}
        if over:
            total = sum(self.need.values()) * cfg.lanes
            worst = max(over, key=over.get)
            raise CompileError(
                f"the model does not fit in SRAM: it needs {total} bytes (tensors, copies, padding and instructions kept in SRAM), config "
                f"{cfg.name!r} has {cfg.sram_bytes} bytes; {cfg.floorplan[worst].name} would need {over[worst]} "
                f"words of {cfg.mem_words}")

    def used_bytes(self) -> int:
        return sum(self.need.values()) * self.config.lanes
