"""Where the long paths are, before routing: a rough static timing pass over a flat ECP5 netlist
(JSON): yosys's after synthesis, or nextpnr's packed one after placement (--no-route --write).

Place and route of the `fpga` preset takes an hour and names one critical path; synthesis takes
minutes. This pass gives every register-to-register path a delay from fixed figures (nextpnr's
ECP5 speed-6 cell delays as its reports print them, and one average net), so the paths worth
fixing show up in the first few minutes. It is for finding them, not for sign-off: routing in a
full device is slower than the average net, and nextpnr's own report decides.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

NET_NS = 1.0                     # an average routed net on a well-filled LFE5U-85F
# after placement (nextpnr --no-route --write): a net's delay from the tiles it spans, as nextpnr's
# own placement-time estimate for ECP5 speed 6 has it (130 ps per unit: 6 units, plus 2 per tile
# of the first 5 in x and in y, plus 1 per tile beyond)
NET_UNIT_NS = 0.13
CLK_TO_Q_NS = {"TRELLIS_FF": 0.52, "DP16KD": 5.6}    # a block RAM without its output register is slow
CELL_NS = {"LUT4": 0.25, "PFUMX": 0.25, "L6MUX21": 0.25, "MULT18X18D": 3.95}
CARRY_NS = {"in_cout": 0.45, "in_sum": 0.4, "cin_cout": 0.07, "cin_sum": 0.4}
STARTS = {"TRELLIS_FF": ("Q",), "DP16KD": ("DO",)}
ENDS = ("TRELLIS_FF", "DP16KD")
CARRY_IN = ("CIN", "FCI", "FXA", "FXB")    # dedicated wires (carry chain, F5/F6 muxes): no routing delay


@dataclass(frozen=True)
class Path:
    ns: float            # estimated arrival at the endpoint
    start: str           # the net the path leaves from (a register or RAM output)
    end: str             # the net it arrives on (a register or RAM input)
    cells: int           # combinational cells on the way
    via: tuple = ()      # the nets on the way, start first: (name, arrival ns)


def placed_net_ns(dx: int, dy: int) -> float:
    """A placed net spanning dx by dy tiles (nextpnr's ECP5 placement estimate)."""
    return NET_UNIT_NS * (6 + max(dx - 5, 0) + max(dy - 5, 0) + 2 * (min(dx, 5) + min(dy, 5)))


def _arcs(cell: dict):
    """(input port, output port, delay) of a combinational cell."""
    t, dirs = cell["type"], cell["port_directions"]
    ins = [p for p, d in dirs.items() if d == "input"]
    outs = [p for p, d in dirs.items() if d == "output"]
    if t == "CCU2C":             # two bits of a carry chain: A0..D0 feed S0, S1 and COUT; A1..D1 not S0
        for o in outs:
            for i in ins:
                if i == "CIN":
                    yield i, o, CARRY_NS["cin_cout" if o == "COUT" else "cin_sum"]
                elif not (o == "S0" and i.endswith("1")):
                    yield i, o, CARRY_NS["in_cout" if o == "COUT" else "in_sum"]
    elif t == "TRELLIS_COMB":    # nextpnr's packed half slice: a LUT4 (and its F5 mux) or half a CCU2C
        lut = [i for i in ("A", "B", "C", "D") if i in ins]
        if cell.get("parameters", {}).get("MODE") == "CCU2":
            for i in lut:
                yield i, "F", CARRY_NS["in_sum"]
                yield i, "FCO", CARRY_NS["in_cout"]
            yield "FCI", "F", CARRY_NS["cin_sum"]
            yield "FCI", "FCO", CARRY_NS["cin_cout"]
        else:
            for i in lut:
                yield i, "F", CELL_NS["LUT4"]
            for i in ("FXA", "FXB", "M"):
                yield i, "OFX", CELL_NS["PFUMX"]
    elif t in CELL_NS:
        for o in outs:
            for i in ins:
                yield i, o, CELL_NS[t]


def top_module(netlist: dict) -> dict:
    """The top module of a yosys or nextpnr JSON netlist."""
    mods = netlist["modules"]
    return next(m for m in mods.values() if m.get("attributes", {}).get("top")) if len(mods) > 1 \
        else next(iter(mods.values()))


def _positions(cells: dict) -> dict:
    """Cell -> (x, y) tile from nextpnr's NEXTPNR_BEL attribute, when the netlist is placed."""
    pos = {}
    for cn, c in cells.items():
        mo = re.match(r"X(\d+)/Y(\d+)", str(c.get("attributes", {}).get("NEXTPNR_BEL", "")))
        if mo:
            pos[cn] = (int(mo.group(1)), int(mo.group(2)))
    return pos


def longest_paths(netlist: dict) -> list[Path]:
    """Every endpoint's latest arrival, latest first (one Path per endpoint bit). A placed netlist
    (nextpnr's --write after placement) gets each net's delay from the distance it spans."""
    top = top_module(netlist)
    cells = top["cells"]
    pos = _positions(cells)

    def net(src_cell, dst_cell):
        a, b = pos.get(src_cell), pos.get(dst_cell)
        if a is None or b is None:
            return NET_NS
        return placed_net_ns(abs(a[0] - b[0]), abs(a[1] - b[1]))
    names: dict[int, str] = {}
    for n, v in top["netnames"].items():      # the most readable name of each bit: fewest '$', shortest
        for b in v["bits"]:
            if isinstance(b, int) and (b not in names or (n.count("$"), len(n)) < (names[b].count("$"), len(names[b]))):
                names[b] = n
    driver, loads = {}, defaultdict(list)
    for cn, c in cells.items():
        for p, bits in c["connections"].items():
            for b in bits:
                if isinstance(b, int):
                    if c["port_directions"].get(p) == "output":
                        driver[b] = (cn, p)
                    else:
                        loads[b].append((cn, p))
    comb = {cn: list(_arcs(c)) for cn, c in cells.items()}
    comb = {cn: a for cn, a in comb.items() if a}
    arrival: dict[int, tuple[float, int | None, int]] = {}      # bit -> (ns, previous bit, cells so far)
    for b, (cn, p) in driver.items():
        t = cells[cn]["type"]
        if t in STARTS and any(p.startswith(s) for s in STARTS[t]):
            arrival[b] = (CLK_TO_Q_NS[t], None, 0)
    # combinational cells in topological order (Kahn over their driving bits)
    waiting, users = {}, defaultdict(set)
    for cn, arcs in comb.items():
        srcs = {b for i in {a[0] for a in arcs} for b in cells[cn]["connections"].get(i, ())
                if isinstance(b, int) and b in driver and driver[b][0] in comb}
        waiting[cn] = len(srcs)
        for b in srcs:
            users[b].add(cn)
    ready = [cn for cn, n in waiting.items() if n == 0]
    while ready:
        cn = ready.pop()
        conn = cells[cn]["connections"]
        outs = set()
        for i, o, d in comb[cn]:
            for ib in conn.get(i, ()):
                if isinstance(ib, int) and ib in arrival:
                    t = arrival[ib][0] + (0.0 if i in CARRY_IN else net(driver[ib][0], cn)) + d
                    for ob in conn.get(o, ()):
                        if isinstance(ob, int) and (ob not in arrival or arrival[ob][0] < t):
                            arrival[ob] = (t, ib, arrival[ib][2] + 1)
            outs.update(b for b in conn.get(o, ()) if isinstance(b, int))
        for ob in outs:
            for user in users.pop(ob, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    ready.append(user)
    paths = []
    for cn, c in cells.items():
        if c["type"] not in ENDS:
            continue
        for p, bits in c["connections"].items():
            if c["port_directions"].get(p) != "input" or p.startswith("CLK"):
                continue
            for b in bits:
                if isinstance(b, int) and b in arrival and arrival[b][2] > 0:
                    s, via = b, [b]
                    while arrival[s][1] is not None:
                        s = arrival[s][1]
                        via.append(s)
                    paths.append(Path(round(arrival[b][0] + net(driver[b][0], cn), 2), names.get(s, "?"),
                                      names.get(b, "?"), arrival[b][2],
                                      tuple((names.get(v, "?"), round(arrival[v][0], 2)) for v in reversed(via))))
    return sorted(paths, key=lambda p: -p.ns)


def family(name: str) -> str:
    """A path end's name with its indices and synthesis suffixes dropped, so the eight lanes'
    copies of one path (or the 32 bits of one register) count once."""
    name = re.sub(r"_TRELLIS_FF_Q.*|_DI(_.*)?$", "", name)
    return re.sub(r"\d+", "#", name)


def worst_by_family(paths: list[Path], n: int) -> list[Path]:
    """The worst path of each (start family, end family), worst first, at most n."""
    seen, out = set(), []
    for p in paths:
        key = (family(p.start), family(p.end))
        if key not in seen:
            seen.add(key)
            out.append(p)
            if len(out) == n:
                break
    return out
