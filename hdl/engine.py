"""An engine's element counter, shared by the slices' engines (MEM READ/WRITE, VXM ALUs, SXM, MXM).

An instruction issued on t with `count` elements keeps its engine active from t+1 for `count`
running cycles, one element per cycle. The engine takes the next instruction of its kind when at
most one element is left (back to back: the issue overrides the last step), so `ready` is
"not (active and more than one left)". That term feeds the queue's issue, and through it the
queue's overflow check and the chip's stop; it is kept in a register of its own (`more`),
updated beside `left`, so no compare of the counter sits on that path.
"""
from amaranth.hdl import Module, Signal


class Countdown:
    """Members (all registers but `step` and `ready`)

    active : the engine has elements left.
    left : how many (meaningful while active).
    step : running & active, the cycles an element is processed.
    ready : the engine can take an issue this cycle (~more).
    """

    def __init__(self, m: Module, name: str, running, issue, count, width: int):
        self.active = Signal(name=f"{name}_active")
        self.left = Signal(width, name=f"{name}_left")
        more = Signal(name=f"{name}_more")        # active & left > 1, as a register
        self.step = running & self.active
        self.ready = ~more
        with m.If(self.step):
            m.d.sync += [self.left.eq(self.left - 1), more.eq(self.left > 2)]
            with m.If(self.left == 1):
                m.d.sync += self.active.eq(0)
        with m.If(issue):          # (count >= 1: the opcodes' legality)
            m.d.sync += [self.active.eq(1), self.left.eq(count), more.eq(count > 1)]
        with m.If(~running):
            m.d.sync += [self.active.eq(0), more.eq(0)]
