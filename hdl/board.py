"""The board's logic around the chip: the UART host bridge and the status LEDs.

`BoardCore` is what a board top (hdl/fpga.py: PLL, reset synchronizer, pins) instantiates, and what
simulation runs as module `board` (python -m hdl.build --board CONFIG): the serial line is its only
host interface, so a test of it drives exactly what a host drives through a USB serial adapter.
The chip is instantiated by name (module `chip`, emitted once beside it).
"""
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import bridge as bp
from isa.config import ChipConfig, SliceKind

from .bridge import HostBridge
from .c2c import link_ports
from .chip import chip_ports

# LED bit: what it shows (docs/FPGA.md)
LEDS = ("running", "done", "error", "ecc")


class BoardCore(wiring.Component):
    """The chip behind a UART host bridge, with status LEDs.

    Parameters
    ----------
    config : ChipConfig
    timing : isa.bridge.BridgeTiming
        the bridge's cycles per bit and timeout.

    Members
    -------
    rx : In(1), tx : Out(1)
        the serial line (8N1, idle high).
    led : Out(len(LEDS))
        RUNNING, DONE, ERROR (the chip stopped on an error), ECC (an ECC event since the last CLEAR:
        a corrected or an uncorrectable SRAM word).
    """

    def __init__(self, config: ChipConfig, timing: bp.BridgeTiming):
        self.config, self.timing = config, timing
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "led": Out(len(LEDS))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.bridge = br = HostBridge(cfg, self.timing)
        m.d.comb += [br.rx.eq(self.rx), self.tx.eq(br.tx)]
        flows = chip_ports(cfg)
        chip = {n: Signal(mbr.shape, name=f"chip_{n}") for n, mbr in flows.items()}
        # bridge <-> chip: AXI4-Lite by name, the bulk ports load -> s_axis and m_axis -> unload
        for n in flows:
            if n.startswith("s_axil_"):
                bn = "m_axil_" + n[len("s_axil_"):]
                if flows[n].flow == In:
                    m.d.comb += chip[n].eq(getattr(br, bn))
                else:
                    m.d.comb += getattr(br, bn).eq(chip[n])
        for p in ("tdata", "tvalid", "tlast"):
            m.d.comb += chip[f"s_axis_{p}"].eq(getattr(br, f"load_{p}"))
        m.d.comb += br.load_tready.eq(chip["s_axis_tready"])
        for p in ("tdata", "tuser", "tvalid", "tlast"):
            m.d.comb += getattr(br, f"unload_{p}").eq(chip[f"m_axis_{p}"])
        m.d.comb += [chip["m_axis_tready"].eq(br.unload_tready), br.running.eq(chip["running"])]
        kw = {("i_" if flows[n].flow == In else "o_") + n: s for n, s in chip.items()}
        for d in ("east", "west"):                 # the edge outputs: unused on a board of one chip
            for s in range(cfg.streams):
                kw[f"o_{d}_out_{s}"] = Signal(cfg.word_bits, name=f"{d}_out_{s}")
        for sl in cfg.slices_of(SliceKind.C2C):    # the links: unconnected (they stay down, untrained)
            pins = link_ports(cfg)
            name = sl.name.lower()
            kw[f"o_{name}_tx"] = Signal(pins["tx"].shape, name=f"{name}_tx")
            kw[f"i_{name}_rx"] = Const(0, pins["rx"].shape)
            kw[f"i_{name}_rx_clk"] = ClockSignal()
        m.submodules.chip = Instance("chip", i_clk=ClockSignal(), i_rst=ResetSignal(), **kw)
        m.d.comb += self.led.eq(Cat(chip[n] for n in LEDS))
        return m
