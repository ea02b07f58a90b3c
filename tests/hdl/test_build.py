"""Verilog emission: every small preset emits, lints clean under Verilator (with the documented
waivers only) and elaborates under Icarus; the CLI gives clear errors."""
import json
import re
import subprocess
import sys

import pytest

from verif.rtl_build import ROOT, VERILATOR_WAIVERS, verilog
from verif.tools import icarus_elaborate, verilator_lint


@pytest.mark.parametrize("config", ["tiny", "fpga"])
def test_emit_lint_elaborate(config, tmp_path):
    src = verilog(config)
    man = json.loads((src.parent / "manifest.json").read_text())
    assert man["config"]["name"] == config and man["top"] == "chip"
    names = {p["name"] for p in man["ports"]}
    assert {"clk", "rst", "s_axil_awaddr", "s_axil_rdata", "done", "running", "east_out_0", "west_out_0", "s_axis_tdata", "s_axis_tready"} <= names
    lint = verilator_lint([src], "chip", list(VERILATOR_WAIVERS))
    assert lint.returncode == 0, lint.stderr[-3000:]
    # without waivers, only the waived categories appear
    raw = verilator_lint([src], "chip", ["fatal"])
    found = set(re.findall(r"%Warning-(\w+)", raw.stderr))
    assert found <= set(VERILATOR_WAIVERS), found - set(VERILATOR_WAIVERS)
    ela = icarus_elaborate([src], "chip", tmp_path / "chip.vvp")
    assert ela.returncode == 0, ela.stderr[-3000:]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hdl.build", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_list():
    r = _cli("--list")
    assert r.returncode == 0
    for name in ("tiny", "fpga", "tsp"):
        assert re.search(rf"^{name}\s", r.stdout, re.M)


def test_cli_unknown_config():
    r = _cli("--config", "huge", "--out", "/tmp/never")
    assert r.returncode == 2
    assert "unknown configuration 'huge'" in r.stderr and "Traceback" not in r.stderr


def test_every_preset_fits_amaranths_port_limit():
    """Every emitted module of every preset (tsp included) stays under Amaranth's input-bit limit;
    build.emit refuses, with a one-line error, a configuration that would not."""
    from hdl.build import MAX_INPUT_BITS, input_bits
    from hdl.chip import Chip
    from isa.config import PRESETS
    for cfg in PRESETS.values():
        chip = Chip(cfg)
        for name, unit in list(chip.units.items()) + [("chip", chip)]:
            unit._MustUse__silence = True     # inspected, never elaborated: no UnusedElaboratable warning
            assert input_bits(unit) <= MAX_INPUT_BITS, (cfg.name, name, input_bits(unit))


def test_oversized_preset_is_refused_with_a_clear_error():
    """tsp's quadratic selections exceed the emission path's memory: refused in one line, fast."""
    r = _cli("--config", "tsp", "--out", "/tmp/never")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "SXM lane crossbar" in r.stderr and "--force" in r.stderr


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="known limitation since ISA 0.2/0.3 (docs/DECISIONS.md): Amaranth's "
                   "bit-level netlist of tsp's full-width SXM crossbar and VXM/MXM stream-group multiplexers "
                   "passed 11.7 GB within the sxm_slice unit; hdl.build now refuses tsp unless --force")
def test_tsp_emits(tmp_path):
    """The published-chip preset emits (`make sweep`). Before the compute slices: 8.5 min, 10.5 GB."""
    r = _cli("--config", "tsp", "--out", str(tmp_path / "tsp"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "tsp" / "chip.v").stat().st_size > 1_000_000
