"""Programs that exercise the VXM and SXM: operands fed from MEM slices on exact cycles.

Data enters streams only through MEM READs (the chip's edge inputs are zero), and each MEM
slice's queue issues one instruction per cycle, so a vector whose operand groups span several
streams is assembled from READs on several slices (or several cycles) that line up at the
consumer. `Planner` does that bookkeeping: a request "stream s in direction d must carry this
row when it passes position p on cycle c" becomes a READ on a free queue slot of an upstream
MEM slice, using only the configuration's latencies (spec.timing). The generators here return a
Program; the testbench runs it on the RTL and the golden model and compares everything
(verif/chip_tb.py).
"""
from __future__ import annotations

import numpy as np

from isa import quant, spec
from isa.config import ChipConfig, SliceKind
from isa.image import Program
from isa.spec import DType
from isa.timed import TimedProgram
from sim import vxm

E, W = int(spec.Dir.EAST), int(spec.Dir.WEST)


class Planner:
    """Places instructions and the READs that feed them. READs are kept aside and written out
    by program(), where back-to-back READs of one slice onto one stream merge into one READ
    with a count (so long programs fit the queues)."""

    def __init__(self, config: ChipConfig):
        self.config = config
        self.T = spec.timing(config)
        self.tp = TimedProgram(config)
        self.mems = [s.position for s in config.slices_of(SliceKind.MEM)]
        self.reads: dict[int, list] = {p: [] for p in self.mems}     # position -> [(issue, d, stream, row)]
        self.slots: set[tuple[int, int]] = set()

    def sources(self, d: int, position: int) -> list[int]:
        """MEM slices upstream of `position` for direction d, nearest first."""
        up = [p for p in self.mems if (p < position if d == E else p > position)]
        return sorted(up, key=lambda p: abs(p - position))

    def try_plan(self, feeds, instrs) -> bool:
        """Place `instrs` [(slice, cycle, mnemonic, operands)] and READs for `feeds`
        [(d, stream, position, cycle, row)], all or nothing; False if a queue slot is taken."""
        taken = set()
        for which, cycle, _, _ in instrs:
            key = (self.tp.slice(which).position, cycle)
            if cycle < 0 or key in self.slots or key in taken:
                return False
            taken.add(key)
        reads = []
        for d, stream, position, cycle, row in feeds:
            for p in self.sources(d, position):
                issue = cycle - abs(position - p) - self.T["mem_read_drive"]
                if issue >= 0 and (p, issue) not in self.slots and (p, issue) not in taken:
                    taken.add((p, issue))
                    reads.append((p, issue, d, stream, row))
                    break
            else:
                return False
        for which, cycle, mnemonic, ops in instrs:
            self.tp.at(which, cycle, mnemonic, **ops)
        for p, issue, d, stream, row in reads:
            self.reads[p].append((issue, d, stream, np.asarray(row, np.uint8)))
        self.slots |= taken
        return True

    def plan(self, cycle: int, shift) -> int:
        """Try `shift(k)` -> (feeds, instrs) for k = 0, 1, ... until it fits; returns k."""
        for k in range(64):
            if self.try_plan(*shift(k)):
                return k
        raise RuntimeError(f"planner: nothing fits within 64 cycles of cycle {cycle}")

    def program(self) -> Program:
        for p, reads in self.reads.items():
            reads.sort(key=lambda r: r[0])
            rows, run = [], None
            for issue, d, stream, row in reads:
                if run is not None and run[0] + run[3] == issue and tuple(run[1:3]) == (d, stream):
                    run[3] += 1
                else:
                    if run is not None:
                        self._read(p, run)
                    run = [issue, d, stream, 1, len(rows)]
                rows.append(row)
            if run is not None:
                self._read(p, run)
            if rows:
                if len(rows) > self.config.mem_words:
                    raise ValueError(f"planner: {len(rows)} rows do not fit MEM slice {p}")
                self.tp.load(p, 0, np.stack(rows))
        return self.tp.program()

    def _read(self, p, run):
        issue, d, stream, count, addr = run
        self.tp.at(p, issue, "READ", stream=stream, dir=d, addr=addr, stride=1, count=count)


