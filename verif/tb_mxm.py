"""MXM cocotb tests: GEMM programs on the RTL and the golden model, compared on every edge
vector on every cycle, every SRAM word, the cycle count and the error status
(ChipTB.run_and_compare); the golden model's C is also checked against numpy. Seeds: cocotb
prints its seed; COCOTB_RANDOM_SEED replays."""
import cocotb
import numpy as np

from isa import spec
from isa.image import Program

from .chip_tb import ChipTB, rng
from .mxm_stimulus import gemm_program, gemm_reference, mxm_values, read_c


async def _tb(dut) -> ChipTB:
    tb = ChipTB(dut)
    await tb.reset()
    return tb


async def _gemm(tb, r, M, K, N, xs, ws, lw_width, zp_edges=False):
    A, B = mxm_values(r, (M, K), xs), mxm_values(r, (K, N), ws)
    lo_x, hi_x = (-128, 127) if xs else (0, 255)
    lo_w, hi_w = (-128, 127) if ws else (0, 255)
    if zp_edges:
        xzp, wzp = int(r.choice([lo_x, hi_x])), int(r.choice([lo_w, hi_w]))
    else:
        xzp, wzp = int(r.integers(lo_x, hi_x + 1)), int(r.integers(lo_w, hi_w + 1))
    p, layout = gemm_program(tb.config, A, B, xzp, wzp, lw_width=lw_width)
    gold, res, st, _ = await tb.run_and_compare(p)
    assert np.array_equal(read_c(gold.memory, layout), gemm_reference(A, B, xzp, wzp)), "golden C != numpy"
    tb.log.info("GEMM %dx%dx%d x%s w%s zp=(%d,%d) lw_width=%d: %d cycles", M, K, N, "s" if xs else "u",
                "s" if ws else "u", xzp, wzp, lw_width, res.cycles)


@cocotb.test()
async def mxm_gemm_signedness(dut):
    """int8 and uint8 activations and weights in all four combinations, random and extreme zero
    points, both MXMs, K accumulated over 3 tiles."""
    tb = await _tb(dut)
    r = rng()
    for xs in (True, False):
        for ws in (True, False):
            for edges in (False, True):
                await _gemm(tb, r, 20, 3 * tb.config.lanes, 2 * tb.config.lanes, xs, ws, 1 + int(edges), edges)


@cocotb.test()
async def mxm_long_accumulation(dut):
    """Accumulation over 12 K tiles with the next weights loading during every tile (shadow
    buffer), and a GEMV-like M = 1 case whose back-to-back accumulates hit one row every cycle."""
    tb = await _tb(dut)
    r = rng()
    L = tb.config.lanes
    await _gemm(tb, r, 24, 12 * L, 2 * L, True, True, 2)
    await _gemm(tb, r, 1, 8 * L, 4 * L, False, True, 2)
    await _gemm(tb, r, 3, 4 * L, 2 * L, True, False, 1)


def install_timing_program(cfg, r):
    """Old weights installed; new weights loaded into the shadow; MATMUL A (4 rows, no swap)
    whose last element is sampled on the cycle MATMUL B (swap=1) issues; an LW of two `late`
    rows whose second row is written on B's install cycle. Returns (program, x, expected A rows,
    expected B rows): A uses the old weights, B the new ones with row 0 from `late` (written a
    cycle before the install) and row 1 still new (written on the install cycle: not copied)."""
    from .vxm_stimulus import Planner
    T = spec.timing(cfg)
    L = cfg.lanes
    Wd = int(spec.Dir.WEST)
    old, new, late = (mxm_values(r, (L, L), True) for _ in range(3))
    x = mxm_values(r, (8, L), True)
    pl = Planner(cfg)
    mx = cfg.slice_named("MXM_W0")

    def lw(t, rows, stream, row=0):
        return ([(Wd, stream, mx.position, t + T["mxm_sample"] + e, rows[e].view(np.uint8)) for e in range(len(rows))],
                [(mx.name, t, "LW", {"stream": stream, "dir": Wd, "row": row, "width": 1, "count": len(rows)})])

    def fixed(feeds_ins):
        assert pl.try_plan(*feeds_ins), "install timing program: slot taken"

    t0 = 8
    fixed(lw(t0, old, 1))
    fixed(([], [(mx.name, t0 + L, "MATMUL", {"stream": 0, "dir": Wd, "accumulate": 0, "acc": 0, "swap": 1,
                                              "count": 1})]))
    t1 = t0 + L + 2
    fixed(lw(t1, new, 1))
    ta = t1 + L + 2
    tb = ta + 4
    feeds = [(Wd, 0, mx.position, ta + T["mxm_sample"] + i, x[i].view(np.uint8)) for i in range(8)]
    fixed((feeds, [(mx.name, ta, "MATMUL", {"stream": 0, "dir": Wd, "accumulate": 0, "acc": 8, "swap": 0, "count": 4}),
                   (mx.name, tb, "MATMUL", {"stream": 0, "dir": Wd, "accumulate": 0, "acc": 12, "swap": 1, "count": 4})]))
    assert tb + T["mxm_install"] == (tb - 1) + T["mxm_sample"] + 1      # LW's second row lands on the install cycle
    fixed(lw(tb - 1, late[:2], 2))
    installed = new.copy()
    installed[0] = late[0]
    return (pl.program(), x[:4].astype(np.int64) @ old.astype(np.int64),
            x[4:].astype(np.int64) @ installed.astype(np.int64))


