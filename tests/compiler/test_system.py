"""The compiler over a system of chips (compiler/system.py) on the golden system model: results
equal the graph's integer reference bit for bit, and every chip's predicted cycle count equals
the measured one exactly; plans keep transfers between neighbours; bad requests get one line."""
import json

import numpy as np
import pytest

from bench.multichip import mlp
from compiler.__main__ import main
from compiler.compile import compile_graph
from compiler.graph import CompileError, Graph
from compiler.runtime import run_on_system
from compiler.system import compile_system, plan_stages, _groups
from compiler.compile import _partition
from isa import spec
from isa.config import get_config
from isa.system import get_system


def _check(g: Graph, system: str, mode: str, m: int, seed: int = 0, micro_batches=None):
    rng = np.random.default_rng(seed)
    feeds = {"x": rng.integers(-128, 128, g.types["x"].shape).astype(np.int8)}
    sc = compile_system(g, get_system(system), mode, micro_batches)
    out, rep = run_on_system(sc, feeds, "golden")
    want = g.evaluate(feeds)
    for k in g.outputs:
        assert out[k].dtype == want[k].dtype and np.array_equal(out[k], want[k]), k
    assert rep["prediction_exact"] and rep["cycles"] == sc.predicted["cycles"]
    assert [c["cycles"] for c in rep["chips"]] == [c["cycles"] for c in sc.predicted["chips"]]
    return sc, rep


