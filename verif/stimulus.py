"""Constrained-random stimulus: programs that really move data, random words, random instructions.

Used by the cocotb chip tests (verif/tb_chip.py) and by the golden-model tests (tests/sim).

`random_transfer_program` plans MEM traffic on an explicit per-queue cycle timeline: every
instruction is given the exact cycle it must issue on, NOPs (or, sometimes, the queue's own
engine stall) pad each queue up to that cycle, and a WRITE that catches a READ is issued so that
its sample cycle is the READ's drive cycle plus the flight time between the two slices. The
generator keeps its own record of what every SRAM word holds on every cycle and of which
(stream, direction, cycle) wavefronts are in use, so it also knows, without running any model,
what every transfer carries, what every SRAM holds at the end, what leaves the chip edges and
how many cycles the program takes. `return_plan=True` hands that record back as a
`TransferPlan`, whose `mismatches(golden)` compares it with a finished `sim.golden.Golden`.

All latencies come from `isa.spec.timing(config)`; nothing here hard-codes a timing number.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from isa import spec
from isa.config import ChipConfig, SliceKind
from isa.image import Program

__all__ = ["random_words", "random_instruction_word", "random_transfer_program", "TransferPlan",
           "Transfer", "Catch", "issue_offsets"]

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


# --------------------------------------------------------------------------
# small generators
# --------------------------------------------------------------------------
def random_words(config: ChipConfig, rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` uniformly random SRAM words: uint8 [n, lanes]."""
    return rng.integers(0, 256, size=(int(n), config.lanes), dtype=np.uint8)


def random_instruction_word(rng: np.random.Generator, config: ChipConfig | None = None,
                            kind: SliceKind = SliceKind.MEM) -> int:
    """A random 64-bit instruction word, legal or not.

    Half the time a uniformly random 64-bit word (almost always an undefined opcode). The
    other half a defined opcode with random operand fields: each field is drawn either over its
    whole width or from small values (and, with `config`, from the configuration's legal range),
    NOP `cycles` and READ/WRITE `count` mostly small (0..64) so that legal words finish quickly,
    and reserved bits set one time in eight. So some words are legal and some are not
    (zero counts, zero NOPs, streams or addresses out of range, reserved bits, bad opcodes).
    The opcode is one of `kind`'s four times in five, else any defined opcode.
    """
    if rng.random() < 0.5:
        return int(rng.integers(0, 1 << 63, dtype=np.uint64)) << 1 | int(rng.integers(0, 2))
    ops = [o for o in spec.OPCODES if kind in o.kinds] if rng.random() < 0.8 else spec.OPCODES
    op = ops[int(rng.integers(len(ops)))]
    limits = dict(spec.field_limits(op, config)) if config is not None else {}
    word = op.code
    for f in op.fields:
        lo, hi = f.range()
        r = rng.random()
        if f.name in ("cycles", "count"):
            v = int(rng.integers(0, 65)) if r < 0.9 else int(rng.integers(lo, hi + 1))
        elif r < 0.35:
            v = int(rng.integers(lo, hi + 1))
        elif r < 0.7 and f.name in limits:
            v = int(rng.integers(0, limits[f.name]))
        else:
            v = int(rng.integers(max(lo, -8), min(hi, 15) + 1))
        word |= (v & ((1 << f.width) - 1)) << f.lsb
    if rng.random() < 0.125 and op.reserved_mask:
        bits = [b for b in range(spec.WORD_BITS) if op.reserved_mask >> b & 1]
        word |= 1 << bits[int(rng.integers(len(bits)))]
    return word


