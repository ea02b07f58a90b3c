"""Pin the multipliers to DSP sites in groups, before placement (python -m hdl.floorplan NETLIST).

The `fpga` preset uses 152 of the LFE5U-85F's 156 MULT18X18D, which sit in three rows across the
device. Left to itself the placer scatters an MXM column's eight products over all three rows,
far from the registers that feed them and the adder tree that sums them (DECISIONS.md, "Timing on
the FPGA: the wires placement makes"). Here every group of multipliers that one unit instance
owns (an MXM column's products, a VXM lane's three) gets neighbouring sites of one row, and the
units of one slice get consecutive groups, so the logic the placer puts around them is local.

With `--brams` the block RAMs are pinned too (not by default: see below). Left to itself the placer spread a MEM slice's 16 bank RAMs over
the whole width of the device and three of its four RAM rows, so the slice's address and data
nets spanned the device. Here the RAMs follow the chip's own order, west to east (MXM_W0, MEM_W3
.. MEM_W0, the VXM's queue, MEM_E0 .. MEM_E3, MXM_E0), over the four RAM rows as a snake (the
first row west to east, the next east to west, ...): each slice's RAMs are neighbours, and so
are the neighbouring slices of the stream fabric. Measured on the preset, this made the stream
fabric's wires shorter but the chip-wide ones (the stop, `running`, the host port) longer: the
chip's ends moved away from its middle, and placement's estimate fell from 47.0 to 35.3 MHz.

The pins are written into the synthesized netlist as nextpnr's BEL attribute (nextpnr places a
cell with one where it says).
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from constraints import BRAM_SITES, DSP_SITES

from .timing import top_module

DSP = "MULT18X18D"
BRAM = "DP16KD"
# the slice a block RAM belongs to (`core.chip.MEM_W3.bank.0.7`, `..MXM_E0.acc.1.3`, `..VXM.queue.mem.0.0`)
_SLICE = re.compile(r"\.(?:(?P<kind>MEM|MXM)_(?P<side>[WE])(?P<i>\d+)|VXM)\.")
# an MXM column (`..MXM_W0_g0.col3.`) or a VXM lane (`..VXM_g0.lane5.`): slice, superlane, index
_GROUP = re.compile(r"^(?P<unit>.*\.(?P<slice>(?P<kind>MXM|VXM)_?(?P<side>[EW]?)\d*)_g(?P<g>\d+)\."
                    r"(?:col|lane)(?P<i>\d+))\.")


class FloorplanError(ValueError):
    """The multipliers cannot be pinned: more than the device has, or an unknown owner."""


def dsp_groups(cells: dict) -> dict[str, list[str]]:
    """The multiplier cells of a flat netlist, by the unit instance that owns them."""
    groups = defaultdict(list)
    for name, cell in cells.items():
        if cell["type"] == DSP:
            mo = _GROUP.match(name)
            if mo is None:
                raise FloorplanError(f"multiplier {name!r} belongs to no MXM column or VXM lane")
            groups[mo.group("unit")].append(name)
    return {k: sorted(v) for k, v in groups.items()}


def _order(unit: str) -> tuple:
    """West MXM's columns, then the VXM's lanes, then the east MXM's (each by superlane, index)."""
    mo = _GROUP.match(unit + ".")
    rank = {("MXM", "W"): 0, ("VXM", ""): 1, ("MXM", "E"): 2}[(mo.group("kind"), mo.group("side"))]
    return rank, mo.group("slice"), int(mo.group("g")), int(mo.group("i"))


LAYOUTS = ("bands", "ends", "lanes")


