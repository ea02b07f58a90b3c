"""docs/ISA.md is generated from isa/ and must be committed up to date."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from isa import docs, hostmap, spec
from isa.config import PRESETS
from isa.ecc import code_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def text():
    return docs.generate()


def test_committed_file_is_current():
    problem = docs.check()
    assert problem is None, problem


def test_check_command_line():
    r = subprocess.run([sys.executable, "-m", "isa.docs", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_check_detects_a_stale_file(tmp_path):
    stale = tmp_path / "ISA.md"
    stale.write_text(docs.generate().replace("| `stream_hop` |", "| `stream_hop_old` |"))
    problem = docs.check(stale)
    assert problem is not None and "out of date" in problem and "stream_hop" in problem
    assert docs.main(["--check", "--out", str(stale)]) == 1
    assert docs.main(["--check", "--out", str(tmp_path / "missing.md")]) == 1
    assert docs.main(["--out", str(stale)]) == 0
    assert docs.check(stale) is None


def test_generation_is_deterministic(text):
    assert docs.generate() == text


def test_every_opcode_and_field(text):
    for op in spec.OPCODES:
        assert f"### {op.mnemonic}" in text
        assert f"| {op.mnemonic} | 0x{op.code:02x} |" in text
        for f in op.fields:
            assert f"| `{f.name}` | [{f.msb}:{f.lsb}] |" in text or f"| `{f.name}` | [{f.msb}] |" in text


def test_every_timing_key_with_its_value(text):
    for key, cycles in spec.TIMING.items():
        assert f"| `{key}` | {cycles} | {spec.TIMING_DOC[key]} |" in text


def test_latency_overrides_per_preset(text, monkeypatch):
    """Below the base table, one row per preset: "none" while it has no overrides; a preset with
    overrides lists each with the configuration's value and the base one."""
    assert "| preset | latency overrides |" in text
    base = spec.TIMING
    for cfg in PRESETS.values():
        overrides = ", ".join(f"`{k}` {v} (base {base[k]})" for k, v in cfg.latency) or "none"
        assert f"| {cfg.name} | {overrides} |" in text
    slow = dataclasses.replace(PRESETS["tiny"], name="tiny_slow", latency=(("vxm_drive", base["vxm_drive"] + 1),
                                                                           ("mxm_acc_write", base["mxm_acc_write"] + 2)))
    monkeypatch.setitem(PRESETS, slow.name, slow)
    want = (f"| tiny_slow | `vxm_drive` {base['vxm_drive'] + 1} (base {base['vxm_drive']}), "
            f"`mxm_acc_write` {base['mxm_acc_write'] + 2} (base {base['mxm_acc_write']}) |")
    assert want in docs.generate()


def test_error_codes_registers_and_presets(text):
    for e in spec.ErrorCode:
        assert f"| {int(e)} | `{e.name}` |" in text
    for r in hostmap.REGISTERS:
        assert f"| 0x{r.offset:02X} | `{r.name}` | {r.access} |" in text
    for cfg in PRESETS.values():
        c = code_for(cfg.word_bits)
        assert f"| {cfg.name} | {cfg.lanes} | {c.data_bits} | {c.check_bits} | 1 | {c.stored_bits} | {c.word_bits} |" in text
        for s in (cfg.floorplan[0], cfg.floorplan[-1]):
            assert s.name in text


def test_tiny_secded_width(text):
    # the example the docs promise: 128 data bits -> 8 check + 1 parity = 137
    assert "| tiny | 16 | 128 | 8 | 1 | 9 | 137 |" in text


def test_version_and_config_bounds(text):
    assert f"**{spec.ISA_VERSION[0]}.{spec.ISA_VERSION[1]}**" in text
    read = spec.BY_MNEMONIC["READ"]
    assert "`stream` < config `streams`" in text and "`addr` < config `mem_words`" in text
    assert {n for n, _ in spec.field_limits(read, PRESETS["tiny"])} == {"stream", "addr"}


def _layout_block() -> str:
    """The code block under "## How the code is laid out" in docs/ARCHITECTURE.md."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## How the code is laid out", 1)[1]
    return section.split("```", 2)[1]


@pytest.mark.parametrize("package", ["isa", "hdl", "sim"])
def test_architecture_layout_names_every_module(package):
    """A module added to isa/, hdl/ or sim/ gets a line in the layout table (a newcomer's map)."""
    block = _layout_block()
    rows = block.split(f"\n{package}/", 1)[1].split("\n")
    # the package's rows: its first line and the indented lines that follow it
    lines = [rows[0]] + [r for r in (rows[1:] if len(rows) > 1 else []) if r.startswith(" ")]
    lines = lines[:next((i for i, r in enumerate(lines[1:], 1) if not r.startswith(" ")), len(lines))]
    listed = " ".join(lines)
    modules = sorted(p.name for p in (ROOT / package).glob("*.py") if p.name != "__init__.py")
    missing = [m for m in modules if m not in listed.replace(",", " ").split() and m[:-3] not in listed.split()]
    assert not missing, f"docs/ARCHITECTURE.md layout table does not list {package}/{', '.join(missing)}"
