"""Instruction decoder for one slice kind, generated from isa/spec.py.

Nothing here knows an opcode value, a field position or a range: they are all
read from the spec, so the hardware accepts exactly what `spec.check` accepts.
"""
from amaranth.hdl import Cat, Const, Module, Mux, Signal

from isa import spec
from isa.config import ChipConfig, SliceKind

from .arith import sum_tree


class HdlRules:
    """Evaluates the spec's constraint rules on Amaranth values (twin of spec.IntRules)."""
    @staticmethod
    def mux(c, a, b):
        return Mux(c, a, b)

    @staticmethod
    def both(a, b):
        return Cat(a, b).all() if not (isinstance(a, bool) or isinstance(b, bool)) else _bool_and(a, b)

    @staticmethod
    def shl1(t):
        return Const(1, 8) << t

    @staticmethod
    def mul(a, b):
        """a * b as shifts and adds over b's bits (b the narrow one): an operand rule's product
        (LW's width * count) would otherwise take a whole DSP block per queue on an FPGA."""
        return sum_tree(Mux(b[i], a << i, 0) for i in range(len(b)))

    @staticmethod
    def pow2_divides(w, n):
        return (Const(n, max(n.bit_length(), 1)) & (w - 1)[:max(n.bit_length(), 1)]) == 0


def _bool_and(a, b):
    if isinstance(a, bool) and isinstance(b, bool):
        return Const(int(a and b), 1)
    x, y = (a, b) if isinstance(a, bool) else (b, a)
    return y if x else Const(0, 1)


class Decoded:
    """Signals describing `word` for a queue of one slice kind (all combinational).

    `match[MNEMONIC]` is 1 when the word is a *legal* instance of that opcode;
    `legal` is their OR; `err_code` says why an illegal word is illegal;
    `fields[name]` are the operand bit slices (shared between opcodes that
    place a field at the same bits, which the spec guarantees for MEM ops).
    """

    def __init__(self, m: Module, word, kind: SliceKind, config: ChipConfig):
        self.ops = [op for op in spec.OPCODES if kind in op.kinds]
        opcode = spec.OPCODE_FIELD
        code = word[opcode.lsb:opcode.lsb + opcode.width]
        self.match: dict[str, Signal] = {}
        self.fields: dict[str, object] = {}
        known = Signal(name="known_opcode")
        bad_field = Signal(name="bad_field")
        known_terms, bad_terms = [], []
        for op in self.ops:
            is_op = Signal(name=f"is_{op.mnemonic.lower()}")
            ok = Signal(name=f"ok_{op.mnemonic.lower()}")
            m.d.comb += is_op.eq(code == op.code)
            conds = [(word & op.reserved_mask) == 0]
            for f in op.fields:
                sl = word[f.lsb:f.lsb + f.width]
                sl = sl.as_signed() if f.signed else sl
                prev = self.fields.setdefault(f.name, (f, sl))
                assert prev[0] == f, f"field {f.name} differs between opcodes; decoder needs a per-opcode slice"
            for name, lo in op.min_values:
                conds.append(self.fields[name][1] >= lo)
            for name, hi in spec.field_limits(op, config):
                conds.append(self.fields[name][1] < hi)
            mine = {f.name: self.fields[f.name][1] for f in op.fields}
            for _, rule in op.constraints:
                c = rule(mine, config, HdlRules)
                conds.append(Const(int(c), 1) if isinstance(c, bool) else c)
            m.d.comb += ok.eq(Cat(*conds).all())
            match = Signal(name=f"match_{op.mnemonic.lower()}")
            m.d.comb += match.eq(is_op & ok)
            self.match[op.mnemonic] = match
            known_terms.append(is_op)
            bad_terms.append(is_op & ~ok)
        m.d.comb += [known.eq(Cat(*known_terms).any()), bad_field.eq(Cat(*bad_terms).any())]
        self.legal = Signal(name="legal")
        m.d.comb += self.legal.eq(known & ~bad_field)
        self.err_code = Signal(4, name="decode_err")
        with m.If(~known):
            m.d.comb += self.err_code.eq(spec.ErrorCode.ILLEGAL_OPCODE)
        with m.Elif(bad_field):
            m.d.comb += self.err_code.eq(spec.ErrorCode.BAD_FIELD)

    def field(self, name):
        return self.fields[name][1]

