"""In-order instruction queue (the per-slice part of the ICU), refilled during the run by IFETCH.

The queue is a ring of `queue_depth` instruction words, stored as rows of
`fetch_words` words (one stream vector's worth). Before START the host writes
words from index 0 and sets Q_LEN; during the run IFETCH takes vectors off a
stream (sent by a MEM READ elsewhere) and appends their words at the fill point,
so a program is as long as SRAM allows while the ring only buffers what is
about to issue. On each running cycle the head either issues (strobe
`issue_<op>`), waits (NOP count, or the engine it needs is busy: `ready_<op>`
low) or raises `err`; the chip stops at the end of that cycle. NOP, SYNC and IFETCH
are handled here, every other opcode by the slice. Timing is the spec's:
instruction k+1 issues on the cycle after instruction k, NOP n delays the next
issue by n cycles, and IFETCH's words land on t+ifetch_write+k.

Errors, besides illegal words: QUEUE_UNDERRUN (the next word is needed while a
fetch is in flight but has not landed), QUEUE_OVERFLOW (a vector lands while
more than queue_depth - fetch_words words are unissued) and FETCH_ALIGN
(IFETCH while the fill point is not a multiple of fetch_words).
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind

from .decoder import Decoded
from .latency import check_latencies

NOP_FIELD = spec.BY_MNEMONIC["NOP"].field("cycles")
QUEUE_OPS = ("NOP", "IFETCH", "SYNC")  # executed by the queue itself, never handed to the slice
# the fetch pipeline this RTL has: sample register on t+1+k, ring write at the end of t+2+k
NATURAL = {"ifetch_sample": 1, "ifetch_write": 2}


def _check_timing(config: ChipConfig):
    check_latencies(config, NATURAL, "queue RTL", stretch="ifetch_write")


def decode_stage(config: ChipConfig) -> int:
    """1 when the configuration gives a written row a cycle more (ifetch_write one above NATURAL):
    the row and its decode are registered before the ring write, so no decoder sits in front of
    the block RAM or the head's decode registers (an FPGA's block RAM is slow and sited apart)."""
    return spec.timing(config)["ifetch_write"] - NATURAL["ifetch_write"]


def host_stages(config: ChipConfig) -> int:
    """Registers a host row passes in the queue before its decode: one, two with a decode stage
    (the host port sits mid-chip and the queues' rings and decoders anywhere on an FPGA: one
    register between them left a wire across the device on either side of it)."""
    return 1 + decode_stage(config)


def host_load_cycles(config: ChipConfig) -> int:
    """Cycles from the host port's registered row output to the ring write, less one: how many
    cycles the host port delays START so that every word loaded before it lands before cycle 0."""
    return host_stages(config) + decode_stage(config)


def slice_queue_ports(config: ChipConfig) -> dict:
    """Ports every slice with a queue has: run control, the host's queue load, the fetch tap, status."""
    qbits = (config.queue_depth - 1).bit_length()
    return {
        "running": In(1),
        # host queue load: per-word enables of one ring row (a register write sets one, a stream
        # beat all of them), the row, and its words
        "host_q_we": In(config.fetch_words), "host_q_addr": In(qbits - (config.fetch_words - 1).bit_length()),
        "host_q_data": In(config.fetch_words * spec.WORD_BITS),
        "host_q_len_we": In(1), "host_q_len": In(qbits + 1), "q_len": Out(qbits + 1),
        # IFETCH names the stream it samples this cycle; the chip returns that stream's low
        # fetch_words x 64 bits as they pass the slice (V(p, t))
        "fetch_stream": Out(range(config.streams)), "fetch_dir": Out(1),
        "fetch_tap": In(config.fetch_words * spec.WORD_BITS),
        "busy": Out(1), "err": Out(1), "err_code": Out(4), "err_pc": Out(16),
        # SYNC (hdl/sync.py): this queue is parked at one; the chip's release
        "parked": Out(1), "sync_release": In(1),
    }


