"""The system golden model with a worker per chip (sim/scaleout.py) against the single-process one
(sim/system.py): the same cycles, errors, link counters and SRAM, bit for bit, on the system
scenarios of tests/sim/test_system.py and on random transfers, in this process and on Dask."""
import numpy as np
import pytest

from isa import spec
from isa.config import SliceKind, get_config
from isa.link import LinkFormat
from isa.system import SystemSpecError, get_system
from isa.timed import TimedProgram
from sim.scaleout import run_scaled
from sim.system import SystemGolden, random_faults
from verif.c2c_stimulus import random_transfers, ring_stream, synced, transfer

PAIR, RING4 = get_system("pair"), get_system("ring4")
CFG = get_config("tiny")
E = spec.ErrorCode
SYNC = spec.encode("SYNC")


def nop(n):
    return spec.encode("NOP", cycles=n)


def _every_word(system):
    return [(i, s.position, 0, system.config(i).mem_words)
            for i in range(len(system.chips)) for s in system.config(i).slices_of(SliceKind.MEM)]


def same_as_one_process(system, programs, workers=0, faults=None, scheduler=None, **kw):
    """Run both ways; assert equal results and SRAM; return the scaled run's (result, stats)."""
    gold = SystemGolden(system, programs, faults, **kw)
    want = gold.run()
    dumps = _every_word(system)
    got, words, stats = run_scaled(system, programs, dumps, workers=workers, scheduler=scheduler, faults=faults, **kw)
    assert got.chips == want.chips
    for c, pos, addr, n in dumps:
        assert np.array_equal(words[(c, pos, addr, n)], gold.chips[c].read_words(pos, addr, n)), (c, pos)
    return got, stats


def _pair_transfer(count=4, slack=0, t_send=8):
    tps = [TimedProgram(CFG), TimedProgram(CFG)]
    tps[0].load("MEM_E1", 0, np.arange(count * CFG.lanes, dtype=np.uint8).reshape(count, CFG.lanes))
    transfer(PAIR, tps, 0, True, t_send, count, "MEM_E1", 0, "MEM_W1", 100, slack=slack)
    return tps


def _with_queues(queues: dict):
    p = TimedProgram(CFG).program()
    p.queues = {CFG.slice_named(n).position: list(ws) for n, ws in queues.items()}
    return p


def test_a_transfer_and_a_recv_one_cycle_early():
    got, _ = same_as_one_process(PAIR, [tp.program() for tp in _pair_transfer()])
    assert [c.error for c in got.chips] == [E.NONE, E.NONE]
    got, _ = same_as_one_process(PAIR, [tp.program() for tp in _pair_transfer(slack=-1)])
    assert got.chips[1].error == E.LINK_RECV


def test_a_stopped_sender():
    tps = _pair_transfer(count=8)
    p0 = tps[0].program()
    p0.queues[CFG.slice_named("VXM").position] = [0xFF]
    got, _ = same_as_one_process(PAIR, [p0, tps[1].program()])
    assert got.chips[0].error == E.ILLEGAL_OPCODE and got.chips[1].error == E.LINK_RECV


def test_faults_on_arriving_frames():
    progs = [tp.program() for tp in _pair_transfer(count=4)]
    got, _ = same_as_one_process(PAIR, progs, faults={(1, "C2C_W0"): {0: [(1, 5)], 2: [(1, 9), (1, 10)]}})
    assert got.chips[1].error == E.LINK_FEC and got.chips[1].links["C2C_W0"] == (1, 1)


def test_a_link_that_did_not_train():
    got, _ = same_as_one_process(PAIR, [tp.program() for tp in _pair_transfer()], down={0})
    assert got.chips[0].error == E.LINK_DOWN


@pytest.mark.parametrize("name,seed", [("pair", 1), ("pair", 2), ("ring4", 3), ("ring4", 4)])
def test_random_transfers(name, seed):
    sysm = get_system(name)
    progs, _ = random_transfers(sysm, np.random.default_rng(seed), min_cycles=1200)
    got, stats = same_as_one_process(sysm, progs)
    assert all(c.error == E.NONE for c in got.chips) and stats.rounds > 2