CASES = [  # system, mode, batch, dims, chips every stage must use
    ("pair", "pipeline", 8, [64, 48, 32], [(0,), (1,)]),
    ("pair", "tensor", 8, [64, 48, 40], [(0, 1), (0, 1)]),
    ("ring4", "pipeline", 3, [40, 48, 32, 24], [(0,), (1,), (2,)]),
    ("ring4", "tensor", 20, [64, 96, 64], None),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_mlp_over_a_system(case):
    system, mode, m, dims, chips = case
    g = mlp(np.random.default_rng(len(dims) * 7 + m), m, dims)
    sc, rep = _check(g, system, mode, m)
    if chips is not None:
        assert [s.chips for s in sc.plan] == chips
    sysm = get_system(system)
    neighbours = {(lk.a.chip, lk.b.chip) for lk in sysm.links} | {(lk.b.chip, lk.a.chip) for lk in sysm.links}
    assert sc.transfers and all((t.src, t.dst) in neighbours for t in sc.transfers)
    senders = {t.src for t in sc.transfers}
    assert all(any(v > 0 for v in rep["chips"][c]["links"].values()) for c in senders)


def test_micro_batches_stream_a_batch_through_the_pipeline():
    """A batch of 64 rows through a three-stage pipeline on ring4: in one piece the chips take turns;
    cut into micro-batches (chosen by prediction: 4 of 16 rows) the stages overlap. Bit-exact, and
    every chip's cycles as predicted, both ways."""
    g = mlp(np.random.default_rng(8), 64, [64, 64, 64, 64])
    whole, _ = _check(g, "ring4", "pipeline", 64, micro_batches=1)
    streamed, rep = _check(g, "ring4", "pipeline", 64)
    assert (whole.micro_batches, streamed.micro_batches) == (1, 4) and rep["micro_batches"] == 4
    assert [s.chips for s in streamed.plan] == [s.chips for s in whole.plan] == [(0,), (1,), (2,)]
    assert streamed.predicted["cycles"] < 0.6 * whole.predicted["cycles"]
    with pytest.raises(CompileError, match="--micro-batches 3: must divide the batch of 64 rows"):
        compile_system(g, get_system("ring4"), "pipeline", micro_batches=3)


def test_per_channel_requantize_split_by_columns():
    """A per-channel requantize (M and s per column) in a stage split over chips: each chip takes
    its columns' M and s with its columns of the weights."""
    rng = np.random.default_rng(21)
    g = Graph()
    g.input("x", np.int8, (6, 48))
    g.constant("w", rng.integers(-128, 128, (48, 64)).astype(np.int8))
    g.outputs.append(g.requantize(g.matmul("x", "w"), rng.uniform(1 / 6000, 1 / 800, 64), 2, np.int8))
    sc, _ = _check(g, "pair", "tensor", 6)
    assert [s.chips for s in sc.plan] == [(0, 1)]


def test_micro_batches_need_row_wise_work():
    g = Graph()
    g.input("x", np.int8, (2, 8, 16))
    g.constant("w", np.ones((16, 16), np.int8))
    g.outputs.append(g.requantize(g.matmul("x", "w"), 1 / 64, 0, np.int8))
    with pytest.raises(CompileError, match="--micro-batches 2: the chip work is not row-wise"):
        compile_system(g, get_system("pair"), "pipeline", micro_batches=2)


def test_split_columns_are_whole_tiles_and_cover_the_output():
    g = mlp(np.random.default_rng(5), 4, [32, 100, 16])
    pre, post, nodes = _partition(g)
    plan = plan_stages(g, _groups(g, nodes, set(g.outputs)), get_system("pair"), "tensor")
    lanes = get_config("tiny").lanes
    for st in plan:
        n = g.types[st.nodes[-1].outputs[0]].shape[-1]
        assert st.cols[0][0] == 0 and st.cols[-1][1] == n
        assert all(a % lanes == 0 and a < b for a, b in st.cols)
        assert all(b == c for (_, b), (c, _) in zip(st.cols, st.cols[1:]))


def test_auto_keeps_one_chip_when_it_is_fastest_and_matches_compile_graph():
    """A small model: 'auto' weighs one chip against pipeline and tensor plans by prediction; on
    one chip the schedule is compile_graph's, cycle for cycle, after the system's start SYNC
    (released 1 + sync_release cycles in, every chip quiet on cycle 1)."""
    g = mlp(np.random.default_rng(3), 2, [32, 32])
    sc, _ = _check(g, "pair", "auto", 2)
    modes = {md: compile_system(g, get_system("pair"), md).predicted["cycles"] for md in ("one", "pipeline", "tensor")}
    assert sc.predicted["cycles"] == min(modes.values())
    start = 1 + spec.sync_release(get_config("tiny"))
    assert modes["one"] == compile_graph(g, get_config("tiny")).predicted["cycles"] + start


def test_every_chip_starts_with_a_sync():
    """The chips of a system run on one program time however the host started them: every queue
    with words begins with SYNC, a chip with no work holds one SYNC, and nothing issues before the
    release (the golden system model's release, so the prediction is exact)."""
    g = mlp(np.random.default_rng(3), 4, [32, 32])
    sc, rep = _check(g, "ring4", "pipeline", 4)
    sync = spec.encode("SYNC")
    start = 1 + spec.sync_release(get_config("tiny"))
    for part in sc.chips:
        used = [q for q in part.program.queues.values() if q]
        assert used and all(q[0] == sync for q in used)
        assert all(c >= start for pos, c, mn, *_ in part.m.res.placed if mn != "SYNC")
    idle = [c for c in rep["chips"] if c["chip"] not in {ch for st in sc.plan for ch in st.chips}]
    assert idle and all(c["cycles"] == start for c in idle)


def test_same_programs_twice():
    g = mlp(np.random.default_rng(9), 8, [64, 48, 32])
    a = compile_system(g, get_system("pair"), "tensor")
    b = compile_system(g, get_system("pair"), "tensor")
    assert [p.program.queues for p in a.chips] == [p.program.queues for p in b.chips]
    assert a.predicted == b.predicted


def test_model_too_large_for_the_system_names_bytes():
    g = Graph()
    g.input("x", np.int8, (1, 2048))
    g.constant("w", np.zeros((2048, 1024), np.int8))
    g.outputs.append(g.requantize(g.matmul("x", "w"), 1 / 256, 0, np.int8))
    with pytest.raises(CompileError, match=r"^the model does not fit system 'pair': its weights take 2097152 bytes, "
                                           r"the system has 1048576 bytes of SRAM \(2 chips\)"):
        compile_system(g, get_system("pair"))


def test_unknown_mode_is_refused():
    g = mlp(np.random.default_rng(1), 1, [16, 16])
    with pytest.raises(CompileError, match=r"^--parallel 'both': one of auto, one, pipeline, tensor$"):
        compile_system(g, get_system("pair"), "both")


def test_convolutions_are_refused_on_a_system():
    g = Graph()
    g.input("x", np.int8, (1, 3, 6, 6))
    g.constant("w", np.ones((8, 3, 3, 3), np.int8))
    g.outputs.append(g.requantize(g.conv("x", "w", pads=(1, 1, 1, 1), name="c"), 0.01, 0, np.int8))
    with pytest.raises(CompileError, match=r"^node 'c' \(conv\): convolutions, pooling, reshapes and concats run on one chip"):
        compile_system(g, get_system("pair"))


def _onnx_mlp(path, rng, m, dims):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes, inits = [], []
    x = helper.make_tensor_value_info("x", TensorProto.INT8, [m, dims[0]])
    prev = "x"
    for i, (k, n) in enumerate(zip(dims, dims[1:])):
        inits += [numpy_helper.from_array(rng.integers(-128, 128, (k, n)).astype(np.int8), f"w{i}"),
                  numpy_helper.from_array(np.array(0.02, np.float32), f"sa{i}"),
                  numpy_helper.from_array(np.array(0, np.int8), f"za{i}"),
                  numpy_helper.from_array(np.array(0.01, np.float32), f"sw{i}"),
                  numpy_helper.from_array(np.array(0, np.int8), f"zw{i}"),
                  numpy_helper.from_array(np.array(0.5, np.float32), f"sy{i}"),
                  numpy_helper.from_array(np.array(0, np.int8), f"zy{i}")]
        out = f"h{i}" if i < len(dims) - 2 else "y"
        nodes.append(helper.make_node("QLinearMatMul", [prev, f"sa{i}", f"za{i}", f"w{i}", f"sw{i}", f"zw{i}",
                                                        f"sy{i}", f"zy{i}"], [out], name=f"q{i}"))
        prev = out
    y = helper.make_tensor_value_info("y", TensorProto.INT8, [m, dims[-1]])
    graph = helper.make_graph(nodes, "mlp", [x], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)


def test_cli_run_and_compile_on_a_system(tmp_path):
    rng = np.random.default_rng(4)
    _onnx_mlp(tmp_path / "m.onnx", rng, 4, [48, 64, 32])
    x = rng.integers(-128, 128, (4, 48)).astype(np.int8)
    np.savez(tmp_path / "in.npz", x=x)
    assert main(["run", str(tmp_path / "m.onnx"), "--system", "pair", "--parallel", "pipeline", "--inputs",
                 str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "out.npz"), "--report", str(tmp_path / "r.json")]) == 0
    assert main(["run", str(tmp_path / "m.onnx"), "--inputs", str(tmp_path / "in.npz"), "--outputs",
                 str(tmp_path / "one.npz")]) == 0
    assert np.array_equal(np.load(tmp_path / "out.npz")["y"], np.load(tmp_path / "one.npz")["y"])
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["system"] == "pair" and r["cycles"] == r["predicted_cycles"] and r["prediction_exact"]
    assert [c["chip"] for c in r["chips"]] == [0, 1] and r["plan"][0]["chips"] == [0]
    assert all({"cycles", "predicted_cycles", "mxm_utilization", "links"} <= c.keys() for c in r["chips"])
    assert main(["compile", str(tmp_path / "m.onnx"), "--system", "pair", "--parallel", "tensor",
                 "-o", str(tmp_path / "out")]) == 0
    man = json.loads((tmp_path / "out" / "system.json").read_text())
    assert man["images"] == ["chip0.bin", "chip1.bin"] and man["system"] == "pair"
    assert all((tmp_path / "out" / f"chip{i}.s").exists() for i in range(2))
    assert [o["columns"] for o in man["outputs"]["y"]] == [[0, 16], [16, 32]]
    assert main(["compile", str(tmp_path / "m.onnx"), "--system", "pair", "--parallel", "pipeline",
                 "--micro-batches", "2", "-o", str(tmp_path / "mb")]) == 0
    man = json.loads((tmp_path / "mb" / "system.json").read_text())
    assert man["micro_batches"] == 2 and [o["rows"] for o in man["outputs"]["y"]] == [[0, 2], [2, 4]]
    assert [i["rows"] for i in man["inputs"]["x"]] == [[0, 2], [2, 4]]


