"""C2C slice: one chip-to-chip link with its queue, a send engine and a receive engine.

Frame format, training and latency are isa/link.py's. The slice has two clock domains: `sync`,
the chip's, and `rx`, the clock the link's receive lanes arrive with (the sender's clock, as a
receiver's clock recovery gives it). Everything of the receive path up to the receive buffer
runs on `rx`; the buffer (an asynchronous FIFO) is the elastic buffer that absorbs the two
clocks' difference.

    SEND (sync): element k samples the tap on t+1+k into the send buffer with its link time
        tau = t+1+k*flits; the engine stays busy for count*flits cycles.
    TX   (sync): from reset, TRAIN_DELAY cycles of zeros, TRAIN_CYCLES of FILL, one of END, then
        frames back to back, `flits` cycles each: the send buffer's head as a DATA frame, or
        an IDLE frame. Codewords are SECDED-encoded and bit-interleaved into flits; the lanes
        leave through a register.
    RX   (rx): each lane through a delay line of up to c2c_skew cycles; training sets the delays
        so that every lane's END lines up with the slowest one, and frame 0 starts on the next
        cycle. Flits are gathered into a frame register (stage 1), decoded (stage 2: corrected
        words, per-codeword flags) and DATA frames, or frames whose header cannot be trusted,
        enter the receive buffer with their stamp and a `bad` flag.
    RECV (sync): element k, on t+1+k, takes the buffer's head if it is there and its stamp is
        at least `lat` cycles old (LINK_RECV otherwise) and its frame was good (LINK_FEC
        otherwise), and drives it on t+2+k. While the chip is idle the buffer drops what arrives.

Counters of corrected and uncorrectable codewords run on `rx` (since reset) and reach `sync`
Gray-coded; the link is up once the receiver trained and down for good if it did not train
within TRAIN_TIMEOUT cycles of reset (LINK_DOWN on any SEND or RECV). A vector that arrives at a
full receive buffer is lost: counted the same way, it sets `overflow` until the next START and a
RECV on the link stops with LINK_OVERFLOW.

For the SYNC barrier (hdl/sync.py) every header also carries the chip's HAC and `delta` (the
peer's HAC as it last arrived minus ours), and IDLE frames carry the sync unit's message in
their first payload codeword. What arrives of these crosses to `sync` through `ctlbuf`, an
asynchronous FIFO written on the same cycle as the receive buffer and built alike, so the HAC
arrives on the cycle a vector sent with it would become takeable.
"""
from amaranth.hdl import Array, Cat, ClockDomain, ClockSignal, Const, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.fifo import AsyncFIFO, SyncFIFO
from amaranth.lib.wiring import In, Out

from isa import link, spec
from isa.config import ChipConfig, SliceKind
from isa.link import CODEWORD_BITS, CODEWORD_DATA, DELTA_BITS, HAC_BITS, MESSAGE_BITS, FrameKind, LinkFormat

from .ecc import SecdedDecoder, SecdedEncoder
from .latency import check_latencies
from .queue import attach_queue, slice_queue_ports

# error_stop 0 only: with a lagged stop, run control's program time (`cycle`, Chip `now`) is
# built for links but no system with such a chip is tested yet
NATURAL = {"c2c_send_sample": 1, "c2c_recv_take": 1, "c2c_recv_drive": 2, "error_stop": 0}
KIND, STAMP, HAC, DELTA = link.HEADER
COUNTER_BITS = 32


def _check_timing(config: ChipConfig):
    check_latencies(config, NATURAL, "C2C RTL")


def link_ports(config: ChipConfig) -> dict:
    """A link's pins: the send lanes (chip clock), the receive lanes and the clock they come with."""
    n = config.c2c_lanes * config.c2c_lane_bits
    return {"tx": Out(n), "rx": In(n), "rx_clk": In(1)}