def attach_queue(m: Module, slice_, kind: SliceKind, errors=()) -> "InstructionQueue":
    """Add the slice's InstructionQueue to `m`, wired to the ports of slice_queue_ports().

    `errors`: the slice's own errors, [(err, code, pc)] (pc None: the queue's), reported when the
    queue itself has none this cycle, the first listed first. Without either, a parked queue's
    record (SYNC_TIMEOUT at its SYNC) is reported, for the chip's timeout (hdl/fabric.py)."""
    m.submodules.queue = q = InstructionQueue(slice_.config, kind)
    m.d.comb += [
        q.running.eq(slice_.running),
        q.host_we.eq(slice_.host_q_we), q.host_addr.eq(slice_.host_q_addr), q.host_data.eq(slice_.host_q_data),
        q.host_len_we.eq(slice_.host_q_len_we), q.host_len.eq(slice_.host_q_len), slice_.q_len.eq(q.length),
        slice_.fetch_stream.eq(q.fetch_stream), slice_.fetch_dir.eq(q.fetch_dir), q.fetch_tap.eq(slice_.fetch_tap),
        slice_.parked.eq(q.parked), q.sync_release.eq(slice_.sync_release),
    ]
    err, code, pc = Const(0, 1), Const(0, 4), q.pc
    for e, c, p in reversed(errors):
        err, code, pc = err | e, Mux(e, c, code), Mux(e, q.pc if p is None else p, pc)
    own = q.err | (q.parked & ~err)
    m.d.comb += q.slice_err.eq(err)
    m.d.comb += [slice_.err.eq(q.err | err), slice_.err_code.eq(Mux(own, q.err_code, code)),
                 slice_.err_pc.eq(Mux(own, q.pc, pc))]
    return q


def _mux_decode(sel, a, b):
    """(match, legal, err_code) of a when sel, else of b."""
    return ({k: Mux(sel, a[0][k], b[0][k]) for k in a[0]}, Mux(sel, a[1], b[1]), Mux(sel, a[2], b[2]))


