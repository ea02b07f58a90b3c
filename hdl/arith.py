"""Arithmetic built for the FPGA's DSP blocks.

An ECP5 MULT18X18D multiplies two 18-bit signed operands; yosys splits a 32 x 32 product into
four of them. The VXM's ALUs need the whole 64-bit product (REQUANT keeps its top 33 bits), and
on the `fpga` preset the DSPs are the scarce resource (docs/DECISIONS.md, "Sizing the fpga
preset"), so `mul32_signed` takes three (Karatsuba) at the cost of a few adders. `sum_tree` adds terms as
a balanced tree (log2 of their count deep, not a chain).
"""
from amaranth.hdl import Signal, signed


def mul32_signed(m, a, b, name: str, registered: bool = False):
    """a * b for signed 32-bit a, b: a signed(64) signal, from three products of at most 18 x 18
    bits. With a = ah * 2**16 + al (ah signed, al unsigned, 16 bits each), likewise b:
    a * b = ah*bh * 2**32 + ((ah+al)(bh+bl) - ah*bh - al*bl) * 2**16 + al*bl.
    `registered`: the three products are registered and their sum is of the cycle after."""
    ah, al = a[16:32].as_signed(), a[:16]
    bh, bl = b[16:32].as_signed(), b[:16]
    hi, lo, mid = (Signal(signed(n), name=f"{name}_{s}") for n, s in ((32, "hi"), (33, "lo"), (36, "mid")))
    sa, sb = Signal(signed(18), name=f"{name}_sa"), Signal(signed(18), name=f"{name}_sb")
    out = Signal(signed(64), name=name)
    m.d.comb += [sa.eq(ah + al), sb.eq(bh + bl), out.eq((hi << 32) + ((mid - hi - lo) << 16) + lo)]
    products = [hi.eq(ah * bh), lo.eq(al * bl), mid.eq(sa * sb)]
    if registered:
        m.d.sync += products
    else:
        m.d.comb += products
    return out


def sum_tree(terms: list):
    """The sum of `terms` as a balanced tree of adds, neighbours paired first."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]
