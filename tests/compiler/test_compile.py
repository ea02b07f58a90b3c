"""The compiler end to end on the golden model: results equal the graph's integer reference
bit for bit, and the predicted cycle count equals the measured one exactly."""
import dataclasses

import numpy as np
import pytest

from compiler.compile import compile_graph
from compiler.graph import CompileError, Graph
from compiler.reserve import Bundle, DoubleBooking, Reservations
from compiler.runtime import InputError, run
from isa import spec
from isa.config import PRESETS, get_config

TINY = get_config("tiny")


def _rand(rng, dtype, shape):
    i = np.iinfo(dtype)
    return rng.integers(i.min, i.max + 1, shape).astype(dtype)


def _check(g: Graph, feeds, config=TINY, target="golden"):
    c = compile_graph(g, config)
    out, rep = run(c, feeds, target)
    want = g.evaluate(feeds)
    for k in g.outputs:
        assert out[k].dtype == want[k].dtype and out[k].shape == want[k].shape
        assert np.array_equal(out[k], want[k]), k
    assert rep["cycles"] == c.predicted["cycles"] and rep["prediction_exact"]
    return c, rep


GEMMS = [  # M, K, N, a dtype, b dtype, a_zp, b_zp, bias, relu, requant to
    (4, 3, 2, np.uint8, np.uint8, 12, 0, False, False, None),
    (1, 16, 16, np.int8, np.int8, 0, 0, False, False, None),
    (20, 40, 37, np.int8, np.int8, -3, 5, False, False, None),
    (17, 33, 16, np.int8, np.int8, 0, 0, False, False, np.int8),
    (20, 40, 37, np.int8, np.int8, 0, 0, True, True, np.int8),
    (5, 16, 48, np.uint8, np.uint8, 7, 3, False, False, np.uint8),
    (9, 50, 20, np.uint8, np.int8, 255, -128, True, False, np.uint8),
    (300, 50, 70, np.int8, np.int8, 0, 0, True, True, np.int8),        # two row chunks (acc halves)
    (7, 24, 5, np.int8, np.uint8, -128, 255, False, True, np.int8),
]


@pytest.mark.parametrize("case", GEMMS, ids=[f"{c[0]}x{c[1]}x{c[2]}-{i}" for i, c in enumerate(GEMMS)])
def test_gemm(case):
    M, K, N, adt, bdt, azp, bzp, bias, relu, req = case
    rng = np.random.default_rng(M * 1000 + K * 10 + N)
    g = Graph()
    g.input("a", adt, (M, K))
    g.constant("w", _rand(rng, bdt, (K, N)))
    y = g.matmul("a", "w", azp, bzp)
    if bias:
        g.constant("bias", rng.integers(-20000, 20000, N).astype(np.int32))
        y = g.add(y, "bias")
    if relu:
        y = g.relu(y)
    if req is not None:
        y = g.requantize(y, 0.0007, 4 if req == np.int8 else 100, req)
    g.outputs = [y]
    _check(g, {"a": _rand(rng, adt, (M, K))})


def test_batched_matmul_and_weight_input():
    rng = np.random.default_rng(3)
    g = Graph()
    g.input("a", np.int8, (3, 6, 20))
    g.input("b", np.int8, (3, 20, 18))
    g.outputs = [g.requantize(g.matmul("a", "b", 1, -1), 0.003, 0, np.int8)]
    _check(g, {"a": _rand(rng, np.int8, (3, 6, 20)), "b": _rand(rng, np.int8, (3, 20, 18))})


@pytest.mark.parametrize("M", [40, 450])
def test_two_layers_chain_through_sram(M):
    """A requantized layer feeds the next MatMul straight from SRAM (the tile layout matches).
    M = 450: both MXMs' row chunks overlap the first layer's read-outs (a stream once clobbered
    the second copy of the hidden layer there)."""
    rng = np.random.default_rng(4)
    g = Graph()
    g.input("x", np.int8, (M, 64))
    g.constant("w1", _rand(rng, np.int8, (64, 32)))
    g.constant("b1", rng.integers(-3000, 3000, 32).astype(np.int32))
    g.constant("w2", _rand(rng, np.int8, (32, 10)))
    h = g.requantize(g.relu(g.add(g.matmul("x", "w1"), "b1")), 0.002, -128, np.int8)
    g.outputs = [g.matmul(h, "w2", -128, 0)]
    _check(g, {"x": _rand(rng, np.int8, (M, 64))})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_elementwise(dtype):
    rng = np.random.default_rng(5)
    g = Graph()
    g.input("x", dtype, (3, 4, 37))
    g.input("z", dtype, (3, 4, 37))
    s = g.add("x", "z")
    g.outputs = [s, g.relu(s), g.add(s, "x")]
    _check(g, {"x": _rand(rng, dtype, (3, 4, 37)), "z": _rand(rng, dtype, (3, 4, 37))})


