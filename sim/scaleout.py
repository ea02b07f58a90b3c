"""The golden model of a system with each chip in its own worker: conservative lockstep over the links.

Why it is exact: a vector a chip sends with link time tau may be taken by the other chip no
sooner than tau + L (L: the link's latency; every RECV's `lat` is at least L, sim/system.py
`check_recv_latency`). So a chip that knows everything its peers sampled before cycle X can
issue every event before X + L exactly as the single-process run does (sim/system.py): what it
takes or finds missing on those cycles is already decided. Each worker keeps its own chip's
issue loop (sim/queue.py `IssueLoop`) and its peers' sent vectors as they arrive; the
coordinator, here, runs rounds:

1. every chip that can advance runs the events before its horizon min over peers of X_peer + L
   (`ChipWorker.step`), settles its values up to there and returns the vectors it sampled before
   it (its new X); a chip that cannot send any more (done, stopped, or quiet at a SYNC) has
   X = infinity;
2. the coordinator forwards those vectors to the peers' workers with their next step;
3. SYNC groups whose chips are all quiet are released at T = max(q + sync_release), as
   sim/queue.py does, and their chips continue from T.

When no chip can advance, chips still held at a SYNC time out, and each worker settles its chip
(`finish`). Cycle counts, errors, link counters and SRAM are those of SystemGolden, bit for bit,
with any number of workers: the rounds are a barrier, so the order in which workers answer does
not matter.

The engine is Dask distributed (docs/DECISIONS.md): each `ChipWorker` is a Dask actor placed on
one worker process of a `LocalCluster` (or of a running cluster at `scheduler`); `workers=0`
keeps every chip in this process without Dask, the same protocol.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from isa.image import Program
from isa.system import System, SystemSpecError

from .golden import Golden, RunResult
from .queue import IssueLoop, release_cycle
from .system import SystemResult, check_buffer, check_programs, check_recv_latency, link_ends, sync_root


class _Arrived:
    """Vectors a peer sent, as they reach this worker: the stand-in for the peer's SendOp."""
    __slots__ = ("vals",)

    def __init__(self, vals: np.ndarray):
        self.vals = vals

    def need(self, a: int, b: int) -> None:
        pass                    # computed by the sender before it was exported


class ChipWorker:
    """One chip of a system: its golden model, its issue loop, its peers' vectors as they arrive."""

    def __init__(self, system: System, chip: int, program: Program, faults: dict | None = None,
                 memory: dict | None = None, down: frozenset = frozenset(), max_cycles: int = 1 << 32):
        self.system, self.chip = system, chip
        ends = link_ends(system, faults, down)
        check_recv_latency(system, chip, program, ends)
        own = {e.position: e for (c, _), e in ends.items() if c == chip}
        self.golden = Golden(program, memory, own)
        self.golden.sync_group = sync_root(system, chip)
        self.issuer = self.golden.issuer()
        self.loop = IssueLoop([self.issuer], max_cycles, releases=False)
        self.own = {e.name: e for e in own.values()}
        self.exported = {name: 0 for name in self.own}

    def _receive(self, inbox: dict) -> None:
        for name, (samples, taus, vals) in inbox.items():
            held = _Arrived(vals)
            self.own[name].peer.sent.extend((int(s), int(t), held, k) for k, (s, t) in enumerate(zip(samples, taus)))

    def _end(self) -> int | None:
        """The cycle from which this chip can neither send nor change anything (None: not known yet)."""
        r = self.issuer
        if r.t_err is not None:
            return r.t_stop + 1
        if self.loop.next_event() is not None:
            return None
        return r.idle_from()

    def step(self, inbox: dict, until: int | None, release: int | None = None) -> dict:
        """Take the peers' vectors in `inbox`, resume from a SYNC on `release`, issue the events
        before `until` (all if None), and return the vectors sampled before the cycle now settled."""
        t0 = time.perf_counter()
        self._receive(inbox)
        if release is not None:
            self.loop.release(0, release)
        self.loop.run(until)
        end = self._end()
        reach = end if until is None else until if end is None else min(until, end)
        self.golden.timeline.advance_to(reach)
        out = {}
        for name, e in self.own.items():
            k0 = k = self.exported[name]
            while k < len(e.sent) and e.sent[k][0] < reach:
                k += 1
            if k > k0:
                rows = []
                for _, _, op, j in e.sent[k0:k]:
                    op.need(j, j + 1)
                    rows.append(op.vals[j])
                out[name] = (np.array([v[0] for v in e.sent[k0:k]], np.int64),
                             np.array([v[1] for v in e.sent[k0:k]], np.int64), np.stack(rows))
                self.exported[name] = k
        ended = end is not None and reach >= end
        return {"out": out, "ended": ended, "horizon": None if ended else self._next_sample(reach),
                "quiet_at": self.issuer.quiet_at, "seconds": time.perf_counter() - t0}

    def _next_sample(self, reach: int) -> int | None:
        """The earliest cycle on which this chip could sample a vector not yet exported (None: not
        before a SYNC release, or never). A SEND not yet issued samples no sooner than c2c_send_sample
        after its queue's next issue; this lookahead lets the peers run past the next link latency
        while a link idles."""
        best = None
        css = self.issuer.T["c2c_send_sample"]
        for name, e in self.own.items():
            k = self.exported[name]
            q = self.golden.queues.get(e.position)
            if k < len(e.sent):
                at = e.sent[k][0]           # the SEND engine samples in issue order
            elif q is None or q.parked is not None:
                continue                    # (a parked queue waits for the coordinator's release)
            elif q.pc < len(q.words):
                at = max(reach, q.next_issue) + css
            elif q.fetch_until >= reach:    # words still to land
                at = reach + css
            else:
                continue
            best = at if best is None else min(best, at)
        return best

    def time_out(self) -> None:
        self.loop.time_out()

    def finish(self, inbox: dict, dumps: list) -> tuple[RunResult, dict, float]:
        """Settle the run; returns its result, the SRAM words of `dumps` [(position, addr, n)] and the
        seconds it took."""
        t0 = time.perf_counter()
        self._receive(inbox)
        outcome = self.issuer.outcome(self.loop.max_cycles)
        for e in self.own.values():
            check_buffer(self.system, e, outcome[0])
        res = self.golden.finish(*outcome)
        words = {(pos, addr, n): self.golden.read_words(pos, addr, n) for pos, addr, n in dumps}
        return res, words, time.perf_counter() - t0


