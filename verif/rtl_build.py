"""Emit and compile the chip once per (configuration, simulator), shared by all tests.

Emission is cached in build/<config>/ keyed by a hash of the isa/ and hdl/
sources; simulator builds in build/<config>/sim_<simulator>[_waves]/ keyed by
the Verilog's hash. A file lock makes concurrent pytest-xdist workers wait for
one build instead of racing.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from .tools import TIMESCALE, apply_env

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("CHIP_BUILD_DIR", ROOT / "build"))
TOP = "chip"

from hdl.build import VERILATOR_WAIVERS  # noqa: E402,F401 (the waivers live with the emitter)


def source_hash() -> str:
    h = hashlib.sha256()
    for pkg in ("isa", "hdl"):
        for f in sorted((ROOT / pkg).glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


@contextmanager
def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_system(design: str) -> bool:
    """A design is a chip configuration (`tiny`) or a system of chips (`pair`, isa/system.py)."""
    from isa.system import SYSTEMS
    return design in SYSTEMS


def is_board(design: str) -> bool:
    """`board-<config>`: the board core of a configuration (hdl/board.py), driven over its UART."""
    return design.startswith("board-")


def chip_config_of(design: str) -> str:
    """The chip configuration a design is built from (a board's; a system's name stands for itself)."""
    return design[len("board-"):] if is_board(design) else design


def top_of(design: str) -> str:
    return "system" if is_system(design) else "board" if is_board(design) else TOP


def verilog(config: str) -> Path:
    """build/<design>/chip.v (a configuration) or build/<design>/system.v (a system), emitted if the
    sources changed."""
    from hdl.build import emit, emit_board, emit_system

    out = BUILD / config
    want = source_hash()
    name = f"{top_of(config)}.v"
    with locked(BUILD / f".{config}.lock"):
        man = out / "manifest.json"
        if man.exists() and json.loads(man.read_text()).get("source_hash") == want and (out / name).exists():
            return out / name
        quiet = lambda *_: None  # noqa: E731
        if is_system(config):
            manifest = emit_system(config, out, quiet)
        elif is_board(config):
            manifest = emit_board(chip_config_of(config), out, quiet)
        else:
            manifest = emit(config, out, log=quiet)
        manifest["source_hash"] = want
        man.write_text(json.dumps(manifest, indent=2) + "\n")
    return out / name


def waves_requested() -> bool:
    return os.environ.get("WAVES", "0") not in ("", "0")


ICARUS_TIME0 = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) +=\s*0;")


def icarus_source(src: Path) -> Path:
    """chip.v with the time-0 trigger of Amaranth's comb blocks made to fire under Icarus 11.

    Yosys' Verilog backend makes every `always @*` block read a dummy register
    initialised to 0 so that the block runs once at time 0. Icarus 11 applies
    declaration initialisers without an event, so a combinational If/Else whose
    inputs never change stays X (amaranth issue 1629): the first host write to
    SRAM address 0 was lost this way. Assigning the register in an
    `initial #0` makes the event happen after the blocks wait on it.
    """
    text = src.read_text()
    fixed, n = ICARUS_TIME0.subn(lambda mo: f"reg {mo.group(1)} ; initial #0 {mo.group(1)} = 1'b0;", text)
    if n == 0:
        raise RuntimeError("Icarus time-0 patch found no trigger register: has the Yosys backend changed?")
    out = src.with_name(src.stem + "_icarus.v")
    if not out.exists() or out.read_text() != fixed:
        out.write_text(fixed)
    return out


def verilator_system_source(src: Path) -> Path:
    """system.v with the chip marked a Verilator hierarchy block, so a system's Verilator build
    compiles the chip once for all its instances (`--hierarchical`) instead of once per chip."""
    text = src.read_text()
    start = text.index("\nmodule chip(")
    end = text.index(");", start) + 2
    out = src.with_name(src.stem + "_verilator.v")
    fixed = text[:end] + " /*verilator hier_block*/" + text[end:]
    if not out.exists() or out.read_text() != fixed:
        out.write_text(fixed)
    return out


def visible_vlt(build_dir: Path, top: str, backdoor: bool) -> Path:
    """A Verilator control file that makes only what the testbenches touch visible to cocotb: the
    top module's own signals, and with `backdoor` the MEM slices' SRAM arrays (verif/chip_tb.py's
    backdoor loads and checks). cocotb's runner builds with --public-flat-rw, which keeps every
    signal of the design addressable and blocks most of Verilator's optimizations."""
    from cocotb_tools.runner import VerilatorControlFile
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / "visible.vlt"
    lines = ["`verilator_config", f'public_flat_rw -module "{top}" -var "*"']
    if backdoor:
        lines.append('public_flat_rw -module "mem_slice" -var "bank"')
    path.write_text("\n".join(lines) + "\n")
    return VerilatorControlFile(path)