def test_gemm256_utilization():
    """The MXM issue's 256^3 GEMM, compiled: >= 0.95 MAC utilization on tiny, exact cycles."""
    rng = np.random.default_rng(6)
    g = Graph()
    g.input("a", np.int8, (256, 256))
    g.input("b", np.int8, (256, 256))
    g.outputs = [g.matmul("a", "b")]
    c, rep = _check(g, {"a": _rand(rng, np.int8, (256, 256)), "b": _rand(rng, np.int8, (256, 256))})
    assert c.predicted["cycles"] == 33060
    assert rep["mxm_utilization"] >= 0.95


def test_model_too_large_for_sram():
    g = Graph()
    g.input("a", np.int8, (512, 1024))
    g.constant("w", np.zeros((1024, 1024), np.int8))
    g.outputs = [g.matmul("a", "w")]
    with pytest.raises(CompileError, match=r"^the model does not fit in SRAM: it needs \d+ bytes .* config 'tiny' "
                                           r"has 524288 bytes; MEM_\w+ would need \d+ words of 8192"):
        compile_graph(g, TINY)


@pytest.mark.parametrize("build,message", [
    (lambda g: g.add(g.matmul("a", "w"), g.matmul("a", "w")),
     r"node 'add\d+' \(add\): int32 add runs only fused after a MatMul"),
    (lambda g: g.requantize(g.add(g.matmul("a", "w"), g.matmul("a", "w")), 0.1, 0, np.int8),
     r"node 'add\d+' \(add\): an int32 add after a MatMul must add a constant bias"),
    (lambda g: g.relu(g.matmul("a", "w")), r"\(relu\): int32 relu runs only fused after a MatMul"),
])
def test_unsupported_chip_work_is_refused(build, message):
    g = Graph()
    g.input("a", np.int8, (4, 16))
    g.constant("w", np.ones((16, 16), np.int8))
    g.outputs = [build(g)]
    with pytest.raises(CompileError, match=message):
        compile_graph(g, TINY)


def test_wrong_inputs_at_run_time():
    g = Graph()
    g.input("x", np.int8, (2, 16))
    g.outputs = [g.relu("x")]
    c = compile_graph(g, TINY)
    with pytest.raises(InputError, match=r"input 'x': got int16\[2, 16\], the model takes int8\[2, 16\]"):
        run(c, {"x": np.zeros((2, 16), np.int16)})
    with pytest.raises(InputError, match=r"input 'x': got int8\[3, 16\]"):
        run(c, {"x": np.zeros((3, 16), np.int8)})
    with pytest.raises(InputError, match=r"input 'x' is missing"):
        run(c, {})
    with pytest.raises(InputError, match=r"input 'y' is not an input of the model"):
        run(c, {"x": np.zeros((2, 16), np.int8), "y": np.zeros(1)})


def test_listing_assembles_to_the_same_queues():
    from isa.asm import assemble
    rng = np.random.default_rng(7)
    g = Graph()
    g.input("a", np.int8, (20, 40))
    g.constant("w", _rand(rng, np.int8, (40, 20)))
    g.constant("bias", np.arange(20, dtype=np.int32))
    g.outputs = [g.requantize(g.relu(g.add(g.matmul("a", "w", name="fc1"), "bias")), 0.01, 0, np.int8)]
    c = compile_graph(g, TINY)
    assert "fc1: rows 0..19 x tile k0 n0" in c.listing
    p = assemble(c.listing, TINY)
    assert {k: list(v) for k, v in p.queues.items()} == {k: list(v) for k, v in c.program.queues.items()}


def test_same_program_twice():
    rng = np.random.default_rng(8)
    g = Graph()
    g.input("a", np.int8, (33, 48))
    g.constant("w", _rand(rng, np.int8, (48, 40)))
    g.outputs = [g.requantize(g.matmul("a", "w"), 0.001, 0, np.int8)]
    a, b = compile_graph(g, TINY), compile_graph(g, TINY)
    assert a.program == b.program and a.listing == b.listing and a.predicted == b.predicted


