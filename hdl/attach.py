"""How each slice kind attaches to the fabric: its emitted units, stream taps and drives.

One function per slice kind (`ATTACH[kind](fabric, slice)`), sharing `attach_queue` (run control,
the host's queue load, the IFETCH tap, busy / error / Q_LEN for the top) and `group_drive`
(per-stream drive enables for a drive of a stream group). The wide selections (a MEM write tap,
the VXM's operand groups and result planes, the SXM's source group, the MXM's activation and
weight streams) are made here in the top, whole vectors at a time, as they always were; the
emitted units (`hdl/units.py`) see only what they need.
"""
from amaranth.hdl import Array, Cat, Const, Mux, Signal
from amaranth.lib.wiring import In

from isa.config import SliceKind

from .fabric import Fabric


def attach_queue(fab: Fabric, sl, ports):
    """Wire the queue ports every slice with a queue has (hdl/queue.py `slice_queue_ports`)."""
    m, q, p = fab.m, fab.host.queue, sl.position
    hit = Signal(name=f"q_hit_{sl.name}")
    m.d.comb += [
        hit.eq(q.sel == p),
        ports.running.eq(fab.running),
        ports.host_q_we.eq(Mux(hit, q.row_we, 0)), ports.host_q_addr.eq(q.row_addr),
        ports.host_q_data.eq(q.row_data), ports.host_q_len_we.eq(q.len_we & hit), ports.host_q_len.eq(q.len),
        # IFETCH's tap: the named stream's low words as they pass
        ports.fetch_tap.eq(fab.pick(p, ports.fetch_dir, ports.fetch_stream)[:fab.fetch_bits]),
    ]
    fab.report(p, ports.busy, ports.err, ports.err_code, ports.err_pc)
    fab.q_len = Mux(hit, ports.q_len, fab.q_len)


def group_drive(fab: Fabric, name: str, drive, dst, ddir, width):
    """A drive of streams dst .. dst + width - 1 in direction ddir (1 westward) as per-stream
    enables; returns (e_en, w_en, slot) where slot[s] = s - dst is stream s's index in the group."""
    m, S = fab.m, fab.config.streams
    e_en, w_en = Signal(S, name=f"{name}_e_en"), Signal(S, name=f"{name}_w_en")
    slots = []
    for s in range(S):
        slot = Const(s, 8) - dst
        hit = drive & (slot < width)
        if s < S - 1:                             # dst <= S-1 always holds
            hit = hit & (dst <= s)
        m.d.comb += [e_en[s].eq(hit & ~ddir), w_en[s].eq(hit & ddir)]
        slots.append(slot)
    return e_en, w_en, slots


def attach_mem(fab: Fabric, sl):
    """A MEM slice: its write engine's tap, the host's SRAM access, one drive port."""
    m, sram, p, S = fab.m, fab.host.sram, sl.position, fab.config.streams
    ports = fab.ports("mem_slice", sl.name)
    attach_queue(fab, sl, ports)
    hit = Signal(name=f"m_hit_{sl.name}")
    m.d.comb += [
        hit.eq(sram.sel == p),
        ports.tap.eq(fab.pick(p, ports.tap_dir, ports.tap_stream)),
        ports.host_m_we.eq(sram.we & hit), ports.host_m_raw.eq(sram.raw),
        ports.host_m_addr.eq(sram.addr), ports.host_m_data.eq(sram.data), ports.host_m_ecc.eq(sram.ecc),
    ]
    fab.instance("mem_slice", sl.name, ports)
    fab.drives[p] = (ports.drive_e_en, ports.drive_w_en, [ports.drive_data] * S, [ports.drive_data] * S)
    fab.corrected.append(ports.ecc_corrected)
    fab.uncorrectable.append(ports.ecc_uncorrectable)
    fab.m_rdata = Mux(hit, ports.host_m_rdata, fab.m_rdata)
    fab.m_recc = Mux(hit, ports.host_m_recc, fab.m_recc)


