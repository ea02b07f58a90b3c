"""Where a busy `tiny` chip's Verilator evaluation goes (docs/PROFILE.md).

    python -m bench.profile [--program random|gemm|all] [--cycles N] [--top N] [--freq HZ] [--cfuncs]

Method. The native harness (verif/native.py) is built with the flags `verif.run` uses plus
`-CFLAGS -g` (debug information only: the same machine code) and run under
`perf record -e cpu-clock --call-graph dwarf` (a software clock: this machine's perf has no
hardware counters), sampling only inside the harness's START..DONE loop (`perf record
--control`). Each sample is charged to the statement of Verilator's generated C++ it falls in
(for a sample inside an out-of-line Verilator helper such as VL_MULS_III, the calling
statement), and the statement to the Verilog instance of the signal it assigns (generated
names are hierarchical: chip__DOT__MXM_W0_col3__DOT__acc), hence to its module; signals of the
chip top (hdl/chip.py) and of the superlane units (hdl/superlane.py: every stream selection) are
put in groups (VXM operand groups, MXM LW group, ...), anonymous
`$N` wires followed to the first named signal or instance port they feed.

`--cfuncs` adds a cross-check with Verilator's `--prof-cfuncs` (every Verilog statement its own
C++ function, named after its chip.v line): exact Verilog lines, but the per-statement calls
slow the model down about 5x and inflate modules made of many small statements.

Programs: `random` is the bench's 20,000-cycle random MEM-transfer program
(verif.stimulus.random_transfer_program, seed 2026); `gemm` the hand-scheduled 256x256x256 int8
GEMM of bench/gemm.py (both MXMs; VXM and SXM idle).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from isa.config import get_config
from verif import native
from verif.rtl_build import verilog

native.VARIANTS.setdefault("debug", ["-CFLAGS", "-g"])   # the plain build plus debug information

_PROF = re.compile(r"__PROF__\w+?__l(\d+)")
_IDENT = re.compile(r"\\\S+|[A-Za-z_][A-Za-z0-9_$]*")
_ASSIGN = re.compile(r"^\s*(?:assign\s+)?(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)(?:\s*\[[^\]]*\])?\s*<?=(?!=)")
_HIER = re.compile(r"chip__DOT__\w+")
_CXX_LHS = re.compile(r"^\s*(?:vlSelfRef\.|vlSelf->)?(\w+)\s*(?:\[[^\]]*\]\s*)*(?:=(?!=)|$)")

# signal groups of the chip top (hdl/chip.py) and of the superlane units (hdl/superlane.py), where
# every stream selection is made; matched against "module:signal", first match wins
GROUPS = [
    (r"^vxm_superlane:([abc]\d+_p\d|lane\d+\.s[abc]\d+)$",
     "VXM operand groups (group(): 4 streams per ALU operand, Array over e_in/w_in, bytes to each lane)"),
    (r"^vxm_superlane:(reg_src_p\d|lane\d+\.reg_data)$", "VXM register-load group (group() for reg_src)"),
    (r"^vxm_superlane:[ew]_data\d+$", "VXM result select per driven stream (ALU x byte plane)"),
    (r"^vxm_superlane:lane\d+\.", "other VXM lane inputs (per-lane control fan-out)"),
    (r"^sxm_superlane:src$", "SXM source group (sxm_width streams, Array over e_in/w_in)"),
    (r"^mxm_superlane:(lw\d+|col\d+\.lw_bytes)$", "MXM LW group (streams, Array over e_in/w_in)"),
    (r"^mxm_superlane:x_tap$", "MXM x operand select"),
    (r"^mxm_superlane:col\d+\.", "other MXM column inputs (control fan-out)"),
    (r"^\w+_superlane:fetch_tap$", "IFETCH stream taps (one per queue)"),
    (r"^mem_superlane:tap$", "MEM WRITE stream taps"),
    (r"^\w+_superlane:", "stream registers and drive data (superlane units)"),
    (r"^chip:(east|west)_\w+$", "fabric wires between positions"),
    (r"^chip:(MEM|VXM|SXM|MXM)\w*\.", "other slice inputs (host port, run control fan-out)"),
]
OTHER = "other chip-top logic (host port, run control, register file)"


class Verilog:
    """chip.v: the module of each line, instances, and what each statement computes."""

    def __init__(self, path: Path):
        self.lines = path.read_text().splitlines()
        self.module_of: list[str] = []
        self.instances: dict[str, dict[str, str]] = {}   # module -> {instance name: module}
        self.consumer: dict[str, dict[str, str]] = {}   # module -> {anonymous wire: what it feeds}
        self.inputs: dict[str, set[str]] = {}           # module -> input port names
        module, instance = "", None
        for ln in self.lines:
            mo = re.match(r"module (\\?\S+?)\s*\(", ln)
            if mo:
                module = mo.group(1).lstrip("\\")
            self.module_of.append(module)
            port = re.match(r"^  input (?:\[[^\]]*\] )?(\\?\S+)\s*;", ln)
            if port:
                self.inputs.setdefault(module, set()).add(port.group(1).lstrip("\\"))
            inst = re.match(r"^  (\\?\S+) (\\?\S+) \($", ln)
            if inst:
                instance = inst.group(2).lstrip("\\").strip()
                self.instances.setdefault(module, {})[instance] = inst.group(1).lstrip("\\")
                continue
            consumer = self.consumer.setdefault(module, {})
            if instance is not None:
                port = re.match(r"^\s+\.(\w+)\((.*)\),?$", ln)
                if port:
                    for tok in _IDENT.findall(port.group(2)):
                        if tok.startswith("\\$"):
                            consumer.setdefault(tok.strip(), f"{instance}.{port.group(1)}")
                    continue
                if ln.strip() == ");":
                    instance = None
                    continue
            mo = _ASSIGN.match(ln)
            if mo:
                lhs = mo.group(1).strip()
                for tok in _IDENT.findall(ln[mo.end():]):
                    if tok.startswith("\\$") and tok.strip() != lhs:
                        consumer.setdefault(tok.strip(), lhs)

    def lhs(self, line: int) -> str:
        """The signal the statement at 1-based `line` assigns (first assignment from there on)."""
        for ln in self.lines[line - 1:line + 60]:
            if "begin end" in ln:
                continue
            mo = _ASSIGN.match(ln)
            if mo:
                return mo.group(1).strip()
        return "?"

    def named(self, sig: str, module: str = "chip") -> str:
        """A signal of `module`, anonymous wires followed to the first named signal they feed
        ("$71" in mxm_column is the dot product that becomes acc)."""
        sig = sig.strip()
        if sig.startswith("$"):
            sig = "\\" + sig
        consumer, seen = self.consumer.get(module, {}), set()
        while sig.startswith("\\$") and sig in consumer and sig not in seen:
            seen.add(sig)
            sig = consumer[sig]
        return sig.lstrip("\\")

    def module_at(self, path: list[str]) -> str:
        """Module of an instance path below the chip top (['MEM_W0', 'queue'])."""
        module = "chip"
        for name in path:
            module = self.instances.get(module, {}).get(name, module)
        return module


def group_of(module: str, name: str) -> str | None:
    """The group of signal `name` of `module`, or None for a module outside the chip top and the
    superlane units."""
    if module != "chip" and not module.endswith("_superlane"):
        return None
    for pat, label in GROUPS:
        if re.search(pat, f"{module}:{name}"):
            return label
    return OTHER if module == "chip" else f"other {module} logic"


def program_of(name: str, cycles: int):
    cfg = get_config("tiny")
    if name == "random":
        from verif.stimulus import random_transfer_program
        return random_transfer_program(cfg, np.random.default_rng(2026), min_cycles=cycles)
    from bench import gemm
    rng = np.random.default_rng(2026)
    A = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    B = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    return gemm.gemm_program(cfg, A, B)[0]


def perf_record(program, variant: str, freq: int, callgraph: bool, tmp: Path) -> tuple[Path, Path, int]:
    """perf.data of the START..DONE loop on a `variant` build; returns (data, exe, cycles)."""
    exe = native.build("tiny", variant)
    (tmp / "cmds.txt").write_text(native.commands(program, []).text())
    ctl, ack = tmp / "ctl", tmp / "ack"
    os.mkfifo(ctl)
    os.mkfifo(ack)
    env = dict(os.environ, HARNESS_PERF_CTL=str(ctl), HARNESS_PERF_ACK=str(ack))
    cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", str(freq), "-D", "-1",
           "--control", f"fifo:{ctl},{ack}", "-o", str(tmp / "perf.data")]
    if callgraph:
        cmd += ["--call-graph", "dwarf,4096"]
    rec = subprocess.run(cmd + ["--", str(exe), str(tmp / "cmds.txt"), str(tmp / "out.txt")],
                         env=env, capture_output=True, text=True)
    out = (tmp / "out.txt").read_text() if (tmp / "out.txt").exists() else ""
    if rec.returncode or not out:
        raise RuntimeError(f"perf record failed: {(rec.stderr or out)[-500:]}")
    cycles = next(int(ln.split()[1]) for ln in out.splitlines() if ln.startswith("g "))
    return tmp / "perf.data", exe, cycles


# ---- method 1: the plain build, samples charged to generated statements ---------------------
class Generated:
    """Verilator's generated C++ (obj dir): the statement a line belongs to, resolved to one that
    assigns a design signal (a temporary's statement stands for the statement that uses it; an
    `if` for the first statement it guards)."""

    TEMP = re.compile(r"^\s*(?:vlSelfRef\.)?(__V\w+)\s*(?:\[[^\]]*\]\s*)*=(?!=)")

    def __init__(self, obj: Path):
        self.obj, self.files = obj, {}

    def _load(self, file: str):
        if file not in self.files:
            lines = (self.obj / file).read_text().splitlines()
            starts, spans, start = [], [], 0
            for i, ln in enumerate(lines):
                if ln.rstrip().endswith((";", "{", "}")):
                    starts.append(start)
                    spans += [len(starts) - 1] * (i - start + 1)
                    start = i + 1
            spans += [len(starts)] * (len(lines) - start)
            starts.append(start)
            self.files[file] = (lines, starts, spans)
        return self.files[file]

    def _text(self, lines, starts, k) -> str:
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        return "\n".join(lines[starts[k]:end])

    def statement(self, file: str, line: int) -> str:
        lines, starts, spans = self._load(file)
        k = spans[min(line, len(lines)) - 1]
        text = self._text(lines, starts, k)
        for _ in range(200):                       # follow temporaries and conditions forward
            first = text.lstrip()
            temp = self.TEMP.match(text)
            if not (temp or first.startswith(("if ", "if(", "} else", "else"))) or k + 1 >= len(starts):
                return text
            k += 1
            nxt = self._text(lines, starts, k)
            while temp and temp.group(1) not in nxt and k + 1 < len(starts) and not nxt.lstrip().startswith("}"):
                k += 1
                nxt = self._text(lines, starts, k)
            text = nxt
        return text


def _decode(name: str) -> str:
    return name.replace("__024", "$")


def charge(stmt: str, src: Verilog) -> tuple[str, str]:
    """(module, signal) a generated statement works for: the hierarchical signal it assigns, or
    else the instance its operands mostly belong to."""
    first = stmt.lstrip().split("\n")[0]
    mo = _CXX_LHS.match(first)
    names = []
    if mo and "chip__DOT__" in mo.group(1):
        names = [mo.group(1)[mo.group(1).index("chip__DOT__"):]]
    if not names:
        names = [Counter(_HIER.findall(stmt)).most_common(1)[0][0]] if _HIER.search(stmt) else []
    if not names:
        return "(Verilator temporaries, triggers, scheduling)", ""
    parts = [_decode(p) for p in names[0].split("__DOT__")[1:]]
    module = src.module_at(parts[:-1])
    if len(parts) >= 2 and parts[-1] in src.inputs.get(module, ()):
        # an inlined instance's input port is computed by its parent's logic
        return src.module_at(parts[:-2]), ".".join(parts)
    sig = parts[-1]
    if module == "chip":
        sig = src.named(sig)
    elif sig.startswith("$"):
        sig = f"{sig} -> {src.named(sig, module)}"
    return module, ".".join(parts[:-1] + [sig])


def _addr2line(exe: Path, addrs: list[int]) -> dict[int, str]:
    """Outermost source location (file:line) of each address: the statement, not an inlined helper."""
    out = subprocess.run(["addr2line", "-i", "-a", "-e", str(exe)], input="".join(f"{a:x}\n" for a in addrs),
                         capture_output=True, text=True).stdout
    where, cur = {}, None
    for ln in out.splitlines():
        if ln.startswith("0x"):
            cur = int(ln, 16)
        else:                                           # the last line of an inline chain is the outermost
            where[cur] = ln.split(" (discriminator")[0]
    return where


def plain_samples(perf_data: Path, exe: Path, src: Verilog) -> tuple[Counter, Counter]:
    """{(module, signal): samples} and {helper function: samples} on the -g build."""
    script = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "ip,sym", "--no-demangle"],
                            capture_output=True, text=True).stdout
    # perf script: a sample is a block of "ip sym" frames (leaf first; ips relative to the
    # executable; "(inlined)" lines repeat an ip), blocks separated by blank lines
    samples, frames = [], []
    for ln in script.splitlines() + [""]:
        p = ln.split()
        if len(p) >= 2 and "(inlined)" not in ln:
            frames.append((int(p[0], 16), p[1]))
        elif not p and frames:
            samples.append(frames)
            frames = []
    where = _addr2line(exe, sorted({ip for frames in samples for ip, _ in frames}))
    gen = Generated(exe.parent / "obj")
    by, helpers = Counter(), Counter()
    for frames in samples:
        helper = None
        for ip, sym in frames:
            loc = where.get(ip, "??:0")
            file, _, line = loc.rpartition(":")
            name = Path(file).name
            if name.startswith("Vchip___024root__") and line.isdigit():
                by[charge(gen.statement(name, int(line)), src)] += 1
                if helper:
                    helpers[helper] += 1
                break
            helper = helper or re.sub(r"^_ZL?\d+|[.].*$|[A-Z][a-z]*P.*$", "", sym)
        else:
            by[("(harness, Verilator runtime)", frames[0][1] if frames else "?")] += 1
    return by, helpers


def report_plain(name: str, by: Counter, helpers: Counter, cycles: int, top: int) -> None:
    total = sum(by.values())

    def pct(n):
        return f"{100 * n / total:5.1f}%"
    print(f"## {name}: {cycles} cycles, {total} samples (plain -O3 build with -g)")
    modules, groups = Counter(), Counter()
    for (module, sig), n in by.items():
        modules[module] += n
        if group_of(module, sig) is not None:
            groups[group_of(module, sig)] += n
    print("by Verilog module (all instances):")
    for m, n in modules.most_common():
        print(f"  {pct(n)}  {m}")
    print("chip top and superlane units by signal group:")
    for g, n in groups.most_common():
        print(f"  {pct(n)}  {g}")
    per_kind = Counter()
    for (m, sig), n in by.items():
        inst, dot, name = sig.rpartition(".") if m != "chip" else ("", "", sig)
        per_kind[(m, re.sub(r"\d+", "*", inst) + dot + (name if m != "chip" else re.sub(r"\d+", "*", name)))] += n
    print(f"top {top} signals, instances summed (module: signal):")
    for (m, sig), n in per_kind.most_common(top):
        print(f"  {pct(n)}  {m}: {sig}")
    if helpers:
        print("of which in out-of-line Verilator helpers (charged to the caller above):")
        for h, n in helpers.most_common(5):
            print(f"  {pct(n)}  {h}")
    print()


# ---- method 2: --prof-cfuncs, one function per Verilog statement ------------------------------
def cfunc_samples(perf_data: Path) -> Counter:
    rep = subprocess.run(["perf", "report", "-i", str(perf_data), "--stdio", "--no-children", "-n",
                          "--sort", "sym", "--percent-limit", "0"], capture_output=True, text=True)
    samples = Counter()
    for ln in rep.stdout.splitlines():
        mo = re.match(r"^\s+[\d.]+%\s+(\d+)\s+\[[.k]\]\s+(.*\S)\s*$", ln)
        if mo:
            samples[mo.group(2)] += int(mo.group(1))
    return samples


def report_cfuncs(name: str, samples: Counter, cycles: int, src: Verilog, top: int) -> None:
    total = sum(samples.values())
    print(f"## {name}: {cycles} cycles, {total} samples (--prof-cfuncs build)")
    by_module, by_group, by_stmt = Counter(), Counter(), Counter()
    for sym, n in samples.items():
        mo = _PROF.search(sym)
        if not mo:
            by_module["(Verilator scheduling, helpers, harness)"] += n
            continue
        line = int(mo.group(1))
        module = src.module_of[line - 1]
        by_module[module] += n
        sig = src.lhs(line).lstrip("\\")
        if sig.startswith("$"):
            sig = f"{sig} -> {src.named(sig, module)}"
        by_stmt[(module, line, sig)] += n
        group = group_of(module, sig.split(" -> ")[-1])
        if group is not None:
            by_group[group] += n

    def pct(n):
        return f"{100 * n / total:5.1f}%"
    print("by Verilog module (all instances):")
    for m, n in by_module.most_common():
        print(f"  {pct(n)}  {m}")
    print("chip top and superlane units by signal group:")
    for g, n in by_group.most_common():
        print(f"  {pct(n)}  {g}")
    print(f"top {top} statements (module:chip.v line  signal):")
    for (m, line, sig), n in by_stmt.most_common(top):
        print(f"  {pct(n)}  {m}:{line}  {sig}")
    print()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    ap.add_argument("--program", choices=("random", "gemm", "all"), default="all")
    ap.add_argument("--cycles", type=int, default=20000, help="length of the random program")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--freq", type=int, default=10000, help="perf sampling frequency (Hz)")
    ap.add_argument("--cfuncs", action="store_true", help="also profile a --prof-cfuncs build")
    args = ap.parse_args(argv)
    src = Verilog(verilog("tiny"))
    for name in (("random", "gemm") if args.program == "all" else (args.program,)):
        program = program_of(name, args.cycles)
        with tempfile.TemporaryDirectory(prefix="profile.") as tmp:
            data, exe, cycles = perf_record(program, "debug", args.freq, True, Path(tmp))
            report_plain(name, *plain_samples(data, exe, src), cycles, args.top)
        if args.cfuncs:
            with tempfile.TemporaryDirectory(prefix="profile.") as tmp:
                data, exe, cycles = perf_record(program, "prof", args.freq, False, Path(tmp))
                report_cfuncs(name, cfunc_samples(data), cycles, src, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
