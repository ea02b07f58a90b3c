"""The golden system model (sim/system.py, sim/c2c.py): link times, RECV checks, stops, faults."""
import numpy as np
import pytest

from isa import spec
from isa.config import get_config
from isa.link import LinkFormat
from isa.system import SystemSpecError, get_system
from isa.timed import TimedProgram
from sim.golden import run as run_one
from sim.system import SystemGolden
from verif.c2c_stimulus import random_transfers, transfer

PAIR = get_system("pair")
CFG = get_config("tiny")
F = LinkFormat.of(CFG).flits
E = spec.ErrorCode


def _pair_transfer(count=4, slack=0, lat=None, t_send=8):
    tps = [TimedProgram(CFG), TimedProgram(CFG)]
    data = np.arange(count * CFG.lanes, dtype=np.uint8).reshape(count, CFG.lanes)
    tps[0].load("MEM_E1", 0, data)
    tr, t_read, done = transfer(PAIR, tps, 0, True, t_send, count, "MEM_E1", 0, "MEM_W1", 100, slack=slack, lat=lat)
    return tps, data


def test_vectors_arrive_in_order():
    tps, data = _pair_transfer()
    g = SystemGolden(PAIR, [tp.program() for tp in tps])
    r = g.run()
    assert [c.error for c in r.chips] == [E.NONE, E.NONE]
    pos = CFG.slice_named("MEM_W1").position
    assert np.array_equal(g.chips[1].memory(pos)[100:104], data)


def test_recv_one_cycle_early_stops_on_the_exact_cycle():
    """The last element of a RECV issued one cycle too early takes its vector at tau + L - 1."""
    tps, _ = _pair_transfer(count=4, slack=-1)
    r = SystemGolden(PAIR, [tp.program() for tp in tps]).run()
    lat = PAIR.links[0].latency
    t_send = 8
    tau_last = t_send + 1 + 3 * F
    assert r.chips[1].error == E.LINK_RECV
    assert r.chips[1].cycles == tau_last + lat - 1 + 1        # stops at the end of the failing take
    assert r.chips[1].error_position == CFG.slice_named("C2C_W0").position
    assert r.chips[0].error == E.NONE


def test_send_and_recv_on_an_unjoined_link_are_link_down():
    tp = TimedProgram(CFG)
    tp.at("C2C_W0", 3, "SEND", stream=0, dir=1, count=1)
    g, r = run_one(tp.program())
    assert (r.error, r.cycles, r.error_pc) == (E.LINK_DOWN, 4, 1)
    sysr = SystemGolden(PAIR, [tp.program(), TimedProgram(CFG).program()]).run()
    assert sysr.chips[0].error == E.LINK_DOWN                 # chip 0's west link is joined to nothing


def test_a_stopped_sender_sends_nothing_more():
    tps, _ = _pair_transfer(count=8)
    tps[0].at("VXM", 10, "NOP", cycles=1)
    p0 = tps[0].program()
    vxm = CFG.slice_named("VXM").position
    p0.queues[vxm] = [0xFF]                                    # illegal: chip 0 stops at the end of cycle 0
    r = SystemGolden(PAIR, [p0, tps[1].program()]).run()
    assert r.chips[0].error == E.ILLEGAL_OPCODE and r.chips[0].cycles == 1
    assert r.chips[1].error == E.LINK_RECV


def test_recv_lat_below_the_links_latency_is_refused():
    tps, _ = _pair_transfer(lat=PAIR.links[0].latency - 1)
    with pytest.raises(SystemSpecError, match=r"RECV lat=31 is below the latency of its link in system 'pair' \(32\)"):
        SystemGolden(PAIR, [tp.program() for tp in tps])


def test_faults_are_counted_and_a_bad_frame_stops_the_receiver():
    tps, _ = _pair_transfer(count=4)
    progs = [tp.program() for tp in tps]
    faults = {(1, "C2C_W0"): {0: [(1, 5)], 1: [(0, 3), (2, 70)], 2: [(1, 9), (1, 10)]}}
    r = SystemGolden(PAIR, progs, faults).run()
    assert r.chips[1].links["C2C_W0"] == (3, 1)
    assert r.chips[1].error == E.LINK_FEC
    clean = SystemGolden(PAIR, progs).run()
    single = {(1, "C2C_W0"): {0: [(1, 5)], 3: [(2, 0)]}}
    r1 = SystemGolden(PAIR, progs, single).run()
    assert [c.cycles for c in r1.chips] == [c.cycles for c in clean.chips] and r1.chips[1].error == E.NONE


