"""MXM slice: a weight-stationary lanes x lanes int8 array with int32 accumulators.

Two units, so wide configurations stay under Amaranth's input-port limit and emit quickly:
`MxmColumn` (one output column: a shadow and an active weight for every activation lane, the
dot product) and `MxmControl` (queue, engines, zero points, the accumulator memory, read-out).
The chip instantiates one control and `lanes` columns per MXM. For a MATMUL issued on t,
element k sampled on c = t+1+k (spec.TIMING):

    c     activation bytes read as int8/uint8 minus the zero point (9-bit)  -> register
    c+1   every column: sum_r x[r] * w[r][col] with its active weights       -> register
          accumulator row presented to a read port (transparent: sees a write this cycle)
    c+2   row = (accumulate ? row : 0) + y, written at the end of the cycle   (mxm_acc_write)

A configuration with mxm_acc_write one higher (`product_stage`) registers the products at c+1,
sums them at c+2 and adds and writes at c+3; two higher (`landing_stage` too; the `fpga` preset)
registers the columns' sums once more in the control, beside the accumulator memory, and adds
and writes at c+4.

MATMUL swap=1 makes the columns copy shadow -> active at the end of t+1; LW writes shadow rows
at the end of each sample cycle (a same-cycle install copies the rows as they were before).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind

from .arith import sum_tree
from .engine import Countdown
from .latency import check_latencies
from .mux import mux_tree
from .queue import attach_queue, slice_queue_ports
from .superlane import Superlane, group_enables

NATURAL = {"mxm_sample": 1, "mxm_cfg_write": 1, "mxm_install": 1, "mxm_acc_write": 3,
           "mxm_accread_access": 1, "mxm_accread_drive": 2}


def _check_timing(config: ChipConfig):
    check_latencies(config, NATURAL, "hdl/mxm.py", sep=";", stretch="mxm_acc_write", most=2)


def product_stage(config: ChipConfig) -> int:
    """1 when the configuration gives the MXM a cycle more (mxm_acc_write above NATURAL): the
    columns register their products before the sum (on an FPGA, registers after the DSP blocks,
    which sit in rows apart from the logic around them)."""
    return min(spec.timing(config)["mxm_acc_write"] - NATURAL["mxm_acc_write"], 1)


def landing_stage(config: ChipConfig) -> int:
    """1 when the configuration gives the MXM two cycles more (mxm_acc_write two above NATURAL):
    the columns' sums land in a register of the control before the add (the columns sit by
    their DSP blocks, across the device from the accumulator's block RAM)."""
    return max(spec.timing(config)["mxm_acc_write"] - NATURAL["mxm_acc_write"] - 1, 0)


def operand9(byte, zp, is_signed):
    """An MXM operand byte read as int8 or uint8, minus the zero point of the same type: signed(10)."""
    v = Mux(is_signed, byte.as_signed(), byte.as_unsigned())
    z = Mux(is_signed, zp.as_signed(), zp.as_unsigned())
    return v - z


