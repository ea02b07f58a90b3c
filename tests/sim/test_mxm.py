"""MXM in the golden model, checked against numpy: C = (A - xzp) @ (B - wzp) in int32."""
import numpy as np
import pytest

from isa import spec
from isa.asm import AsmError, assemble
from isa.config import get_config
from sim.golden import Golden
from verif.mxm_stimulus import gemm_program, gemm_reference, mxm_values, read_c
from verif.tb_mxm import install_timing_program

CFG = get_config("tiny")
L = CFG.lanes


@pytest.mark.parametrize("xs,ws", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("M,KT,NT,width", [(24, 3, 2, 1), (1, 8, 4, 2), (5, 2, 3, 2), (40, 1, 1, 1)])
def test_gemm_matches_numpy(xs, ws, M, KT, NT, width):
    rng = np.random.default_rng(M * 100 + KT * 10 + NT + 2 * xs + ws)
    A, B = mxm_values(rng, (M, KT * L), xs), mxm_values(rng, (KT * L, NT * L), ws)
    lo_x, hi_x = (-128, 127) if xs else (0, 255)
    lo_w, hi_w = (-128, 127) if ws else (0, 255)
    for xzp, wzp in ((0, 0), (lo_x, hi_w), (hi_x, lo_w), (int(rng.integers(lo_x, hi_x + 1)), int(rng.integers(lo_w, hi_w + 1)))):
        p, layout = gemm_program(CFG, A, B, xzp, wzp, lw_width=width)
        g = Golden(p)
        res = g.run()
        assert res.error == spec.ErrorCode.NONE
        want = A.astype(np.int32) @ B.astype(np.int32) if (xzp, wzp) == (0, 0) else gemm_reference(A, B, xzp, wzp)
        assert np.array_equal(read_c(g.memory, layout), want)


def test_extreme_products_and_long_k_do_not_lose_bits():
    """All-extreme operands over 16 K tiles: the largest |sum| the array can reach on tiny."""
    A = np.full((4, 16 * L), 255, np.uint8)
    B = np.full((16 * L, L), 0, np.uint8)
    p, layout = gemm_program(CFG, A, B, 0, 255)
    g = Golden(p)
    g.run()
    assert np.array_equal(read_c(g.memory, layout), np.full((4, L), -255 * 255 * 16 * L, np.int32))


def test_install_boundary():
    p, want_a, want_b = install_timing_program(CFG, np.random.default_rng(3))
    g = Golden(p)
    g.run()
    acc = g.mxms[CFG.slice_named("MXM_W0").position].acc
    assert np.array_equal(acc[8:12], want_a) and np.array_equal(acc[12:16], want_b)


@pytest.mark.parametrize("line,reason", [
    ("LW stream=7 dir=W row=0 width=2 count=1", "stream group must fit below the last stream"),
    ("LW stream=0 dir=W row=15 width=1 count=2", "rows row .. row + width*count - 1 must be < lanes"),
    ("LW stream=0 dir=W row=16 width=1 count=1", "row=16 must be < 16"),
    ("MATMUL stream=0 dir=W accumulate=0 acc=512 swap=0 count=1", "acc=512 must be < 512"),
    ("ACCREAD acc=0 dst=5 ddir=E count=1", "the int32 group (4 streams) must fit below the last stream"),
    ("ACCREAD acc=0 dst=0 ddir=E count=0", "count=0 must be >= 1"),
])
def test_assembler_rejects_bad_mxm_lines(line, reason):
    with pytest.raises(AsmError) as e:
        assemble(f".queue MXM_W0\n    NOP 1\n    {line}\n", CFG, source="bad.s")
    assert e.value.line == 3 and reason in e.value.reason, e.value.reason
