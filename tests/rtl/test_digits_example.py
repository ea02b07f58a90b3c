"""The digits example on the RTL: the whole test split, bit-exact against the integer reference,
accuracy within a point of the float model, cycles equal to the prediction, twice."""
import json

import pytest

from tests.examples import load_example



@pytest.mark.rtl
@pytest.mark.default_sims("verilator")
def test_digits_example_rtl(sim, tmp_path):
    mod = load_example("digits_mlp", "digits_mlp_rtl")
    assert mod.main(["--target", sim, "--runs", "2", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["target"] == sim and summary["test_samples"] == 450
    assert summary["bit_exact"] and summary["prediction_exact"] and summary["runs_identical"]
    assert summary["predicted_cycles"] == summary["cycles"]
    assert abs(summary["accuracy_difference_points"]) <= 1.0


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")
def test_digits_ring4_example_rtl(sim, tmp_path):
    """examples/digits_ring4.py (a model larger than one chip) on the emitted ring4 system: one
    batch, bit-exact, every chip's cycles as predicted."""
    mod = load_example("digits_ring4", "digits_ring4_rtl")
    assert mod.main(["--target", sim, "--samples", "4", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["target"] == sim and s["bit_exact"] and s["prediction_exact"]
    assert all(c["cycles"] == c["predicted_cycles"] for c in s["chips"])


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")
def test_digits_cnn_example_rtl(sim, tmp_path):
    """examples/digits_cnn.py on the RTL: one batch of 50 images and one at batch 1, bit-exact, cycles
    as predicted."""
    mod = load_example("digits_cnn", "digits_cnn_rtl")
    assert mod.main(["--target", sim, "--batches", "1", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["target"] == sim and s["test_images"] == 50 and s["bit_exact"] and s["prediction_exact"]