def test_reservation_table_refuses_double_booking():
    r = Reservations(TINY)
    bd = Bundle()
    f = bd.flow(0, 1, 2, 3, 10, 6, choices=(1,))
    bd.at(2, 0, "READ", stream=lambda: f.base, dir=0, addr=0, stride=1, count=10)
    r.commit(bd, 0, "first") if r.fits(bd, 0) else pytest.fail("an empty table must fit")
    assert not r.fits(bd, 5)                       # same stream cells, same slot range of the engine
    with pytest.raises(DoubleBooking, match="booked twice"):
        r.book_cells(0, 1, f.rect(0), "second")
    with pytest.raises(DoubleBooking, match="queue slot"):
        r.book_slot(2, 0, "second")
    assert r.place(bd, 0, "again") == 10           # the engine is free again after ten elements


def test_fpga_preset_and_a_cut_epilogue():
    """The same compiler on `fpga` (4 MEM slices per side, 1 ALU, no SXM). An epilogue that needs
    three ALUs at once (bias, requantize, ReLU at a zero point above the int8 minimum) is cut: the
    bias goes into the product as one more K tile, the requantize runs on the read-out, its result
    goes to SRAM and streams back for the ReLU; results and cycles stay exact. Where the cut has nowhere to go (2 MEM slices per side, 1 ALU) and the
    bias cannot be folded into the product (too large for one K tile: the test below), the model
    is refused in one line."""
    rng = np.random.default_rng(9)
    fpga = get_config("fpga")
    g = Graph()
    g.input("a", np.int8, (20, 40))
    g.constant("w", _rand(rng, np.int8, (40, 37)))
    g.constant("bias", rng.integers(-900, 900, 37).astype(np.int32))
    g.outputs = [g.requantize(g.relu(g.add(g.matmul("a", "w"), "bias")), 0.002, 3, np.int8)]
    _check(g, {"a": _rand(rng, np.int8, (20, 40))}, config=fpga)
    g = Graph()
    g.input("a", np.int8, (100, 64))
    g.constant("w", _rand(rng, np.int8, (64, 64)))
    g.constant("bias", np.zeros(64, np.int32))
    g.outputs = [g.requantize(g.relu(g.add(g.matmul("a", "w", name="fc"), "bias")), 0.002, 3, np.int8)]
    c, _ = _check(g, {"a": _rand(rng, np.int8, (100, 64))}, config=fpga)
    assert ".requant byte 0" in c.listing and "bias tile n0" in c.listing   # REQUANT on the read-out, MAX from SRAM
    one_alu = dataclasses.replace(TINY, name="tiny1", vxm_alus=1)
    g.constants["bias"] = np.full(64, 10 ** 7, np.int32)
    with pytest.raises(CompileError, match=r"^node 'fc': its epilogue \(bias, requant, relu\) does not fit config "
                                           r"'tiny1' at once \(1 VXM ALUs, 8 streams per direction\), and cut it needs "
                                           r"a 32-bit intermediate on 4 MEM slices on one side of the VXM; there are 2$"):
        compile_graph(g, one_alu)


@pytest.mark.parametrize("dtype", [np.int16, np.int8])
def test_add_a_chip_result_to_itself(dtype):
    """x + x where x has one copy: one stream group feeds both ALU operands."""
    rng = np.random.default_rng(10)
    g = Graph()
    g.input("x", dtype, (5, 40))
    g.input("z", dtype, (5, 40))
    s = g.add("x", "z")
    g.outputs = [g.add(s, s)]
    _check(g, {"x": _rand(rng, dtype, (5, 40)), "z": _rand(rng, dtype, (5, 40))})


def _check_on(monkeypatch, g: Graph, feeds, *configs):
    """_check on each of `configs`, registered as presets for the run (the runner finds a
    configuration by the name in the image)."""
    for cfg in configs:
        monkeypatch.setitem(PRESETS, cfg.name, cfg)
    return [_check(g, feeds, config=cfg) for cfg in configs]


def _epilogue_gemm(rng, m: int, k: int, n: int):
    """requant(relu(a @ w + bias)) to int8, a (m x k) fed, w and bias constants: (graph, feeds)."""
    g = Graph()
    g.input("a", np.int8, (m, k))
    g.constant("w", _rand(rng, np.int8, (k, n)))
    g.constant("bias", rng.integers(-900, 900, n).astype(np.int32))
    g.outputs = [g.requantize(g.relu(g.add(g.matmul("a", "w"), "bias")), 0.002, 3, np.int8)]
    return g, {"a": _rand(rng, np.int8, (m, k))}


