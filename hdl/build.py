"""Emit the chip's Verilog for a named configuration.

    python -m hdl.build --config tiny --out build/tiny
    python -m hdl.build --system pair --out build/pair
    python -m hdl.build --list

Writes, under --out:
    units/<unit>.v   one module per distinct unit (mem_slice, mem_superlane, vxm_lane, ...)
    units/chip.v     the top, instantiating the units by name
    chip.v           all of the above in one file (what simulators and synthesis read)
    manifest.json    configuration, ISA version, timing, top-level ports, units
Each distinct unit is emitted once. The `tsp` preset takes minutes and GBs (docs/DECISIONS.md).
With --system, the chip as above plus, for simulation only (hdl/system.py):
    units/link_model.v, units/system.v   one direction of a link; the chips wired through them
    system.v         chip.v + link_model + system in one file (top module `system`)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from isa import spec
from isa.config import DEFAULT, PRESETS, SUPERLANE_LANES, ChipConfig, ConfigError, get_config

# Verilator warnings waived for Amaranth-generated Verilog, and why:
VERILATOR_WAIVERS = {
    "WIDTHEXPAND": "Amaranth relies on Verilog's implicit zero/sign extension in generated expressions",
    "WIDTHTRUNC": "likewise, implicit truncation of generated intermediate results",
    "UNUSEDSIGNAL": "generated intermediate wires whose upper bits are unused",
    "PROCASSINIT": "Amaranth gives every register an initial value and also resets it in a process",
    "CASEINCOMPLETE": "generated FSM/switch `casez` statements rely on default assignments before the case",
    "DECLFILENAME": "all modules are emitted into one chip.v, not one file per module",
    "SYNCASYNCNET": "Amaranth's AsyncFIFO (a C2C slice's receive buffer) resets its read side through an "
                    "asynchronous-assert synchronizer fed by the write side's synchronous reset, by design",
}

TOP = "chip"
# Amaranth 0.5 numbers the bits of a module's input ports in one 16-bit index space.
MAX_INPUT_BITS = (1 << 16) - 1


class BuildError(RuntimeError):
    pass


def input_bits(component) -> int:
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import In
    return sum(Shape.cast(m.shape).width for m in component.signature.members.values() if m.flow == In)


# What emitting tsp took, measured (docs/DECISIONS.md), for the console note on wide configurations.
TSP_EMISSION = "tsp: about 20 minutes and 10 GB peak on a 2-core machine"

# Bit-level multiplexer inputs of the widest selections, beyond which Amaranth 0.5's netlist
# outgrows a 24 GiB machine (docs/DECISIONS.md, "tsp does not emit with the compute slices").
MAX_MUX_BITS = 4_000_000


def mux_bits(cfg) -> dict[str, int]:
    """Estimated bit-level multiplexer inputs of the widest selection in one emitted unit (each is
    emitted once however often it is instantiated; the top makes no selection of its own)."""
    two_s, B = 2 * cfg.streams, cfg.superlane_bits
    return {"SXM lane crossbar (sxm_crossbar)": cfg.lanes * cfg.lanes * 8 * cfg.sxm,
            "VXM operand groups (vxm_superlane)": (3 * cfg.vxm_alus + 1) * 4 * two_s * B,
            "MXM weight streams (mxm_superlane)": cfg.streams * two_s * B}


def check_size(cfg) -> None:
    """Refuse, in one line, a configuration whose widest selection would outgrow the emission path."""
    too_big = {k: v for k, v in mux_bits(cfg).items() if v > MAX_MUX_BITS}
    if too_big:
        what = ", ".join(f"{k} ~{v / 1e6:.0f}M" for k, v in too_big.items())
        hint = "" if cfg.lanes % SUPERLANE_LANES == 0 else f" (lanes a multiple of {SUPERLANE_LANES} keeps selections per superlane)"
        raise BuildError(f"config {cfg.name!r}: {what} bit-level multiplexer inputs in one unit, beyond what this "
                         f"emission path builds in memory (limit {MAX_MUX_BITS / 1e6:.0f}M; see docs/DECISIONS.md)"
                         f"{hint}; --force tries anyway")


def as_config(config) -> ChipConfig:
    """A preset's name or a ChipConfig (a trial configuration, python -m hdl.fpga --set), as a ChipConfig."""
    return config if isinstance(config, ChipConfig) else get_config(config)