@pytest.mark.xdist_group("dask")
def test_cli_runs_a_system_on_dask_workers(tmp_path, capsys):
    """--workers 2: a chip's golden model per Dask worker (sim/scaleout.py); the outputs, cycles and
    per-chip figures of the single-process run, and the lockstep's figures in the report."""
    rng = np.random.default_rng(6)
    _onnx_mlp(tmp_path / "m.onnx", rng, 2, [48, 64, 32])
    np.savez(tmp_path / "in.npz", x=rng.integers(-128, 128, (2, 48)).astype(np.int8))
    runs = {}
    for name, extra in (("one", []), ("dask", ["--workers", "2"])):
        assert main(["run", str(tmp_path / "m.onnx"), "--system", "pair", "--parallel", "tensor", "--inputs",
                     str(tmp_path / "in.npz"), "--outputs", str(tmp_path / f"{name}.npz"), "--report",
                     str(tmp_path / f"{name}.json"), *extra]) == 0
        runs[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert np.array_equal(np.load(tmp_path / "one.npz")["y"], np.load(tmp_path / "dask.npz")["y"])
    assert runs["one"]["chips"] == runs["dask"]["chips"] and runs["dask"]["prediction_exact"]
    assert runs["dask"]["scale_out"]["workers"] == 2 and runs["dask"]["scale_out"]["rounds"] > 0
    assert "scale_out" not in runs["one"]
    capsys.readouterr()
    assert main(["run", str(tmp_path / "m.onnx"), "--workers", "2", "--inputs", str(tmp_path / "in.npz")]) == 1
    assert capsys.readouterr().err.strip() == ("error: --workers / --scheduler run the chips of a system (--system) "
                                               "in Dask workers")
    assert main(["run", str(tmp_path / "m.onnx"), "--system", "pair", "--workers", "2", "--target", "icarus",
                 "--inputs", str(tmp_path / "in.npz")]) == 1
    assert capsys.readouterr().err.strip() == ("error: --workers / --scheduler scale out the golden model; icarus "
                                               "runs the whole system in one simulator process")


def test_cli_refuses_fpga_target_for_a_system(tmp_path, capsys):
    rng = np.random.default_rng(4)
    _onnx_mlp(tmp_path / "m.onnx", rng, 1, [16, 16])
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 16), np.int8))
    assert main(["run", str(tmp_path / "m.onnx"), "--system", "pair", "--target", "fpga", "--inputs",
                 str(tmp_path / "in.npz")]) == 1
    assert capsys.readouterr().err.strip() == ("error: --target fpga runs one chip on one board; systems run on "
                                               "golden, icarus and verilator")


