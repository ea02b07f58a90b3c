"""One stream at one position of the fabric: its eastward and westward registers.

Each cycle a register takes either the value the slice at this position drives or the value
arriving from the upstream neighbour, so a value moves one position per cycle
(spec.TIMING["stream_hop"] == 1) like a conveyor belt. The unit is one stream wide (not one
position wide) so that every emitted module stays far below Amaranth's 65,535 input bits even
for `tsp` (2560-bit vectors, 32 streams).
"""
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig


class StreamLane(wiring.Component):
    """One stream at one position: an eastward and a westward register.

    Parameters
    ----------
    config : ChipConfig
        `word_bits`, the width of a stream.

    Members
    -------
    e_in, w_in : In(word_bits)
        the values arriving from the west / east neighbour.
    e_en, w_en : In(1)
        the slice at this position drives the eastward / westward stream this cycle.
    e_data, w_data : In(word_bits)
        what it drives.
    e_out, w_out : Out(word_bits)
        the registers, leaving east / west.
    """

    def __init__(self, config: ChipConfig):
        if spec.TIMING["stream_hop"] != 1:
            raise NotImplementedError("the stream fabric implements stream_hop = 1")
        W = config.word_bits
        super().__init__({
            "e_in": In(W), "w_in": In(W),        # arriving from the west / east neighbour
            "e_en": In(1), "w_en": In(1),        # the slice here drives this stream
            "e_data": In(W), "w_data": In(W),
            "e_out": Out(W), "w_out": Out(W),    # registers leaving east / west
        })

    def elaborate(self, platform):
        m = Module()
        m.d.sync += [self.e_out.eq(Mux(self.e_en, self.e_data, self.e_in)),
                     self.w_out.eq(Mux(self.w_en, self.w_data, self.w_in))]
        return m
