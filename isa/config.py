"""Chip configuration: one frozen dataclass and the named presets.

Everything that sizes the machine lives here, once. The floorplan (which slice
sits at which stream position) is derived from these numbers, never written by
hand, so a new configuration is a new `ChipConfig(...)` and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict, field
from enum import Enum


# Lanes per superlane, as in the published chip (320 lanes = 20 superlanes of 16).
SUPERLANE_LANES = 16


class ConfigError(ValueError):
    """An impossible or unsupported configuration value."""


class SliceKind(str, Enum):
    MXM = "MXM"
    SXM = "SXM"
    MEM = "MEM"
    VXM = "VXM"
    C2C = "C2C"


@dataclass(frozen=True)
class Slice:
    """One functional slice at one stream position (0 = westmost)."""
    position: int
    kind: SliceKind
    name: str


@dataclass(frozen=True)
class ChipConfig:
    """One machine: its sizes, and the latencies where they differ from isa/spec.py `TIMING`.

    `latency` overrides TIMING entries for this configuration, as ((key, cycles), ...) pairs (a
    tuple, so the config stays hashable): an implementation with more pipeline registers than
    the base table (an FPGA, whose MXM and VXM need one more stage to close timing) is the same
    ISA with longer latencies. Everything reads the result through `isa.spec.timing(config)`,
    which also rejects unknown keys and latencies below 1."""
    name: str
    lanes: int            # bytes per stream vector
    streams: int          # streams per direction
    mem_slices: int       # MEM slices per hemisphere
    mem_words: int        # vectors (words) per MEM slice
    mxm: int              # MXM planes per hemisphere
    c2c_links: int        # chip-to-chip links
    queue_depth: int      # instruction words per slice queue
    vxm_alus: int = 4     # independent ALUs per VXM lane (each an engine with its own instruction stream)
    vxm_regs: int = 8     # VXM registers (one int32 per lane each): broadcast scalars, per-lane parameters
    sxm_width: int = 8    # most streams one SXM instruction moves at once (its crossbars' width)
    sxm: int = 1          # SXM slices per hemisphere: 1, or 0 for a chip without one (the fpga preset)
    mxm_east: int = 1     # 1: the east hemisphere has `mxm` MXMs as the west has; 0: only the west has them
    vxm_omit: tuple[str, ...] = ()   # VXM ALU ops this chip leaves out (mnemonics; illegal opcodes on it)
    mxm_acc_rows: int = 512   # int32 accumulator rows (vectors of lanes) per MXM
    c2c_lanes: int = 4        # physical lanes per chip-to-chip link (isa/link.py)
    c2c_lane_bits: int = 18   # bits each lane carries per cycle
    c2c_depth: int = 16       # vectors a link's send and receive buffers hold (most one SEND takes)
    c2c_skew: int = 7         # most cycles one lane of a link may lag another; training pads the rest
    latency: tuple[tuple[str, int], ...] = ()   # overrides of isa/spec.py TIMING: ((key, cycles), ...)
    description: str = field(default="", compare=False)

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ConfigError(f"config {self.name!r}: {msg}")
        for f in ("lanes", "streams", "mem_slices", "mem_words", "queue_depth"):
            v = getattr(self, f)
            need(isinstance(v, int) and v > 0, f"{f} must be a positive integer, got {v!r}")
        for f in ("vxm_alus", "vxm_regs", "sxm_width"):
            v = getattr(self, f)
            need(isinstance(v, int) and v > 0, f"{f} must be a positive integer, got {v!r}")
        need(self.vxm_alus <= 16, f"vxm_alus must be <= 16 (4-bit alu field), got {self.vxm_alus}")
        need(_pow2(self.mxm_acc_rows) and self.mxm_acc_rows <= 1 << 16,
             f"mxm_acc_rows must be a power of two <= 65536, got {self.mxm_acc_rows}")
        for f in ("c2c_lanes", "c2c_lane_bits", "c2c_depth"):
            v = getattr(self, f)
            need(isinstance(v, int) and v > 0, f"{f} must be a positive integer, got {v!r}")
        need(self.c2c_lane_bits >= 4, f"c2c_lane_bits must be >= 4 (the training markers), got {self.c2c_lane_bits}")
        need(self.c2c_lanes <= 64, f"c2c_lanes must be <= 64, got {self.c2c_lanes}")
        need(_pow2(self.c2c_depth) and self.c2c_depth <= 256,
             f"c2c_depth must be a power of two <= 256, got {self.c2c_depth}")
        need(isinstance(self.c2c_skew, int) and 0 <= self.c2c_skew <= 63,
             f"c2c_skew must be an integer in 0..63, got {self.c2c_skew!r}")
        need(self.vxm_regs <= 16, f"vxm_regs must be <= 16 (4-bit register field), got {self.vxm_regs}")
        need(self.sxm in (0, 1), f"sxm must be 0 or 1 (SXM slices per hemisphere), got {self.sxm!r}")
        need(self.mxm_east in (0, 1), f"mxm_east must be 0 or 1 (the east hemisphere's MXMs: none or as the west's), "
                                      f"got {self.mxm_east!r}")
        need(isinstance(self.vxm_omit, tuple) and all(isinstance(n, str) for n in self.vxm_omit)
             and list(self.vxm_omit) == sorted(set(self.vxm_omit)),
             f"vxm_omit must be a sorted tuple of distinct ALU mnemonics, got {self.vxm_omit!r}")
        for f in ("mxm", "c2c_links"):
            v = getattr(self, f)
            need(isinstance(v, int) and v >= 0, f"{f} must be a non-negative integer, got {v!r}")
        need(self.lanes >= 8, f"lanes must be >= 8 (a stream vector carries at least one instruction word), "
                              f"got {self.lanes}")
        need(self.lanes % 4 == 0, f"lanes must be a multiple of 4 (int32 byte planes), got {self.lanes}")
        need(self.lanes <= 512, f"lanes must be <= 512, got {self.lanes}")
        need(self.streams <= 64, f"streams must be <= 64 (6-bit stream field), got {self.streams}")
        need(self.streams >= 4, f"streams must be >= 4 (an int32 stream group), got {self.streams}")
        need(isinstance(self.name, str) and self.name.isascii() and 0 < len(self.name) <= 16
             and self.name.isidentifier(), f"name must be an ASCII identifier of at most 16 characters")
        need(self.c2c_links <= 31, f"c2c_links must be <= 31 (SYNC_TREE's 5-bit link index), got {self.c2c_links}")
        n_pos = 2 * self.mem_slices + (1 + self.mxm_east) * self.mxm + 2 * self.sxm + 1 + self.c2c_links
        need(n_pos <= 255, f"at most 255 slice positions (8-bit position fields), got {n_pos}")
        need(self.mem_words >= 2, f"mem_words must be at least 2, got {self.mem_words}")
        need(_pow2(self.mem_words), f"mem_words must be a power of two (addresses wrap), got {self.mem_words}")
        need(self.mem_words <= 1 << 16, f"mem_words must be <= 65536 (16-bit address field), got {self.mem_words}")
        need(_pow2(self.queue_depth) and self.queue_depth <= 1 << 16,
             f"queue_depth must be a power of two <= 65536, got {self.queue_depth}")
        need(self.queue_depth >= 2 * self.fetch_words,
             f"queue_depth must be at least 2 x fetch_words ({2 * self.fetch_words}), got {self.queue_depth}")
        need(self.sxm_width <= self.streams, f"sxm_width must be <= streams ({self.streams}), got {self.sxm_width}")
        need(isinstance(self.latency, tuple) and all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int)
            and not isinstance(p[1], bool) for p in self.latency),
            f"latency must be a tuple of (TIMING key, cycles) pairs, got {self.latency!r}")
        keys = [k for k, _ in self.latency]
        need(len(set(keys)) == len(keys),
             f"latency overrides {sorted({k for k in keys if keys.count(k) > 1})} more than once")

    # ---- derived quantities -------------------------------------------------
    @property
    def floorplan(self) -> tuple[Slice, ...]:
        """West to east: C2C.. | MXM.. | SXM | MEM.. | VXM | MEM.. | SXM | MXM.. | C2C.. (no SXMs with
        sxm 0, no east MXMs with mxm_east 0)

        The chip-to-chip link slices sit at the edges, the west ones (ceil(c2c_links / 2)) before
        the east ones; index 0 of each kind is nearest the VXM."""
        kinds: list[tuple[SliceKind, str]] = []
        west = self.c2c_links - self.c2c_links // 2
        kinds += [(SliceKind.C2C, f"C2C_W{i}") for i in reversed(range(west))]
        kinds += [(SliceKind.MXM, f"MXM_W{i}") for i in reversed(range(self.mxm))]
        kinds += [(SliceKind.SXM, "SXM_W")] * self.sxm
        kinds += [(SliceKind.MEM, f"MEM_W{i}") for i in reversed(range(self.mem_slices))]
        kinds += [(SliceKind.VXM, "VXM")]
        kinds += [(SliceKind.MEM, f"MEM_E{i}") for i in range(self.mem_slices)]
        kinds += [(SliceKind.SXM, "SXM_E")] * self.sxm
        kinds += [(SliceKind.MXM, f"MXM_E{i}") for i in range(self.mxm * self.mxm_east)]
        kinds += [(SliceKind.C2C, f"C2C_E{i}") for i in range(self.c2c_links // 2)]
        return tuple(Slice(p, k, n) for p, (k, n) in enumerate(kinds))

    @property
    def positions(self) -> int:
        return len(self.floorplan)

    def slices_of(self, kind: SliceKind) -> tuple[Slice, ...]:
        return tuple(s for s in self.floorplan if s.kind == kind)

    def slice_named(self, name: str) -> Slice:
        for s in self.floorplan:
            if s.name == name:
                return s
        raise ConfigError(f"config {self.name!r} has no slice named {name!r}; "
                          f"slices are {', '.join(s.name for s in self.floorplan)}")

    @property
    def word_bits(self) -> int:
        return self.lanes * 8

    @property
    def superlane_lanes(self) -> int:
        """Lanes per superlane, the unit the fabric is cut into lengthwise (hdl/superlane.py):
        SUPERLANE_LANES, or the whole vector when lanes is not a multiple of it."""
        return SUPERLANE_LANES if self.lanes % SUPERLANE_LANES == 0 else self.lanes

    @property
    def superlanes(self) -> int:
        return self.lanes // self.superlane_lanes

    @property
    def superlane_bits(self) -> int:
        return self.superlane_lanes * 8

    @property
    def fetch_words(self) -> int:
        """Instruction words one IFETCH vector carries: the largest power of two that fits in a vector
        (a power of two keeps the queue's ring of rows a power of two deep)."""
        n = self.lanes * 8 // 64
        return 1 << (n.bit_length() - 1)

    @property
    def mem_addr_bits(self) -> int:
        return (self.mem_words - 1).bit_length() or 1

    @property
    def mxm_sides(self) -> int:
        """Hemispheres with an MXM: 2, 1 (mxm_east 0) or 0 (no MXM)."""
        return (1 + self.mxm_east) if self.mxm else 0

    @property
    def sram_bytes(self) -> int:
        return 2 * self.mem_slices * self.mem_words * self.lanes

    def to_dict(self) -> dict:
        """Everything that defines the machine (the description is not part of it). Latency
        overrides are part of it when there are any; without any the entry is left out, so the
        fingerprint (isa/image.py) of a configuration on the base table is what it always was."""
        d = asdict(self)
        del d["description"]
        if not self.latency:
            del d["latency"]
        if self.sxm == 1:       # likewise the SXMs every configuration had before `sxm` existed
            del d["sxm"]
        if self.mxm_east == 1:  # and the east MXMs before `mxm_east`
            del d["mxm_east"]
        if not self.vxm_omit:   # and the VXMs with every ALU op before `vxm_omit`
            del d["vxm_omit"]
        else:
            d["vxm_omit"] = list(self.vxm_omit)
        d["floorplan"] = [s.name for s in self.floorplan]
        return d


def _pow2(v) -> bool:
    return isinstance(v, int) and v > 0 and v & (v - 1) == 0


PRESETS: dict[str, ChipConfig] = {c.name: c for c in (
    ChipConfig("tiny", lanes=16, streams=8, mem_slices=2, mem_words=8192, mxm=1, c2c_links=2,
               queue_depth=1024, vxm_alus=4, vxm_regs=8, sxm_width=8, mxm_acc_rows=512,
               description="simulation default: narrow fabric, deep SRAM (512 KiB)"),
    ChipConfig("fpga", lanes=8, streams=4, mem_slices=2, mem_words=4096, mxm=1, c2c_links=0,
               queue_depth=512, vxm_alus=1, vxm_regs=4, sxm_width=2, sxm=0, mxm_acc_rows=256,
               vxm_omit=("CMPEQ", "CMPLE", "CMPLT", "MULW", "SELECT", "SHL", "SHR", "SRA"),
               latency=(("mem_read_check", 3), ("mem_read_drive", 4), ("mem_write_commit", 3), ("mxm_acc_write", 5),
                        ("vxm_drive", 5), ("ifetch_write", 3), ("error_stop", 1)),
               description="fits an ECP5-85F (docs/FPGA.md): 8 lanes, 4 streams, 1 ALU without the ops no kernel uses "
                           "(shifts, compares, SELECT, MULW), 128 KiB SRAM, no SXM, no links; "
                           "registers after the SRAM and before it (the ECC check bits), after the MXM's and VXM's DSP "
                           "blocks, before the accumulators and after the instruction decoders"),
    ChipConfig("tsp", lanes=320, streams=32, mem_slices=44, mem_words=8192, mxm=2, c2c_links=16,
               queue_depth=4096, vxm_alus=16, vxm_regs=8, sxm_width=16, mxm_acc_rows=1024, c2c_lane_bits=36,
               description="published TSP dimensions; emit only (takes minutes)"),
)}

DEFAULT = "tiny"


def get_config(name: str) -> ChipConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown configuration {name!r}; presets are: {', '.join(PRESETS)}") from None
