"""The host register file: the AXI4-Lite register map, the staging registers and the bulk ports.

It decodes the register strobes of an `AxiLiteSlave` against `isa/hostmap.py` (addresses, and
the bit fields of CTRL, STATUS, ERROR_INFO, CONFIG0/1, M_CMD and S_DEST as `StructLayout`s),
keeps the staging registers (Q_*, M_*, S_DEST), applies the HOST_ERR refusal rules, turns
AXI4-Stream beats on `s_axis_*` into SRAM word writes or queue row writes, and runs the
READ_STREAM unload onto `m_axis_*`. It reaches the rest of the chip through four interfaces:
`cmd` (START / CLEAR to the run control), `status` (what STATUS, CYCLES, ERROR_INFO and the ECC
counters read), `queue` (the host's queue load, to every slice with a queue) and `sram` (the
host's SRAM access, to every MEM slice). Which slice is selected (Q_SEL, M_SEL) is decided
where the slices attach (hdl/attach.py); this file only knows which positions are valid.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.data import StructLayout, View
from amaranth.lib.wiring import In, Out

from isa import hostmap as hm
from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.ecc import code_for

from .axil import AxiLiteSlave, axil_members
from .queue import host_load_cycles


def reg_layout(name: str) -> StructLayout:
    """The bit fields of host register `name` (isa/hostmap.py `layout`) as a StructLayout."""
    return StructLayout(dict(hm.layout(name)))


def reg_value(name: str, **fields) -> Value:
    """The 32-bit value of host register `name` with the given fields (values, zero-extended), every
    other bit 0: one whole-word expression, so no bit of a register is left undriven."""
    parts = []
    for field, width in hm.layout(name):
        v = Value.cast(fields.pop(field, Const(0, width))).as_unsigned()
        parts.append(v[:width] if len(v) >= width else Cat(v, Const(0, width - len(v))))
    assert not fields, f"{name} has no fields {sorted(fields)}"
    return Cat(*parts)


class HostPorts(wiring.Signature):
    """The chip's host-facing ports, with the flows and flat names of the chip's top level.

    Members
    -------
    s_axil_* :
        AXI4-Lite slave (`hdl/axil.py`, `axil_members`).
    s_axis_tdata, s_axis_tvalid, s_axis_tlast : In; s_axis_tready : Out
        AXI4-Stream bulk load: one whole word per beat into M_SEL's slice from M_ADDR on, or with
        S_DEST = 1 fetch_words instruction words per beat into Q_SEL's queue from Q_ADDR on.
    m_axis_tdata, m_axis_tuser, m_axis_tvalid, m_axis_tlast : Out; m_axis_tready : In
        AXI4-Stream bulk unload (M_CMD READ_STREAM): raw words, their stored ECC bits on tuser.
    """

    def __init__(self, config: ChipConfig):
        W = config.word_bits
        super().__init__(axil_members(hm.addr_bits(config)) | {
            "s_axis_tdata": In(W), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(W), "m_axis_tuser": Out(code_for(W).stored_bits), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })


class RunCommand(wiring.Signature):
    """CTRL's commands, from the register file to the run control (one-cycle strobes).

    Members
    -------
    start : Out(1)
        START accepted (the chip is idle and not unloading).
    clear : Out(1)
        CLEAR: DONE, ERROR, ERROR_INFO, the ECC flag and counters (HOST_ERR is the register file's).
    """

    def __init__(self):
        super().__init__({"start": Out(1), "clear": Out(1)})


class RunStatus(wiring.Signature):
    """What the run control reports, as the host reads it (STATUS bits, CYCLES, ERROR_INFO, ECC).

    Members
    -------
    running, done, error, ecc_sticky : Out(1)
        STATUS.RUNNING, DONE, ERROR and ECC_UNCORRECTABLE.
    cycles, ecc_corrected, ecc_uncorrectable : Out(32)
        CYCLES, ECC_CORRECTED, ECC_UNCORRECTABLE.
    err_info : Out(reg_layout("ERROR_INFO"))
        ERROR_INFO.
    """

    def __init__(self):
        super().__init__({"running": Out(1), "done": Out(1), "error": Out(1), "ecc_sticky": Out(1),
                          "cycles": Out(32), "err_info": Out(reg_layout("ERROR_INFO")),
                          "ecc_corrected": Out(32), "ecc_uncorrectable": Out(32)})


class QueueLoad(wiring.Signature):
    """The host's queue load, from the register file to the slices with a queue.

    Members
    -------
    sel : Out(8)
        Q_SEL: the position whose queue Q_LEN writes and the read-back are for (each slice
        compares it with its own).
    row_sel, row_we : Out
        a ring row write (each queue registers it and writes its ring a cycle after the host's
        access, so no queue's decoder sits behind a wire across the chip; a START can only
        follow it, never share its cycle, since stream beats wait while a register write is
        accepted): the position it is for and the per-word enables of ring row `row_addr` (a
        Q_DATA_HI write sets one, a queue beat all); already refused (zero) when the access is
        not allowed.
    row_addr, row_data : Out
        the ring row and its fetch_words words.
    len_we, len : Out
        a Q_LEN write that is allowed, and its value.
    length : In
        the selected queue's Q_LEN, for the read-back.
    """

    def __init__(self, config: ChipConfig):
        qbits = (config.queue_depth - 1).bit_length()
        fw = config.fetch_words
        super().__init__({"sel": Out(8), "row_sel": Out(8), "row_we": Out(fw),
                          "row_addr": Out(qbits - (fw - 1).bit_length()),
                          "row_data": Out(fw * spec.WORD_BITS), "len_we": Out(1), "len": Out(qbits + 1),
                          "length": In(qbits + 1)})


class SramAccess(wiring.Signature):
    """The host's SRAM access, from the register file to the MEM slices.

    Members
    -------
    sel : Out(8)
        M_SEL: the MEM slice addressed (each slice compares it with its own position).
    we, raw : Out(1)
        store `data` at `addr` (already refused when not allowed); store `ecc` as given (WRITE_RAW).
    addr, data, ecc : Out
        M_ADDR, the word (M_DATA or an s_axis beat) and M_ECC.
    rdata, recc : In
        the selected slice's raw word at `addr` and its stored ECC bits (read port, one cycle).
    """

    def __init__(self, config: ChipConfig):
        W, E = config.word_bits, code_for(config.word_bits).stored_bits
        super().__init__({"sel": Out(8), "we": Out(1), "raw": Out(1), "addr": Out(16), "data": Out(W),
                          "ecc": Out(E), "rdata": In(W), "recc": In(E)})


class LinkStatus(wiring.Signature):
    """The selected link's status, from the C2C slices to the register file.

    Members
    -------
    sel : Out(8)
        L_SEL: the C2C slice whose link is shown.
    status : In(L_STATUS layout); corrected, uncorrectable : In(32)
        that link's L_STATUS, L_CORRECTED and L_UNCORRECTABLE.
    """

    def __init__(self):
        super().__init__({"sel": Out(8), "status": In(reg_layout("L_STATUS")),
                          "corrected": In(32), "uncorrectable": In(32)})


class SyncRegs(wiring.Signature):
    """The SYNC registers, from the register file to the sync unit (hdl/sync.py).

    Members
    -------
    tree, children, margin, timeout : Out(32)
        SYNC_TREE, SYNC_CHILDREN, SYNC_MARGIN and SYNC_TIMEOUT as written (isa/hostmap.py RESET after reset).
    stall, hac : In(32)
        STALL and the HAC register (the counter, ALIGNED, the offset), for the read-back.
    """

    def __init__(self):
        super().__init__({"tree": Out(32, init=hm.RESET.get("SYNC_TREE", 0)),
                          "children": Out(32, init=hm.RESET.get("SYNC_CHILDREN", 0)),
                          "margin": Out(32, init=hm.RESET.get("SYNC_MARGIN", 0)),
                          "timeout": Out(32, init=hm.RESET.get("SYNC_TIMEOUT", 0)),
                          "stall": In(32), "hac": In(32)})


SYNC_REGS = {"SYNC_TREE": "tree", "SYNC_CHILDREN": "children", "SYNC_MARGIN": "margin", "SYNC_TIMEOUT": "timeout"}


def _or(sigs):
    return Cat(*sigs).any()


class HostRegs(wiring.Component):
    """The host register file (isa/hostmap.py) behind the chip's AXI4-Lite and AXI4-Stream ports.

    Parameters
    ----------
    config : ChipConfig
        sizes (lanes, queue_depth, fetch_words, mem_words) and the floorplan (which positions Q_SEL
        and M_SEL may name).

    Members
    -------
    bus : Out(HostPorts(config))
        the AXI4-Lite slave and the two AXI4-Stream ports, as the chip's top level has them.
    cmd : Out(RunCommand())
        START and CLEAR, to the run control.
    status : In(RunStatus())
        the run control's state, for STATUS, CYCLES, ERROR_INFO and the ECC counters; `running`
        also gates the host's accesses.
    queue : Out(QueueLoad(config))
        the host's queue load.
    sram : Out(SramAccess(config))
        the host's SRAM access.
    link : Out(LinkStatus())
        the selected link's status and FEC counters.
    sync : Out(SyncRegs())
        the SYNC registers, STALL and the HAC.
    """

    def __init__(self, config: ChipConfig):
        self.config = config
        self.addr_bits = hm.addr_bits(config)
        super().__init__({"bus": Out(HostPorts(config)), "cmd": Out(RunCommand()), "status": In(RunStatus()),
                          "queue": Out(QueueLoad(config)), "sram": Out(SramAccess(config)),
                          "link": Out(LinkStatus()), "sync": Out(SyncRegs())})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        W = cfg.word_bits
        code = code_for(W)
        bus, q, sram = self.bus, self.queue, self.sram
        # Everything this file sends to the chip (START and CLEAR, queue rows, SRAM accesses) leaves
        # from a register, one cycle after the access: the host's decode and the slices are then
        # not one path, which on an FPGA spans the device. START takes as many cycles as a queue
        # row takes to land after that (hdl/queue.py `host_load_cycles`), so a word loaded before
        # a START lands before the run's cycle 0; the host counts as running from the START on,
        # so a beat in those cycles is refused, not lost.
        starting = [Signal(name=f"start_{i}") for i in range(host_load_cycles(cfg) - 1)]
        running = Signal()
        m.d.comb += running.eq(self.status.running | self.cmd.start | Cat(*starting).any())

        m.submodules.axil = axil = AxiLiteSlave(self.addr_bits)
        for name in axil_members(self.addr_bits, prefix=""):
            mine, theirs = getattr(bus, "s_axil_" + name), getattr(axil, name)
            if axil.signature.members[name].flow == In:
                m.d.comb += theirs.eq(mine)
            else:
                m.d.comb += mine.eq(theirs)

        host_err = Signal()
        q_sel, m_sel = Signal(8), Signal(8)
        q_addr, m_addr = Signal(16), Signal(16)
        q_lo = Signal(32)
        m_data = Signal(W)
        m_ecc = Signal(code.stored_bits)
        m_busy = Signal(2)
        m_read, m_capture = Signal(), Signal()    # two cycles after a host READ: take the slice's data

        def at(name, i=0):
            return axil.reg_addr == hm.addr(name, i)

        we, wdata = axil.reg_we, axil.reg_wdata
        ctrl, cmd, dest = (View(reg_layout(r), wdata) for r in ("CTRL", "M_CMD", "S_DEST"))
        q_positions = [s.position for s in cfg.floorplan if s.kind in spec.kinds_with_queues(cfg)]
        m_positions = [s.position for s in cfg.slices_of(SliceKind.MEM)]
        # host accesses are refused (STATUS.HOST_ERR) while running, with a selector that is not
        # a slice with a queue / a MEM slice, or with an address / length beyond the configuration
        q_ok = ~running & _or(q_sel == p for p in q_positions)
        q_data_ok = q_ok & (q_addr < cfg.queue_depth)
        q_len_ok = q_ok & (wdata <= cfg.queue_depth)
        unloading = Signal()           # READ_STREAM in progress: the SRAM host path is taken
        m_count = Signal(range(cfg.mem_words + 1))
        m_ok = ~running & ~unloading & _or(m_sel == p for p in m_positions) & (m_addr < cfg.mem_words)
        m.d.comb += axil.reg_wbusy.eq(m_busy != 0)
        m.d.sync += [m_read.eq(0), m_capture.eq(m_read)]
        with m.If(m_busy != 0):
            m.d.sync += m_busy.eq(m_busy - 1)

        q_data_write = we & at("Q_DATA_HI")
        q_len_write = we & at("Q_LEN")
        m_cmd = we & at("M_CMD")
        # AXI4-Stream load: accepted whenever no register write or SRAM command is in progress,
        # so a master never waits forever; a beat the chip cannot store (running, bad M_SEL or
        # M_ADDR) is dropped and sets HOST_ERR, like a refused register access.
        beat, s_dest = Signal(), Signal()
        m.d.comb += [bus.s_axis_tready.eq(~we & (m_busy == 0)),
                     beat.eq(bus.s_axis_tvalid & bus.s_axis_tready & ~s_dest)]
        with m.If(beat):
            with m.If(m_ok):
                m.d.sync += m_addr.eq(m_addr + 1)
            with m.Else():
                m.d.sync += host_err.eq(1)
        # queue beats: a whole ring row (fetch_words words) at a row-aligned Q_ADDR
        fw = cfg.fetch_words
        col_bits = (fw - 1).bit_length()
        q_beat, q_beat_ok = Signal(), Signal()
        m.d.comb += [q_beat.eq(bus.s_axis_tvalid & bus.s_axis_tready & s_dest),
                     q_beat_ok.eq(q_data_ok & ((q_addr[:col_bits] == 0) if col_bits else 1))]
        with m.If(q_beat):
            with m.If(q_beat_ok):
                m.d.sync += q_addr.eq(q_addr + fw)
            with m.Else():
                m.d.sync += host_err.eq(1)

        start_pipe = [we & at("CTRL") & ctrl.start & ~running & ~unloading] + starting + [self.cmd.start]
        m.d.sync += [b.eq(a) for a, b in zip(start_pipe, start_pipe[1:])]
        m.d.sync += self.cmd.clear.eq(we & at("CTRL") & ctrl.clear)
        with m.If(we):
            with m.If(at("CTRL")):
                with m.If(ctrl.start & (running | unloading)):
                    m.d.sync += host_err.eq(1)
                with m.If(ctrl.clear):
                    m.d.sync += host_err.eq(0)
            with m.If(at("Q_SEL")):
                m.d.sync += q_sel.eq(wdata)
            with m.If(at("L_SEL")):
                m.d.sync += self.link.sel.eq(wdata)
            for reg, member in SYNC_REGS.items():
                with m.If(at(reg)):
                    m.d.sync += getattr(self.sync, member).eq(wdata)
            with m.If(at("Q_ADDR")):
                m.d.sync += q_addr.eq(wdata)
            with m.If(at("S_DEST")):
                m.d.sync += s_dest.eq(dest.queue)
            with m.If(at("Q_DATA_LO")):
                m.d.sync += q_lo.eq(wdata)
            with m.If(at("Q_DATA_HI")):
                with m.If(q_data_ok):
                    m.d.sync += q_addr.eq(q_addr + 1)
                with m.Else():
                    m.d.sync += host_err.eq(1)
            with m.If(at("Q_LEN") & ~q_len_ok):
                m.d.sync += host_err.eq(1)
            with m.If((at("M_SEL") | at("M_ADDR") | at("M_COUNT")) & unloading):
                m.d.sync += host_err.eq(1)                   # the unload owns them until it ends
            with m.If(at("M_SEL") & ~unloading):
                m.d.sync += m_sel.eq(wdata)
            with m.If(at("M_ADDR") & ~unloading):
                m.d.sync += m_addr.eq(wdata)
            with m.If(at("M_ECC")):
                m.d.sync += m_ecc.eq(wdata)
            for i in range(hm.data_regs(cfg)):
                with m.If(at("M_DATA", i)):
                    m.d.sync += m_data.word_select(i, 32).eq(wdata)
            with m.If(at("M_COUNT") & ~unloading):
                m.d.sync += m_count.eq(wdata)
            with m.If(at("M_CMD")):
                with m.If(m_ok & cmd.read_stream):
                    with m.If((m_count != 0) & (m_addr + m_count <= cfg.mem_words)):
                        m.d.sync += unloading.eq(1)
                    with m.Else():
                        m.d.sync += host_err.eq(1)
                with m.Elif(m_ok):
                    m.d.sync += [m_addr.eq(m_addr + 1), m_busy.eq(3), m_read.eq(cmd.read)]
                with m.Else():
                    m.d.sync += host_err.eq(1)

        # ---- to the slices: the queue load (ring rows) and the SRAM access --------------------------
        one_word = Const(1, fw) << (q_addr[:col_bits] if col_bits else 0)
        fetch_bits = fw * spec.WORD_BITS
        m.d.sync += [
            q.row_sel.eq(q_sel),
            q.row_we.eq(Mux(q_beat & q_beat_ok, (1 << fw) - 1, Mux(q_data_write & q_data_ok, one_word, 0))),
            q.row_addr.eq(q_addr[col_bits:]),
            q.row_data.eq(Mux(q_beat, bus.s_axis_tdata[:fetch_bits], Cat(*[Cat(q_lo, wdata)] * fw))),
        ]
        m.d.sync += [
            q.sel.eq(q_sel),
            q.len_we.eq(q_len_write & q_len_ok), q.len.eq(wdata),
            sram.sel.eq(m_sel),
            sram.we.eq(((m_cmd & (cmd.write | cmd.write_raw)) | beat) & m_ok),
            sram.raw.eq(m_cmd & cmd.write_raw),
            sram.addr.eq(m_addr), sram.data.eq(Mux(beat, bus.s_axis_tdata, m_data)), sram.ecc.eq(m_ecc),
        ]
        with m.If(m_capture):
            m.d.sync += [m_data.eq(sram.rdata), m_ecc.eq(sram.recc)]

        # ---- AXI4-Stream unload: address out, sampled, data; hold each beat until accepted ------
        left = Signal.like(m_count)
        with m.FSM(name="unload"):
            with m.State("IDLE"):
                with m.If(unloading):
                    m.d.sync += left.eq(m_count)
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):            # m_addr goes out to the slice ...
                m.next = "SAMPLE"
            with m.State("SAMPLE"):             # ... whose read port samples it now
                m.next = "CAPTURE"
            with m.State("CAPTURE"):
                m.d.sync += [bus.m_axis_tdata.eq(sram.rdata), bus.m_axis_tuser.eq(sram.recc),
                             bus.m_axis_tvalid.eq(1), bus.m_axis_tlast.eq(left == 1),
                             m_addr.eq(m_addr + 1), left.eq(left - 1)]
                m.next = "SEND"
            with m.State("SEND"):
                with m.If(bus.m_axis_tready):
                    m.d.sync += bus.m_axis_tvalid.eq(0)
                    with m.If(left == 0):
                        m.d.sync += unloading.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "ADDRESS"

        # ---- register read mux ---------------------------------------------------------
        st = self.status
        status = reg_value("STATUS", running=st.running, done=st.done, error=st.error,
                           ecc_uncorrectable=st.ecc_sticky, host_err=host_err, unloading=unloading)
        config = hm.config_fields(cfg)
        regs = {
            "ID": Const(hm.id_value(spec.ISA_VERSION), 32),
            "STATUS": status,
            "CYCLES": st.cycles, "ERROR_INFO": st.err_info,
            "ECC_CORRECTED": st.ecc_corrected, "ECC_UNCORRECTABLE": st.ecc_uncorrectable,
            "CONFIG0": reg_layout("CONFIG0").const(config["CONFIG0"]),
            "CONFIG1": reg_layout("CONFIG1").const(config["CONFIG1"]),
            "Q_SEL": q_sel, "Q_ADDR": q_addr, "Q_LEN": q.length, "S_DEST": s_dest,
            "M_SEL": m_sel, "M_ADDR": m_addr, "M_ECC": m_ecc, "M_COUNT": m_count,
            "L_SEL": self.link.sel, "L_STATUS": self.link.status, "L_CORRECTED": self.link.corrected,
            "L_UNCORRECTABLE": self.link.uncorrectable,
            **{reg: getattr(self.sync, member) for reg, member in SYNC_REGS.items()},
            "STALL": self.sync.stall, "HAC": self.sync.hac,
        }
        rdata = Signal(32)
        with m.Switch(axil.reg_addr):
            for name, value in regs.items():
                with m.Case(hm.addr(name)):
                    m.d.comb += rdata.eq(value)
            for i in range(hm.data_regs(cfg)):
                with m.Case(hm.addr("M_DATA", i)):
                    m.d.comb += rdata.eq(m_data.word_select(i, 32))
        m.d.comb += axil.reg_rdata.eq(rdata)
        return m
