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
        # One port per stream (not one S*W-bit bus): Amaranth limits a value to 65536 bits and
        # the `tsp` fabric is 32 x 2560 bits per direction.
        members = {"e_en": In(S), "w_en": In(S)}                  # slice drives, per stream
        for s in range(S):
            members |= {f"e_in_{s}": In(W), f"w_in_{s}": In(W),      # arriving from west / east
                        f"e_data_{s}": In(W), f"w_data_{s}": In(W),  # values the slice drives
                        f"e_out_{s}": Out(W), f"w_out_{s}": Out(W)}  # registers leaving east / west
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for s in range(self.config.streams):
            for d in "ew":
                en, data = getattr(self, f"{d}_en")[s], getattr(self, f"{d}_data_{s}")
                inp, out = getattr(self, f"{d}_in_{s}"), getattr(self, f"{d}_out_{s}")
                m.d.sync += out.eq(Mux(en, data, inp))
        return m
