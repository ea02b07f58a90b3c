"""`python -m verif.run`: one command, any target, the same report and outputs."""
import json
import subprocess
import sys

import numpy as np
import pytest

from isa.asm import assemble
from isa.config import get_config
from isa.image import save
from verif.rtl_build import ROOT

PROGRAM = """
.queue MEM_W0
    READ stream=1 dir=E addr=0 count=2
.queue MEM_E1
    NOP 5
    WRITE stream=1 dir=E addr=0x10 count=2
.queue MEM_W1
    NOP 12
    .word 0x00000000000000ff
.mem MEM_W0 addr=0
    .vec 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f
    .vec 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f
"""


def _run(*args):
    return subprocess.run([sys.executable, "-m", "verif.run", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "p.bin"
    save(assemble(PROGRAM, get_config("tiny")), path)
    return path


def _target(image, tmp_path, target):
    out, rep = tmp_path / f"{target}.npz", tmp_path / f"{target}.json"
    r = _run(image, "--target", target, "--dump", "MEM_E1:0x10:2", "--outputs", out, "--report", rep)
    assert r.returncode == 3, r.stderr          # the program ends on an illegal instruction
    report = json.loads(rep.read_text())
    for k in ("target", "wall_seconds"):
        report.pop(k)
    return report, dict(np.load(out))


@pytest.mark.rtl
def test_rtl_matches_golden(sim, image, tmp_path):
    gold, gout = _target(image, tmp_path, "golden")
    assert gold["error"] == "ILLEGAL_OPCODE" and gold["cycles"] == 13   # NOP 12, then the bad word
    assert gout["MEM_E1@0x10"].ravel().tolist() == list(range(32))    # the copy finished first
    rtl, rout = _target(image, tmp_path, sim)
    assert rtl == gold
    assert gout.keys() == rout.keys() and all(np.array_equal(gout[k], rout[k]) for k in gout)


@pytest.mark.parametrize("args,message", [
    (["missing.bin"], "no such file"),
    (["IMAGE", "--dump", "VXM:0:1"], "not a MEM slice"),
    (["IMAGE", "--dump", "MEM_E1:0x10"], "expected SLICE:ADDR:COUNT"),
    (["IMAGE", "--config", "huge"], "unknown configuration"),
    (["JUNK"], "image"),
])
def test_errors_are_one_line(image, tmp_path, args, message):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not an image at all")
    args = [str(image) if a == "IMAGE" else str(junk) if a == "JUNK" else a for a in args]
    r = _run(*args)
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.fixture
def system_images(tmp_path):
    from isa.system import get_system
    from verif.c2c_stimulus import random_transfers
    progs, _ = random_transfers(get_system("pair"), np.random.default_rng(5), min_cycles=300, seed_words=32)
    paths = [tmp_path / f"chip{i}.bin" for i in range(len(progs))]
    for p, prog in zip(paths, progs):
        save(prog, p)
    return paths


def _system_target(paths, tmp_path, target):
    out, rep = tmp_path / f"{target}.npz", tmp_path / f"{target}.json"
    r = _run(*paths, "--system", "pair", "--target", target, "--dump", "1:MEM_W0:0:64", "--outputs", out,
             "--report", rep)
    assert r.returncode == 0, r.stderr
    report = json.loads(rep.read_text())
    report.pop("target"), report.pop("wall_seconds")
    return report, dict(np.load(out))


@pytest.mark.rtl
def test_system_rtl_matches_golden(sim, system_images, tmp_path):
    """python -m verif.run --system: one image per chip, the same report and words on every target."""
    gold, gout = _system_target(system_images, tmp_path, "golden")
    assert gold["system"] == "pair" and len(gold["chips"]) == 2 and gold["cycles"] >= 300
    rtl, rout = _system_target(system_images, tmp_path, sim)
    assert rtl == gold
    assert gout.keys() == rout.keys() == {"chip1.MEM_W0@0x0"}
    assert all(np.array_equal(gout[k], rout[k]) for k in gout)


@pytest.mark.parametrize("extra,message", [
    ([], "several need --system"),
    (["--system", "nope"], "unknown system 'nope'"),
    (["--system", "ring4"], "system 'ring4' has 4 chips; got 2 images"),
    (["--system", "pair", "--dump", "7:MEM_W0:0:1"], "with --system, CHIP:SLICE:ADDR:COUNT"),
])
def test_system_errors_are_one_line(system_images, extra, message):
    r = _run(*system_images, *extra)
    assert r.returncode == 1 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
