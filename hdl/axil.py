"""AXI4-Lite slave to a simple register strobe interface.

One transaction at a time: a write is accepted when AWVALID and WVALID are both
high, a read when ARVALID is high (writes first). The register side sees a
one-cycle `reg_we` / `reg_re` strobe with `reg_addr` on the cycle after the
handshake (address and data are registered first); read data is taken from
`reg_rdata` in the strobe's cycle; the write response waits while `reg_wbusy` is
high (multi-cycle commands such as an SRAM access). WSTRB is ignored: registers
are written whole (documented in docs/ISA.md (host register map)). Responses are always OKAY;
refused accesses are reported in the STATUS register instead.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def axil_members(addr_bits: int, prefix: str = "s_axil_") -> dict:
    """Slave-side AXI4-Lite ports with flat, stable names (cocotbext-axi `from_prefix`)."""
    return {f"{prefix}{n}": flow for n, flow in {
        "awaddr": In(addr_bits), "awvalid": In(1), "awready": Out(1),
        "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(addr_bits), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    }.items()}


class AxiLiteSlave(wiring.Component):
    """AXI4-Lite slave, one transaction at a time, turned into register strobes.

    Parameters
    ----------
    addr_bits : int
        width of AWADDR / ARADDR (`isa/hostmap.py` `addr_bits`).

    Members
    -------
    awaddr, awvalid, awready, wdata, wstrb, wvalid, wready, bresp, bvalid, bready, araddr, arvalid,
    arready, rdata, rresp, rvalid, rready :
        the AXI4-Lite slave channels (`axil_members`); WSTRB is ignored, responses are OKAY.
    reg_addr, reg_wdata : Out
        the register address and the data written, valid with the strobes.
    reg_we, reg_re : Out(1)
        one-cycle write / read strobes, on the cycle after the handshake.
    reg_rdata : In(32)
        the addressed register's value, taken on the `reg_re` cycle.
    reg_wbusy : In(1)
        hold the write response (a multi-cycle command is in progress).
    """

    def __init__(self, addr_bits: int):
        self.addr_bits = addr_bits
        super().__init__(axil_members(addr_bits, prefix="") | {
            "reg_addr": Out(addr_bits), "reg_wdata": Out(32), "reg_we": Out(1), "reg_re": Out(1),
            "reg_rdata": In(32), "reg_wbusy": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        # The accepted address and data are registered and the strobe follows on the next cycle:
        # the master (on a board, the UART bridge) and the register file's decode are then not
        # one path, which on an FPGA spans the device.
        addr, wdata = Signal.like(self.reg_addr), Signal.like(self.reg_wdata)
        m.d.comb += [self.reg_addr.eq(addr), self.reg_wdata.eq(wdata)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.awvalid & self.wvalid):
                    m.d.comb += [self.awready.eq(1), self.wready.eq(1)]
                    m.d.sync += [addr.eq(self.awaddr), wdata.eq(self.wdata)]
                    m.next = "WRITE"
                with m.Elif(self.arvalid):
                    m.d.comb += self.arready.eq(1)
                    m.d.sync += addr.eq(self.araddr)
                    m.next = "READ"
            with m.State("WRITE"):
                m.d.comb += self.reg_we.eq(1)
                m.next = "WRITE_WAIT"
            with m.State("WRITE_WAIT"):
                with m.If(~self.reg_wbusy):
                    m.d.sync += self.bvalid.eq(1)
                    m.next = "WRITE_RESP"
            with m.State("WRITE_RESP"):
                with m.If(self.bready):
                    m.d.sync += self.bvalid.eq(0)
                    m.next = "IDLE"
            with m.State("READ"):
                m.d.comb += self.reg_re.eq(1)
                m.d.sync += [self.rdata.eq(self.reg_rdata), self.rvalid.eq(1)]
                m.next = "READ_RESP"
            with m.State("READ_RESP"):
                with m.If(self.rready):
                    m.d.sync += self.rvalid.eq(0)
                    m.next = "IDLE"
        return m