def emit(config, out: Path, log=lambda s: print(s, flush=True), force: bool = False) -> dict:
    """Emit Verilog + manifest for one configuration (a preset's name or a ChipConfig) into `out`;
    returns the manifest."""
    from amaranth.back import verilog
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import In

    from .chip import Chip

    cfg = as_config(config)
    if not force:
        check_size(cfg)
    out = Path(out)
    (out / "units").mkdir(parents=True, exist_ok=True)
    chip = Chip(cfg)
    for name, unit in list(chip.units.items()) + [(TOP, chip)]:
        n = input_bits(unit)
        if n > MAX_INPUT_BITS:
            raise BuildError(
                f"config {cfg.name!r}: unit {name!r} has {n} input bits; Amaranth 0.5 emits at most {MAX_INPUT_BITS} input bits per module "
                f"(see docs/DECISIONS.md)")
    full = "".join(_convert(list(chip.units.items()) + [(TOP, chip)], out, log))
    (out / "chip.v").write_text(full)
    manifest = {
        "top": TOP,
        "config": cfg.to_dict(),
        "isa_version": ".".join(map(str, spec.ISA_VERSION)),
        "timing": spec.timing(cfg),
        "units": list(chip.units),
        "ports": [{"name": n, "dir": "in" if mbr.flow == In else "out", "width": Shape.cast(mbr.shape).width}
                  for n, mbr in chip.signature.members.items()] + [
                  {"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}],
        "verilog_sha256": hashlib.sha256(full.encode()).hexdigest(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / f"streamchip_{cfg.name}.core").write_text(fusesoc_core(cfg))
    return manifest


def fusesoc_core(cfg) -> str:
    """A FuseSoC (CAPI2) core for the emitted chip.v, so FuseSoC users can depend on the chip:
    target `default` gives the file and the top, `lint` runs Verilator with the documented waivers."""
    isa = ".".join(map(str, spec.ISA_VERSION))
    waivers = ", ".join(f"-Wno-{w}" for w in VERILATOR_WAIVERS)
    return f"""CAPI=2:
name: streamchip:streamchip:chip_{cfg.name}:{isa}
description: "streamchip chip, configuration {cfg.name} (ISA {isa}), emitted by python -m hdl.build; ports in manifest.json"

filesets:
  rtl:
    files:
      - chip.v
    file_type: verilogSource

targets:
  default:
    filesets: [rtl]
    toplevel: chip
  lint:
    default_tool: verilator
    filesets: [rtl]
    toplevel: chip
    tools:
      verilator:
        mode: lint-only
        verilator_options: [{waivers}]
"""


def _convert(units: list, out: Path, log) -> list[str]:
    """Verilog of each (module name, component), written to out/units/<name>.v; the texts in order."""
    from amaranth.back import verilog

    texts = []
    for name, unit in units:
        t0 = time.time()
        text = verilog.convert(unit, name=name, emit_src=False)
        (out / "units" / f"{name}.v").write_text(text)
        texts.append(text)
        log(f"  {name:12s} {len(text) / 1e6:8.2f} MB  {time.time() - t0:6.1f} s")
    return texts


def emit_system(system_name: str, out: Path, log=lambda s: print(s, flush=True)) -> dict:
    """Emit a system (isa/system.py) for simulation: its chip once, a link model, the system top."""
    from isa.system import get_system

    from .system import LinkModel, SystemTop

    sysm = get_system(system_name)
    top = SystemTop(sysm)            # refuses systems of mixed configurations
    out = Path(out)
    manifest = emit(top.config.name, out, log)
    full = (out / "chip.v").read_text() + "".join(
        _convert([("link_model", LinkModel(top.config)), ("system", top)], out, log))
    (out / "system.v").write_text(full)
    manifest["system"] = sysm.to_dict()
    manifest["system_top"] = "system"
    manifest["system_sha256"] = hashlib.sha256(full.encode()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def emit_board(config, out: Path, log=lambda s: print(s, flush=True)) -> dict:
    """Emit the board core (hdl/board.py: the chip behind the UART host bridge, with the bridge's
    simulation timing, isa/bridge.py SIM_TIMING) as module `board`, for simulation: board.v."""
    from isa.bridge import SIM_TIMING

    from .board import BoardCore

    cfg = as_config(config)
    manifest = emit(cfg, out, log)
    out = Path(out)
    full = (out / "chip.v").read_text() + "".join(_convert([("board", BoardCore(cfg, SIM_TIMING))], out, log))
    (out / "board.v").write_text(full)
    manifest["board_top"] = "board"
    manifest["bridge_timing"] = {"divisor": SIM_TIMING.divisor, "timeout_bits": SIM_TIMING.timeout_bits}
    manifest["board_sha256"] = hashlib.sha256(full.encode()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdl.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=DEFAULT, help=f"preset name (default {DEFAULT})")
    ap.add_argument("--out", type=Path, help="output directory (default build/<config>)")
    ap.add_argument("--system", help="emit a system (a preset name or a .json description) for simulation")
    ap.add_argument("--board", action="store_true",
                    help="also emit the board core (the chip behind the UART host bridge) as module board, for "
                         "simulation (bitstreams: python -m hdl.fpga build)")
    ap.add_argument("--list", action="store_true", help="list the presets and systems and exit")
    ap.add_argument("--force", action="store_true", help="emit even a configuration over the size guard")
    args = ap.parse_args(argv)
    if args.list:
        for c in PRESETS.values():
            print(f"{c.name:6s} lanes={c.lanes:<4d} streams={c.streams:<3d} mem_slices={c.mem_slices:<3d} "
                  f"mem_words={c.mem_words:<5d} SRAM={c.sram_bytes // 1024} KiB  {c.description}")
        from isa.system import SYSTEMS
        for sy in SYSTEMS.values():
            lat = sorted({lk.latency for lk in sy.links})
            print(f"{sy.name:6s} system: {len(sy.chips)} x {'/'.join(sorted(set(sy.chips)))}, {len(sy.links)} links, "
                  f"latency {'/'.join(map(str, lat))} cycles  {sy.description}")
        return 0
    if args.system:
        from isa.system import SystemSpecError
        out = args.out or Path("build") / Path(args.system).stem
        print(f"emitting system {args.system!r} into {out}/", flush=True)
        t0 = time.time()
        try:
            emit_system(args.system, out)
        except (SystemSpecError, BuildError, NotImplementedError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {out / 'system.v'} and {out / 'manifest.json'} in {time.time() - t0:.1f} s")
        return 0
    try:
        get_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or Path("build") / args.config
    print(f"emitting config {args.config!r} into {out}/", flush=True)
    cfg = get_config(args.config)
    if cfg.superlanes > 1:
        print(f"note: {cfg.name!r} is wide ({cfg.superlanes} superlanes x {cfg.positions} positions): emission takes "
              f"minutes ({TSP_EMISSION}; docs/DECISIONS.md); one line per unit follows, the top last and longest",
              flush=True)
    t0 = time.time()
    if args.board:
        emit_board(args.config, out)
        print(f"wrote {out / 'board.v'} and {out / 'manifest.json'} in {time.time() - t0:.1f} s")
        return 0
    try:
        emit(args.config, out, force=args.force)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out / 'chip.v'} and {out / 'manifest.json'} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
