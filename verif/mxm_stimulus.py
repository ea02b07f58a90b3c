"""GEMM programs for the MXM slices, fed and drained through the MEM slices on exact cycles.

`gemm_program` splits C = A @ B (A: M x K, B: K x N, int8 or uint8 with zero points) into
lanes x lanes weight tiles. Each MXM takes every other column tile; for each K tile it loads
the weights into its shadow buffer (LW, `lw_width` streams per cycle) while the previous tile
computes, installs them with MATMUL swap=1 and streams the M activation rows, accumulating
over K tiles in its accumulators. ACCREAD then drives each int32 row onto a 4-stream group
that passes all four MEM slices of `tiny`, each of which WRITEs one byte plane. All timing
comes from spec.timing(config); feeds are placed by verif.vxm_stimulus.Planner.
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.image import Program

from .vxm_stimulus import Planner

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


def mxm_values(rng: np.random.Generator, shape, signed: bool) -> np.ndarray:
    """int8 or uint8 values with every extreme often: a quarter drawn from {min, max, 0, +-1}."""
    lo, hi = (-128, 127) if signed else (0, 255)
    v = rng.integers(lo, hi + 1, size=shape)
    edges = np.array([lo, hi, 0, 1, hi - 1] + ([-1] if signed else []))
    pick = rng.random(shape) < 0.25
    v[pick] = edges[rng.integers(len(edges), size=int(pick.sum()))]
    return v.astype(np.int8 if signed else np.uint8)


def gemm_reference(A, B, xzp: int, wzp: int) -> np.ndarray:
    """(A - xzp) @ (B - wzp) in int32, as ONNX MatMulInteger defines it."""
    return ((A.astype(np.int64) - xzp) @ (B.astype(np.int64) - wzp)).astype(np.int32)


def gemm_program(config: ChipConfig, A: np.ndarray, B: np.ndarray, xzp: int = 0, wzp: int = 0,
                 lw_width: int = 1) -> tuple[Program, dict]:
    """The program and a layout {"mems": [positions holding byte planes 0..3], "rows": [(n_tile, m)
    -> C row address]} to read C back (see read_c)."""
    L, S = config.lanes, config.streams
    M, K = A.shape
    K2, N = B.shape
    if K != K2 or K % L or N % L:
        raise ValueError(f"gemm_program: K ({K}) and N ({N}) must be multiples of lanes ({L})")
    if L % lw_width:
        raise ValueError(f"lw_width {lw_width} must divide lanes {L}")
    xs, ws = int(A.dtype == np.int8), int(B.dtype == np.int8)
    pl = Planner(config)
    T = pl.T
    mxms = config.slices_of(SliceKind.MXM)
    mems = [s.position for s in config.slices_of(SliceKind.MEM)]
    if len(mems) < 4:
        raise ValueError("gemm_program needs 4 MEM slices on the read-out path")
    vx = config.slice_named("VXM").position
    kt_n, nt_n = K // L, N // L
    a_tiles = A.view(np.uint8).reshape(M, kt_n, L)
    b_tiles = B.view(np.uint8).reshape(kt_n, L, nt_n, L)
    rows_of = {}
    write_cursor = 0                          # read-outs are serialized: every MEM slice stores one plane
    state = {}
    for i, sl in enumerate(mxms):
        feed = W if sl.position < vx else E
        state[sl.name] = {"slice": sl, "feed": feed, "out": 1 - feed, "t": 4, "n": 0, "acc": 0}
        pl.plan(0, lambda k, sl=sl: ([], [(sl.name, k, "MXMCFG", {"xzp": xzp & 0xFF, "xsigned": xs,
                                                                  "wzp": wzp & 0xFF, "wsigned": ws})]))
    if M > config.mxm_acc_rows:
        raise ValueError(f"M = {M} rows do not fit mxm_acc_rows {config.mxm_acc_rows}")
    c_addr = config.mem_words // 2          # C's byte planes go to the upper half of every MEM slice
    lw_cycles = L // lw_width
    for nt in range(nt_n):
        st = state[mxms[nt % len(mxms)].name]
        sl, d = st["slice"], st["feed"]
        pm = sl.position
        last_mm = None
        for kt in range(kt_n):
            tile = b_tiles[kt, :, nt, :]

            def pair(k, start=st["t"], tile=tile, kt=kt):
                t_lw = start + k
                t_mm = t_lw + lw_cycles
                feeds = [(d, 1 + j, pm, t_lw + T["mxm_sample"] + e, tile[e * lw_width + j])
                         for e in range(lw_cycles) for j in range(lw_width)]
                feeds += [(d, 0, pm, t_mm + T["mxm_sample"] + r, a_tiles[r, kt]) for r in range(M)]
                ins = [(sl.name, t_lw, "LW", {"stream": 1, "dir": d, "row": 0, "width": lw_width, "count": lw_cycles}),
                       (sl.name, t_mm, "MATMUL", {"stream": 0, "dir": d, "accumulate": int(kt > 0), "acc": st["acc"],
                                                  "swap": 1, "count": M})]
                return feeds, ins
            k = pl.plan(st["t"], pair)
            t_mm = st["t"] + k + lw_cycles
            last_mm = t_mm
            st["t"] = max(t_mm, t_mm + M - lw_cycles)       # next LW after this install, next MATMUL after this one
        # read-out: at the earliest legal cycle, so the last row is read on the very cycle it is
        # written (a transparent read); one row per cycle, each MEM slice storing a plane
        ready = last_mm + T["mxm_acc_write"] + M - 1 - T["mxm_accread_access"]
        start = max(ready, write_cursor)

        def readout(k, start=start, sl=sl, out=st["out"], acc=st["acc"], addr=c_addr):
            t_ar = start + k
            top = config.streams - 4            # the last int32 group: clear of the feeds' low streams
            ins = [(sl.name, t_ar, "ACCREAD", {"acc": acc, "dst": top, "ddir": out, "count": M})]
            for j, p in enumerate(_path(mems, sl.position, out)):
                arrive = t_ar + T["mxm_accread_drive"] + abs(p - sl.position)
                ins.append((p, arrive - T["mem_write_sample"], "WRITE",
                            {"stream": top + j, "dir": out, "addr": addr, "stride": 1, "count": M}))
            return [], ins
        k = pl.plan(start, readout)
        t_ar = start + k
        order = _path(mems, sl.position, st["out"])
        rows_of[nt] = (order, c_addr)
        c_addr += M
        write_cursor = t_ar + M + 4
        st["acc"] = (st["acc"] + M) % config.mxm_acc_rows if 2 * M <= config.mxm_acc_rows else 0
        st["n"] += 1
    return pl.program(), {"rows": rows_of, "M": M, "N": N, "lanes": L}


def _path(mems, position, out):
    """The four MEM slices nearest the MXM along its read-out direction: byte planes 0..3."""
    ahead = [p for p in mems if (p > position if out == E else p < position)]
    return sorted(ahead, key=lambda p: abs(p - position))[:4]


def read_c(memory_of, layout) -> np.ndarray:
    """C (int32 M x N) from SRAM contents: memory_of(position) -> uint8 [mem_words, lanes]."""
    M, N, L = layout["M"], layout["N"], layout["lanes"]
    C = np.zeros((M, N), np.int32)
    for nt, (order, addr) in layout["rows"].items():
        planes = np.stack([memory_of(p)[addr:addr + M] for p in order], axis=-1)     # [M, lanes, 4]
        C[:, nt * L:(nt + 1) * L] = planes.copy().view(np.int32).reshape(M, L)
    return C