def issue_offsets(config: ChipConfig) -> dict[str, int]:
    """Derived latencies (all from spec.timing(config)) the planner uses."""
    T = spec.timing(config)
    return {
        "read_access": T["mem_read_access"],
        "read_busy": T["mem_read_access"],                      # engine busy through issue+this+count-1
        "read_drive": T["mem_read_drive"],
        "read_end": max(T["mem_read_access"], T["mem_read_check"], T["mem_read_drive"]),
        "write_busy": T["mem_write_sample"],
        "write_sample": T["mem_write_sample"],
        "write_commit": T["mem_write_commit"],
        "write_end": max(T["mem_write_sample"], T["mem_write_commit"]),
        "hop": T["stream_hop"],
    }


# --------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------
@dataclass
class Catch:
    """One WRITE of a planned transfer."""
    position: int
    issue: int                   # cycle the WRITE issues on
    addr: int
    stride: int
    addrs: np.ndarray            # int [count]: SRAM words written, element order
    commits: np.ndarray          # int [count]: cycle at whose end element j is stored
    first: int                   # READ element caught by WRITE element 0 (0 for undriven streams)
    data: np.ndarray             # uint8 [count, lanes]: what the WRITE stores
    final: np.ndarray = None     # bool [count]: element still holds its value at the end of the run

    @property
    def count(self) -> int:
        return len(self.addrs)


@dataclass
class Transfer:
    """A READ and the WRITEs that catch it.

    kind: "copy" (caught by one or more WRITEs downstream), "raw" (a copy whose source words
    were written earlier by the program), "edge" (nobody catches it: it leaves the chip and
    `edge` lists (cycle, data) at the edge), "stray" (nobody catches it; a later drive may
    replace it, nothing is promised about it) or "zeros" (source None: WRITEs of a stream that
    nobody drives on those cycles, they store zeros).
    """
    kind: str
    direction: int
    stream: int
    source: int | None
    read_issue: int | None
    addr: int | None
    stride: int | None
    read_addrs: np.ndarray | None      # int [count]
    data: np.ndarray                   # uint8 [count, lanes]: words driven (zeros for "zeros")
    catches: list[Catch] = field(default_factory=list)
    edge: list[tuple[int, np.ndarray]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.data)


@dataclass
class TransferPlan:
    config: ChipConfig
    transfers: list[Transfer]
    cycles: int                               # expected RunResult.cycles
    initial_memory: dict[int, np.ndarray]     # position -> uint8 [mem_words, lanes] before the run
    final_memory: dict[int, np.ndarray]       # position -> uint8 [mem_words, lanes] after the run

    def mismatches(self, golden) -> list[str]:
        """Differences between this plan and a finished `Golden` (or anything with `result`,
        `memory(pos)` and `edge_out(dir, cycle)`). Empty when the run did exactly what was planned."""
        out = []
        res = golden.result
        if res is None:
            return ["model has not run"]
        if res.cycles != self.cycles:
            out.append(f"cycles {res.cycles}, planned {self.cycles}")
        if int(res.error) != 0 or res.ecc_corrected or res.ecc_uncorrectable:
            out.append(f"unexpected status {res}")
        names = {s.position: s.name for s in self.config.floorplan}
        for i, t in enumerate(self.transfers):
            for c in t.catches:
                got = golden.memory(c.position)[c.addrs[c.final]]
                if not np.array_equal(got, c.data[c.final]):
                    bad = int(np.nonzero(~np.all(got == c.data[c.final], axis=1))[0][0])
                    out.append(f"transfer {i} ({t.kind}) -> {names[c.position]}: word "
                               f"{int(c.addrs[c.final][bad]):#x} is {got[bad].tobytes().hex()}, "
                               f"planned {c.data[c.final][bad].tobytes().hex()}")
            for cycle, value in t.edge:
                got = golden.edge_out(t.direction, cycle)[t.stream]
                if not np.array_equal(got, value):
                    out.append(f"transfer {i} (edge): {spec.Dir(t.direction).name} edge stream {t.stream} "
                               f"on cycle {cycle} is {got.tobytes().hex()}, planned {value.tobytes().hex()}")
        for pos, want in self.final_memory.items():
            got = golden.memory(pos)
            if not np.array_equal(got, want):
                rows = np.nonzero(~np.all(got == want, axis=1))[0]
                out.append(f"{names[pos]}: {len(rows)} words differ from the plan, first {int(rows[0]):#x}")
        return out


