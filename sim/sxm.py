"""SXM lane movements on a group of streams: uint8 [width, lanes] in, the same shape out."""
from __future__ import annotations

import numpy as np


def shift(x: np.ndarray, n: int) -> np.ndarray:
    """out[i] = x[i - n] where 0 <= i - n < lanes, else 0."""
    lanes = x.shape[1]
    out = np.zeros_like(x)
    i = np.arange(lanes)
    src = i - n
    ok = (src >= 0) & (src < lanes)
    out[:, i[ok]] = x[:, src[ok]]
    return out


def rotate(x: np.ndarray, n: int) -> np.ndarray:
    """out[i] = x[(i - n) mod lanes]."""
    return np.roll(x, n, axis=1)


def bcast(x: np.ndarray, lane: int) -> np.ndarray:
    return np.repeat(x[:, lane:lane + 1], x.shape[1], axis=1)


def permute(x: np.ndarray, lane_map: np.ndarray) -> np.ndarray:
    """out[i] = x[map[i]] if map[i] < lanes else 0."""
    lanes = x.shape[1]
    m = np.asarray(lane_map, np.int64)
    ok = m < lanes
    return np.where(ok[None, :], x[:, np.where(ok, m, 0)], 0).astype(np.uint8)


def transpose(x: np.ndarray) -> np.ndarray:
    """Each width x width tile (stream j, lane b*width + i) -> (stream i, lane b*width + j)."""
    n, lanes = x.shape
    return x.reshape(n, lanes // n, n).transpose(2, 1, 0).reshape(n, lanes)
