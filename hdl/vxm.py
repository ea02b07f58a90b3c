"""VXM slice: per-lane integer ALUs between the two hemispheres' streams.

Split in two units so that no emitted module exceeds Amaranth's input-port limit on wide
configurations: `VxmControl` (queue, decode, one engine per ALU, register-write and drive
control; lane independent) and `VxmLane` (one lane: operand selection from the streams'
bytes at that lane, the registers, the ALU datapaths). The chip instantiates one control and
`lanes` lanes. Pipeline for an ALU op issued on cycle t, element k (spec.TIMING):

    t+1+k  operands read (streams passing the VXM, registers)    -> s1 registers   (vxm_sample)
    t+2+k  multiply / add / compare / shift / select / convert   -> s2 registers
    t+3+k  requantize: arithmetic shift, zero point, saturation  -> s3 registers
    t+4+k  s3 bytes driven onto the destination group              (vxm_drive)

A configuration with vxm_drive one higher (`product_stage`; the `fpga` preset) splits s2 in
two: the three DSP products and every other op's result are registered (s2a), the products'
sum and the choice of result the cycle after (s2b). Every ALU op takes the same path, so
results never overtake each other on one ALU.
"""
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind

from .arith import mul32_signed
from .attrs import PER_INSTANCE
from .engine import Countdown
from .latency import check_latencies
from .mux import mux_tree
from .queue import attach_queue, slice_queue_ports
from .superlane import Superlane

NATURAL = {"vxm_sample": 1, "vxm_drive": 4, "vxm_reg_write": 1}
FUNC = {a.mnemonic: i for i, a in enumerate(spec.ALU_OPS)}
FUNC_BITS = max(len(FUNC) - 1, 1).bit_length()
I8, I16, I32 = (int(t) for t in (spec.DType.I8, spec.DType.I16, spec.DType.I32))


def _check_timing(config: ChipConfig):
    check_latencies(config, NATURAL, "hdl/vxm.py", sep=";", stretch="vxm_drive")


def product_stage(config: ChipConfig) -> int:
    """1 when the configuration gives the VXM a cycle more (vxm_drive one above NATURAL): s2 is
    split after the DSP blocks (on an FPGA they sit in rows apart from the lane's logic)."""
    return spec.timing(config)["vxm_drive"] - NATURAL["vxm_drive"]


def _alu_bits(config):
    return max(config.vxm_alus - 1, 1).bit_length()


def _ctrl_members(config: ChipConfig, flow_to_lane):
    """Signals from the control unit to every lane (Out on the control, In on a lane)."""
    S = config.streams
    m = {}
    for k in range(config.vxm_alus):
        m |= {f"a{k}": flow_to_lane(8), f"b{k}": flow_to_lane(8), f"c{k}": flow_to_lane(8),
              f"type{k}": flow_to_lane(2), f"dtype{k}": flow_to_lane(2), f"func{k}": flow_to_lane(FUNC_BITS)}
    m |= {"reg_we": flow_to_lane(1), "reg_idx": flow_to_lane(4), "reg_from_imm": flow_to_lane(1),
          "reg_imm": flow_to_lane(32), "reg_src": flow_to_lane(8), "reg_type": flow_to_lane(2),
          "reg_byte_en": flow_to_lane(1), "reg_plane": flow_to_lane(2),
          "clear": flow_to_lane(1)}
    for d in ("e", "w"):
        m |= {f"{d}_alu": flow_to_lane(S * _alu_bits(config)), f"{d}_plane": flow_to_lane(2 * S)}
    return m


def _sext(v32, t):
    """A 32-bit value read as type t (its low bytes), sign-extended to signed(32)."""
    return Mux(t == I8, v32[:8].as_signed(), Mux(t == I16, v32[:16].as_signed(), v32.as_signed()))


def _saturate(v, t):
    """Clamp a signed value to the range of type t; returns signed(32)."""
    out = Signal(signed(32))
    lo8, hi8 = spec.dtype_range(I8)
    lo16, hi16 = spec.dtype_range(I16)
    lo32, hi32 = spec.dtype_range(I32)
    lo = Mux(t == I8, lo8, Mux(t == I16, lo16, lo32))
    hi = Mux(t == I8, hi8, Mux(t == I16, hi16, hi32))
    return out, Mux(v < lo, lo, Mux(v > hi, hi, v))