# --------------------------------------------------------------------------
# planner state
# --------------------------------------------------------------------------
class _Queue:
    """One MEM slice's queue on the planned timeline."""

    def __init__(self, position: int, rng):
        self.position = position
        self.rng = rng
        self.words: list[int] = []
        self.cursor = 0          # the cycle the next word reaches the queue head
        self.end = 0             # contribution to the cycle count
        self.read_last = -1      # last access cycle of the read engine
        self.write_last = -1     # last sample cycle of the write engine

    def free_from(self, engine: str) -> int:
        """Earliest issue cycle for `engine` ("read"/"write"): the engine has no work after it."""
        last = self.read_last if engine == "read" else self.write_last
        return max(self.cursor, last)

    def pad_to(self, t: int) -> None:
        if t > self.cursor:
            self.words.append(spec.encode("NOP", cycles=t - self.cursor))
            self.cursor = t
            self.end = max(self.end, t)

    def issue(self, t: int, word: int, engine: str, busy_last: int) -> None:
        """Put `word` in the queue so that it issues exactly on cycle `t`."""
        last = self.read_last if engine == "read" else self.write_last
        assert t >= self.cursor and t >= last, (t, self.cursor, last)
        if t == last and last > self.cursor and self.rng.random() < 0.6:
            # let the queue stall on the busy engine instead of padding all the way
            if last - self.cursor > 1 and self.rng.random() < 0.5:
                self.pad_to(self.cursor + int(self.rng.integers(1, last - self.cursor)))
        else:
            self.pad_to(t)
        self.words.append(word)
        self.cursor = t + 1
        self.end = max(self.end, t + 1)
        if engine == "read":
            self.read_last = busy_last
        else:
            self.write_last = busy_last


class _Sram:
    """What one MEM slice holds on every cycle, as the plan sees it."""

    def __init__(self, initial: np.ndarray):
        self.initial = initial
        self.history: dict[int, list[tuple[int, np.ndarray]]] = {}   # addr -> sorted [(commit, data)]
        self.last_access = np.full(len(initial), -1, np.int64)      # latest planned read access per word
        self.last_commit = np.full(len(initial), -1, np.int64)

    def value(self, addr: int, access: int) -> np.ndarray:
        """The word a read access on cycle `access` sees: commits at the end of earlier cycles."""
        h = self.history.get(addr)
        if h:
            i = bisect.bisect_left([c for c, _ in h], access) - 1   # commits strictly before access
            if i >= 0:
                return h[i][1]
        return self.initial[addr]

    def read(self, addrs, accesses) -> np.ndarray:
        out = np.stack([self.value(int(a), int(x)) for a, x in zip(addrs, accesses)])
        for a, x in zip(addrs, accesses):
            self.last_access[a] = max(self.last_access[a], x)
        return out

    def can_write(self, addrs, commits) -> bool:
        """A new commit must not change what an already planned read sees."""
        return bool(np.all(self.last_access[addrs] <= commits))

    def write(self, addrs, commits, data) -> None:
        for a, c, v in zip(addrs, commits, data):
            h = self.history.setdefault(int(a), [])
            h.append((int(c), np.array(v, np.uint8)))
            h.sort(key=lambda cv: cv[0])
            self.last_commit[a] = max(self.last_commit[a], c)

    def final(self) -> np.ndarray:
        out = self.initial.copy()
        for a, h in self.history.items():
            out[a] = h[-1][1]
        return out


