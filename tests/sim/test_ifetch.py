"""IFETCH on the golden model: refill timing to the cycle and every fetch error, against cycle
counts and error reports worked out by hand from the spec (verif/fetch_stimulus.py)."""
import numpy as np
import pytest

from isa.config import get_config
from isa.image import from_bytes, to_bytes
from sim.golden import Golden
from verif import fetch_stimulus as fs


@pytest.mark.parametrize("case, config", [(c, n) for n in ("tiny", "fpga") for c in sorted(fs.CASES)
                                          if fs.applies(c, get_config(n))])
def test_fetch_case(case, config):
    cfg = get_config(config)
    program, want = fs.CASES[case](cfg)
    program = from_bytes(to_bytes(program))           # the image round trip keeps the code segments
    res = Golden(program).run()
    assert (res.cycles, res.error, res.error_position, res.error_pc) == \
        (want["cycles"], want["error"], want["position"], want["pc"])


def test_refill_executes_the_fetched_words():
    """The fetched READs drive MEM_E1's words onto the east edge on their cycles, and the
    fetched IFETCH's segment runs too (its westward READ reaches the west edge)."""
    cfg = get_config("tiny")
    program, want = fs.refill(cfg, 0)
    g = Golden(program)
    g.run()
    data = g.memory(cfg.slice_named("MEM_E1").position)
    seen_e = {bytes(g.edge_out(0, t)[s]) for t in range(want["cycles"] + cfg.positions) for s in (0, 2, 3)}
    assert all(bytes(data[a]) in seen_e for a in (0x20, 0x21, 0x22, 0x24, 0x28, 0x29))
    seen_w = {bytes(g.edge_out(1, t)[3]) for t in range(want["cycles"] + cfg.positions)}
    assert bytes(data[0x2C]) in seen_w


def test_instruction_stream_and_listing_round_trip():
    from isa.asm import assemble, disassemble
    cfg = get_config("tiny")
    program, _ = fs.refill(cfg, 0)
    pos = cfg.slice_named("MEM_E1").position
    assert len(program.instruction_stream(pos)) == 4 + 4 + 3
    again = assemble(disassemble(program), cfg)
    assert again == program
    assert ".code MEM_W1 addr=0x100" in disassemble(program)
