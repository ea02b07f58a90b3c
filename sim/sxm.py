"""SXM (hdl/sxm.py): lane movements on a group of streams, and the slice model.

The movements take uint8 [..., width, lanes] and return the same shape (lanes on the last axis),
so one call moves every element of an instruction. Slice model: an op issued on t takes the
source group passing the SXM on t+sxm_sample+k and drives the moved vectors on t+sxm_drive+k.
SETMAP uses the same engine and writes the lane map on its sample cycle, so a PERMUTE always
uses the map of the last SETMAP issued before it (identity at START).
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.spec import DType

from .lazy import Op
from .vxm import group_values


def shift(x: np.ndarray, n: int) -> np.ndarray:
    """out[i] = x[i - n] where 0 <= i - n < lanes, else 0."""
    lanes = x.shape[-1]
    out = np.zeros_like(x)
    i = np.arange(lanes)
    src = i - n
    ok = (src >= 0) & (src < lanes)
    out[..., i[ok]] = x[..., src[ok]]
    return out


def rotate(x: np.ndarray, n: int) -> np.ndarray:
    """out[i] = x[(i - n) mod lanes]."""
    return np.roll(x, n, axis=-1)


def bcast(x: np.ndarray, lane: int) -> np.ndarray:
    return np.repeat(x[..., lane:lane + 1], x.shape[-1], axis=-1)


def permute(x: np.ndarray, lane_map: np.ndarray) -> np.ndarray:
    """out[i] = x[map[i]] if map[i] < lanes else 0."""
    lanes = x.shape[-1]
    m = np.asarray(lane_map, np.int64)
    ok = m < lanes
    return np.where(ok, x[..., np.where(ok, m, 0)], 0).astype(np.uint8)


def transpose(x: np.ndarray) -> np.ndarray:
    """Each width x width tile (stream j, lane b*width + i) -> (stream i, lane b*width + j)."""
    n, lanes = x.shape[-2:]
    lead = x.shape[:-2]
    return np.swapaxes(x.reshape(*lead, n, lanes // n, n), -3, -1).reshape(*lead, n, lanes)


class SxmSlice:
    def __init__(self, position: int, config: ChipConfig, fabric, timeline):
        T = self.T = spec.timing(config)
        assert T["sxm_map_write"] == T["sxm_sample"], "the model writes the map on its sample cycle"
        self.position = position
        self.lanes = config.lanes
        self.fabric, self.timeline = fabric, timeline
        self.setmap: _SetMap | None = None      # the last SETMAP issued (None: identity map)

    def issue(self, t: int, mnemonic: str, ops: dict) -> None:
        if mnemonic == "SETMAP":
            op = self.setmap = _SetMap(self, t, ops["dir"], ops["stream"])
        else:
            op = MoveOp(self, t, mnemonic, ops, self.setmap)
            for j in range(ops["width"]):
                self.fabric.drive(ops["ddir"], ops["dst"] + j, self.position, t + self.T["sxm_drive"], op.n, op, j)
        self.timeline.add(op)


class _SetMap(Op):
    def __init__(self, sxm: SxmSlice, t: int, d: int, stream: int):
        super().__init__(t, 1, t + sxm.T["sxm_sample"])
        self.sxm, self.d, self.stream = sxm, d, stream
        self.map = None

    def compute(self, a, b):
        s = self.sxm
        self.map = group_values(s.fabric, self.d, self.stream, int(DType.I16), s.position, self.key, 1)[0] & 0xFFFF


class MoveOp(Op):
    def __init__(self, sxm: SxmSlice, t: int, mnemonic: str, ops: dict, setmap: _SetMap | None):
        super().__init__(t, ops["count"], t + sxm.T["sxm_sample"])
        self.sxm, self.mnemonic, self.ops, self.setmap = sxm, mnemonic, ops, setmap
        self.vals = np.zeros((self.n, ops["width"], sxm.lanes), np.uint8)

    def compute(self, a: int, b: int) -> None:
        s, ops, c0, m = self.sxm, self.ops, self.key + a, b - a
        x = np.stack([s.fabric.values(ops["dir"], ops["stream"] + j, s.position, c0, m)
                      for j in range(ops["width"])], axis=1)
        mn = self.mnemonic
        if mn == "SHIFT":
            y = shift(x, ops["arg"])
        elif mn == "ROTATE":
            y = rotate(x, ops["arg"])
        elif mn == "BCAST":
            y = bcast(x, ops["arg"])
        elif mn == "PERMUTE":
            if self.setmap is None:
                y = x
            else:
                self.setmap.need(0, 1)
                y = permute(x, self.setmap.map)
        else:
            y = transpose(x)
        self.vals[a:b] = y

    def drive(self, plane: int, a: int, b: int) -> np.ndarray:
        self.need(a, b)
        return self.vals[a:b, plane]
