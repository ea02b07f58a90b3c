"""Hand-scheduled GEMM and GEMV programs for `make bench` (until the compiler issue lands).

Both use the two MXMs of the standard floorplan with a fixed SRAM layout, and every
instruction is placed on its cycle with isa.timed from spec.timing(config):

* GEMM (M x K x N): MXM_W0 takes the even column tiles, MXM_E0 the odd ones. Each MXM is fed
  by the two MEM slices of its hemisphere: the one two positions away streams A (one row per
  cycle, k-tile major), the one three away streams the next weight tile (16 rows, one per
  cycle) into the shadow buffer while the current tile computes. MATMUL swap=1 installs the
  tile and runs M rows with no gap between tiles, accumulating over K tiles in one half of the
  accumulators; the finished half is read out (ACCREAD, one int32 row per cycle) while the next
  column tile accumulates in the other half. Every MEM slice stores one byte plane of each C
  row; the two MXMs' read-outs take turns.
* GEMV (1 x K times K x N): weight-load bound. Both MEM slices of a hemisphere feed LW with
  two streams per cycle (even and odd rows), so a 16-row tile loads in 8 cycles; one queue slot
  more for its MATMUL makes 9 cycles per tile, and the x chunk rides in the spare read slot.
"""
from __future__ import annotations

import numpy as np

from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.image import Program
from isa.timed import TimedProgram

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


def _sides(config: ChipConfig):
    """Per MXM: (mxm slice, feed direction, A/x slice, B slice); tiny-like floorplans only."""
    mxms = config.slices_of(SliceKind.MXM)
    if len(mxms) != 2 or config.mem_slices != 2:
        raise ValueError("the hand-scheduled GEMM needs one MXM and two MEM slices per hemisphere (tiny)")
    west, east = mxms
    return [(west, W, config.slice_named("MEM_W1"), config.slice_named("MEM_W0")),
            (east, E, config.slice_named("MEM_E1"), config.slice_named("MEM_E0"))]


def _readout_order(config, out_dir):
    mems = sorted(s.position for s in config.slices_of(SliceKind.MEM))
    return mems if out_dir == E else mems[::-1]


def gemm_program(config: ChipConfig, A: np.ndarray, B: np.ndarray) -> tuple[Program, dict]:
    """C = A @ B for int8 A (M x K) and B (K x N); M <= mxm_acc_rows / 2."""
    L, T = config.lanes, spec.timing(config)
    M, K = A.shape
    N = B.shape[1]
    kt_n, nt_n = K // L, N // L
    if K % L or N % L or nt_n % 2 or 2 * M > config.mxm_acc_rows:
        raise ValueError("gemm_program: K, N multiples of lanes, an even number of column tiles, 2*M <= acc rows")
    tp = TimedProgram(config)
    a_rows = A.view(np.uint8).reshape(M, kt_n, L).transpose(1, 0, 2).reshape(kt_n * M, L)   # [kt][m]
    b_tiles = B.view(np.uint8).reshape(kt_n, L, nt_n, L)
    c_base = config.mem_words // 2
    if kt_n * M > c_base or nt_n * M > config.mem_words - c_base:
        raise ValueError("gemm_program: A or C does not fit the SRAM layout")
    layout = {"M": M, "N": N, "lanes": L, "tiles": {}}
    t0 = L + 8                                   # first MATMUL issue (the first tile loads before it)
    readout_free = 0                             # MEM write engines are shared by both read-outs
    for side, (mx, d, a_mem, b_mem) in enumerate(_sides(config)):
        out = 1 - d
        tiles = list(range(side, nt_n, 2))
        tp.load(a_mem.name, 0, a_rows)
        tp.load(b_mem.name, 0, np.concatenate([b_tiles[kt, :, nt, :] for nt in tiles for kt in range(kt_n)]))
        da, db = abs(a_mem.position - mx.position), abs(b_mem.position - mx.position)
        for j, nt in enumerate(tiles):
            acc = (j % 2) * M
            for kt in range(kt_n):
                i = j * kt_n + kt
                t_mm = t0 + M * i
                t_lw = t_mm - L
                tp.at(mx.name, t_lw, "LW", stream=1, dir=d, row=0, width=1, count=L)
                tp.at(b_mem.name, t_lw + T["mxm_sample"] - db - T["mem_read_drive"], "READ", stream=1, dir=d,
                      addr=i * L, stride=1, count=L)
                tp.at(mx.name, t_mm, "MATMUL", stream=0, dir=d, accumulate=int(kt > 0), acc=acc, swap=1, count=M)
                tp.at(a_mem.name, t_mm + T["mxm_sample"] - da - T["mem_read_drive"], "READ", stream=0, dir=d,
                      addr=kt * M, stride=1, count=M)
            last = t0 + M * (j * kt_n + kt_n - 1)
            ready = last + T["mxm_acc_write"] + M - 1 - T["mxm_accread_access"]
            layout["tiles"][nt] = (_readout_order(config, out), c_base + nt * M)
            layout.setdefault("pending", []).append((ready, mx, acc, out, nt))
    # read-outs in time order, each on all four MEM slices' write engines
    for t_ready, mx, acc, out, nt in sorted(layout.pop("pending"), key=lambda p: (p[0], p[1].position)):
        order, addr = layout["tiles"][nt]
        t_ar = _readout(tp, config, mx, max(t_ready, readout_free), acc, out, M, order, addr)
        readout_free = t_ar + M + _mxm_span(config)   # the other MXM reaches each MEM slice up to that much later
    return tp.program(), layout


