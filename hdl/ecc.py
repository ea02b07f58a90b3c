"""SECDED encoder and decoder, generated from the code defined in isa/ecc.py."""
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa.ecc import code_for


def _xor_reduce(sig, mask: int, width: int):
    """Parity of the bits of `sig` selected by `mask` (one reduction, not a chain of XORs)."""
    return Cat(*[sig[i] for i in range(width) if mask >> i & 1]).xor()


class SecdedEncoder(wiring.Component):
    """SECDED encoder (`isa/ecc.py`): data -> stored ECC bits (check | parity << r). Combinational.

    Parameters
    ----------
    data_bits : int
        width of the protected word.

    Members
    -------
    data : In(data_bits)
    ecc : Out(stored_bits)
        the check bits and the overall parity bit, as stored.
    """

    def __init__(self, data_bits: int):
        self.code = code_for(data_bits)
        super().__init__({"data": In(data_bits), "ecc": Out(self.code.stored_bits)})

    def elaborate(self, platform):
        m = Module()
        c = self.code
        check = Cat(*[_xor_reduce(self.data, mask, c.data_bits) for mask in c.check_masks])
        m.d.comb += self.ecc.eq(Cat(check, self.data.xor() ^ check.xor()))
        return m


class SecdedDecoder(wiring.Component):
    """SECDED decoder (`isa/ecc.py`): (data, ecc) -> corrected data and flags. Combinational.

    Parameters
    ----------
    data_bits : int
        width of the protected word.

    Members
    -------
    data : In(data_bits); ecc : In(stored_bits)
        the word and its ECC bits as read.
    out : Out(data_bits)
        the word, a single-bit error corrected.
    corrected, uncorrectable : Out(1)
        a single-bit error was corrected; a double-bit error was detected.
    """

    def __init__(self, data_bits: int):
        self.code = code_for(data_bits)
        super().__init__({
            "data": In(data_bits), "ecc": In(self.code.stored_bits),
            "out": Out(data_bits), "corrected": Out(1), "uncorrectable": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.code
        r = c.check_bits
        check = self.ecc[:r]
        parity = self.ecc[r]
        syndrome = Signal(r)
        m.d.comb += syndrome.eq(Cat(*[_xor_reduce(self.data, mask, c.data_bits) for mask in c.check_masks]) ^ check)
        odd = Signal()
        m.d.comb += odd.eq(self.data.xor() ^ check.xor() ^ parity)
        flip = Signal(c.data_bits)
        m.d.comb += flip.eq(Cat(*[(syndrome == pos) for pos in c.positions]))
        # A single error whose syndrome names a data bit, a check bit (power of two) or the
        # parity bit (zero) is correctable; any other syndrome with odd parity is not.
        names_bit = Signal()
        m.d.comb += names_bit.eq(flip.any() | (syndrome & (syndrome - 1) == 0))
        m.d.comb += [
            self.out.eq(Mux(odd, self.data ^ flip, self.data)),
            self.corrected.eq(odd & names_bit),
            self.uncorrectable.eq((odd & ~names_bit) | (~odd & syndrome.any())),
        ]
        return m