def test_a_chip_without_sxm_cuts_its_chains(monkeypatch):
    """An epilogue's intermediate returns to the VXM through an SXM (one SHIFT); a chip without SXMs
    (`sxm` 0, as the fpga preset) cuts the chain at that point instead, through SRAM, and stays exact.
    The same chain on the chip with SXMs runs in one piece and uses them."""
    no_sxm = dataclasses.replace(TINY, name="tiny_nosxm", sxm=0, mem_slices=4)
    with_sxm = dataclasses.replace(no_sxm, name="tiny_4mem", sxm=1)
    g, feeds = _epilogue_gemm(np.random.default_rng(12), 20, 40, 37)
    (c_no, _), (c_with, _) = _check_on(monkeypatch, g, feeds, no_sxm, with_sxm)
    assert "SHIFT" in c_with.listing and "SHIFT" not in c_no.listing
    assert ".requant byte 0" in c_no.listing and ".requant byte 0" not in c_with.listing


@pytest.mark.parametrize("x_range,w_range", [((-128, 127), (-128, 127)), ((-3, 252), (-128, 127)),
                                             ((-255, 0), (-100, 155)), ((-1, 254), (-128, 127)),
                                             ((-119, 136), (0, 255)), ((0, 255), (-87, 168))])
def test_bias_rows_make_the_bias_exactly(x_range, w_range):
    """A bias as one K tile of the product: sum_r x[r] * w[r][c] = bias[c] exactly, every x and w
    within what the MXM reads; out of one tile's reach, None."""
    from compiler.compile import bias_rows
    rng = np.random.default_rng(5)
    bias = np.concatenate([rng.integers(-60_000, 60_000, 200), [0, 1, -1, 127, -128, 255, 256, -256]])
    x, w = bias_rows(bias, 8, x_range, w_range)
    assert np.array_equal(x @ w, bias)
    assert x_range[0] <= x.min() and x.max() <= x_range[1] and w_range[0] <= w.min() and w.max() <= w_range[1]
    assert bias_rows(np.array([10 ** 7]), 8, x_range, w_range) is None
    assert bias_rows(np.array([-1]), 8, (0, 255), (0, 255)) is None    # uint8 x uint8, zero points 0: sums >= 0


def test_two_mem_slices_a_side_fold_the_bias_into_the_product(monkeypatch):
    """One ALU and no SXM cut a bias + requantize epilogue through SRAM, and its int32 intermediate
    needs four MEM slices on a side. With two, the bias is one more K tile of the product instead
    (a constant activation word read for every row, a weight tile made from the bias): bit-exact,
    the prediction exact, no int32 intermediate. A bias out of one tile's reach is refused as before."""
    ms2 = dataclasses.replace(get_config("fpga"), name="fpga_ms2", mem_slices=2)
    g, feeds = _epilogue_gemm(np.random.default_rng(14), 70, 50, 37)
    ((c, rep),) = _check_on(monkeypatch, g, feeds, ms2)
    assert "bias tile n0" in c.listing and ".bias byte" not in c.listing and ".acc byte" not in c.listing
    g1, feeds1 = _epilogue_gemm(np.random.default_rng(15), 1, 50, 37)   # one row: weights two rows a cycle
    ((c1, _),) = _check_on(monkeypatch, g1, feeds1, ms2)
    assert "bias tile n0" in c1.listing and "width=2" in c1.listing
    g.constants["bias"] = g.constants["bias"] * 10_000
    with pytest.raises(CompileError, match="cut it needs a 32-bit intermediate on 4 MEM slices on one side of the "
                                           "VXM; there are 2"):
        compile_graph(g, ms2)


def test_a_chip_with_one_mxm(monkeypatch):
    """mxm_east 0: only the west hemisphere has an MXM. Every matmul (several column tiles, two row
    chunks, an epilogue) runs on it, bit-exact with the prediction exact, and takes longer than on
    the same chip with both MXMs."""
    both = dataclasses.replace(TINY, name="tiny_mxm2")
    west = dataclasses.replace(TINY, name="tiny_mxm_w", mxm_east=0)
    g, feeds = _epilogue_gemm(np.random.default_rng(13), 300, 50, 70)
    (c_west, rep_west), (c_both, rep_both) = _check_on(monkeypatch, g, feeds, west, both)
    assert "MXM_E0" not in c_west.listing and "MXM_E0" in c_both.listing
    assert rep_west["cycles"] > rep_both["cycles"]


