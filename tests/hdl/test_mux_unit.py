"""The selection helpers (`hdl/mux.py`) under `amaranth.sim`, against their Python meaning: every
legal index of a tree, every legal shift of a group, with odd sizes (the zeros beyond the last
value are part of the contract: a stream group may run past the last stream)."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hdl.mux import mux_tree, shift_down


def _sim(m, bench):
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11])
def test_mux_tree_picks_every_index(n):
    vals = [Signal(8, name=f"v{i}") for i in range(n)]
    sel, out = Signal(max(n - 1, 1).bit_length()), Signal(8)
    m = Module()
    m.d.comb += out.eq(mux_tree(vals, sel))
    rng = random.Random(n)

    async def bench(ctx):
        for _ in range(3):
            data = [rng.randrange(256) for _ in range(n)]
            for v, d in zip(vals, data):
                ctx.set(v, d)
            for i in range(n):
                ctx.set(sel, i)
                assert ctx.get(out) == data[i]
    _sim(m, bench)


@pytest.mark.parametrize("count, n", [(8, 4), (8, 8), (4, 4), (6, 3), (5, 8), (16, 4), (1, 2)])
def test_shift_down_is_a_zero_filled_group(count, n):
    vals = [Signal(6, name=f"v{i}") for i in range(count)]
    amount = Signal(max(count - 1, 1).bit_length())
    outs = [Signal(6, name=f"o{j}") for j in range(n)]
    m = Module()
    m.d.comb += [o.eq(v) for o, v in zip(outs, shift_down(vals, amount, n, 6))]
    rng = random.Random(count * 100 + n)

    async def bench(ctx):
        for _ in range(3):
            data = [rng.randrange(1, 64) for _ in range(count)]
            for v, d in zip(vals, data):
                ctx.set(v, d)
            for a in range(count):
                ctx.set(amount, a)
                want = [data[a + j] if a + j < count else 0 for j in range(n)]
                assert [ctx.get(o) for o in outs] == want, a
    _sim(m, bench)


def test_mux_tree_refuses_nothing_to_choose():
    with pytest.raises(ValueError, match="no values"):
        mux_tree([], Signal(1))
