"""The RTL units against their configuration's latencies (`spec.timing(config)`, `ChipConfig.latency`).

A unit with a fixed pipeline refuses a configuration whose latencies it does not implement, in
one line naming the configuration; the MEM slice meets longer read-drive and write-commit
latencies with more stages, and under `amaranth.sim` its READ drives and its WRITE commits on
the cycles the configuration gives. Expectations come from `spec.timing(cfg)` and each unit's
NATURAL table, never from numbers written here.
"""
import dataclasses
import gc
import re
import warnings

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl import c2c, mem_slice, mxm, queue, sxm, vxm
from isa import spec
from isa.config import ChipConfig, SliceKind, get_config

TINY = get_config("tiny")
W = spec.WORD_BITS


def _with(**latency) -> ChipConfig:
    return dataclasses.replace(TINY, name="tiny_lat", latency=tuple(latency.items()))


def _quiet(unit):
    unit._MustUse__silence = True     # built to run its checks, never elaborated (hdl/test_build.py)
    return unit


def _refused(build, cfg, match):
    """build(cfg) raises NotImplementedError matching `match`. The half-built unit is collected
    here, quietly (Amaranth warns about an elaboratable that is never elaborated)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* created but never used")
        with pytest.raises(NotImplementedError, match=match):
            build(cfg)
        gc.collect()


UNITS = {  # name: (module with NATURAL, constructor, a latency the unit fixes, message start)
    "MemSlice": (mem_slice, mem_slice.MemSlice, "mem_read_access", "MEM RTL implements"),
    "MxmColumn": (mxm, mxm.MxmColumn, "mxm_sample", "hdl/mxm.py implements"),
    "MxmControl": (mxm, mxm.MxmControl, "mxm_accread_drive", "hdl/mxm.py implements"),
    "VxmLane": (vxm, vxm.VxmLane, "vxm_reg_write", "hdl/vxm.py implements"),
    "VxmControl": (vxm, vxm.VxmControl, "vxm_sample", "hdl/vxm.py implements"),
    "SxmSlice": (sxm, sxm.SxmSlice, "sxm_drive", "hdl/sxm.py implements"),
    "InstructionQueue": (queue, lambda c: queue.InstructionQueue(c, SliceKind.MEM), "ifetch_sample",
                         "queue RTL implements"),
    "C2cSlice": (c2c, c2c.C2cSlice, "c2c_recv_drive", "C2C RTL implements"),
}


@pytest.mark.parametrize("name", list(UNITS))
def test_unit_refuses_a_latency_it_does_not_implement(name):
    module, build, key, start = UNITS[name]
    _quiet(build(TINY))                               # the base table: what every unit implements
    natural = module.NATURAL[key]
    assert spec.timing(TINY)[key] == natural
    _refused(build, _with(**{key: natural + 1}),
             rf"^{re.escape(start)} {key} = {natural}[,;] config 'tiny_lat' says {natural + 1}$")


@pytest.mark.parametrize("module,build,key,most", [(mxm, mxm.MxmColumn, "mxm_acc_write", 2),
                                                   (mxm, mxm.MxmControl, "mxm_acc_write", 2),
                                                   (vxm, vxm.VxmLane, "vxm_drive", 1), (vxm, vxm.VxmControl, "vxm_drive", 1)])
def test_extra_stages_up_to_what_is_built(module, build, key, most):
    """The MXM and VXM can register their DSP products (`product_stage`: one cycle more than
    NATURAL) and the MXM its columns' sums beside the accumulators (`landing_stage`: two more);
    one cycle beyond is refused naming what it implements."""
    natural = module.NATURAL[key]
    one_more = _with(**{key: natural + 1})
    assert module.product_stage(one_more) == 1 and module.product_stage(TINY) == 0
    if most == 2:
        two_more = _with(**{key: natural + 2})
        assert module.product_stage(two_more) == 1 and module.landing_stage(two_more) == 1
        assert module.landing_stage(one_more) == 0 and module.landing_stage(TINY) == 0
        _quiet(build(two_more))
    _quiet(build(one_more))
    also = f"or {natural + 1}" if most == 1 else f"to {natural + most}"
    _refused(build, _with(**{key: natural + most + 1}), rf"^{re.escape(module.__name__.replace('.', '/'))}.py implements "
             rf"{key} = {natural} {also}; config 'tiny_lat' says {natural + most + 1}$")


def test_superlane_refuses_a_longer_hop():
    _quiet(mem_slice.MemSuperlane(TINY))
    hop = spec.timing(TINY)["stream_hop"]
    _refused(mem_slice.MemSuperlane, _with(stream_hop=hop + 1), rf"^the stream fabric implements stream_hop = {hop}$")


@pytest.mark.parametrize("key", ["mem_read_drive", "mem_write_commit"])
def test_mem_slice_cannot_go_below_its_pipeline(key):
    n = mem_slice.NATURAL[key]
    _refused(mem_slice.MemSlice, _with(**{key: n - 1}),
             rf"^MEM RTL cannot meet {key} = {n - 1} of config 'tiny_lat' \(minimum {n}\)$")


def _mem_run(cfg, program, preload, tap, cycles):
    """Run a MEM slice: SRAM word preload {addr: word} and the queue loaded while idle, then
    `running` for `cycles` cycles with `tap(t)` as the write engine's stream value. Returns per
    cycle (drive_e_en, drive_data)."""
    dut = mem_slice.MemSlice(cfg)
    fw = cfg.fetch_words
    trace = []

    async def bench(ctx):
        for addr, word in preload.items():
            ctx.set(dut.host_m_addr, addr)
            ctx.set(dut.host_m_data, word)
            ctx.set(dut.host_m_we, 1)
            await ctx.tick()
        ctx.set(dut.host_m_we, 0)
        words = program + [0] * (-len(program) % fw)
        for row in range(len(words) // fw):
            ctx.set(dut.host_q_addr, row)
            ctx.set(dut.host_q_data, sum(w << (W * j) for j, w in enumerate(words[row * fw:(row + 1) * fw])))
            ctx.set(dut.host_q_we, (1 << fw) - 1)
            await ctx.tick()
        ctx.set(dut.host_q_we, 0)
        ctx.set(dut.host_q_len, len(program))
        ctx.set(dut.host_q_len_we, 1)
        await ctx.tick()
        ctx.set(dut.host_q_len_we, 0)
        await ctx.tick()
        ctx.set(dut.running, 1)
        for t in range(cycles):
            ctx.set(dut.tap, tap(t))
            assert not ctx.get(dut.err), f"cycle {t}: err (code {ctx.get(dut.err_code)})"
            trace.append((ctx.get(dut.drive_e_en), ctx.get(dut.drive_data)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


@pytest.mark.parametrize("extra_check, extra_drive, extra_commit", [(0, 0, 0), (0, 2, 0), (0, 0, 1), (1, 1, 0), (1, 2, 1)])
def test_mem_slice_follows_the_configuration(extra_check, extra_drive, extra_commit):
    """WRITE of `new` to address a on cycle 0; READ of a, stride 0, n elements on cycle 1. Element k
    is read on 1 + mem_read_access + k, sees `new` if that is after the commit cycle (WRITE on 0:
    the end of mem_write_commit), and is driven on 1 + mem_read_drive + k (a later ECC check,
    mem_read_check, registers the SRAM's word first)."""
    base = spec.timing(TINY)
    cfg = TINY if not (extra_check or extra_drive or extra_commit) else _with(
        mem_read_check=base["mem_read_check"] + extra_check,
        mem_read_drive=base["mem_read_drive"] + extra_drive, mem_write_commit=base["mem_write_commit"] + extra_commit)
    T = spec.timing(cfg)
    rng = np.random.default_rng(extra_check * 100 + extra_drive * 10 + extra_commit)
    old, new, junk = (int.from_bytes(rng.bytes(cfg.lanes), "little") for _ in range(3))
    a, s, n = 0x33, 2, 6
    program = [spec.encode("WRITE", stream=0, dir=0, addr=a, stride=1, count=1),
               spec.encode("READ", stream=s, dir=0, addr=a, stride=0, count=n)]
    sample = T["mem_write_sample"]                 # the WRITE (issued on 0) samples its stream then
    cycles = 1 + T["mem_read_drive"] + n + 2
    trace = _mem_run(cfg, program, {a: old}, lambda t: new if t == sample else junk, cycles)
    drives = {1 + T["mem_read_drive"] + k: (new if 1 + T["mem_read_access"] + k > T["mem_write_commit"] else old)
              for k in range(n)}
    assert old in drives.values() and new in drives.values()     # the commit falls inside the READ
    for t, (en, data) in enumerate(trace):
        if t in drives:
            assert en == 1 << s and data == drives[t], f"cycle {t}: en {en:#x}, data {data:#x}"
        else:
            assert en == 0, f"cycle {t}: drives {en:#x}, expected nothing"


def test_mem_slice_checks_one_cycle_later_at_most():
    """mem_read_check may be one above NATURAL (a register before the ECC check), not two; the
    drive then comes at least a cycle after the check."""
    n = mem_slice.NATURAL["mem_read_check"]
    _refused(mem_slice.MemSlice, _with(mem_read_check=n + 2, mem_read_drive=n + 3),
             rf"^MEM RTL implements mem_read_check = {n} or {n + 1}, config 'tiny_lat' says {n + 2}$")
    drive = spec.timing(TINY)["mem_read_drive"]
    assert drive == n + 1
    _refused(mem_slice.MemSlice, _with(mem_read_check=n + 1),
             rf"^MEM RTL cannot meet mem_read_drive = {drive} of config 'tiny_lat' \(minimum {n + 2}\)$")


def test_queue_decode_stage_takes_one_cycle_more_not_two():
    """A queue can register a written row's decode before the ring (`decode_stage`): ifetch_write
    one above NATURAL is built; a host row then also takes a second register on its way in
    (`host_stages`), so the host port delays START by two more cycles."""
    n = queue.NATURAL["ifetch_write"]
    one_more = _with(ifetch_write=n + 1)
    assert queue.decode_stage(one_more) == 1 and queue.decode_stage(TINY) == 0
    assert queue.host_stages(one_more) == queue.host_stages(TINY) + 1
    assert queue.host_load_cycles(one_more) == queue.host_load_cycles(TINY) + 2
    _quiet(queue.InstructionQueue(one_more, SliceKind.MEM))
    _refused(lambda c: queue.InstructionQueue(c, SliceKind.MEM), _with(ifetch_write=n + 2),
             rf"^queue RTL implements ifetch_write = {n} or {n + 1}, config 'tiny_lat' says {n + 2}$")