class MxmColumn(wiring.Component):
    """One MXM output column (emitted unit `mxm_column`): shadow and active weights, dot product.

    Parameters
    ----------
    config : ChipConfig
        lanes (rows of the column), streams (weight rows one LW element can carry).

    Members
    -------
    clear : In(1)
        the chip is idle: zero every weight a cycle later (registered here, so `running`, a wire
        across the chip, only reaches a flip-flop per column; a run writes no weight on its
        first cycle, and a stopped chip's weights are unread until they are zero).
    x : In(10 * lanes)
        the activation lanes, signed 10-bit each (zero point removed, registered by the control).
    lw_rows, lw_row : In
        write the shadow rows set in the mask `lw_rows` at the end of this cycle, row r ...
    lw_bytes : In(8 * streams)
        ... from byte r - lw_row (this column's byte of weight stream r - lw_row).
    wzp, wsigned : In
        the weights' zero point and signedness.
    swap : In(1)
        copy shadow to active at the end of this cycle.
    y : Out(32)
        the dot product of `x` with the active weights (registered).
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        L, S = config.lanes, config.streams
        super().__init__({
            "clear": In(1),
            "x": In(10 * L),                 # activation lanes, signed 10-bit each (registered by the control)
            "lw_rows": In(L), "lw_row": In(16), "lw_bytes": In(8 * S),   # byte of this column
            "wzp": In(8), "wsigned": In(1),
            "swap": In(1),
            "y": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        L, S = self.config.lanes, self.config.streams
        shadow = [Signal(signed(10), name=f"shadow{r}") for r in range(L)]
        active = [Signal(signed(10), name=f"w{r}") for r in range(L)]
        clear = Signal()
        m.d.sync += clear.eq(self.clear)
        with m.If(clear):
            m.d.sync += [w.eq(0) for w in active] + [w.eq(0) for w in shadow]
        with m.Else():
            with m.If(self.swap):
                m.d.sync += [a.eq(sh) for a, sh in zip(active, shadow)]
            # row r takes stream r - lw_row: one S-way choice per row, not a lanes-way write per
            # stream, so a wide column emits small (the control decides which rows write)
            vals = [operand9(self.lw_bytes[8 * j:8 * j + 8], self.wzp, self.wsigned) for j in range(S)]
            jb = max(S - 1, 1).bit_length()
            for r in range(L):
                with m.If(self.lw_rows[r]):
                    m.d.sync += shadow[r].eq(mux_tree(vals, (r - self.lw_row)[:jb]))
        x = [self.x[10 * r:10 * r + 10].as_signed() for r in range(L)]
        products = [x[r] * active[r] for r in range(L)]
        if product_stage(self.config):
            held = [Signal(signed(20), name=f"p{r}") for r in range(L)]
            m.d.sync += [h.eq(p) for h, p in zip(held, products)]
            products = held
        m.d.sync += self.y.eq(sum_tree(products))
        return m


class MxmControl(wiring.Component):
    """The MXM's control (emitted unit `mxm_ctrl`): queue, engines, zero points, accumulators, read-out.

    Parameters
    ----------
    config : ChipConfig
        lanes, streams, mxm_acc_rows, queue sizes.

    Members
    -------
    running, host_q_*, q_len, fetch_stream, fetch_dir, fetch_tap, busy, err, err_code, err_pc :
        the queue ports (`hdl/queue.py` `slice_queue_ports`).
    clear : Out(1)
        to the columns: zero the weights.
    x_stream, x_dir : Out; x_in : In(word_bits)
        the activation stream sampled this cycle, and its vector.
    x : Out(10 * lanes)
        the activations, zero point removed, to every column.
    lw_stream, lw_dir : Out
        the first weight stream and direction the chip selects for the columns.
    lw_rows, lw_row, wzp, wsigned, swap : Out
        weight-load and install orders to every column (registers: the rows written this cycle
        as a mask, decided a cycle ahead).
    y : In(32 * lanes)
        the columns' dot products.
    e_en, w_en : Out(streams); slot : Out(2 * streams); out : Out(32 * lanes)
        the accumulator row read out (4 byte planes) and, per stream, whether it is driven east /
        west and with which plane (ACCREAD's dst .. dst + 3), decided a cycle ahead and registered
        so the superlanes' stream registers are not behind the compares.
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        L, S, W = config.lanes, config.streams, config.word_bits
        super().__init__(slice_queue_ports(config) | {
            "clear": Out(1),
            "x_stream": Out(range(S)), "x_dir": Out(1), "x_in": In(W), "x": Out(10 * L),
            "lw_stream": Out(range(S)), "lw_dir": Out(1), "lw_rows": Out(L), "lw_row": Out(16),
            "wzp": Out(8), "wsigned": Out(1), "swap": Out(1),
            "y": In(32 * L),
            "e_en": Out(S), "w_en": Out(S), "slot": Out(2 * S), "out": Out(32 * L),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        L, S = cfg.lanes, cfg.streams
        rows = cfg.mxm_acc_rows
        rb = max(rows - 1, 1).bit_length()
        q = attach_queue(m, self, SliceKind.MXM)
        m.d.comb += self.clear.eq(~self.running)

        # ---- MXMCFG: written at the end of the cycle after issue -------------------------------
        xzp, xsigned = Signal(8), Signal(init=1)
        cfg_pending = Signal()
        new_cfg = Signal(18)
        m.d.comb += q.ready_mxmcfg.eq(1)
        m.d.sync += cfg_pending.eq(q.issue_mxmcfg)
        with m.If(q.issue_mxmcfg):
            m.d.sync += new_cfg.eq(Cat(q.field("xzp"), q.field("xsigned"), q.field("wzp"), q.field("wsigned")))
        with m.If(~self.running):
            m.d.sync += [xzp.eq(0), xsigned.eq(1), self.wzp.eq(0), self.wsigned.eq(1)]
        with m.Elif(cfg_pending):
            m.d.sync += [xzp.eq(new_cfg[:8]), xsigned.eq(new_cfg[8]), self.wzp.eq(new_cfg[9:17]),
                         self.wsigned.eq(new_cfg[17])]

        # ---- LW engine ----------------------------------------------------------------------------
        lw = Countdown(m, "lw", self.running, q.issue_lw, q.field("count"), 16)
        lw_active, lw_width = lw.active, Signal(7)
        m.d.comb += q.ready_lw.eq(lw.ready)
        # the element counter steps first; an issue on the same cycle (back to back) overrides it
        with m.If(lw.step):
            m.d.sync += self.lw_row.eq(self.lw_row + lw_width)
        with m.If(q.issue_lw):
            m.d.sync += [self.lw_row.eq(q.field("row")), lw_width.eq(q.field("width")),
                         self.lw_stream.eq(q.field("stream")), self.lw_dir.eq(q.field("dir"))]
        # the rows the next cycle writes, from the next values of the registers above: rows
        # row .. row + min(width, streams) - 1 (LW's legality keeps them below lanes). After a
        # stop the mask may write once more; the columns clear the weights the cycle after.
        # Both masks come from registers, and the issue strobe and the step (which carry
        # `running`, a wire across the chip) only choose between them.
        def row_mask(row, width):
            return Cat(*((row <= r) & (r < row + width) & (r < row + S) for r in range(L)))
        on_issue = row_mask(q.field("row"), q.field("width"))
        on_step = Mux(lw.left != 1, row_mask(self.lw_row + lw_width, lw_width), 0)
        m.d.sync += self.lw_rows.eq(Mux(q.issue_lw, on_issue, Mux(lw.step, on_step, 0)))

        # ---- MATMUL engine and the accumulator pipeline ---------------------------------------------
        mm = Countdown(m, "mm", self.running, q.issue_matmul, q.field("count"), 16)
        mm_active = mm.active
        mm_row, mm_accum = Signal(rb), Signal()
        m.d.comb += q.ready_matmul.eq(mm.ready)
        swap_pending = Signal()
        m.d.sync += swap_pending.eq(q.issue_matmul & q.field("swap"))
        m.d.comb += self.swap.eq(swap_pending)      # (after a stop, unread: the weights clear next)
        with m.If(mm.step):
            m.d.sync += mm_row.eq(mm_row + 1)
        with m.If(q.issue_matmul):
            m.d.sync += [mm_row.eq(q.field("acc")), mm_accum.eq(q.field("accumulate")),
                         self.x_stream.eq(q.field("stream")), self.x_dir.eq(q.field("dir"))]
        # c: sample
        x_bytes = [self.x_in[8 * r:8 * r + 8] for r in range(L)]
        m.d.sync += self.x.eq(Cat(*(operand9(b, xzp, xsigned)[:10] for b in x_bytes)))
        v1, row1, acc1 = Signal(), Signal(rb), Signal()
        m.d.sync += [v1.eq(self.running & mm_active), row1.eq(mm_row), acc1.eq(mm_accum)]
        # c+1: columns multiply (and, with a product stage, register the products; c+2 sums);
        # the accumulator row is read on the cycle before the add (transparent)
        m.submodules.acc = acc = Memory(shape=32 * L, depth=rows, init=[])
        wr = acc.write_port()
        rmw = acc.read_port(transparent_for=(wr,))
        rd = acc.read_port(transparent_for=(wr,))
        pipe = [(v1, row1, acc1)]
        for i in range(1 + product_stage(cfg) + landing_stage(cfg)):
            v, row, ac = Signal(name=f"v{i + 2}"), Signal(rb, name=f"row{i + 2}"), Signal(name=f"acc{i + 2}")
            m.d.sync += [v.eq(pipe[-1][0] & self.running), row.eq(pipe[-1][1]), ac.eq(pipe[-1][2])]
            pipe.append((v, row, ac))
        (_, row_rd, _), (v_wr, row_wr, acc_wr) = pipe[-2], pipe[-1]
        m.d.comb += [rmw.addr.eq(row_rd), rmw.en.eq(1)]
        # the last stage: add and write (mxm_acc_write)
        y = self.y
        if landing_stage(cfg):
            y = Signal(32 * L, name="y_landed")
            m.d.sync += y.eq(self.y)
        total = Cat(*((Mux(acc_wr, rmw.data[32 * c:32 * c + 32], 0) + y[32 * c:32 * c + 32])[:32]
                      for c in range(L)))
        m.d.comb += [wr.addr.eq(row_wr), wr.data.eq(total), wr.en.eq(v_wr & self.running)]

        # ---- ACCREAD engine -------------------------------------------------------------------------
        ar = Countdown(m, "ar", self.running, q.issue_accread, q.field("count"), 16)
        ar_active, ar_row = ar.active, Signal(rb)
        ar_dst, ar_ddir = Signal(range(S)), Signal()
        m.d.comb += q.ready_accread.eq(ar.ready)
        with m.If(ar.step):
            m.d.sync += ar_row.eq(ar_row + 1)
        with m.If(q.issue_accread):
            m.d.sync += [ar_row.eq(q.field("acc")), ar_dst.eq(q.field("dst")), ar_ddir.eq(q.field("ddir"))]
        m.d.comb += [rd.addr.eq(ar_row), rd.en.eq(1)]
        dv = Signal()
        m.d.sync += dv.eq(self.running & ar_active)
        # next cycle's drive enables from the engine's registers as if running, with `running` (a
        # wire across the chip) applied last, in front of their registers
        e_n, w_n, slot_n = group_enables(m, "drive_next", cfg, ar_active, ar_dst, ar_ddir, 4)
        e_r, w_r, slot_r = Signal(S, name="drive_e_r"), Signal(S, name="drive_w_r"), Signal(2 * S, name="drive_slot_r")
        m.d.sync += [e_r.eq(Mux(self.running, e_n, 0)), w_r.eq(Mux(self.running, w_n, 0)),
                     slot_r.eq(Cat(*(sl[:2] for sl in slot_n)))]
        m.d.comb += [self.e_en.eq(Mux(self.running, e_r, 0)), self.w_en.eq(Mux(self.running, w_r, 0)),
                     self.slot.eq(slot_r), self.out.eq(rd.data)]

        busy = [q.busy, cfg_pending, lw_active, mm_active, swap_pending, ar_active, dv] + [p[0] for p in pipe]
        m.d.comb += self.busy.eq(Cat(*busy).any())     # as if running (hdl/queue.py)
        return m


class MxmSuperlane(Superlane):
    """One superlane of an MXM's position (emitted unit `mxm_superlane`, hdl/superlane.py): its
    `superlane_lanes` columns, the activation and weight streams they read, and the streams the
    accumulator read-out is driven onto (4 int32 byte planes).

    Parameters
    ----------
    config : ChipConfig
    column : MxmColumn
        the emitted `mxm_column` unit, instantiated once per column.

    Members
    -------
    e_in, w_in, e_out, w_out, fetch_stream, fetch_dir, fetch_tap :
        as every superlane (`Superlane`).
    x_stream, x_dir : In; x_tap : Out(B)
        the activation stream the control samples, and this superlane of it.
    lw_stream, lw_dir : In
        the first weight stream: column c takes byte c of streams lw_stream, lw_stream + 1, ...
    x, lw_rows, lw_row, wzp, wsigned, swap, clear : In
        the control's orders to every column (`MxmColumn`).
    y : Out(32 * superlane_lanes)
        these columns' dot products.
    acc_out : In(32 * superlane_lanes); e_en, w_en : In(streams); slot : In(2 * streams)
        these columns of the accumulator row read out, and per stream whether it is driven east /
        west and with which of the 4 planes (the control's registered choices).
    """

    SHARED = ("x", "lw_rows", "lw_row", "wzp", "wsigned", "swap", "clear")

    def __init__(self, config: ChipConfig, column: MxmColumn):
        self.column = column
        S, B, SL = config.streams, config.superlane_bits, config.superlane_lanes
        shared = {n: column.signature.members[n] for n in self.SHARED}
        super().__init__(config, shared | {
            "x_stream": In(range(S)), "x_dir": In(1), "x_tap": Out(B), "lw_stream": In(range(S)), "lw_dir": In(1),
            "y": Out(32 * SL), "acc_out": In(32 * SL), "e_en": In(S), "w_en": In(S), "slot": In(2 * S)})

    def elaborate(self, platform):
        from .units import instance
        m = Module()
        cfg = self.config
        S, B, SL = cfg.streams, cfg.superlane_bits, cfg.superlane_lanes
        m.d.comb += self.x_tap.eq(self.pick(self.x_dir, self.x_stream))
        lw = [Signal(B, name=f"lw{j}") for j in range(S)]
        for v, g in zip(lw, self.pick_group(self.lw_dir, self.lw_stream, S)):
            m.d.comb += v.eq(g)
        for c in range(SL):
            # no reset: a column holds data only (its weights clear while the chip is idle)
            m.submodules[f"col{c}"] = instance("mxm_column", self.column, rst=Const(0), y=self.y[32 * c:32 * c + 32],
                                               lw_bytes=Cat(*(v[8 * c:8 * c + 8] for v in lw)),
                                               **{n: getattr(self, n) for n in self.SHARED})
        planes = [Cat(*(self.acc_out[32 * c + 8 * j:32 * c + 8 * j + 8] for c in range(SL))) for j in range(4)]
        data = [mux_tree(planes, self.slot[2 * s:2 * s + 2]) for s in range(S)]
        self.registers(m, self.e_en, self.w_en, data, data)
        return m