def test_a_model_larger_than_one_chip_on_ring4():
    """The 512-1024-512 MLP (1,054,720 bytes of weights and biases; a `tiny` chip has 524,288):
    refused on one chip, split by columns over ring4 (the first layer on two chips, the second on
    the other two, each fed by both of the first over its two links), bit-exact on golden with
    every chip's cycles as predicted."""
    g = mlp(np.random.default_rng(12), 1, [512, 1024, 512])
    with pytest.raises(CompileError, match="does not fit in SRAM"):
        compile_graph(g, get_config("tiny"))
    sc, rep = _check(g, "ring4", "pipeline", 1)
    assert [set(s.chips) for s in sc.plan] == [{0, 2}, {1, 3}]
    feeds = {"x": np.random.default_rng(0).integers(-128, 128, (1, 512)).astype(np.int8)}
    out, scaled = run_on_system(sc, feeds, "golden", workers=0)       # the Dask workers' lockstep, in process
    assert np.array_equal(out[g.outputs[0]], g.evaluate(feeds)[g.outputs[0]])
    assert [c["cycles"] for c in scaled["chips"]] == [c["cycles"] for c in rep["chips"]]
    assert {(t.src, t.dst) for t in sc.transfers} == {(0, 1), (0, 3), (2, 1), (2, 3)}
