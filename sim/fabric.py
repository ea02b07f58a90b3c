"""The stream fabric (hdl/superlane.py: the stream registers): which value passes a position on a cycle.

A value driven eastward by position q on cycle c is V(q+d, c+d) for d >= 1 until a position
further east drives the same stream on the same "diagonal" (c - q stays constant along a value's
path; westward c + q). So V(p, c) is the drive of the nearest upstream position q on cycle
c - |p - q|, or zero if nobody upstream drove that diagonal.

Drives are registered per instruction, not per element: an op driving stream s from position q
on cycles [c, c+n) is one interval on the track (dir, s, q, prio). A query for a run of cycles at
one position walks the tracks nearest-upstream first and returns whole slices of the drivers'
element arrays, demanding (lazily computing) only the elements it returns. Within one slice a
higher `prio` wins on the same stream and cycle (a VXM's later ALU; isa/spec.py); every other
track holds one engine's drives, which never overlap.
"""
from __future__ import annotations

from bisect import bisect_right

import numpy as np

from isa import spec
from isa.config import ChipConfig

EAST = int(spec.Dir.EAST)
EDGE_BLOCK = 512        # cycles of edge output computed at once after a run


class _Track:
    """The drives of one (dir, stream) from one position at one priority: disjoint, in cycle order."""
    __slots__ = ("q", "prio", "starts", "ends", "srcs")

    def __init__(self, q: int, prio: int):
        self.q, self.prio = q, prio
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.srcs: list[tuple] = []     # (op, plane): op.drive(plane, a, b) gives elements a..b-1


class Fabric:
    def __init__(self, config: ChipConfig):
        assert spec.timing(config)["stream_hop"] == 1, "the fabric's diagonal bookkeeping assumes one hop per cycle"
        self.lanes = config.lanes
        self.streams = config.streams
        self.positions = config.positions
        self._tracks: dict[tuple[int, int], list[_Track]] = {}
        self._by_key: dict[tuple[int, int, int, int], _Track] = {}
        self._edges: dict[tuple[int, int], np.ndarray] = {}
        self.frozen = False             # set after a run: edge outputs may then be cached

    def drive(self, d: int, s: int, q: int, c0: int, n: int, op, plane, prio: int = 0) -> None:
        """Position q drives stream (d, s) on cycles c0 .. c0+n-1 with elements 0..n-1 of `op`."""
        tr = self._by_key.get((d, s, q, prio))
        if tr is None:
            tr = self._by_key[(d, s, q, prio)] = _Track(q, prio)
            tracks = self._tracks.setdefault((d, s), [])
            tracks.append(tr)
            # nearest upstream first: eastward streams come from the west (larger q is nearer)
            tracks.sort(key=(lambda x: (-x.q, -x.prio)) if d == EAST else (lambda x: (x.q, -x.prio)))
        assert not tr.ends or tr.ends[-1] <= c0, "one engine's drives overlap"
        tr.starts.append(c0)
        tr.ends.append(c0 + n)
        tr.srcs.append((op, plane))

    def values(self, d: int, s: int, p: int, c0: int, m: int) -> np.ndarray:
        """V(p, c) of stream (d, s) for c = c0 .. c0+m-1: uint8 [m, lanes] (read-only)."""
        tracks = self._tracks.get((d, s))
        pieces = []
        if tracks:
            todo = [(c0, c0 + m)]
            for tr in tracks:
                delta = p - tr.q if d == EAST else tr.q - p
                if delta <= 0:
                    continue
                starts, ends = tr.starts, tr.ends
                left = []
                for lo, hi in todo:
                    a, b = lo - delta, hi - delta          # the driver's cycles
                    i = bisect_right(ends, a)
                    cur = a
                    while i < len(starts) and starts[i] < b:
                        x0 = max(starts[i], a)
                        x1 = min(ends[i], b)
                        if x1 > x0:
                            if x0 > cur:
                                left.append((cur + delta, x0 + delta))
                            pieces.append((x0 + delta - c0, x1 - x0, tr.srcs[i], x0 - starts[i]))
                            cur = x1
                        i += 1
                    if cur < b:
                        left.append((cur + delta, b + delta))
                todo = left
                if not todo:
                    break
        if len(pieces) == 1 and pieces[0][1] == m:
            _, _, (op, plane), k = pieces[0]
            return op.drive(plane, k, k + m)
        out = np.zeros((m, self.lanes), np.uint8)
        for off, ln, (op, plane), k in pieces:
            out[off:off + ln] = op.drive(plane, k, k + ln)
        return out

    def stop_at(self, stop: int) -> None:
        """The run halted: no drive happens on a cycle >= stop."""
        for tr in self._by_key.values():
            tr.ends = [min(e, stop) for e in tr.ends]
            tr.starts = [min(s, stop) for s in tr.starts]

    def edge(self, d: int, cycle: int) -> np.ndarray:
        """Vectors leaving the chip on `cycle` (east edge for d = EAST): uint8 [streams, lanes]."""
        p = self.positions if d == EAST else -1
        if not self.frozen:
            return np.stack([self.values(d, s, p, cycle, 1)[0] for s in range(self.streams)])
        b = cycle // EDGE_BLOCK
        block = self._edges.get((d, b))
        if block is None:
            c0 = b * EDGE_BLOCK
            block = np.stack([self.values(d, s, p, c0, EDGE_BLOCK) for s in range(self.streams)], axis=1)
            self._edges[(d, b)] = block
        return block[cycle - b * EDGE_BLOCK].copy()
