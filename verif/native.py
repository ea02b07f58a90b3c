"""Native Verilator runner: a small C++ harness drives the chip's real top-level ports.

`python -m verif.run --target verilator` uses it instead of cocotb. cocotb's Verilator build
makes every signal public (`--public-flat-rw`) and calls back into Python on events; this build
has neither (`--cc --exe --build -O3`, the waivers of `rtl_build.VERILATOR_WAIVERS`), and the run
from START to DONE is a C++ loop that toggles the clock and looks at the `done` port only.

The harness (verif/harness/chip_harness.cpp) knows port names and bus handshakes, nothing about
the register map: this module turns a program image into a command file of AXI4-Lite register
accesses (addresses and bits from isa/hostmap.py, the sequence of verif/driver.py: check ID and
CONFIG0, SRAM segments over the AXI4-Stream slave, every queue's whole ring rows over the same
port (S_DEST = 1) and the rest over Q_DATA_*, START, STATUS and the
counters, then each dump range over M_CMD READ_STREAM on the AXI4-Stream master) and corrects the
raw words it gets back with the SECDED code, as ChipDriver.read_words does.

Builds live in build/<config>/native_verilator[_waves|_prof]/, keyed by the Verilog's hash, the
harness source's hash and the flags, behind a file lock (pytest-xdist workers share one build);
each run has its own temporary command and output files, so runs can go in parallel.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isa import hostmap as hm
from isa import spec
from isa.config import ChipConfig
from isa.ecc import code_for
from isa.image import Program, pack_words

from .rtl_build import BUILD, TOP, VERILATOR_WAIVERS, locked, verilog
from .tools import tool_env

HARNESS = Path(__file__).resolve().parent / "harness" / "chip_harness.cpp"
EXE = "chip_harness"
RESET_CYCLES = 3                  # as verif/chip_tb.py ChipTB.reset
DEFAULT_MAX_CYCLES = 50_000_000   # START to DONE; a chip that runs longer is reported, not waited for

# build variants: directory suffix -> extra Verilator arguments
VARIANTS = {
    "": [],
    "waves": ["--trace-fst"],
    # bench/profile.py: every Verilog statement its own C++ function, named after its chip.v line
    "prof": ["--prof-cfuncs"],
}


class NativeError(RuntimeError):
    """The harness could not finish a run (timeout, a bus handshake that never completed, ...)."""


def verilator_args(variant: str = "") -> list[str]:
    return ["--cc", "--exe", "--build", "-O3", "-Wno-fatal", *[f"-Wno-{w}" for w in VERILATOR_WAIVERS],
            "--top-module", TOP, "--prefix", "Vchip", "-o", EXE, *VARIANTS[variant]]


def build(config: str, variant: str = "") -> Path:
    """The harness executable for `config` (built if the Verilog, the harness or the flags changed)."""
    env = dict(os.environ, **tool_env("verilator"))
    src = verilog(config)
    out = src.parent / ("native_verilator" + (f"_{variant}" if variant else ""))
    args = verilator_args(variant)
    h = hashlib.sha256(src.read_bytes())
    h.update(HARNESS.read_bytes())
    h.update(json.dumps(args).encode())
    key = h.hexdigest()
    exe, stamp = out / EXE, out / "build.sha256"
    with locked(BUILD / f".{config}.native{variant}.lock"):
        if stamp.exists() and stamp.read_text() == key and exe.exists():
            return exe
        obj, flags = out / "obj", out / "flags.json"
        out.mkdir(parents=True, exist_ok=True)
        if not (flags.exists() and flags.read_text() == json.dumps(args)):
            shutil.rmtree(obj, ignore_errors=True)      # make would keep objects built with other flags
            flags.write_text(json.dumps(args))
        cmd = ["verilator", *args, "--Mdir", str(obj), "--build-jobs", str(min(2, os.cpu_count() or 1)),
               str(src), str(HARNESS)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        (out / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
        if r.returncode:
            raise NativeError(f"verilator build of the native harness failed (log: {out / 'build.log'}): "
                              + next((ln for ln in (r.stderr + r.stdout).splitlines() if "rror" in ln), ""))
        tmp = out / f".{EXE}.{os.getpid()}"
        shutil.copy2(obj / EXE, tmp)
        os.replace(tmp, exe)           # a run still using the previous executable keeps its file
        stamp.write_text(key)
        (out / "build_seconds").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return exe


# ---- the command file ----------------------------------------------------------------
def _hex_rows(data: np.ndarray) -> list[str]:
    """uint8 [n, lanes] -> one hex number per word, most significant lane first."""
    data = np.ascontiguousarray(np.asarray(data, np.uint8)[:, ::-1])
    text, width = data.tobytes().hex(), 2 * data.shape[1]
    return [text[i:i + width] for i in range(0, len(text), width)]


@dataclass
class Commands:
    config: ChipConfig
    lines: list[str] = field(default_factory=list)

    def write(self, name: str, value: int, index: int = 0) -> None:
        self.lines.append(f"w {hm.addr(name, index):x} {value & 0xFFFFFFFF:x}")

    def read(self, name: str) -> None:
        self.lines.append(f"r {hm.addr(name):x}")

    def expect(self, name: str, value: int) -> None:
        self.lines.append(f"e {hm.addr(name):x} {value:x}")

    def stream(self, data: np.ndarray) -> None:
        rows = _hex_rows(data)
        self.lines.append(f"s {len(rows):x}")
        self.lines += rows

    def unload(self, position: int, addr: int, n: int) -> None:
        self.write("M_SEL", position)
        self.write("M_ADDR", addr)
        self.write("M_COUNT", n)
        self.write("M_CMD", hm.MCMD_READ_STREAM)
        self.lines.append(f"u {n:x}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def identity(config: ChipConfig) -> dict[str, int]:
    """Register values ChipDriver.check_identity insists on."""
    return {"ID": hm.id_value(spec.ISA_VERSION), "CONFIG0": hm.pack("CONFIG0", **hm.config_fields(config)["CONFIG0"])}


STATUS_REGS = ("STATUS", "CYCLES", "ERROR_INFO", "ECC_CORRECTED", "ECC_UNCORRECTABLE")


def commands(program: Program, dumps, max_cycles: int = DEFAULT_MAX_CYCLES, faults=None,
             bare_cycles: int | None = None) -> Commands:
    """The host's side of a run, as ChipDriver does it: reset, identity, load, START, wait, status, dumps.

    faults: {position: [(addr, data, ecc)]} raw words stored after loading (M_CMD WRITE_RAW).
    bare_cycles: instead of waiting for DONE, clock exactly this many cycles after START with no
    checks (the benchmark's bare loop); the status and dumps are read all the same."""
    cfg = program.config
    program.validate()
    c = Commands(cfg)
    c.lines.append(f"reset {RESET_CYCLES:x}")
    for name, want in identity(cfg).items():
        c.expect(name, want)
    for seg in program.memory:
        c.write("M_SEL", seg.position)
        c.write("M_ADDR", seg.addr)
        c.stream(seg.data)
    for s in cfg.floorplan:
        if s.kind in spec.kinds_with_queues(cfg):
            words = program.queues.get(s.position, [])
            c.write("Q_SEL", s.position)
            c.write("Q_ADDR", 0)
            whole = len(words) // cfg.fetch_words * cfg.fetch_words     # whole ring rows over s_axis
            if whole:
                c.write("S_DEST", hm.SDEST_QUEUE)
                c.stream(pack_words(words[:whole], cfg))
                c.write("S_DEST", 0)
            for w in words[whole:]:
                c.write("Q_DATA_LO", w)
                c.write("Q_DATA_HI", w >> 32)
            c.write("Q_LEN", len(words))
    for pos, words in sorted((faults or {}).items()):
        c.write("M_SEL", pos)
        next_addr = None
        for addr, data, ecc in sorted(words, key=lambda w: w[0]):
            if addr != next_addr:
                c.write("M_ADDR", addr)
            for i, v in enumerate(np.asarray(data, np.uint8).view("<u4")):
                c.write("M_DATA", int(v), i)
            c.write("M_ECC", ecc)
            c.write("M_CMD", hm.MCMD_WRITE_RAW)
            next_addr = addr + 1
    start = f"{hm.addr('CTRL'):x} {hm.CTRL_START:x}"
    if bare_cycles is None:
        c.lines.append(f"g {start} {max_cycles:x}")
    else:
        c.lines.append(f"b {start} {bare_cycles:x}")
    for name in STATUS_REGS:
        c.read(name)
    for pos, addr, n in dumps:            # a range that wraps is two unloads
        first = min(n, cfg.mem_words - addr)
        c.unload(pos, addr, first)
        if first < n:
            c.unload(pos, 0, n - first)
    return c


# ---- running --------------------------------------------------------------------------
@dataclass
class NativeResult:
    status: dict                # cycles, error_info, error, ecc_corrected, ecc_uncorrectable (as tb_run)
    words: dict                 # (position, addr, n) -> uint8 [n, lanes], ECC-corrected
    run_seconds: float          # START to DONE (or the bare loop), wall clock, inside the harness
    run_cycles: int             # clock cycles the harness spent from START on
    load: tuple[int, int, float]    # (words, cycles, seconds) over s_axis
    unload: tuple[int, int, float]  # the same for m_axis
    host_error: bool
    raw: dict = field(repr=False, default_factory=dict)   # (position, addr, n) -> (data, ecc) as stored


def _check_identity(config: ChipConfig, addr: int, got: int) -> str:
    want = identity(config)
    if addr == hm.addr("ID"):
        return f"chip ID {got:#010x}, expected {want['ID']:#010x} (wrong bitstream or ISA version)"
    return f"chip CONFIG0 {got:#010x} does not match configuration {config.name!r}"


def run(program: Program, dumps=(), *, max_cycles: int = DEFAULT_MAX_CYCLES, faults=None,
        waves: Path | None = None, bare_cycles: int | None = None, variant: str | None = None) -> NativeResult:
    """Load and run `program` on the native Verilator harness; `waves`: write an FST there."""
    cfg = program.config
    dumps = [tuple(int(x) for x in d) for d in dumps]
    cmds = commands(program, dumps, max_cycles, faults, bare_cycles)
    exe = build(cfg.name, variant if variant is not None else ("waves" if waves else ""))
    with tempfile.TemporaryDirectory(prefix="native_run.") as tmp:
        cmd_path, out_path = Path(tmp) / "commands.txt", Path(tmp) / "output.txt"
        cmd_path.write_text(cmds.text())
        argv = [str(exe), str(cmd_path), str(out_path)] + ([str(Path(waves).resolve())] if waves else [])
        r = subprocess.run(argv, capture_output=True, text=True, cwd=tmp)
        text = out_path.read_text() if out_path.exists() else ""
    lines = text.splitlines()
    if r.returncode:
        last = lines[-1] if lines else (r.stderr.strip().splitlines() or ["no output"])[-1]
        if r.returncode == 2 and last.startswith("mismatch"):
            _, addr, got = last.split()
            raise NativeError(_check_identity(cfg, int(addr, 16), int(got, 16)))
        if r.returncode == 3 and last.startswith("timeout"):
            raise NativeError(f"verilator: the chip did not finish within {max_cycles} cycles of START "
                              f"(--max-cycles)")
        raise NativeError(f"verilator harness exited with {r.returncode}: {last}")
    regs, beats, times, run_line = [], [], {}, None
    for ln in lines:
        kind, *rest = ln.split()
        if kind == "r":
            regs.append(int(rest[0], 16))
        elif kind == "u":
            beats.append(rest)
        elif kind in ("g", "b"):
            run_line = (int(rest[0]), float(rest[1]))
        elif kind == "t":
            times[rest[0]] = (int(rest[3]), int(rest[2]), float(rest[1]))
    st = dict(zip(STATUS_REGS, regs))
    flags = hm.unpack("STATUS", st["STATUS"])
    status = {"cycles": st["CYCLES"], "error_info": st["ERROR_INFO"], "error": flags["error"],
              "ecc_corrected": st["ECC_CORRECTED"], "ecc_uncorrectable": st["ECC_UNCORRECTABLE"]}
    code, L = code_for(cfg.word_bits), cfg.lanes
    if beats:
        raw_all = np.frombuffer(bytes.fromhex("".join(b[0] for b in beats)), np.uint8).reshape(-1, L)[:, ::-1]
        ecc_all = np.array([int(b[1], 16) for b in beats], np.int64)
    words, raw, k = {}, {}, 0
    for pos, addr, n in dumps:
        data, ecc = np.ascontiguousarray(raw_all[k:k + n]), ecc_all[k:k + n]
        k += n
        raw[(pos, addr, n)] = (data, ecc)
        words[(pos, addr, n)] = code.decode_bytes(data, ecc)[0]
    return NativeResult(status=status, words=words, run_seconds=run_line[1], run_cycles=run_line[0],
                        load=times.get("s", (0, 0, 0.0)), unload=times.get("u", (0, 0, 0.0)),
                        host_error=bool(flags["host_err"]), raw=raw)