def attach_vxm(fab: Fabric, sl):
    """A VXM: one control unit and `lanes` lane units; the operand stream groups are selected
    here and each lane gets its bytes; each driven stream carries one byte plane of one ALU."""
    m, cfg, p = fab.m, fab.config, sl.position
    S, W, NA = cfg.streams, cfg.word_bits, cfg.vxm_alus
    ctrl = fab.ports("vxm_ctrl", sl.name)
    attach_queue(fab, sl, ctrl)
    fab.instance("vxm_ctrl", sl.name, ctrl)

    def group(sel, name):
        """The 4 streams from operand field `sel` (index, dir), byte-plane interleaved per lane."""
        planes = [Signal(W, name=f"{sl.name}_{name}_p{j}") for j in range(4)]
        for j, pl in enumerate(planes):
            m.d.comb += pl.eq(fab.pick(p, sel[6], sel[:6], offset=j, pad=3))
        return [Cat(*(pl[8 * i:8 * i + 8] for pl in planes)) for i in range(cfg.lanes)]

    per_lane = {f"s{o}{k}": group(getattr(ctrl, f"{o}{k}"), f"{o}{k}") for k in range(NA) for o in "abc"}
    per_lane["reg_data"] = group(ctrl.reg_src, "load")
    lane_unit = fab.units["vxm_lane"]
    to_lane = {n for n, v in lane_unit.signature.members.items() if v.flow == In} - set(per_lane) - {"running"}
    results = [[] for _ in range(NA)]           # results[k][i]: ALU k's 32 bits at lane i
    for i in range(cfg.lanes):
        outs = {f"r{k}": Signal(32, name=f"{sl.name}_lane{i}_r{k}") for k in range(NA)}
        for k in range(NA):
            results[k].append(outs[f"r{k}"])
        fab.instance("vxm_lane", f"{sl.name}_lane{i}", running=fab.running,
                     **{n: v[i] for n, v in per_lane.items()}, **{n: getattr(ctrl, n) for n in to_lane}, **outs)
    # byte plane j of ALU k's result, as a vector: what a stream driven from it carries
    choices = Array(Cat(*(r[8 * j:8 * j + 8] for r in results[k])) for k in range(NA) for j in range(4))
    ab = max(NA - 1, 1).bit_length()
    data = {"e": [], "w": []}
    for d, out in data.items():
        for s in range(S):
            alu_k = getattr(ctrl, f"{d}_alu")[ab * s:ab * s + ab]
            plane = getattr(ctrl, f"{d}_plane")[2 * s:2 * s + 2]
            v = Signal(W, name=f"{sl.name}_{d}_data{s}")
            m.d.comb += v.eq(choices[Cat(plane, alu_k) if NA > 1 else plane])
            out.append(v)
    fab.drives[p] = (ctrl.e_en, ctrl.w_en, data["e"], data["w"])


def attach_sxm(fab: Fabric, sl):
    """An SXM: its source group (sxm_width streams) is selected here; it drives `width` streams."""
    m, cfg, p = fab.m, fab.config, sl.position
    S, W, N = cfg.streams, cfg.word_bits, cfg.sxm_width
    ports = fab.ports("sxm_slice", sl.name)
    attach_queue(fab, sl, ports)
    # a group never runs past the last stream
    m.d.comb += ports.src.eq(Cat(*(fab.pick(p, ports.tap_dir, ports.tap_stream, offset=j, pad=N) for j in range(N))))
    fab.instance("sxm_slice", sl.name, ports)
    slots = Array(ports.out[j * W:(j + 1) * W] for j in range(N))
    e_en, w_en, slot = group_drive(fab, sl.name, ports.drive, ports.dst, ports.ddir, ports.width)
    data = [slots[slot[s][:max(N - 1, 1).bit_length()]] if N > 1 else slots[0] for s in range(S)]
    fab.drives[p] = (e_en, w_en, data, data)


def attach_mxm(fab: Fabric, sl):
    """An MXM: one control unit and `lanes` column units; the activation stream and the weight
    streams are selected here; results drive 4 streams (the int32 byte planes)."""
    m, cfg, p = fab.m, fab.config, sl.position
    S, W = cfg.streams, cfg.word_bits
    ctrl = fab.ports("mxm_ctrl", sl.name)
    attach_queue(fab, sl, ctrl)
    m.d.comb += ctrl.x_in.eq(fab.pick(p, ctrl.x_dir, ctrl.x_stream, pad=S))
    lw = [Signal(W, name=f"{sl.name}_lw{j}") for j in range(S)]
    for j, v in enumerate(lw):
        m.d.comb += v.eq(fab.pick(p, ctrl.lw_dir, ctrl.lw_stream, offset=j, pad=S))
    ys = []
    shared = ["x", "lw_we", "lw_row", "lw_width", "wzp", "wsigned", "swap", "clear"]
    for c in range(cfg.lanes):
        y = Signal(32, name=f"{sl.name}_col{c}_y")
        ys.append(y)
        fab.instance("mxm_column", f"{sl.name}_col{c}", y=y, lw_bytes=Cat(*(v[8 * c:8 * c + 8] for v in lw)),
                     **{n: getattr(ctrl, n) for n in shared})
    m.d.comb += ctrl.y.eq(Cat(*ys))
    fab.instance("mxm_ctrl", sl.name, ctrl)
    planes = Array(Cat(*(ctrl.out[32 * c + 8 * j:32 * c + 8 * j + 8] for c in range(cfg.lanes))) for j in range(4))
    e_en, w_en, slot = group_drive(fab, sl.name, ctrl.drive, ctrl.dst, ctrl.ddir, 4)
    data = [planes[slot[s][:2]] for s in range(S)]
    fab.drives[p] = (e_en, w_en, data, data)


ATTACH = {SliceKind.MEM: attach_mem, SliceKind.VXM: attach_vxm, SliceKind.SXM: attach_sxm, SliceKind.MXM: attach_mxm}