def plan(groups: dict[str, list[str]], rows: list[list[str]], layout: str = "lanes") -> dict[str, str]:
    """Cell -> site, each group on neighbouring sites of one row.

    `ends`: the west MXM's columns take the west end of every row and the east
    MXM's the east end, the outer rows more of them than the middle ones; the VXM's lanes take
    what is left in the middle of the rows, middle rows first. The chip's order (west MXM, MEM
    slices, VXM, MEM slices, east MXM) then runs west to east across the device, and each MXM is
    a block at its end, not a band across the whole width.

    `lanes` (the default of `hdl.fpga build`): `_plan_lanes`.

    `bands`: the west MXM's columns fill rows from the first, the east MXM's from the last, so
    each MXM is a band along its rows; the VXM's lanes take what the rows have left, middle rows
    first, in the middle of their row (between a row's west and east columns, or splitting one
    MXM's)."""
    if layout not in LAYOUTS:
        raise FloorplanError(f"unknown layout {layout!r}; layouts are: {', '.join(LAYOUTS)}")
    if sum(map(len, groups.values())) > sum(map(len, rows)):
        raise FloorplanError(f"{sum(map(len, groups.values()))} multipliers, the device has {sum(map(len, rows))}")
    if layout == "lanes":
        return _plan_lanes(groups, rows)
    units = sorted(groups, key=_order)
    size = {u: len(groups[u]) for u in units}
    load = [{"W": [], "lanes": [], "E": []} for _ in rows]
    room = [len(r) for r in rows]

    def put(unit, order, kind):
        for i in order:
            if size[unit] <= room[i]:
                load[i][kind].append(unit)
                room[i] -= size[unit]
                return
        raise FloorplanError(f"no row has room for {unit}'s {size[unit]} multipliers next to each other")
    n = len(rows)
    middle_first = sorted(range(n), key=lambda i: abs(2 * i - (n - 1)))
    outer_first = middle_first[::-1]
    for kind, rank in (("W", 0), ("E", 2)):
        cols = [u for u in units if _order(u)[0] == rank]
        for k, u in enumerate(cols):
            if layout == "ends":        # round the rows, outer first: the k-th column's row, then the rest
                start = k % n
                put(u, outer_first[start:] + outer_first[:start], kind)
            else:
                put(u, range(n) if kind == "W" else range(n - 1, -1, -1), kind)
    for u in units:
        if _order(u)[0] == 1:
            put(u, middle_first, "lanes")
    out = {}
    for row, got in zip(rows, load):
        free = list(row)
        if layout == "ends":            # west columns from the west end, east ones from the east, lanes centred
            west = [c for u in got["W"] for c in groups[u]]
            east = [c for u in got["E"] for c in groups[u]]
            out |= dict(zip(west, free))
            out |= dict(zip(east, free[len(free) - len(east):]))
            gap = free[len(west):len(free) - len(east)]
            lanes = [c for u in got["lanes"] for c in groups[u]]
            first = (len(gap) - len(lanes)) // 2
            out |= dict(zip(lanes, gap[first:]))
            continue
        if got["W"] and got["E"]:
            seq = got["W"] + got["lanes"] + got["E"]
        else:
            cols = got["W"] or got["E"]
            seq = cols[:len(cols) // 2] + got["lanes"] + cols[len(cols) // 2:]
        for unit in seq:
            for cell in groups[unit]:
                out[cell] = free.pop(0)
    return out


def _plan_lanes(groups: dict[str, list[str]], rows: list[list[str]]) -> dict[str, str]:
    """`lanes`: every group at the place across its row that its lane has across the chip (an
    MXM column c computes output lane c; a VXM lane is one), because the placer lays the MEM
    slices out that way: each of a slice's byte-wide block RAMs holds one lane's bytes, so the
    stream registers, the VXM's lanes and the MXM's columns of lane k all want the same x. The
    west MXM takes the first row, the east MXM the last, the VXM's lanes the middle one; the
    columns a row cannot hold go to the middle row, spread over the lanes (and one of them split
    between its row's last sites and the middle row when that is what makes them fit)."""
    n = len(rows)
    mid = n // 2
    unit_of = {u: _order(u) for u in groups}      # (0 west MXM / 1 VXM / 2 east MXM, slice, superlane, index)
    lane_of = {gi: k for k, gi in enumerate(sorted({o[2:] for o in unit_of.values()}))}
    lane = {u: lane_of[o[2:]] for u, o in unit_of.items()}
    lanes = len(lane_of)
    content = [[] for _ in rows]              # (lane, kind rank, cells)
    for kind, home in ((0, 0), (2, n - 1)):
        cols = sorted((u for u in groups if unit_of[u][0] == kind), key=lane.get)
        if not cols:
            continue
        size = len(groups[cols[0]])
        fit = len(rows[home]) // size if home != mid else len(cols)
        spill = len(cols) - min(fit, len(cols))
        # the columns that go to the middle row: the one at the row's far end (the west MXM's last,
        # the east MXM's first), split when its row has spare sites, so both halves sit at its
        # lane's x; the others spread over the lanes from the near end
        ends = cols if kind == 0 else cols[::-1]
        picks = [ends[min(len(cols) - 1, round((j + 0.5) * len(cols) / spill))] for j in range(spill - 1)]
        out_lanes = set(picks + [ends[-1]]) if spill else set()
        while len(out_lanes) < spill:       # (rounding made two the same: the next free ones)
            out_lanes.add(next(u for u in ends if u not in out_lanes))
        spare = len(rows[home]) - (len(cols) - spill) * size
        split = ends[-1] if spill and 0 < spare < size else None
        for u in cols:
            cells = groups[u]
            if u == split:
                content[home].append((lane[u], kind, cells[:spare]))
                content[mid].append((lane[u], kind, cells[spare:]))
            else:
                content[mid if u in out_lanes else home].append((lane[u], kind, cells))
    content[mid] += [(lane[u], 1, groups[u]) for u in groups if unit_of[u][0] == 1]
    out = {}
    for row, got in zip(rows, content):
        got.sort(key=lambda t: t[:2])
        left = sum(len(c) for *_, c in got)
        if left > len(row):
            raise FloorplanError(f"a row of {len(row)} multiplier sites would need {left} (layout lanes)")
        pos = 0
        for at, _, cells in got:              # as near the lane's share of the row as the room allows
            target = round((at + 0.5) / lanes * len(row) - len(cells) / 2)
            start = max(pos, min(target, len(row) - left))
            out |= dict(zip(cells, row[start:start + len(cells)]))
            pos, left = start + len(cells), left - len(cells)
    return out


def _chain_key(name: str) -> tuple:
    """Where a block RAM's slice sits west to east (RAMs of no slice, the host bridge's buffer,
    go with the VXM, in the middle), then the cell's own name in natural order (its bit slice)."""
    mo = _SLICE.search(name)
    if mo is None or mo.group("kind") is None:
        at = 0
    else:
        at = (1 if mo.group("kind") == "MEM" else 1000) + int(mo.group("i"))
        at = -at if mo.group("side") == "W" else at
    return at, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def plan_brams(cells: dict, rows: list[list[str]]) -> dict[str, str]:
    """Cell -> site for every block RAM: in the chip's order over the rows as a snake."""
    brams = sorted((n for n, c in cells.items() if c["type"] == BRAM), key=_chain_key)
    sites = [site for k, row in enumerate(rows) for site in (row if k % 2 == 0 else row[::-1])]
    if len(brams) > len(sites):
        raise FloorplanError(f"{len(brams)} block RAMs, the device has {len(sites)}")
    return dict(zip(brams, sites))


def pin(netlist: dict, device: str, brams: bool = False, layout: str = "lanes") -> int:
    """Write the plan into a yosys JSON netlist (in place); returns how many cells were pinned.
    `brams`: the block RAMs too (measured slower on the `fpga` preset: DECISIONS.md)."""
    top = top_module(netlist)
    placed = plan(dsp_groups(top["cells"]), DSP_SITES[device], layout)
    if brams:
        placed |= plan_brams(top["cells"], BRAM_SITES[device])
    for cell, site in placed.items():
        top["cells"][cell].setdefault("attributes", {})["BEL"] = site
    return len(placed)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    brams = "--brams" in argv
    layout = next((a.split("=", 1)[1] for a in argv if a.startswith("--layout=")), "lanes")
    argv = [a for a in argv if a != "--brams" and not a.startswith("--layout=")]
    if len(argv) != 2:
        print(f"usage: python -m hdl.floorplan NETLIST.json DEVICE [--brams] [--layout={'|'.join(LAYOUTS)}]", file=sys.stderr)
        return 2
    path, device = Path(argv[0]), argv[1]
    try:
        netlist = json.loads(path.read_text())
        n = pin(netlist, device, brams, layout)
    except (FloorplanError, KeyError, OSError) as e:
        print(f"error: floorplan of {path}: {e}", file=sys.stderr)
        return 2
    path.write_text(json.dumps(netlist))
    print(f"floorplan: {n} {'multipliers and block RAMs' if brams else 'multipliers'} pinned to {device} sites ({layout})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
