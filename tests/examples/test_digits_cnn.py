"""examples/digits_cnn.py end to end on the golden model: a CNN trained in numpy, quantized per
channel, exported as a QDQ ONNX model, compiled (convolutions, pooling, flatten on the chip) and
run over the whole test split: bit-exact, cycles as predicted, int8 within a point of float."""
import json

import numpy as np
import onnx
import pytest

from tests.examples import load_example


@pytest.fixture(scope="module")
def cnn():
    return load_example("digits_cnn", "digits_cnn_example")


def test_full_test_split_on_golden(cnn, tmp_path):
    assert cnn.main(["--target", "golden", "--out", str(tmp_path)]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["test_images"] == 450 and s["batch"] == 50
    assert s["bit_exact"] and s["prediction_exact"]
    assert s["float_accuracy"] > 95.0
    assert abs(s["accuracy_difference_points"]) <= 1.0
    assert 0 < s["batch1_cycles"] < s["cycles_per_batch"]
    model = onnx.load(str(tmp_path / "digits_cnn.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "MaxPool", "Reshape", "Gemm"} <= ops
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    assert scales["conv1.s_w"].shape == (8,) and scales["conv2.s_w"].shape == (16,)     # per channel


def test_training_gradients_match_finite_differences(cnn):
    """The numpy CNN's backward pass (the example trains with it) against central differences."""
    x_train, _, y_train, _ = cnn.load_data()
    rng = np.random.default_rng(1)
    # noise breaks the exact ties of blank image areas, where max pooling has no derivative
    x, y = x_train[:4].reshape(-1, 1, 8, 8) + rng.uniform(0, 0.05, (4, 1, 8, 8)), y_train[:4]
    m = cnn.Cnn(*[rng.standard_normal(s) * 0.3 for s in [(8, 1, 3, 3), (8,), (16, 8, 3, 3), (16,), (10, 64), (10,)]])

    def loss():
        z = m.forward(x)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(4), y] - np.log(np.exp(z).sum(axis=1))).mean())
    for k, (p, g) in enumerate(zip(m.params(), cnn._grads(m, x, y))):
        idx = tuple(int(v) for v in np.random.default_rng(k).integers(0, p.shape))
        old = p[idx]
        p[idx] = old + 1e-5
        hi = loss()
        p[idx] = old - 1e-5
        lo = loss()
        p[idx] = old
        assert abs((hi - lo) / 2e-5 - g[idx]) < 1e-6 * max(1.0, abs(g[idx]))
