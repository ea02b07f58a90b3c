"""The native Verilator runner (verif/native.py): same cycles, status and SRAM as the golden model.

Each test loads through the chip's real host ports (AXI4-Lite, AXI4-Stream) and compares every
word of every MEM slice (read back over m_axis, raw, then ECC-corrected) with the golden model.
Skipped when --sim leaves Verilator out.
"""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from isa import spec
from isa.config import SliceKind, get_config
from isa.ecc import code_for
from isa.image import Program, save
from sim.golden import Golden
from verif import native
from verif.rtl_build import ROOT
from verif.stimulus import random_transfer_program, random_words

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


@pytest.fixture(autouse=True)
def _verilator_selected(request):
    sims = request.config.getoption("--sim")
    if sims and "verilator" not in sims:
        pytest.skip("Verilator not selected (--sim)")


def _pos(cfg, name):
    return next(s.position for s in cfg.floorplan if s.name == name)


def _all_words(cfg):
    return [(s.position, 0, cfg.mem_words) for s in cfg.slices_of(SliceKind.MEM)]


def _golden(program, faults=None):
    gold = Golden(program)
    for pos, words in (faults or {}).items():
        for addr, data, ecc in words:
            gold.host_write_raw(pos, addr, data, ecc)
    return gold, gold.run()


def _compare(program, got: native.NativeResult, gold, res):
    assert got.status == {"cycles": res.cycles, "error_info": res.error_info,
                          "error": int(res.error != spec.ErrorCode.NONE),
                          "ecc_corrected": res.ecc_corrected, "ecc_uncorrectable": res.ecc_uncorrectable}
    assert not got.host_error
    state, code = gold.sram_state(), code_for(program.config.word_bits)
    for (pos, addr, n), words in got.words.items():
        rows = (addr + np.arange(n)) % program.config.mem_words
        want = code.decode_bytes(state[pos][0][rows], state[pos][1][rows])[0]
        bad = np.flatnonzero((words != want).any(axis=1))
        assert bad.size == 0, f"{program.config.floorplan[pos].name}: {bad.size} words differ, first at {addr + bad[0]:#x}"


@pytest.mark.rtl
@pytest.mark.parametrize("config,seed", [("tiny", 1), ("tiny", 2),
                                         pytest.param("fpga", 3, marks=pytest.mark.slow)])   # (a second native build)
def test_random_transfers_match_golden(config, seed):
    cfg = get_config(config)
    p = random_transfer_program(cfg, np.random.default_rng(seed), min_cycles=2000)
    gold, res = _golden(p)
    got = native.run(p, _all_words(cfg))
    assert res.cycles >= 2000
    _compare(p, got, gold, res)
    rows = sum(len(w) // cfg.fetch_words for w in p.queues.values())     # whole queue rows go over s_axis too
    assert got.load[0] == sum(len(s.data) for s in p.memory) + rows


@pytest.mark.rtl
def test_illegal_instruction_stops_with_the_error_status():
    cfg = get_config("tiny")
    p = Program.empty(cfg).add_memory("MEM_W0", 0, random_words(cfg, np.random.default_rng(0), 4))
    p.add("MEM_W0", spec.encode("READ", stream=2, dir=E, addr=0, stride=1, count=4))
    p.add("MEM_E0", [spec.encode("NOP", cycles=7), 0xFFFF_FFFF_FFFF_FFFF])
    gold, res = _golden(p)
    assert res.error != spec.ErrorCode.NONE and res.error_position == _pos(cfg, "MEM_E0") and res.error_pc == 1
    _compare(p, native.run(p, _all_words(cfg)), gold, res)


@pytest.mark.rtl
def test_ecc_faults_are_corrected_and_counted():
    """Raw words stored with M_CMD WRITE_RAW (single- and double-bit errors): the ECC counters and
    SRAM match the golden model, and the unload returns the stored bits uncorrected."""
    cfg = get_config("tiny")
    r = np.random.default_rng(5)
    n = 64
    data = random_words(cfg, r, n)
    p = Program.empty(cfg).add_memory("MEM_W1", 0, data)
    src, dst = _pos(cfg, "MEM_W1"), _pos(cfg, "MEM_E0")
    p.add("MEM_W1", spec.encode("READ", stream=3, dir=E, addr=0, stride=1, count=n))
    t_w = spec.TIMING["mem_read_drive"] + (dst - src) - spec.TIMING["mem_write_sample"]
    p.add("MEM_E0", [spec.encode("NOP", cycles=t_w), spec.encode("WRITE", stream=3, dir=E, addr=0x100, stride=1, count=n)])
    code = Golden(p).code
    eccs = code.encode_bytes(data)
    faults = []
    for a in range(n):
        d, e = data[a].copy(), int(eccs[a])
        bits = r.choice(cfg.word_bits + code.stored_bits, 1 + (a % 4 == 0), replace=False)
        for b in bits:
            if b < cfg.word_bits:
                d[b // 8] ^= np.uint8(1 << (b % 8))
            else:
                e ^= 1 << (int(b) - cfg.word_bits)
        faults.append((a, d, e))
    faults = {src: faults}
    gold, res = _golden(p, faults)
    assert res.ecc_corrected == 48 and res.ecc_uncorrectable == 16
    got = native.run(p, _all_words(cfg), faults=faults)
    _compare(p, got, gold, res)
    stored, stored_ecc = got.raw[(src, 0, cfg.mem_words)]
    assert np.array_equal(stored[:n], np.stack([d for _, d, _ in faults[src]]))
    assert stored_ecc[:n].tolist() == [e for _, _, e in faults[src]]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "verif.run", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True)


@pytest.mark.rtl
def test_timeout_is_one_clear_line(tmp_path):
    cfg = get_config("tiny")
    path = tmp_path / "p.bin"
    save(Program.empty(cfg).add("MEM_E1", spec.encode("NOP", cycles=1000)), path)
    r = _cli(path, "--target", "verilator", "--max-cycles", "50")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["error: verilator: the chip did not finish within 50 cycles of "
                                             "START (--max-cycles)"]
    r = _cli(path, "--target", "verilator", "--max-cycles", "2000")
    assert r.returncode == 0 and "cycles=1000 " in r.stdout, r.stderr


@pytest.mark.rtl
def test_two_runs_at_once():
    cfg = get_config("tiny")
    programs = [random_transfer_program(cfg, np.random.default_rng(s), min_cycles=1500) for s in (11, 12)]
    native.build(cfg.name)                  # both runs use the cached build
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: native.run(p, _all_words(cfg)), programs))
    for p, got in zip(programs, results):
        _compare(p, got, *_golden(p))
