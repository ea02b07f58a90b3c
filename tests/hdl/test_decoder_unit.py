"""The decoder's rule twins (`hdl/decoder.py` HdlRules against `isa/spec.py` IntRules) under
`amaranth.sim`: the hardware accepts exactly what `spec.check` accepts, here for the one rule op
whose hardware form is not the obvious one (`mul_le`, which multiplies only low bits)."""
import itertools

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.decoder import HdlRules
from isa.spec import IntRules


def test_mul_le_matches_the_integer_rule():
    """LW's shape: a 16-bit count, a 7-bit width, limit = lanes - row with row a 16-bit field."""
    cap = 8
    m = Module()
    a, b, row = Signal(16), Signal(7), Signal(16)
    y = Signal()
    m.d.comb += y.eq(HdlRules.mul_le(a, b, cap - row, cap))
    counts = [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 255, 256, 4097, 0xFFFF]
    widths = [0, 1, 2, 3, 4, 8, 9, 16, 17, 64, 127]
    rows = [0, 1, 3, 7, 8, 9, 200, 0xFFFF]
    sim = Simulator(m)

    async def bench(ctx):
        for c, w, r in itertools.product(counts, widths, rows):
            ctx.set(a, c)
            ctx.set(b, w)
            ctx.set(row, r)
            assert ctx.get(y) == IntRules.mul_le(c, w, cap - r, cap), (c, w, r)
    sim.add_testbench(bench)
    sim.run()
