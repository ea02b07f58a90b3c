"""Requantization: the vectorized int64 implementation equals the plain big-integer definition
on 1,000,000 random cases and on every saturation/rounding edge; (M, s) precision."""
import itertools
import math

import numpy as np
import pytest

from isa.quant import QuantError, multiplier_value, quantize_multiplier, requantize, requantize_scalar

I32_MIN, I32_MAX = -2**31, 2**31 - 1


def test_one_million_random_cases():
    rng = np.random.default_rng(20261125)
    n = 1_000_000
    x = rng.integers(I32_MIN, I32_MAX, n, endpoint=True).astype(np.int32)
    m = rng.integers(0, 2**31, n)
    s = rng.integers(0, 32, n)
    zp = rng.integers(-128, 128, n)
    got = requantize(x, m, s, zp)
    want = np.fromiter((requantize_scalar(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(x, m, s, zp)),
                       np.int64, n)
    assert np.array_equal(got.astype(np.int64), want)
    assert got.dtype == np.int8


def test_edges():
    xs = [I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX]
    ms = [0, 1, 2**30, 2**31 - 1]
    ss = [0, 1, 30, 31]
    zps = [-128, -1, 0, 1, 127]
    cases = list(itertools.product(xs, ms, ss, zps))
    x, m, s, zp = (np.array(c) for c in zip(*cases))
    got = requantize(x.astype(np.int32), m, s, zp)
    want = [requantize_scalar(*map(int, c)) for c in cases]
    assert got.tolist() == want
    assert {-128, 127} <= set(want)          # both saturation edges are exercised


def test_rounding_is_half_up():
    half = 2**30                                # M = 2**30 is 0.5
    assert requantize(np.int32([5, -5, 3, -3]), half, 0, 0).tolist() == [3, -2, 2, -1]


def test_per_lane_parameters_broadcast():
    x = np.full((4, 16), 1000, np.int32)
    m = np.full(16, 2**30)
    s = np.arange(16) % 4
    got = requantize(x, m, s, 0)
    assert got[0].tolist() == [requantize_scalar(1000, 2**30, int(k), 0) for k in s]


@pytest.mark.parametrize("seed", range(3))
def test_quantize_multiplier_precision(seed):
    rng = np.random.default_rng(seed)
    for scale in np.exp(rng.uniform(math.log(2**-32), math.log(0.999999), 2000)):
        m, s = quantize_multiplier(float(scale))
        assert 2**30 <= m < 2**31 and 0 <= s <= 31
        assert abs(multiplier_value(m, s) - scale) <= scale * 2**-31


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, -0.25, float("nan"), float("inf"), 2**-33])
def test_quantize_multiplier_rejects(bad):
    with pytest.raises(QuantError):
        quantize_multiplier(bad)


def test_bad_parameters_rejected():
    with pytest.raises(QuantError, match="int32"):
        requantize(np.int64([1]), 2**30, 0, 0)
    with pytest.raises(QuantError, match="shift"):
        requantize(np.int32([1]), 2**30, 32, 0)
    with pytest.raises(QuantError, match="multiplier"):
        requantize(np.int32([1]), 2**31, 0, 0)
    with pytest.raises(QuantError, match="zero point"):
        requantize(np.int32([1]), 2**30, 0, 128)
