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
    def group_fits(first, t, limit):
        """first + 2**t <= limit, as compares of `first` with constants chosen by t (no adder in
        front of a compare: this sits in the decode, ahead of the queue's ring)."""
        if isinstance(t, int):
            return _le_const(first, limit - (1 << t))
        fits = Const(0, 1)
        for v in range(1 << len(t)):
            fits = Mux(t == v, _le_const(first, limit - (1 << v)), fits)
        return fits

    @staticmethod
    def mul_le(a, b, limit, cap):
        """a * b <= limit (a, b >= 0) with limit <= cap: when a, b <= cap only their low cap.bit_length() bits
        are multiplied, as shifts and adds (LW's count * width on a 16-bit count would otherwise be
        a deep adder tree, or a DSP block per queue on an FPGA, in front of the decode register)."""
        k = max(cap.bit_length(), 1)
        a_lo, b_lo = a.as_unsigned()[:k], b.as_unsigned()[:k]
        product = sum_tree(Mux(b_lo[i], a_lo << i, 0) for i in range(k))
        zero = ((a == 0) | (b == 0)) & (limit >= 0)
        return Cat(a <= cap, b <= cap, product <= limit).all() | zero

    @staticmethod
    def pow2_divides(w, n):
        return (Const(n, max(n.bit_length(), 1)) & (w - 1)[:max(n.bit_length(), 1)]) == 0


def _le_const(x, c: int):
    """x <= c for an unsigned x and a constant c."""
    return Const(0, 1) if c < 0 else x <= c


def at_least(x, lo: int):
    """x >= lo for an unsigned field: x != 0 when lo is 1 (an OR, not a carry chain)."""
    return Const(1, 1) if lo <= 0 else x.any() if lo == 1 else x >= lo


def below(x, hi: int):
    """x < hi for an unsigned field: its high bits zero when hi is a power of two."""
    if hi > 0 and hi & (hi - 1) == 0:
        k = hi.bit_length() - 1
        return Const(1, 1) if len(x) <= k else x[k:] == 0
    return x < hi


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
        self.ops = spec.slice_opcodes(kind, config)
        opcode = spec.OPCODE_FIELD
        code = word[opcode.lsb:opcode.lsb + opcode.width]
        self.match: dict[str, Signal] = {}
        self.fields = _fields(word, self.ops)
        known = Signal(name="known_opcode")
        bad_field = Signal(name="bad_field")
        known_terms, bad_terms = [], []
        for op in self.ops:
            is_op = Signal(name=f"is_{op.mnemonic.lower()}")
            ok = Signal(name=f"ok_{op.mnemonic.lower()}")
            m.d.comb += is_op.eq(code == op.code)
            conds = [(word & op.reserved_mask) == 0]
            for name, lo in op.min_values:
                conds.append(at_least(self.fields[name][1], lo))
            for name, hi in spec.field_limits(op, config):
                conds.append(below(self.fields[name][1], hi))
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
        self.known = known
        self.legal = Signal(name="legal")
        m.d.comb += self.legal.eq(known & ~bad_field)
        self.err_code = Signal(4, name="decode_err")
        with m.If(~known):
            m.d.comb += self.err_code.eq(spec.ErrorCode.ILLEGAL_OPCODE)
        with m.Elif(bad_field):
            m.d.comb += self.err_code.eq(spec.ErrorCode.BAD_FIELD)

    def field(self, name):
        return self.fields[name][1]

    @staticmethod
    def packed_bits(kind: SliceKind, config: ChipConfig) -> int:
        """Width of `packed()` for a queue of this kind."""
        return len(spec.slice_opcodes(kind, config)).bit_length() + 1

    def packed(self):
        """The decode in `packed_bits` bits, to store beside the word: 1 + the index of the opcode
        the word legally is (0: illegal), then whether its opcode is known at all."""
        n = len(self.ops).bit_length()
        index = Const(0, n)
        for i, op in enumerate(self.ops):
            index = index | Mux(self.match[op.mnemonic], Const(i + 1, n), Const(0, n))
        return Cat(index, self.known)

    def unpacked(self, bits) -> tuple:
        """(match, legal, err_code) as values computed from `packed()` bits."""
        n = len(self.ops).bit_length()
        index, known = bits[:n], bits[n]
        match = {op.mnemonic: index == i + 1 for i, op in enumerate(self.ops)}
        err_code = Mux(index != 0, 0, Mux(known, spec.ErrorCode.BAD_FIELD, spec.ErrorCode.ILLEGAL_OPCODE))
        return match, index != 0, err_code

    def load(self, match, legal, err_code) -> list:
        """Assignments loading this (registered) decode's signals from values."""
        return [self.match[k].eq(match[k]) for k in self.match] + [self.legal.eq(legal), self.err_code.eq(err_code)]

    @classmethod
    def registered(cls, m: Module, word, kind: SliceKind, config: ChipConfig) -> "Decoded":
        """Fields sliced from `word`, with `match`, `legal` and `err_code` as bare signals for the
        caller to load with a decode computed a cycle early (the queue's pre-decode), so that
        nothing between the word's register and what issues is decode logic."""
        self = cls.__new__(cls)
        self.ops = spec.slice_opcodes(kind, config)
        self.fields = _fields(word, self.ops)
        self.match = {op.mnemonic: Signal(name=f"match_{op.mnemonic.lower()}") for op in self.ops}
        self.legal, self.err_code = Signal(name="legal"), Signal(4, name="decode_err")
        return self


def _fields(word, ops) -> dict:
    """name -> (Field, slice of `word`) for every operand field of `ops` (signed fields as signed)."""
    fields = {}
    for op in ops:
        for f in op.fields:
            sl = word[f.lsb:f.lsb + f.width]
            prev = fields.setdefault(f.name, (f, sl.as_signed() if f.signed else sl))
            assert prev[0] == f, f"field {f.name} differs between opcodes; decoder needs a per-opcode slice"
    return fields
