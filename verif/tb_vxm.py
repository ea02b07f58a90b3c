"""VXM and SXM cocotb tests: every program runs on the RTL and the golden model and is
compared on every edge vector on every cycle, every SRAM word, the cycle count and the error
status (ChipTB.run_and_compare). Operands come from MEM slices on exact cycles
(verif/vxm_stimulus.py). Seeds: cocotb prints its seed; COCOTB_RANDOM_SEED replays."""
import cocotb
import numpy as np

from isa import spec
from isa.image import Program
from isa.spec import DType

from .chip_tb import ChipTB, rng
from .stimulus import random_instruction_word
from .vxm_stimulus import alu_program, chain_program, sxm_program

I8, I16, I32 = int(DType.I8), int(DType.I16), int(DType.I32)


def type_cases(config):
    """(mnemonic, type, dtype) for every ALU op the configuration's VXM has and every type
    combination it accepts."""
    out = []
    for a in spec.vxm_alu_ops(config):
        if a.dtype == "same":
            out += [(a.mnemonic, t, None) for t in (I8, I16, I32)]
        elif a.dtype == "wider":
            out += [(a.mnemonic, t, u) for t in (I8, I16, I32) for u in (I8, I16, I32) if u > t]
        elif a.dtype == "any":
            out += [(a.mnemonic, t, u) for t in (I8, I16, I32) for u in (I8, I16, I32)]
        else:
            out += [(a.mnemonic, I32, u) for u in (I8, I16)]
    return out


async def _tb(dut) -> ChipTB:
    tb = ChipTB(dut)
    await tb.reset()
    return tb


def alu_word(cfg, mn, **kw):
    """A one-element `mn` on ALU 0, stream groups 0 (east) and 1 (west), int8 in, int16 out where
    the op has those fields; `kw` overrides any field."""
    base = {"a": spec.operand(0, 0), "dst": 0, "ddir": 0, "alu": 0, "count": 1}
    names = {f.name for f in spec.BY_MNEMONIC[mn].fields}
    base |= {"b": spec.operand(0, 1)} if "b" in names else {}
    base |= {"c": spec.operand(1, 1)} if "c" in names else {}
    base |= {"type": I8} if "type" in names else {}
    base |= {"dtype": I16} if "dtype" in names else {}
    return spec.encode(mn, **(base | kw))


@cocotb.test()
async def vxm_alu_ops(dut):
    """Every ALU opcode with every type combination it accepts, constrained-random operands
    with the edges of each type, stream and register operands, all ALUs, both directions; an
    op the configuration leaves out (`vxm_omit`) stops the chip with ILLEGAL_OPCODE there."""
    tb = await _tb(dut)
    r = rng()
    for mnemonic, t, dt in type_cases(tb.config):
        await tb.run_and_compare(alu_program(tb.config, r, mnemonic, t, dt, vectors=10))
    for mnemonic in tb.config.vxm_omit:
        p = Program.empty(tb.config)
        p.add("VXM", [spec.encode("NOP", cycles=2), alu_word(tb.config, "ADD"), alu_word(tb.config, mnemonic)])
        _, res, st, _ = await tb.run_and_compare(p)
        assert res.error == spec.ErrorCode.ILLEGAL_OPCODE and st.error_code == spec.ErrorCode.ILLEGAL_OPCODE, \
            (mnemonic, res, st)


@cocotb.test()
async def vxm_requantize_cases(dut):
    """REQUANT on at least 10,000 random (x, M, s, zero point) lane cases with per-lane
    parameters, int8 and int16 results, including every saturation edge."""
    tb = await _tb(dut)
    r = rng()
    cases, n = 0, 0
    while cases < 10_000:
        p = alu_program(tb.config, r, "REQUANT", I32, I8 if n % 2 == 0 else I16, vectors=64, per_lane=True)
        await tb.run_and_compare(p)
        cases += 64 * tb.config.lanes
        n += 1
    tb.log.info("requantized %d lane cases in %d programs", cases, n)


@cocotb.test()
async def sxm_ops(dut):
    """Random SHIFT / ROTATE / BCAST / PERMUTE (after SETMAP) / TRANSPOSE on both SXM slices,
    widths from one stream to sxm_width, results in both directions."""
    tb = await _tb(dut)
    r = rng()
    for _ in range(4):
        await tb.run_and_compare(sxm_program(tb.config, r, ops_count=40))


