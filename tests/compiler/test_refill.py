"""Programs longer than the queues: the compiler keeps the rest of each stream in SRAM and
schedules IFETCH refills (compiler/refill.py); the chip runs them with no change of timing."""
import dataclasses

import numpy as np
import pytest

from compiler import refill
from compiler.compile import compile_graph
from compiler.graph import CompileError, Graph
from compiler.runtime import run
from isa.asm import assemble
from isa.config import get_config

TINY = get_config("tiny")


def deep_mlp(layers=5, n=256, batch=8, seed=5):
    """Five 256x256 int8 layers at batch 8: the busiest queue's stream is over 2 x queue_depth."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.input("x", np.int8, (batch, n))
    h = "x"
    for i in range(layers):
        g.constant(f"w{i}", rng.integers(-128, 128, (n, n)).astype(np.int8))
        h = g.requantize(g.matmul(h, f"w{i}", 0, 0), 0.0005, 0, np.int8)
    g.outputs = [h]
    return g, {"x": rng.integers(-128, 128, (batch, n)).astype(np.int8)}


@pytest.fixture(scope="module")
def compiled():
    g, feeds = deep_mlp()
    return g, feeds, compile_graph(g, TINY)


def test_stream_twice_the_queue_runs_bit_exact(compiled):
    g, feeds, c = compiled
    assert max(c.stats["queue_words"].values()) >= 2 * TINY.queue_depth
    assert c.stats["refills"] > 0 and c.program.code
    assert all(len(q) <= TINY.queue_depth for q in c.program.queues.values())
    out, rep = run(c, feeds, "golden")
    want = g.evaluate(feeds)
    assert all(np.array_equal(out[k], want[k]) for k in g.outputs)
    assert rep["cycles"] == c.predicted["cycles"]


def test_listing_shows_refills_and_assembles_back(compiled):
    _, _, c = compiled
    assert "IFETCH" in c.listing and "refill MXM_W0 words 1024.." in c.listing
    assert any(line.startswith(".code ") for line in c.listing.splitlines())
    p = assemble(c.listing, TINY)
    assert p.queues == c.program.queues and p.code == c.program.code
    for q in {s.queue for s in c.program.code}:
        assert p.instruction_stream(q) == c.program.instruction_stream(q)


def test_a_late_refill_is_an_internal_error(compiled):
    """The final check replays every refilled queue: a refill one cycle too late (or a segment out of
    place) is caught before anything runs."""
    _, _, c = compiled
    g, _ = deep_mlp()
    from compiler import compile as comp
    seen = {}
    real_check = refill.check

    def grab(config, streams, refills):
        seen.update(streams=streams, refills=refills)
        real_check(config, streams, refills)
    refill.check = grab
    try:
        comp.compile_graph(g, TINY)
    finally:
        refill.check = real_check
    streams, refills = seen["streams"], seen["refills"]
    r = next(r for r in refills if r.words)
    first = streams[r.queue][r.index][0]
    late = [dataclasses.replace(x, cycle=first - 2) if x is r else x for x in refills]   # lands on first - 1 + 1
    late_ok = [dataclasses.replace(x, cycle=first - 3) if x is r else x for x in refills]
    with pytest.raises(AssertionError, match=r"internal compiler error \(refill\).*issues on cycle"):
        refill.check(TINY, streams, late)
    try:                                  # one cycle earlier lands in time (it may overflow instead)
        refill.check(TINY, streams, late_ok)
    except AssertionError as e:
        assert "issues on cycle" not in str(e)
    shifted = [dataclasses.replace(x, index=x.index + 2) if x is r else x for x in refills]
    with pytest.raises(AssertionError, match="internal compiler error"):
        refill.check(TINY, streams, shifted)


def test_instructions_that_do_not_fit_in_sram_are_refused():
    """The data fit (with a deep queue nothing is refilled and it compiles); with a 64-word queue the
    instructions kept in SRAM no longer fit: the usual one-line refusal. With twice the SRAM the same
    model compiles with refills and runs."""
    rng = np.random.default_rng(1)
    g = Graph()
    g.input("x", np.int8, (64, 128))
    g.constant("w", rng.integers(-128, 128, (128, 128)).astype(np.int8))
    g.outputs = [g.matmul("x", "w", 0, 0)]
    deep = dataclasses.replace(TINY, name="tinyq", queue_depth=1024, mem_words=1024)
    assert compile_graph(g, deep).stats["refills"] == 0
    shallow = dataclasses.replace(deep, queue_depth=64)
    with pytest.raises(CompileError, match=r"needs \d+ bytes \(tensors, copies, padding and instructions kept "
                                           r"in SRAM\), config 'tinyq' has 65536 bytes"):
        compile_graph(g, shallow)
    roomy = dataclasses.replace(shallow, mem_words=2048)
    c = compile_graph(g, roomy)
    assert c.stats["refills"] > 0
    from sim.golden import Golden                 # (runners take presets only: run the model directly)
    res = Golden(c.program).run()
    assert res.error.name == "NONE" and res.cycles == c.predicted["cycles"]
