"""The link format (isa/link.py): frames, interleaving, FEC reach, latency figures."""
import numpy as np
import pytest

from isa.config import PRESETS, SliceKind, get_config
from isa.link import CODEWORD_BITS, FEC, LinkFormat, header, header_fields, min_latency
from isa import spec


@pytest.mark.parametrize("name", list(PRESETS))
def test_frame_round_trip(name):
    fmt = LinkFormat.of(get_config(name))
    rng = np.random.default_rng(1)
    vec = rng.integers(0, 256, get_config(name).lanes, dtype=np.uint8)
    cws = fmt.codewords_of(header(kind=1, stamp=12345, hac=0xBEEF), vec)
    flits = fmt.flits_of(cws)
    assert len(flits) == fmt.flits and all(0 <= f < 1 << fmt.flit_bits for f in flits)
    assert fmt.codewords_from(flits) == cws
    assert header_fields(cws[0] & ((1 << 64) - 1)) == {"kind": 1, "stamp": 12345, "hac": 0xBEEF, "delta": 0}


def test_published_figure_and_tiny():
    """tsp: a 320-byte vector in 21 cycles on 4 lanes (the published chip: about 20)."""
    assert LinkFormat.of(get_config("tsp")).flits == 21
    tiny = LinkFormat.of(get_config("tiny"))
    assert (tiny.codewords, tiny.flits) == (3, 3)


@pytest.mark.parametrize("name", ["tiny", "tsp"])
def test_a_burst_on_one_lane_hits_each_codeword_once(name):
    """Any run of up to `codewords` consecutive bits of one lane in one flit falls in distinct
    codewords (so SECDED corrects it); that is what the bit interleave is for."""
    fmt = LinkFormat.of(get_config(name))
    owner = {}
    for c in range(fmt.codewords):
        for b in range(CODEWORD_BITS):
            owner[fmt.frame_bit_of(c, b)] = c
    for (f, lane, b), c in owner.items():
        run = [owner.get((f, lane, b + i)) for i in range(fmt.codewords)]
        run = [x for x in run if x is not None]
        assert len(set(run)) == len(run)


def test_secded_corrects_one_detects_two():
    d = 0x0123456789ABCDEF
    e = FEC.encode(d)
    for bit in (0, 17, 63):
        assert FEC.decode(d ^ 1 << bit, e)[0] == d
    assert FEC.decode(d ^ 3, e)[1].name == "UNCORRECTABLE"


def test_send_count_is_bounded_by_the_buffer():
    cfg = get_config("tiny")
    spec.check(spec.encode("SEND", stream=0, dir=0, count=cfg.c2c_depth), SliceKind.C2C, cfg)
    with pytest.raises(spec.IllegalInstruction, match="c2c_depth"):
        spec.check(spec.encode("SEND", stream=0, dir=0, count=cfg.c2c_depth + 1),
                   SliceKind.C2C, cfg)
    assert spec.elements("SEND", {"count": 4}, cfg) == 4 * LinkFormat.of(cfg).flits


def test_min_latency_figures():
    assert min_latency(get_config("tiny")) == 2 * 3 + 7 + 2 + 5