@cocotb.test()
async def mxm_install_timing(dut):
    """The install boundary: an element sampled the cycle before the install cycle multiplies
    with the old weights, the next with the new; LW rows written before the install cycle are
    installed, one written on it is not."""
    tb = await _tb(dut)
    p, want_a, want_b = install_timing_program(tb.config, rng())
    gold, res, st, _ = await tb.run_and_compare(p)
    acc = gold.mxms[tb.config.slice_named("MXM_W0").position].acc
    assert np.array_equal(acc[8:12], want_a), "MATMUL A (before the install) did not use the old weights"
    assert np.array_equal(acc[12:16], want_b), "MATMUL B (after the install) did not use the installed weights"


@cocotb.test()
async def mxm_bench_schedules(dut):
    """The hand-scheduled GEMM (back-to-back tiles, double-buffered accumulators, read-outs
    overlapping compute) and GEMV (two weight streams per cycle) of `make bench`, at 64 x 64 x 64."""
    from bench import gemm
    tb = await _tb(dut)
    r = rng()
    n = 4 * tb.config.lanes
    A = r.integers(-128, 128, (n, n)).astype(np.int8)
    B = r.integers(-128, 128, (n, n)).astype(np.int8)
    x = r.integers(-128, 128, (1, n)).astype(np.int8)
    for (p, layout), want in ((gemm.gemm_program(tb.config, A, B), A.astype(np.int32) @ B.astype(np.int32)),
                              (gemm.gemv_program(tb.config, x, B), x.astype(np.int32) @ B.astype(np.int32))):
        gold, res, st, _ = await tb.run_and_compare(p)
        assert np.array_equal(gemm.read_c(gold.memory, layout), want)


@cocotb.test()
async def mxm_illegal_words(dut):
    """Bad MXM words stop the chip with BAD_FIELD at the right slice, pc and cycle."""
    tb = await _tb(dut)
    cfg = tb.config
    S, L = cfg.streams, cfg.lanes
    good = spec.encode("MATMUL", stream=0, dir=1, accumulate=0, acc=0, swap=0, count=1)
    bad = [
        spec.encode("LW", stream=S - 1, dir=1, row=0, width=2, count=1),          # group past the last stream
        spec.encode("LW", stream=0, dir=1, row=L - 1, width=1, count=2),          # rows past the last lane
        spec.encode("LW", stream=0, dir=1, row=0, width=0, count=1),              # width 0
        spec.encode("MATMUL", stream=0, dir=1, accumulate=0, acc=cfg.mxm_acc_rows, swap=0, count=1),
        spec.encode("ACCREAD", acc=0, dst=S - 3, ddir=0, count=1),               # int32 group past the end
        spec.encode("ACCREAD", acc=0, dst=0, ddir=0, count=0),
        spec.encode("MXMCFG", xzp=0, xsigned=0, wzp=0, wsigned=0) | 1 << 60,     # reserved bit
    ]
    for word in bad:
        try:
            spec.check(word, spec.SliceKind.MXM, cfg)
            raise AssertionError(f"{word:#x} should be illegal")
        except spec.IllegalInstruction as e:
            assert e.code == spec.ErrorCode.BAD_FIELD
        p = Program.empty(cfg)
        p.add("MXM_E0", [spec.encode("NOP", cycles=2), good, word, good])
        _, res, st, _ = await tb.run_and_compare(p)
        assert res.error == spec.ErrorCode.BAD_FIELD and st.error_code == spec.ErrorCode.BAD_FIELD
        assert res.error_position == cfg.slice_named("MXM_E0").position and res.error_pc == 2 and res.cycles == 4
