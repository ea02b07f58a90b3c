"""SXM slice: lane movements (shift, rotate, broadcast, permute, tile transpose) on stream groups.

The chip hands the slice the `sxm_width` streams starting at `tap_stream` in direction
`tap_dir` (the source group of the current element), as it does for a MEM slice's write
tap; the slice returns the moved vectors and where they go (`dst`, `ddir`, `width`). For an
op issued on cycle t, element k (spec.TIMING):

    t+1+k  source group taken, moved through the lane crossbar -> registers   (sxm_sample)
    t+2+k  registers driven onto the destination group                         (sxm_drive)

One crossbar serves SHIFT, ROTATE, BCAST and PERMUTE: each output lane i reads input lane
src[i] (or zero), the same for every stream of the group. TRANSPOSE is fixed wiring per
power-of-two width. SETMAP loads the PERMUTE lane map from a 2-stream (int16) group.
"""
from amaranth.hdl import Cat, Const, Instance, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.config import ChipConfig, SliceKind

from .engine import Countdown
from .latency import check_latencies
from .mux import mux_tree
from .queue import attach_queue, slice_queue_ports
from .superlane import Superlane, group_enables

NATURAL = {"sxm_sample": 1, "sxm_drive": 2, "sxm_map_write": 1}
MOVES = ("SHIFT", "ROTATE", "BCAST", "PERMUTE", "TRANSPOSE")


def transpose_sizes(config: ChipConfig) -> list[int]:
    """Widths TRANSPOSE accepts on this configuration (powers of two >= 2 dividing lanes)."""
    out, n = [], 2
    while n <= config.sxm_width:
        if config.lanes % n == 0:
            out.append(n)
        n *= 2
    return out


class SxmCrossbar(wiring.Component):
    """The lane crossbar of one stream: output lane i is input lane `src[i]`, or zero.

    Emitted once and instantiated `sxm_width` times by `SxmSlice` (one per stream of the
    group), so the full-width crossbar of a wide configuration is generated as one stream's
    worth of multiplexers: `lanes` x `lanes` bytes (for `tsp` 320 x 320), not that times the
    group width.

    Parameters
    ----------
    config : ChipConfig
        lanes.

    Members
    -------
    x : In(8 * lanes)
        the stream's vector, lane i in bits 8i..8i+7.
    src : In(lane_bits * lanes)
        per output lane, the input lane it takes (lane_bits = bits of lanes - 1).
    ok : In(lanes)
        per output lane, take `src` (1) or zero (0).
    y : Out(8 * lanes)
        the moved vector (combinational).
    """

    def __init__(self, config: ChipConfig):
        self.config = config
        L = config.lanes
        self.lane_bits = max(L - 1, 1).bit_length()
        super().__init__({"x": In(8 * L), "src": In(self.lane_bits * L), "ok": In(L), "y": Out(8 * L)})

    def elaborate(self, platform):
        m = Module()
        L, ib = self.config.lanes, self.lane_bits
        lanes = [self.x.word_select(i, 8) for i in range(L)]
        m.d.comb += self.y.eq(Cat(*(Mux(self.ok[i], mux_tree(lanes, self.src.word_select(i, ib)), 0) for i in range(L))))
        return m