def simulator_build(simulator: str, config: str):
    """Compile the chip for a simulator; returns (runner, build_dir)."""
    from cocotb_tools.runner import get_runner

    apply_env(simulator)
    src = verilog(config)
    if simulator == "icarus":
        src = icarus_source(src)
    elif is_system(config):
        src = verilator_system_source(src)
    waves = waves_requested()
    build_dir = src.parent / (f"sim_{simulator}" + ("_waves" if waves else ""))
    vhash = hashlib.sha256(src.read_bytes()).hexdigest()
    runner = get_runner(simulator)
    with locked(BUILD / f".{config}.{simulator}.lock"):
        stamp = build_dir / "verilog.sha256"
        if not (stamp.exists() and stamp.read_text() == vhash):
            args, sources = [], [src]
            if simulator == "verilator":
                args = [f"-Wno-{w}" for w in VERILATOR_WAIVERS] + ["-Wno-fatal", "-O3", "-fno-inline"]
                if is_system(config):
                    args.append("--hierarchical")
                sources.append(visible_vlt(build_dir, top_of(config), backdoor=not (is_board(config) or is_system(config))))
                args.append("--no-public-flat-rw")
                if waves:
                    args.append("--trace-fst")
            runner.build(sources=sources, hdl_toplevel=top_of(config),
                         build_dir=build_dir, build_args=args, timescale=TIMESCALE, waves=waves, always=True,
                         log_file=build_dir / "build.log")
            stamp.write_text(vhash)
        elif simulator == "icarus":
            runner.build(sources=[src], hdl_toplevel=top_of(config), build_dir=build_dir, timescale=TIMESCALE,
                         waves=waves, always=False, log_file=build_dir / "build.log")
    return runner, build_dir


def run_cocotb(simulator: str, module: str, testcase: str | None = None, config: str = "tiny",
               env: dict | None = None, seed: int | None = None, private_dir: bool = False) -> None:
    """Run cocotb tests from `module` (under verif/) against the chip; raises if any fails.
    `private_dir`: run in a fresh directory of its own, for callers that may run the same module
    concurrently (python -m verif.run from several processes); otherwise the run's directory is
    named after module, test and seed, so a rerun finds the last one's log."""
    from cocotb_tools.runner import get_results

    runner, build_dir = simulator_build(simulator, config)
    name = testcase or "all"
    if seed is None and "COCOTB_RANDOM_SEED" in os.environ:
        seed = int(os.environ["COCOTB_RANDOM_SEED"])
    test_dir = build_dir / "runs" / (f"{module.split('.')[-1]}.{name}" + (f".seed{seed}" if seed is not None else ""))
    if private_dir:
        test_dir.parent.mkdir(parents=True, exist_ok=True)
        test_dir = Path(tempfile.mkdtemp(prefix=test_dir.name + ".", dir=test_dir.parent))
    extra = {"CHIP_CONFIG": chip_config_of(config), **(env or {})}     # the package is installed: no PYTHONPATH needed
    results = runner.test(test_module=module, hdl_toplevel=top_of(config), hdl_toplevel_lang="verilog",
                          testcase=testcase,
                          build_dir=build_dir,
                          test_dir=test_dir, extra_env=extra, seed=seed, waves=waves_requested(),
                          timescale=TIMESCALE, results_xml=str(test_dir / "results.xml"),
                          log_file=test_dir / "sim.log")
    total, failed = get_results(results)
    if total == 0 or failed:
        log = (test_dir / "sim.log").read_text(errors="replace") if (test_dir / "sim.log").exists() else ""
        seeds = re.findall(r"Seeding Python random module with (\d+)", log)
        why = [ln.strip() for ln in log.splitlines() if "Error:" in ln][:3]
        raise AssertionError(f"{module}::{name} on {simulator}: {failed} of {total} cocotb tests failed; replay "
                             f"with COCOTB_RANDOM_SEED={seeds[0] if seeds else seed}; log: {test_dir / 'sim.log'}\n"
                             + "\n".join(why))
    if private_dir and not waves_requested():       # nothing to look at after a passing run
        shutil.rmtree(test_dir, ignore_errors=True)


