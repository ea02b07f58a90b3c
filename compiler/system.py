"""One model over a system of chips (isa/system.py): stages on chips, transfers over the links, one
program per chip, all on one clock of program time (the chips start together: sim/system.py).

    sc = compile_system(graph, system)          # mode: "auto" | "one" | "pipeline" | "tensor"
    sc.chips[i].program, sc.chips[i].listing    # chip i's image and annotated listing
    sc.plan                                     # per stage: its chips, column ranges, and why
    sc.predicted                                # system cycles, per chip cycles and utilizations

Stages. The chip work is cut into the kernels compile_graph lowers (a fused GEMM group, an
elementwise node). A stage runs on one chip (pipeline parallel: consecutive stages on different
chips, activations over the links), or its output columns are split over several chips (tensor
parallel: each chip holds its columns of the weights and computes those columns of the result
from the whole input). `plan_stages` chooses, from the weights each stage holds and the chips'
SRAM, and keeps every transfer between neighbours: a chip needing a value computed elsewhere must
have a link to each chip that computes part of it.

Values. A value a chip needs whole is allocated whole there (as a chip result: two copies by the
VXM). Column pieces computed on that chip write straight into their tiles of it; pieces from
other chips arrive over a link into theirs: on the producer a READ streams the piece's words to
its C2C slice and a SEND puts them on the link (at most c2c_depth vectors per SEND); on the
consumer a RECV, sampled no earlier than the link latency after each vector's link time, drives
them to WRITEs. The consumer's next stage waits until the last write has landed. A receiving
link end never holds more vectors than its buffer (isa/link.py `waiting`); the sender waits
when it would. Sends, receives, link engines and the streams to and from the C2C slices are
booked in each chip's reservation table like everything else, so a link used twice at once is a
DoubleBooking (an internal compiler error).
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.image import Program
from isa.link import LinkFormat, waiting
from isa.system import System

from . import kernels
from .compile import (_fuse, _listing, _lower_elementwise, _lower_matmul, _partition, _predict,
                      boundary, finish_program, host_values)
from .graph import CompileError, Graph, Node, TensorType
from .layout import NBYTES, Layout, Placed
from .microbatch import batch_rows, split_rows
from .progress import progress
from .refill import RefillError
from .reserve import Bundle, NeverFits

MODES = ("auto", "one", "pipeline", "tensor")
WEIGHT_SHARE = 0.75      # of a chip's SRAM a stage's weights may take (the rest: activations, code)


@dataclass
class Stage:
    """A kernel group and where it runs: `cols[i]` = output columns [n0, n1) on chips[i]."""
    nodes: list[Node]
    chips: tuple[int, ...]
    cols: tuple[tuple[int, int], ...]
    weight_bytes: int = 0
    reason: str = ""

    @property
    def name(self) -> str:
        return self.nodes[0].name

    @property
    def kind(self) -> str:
        return "tensor" if len(self.chips) > 1 else "pipeline"


@dataclass
class Transfer:
    value: str
    src: int
    dst: int
    link: str                     # "chip0.C2C_E0 -> chip1.C2C_W0"
    words: int                    # vectors
    plane: int                    # the byte plane they carry
    first_send: int
    last_take: int


@dataclass
class ChipPart:
    """What one chip runs: its machine (schedule), values, host loads; then its program."""
    index: int
    config: ChipConfig
    m: kernels.Machine
    placed: dict = field(default_factory=dict)      # value -> Placed (whole, or a piece by its own name)
    host_loads: list = field(default_factory=list)
    macs: int = 0
    program: Program | None = None
    listing: str = ""
    predicted: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


@dataclass
class SystemCompiled:
    system: System
    graph: Graph
    mode: str
    plan: list[Stage]
    chips: list[ChipPart]
    transfers: list[Transfer]
    constants: dict                 # the graph's constants and the column slices of split weights
    pre: list[Node]
    post: list[Node]
    outputs: dict                   # chip output value -> [(chip, (n0, n1), Placed piece)]
    predicted: dict
    compile_seconds: float = 0.0
    micro_batches: int = 1          # the batch's row slices streaming through the stages

    def plan_report(self) -> list[dict]:
        return [{"stage": s.name, "nodes": [n.name for n in s.nodes], "kind": s.kind, "chips": list(s.chips),
                 "columns": [list(c) for c in s.cols], "weight_bytes": s.weight_bytes, "why": s.reason}
                for s in self.plan]


# the graph ops a system does not split or place yet (docs/DECISIONS.md, "Convolutions by MEM addressing")
ONE_CHIP_OPS = ("conv", "maxpool", "reshape", "transpose", "join")


# ---- stages -------------------------------------------------------------------------------------
def _groups(graph: Graph, chip_nodes: list[Node], keep: set) -> list[list[Node]]:
    consumers: dict[str, list[Node]] = {}
    for n in chip_nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    done, out = set(), []
    for n in chip_nodes:
        if n.name in done:
            continue
        g = _fuse(n, consumers, keep) if n.op == "matmul" else [n]
        done.update(x.name for x in g)
        out.append(g)
    return out


def _weight_bytes(graph: Graph, group: list[Node], lanes: int) -> int:
    mm = group[0]
    if mm.op != "matmul":
        return 0
    tb = graph.types[mm.inputs[1]]
    k_p = -(-tb.shape[-2] // lanes) * lanes
    n = tb.shape[-1]
    nb = int(np.prod(tb.shape[:-2])) if len(tb.shape) > 2 else 1
    bias = 4 * n if any(x.op == "add" for x in group) else 0
    return nb * k_p * n + bias


def _splittable(graph: Graph, group: list[Node], lanes: int) -> str | None:
    """Why a group's output columns cannot be split over chips (None: they can)."""
    mm = group[0]
    if mm.op != "matmul":
        return f"{mm.op} runs whole on one chip"
    if mm.inputs[1] not in graph.constants:
        return "its weights are a graph input"
    if len(graph.types[group[-1].outputs[0]].shape) != 2:
        return "a batched (3-D) result is split only by batch, not supported across chips"
    if graph.types[group[-1].outputs[0]].dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        return "an int32 result is not sent over links (requantize it first)"
    if graph.types[mm.inputs[1]].shape[-1] < 2 * lanes:
        return f"fewer than {2 * lanes} output columns"
    return None


