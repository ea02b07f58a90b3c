"""Graph -> scheduled program: partition, fusion, placement, scheduling, emission, prediction.

    compiled = compile_graph(graph, config)
    compiled.program          # isa.image.Program: queues + constant SRAM segments
    compiled.listing          # annotated assembly (every instruction with its cycle and node)
    compiled.predicted        # cycles and per-unit utilization, known before anything runs

Partition: QuantizeLinear / DequantizeLinear at the graph's boundary run on the host (before
and after the chip); everything else must run on the chip or the model is refused.
Fusion: a matmul followed by (an int32 bias add) (a ReLU) and a requantize becomes one GEMM
kernel with a VXM epilogue; see compiler/kernels.py for the kernels and docs/COMPILER.md.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from isa import quant, spec
from isa.asm import format_instruction
from isa.config import ChipConfig
from isa.image import Program
from isa.timed import ScheduleError, TimedProgram

from . import gather, kernels, refill
from .graph import CompileError, Graph, Node, channel_axis
from .images import View, lower_join, lower_maxpool, lower_reshape, operand
from .kernels import VXM_TYPE
from .layout import NBYTES, Layout, Placed
from .progress import progress
from .refill import RefillError
from .reserve import DoubleBooking, NeverFits



@dataclass
class Compiled:
    config: ChipConfig
    graph: Graph
    program: Program
    placed: dict[str, Placed]          # chip value -> where it lives
    host_loads: list                    # (Placed, graph value, transform or None): what the host writes
    pre: list[Node]                     # host nodes before the chip
    post: list[Node]                    # host nodes after the chip
    chip_inputs: list[str]              # values the host loads at run time (graph inputs / pre outputs)
    chip_outputs: list[str]             # values the host reads back
    predicted: dict
    listing: str
    compile_seconds: float = 0.0
    stats: dict = field(default_factory=dict)
    machine: object = None              # the kernels.Machine it was scheduled on (compiler/gantt.py draws it)


def mxm_utilization(macs: int, cycles: int, config: ChipConfig) -> float:
    """Useful MACs over what the MXMs the compiler uses (the nearest per side) could do in `cycles`."""
    n_mxm = config.mxm_sides
    return round(macs / (cycles * n_mxm * config.lanes ** 2), 4) if cycles and n_mxm else 0.0


def last_effect(mnemonic: str, ops: dict, cycle: int, config: ChipConfig, T: dict | None = None) -> int:
    """The last cycle on which an instruction issued on `cycle` does anything (from its latencies;
    T: spec.timing(config), when the caller has it already)."""
    op = spec.BY_MNEMONIC[mnemonic]
    if not op.latencies:
        return cycle
    T = spec.timing(config) if T is None else T
    return cycle + max(T[k] for k in op.latencies) + spec.elements(mnemonic, ops, config) - 1


def _timed(m, config: ChipConfig) -> TimedProgram:
    tp = TimedProgram(config)
    for pos, cyc, mn, ops, note in m.res.placed:
        if mn == "SYNC":                # a system's start (compiler/system.py): the queue resumes on m.sync_resume
            tp.sync(pos, cyc, m.sync_resume)
        else:
            tp.at(pos, cyc, mn, **ops)
    return tp


def _program(config: ChipConfig, tp: TimedProgram, streams: dict, refills: list) -> Program:
    """Queues as the host loads them (a refilled queue's first queue_depth words), SRAM preloads,
    and each refill's words as a code segment in its MEM slice."""
    p = Program.empty(config)
    p.memory = list(tp.memory)
    refilled = {r.queue for r in refills if r.words}
    for pos, words in streams.items():
        ws = [w for _, w in words]
        p.queues[pos] = ws[:config.queue_depth] if pos in refilled else ws
    for r in sorted(refills, key=lambda r: (r.queue, r.index)):
        if r.words:
            p.add_code(r.queue, r.source, r.addr, [w for _, w in streams[r.queue][r.index:r.index + r.words]])
    p.validate()
    return p


def compile_graph(graph: Graph, config: ChipConfig) -> Compiled:
    t0 = time.perf_counter()
    pre, post, chip = _partition(graph)
    host_vals, needed_out = boundary(graph, pre, post, chip)
    consumers: dict[str, list[Node]] = {}
    for n in chip:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    keep = set(needed_out)
    _lower(kernels.Machine(config, dry=True), graph, chip, consumers, keep, host_vals).sram.check()

    def schedule(pair_weights: bool):
        m = kernels.Machine(config, pair_weights=pair_weights)
        try:
            placed, host_loads, macs = _lower(m, graph, chip, consumers, keep, host_vals).result
        except NeverFits as e:
            raise CompileError(f"node {e}") from None
        return m, placed, host_loads, macs, finish_program(m, graph.constants, host_loads)
    try:
        m, placed, host_loads, macs, (program, streams, refills) = schedule(True)
    except RefillError:
        # paired weight loads keep every read engine busy; a long program needs some for its refills
        m, placed, host_loads, macs, (program, streams, refills) = schedule(False)
    chip_inputs = list(dict.fromkeys(src for _, src, _ in host_loads if src not in graph.constants))
    predicted = _predict(m, config, macs)
    listing = _listing(m, config, program, graph)
    out = Compiled(config, graph, program, placed, host_loads, pre, post, chip_inputs, needed_out, predicted, listing)
    out.compile_seconds = time.perf_counter() - t0
    out.machine = m
    out.stats = {"sram_bytes_used": m.sram.used_bytes(), "sram_bytes": config.sram_bytes,
                 "sram_bytes_reused": m.sram.reused * config.lanes,
                 "instructions": len(m.res.placed),
                 "queue_words": {config.floorplan[p].name: len(w) for p, w in streams.items()},
                 "refills": sum(1 for r in refills if r.words),
                 "instruction_sram_bytes": sum(len(seg.data) for seg in program.memory
                                               if any((c.mem, c.addr) == (seg.position, seg.addr)
                                                      for c in program.code)) * config.lanes}
    return out


def finish_program(m, constants: dict, host_loads: list) -> tuple[Program, dict, list]:
    """A lowered machine's schedule as a program image: instruction refills planned and checked,
    constant tensors loaded. Returns (program, queue streams, refills)."""
    config = m.config
    try:
        refills = refill.plan(m, config)
        m.sram.check()                 # instructions kept in SRAM count too
        tp = _timed(m, config)
        refill.finish(m.res, config, refills, {p: len(w) for p, w in tp.streams().items()})
        tp = _timed(m, config)
        streams = tp.streams()
        refill.check(config, streams, refills)
        for p, src, fn in host_loads:
            if src in constants and p.copies:
                v = constants[src]
                for pos, addr, words in p.segments(fn(v) if fn else v):
                    tp.load(pos, addr, words)
        for (_, stored), p in m.pads.items():
            for pos, addr, words in p.segments(np.full((1, config.lanes), stored, np.uint8)):
                tp.load(pos, addr, words)
        return _program(config, tp, streams, refills), streams, refills
    except (DoubleBooking, ScheduleError) as e:
        raise AssertionError(f"internal compiler error (schedule): {e}") from e
    except ValueError as e:           # ProgramError: queue depth and the like
        if isinstance(e, CompileError):
            raise
        raise CompileError(f"the scheduled program cannot be loaded: {e}") from None


def boundary(graph: Graph, pre: list[Node], post: list[Node], chip: list[Node]) -> tuple[set, list[str]]:
    """(the values the host has before the run, the chip results the host reads after it)."""
    host_vals = set(graph.inputs) | set(graph.constants) | {o for n in pre for o in n.outputs}
    needed_out = [v for v in graph.outputs if v not in host_vals] + \
                 [i for n in post for i in n.inputs if i not in host_vals and i not in graph.constants]
    return host_vals, list(dict.fromkeys(v for v in needed_out if any(v in n.outputs for n in chip)))


def host_values(graph: Graph, host_vals: set, placed: dict, loads: list, lanes: int):
    """value(name): a value's Placed on a chip; a host value (input, constant, host node's result)
    gets one the first time, with no copies yet (the kernel that reads it places them), and is
    listed in `loads` (also value.loads) for the host to write."""
    def value(name: str) -> Placed:
        if name not in placed:
            if name not in host_vals:
                raise AssertionError(f"value {name!r} used before it is computed")
            t = graph.types[name]
            if t.dtype not in NBYTES:
                raise CompileError(f"value {name!r} is {t.dtype}; the chip holds int8, uint8, int16 and int32 tensors")
            placed[name] = Placed(name, t.dtype, Layout(t.shape, NBYTES[t.dtype], lanes), host=True)
            loads.append((placed[name], name, None))
        return placed[name]
    value.loads = loads
    return value


def _lower(m, graph: Graph, chip, consumers, keep, host_vals):
    """Run every chip node's kernel on machine m; m.result = (placed, host loads, MACs)."""
    placed: dict = {}
    host_loads: list = []
    macs = 0
    value = host_values(graph, host_vals, placed, host_loads, m.config.lanes)

    for name, t in graph.inputs.items():
        # a uint8 input that a signed compare reads (a pool, a clip) or that joins other tensors is
        # loaded with an offset of 128 (stored = value - 128), as requantize results are stored, so
        # the VXM orders it and a concat's parts agree; not when a Mul reads it (the product of
        # offset values is not the offset product)
        ops = {c.op for c in consumers.get(name, [])}
        if t.dtype == np.uint8 and ops & {"maxpool", "clip", "join"} and "mul" not in ops:
            value(name).offset = 128
    done: set[str] = set()
    readers = {v: len(cs) for v, cs in consumers.items()}     # liveness: readers not yet lowered
    for n in progress(chip, "scheduling", unit="node") if not m.dry else chip:
        if n.name in done:
            continue
        group = _fuse(n, consumers, keep) if n.op in ("matmul", "conv") else [n]
        done.update(x.name for x in group)
        if n.op in ("matmul", "conv"):
            macs += _lower_matmul(m, graph, group, value, placed)
        elif n.op in LOWER:
            LOWER[n.op](m, graph, n, value, placed)
        elif n.op in ("reshape", "transpose"):
            lower_reshape(m, graph, n, value, placed, consumers, keep)
        elif n.op == "requantize":
            raise CompileError(f"node {n.name!r} (requantize): the chip requantizes MatMul results only (its "
                               f"input {n.inputs[0]!r} does not come straight from a MatMul)")
        else:
            raise CompileError(f"node {n.name!r} ({n.op}): not supported on the chip")
        for x in group:                 # a chip result whose last reader this was: its words are free
            for i in x.inputs:
                readers[i] -= 1
                p = placed.get(i)
                if readers[i] == 0 and i not in keep and isinstance(p, Placed):
                    m.release(p)
    m.result = placed, host_loads, macs
    return m


# ---- partition and fusion -------------------------------------------------------------------
def _partition(graph: Graph):
    host = set(graph.inputs) | set(graph.constants)
    pre, post, chip = [], [], []
    chip_out: set[str] = set()
    for n in graph.nodes:
        if n.on_host:
            if all(i in host for i in n.inputs):
                pre.append(n)
                host.update(n.outputs)
            else:
                post.append(n)
        else:
            for i in n.inputs:
                if any(i in p.outputs for p in post):
                    p = next(p for p in post if i in p.outputs)
                    raise CompileError(f"node {p.name!r} ({p.op}): a float operation between chip operations; "
                                       f"the chip runs integer work only (QuantizeLinear / DequantizeLinear belong "
                                       f"at the graph's boundary or inside a QDQ pattern around MatMul/Gemm)")
            chip.append(n)
            chip_out.update(n.outputs)
    return pre, post, chip


def _fuse(mm: Node, consumers, keep) -> list[Node]:
    """matmul [add int32 bias] [relu] [requantize [clip]]: the nodes one GEMM kernel runs."""
    group = [mm]
    cur = mm.outputs[0]

    def single(v):
        c = consumers.get(v, [])
        return c[0] if len(c) == 1 and v not in keep else None
    nxt = single(cur)
    if nxt is not None and nxt.op == "add":
        group.append(nxt)
        cur = nxt.outputs[0]
        nxt = single(cur)
    if nxt is not None and nxt.op == "relu":
        group.append(nxt)
        cur = nxt.outputs[0]
        nxt = single(cur)
    if nxt is not None and nxt.op == "requantize":
        group.append(nxt)
        nxt = single(nxt.outputs[0])
        if nxt is not None and nxt.op == "clip":
            group.append(nxt)
    elif len(group) > 1:
        # an add/relu on int32 that is not requantized afterwards cannot be stored by the VXM
        # (int32 results reach SRAM from the MXM only); leave them to be refused one by one
        group = [mm]
    return group


def _lower_matmul(m, graph: Graph, group: list[Node], value, placed, out_copies=None) -> int:
    """Lower a fused GEMM group on machine m; `out_copies`: where its result goes (copies made by
    the caller, e.g. a column range of a larger tensor: compiler/system.py), instead of new ones."""
    mm = group[0]
    label = mm.name
    L = m.config.lanes
    g = _gemm_operands(m, graph, mm, value, placed)
    a, b_name, b_zp, kt_n = g.a, g.b_name, g.b_zp, g.kt_n
    out_t = graph.types[mm.outputs[0]]
    nb = 1 if len(out_t.shape) != 3 else out_t.shape[0]
    # B: a weight copy per MXM, K padded to whole tiles with b's zero point (contributes 0)
    key = (mm.op, b_name, b_zp, g.key)                  # K padding holds this matmul's zero point
    bmat = placed.get(("weight",) + key)
    if bmat is None:
        bmat = Placed(b_name, g.b_dtype, Layout(g.b_shape, 1, L, kt_n * L), pad=b_zp, host=True)
        placed[("weight",) + key] = bmat
        value.loads.append((bmat, b_name, g.b_fn))
    pairs = None
    if m.pair_weights and Layout(out_t.shape, 1, L).rows < L and nb == 1 and len(g.b_shape) == 2 and L % 2 == 0:
        # weight-load bound: B's even and odd rows in two slices, loaded two rows a cycle (LW width 2)
        pairs = placed.get(("weight rows",) + key)
        if pairs is None:
            kp, n = kt_n * L, g.b_shape[-1]

            def rows_of(v, j, kp=kp, zp=b_zp, fn=g.b_fn):
                v = np.asarray(fn(v) if fn else v)
                full = np.concatenate([v, np.full((kp - v.shape[0], v.shape[1]), zp, v.dtype)])
                return full[j::2]
            pairs = tuple(Placed(f"{b_name}#rows{j}", g.b_dtype, Layout((kp // 2, n), 1, L), pad=b_zp, host=True)
                          for j in (0, 1))
            placed[("weight rows",) + key] = pairs
            for j, pp in enumerate(pairs):
                value.loads.append((pp, b_name, lambda v, j=j: rows_of(v, j)))
    a_cfg = _mxm_cfg(a, g.a_zp)
    b_cfg = _mxm_cfg(bmat, b_zp)
    epi = kernels.Epilogue()
    bias_src = None                         # (constant name, N, values) of a fused bias
    clip = None                             # (lo, hi) of a fused clip, stored int8 bounds
    res = mm.outputs[0]
    for n in group[1:]:
        if n.op == "add":
            other = [i for i in n.inputs if i != res]
            if len(other) != 1 or other[0] not in graph.constants:
                raise CompileError(f"node {n.name!r} (add): an int32 add after a MatMul must add a constant bias")
            bias = graph.constants[other[0]]
            N = out_t.shape[channel_axis(out_t.shape)]
            along = [k for k, d in enumerate((1,) * (len(out_t.shape) - bias.ndim) + bias.shape) if d != 1]
            if bias.size != N or along not in ([], [channel_axis(out_t.shape)]):
                raise CompileError(f"node {n.name!r} (add): bias shape {bias.shape} is not one value per output "
                                   f"channel ({N})")
            bias_src = (other[0], N, bias)
            if not _bias_cut(m):            # else decided below: folded into the product if it can be
                epi.bias = _bias_vector(m, value, other[0], N)
        elif n.op == "relu":
            epi.relu = True
        elif n.op == "clip":                # after the requantize: bounds in the stored (int8) domain
            off = 128 if np.dtype(graph.types[n.outputs[0]].dtype) == np.uint8 else 0
            clip = (n.attrs["lo"] - off, n.attrs["hi"] - off)
        else:
            res_dt = np.dtype(n.attrs["dtype"])
            offset = 128 if res_dt == np.uint8 else 0
            epi.dtype = int(spec.DType.I16) if res_dt == np.int16 else int(spec.DType.I8)
            zp = n.attrs["zero_point"] - offset
            if len(n.inputs) == 3:      # per channel: M and (s, zp) per lane, loaded like the bias
                N = out_t.shape[channel_axis(out_t.shape)]
                epi.vectors = {"multiplier": _lane_vector(m, value, f"{n.name}/multiplier", n.inputs[1], N,
                                                          lambda v: np.asarray(v, np.int32)),
                               "shift/zp": _lane_vector(m, value, f"{n.name}/shift/zp", n.inputs[2], N,
                                                        lambda v, zp=zp: quant.pack_shift_zp(v, zp))}
                epi.requant = (None, None, zp)
            else:
                epi.requant = (n.attrs["multiplier"], n.attrs["shift"], zp)
        res = n.outputs[0]
    if epi.requant is not None:
        lo8, hi8 = spec.dtype_range(spec.DType(epi.dtype))
        floor = max(epi.requant[2] if epi.relu else lo8, clip[0] if clip else lo8)
        # MAX at the floor (ReLU: the zero point), MIN at a clip's ceiling; a bound at the result
        # range's end is the requantize's own saturation
        epi.relu, epi.floor = floor > lo8, floor
        epi.ceil = clip[1] if clip and clip[1] < hi8 else None
    t_out = graph.types[res]
    out = Placed(res, t_out.dtype, Layout(t_out.shape, NBYTES[t_out.dtype], L),
                 offset=128 if t_out.dtype == np.uint8 and epi.requant else 0)
    words = out.layout.words()
    if out_copies is not None:
        out.copies = out_copies
    elif epi.requant is None:
        ps = m.side_mems[kernels.W][:2] + m.side_mems[kernels.E][:2]
        if len(ps) < 4:
            raise CompileError(f"node {label!r} (matmul): an int32 result needs 4 MEM slices, config "
                               f"{m.config.name!r} has {len(ps)}")
        out.copies = [m.result_copy(out, ps, words)]
    elif out.layout.nbytes == 2:        # int16: the other side from the last one's (an int16 add reads both)
        m.wide_side = 1 - m.wide_side
        out.copies = m.result_copies(out, words, m.wide_side)
    else:
        out.copies = m.result_copies(out, words, m.lighter_side())
    placed[res] = out
    bias_tile = None
    if bias_src is not None and epi.bias is None and epi.requant is not None:
        bias_tile = _bias_tile(m, value, label, bias_src, a_cfg, b_cfg)
    if bias_src is not None and epi.bias is None and bias_tile is None:
        epi.bias = _bias_vector(m, value, *bias_src[:2])
    kernels.gemm(m, a, bmat, out, a_cfg, b_cfg, epi, label, pairs, g.a_rows, g.a_pad, bias_tile)
    return g.macs


def _bias_cut(m) -> bool:
    """Whether a bias and requantize epilogue would be cut through SRAM (one op at a time: one
    ALU, or no SXM to return a result to the VXM). The bias then goes into the product instead
    (`_bias_tile`): an MXM pass of the rows costs less than a VXM pass with an int32 intermediate
    written to four MEM slices and read back (digits on `fpga`: 4,965 cycles against 5,741), and
    a side with fewer than four MEM slices could not hold that intermediate at all."""
    return not (m.sxm and m.config.vxm_alus >= 2 and m.config.sxm_width >= 4)


def _bias_vector(m, value, name: str, n: int) -> Placed:
    """The bias as an int32 per output column, for the read-outs' VXM ADD."""
    return _lane_vector(m, value, name, name, n, lambda v: np.asarray(v).reshape(n).astype(np.int32))


def _read_zp(cfg: tuple[int, int]) -> int:
    """The zero point an MXMCFG (zero point field, signed) subtracts, as a number."""
    zp, signed = cfg
    return (zp & 0xFF) - (256 if signed and zp & 0x80 else 0)


def _read_range(cfg: tuple[int, int]) -> tuple[int, int]:
    """The values the MXM reads from a byte under MXMCFG: byte as int8 or uint8, minus the zero
    point of the same type."""
    lo, hi = (-128, 127) if cfg[1] else (0, 255)
    return lo - _read_zp(cfg), hi - _read_zp(cfg)


def bias_rows(bias: np.ndarray, lanes: int, x_range: tuple[int, int], w_range: tuple[int, int]):
    """A bias as one more K tile of the product: activations x (one value per row, the same for
    every output row) and weights w (row x column) with sum_r x[r] * w[r][c] = bias[c] exactly,
    x and w within what the MXM reads (x_range, w_range; each holds 0). x is the largest value on
    about half the rows, the most negative on the others (so that a bias of either sign is in
    reach whatever signs the weights can take), and 1 (or -1) on one row, whose weight takes the
    residue. None when a bias is out of the tile's reach (|bias| up to about (lanes - 1) * 128 *
    255 where both operands have both signs; less where they do not, and none of a sign the
    ranges cannot make: uint8 activations and weights with zero point 0 sum to >= 0)."""
    (xlo, xhi), (wlo, whi) = x_range, w_range
    u = 1 if xhi >= 1 else -1
    k_neg = ((lanes - 1) // 2 if xhi >= 2 else lanes - 1) if xlo <= -2 else 0
    k_pos = lanes - 1 - k_neg if xhi >= 2 else 0
    x = np.array([xhi] * k_pos + [xlo] * k_neg + [u], np.int64)
    w = np.zeros((lanes, len(bias)), np.int64)

    def share(total, rows):
        """`total` over `rows` weights, each within the range (greedy)."""
        out = []
        for _ in range(rows):
            out.append(min(max(total, wlo), whi))
            total -= out[-1]
        assert total == 0
        return out

    for c, b in enumerate(np.asarray(bias, np.int64)):
        found = None
        for n in sorted(range(k_neg * wlo, k_neg * whi + 1), key=abs):    # the negative rows' sum
            r = int(b) - xlo * n                     # = xhi * p + u * t
            if k_pos == 0:
                if wlo <= u * r <= whi:
                    found = (0, n, u * r)
                    break
                continue
            t0 = (u * r) % xhi                         # u * t = r (mod xhi)
            for t in range(t0 + (wlo - t0) // xhi * xhi, whi + 1, xhi):
                p, q = divmod(r - u * t, xhi)
                if t >= wlo and q == 0 and k_pos * wlo <= p <= k_pos * whi:
                    found = (p, n, t)
                    break
            if found:
                break
        if found is None:
            return None
        p, n, t = found
        w[:k_pos + k_neg + 1, c] = share(p, k_pos) + share(n, k_neg) + [t]
    return np.concatenate([x, np.zeros(lanes - len(x), np.int64)]), w


def _bias_tile(m, value, label: str, bias_src, a_cfg, b_cfg):
    """The bias folded into the product as one more K tile (`bias_rows`), so that the MXM's sum
    comes out with it and the epilogue starts at the requantize: (activation word, weight tile)
    as host constants, or None when the bias is out of one tile's reach."""
    name, N, bias = bias_src
    L = m.config.lanes
    rows = bias_rows(np.asarray(bias, np.int64).reshape(N), L, _read_range(a_cfg), _read_range(b_cfg))
    if rows is None:
        return None
    # held as what the MXM reads plus the zero point; the bias is a graph constant (refused
    # otherwise above), so its rows are made once, here
    x, w = (r + _read_zp(cfg) for r, cfg in zip(rows, (a_cfg, b_cfg)))
    dts = [np.dtype(np.int8 if cfg[1] else np.uint8) for cfg in (a_cfg, b_cfg)]
    xs = Placed(f"{label}#bias x", dts[0], Layout((1, L), 1, L), host=True)
    ws = Placed(f"{label}#bias w", dts[1], Layout((L, N), 1, L), pad=_read_zp(b_cfg), host=True)
    value.loads.append((xs, name, lambda v: x.reshape(1, L)))
    value.loads.append((ws, name, lambda v: w))
    return xs, ws


@dataclass
class GemmOperands:
    """What a GEMM kernel multiplies: A (a tensor on the chip, read in order or through `a_rows`,
    compiler/gather.py) and B (constant `b_name`, made into the K x N matrix `b_shape` by `b_fn`)."""
    a: Placed
    b_name: str
    b_shape: tuple
    b_dtype: np.dtype
    a_zp: int
    b_zp: int
    kt_n: int                       # K tiles
    macs: int                       # useful multiply-accumulates
    b_fn: object = None             # constant -> B matrix (None: as it is)
    a_rows: object = None           # (batch, K tile) -> A's words for every output row
    a_pad: int | None = None        # stored byte of padding (gather.PAD)
    key: tuple = ()                 # what makes this B matrix different from another of b_name


def _gemm_operands(m, graph: Graph, mm: Node, value, placed) -> GemmOperands:
    """A MatMul's operands as they are; a convolution's as a GEMM over output pixels, K tile
    (kh, kw, input channel tile) reading input pixels at shifted addresses; a MatMul of a flattened
    image reading one pixel per K tile, its weight rows reordered to match."""
    label, L = mm.name, m.config.lanes
    a_name, b_name = mm.inputs
    a = placed[a_name] if a_name in placed else value(a_name)
    ta, tb = graph.types[a_name], graph.types[b_name]
    if b_name not in graph.constants and b_name not in graph.inputs and not (b_name in placed and placed[b_name].host):
        raise CompileError(f"node {label!r} ({mm.op}): B ({b_name!r}) must be a constant or a graph input "
                           f"(weights are loaded into SRAM by the host)")
    if mm.op == "conv":
        at = mm.attrs
        xl = a.layout
        oc, cg, kh, kw = tb.shape
        n, c, _, _ = ta.shape
        _, _, oh, ow = graph.types[mm.outputs[0]].shape
        ct, kt_n = xl.tiles, kh * kw * xl.tiles
        og, wzp = oc // at["group"], at["w_zp"]

        def b_fn(w, ct=ct, c=c, cg=cg, og=og, wzp=wzp):
            """W (OC, C/g, KH, KW) -> rows ((kh * KW + kw) * tiles + ct) * lanes + c', columns OC; a
            weight of another group, or of a lane past C, holds the zero point (contributes 0)."""
            b = np.full((kh, kw, ct * L, oc), wzp, np.int64)
            for o in range(oc):
                g0 = (o // og) * cg
                b[:, :, g0:g0 + cg, o] = np.asarray(w)[o].transpose(1, 2, 0)
            return b.reshape(kh * kw * ct * L, oc).astype(w.dtype)

        def a_rows(bi, kt, xl=xl, at=at):
            return gather.conv_tile(xl, (oh, ow), (kh, kw), at["strides"], at["pads"], at["dilations"], kt)
        return GemmOperands(a, b_name, (kt_n * L, oc), tb.dtype, at["x_zp"], wzp, kt_n,
                            n * oh * ow * oc * cg * kh * kw, b_fn,
                            functools.lru_cache(None)(a_rows), _stored(a, at["x_zp"]), ("conv",))
    if isinstance(a, View):
        x = a.src                     # a flattened image: K tile (pixel, channel tile)
        n, c, h, w = x.layout.shape
        ct = x.layout.tiles
        if len(tb.shape) != 2:
            raise CompileError(f"node {label!r} (matmul): a flattened image multiplies a 2-D weight matrix")

        def b_fn(v, c=c, hw=h * w, ct=ct, chw=a.order == "chw"):
            """Rows c * H*W + p (ONNX's flatten of NCHW) or p * C + c (of NHWC) -> (p * tiles + ct) *
            lanes + c'."""
            v = np.asarray(v)
            out = np.full((hw, ct * L, v.shape[1]), mm.attrs["b_zp"], v.dtype)
            out[:, :c] = v.reshape(c, hw, -1).transpose(1, 0, 2) if chw else v.reshape(hw, c, -1)
            return out.reshape(hw * ct * L, -1)

        def a_rows(bi, kt, xl=x.layout):
            return gather.flatten_tile(xl, kt)
        return GemmOperands(x, b_name, (h * w * ct * L, tb.shape[1]), tb.dtype, mm.attrs["a_zp"], mm.attrs["b_zp"],
                            h * w * ct, n * c * h * w * tb.shape[1],
                            b_fn, functools.lru_cache(None)(a_rows), None, ("flatten", a.order, c, h * w))
    if len(ta.shape) < 2 or len(tb.shape) < 2:
        raise CompileError(f"node {label!r} (matmul): 1-D operands are not supported; reshape to 2-D")
    if len(ta.shape) > 3 or len(tb.shape) > 3:
        raise CompileError(f"node {label!r} (matmul): at most one batch dimension is supported")
    out_t = graph.types[mm.outputs[0]]
    nb = int(np.prod(out_t.shape[:-2])) if len(out_t.shape) > 2 else 1
    for t, which in ((ta, "A"), (tb, "B")):
        tnb = int(np.prod(t.shape[:-2])) if len(t.shape) > 2 else 1
        if tnb not in (1, nb):
            raise CompileError(f"node {label!r} (matmul): batch of {which} {t.shape} does not match the output")
    K = ta.shape[-1]
    return GemmOperands(a, b_name, tb.shape, tb.dtype, mm.attrs["a_zp"], mm.attrs["b_zp"], -(-K // L),
                        nb * ta.shape[-2] * K * tb.shape[-1])


def _stored(p: Placed, value: int) -> int:
    """The byte a tensor stores for `value` (uint8 requantize results carry an offset of 128)."""
    return (int(value) - p.offset) & 0xFF


def _mxm_cfg(p: Placed, zp: int) -> tuple[int, int]:
    """(MXMCFG zero point field, signed) for the stored bytes of a tensor with zero point zp."""
    if p.dtype == np.int8:
        return zp, 1
    if p.offset == 128:                       # stored = u - 128: read as int8, zero point zp - 128
        return zp - 128, 1
    return zp, 0


def _lane_vector(m, value, name: str, src: str, n: int, fn) -> Placed:
    """An int32 value per output column (a bias, a per-channel M or shift/zp word) that the read-outs
    load into a register per lane: four byte planes in the west side's first slice, written by
    the host from constant `src` through `fn`."""
    p = Placed(name, np.dtype(np.int32), Layout((n,), 4, m.config.lanes), host=True)
    m.host_copy(p, [m.side_mems[kernels.W][0]] * 4)
    value.loads.append((p, src, fn))
    return p


def _broadcast_operand(m, graph: Graph, n: Node, name: str, x: Placed, value, placed):
    """(the operand as held, its word per output word or None): a constant or input of fewer axes
    is held with the output's number of axes; a repeated row is a READ of stride 0."""
    t_out = graph.types[n.outputs[0]]
    shape = graph.types[name].shape
    if shape == t_out.shape:
        return x, None
    if len(shape) < len(t_out.shape):
        if not x.host or x.copies:
            raise CompileError(f"node {n.name!r} ({n.op}): {name!r} {list(shape)} has fewer axes than the result "
                               f"{list(t_out.shape)}; on the chip only a constant or a graph input can be broadcast so")
        full = (1,) * (len(t_out.shape) - len(shape)) + tuple(shape)
        key = ("broadcast", name, full)
        if key not in placed:
            placed[key] = Placed(f"{name}#{'x'.join(map(str, full))}", x.dtype, Layout(full, x.layout.nbytes,
                                                                                        x.layout.lanes), host=True)
            value.loads.append((placed[key], name, lambda v, full=full: np.asarray(v).reshape(full)))
        x = placed[key]
    words = gather.broadcast(x.layout, Layout(t_out.shape, x.layout.nbytes, x.layout.lanes))
    if words is None:
        raise CompileError(f"node {n.name!r} ({n.op}): broadcasting {list(shape)} to {list(t_out.shape)} repeats "
                           f"values across channels (lanes); the chip broadcasts along rows and pixels only")
    return x, words


def _lower_elementwise(m, graph: Graph, n: Node, value, placed) -> None:
    t_out = graph.types[n.outputs[0]]
    ins = [operand(n, i, value, placed) for i in n.inputs]
    nbytes = NBYTES.get(t_out.dtype)
    if nbytes == 4:
        raise CompileError(f"node {n.name!r} ({n.op}): int32 {n.op} runs only fused after a MatMul, as a bias or "
                           f"ReLU followed by a requantize (int32 operands cannot be streamed from SRAM here)")
    words = [None] * len(ins)
    if any(graph.types[i].shape != t_out.shape for i in n.inputs):
        if nbytes != 1:
            raise CompileError(f"node {n.name!r} ({n.op}): broadcasting is supported on 8-bit tensors")
        ins, words = zip(*(_broadcast_operand(m, graph, n, i, x, value, placed) for i, x in zip(n.inputs, ins)))
        ins, words = list(ins), list(words)
    if nbytes is None:
        raise CompileError(f"node {n.name!r} ({n.op}): type {t_out.dtype} is not supported on the chip")
    if n.op == "relu" and t_out.dtype.kind == "u":     # ReLU of an unsigned value is the value
        if ins[0].host and not ins[0].copies:           # a host value the chip never touched: give it a home
            m.host_copy(ins[0], m.side_copy_slices(nbytes, kernels.E))
        ins[0].pinned = True                            # one tensor, two names
        placed[n.outputs[0]] = ins[0]
        return
    if n.op == "mul" and any(x.offset for x in ins):
        bad = next(x for x in ins if x.offset)
        raise CompileError(f"node {n.name!r} (mul): {bad.name!r} is a uint8 requantize result, stored as value - "
                           f"{bad.offset}; the VXM multiplies stored values, so the product would be wrong")
    offset = sum(x.offset for x in ins) % 256 if n.op == "add" else 0
    out = Placed(n.outputs[0], t_out.dtype, Layout(t_out.shape, nbytes, m.config.lanes), offset=offset)
    placed[n.outputs[0]] = out
    kernels.elementwise(m, n.op, ins, out, VXM_TYPE[nbytes], n.name, words=words)


def _passes(m, x: Placed, steps, label: str) -> Placed:
    """Elementwise passes one after another, each on the last one's result: steps of (op, immediate,
    result, operand type, result type); an intermediate is released once the next pass has read it."""
    cur = x
    for op, imm, out, dtype, out_dtype in steps:
        kernels.elementwise(m, op, [cur], out, dtype, label, imm=imm, out_dtype=out_dtype)
        if cur is not x:
            m.release(cur)
        cur = out
    return cur


def _lower_round_shift(m, graph: Graph, n: Node, value, placed) -> None:
    """int16 -> int8 rounded: ADD the half, SRA, ADD the stored zero point (if any), CVT with
    saturation: an elementwise pass each, the constants set by VSET (graph.round_shift)."""
    x = operand(n, n.inputs[0], value, placed)
    t = graph.types[n.outputs[0]]
    a = n.attrs
    off = 128 if t.dtype == np.uint8 else 0
    L, i8, i16 = m.config.lanes, VXM_TYPE[1], VXM_TYPE[2]
    ops = [("add", 1 << (a["bits"] - 1)), ("sra", a["bits"])] + (
        [("add", a["zero_point"] - off)] if a["zero_point"] != off else [])
    steps = [(op, imm, Placed(f"{n.outputs[0]}.{k}", np.dtype(np.int16), Layout(t.shape, 2, L)), i16, i16)
             for k, (op, imm) in enumerate(ops)]
    steps.append(("cvt", None, Placed(n.outputs[0], t.dtype, Layout(t.shape, 1, L), offset=off), i16, i8))
    placed[n.outputs[0]] = _passes(m, x, steps, n.name)


def _lower_clip(m, graph: Graph, n: Node, value, placed) -> None:
    """A clip on its own (not after a MatMul's requantize): MAX at lo into an intermediate, then
    MIN at hi, each an elementwise pass with its bound in a register. The ALU compares signed, so
    int8 values, or uint8 ones stored with an offset of 128 (a requantize result), only."""
    x = operand(n, n.inputs[0], value, placed)
    t = graph.types[n.outputs[0]]
    if t.dtype == np.uint8 and x.offset != 128:
        raise CompileError(f"node {n.name!r} (clip): a uint8 tensor stored as is compares as signed on the VXM; "
                           f"clip int8 values, or uint8 ones a requantize produced")
    L, i8 = m.config.lanes, VXM_TYPE[1]
    steps = [(op, bound - x.offset, Placed(name, t.dtype, Layout(t.shape, 1, L), offset=x.offset), i8, i8)
             for op, bound, name in (("max", n.attrs["lo"], f"{n.outputs[0]}.max"), ("min", n.attrs["hi"], n.outputs[0]))]
    placed[n.outputs[0]] = _passes(m, x, steps, n.name)


# the lowering of each graph op that is one node's work (matmul and conv groups, reshapes: _lower)
LOWER = {"add": _lower_elementwise, "mul": _lower_elementwise, "relu": _lower_elementwise, "clip": _lower_clip,
         "maxpool": lower_maxpool, "join": lower_join, "round_shift": _lower_round_shift}


# ---- prediction and listing ----------------------------------------------------------------------
def _predict(m, config: ChipConfig, macs: int) -> dict:
    placed = m.res.placed
    cycles = max((last_effect(mn, ops, c, config, m.T) for _, c, mn, ops, _ in placed), default=-1) + 1
    if m.sync_resume is not None:       # a queue parked at the start SYNC is idle from its release on
        cycles = max(cycles, m.sync_resume)
    busy: dict[str, int] = {}
    for key, spans in m.res.intervals.items():
        if key[0] == "engine":
            name = f"{config.floorplan[key[1]].name}.{key[2]}"
            busy[name] = sum(hi - lo + 1 for lo, hi, _ in spans)
    n_mxm = len(m.mxm)
    mm_cycles = sum(ops["count"] for _, _, mn, ops, _ in placed if mn == "MATMUL")
    pred = {"cycles": cycles, "macs": macs,
            "mxm_utilization": mxm_utilization(macs, cycles, config),
            "mxm_busy": round(mm_cycles / (cycles * n_mxm), 4) if cycles and n_mxm else 0.0,
            "units": {k: round(v / cycles, 4) for k, v in sorted(busy.items())} if cycles else {}}
    return pred


def _listing(m, config: ChipConfig, program: Program, graph: Graph) -> str:
    by_slot = {(p, c): note for p, c, _, _, note in m.res.placed}
    lines = [f"; program for config {config.name}, ISA {spec.ISA_VERSION[0]}.{spec.ISA_VERSION[1]}",
             "; every instruction with its issue cycle and the graph node it serves",
             f".config {config.name}"]
    for pos in sorted(program.queues):
        sl = config.floorplan[pos]
        lines.append(f".queue {sl.name}")
        # where the stream continues in SRAM: word index -> (MEM slice, address) of each code segment
        starts, at = {}, len(program.queues[pos])
        for c in program.code:
            if c.queue == pos:
                starts[at] = c
                at += c.words
        cycle = 0
        for i, w in enumerate(program.instruction_stream(pos)):
            if i in starts:
                c = starts[i]
                lines.append(f".code {config.floorplan[c.mem].name} addr={c.addr:#x}"
                             f"{'':<40} ; words {i}..{i + c.words - 1}, fetched during the run")
            text = format_instruction(w, sl.kind, config)
            op, ops = spec.decode(w)
            if op.mnemonic == "NOP":
                lines.append(f"    {text}")
                cycle += ops["cycles"]
                continue
            lines.append(f"    {text:<72} ; cycle {cycle}: {by_slot.get((pos, cycle), '')}")
            cycle += 1
    return "\n".join(lines) + "\n"
