"""examples/digits_mlp.py end to end on the golden model: train, quantize, export ONNX, compile, run.

The example is imported from its file (examples/ is not a package). The full-split run is the
acceptance figure: the chip's logits equal the integer graph's numpy reference bit for bit, the
measured cycles equal the prediction, and int8 accuracy is within 1 point of the float model.
"""
import json

import numpy as np
import onnx
import pytest

from tests.examples import load_example



@pytest.fixture(scope="module")
def digits():
    return load_example("digits_mlp", "digits_mlp_example")


def test_full_test_split_on_golden(digits, tmp_path):
    assert digits.main(["--target", "golden", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["test_samples"] == 450                      # the whole stratified 25 % split
    assert s["bit_exact"] and s["samples_differing_from_reference"] == 0
    assert s["int8_accuracy"] == s["reference_accuracy"]
    assert s["float_accuracy"] > 95.0
    assert abs(s["int8_accuracy"] - s["float_accuracy"]) <= 1.0
    assert s["prediction_exact"] and s["cycles"] == s["predicted_cycles"] > 0
    assert s["cycles_per_inference"] == round(s["cycles"] / 450, 2)
    assert 0.0 < s["mxm_utilization"] <= 1.0
    for f in ("digits_mlp.onnx", "inputs.npz", "outputs.npz", "report.json"):
        assert (tmp_path / f).exists(), f


def test_batch_and_repeated_runs(digits, tmp_path):
    assert digits.main(["--batch", "64", "--runs", "2", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["test_samples"] == 64 and s["runs"] == 2 and s["runs_identical"] and s["bit_exact"]
    with np.load(tmp_path / "inputs.npz") as z:
        assert list(z.files) == ["x"] and z["x"].shape == (64, 64) and z["x"].dtype == np.float32


def test_quantization_and_export(digits, tmp_path):
    x_train, _, y_train, _ = digits.load_data()
    q = digits.quantize(digits.train(x_train, y_train), x_train)
    assert q.w1.dtype == np.int8 and q.w1.shape == (32, 64) and np.abs(q.w1).max() == 127
    assert q.w2.dtype == np.int8 and q.w2.shape == (10, 32) and np.abs(q.w2).max() == 127
    assert q.b1.dtype == np.int32 and q.b2.dtype == np.int32
    model = digits.export_onnx(q, 8, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "m.onnx")), full_check=True)
    assert model.opset_import[0].version == 21
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [8, 64]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 2 and ops.count("Relu") == 1


def test_bad_batch_is_one_line_error(digits, tmp_path, capsys):
    assert digits.main(["--batch", "451", "--out", str(tmp_path)]) == 1
    assert "the test split has 450 samples" in capsys.readouterr().err
