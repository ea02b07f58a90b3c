"""The SYNC barrier and the hardware-aligned counter (HAC): one schedule, many chips, one time.

Every chip has a free-running 16-bit HAC. A chip that is not the root of the system's SYNC tree
(SYNC_TREE.parent names the C2C link towards its parent) sets its HAC, each time a frame from the
parent arrives, to the HAC that frame carries plus an offset. The offset is measured: every
header also carries what its sender saw of the round trip (`delta`, hdl/c2c.py), and once per
SYNC_TREE.window cycles the child sets its offset to half the round trip plus one (isa/link.py
`hac_offset`); when an update changes nothing the child is ALIGNED. So every HAC of a tree counts
in step with the root's, half way between the two directions' delays, however far apart the
chips were reset and whatever their clocks do.

A SYNC parks its queue; once every queue is parked or empty and nothing is in flight, the chip is
*quiet* (`quiet` from the run control) and holds: CYCLES stops at q, STALL counts. The barrier
runs in the IDLE frames' messages (isa/link.py `MESSAGE`), which is where they can be: a quiet
chip's send buffers drain into IDLE frames.

    up:   a chip whose own queues are quiet and whose children all report QUIET for this round
          sends QUIET(round, value) to its parent; value = the max over the subtree of
          q + sync_release (isa/spec.py).
    root: when its subtree is quiet it arms the release: at = HAC + SYNC_MARGIN (at least the
          chip's positions), T = value.
    down: an armed chip sends RELEASE(round, T, at) to its children, which arm with the same values.
    release: on the cycle the HAC reaches `at`, every chip of the tree sets CYCLES to T and its
          parked queues issue their next word on the cycle after; the round flips.

So all chips resume on one HAC value with one program time T, as the golden model has it
(sim/queue.py). Messages are latched per link until the next one, and the round bit (the parity
of the SYNCs released since START) keeps a stale one from counting twice. A chip that holds
longer than SYNC_TIMEOUT cycles raises `timeout` (the parked queues stop the chip with
SYNC_TIMEOUT).
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import hostmap, spec
from isa.config import ChipConfig
from isa.link import DELTA_BITS, HAC_BITS, MESSAGE, MESSAGE_BITS, MsgKind

MSG = {f.name: f for f in MESSAGE}


def _msg_field(word, name):
    f = MSG[name]
    return word[f.lsb:f.lsb + f.width]


def _msg(**fields):
    """A MESSAGE word from field values (the others 0)."""
    parts, at = [], 0
    for f in MESSAGE:
        assert f.lsb == at, "MESSAGE fields must be contiguous"
        v = Value.cast(fields.pop(f.name, Const(0, f.width))).as_unsigned()
        parts.append(v[:f.width] if len(v) >= f.width else Cat(v, Const(0, f.width - len(v))))
        at += f.width
    assert not fields, sorted(fields)
    return Cat(*parts)


class SyncUnit(wiring.Component):
    """The chip's HAC and its part of the SYNC barrier (the module docstring).

    Parameters
    ----------
    config : ChipConfig
        c2c_links (one message pair per link) and positions (sync_release, the least margin).

    Members
    -------
    start : In(1)
        START: round and STALL start from 0.
    running, quiet, err : In(1)
        the chip runs; it is quiet (held at a SYNC) this cycle; some slice raises an error.
    cycles : In(32)
        CYCLES (q while quiet).
    release : Out(1); t_rel : Out(32)
        this cycle releases the SYNC; CYCLES becomes t_rel (`release` is a register: the parked
        queues take it from a flip-flop).
    timeout : Out(1)
        held longer than SYNC_TIMEOUT cycles: an error stop, decided here (run control takes it
        with the slices' errors; the parked queues report it in ERROR_INFO, hdl/fabric.py).
    tree, children, margin, timeout_limit : In(32)
        SYNC_TREE, SYNC_CHILDREN, SYNC_MARGIN and SYNC_TIMEOUT as the host wrote them.
    stall : Out(32); hac : Out(HAC_BITS); aligned : Out(1); offset : Out(HAC_BITS)
        STALL, the HAC, whether it follows its parent's (always, for a root) and with what offset.
    rx_valid, rx_msg_valid : In(1) array; rx_hac : In(HAC_BITS) array; rx_delta : In(DELTA_BITS) array;
    rx_msg : In(MESSAGE_BITS) array
        per link (westmost 0): a frame arrived on the chip's side this cycle with its sender's HAC
        and round-trip measurement, and, for an IDLE frame with a clean message codeword, its message.
    tx_msg : Out(MESSAGE_BITS) array
        per link, the message its IDLE frames carry.
    """

    def __init__(self, config: ChipConfig):
        self.config = config
        n = max(config.c2c_links, 1)
        super().__init__({
            "start": In(1), "running": In(1), "quiet": In(1), "err": In(1), "cycles": In(32),
            "release": Out(1), "t_rel": Out(32), "timeout": Out(1),
            "tree": In(32), "children": In(32), "margin": In(32), "timeout_limit": In(32),
            "stall": Out(32), "hac": Out(HAC_BITS), "aligned": Out(1), "offset": Out(HAC_BITS),
            "rx_valid": In(1).array(n), "rx_hac": In(HAC_BITS).array(n), "rx_delta": In(DELTA_BITS).array(n),
            "rx_msg_valid": In(1).array(n), "rx_msg": In(MESSAGE_BITS).array(n),
            "tx_msg": Out(MESSAGE_BITS).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        n = cfg.c2c_links
        tf = hostmap.fields("SYNC_TREE")
        parent = self.tree[tf["parent"].lsb:tf["parent"].lsb + tf["parent"].width]
        window = self.tree[tf["window"].lsb:tf["window"].lsb + tf["window"].width]
        mf = hostmap.fields("SYNC_MARGIN")["margin"]
        margin = Signal(16)
        m.d.comb += margin.eq(Mux(self.margin[mf.lsb:mf.lsb + mf.width] < cfg.positions, cfg.positions,
                                  self.margin[mf.lsb:mf.lsb + mf.width]))
        is_root = parent >= n if n else Const(1, 1)           # a chip without links is its own root

        # ---- the HAC: free running, or the parent's plus the measured offset as its frames arrive --
        hac, offset, settled = self.hac, self.offset, Signal()
        hac_next = Signal(HAC_BITS)      # (the release is decided a cycle ahead, from next values)
        m.d.comb += [self.aligned.eq(is_root | settled), hac_next.eq(hac + 1)]
        m.d.sync += hac.eq(hac_next)
        settle = Signal(16)
        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        if n:
            sel = parent[:max(1, (n - 1).bit_length())]
            with m.If(~is_root & Array(self.rx_valid)[sel]):
                m.d.comb += hac_next.eq(Array(self.rx_hac)[sel] + offset)
                with m.If(settle == 0):         # the parent measured frames sent with this offset
                    trip = Signal(DELTA_BITS)
                    m.d.comb += trip.eq(offset - 1 - Array(self.rx_delta)[sel])
                    new = (trip >> 1) + 1
                    m.d.sync += [offset.eq(new), settle.eq(window)]
                    with m.If(new == offset):
                        m.d.sync += settled.eq(1)

        # ---- the barrier ----------------------------------------------------------------------------
        rnd, armed, at, t_rel = Signal(), Signal(), Signal(HAC_BITS), Signal(32)
        armed_next, at_next, t_rel_next = Signal(), Signal(HAC_BITS), Signal(32)
        m.d.sync += [armed.eq(armed_next), at.eq(at_next), t_rel.eq(t_rel_next)]
        m.d.comb += [armed_next.eq(armed), at_next.eq(at), t_rel_next.eq(t_rel)]
        latched = [Signal(MESSAGE_BITS, name=f"msg_in{i}") for i in range(n)]
        for i in range(n):
            with m.If(self.rx_msg_valid[i]):
                m.d.sync += latched[i].eq(self.rx_msg[i])

        def says(i, kind):
            return (_msg_field(latched[i], "kind") == kind) & (_msg_field(latched[i], "round") == rnd)

        own = Signal(32)
        m.d.comb += own.eq(self.cycles + spec.sync_release(cfg))
        value, children_quiet = own, Const(1, 1)
        for i in range(n):
            child = self.children[i]
            quiet_i = says(i, MsgKind.QUIET)
            children_quiet = children_quiet & (~child | quiet_i)
            v_i = _msg_field(latched[i], "value")
            value = Mux(child & quiet_i & (v_i > value), v_i, value)
        sub_value, sub_quiet = Signal(32), Signal()
        m.d.comb += [sub_value.eq(value), sub_quiet.eq(self.quiet & self.aligned & children_quiet)]

        with m.If(is_root & sub_quiet & ~armed):
            m.d.comb += [armed_next.eq(1), at_next.eq(hac + margin), t_rel_next.eq(sub_value)]
        # a child arms (while quiet) from its parent's RELEASE message on link i
        told = [~is_root & (parent == i) & ~armed & says(i, MsgKind.RELEASE) for i in range(n)]
        for i in range(n):
            with m.If(told[i] & self.quiet):
                m.d.comb += [armed_next.eq(1), at_next.eq(_msg_field(latched[i], "at")),
                             t_rel_next.eq(_msg_field(latched[i], "value"))]
            up = Mux(sub_quiet, _msg(kind=Const(MsgKind.QUIET, 2), round=rnd, value=sub_value), 0)
            down = Mux(armed, _msg(kind=Const(MsgKind.RELEASE, 2), round=rnd, value=t_rel, at=at), 0)
            m.d.comb += self.tx_msg[i].eq(Mux(~is_root & (parent == i), up, Mux(self.children[i], down, 0)))

        # The release is a register, decided on the cycle before it from next values. A chip is
        # armed only while quiet and stays quiet until released or stopped (nothing is busy, so
        # nothing can raise an error but the timeout), so a release on t+1 is: quiet on t, not
        # stopping on t (an error or the timeout), armed on t+1 and its HAC at or past `at` on t+1.
        # The release then reaches every queue from a flip-flop, not from the ORs of their state.
        # (`quiet` comes from the ORs across the chip, so it meets each term last: armed now and
        # not released, or armed this cycle from a RELEASE message, each with its own compare;
        # a root arming now cannot release next cycle, its margin being at least 2.)
        assert cfg.positions >= 2, "a root's release comes at least two cycles after it arms"

        def reached(at_value):               # the HAC at or past `at` next cycle: hac - at in [0, 2^15)
            return ~(hac_next - at_value)[HAC_BITS - 1]
        m.d.comb += self.t_rel.eq(t_rel)
        stays = armed & ~self.release & reached(at)
        for i in range(n):
            stays = stays | (told[i] & reached(_msg_field(latched[i], "at")))
        m.d.sync += self.release.eq(self.quiet & ~self.err & ~self.timeout & ~self.start & stays)
        with m.If(self.release):            # (hac - at in [0, 2^15): at or past `at`)
            m.d.comb += armed_next.eq(0)
            m.d.sync += rnd.eq(~rnd)

        # ---- STALL and the timeout ------------------------------------------------------------------
        held = Signal(32)
        with m.If(self.running & self.quiet):
            m.d.sync += [held.eq(held + 1), self.stall.eq(self.stall + 1)]
        with m.Else():
            m.d.sync += held.eq(0)
        m.d.comb += self.timeout.eq(self.running & self.quiet & (held >= self.timeout_limit))
        with m.If(self.start):
            m.d.comb += armed_next.eq(0)
            m.d.sync += [rnd.eq(0), self.stall.eq(0), held.eq(0)]
        return m
