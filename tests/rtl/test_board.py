"""The board top (hdl/board.py: the chip behind the UART host bridge) under each simulator, driven
only over its serial line by the host code a board runs (verif/bridge.py, verif/driver.py): a
compiled model end to end, damaged and cut frames, requests while the chip runs."""
import numpy as np
import pytest

from compiler.compile import compile_graph
from compiler.graph import Graph
from compiler.runtime import run
from isa.config import get_config
from verif.rtl_build import run_cocotb


@pytest.mark.rtl
@pytest.mark.parametrize("test", ["damaged_requests", "busy_while_running", "error_stop", "sync_alone"])
def test_board(sim, test):
    run_cocotb(sim, "verif.tb_board", testcase=test, config="board-fpga", seed=3)


def _small_mlp():
    rng = np.random.default_rng(5)
    g = Graph()
    g.input("x", np.uint8, (8, 32))
    g.constant("w1", rng.integers(-128, 128, (32, 16)).astype(np.int8))
    g.constant("b1", rng.integers(-2000, 2000, 16).astype(np.int32))
    y = g.requantize(g.relu(g.add(g.matmul("x", "w1", 3, 0), "b1")), 0.0005, 4, np.uint8)
    g.outputs = [y]
    return g, {"x": rng.integers(0, 256, (8, 32)).astype(np.uint8)}


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")        # Icarus runs the board at about 1,100 cycles/s: make sweep
def test_compiled_model_through_bridge(sim):
    """python -m compiler run --target fpga, the board simulated (the `fpga` preset, whose one ALU
    runs this epilogue cut in three parts through SRAM): bit-exact, cycles = prediction."""
    g, feeds = _small_mlp()
    c = compile_graph(g, get_config("fpga"))
    out, rep = run(c, feeds, "fpga", port=f"sim:{sim}")
    want = g.evaluate(feeds)
    assert all(np.array_equal(out[k], want[k]) for k in g.outputs)
    assert rep["cycles"] == c.predicted["cycles"]
