"""MEM slice: one SRAM bank with SECDED ECC, a read engine and a write engine.

The read engine drives one word per cycle onto a stream; the write engine takes
one word per cycle off a stream. Both run at once (the bank has a read port and
a write port), so a READ and a WRITE overlap. Pipeline, for an instruction
issued on cycle t (element k), matching spec.TIMING:

    READ : t+1+k address to SRAM  -> t+2+k ECC decode, register -> t+3+k drive stream
    WRITE: t+1+k sample stream    -> t+2+k ECC encode, SRAM write (end of cycle)

Extra pipeline registers are inserted if the configuration asks for longer latencies
(`spec.timing`): mem_read_check one higher registers the SRAM's word before the ECC check,
mem_read_drive and mem_write_commit above NATURAL add stages after the check / before the write.
The host port reaches the bank only while the chip is idle.
"""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.ecc import code_for

from .ecc import SecdedDecoder, SecdedEncoder
from .engine import Countdown
from .queue import attach_queue, slice_queue_ports
from .superlane import Superlane

NATURAL = {"mem_read_access": 1, "mem_read_check": 2, "mem_read_drive": 3, "mem_write_sample": 1, "mem_write_commit": 2}


def _check_timing(config: ChipConfig):
    T = spec.timing(config)
    for key in ("mem_read_access", "mem_write_sample"):
        if T[key] != NATURAL[key]:
            raise NotImplementedError(f"MEM RTL implements {key} = {NATURAL[key]}, config {config.name!r} says {T[key]}")
    check = NATURAL["mem_read_check"]
    if T["mem_read_check"] not in (check, check + 1):
        raise NotImplementedError(f"MEM RTL implements mem_read_check = {check} or {check + 1}, "
                                  f"config {config.name!r} says {T['mem_read_check']}")
    for key, least in (("mem_read_drive", T["mem_read_check"] + 1), ("mem_write_commit", NATURAL["mem_write_commit"])):
        if T[key] < least:
            raise NotImplementedError(f"MEM RTL cannot meet {key} = {T[key]} of config {config.name!r} "
                                      f"(minimum {least})")