def _columns(n: int, k: int, lanes: int) -> tuple[tuple[int, int], ...]:
    """n columns in k ranges of whole tiles, as even as tiles allow."""
    tiles = -(-n // lanes)
    edges = [round(i * tiles / k) * lanes for i in range(k + 1)]
    return tuple((min(a, n), min(b, n)) for a, b in zip(edges, edges[1:]))


def plan_stages(graph: Graph, groups: list[list[Node]], system: System, mode: str,
                widths: dict[int, int] | None = None) -> list[Stage]:
    """Chips for each group. `widths` (group index -> chips) forces a split (the SRAM check's
    retry); otherwise a group is split over as many chips as its weights need (WEIGHT_SHARE of a
    chip each), or, in mode 'tensor', over as many as can serve it. Every chip that needs a value
    must have a link to each chip computing part of it; among the sets that do, a stage takes
    chips its predecessor did not use (a pipeline), the least loaded, and ones that leave the next
    stage such a set of its own."""
    n_chips = len(system.chips)
    lanes = system.config(0).lanes
    cap = int(WEIGHT_SHARE * min(system.config(i).sram_bytes for i in range(n_chips)))
    adjacent = {(lk.a.chip, lk.b.chip) for lk in system.links} | {(lk.b.chip, lk.a.chip) for lk in system.links}

    def serves(chips, by) -> bool:            # every chip of `chips` has a link to (or is) each of `by`
        return all(p == c or (p, c) in adjacent for p in by for c in chips)

    wants = []                                 # per group: (widths to try, why, weight bytes)
    for gi, g in enumerate(groups):
        wb = _weight_bytes(graph, g, lanes)
        why_not = _splittable(graph, g, lanes)
        need = max(1, math.ceil(wb / cap)) if cap else 1
        if mode == "one":
            ks, reason = [1], "--parallel one: every stage on chip 0"
        elif widths and gi in widths:
            ks, reason = [widths[gi]], f"split over {widths[gi]} chips: fewer did not fit their SRAM"
        elif mode == "tensor" and why_not is None:
            tiles = -(-graph.types[g[-1].outputs[0]].shape[-1] // lanes)      # every chip at least a tile
            ks, reason = list(range(min(n_chips, tiles), 0, -1)), "--parallel tensor: columns over as many chips as have links to its inputs"
        elif need > 1:
            ks, reason = [need], f"weights {wb} B exceed {cap} B ({int(WEIGHT_SHARE * 100)} % of a chip's SRAM): split over {need} chips"
        else:
            ks, reason = [1], ("weights fit one chip: a pipeline stage" if wb else "elementwise: on the chip of its input")
        out_tiles = -(-graph.types[g[-1].outputs[0]].shape[-1] // lanes)
        if ks[0] > out_tiles and mode != "tensor":
            raise CompileError(f"node {g[0].name!r} ({g[0].op}): its weights ({wb} B) need {ks[0]} chips, but its "
                               f"{out_tiles} column tile(s) of {lanes} split over {out_tiles} at most")
        if ks[0] > 1 and why_not is not None and mode != "tensor":
            raise CompileError(f"node {g[0].name!r} ({g[0].op}): needs {ks[0]} chips' SRAM but cannot be split ({why_not})")
        if ks[0] > n_chips:
            raise CompileError(f"node {g[0].name!r} ({g[0].op}): its weights ({wb} B) need {ks[0]} chips, system "
                               f"{system.name!r} has {n_chips}")
        wants.append((ks, reason, wb))

    load = [0] * n_chips
    producer: dict[str, tuple[int, ...]] = {}           # value -> chips computing it
    stages, prev = [], ()
    for gi, g in enumerate(groups):
        ks, reason, wb = wants[gi]
        srcs = {c for n in g for i in n.inputs for c in producer.get(i, ())}
        out = g[-1].outputs[0]
        nxt = next((j for j in range(gi + 1, len(groups)) if any(out in n.inputs for n in groups[j])), None)
        best = None
        for k in ks:                                # tensor: the widest that has the links
            for chips in itertools.combinations(range(n_chips), k):
                if mode == "one" and chips != (0,):
                    continue
                if not serves(chips, srcs):
                    continue
                ahead = 0
                if nxt is not None:                 # a set for the consumer: apart from these chips, or not
                    kn = min(wants[nxt][0])
                    sets = [s for s in itertools.combinations(range(n_chips), kn) if serves(s, chips)]
                    ahead = 0 if any(not set(s) & set(chips) for s in sets) else 1 if sets else 2
                if ahead == 2 and mode != "one":
                    continue
                moved = sum(1 for p in srcs for c in chips if p != c)
                overlap = len(set(chips) & set(prev))
                cost = ((ahead, overlap, max(load[c] for c in chips), moved, chips) if wb else
                        (moved, max(load[c] for c in chips), chips))
                if best is None or cost < best[0]:
                    best = (cost, chips)
            if best is not None:
                break
        if best is None:
            raise CompileError(f"node {g[0].name!r} ({g[0].op}): no {ks[-1]} chips of system {system.name!r} have links "
                               f"to every chip its input comes from ({sorted(srcs)})")
        chips = best[1]
        k = len(chips)
        out_n = graph.types[out].shape[-1]
        cols = _columns(out_n, k, lanes) if k > 1 else ((0, out_n),)
        for c, (a, b) in zip(chips, cols):
            load[c] += wb * (b - a) // max(out_n, 1)
        producer[out] = chips
        stages.append(Stage(g, chips, cols, wb, reason))
        prev = chips if wb else prev
    return stages


# ---- weights split by columns ------------------------------------------------------------------
def _piece_group(graph: Graph, constants: dict, group: list[Node], n0: int, n1: int) -> tuple[Graph, list[Node], str]:
    """The group restricted to output columns [n0, n1): its weights' and bias's column slices (added
    to `constants`), its nodes renamed. Returns (a graph view, the nodes, the result's name)."""
    tag = f"[{n0}:{n1}]"
    view = Graph(inputs=graph.inputs, outputs=[], constants=constants, nodes=[], types=dict(graph.types))
    rename: dict[str, str] = {}
    nodes = []
    for n in group:
        ins = []
        for i in n.inputs:
            if i in rename:
                ins.append(rename[i])
            elif i in constants and (n.op in ("add", "requantize") or (n.op == "matmul" and i == n.inputs[1])):
                # the column slices of weights, bias and per-channel requantization
                v = constants[i]
                sl = v[..., n0:n1] if n.op == "matmul" else np.asarray(v).reshape(-1)[n0:n1]
                name = f"{i}{tag}"
                constants[name] = sl
                view.types[name] = TensorType(sl.dtype, sl.shape)
                ins.append(name)
            else:
                ins.append(i)
        outs = []
        for o in n.outputs:
            t = graph.types[o]
            rename[o] = f"{o}{tag}"
            view.types[rename[o]] = TensorType(t.dtype, t.shape[:-1] + (n1 - n0,))
            outs.append(rename[o])
        nodes.append(Node(n.op, f"{n.name}{tag}", ins, outs, dict(n.attrs)))
    return view, nodes, rename[group[-1].outputs[0]]


# ---- the compiler -----------------------------------------------------------------------------
def compile_system(graph: Graph, system: System, mode: str = "auto", micro_batches: int | None = None
                   ) -> SystemCompiled:
    """Compile `graph` for `system`. mode 'auto' compiles the candidate plans the model allows (one
    chip when it fits, pipeline, tensor parallel) and keeps the one with the fewest predicted
    cycles; 'one', 'pipeline' and 'tensor' force one. `micro_batches`: cut the batch into that many
    row slices that stream through the stages (compiler/microbatch.py); None tries 1, 2, 4 and 8
    where the plan has several stages and keeps the fewest predicted cycles."""
    if mode not in MODES:
        raise CompileError(f"--parallel {mode!r}: one of {', '.join(MODES)}")
    t0 = time.perf_counter()
    pre, post, chip_nodes = _partition(graph)
    for n in chip_nodes:
        if n.op in ONE_CHIP_OPS:
            raise CompileError(f"node {n.name!r} ({n.op}): convolutions, pooling, reshapes and concats run on one chip; a "
                               f"system takes MatMul, elementwise and clip work (compile without --system)")
    host_vals, needed_out = boundary(graph, pre, post, chip_nodes)
    groups = _groups(graph, chip_nodes, set(needed_out))
    rows = batch_rows(graph, chip_nodes)
    if micro_batches is not None and micro_batches != 1:
        if micro_batches < 1 or rows is None or rows % micro_batches:
            raise CompileError(f"--micro-batches {micro_batches}: " + (
                "the chip work is not row-wise over one batch (2-D activations, constant weights)" if rows is None
                else f"must divide the batch of {rows} rows"))
    tries = [mode] if mode != "auto" else ["one", "pipeline", "tensor"]
    best, errors = None, []
    for md in tries:
        if micro_batches is not None:
            counts = [micro_batches]
        elif md == "one" or rows is None or len(groups) < 2:
            counts = [1]
        else:       # a micro-batch shorter than a weight tile's load (lanes rows) only adds loads
            counts = [c for c in (1, 2, 4, 8) if rows % c == 0 and (c == 1 or rows // c >= system.config(0).lanes)]
        mode_best = None
        for c in counts:
            try:
                sc = _compile_plan(graph, system, md, groups, pre, post, chip_nodes, c)
            except CompileError as e:
                if mode != "auto" and len(counts) == 1:
                    raise
                errors.append(f"{md}: {e}")
                continue
            if mode_best is not None and sc.predicted["cycles"] >= mode_best.predicted["cycles"]:
                break                       # more micro-batches stopped paying
            mode_best = sc
        if mode_best is not None and (best is None or mode_best.predicted["cycles"] < best.predicted["cycles"]):
            best = mode_best
    if best is None:
        sram = system.config(0).sram_bytes * len(system.chips)
        total = sum(_weight_bytes(graph, g, system.config(0).lanes) for g in groups)
        raise CompileError(f"the model does not fit system {system.name!r}: its weights take {total} bytes, the "
                           f"system has {sram} bytes of SRAM ({len(system.chips)} chips); "
                           + "; ".join(errors[-1:]))
    best.compile_seconds = time.perf_counter() - t0
    return best


def _micro(graph, plan: list[Stage], pre, post, chip_nodes, c: int):
    """The graph and plan to lower for c micro-batches: each stage once per micro-batch, stage by
    stage, on the stage's chips and columns. Returns (graph, plan, pre, post, host values, outputs)."""
    if c == 1:
        return (graph, plan, pre, post, *boundary(graph, pre, post, chip_nodes))
    g = split_rows(graph, pre, chip_nodes, post, c)
    pre2, post2, chip2 = _partition(g)
    host_vals, needed_out = boundary(g, pre2, post2, chip2)
    groups = _groups(g, chip2, set(needed_out))
    assert len(groups) == c * len(plan), "micro-batches fuse as the whole batch does"
    stages = [Stage(groups[j * len(plan) + i], st.chips, st.cols, st.weight_bytes, st.reason)
              for i, st in enumerate(plan) for j in range(c)]
    return g, stages, pre2, post2, host_vals, needed_out


def _compile_plan(graph, system, mode, groups, pre, post, chip_nodes, micro: int) -> SystemCompiled:
    widths: dict[int, int] = {}
    while True:
        plan = plan_stages(graph, groups, system, mode, widths)
        low = _micro(graph, plan, pre, post, chip_nodes, micro)
        try:
            _lower_plan(system, mode, *low, dry=True)   # SRAM only
            try:
                sc = _lower_plan(system, mode, *low)
            except RefillError:                         # (compile_graph: the same fallback)
                sc = _lower_plan(system, mode, *low, pair_weights=False)
            sc.plan, sc.micro_batches = plan, micro
            return sc
        except _SramFull as e:
            gi = max((i for i, s in enumerate(plan) if e.chip in s.chips and _splittable(graph, s.nodes, system.config(0).lanes) is None),
                     key=lambda i: plan[i].weight_bytes // len(plan[i].chips), default=None)
            if mode == "one" or gi is None or len(plan[gi].chips) >= len(system.chips):
                raise CompileError(str(e)) from None
            widths[gi] = len(plan[gi].chips) + 1


class _SramFull(CompileError):
    def __init__(self, chip: int, msg: str):
        super().__init__(msg)
        self.chip = chip


def _lower_plan(system, mode, graph, plan, pre, post, host_vals, needed_out, dry=False, pair_weights=True):
    constants = dict(graph.constants)
    parts = [ChipPart(i, system.config(i), kernels.Machine(system.config(i), dry=dry, pair_weights=pair_weights))
             for i in range(len(system.chips))]
    # the chips start on one program time: a SYNC first in every queue, released on max(q + sync_release)
    # with every chip quiet on cycle 1 (sim/queue.py)
    resume = max(1 + spec.sync_release(p.config) for p in parts)
    if not dry:
        for p in parts:
            p.m.start_in_step(resume)
    consumers: dict[str, set[int]] = {}            # value -> chips that need it whole
    for st in plan:
        for n in st.nodes:
            for i in n.inputs:
                if i not in host_vals:
                    consumers.setdefault(i, set()).update(st.chips)
    where: dict[str, list] = {}                    # value -> [(chip, (n0, n1), Placed piece)]
    transfers: list[Transfer] = []
    ledger: dict = {}                              # receiving end -> (link times, take cycles)
    values = [host_values(graph, host_vals, p.placed, p.host_loads, p.config.lanes) for p in parts]

    for st in (plan if dry else progress(plan, f"scheduling {mode}", unit="stage")):
        res = st.nodes[-1].outputs[0]
        t_res = graph.types[res]
        for c, (n0, n1) in zip(st.chips, st.cols):
            part = parts[c]
            value = values[c]
            whole = (n0, n1) == (0, t_res.shape[-1])
            if st.nodes[0].op == "matmul":
                if whole:
                    view, nodes, out_name = graph, st.nodes, res
                else:
                    view, nodes, out_name = _piece_group(graph, constants, st.nodes, n0, n1)
                out_copies = None
                if not whole and c in consumers.get(res, ()):
                    # stored as the pieces will be: uint8 after a requantize with offset 128 (_lower_matmul)
                    requant = any(n.op == "requantize" for n in st.nodes)
                    full = _whole(part, res, t_res, 128 if t_res.dtype == np.uint8 and requant else 0)
                    out_copies = full.copies_from_tile(n0 // part.config.lanes)
                try:
                    part.macs += _lower_matmul(part.m, view, nodes, value, part.placed, out_copies)
                except NeverFits as e:
                    raise CompileError(f"node {e}") from None
                piece = part.placed[out_name]
            else:
                _lower_elementwise(part.m, graph, st.nodes[0], value, part.placed)
                piece = part.placed[res]
            where.setdefault(res, []).append((c, (n0, n1), piece))
            if not whole and c in consumers.get(res, ()):
                part.placed[res].ready = max(part.placed[res].ready, piece.ready)
        # the result to every chip that needs it whole and lacks a piece of it
        for c in sorted(consumers.get(res, ())):
            part = parts[c]
            full = part.placed.get(res) or _whole(part, res, t_res, where[res][0][2].offset)
            for p, (n0, n1), piece in where[res]:
                if p != c:
                    transfers += _transfer(system, parts, res, piece, p, c, full, n0 // part.config.lanes, ledger, dry)
    for part in parts:
        try:
            part.m.sram.check()
        except CompileError as e:
            raise _SramFull(part.index, f"chip {part.index}: {e}") from None
    if dry:
        return None
    outputs = {v: where[v] for v in needed_out}
    for part in parts:
        part.m.add_start_syncs()
        part.program, streams, _ = finish_program(part.m, constants, part.host_loads)
        part.predicted = _predict(part.m, part.config, part.macs)
        part.listing = _listing(part.m, part.config, part.program, graph)
        part.stats = {"sram_bytes_used": part.m.sram.used_bytes(), "sram_bytes": part.config.sram_bytes,
                      "instructions": len(part.m.res.placed)}
    predicted = _system_prediction(parts)
    return SystemCompiled(system, graph, mode, plan, parts, transfers, constants, pre, post, outputs, predicted)


def _whole(part: ChipPart, name: str, t: TensorType, offset: int) -> Placed:
    """The whole value `name` on this chip: two copies by the VXM, as a chip result, its bytes
    stored with `offset` (the producer's: pieces are copied, not converted)."""
    if name in part.placed:
        return part.placed[name]
    nbytes = NBYTES[t.dtype]
    p = Placed(name, t.dtype, Layout(t.shape, nbytes, part.config.lanes), offset=offset)
    m = part.m
    words = p.layout.words()
    side = m.lighter_side()
    p.copies = m.result_copies(p, words, side)
    part.placed[name] = p
    return p


# ---- transfers over a link ---------------------------------------------------------------------
def _link(system: System, src: int, dst: int):
    """(the sending end's C2C slice name, the receiving end's, latency) of a link from src to dst."""
    for lk in system.links:
        for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
            if a.chip == src and b.chip == dst:
                return a.link, b.link, lk.latency
    raise AssertionError(f"no link from chip {src} to chip {dst} (the plan keeps transfers between neighbours)")


def _transfer(system: System, parts: list[ChipPart], name: str, piece: Placed, p: int, c: int, full: Placed,
              tile0: int, ledger: dict, dry: bool) -> list[Transfer]:
    """Send `piece` (on chip p) into its tiles of `full` (on chip c) over their link, plane by plane,
    at most c2c_depth vectors per SEND."""
    src_end, dst_end, L = _link(system, p, c)
    mp, mc = parts[p].m, parts[c].m
    cp_, cc_ = parts[p].config, parts[c].config
    Tp, Tc = mp.T, mc.T
    F = LinkFormat.of(cp_).flits
    words = piece.layout.words()
    src = piece.whole_copy()
    if piece.offset != full.offset or piece.layout.nbytes != full.layout.nbytes:
        raise AssertionError(f"internal compiler error: {name} is stored with offset {piece.offset} on chip {p} "
                             f"and {full.offset} on chip {c}")
    offset = tile0 * full.layout.rows_p
    if dry:
        return []
    tx, rx = cp_.slice_named(src_end).position, cc_.slice_named(dst_end).position
    taus, takes = ledger.setdefault((c, dst_end), ([], []))
    who = f"{name}: chip{p}.{src_end} -> chip{c}.{dst_end}"
    out = []
    for j in range(piece.layout.nbytes):
        first_send, last_take = None, None
        for w0 in range(0, words, cp_.c2c_depth):
            n = min(cp_.c2c_depth, words - w0)
            earliest = max(0, piece.ready - Tp["mem_read_access"])
            while True:
                sb = Bundle()
                f = mp.feed(sb, src.planes[j][0], tx, Tp["c2c_send_sample"], n, src.planes[j][1] + w0,
                            f"{who}: words {w0}..{w0 + n - 1} plane {j}")
                sb.at(tx, 0, "SEND", f"{who}: send", stream=lambda f=f: f.base, dir=f.direction, count=n)
                read_rel = min(i.rel for i in sb.instrs if i.mnemonic == "READ")
                ts = mp.res.first_fit(sb, max(earliest, piece.ready - read_rel - Tp["mem_read_access"]), who)
                new_taus = [ts + Tp["c2c_send_sample"] + k * F for k in range(n)]
                rb = Bundle()
                dsts = [cp.planes[j] for cp in full.copies]
                reach = max((q for q, _ in dsts), key=lambda q: abs(q - rx))
                rf = rb.flow(kernels.toward(rx, reach), 1, rx, Tc["c2c_recv_drive"], n, reach)
                rb.at(rx, 0, "RECV", f"{who}: receive", stream=lambda f=rf: f.base, dir=rf.direction, lat=L, count=n)
                for q, a in dsts:
                    mc.catch(rb, rf, 0, q, n, a + offset + w0, f"{who}: store plane {j}")
                tr = mc.res.first_fit(rb, new_taus[-1] + L - Tc["c2c_recv_take"] - (n - 1), who)
                new_takes = [tr + Tc["c2c_recv_take"] + k for k in range(n)]
                if waiting(taus + new_taus, takes + new_takes, cc_)[0] <= cc_.c2c_depth:
                    break
                earliest = ts + 1
            mp.res.commit(sb, ts, who)
            mc.res.commit(rb, tr, who)
            taus += new_taus
            takes += new_takes
            done = tr + max(i.rel for i in rb.instrs if i.mnemonic == "WRITE") + Tc["mem_write_commit"] + n
            full.ready = max(full.ready, done)
            first_send = ts if first_send is None else first_send
            last_take = new_takes[-1]
        out.append(Transfer(name, p, c, f"chip{p}.{src_end} -> chip{c}.{dst_end}", words, j, first_send, last_take))
    return out


# ---- prediction ------------------------------------------------------------------------------
def system_mxm_utilization(macs: int, cycles: int, configs) -> float:
    """Useful MACs over what every chip's MXMs (the nearest per side, as compile.mxm_utilization counts
    them) could do in `cycles`."""
    per_cycle = sum(c.mxm_sides * c.lanes ** 2 for c in configs)
    return round(macs / (cycles * per_cycle), 4) if cycles and per_cycle else 0.0


def _link_use(part: ChipPart, cycles: int) -> dict[str, float]:
    """Per sending link end (C2C slice) of a chip: its SEND engine's cycles over `cycles`."""
    F = LinkFormat.of(part.config).flits
    busy: dict[str, int] = {}
    for pos, _, mn, ops, _ in part.m.res.placed:
        if mn == "SEND":
            name = part.config.floorplan[pos].name
            busy[name] = busy.get(name, 0) + ops["count"] * F
    return {k: round(v / cycles, 4) for k, v in busy.items()}


def _system_prediction(parts: list[ChipPart]) -> dict:
    cycles = max(p.predicted["cycles"] for p in parts)
    macs = sum(p.macs for p in parts)
    return {"cycles": cycles, "macs": macs,
            "mxm_utilization": system_mxm_utilization(macs, cycles, [p.config for p in parts]),
            "chips": [{"chip": p.index, "cycles": p.predicted["cycles"], "macs": p.macs,
                       "mxm_utilization": p.predicted["mxm_utilization"], "links": _link_use(p, cycles)}
                      for p in parts]}
