"""Selections written as trees of two-way multiplexers.

Amaranth lowers `Array[index]` and `Switch` selections to shift and case structures that
yosys/ABC map poorly to 4-input LUTs: on ECP5 an 8-way choice of bytes took 1,224 LUT4 as an
`Array` and 512 as a tree of `Mux` (docs/DECISIONS.md, "Sizing the fpga preset"). Stream
selection is most of the chip, so every wide selection goes through these two helpers.
"""
from amaranth.hdl import Const, Mux


def mux_tree(values: list, sel):
    """values[sel] as a balanced tree of `Mux`, sel's low bit choosing at the leaves. Indices at or
    beyond len(values) give some element (callers index in range: the ISA's operand rules keep
    them there)."""
    values = list(values)
    if not values:
        raise ValueError("mux_tree of no values")
    k = 0
    while len(values) > 1:
        values = [Mux(sel[k], values[i + 1], values[i]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
        k += 1
    return values[0]


def shift_down(values: list, amount, n: int, width: int) -> list:
    """[values[amount + j] for j < n], zero beyond the last value, as a logarithmic shifter: the
    group of n consecutive streams starting at `amount` (amount < len(values)) in one shared
    structure rather than n independent choices. `width` is each value's width (for the zeros)."""
    zero = Const(0, width)
    cur = list(values)
    top = len(values) - 1                           # largest legal amount
    bits = max(top, 1).bit_length()
    for k in range(bits):
        step = 1 << k
        rest = (top >> (k + 1)) << (k + 1)          # most shift the higher bits can still add
        need = min(n + rest, len(cur))

        def at(i):
            return cur[i] if i < len(cur) else zero
        cur = [Mux(amount[k], at(i + step), at(i)) if i + step < len(cur) else Mux(amount[k], zero, at(i))
               for i in range(need)]
    return [cur[j] if j < len(cur) else zero for j in range(n)]