class C2cSlice(wiring.Component):
    """One C2C slice (emitted unit `c2c_slice`): queue, send and receive engines, the link's TX and RX.

    Parameters
    ----------
    config : ChipConfig
        word_bits, streams, c2c_lanes, c2c_lane_bits, c2c_depth, c2c_skew.

    Members
    -------
    running, host_q_*, q_len, fetch_stream, fetch_dir, fetch_tap, busy, err, err_code, err_pc :
        the queue ports every slice with a queue has (`hdl/queue.py` `slice_queue_ports`).
    cycle : In(32)
        the chip's CYCLES: link times are stamped and checked with it.
    tap_stream, tap_dir : Out; tap : In(word_bits)
        the stream SEND samples this cycle, and its value passing the slice.
    drive_data : Out(word_bits); drive_e_en, drive_w_en : Out(streams)
        RECV's vector and the stream it drives.
    tx : Out(lanes x lane_bits); rx : In; rx_clk : In(1)
        the link's pins (`link_ports`).
    hac : In(HAC_BITS); tx_msg : In(MESSAGE_BITS)
        the chip's HAC, which every frame's header carries, and the SYNC message IDLE frames carry
        (hdl/sync.py).
    rx_valid, rx_msg_valid : Out(1); rx_hac : Out(HAC_BITS); rx_delta : Out(DELTA_BITS); rx_msg : Out(MESSAGE_BITS)
        a frame arrived on the chip's side this cycle (through a buffer like the receive buffer, so
        on the cycle its vector would become takeable) with the sender's HAC and `delta` (the
        sender's HAC minus ours, as the sender saw them), and an IDLE frame's clean message. Every
        header sent carries the same measurement the other way (isa/link.py `hac_offset`).
    link_up, link_failed, fec_sticky : Out(1)
        trained; failed training (down for good); an uncorrectable codeword arrived since reset.
    overflow : Out(1)
        a vector arrived at a full receive buffer since START (it is lost: a RECV stops with LINK_OVERFLOW).
    fec_corrected, fec_uncorrectable : Out(32)
        codewords corrected / found uncorrectable since reset.
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        self.fmt = LinkFormat.of(config)
        S, W = config.streams, config.word_bits
        super().__init__(slice_queue_ports(config) | link_ports(config) | {
            "cycle": In(32),
            "tap_stream": Out(range(S)), "tap_dir": Out(1), "tap": In(W),
            "drive_data": Out(W), "drive_e_en": Out(S), "drive_w_en": Out(S),
            "hac": In(HAC_BITS), "tx_msg": In(MESSAGE_BITS),
            "rx_valid": Out(1), "rx_hac": Out(HAC_BITS), "rx_delta": Out(DELTA_BITS),
            "rx_msg_valid": Out(1), "rx_msg": Out(MESSAGE_BITS),
            "link_up": Out(1), "link_failed": Out(1), "fec_sticky": Out(1), "overflow": Out(1),
            "fec_corrected": Out(COUNTER_BITS), "fec_uncorrectable": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, fmt = self.config, self.fmt
        m.domains.rx = ClockDomain("rx", local=True)
        m.d.comb += ClockSignal("rx").eq(self.rx_clk)
        # the rx domain leaves reset two rx cycles after the chip (synchronously; held while no rx clock runs)
        rx_rst = Signal()
        m.submodules.rx_reset = FFSynchronizer(ResetSignal("sync"), rx_rst, o_domain="rx", init=1, reset_less=True)
        m.d.comb += ResetSignal("rx").eq(rx_rst)

        m.submodules.rxbuf = rxbuf = AsyncFIFO(width=cfg.word_bits + STAMP.width + 1, depth=cfg.c2c_depth,
                                               w_domain="rx", r_domain="sync")
        # every frame's HAC and message, on the same path as the receive buffer's (same latency)
        m.submodules.ctlbuf = ctlbuf = AsyncFIFO(width=HAC_BITS + DELTA_BITS + MESSAGE_BITS + 1, depth=4,
                                                 w_domain="rx", r_domain="sync")
        got = ctlbuf.r_data
        m.d.comb += [ctlbuf.r_en.eq(1), self.rx_valid.eq(ctlbuf.r_rdy), self.rx_hac.eq(got[:HAC_BITS]),
                     self.rx_delta.eq(got[HAC_BITS:HAC_BITS + DELTA_BITS]),
                     self.rx_msg.eq(got[HAC_BITS + DELTA_BITS:HAC_BITS + DELTA_BITS + MESSAGE_BITS]),
                     self.rx_msg_valid.eq(ctlbuf.r_rdy & got[-1])]
        self._delta = Signal(DELTA_BITS)        # the peer's HAC as it arrived minus ours, for our headers
        with m.If(ctlbuf.r_rdy):
            m.d.sync += self._delta.eq(self.rx_hac - self.hac)
        m.submodules.txbuf = txbuf = SyncFIFO(width=cfg.word_bits + STAMP.width, depth=cfg.c2c_depth + 2)
        up = self._status(m)
        recv_err, recv_code, recv_pc, down_err = Signal(), Signal(4), Signal(16), Signal()
        q = attach_queue(m, self, SliceKind.C2C,
                         errors=[(recv_err, recv_code, recv_pc), (down_err, spec.ErrorCode.LINK_DOWN, None)])
        self._engines(m, q, up, txbuf, rxbuf, recv_err, recv_code, recv_pc, down_err)
        self._tx(m, txbuf)
        self._rx(m, rxbuf, ctlbuf)
        return m

    # ---- sync domain: status, engines ---------------------------------------------------------
    def _status(self, m):
        """link_up / link_failed from the receiver's training, with the local timeout."""
        trained, failed = Signal(), Signal()
        self._rx_trained, self._rx_failed, self._rx_fec = Signal(), Signal(), Signal()
        m.submodules.sync_trained = FFSynchronizer(self._rx_trained, trained)
        m.submodules.sync_failed = FFSynchronizer(self._rx_failed, failed)
        m.submodules.sync_fec = FFSynchronizer(self._rx_fec, self.fec_sticky)
        timer = Signal(range(link.TRAIN_TIMEOUT + 1))
        timed_out = Signal()
        with m.If(timer != link.TRAIN_TIMEOUT):
            m.d.sync += timer.eq(timer + 1)
        with m.Elif(~trained):
            m.d.sync += timed_out.eq(1)
        m.d.comb += [self.link_up.eq(trained & ~failed & ~timed_out), self.link_failed.eq(failed | timed_out)]
        return self.link_up

    def _engines(self, m, q, up, txbuf, rxbuf, recv_err, recv_code, recv_pc, down_err):
        """SEND and RECV, and the slice's busy."""
        cfg, F = self.config, self.fmt.flits
        S, W = cfg.streams, cfg.word_bits
        running = self.running
        count_w = q.fields["count"].width

        # ---- SEND: sample into the send buffer, engine busy count*flits cycles ---------------
        s_left = Signal(count_w)                       # samples to go
        s_busy = Signal(count_w + F.bit_length())      # engine cycles to go
        s_stream, s_dir, tau = Signal(range(S)), Signal(), Signal(32)
        m.d.comb += [self.tap_stream.eq(s_stream), self.tap_dir.eq(s_dir),
                     txbuf.w_data.eq(Cat(self.tap, tau)), txbuf.w_en.eq(running & (s_left != 0)),
                     q.ready_send.eq(s_busy <= 1)]
        with m.If(running & (s_left != 0)):
            m.d.sync += [s_left.eq(s_left - 1), tau.eq(tau + F)]
        with m.If(running & (s_busy != 0)):
            m.d.sync += s_busy.eq(s_busy - 1)
        with m.If(q.issue_send):
            with m.If(up):
                m.d.sync += [s_left.eq(q.field("count")), s_busy.eq(q.field("count") * F),
                             s_stream.eq(q.field("stream")), s_dir.eq(q.field("dir")),
                             tau.eq(self.cycle + spec.timing(cfg)["c2c_send_sample"])]
            with m.Else():
                m.d.comb += down_err.eq(1)

        # ---- RECV: take the head on t+1+k, drive on t+2+k ------------------------------------
        r_left = Signal(count_w)
        r_stream, r_dir, r_lat = Signal(range(S)), Signal(), Signal(16)
        head_data = rxbuf.r_data[:W]
        head_stamp = rxbuf.r_data[W:W + STAMP.width]
        head_bad = rxbuf.r_data[W + STAMP.width]
        age = Signal(32)
        m.d.comb += age.eq(self.cycle - head_stamp)
        due = rxbuf.r_rdy & ~age[31] & (age >= r_lat)   # (a stamp from the future reads negative)
        taking = running & (r_left != 0)
        ok = due & ~head_bad
        # a bad frame is LINK_FEC whatever its stamp says (a corrupted header's stamp means nothing)
        # while the chip is idle its receive buffer drops whatever arrives, so a run never takes
        # what an earlier, aborted run left behind (chips of a system start together)
        ok = ok & ~self.overflow
        m.d.comb += [rxbuf.r_en.eq((taking & ok) | ~running), q.ready_recv.eq(r_left <= 1),
                     recv_err.eq(taking & ~ok),
                     recv_code.eq(Mux(self.overflow, spec.ErrorCode.LINK_OVERFLOW,
                                      Mux(rxbuf.r_rdy & head_bad, spec.ErrorCode.LINK_FEC, spec.ErrorCode.LINK_RECV)))]
        with m.If(taking):
            m.d.sync += r_left.eq(r_left - 1)
        with m.If(q.issue_recv):
            with m.If(up):
                m.d.sync += [r_left.eq(q.field("count")), r_stream.eq(q.field("stream")),
                             r_dir.eq(q.field("dir")), r_lat.eq(q.field("lat")), recv_pc.eq(q.pc)]
            with m.Else():
                m.d.comb += down_err.eq(1)
        d_valid, d_stream, d_dir, d_data = Signal(), Signal(range(S)), Signal(), Signal(W)
        m.d.sync += [d_valid.eq(taking & ok), d_stream.eq(r_stream), d_dir.eq(r_dir), d_data.eq(head_data)]
        dv = d_valid & running                         # a halted chip drives nothing
        m.d.comb += self.drive_data.eq(d_data)
        for i in range(S):
            m.d.comb += [self.drive_e_en[i].eq(dv & (d_stream == i) & ~d_dir),
                         self.drive_w_en[i].eq(dv & (d_stream == i) & d_dir)]

        with m.If(~running):
            m.d.sync += [s_left.eq(0), s_busy.eq(0), r_left.eq(0)]
        m.d.comb += self.busy.eq(q.busy | (s_busy != 0) | (r_left != 0) | d_valid)     # as if running (hdl/queue.py)

    # ---- TX (sync domain) -----------------------------------------------------------------------
    def _tx(self, m, txbuf):
        cfg, fmt = self.config, self.fmt
        F, C, FB, LB = fmt.flits, fmt.codewords, fmt.flit_bits, cfg.c2c_lane_bits
        W = cfg.word_bits
        pats = link.lane_patterns(LB)
        # what the next frame carries: the send buffer's head, or nothing (IDLE)
        has = txbuf.r_rdy
        head = Signal(CODEWORD_DATA)
        m.d.comb += head.eq(Mux(has, FrameKind.DATA | txbuf.r_data[W:] << STAMP.lsb, FrameKind.IDLE)
                            | self.hac << HAC.lsb | self._delta << DELTA.lsb)
        payload = Signal(C * CODEWORD_DATA - CODEWORD_DATA)
        m.d.comb += payload.eq(Mux(has, txbuf.r_data[:W], self.tx_msg))
        words = [head] + [payload[i * CODEWORD_DATA:(i + 1) * CODEWORD_DATA] for i in range(C - 1)]
        cws = []
        for i, w in enumerate(words):
            enc = SecdedEncoder(CODEWORD_DATA)
            m.submodules[f"fec_enc{i}"] = enc
            m.d.comb += enc.data.eq(w)
            cws.append(Cat(w, enc.ecc))
        frame = Cat(*(cws[j % C][j // C] for j in range(fmt.frame_bits)), Const(0, F * FB - fmt.frame_bits))
        frame_q = Signal(F * FB)
        flit = Signal(range(F))
        # phases: reset delay, FILL, END, frames
        t_cnt = Signal(range(link.TRAIN_DELAY + link.TRAIN_CYCLES + 2))
        training = t_cnt != link.TRAIN_DELAY + link.TRAIN_CYCLES + 1
        out = Signal(FB)
        with m.If(training):
            m.d.sync += t_cnt.eq(t_cnt + 1)
            with m.If(t_cnt < link.TRAIN_DELAY):
                m.d.sync += out.eq(0)
            with m.Elif(t_cnt < link.TRAIN_DELAY + link.TRAIN_CYCLES):
                m.d.sync += out.eq(Cat(*[Const(pats["FILL"], LB)] * cfg.c2c_lanes))
            with m.Else():                           # END, and the first frame is loaded
                m.d.sync += [out.eq(Cat(*[Const(pats["END"], LB)] * cfg.c2c_lanes)), frame_q.eq(frame), flit.eq(0)]
                m.d.comb += txbuf.r_en.eq(1)
        with m.Else():
            m.d.sync += out.eq(frame_q.word_select(flit, FB))
            with m.If(flit == F - 1):
                m.d.sync += [flit.eq(0), frame_q.eq(frame)]
                m.d.comb += txbuf.r_en.eq(1)
            with m.Else():
                m.d.sync += flit.eq(flit + 1)
        m.d.comb += self.tx.eq(out)

    # ---- RX (rx domain) -------------------------------------------------------------------------
    def _rx(self, m, rxbuf, ctlbuf):
        cfg, fmt = self.config, self.fmt
        F, C, FB, LB, L = fmt.flits, fmt.codewords, fmt.flit_bits, cfg.c2c_lane_bits, cfg.c2c_lanes
        W, K = cfg.word_bits, cfg.c2c_skew
        end = link.lane_patterns(LB)["END"]
        rx = m.d.rx
        raw = [self.rx[l * LB:(l + 1) * LB] for l in range(L)]

        # deskew: lane l is taken d[l] cycles late
        delay = [Signal(range(K + 1), name=f"delay{l}") for l in range(L)]
        aligned = []
        for l in range(L):
            hist = [raw[l]]
            for k in range(K):
                h = Signal(LB, name=f"lane{l}_d{k + 1}")
                rx += h.eq(hist[-1])
                hist.append(h)
            aligned.append(Array(hist)[delay[l]] if K else raw[l])

        # training: note each lane's END; line them up; frame 0 starts the next cycle
        cnt = Signal(16)
        with m.If(cnt != 0xFFFF):
            rx += cnt.eq(cnt + 1)
        trained, failed = self._rx_trained, self._rx_failed
        seen = Signal(L)
        at = [Signal(16, name=f"end_at{l}") for l in range(L)]
        first = Signal(16)
        hit = Cat(*(raw[l] == end for l in range(L)))
        searching = ~trained & ~failed
        all_now = (seen | hit).all()
        with m.If(searching):
            for l in range(L):
                with m.If(hit[l] & ~seen[l]):
                    rx += [seen[l].eq(1), at[l].eq(cnt)]
            with m.If((seen == 0) & hit.any()):
                rx += first.eq(cnt)
            spread = Mux(seen.any(), cnt - first, 0)
            with m.If(all_now):
                with m.If(spread > K):
                    rx += failed.eq(1)
                with m.Else():
                    rx += trained.eq(1)
                    rx += [delay[l].eq(Mux(seen[l], cnt - at[l], 0)) for l in range(L)]
            with m.Elif(seen.any() & (spread >= K)):
                rx += failed.eq(1)

        # deserialize: flits 0..F-2 gathered, the last one completes the frame (stage 1)
        rflit = Signal(range(F))
        acc = [Signal(FB, name=f"flit{f}") for f in range(F - 1)]
        word = Cat(*aligned)
        with m.If(trained):
            rx += rflit.eq(Mux(rflit == F - 1, 0, rflit + 1))
            for f in range(F - 1):
                with m.If(rflit == f):
                    rx += acc[f].eq(word)
        with m.If(searching & all_now):
            rx += rflit.eq(0)
        v1, frame = Signal(), Signal(F * FB)
        rx += [v1.eq(trained & (rflit == F - 1)), frame.eq(Cat(*acc, word))]

        # stage 2: FEC decode of every codeword
        cws = [Cat(*(frame[j] for j in range(fmt.frame_bits) if j % C == c)) for c in range(C)]
        outs, corr, unc = [], [], []
        for c, cw in enumerate(cws):
            dec = SecdedDecoder(CODEWORD_DATA)
            m.submodules[f"fec_dec{c}"] = dec
            m.d.comb += [dec.data.eq(cw[:CODEWORD_DATA]), dec.ecc.eq(cw[CODEWORD_DATA:CODEWORD_BITS])]
            outs.append(dec.out)
            corr.append(dec.corrected)
            unc.append(dec.uncorrectable)
        v2, kind, stamp, vec, bad, n_corr, n_unc = (Signal(), Signal(KIND.width), Signal(STAMP.width), Signal(W),
                                                   Signal(), Signal(range(C + 1)), Signal(range(C + 1)))
        rx += [v2.eq(v1), kind.eq(outs[0][KIND.lsb:KIND.lsb + KIND.width]),
               stamp.eq(outs[0][STAMP.lsb:STAMP.lsb + STAMP.width]), vec.eq(Cat(*outs[1:])[:W]),
               bad.eq(Cat(*unc).any()), n_corr.eq(sum(corr)), n_unc.eq(sum(unc))]
        head_bad, hac, delta, msg, msg_ok = (Signal(), Signal(HAC_BITS), Signal(DELTA_BITS), Signal(MESSAGE_BITS),
                                             Signal())
        rx += [head_bad.eq(unc[0]), hac.eq(outs[0][HAC.lsb:HAC.lsb + HAC.width]),
               delta.eq(outs[0][DELTA.lsb:DELTA.lsb + DELTA.width]), msg.eq(outs[1][:MESSAGE_BITS]),
               msg_ok.eq((outs[0][KIND.lsb:KIND.lsb + KIND.width] == FrameKind.IDLE) & ~unc[1])]
        m.d.comb += [rxbuf.w_data.eq(Cat(vec, stamp, bad)),
                     rxbuf.w_en.eq(v2 & ((kind == FrameKind.DATA) | head_bad)),
                     ctlbuf.w_data.eq(Cat(hac, delta, msg, msg_ok)), ctlbuf.w_en.eq(v2 & ~head_bad)]

        # counters since reset, Gray-coded across to the chip's clock (one step per rx cycle)
        lost = Signal()
        m.d.comb += lost.eq(rxbuf.w_en & ~rxbuf.w_rdy)
        overflows = Signal(COUNTER_BITS)
        for name, n, v, out in (("corrected", n_corr, v2, self.fec_corrected),
                                ("uncorrectable", n_unc, v2, self.fec_uncorrectable), ("overflows", lost, 1, overflows)):
            pend, count, gray = Signal(16, name=f"{name}_pend"), Signal(COUNTER_BITS, name=f"{name}_bin"), \
                Signal(COUNTER_BITS, name=f"{name}_gray")
            step = pend != 0
            rx += [pend.eq(pend + Mux(v, n, 0) - step), count.eq(count + step),
                   gray.eq((count + step) ^ ((count + step) >> 1))]
            g_sync = Signal(COUNTER_BITS, name=f"{name}_gray_sync")
            m.submodules[f"sync_{name}"] = FFSynchronizer(gray, g_sync)
            binary = [g_sync[COUNTER_BITS - 1]]
            for i in reversed(range(COUNTER_BITS - 1)):
                binary.insert(0, binary[0] ^ g_sync[i])
            m.d.comb += out.eq(Cat(*binary))
        with m.If(v2 & (n_unc != 0)):
            rx += self._rx_fec.eq(1)
        # overflow since START: the count moved since the chip last was idle
        base = Signal(COUNTER_BITS)
        with m.If(~self.running):
            m.d.sync += base.eq(overflows)
        m.d.comb += self.overflow.eq(overflows != base)
