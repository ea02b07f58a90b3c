"""The multiplier floorplan (`hdl/floorplan.py`) on netlists named as the `fpga` preset's are: every
group on neighbouring sites of one row, the two MXMs apart, the VXM's lanes in the middle, and
one-line errors when it cannot be done."""
import re

import pytest

from constraints import BRAM_SITES, DSP_SITES
from hdl import floorplan

ROWS = DSP_SITES["LFE5U-85F"]


def _cells(columns=8, products=8, lanes=8, per_lane=3):
    cells = {}
    for side in "WE":
        for c in range(columns):
            for r in range(products):
                cells[f"core.chip.MXM_{side}0_g0.col{c}.${200 + r}_MULT18X18D_P9"] = {"type": "MULT18X18D"}
            cells[f"core.chip.MXM_{side}0_g0.col{c}.y_TRELLIS_FF_Q_0"] = {"type": "TRELLIS_FF"}
    for lane in range(lanes):
        for k in range(per_lane):
            cells[f"core.chip.VXM_g0.lane{lane}.alu0_p{k}_MULT18X18D_P9"] = {"type": "MULT18X18D"}
    return cells


def _where(site):
    x, y, z = re.match(r"X(\d+)/Y(\d+)/MULT18_(\d)", site).groups()
    return int(x), int(y)


def test_the_device_sites():
    assert [len(r) for r in ROWS] == [52, 52, 52] and len({s for r in ROWS for s in r}) == 156
    assert all(_where(r[0])[0] < _where(r[-1])[0] for r in ROWS)


INDEX = {s: (i, j) for i, row in enumerate(ROWS) for j, s in enumerate(row)}


def _grouped(layout):
    """The preset's plan in `layout`, checked for what every layout promises: all 152 multipliers
    on distinct sites, each group on neighbouring sites of one row."""
    groups = floorplan.dsp_groups(_cells())
    assert len(groups) == 24 and sum(map(len, groups.values())) == 152
    placed = floorplan.plan(groups, ROWS, layout)
    assert len(placed) == 152 and len(set(placed.values())) == 152
    for unit, cells in groups.items():
        spots = sorted(INDEX[placed[c]] for c in cells)
        assert len({i for i, _ in spots}) == 1, f"{unit} spans rows"
        assert [j for _, j in spots] == list(range(spots[0][1], spots[0][1] + len(cells))), f"{unit} has gaps"
    return groups, placed


def test_ends_puts_each_mxm_at_its_end_of_every_row():
    groups, placed = _grouped("ends")
    for i in range(3):
        xs = lambda pat: [_where(placed[c])[0] for u, cs in groups.items() if pat in u for c in cs
                          if INDEX[placed[c]][0] == i]
        west, lanes, east = xs("MXM_W"), xs("VXM"), xs("MXM_E")
        assert west and east, f"row {i} lacks an MXM"
        assert max(west) < min(lanes + east) and max(west + lanes) < min(east), f"row {i} is out of order"
    lane_rows = [INDEX[placed[c]][0] for u, cs in groups.items() if "VXM" in u for c in cs]
    assert lane_rows.count(1) >= 3 * 6          # the middle row has the fewest columns, the most lanes


def test_bands_puts_each_mxm_along_its_rows():
    groups, placed = _grouped("bands")
    rows_of = lambda pat: {INDEX[placed[c]][0] for u, cs in groups.items() if pat in u for c in cs}
    assert 0 in rows_of("MXM_W") and 2 not in rows_of("MXM_W")
    assert 2 in rows_of("MXM_E") and 0 not in rows_of("MXM_E")
    # the lanes: most of them in the middle row, and between the columns of every row
    lane_rows = [INDEX[placed[c]][0] for u, cs in groups.items() if "VXM" in u for c in cs]
    assert lane_rows.count(1) >= 3 * 6
    for i in range(3):
        xs = lambda pat: [_where(placed[c])[0] for u, cs in groups.items() if pat in u for c in cs
                          if INDEX[placed[c]][0] == i]
        lane_x, col_x = xs("VXM"), xs("MXM")
        assert min(col_x) < min(lane_x) and max(lane_x) < max(col_x)


def test_lanes_puts_every_group_at_its_lanes_place():
    """`lanes`: the VXM's lanes in the middle row in lane order, each MXM in its outer row with the
    columns that do not fit in the middle row (one of them split between the two rows), every
    group on neighbouring sites of each row it takes, and lane k's groups at about k/8 of the
    row's width."""
    groups = floorplan.dsp_groups(_cells())
    placed = floorplan.plan(groups, ROWS, "lanes")
    assert len(placed) == 152 and len(set(placed.values())) == 152
    split = {"W": 0, "E": 0}
    for unit, cells in groups.items():
        spots = sorted(INDEX[placed[c]] for c in cells)
        rows = sorted({i for i, _ in spots})
        allowed = {"VXM": {1}, "MXM_W": {0, 1}, "MXM_E": {1, 2}}[re.search(r"VXM|MXM_W|MXM_E", unit).group()]
        assert set(rows) <= allowed, unit
        for i in rows:
            js = [j for r, j in spots if r == i]
            assert js == list(range(js[0], js[0] + len(js))), f"{unit} has gaps in row {i}"
        if len(rows) == 2:
            split[unit.split(".")[2][4]] += 1
        lane = int(re.search(r"(?:col|lane)(\d+)", unit).group(1))
        mean_x = sum(_where(placed[c])[0] for c in cells) / len(cells)
        assert abs(mean_x - (lane + 0.5) * 120 / 8) < 30, (unit, mean_x)
    assert split == {"W": 1, "E": 1}
    lane_x = [min(_where(placed[c])[0] for c in groups[f"core.chip.VXM_g0.lane{k}"]) for k in range(8)]
    assert lane_x == sorted(lane_x)