def test_an_op_the_chip_leaves_out():
    """A graph that needs a VXM op the configuration leaves out (vxm_omit) is refused by name."""
    g = Graph()
    g.input("a", np.int8, (20, 16))
    g.outputs = [g.mul("a", "a")]
    with pytest.raises(CompileError, match=r"^node '.*': needs the VXM's MUL, which config 'tiny_nomul' leaves out "
                                           r"\(vxm_omit\)$"):
        compile_graph(g, dataclasses.replace(TINY, name="tiny_nomul", vxm_omit=("MUL",)))


def test_latency_overrides_reach_the_schedule(monkeypatch):
    """A configuration whose VXM and MXM take one more cycle (ChipConfig.latency, as an FPGA build
    with an extra pipeline register): the compiler schedules with its latencies and the golden model
    runs with them, so results stay bit-exact and the prediction exact, and the schedule is another
    one than on the base table. (Registered as a preset for the run: the runner finds a config by
    the name in the image, and the image's fingerprint covers the overrides.)"""
    base = spec.TIMING
    slow = dataclasses.replace(TINY, name="tiny_slow", latency=(("vxm_drive", base["vxm_drive"] + 1),
                                                                ("mxm_acc_write", base["mxm_acc_write"] + 1)))
    monkeypatch.setitem(PRESETS, slow.name, slow)
    assert spec.timing(slow)["vxm_drive"] == spec.timing(TINY)["vxm_drive"] + 1
    rng = np.random.default_rng(11)
    g = Graph()
    g.input("a", np.int8, (20, 40))
    g.input("z", np.int8, (20, 37))
    g.constant("w", _rand(rng, np.int8, (40, 37)))
    g.constant("bias", rng.integers(-900, 900, 37).astype(np.int32))
    y = g.requantize(g.relu(g.add(g.matmul("a", "w"), "bias")), 0.002, 3, np.int8)
    g.outputs = [y, g.add(y, "z")]
    feeds = {"a": _rand(rng, np.int8, (20, 40)), "z": _rand(rng, np.int8, (20, 37))}
    c_slow, rep_slow = _check(g, feeds, config=slow)
    c_tiny, rep_tiny = _check(g, feeds)
    assert rep_slow["config"] == "tiny_slow" and rep_tiny["config"] == "tiny"
    assert rep_slow["cycles"] != rep_tiny["cycles"]
    assert c_slow.program.queues != c_tiny.program.queues


def test_weights_larger_than_a_slice_spill_into_the_next():
    """An MXM's weight tiles fill its weight slice, then the slices with the most room (never the one
    its activations stream from): the chip holds weights beyond two slices' worth, exactly."""
    rng = np.random.default_rng(21)
    K, N = 1024, 288                      # 9 column tiles per MXM x 1024 words > one slice's 8192
    g = Graph()
    g.input("a", np.int8, (4, K))
    g.constant("w", _rand(rng, np.int8, (K, N)))
    g.outputs = [g.requantize(g.matmul("a", "w"), 1 / 4096, 0, np.int8)]
    c, _ = _check(g, {"a": _rand(rng, np.int8, (4, K))})
    w = next(p for k, p in c.placed.items() if isinstance(k, tuple) and k[0] == "weight")
    slices = {cp.planes[0][0] for cp in w.copies}
    assert len(w.copies) > 2 and len(slices) > 2
    tiles = sorted((cp.tile_lo, cp.tiles(w.layout)[1]) for cp in w.copies)
    assert tiles[0][0] == 0 and tiles[-1][1] == w.layout.tiles and all(b == c2 for (_, b), (c2, _) in zip(tiles, tiles[1:]))


def test_liveness_reuses_the_words_of_dead_activations():
    """Eight 64x64 layers at 640 rows: each activation is 2,560 words in each of two slices. Each
    is released after its last reader and a later result takes its words (written only after that
    reader's last access), so the model fits in 360 KB where allocating every tensor anew would
    need more than the chip's 512 KB; bit-exact and as predicted."""
    rng = np.random.default_rng(8)
    g = Graph()
    x = g.input("x", np.int8, (640, 64))
    for i in range(8):
        g.constant(f"w{i}", _rand(rng, np.int8, (64, 64)))
        x = g.requantize(g.matmul(x, f"w{i}"), 1 / 4000, 0, np.int8)
    g.outputs = [x]
    c, _ = _check(g, {"x": _rand(rng, np.int8, (640, 64))})
    assert c.stats["sram_bytes_used"] + c.stats["sram_bytes_reused"] > TINY.sram_bytes
