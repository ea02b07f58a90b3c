"""The stream fabric of the chip top, and what the attached slices report to the top.

`Fabric` is not a component: it builds into the chip top's Module. The stream registers live in
the superlane units (hdl/superlane.py), `superlanes` per position; the fabric holds the wires
between neighbouring positions (`east`, `west`), instantiates a slice's superlane units
(`superlanes`), and collects from each attached slice its busy and error outputs, its ECC events
and the read-backs the host register file needs (the selected queue's Q_LEN, the selected MEM
slice's word). hdl/attach.py attaches the slices. The top makes no stream selection of its own:
it is instances and wires, whatever the width.
"""
from amaranth.hdl import Cat, Const, Mux, Signal

from isa import spec
from isa.config import ChipConfig
from isa.ecc import code_for

from .attrs import PER_INSTANCE
from .host_regs import reg_layout, reg_value
from .units import instance


class Fabric:
    """The wires between positions, the superlane units and the slices' reports, built into Module `m`.

    Parameters
    ----------
    m : Module
        the chip top's module.
    config : ChipConfig
    units : dict
        `hdl/units.py` `units(config)`: the emitted units by module name.
    host : HostRegs
        the host register file (its `queue` and `sram` interfaces reach the slices).
    running : Signal
        the run control's RUNNING.
    cycle : Signal
        the run control's CYCLES (the C2C slices stamp and check link times with it).
    link_pins : dict
        per C2C slice name, the chip's link pins {"tx", "rx", "rx_clk"}.
    sync : SyncUnit
        the chip's sync unit (hdl/sync.py): the queues' release, the links' HAC and messages.
    """

    def __init__(self, m, config: ChipConfig, units: dict, host, running, cycle=None, link_pins=None, sync=None):
        self.m, self.config, self.units, self.host, self.running = m, config, units, host, running
        self.cycle, self.link_pins, self.sync = cycle, link_pins or {}, sync
        # the L_SEL slice's L_STATUS, L_CORRECTED, L_UNCORRECTABLE (zero when it names no C2C slice)
        self.link_status, self.link_corrected, self.link_uncorrectable = reg_value("L_STATUS"), Const(0, 32), Const(0, 32)
        S, W, B = config.streams, config.word_bits, config.superlane_bits
        # east[p][g]: superlane g of every eastward stream leaving position p (= V(p+1, t)), stream s
        # at bits [s*B, (s+1)*B); west likewise westward
        self.east = [[Signal(S * B, name=f"east_{sl.name}_g{g}") for g in range(config.superlanes)]
                     for sl in config.floorplan]
        self.west = [[Signal(S * B, name=f"west_{sl.name}_g{g}") for g in range(config.superlanes)]
                     for sl in config.floorplan]
        self.busy, self.errs, self.parked, self.corrected, self.uncorrectable = [], [], [], [], []
        qbits = (config.queue_depth - 1).bit_length()
        self.q_len = Const(0, qbits + 1)                   # the Q_SEL slice's Q_LEN
        self.m_rdata = Const(0, W)                         # the M_SEL slice's raw word and ECC bits
        self.m_recc = Const(0, code_for(W).stored_bits)

    def ports(self, unit: str, name: str):
        """Signals for every port of emitted unit `unit` at slice `name`, as the top sees them."""
        return self.units[unit].signature.flip().create(path=(name,))

    def instance(self, unit: str, name: str, ports=None, **connections):
        """Instantiate emitted unit `unit` as submodule `name` (`ports`: an interface from `ports()`)."""
        if ports is not None:
            connections = {n: getattr(ports, n) for n in self.units[unit].signature.members} | connections
        # Each instance takes the reset from a register of its own (a reset tree one level deep):
        # the synchronous reset then reaches a slice's flip-flops from beside it, not from one
        # register across the device through the logic that also clears them while idle.
        rst = Signal(name=f"rst_{name}", init=1, attrs=PER_INSTANCE)
        self.m.d.sync += rst.eq(0)
        self.m.submodules[name] = instance(unit, self.units[unit], rst=rst, **connections)

    def superlanes(self, unit: str, sl, **connections):
        """Instantiate `superlanes` units `unit` at slice `sl`, chained to the neighbouring positions;
        `connections` go to every one of them, and the rest of their ports are returned (a list of
        interfaces, one per superlane) for the caller to wire."""
        P, S, B = self.config.positions, self.config.streams, self.config.superlane_bits
        p, out = sl.position, []
        for g in range(self.config.superlanes):
            ports = self.ports(unit, f"{sl.name}_g{g}")
            self.instance(unit, f"{sl.name}_g{g}", ports, e_in=self.east[p - 1][g] if p > 0 else Const(0, S * B),
                          w_in=self.west[p + 1][g] if p < P - 1 else Const(0, S * B),
                          e_out=self.east[p][g], w_out=self.west[p][g], **connections)
            out.append(ports)
        return out

    def edge(self, direction: str, stream: int):
        """Stream `stream` leaving the chip at its east or west edge (a whole vector)."""
        B = self.config.superlane_bits
        vectors = self.east[-1] if direction == "east" else self.west[0]
        return Cat(*(v[stream * B:(stream + 1) * B] for v in vectors))

    def report(self, position, busy, err, err_code, err_pc, parked):
        """A slice's status for the run control (as if running: hdl/queue.py)."""
        self.busy.append(busy)
        self.parked.append(parked)
        self.errs.append((position, err, err_code, err_pc, parked))

    def first_error(self, timeout):
        """(any error, ERROR_INFO of the westmost slice that failed on the previous cycle). The
        info is taken a cycle later, from registers, so the choice among the slices is not behind
        their error logic. The error is this cycle's where the stop is immediate; where it lags
        (spec.TIMING error_stop 1) it is the previous cycle's too, from the same registers, so the
        stop's only crossing of the device starts at a flip-flop. `timeout`: the chip's SYNC
        timeout, an error of every parked queue (whose record then is SYNC_TIMEOUT at its SYNC:
        nothing else can fail on a cycle when nothing is busy)."""
        info = Signal(reg_layout("ERROR_INFO"), name="first_err_info")
        timed_out = Signal(name="sync_timeout_r")
        self.m.d.sync += timed_out.eq(timeout)
        nodes, regs = [], []
        for p, err, code, pc, parked in sorted(self.errs, key=lambda e: e[0]):
            was = (Signal(name=f"err_{p}_r"), Signal(4, name=f"err_{p}_code_r"), Signal(16, name=f"err_{p}_pc_r"),
                   Signal(name=f"parked_{p}_r"))
            # (an error, reported as if running, is registered only while running: the lagged stop
            # must not see a word that fails while the chip is idle on its first cycle)
            self.m.d.sync += [was[0].eq(err & self.running), was[1].eq(code), was[2].eq(pc), was[3].eq(parked)]
            regs.append(was[0])
            nodes.append((was[0] | (timed_out & was[3]),
                          reg_value("ERROR_INFO", code=was[1], position=Const(p, 8), pc=was[2])))
        # a balanced tree of (any error, its info) pairs, west half first
        if spec.timing(self.config)["error_stop"]:
            any_err = Cat(*regs).any()           # (the timeout is run control's own)
        else:
            any_err = Cat(*(e[1] for e in self.errs)).any()
        while len(nodes) > 1:
            pairs = [nodes[i:i + 2] for i in range(0, len(nodes), 2)]
            nodes = [(a[0] | b[0], Mux(a[0], a[1], b[1])) if len(pr) == 2 else pr[0]
                     for pr in pairs for a, b in [(pr[0], pr[-1])]]
        self.m.d.comb += info.eq(nodes[0][1])
        return any_err, info

    @property
    def fetch_bits(self):
        return self.config.fetch_words * spec.WORD_BITS
