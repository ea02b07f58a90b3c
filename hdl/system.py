"""A system of chips for simulation: the chips (isa/system.py) wired through link models.

SIMULATION ONLY. `LinkModel` stands for the cable and the receiver's clock recovery of one
direction of one link: it delays each lane by its own number of the sender's cycles, can flip
any bit (fault injection) or cut the signal, and hands the receiver the sender's clock. Nothing
of it is meant for synthesis; `SystemTop` instantiates the emitted `chip` module once per chip
(one clock and one reset each) and a `link_model` per direction of every link. A C2C slice that
no link joins gets no signal and does not train.

Top-level ports, per chip i: `clk_<i>`, `rst_<i>`, the host ports prefixed `c<i>_` (c0_s_axil_*,
...), `c<i>_done`, `c<i>_running`; per link k and direction (`ab`: from the link's `a` end to its
`b` end, `ba` back): `link<k>_<dir>_delay` (8 bits per lane: the cycles lane l is late), `_flip`
(bits to invert this cycle, lane l at l*lane_bits), `_cut` (no signal), and `link<k>_<dir>_tx`
(out: what the sender drives, for a testbench that aims faults at chosen frames).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa.config import ChipConfig, SliceKind
from isa.system import System

from .c2c import link_ports
from .chip import chip_ports

MAX_DELAY = 255         # most cycles the link model delays a lane (wire plus skew)


class LinkModel(wiring.Component):
    """One direction of one link (simulation only; see the module docstring).

    Parameters
    ----------
    config : ChipConfig
        c2c_lanes, c2c_lane_bits.

    Members
    -------
    tx : In(lanes * lane_bits)
        what the sender drives, on the sender's clock (this component's `sync`).
    rx : Out(lanes * lane_bits)
        what the receiver sees: lane l as tx was `delay` cycles ago, `flip` applied, zero if `cut`.
    delay : In(8 * lanes)
        per lane, its delay in cycles (0 .. MAX_DELAY; 0 passes tx straight through).
    flip : In(lanes * lane_bits); cut : In(1)
        fault injection.
    """

    def __init__(self, config: ChipConfig):
        self.config = config
        n = config.c2c_lanes * config.c2c_lane_bits
        super().__init__({"tx": In(n), "rx": Out(n), "delay": In(8 * config.c2c_lanes), "flip": In(n), "cut": In(1)})

    def elaborate(self, platform):
        m = Module()
        LB = self.config.c2c_lane_bits
        ptr = Signal(8)
        m.d.sync += ptr.eq(ptr + 1)
        lanes = []
        for l in range(self.config.c2c_lanes):
            mem = Memory(shape=LB, depth=MAX_DELAY + 1, init=[])
            m.submodules[f"lane{l}"] = mem
            wr, rd = mem.write_port(), mem.read_port(domain="comb")
            d = self.delay[8 * l:8 * (l + 1)]
            tx = self.tx[l * LB:(l + 1) * LB]
            m.d.comb += [wr.addr.eq(ptr), wr.data.eq(tx), wr.en.eq(1), rd.addr.eq(ptr - d)]
            lanes.append(Mux(d == 0, tx, rd.data))
        m.d.comb += self.rx.eq(Mux(self.cut, 0, Cat(*lanes) ^ self.flip))
        return m


class SystemTop(wiring.Component):
    """The chips of `system` and a link model per direction of every link (module docstring)."""

    def __init__(self, system: System):
        cfgs = {system.config(i) for i in range(len(system.chips))}
        if len(cfgs) != 1:
            raise NotImplementedError(f"system {system.name!r}: chips of different configurations are not "
                                      f"emitted together yet (module names would clash)")
        self.system = system
        self.config = cfg = cfgs.pop()
        n = cfg.c2c_lanes * cfg.c2c_lane_bits
        members = {}
        for i in range(len(system.chips)):
            members |= {f"clk_{i}": In(1), f"rst_{i}": In(1)}
            members |= {f"c{i}_{name}": mbr for name, mbr in chip_ports(cfg).items()}
        for k in range(len(system.links)):
            for d in ("ab", "ba"):
                members |= {f"link{k}_{d}_delay": In(8 * cfg.c2c_lanes), f"link{k}_{d}_flip": In(n),
                            f"link{k}_{d}_cut": In(1), f"link{k}_{d}_tx": Out(n)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        sysm, cfg = self.system, self.config
        links = [sl.name for sl in cfg.slices_of(SliceKind.C2C)]
        pins = {(i, name): {p: Signal(mbr.shape, name=f"c{i}_{name.lower()}_{p}") for p, mbr in link_ports(cfg).items()}
                for i in range(len(sysm.chips)) for name in links}
        for k, lk in enumerate(sysm.links):
            for d, (src, dst) in (("ab", (lk.a, lk.b)), ("ba", (lk.b, lk.a))):
                tx, rx = pins[(src.chip, src.link)], pins[(dst.chip, dst.link)]
                m.submodules[f"link{k}_{d}"] = Instance(
                    "link_model", i_clk=getattr(self, f"clk_{src.chip}"), i_rst=getattr(self, f"rst_{src.chip}"),
                    i_tx=tx["tx"], o_rx=rx["rx"], i_delay=getattr(self, f"link{k}_{d}_delay"),
                    i_flip=getattr(self, f"link{k}_{d}_flip"), i_cut=getattr(self, f"link{k}_{d}_cut"))
                m.d.comb += [rx["rx_clk"].eq(getattr(self, f"clk_{src.chip}")),
                             getattr(self, f"link{k}_{d}_tx").eq(tx["tx"])]
        for i in range(len(sysm.chips)):
            kw = {"i_clk": getattr(self, f"clk_{i}"), "i_rst": getattr(self, f"rst_{i}")}
            for name, mbr in chip_ports(cfg).items():
                kw[("i_" if mbr.flow == In else "o_") + name] = getattr(self, f"c{i}_{name}")
            for name in links:
                for p, mbr in link_ports(cfg).items():
                    kw[("i_" if mbr.flow == In else "o_") + f"{name.lower()}_{p}"] = pins[(i, name)][p]
            for d in ("east", "west"):          # the edge outputs: not used by a system, but connected
                for s in range(cfg.streams):
                    kw[f"o_{d}_out_{s}"] = Signal(cfg.word_bits, name=f"c{i}_{d}_out_{s}")
            m.submodules[f"chip{i}"] = Instance("chip", **kw)
        return m