class _Fabric:
    """Which wavefronts are driven and which must stay clean, per (direction, stream).

    A value on a stream travels along a 'diagonal' (east: cycle - position*hop is constant). A
    drive by position q on a diagonal replaces the value for every position downstream of q, so a
    planned transfer from p to r protects the open interval of positions between them on each of
    its diagonals, and no drive may be planned inside a protected interval (and vice versa).
    """

    def __init__(self, hop: int):
        self.hop = hop
        self.drives: dict[tuple[int, int, int], list[int]] = {}
        self.protect: dict[tuple[int, int, int], list[tuple[int, int]]] = {}

    def diag(self, d: int, position: int, cycle: int) -> int:
        return cycle - position * self.hop if d == E else cycle + position * self.hop

    def can_drive(self, d, s, keys, position) -> bool:
        for k in keys:
            for lo, hi in self.protect.get((d, s, k), ()):
                if lo < position < hi:
                    return False
        return True

    def can_protect(self, d, s, keys, lo, hi) -> bool:
        for k in keys:
            for q in self.drives.get((d, s, k), ()):
                if lo < q < hi:
                    return False
        return True

    def add_drive(self, d, s, keys, position):
        for k in keys:
            self.drives.setdefault((d, s, k), []).append(position)

    def add_protect(self, d, s, keys, lo, hi):
        for k in keys:
            self.protect.setdefault((d, s, k), []).append((lo, hi))