@dataclass
class ScaleOutStats:
    """How a run went: rounds of the lockstep, wall time, and the part of it the chips computed.
    A worker process runs its chips' steps one after the other, so a round (and the final settling
    of every chip) lasts at least its busiest worker's time; the rest of the wall time is the
    exchange: messages, waiting, the coordinator."""
    workers: int
    rounds: int = 0
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0        # per round (and the finish) the busiest worker's step time, summed
    steps: int = 0                      # chip steps over all rounds

    def add_round(self, seconds: list[float], where: list[int]) -> None:
        """One round's step times, chip k's on worker where[k]."""
        per: dict[int, float] = {}
        for sec, w in zip(seconds, where):
            per[w] = per.get(w, 0.0) + sec
        self.compute_seconds += max(per.values(), default=0.0)

    @property
    def exchange_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.compute_seconds)

    def as_dict(self) -> dict:
        return {"workers": self.workers, "rounds": self.rounds, "steps": self.steps,
                "wall_seconds": round(self.wall_seconds, 3), "compute_seconds": round(self.compute_seconds, 3),
                "exchange_seconds": round(self.exchange_seconds, 3),
                "exchange_ms_per_round": round(1e3 * self.exchange_seconds / max(1, self.rounds), 3)}


class _Ready:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _InProcess:
    """A ChipWorker called like a Dask actor (each call returns something with .result())."""

    def __init__(self, worker: ChipWorker):
        self._w = worker

    def __getattr__(self, name):
        fn = getattr(self._w, name)
        return lambda *a, **k: _Ready(fn(*a, **k))


