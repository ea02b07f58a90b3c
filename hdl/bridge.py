"""The UART host bridge (protocol: isa/bridge.py, docs/BRIDGE.md): serial frames in, the chip's
AXI4-Lite and AXI4-Stream host ports out.

A request is received whole into the frame buffer and its CRC checked before anything happens;
then the addresses are checked, then it is executed (register writes and reads as AXI4-Lite
transactions, stream words as AXI4-Stream beats), and the reply is sent from the same buffer.
Every wait has a bound: a request that stops arriving, a chip that does not take or give a stream
word, each ends in an error reply after `timing.timeout_cycles`.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa import bridge as bp
from isa import hostmap as hm
from isa.config import ChipConfig
from isa.ecc import code_for

from .axil import axil_members
from .uart import UartRx, UartTx


def crc16_next(crc, byte):
    """CRC-16 (isa/bridge.py CRC_POLY) after one more byte, as logic: each output bit is the XOR
    of the input bits that the bitwise algorithm, run on symbols here, says it depends on."""
    # symbolic state: each CRC bit is a set of input bits, ("c", i) of the old CRC or ("b", i) of the byte
    state = [{("c", i)} for i in range(16)]
    for i in range(8):
        state[8 + i] = state[8 + i] ^ {("b", i)}
    for _ in range(8):
        top = state[15]
        state = [set()] + state[:15]
        for i in range(16):
            if bp.CRC_POLY >> i & 1:
                state[i] = state[i] ^ top
    src = {"c": crc, "b": byte}
    bits = []
    for deps in state:
        terms = [src[kind][i] for kind, i in sorted(deps)]
        bits.append(Cat(*terms).xor() if terms else Const(0))
    return Cat(*bits)


def bridge_members(config: ChipConfig) -> dict:
    """The bridge's ports: the serial line, an AXI4-Lite master (the chip's `s_axil_*` flipped),
    the bulk load master (to `s_axis_*`) and unload slave (from `m_axis_*`), and RUNNING."""
    W, E = config.word_bits, code_for(config.word_bits).stored_bits
    axil = {n: f.flip() for n, f in axil_members(hm.addr_bits(config), prefix="m_axil_").items()}
    return {"rx": In(1, init=1), "tx": Out(1, init=1), "running": In(1)} | axil | {
        "load_tdata": Out(W), "load_tvalid": Out(1), "load_tready": In(1), "load_tlast": Out(1),
        "unload_tdata": In(W), "unload_tuser": In(E), "unload_tvalid": In(1), "unload_tready": Out(1),
        "unload_tlast": In(1),
    }


class HostBridge(wiring.Component):
    """Serial requests to host-port transactions.

    Parameters
    ----------
    config : ChipConfig
        the chip behind the bridge: word width, ECC bits, register map.
    timing : isa.bridge.BridgeTiming
        clock cycles per UART bit and the timeout in bit times.

    Members
    -------
    rx, tx : the serial line (8N1, idle high).
    running : In(1)
        the chip's RUNNING: while high only READ is served (BUSY otherwise).
    m_axil_* : AXI4-Lite master, to the chip's `s_axil_*`.
    load_* : AXI4-Stream master, to the chip's `s_axis_*`.
    unload_* : AXI4-Stream slave, from the chip's `m_axis_*`.
    """

    def __init__(self, config: ChipConfig, timing: bp.BridgeTiming):
        self.config, self.timing = config, timing
        super().__init__(bridge_members(config))

    def elaborate(self, platform):
        m = Module()
        cfg, T = self.config, self.timing
        W, E = cfg.word_bits, code_for(cfg.word_bits).stored_bits
        WB, EB = bp.word_bytes(cfg), bp.ecc_bytes(cfg)

        m.submodules.urx = urx = UartRx(T.divisor)
        m.submodules.utx = utx = UartTx(T.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        m.submodules.buf = buf = Memory(shape=8, depth=bp.MAX_PAYLOAD, init=[])
        rd, wr = buf.read_port(), buf.write_port()

        byte, got = urx.data, urx.valid
        cmd, seq, status = Signal(8), Signal(8), Signal(8)
        addr, count = Signal(32), Signal(16)
        hdr = Signal(range(bp.REQUEST_HEADER))          # header byte index (after SOF)
        crc = Signal(16, init=bp.CRC_INIT)
        crc_rx = Signal(8)
        ptr = Signal(range(bp.MAX_PAYLOAD + 1))          # buffer byte pointer
        length = Signal(range(bp.MAX_PAYLOAD + 1))       # request payload bytes
        item = Signal(16)                                # items done
        k = Signal(range(max(WB + EB, 4) + 1))           # byte within an item
        quiet = Signal(range(T.timeout_cycles + 1))      # cycles since the last byte / stream handshake
        acc = Signal(max(W, 32))                         # bytes gathered from the buffer (little-endian)
        scat = Signal(8 * max(WB + EB, 4))               # bytes to scatter into the buffer
        aw_done, w_done = Signal(), Signal()
        rlen = Signal(range(bp.MAX_PAYLOAD + 1))         # reply payload bytes
        tx_i = Signal(range(bp.REPLY_HEADER + bp.MAX_PAYLOAD + bp.CRC_BYTES + 1))
        timed_out = quiet == T.timeout_cycles

        readable = _address_test(addr + (item << 2), bp.readable(cfg))
        writable = _address_test(addr + (item << 2), bp.writable(cfg))
        req_item = Mux(cmd == bp.Cmd.WRITE, 4, Mux(cmd == bp.Cmd.STREAM_IN, WB, 0))
        # request payload bytes; shifts, so that synthesis spends no multiplier on it
        words_len = count << (WB.bit_length() - 1) if WB & (WB - 1) == 0 else count * WB
        max_count = Signal(16)
        with m.Switch(cmd):
            for c in bp.Cmd:
                with m.Case(c):
                    m.d.comb += max_count.eq(bp.max_count(c, cfg))

        m.d.sync += quiet.eq(Mux(timed_out, quiet, quiet + 1))
        m.d.comb += [self.m_axil_wstrb.eq(0xF), self.m_axil_bready.eq(1), self.m_axil_rready.eq(1),
                     self.load_tdata.eq(acc[-W:] if W < len(acc) else acc),
                     self.load_tlast.eq(item + 1 == count)]

        def restart_quiet():
            m.d.sync += quiet.eq(0)

        def fail(code, drain=True):
            m.d.sync += [status.eq(code), rlen.eq(0), item.eq(0)]
            restart_quiet()
            m.next = "DRAIN" if drain else "REPLY"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(got & (byte == bp.SOF_REQUEST)):
                    m.d.sync += [hdr.eq(0), crc.eq(bp.CRC_INIT), ptr.eq(0), item.eq(0), seq.eq(0)]
                    restart_quiet()
                    m.next = "HEADER"
            with m.State("HEADER"):                      # cmd, seq, addr[4], count[2]
                with m.If(got):
                    restart_quiet()
                    m.d.sync += [crc.eq(crc16_next(crc, byte)), hdr.eq(hdr + 1)]
                    with m.Switch(hdr):
                        with m.Case(0):
                            m.d.sync += cmd.eq(byte)
                        with m.Case(1):
                            m.d.sync += seq.eq(byte)
                        for i in range(4):
                            with m.Case(2 + i):
                                m.d.sync += addr[8 * i:8 * i + 8].eq(byte)
                        with m.Case(6):
                            m.d.sync += count[:8].eq(byte)
                        with m.Case(7):
                            m.d.sync += count[8:].eq(byte)
                            m.next = "SIZE"
                with m.Elif(timed_out):
                    fail(bp.Status.TIMEOUT, drain=False)
            with m.State("SIZE"):
                m.d.sync += length.eq(Mux(cmd == bp.Cmd.WRITE, count << 2, words_len)[:len(length)])
                with m.If((cmd < bp.Cmd.WRITE) | (cmd > max(bp.Cmd))):
                    fail(bp.Status.BAD_CMD)
                with m.Elif((count == 0) | (count > max_count)):
                    fail(bp.Status.BAD_LENGTH)
                with m.Elif(req_item == 0):
                    m.next = "CRC0"
                with m.Else():
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [wr.addr.eq(ptr), wr.data.eq(byte), wr.en.eq(got)]
                with m.If(got):
                    restart_quiet()
                    m.d.sync += [crc.eq(crc16_next(crc, byte)), ptr.eq(ptr + 1)]
                    with m.If(ptr + 1 == length):
                        m.next = "CRC0"
                with m.Elif(timed_out):
                    fail(bp.Status.TIMEOUT, drain=False)
            with m.State("CRC0"):
                with m.If(got):
                    restart_quiet()
                    m.d.sync += crc_rx.eq(byte)
                    m.next = "CRC1"
                with m.Elif(timed_out):
                    fail(bp.Status.TIMEOUT, drain=False)
            with m.State("CRC1"):
                with m.If(got):
                    with m.If(Cat(crc_rx, byte) != crc):
                        fail(bp.Status.BAD_CRC)
                    with m.Elif(self.running & (cmd != bp.Cmd.READ)):
                        fail(bp.Status.BUSY, drain=False)
                    with m.Else():
                        m.d.sync += [item.eq(0), ptr.eq(0), k.eq(0), aw_done.eq(0), w_done.eq(0)]
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    fail(bp.Status.TIMEOUT, drain=False)
            with m.State("CHECK"):                       # every register address of a WRITE / READ
                with m.If(item == count):
                    m.d.sync += item.eq(0)
                    with m.Switch(cmd):
                        with m.Case(bp.Cmd.WRITE, bp.Cmd.STREAM_IN):
                            m.next = "GATHER"
                        with m.Case(bp.Cmd.READ):
                            m.next = "AR"
                        with m.Case(bp.Cmd.STREAM_OUT):
                            restart_quiet()
                            m.next = "TAKE"
                with m.Elif(((cmd == bp.Cmd.WRITE) & ~writable) | ((cmd == bp.Cmd.READ) & ~readable)):
                    fail(bp.Status.BAD_ADDR, drain=False)
                with m.Else():
                    m.d.sync += item.eq(item + 1)

            # ---- WRITE and STREAM_IN: gather an item's bytes, then hand it over -------------
            n_in = Mux(cmd == bp.Cmd.WRITE, 4, WB)
            with m.State("GATHER"):
                m.d.comb += rd.addr.eq(ptr)
                m.d.sync += [ptr.eq(ptr + 1), k.eq(k + 1)]
                m.next = "GATHER_DATA"
            with m.State("GATHER_DATA"):
                m.d.sync += acc.eq(Cat(acc[8:], rd.data))
                with m.If(k == n_in):
                    m.d.sync += k.eq(0)
                    restart_quiet()
                    with m.If(cmd == bp.Cmd.STREAM_IN):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "AXIL_W"
                with m.Else():
                    m.next = "GATHER"
            with m.State("AXIL_W"):
                m.d.comb += [self.m_axil_awaddr.eq(addr + (item << 2)), self.m_axil_awvalid.eq(~aw_done),
                             self.m_axil_wdata.eq(acc[-32:]), self.m_axil_wvalid.eq(~w_done)]
                with m.If(self.m_axil_awready & ~aw_done):
                    m.d.sync += aw_done.eq(1)
                with m.If(self.m_axil_wready & ~w_done):
                    m.d.sync += w_done.eq(1)
                with m.If(self.m_axil_bvalid):
                    m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                    next_item(m, item, count, status, rlen, ok="GATHER")
            with m.State("LOAD"):
                m.d.comb += self.load_tvalid.eq(1)
                with m.If(self.load_tready):
                    next_item(m, item, count, status, rlen, ok="GATHER")
                with m.Elif(timed_out):
                    m.d.sync += [status.eq(bp.Status.STALLED), rlen.eq(0)]
                    m.next = "REPLY"

            # ---- READ and STREAM_OUT: take an item, scatter its bytes into the buffer --------
            with m.State("AR"):
                m.d.comb += [self.m_axil_araddr.eq(addr + (item << 2)), self.m_axil_arvalid.eq(1)]
                with m.If(self.m_axil_arready):
                    m.next = "R"
            with m.State("R"):
                with m.If(self.m_axil_rvalid):
                    m.d.sync += [scat.eq(self.m_axil_rdata), k.eq(0)]
                    m.next = "SCATTER"
            with m.State("TAKE"):
                m.d.comb += self.unload_tready.eq(1)
                with m.If(self.unload_tvalid):
                    m.d.sync += [scat.eq(Cat(self.unload_tdata, Const(0, 8 * WB - W), self.unload_tuser)), k.eq(0)]
                    m.next = "SCATTER"
                with m.Elif(timed_out):
                    m.d.sync += [status.eq(bp.Status.STALLED), rlen.eq(ptr)]
                    m.next = "REPLY"
            n_out = Mux(cmd == bp.Cmd.READ, 4, WB + EB)
            with m.State("SCATTER"):
                m.d.comb += [wr.addr.eq(ptr), wr.data.eq(scat[:8]), wr.en.eq(1)]
                m.d.sync += [scat.eq(scat >> 8), ptr.eq(ptr + 1), k.eq(k + 1)]
                with m.If(k + 1 == n_out):
                    m.d.sync += item.eq(item + 1)
                    restart_quiet()
                    with m.If(item + 1 == count):
                        m.d.sync += [status.eq(bp.Status.OK), rlen.eq(ptr + 1)]
                        m.next = "REPLY"
                    with m.Elif(cmd == bp.Cmd.READ):
                        m.next = "AR"
                    with m.Else():
                        m.next = "TAKE"

            # ---- errors and replies ---------------------------------------------------------
            with m.State("DRAIN"):                       # discard bytes until the line is quiet
                with m.If(got | urx.frame_error):
                    restart_quiet()
                with m.Elif(timed_out):
                    m.next = "REPLY"
            payload_end = Signal(range(bp.REPLY_HEADER + bp.MAX_PAYLOAD + 1))   # fixed while replying
            with m.State("REPLY"):
                m.d.sync += [tx_i.eq(0), crc.eq(bp.CRC_INIT), payload_end.eq(bp.REPLY_HEADER + rlen)]
                m.next = "TX_FETCH"
            with m.State("TX_FETCH"):                    # the payload byte is read one cycle ahead
                m.d.comb += rd.addr.eq(tx_i - bp.REPLY_HEADER)
                m.next = "TX_PUT"
            with m.State("TX_PUT"):
                m.d.comb += rd.addr.eq(tx_i - bp.REPLY_HEADER)
                out = Signal(8)
                with m.If(tx_i == 0):
                    m.d.comb += out.eq(bp.SOF_REPLY)
                with m.Elif(tx_i == 1):
                    m.d.comb += out.eq(status)
                with m.Elif(tx_i == 2):
                    m.d.comb += out.eq(seq)
                with m.Elif(tx_i == 3):
                    m.d.comb += out.eq(item[:8])
                with m.Elif(tx_i == 4):
                    m.d.comb += out.eq(item[8:])
                with m.Elif(tx_i < payload_end):
                    m.d.comb += out.eq(rd.data)
                with m.Elif(tx_i == payload_end):
                    m.d.comb += out.eq(crc[:8])
                with m.Else():
                    m.d.comb += out.eq(crc[8:])
                m.d.comb += [utx.data.eq(out), utx.valid.eq(1)]
                with m.If(utx.ready):
                    m.d.sync += tx_i.eq(tx_i + 1)
                    with m.If((tx_i != 0) & (tx_i < payload_end)):
                        m.d.sync += crc.eq(crc16_next(crc, out))
                    with m.If(tx_i == payload_end + 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "TX_FETCH"
        return m


def next_item(m, item, count, status, rlen, ok):
    """After an item of a WRITE / STREAM_IN: the next one, or the OK reply after the last."""
    m.d.sync += item.eq(item + 1)
    with m.If(item + 1 == count):
        m.d.sync += [status.eq(bp.Status.OK), rlen.eq(0)]
        m.next = "REPLY"
    with m.Else():
        m.next = ok


def _address_test(a, addresses):
    """`a` is one of `addresses` (a sorted list of register byte addresses)."""
    hit = Const(0)
    for x in addresses:
        hit = hit | (a == x)
    return hit