# --------------------------------------------------------------------------
# operand values with the edges of each type
# --------------------------------------------------------------------------
def edge_values(t: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 values of type t: a third edges (min, max, 0, +-1, min+1, max-1), the rest uniform."""
    lo, hi = spec.dtype_range(t)
    edges = np.array([lo, hi, 0, 1, -1, lo + 1, hi - 1], np.int64)
    v = rng.integers(lo, hi, size=n, endpoint=True, dtype=np.int64)
    pick = rng.random(n) < 0.33
    v[pick] = edges[rng.integers(len(edges), size=int(pick.sum()))]
    return v


def shift_values(t: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Shift amounts: 0, 1, bits-1, bits, 31, and random values (the ALU uses b mod bits)."""
    bits = 8 * spec.dtype_bytes(t)
    lo, hi = spec.dtype_range(t)
    edges = np.array([x for x in (0, 1, bits - 1, bits, 31, hi, lo, -1) if lo <= x <= hi], np.int64)
    v = rng.integers(0, 2 * bits, size=n, dtype=np.int64)
    pick = rng.random(n) < 0.4
    v[pick] = edges[rng.integers(len(edges), size=int(pick.sum()))]
    return v


def requant_params(n: int, rng: np.random.Generator):
    """(M, c word) per lane: M mostly uniform over [2**30, 2**31) (quantize_multiplier's range),
    with 0, 1, 2**31-1 and negative values; c = s | zp << 16 with s in 0..31 (0 and 31 often), zp over int16 with its ends, and
    random bits 5..15 (ignored by the hardware)."""
    m = rng.integers(1 << 30, 1 << 31, size=n, dtype=np.int64)
    pick = rng.random(n)
    m[pick < 0.15] = rng.choice([0, 1, (1 << 31) - 1, -(1 << 31), -1, 1 << 30], size=int((pick < 0.15).sum()))
    m[(pick >= 0.15) & (pick < 0.25)] = rng.integers(-(1 << 31), 1 << 31, size=int(((pick >= 0.15) & (pick < 0.25)).sum()))
    s = rng.integers(0, 32, size=n, dtype=np.int64)
    ends = rng.random(n)
    s = np.where(ends < 0.15, 0, np.where(ends < 0.3, 31, s))
    zp = rng.integers(-128, 128, size=n, dtype=np.int64)
    z = rng.random(n)
    zp = np.where(z < 0.1, -128, np.where(z < 0.2, 127, np.where(z < 0.3, rng.integers(-32768, 32768, size=n), zp)))
    zp = np.where(z > 0.97, -32768, np.where((z > 0.94) & (z <= 0.97), 32767, zp))
    junk = rng.integers(0, 1 << 11, size=n, dtype=np.int64) << 5
    word = vxm.wrap(s | junk | (zp << 16), int(DType.I32))
    return m, word


def _planes(values: np.ndarray, t: int) -> np.ndarray:
    return vxm.to_planes(values, t)


# --------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------
def alu_program(config: ChipConfig, rng: np.random.Generator, mnemonic: str, t: int, dt: int | None = None,
                vectors: int = 12, reg_chance: float = 0.3, per_lane: bool = False) -> Program:
    """`vectors` result vectors of one ALU op, on every ALU in turn, results driven east or west
    on random groups. Each operand is a stream group (a eastward first, b westward first) while
    the MEM slices on that side can deliver its streams on one cycle; otherwise, or by chance, a
    register: a broadcast VSET, or per-lane values built with VLOADB for every vector. Runs of
    vectors share one instruction with count > 1 when no register is reloaded per vector.
    per_lane: every operand after a that is not a stream group is a per-lane register (no VSET).
    Per-lane registers are loaded with VLOAD (a whole group on one cycle) when the MEM slices
    can deliver it, else byte by byte with VLOADB."""
    alu_op = spec.ALU_BY_MNEMONIC[mnemonic]
    names = {f.name for f in spec.BY_MNEMONIC[mnemonic].fields}
    t_in = int(DType.I32) if mnemonic == "REQUANT" else t
    t_out = dt if dt is not None else t_in
    nb, nbo = spec.dtype_bytes(t_in), spec.dtype_bytes(t_out)
    S, L = config.streams, config.lanes
    pl = Planner(config)
    T = pl.T
    vx = config.slice_named("VXM").position
    capacity = {d: len(pl.sources(d, vx)) for d in (E, W)}
    next_base = {E: 0, W: 0}
    src = {}                       # operand -> ("stream", d, base) | ("vset", r) | ("lanes", r)
    regs = 0
    for name in alu_op.operands:
        prefer = [E, W] if name != "b" else [W, E]
        if rng.random() >= reg_chance or name == "a":
            for d in prefer:
                if nb <= capacity[d] and next_base[d] + nb <= S:
                    src[name] = ("stream", d, next_base[d])
                    capacity[d] -= nb
                    next_base[d] += nb
                    break
        if name not in src:
            src[name] = ("vset" if rng.random() < 0.5 and not per_lane else "lanes", regs)
            regs += 1
    byte_side = E if pl.sources(E, vx) else W
    cycle = 4
    for name, how in src.items():           # broadcast scalars: set once, before the first use
        if how[0] == "vset":
            imm = int(vxm.wrap(_operand_values(mnemonic, name, t_in, 1, rng), int(DType.I32))[0])
            pl.plan(cycle, lambda k, r=how[1], imm=imm: ([], [("VXM", cycle + k, "VSET", {"r": r, "imm": imm})]))
            cycle += 1
    per_vector_regs = [n for n, how in src.items() if how[0] == "lanes"]
    done, alu = 0, 0
    while done < vectors:
        run = 1 if per_vector_regs else min(int(rng.integers(1, 5)), vectors - done)
        ops = {"dst": int(rng.integers(0, S - nbo + 1)), "ddir": int(rng.integers(0, 2)), "alu": alu, "count": run}
        if "type" in names:
            ops["type"] = t
        if "dtype" in names:
            ops["dtype"] = t_out
        loads = []                           # (offset, register, plane, row)
        feeds = []                           # (d, stream, element, row)
        for name, how in src.items():
            if how[0] == "stream":
                _, d, base = how
                ops[name] = spec.operand(base, d)
                for e in range(run):
                    planes = _planes(_operand_values(mnemonic, name, t_in, L, rng), t_in)
                    feeds += [(d, base + j, e, planes[j]) for j in range(nb)]
            else:
                ops[name] = spec.operand(how[1], reg=True)
                if how[0] == "lanes":
                    vals = _operand_values(mnemonic, name, t_in, L, rng)
                    if nb <= len(pl.sources(byte_side, vx)) and rng.random() < 0.5:
                        loads.append((len(loads), how[1], None, _planes(vals, t_in)))     # VLOAD
                    else:
                        planes = _planes(vals, int(DType.I32))
                        loads += [(len(loads) + j, how[1], j, planes[j]) for j in range(4)]

        def shifted(k, feeds=feeds, loads=loads, ops=ops, start=cycle):
            issue = start + k + len(loads)
            f = [(d, s, vx, issue + T["vxm_sample"] + e, row) for d, s, e, row in feeds]
            ins = []
            for off, r, plane, row in loads:
                when = start + k + off + T["vxm_sample"]
                if plane is None:                     # VLOAD of a group at the top streams
                    base = S - len(row)
                    f += [(byte_side, base + j, vx, when, row[j]) for j in range(len(row))]
                    ins.append(("VXM", start + k + off, "VLOAD", {"a": spec.operand(base, byte_side), "r": r,
                                                                  "type": t_in}))
                    continue
                f.append((byte_side, S - 1, vx, when, row))
                ins.append(("VXM", start + k + off, "VLOADB", {"a": spec.operand(S - 1, byte_side), "r": r,
                                                               "plane": plane}))
            return f, ins + [("VXM", issue, mnemonic, ops)]
        k = pl.plan(cycle, shifted)
        cycle += k + len(loads) + run
        done += run
        alu = (alu + 1) % config.vxm_alus
    return pl.program()


def _operand_values(mnemonic, name, t, n, rng):
    if mnemonic in ("SHL", "SHR", "SRA") and name == "b":
        return shift_values(t, n, rng)
    if mnemonic == "REQUANT" and name in ("b", "c"):
        m, word = requant_params(n, rng)
        return m if name == "b" else word
    if mnemonic == "SELECT" and name == "a":
        return np.where(rng.random(n) < 0.5, 0, edge_values(t, n, rng))
    if mnemonic in ("CMPEQ", "SELECT") and name != "a" and rng.random() < 0.5:
        return edge_values(t, n, np.random.default_rng(0))     # equal values often
    if mnemonic == "CMPEQ" and name == "a" and rng.random() < 0.5:
        return edge_values(t, n, np.random.default_rng(0))
    return edge_values(t, n, rng)


def transpose_widths(config: ChipConfig) -> list[int]:
    return [n for n in (2, 4, 8, 16, 32, 64) if n <= config.sxm_width and config.lanes % n == 0]


def sxm_program(config: ChipConfig, rng: np.random.Generator, ops_count: int = 16) -> Program:
    """Random SXM ops on both SXM slices: each op's source group is fed from the MEM slices
    upstream of it (SXM_W only sees westward streams, SXM_E only eastward ones in the standard
    floorplan), its result goes to a random group in a random direction. SETMAP loads random
    maps (entries past the last lane included) before PERMUTEs."""
    pl = Planner(config)
    T = pl.T
    S, L, N = config.streams, config.lanes, config.sxm_width
    cycle = 4
    moves = ["SHIFT", "ROTATE", "BCAST", "PERMUTE", "TRANSPOSE", "SETMAP"]
    for i in range(ops_count):
        sl = config.slices_of(SliceKind.SXM)[i % 2]
        d = W if pl.sources(W, sl.position) else E
        mnemonic = moves[int(rng.integers(len(moves)))]
        if mnemonic == "TRANSPOSE":
            width = int(rng.choice(transpose_widths(config)))
        elif mnemonic == "SETMAP":
            width = 2
        else:
            width = int(rng.integers(1, N + 1)) if rng.random() < 0.5 else int(rng.choice([1, min(4, N)]))
        base = int(rng.integers(0, S - width + 1))
        ops = {"stream": base, "dir": d}
        if mnemonic != "SETMAP":
            ops |= {"dst": int(rng.integers(0, S - width + 1)), "ddir": int(rng.integers(0, 2)),
                    "width": width, "count": 1}
        if mnemonic in ("SHIFT", "ROTATE"):
            ops["arg"] = int(rng.choice([0, 1, -1, L - 1, -(L - 1), int(rng.integers(-(L - 1), L))]))
        elif mnemonic == "BCAST":
            ops["arg"] = int(rng.choice([0, L - 1, int(rng.integers(0, L))]))
        if mnemonic == "SETMAP":
            lane_map = rng.integers(0, L, size=L)
            far = rng.random(L) < 0.2
            lane_map = np.where(far, rng.integers(L, 1 << 16, size=L), lane_map)
            rows = _planes(lane_map, int(DType.I16))
        else:
            rows = rng.integers(0, 256, size=(width, L), dtype=np.uint8)

        # at most one stream per upstream MEM slice can arrive on one cycle: wider groups get
        # their first streams fed and carry whatever else is on the others (zeros, usually)
        fed = min(len(rows), len(pl.sources(d, sl.position)))

        def shifted(k, sl=sl, d=d, rows=rows, ops=ops, mnemonic=mnemonic, start=cycle, fed=fed):
            s_cycle = start + k + T["sxm_sample"]
            return ([(d, ops["stream"] + j, sl.position, s_cycle, rows[j]) for j in range(fed)],
                    [(sl.name, start + k, mnemonic, ops)])
        k = pl.plan(cycle, shifted)
        cycle += k + 1
    return pl.program()


def chain_program(config: ChipConfig, rng: np.random.Generator, min_cycles: int = 1000) -> Program:
    """MEM -> VXM -> SXM -> MEM: runs of 1..16 vectors, each run an int8 ADD/SUB/MAX/MIN of a
    (eastward) and b (westward) at the VXM, driven east to SXM_E, which rotates / shifts /
    broadcasts it and drives it west to MEM_W0, whose WRITE stores it on the exact cycles.
    Random data, at least `min_cycles` cycles; each run is one instruction per slice."""
    pl = Planner(config)
    T = pl.T
    S, L = config.streams, config.lanes
    vx = config.slice_named("VXM").position
    sx = config.slice_named("SXM_E").position
    dest = config.slice_named("MEM_W0")
    i8 = int(DType.I8)
    cycle, addr, alu = 4, 0, 0
    while cycle < min_cycles:
        n = int(rng.integers(1, 17))
        mnemonic = ["ADD", "SUB", "MAX", "MIN"][int(rng.integers(4))]
        move = ["ROTATE", "SHIFT", "BCAST"][int(rng.integers(3))]
        r = int(rng.integers(1, S))                 # VXM result stream (eastward); feeds use stream 0
        q = int(rng.integers(1, S))                 # SXM result stream (westward)
        a = [_planes(edge_values(i8, L, rng), i8)[0] for _ in range(n)]
        b = [_planes(edge_values(i8, L, rng), i8)[0] for _ in range(n)]
        arg = int(rng.integers(0, L)) if move == "BCAST" else int(rng.integers(-(L - 1), L))

        def shifted(k, a=a, b=b, r=r, q=q, n=n, mnemonic=mnemonic, move=move, arg=arg, start=cycle, alu=alu,
                    first=addr):
            issue = start + k
            at_sxm = issue + T["vxm_drive"] + (sx - vx)          # element 0 sampled by the SXM
            sxm_issue = at_sxm - T["sxm_sample"]
            back = sxm_issue + T["sxm_drive"] + (sx - dest.position)    # element 0 passes MEM_W0
            sample = issue + T["vxm_sample"]
            feeds = [(E, 0, vx, sample + e, a[e]) for e in range(n)] + [(W, 0, vx, sample + e, b[e]) for e in range(n)]
            instrs = [("VXM", issue, mnemonic, {"a": spec.operand(0, E), "b": spec.operand(0, W), "dst": r,
                                               "ddir": E, "type": i8, "alu": alu, "count": n}),
                      ("SXM_E", sxm_issue, move, {"stream": r, "dir": E, "arg": arg, "dst": q, "ddir": W,
                                                  "width": 1, "count": n}),
                      (dest.name, back - T["mem_write_sample"], "WRITE",
                       {"stream": q, "dir": W, "addr": 0x1000 + first, "stride": 1, "count": n})]
            return feeds, instrs
        k = pl.plan(cycle, shifted)
        cycle += k + n
        addr += n
        alu = (alu + 1) % config.vxm_alus
    return pl.program()