def run_scaled(system: System, programs: list[Program], dumps: list = (), workers: int = 0,
               scheduler: str | None = None, faults: dict | None = None, memories: list | None = None,
               down: frozenset = frozenset(), max_cycles: int = 1 << 32
               ) -> tuple[SystemResult, dict, ScaleOutStats]:
    """Run a system's programs with one ChipWorker per chip: in this process (workers=0), on a local
    Dask cluster of `workers` processes, or on the Dask cluster at `scheduler`. `dumps`: [(chip,
    position, addr, n)]. Returns (the SystemGolden result, {dump: words}, stats)."""
    check_programs(system, programs)
    memories = memories or [None] * len(programs)
    args = [(system, i, p, faults, memories[i], down, max_cycles) for i, p in enumerate(programs)]
    if workers == 0 and scheduler is None:
        handles = [_InProcess(ChipWorker(*a)) for a in args]
        return _coordinate(system, handles, [0] * len(handles), dumps, ScaleOutStats(0))
    with dask_client(workers, scheduler) as client:
        addrs = sorted(client.scheduler_info()["workers"])
        # contiguous blocks of chips per worker: neighbours in a chain or ring mostly share a process
        where = [i * len(addrs) // len(args) for i in range(len(args))]
        futures = [client.submit(ChipWorker, *a, workers=[addrs[w]], actor=True, pure=False)
                   for a, w in zip(args, where)]
        handles = [f.result() for f in futures]
        return _coordinate(system, handles, where, dumps, ScaleOutStats(len(addrs)))


def _coordinate(system: System, handles: list, where: list[int], dumps, stats: ScaleOutStats
                ) -> tuple[SystemResult, dict, ScaleOutStats]:
    """The rounds (module docstring); chip k's worker runs on worker process where[k]."""
    t_start = time.perf_counter()
    n = len(handles)
    near = [[] for _ in range(n)]       # per chip: (peer chip, latency)
    for lk in system.links:
        near[lk.a.chip].append((lk.b.chip, lk.latency))
        near[lk.b.chip].append((lk.a.chip, lk.latency))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(sync_root(system, i), []).append(i)
    horizon: list[int | None] = [0] * n     # X: every vector a chip samples before it is forwarded (None: all)
    ended = [False] * n                     # a chip that has nothing left to issue or send
    ran = [0] * n                           # every event before it is issued
    quiet: list[int | None] = [None] * n
    inbox: list[dict] = [{} for _ in range(n)]
    releases: dict[int, int] = {}
    while True:
        todo = []
        for i in range(n):
            if ended[i] and i not in releases:
                continue
            lim = min((horizon[j] + lat for j, lat in near[i] if horizon[j] is not None), default=None)
            if i in releases or lim is None or lim > ran[i]:
                todo.append((i, lim))
        if not todo:
            break
        calls = [handles[i].step(inbox[i], lim, releases.pop(i, None)) for i, lim in todo]
        for i, _ in todo:
            inbox[i] = {}
        stats.rounds += 1
        stats.steps += len(todo)
        seconds = []
        for (i, lim), call in zip(todo, calls):
            r = call.result()
            seconds.append(r["seconds"])
            ran[i] = lim if lim is not None else ran[i]
            horizon[i], quiet[i], ended[i] = r["horizon"], r["quiet_at"], r["ended"]
            for name, (s, t, v) in r["out"].items():
                end, _ = system.peer(i, name)
                j, there = end.chip, end.link
                if there in inbox[j]:
                    s0, t0, v0 = inbox[j][there]
                    s, t, v = np.concatenate([s0, s]), np.concatenate([t0, t]), np.concatenate([v0, v])
                inbox[j][there] = (s, t, v)
        stats.add_round(seconds, [where[i] for i, _ in todo])
        for members in groups.values():
            if all(quiet[c] is not None for c in members):
                t_rel = release_cycle([(quiet[c], system.config(c)) for c in members])
                for c in members:
                    releases[c], quiet[c], horizon[c], ran[c], ended[c] = t_rel, None, t_rel, t_rel, False
    for i in range(n):
        if quiet[i] is not None:
            handles[i].time_out().result()
    calls = [h.finish(inbox[i], [d[1:] for d in dumps if d[0] == i]) for i, h in enumerate(handles)]
    results, words, seconds = [], {}, []
    for i, call in enumerate(calls):
        res, got, sec = call.result()
        results.append(res)
        seconds.append(sec)
        words.update({(i, *k): w for k, w in got.items()})
    stats.add_round(seconds, where)
    stats.wall_seconds = time.perf_counter() - t_start
    return SystemResult(results), words, stats


@contextmanager
def dask_client(workers: int, scheduler: str | None = None):
    """A Dask client: on the cluster at `scheduler`, or on a local cluster of `workers` processes
    with one thread each (a chip's step is Python holding the GIL; processes run them at once)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SystemSpecError("scale-out runs need Dask distributed (pyproject's sim extras; run `make setup`)") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise SystemSpecError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({e})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise SystemSpecError(f"--workers {workers}: needs at least 1")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
