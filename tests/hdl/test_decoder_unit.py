"""The decoder's rule twins (`hdl/decoder.py` HdlRules against `isa/spec.py` IntRules) under
`amaranth.sim`: the hardware accepts exactly what `spec.check` accepts, here for the rule ops and
field checks whose hardware form is not the obvious one (`mul_le`, which multiplies only low bits;
`group_fits`, compares with constants chosen by the type; `at_least` and `below`, ORs of bits)."""
import itertools

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.decoder import HdlRules, at_least, below
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


def _exhaustive(build, expected, widths):
    """Every value of the inputs (bit widths `widths`): build(*signals) equals expected(*ints)."""
    m = Module()
    ins = [Signal(w) for w in widths]
    y = Signal()
    m.d.comb += y.eq(build(*ins))
    sim = Simulator(m)

    async def bench(ctx):
        for vals in itertools.product(*(range(1 << w) for w in widths)):
            for s, v in zip(ins, vals):
                ctx.set(s, v)
            assert ctx.get(y) == bool(expected(*vals)), vals
    sim.add_testbench(bench)
    sim.run()


def test_group_fits_matches_the_integer_rule():
    """An operand's 6-bit first stream and a 2-bit type, against limits below, at and above the
    group sizes; and a type fixed by the opcode (an int)."""
    for limit in (0, 1, 3, 4, 5, 8, 32, 70):
        _exhaustive(lambda f, t: HdlRules.group_fits(f, t, limit), lambda f, t: IntRules.group_fits(f, t, limit), (6, 2))
        for t in range(4):
            _exhaustive(lambda f: HdlRules.group_fits(f, t, limit), lambda f: IntRules.group_fits(f, t, limit), (6,))


def test_field_bounds_match_the_compares():
    for lo in (0, 1, 2, 5):
        _exhaustive(lambda x: at_least(x, lo), lambda x: x >= lo, (5,))
    for hi in (1, 2, 3, 4, 8, 16, 31, 32, 64):
        _exhaustive(lambda x: below(x, hi), lambda x: x < hi, (5,))