class InstructionQueue(wiring.Component):
    """One slice's instruction queue: a ring of instruction words with an IFETCH engine.

    Parameters
    ----------
    config : ChipConfig
        sizes: queue_depth, fetch_words, streams.
    kind : SliceKind
        which opcodes are legal (the decoder is generated from the spec for this kind).

    Members
    -------
    running : In(1)
        the chip is running; while low the queue holds pc at 0, its head at word 0 and its fill point
        at Q_LEN.
    host_we, host_addr, host_data, host_len_we, host_len : In
        the host's load port (acts only while idle): per-word enables of ring row `host_addr` and
        its fetch_words words, written a cycle later (registered here); `length` is Q_LEN.
    fetch_stream, fetch_dir : Out; fetch_tap : In
        the stream IFETCH samples, and its value passing the slice.
    head : Out(64)
        the word at pc, for the slice's operand fields.
    issue_<op> : Out(1); ready_<op> : In(1)
        per opcode the slice executes: issue strobe, and "the engine can take it this cycle".
    busy : Out(1)
        words remain (and the queue is not parked), a NOP is counting down or a fetch is in flight.
    parked : Out(1); sync_release : In(1)
        parked at a SYNC (from the cycle after it issues until the chip's release); the release
        (the next word issues on the cycle after it).
    err, err_code, pc : Out
        an error this cycle, its ErrorCode, and the index reported in ERROR_INFO (the head; for
        QUEUE_OVERFLOW the IFETCH whose vector overflowed). While parked without an error, the
        record the chip's SYNC timeout reports: SYNC_TIMEOUT at the SYNC.

    slice_err : In(1)
        the slice's own errors this cycle (its queue's are `err`).

    `busy` and `err` are what they would be if the chip were running, whether it is or not: they
    depend on this queue's registers only, and run control applies `running` once. So the chip's
    stop crosses the device once per cycle (out of the slices, through the ORs, into `running`),
    not twice (`running` out to every slice and back through its logic). A slice that fails is
    busy on that cycle. Where the stop comes `error_stop` cycles after an error (spec.TIMING), the
    queue of a slice that failed issues nothing more in those cycles.
    """

    def __init__(self, config: ChipConfig, kind: SliceKind):
        _check_timing(config)
        self.config, self.kind = config, kind
        self.ops = [op for op in spec.slice_opcodes(kind, config) if op.mnemonic not in QUEUE_OPS]
        self.fields: dict[str, spec.Field] = {}     # operand fields of this kind's opcodes, by name
        for op in self.ops:
            for f in op.fields:
                assert self.fields.setdefault(f.name, f) == f, f"field {f.name} differs between {kind.value} opcodes"
        depth_bits = (config.queue_depth - 1).bit_length()
        self.len_bits = depth_bits + 1
        members = {
            "running": In(1),
            # host load port (only acts while the chip is idle)
            "host_we": In(config.fetch_words), "host_addr": In(depth_bits - (config.fetch_words - 1).bit_length()),
            "host_data": In(config.fetch_words * spec.WORD_BITS),
            "host_len_we": In(1), "host_len": In(self.len_bits),
            "length": Out(self.len_bits),
            "fetch_stream": Out(range(config.streams)), "fetch_dir": Out(1),
            "fetch_tap": In(config.fetch_words * spec.WORD_BITS),
            # to the slice
            "head": Out(spec.WORD_BITS),
            "busy": Out(1),          # instructions (or a NOP count, or a fetch) remain
            "err": Out(1), "err_code": Out(4), "pc": Out(16),
            "parked": Out(1), "sync_release": In(1), "slice_err": In(1),
        }
        for op in self.ops:
            members[f"issue_{op.mnemonic.lower()}"] = Out(1)
            members[f"ready_{op.mnemonic.lower()}"] = In(1)
        super().__init__(members)

    def field(self, name: str):
        """Operand field `name` of the head instruction (signed fields read as signed)."""
        f = self.fields[name]
        v = self.head[f.lsb:f.lsb + f.width]
        return v.as_signed() if f.signed else v

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        fw, depth = cfg.fetch_words, cfg.queue_depth
        W = spec.WORD_BITS
        col_bits = (fw - 1).bit_length()
        depth_bits = (depth - 1).bit_length()
        # With one word per row (the `fpga` preset) each word is stored with its decode, made as
        # it is written (Decoded.packed): nothing between the RAM's slow output and the head's
        # registers is decode logic. Wider rows decode the next head as it is chosen instead.
        stored = fw == 1
        P = Decoded.packed_bits(self.kind, self.config) if stored else 0
        m.submodules.mem = mem = Memory(shape=fw * W + P, depth=depth // fw, init=[])
        wr = mem.write_port(granularity=W) if fw > 1 else mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))     # a row landing now is read the next cycle
        staged = decode_stage(cfg)
        w_row = Signal(fw * W)                         # the row to write: the host's, or a fetched one
        w_dec = Decoded(m, w_row, self.kind, cfg) if stored else None       # ... decoded
        w_data = Signal(fw * W + P)
        m.d.comb += w_data.eq(Cat(w_row, w_dec.packed()) if stored else w_row)

        with m.If(self.host_len_we & ~self.running):
            m.d.sync += self.length.eq(self.host_len)

        pc = Signal(16)                    # index of the head word in the queue's instruction stream
        avail = Signal(range(depth + 1))   # words landed and not yet issued (the head included)
        has_words = Signal()               # avail != 0, as a register: `busy` feeds the chip's stop
        over = [Signal(name=f"avail_over_{i}") for i in range(2)]      # avail > depth - fw + i, likewise

        def set_avail(value):
            """avail, and the compares of it that reach the chip's stop kept beside it as registers."""
            return [avail.eq(value), has_words.eq(value != 0),
                    *(o.eq(value > depth - fw + i) for i, o in enumerate(over))]
        tail_row = Signal(max(depth_bits - col_bits, 1))   # ring row the next fetched vector lands in
        fill_low = Signal(max(col_bits, 1))                # fill point modulo fetch_words
        wait = Signal(NOP_FIELD.width)
        waiting = Signal()                 # wait != 0, as a register (it gates `go`, so the stop)
        wait_one = Signal()                # wait == 1, as a register likewise (the NOP's last cycle)
        nop_one = Signal()                 # the head's NOP field is 1 (read only when the head is a NOP),
                                           # decided as the head is chosen: a NOP 1 issues and goes on at once
        go, advance = Signal(), Signal()       # the head advances if running; it does (`running` applied)
        # The head word lives in flip-flops and the ring is read one word ahead (the word after
        # the next head), so what issues next never waits on the RAM: its output only feeds the
        # head register, and its address is a choice between two sums of registers.
        head = Signal(W, reset_less=True)
        word0 = Signal(W + P, reset_less=True)     # ring word 0 as last written: the head while idle
        after = Signal(16)                     # index of the word after the next head
        col = Signal(max(col_bits, 1))         # its column in the row the ring returns next cycle
        m.d.comb += after.eq(Mux(self.running, Mux(advance, pc + 2, pc + 1), 1))
        m.d.comb += [rd.addr.eq(after[col_bits:depth_bits]), rd.en.eq(1), self.head.eq(head)]
        m.d.sync += col.eq(after[:col_bits] if col_bits else 0)
        ahead = rd.data.word_select(col, W) if fw > 1 else rd.data     # the word at pc + 1 (with its decode)

        # ---- IFETCH engine: sample on t+1+k, land at the end of t+2+k ------------------------
        count = spec.BY_MNEMONIC["IFETCH"].field("count")
        f_active, f_stream, f_dir = Signal(), Signal(range(cfg.streams)), Signal()
        f_left, f_pc = Signal(count.width), Signal(16)
        s_valid, s_data, s_words, s_pc = Signal(), Signal(fw * W), Signal(range(fw + 1)), Signal(16)
        m.d.comb += [self.fetch_stream.eq(f_stream), self.fetch_dir.eq(f_dir)]
        m.d.sync += s_valid.eq(self.running & f_active)
        # zero unless a fetched row is in it, like the host's row below: the row to write is then
        # their OR, with no choice between them in front of its decode
        m.d.sync += s_data.eq(Mux(self.running & f_active, self.fetch_tap, 0))
        f_more = Signal()                  # f_active & (f_left > fw), as a register
        with m.If(self.running & f_active):
            m.d.sync += [s_words.eq(Mux(f_left > fw, fw, f_left)), s_pc.eq(f_pc),
                         f_left.eq(f_left - fw), f_more.eq(f_left > 2 * fw)]
            with m.If(f_left <= fw):
                m.d.sync += f_active.eq(0)
        # with a decode stage the fetched row and its decode are registered once more (d_*) and
        # land (are written, counted, may be bypassed to the head) a cycle later
        if staged:
            d_valid, d_words, d_pc = Signal(), Signal(range(fw + 1)), Signal(16)
            m.d.sync += [d_valid.eq(self.running & s_valid), d_words.eq(s_words), d_pc.eq(s_pc)]
            l_valid, l_words, l_pc, inflight = d_valid, d_words, d_pc, f_active | s_valid | d_valid
        else:
            l_valid, l_words, l_pc, inflight = s_valid, s_words, s_pc, f_active | s_valid
        landing = self.running & l_valid
        overflow = Signal()
        # (avail - advance + fw > depth, with the compares made as avail is set, `over`: `advance`
        # comes late, and the error leaves the queue for the chip's stop across the device; as if
        # running, like every error here: the valid bits are only set while running)
        m.d.comb += overflow.eq(l_valid & Mux(go, over[1], over[0]))

        # ---- ring writes: the host's words while idle, fetched rows while running ---------------
        # The host's row write is registered here, beside the ring, as well as in the host port,
        # and lands two cycles after the access (four with a decode stage, `host_stages`): the host port's wires
        # span the chip, and the row's decode then starts at a register. Row and data load only
        # under this queue's enables (registers every queue loaded alike, synthesis would merge
        # into one across the chip). The enables are taken only while idle and the host port
        # delays START past the landing (`host_load_cycles`), so a host row and a landing vector
        # never meet: the row to decode is their OR (each is zero unless it holds one), the
        # registered enables choose the ring's address, and neither a wide enable nor `running`
        # (a wire across the chip) is in front of the row's decode.
        h_we, h_addr, h_data = self.host_we, self.host_addr, self.host_data
        n_h = host_stages(cfg)
        for i in range(n_h):
            r_we, r_addr, r_data = (Signal.like(h_we, name=f"h{i}_we"), Signal.like(h_addr, name=f"h{i}_addr"),
                                    Signal.like(h_data, name=f"h{i}_data"))
            m.d.sync += r_we.eq(Mux(self.running, 0, h_we))
            with m.If(h_we.any()):
                m.d.sync += r_addr.eq(h_addr)
                if i < n_h - 1:
                    m.d.sync += r_data.eq(h_data)
            if i == n_h - 1:      # the last one is zero unless it holds a row (the host's rows land only while idle)
                m.d.sync += r_data.eq(Mux(h_we.any() & ~self.running, h_data, 0))
            h_we, h_addr, h_data = r_we, r_addr, r_data
        host_row = h_we.any()
        m.d.comb += w_row.eq(h_data | s_data)
        if staged:
            g_we, g_addr, g_data = Signal.like(h_we), Signal.like(h_addr), Signal.like(w_data)
            m.d.sync += [g_we.eq(h_we), g_addr.eq(h_addr), g_data.eq(w_data)]
            host_row, h_we, h_addr = g_we.any(), g_we, g_addr
            m.d.comb += wr.data.eq(g_data)
        else:
            m.d.comb += wr.data.eq(w_data)
        m.d.comb += [wr.addr.eq(Mux(host_row, h_addr, tail_row)),
                     wr.en.eq(Mux(host_row, h_we, Mux(landing, (1 << fw) - 1, 0)))]

        dec = Decoded.registered(m, head, self.kind, cfg)     # the head's decode, in flip-flops
        misaligned = (fill_low != 0) if col_bits else Const(0, 1)
        head_err, head_code = Signal(), Signal(4)
        parked, sync_pc = self.parked, Signal(16)
        # `issuing`: running, and (where the stop lags an error, spec.TIMING error_stop) this slice
        # has not failed: the cycles between an error and the stop run without it
        issuing = self.running
        if spec.timing(cfg)["error_stop"]:
            failed = Signal()
            with m.If(self.running & (self.err | self.slice_err)):
                m.d.sync += failed.eq(1)
            with m.If(~self.running):
                m.d.sync += failed.eq(0)
            issuing = self.running & ~failed
        m.d.comb += [self.busy.eq((has_words & ~parked) | inflight), advance.eq(go & issuing)]
        with m.If(self.sync_release):
            m.d.sync += parked.eq(0)

        # What the head does this cycle, decided as if running: the errors leave the queue
        # without `running` in front of them. The idle hold below comes last and so wins.
        with m.If(parked):
            m.d.comb += head_code.eq(spec.ErrorCode.SYNC_TIMEOUT)     # if the chip's timeout ends the wait
        with m.Elif(waiting):
            # inside a NOP: the head already issued; count down to the next issue
            m.d.sync += [wait.eq(wait - 1), waiting.eq(~wait_one), wait_one.eq(wait == 2)]
            m.d.comb += go.eq(wait_one)
        with m.Elif(~has_words):            # (avail == 0, from a register)
            with m.If(inflight):            # the next word is needed before its fetch has landed
                m.d.comb += [head_err.eq(1), head_code.eq(spec.ErrorCode.QUEUE_UNDERRUN)]
        with m.Else():
            with m.If(~dec.legal):
                m.d.comb += [head_err.eq(1), head_code.eq(dec.err_code)]
            with m.Elif(dec.match["NOP"]):
                cycles = dec.field("cycles")
                m.d.sync += [wait.eq(cycles - 1), waiting.eq(~nop_one), wait_one.eq(cycles == 2)]
                m.d.comb += go.eq(nop_one)
            with m.Elif(dec.match["SYNC"]):
                m.d.comb += go.eq(1)
                m.d.sync += [parked.eq(1), sync_pc.eq(pc)]
            with m.Elif(dec.match["IFETCH"]):
                with m.If(~f_more):      # the previous fetch has sampled its last vector
                    with m.If(misaligned):
                        m.d.comb += [head_err.eq(1), head_code.eq(spec.ErrorCode.FETCH_ALIGN)]
                    with m.Else():
                        m.d.comb += go.eq(1)
                        m.d.sync += [f_active.eq(1), f_left.eq(dec.field("count")), f_more.eq(dec.field("count") > fw), f_pc.eq(pc),
                                     f_stream.eq(dec.field("stream")), f_dir.eq(dec.field("dir"))]
                        if col_bits:
                            m.d.sync += fill_low.eq(fill_low + dec.field("count"))
            for op in self.ops:
                with m.Elif(dec.match[op.mnemonic]):
                    ready = getattr(self, f"ready_{op.mnemonic.lower()}")
                    m.d.comb += [go.eq(ready), getattr(self, f"issue_{op.mnemonic.lower()}").eq(ready & issuing)]
        with m.If(~self.running):
            m.d.sync += [pc.eq(0), wait.eq(0), waiting.eq(0), wait_one.eq(0), *set_avail(self.length),
                         f_active.eq(0), f_more.eq(0), parked.eq(0),
                         tail_row.eq(self.length[col_bits:]), fill_low.eq(self.length[:col_bits] if col_bits else 0)]
        # The next head, chosen without waiting on `advance` and decoded a cycle early: word 0
        # while idle (a run may start on any cycle, even right after a stop); the vector landing
        # now when at most the head is left (landings keep the fill point aligned, so it is the
        # vector's first word); else the word after the head. It replaces the head when the
        # queue is idle, advances, or has run dry and a vector lands (with nothing left, nothing
        # advances).
        w0_hit = wr.en[0] & (wr.addr == 0)
        written0 = Cat(wr.data[:W], wr.data[fw * W:])        # word 0 of the row written (and its decode)
        with m.If(w0_hit):
            m.d.sync += word0.eq(written0)
        candidate, kept = Signal(W + P), Signal(W + P)     # kept: the next head unless one is written now
        use_w = Mux(self.running, landing & (avail <= 1), w0_hit)
        m.d.comb += [kept.eq(Mux(self.running, ahead, word0)), candidate.eq(Mux(use_w, written0, kept))]
        with m.If(~self.running | advance | (landing & (avail == 0))):
            m.d.sync += [head.eq(candidate[:W]),
                         nop_one.eq(candidate[NOP_FIELD.lsb:NOP_FIELD.lsb + NOP_FIELD.width] == 1)]
            if stored and staged:
                # the row written this cycle comes with its decode from a register
                m.d.sync += dec.load(*dec.unpacked(candidate[W:]))
            elif stored:
                # the word written this cycle takes its decode straight from the decoder (not
                # through packed bits and back: that path is the queue's longest)
                stored_dec = dec.unpacked(kept[W:])
                m.d.sync += dec.load(*(_mux_decode(use_w, (w_dec.match, w_dec.legal, w_dec.err_code), stored_dec)))
            else:
                pre = Decoded(m, candidate, self.kind, cfg)
                m.d.sync += [dec.legal.eq(pre.legal), dec.err_code.eq(pre.err_code)]
                m.d.sync += [dec.match[k].eq(v) for k, v in pre.match.items()]
        with m.If(self.running):
            avail_next = avail - advance + Mux(landing, l_words, 0)
            m.d.sync += set_avail(avail_next)
            with m.If(landing):
                m.d.sync += tail_row.eq(tail_row + 1)
        with m.If(advance):
            m.d.sync += pc.eq(pc + 1)
        m.d.comb += [self.err.eq(overflow | head_err),
                     self.err_code.eq(Mux(overflow, spec.ErrorCode.QUEUE_OVERFLOW, head_code)),
                     self.pc.eq(Mux(overflow, l_pc, Mux(parked, sync_pc, pc)))]
        return m
