"""How each slice kind attaches to the fabric: its emitted units and how they are wired.

One function per slice kind (`ATTACH[kind](fabric, slice)`): the kind's control unit (or whole
slice unit) once, its superlane units (`Fabric.superlanes`) once per superlane, and the wires
between them, sharing `attach_queue` (run control, the host's queue load, the IFETCH tap, busy /
error / Q_LEN for the top). Every selection of stream values happens inside the superlane units;
here a whole-vector port of a control unit is only the superlanes' slices put side by side
(`across`).
"""
from amaranth.hdl import Cat, Mux, Signal

from isa.config import SliceKind

from .fabric import Fabric
from .host_regs import reg_value


def across(parts, width: int):
    """Whole vectors from per-superlane parts: part g holds, for every vector i, superlane g of it
    (`width` bits at [i*width, (i+1)*width)); returns the vectors side by side, each with
    superlane 0 lowest."""
    n = len(parts[0]) // width
    return Cat(*(p[i * width:(i + 1) * width] for i in range(n) for p in parts))


def attach_queue(fab: Fabric, sl, ports, superlanes):
    """Wire the queue ports every slice with a queue has (hdl/queue.py `slice_queue_ports`)."""
    m, q, p = fab.m, fab.host.queue, sl.position
    hit = Signal(name=f"q_hit_{sl.name}")
    m.d.comb += [
        hit.eq(q.sel == p),
        ports.running.eq(fab.running),
        ports.host_q_we.eq(Mux(q.row_sel == p, q.row_we, 0)), ports.host_q_addr.eq(q.row_addr),
        ports.host_q_data.eq(q.row_data), ports.host_q_len_we.eq(q.len_we & hit), ports.host_q_len.eq(q.len),
        # IFETCH's tap: the named stream's low words as they pass
        ports.fetch_tap.eq(Cat(*(g.fetch_tap for g in superlanes))[:fab.fetch_bits]),
        ports.sync_release.eq(fab.sync.release),
    ]
    fab.report(p, ports.busy, ports.err, ports.err_code, ports.err_pc, ports.parked)
    fab.q_len = Mux(hit, ports.q_len, fab.q_len)


def queue_taps(ports):
    """The IFETCH tap's selection, which every superlane of a slice takes from its queue."""
    return {"fetch_stream": ports.fetch_stream, "fetch_dir": ports.fetch_dir}


def attach_mem(fab: Fabric, sl):
    """A MEM slice: its write engine's tap, the host's SRAM access, one drive port."""
    m, sram, p, B = fab.m, fab.host.sram, sl.position, fab.config.superlane_bits
    ports = fab.ports("mem_slice", sl.name)
    sls = fab.superlanes("mem_superlane", sl, **queue_taps(ports), tap_stream=ports.tap_stream,
                         tap_dir=ports.tap_dir, drive_e_en=ports.drive_e_en, drive_w_en=ports.drive_w_en)
    attach_queue(fab, sl, ports, sls)
    hit = Signal(name=f"m_hit_{sl.name}")
    m.d.comb += [hit.eq(sram.sel == p), ports.tap.eq(Cat(*(g.tap for g in sls))),
                 ports.host_m_we.eq(sram.we & hit), ports.host_m_raw.eq(sram.raw),
                 ports.host_m_addr.eq(sram.addr), ports.host_m_data.eq(sram.data), ports.host_m_ecc.eq(sram.ecc)]
    m.d.comb += [g.drive_data.eq(ports.drive_data[i * B:(i + 1) * B]) for i, g in enumerate(sls)]
    fab.instance("mem_slice", sl.name, ports)
    fab.corrected.append(ports.ecc_corrected)
    fab.uncorrectable.append(ports.ecc_uncorrectable)
    fab.m_rdata = Mux(hit, ports.host_m_rdata, fab.m_rdata)
    fab.m_recc = Mux(hit, ports.host_m_recc, fab.m_recc)


def attach_vxm(fab: Fabric, sl):
    """A VXM: one control unit; its lanes, operand groups and driven streams in the superlanes."""
    ctrl = fab.ports("vxm_ctrl", sl.name)
    shared = {n: getattr(ctrl, n) for n in fab.units["vxm_superlane"].signature.members if hasattr(ctrl, n)
              and n not in ("fetch_tap",)}
    sls = fab.superlanes("vxm_superlane", sl, **shared)
    attach_queue(fab, sl, ctrl, sls)
    fab.instance("vxm_ctrl", sl.name, ctrl)