class VxmLane(wiring.Component):
    """One VXM lane (emitted unit `vxm_lane`): the registers and the ALU datapaths at one lane.

    The chip selects the stream groups (full vectors, cheaply) and hands each lane its 32 bits of
    every ALU operand (byte plane j = stream base+j) and of the register-load source; the lane
    picks register or stream per operand, and returns each ALU's result, whose bytes the chip
    routes to the driven streams.

    Parameters
    ----------
    config : ChipConfig
        vxm_alus, vxm_regs.

    Members
    -------
    sa<k>, sb<k>, sc<k> : In(32)
        ALU k's operands a, b, c from the streams, at this lane.
    reg_data : In(32)
        the register-load source at this lane.
    a<k>, b<k>, c<k>, type<k>, dtype<k>, func<k>, reg_*, clear : In
        the control unit's per-cycle orders (`_ctrl_members`).
    r<k> : Out(32)
        ALU k's result (s3 register).
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        members = {"reg_data": In(32)}
        for k in range(config.vxm_alus):
            members |= {f"sa{k}": In(32), f"sb{k}": In(32), f"sc{k}": In(32), f"r{k}": Out(32)}
        super().__init__(members | {n: v for n, v in _ctrl_members(config, In).items()
                                    if not n.startswith(("e_", "w_"))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        R, NA = cfg.vxm_regs, cfg.vxm_alus
        rbits = max(R - 1, 1).bit_length()
        regs = [Signal(32, name=f"r{i}") for i in range(R)]

        def operand(sel, stream_bits, t):
            return _sext(Mux(sel[7], mux_tree(regs, sel[:rbits]), stream_bits), t)

        # ---- registers: VSET / VLOAD / VLOADB write at the end of the cycle reg_we is high ------
        with m.If(self.clear):
            for r in regs:
                m.d.sync += r.eq(0)
        with m.Elif(self.reg_we):
            old, new = Signal(32), Signal(32)
            m.d.comb += old.eq(mux_tree(regs, self.reg_idx[:rbits]))
            merged = Cat(*(Mux(self.reg_plane == j, self.reg_data[:8], old[8 * j:8 * j + 8]) for j in range(4)))
            m.d.comb += new.eq(Mux(self.reg_byte_en, merged,
                                   Mux(self.reg_from_imm, self.reg_imm, _sext(self.reg_data, self.reg_type))))
            for i, r in enumerate(regs):                    # the operand rules keep reg_idx < vxm_regs
                with m.If(self.reg_idx[:rbits] == i):
                    m.d.sync += r.eq(new)

        # ---- ALUs -------------------------------------------------------------------------------
        for k in range(NA):
            t_in, t_out, func = getattr(self, f"type{k}"), getattr(self, f"dtype{k}"), getattr(self, f"func{k}")
            # s1: operands
            a1, b1, c1 = (Signal(signed(32), name=f"alu{k}_{n}1") for n in "abc")
            ty1, dt1, fn1 = Signal(2, name=f"alu{k}_type1", attrs=PER_INSTANCE), \
                Signal(2, name=f"alu{k}_dtype1", attrs=PER_INSTANCE), Signal(FUNC_BITS, name=f"alu{k}_func1", attrs=PER_INSTANCE)
            m.d.sync += [a1.eq(operand(getattr(self, f"a{k}"), getattr(self, f"sa{k}"), t_in)),
                         b1.eq(operand(getattr(self, f"b{k}"), getattr(self, f"sb{k}"), t_in)),
                         c1.eq(operand(getattr(self, f"c{k}"), getattr(self, f"sc{k}"), t_in)),
                         ty1.eq(t_in), dt1.eq(t_out), fn1.eq(func)]
            # s2: the arithmetic
            bits_m1 = Mux(ty1 == I8, 7, Mux(ty1 == I16, 15, 31))
            amount = (b1.as_unsigned() & bits_m1)[:5]
            zext = Mux(ty1 == I8, a1[:8], Mux(ty1 == I16, a1[:16], a1.as_unsigned()))
            split = product_stage(cfg)
            # three DSP blocks, not four; with a product stage their products are registered
            prod = mul32_signed(m, a1, b1, f"alu{k}_prod", registered=bool(split))

            def s2a(v, name, **kw):
                """v as s2b sees it: itself, or registered (s2a) when s2 is split."""
                if not split:
                    return v
                r = Signal.like(v, name=f"alu{k}_{name}_s2a", **kw)
                m.d.sync += r.eq(v)
                return r
            shift_s = c1[:5]
            r2 = Signal(32, name=f"alu{k}_r2")
            p2 = Signal(signed(64), name=f"alu{k}_p2")
            s2, zp2 = Signal(5, name=f"alu{k}_s2"), Signal(signed(17), name=f"alu{k}_zp2")   # zp2 = 2*zp + 1
            dt2, fn2 = Signal(2, name=f"alu{k}_dtype2", attrs=PER_INSTANCE), \
                Signal(FUNC_BITS, name=f"alu{k}_func2", attrs=PER_INSTANCE)
            sat_out, sat_v = _saturate(a1, dt1)
            m.d.comb += sat_out.eq(sat_v)
            ones = Const(-1, signed(32))
            # one comparator and one shifter serve every op that needs them (LUTs are the FPGA's
            # scarce resource): SHL is a right shift of the bit-reversed operand, reversed back
            lt, eq = Signal(name=f"alu{k}_lt"), Signal(name=f"alu{k}_eq")
            m.d.comb += [lt.eq(a1 < b1), eq.eq(a1 == b1)]
            is_shl, is_sra = fn1 == FUNC["SHL"], fn1 == FUNC["SRA"]
            sh_in = Mux(is_shl, Cat(*reversed(list(a1[:32]))), Mux(is_sra, a1.as_unsigned(), zext))
            sh_out = Signal(32, name=f"alu{k}_shifted")
            m.d.comb += sh_out.eq((Cat(sh_in, is_sra & a1[31]).as_signed() >> amount)[:32])
            shifted = Mux(is_shl, Cat(*reversed(list(sh_out))), sh_out)
            cases = {
                "ADD": a1 + b1, "SUB": a1 - b1, "MUL": prod, "MULW": prod,
                "MIN": Mux(lt, a1, b1), "MAX": Mux(lt, b1, a1), "RELU": Mux(a1 > 0, a1, 0),
                "SHL": shifted, "SHR": shifted, "SRA": shifted,
                "CMPEQ": Mux(eq, ones, 0), "CMPLT": Mux(lt, ones, 0), "CMPLE": Mux(lt | eq, ones, 0),
                "SELECT": Mux(a1 != 0, b1, c1), "CVT": sat_out, "REQUANT": Const(0, 32),
            }
            assert set(cases) == set(FUNC), "every ALU op of the spec has a datapath case"
            for name in cfg.vxm_omit:           # never issued here (illegal opcodes): no datapath
                cases[name] = Const(0, 32)
            # the product (the slowest input: three DSPs and their sums) meets the other results
            # at the last mux, chosen by a bit decoded at s1
            is_mul1 = Signal(name=f"alu{k}_is_mul1", attrs=PER_INSTANCE)
            m.d.sync += is_mul1.eq((func == FUNC["MUL"]) | (func == FUNC["MULW"]))
            other = Signal(32, name=f"alu{k}_other")
            with m.Switch(fn1):
                for name, value in cases.items():
                    if name not in ("MUL", "MULW"):
                        with m.Case(FUNC[name]):
                            m.d.comb += other.eq(value[:32])
            m.d.sync += r2.eq(Mux(s2a(is_mul1, "is_mul", attrs=PER_INSTANCE), prod[:32], s2a(other, "other")))
            # REQUANT rounds half up: floor((p + 2**(30+s)) / 2**(31+s)) + zp equals
            # floor((floor(p / 2**(30+s)) + 2*zp + 1) / 2), so s2 keeps the bare product and s3
            # adds the rounding bit with the zero point, in the one add it has anyway
            zp = Signal(signed(17), name=f"alu{k}_zp1")
            m.d.comb += zp.eq(Cat(Const(1, 1), c1[16:32]).as_signed())
            m.d.sync += [p2.eq(prod), s2.eq(s2a(shift_s, "shift")), zp2.eq(s2a(zp, "zp")),
                         dt2.eq(s2a(dt1, "dtype", attrs=PER_INSTANCE)), fn2.eq(s2a(fn1, "func", attrs=PER_INSTANCE))]
            # s3: requantize's rounding shift, zero point and saturation
            r3 = getattr(self, f"r{k}")
            y = Signal(signed(40), name=f"alu{k}_y")
            m.d.comb += y.eq((((p2 >> 30) >> s2) + zp2) >> 1)
            rq_out, rq_v = _saturate(y, dt2)
            m.d.comb += rq_out.eq(rq_v)
            m.d.sync += r3.eq(Mux(fn2 == FUNC["REQUANT"], rq_out, r2))
        return m


class VxmControl(wiring.Component):
    """The VXM's control (emitted unit `vxm_ctrl`): queue, decode and the per-ALU engines; tells
    every lane what to do on each cycle and which ALU byte plane each driven stream carries.

    Parameters
    ----------
    config : ChipConfig
        streams, vxm_alus, queue sizes.

    Members
    -------
    running, host_q_*, q_len, fetch_stream, fetch_dir, fetch_tap, busy, err, err_code, err_pc :
        the queue ports (`hdl/queue.py` `slice_queue_ports`).
    a<k>, b<k>, c<k>, type<k>, dtype<k>, func<k>, reg_*, clear : Out
        orders to every lane (`_ctrl_members`); `a<k>` etc. also name the operand stream groups
        the chip selects (bit 6 the direction, bits 5..0 the first stream).
    e_en, w_en : Out(streams)
        per-stream drive enables, per direction.
    e_alu, w_alu, e_plane, w_plane : Out
        per driven stream, the ALU and the byte plane of its result it carries.
    """

    def __init__(self, config: ChipConfig):
        _check_timing(config)
        self.config = config
        S = config.streams
        super().__init__(slice_queue_ports(config) | {
            "e_en": Out(S), "w_en": Out(S),
        } | _ctrl_members(config, Out))

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        S, NA = cfg.streams, cfg.vxm_alus
        q = attach_queue(m, self, SliceKind.VXM)
        m.d.comb += self.clear.eq(~self.running)

        # ---- register writes (VSET, VLOAD, VLOADB): one cycle after issue ------------------------------
        rw = Signal(name="reg_write_pending")
        reg_issue = q.issue_vset | q.issue_vload | q.issue_vloadb
        m.d.sync += rw.eq(reg_issue)
        with m.If(reg_issue):
            m.d.sync += [self.reg_idx.eq(q.field("r")), self.reg_from_imm.eq(q.issue_vset),
                         self.reg_byte_en.eq(q.issue_vloadb), self.reg_plane.eq(q.field("plane")),
                         self.reg_imm.eq(q.field("imm")), self.reg_src.eq(q.field("a")), self.reg_type.eq(q.field("type"))]
        m.d.comb += [q.ready_vset.eq(1), q.ready_vload.eq(1), q.ready_vloadb.eq(1),
                     self.reg_we.eq(rw & self.running)]

        # ---- which ALU op is at the head: its function, operand and result types -----------------
        func = Signal(FUNC_BITS)
        has = {n: Signal(name=f"has_{n}") for n in ("b", "c", "type", "dtype")}
        issue_any = Signal()
        opcode = q.head[spec.OPCODE_FIELD.lsb:spec.OPCODE_FIELD.lsb + spec.OPCODE_FIELD.width]
        alu_ops = spec.vxm_alu_ops(cfg)
        with m.Switch(opcode):
            for a in alu_ops:
                op = spec.BY_MNEMONIC[a.mnemonic]
                names = {f.name for f in op.fields}
                with m.Case(a.code):
                    m.d.comb += func.eq(FUNC[a.mnemonic])
                    m.d.comb += [sig.eq(int(n in names)) for n, sig in has.items()]
        m.d.comb += issue_any.eq(Cat(*(getattr(q, f"issue_{a.mnemonic.lower()}") for a in alu_ops)).any())
        t_in = Mux(has["type"], q.field("type"), I32)
        t_out = Mux(has["dtype"], q.field("dtype"), t_in)
        alu_sel = q.field("alu")

        # ---- one engine per ALU ------------------------------------------------------------------
        ready = []
        stages = []              # per ALU: (valid, dst, ddir, dtype) at s2
        busy_terms = [q.busy, rw]
        for k in range(NA):
            engine = Countdown(m, f"alu{k}", self.running, issue_any & (alu_sel == k), q.field("count"), 16)
            active = engine.active
            a, b, c = getattr(self, f"a{k}"), getattr(self, f"b{k}"), getattr(self, f"c{k}")
            ty, dt, fn = getattr(self, f"type{k}"), getattr(self, f"dtype{k}"), getattr(self, f"func{k}")
            dst, ddir = Signal(6, name=f"alu{k}_dst"), Signal(name=f"alu{k}_ddir")
            ready.append(engine.ready)
            with m.If(issue_any & (alu_sel == k)):
                m.d.sync += [a.eq(q.field("a")), b.eq(Mux(has["b"], q.field("b"), 0)), c.eq(Mux(has["c"], q.field("c"), 0)),
                             ty.eq(t_in), dt.eq(t_out), fn.eq(func), dst.eq(q.field("dst")), ddir.eq(q.field("ddir"))]
            pipe = [(self.running & active, dst, ddir, dt)]
            for i in range(3 + product_stage(cfg)):
                v, pd, pdir, pdt = (Signal(name=f"alu{k}_v{i + 1}"), Signal(6, name=f"alu{k}_dst{i + 1}"),
                                    Signal(name=f"alu{k}_ddir{i + 1}"), Signal(2, name=f"alu{k}_dt{i + 1}"))
                v0, d0, dir0, dt0 = pipe[-1]
                m.d.sync += [v.eq(v0 & self.running), pd.eq(d0), pdir.eq(dir0), pdt.eq(dt0)]
                pipe.append((v, pd, pdir, pdt))
            stages.append(pipe[-2])         # (the drive's choices are made from s2's and registered)
            busy_terms += [active] + [p[0] for p in pipe[1:]]
        ready_sel = Array(ready + [Const(1)] * ((1 << 4) - NA))[alu_sel]
        for a in alu_ops:
            m.d.comb += getattr(q, f"ready_{a.mnemonic.lower()}").eq(ready_sel)

        # ---- drive: per destination stream, the highest-numbered ALU that targets it wins ----------
        # Decided from s2's destination and registered beside s3 (which only copies it), so the
        # compares are not in front of the stream registers.
        ab = _alu_bits(cfg)
        for d, dname in ((0, "e"), (1, "w")):
            en, sel_alu, sel_plane = getattr(self, f"{dname}_en"), getattr(self, f"{dname}_alu"), \
                getattr(self, f"{dname}_plane")
            en_r, alu_r, plane_r = Signal.like(en, name=f"{dname}_en_r"), Signal.like(sel_alu, name=f"{dname}_alu_r"), \
                Signal.like(sel_plane, name=f"{dname}_plane_r")
            m.d.comb += [en.eq(Mux(self.running, en_r, 0)), sel_alu.eq(alu_r), sel_plane.eq(plane_r)]
            en_n, alu_n, plane_n = Signal.like(en_r), Signal.like(alu_r), Signal.like(plane_r)
            m.d.sync += [en_r.eq(en_n), alu_r.eq(alu_n), plane_r.eq(plane_n)]
            for s in range(S):
                for k, (v, dst, ddir, dt) in enumerate(stages):
                    plane = Const(s, 7) - dst
                    hit = v & self.running & (ddir == d) & (dst <= s) & (plane < (Const(1, 4) << dt))
                    with m.If(hit):
                        m.d.comb += [en_n[s].eq(1), alu_n[ab * s:ab * s + ab].eq(k),
                                     plane_n[2 * s:2 * s + 2].eq(plane[:2])]
        m.d.comb += self.busy.eq(Cat(*busy_terms).any())     # as if running (hdl/queue.py)
        return m


class VxmSuperlane(Superlane):
    """One superlane of the VXM's position (emitted unit `vxm_superlane`, hdl/superlane.py): its
    `superlane_lanes` lanes, the operand stream groups they read and what each driven stream
    carries.

    Parameters
    ----------
    config : ChipConfig
    lane : VxmLane
        the emitted `vxm_lane` unit, instantiated once per lane.

    Members
    -------
    e_in, w_in, e_out, w_out, fetch_stream, fetch_dir, fetch_tap :
        as every superlane (`Superlane`).
    a<k>, b<k>, c<k>, reg_src, ... : In
        the control unit's orders (`_ctrl_members`): the lanes' orders, and the operand stream
        groups (bit 6 the direction, bits 5..0 the first stream; byte plane j = stream base+j).
    e_en, w_en : In(streams); e_alu, w_alu, e_plane, w_plane : In
        the driven streams, and which ALU's result byte plane each carries.
    """

    def __init__(self, config: ChipConfig, lane: VxmLane):
        self.lane = lane
        S = config.streams
        super().__init__(config, _ctrl_members(config, In) | {"e_en": In(S), "w_en": In(S)})

    def elaborate(self, platform):
        from .units import instance
        m = Module()
        cfg = self.config
        S, B, NA, SL = cfg.streams, cfg.superlane_bits, cfg.vxm_alus, cfg.superlane_lanes

        def group(sel):
            """The 4 streams from operand field `sel`, byte-plane interleaved per lane (32 bits)."""
            planes = [Signal(B, name=f"{sel.name}_p{j}") for j in range(4)]
            for pl, v in zip(planes, self.pick_group(sel[6], sel[:6], 4)):
                m.d.comb += pl.eq(v)
            return [Cat(*(pl[8 * i:8 * i + 8] for pl in planes)) for i in range(SL)]

        per_lane = {f"s{o}{k}": group(getattr(self, f"{o}{k}")) for k in range(NA) for o in "abc"}
        per_lane["reg_data"] = group(self.reg_src)
        to_lane = {n for n, v in self.lane.signature.members.items() if v.flow == In} - set(per_lane)
        results = [[] for _ in range(NA)]           # results[k][i]: ALU k's 32 bits at lane i
        for i in range(SL):
            outs = {f"r{k}": Signal(32, name=f"lane{i}_r{k}") for k in range(NA)}
            for k in range(NA):
                results[k].append(outs[f"r{k}"])
            # no reset: a lane holds data only (its registers clear while the chip is idle, the
            # control's valid bits say when a result is driven), and a reset net to every one of
            # its flip-flops would be the widest net of the superlane
            m.submodules[f"lane{i}"] = instance("vxm_lane", self.lane, rst=Const(0),
                                                **{n: v[i] for n, v in per_lane.items()},
                                                **{n: getattr(self, n) for n in to_lane}, **outs)
        # byte plane j of ALU k's result at these lanes: what a stream driven from it carries
        choices = [Cat(*(r[8 * j:8 * j + 8] for r in results[k])) for k in range(NA) for j in range(4)]
        ab = _alu_bits(cfg)
        data = {"e": [], "w": []}
        for d, out in data.items():
            for s in range(S):
                alu_k = getattr(self, f"{d}_alu")[ab * s:ab * s + ab]
                plane = getattr(self, f"{d}_plane")[2 * s:2 * s + 2]
                v = Signal(B, name=f"{d}_data{s}")
                m.d.comb += v.eq(mux_tree(choices, Cat(plane, alu_k) if NA > 1 else plane))
                out.append(v)
        self.registers(m, self.e_en, self.w_en, data["e"], data["w"])
        return m
