"""Schedule pictures (compiler/gantt.py): the rows are the reservation table's, their utilization
is the prediction's, and the CLI writes .png / .svg / .html or refuses another suffix in one line."""
import numpy as np
import pytest

from bench.multichip import mlp
from compiler.__main__ import main
from compiler.compile import compile_graph
from compiler.gantt import Row, picture, rows_of
from compiler.graph import CompileError
from compiler.system import compile_system
from isa.config import get_config
from isa.system import get_system
from tests.compiler.test_system import _onnx_mlp


@pytest.fixture(scope="module")
def compiled():
    return compile_graph(mlp(np.random.default_rng(1), 8, [64, 48, 32]), get_config("tiny"))


def test_engine_rows_are_the_predictions_units(compiled):
    rows = rows_of(compiled.machine)
    cycles = compiled.predicted["cycles"]
    engines = {r.label: round(r.busy() / cycles, 4) for r in rows if "." in r.label}
    assert engines == compiled.predicted["units"]
    streams = [r for r in rows if "." not in r.label]
    assert streams and all(r.label.split()[1] in ("west", "east") for r in streams)
    nodes = {node for r in rows for _, _, node in r.bars}
    assert nodes == {"matmul0", "matmul4"}          # the two kernel groups, by their first node
    assert all(0 <= s and s + n <= cycles for r in rows for s, n, _ in r.bars)


def test_busy_counts_overlapping_bars_once():
    assert Row("x", [(0, 10, "a"), (5, 10, "b"), (30, 2, "a")]).busy() == 17


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_pictures_are_written(compiled, tmp_path, suffix):
    path = tmp_path / f"g{suffix}"
    picture(compiled, path)
    data = path.read_bytes()
    if suffix == ".png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert b"<svg" in data and b"matmul0" in data
    if suffix == ".html":
        assert b"MEM_W0.read" in data and b"<table>" in data


def test_a_system_stacks_its_chips(tmp_path):
    sc = compile_system(mlp(np.random.default_rng(3), 4, [32, 32, 32]), get_system("pair"), "pipeline")
    path = tmp_path / "s.svg"
    picture(sc, path)
    text = path.read_text()
    assert "chip0 " in text and "chip1 " in text and "C2C_E0.send" in text


def test_cli(tmp_path, capsys):
    _onnx_mlp(tmp_path / "m.onnx", np.random.default_rng(4), 4, [32, 32])
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.bin"), "--gantt",
                 str(tmp_path / "m.png")]) == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["compile", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.bin"), "--gantt",
                 str(tmp_path / "m.jpg")]) == 1
    assert capsys.readouterr().err.strip() == f"error: --gantt {tmp_path / 'm.jpg'}: the picture is .png, .svg, .html"
    with pytest.raises(CompileError, match="the picture is"):
        picture(compile_graph(mlp(np.random.default_rng(1), 1, [16, 16]), get_config("tiny")), tmp_path / "x.gif")
