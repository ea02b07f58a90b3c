"""Compiled models on the RTL: the same image, inputs and read-back as on the golden model,
through the product's runner; outputs bit-exact and cycles equal to the compiler's prediction."""
import numpy as np
import pytest

from compiler import conformance
from compiler.compile import compile_graph
from compiler.graph import Graph
from compiler.runtime import run
from isa.config import get_config

# a representative subset of the ONNX conformance cases (all of them run on golden in tests/compiler)
RTL_CASES = ["test_matmulinteger", "test_qlinearmatmul_3D_uint8_float32", "test_qlinearmatmul_2D_int8_float16",
             "test_add_int16", "test_add_uint8", "test_qlinearconv", "test_maxpool_2d_uint8"]


def _run_exact(g: Graph, feeds: dict, sim: str, compiled=None):
    """(compiled, outputs, report) of g on `sim`, every output checked against g.evaluate bit for bit
    and the cycles against the compiler's prediction."""
    c = compiled or compile_graph(g, get_config("tiny"))
    out, rep = run(c, feeds, sim)
    want = g.evaluate(feeds)
    for k in g.outputs:
        assert np.array_equal(out[k], want[k]), k
    assert rep["cycles"] == c.predicted["cycles"]
    return c, out, rep


@pytest.mark.rtl
@pytest.mark.parametrize("name", RTL_CASES)
@pytest.mark.icarus_share("test_qlinearmatmul_3D_uint8_float32", "test_add_int16", "test_add_uint8", "test_qlinearconv")
def test_conformance_rtl(sim, name):
    case = conformance.cases()[name]
    gold = conformance.run_case(case)
    rtl = conformance.run_case(case, target=sim)
    assert gold[0] == rtl[0] == "pass", (gold, rtl)       # bit-exact, cycles = prediction
    assert rtl[2] == gold[2]


@pytest.mark.rtl
def test_weight_bound_gemv_loads_two_rows_a_cycle(sim):
    """Batch 1 through two layers: each MXM loads its weight tiles two rows a cycle (LW width 2,
    even rows from its B slice and odd rows from its A slice), the first layer requantized per
    channel; bit-exact, cycles as predicted."""
    rng = np.random.default_rng(12)
    g = Graph()
    g.input("x", np.int8, (1, 96))
    g.constant("w1", rng.integers(-128, 128, (96, 64)).astype(np.int8))
    g.constant("b1", rng.integers(-3000, 3000, 64).astype(np.int32))
    g.constant("w2", rng.integers(-128, 128, (64, 24)).astype(np.int8))
    per_channel = rng.uniform(0.0002, 0.0008, 64)          # M and s loaded per lane, like the bias
    h = g.requantize(g.relu(g.add(g.matmul("x", "w1", 0, 5), "b1")), per_channel, -128, np.int8)
    g.outputs.append(g.matmul(h, "w2"))
    feeds = {"x": rng.integers(-128, 128, (1, 96)).astype(np.int8)}
    c = compile_graph(g, get_config("tiny"))
    assert {ops["width"] for _, _, mn, ops, _ in c.machine.res.placed if mn == "LW"} == {2}
    _run_exact(g, feeds, sim, c)


@pytest.mark.rtl
def test_small_cnn_rtl(sim):
    """Convolutions as GEMMs over pixel rows (strided and padded, so K tiles read shifted pixels and
    the pad word), a per-channel requantize, a 3x3 max pool with padding (MAX passes reading taps
    by address), a broadcast add, and a flattened image into a MatMul: bit-exact, cycles as
    predicted."""
    rng = np.random.default_rng(21)
    g = Graph()
    g.input("x", np.uint8, (2, 3, 7, 7))
    g.constant("w1", rng.integers(-128, 128, (20, 3, 3, 3)).astype(np.int8))
    g.constant("b1", rng.integers(-3000, 3000, (20, 1, 1)).astype(np.int32))
    h = g.conv("x", "w1", 9, 0, strides=(1, 1), pads=(1, 1, 1, 1))
    h = g.requantize(g.relu(g.add(h, "b1")), rng.uniform(0.0005, 0.002, 20), 0, np.uint8)
    h = g.maxpool(h, (3, 3), (2, 2), (1, 1, 1, 1))
    g.constant("shift", rng.integers(-3, 3, (20, 1, 1)).astype(np.uint8))
    h = g.add(h, "shift")
    g.constant("w2", rng.integers(-128, 128, (8, 20, 2, 2)).astype(np.int8))
    h = g.requantize(g.conv(h, "w2", 128, 0, strides=(2, 2), pads=(0, 0, 1, 1)), 0.002, -3, np.int8)
    n, c, hh, ww = g.types[h].shape
    g.constant("w3", rng.integers(-128, 128, (c * hh * ww, 10)).astype(np.int8))
    y = g.matmul(g.reshape(h, (n, c * hh * ww)), "w3")
    g.outputs.append(y)
    feeds = {"x": rng.integers(0, 256, (2, 3, 7, 7)).astype(np.uint8)}
    _run_exact(g, feeds, sim)


