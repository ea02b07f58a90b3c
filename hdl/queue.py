"""In-order instruction queue (the per-slice part of the ICU).

The queue holds the slice's program in a synchronous memory and presents the
instruction at `pc` as its head. On each running cycle the head either issues
(strobe `issue[MNEMONIC]`), waits (NOP count, or the engine it needs is still
busy: `ready[MNEMONIC]` low) or, if illegal, raises `err` so the chip stops at
the end of that cycle. NOP is handled here; every other opcode is handed to
the slice. Timing is the spec's: instruction k+1 issues on the cycle after
instruction k, NOP n delays the next issue by n cycles.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind

from .decoder import Decoded

NOP_FIELD = spec.BY_MNEMONIC["NOP"].field("cycles")


def slice_queue_ports(config: ChipConfig) -> dict:
    """Ports every slice with a queue has: run control, the host's queue load, status."""
    qbits = (config.queue_depth - 1).bit_length()
    return {
        "running": In(1),
        "host_q_we": In(1), "host_q_addr": In(qbits), "host_q_data": In(spec.WORD_BITS),
        "host_q_len_we": In(1), "host_q_len": In(qbits + 1), "q_len": Out(qbits + 1),
        "busy": Out(1), "err": Out(1), "err_code": Out(4), "err_pc": Out(16),
    }


def attach_queue(m: Module, slice_, kind: SliceKind) -> "InstructionQueue":
    """Add the slice's InstructionQueue to `m`, wired to the ports of slice_queue_ports()."""
    m.submodules.queue = q = InstructionQueue(slice_.config, kind)
    m.d.comb += [
        q.running.eq(slice_.running),
        q.host_we.eq(slice_.host_q_we), q.host_addr.eq(slice_.host_q_addr), q.host_data.eq(slice_.host_q_data),
        q.host_len_we.eq(slice_.host_q_len_we), q.host_len.eq(slice_.host_q_len), slice_.q_len.eq(q.length),
        slice_.err.eq(q.err), slice_.err_code.eq(q.err_code), slice_.err_pc.eq(q.pc),
    ]
    return q


class InstructionQueue(wiring.Component):
    def __init__(self, config: ChipConfig, kind: SliceKind):
        self.config, self.kind = config, kind
        self.ops = [op for op in spec.OPCODES if kind in op.kinds and op.mnemonic != "NOP"]
        self.fields: dict[str, spec.Field] = {}     # operand fields of this kind's opcodes, by name
        for op in self.ops:
            for f in op.fields:
                assert self.fields.setdefault(f.name, f) == f, f"field {f.name} differs between {kind.value} opcodes"
        depth_bits = (config.queue_depth - 1).bit_length()
        self.len_bits = depth_bits + 1
        members = {
            "running": In(1),
            # host load port (only acts while the chip is idle)
            "host_we": In(1), "host_addr": In(depth_bits), "host_data": In(spec.WORD_BITS),
            "host_len_we": In(1), "host_len": In(self.len_bits),
            "length": Out(self.len_bits),
            # to the slice
            "head": Out(spec.WORD_BITS),
            "busy": Out(1),          # instructions (or a NOP count) remain
            "err": Out(1), "err_code": Out(4), "pc": Out(16),
        }
        for op in self.ops:
            members[f"issue_{op.mnemonic.lower()}"] = Out(1)
            members[f"ready_{op.mnemonic.lower()}"] = In(1)
        super().__init__(members)

    def field(self, name: str):
        """Operand field `name` of the head instruction (signed fields read as signed)."""
        f = self.fields[name]
        v = self.head[f.lsb:f.lsb + f.width]
        return v.as_signed() if f.signed else v

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.mem = mem = Memory(shape=spec.WORD_BITS, depth=cfg.queue_depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        m.d.comb += [wr.addr.eq(self.host_addr), wr.data.eq(self.host_data),
                     wr.en.eq(self.host_we & ~self.running)]
        with m.If(self.host_len_we & ~self.running):
            m.d.sync += self.length.eq(self.host_len)

        pc = Signal(self.len_bits)
        wait = Signal(NOP_FIELD.width)
        advance = Signal()
        m.d.comb += [self.pc.eq(pc), self.head.eq(rd.data),
                     rd.addr.eq(pc + advance), rd.en.eq(1)]

        dec = Decoded(m, rd.data, self.kind, cfg)
        pending = Signal()
        m.d.comb += pending.eq(self.running & (pc < self.length))
        m.d.comb += self.busy.eq(pending)

        with m.If(~self.running):
            m.d.sync += [pc.eq(0), wait.eq(0)]
        with m.Elif(wait != 0):
            # inside a NOP: the head already issued; count down to the next issue
            m.d.sync += wait.eq(wait - 1)
            m.d.comb += advance.eq(wait == 1)
        with m.Elif(pending):
            with m.If(~dec.legal):
                m.d.comb += [self.err.eq(1), self.err_code.eq(dec.err_code)]
            with m.Elif(dec.match["NOP"]):
                cycles = dec.field("cycles")
                m.d.sync += wait.eq(cycles - 1)
                m.d.comb += advance.eq(cycles == 1)
            for op in self.ops:
                with m.Elif(dec.match[op.mnemonic]):
                    ready = getattr(self, f"ready_{op.mnemonic.lower()}")
                    m.d.comb += [advance.eq(ready), getattr(self, f"issue_{op.mnemonic.lower()}").eq(ready)]
        with m.If(advance):
            m.d.sync += pc.eq(pc + 1)
        return m