def test_random_transfers_with_seeded_faults():
    progs, _ = random_transfers(RING4, np.random.default_rng(7), min_cycles=800)
    ends = {(lk.b.chip, lk.b.link): 12 for lk in RING4.links}
    faults = random_faults(RING4, {e: 4 for e in ends}, seed=7, frames=ends)
    same_as_one_process(RING4, progs, faults=faults)


def test_relays_through_the_middle_chips():
    progs, _ = ring_stream(RING4, 64)
    same_as_one_process(RING4, progs)


def test_syncs_release_and_time_out_as_in_one_process():
    p0 = _with_queues({"VXM": [SYNC, nop(1)]})
    p1 = _with_queues({"VXM": [nop(10), SYNC, nop(1)], "MEM_W0": [SYNC]})
    got, _ = same_as_one_process(PAIR, [p0, p1])
    assert got.chips[0].cycles == 11 + spec.sync_release(CFG) + 1
    p0 = _with_queues({"VXM": [SYNC, nop(1)], "MEM_E1": [nop(3), SYNC]})
    got, _ = same_as_one_process(PAIR, [p0, _with_queues({"VXM": [nop(5)]})])
    assert got.chips[0].error == E.SYNC_TIMEOUT


def test_synced_phases_of_transfers():
    rng = np.random.default_rng(5)
    p1, _ = random_transfers(RING4, rng, min_cycles=300)
    p2, _ = random_transfers(RING4, rng, min_cycles=300)
    for p in p2:
        p.memory = []
    got, stats = same_as_one_process(RING4, synced([p1, p2]))
    assert all(c.error == E.NONE for c in got.chips)


def test_an_overfull_receive_buffer_is_refused_by_the_worker():
    F = LinkFormat.of(CFG).flits
    lat = PAIR.links[0].latency
    tps = [TimedProgram(CFG), TimedProgram(CFG)]
    tps[0].at("C2C_E0", 10, "SEND", stream=0, dir=0, count=16)
    tps[0].at("C2C_E0", 10 + 16 * F, "SEND", stream=0, dir=0, count=1)
    tps[1].at("C2C_W0", 10 + 1 + 16 * F + lat, "RECV", stream=0, dir=0, lat=lat, count=16)
    tps[1].at("C2C_W0", 10 + 1 + 16 * F + lat + 16, "RECV", stream=0, dir=0, lat=lat, count=1)
    with pytest.raises(SystemSpecError, match=r"chip1\.C2C_W0: 17 vectors wait in the receive buffer"):
        run_scaled(PAIR, [tp.program() for tp in tps])


def test_an_idle_link_lets_the_chips_run_past_its_latency():
    """The lookahead (ChipWorker._next_sample): a transfer, then a long quiet stretch, then another;
    the rounds are far fewer than the cycles over the link latency."""
    tps = [TimedProgram(CFG), TimedProgram(CFG)]
    tps[0].load("MEM_E1", 0, np.ones((8, CFG.lanes), np.uint8))
    transfer(PAIR, tps, 0, True, 8, 4, "MEM_E1", 0, "MEM_W1", 100)
    transfer(PAIR, tps, 0, True, 5000, 4, "MEM_E1", 4, "MEM_W1", 104)
    got, stats = same_as_one_process(PAIR, [tp.program() for tp in tps])
    assert got.cycles > 5000 and stats.rounds < 10


@pytest.mark.xdist_group("dask")
def test_dask_workers_give_the_single_process_run():
    """Two Dask worker processes (a local cluster): the same results as one process."""
    progs, _ = random_transfers(RING4, np.random.default_rng(11), min_cycles=600)
    got, stats = same_as_one_process(RING4, progs, workers=2)
    assert stats.workers == 2 and all(c.error == E.NONE for c in got.chips)


@pytest.mark.xdist_group("dask")
def test_a_running_cluster_by_address():
    """--scheduler ADDRESS: the chips' workers on a cluster started elsewhere."""
    import logging

    from distributed import LocalCluster
    progs, _ = random_transfers(PAIR, np.random.default_rng(12), min_cycles=400)
    with LocalCluster(n_workers=2, processes=False, dashboard_address=":0", silence_logs=logging.ERROR) as cluster:
        got, stats = same_as_one_process(PAIR, progs, scheduler=cluster.scheduler_address)
    assert stats.workers == 2