_MODULE = re.compile(r"^module (\S+)\((.*?)\);", re.M | re.S)
_PORT = re.compile(r"^\s*(input|output|inout)\s+(\[[^\]]+\]\s+)?(\\?\S+)\s*;", re.M)


def port_stub(text: str) -> tuple[str, str]:
    """(module name, a module with the same ports and nothing inside) from one emitted unit's
    Verilog: what a parent is linted against instead of the unit itself."""
    mo = _MODULE.search(text)
    if not mo:
        raise ValueError("no module header in emitted unit")
    body = "".join(f"  {d} {w or ''}{n} ;\n" for d, w, n in _PORT.findall(text[mo.end():text.index("endmodule", mo.end())]))
    return mo.group(1), (f"/* verilator lint_off UNDRIVEN */\nmodule {mo.group(1)}({mo.group(2)});\n{body}endmodule\n"
                         f"/* verilator lint_on UNDRIVEN */\n")


def lint_units(out: Path, log=print) -> list[str]:
    """Lint an emission directory module by module: each unit of DIR/units (and the top) with
    `verilator --lint-only -Wall` and the project's waivers, the units it instantiates replaced
    by port-only stubs (`port_stub`). Verilator elaborates every instance of a flat lint, which
    for `tsp` (2,000 superlane instances) passed 24 GB; per module, each is checked once and the
    connections of every instance against its unit's ports. Returns the failures (empty: clean)."""
    from .tools import verilator_lint
    units = sorted((out / "units").glob("*.v"))
    stubs_dir = out / "lint"
    stubs_dir.mkdir(exist_ok=True)
    stubs = {}
    for u in units:
        if u.stem != TOP:
            name, text = port_stub(u.read_text())
            stubs[u.stem] = stubs_dir / f"{name}.stub.v"
            stubs[u.stem].write_text(text)
    failures = []
    for u in units:
        t0 = time.time()
        r = verilator_lint([u, *(f for n, f in stubs.items() if n != u.stem)], u.stem, list(VERILATOR_WAIVERS))
        log(f"  {u.stem:14s} {'clean' if r.returncode == 0 else 'FAILED'}  {time.time() - t0:6.1f} s")
        if r.returncode:
            failures.append(f"{u.stem}: {r.stderr[-2000:]}")
    return failures


def main(argv=None) -> int:
    """python -m verif.rtl_build lint DIR: `verilator --lint-only -Wall` with the project's waivers
    (VERILATOR_WAIVERS) on every module of an emission directory (`lint_units`); what `make tsp`
    runs after emitting."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m verif.rtl_build", description=main.__doc__.split(";")[0])
    ap.add_argument("action", choices=["lint"])
    ap.add_argument("dir", type=Path, help="an emission directory (build/<config>)")
    args = ap.parse_args(argv)
    if not (args.dir / "units" / f"{TOP}.v").exists():
        print(f"error: {args.dir / 'units'} has no emitted units; emit first (python -m hdl.build --out {args.dir})",
              file=sys.stderr)
        return 2
    print(f"linting {args.dir / 'units'} module by module with verilator --lint-only", flush=True)
    t0 = time.time()
    failures = lint_units(args.dir, log=lambda s: print(s, flush=True))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"error: verilator --lint-only failed on {len(failures)} module(s) of {args.dir}", file=sys.stderr)
        return 1
    print(f"lint clean in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