# --------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------
class _Planner:
    KINDS = ("copy", "raw", "edge", "stray", "zeros")
    WEIGHTS = (0.52, 0.16, 0.12, 0.10, 0.10)

    def __init__(self, config: ChipConfig, rng: np.random.Generator, max_count: int):
        self.cfg = config
        self.rng = rng
        self.max_count = int(max_count)
        self.o = issue_offsets(config)
        self.mems = [s.position for s in config.slices_of(SliceKind.MEM)]
        self.P = config.positions
        self.Wd = config.mem_words
        self.queues = {p: _Queue(p, rng) for p in self.mems}
        self.fabric = _Fabric(self.o["hop"])
        self.program = Program.empty(config)
        self.segments: dict[int, list[tuple[int, int]]] = {p: [] for p in self.mems}
        self.srams: dict[int, _Sram] = {}
        self.transfers: list[Transfer] = []
        self.written: list[Catch] = []       # catches whose words a later "raw" READ may read back
        self.event_end = 0
        self.now = 0

    # ---- memory preload --------------------------------------------------------
    def preload(self):
        cfg, rng, Wd = self.cfg, self.rng, self.Wd
        for p in self.mems:
            init = np.zeros((Wd, cfg.lanes), np.uint8)
            nmax = max(1, min(512, Wd // 8))
            starts = []
            if rng.random() < 0.6:                              # words at the top: wrapping reads
                starts.append(Wd - int(rng.integers(1, nmax + 1)))
            if rng.random() < 0.5:
                starts.append(0)
            starts += [int(rng.integers(0, Wd)) for _ in range(int(rng.integers(1, 4)))]
            taken = np.zeros(Wd, bool)
            for a in starts:
                n = int(rng.integers(1, nmax + 1))
                n = min(n, Wd - a)
                while n > 0 and taken[a:a + n].any():
                    n //= 2
                if n <= 0:
                    continue
                data = random_words(cfg, rng, n)
                taken[a:a + n] = True
                init[a:a + n] = data
                self.program.add_memory(p, a, data)
                self.segments[p].append((a, n))
            self.srams[p] = _Sram(init)

    # ---- random choices ----------------------------------------------------------
    def stride(self, for_write: bool) -> int:
        rng, Wd = self.rng, self.Wd
        lo, hi = spec.BY_MNEMONIC["READ"].field("stride").range()
        r = rng.random()
        if r < 0.35:
            s = 1
        elif r < 0.5:
            s = -1
        elif r < 0.72:
            s = int(rng.integers(2, 9)) * (1 if rng.random() < 0.5 else -1)
        elif r < 0.77 and not for_write:
            s = 0
        elif r < 0.87:
            s = int(rng.integers(lo, hi + 1))
        else:                                       # congruent to +-1 modulo mem_words
            s = int(rng.choice([Wd - 1, Wd + 1, -(Wd - 1), -(Wd + 1)]))
            if not lo <= s <= hi:
                s = 1
        return s

    def addrs(self, addr: int, stride: int, n: int) -> np.ndarray:
        return (addr + np.arange(n, dtype=np.int64) * stride) % self.Wd

    def read_source(self, p: int, n: int) -> tuple[int, int]:
        rng, Wd = self.rng, self.Wd
        stride = self.stride(False)
        r = rng.random()
        segs = self.segments[p]
        if r < 0.55 and segs:
            a, m = segs[int(rng.integers(len(segs)))]
            addr = a + int(rng.integers(m))
        elif r < 0.8:                                   # wraps past the end or below 0
            if stride >= 0:
                addr = Wd - int(rng.integers(1, n + 1))
            else:
                addr = int(rng.integers(0, n))
        else:
            addr = int(rng.integers(0, Wd))
        return addr % Wd, stride

    def write_dest(self, p: int, n: int, commits: np.ndarray):
        """A destination (addr, stride) with distinct words that no planned read still needs."""
        sram = self.srams[p]
        for _ in range(12):
            stride = self.stride(True)
            r = self.rng.random()
            if r < 0.2:
                addr = self.Wd - int(self.rng.integers(1, n + 1)) if stride > 0 else int(self.rng.integers(0, n))
            else:
                addr = int(self.rng.integers(0, self.Wd))
            a = self.addrs(addr, stride, n)
            if len(np.unique(a)) == n and sram.can_write(a, commits):
                return addr % self.Wd, stride, a
        return None

    def downstream(self, p: int, d: int) -> list[int]:
        return [q for q in self.mems if (q > p if d == E else q < p)]

    # ---- scheduling ----------------------------------------------------------------
    def read_keys(self, d, p, t_r, n):
        return [self.fabric.diag(d, p, t_r + self.o["read_drive"] + k) for k in range(n)]

    def catch_offset(self, p: int, q: int, first: int) -> int:
        """WRITE issue cycle minus READ issue cycle for a catch at q of element `first` onwards."""
        off = self.o["read_drive"] + first + abs(q - p) * self.o["hop"] - self.o["write_sample"]
        assert off >= 0
        return off

    def plan_read(self, kind: str) -> bool:
        rng, o = self.rng, self.o
        n = int(rng.integers(1, self.max_count + 1))
        if rng.random() < 0.15:
            n = int(rng.integers(1, 5))
        source_catch = None
        if kind == "raw":
            if not self.written:
                return False
            source_catch = self.written[int(rng.integers(max(0, len(self.written) - 12), len(self.written)))]
            p = source_catch.position
            k0 = int(rng.integers(source_catch.count))
            n = int(rng.integers(1, source_catch.count - k0 + 1))
            addr, stride = int(source_catch.addrs[k0]), source_catch.stride
        else:
            p = self.mems[int(rng.integers(len(self.mems)))]
            addr, stride = self.read_source(p, n)
        dirs = [d for d in (E, W) if self.downstream(p, d)] if kind in ("copy", "raw") else [E, W]
        if not dirs:
            return False
        d = dirs[int(rng.integers(len(dirs)))]
        catches = []                                # (q, first, m)
        if kind in ("copy", "raw"):
            down = self.downstream(p, d)
            k = 1 if rng.random() < 0.8 or len(down) < 2 else 2
            for q in rng.choice(down, size=k, replace=False):
                if rng.random() < 0.8:
                    first, m = 0, n
                else:                               # catch a part of the words only
                    first = int(rng.integers(n))
                    m = int(rng.integers(1, n - first + 1))
                catches.append((int(q), first, m))
        read_addrs = self.addrs(addr, stride, n)
        q_ = self.queues[p]
        lb = max(self.now, q_.free_from("read"))
        if source_catch is not None:
            if rng.random() < 0.3:
                # element j's access lands near the commit of the word it reads: on the commit
                # cycle (delta 0: still the old word), just before, or just after it
                lb = max(lb, int(source_catch.commits[k0]) - self.o["read_access"] + int(rng.integers(-2, 3)))
            else:                                   # read back only after the words are stored
                lb = max(lb, int(source_catch.commits.max()) - self.o["read_access"] + 1)
        for q, first, m in catches:
            lb = max(lb, self.queues[q].free_from("write") - self.catch_offset(p, q, first))
        if catches:
            far = max(q for q, _, _ in catches) if d == E else min(q for q, _, _ in catches)
            span = (p, far) if d == E else (far, p)
        elif kind == "edge":
            span = (p, self.P) if d == E else (-1, p)
        else:
            span = None
        streams = list(range(self.cfg.streams))
        for t_r in range(lb, lb + 48):
            keys = self.read_keys(d, p, t_r, n)
            rng.shuffle(streams)
            for s in streams:
                if not self.fabric.can_drive(d, s, keys, p):
                    continue
                if span and not self.fabric.can_protect(d, s, keys, *span):
                    continue
                dests = []
                for q, first, m in catches:
                    t_w = t_r + self.catch_offset(p, q, first)
                    commits = t_w + o["write_commit"] + np.arange(m)
                    dest = self.write_dest(q, m, commits)
                    if dest is None or any(q == q2 for q2, *_ in dests):
                        break
                    dests.append((q, first, m, t_w, commits, dest))
                else:
                    self.commit_read(kind, d, s, p, t_r, addr, stride, read_addrs, keys, span, dests)
                    return True
                break   # destination addresses are the problem, not the stream: try a later cycle
        return False

    def commit_read(self, kind, d, s, p, t_r, addr, stride, read_addrs, keys, span, dests):
        o, n = self.o, len(read_addrs)
        accesses = t_r + self.o["read_access"] + np.arange(n)
        data = self.srams[p].read(read_addrs, accesses)
        word = spec.encode("READ", stream=s, dir=d, addr=addr, stride=stride, count=n)
        self.queues[p].issue(t_r, word, "read", t_r + o["read_busy"] + n - 1)
        self.event_end = max(self.event_end, t_r + o["read_end"] + n)
        self.fabric.add_drive(d, s, keys, p)
        if span:
            self.fabric.add_protect(d, s, keys, *span)
        t = Transfer(kind, d, s, p, t_r, addr, stride, read_addrs, data)
        for q, first, m, t_w, commits, (waddr, wstride, waddrs) in dests:
            c = Catch(q, t_w, waddr, wstride, waddrs, commits, first, data[first:first + m])
            self.issue_write(q, s, d, c)
            t.catches.append(c)
        if kind == "edge":
            for k in range(n):
                drive = t_r + o["read_drive"] + k
                hops = (self.P - p) if d == E else (p + 1)
                t.edge.append((drive + hops * o["hop"], data[k]))
        self.transfers.append(t)

    def issue_write(self, q, s, d, c: Catch):
        o, m = self.o, c.count
        word = spec.encode("WRITE", stream=s, dir=d, addr=c.addr, stride=c.stride, count=m)
        self.queues[q].issue(c.issue, word, "write", c.issue + o["write_busy"] + m - 1)
        self.event_end = max(self.event_end, c.issue + o["write_end"] + m)
        self.srams[q].write(c.addrs, c.commits, c.data)
        self.written.append(c)

    def plan_zeros(self) -> bool:
        """A WRITE of a stream nobody drives on its sample cycles: it stores zeros."""
        rng, o = self.rng, self.o
        q = self.mems[int(rng.integers(len(self.mems)))]
        d = int(rng.integers(2))
        m = int(rng.integers(1, self.max_count + 1))
        span = (-1, q) if d == E else (q, self.P)
        lb = max(self.now, self.queues[q].free_from("write"))
        streams = list(range(self.cfg.streams))
        for t_w in range(lb, lb + 48):
            samples = t_w + o["write_sample"] + np.arange(m)
            keys = [self.fabric.diag(d, q, int(x)) for x in samples]
            commits = t_w + o["write_commit"] + np.arange(m)
            rng.shuffle(streams)
            for s in streams:
                if not self.fabric.can_protect(d, s, keys, *span):
                    continue
                dest = self.write_dest(q, m, commits)
                if dest is None:
                    return False
                self.fabric.add_protect(d, s, keys, *span)
                waddr, wstride, waddrs = dest
                data = np.zeros((m, self.cfg.lanes), np.uint8)
                c = Catch(q, t_w, waddr, wstride, waddrs, commits, 0, data)
                self.issue_write(q, s, d, c)
                t = Transfer("zeros", d, s, None, None, None, None, None, data, [c])
                self.transfers.append(t)
                return True
        return False

    # ---- top level -----------------------------------------------------------------
    def cycles(self) -> int:
        return max([0, self.event_end] + [q.end for q in self.queues.values()])

    def room(self) -> bool:
        return all(len(q.words) + 8 <= self.cfg.queue_depth for q in self.queues.values())

    def build(self, min_cycles: int):
        rng = self.rng
        self.preload()
        while self.cycles() < min_cycles and self.room() and self.now <= min_cycles:
            kind = self.KINDS[int(rng.choice(len(self.KINDS), p=self.WEIGHTS))]
            if kind == "zeros":
                self.plan_zeros()
            else:
                self.plan_read(kind)
            r = rng.random()
            if r < 0.04:
                self.now += int(rng.integers(40, 300))         # a quiet stretch: long NOPs
            elif r < 0.5:
                self.now += int(rng.integers(0, 4))
            else:
                self.now += int(rng.integers(4, 24))
        if self.cycles() < min_cycles:                          # queues full: wait out the rest
            q = max(self.queues.values(), key=lambda q: q.cursor)
            q.pad_to(min_cycles)
        for p, q in self.queues.items():
            if q.words:
                self.program.add(p, q.words)
        self.program.check_instructions()
        finals = {p: s.final() for p, s in self.srams.items()}
        for t in self.transfers:
            for c in t.catches:
                c.final = self.srams[c.position].last_commit[c.addrs] == c.commits
        plan = TransferPlan(self.cfg, self.transfers, self.cycles(),
                            {p: s.initial.copy() for p, s in self.srams.items()}, finals)
        return self.program, plan


def random_transfer_program(config: ChipConfig, rng: np.random.Generator, min_cycles: int = 2000, *,
                            max_count: int = 64, return_plan: bool = False):
    """Random MEM traffic that really moves data, lasting at least `min_cycles` cycles.

    * random initial contents in random ranges of every MEM slice (some at the top of memory so
      reads wrap), as `Program.memory` segments;
    * READs with random stream, direction, address and stride (1, -1, small, 0, any 16-bit
      value, values congruent to +-1 so addresses wrap), 1..`max_count` words, caught by one or
      two WRITEs downstream that sample exactly the words read (all or a contiguous part), each
      WRITE storing them with its own random address and stride;
    * READs of words the program wrote earlier (through SRAM), READs nobody catches (they leave
      at the chip edge on planned cycles), READs whose path is not protected (a later drive may
      replace them), WRITEs of streams nobody drives (they store zeros);
    * several transfers in flight on different streams, a slice's READ and WRITE overlapping,
      back-to-back READs (or WRITEs) on one slice left to the queue's engine stall, NOP gaps.

    Every instruction passes `spec.check` (the program's `check_instructions()` is called).
    Returns the `Program`, or `(Program, TransferPlan)` with `return_plan=True`.
    """
    program, plan = _Planner(config, rng, max_count).build(min_cycles)
    return (program, plan) if return_plan else program
