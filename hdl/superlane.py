"""One superlane of one slice position: the stream registers, the slice's stream taps and drives.

As in the published chip, the fabric is cut lengthwise into superlanes of
`config.superlane_lanes` lanes (16; the whole vector when `lanes` is not a multiple of 16). At
each position one superlane unit per superlane holds that slice of every stream register and
does everything the slice there does with stream values at those lanes: pick the streams it
reads (the IFETCH tap, a MEM write, the VXM's operand groups, the SXM's source group, the MXM's
activation and weight streams) and choose what each driven stream carries. The chip top is then
only instances and wires, whatever the width; each wide selection is emitted once, one
superlane wide, however many positions and superlanes use it (`tsp`: 95 positions x 20
superlanes).

`Superlane` is the base: the arriving and leaving vectors, the registers, the IFETCH tap and
`pick`. Each slice kind's file adds its own (`MemSuperlane`, `VxmSuperlane`, ...).
"""
from amaranth.hdl import Cat, Const, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig

from .mux import mux_tree, shift_down


def superlane_members(config: ChipConfig) -> dict:
    """The ports every superlane unit has; stream s occupies bits [s*B, (s+1)*B) of a vector
    port, B = 8 * superlane_lanes."""
    S, B = config.streams, config.superlane_bits
    return {"e_in": In(S * B), "w_in": In(S * B),          # arriving from the west / east neighbour
            "e_out": Out(S * B), "w_out": Out(S * B),      # the registers, leaving east / west
            "fetch_stream": In(range(S)), "fetch_dir": In(1), "fetch_tap": Out(B)}


class Superlane(wiring.Component):
    """Base of the per-kind superlane units (not emitted itself).

    Parameters
    ----------
    config : ChipConfig
        streams, superlane_lanes.
    members : dict
        the kind's own ports, beside `superlane_members`.

    Members
    -------
    e_in, w_in : In(streams * B)
        this superlane of every stream arriving from the west / east neighbour.
    e_out, w_out : Out(streams * B)
        this superlane of every stream register, leaving east / west: a stream takes the value
        the slice drives on it, or passes on what arrived (one position per cycle).
    fetch_stream, fetch_dir : In; fetch_tap : Out(B)
        the queue's IFETCH tap: this superlane of the named stream as it passes.
    """

    def __init__(self, config: ChipConfig, members: dict):
        if spec.timing(config)["stream_hop"] != 1:
            raise NotImplementedError("the stream fabric implements stream_hop = 1")
        self.config = config
        super().__init__(superlane_members(config) | members)

    def streams_of(self, vector):
        """The per-stream B-bit slices of a vector port."""
        B = self.config.superlane_bits
        return [vector[s * B:(s + 1) * B] for s in range(self.config.streams)]

    def arriving(self, direction):
        """This superlane of every stream arriving in `direction` (1 westward)."""
        return [Mux(direction, w, e) for e, w in zip(self.streams_of(self.e_in), self.streams_of(self.w_in))]

    def pick(self, direction, stream):
        """This superlane of stream `stream` arriving in `direction` (1 westward)."""
        return mux_tree(self.arriving(direction), stream)

    def pick_group(self, direction, base, n):
        """This superlane of streams base .. base + n - 1 arriving in `direction`, zero beyond the
        last stream (a group may run past it; the ISA's operand rules say which bytes count)."""
        bits = max(self.config.streams - 1, 1).bit_length()
        return shift_down(self.arriving(direction), base[:bits], n, self.config.superlane_bits)

    def registers(self, m, e_en, w_en, e_data, w_data):
        """The stream registers and the IFETCH tap: stream s takes e_data[s] when e_en[s] (likewise
        westward), else passes on."""
        e_in, w_in = self.streams_of(self.e_in), self.streams_of(self.w_in)
        # Without a reset: a stream register only carries data (after a run the edges' zeros
        # flush it within `positions` cycles), and the reset would reach every one of them.
        e_reg = Signal.like(self.e_out, name="e_stream", reset_less=True)
        w_reg = Signal.like(self.w_out, name="w_stream", reset_less=True)
        m.d.sync += [e_reg.eq(Cat(*(Mux(e_en[s], e_data[s], e_in[s]) for s in range(self.config.streams)))),
                     w_reg.eq(Cat(*(Mux(w_en[s], w_data[s], w_in[s]) for s in range(self.config.streams))))]
        m.d.comb += [self.e_out.eq(e_reg), self.w_out.eq(w_reg)]
        m.d.comb += self.fetch_tap.eq(self.pick(self.fetch_dir, self.fetch_stream))


def group_enables(m, name, config: ChipConfig, drive, dst, ddir, width):
    """A drive of streams dst .. dst + width - 1 in direction ddir (1 westward) as per-stream
    enables; returns (e_en, w_en, slot) where slot[s] = s - dst is stream s's index in the group."""
    S = config.streams
    e_en, w_en = Signal(S, name=f"{name}_e_en"), Signal(S, name=f"{name}_w_en")
    slots = []
    for s in range(S):
        slot = Const(s, 8) - dst
        hit = drive & (slot < width)
        if s < S - 1:                             # dst <= S-1 always holds
            hit = hit & (dst <= s)
        m.d.comb += [e_en[s].eq(hit & ~ddir), w_en[s].eq(hit & ddir)]
        slots.append(slot)
    return e_en, w_en, slots
