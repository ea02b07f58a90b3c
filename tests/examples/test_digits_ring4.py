"""examples/digits_ring4.py: a digits MLP larger than one chip, compiled for ring4 and classified
batch by batch; logits bit-exact against the integer reference, every chip's cycles as predicted
(golden here; Verilator in tests/rtl/test_digits_example.py)."""
import json

import pytest

from tests.examples import load_example



@pytest.fixture(scope="module")
def ring4():
    return load_example("digits_ring4", "digits_ring4_example")


def test_two_batches_on_golden(ring4, tmp_path):
    assert ring4.main(["--samples", "8", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["ok"] and s["bit_exact"] and s["prediction_exact"] and s["batches"] == 2
    assert s["weight_bytes"] > 524288                      # more than one tiny chip's SRAM
    assert len({c for st in s["plan"] for c in st["chips"]}) >= 3
    assert all(c["cycles"] == c["predicted_cycles"] for c in s["chips"])


@pytest.mark.xdist_group("dask")
def test_dask_workers_give_the_same_run(ring4, tmp_path):
    """--workers 2: the chips' golden models in two Dask worker processes; the same logits, cycles and
    per-chip figures as one process."""
    assert ring4.main(["--samples", "4", "--out", str(tmp_path / "one")]) == 0
    assert ring4.main(["--samples", "4", "--out", str(tmp_path / "dask"), "--workers", "2"]) == 0
    one, dask = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("one", "dask"))
    assert dask["ok"] and dask["scale_out"]["workers"] == 2 and one["scale_out"] is None
    assert {k: v for k, v in one.items() if k not in ("scale_out", "compile_seconds")} == \
        {k: v for k, v in dask.items() if k not in ("scale_out", "compile_seconds")}


def test_bad_arguments(ring4, capsys):
    assert ring4.main(["--samples", "4", "--batch", "8"]) == 1
    assert capsys.readouterr().err.strip() == "error: --batch 8: between 1 and the samples classified (4)"
    assert ring4.main(["--hidden", "big"]) == 1
    assert capsys.readouterr().err.strip() == "error: --hidden 'big': comma-separated layer sizes"
    assert ring4.main(["--target", "icarus", "--workers", "2"]) == 1
    assert capsys.readouterr().err.strip() == ("error: --workers scales out the golden model; icarus runs the "
                                               "system in one simulator")
