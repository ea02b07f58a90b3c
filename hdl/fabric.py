"""The stream fabric of the chip top, and what the attached slices report to the top.

`Fabric` is not a component: it builds into the chip top's Module. It holds the stream registers
(one `stream_lane` unit per position and stream, instantiated by `stream_lanes`), answers "which
values pass position p" (`arriving`, `pick`), and collects from each attached slice its drives
(per-stream enables and data, per direction), its busy and error outputs, its ECC events and the
read-backs the host register file needs (the selected queue's Q_LEN, the selected MEM slice's
word). hdl/attach.py attaches the slices.
"""
from amaranth.hdl import Array, Cat, Const, Mux, Signal

from isa import spec
from isa.config import ChipConfig
from isa.ecc import code_for

from .host_regs import reg_layout, reg_value
from .units import instance


class Fabric:
    """The stream registers and the slices' reports, built into Module `m`.

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
    """

    def __init__(self, m, config: ChipConfig, units: dict, host, running):
        self.m, self.config, self.units, self.host, self.running = m, config, units, host, running
        S, W = config.streams, config.word_bits
        # east[p][s]: eastward stream s leaving position p (= V(p+1, t)); west likewise westward
        self.east = [[Signal(W, name=f"east_{sl.name}_{s}") for s in range(S)] for sl in config.floorplan]
        self.west = [[Signal(W, name=f"west_{sl.name}_{s}") for s in range(S)] for sl in config.floorplan]
        self.zero = [Const(0, W)] * S
        self.drives = {}        # position -> (e_en, w_en, e_data per stream, w_data per stream)
        self.busy, self.errs, self.corrected, self.uncorrectable = [], [], [], []
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
        self.m.submodules[name] = instance(unit, self.units[unit], **connections)

    def arriving(self, p):
        """(eastward, westward) values passing position p: V(p, t) per stream."""
        P = self.config.positions
        return (self.east[p - 1] if p > 0 else self.zero), (self.west[p + 1] if p < P - 1 else self.zero)

    def pick(self, p, direction, stream, offset=0, pad=0):
        """The stream `stream + offset` passing position p in `direction` (1 westward); `pad` zero
        streams beyond the last one let a group run past it."""
        e_in, w_in = self.arriving(p)
        extra = [Const(0, self.config.word_bits)] * pad
        e_arr, w_arr = Array(list(e_in) + extra), Array(list(w_in) + extra)
        index = stream + offset if offset else stream
        return Mux(direction, w_arr[index], e_arr[index])

    def report(self, position, busy, err, err_code, err_pc):
        """A slice's status for the run control."""
        self.busy.append(busy)
        self.errs.append((position, err, err_code, err_pc))

    def first_error(self):
        """(any error, ERROR_INFO of the westmost failing slice) this cycle."""
        info = Signal(reg_layout("ERROR_INFO"), name="first_err_info")
        for p, err, code, pc in sorted(self.errs, key=lambda e: -e[0]):     # the last match wins: westmost
            with self.m.If(err):
                self.m.d.comb += info.eq(reg_value("ERROR_INFO", code=code, position=Const(p, 8), pc=pc))
        return Cat(*(e[1] for e in self.errs)).any(), info

    def stream_lanes(self):
        """One stream_lane unit per position and stream: each takes its slice's drive or passes on."""
        cfg = self.config
        S = cfg.streams
        for sl in cfg.floorplan:
            p = sl.position
            e_en, w_en, e_data, w_data = self.drives.get(p, (Const(0, S), Const(0, S), self.zero, self.zero))
            e_in, w_in = self.arriving(p)
            for s in range(S):
                self.instance("stream_lane", f"lane_{sl.name}_{s}", e_in=e_in[s], w_in=w_in[s], e_en=e_en[s],
                              w_en=w_en[s], e_data=e_data[s], w_data=w_data[s],
                              e_out=self.east[p][s], w_out=self.west[p][s])

    @property
    def fetch_bits(self):
        return self.config.fetch_words * spec.WORD_BITS
