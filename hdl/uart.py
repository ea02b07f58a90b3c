"""A UART, 8N1, for the host bridge (isa/bridge.py): a receiver and a transmitter at `divisor`
clock cycles per bit. amaranth-stdio is only a placeholder on PyPI, so the project has its own;
it is small, and tested against cocotbext-uart through the bridge (tests/rtl/test_board.py).
"""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UartRx(wiring.Component):
    """Receiver: samples the line in the middle of each bit.

    Parameters
    ----------
    divisor : int
        clock cycles per bit (at least 4).

    Members
    -------
    rx : In(1)
        the line (idle high); synchronized here.
    data : Out(8)
        the byte received, valid with `valid`.
    valid : Out(1)
        one cycle per byte whose stop bit was high.
    frame_error : Out(1)
        one cycle per byte whose stop bit was low (the byte is dropped).
    idle : Out(1)
        no byte is being received.
    """

    rx: In(1, init=1)
    data: Out(8)
    valid: Out(1)
    frame_error: Out(1)
    idle: Out(1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(range(9))
        shift = Signal(8)
        m.d.comb += self.idle.eq(0)
        m.d.sync += [self.valid.eq(0), self.frame_error.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):                     # the middle of the start bit: still low?
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"                    # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), shift.eq(Cat(shift[1:], line)), bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [self.data.eq(shift), self.valid.eq(line), self.frame_error.eq(~line)]
                    m.next = "IDLE"
                    with m.If(~line):
                        m.next = "BREAK"
            with m.State("BREAK"):                     # a low stop bit: wait for the line to return high
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Transmitter.

    Parameters
    ----------
    divisor : int
        clock cycles per bit.

    Members
    -------
    tx : Out(1)
        the line (idle high).
    data : In(8)
        the byte to send, taken when `valid` and `ready` are both high.
    valid : In(1)
    ready : Out(1)
        the transmitter can take a byte this cycle.
    """

    tx: Out(1, init=1)
    data: In(8)
    valid: In(1)
    ready: Out(1)

    def __init__(self, divisor: int):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += self.ready.eq(left == 0)
        with m.If(left == 0):
            with m.If(self.valid):
                m.d.sync += [shift.eq(Cat(0, self.data, 1)), left.eq(10), timer.eq(self.divisor - 1),
                             self.tx.eq(0)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1), self.tx.eq(shift[1] | (left == 1)),
                         timer.eq(self.divisor - 1)]
        return m