def attach_sxm(fab: Fabric, sl):
    """An SXM: the slice unit (queue, engine, crossbars) whole width; its source group and driven
    streams in the superlanes."""
    m, cfg = fab.m, fab.config
    B, N, W = cfg.superlane_bits, cfg.sxm_width, cfg.word_bits
    ports = fab.ports("sxm_slice", sl.name)
    sls = fab.superlanes("sxm_superlane", sl, **queue_taps(ports), tap_stream=ports.tap_stream,
                         tap_dir=ports.tap_dir, drive=ports.drive, dst=ports.dst, ddir=ports.ddir, width=ports.width)
    attach_queue(fab, sl, ports, sls)
    m.d.comb += ports.src.eq(across([g.src for g in sls], B))
    for i, g in enumerate(sls):                # this superlane of each moved vector
        m.d.comb += g.moved.eq(Cat(*(ports.out[j * W + i * B:j * W + (i + 1) * B] for j in range(N))))
    fab.instance("sxm_slice", sl.name, ports)


def attach_mxm(fab: Fabric, sl):
    """An MXM: one control unit; its columns, activation and weight streams and driven streams in
    the superlanes."""
    m, cfg = fab.m, fab.config
    SL = cfg.superlane_lanes
    ctrl = fab.ports("mxm_ctrl", sl.name)
    shared = {n: getattr(ctrl, n) for n in fab.units["mxm_superlane"].signature.members if hasattr(ctrl, n)
              and n not in ("fetch_tap", "y")}
    sls = fab.superlanes("mxm_superlane", sl, **shared)
    attach_queue(fab, sl, ctrl, sls)
    m.d.comb += [ctrl.x_in.eq(Cat(*(g.x_tap for g in sls))), ctrl.y.eq(Cat(*(g.y for g in sls)))]
    m.d.comb += [g.acc_out.eq(ctrl.out[32 * SL * i:32 * SL * (i + 1)]) for i, g in enumerate(sls)]
    fab.instance("mxm_ctrl", sl.name, ctrl)


def attach_c2c(fab: Fabric, sl):
    """A C2C slice: the slice unit (queue, engines, the link's TX and RX); its SEND tap and RECV
    drive in the superlanes (a MEM slice's superlane unit: one tap, one drive); the link's pins to
    the chip's; its status to the host's L_* registers."""
    m, p, B = fab.m, sl.position, fab.config.superlane_bits
    ports = fab.ports("c2c_slice", sl.name)
    sls = fab.superlanes("mem_superlane", sl, **queue_taps(ports), tap_stream=ports.tap_stream,
                         tap_dir=ports.tap_dir, drive_e_en=ports.drive_e_en, drive_w_en=ports.drive_w_en)
    attach_queue(fab, sl, ports, sls)
    pins = fab.link_pins[sl.name]
    i, sync = [s.name for s in fab.config.slices_of(SliceKind.C2C)].index(sl.name), fab.sync
    m.d.comb += [ports.tap.eq(Cat(*(g.tap for g in sls))), ports.cycle.eq(fab.cycle),
                 pins["tx"].eq(ports.tx), ports.rx.eq(pins["rx"]), ports.rx_clk.eq(pins["rx_clk"]),
                 ports.hac.eq(sync.hac), ports.tx_msg.eq(sync.tx_msg[i]),
                 sync.rx_valid[i].eq(ports.rx_valid), sync.rx_hac[i].eq(ports.rx_hac), sync.rx_delta[i].eq(ports.rx_delta),
                 sync.rx_msg_valid[i].eq(ports.rx_msg_valid), sync.rx_msg[i].eq(ports.rx_msg)]
    m.d.comb += [g.drive_data.eq(ports.drive_data[i * B:(i + 1) * B]) for i, g in enumerate(sls)]
    fab.instance("c2c_slice", sl.name, ports)
    hit = Signal(name=f"l_hit_{sl.name}")
    m.d.comb += hit.eq(fab.host.link.sel == p)
    status = reg_value("L_STATUS", up=ports.link_up, failed=ports.link_failed, fec_uncorrectable=ports.fec_sticky,
                       overflow=ports.overflow)
    fab.link_status = Mux(hit, status, fab.link_status)
    fab.link_corrected = Mux(hit, ports.fec_corrected, fab.link_corrected)
    fab.link_uncorrectable = Mux(hit, ports.fec_uncorrectable, fab.link_uncorrectable)


ATTACH = {SliceKind.C2C: attach_c2c, SliceKind.MEM: attach_mem, SliceKind.VXM: attach_vxm, SliceKind.SXM: attach_sxm, SliceKind.MXM: attach_mxm}