@pytest.mark.rtl
def test_residual_add_rtl(sim):
    """A residual add across scales as the importer lowers it: each addend (x - zx) * 64 on the MXM
    (an image: a depthwise 1x1 convolution; a matrix: a MatMul), REQUANT to int16 in the read-out,
    an int16 ADD, then ADD / SRA / CVT passes back to uint8 and a ReLU clamp: bit-exact, cycles as
    predicted."""
    from compiler.onnx_import import _residual, _Deq, _Sum
    rng = np.random.default_rng(22)
    g = Graph()
    g.input("a", np.int8, (2, 16, 3, 3))
    g.input("b", np.uint8, (2, 16, 3, 3))
    y = _residual(g, _Sum(_Deq("a", 0.03, -3, "a"), _Deq("b", 0.07, 9, "b"), "res", relu=True), 0.08,
                  np.uint8(5), "res")
    g.outputs.append(y)
    feeds = {"a": rng.integers(-128, 128, (2, 16, 3, 3)).astype(np.int8),
             "b": rng.integers(0, 256, (2, 16, 3, 3)).astype(np.uint8)}
    _run_exact(g, feeds, sim)


@pytest.mark.rtl
def test_concat_transpose_global_pool_rtl(sim):
    """The data movers: a channel Concat (an identity pass into each input's column tiles), a
    broadcast Mul (a per-channel constant read with stride 0), a global average pool (a depthwise
    convolution of ones, requantized) whose (N, C, 1, 1) result is reshaped to (N, C) in place, and
    an NHWC transpose flattened into a MatMul (read by address): bit-exact, cycles as predicted."""
    rng = np.random.default_rng(23)
    g = Graph()
    g.input("x", np.int8, (2, 16, 4, 4))
    g.input("z", np.int8, (2, 6, 4, 4))
    c = g.concat(["x", "z"], 1)
    g.constant("k", rng.integers(-3, 4, (22, 1, 1)).astype(np.int8))
    c = g.mul(c, "k")
    g.constant("ones", np.ones((22, 1, 4, 4), np.int8))
    pooled = g.reshape(g.requantize(g.conv(c, "ones", group=22), 1 / 16, 0, np.int8), (2, 22))
    g.constant("w1", rng.integers(-128, 128, (22 * 16, 12)).astype(np.int8))
    flat = g.reshape(g.transpose(c, (0, 2, 3, 1)), (2, 22 * 16))
    g.outputs += [pooled, g.matmul(flat, "w1")]
    feeds = {"x": rng.integers(-128, 128, (2, 16, 4, 4)).astype(np.int8),
             "z": rng.integers(-128, 128, (2, 6, 4, 4)).astype(np.int8)}
    _run_exact(g, feeds, sim)


@pytest.mark.rtl
def test_relu6_clip_rtl(sim):
    """A MatMul -> bias -> ReLU -> requantize -> clip (ReLU6 as QDQ models write it): MAX at the zero
    point and MIN at the ceiling in the read-out's chain; the ceiling binds. Then a clip on its own."""
    rng = np.random.default_rng(14)
    g = Graph()
    g.input("x", np.int8, (8, 48))
    g.constant("w", rng.integers(-128, 128, (48, 40)).astype(np.int8))
    g.constant("b", rng.integers(-3000, 3000, 40).astype(np.int32))
    y = g.clip(g.requantize(g.relu(g.add(g.matmul("x", "w"), "b")), 1 / 1500, -20, np.int8), -20, 30)
    g.outputs.append(y)
    feeds = {"x": rng.integers(-128, 128, (8, 48)).astype(np.int8)}
    _, out, _ = _run_exact(g, feeds, sim)
    assert out[y].max() == 30
    g2 = Graph()                            # and on its own: MAX then MIN, bounds set by VSET
    g2.input("x", np.int8, (5, 40))
    z = g2.clip("x", -20, 33)
    g2.outputs.append(z)
    feeds2 = {"x": rng.integers(-128, 128, (5, 40)).astype(np.int8)}
    _run_exact(g2, feeds2, sim)


