"""Programs for systems of chips (isa/system.py): vectors read from SRAM on one chip, sent over a
link, received and written to SRAM on the other, at cycles worked out from isa/spec.py (each
chip's spec.timing) and isa/link.py. `transfer` places one such transfer; `random_transfers`
chains many over every link of a system, in both directions, for the scoreboard
(verif/tb_system.py) to compare with sim/system.py.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from isa import spec
from isa.config import SliceKind
from isa.link import LinkFormat, waiting
from isa.system import System
from isa.timed import ScheduleError, TimedProgram


@dataclass
class Transfer:
    """`count` vectors from (src chip, MEM slice, addr) to (dst chip, MEM slice, addr)."""
    src: int
    src_mem: str
    src_addr: int
    dst: int
    dst_mem: str
    dst_addr: int
    count: int


def _direction_towards(cfg, frm: str, to: str) -> int:
    """The stream direction that carries a value from slice `frm` to slice `to` (0 east, 1 west)."""
    return int(cfg.slice_named(to).position < cfg.slice_named(frm).position)


def transfer(system: System, tps: list[TimedProgram], link_index: int, forward: bool, t_send: int, count: int,
             src_mem: str, src_addr: int, dst_mem: str, dst_addr: int, streams: tuple[int, int] = (0, 0),
             slack: int = 0, lat: int | None = None, ledger: dict | None = None) -> tuple[Transfer, int, int]:
    """Place one transfer over link `link_index` (forward: from its `a` end to `b`) with its SEND issued
    on t_send, on stream streams[0] from the source MEM slice to the link and streams[1] from the link
    to the destination. Returns (the transfer, the cycle its READ issues, the cycle after its last
    write lands). Raises ScheduleError, placing nothing, if a queue or engine is taken, or if
    `ledger` ({receiving end: (link times, take cycles)} of what is placed) says the receiver's
    buffer could overflow."""
    lk = system.links[link_index]
    src, dst = (lk.a, lk.b) if forward else (lk.b, lk.a)
    scfg, dcfg = system.config(src.chip), system.config(dst.chip)
    Ts, Td = spec.timing(scfg), spec.timing(dcfg)      # the sender's and the receiver's latencies
    F = LinkFormat.of(scfg).flits
    s_out, s_in = streams
    # sender: READ drives so that SEND samples vector k on t_send + 1 + k
    d_out = _direction_towards(scfg, src_mem, src.link)
    dist = abs(scfg.slice_named(src.link).position - scfg.slice_named(src_mem).position)
    t_read = t_send + Ts["c2c_send_sample"] - Ts["mem_read_drive"] - dist
    # receiver: element k takes on t_recv + 1 + k, at least latency after tau_k = t_send + 1 + k*F
    L = lat if lat is not None else lk.latency
    t_recv = t_send + Ts["c2c_send_sample"] + L - Td["c2c_recv_take"] + max(0, (count - 1) * (F - 1)) + slack
    d_in = _direction_towards(dcfg, dst.link, dst_mem)
    dist2 = abs(dcfg.slice_named(dst.link).position - dcfg.slice_named(dst_mem).position)
    t_write = t_recv + Td["c2c_recv_drive"] + dist2 - Td["mem_write_sample"]
    if ledger is not None:                # the receive buffer must hold what waits (isa/link.py waiting)
        taus, takes = ledger.setdefault((dst.chip, dst.link), ([], []))
        new_taus = [t_send + Ts["c2c_send_sample"] + k * F for k in range(count)]
        new_takes = [t_recv + Td["c2c_recv_take"] + k for k in range(count)]
        if waiting(taus + new_taus, takes + new_takes, dcfg)[0] > dcfg.c2c_depth:
            raise ScheduleError(f"{dst}: the receive buffer would overflow")
    trial = [copy.deepcopy(tps[src.chip]), copy.deepcopy(tps[dst.chip]) if dst.chip != src.chip else None]
    ts, td = trial[0], trial[1] or trial[0]
    ts.at(src_mem, t_read, "READ", stream=s_out, dir=d_out, addr=src_addr, stride=1, count=count)
    ts.at(src.link, t_send, "SEND", stream=s_out, dir=d_out, count=count)
    td.at(dst.link, t_recv, "RECV", stream=s_in, dir=d_in, lat=L, count=count)
    td.at(dst_mem, t_write, "WRITE", stream=s_in, dir=d_in, addr=dst_addr, stride=1, count=count)
    for tp in (ts, td):                   # every engine free: the queues' streams must still build
        tp.streams()
    tps[src.chip] = ts
    tps[dst.chip] = td
    if ledger is not None:
        taus += new_taus
        takes += new_takes
    return (Transfer(src.chip, src_mem, src_addr, dst.chip, dst_mem, dst_addr, count), t_read,
            t_write + Td["mem_write_commit"] + count)


def random_transfers(system: System, rng: np.random.Generator, min_cycles: int = 2000,
                     max_count: int | None = None, seed_words: int = 256) -> tuple[list, list[Transfer]]:
    """Transfers over every link in both directions until min_cycles, each on a random stream pair
    (sending paths on the lower half of the streams, receiving paths on the upper, so that a chip's
    outgoing and incoming vectors never meet), and half of them forwarding what an earlier transfer
    delivered, so data travels around a ring. Returns (programs, transfers)."""
    tps = [TimedProgram(system.config(i)) for i in range(len(system.chips))]
    cfg0 = system.config(0)
    F = LinkFormat.of(cfg0).flits
    depth, S = cfg0.c2c_depth, cfg0.streams
    for i, tp in enumerate(tps):          # seed data: every MEM slice holds random words at 0..255
        for s in system.config(i).slices_of(SliceKind.MEM):
            tp.load(s.name, 0, rng.integers(0, 256, (seed_words, system.config(i).lanes), dtype=np.uint8))
    mems = [s.name for s in cfg0.slices_of(SliceKind.MEM)]
    next_addr: dict = {}                  # (chip, mem) -> next free destination address
    delivered: list = []                  # (chip, mem, addr, count, cycle it is all stored)
    transfers = []
    ledger: dict = {}
    t = 8
    while t < min_cycles:
        for k, lk in enumerate(system.links):
            for forward in (True, False):
                src, dst = (lk.a, lk.b) if forward else (lk.b, lk.a)
                count = int(rng.integers(1, (max_count or depth) + 1))
                dm = mems[int(rng.integers(len(mems)))]
                da = next_addr.get((dst.chip, dm), seed_words)
                if da + count > cfg0.mem_words:
                    continue
                sm, sa = mems[int(rng.integers(len(mems)))], int(rng.integers(0, seed_words - count + 1))
                ready = [d for d in delivered if d[0] == src.chip and d[3] >= count and d[4] < t - 16]
                if ready and rng.random() < 0.5:
                    _, sm, sa, _, _ = ready[int(rng.integers(len(ready)))]
                streams = (int(rng.integers(S // 2)), int(rng.integers(S // 2, S)))
                try:
                    tr, _, done = transfer(system, tps, k, forward, t + int(rng.integers(0, F)), count, sm, sa, dm,
                                           da, streams=streams, slack=int(rng.integers(0, 4)), ledger=ledger)
                except ScheduleError:
                    continue
                next_addr[(dst.chip, dm)] = da + count
                delivered.append((dst.chip, dm, da, count, done))
                transfers.append(tr)
        t += depth * F + F
    return [tp.program() for tp in tps], transfers


def stream_chunk(config, latency: int) -> int:
    """The most vectors per SEND / RECV pair of a stream sent back to back over a link of `latency`
    whose receive buffer holds all that waits (isa/link.py `waiting`, over a few chunks)."""
    F, T = LinkFormat.of(config).flits, spec.timing(config)
    for n in range(config.c2c_depth, 0, -1):
        taus, takes = [], []
        for j in range(4):
            t_send = j * n * F
            taus += [t_send + T["c2c_send_sample"] + k * F for k in range(n)]
            t_recv = t_send + T["c2c_send_sample"] + latency - T["c2c_recv_take"] + (n - 1) * (F - 1)
            takes += [t_recv + T["c2c_recv_take"] + k for k in range(n)]
        if waiting(taus, takes, config)[0] <= config.c2c_depth:
            return n
    raise ScheduleError(f"latency {latency}: even one vector at a time overflows the receive buffer")


def ring_stream(system: System, vectors: int, rng: np.random.Generator | None = None) -> tuple[list, dict]:
    """A long streaming transfer along a chain of chips (`system`'s links in order, forward): chip 0
    reads `vectors` vectors from MEM_E1 and sends them in chunks (`stream_chunk`), back to back; every
    middle chip relays each chunk straight from its RECV to its SEND (the vectors cross the chip on a
    stream, never touching SRAM); the last chip writes them to MEM_W1. Returns (programs, figures):
    figures has the link time span and utilization of the busiest link."""
    cfg = system.config(0)
    F, depth = LinkFormat.of(cfg).flits, cfg.c2c_depth
    hops = [system.links[k] for k in range(len(system.links))]
    chain = [hops[0].a.chip] + [lk.b.chip for lk in hops]
    if len(set(chain)) != len(chain):
        chain, hops = chain[:-1], hops[:-1]            # a ring: stop before coming back to chip 0
    tps = [TimedProgram(system.config(i)) for i in range(len(system.chips))]
    Tc = [spec.timing(system.config(i)) for i in range(len(system.chips))]     # each chip's latencies
    rng = rng or np.random.default_rng(0)
    data = rng.integers(0, 256, (vectors, cfg.lanes), dtype=np.uint8)
    tps[chain[0]].load("MEM_E1", 0, data)
    t0 = 8
    n = stream_chunk(cfg, max(lk.latency for lk in hops))
    chunks = [(j * n, min(n, vectors - j * n)) for j in range(-(-vectors // n))]
    first_tau, last_tau = None, 0
    for j, (base, n) in enumerate(chunks):
        t_send = t0 + j * n * F
        lk0 = hops[0]
        src = cfg.slice_named("MEM_E1").position
        out = cfg.slice_named(lk0.a.link).position
        T0 = Tc[chain[0]]
        tps[chain[0]].at("MEM_E1", t_send + T0["c2c_send_sample"] - T0["mem_read_drive"] - (out - src), "READ",
                         stream=0, dir=0, addr=base, stride=1, count=n)
        tps[chain[0]].at(lk0.a.link, t_send, "SEND", stream=0, dir=0, count=n)
        first_tau = t_send + 1 if first_tau is None else first_tau
        for h, lk in enumerate(hops):
            last_tau = max(last_tau, t_send + 1 + (n - 1) * F)
            Ta, Tb = Tc[lk.a.chip], Tc[lk.b.chip]
            t_recv = t_send + Ta["c2c_send_sample"] + lk.latency - Tb["c2c_recv_take"] + (n - 1) * (F - 1)
            rx = cfg.slice_named(lk.b.link).position
            tps[lk.b.chip].at(lk.b.link, t_recv, "RECV", stream=0, dir=0, lat=lk.latency, count=n)
            if h + 1 < len(hops):                       # relay: the RECV's vectors reach the next SEND
                nxt = hops[h + 1]
                tx = cfg.slice_named(nxt.a.link).position
                t_send = t_recv + Tb["c2c_recv_drive"] + (tx - rx) - Tb["c2c_send_sample"]
                tps[nxt.a.chip].at(nxt.a.link, t_send, "SEND", stream=0, dir=0, count=n)
            else:
                dst = cfg.slice_named("MEM_W1").position
                tps[lk.b.chip].at("MEM_W1", t_recv + Tb["c2c_recv_drive"] + (dst - rx) - Tb["mem_write_sample"],
                                  "WRITE", stream=0, dir=0, addr=base, stride=1, count=n)
    span = chunks[-1][0] * F + chunks[-1][1] * F        # link cycles of the first hop
    return [tp.program() for tp in tps], {"data": data, "chain": chain, "link_busy_cycles": vectors * F,
                                          "link_span_cycles": span, "utilization": vectors * F / span}


def synced(phases: list[list]) -> list:
    """One program per chip that runs `phases` (each a list of programs, one per chip, timed from
    cycle 0) one after the other, each behind a SYNC in every queue that has words in any phase:
    the system's barrier puts every phase on a common start, whenever the host started each chip.
    SRAM preloads are the union of the phases'; a phase must not send across its own end."""
    out = []
    sync = spec.encode("SYNC")
    for chip in range(len(phases[0])):
        progs = [ph[chip] for ph in phases]
        p = copy.deepcopy(progs[0])
        positions = sorted({pos for q in progs for pos, w in q.queues.items() if w})
        p.queues = {pos: [w for q in progs for w in [sync] + list(q.queues.get(pos, []))] for pos in positions}
        p.memory = [seg for q in progs for seg in q.memory]
        out.append(p)
    return out


def send_only(system: System, frames: int) -> tuple[list, dict]:
    """Programs in which chips send `frames` vectors each over a link towards a chip that runs
    nothing (so its buffer drops them, but its FEC still decodes and counts every frame): the
    double-bit campaigns land as many uncorrectable frames as they like without a RECV stopping a
    chip. Chip i sends on its first link whose other end is an idle chip, i taken in order, each
    chip either sending or idle. Returns (programs, {receiving (chip, link): frames})."""
    tps = [TimedProgram(system.config(i)) for i in range(len(system.chips))]
    role: dict[int, str] = {}
    counts = {}
    for lk in system.links:
        for src, dst in ((lk.a, lk.b), (lk.b, lk.a)):
            if role.get(src.chip, "send") == "send" and role.get(dst.chip, "idle") == "idle" and src.chip != dst.chip \
                    and (dst.chip, dst.link) not in counts and src.chip not in [c for c, _ in counts.values()]:
                role[src.chip], role[dst.chip] = "send", "idle"
                counts[(dst.chip, dst.link)] = (src.chip, src.link)
                break
    out = {}
    for (dchip, dlink), (schip, slink) in counts.items():
        cfg = system.config(schip)
        F, depth, T = LinkFormat.of(cfg).flits, cfg.c2c_depth, spec.timing(cfg)
        mem = cfg.slices_of(SliceKind.MEM)[-1].name
        d = _direction_towards(cfg, mem, slink)
        dist = abs(cfg.slice_named(slink).position - cfg.slice_named(mem).position)
        t, left = 8 + cfg.positions, frames
        while left:
            n = min(depth, left)
            tps[schip].at(mem, t + T["c2c_send_sample"] - T["mem_read_drive"] - dist, "READ", stream=0, dir=d,
                          addr=0, stride=1, count=n)
            tps[schip].at(slink, t, "SEND", stream=0, dir=d, count=n)
            t, left = t + n * F, left - n
        out[(dchip, dlink)] = frames
    return [tp.program() for tp in tps], out