class SxmSlice(wiring.Component):
    """One SXM (emitted unit `sxm_slice`): queue, engine, lane map, crossbar and transpose.

    Parameters
    ----------
    config : ChipConfig
        streams, lanes, sxm_width, queue sizes.

    Members
    -------
    running, host_q_*, q_len, fetch_stream, fetch_dir, fetch_tap, busy, err, err_code, err_pc :
        the queue ports (`hdl/queue.py` `slice_queue_ports`).
    tap_stream, tap_dir : Out; src : In(sxm_width * word_bits)
        the source group this cycle (first stream, direction) and its sxm_width vectors.
    drive : Out(1); dst, ddir, width : Out
        drive the moved vectors onto streams dst .. dst + width - 1 in direction ddir.
    out : Out(sxm_width * word_bits)
        the moved vectors (registered).
    """

    def __init__(self, config: ChipConfig):
        check_latencies(config, NATURAL, "hdl/sxm.py", sep=";")
        self.config = config
        S, W, N = config.streams, config.word_bits, config.sxm_width
        super().__init__(slice_queue_ports(config) | {
            "tap_stream": Out(range(S)), "tap_dir": Out(1), "src": In(N * W),
            "drive": Out(1), "dst": Out(range(S)), "ddir": Out(1), "width": Out(range(N + 1)), "out": Out(N * W),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        S, W, N, L = cfg.streams, cfg.word_bits, cfg.sxm_width, cfg.lanes
        ib = max(L - 1, 1).bit_length()          # lane index bits
        q = attach_queue(m, self, SliceKind.SXM)

        # ---- the engine ---------------------------------------------------------------------
        move = Signal(range(len(MOVES) + 1))        # index into MOVES; len(MOVES) = SETMAP
        arg = Signal(signed(16))
        stream, sdir, dst, ddir, width = Signal(range(S)), Signal(), Signal(range(S)), Signal(), Signal(range(N + 1))
        issues = [getattr(q, f"issue_{n.lower()}") for n in MOVES + ("SETMAP",)]
        issue = Cat(*issues).any()
        engine = Countdown(m, "sxm", self.running, issue, Mux(q.issue_setmap, 1, q.field("count")), 16)
        active = engine.active
        for name in MOVES + ("SETMAP",):
            m.d.comb += getattr(q, f"ready_{name.lower()}").eq(engine.ready)
        with m.If(issue):
            m.d.sync += [stream.eq(q.field("stream")), sdir.eq(q.field("dir"))]
            with m.If(q.issue_setmap):
                m.d.sync += move.eq(len(MOVES))
            with m.Else():
                m.d.sync += [arg.eq(Mux(q.issue_permute | q.issue_transpose, 0, q.field("arg"))),
                             dst.eq(q.field("dst")), ddir.eq(q.field("ddir")), width.eq(q.field("width"))]
                for i, name in enumerate(MOVES):
                    with m.If(getattr(q, f"issue_{name.lower()}")):
                        m.d.sync += move.eq(i)
        m.d.comb += [self.tap_stream.eq(stream), self.tap_dir.eq(sdir)]
        sampling = self.running & active

        # ---- the lane map --------------------------------------------------------------------
        lane_map = [Signal(16, name=f"map{i}", init=i) for i in range(L)]
        src_streams = [self.src[j * W:(j + 1) * W] for j in range(N)]
        with m.If(~self.running):
            m.d.sync += [lm.eq(i) for i, lm in enumerate(lane_map)]
        with m.Elif(sampling & (move == len(MOVES))):
            m.d.sync += [lm.eq(Cat(src_streams[0].word_select(i, 8), src_streams[1].word_select(i, 8)))
                         for i, lm in enumerate(lane_map)]

        # ---- crossbar: out lane i <- in lane src[i], or zero; one SxmCrossbar per stream ----------
        srcs, oks = [], []
        for i in range(L):
            src = Signal(signed(18), name=f"src{i}")
            ok = Signal(name=f"ok{i}")
            diff = Const(i, signed(18)) - arg
            with m.Switch(move):
                with m.Case(MOVES.index("SHIFT")):
                    m.d.comb += [src.eq(diff), ok.eq((diff >= 0) & (diff < L))]
                with m.Case(MOVES.index("ROTATE")):
                    m.d.comb += [src.eq(Mux(diff < 0, diff + L, Mux(diff >= L, diff - L, diff))), ok.eq(1)]
                with m.Case(MOVES.index("BCAST")):
                    m.d.comb += [src.eq(arg), ok.eq(1)]
                with m.Case(MOVES.index("PERMUTE")):
                    m.d.comb += [src.eq(lane_map[i]), ok.eq(lane_map[i] < L)]
            srcs.append(src[:ib])
            oks.append(ok)
        crossed = [Signal(W, name=f"crossed{j}") for j in range(N)]
        for j in range(N):
            m.submodules[f"xbar{j}"] = Instance("sxm_crossbar", i_x=src_streams[j], i_src=Cat(*srcs), i_ok=Cat(*oks),
                                                o_y=crossed[j])

        # ---- transpose: out[i][b*n + j] = in[j][b*n + i], fixed wiring per width -----------------
        def byte(j, lane):
            return src_streams[j].word_select(lane, 8)

        result = [Signal(W, name=f"res{j}") for j in range(N)]
        sizes = transpose_sizes(cfg)
        for j in range(N):
            value = crossed[j]
            for n in sizes:
                if j < n:
                    t = Cat(*(byte(lane % n, lane - lane % n + j) for lane in range(L)))
                    value = Mux((move == MOVES.index("TRANSPOSE")) & (width == n), t, value)
            m.d.comb += result[j].eq(value)

        # ---- output register (drive on the next cycle) ------------------------------------------
        v1 = Signal()
        m.d.sync += [v1.eq(sampling & (move != len(MOVES))), self.out.eq(Cat(*result)),
                     self.dst.eq(dst), self.ddir.eq(ddir), self.width.eq(width)]
        m.d.comb += [self.drive.eq(v1 & self.running),
                     self.busy.eq(q.busy | active | v1)]     # as if running (hdl/queue.py)
        return m


class SxmSuperlane(Superlane):
    """One superlane of an SXM's position (emitted unit `sxm_superlane`, hdl/superlane.py): the
    source group the SXM reads and the streams its moved vectors are driven onto.

    Parameters
    ----------
    config : ChipConfig

    Members
    -------
    e_in, w_in, e_out, w_out, fetch_stream, fetch_dir, fetch_tap :
        as every superlane (`Superlane`).
    tap_stream, tap_dir : In; src : Out(sxm_width * B)
        the source group (first stream, direction) and this superlane of its sxm_width vectors.
    moved : In(sxm_width * B)
        this superlane of the SXM's moved vectors (its `out`).
    drive, dst, ddir, width : In
        drive them onto streams dst .. dst + width - 1 in direction ddir.
    """

    def __init__(self, config: ChipConfig):
        S, B, N = config.streams, config.superlane_bits, config.sxm_width
        super().__init__(config, {"tap_stream": In(range(S)), "tap_dir": In(1), "src": Out(N * B),
                                  "moved": In(N * B), "drive": In(1), "dst": In(range(S)), "ddir": In(1),
                                  "width": In(range(N + 1))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        S, B, N = cfg.streams, cfg.superlane_bits, cfg.sxm_width
        # a group never runs past the last stream
        m.d.comb += self.src.eq(Cat(*self.pick_group(self.tap_dir, self.tap_stream, N)))
        slots = [self.moved[j * B:(j + 1) * B] for j in range(N)]
        e_en, w_en, slot = group_enables(m, "drive", cfg, self.drive, self.dst, self.ddir, self.width)
        data = [mux_tree(slots, slot[s][:max(N - 1, 1).bit_length()]) for s in range(S)]
        self.registers(m, e_en, w_en, data, data)
        return m