@pytest.mark.parametrize("name", ["pair", "ring4"])
def test_random_transfers_deliver_every_vector(name):
    """verif/c2c_stimulus.py's chained transfers: the golden system delivers exactly the source words,
    forwarded around the system."""
    sysm = get_system(name)
    progs, trs = random_transfers(sysm, np.random.default_rng(3), min_cycles=1500)
    g = SystemGolden(sysm, progs)
    r = g.run()
    assert all(c.error == E.NONE for c in r.chips)
    mem = {}
    for i, p in enumerate(progs):
        for seg in p.memory:
            for k in range(len(seg.data)):
                mem[(i, seg.position, seg.addr + k)] = seg.data[k]
    forwarded = 0
    for tr in trs:
        sp, dp = CFG.slice_named(tr.src_mem).position, CFG.slice_named(tr.dst_mem).position
        forwarded += tr.src_addr >= 256
        for k in range(tr.count):
            mem[(tr.dst, dp, tr.dst_addr + k)] = src = mem[(tr.src, sp, tr.src_addr + k)]
            assert np.array_equal(g.chips[tr.dst].memory(dp)[tr.dst_addr + k], src)
    assert forwarded > 5 and min(c.cycles for c in r.chips) >= 1500


# ---- SYNC (sim/queue.py): one program time for the system ----------------------------------------
SYNC = spec.encode("SYNC")
P = spec.sync_release(CFG)


def _with_queues(queues: dict) -> "object":
    p = TimedProgram(CFG).program()
    p.queues = {CFG.slice_named(n).position: list(ws) for n, ws in queues.items()}
    return p


def test_sync_releases_every_chip_on_the_latest_quiet_cycle_plus_sync_release():
    """Chip 0 is quiet on 1 (SYNC on 0), chip 1 on 11 (a NOP of 10 first): both resume on 11 + P, and
    a NOP of 1 after it ends each chip on 11 + P + 1."""
    nop = lambda n: spec.encode("NOP", cycles=n)        # noqa: E731
    p0 = _with_queues({"VXM": [SYNC, nop(1)]})
    p1 = _with_queues({"VXM": [nop(10), SYNC, nop(1)], "MEM_W0": [SYNC]})
    r = SystemGolden(PAIR, [p0, p1]).run()
    assert [c.cycles for c in r.chips] == [11 + P + 1] * 2 and all(c.error == E.NONE for c in r.chips)


def test_a_sync_no_other_chip_reaches_times_out_naming_the_westmost_parked_queue():
    nop = lambda n: spec.encode("NOP", cycles=n)        # noqa: E731
    p0 = _with_queues({"VXM": [SYNC, nop(1)], "MEM_E1": [nop(3), SYNC]})
    p1 = _with_queues({"VXM": [nop(5)]})
    r = SystemGolden(PAIR, [p0, p1]).run()
    assert (r.chips[0].error, r.chips[0].cycles, r.chips[0].error_position, r.chips[0].error_pc) == \
        (E.SYNC_TIMEOUT, 5, CFG.slice_named("VXM").position, 0)
    assert r.chips[1].error == E.NONE and r.chips[1].cycles == 5


def test_a_chip_alone_releases_its_own_sync():
    g, r = run_one(_with_queues({"VXM": [SYNC, spec.encode("NOP", cycles=2)]}))
    assert (r.error, r.cycles) == (E.NONE, 1 + P + 2)


def test_synced_phases_give_the_results_of_the_phases_run_alone():
    """Two phases of random transfers behind SYNCs (verif/c2c_stimulus.py `synced`): the SRAM each
    chip ends with is what running the phases one after the other gives."""
    from verif.c2c_stimulus import synced
    rng = np.random.default_rng(5)
    p1, _ = random_transfers(PAIR, rng, min_cycles=300)
    p2, _ = random_transfers(PAIR, rng, min_cycles=300)
    for p in p2:
        p.memory = []
    both = SystemGolden(PAIR, synced([p1, p2]))
    r = both.run()
    assert all(c.error == E.NONE for c in r.chips)
    first = SystemGolden(PAIR, p1)
    first.run()
    second = SystemGolden(PAIR, p2, memories=[g.sram_state() for g in first.chips])
    second.run()
    for a, b in zip(both.chips, second.chips):
        for pos in a.mems:
            assert np.array_equal(a.memory(pos), b.memory(pos))


def test_a_schedule_that_could_overflow_the_receive_buffer_is_refused():
    """17 vectors sent back to back and taken all at once at the end: more than c2c_depth wait."""
    tps = [TimedProgram(CFG), TimedProgram(CFG)]
    lat = PAIR.links[0].latency
    tps[0].at("C2C_E0", 10, "SEND", stream=0, dir=0, count=16)
    tps[0].at("C2C_E0", 10 + 16 * F, "SEND", stream=0, dir=0, count=1)
    tps[1].at("C2C_W0", 10 + 1 + 16 * F + lat, "RECV", stream=0, dir=0, lat=lat, count=16)
    tps[1].at("C2C_W0", 10 + 1 + 16 * F + lat + 16, "RECV", stream=0, dir=0, lat=lat, count=1)
    with pytest.raises(SystemSpecError, match=r"chip1\.C2C_W0: 17 vectors wait in the receive buffer at cycle \d+, "
                                              r"more than it holds \(c2c_depth 16"):
        SystemGolden(PAIR, [tp.program() for tp in tps]).run()