@cocotb.test()
async def chain_mem_vxm_sxm_mem(dut):
    """MEM -> VXM -> SXM -> MEM with random data for at least 1,000 cycles; run twice, same result."""
    tb = await _tb(dut)
    p = chain_program(tb.config, rng(), min_cycles=1000)
    _, res1, st1, tr1 = await tb.run_and_compare(p)
    _, res2, st2, tr2 = await tb.run_and_compare(p)
    assert res1.cycles >= 1000 and st1.cycles == st2.cycles == res1.cycles == res2.cycles
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(tr1, tr2))


@cocotb.test()
async def vxm_sxm_illegal_words(dut):
    """Illegal VXM/SXM words (wrong type for the op, group past the last stream, register or ALU
    out of range, bad TRANSPOSE width, reserved bits) stop the chip with BAD_FIELD at the
    right slice, pc and cycle; random words in the VXM and SXM queues behave as in the model."""
    tb = await _tb(dut)
    cfg = tb.config
    S = cfg.streams

    def alu(mn, **kw):
        return alu_word(cfg, mn, **kw)

    vxm_bad = [
        alu("MULW", type=I16, dtype=I8),                        # not wider
        alu("REQUANT", dtype=I32),                              # requantize to int32
        alu("ADD", type=3),                                     # undefined type
        alu("ADD", a=spec.operand(S - 3, 0), type=I32),         # int32 group past the last stream
        alu("ADD", a=spec.operand(cfg.vxm_regs, reg=True)),      # no such register
        alu("ADD", b=spec.operand(0, 1, reg=True)),              # register with the dir bit set
        alu("ADD", alu=cfg.vxm_alus) if cfg.vxm_alus < 16 else alu("ADD", count=0),
        alu("CVT", dst=S - 1, type=I8, dtype=I16),               # result group past the last stream
        spec.encode("VLOAD", a=spec.operand(0, reg=True), r=0, type=I8),   # VLOAD from a register
        spec.encode("VSET", r=0, imm=5) | 1 << 30,               # reserved bit
    ]
    sxm_bad = [
        spec.encode("TRANSPOSE", stream=0, dir=1, dst=0, ddir=0, width=3, count=1),
        spec.encode("BCAST", stream=0, dir=1, arg=cfg.lanes, dst=0, ddir=0, width=1, count=1),
        spec.encode("SHIFT", stream=S - 1, dir=1, arg=1, dst=0, ddir=0, width=2, count=1),
        spec.encode("ROTATE", stream=0, dir=1, arg=-cfg.lanes, dst=0, ddir=0, width=1, count=1),
        spec.encode("SETMAP", stream=S - 1, dir=1),
    ]
    good_vxm = alu("ADD")
    for slice_name, good, bad in (("VXM", good_vxm, vxm_bad),
                                  ("SXM_E", spec.encode("SHIFT", stream=0, dir=0, arg=1, dst=0, ddir=1,
                                                        width=1, count=1), sxm_bad)):
        for word in bad:
            with_check = True
            try:
                spec.check(word, cfg.slice_named(slice_name).kind, cfg)
                with_check = False
            except spec.IllegalInstruction as e:
                assert e.code == spec.ErrorCode.BAD_FIELD, (hex(word), e)
            assert with_check, f"{word:#x} should be illegal on {slice_name}"
            p = Program.empty(cfg)
            p.add(slice_name, [spec.encode("NOP", cycles=2), good, word, good])
            _, res, st, _ = await tb.run_and_compare(p)
            assert res.error == spec.ErrorCode.BAD_FIELD and st.error_code == spec.ErrorCode.BAD_FIELD
            assert res.error_position == cfg.slice_named(slice_name).position and res.error_pc == 2
            assert res.cycles == 4, res
    r = rng()
    for _ in range(8):
        p = Program.empty(cfg)
        for s in [x for x in cfg.floorplan if x.kind in (spec.SliceKind.VXM, spec.SliceKind.SXM)]:
            words = []
            while len(words) < 8:
                w = random_instruction_word(r, cfg, kind=s.kind)
                try:
                    _, ops = spec.check(w, s.kind, cfg)
                    if ops.get("cycles", 0) > 200 or ops.get("count", 0) > 200:
                        continue
                except spec.IllegalInstruction:
                    pass
                words.append(w)
            p.add(s.name, words)
        await tb.run_and_compare(p)
