"""The benchmark schedules on the golden model: right answers, and the cycle counts `make bench`
reports (cycle counts are deterministic, so they are asserted exactly)."""
import numpy as np

from bench import gemm
from isa.config import get_config
from sim.golden import Golden

CFG = get_config("tiny")


def _run(program, layout):
    g = Golden(program)
    res = g.run()
    return res, gemm.read_c(g.memory, layout)


def test_gemm256_utilization():
    rng = np.random.default_rng(1)
    A = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    B = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    res, C = _run(*gemm.gemm_program(CFG, A, B))
    assert np.array_equal(C, A.astype(np.int32) @ B.astype(np.int32))
    assert res.cycles == 33323
    assert 256 ** 3 / (res.cycles * 2 * CFG.lanes ** 2) >= 0.95


def test_gemv256_bandwidth():
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (1, 256)).astype(np.int8)
    B = rng.integers(-128, 128, (256, 256)).astype(np.int8)
    program, layout = gemm.gemv_program(CFG, x, B)
    res, y = _run(program, layout)
    assert np.array_equal(y, x.astype(np.int32) @ B.astype(np.int32))
    assert res.cycles == 1195
    assert gemm.sram_words_read(program) / (res.cycles * 4) >= 0.5
