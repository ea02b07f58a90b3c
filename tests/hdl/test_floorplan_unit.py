"""The multiplier floorplan (`hdl/floorplan.py`) on netlists named as the `fpga` preset's are: every
group on neighbouring sites of one row, the two MXMs apart, the VXM's lanes in the middle, and
one-line errors when it cannot be done."""
import re

import pytest

from constraints import DSP_SITES
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


def test_the_preset_pins_every_multiplier_in_groups():
    groups = floorplan.dsp_groups(_cells())
    assert len(groups) == 24 and sum(map(len, groups.values())) == 152
    placed = floorplan.plan(groups, ROWS)
    assert len(placed) == 152 and len(set(placed.values())) == 152
    index = {s: (i, j) for i, row in enumerate(ROWS) for j, s in enumerate(row)}
    for unit, cells in groups.items():
        spots = sorted(index[placed[c]] for c in cells)
        assert len({i for i, _ in spots}) == 1, f"{unit} spans rows"
        assert [j for _, j in spots] == list(range(spots[0][1], spots[0][1] + len(cells))), f"{unit} has gaps"
    rows_of = lambda pat: {index[placed[c]][0] for u, cs in groups.items() if pat in u for c in cs}
    assert 0 in rows_of("MXM_W") and 2 not in rows_of("MXM_W")
    assert 2 in rows_of("MXM_E") and 0 not in rows_of("MXM_E")
    # the lanes: most of them in the middle row, and between the columns of every row
    lane_rows = [index[placed[c]][0] for u, cs in groups.items() if "VXM" in u for c in cs]
    assert lane_rows.count(1) >= 3 * 6
    for i in range(3):
        xs = lambda pat: [_where(placed[c])[0] for u, cs in groups.items() if pat in u for c in cs
                          if index[placed[c]][0] == i]
        lane_x, col_x = xs("VXM"), xs("MXM")
        assert min(col_x) < min(lane_x) and max(lane_x) < max(col_x)


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
        floorplan.plan(floorplan.dsp_groups(cells), ROWS)


def test_a_multiplier_of_no_known_unit():
    with pytest.raises(floorplan.FloorplanError, match="belongs to no MXM column or VXM lane"):
        floorplan.dsp_groups({"core.chip.host.$1_MULT18X18D_P9": {"type": "MULT18X18D"}})
