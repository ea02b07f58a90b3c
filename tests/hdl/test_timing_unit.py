"""The path estimator (`hdl/timing.py`) on hand-made netlists in yosys's JSON form: arrival =
clock-to-out + (net + cell) per combinational cell + the last net; carry-in arcs use the
dedicated carry routing (no net); the worst path per kind comes first."""
import pytest

from hdl import timing


def _cell(kind, ins, outs):
    return {"type": kind, "port_directions": {**{p: "input" for p in ins}, **{p: "output" for p in outs}},
            "connections": {**ins, **outs}}


def _netlist(cells, names):
    return {"modules": {"top": {"attributes": {"top": 1}, "cells": cells,
                                "netnames": {n: {"bits": [b]} for n, b in names.items()}}}}


def test_a_lut_chain_between_two_registers():
    cells = {"src": _cell("TRELLIS_FF", {"DI": [9], "CLK": [1]}, {"Q": [2]}),
             "l1": _cell("LUT4", {"A": [2], "B": ["0"]}, {"Z": [3]}),
             "l2": _cell("LUT4", {"A": [3]}, {"Z": [4]}),
             "dst": _cell("TRELLIS_FF", {"DI": [4], "CLK": [1]}, {"Q": [9]})}
    paths = timing.longest_paths(_netlist(cells, {"a_q": 2, "mid": 3, "b_d": 4, "b_q": 9, "clk": 1}))
    want = timing.CLK_TO_Q_NS["TRELLIS_FF"] + 2 * (timing.NET_NS + timing.CELL_NS["LUT4"]) + timing.NET_NS
    assert [(p.start, p.end, p.cells) for p in paths] == [("a_q", "b_d", 2)]
    assert paths[0].ns == pytest.approx(want, abs=0.01)


def test_carry_chain_and_ram_output():
    """RAM out -> carry cell -> carry cell (over CIN, no net) -> register."""
    cells = {"ram": _cell("DP16KD", {"ADA0": [5], "CLKA": [1]}, {"DOA0": [2]}),
             "c1": _cell("CCU2C", {"A0": [2], "CIN": ["0"]}, {"COUT": [3], "S0": [6], "S1": [7]}),
             "c2": _cell("CCU2C", {"A0": ["0"], "CIN": [3]}, {"COUT": [8], "S0": [4], "S1": [10]}),
             "dst": _cell("TRELLIS_FF", {"DI": [4], "CLK": [1]}, {"Q": [5]})}
    paths = timing.longest_paths(_netlist(cells, {"ram_do": 2, "carry": 3, "sum": 4, "addr": 5}))
    c = timing.CARRY_NS
    want = timing.CLK_TO_Q_NS["DP16KD"] + timing.NET_NS + c["in_cout"] + c["cin_sum"] + timing.NET_NS
    end = [p for p in paths if p.end == "sum"]
    assert end and end[0].ns == pytest.approx(want, abs=0.01) and end[0].start == "ram_do"


def test_worst_by_family_keeps_one_per_kind():
    ps = [timing.Path(9.0, "lane3.a1", "lane3.r2_TRELLIS_FF_Q_4_DI", 5),
          timing.Path(8.9, "lane5.a1", "lane5.r2_TRELLIS_FF_Q_7_DI", 5),
          timing.Path(7.0, "queue.head", "queue.legal", 3)]
    assert [p.ns for p in timing.worst_by_family(ps, 10)] == [9.0, 7.0]


def test_placed_nets_cost_their_distance():
    """With nextpnr's placement (NEXTPNR_BEL), a net costs what nextpnr's estimate gives its span."""
    cells = {"src": _cell("TRELLIS_FF", {"DI": [9], "CLK": [1]}, {"Q": [2]}),
             "l1": _cell("LUT4", {"A": [2]}, {"Z": [3]}),
             "dst": _cell("TRELLIS_FF", {"DI": [3], "CLK": [1]}, {"Q": [9]})}
    for name, xy in (("src", "X1/Y1/SLICEA"), ("l1", "X3/Y1/SLICEA"), ("dst", "X3/Y17/SLICEB")):
        cells[name]["attributes"] = {"NEXTPNR_BEL": xy}
    paths = timing.longest_paths(_netlist(cells, {"a_q": 2, "b_d": 3, "b_q": 9, "clk": 1}))
    want = timing.CLK_TO_Q_NS["TRELLIS_FF"] + timing.placed_net_ns(2, 0) + timing.CELL_NS["LUT4"] \
        + timing.placed_net_ns(0, 16)
    assert paths[0].ns == pytest.approx(want, abs=0.01)
    # 130 ps units: 6, 2 per tile of the first 5 in each direction, 1 per tile beyond
    assert timing.placed_net_ns(0, 16) == pytest.approx(0.13 * (6 + 11 + 10))


def test_packed_cells_after_placement():
    """nextpnr's packed netlist: a LUT half slice (TRELLIS_COMB, A..D -> F), then two carry halves
    (MODE CCU2) chained over FCO -> FCI without a net, into a register; `via` names the way."""
    def comb(mode, ins, outs, xy):
        c = _cell("TRELLIS_COMB", ins, outs)
        c["parameters"], c["attributes"] = {"MODE": mode}, {"NEXTPNR_BEL": xy}
        return c
    cells = {"src": _cell("TRELLIS_FF", {"DI": [9], "CLK": [1]}, {"Q": [2]}),
             "lut": comb("LOGIC", {"A": [2], "B": ["0"]}, {"F": [3]}, "X1/Y1/SLICEA.K0"),
             "c0": comb("CCU2", {"A": [3], "FCI": ["0"]}, {"F": [6], "FCO": [4]}, "X1/Y1/SLICEB.K0"),
             "c1": comb("CCU2", {"A": ["0"], "FCI": [4]}, {"F": [5], "FCO": [8]}, "X1/Y1/SLICEB.K1"),
             "dst": _cell("TRELLIS_FF", {"DI": [5], "CLK": [1]}, {"Q": [9]})}
    cells["src"]["attributes"] = {"NEXTPNR_BEL": "X1/Y1/SLICEA.FF0"}
    cells["dst"]["attributes"] = {"NEXTPNR_BEL": "X1/Y1/SLICEC.FF0"}
    paths = timing.longest_paths(_netlist(cells, {"a_q": 2, "l": 3, "carry": 4, "sum": 5, "b_q": 9, "clk": 1}))
    end = [p for p in paths if p.end == "sum"][0]
    c, near = timing.CARRY_NS, timing.placed_net_ns(0, 0)
    want = timing.CLK_TO_Q_NS["TRELLIS_FF"] + near + timing.CELL_NS["LUT4"] + near + c["in_cout"] + c["cin_sum"] + near
    assert end.ns == pytest.approx(want, abs=0.01) and end.cells == 3
    assert [name for name, _ in end.via] == ["a_q", "l", "carry", "sum"]
