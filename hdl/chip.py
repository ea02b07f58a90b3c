"""The chip top: stream fabric, slices, run control and the AXI4-Lite host port.

Run control: START sets RUNNING; cycle 0 is the first running cycle. On each
running cycle the chip stops (DONE) when no slice is busy, leaving CYCLES at
the number of busy cycles, or when a slice reports an illegal instruction
(DONE | ERROR, CYCLES counts the failing cycle too, ERROR_INFO says where).
Nothing issues, reads, writes or drives after the stop.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import hostmap as hm
from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.ecc import code_for

from .axil import AxiLiteSlave, axil_members
from .units import instance, units


def _or(sigs):
    return Cat(*sigs).any()


class Chip(wiring.Component):
    def __init__(self, config: ChipConfig):
        self.config = config
        self.units = units(config)
        S, W = config.streams, config.word_bits
        self.addr_bits = hm.addr_bits(config)
        super().__init__(axil_members(self.addr_bits) | {
            # bulk load (AXI4-Stream): one word per beat into M_SEL's slice from M_ADDR on, or with
            # S_DEST = 1 fetch_words instruction words per beat into Q_SEL's queue from Q_ADDR on
            "s_axis_tdata": In(W), "s_axis_tvalid": In(1), "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            # bulk SRAM unload (M_CMD READ_STREAM): raw words, stored ECC bits on tuser
            "m_axis_tdata": Out(W), "m_axis_tuser": Out(code_for(W).stored_bits), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "done": Out(1),                                  # DONE status bit, for an interrupt
            "running": Out(1),                               # RUNNING status bit: high from cycle 0 until the stop
        } | {                                                # streams leaving the edges, one port each
            f"{d}_out_{s}": Out(W) for d in ("east", "west") for s in range(S)
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        S, W, P = cfg.streams, cfg.word_bits, cfg.positions
        code = code_for(W)
        mems = cfg.slices_of(SliceKind.MEM)
        qbits = (cfg.queue_depth - 1).bit_length()

        # ---- host port ------------------------------------------------------------
        m.submodules.axil = axil = AxiLiteSlave(self.addr_bits)
        for name in axil_members(self.addr_bits, prefix=""):
            mine, theirs = getattr(self, "s_axil_" + name), getattr(axil, name)
            if axil.signature.members[name].flow == In:
                m.d.comb += theirs.eq(mine)
            else:
                m.d.comb += mine.eq(theirs)

        running, done, error, ecc_sticky, host_err = (Signal(name=n) for n in
                                                        ("running", "done_r", "error", "ecc_sticky", "host_err"))
        cycles, err_info, ecc_corr, ecc_unc = (Signal(32, name=n) for n in
                                               ("cycles", "err_info", "ecc_corr", "ecc_unc"))
        q_sel, m_sel = Signal(8), Signal(8)
        q_addr, m_addr = Signal(16), Signal(16)
        q_lo = Signal(32)
        m_data = Signal(W)
        m_ecc = Signal(code.stored_bits)
        m_busy = Signal(2)
        m_capture = Signal()          # one cycle after a host READ: take the slice's data
        m.d.comb += [self.done.eq(done), self.running.eq(running)]

        def at(name, i=0):
            return axil.reg_addr == hm.addr(name, i)

        we, wdata = axil.reg_we, axil.reg_wdata
        qslices = [s for s in cfg.floorplan if s.kind in spec.kinds_with_queues(cfg)]
        q_hits = {s.position: Signal(name=f"q_hit_{s.name}") for s in qslices}
        m_hits = {s.position: Signal(name=f"m_hit_{s.name}") for s in mems}
        for p, hit in q_hits.items():
            m.d.comb += hit.eq(q_sel == p)
        for p, hit in m_hits.items():
            m.d.comb += hit.eq(m_sel == p)
        # host accesses are refused (STATUS.HOST_ERR) while running, with a selector that is not
        # a MEM slice, or with an address / length beyond the configuration
        q_ok = ~running & _or(q_hits.values())
        q_data_ok = q_ok & (q_addr < cfg.queue_depth)
        q_len_ok = q_ok & (wdata <= cfg.queue_depth)
        unloading = Signal()           # READ_STREAM in progress: the SRAM host path is taken
        m_count = Signal(range(cfg.mem_words + 1))
        m_ok = ~running & ~unloading & _or(m_hits.values()) & (m_addr < cfg.mem_words)
        m.d.comb += axil.reg_wbusy.eq(m_busy != 0)
        m.d.sync += m_capture.eq(0)
        with m.If(m_busy != 0):
            m.d.sync += m_busy.eq(m_busy - 1)

        q_data_write = we & at("Q_DATA_HI")
        q_len_write = we & at("Q_LEN")
        m_cmd = we & at("M_CMD")
        # AXI4-Stream load: accepted whenever no register write or SRAM command is in progress,
        # so a master never waits forever; a beat the chip cannot store (running, bad M_SEL or
        # M_ADDR) is dropped and sets HOST_ERR, like a refused register access.
        beat, s_dest = Signal(), Signal()
        m.d.comb += [self.s_axis_tready.eq(~we & (m_busy == 0)),
                     beat.eq(self.s_axis_tvalid & self.s_axis_tready & ~s_dest)]
        with m.If(beat):
            with m.If(m_ok):
                m.d.sync += m_addr.eq(m_addr + 1)
            with m.Else():
                m.d.sync += host_err.eq(1)
        # queue beats: a whole ring row (fetch_words words) at a row-aligned Q_ADDR
        fw = cfg.fetch_words
        col_bits = (fw - 1).bit_length()
        q_beat, q_beat_ok = Signal(), Signal()
        m.d.comb += [q_beat.eq(self.s_axis_tvalid & self.s_axis_tready & s_dest),
                     q_beat_ok.eq(q_data_ok & ((q_addr[:col_bits] == 0) if col_bits else 1))]
        with m.If(q_beat):
            with m.If(q_beat_ok):
                m.d.sync += q_addr.eq(q_addr + fw)
            with m.Else():
                m.d.sync += host_err.eq(1)

        with m.If(we):
            with m.If(at("CTRL")):
                with m.If(wdata[0] & ~running & ~unloading):
                    m.d.sync += [running.eq(1), cycles.eq(0), done.eq(0), error.eq(0), err_info.eq(0)]
                with m.If(wdata[0] & (running | unloading)):
                    m.d.sync += host_err.eq(1)
                with m.If(wdata[1]):
                    m.d.sync += [done.eq(0), error.eq(0), ecc_sticky.eq(0), host_err.eq(0),
                                 ecc_corr.eq(0), ecc_unc.eq(0), err_info.eq(0)]
            with m.If(at("Q_SEL")):
                m.d.sync += q_sel.eq(wdata)
            with m.If(at("Q_ADDR")):
                m.d.sync += q_addr.eq(wdata)
            with m.If(at("S_DEST")):
                m.d.sync += s_dest.eq(wdata[0])
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
                with m.If(m_ok & wdata[3]):
                    with m.If((m_count != 0) & (m_addr + m_count <= cfg.mem_words)):
                        m.d.sync += unloading.eq(1)
                    with m.Else():
                        m.d.sync += host_err.eq(1)
                with m.Elif(m_ok):
                    m.d.sync += [m_addr.eq(m_addr + 1), m_busy.eq(2), m_capture.eq(wdata[2])]
                with m.Else():
                    m.d.sync += host_err.eq(1)

        # ---- fabric and slices -----------------------------------------------------
        # e_regs[p][s]: eastward stream s leaving position p (= V(p+1, t)); w_regs likewise westward
        e_regs = [[Signal(W, name=f"east_{sl.name}_{s}") for s in range(S)] for sl in cfg.floorplan]
        w_regs = [[Signal(W, name=f"west_{sl.name}_{s}") for s in range(S)] for sl in cfg.floorplan]
        zero = [Const(0, W)] * S

        def arriving(p):
            """(eastward, westward) values passing position p: V(p, t) per stream."""
            return (e_regs[p - 1] if p > 0 else zero), (w_regs[p + 1] if p < P - 1 else zero)

        drives = {}
        busy, errs, corr, unc = [], [], [], []
        fetch_bits = cfg.fetch_words * spec.WORD_BITS
        # the host's queue writes, as ring rows: a Q_DATA_HI write enables one word, a beat all of them
        q_row_we = Signal(fw)
        q_row_data = Signal(fetch_bits)
        one_word = Const(1, fw) << (q_addr[:col_bits] if col_bits else 0)
        m.d.comb += [q_row_we.eq(Mux(q_beat & q_beat_ok, (1 << fw) - 1,
                                     Mux(q_data_write & q_data_ok, one_word, 0))),
                     q_row_data.eq(Mux(q_beat, self.s_axis_tdata[:fetch_bits], Cat(*[Cat(q_lo, wdata)] * fw)))]

        def host_queue(sig, p):
            return [sig["host_q_we"].eq(Mux(q_hits[p], q_row_we, 0)), sig["host_q_addr"].eq(q_addr[col_bits:]),
                    sig["host_q_data"].eq(q_row_data),
                    sig["host_q_len_we"].eq(q_len_write & q_len_ok & q_hits[p]), sig["host_q_len"].eq(wdata)]

        def fetch_tap(sig, p):
            """IFETCH's stream tap of the queue at p: the named stream's low words as they pass."""
            e_in, w_in = arriving(p)
            m.d.comb += sig["fetch_tap"].eq(Mux(sig["fetch_dir"], Array(w_in)[sig["fetch_stream"]],
                                                Array(e_in)[sig["fetch_stream"]])[:fetch_bits])
        rdata_mux, recc_mux, qlen_mux = Const(0, W), Const(0, code.stored_bits), Const(0, qbits + 1)
        for sl in mems:
            p = sl.position
            e_in, w_in = arriving(p)
            sig = {name: Signal(member.shape, name=f"{sl.name}_{name}")
                   for name, member in self.units["mem_slice"].signature.members.items()}
            m.d.comb += sig["tap"].eq(Mux(sig["tap_dir"], Array(w_in)[sig["tap_stream"]],
                                          Array(e_in)[sig["tap_stream"]]))
            m.d.comb += host_queue(sig, p)
            m.d.comb += [
                sig["running"].eq(running),
                sig["host_m_we"].eq(((m_cmd & (wdata[0] | wdata[1])) | beat) & m_ok & m_hits[p]),
                sig["host_m_raw"].eq(m_cmd & wdata[1]),
                sig["host_m_addr"].eq(m_addr), sig["host_m_data"].eq(Mux(beat, self.s_axis_tdata, m_data)),
                sig["host_m_ecc"].eq(m_ecc),
            ]
            fetch_tap(sig, p)
            m.submodules[sl.name] = instance("mem_slice", self.units["mem_slice"], **sig)
            drives[p] = (sig["drive_e_en"], sig["drive_w_en"], [sig["drive_data"]] * S, [sig["drive_data"]] * S)
            busy.append(sig["busy"])
            errs.append((p, sig["err"], sig["err_code"], sig["err_pc"]))
            corr.append(sig["ecc_corrected"])
            unc.append(sig["ecc_uncorrectable"])
            rdata_mux = Mux(m_hits[p], sig["host_m_rdata"], rdata_mux)
            recc_mux = Mux(m_hits[p], sig["host_m_recc"], recc_mux)
            qlen_mux = Mux(q_hits[p], sig["q_len"], qlen_mux)


        def signals(unit, prefix):
            return {name: Signal(member.shape, name=f"{prefix}_{name}")
                    for name, member in self.units[unit].signature.members.items()}

        for sl in cfg.slices_of(SliceKind.VXM):
            p = sl.position
            e_in, w_in = arriving(p)
            ctrl = signals("vxm_ctrl", sl.name)
            m.d.comb += [ctrl["running"].eq(running)] + host_queue(ctrl, p)
            fetch_tap(ctrl, p)
            m.submodules[sl.name] = instance("vxm_ctrl", self.units["vxm_ctrl"], **ctrl)
            # stream groups are selected here, whole vectors at a time; each lane gets its bytes
            e_arr, w_arr = Array(list(e_in) + [Const(0, W)] * 3), Array(list(w_in) + [Const(0, W)] * 3)

            def group(sel, name):
                """The 4 streams from operand field `sel` (index, dir), byte-plane interleaved per lane."""
                planes = [Signal(W, name=f"{sl.name}_{name}_p{j}") for j in range(4)]
                for j, pl in enumerate(planes):
                    m.d.comb += pl.eq(Mux(sel[6], w_arr[sel[:6] + j], e_arr[sel[:6] + j]))
                return [Cat(*(pl[8 * i:8 * i + 8] for pl in planes)) for i in range(cfg.lanes)]

            NA = cfg.vxm_alus
            per_lane = {f"s{o}{k}": group(ctrl[f"{o}{k}"], f"{o}{k}") for k in range(NA) for o in "abc"}
            per_lane["reg_data"] = group(ctrl["reg_src"], "load")
            to_lane = {n for n, v in self.units["vxm_lane"].signature.members.items() if v.flow == In} \
                - set(per_lane) - {"running"}
            results = [[] for _ in range(NA)]           # results[k][i]: ALU k's 32 bits at lane i
            for i in range(cfg.lanes):
                outs = {f"r{k}": Signal(32, name=f"{sl.name}_lane{i}_r{k}") for k in range(NA)}
                for k in range(NA):
                    results[k].append(outs[f"r{k}"])
                m.submodules[f"{sl.name}_lane{i}"] = instance(
                    "vxm_lane", self.units["vxm_lane"], running=running,
                    **{n: v[i] for n, v in per_lane.items()}, **{n: ctrl[n] for n in to_lane}, **outs)
            # byte plane j of ALU k's result, as a vector: what a stream driven from it carries
            choices = Array(Cat(*(r[8 * j:8 * j + 8] for r in results[k])) for k in range(NA) for j in range(4))
            ab = max(NA - 1, 1).bit_length()
            e_data, w_data = [], []
            for dname, out in (("e", e_data), ("w", w_data)):
                for s in range(S):
                    alu_k = ctrl[f"{dname}_alu"][ab * s:ab * s + ab]
                    plane = ctrl[f"{dname}_plane"][2 * s:2 * s + 2]
                    v = Signal(W, name=f"{sl.name}_{dname}_data{s}")
                    m.d.comb += v.eq(choices[Cat(plane, alu_k) if NA > 1 else plane])
                    out.append(v)
            drives[p] = (ctrl["e_en"], ctrl["w_en"], e_data, w_data)
            busy.append(ctrl["busy"])
            errs.append((p, ctrl["err"], ctrl["err_code"], ctrl["err_pc"]))
            qlen_mux = Mux(q_hits[p], ctrl["q_len"], qlen_mux)

        N = cfg.sxm_width
        for sl in cfg.slices_of(SliceKind.SXM):
            p = sl.position
            e_in, w_in = arriving(p)
            sig = signals("sxm_slice", sl.name)
            m.d.comb += [sig["running"].eq(running)] + host_queue(sig, p)
            fetch_tap(sig, p)
            pad = [Const(0, W)] * N                       # a group never runs past the last stream
            e_arr, w_arr = Array(list(e_in) + pad), Array(list(w_in) + pad)
            m.d.comb += sig["src"].eq(Cat(*(Mux(sig["tap_dir"], w_arr[sig["tap_stream"] + j],
                                                e_arr[sig["tap_stream"] + j]) for j in range(N))))
            m.submodules[sl.name] = instance("sxm_slice", self.units["sxm_slice"], **sig)
            slots = Array(sig["out"][j * W:(j + 1) * W] for j in range(N))
            e_en, w_en = Signal(S, name=f"{sl.name}_e_en"), Signal(S, name=f"{sl.name}_w_en")
            data = []
            for s in range(S):
                slot = Const(s, 8) - sig["dst"]
                hit = sig["drive"] & (slot < sig["width"])
                if s < S - 1:                             # dst <= S-1 always holds
                    hit = hit & (sig["dst"] <= s)
                m.d.comb += [e_en[s].eq(hit & ~sig["ddir"]), w_en[s].eq(hit & sig["ddir"])]
                data.append(slots[slot[:max(N - 1, 1).bit_length()]] if N > 1 else slots[0])
            drives[p] = (e_en, w_en, data, data)
            busy.append(sig["busy"])
            errs.append((p, sig["err"], sig["err_code"], sig["err_pc"]))
            qlen_mux = Mux(q_hits[p], sig["q_len"], qlen_mux)
        for sl in cfg.slices_of(SliceKind.MXM):
            p = sl.position
            e_in, w_in = arriving(p)
            ctrl = signals("mxm_ctrl", sl.name)
            m.d.comb += [ctrl["running"].eq(running)] + host_queue(ctrl, p)
            fetch_tap(ctrl, p)
            pad = [Const(0, W)] * S
            e_arr, w_arr = Array(list(e_in) + pad), Array(list(w_in) + pad)
            m.d.comb += ctrl["x_in"].eq(Mux(ctrl["x_dir"], w_arr[ctrl["x_stream"]], e_arr[ctrl["x_stream"]]))
            lw = [Signal(W, name=f"{sl.name}_lw{j}") for j in range(S)]
            for j, v in enumerate(lw):
                m.d.comb += v.eq(Mux(ctrl["lw_dir"], w_arr[ctrl["lw_stream"] + j], e_arr[ctrl["lw_stream"] + j]))
            ys = []
            shared = ["x", "lw_we", "lw_row", "lw_width", "wzp", "wsigned", "swap", "clear"]
            for c in range(cfg.lanes):
                y = Signal(32, name=f"{sl.name}_col{c}_y")
                ys.append(y)
                m.submodules[f"{sl.name}_col{c}"] = instance(
                    "mxm_column", self.units["mxm_column"], y=y,
                    lw_bytes=Cat(*(v[8 * c:8 * c + 8] for v in lw)), **{n: ctrl[n] for n in shared})
            m.d.comb += ctrl["y"].eq(Cat(*ys))
            m.submodules[sl.name] = instance("mxm_ctrl", self.units["mxm_ctrl"], **ctrl)
            planes = Array(Cat(*(ctrl["out"][32 * c + 8 * j:32 * c + 8 * j + 8] for c in range(cfg.lanes)))
                           for j in range(4))
            e_en, w_en = Signal(S, name=f"{sl.name}_e_en"), Signal(S, name=f"{sl.name}_w_en")
            data = []
            for s in range(S):
                plane = Const(s, 8) - ctrl["dst"]
                hit = ctrl["drive"] & (plane < 4)
                if s < S - 1:
                    hit = hit & (ctrl["dst"] <= s)
                m.d.comb += [e_en[s].eq(hit & ~ctrl["ddir"]), w_en[s].eq(hit & ctrl["ddir"])]
                data.append(planes[plane[:2]])
            drives[p] = (e_en, w_en, data, data)
            busy.append(ctrl["busy"])
            errs.append((p, ctrl["err"], ctrl["err_code"], ctrl["err_pc"]))
            qlen_mux = Mux(q_hits[p], ctrl["q_len"], qlen_mux)
        errs.sort(key=lambda e: e[0])

        for sl in cfg.floorplan:
            p = sl.position
            e_en, w_en, e_data, w_data = drives.get(p, (Const(0, S), Const(0, S), zero, zero))
            e_in, w_in = arriving(p)
            for s in range(S):
                m.submodules[f"lane_{sl.name}_{s}"] = instance(
                    "stream_lane", self.units["stream_lane"], e_in=e_in[s], w_in=w_in[s], e_en=e_en[s],
                    w_en=w_en[s], e_data=e_data[s], w_data=w_data[s], e_out=e_regs[p][s], w_out=w_regs[p][s])
        for s in range(S):
            m.d.comb += [getattr(self, f"east_out_{s}").eq(e_regs[-1][s]),
                         getattr(self, f"west_out_{s}").eq(w_regs[0][s])]

        with m.If(m_capture):
            m.d.sync += [m_data.eq(rdata_mux), m_ecc.eq(recc_mux)]

        # ---- AXI4-Stream unload: address on one cycle, data the next, hold until accepted --------
        left = Signal.like(m_count)
        with m.FSM(name="unload"):
            with m.State("IDLE"):
                with m.If(unloading):
                    m.d.sync += left.eq(m_count)
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):            # the slice's read port samples m_addr now
                m.next = "CAPTURE"
            with m.State("CAPTURE"):
                m.d.sync += [self.m_axis_tdata.eq(rdata_mux), self.m_axis_tuser.eq(recc_mux),
                             self.m_axis_tvalid.eq(1), self.m_axis_tlast.eq(left == 1),
                             m_addr.eq(m_addr + 1), left.eq(left - 1)]
                m.next = "SEND"
            with m.State("SEND"):
                with m.If(self.m_axis_tready):
                    m.d.sync += self.m_axis_tvalid.eq(0)
                    with m.If(left == 0):
                        m.d.sync += unloading.eq(0)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "ADDRESS"

        # ---- run control -------------------------------------------------------------
        any_err = _or(e for _, e, _, _ in errs)
        n_corr = sum(c.as_unsigned() for c in corr)
        n_unc = sum(u.as_unsigned() for u in unc)
        with m.If(running):
            m.d.sync += [ecc_corr.eq(ecc_corr + n_corr), ecc_unc.eq(ecc_unc + n_unc)]
            with m.If(n_unc != 0):
                m.d.sync += ecc_sticky.eq(1)
            with m.If(any_err):
                m.d.sync += [running.eq(0), done.eq(1), error.eq(1), cycles.eq(cycles + 1)]
                # the westmost failing slice is reported
                for p, e, code_, pc in reversed(errs):
                    with m.If(e):
                        m.d.sync += err_info.eq(Cat(code_, Const(0, 4), Const(p, 8), pc))
            with m.Elif(~_or(busy)):
                m.d.sync += [running.eq(0), done.eq(1)]
            with m.Else():
                m.d.sync += cycles.eq(cycles + 1)

        # ---- register read mux ---------------------------------------------------------
        ver = spec.ISA_VERSION
        regs = {
            "ID": Const(hm.ID_MAGIC | ver[0] << 4 | ver[1], 32),
            "STATUS": Cat(running, done, error, ecc_sticky, host_err, unloading),
            "CYCLES": cycles, "ERROR_INFO": err_info,
            "ECC_CORRECTED": ecc_corr, "ECC_UNCORRECTABLE": ecc_unc,
            "CONFIG0": Const(cfg.lanes | S << 16 | P << 24, 32),
            "CONFIG1": Const(cfg.mem_addr_bits | qbits << 8 | code.stored_bits << 16, 32),
            "Q_SEL": q_sel, "Q_ADDR": q_addr, "Q_LEN": qlen_mux, "S_DEST": s_dest,
            "M_SEL": m_sel, "M_ADDR": m_addr, "M_ECC": m_ecc, "M_COUNT": m_count,
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
