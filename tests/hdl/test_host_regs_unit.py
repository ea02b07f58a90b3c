"""Register fields as data (`isa/hostmap.py` FIELDS, pack / unpack / layout) and the host register
file (`hdl/host_regs.py`, `HostRegs`) under `amaranth.sim`.

The field table is the one source of the register layouts: the RTL builds its StructLayouts from
`layout()`, the driver, the native runner and the golden model pack and unpack with it, and the
register docs in docs/ISA.md name the same bits. The bench reads the constant registers and
STATUS through HostRegs' own AXI4-Lite port and checks them against `pack`.
"""
import re

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator

from hdl.host_regs import HostRegs, reg_layout
from isa import hostmap as hm
from isa import spec
from isa.config import get_config

CFG = get_config("tiny")


@pytest.mark.parametrize("reg", list(hm.FIELDS))
def test_layout_matches_fields(reg):
    """layout() covers all 32 bits in order, and the StructLayout puts every field at its lsb."""
    lay = hm.layout(reg)
    assert sum(w for _, w in lay) == hm.DATA_BITS
    struct = reg_layout(reg)
    for f in hm.FIELDS[reg]:
        assert struct[f.name].offset == f.lsb and Shape.cast(struct[f.name].shape).width == f.width


@pytest.mark.parametrize("reg", list(hm.FIELDS))
def test_pack_unpack_round_trip(reg):
    fields = hm.FIELDS[reg]
    values = {f.name: (0x5A5A5A5A >> i) & ((1 << f.width) - 1) for i, f in enumerate(fields)}
    word = hm.pack(reg, **values)
    assert hm.unpack(reg, word) == values
    assert word < 1 << hm.DATA_BITS
    mask = sum(((1 << f.width) - 1) << f.lsb for f in fields)
    assert hm.unpack(reg, word | ~mask & 0xFFFFFFFF) == values       # reserved bits are ignored


def test_pack_refuses():
    with pytest.raises(KeyError):
        hm.pack("STATUS", runing=1)
    with pytest.raises(ValueError):
        hm.pack("ERROR_INFO", code=16)


def test_derived_constants():
    assert hm.STATUS_HOST_ERR == 1 << hm.fields("STATUS")["host_err"].lsb
    assert hm.MCMD_READ_STREAM == 1 << hm.fields("M_CMD")["read_stream"].lsb
    assert hm.pack("ERROR_INFO", code=3, position=5, pc=9) == 3 | 5 << 8 | 9 << 16


@pytest.mark.parametrize("reg", list(hm.FIELDS))
def test_register_doc_names_the_field_bits(reg):
    """The register's doc string (docs/ISA.md) names exactly the bits of its fields."""
    doc = hm.BY_NAME[reg].doc
    named = {(int(a), int(a)) if a else (int(b), int(c)) for a, b, c in re.findall(r"bit(\d+)|\[(\d+):(\d+)\]", doc)}
    want = {(f.lsb + f.width - 1, f.lsb) for f in hm.FIELDS[reg]}
    assert named == want, f"{reg}: doc names bits {sorted(named)}, fields are {sorted(want)}"


def test_host_regs_reads():
    """ID, CONFIG0, CONFIG1 and STATUS through HostRegs' AXI4-Lite port, against pack()."""
    dut = HostRegs(CFG)
    bus = dut.bus
    got = {}

    async def read(ctx, name):
        ctx.set(bus.s_axil_araddr, hm.addr(name))
        ctx.set(bus.s_axil_arvalid, 1)
        ctx.set(bus.s_axil_rready, 1)
        await ctx.tick()
        ctx.set(bus.s_axil_arvalid, 0)
        while not ctx.get(bus.s_axil_rvalid):
            await ctx.tick()
        value = ctx.get(bus.s_axil_rdata)
        await ctx.tick()
        return value

    async def bench(ctx):
        for name in ("ID", "CONFIG0", "CONFIG1", "STATUS"):
            got[name] = await read(ctx, name)
        ctx.set(dut.status.running, 1)
        ctx.set(dut.status.error, 1)
        got["STATUS running"] = await read(ctx, "STATUS")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    config = hm.config_fields(CFG)
    assert got["ID"] == hm.id_value(spec.ISA_VERSION)
    assert got["CONFIG0"] == hm.pack("CONFIG0", **config["CONFIG0"])
    assert got["CONFIG1"] == hm.pack("CONFIG1", **config["CONFIG1"])
    assert got["STATUS"] == 0
    assert hm.unpack("STATUS", got["STATUS running"]) == dict.fromkeys(hm.fields("STATUS"), 0) | {
        "running": 1, "error": 1}