class MemSlice(wiring.Component):
    """One MEM slice (emitted unit `mem_slice`): SRAM bank with SECDED, read and write engines, queue.

    Parameters
    ----------
    config : ChipConfig
        sizes: mem_words, word_bits, streams, queue_depth, fetch_words.

    Members
    -------
    running, host_q_*, q_len, fetch_stream, fetch_dir, fetch_tap, busy, err, err_code, err_pc :
        the queue ports every slice with a queue has (`hdl/queue.py` `slice_queue_ports`).
    drive_data : Out(word_bits); drive_e_en, drive_w_en : Out(streams)
        the read engine's word and the stream it drives, per direction.
    tap_stream, tap_dir : Out; tap : In(word_bits)
        the stream the write engine samples this cycle, and its value passing the slice.
    ecc_corrected, ecc_uncorrectable : Out(1)
        a program read on the previous cycle found a corrected / an uncorrectable error
        (registered: run control counts them a cycle after the check).
    host_m_we, host_m_raw, host_m_addr, host_m_data, host_m_ecc : In
        the host's SRAM write (acts only while idle; `we` already qualified by M_SEL).
    host_m_rdata, host_m_recc : Out
        the raw word at `host_m_addr` and its stored ECC bits (one cycle later).
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        self.code = code_for(config.word_bits)
        S, W = config.streams, config.word_bits
        super().__init__(slice_queue_ports(config) | {
            # one drive port: data and per-stream enables for each direction
            "drive_data": Out(W), "drive_e_en": Out(S), "drive_w_en": Out(S),
            # status to the chip controller
            "ecc_corrected": Out(1), "ecc_uncorrectable": Out(1),
            # host access (chip idle only); *_we/_re are already qualified by the select
            "host_m_we": In(1), "host_m_raw": In(1),
            "host_m_addr": In(config.mem_addr_bits), "host_m_data": In(W),
            "host_m_ecc": In(self.code.stored_bits),
            "host_m_rdata": Out(W), "host_m_recc": Out(self.code.stored_bits),
            # the write engine's stream tap: it names the stream it samples this cycle and the chip
            # returns that stream's value V(p, t) (keeps the unit's inputs narrow for wide configs)
            "tap_stream": Out(range(S)), "tap_dir": Out(1), "tap": In(W),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        S, W, A = cfg.streams, cfg.word_bits, cfg.mem_addr_bits
        E = self.code.stored_bits
        q = attach_queue(m, self, SliceKind.MEM)     # READ and WRITE share their field layout

        m.submodules.bank = bank = Memory(shape=W + E, depth=cfg.mem_words, init=[])
        rd = bank.read_port()            # not transparent: a same-cycle write is seen next cycle
        wr = bank.write_port()

        # ---- read engine -------------------------------------------------------
        reader = Countdown(m, "r", self.running, q.issue_read, q.field("count"), q.fields["count"].width)
        r_active = reader.active
        r_addr, r_stride = Signal(A), Signal(A)
        r_stream, r_dir = Signal(range(S)), Signal()
        m.d.comb += q.ready_read.eq(reader.ready)
        with m.If(reader.step):
            m.d.sync += r_addr.eq(r_addr + r_stride)
        with m.If(q.issue_read):
            m.d.sync += [r_addr.eq(q.field("addr")), r_stride.eq(q.field("stride")),
                         r_stream.eq(q.field("stream")), r_dir.eq(q.field("dir"))]

        # stage 1: SRAM data out; stage 2: corrected word, registered. With mem_read_check one
        # higher (the `fpga` preset) the word out of the SRAM is registered first and checked
        # the cycle after: on an FPGA the block RAM's output is slow and its site apart.
        T = spec.timing(cfg)
        s1_valid, s1_stream, s1_dir = Signal(), Signal(range(S)), Signal()
        m.d.sync += [s1_valid.eq(self.running & r_active), s1_stream.eq(r_stream), s1_dir.eq(r_dir)]
        m.d.comb += [rd.addr.eq(Mux(self.running, r_addr, self.host_m_addr)), rd.en.eq(1)]
        m.d.comb += [self.host_m_rdata.eq(rd.data[:W]), self.host_m_recc.eq(rd.data[W:])]
        word, checks = rd.data, [s1_valid]
        if T["mem_read_check"] > NATURAL["mem_read_check"]:
            word, checks = Signal(W + E, name="sram_word"), checks + [Signal(name="rc_valid")]
            m.d.sync += [word.eq(rd.data), checks[-1].eq(s1_valid & self.running)]
            ck_stream, ck_dir = Signal(range(S), name="rc_stream"), Signal(name="rc_dir")
            m.d.sync += [ck_stream.eq(s1_stream), ck_dir.eq(s1_dir)]
        else:
            ck_stream, ck_dir = s1_stream, s1_dir
        m.submodules.ecc_dec = dec = SecdedDecoder(W)
        m.d.comb += [dec.data.eq(word[:W]), dec.ecc.eq(word[W:])]
        # registered here, beside the decoder: run control (across the chip) counts them a cycle
        # later, so the SRAM, the decoder and that wire are not one cycle
        m.d.sync += [self.ecc_corrected.eq(self.running & checks[-1] & dec.corrected),
                     self.ecc_uncorrectable.eq(self.running & checks[-1] & dec.uncorrectable)]
        stages = [(checks[-1] & self.running, ck_stream, ck_dir, dec.out)]
        for i in range(T["mem_read_drive"] - T["mem_read_check"]):
            v, s, d, data = Signal(name=f"rs{i + 2}_valid"), Signal(range(S), name=f"rs{i + 2}_stream"), \
                Signal(name=f"rs{i + 2}_dir"), Signal(W, name=f"rs{i + 2}_data")
            pv, ps, pd, pdata = stages[-1]
            m.d.sync += [v.eq(pv & self.running), s.eq(ps), d.eq(pd), data.eq(pdata)]
            stages.append((v, s, d, data))
        dv, ds, dd, ddata = stages[-1]
        dv = dv & self.running          # a halted chip drives nothing
        m.d.comb += self.drive_data.eq(ddata)
        for i in range(S):
            m.d.comb += [self.drive_e_en[i].eq(dv & (ds == i) & ~dd), self.drive_w_en[i].eq(dv & (ds == i) & dd)]

        # ---- write engine ------------------------------------------------------
        writer = Countdown(m, "w", self.running, q.issue_write, q.field("count"), q.fields["count"].width)
        w_active = writer.active
        w_addr, w_stride = Signal(A), Signal(A)
        w_stream, w_dir = Signal(range(S)), Signal()
        m.d.comb += q.ready_write.eq(writer.ready)
        with m.If(writer.step):
            m.d.sync += w_addr.eq(w_addr + w_stride)
        with m.If(q.issue_write):
            m.d.sync += [w_addr.eq(q.field("addr")), w_stride.eq(q.field("stride")),
                         w_stream.eq(q.field("stream")), w_dir.eq(q.field("dir"))]

        m.d.comb += [self.tap_stream.eq(w_stream), self.tap_dir.eq(w_dir)]
        tap = self.tap
        extra = T["mem_write_commit"] - NATURAL["mem_write_commit"]
        wstages = [(self.running & w_active, w_addr, tap)]
        for i in range(extra + 1):
            v, a, data = Signal(name=f"ws{i + 1}_valid"), Signal(A, name=f"ws{i + 1}_addr"), Signal(W, name=f"ws{i + 1}_data")
            pv, pa, pdata = wstages[-1]
            m.d.sync += [v.eq(pv & self.running), a.eq(pa), data.eq(pdata)]
            wstages.append((v, a, data))
        cv, ca, cdata = wstages[-1]
        m.submodules.ecc_enc = enc = SecdedEncoder(W)
        host_word = Cat(self.host_m_data, Mux(self.host_m_raw, self.host_m_ecc, enc.ecc))
        if extra:
            # With mem_write_commit above NATURAL (the `fpga` preset) the last stage holds the word
            # with its check bits, encoded from the stage before, and the host's writes have an
            # encoder of their own: between the register and the block RAMs (sited apart, 16 of
            # them for a slice of `fpga`) there is only the choice of the host's word, made by the
            # registered valid bit and the host's enable (the host port writes only while idle),
            # not by `running` from across the chip.
            m.submodules.ecc_enc_w = enc_w = SecdedEncoder(W)
            pv, pa, pdata = wstages[-2]
            c_ecc = Signal(E, name=f"ws{extra + 1}_ecc")
            m.d.comb += [enc_w.data.eq(pdata), enc.data.eq(self.host_m_data)]
            m.d.sync += c_ecc.eq(enc_w.ecc)
            program = ~self.host_m_we & cv
            m.d.comb += [wr.addr.eq(Mux(program, ca, self.host_m_addr)),
                         wr.data.eq(Mux(program, Cat(cdata, c_ecc), host_word)),
                         wr.en.eq(Mux(self.running, cv, self.host_m_we))]
        else:
            with m.If(self.running):
                m.d.comb += [enc.data.eq(cdata), wr.addr.eq(ca), wr.data.eq(Cat(cdata, enc.ecc)), wr.en.eq(cv)]
            with m.Else():
                m.d.comb += [enc.data.eq(self.host_m_data), wr.addr.eq(self.host_m_addr),
                             wr.data.eq(host_word), wr.en.eq(self.host_m_we)]

        busy_terms = [q.busy, r_active, w_active] + [s[0] for s in stages[1:]] + checks + [s[0] for s in wstages[1:]]
        m.d.comb += self.busy.eq(Cat(*busy_terms).any())     # as if running (hdl/queue.py)
        return m


class MemSuperlane(Superlane):
    """One superlane of a MEM slice's position (emitted unit `mem_superlane`, hdl/superlane.py).

    Parameters
    ----------
    config : ChipConfig

    Members
    -------
    e_in, w_in, e_out, w_out, fetch_stream, fetch_dir, fetch_tap :
        as every superlane (`Superlane`).
    tap_stream, tap_dir : In; tap : Out(B)
        the write engine's tap: this superlane of the stream it samples.
    drive_e_en, drive_w_en : In(streams); drive_data : In(B)
        the read engine's drive: this superlane of its word, onto the enabled streams.
    """

    def __init__(self, config: ChipConfig):
        S, B = config.streams, config.superlane_bits
        super().__init__(config, {"tap_stream": In(range(S)), "tap_dir": In(1), "tap": Out(B),
                                  "drive_e_en": In(S), "drive_w_en": In(S), "drive_data": In(B)})

    def elaborate(self, platform):
        m = Module()
        data = [self.drive_data] * self.config.streams
        self.registers(m, self.drive_e_en, self.drive_w_en, data, data)
        m.d.comb += self.tap.eq(self.pick(self.tap_dir, self.tap_stream))
        return m
