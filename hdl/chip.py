"""The chip top: the host register file, the run control, the stream fabric and the slices.

The parts, each in its own file:

    host_regs.py    HostRegs: AXI4-Lite register map, staging registers, HOST_ERR, AXI4-Stream load/unload
    run_control.py  RunControl: START, the stop (DONE / ERROR), CYCLES, ERROR_INFO, ECC counters
    sync.py         SyncUnit: the HAC and the SYNC barrier across the chips of a system
    fabric.py       Fabric: the wires between positions, the superlane units, what slices report
    superlane.py    the stream registers and every stream selection, per 16-lane superlane
    attach.py       one attachment per slice kind (MEM, VXM, SXM, MXM): units, taps, drives
    units.py        the units emitted once and instantiated by name

Run control: START sets RUNNING; cycle 0 is the first running cycle. On each running cycle the
chip stops (DONE) when no slice is busy, leaving CYCLES at the number of busy cycles, or when a
slice reports an illegal instruction (DONE | ERROR, CYCLES counts the failing cycle too,
ERROR_INFO says where). Nothing issues, reads, writes or drives after the stop.
"""
from types import SimpleNamespace

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from isa.config import ChipConfig, SliceKind

from .attach import ATTACH
from .c2c import link_ports
from .fabric import Fabric
from .host_regs import HostPorts, HostRegs, reg_value
from .run_control import RunControl
from .sync import SyncUnit
from .units import units


def members(obj, signature: wiring.Signature):
    """The members of interface `obj` that `signature` names, as an interface of their own."""
    return SimpleNamespace(signature=signature, **{n: getattr(obj, n) for n in signature.members})


def chip_ports(config: ChipConfig) -> dict:
    """The chip's host ports and status outputs (a system or board top connects these; the edge
    outputs and link pins aside)."""
    return dict(HostPorts(config).members) | {"done": Out(1), "running": Out(1), "error": Out(1), "ecc": Out(1)}


class Chip(wiring.Component):
    """The whole chip for one configuration (what `hdl/build.py` emits as module `chip`).

    Parameters
    ----------
    config : ChipConfig
        the configuration: floorplan, sizes, which slice kinds exist.

    Members
    -------
    s_axil_*, s_axis_*, m_axis_* :
        the host ports (`HostPorts`): AXI4-Lite slave, AXI4-Stream bulk load and unload.
    done : Out(1)
        the DONE status bit, for an interrupt.
    running : Out(1)
        the RUNNING status bit: high from cycle 0 until the stop.
    error : Out(1)
        the ERROR status bit: the last run stopped on an error.
    ecc : Out(1)
        an SRAM ECC event since the last CLEAR: a corrected word counted, or ECC_UNCORRECTABLE set
        (a board's ECC LED).
    east_out_<s>, west_out_<s> : Out(word_bits)
        stream s leaving the east / west edge, one port per stream.
    <link>_tx, <link>_rx, <link>_rx_clk :
        per C2C slice (`c2c_w0_tx`, ...): the link's send lanes, receive lanes and the clock they
        arrive with (hdl/c2c.py `link_ports`). Unconnected, a link does not train and stays down.

    Attributes
    ----------
    units : dict
        the emitted units by module name (`hdl/units.py`), instantiated by the top.
    """

    def __init__(self, config: ChipConfig):
        self.config = config
        self.units = units(config)
        self.host_ports = HostPorts(config)
        S, W = config.streams, config.word_bits
        self.links = [sl.name for sl in config.slices_of(SliceKind.C2C)]
        super().__init__(chip_ports(config) | {
            f"{d}_out_{s}": Out(W) for d in ("east", "west") for s in range(S)
        } | {f"{name.lower()}_{pin}": mbr for name in self.links for pin, mbr in link_ports(config).items()})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.host = host = HostRegs(cfg)
        m.submodules.run = run = RunControl(cfg)
        wiring.connect(m, wiring.flipped(members(self, self.host_ports)), host.bus)
        wiring.connect(m, host.cmd, run.cmd)
        wiring.connect(m, run.status, host.status)
        m.d.comb += [self.done.eq(run.status.done), self.running.eq(run.status.running),
                     self.error.eq(run.status.error),
                     self.ecc.eq(run.status.ecc_sticky | (run.status.ecc_corrected != 0))]
        m.submodules.sync = sync = SyncUnit(cfg)
        m.d.comb += [sync.start.eq(host.cmd.start), sync.running.eq(run.status.running), sync.quiet.eq(run.quiet),
                     sync.err.eq(run.err), run.timeout.eq(sync.timeout),
                     sync.cycles.eq(run.now), run.release.eq(sync.release), run.t_rel.eq(sync.t_rel),
                     sync.tree.eq(host.sync.tree), sync.children.eq(host.sync.children),
                     sync.margin.eq(host.sync.margin), sync.timeout_limit.eq(host.sync.timeout),
                     host.sync.stall.eq(sync.stall),
                     host.sync.hac.eq(reg_value("HAC", hac=sync.hac, aligned=sync.aligned, offset=sync.offset))]

        pins = {name: {pin: getattr(self, f"{name.lower()}_{pin}") for pin in link_ports(cfg)} for name in self.links}
        fab = Fabric(m, cfg, self.units, host, run.status.running, run.now, pins, sync)
        for sl in cfg.floorplan:
            if sl.kind in ATTACH:
                ATTACH[sl.kind](fab, sl)
        for s in range(cfg.streams):
            m.d.comb += [getattr(self, f"east_out_{s}").eq(fab.edge("east", s)),
                         getattr(self, f"west_out_{s}").eq(fab.edge("west", s))]

        err, err_info = fab.first_error(sync.timeout)
        m.d.comb += [run.busy.eq(Cat(*fab.busy).any()), run.err.eq(err), run.err_info.eq(err_info),
                     run.parked.eq(Cat(*fab.parked).any()),
                     run.corrected.eq(Cat(*fab.corrected)), run.uncorrectable.eq(Cat(*fab.uncorrectable)),
                     host.queue.length.eq(fab.q_len), host.sram.rdata.eq(fab.m_rdata),
                     host.sram.recc.eq(fab.m_recc), host.link.status.eq(fab.link_status),
                     host.link.corrected.eq(fab.link_corrected), host.link.uncorrectable.eq(fab.link_uncorrectable)]
        return m
