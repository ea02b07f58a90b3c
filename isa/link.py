"""Chip-to-chip link format, as data: frames, flits, forward error correction, training, latency.

A link is full duplex; each direction has `c2c_lanes` physical lanes carrying `c2c_lane_bits`
bits per cycle. It is far narrower than a stream vector (as in the published chip), so a vector
travels as one *frame* spread over `flits` cycles:

* A frame is `codewords` SECDED (72, 64) codewords (isa/ecc.py `code_for(64)`, 12.5 % check
  bits): codeword 0 is the header (`HEADER`: frame kind, the sender's stamp), codewords 1.. carry
  the vector's bits 64(i-1) .. 64i-1 (the last one zero-padded).
* The codewords are bit-interleaved: frame bit j is bit j // codewords of codeword
  j % codewords. So any burst of up to `codewords` consecutive bits on one lane puts at most one
  error into each codeword (corrected), and a burst of up to 2 x `codewords` at most two
  (detected).
* Flit f (cycle f of the frame), lane l, bit b carries frame bit f*flit_bits + l*lane_bits + b;
  bits past the frame are zero.

The transmitter sends frames back to back, one every `flits` cycles, whether or not it has a
vector to send (an IDLE frame then), so the receiver never looks for frame boundaries after
training. Error handling never changes timing: the decoder takes its full latency on clean
frames too, and a frame with an uncorrectable codeword is still delivered in its slot, marked
bad (RECV of it stops the chip with LINK_FEC).

Training (at reset): the transmitter sends TRAIN_CYCLES cycles of FILL on every lane, one cycle
of END, then frame 0. The receiver notes the cycle each lane shows END, delays every lane to the
slowest one (so lanes arriving up to `c2c_skew` cycles apart line up), and takes the cycle after
the slowest END as the start of frame 0. A lane that shows END more than `c2c_skew` cycles after
the first, or no END within TRAIN_TIMEOUT cycles of reset, fails training: the link is down and a
SEND or RECV on it stops the chip with LINK_DOWN.

Latency: the system description (isa/system.py) gives each link a logical latency L. Element k
of a SEND issued on t has link time tau = t + c2c_send_sample + k * flits; on the other chip the
vector may be taken by a RECV element sampled on tau + L or later (the receiver compares the
frame's stamp, tau, against its own cycle, so the latency is exactly L for any physical delay
that is at most L). `min_latency` is the least L the hardware meets.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

import numpy as np

from .config import ChipConfig
from .ecc import code_for

CODEWORD_DATA = 64
FEC = code_for(CODEWORD_DATA)              # SECDED (72, 64)
CODEWORD_BITS = FEC.word_bits
assert CODEWORD_BITS == 72

TRAIN_CYCLES = 16       # FILL cycles before END
TRAIN_DELAY = 8         # cycles after reset before the transmitter starts training
TRAIN_TIMEOUT = 256     # cycles after reset by which the receiver must be trained, or the link is down


class FrameKind(IntEnum):
    IDLE = 0            # nothing to send in this slot
    DATA = 1            # one stream vector


@dataclass(frozen=True)
class HeaderField:
    name: str
    lsb: int
    width: int


HEADER: tuple[HeaderField, ...] = (
    HeaderField("kind", 0, 2),          # FrameKind
    HeaderField("stamp", 2, 32),        # DATA: the vector's link time tau (the sender's cycle count)
    HeaderField("hac", 34, 16),         # every frame: the sender's HAC on the cycle the frame was loaded
    HeaderField("delta", 50, 14),       # every frame: the last HAC that arrived from the peer minus the
                                        # sender's own on that cycle (modulo 2^14): the round trip, for the peer
)
HAC_BITS = 16
DELTA_BITS = 14


class MsgKind(IntEnum):
    """What an IDLE frame says about the SYNC barrier (hdl/sync.py)."""
    NONE = 0
    QUIET = 1           # child -> parent: my subtree is quiet in `round`; `value` its latest T bound
    RELEASE = 2         # parent -> child: release `round` when the HAC reaches `at`, at program time `value`


# The barrier message an IDLE frame carries in its first payload codeword (DATA frames carry none:
# a chip sends messages only when it is quiet, and then its send buffers drain into IDLE frames).
MESSAGE: tuple[HeaderField, ...] = (
    HeaderField("kind", 0, 2),          # MsgKind
    HeaderField("round", 2, 1),         # parity of the SYNCs the sender has released since START
    HeaderField("value", 3, 32),        # QUIET: max over the subtree of q + sync_release; RELEASE: T
    HeaderField("at", 35, 16),          # RELEASE: the HAC value the release happens on
)
MESSAGE_BITS = 51


def header(**values: int) -> int:
    return _pack(HEADER, values)


def header_fields(word: int) -> dict[str, int]:
    return {f.name: word >> f.lsb & ((1 << f.width) - 1) for f in HEADER}


def message(**values: int) -> int:
    return _pack(MESSAGE, values)


def _pack(fields, values: dict) -> int:
    out = 0
    for f in fields:
        v = int(values.pop(f.name, 0))
        assert 0 <= v < 1 << f.width, (f.name, v)
        out |= v << f.lsb
    assert not values, f"unknown fields {sorted(values)}"
    return out


def lane_patterns(lane_bits: int) -> dict[str, int]:
    """The training words one lane carries: FILL (bits 1, 3, 5.. set) and END (bits 0, 1, 4, 5, ..)."""
    fill = sum(1 << b for b in range(1, lane_bits, 2))
    end = sum(1 << b for b in range(lane_bits) if b % 4 < 2)
    assert fill != end and fill and end
    return {"FILL": fill, "END": end}


@dataclass(frozen=True)
class LinkFormat:
    """The frame layout of one configuration's links (see the module docstring)."""
    lanes: int
    lane_bits: int
    word_bits: int

    @classmethod
    def of(cls, config: ChipConfig) -> "LinkFormat":
        return cls(config.c2c_lanes, config.c2c_lane_bits, config.word_bits)

    @property
    def payload_codewords(self) -> int:
        return -(-self.word_bits // CODEWORD_DATA)

    @property
    def codewords(self) -> int:
        return self.payload_codewords + 1

    @property
    def frame_bits(self) -> int:
        return self.codewords * CODEWORD_BITS

    @property
    def flit_bits(self) -> int:
        return self.lanes * self.lane_bits

    @property
    def flits(self) -> int:
        """Cycles per frame: one vector per `flits` cycles is the link's throughput."""
        return -(-self.frame_bits // self.flit_bits)

    @property
    def payload_fraction(self) -> float:
        """Vector bits over raw lane bits (FEC, header and padding are the rest)."""
        return self.word_bits / (self.flits * self.flit_bits)

    @cached_property
    def _order(self) -> np.ndarray:
        """Frame bit j -> index into the codewords laid end to end (codeword c bit i = c*72 + i)."""
        j = np.arange(self.frame_bits)
        return (j % self.codewords) * CODEWORD_BITS + j // self.codewords

    def place(self, j: int) -> tuple[int, int]:
        """(codeword, bit) that frame bit j carries."""
        return j % self.codewords, j // self.codewords

    # ---- reference encoder / decoder (the golden model and the link testbenches use them) ----
    def codewords_of(self, head: int, vector: np.ndarray) -> list[int]:
        """The frame's codewords (data | ecc << 64) for a header word and a uint8 [lanes] vector."""
        v = int.from_bytes(np.asarray(vector, np.uint8).tobytes(), "little")
        datas = [head] + [v >> (CODEWORD_DATA * i) & ((1 << CODEWORD_DATA) - 1) for i in range(self.payload_codewords)]
        return [d | FEC.encode(d) << CODEWORD_DATA for d in datas]

    def flits_of(self, codewords: list[int]) -> list[int]:
        """Flit words (lane l at bits l*lane_bits..) of a frame given its codewords."""
        flat = np.zeros(self.codewords * CODEWORD_BITS, np.uint8)
        for c, w in enumerate(codewords):
            flat[c * CODEWORD_BITS:(c + 1) * CODEWORD_BITS] = [(w >> i) & 1 for i in range(CODEWORD_BITS)]
        bits = np.zeros(self.flits * self.flit_bits, np.uint8)
        bits[:self.frame_bits] = flat[self._order]
        return [int("".join(map(str, bits[f * self.flit_bits:(f + 1) * self.flit_bits][::-1])), 2)
                for f in range(self.flits)]

    def codewords_from(self, flits: list[int]) -> list[int]:
        """Inverse of flits_of (no correction)."""
        bits = np.zeros(self.flits * self.flit_bits, np.uint8)
        for f, w in enumerate(flits):
            bits[f * self.flit_bits:(f + 1) * self.flit_bits] = [(w >> i) & 1 for i in range(self.flit_bits)]
        flat = np.zeros(self.codewords * CODEWORD_BITS, np.uint8)
        flat[self._order] = bits[:self.frame_bits]
        return [sum(int(b) << i for i, b in enumerate(flat[c * CODEWORD_BITS:(c + 1) * CODEWORD_BITS]))
                for c in range(self.codewords)]

    def frame_bit_of(self, codeword: int, bit: int) -> tuple[int, int, int]:
        """(flit, lane, lane bit) that carries bit `bit` of codeword `codeword` (fault injection)."""
        j = bit * self.codewords + codeword
        f, r = divmod(j, self.flit_bits)
        return f, r // self.lane_bits, r % self.lane_bits


# Pipeline stages of the link hardware (hdl/c2c.py checks them against what it builds), in the
# sender's cycles from a vector's link time tau to the cycle a RECV may take it:
PIPELINE: dict[str, str] = {
    "tx_slot": "flits: the vector waits at most one frame for its slot (frames run back to back)",
    "serialize": "flits: the frame's flits leave one per cycle",
    "rx_deskew": "c2c_skew: lanes are delayed to the slowest one",
    "rx_decode": "RX_DECODE cycles: the frame is registered whole, then FEC-decoded into a register",
    "cdc": "CDC cycles: the receive buffer crosses from the link's clock to the chip's",
}
RX_DECODE = 2
CDC = 5                 # the receive buffer's write-to-readable latency, plus one cycle of clock drift


def min_latency(config: ChipConfig) -> int:
    """The least logical link latency the hardware meets with no wire delay (module docstring)."""
    fmt = LinkFormat.of(config)
    return 2 * fmt.flits + config.c2c_skew + RX_DECODE + CDC


RX_FREE_LAG = 3         # cycles after a take before the receive buffer's writer sees the slot free


def earliest(config: ChipConfig) -> int:
    """The fewest cycles after its link time a vector can occupy a slot of the receiver's buffer,
    whatever the wire (none at all) and the alignment of the two chips: one frame."""
    return LinkFormat.of(config).flits


def waiting(taus, takes, config: ChipConfig, until: int | None = None) -> tuple[int, int]:
    """(the most vectors a receive buffer holds at once, the first cycle it does) for vectors with
    link times `taus` taken on cycles `takes`: each counted from tau + earliest to its take +
    RX_FREE_LAG, while the receiver runs (up to cycle `until`; an idle chip drops what arrives).
    A schedule must keep it at most c2c_depth on every link (sim/system.py refuses one that does
    not), or the buffer may overflow when the wire is short."""
    e = earliest(config)
    events = sorted([(t + e, 1) for t in taus if until is None or t + e < until]
                    + [(c + 1 + RX_FREE_LAG, -1) for c in takes])
    most, at, n = 0, 0, 0
    for c, d in events:             # ties: the freed slot first
        n += d
        if n > most:
            most, at = n, c
    return most, at


def hac_offset(delta: int, offset: int) -> int:
    """The HAC offset a child chip should use, from `delta` (what its parent measured: the child's
    HAC as it arrived minus the parent's, on frames the child sent while it used `offset`).

    A child sets its HAC to the parent's as it arrives plus `offset`. With X the cycles from a frame
    leaving one chip (the cycle it is loaded, whose HAC it carries) to its arrival on the other
    chip's side (through a buffer like the receive buffer's), the parent measures
    delta = offset - (X_down + X_up) - 1, so the round trip S = offset - 1 - delta, and the offset
    S // 2 + 1 puts the child's release (X_down - X_up) / 2 cycles from its parent's: centred, so
    the link's unused latency is slack in both directions (DECISIONS: "SYNC and the HAC").
    hdl/sync.py computes the same."""
    s = (offset - 1 - delta) % (1 << DELTA_BITS)
    return s // 2 + 1
