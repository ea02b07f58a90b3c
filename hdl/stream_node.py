"""One position of the stream fabric: the eastward and westward stream registers.

Each cycle every stream register takes either the value a slice drives at this
position or the value arriving from its upstream neighbour, so a value moves
one position per cycle (spec.TIMING["stream_hop"] == 1) like a conveyor belt.
"""
from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig


class StreamNode(wiring.Component):
    def __init__(self, config: ChipConfig):
        if spec.TIMING["stream_hop"] != 1:
            raise NotImplementedError("the stream fabric implements stream_hop = 1")
        self.config = config
        S, W = config.streams, config.word_bits
        super().__init__({
            "e_in": In(S * W), "w_in": In(S * W),            # arriving from west / east neighbours
            "e_en": In(S), "e_data": In(S * W),              # slice drives (per stream)
            "w_en": In(S), "w_data": In(S * W),
            "e_out": Out(S * W), "w_out": Out(S * W),        # registers leaving east / west
        })

    def elaborate(self, platform):
        m = Module()
        S, W = self.config.streams, self.config.word_bits
        for s in range(S):
            for en, data, inp, out in ((self.e_en, self.e_data, self.e_in, self.e_out),
                                       (self.w_en, self.w_data, self.w_in, self.w_out)):
                m.d.sync += out.word_select(s, W).eq(Mux(en[s], data.word_select(s, W), inp.word_select(s, W)))
        return m