def test_pin_writes_bel_attributes():
    cells = _cells()
    netlist = {"modules": {"top": {"attributes": {"top": 1}, "cells": cells}}}
    assert floorplan.pin(netlist, "LFE5U-85F") == 152
    bels = [c["attributes"]["BEL"] for c in cells.values() if c["type"] == "MULT18X18D"]
    assert len(set(bels)) == 152 and all(b in {s for r in ROWS for s in r} for b in bels)
    assert not any("attributes" in c for c in cells.values() if c["type"] != "MULT18X18D")


def test_too_many_multipliers_is_one_line():
    with pytest.raises(floorplan.FloorplanError, match="160 multipliers, the device has 156"):
        floorplan.plan(floorplan.dsp_groups(_cells(lanes=8, per_lane=4)), ROWS)


def test_a_group_no_row_can_hold():
    cells = {f"core.chip.MXM_W0_g0.col0.${i}_MULT18X18D_P9": {"type": "MULT18X18D"} for i in range(60)}
    with pytest.raises(floorplan.FloorplanError, match="no row has room for core.chip.MXM_W0_g0.col0's 60"):
        floorplan.plan(floorplan.dsp_groups(cells), ROWS, "bands")


def test_lanes_a_middle_row_too_full_is_one_line():
    with pytest.raises(floorplan.FloorplanError, match=r"^a row of 52 multiplier sites would need 60 \(layout lanes\)$"):
        floorplan.plan(floorplan.dsp_groups(_cells(columns=6, lanes=20)), ROWS, "lanes")


def test_an_unknown_layout_is_one_line():
    with pytest.raises(floorplan.FloorplanError, match="unknown layout 'diagonal'; layouts are: bands, ends, lanes"):
        floorplan.plan(floorplan.dsp_groups(_cells()), ROWS, "diagonal")


def test_a_multiplier_of_no_known_unit():
    with pytest.raises(floorplan.FloorplanError, match="belongs to no MXM column or VXM lane"):
        floorplan.dsp_groups({"core.chip.host.$1_MULT18X18D_P9": {"type": "MULT18X18D"}})


BRAM_ROWS = BRAM_SITES["LFE5U-85F"]


def _brams():
    """The preset's block RAMs as synthesis names them: per MEM slice 16 bank RAMs and 2 for its
    queue, per MXM 16 accumulator RAMs and 2, the VXM's queue 2 and the bridge's buffer 1."""
    cells = {}
    for side in "WE":
        for i in range(4):
            cells |= {f"core.chip.MEM_{side}{i}.bank.0.{k}": {"type": "DP16KD"} for k in range(16)}
            cells |= {f"core.chip.MEM_{side}{i}.queue.mem.0.{k}": {"type": "DP16KD"} for k in range(2)}
        cells |= {f"core.chip.MXM_{side}0.acc.{k // 8}.{k % 8}": {"type": "DP16KD"} for k in range(16)}
        cells |= {f"core.chip.MXM_{side}0.queue.mem.0.{k}": {"type": "DP16KD"} for k in range(2)}
    cells |= {f"core.chip.VXM.queue.mem.0.{k}": {"type": "DP16KD"} for k in range(2)}
    cells["core.bridge.buf.0.0"] = {"type": "DP16KD"}
    return cells


def test_block_rams_follow_the_chip_west_to_east():
    """Each slice's RAMs are neighbours on the snake through the rows (the first row west to east,
    the next east to west), in the chip's order: MXM_W0, MEM_W3 .. MEM_W0, the middle, MEM_E0 ..
    MEM_E3, MXM_E0; a slice's bank RAMs in the order of their names."""
    assert [len(r) for r in BRAM_ROWS] == [52] * 4 and len({s for r in BRAM_ROWS for s in r}) == 208
    cells = _brams()
    placed = floorplan.plan_brams(cells, BRAM_ROWS)
    assert len(placed) == 183 and len(set(placed.values())) == 183
    snake = [s for k, row in enumerate(BRAM_ROWS) for s in (row if k % 2 == 0 else row[::-1])]
    step = {name: snake.index(site) for name, site in placed.items()}
    order = ["MXM_W0", "MEM_W3", "MEM_W2", "MEM_W1", "MEM_W0", "middle", "MEM_E0", "MEM_E1", "MEM_E2", "MEM_E3",
             "MXM_E0"]
    of = lambda name: next((o for o in order if f".{o}." in name), "middle")
    spans = {o: sorted(step[n] for n in cells if of(n) == o) for o in order}
    for a, b in zip(order, order[1:]):
        assert spans[a][-1] < spans[b][0], f"{a} should come before {b}"
    for o, span in spans.items():
        assert span == list(range(span[0], span[0] + len(span))), f"{o}'s RAMs are not neighbours"
    bank = [step[f"core.chip.MEM_W0.bank.0.{k}"] for k in range(16)]
    assert bank == sorted(bank)


def test_too_many_block_rams_is_one_line():
    cells = {f"core.chip.MEM_W0.bank.0.{k}": {"type": "DP16KD"} for k in range(209)}
    with pytest.raises(floorplan.FloorplanError, match="209 block RAMs, the device has 208"):
        floorplan.plan_brams(cells, BRAM_ROWS)