def _readout(tp, config, mx, earliest, acc, out, rows, order, addr) -> int:
    """ACCREAD `rows` rows and the four WRITEs that store their byte planes, on the first cycle
    from `earliest` whose queue slots are all free; returns that cycle."""
    T = spec.timing(config)
    t_ar = earliest

    def slots(t):
        return [(mx.position, t)] + [(p, t + T["mxm_accread_drive"] + abs(p - mx.position) - T["mem_write_sample"])
                                     for p in order]
    while any(tp.occupied(p, c) for p, c in slots(t_ar)):
        t_ar += 1
    tp.at(mx.name, t_ar, "ACCREAD", acc=acc, dst=4, ddir=out, count=rows)
    for j, (p, c) in enumerate(slots(t_ar)[1:]):
        tp.at(p, c, "WRITE", stream=4 + j, dir=out, addr=addr, stride=1, count=rows)
    return t_ar


def gemv_program(config: ChipConfig, x: np.ndarray, B: np.ndarray) -> tuple[Program, dict]:
    """y = x @ B for int8 x (1 x K) and B (K x N): weight loads two rows per cycle per MXM."""
    L, T = config.lanes, spec.timing(config)
    K, N = B.shape
    kt_n, nt_n = K // L, N // L
    half = L // 2
    tp = TimedProgram(config)
    b_tiles = B.view(np.uint8).reshape(kt_n, L, nt_n, L)
    x_rows = x.view(np.uint8).reshape(kt_n, L)
    period = half + 1                            # LW (half cycles) + the MATMUL's queue slot
    c_base = config.mem_words // 2
    layout = {"M": 1, "N": N, "lanes": L, "tiles": {}}
    t0 = 8
    pending = []
    for side, (mx, d, a_mem, b_mem) in enumerate(_sides(config)):
        out = 1 - d
        tiles = list(range(side, nt_n, 2))
        order = [(nt, kt) for nt in tiles for kt in range(kt_n)]
        even = np.concatenate([b_tiles[kt, 0::2, nt, :] for nt, kt in order])
        odd = np.concatenate([b_tiles[kt, 1::2, nt, :] for nt, kt in order])
        tp.load(a_mem.name, 0, even)
        tp.load(b_mem.name, 0, odd)
        x_base = len(even)
        tp.load(a_mem.name, x_base, x_rows)
        da, db = abs(a_mem.position - mx.position), abs(b_mem.position - mx.position)
        for i, (nt, kt) in enumerate(order):
            t_lw = t0 + period * i
            t_mm = t_lw + half
            tp.at(mx.name, t_lw, "LW", stream=1, dir=d, row=0, width=2, count=half)
            first = t_lw + T["mxm_sample"]
            tp.at(a_mem.name, first - da - T["mem_read_drive"], "READ", stream=1, dir=d, addr=i * half, stride=1,
                  count=half)
            tp.at(b_mem.name, first - db - T["mem_read_drive"], "READ", stream=2, dir=d, addr=i * half, stride=1,
                  count=half)
            j = tiles.index(nt)
            tp.at(mx.name, t_mm, "MATMUL", stream=0, dir=d, accumulate=int(kt > 0), acc=j, swap=1, count=1)
            tp.at(a_mem.name, t_mm + T["mxm_sample"] - da - T["mem_read_drive"], "READ", stream=0, dir=d,
                  addr=x_base + kt, stride=1, count=1)
        last = t0 + period * (len(order) - 1) + half
        ready = last + T["mxm_acc_write"] - T["mxm_accread_access"]
        pending.append((ready, mx, out, len(tiles), tiles))
    readout_free = 0
    for side, (ready, mx, out, rows, tiles) in enumerate(pending):
        order = _readout_order(config, out)
        addr = c_base + side * rows
        t_ar = _readout(tp, config, mx, max(ready, readout_free), 0, out, rows, order, addr)
        for r, nt in enumerate(tiles):
            layout["tiles"][nt] = (order, addr + r)
        readout_free = t_ar + rows + _mxm_span(config)
    return tp.program(), layout


def read_c(memory_of, layout) -> np.ndarray:
    M, N, L = layout["M"], layout["N"], layout["lanes"]
    C = np.zeros((M, N), np.int32)
    for nt, (order, addr) in layout["tiles"].items():
        planes = np.stack([memory_of(p)[addr:addr + M] for p in order], axis=-1)
        C[:, nt * L:(nt + 1) * L] = planes.copy().view(np.int32).reshape(M, L)
    return C


def sram_words_read(program: Program) -> int:
    """Words the program's READs move (each READ element is one SRAM access)."""
    n = 0
    for words in program.queues.values():
        for w in words:
            op, ops = spec.decode(w)
            if op.mnemonic == "READ":
                n += ops["count"]
    return n


def _mxm_span(config) -> int:
    """Positions from the westmost MXM to the eastmost, both included: how much later than one MXM
    the other one's read-out can reach a MEM slice (the C2C slices beyond them do not count)."""
    ps = [s.position for s in config.slices_of(SliceKind.MXM)]
    return max(ps) - min(ps) + 1
