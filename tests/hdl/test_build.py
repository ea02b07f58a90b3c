"""Verilog emission: every small preset emits, lints clean under Verilator (with the documented
waivers only) and elaborates under Icarus; the CLI gives clear errors."""
import dataclasses
import json
import re
import shutil
import subprocess
import sys

import pytest

from verif.rtl_build import ROOT, VERILATOR_WAIVERS, lint_units, verilog
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


@pytest.mark.parametrize("system", ["pair", pytest.param("ring4", marks=pytest.mark.slow)])
def test_system_emits_lints_and_elaborates(system, tmp_path):
    """python -m hdl.build --system: the chip once, the link model and the system top, linted clean
    (documented waivers only) and elaborated by Icarus; the manifest names the system. (ring4's
    whole-system lint takes two minutes: make sweep; the default suite emits and elaborates ring4
    for its Icarus system tests, and lints the same chip and link model through pair.)"""
    src = verilog(system)
    man = json.loads((src.parent / "manifest.json").read_text())
    assert src.name == "system.v" and man["system_top"] == "system" and man["system"]["name"] == system
    lint = verilator_lint([src], "system", list(VERILATOR_WAIVERS))
    assert lint.returncode == 0, lint.stderr[-3000:]
    text = src.read_text()
    assert text.count("\nmodule chip(") == 1 and "\nmodule link_model(" in text
    n = len(man["system"]["chips"])
    assert len(re.findall(r"^\s*chip chip\d+ \(", text, re.M)) == n
    assert len(re.findall(r"^\s*link_model link\d+_(ab|ba) \(", text, re.M)) == 2 * len(man["system"]["links"])
    ela = icarus_elaborate([src], "system", tmp_path / "system.vvp")
    assert ela.returncode == 0, ela.stderr[-3000:]


def test_lint_module_by_module_is_clean_and_catches_a_bad_connection(tmp_path):
    """`make tsp`'s lint (each module alone, the units it instantiates as port-only stubs) is clean
    on tiny, and fails when an instance in the top names a port its unit does not have."""
    shutil.copytree(verilog("tiny").parent / "units", tmp_path / "units")
    assert lint_units(tmp_path, log=lambda s: None) == []
    top = tmp_path / "units" / "chip.v"
    text = top.read_text()
    assert ".fetch_tap(" in text
    top.write_text(text.replace(".fetch_tap(", ".fetch_tapx(", 1))
    failures = lint_units(tmp_path, log=lambda s: None)
    assert len(failures) == 1 and failures[0].startswith("chip:") and "PINNOTFOUND" in failures[0]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "hdl.build", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_list():
    r = _cli("--list")
    assert r.returncode == 0
    for name in ("tiny", "fpga", "tsp", "pair", "ring4"):
        assert re.search(rf"^{name}\s", r.stdout, re.M)


def test_cli_unknown_system():
    r = _cli("--system", "nope", "--out", "/tmp/never")
    assert r.returncode == 2
    assert "unknown system 'nope'" in r.stderr and "Traceback" not in r.stderr


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


def test_oversized_config_is_refused_with_a_clear_error():
    """A selection too wide for the emission path (here: 500 lanes, not a multiple of 16, so one
    superlane the width of the vector) is refused in one line before anything is built; every
    preset passes the guard."""
    from hdl.build import BuildError, check_size
    from isa.config import PRESETS
    for cfg in PRESETS.values():
        check_size(cfg)
    wide = dataclasses.replace(PRESETS["tsp"], name="wide", lanes=500)
    with pytest.raises(BuildError, match=r"VXM operand groups \(vxm_superlane\) ~\d+M.*lanes a multiple of 16.*--force"):
        check_size(wide)


@pytest.mark.slow
def test_tsp_emits(tmp_path):
    """The published-chip preset emits and lints (`make sweep`; docs/DECISIONS.md has the time and memory)."""
    r = _cli("--config", "tsp", "--out", str(tmp_path / "tsp"))
    assert r.returncode == 0, r.stderr[-2000:]
    src = tmp_path / "tsp" / "chip.v"
    assert src.stat().st_size > 1_000_000
    assert lint_units(tmp_path / "tsp") == []