@pytest.mark.rtl
def test_integer_mul_rtl(sim):
    """Elementwise Mul (the VXM's MUL, wrapping) of int16 tensors, and of an int8 tensor by itself."""
    rng = np.random.default_rng(13)
    g = Graph()
    g.input("a", np.int16, (3, 40))
    g.input("b", np.int16, (3, 40))
    g.input("x", np.int8, (2, 32))
    g.outputs = [g.mul("a", "b"), g.mul("x", "x")]
    feeds = {"a": rng.integers(-32768, 32768, (3, 40)).astype(np.int16),
             "b": rng.integers(-32768, 32768, (3, 40)).astype(np.int16),
             "x": rng.integers(-128, 128, (2, 32)).astype(np.int8)}
    _run_exact(g, feeds, sim)


def _mlp():
    rng = np.random.default_rng(11)
    g = Graph()
    g.input("x", np.uint8, (40, 64))
    g.constant("w1", rng.integers(-128, 128, (64, 32)).astype(np.int8))
    g.constant("b1", rng.integers(-3000, 3000, 32).astype(np.int32))
    g.constant("w2", rng.integers(-128, 128, (32, 10)).astype(np.int8))
    g.constant("b2", rng.integers(-3000, 3000, 10).astype(np.int32))
    h = g.requantize(g.relu(g.add(g.matmul("x", "w1", 3, 0), "b1")), 0.0004, -100, np.int8)
    y = g.requantize(g.add(g.matmul(h, "w2", -100, 0), "b2"), 0.001, 7, np.uint8)
    s = g.add(y, y)
    g.outputs = [y, s]
    return g, {"x": rng.integers(0, 256, (40, 64)).astype(np.uint8)}


@pytest.mark.rtl
def test_two_layer_mlp_rtl(sim):
    """Bias, ReLU and requantization epilogues (both SXM round trips), a layer chained through
    SRAM, uint8 results and an elementwise add: the RTL agrees with the reference and the prediction."""
    g, feeds = _mlp()
    _run_exact(g, feeds, sim)


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")
def test_refilled_mlp_rtl(sim):
    """Five 256x256 layers at batch 8: the busiest queue's stream is over twice queue_depth, so the
    program runs on hundreds of IFETCH refills from SRAM; bit-exact, cycles = prediction."""
    from tests.compiler.test_refill import deep_mlp
    g, feeds = deep_mlp()
    c = compile_graph(g, get_config("tiny"))
    assert c.stats["refills"] > 100
    _run_exact(g, feeds, sim, c)


@pytest.mark.rtl
@pytest.mark.parametrize("mode", ["pipeline", "tensor", "micro-batches"])
def test_model_over_a_pair_of_chips(sim, mode):
    """A model compiled for the `pair` system (compiler/system.py) on the emitted system: outputs
    bit-exact, and every chip's cycles equal to golden's and to the prediction. micro-batches: a
    batch of 32 rows streamed through a two-stage pipeline as two micro-batches, with the host
    starting chip 1 300 cycles after chip 0 (the programs' start SYNC puts them on one time)."""
    from compiler.runtime import run_on_system
    from compiler.system import compile_system
    from isa.system import get_system
    from bench.multichip import mlp
    m = 32 if mode == "micro-batches" else 4
    g = mlp(np.random.default_rng(2), m, [48, 64, 32])
    feeds = {"x": np.random.default_rng(0).integers(-128, 128, (m, 48)).astype(np.int8)}
    if mode == "micro-batches":
        sc = compile_system(g, get_system("pair"), "pipeline", micro_batches=2)
    else:
        sc = compile_system(g, get_system("pair"), mode)
    assert sc.transfers
    gold_out, gold = run_on_system(sc, feeds, "golden")
    out, rep = run_on_system(sc, feeds, sim, start_offsets=[0, 300] if mode == "micro-batches" else None)
    want = g.evaluate(feeds)
    for k in g.outputs:
        assert np.array_equal(out[k], want[k]) and np.array_equal(gold_out[k], want[k])
    assert rep["prediction_exact"] and [c["cycles"] for c in rep["chips"]] == [c["cycles"] for c in gold["chips"]]
