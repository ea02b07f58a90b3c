"""System descriptions (isa/system.py): presets, the JSON form and one-line validation errors."""
import json

import pytest

from isa.config import get_config
from isa.link import min_latency
from isa.system import SYSTEMS, Endpoint, Link, System, SystemSpecError, get_system

MIN = min_latency(get_config("tiny"))


def test_presets():
    pair, ring = SYSTEMS["pair"], SYSTEMS["ring4"]
    assert pair.chips == ("tiny", "tiny") and [str(l) for l in pair.links] == ["chip0.C2C_E0 <-> chip1.C2C_W0"]
    assert len(ring.chips) == 4 and len(ring.links) == 4
    assert {(l.a.chip, l.b.chip) for l in ring.links} == {(0, 1), (1, 2), (2, 3), (3, 0)}
    assert pair.peer(1, "C2C_W0") == (Endpoint(0, "C2C_E0"), pair.links[0].latency)
    assert pair.peer(0, "C2C_W0") is None


def test_json_round_trip(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SYSTEMS["ring4"].to_dict()))
    assert get_system(str(path)) == SYSTEMS["ring4"]


def _sys(links, chips=("tiny", "tiny")):
    return System("t", chips, tuple(Link(Endpoint(*a), Endpoint(*b), lat) for a, b, lat in links))


@pytest.mark.parametrize("build, message", [
    (lambda: _sys([((0, "C2C_E0"), (1, "C2C_W0"), 40), ((0, "C2C_E0"), (1, "C2C_E0"), 40)]),
     r"^system 't': link chip0.C2C_E0 <-> chip1.C2C_E0: endpoint chip0.C2C_E0 is already used by link chip0.C2C_E0 <-> chip1.C2C_W0$"),
    (lambda: _sys([((0, "C2C_E3"), (1, "C2C_W0"), 40)]),
     r"^system 't': link chip0.C2C_E3 <-> chip1.C2C_W0: chip 0 \(tiny\) has no link 'C2C_E3'; its links are C2C_W0, C2C_E0$"),
    (lambda: _sys([((0, "C2C_E0"), (1, "C2C_W0"), MIN - 1)]),
     rf"^system 't': link chip0.C2C_E0 <-> chip1.C2C_W0: latency {MIN - 1} is below the {MIN} cycles the hardware needs"),
    (lambda: _sys([], chips=("tiny", "huge")),
     r"^system 't': chip 1 uses configuration 'huge', which does not exist; presets are tiny, fpga, tsp$"),
    (lambda: _sys([((0, "C2C_E0"), (2, "C2C_W0"), 40)]),
     r"^system 't': link chip0.C2C_E0 <-> chip2.C2C_W0: chip 2 does not exist \(chips 0..1\)$"),
    (lambda: _sys([((0, "C2C_E0"), (0, "C2C_E0"), 40)]),
     r"already used"),
    (lambda: get_system("nope"), r"^unknown system 'nope'; systems are: pair, ring4 \(or a .json file\)$"),
    (lambda: System.from_dict({"name": "x", "chips": ["tiny"], "links": [{"a": [0]}]}), r"^system 'x': link 0 must be"),
    (lambda: System.from_dict({"name": "x", "chips": ["tiny"], "links": [], "extra": 1}), r"unknown key 'extra'"),
])
def test_malformed_systems_get_one_line(build, message):
    with pytest.raises(SystemSpecError, match=message) as e:
        build()
    assert "\n" not in str(e.value)


def test_bad_json_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{nope")
    with pytest.raises(SystemSpecError, match=r"not JSON"):
        get_system(str(p))
    with pytest.raises(SystemSpecError, match=r"cannot read"):
        get_system(str(tmp_path / "missing.json"))


def test_sync_tree_and_registers():
    """ring4's SYNC tree is breadth first from chip 0: 0 -> 1 -> 2 and 0 -> 3; the registers name
    links by index (C2C_W0 = 0, C2C_E0 = 1) and give every chip the same margin and window."""
    from isa import hostmap
    ring = SYSTEMS["ring4"]
    regs = ring.sync_registers()
    parents = [hostmap.unpack("SYNC_TREE", r["SYNC_TREE"])["parent"] for r in regs]
    assert parents == [hostmap.SYNC_ROOT, 0, 0, 1]
    assert [r["SYNC_CHILDREN"] for r in regs] == [0b11, 0b10, 0, 0]
    margin = {hostmap.unpack("SYNC_MARGIN", r["SYNC_MARGIN"])["margin"] for r in regs}
    assert len(margin) == 1 and margin.pop() >= 2 * ring.links[0].latency
    alone = System("alone", ("tiny", "tiny"), ())             # no links: each chip is its own root
    assert [hostmap.unpack("SYNC_TREE", r["SYNC_TREE"])["parent"] for r in alone.sync_registers()] == \
        [hostmap.SYNC_ROOT] * 2


def test_hac_offset_centres_the_child():
    """isa/link.py hac_offset: from what the parent measured with offset 0, half the round trip plus one."""
    from isa.link import hac_offset
    x_down, x_up = 21, 23
    delta = (0 - x_down - x_up - 1) % (1 << 14)
    assert hac_offset(delta, 0) == (x_down + x_up) // 2 + 1
    assert hac_offset((hac_offset(delta, 0) - x_down - x_up - 1) % (1 << 14), hac_offset(delta, 0)) == 23
