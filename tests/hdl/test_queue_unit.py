"""Unit tests of one slice's instruction queue (`hdl/queue.py`, `InstructionQueue`) under `amaranth.sim`.

Whole-chip cocotb runs check the queue only through what the slices do; these drive a MEM-kind
queue of the `tiny` configuration directly (host load port, Q_LEN, `running`, `ready_<op>`, the
IFETCH tap) and check it cycle by cycle against the issue rules of `isa/spec.py`: instruction
k+1 issues on the cycle after k, `NOP n` puts the next issue exactly n cycles later, a low
`ready_<op>` holds the head, `busy` falls after the last word, an illegal word raises `err` with
the `ErrorCode` that `spec.check` gives and the word's index as `pc`, and IFETCH samples its
stream on t + ifetch_sample + k and lets the words issue from t + ifetch_write + k + 1 (earlier is
QUEUE_UNDERRUN; a full ring is QUEUE_OVERFLOW, a misaligned fill point FETCH_ALIGN; the ring wraps).
Words are built with `spec.encode`; every latency comes from `spec.timing(CFG)`. A restart after a
single idle cycle runs from word 0 (the head is word 0 whenever the queue is not running).
Every test runs on a ring of two-word rows (`tiny`) and of one-word rows (`fpga`): the head is
a register fed from the ring one word ahead, and the two shapes take different paths into it.
"""

import pytest
from amaranth.sim import Simulator

from hdl.queue import InstructionQueue, host_load_cycles
from isa import spec
from isa.config import SliceKind, get_config

CFG = get_config("tiny")
KIND = SliceKind.MEM
FW = CFG.fetch_words
W = spec.WORD_BITS
from hdl.queue import QUEUE_OPS           # handled inside the queue: no issue strobe
OPS = [op.mnemonic for op in spec.OPCODES if KIND in op.kinds and op.mnemonic not in QUEUE_OPS]


@pytest.fixture(autouse=True, params=["tiny", "fpga"])
def config(request, monkeypatch):
    """The configuration every helper below reads (CFG, FW), once per ring shape."""
    cfg = get_config(request.param)
    monkeypatch.setitem(globals(), "CFG", cfg)
    monkeypatch.setitem(globals(), "FW", cfg.fetch_words)
    return cfg


def read(addr=0, stream=0, count=1, dir=0, stride=1):
    return spec.encode("READ", stream=stream, dir=dir, addr=addr, stride=stride, count=count)


def write(addr=0, stream=0, count=1, dir=0, stride=1):
    return spec.encode("WRITE", stream=stream, dir=dir, addr=addr, stride=stride, count=count)


def nop(n):
    return spec.encode("NOP", cycles=n)


def mnemonic(word):
    return spec.decode(word)[0].mnemonic


def schedule(program, ready=lambda op, t: True):
    """The spec's issue rule: for each word the cycle it becomes the head and the cycle it issues,
    and the cycle the queue is done. NOP n occupies n cycles; any other word one, once
    `ready(op, t)` (its engine can take it)."""
    t, head, issue = 0, [], []
    for word in program:
        op, fields = spec.decode(word)
        head.append(t)
        if op.mnemonic == "NOP":
            issue.append(t)
            t += fields["cycles"]
            continue
        while op.mnemonic not in QUEUE_OPS and not ready(op.mnemonic, t):
            t += 1
        issue.append(t)
        t += 1
    return head, issue, t


def run_queue(program, cycles, q_len=None, ready=lambda op, t: True, tap=lambda t: 0, load="rows",
              host_poke=None, runs=1, idle=2, last_row0=None):
    """Load `program` (the first `q_len` words; default all) while idle, set Q_LEN, raise `running`
    and record `cycles` cycles. `load="rows"` writes whole ring rows, `"words"` one word per host
    write (per-word enables). `host_poke(t)` may return (row, data) to try a host write on running
    cycle t. `last_row0` (row data) is written to row 0 on the idle cycle right before `running`
    rises. `runs` > 1 drops `running` for `idle` cycles between runs. Returns one trace per run: a
    list with one dict per cycle (sampled before the clock edge that ends the cycle)."""
    q_len = len(program) if q_len is None else q_len
    dut = InstructionQueue(CFG, KIND)
    traces = []

    async def host_write(ctx, row, words_by_col):
        data = sum(w << (W * col) for col, w in words_by_col.items())
        en = sum(1 << col for col in words_by_col)
        ctx.set(dut.host_addr, row)
        ctx.set(dut.host_data, data)
        ctx.set(dut.host_we, en)
        await ctx.tick()
        ctx.set(dut.host_we, 0)

    async def bench(ctx):
        assert not ctx.get(dut.busy) and not ctx.get(dut.err)
        words = program[:q_len]
        for row in range(0, len(words), FW):
            chunk = {i - row: words[i] for i in range(row, min(row + FW, len(words)))}
            if load == "rows":
                await host_write(ctx, row // FW, chunk)
            else:                                   # word by word: the other words of the row must survive
                for col in reversed(sorted(chunk)):
                    await host_write(ctx, row // FW, {col: chunk[col]})
        for _ in range(host_load_cycles(CFG) - 1):     # the last row lands (Q_LEN's write is one more cycle)
            await ctx.tick()
        ctx.set(dut.host_len, q_len)
        ctx.set(dut.host_len_we, 1)
        await ctx.tick()
        ctx.set(dut.host_len_we, 0)
        await ctx.tick()
        assert ctx.get(dut.length) == q_len
        if last_row0 is not None:
            # the queue registers the host's write and writes its ring on the next cycle (the one
            # after with a decode stage), the last idle one (as in the chip: the host port delays
            # START by as much, hdl/queue.py `host_load_cycles`)
            await host_write(ctx, 0, {col: w for col, w in enumerate(last_row0)})
            for _ in range(host_load_cycles(CFG)):
                await ctx.tick()
        for _ in range(runs):
            # idle, `busy` is what it would be if running (run control applies `running`)
            assert ctx.get(dut.busy) == (q_len > 0), "idle: busy should say whether Q_LEN words wait"
            ctx.set(dut.running, 1)
            trace = []
            for t in range(cycles):
                for op in OPS:
                    ctx.set(getattr(dut, f"ready_{op.lower()}"), bool(ready(op, t)))
                ctx.set(dut.fetch_tap, tap(t))
                poke = host_poke(t) if host_poke else None
                if poke:
                    ctx.set(dut.host_addr, poke[0])
                    ctx.set(dut.host_data, poke[1])
                    ctx.set(dut.host_we, (1 << FW) - 1)
                trace.append({
                    "issue": {op: ctx.get(getattr(dut, f"issue_{op.lower()}")) for op in OPS},
                    "head": ctx.get(dut.head), "pc": ctx.get(dut.pc), "busy": ctx.get(dut.busy),
                    "err": ctx.get(dut.err), "err_code": ctx.get(dut.err_code),
                    "fetch_stream": ctx.get(dut.fetch_stream), "fetch_dir": ctx.get(dut.fetch_dir),
                })
                await ctx.tick()
                ctx.set(dut.host_we, 0)
            traces.append(trace)
            ctx.set(dut.running, 0)
            for _ in range(idle):
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return traces if runs > 1 else traces[0]


def check_trace(trace, program, ready=lambda op, t: True):
    """Every cycle against the spec schedule: issue strobes, pc, head, busy, no error."""
    head, issue, end = schedule(program, ready)
    assert end < len(trace), "trace too short to see the queue finish"
    issued_on = {t: k for k, t in enumerate(issue)}
    starts = head + [end]
    for t, c in enumerate(trace):
        pc = max(k for k, s in enumerate(starts) if s <= t)     # the word at the head on cycle t
        strobes = {op for op, v in c["issue"].items() if v}
        want = {mnemonic(program[issued_on[t]])} & set(OPS) if t in issued_on else set()
        assert strobes == want, f"cycle {t}: issue strobes {sorted(strobes)}, expected {sorted(want)}"
        assert c["pc"] == pc, f"cycle {t}: pc {c['pc']}, expected {pc}"
        if pc < len(program):
            assert c["head"] == program[pc], f"cycle {t}: head {c['head']:#x}, expected word {pc} {program[pc]:#x}"
        assert c["busy"] == (t < end), f"cycle {t}: busy={c['busy']}, the queue is done on cycle {end}"
        assert not c["err"], f"cycle {t}: err (code {c['err_code']})"
    return issue, end


def test_back_to_back_issue():
    """Instruction k+1 issues on the cycle after k; busy falls on the cycle after the last one."""
    program = [read(addr=i, stream=i % CFG.streams) if i % 3 else write(addr=i, count=2) for i in range(7)]
    trace = run_queue(program, 12)
    issue, end = check_trace(trace, program)
    assert issue == list(range(len(program))) and end == len(program)


def test_host_load_word_by_word():
    """Per-word host enables: writing one word of a row keeps the row's other words."""
    program = [read(addr=10 + i) for i in range(2 * FW + 1)]
    trace = run_queue(program, len(program) + 3, load="words")
    check_trace(trace, program)


@pytest.mark.parametrize("n", [1, 2, 5, 1000])
def test_nop_delays_next_issue(n):
    """NOP n issued on t: the next instruction issues on exactly t + n (nothing in between)."""
    program = [read(addr=1), nop(n), write(addr=2), nop(n), read(addr=3)]
    trace = run_queue(program, 2 * n + 6)
    issue, end = check_trace(trace, program)
    assert issue[2] - issue[1] == n and issue[4] - issue[3] == n and issue[3] == issue[2] + 1


def test_long_nop_at_end_and_first():
    """A queue that starts with a NOP issues its first instruction on cycle n; a trailing NOP keeps
    the queue busy for its n cycles."""
    program = [nop(3), read(addr=7), nop(4)]
    trace = run_queue(program, 12)
    issue, end = check_trace(trace, program)
    assert issue == [0, 3, 4] and end == 8


def test_ready_low_holds_the_head():
    """ready_<op> low: the head neither issues nor advances; it issues on the first ready cycle."""
    program = [read(addr=1), write(addr=2), read(addr=3), nop(2), write(addr=4), read(addr=5)]
    busy_cycles = {"READ": {0, 1, 2, 5, 6, 11}, "WRITE": {1, 4, 7, 8, 9}}

    def ready(op, t):
        return t not in busy_cycles[op]

    trace = run_queue(program, 16, ready=ready)
    issue, end = check_trace(trace, program, ready)
    # READ held on 0-2, WRITE on 4, READ on 6; WRITE's low ready on 8-9 falls inside the NOP; READ on 11
    assert issue == [3, 5, 7, 8, 10, 12] and end == 13


def test_host_writes_ignored_while_running_and_rerun():
    """A host row write during the run changes nothing; dropping `running` restarts from word 0 and
    the same program replays with the same timing."""
    program = [read(addr=1), nop(2), write(addr=2), read(addr=3), write(addr=4), read(addr=5)]
    decoy = sum(write(addr=100 + i) << (W * i) for i in range(FW))
    traces = run_queue(program, 10, host_poke=lambda t: (t % 3, decoy) if t < 6 else None, runs=2)
    for trace in traces:
        check_trace(trace, program)


def test_rerun_after_one_idle_cycle():
    """`running` low for a single cycle is enough to restart at word 0 (the queue's docstring: while
    low the queue holds pc at 0)."""
    program = [read(addr=1), nop(2), write(addr=2), read(addr=3), write(addr=4)]
    for trace in run_queue(program, 9, runs=2, idle=1):
        check_trace(trace, program)


def test_word0_written_on_the_last_idle_cycle():
    """A host write to word 0 on the cycle before the run starts is the first word issued."""
    program = [write(addr=7), read(addr=1), nop(2), read(addr=2)]
    stale = [read(addr=99)] + program[1:]
    trace = run_queue(stale, 7, q_len=len(program), last_row0=program[:FW])
    check_trace(trace, program)


def _illegal_words():
    other_kind = next(op for op in spec.OPCODES if KIND not in op.kinds)
    undefined = next(c for c in range(1 << spec.OPCODE_BITS) if c not in spec.BY_CODE)
    read_op = spec.BY_MNEMONIC["READ"]
    reserved_bit = read_op.reserved_mask & -read_op.reserved_mask
    return {
        "undefined_opcode": undefined << spec.OPCODE_FIELD.lsb,
        "other_kind": spec.encode(other_kind.mnemonic, **{f.name: 0 for f in other_kind.fields}),
        "addr_range": read(addr=CFG.mem_words),
        "stream_range": write(stream=CFG.streams),
        "count_zero": read(count=0),
        "nop_zero": nop(0),
        "reserved_bit": read(addr=5) | reserved_bit,
    }


@pytest.mark.parametrize("case", list(_illegal_words()))
def test_illegal_word_raises_err(case):
    """The queue stops at an illegal word: err with spec.check's ErrorCode and the word's index."""
    bad = _illegal_words()[case]
    with pytest.raises(spec.IllegalInstruction) as exc:
        spec.check(bad, KIND, CFG)
    want = exc.value.code
    assert want != spec.ErrorCode.NONE
    program = [read(addr=1), nop(2), write(addr=2), bad, read(addr=3)]
    k = 3
    trace = run_queue(program, 10)
    _, issue, t_err = schedule(program[:k])
    for t, c in enumerate(trace):
        if t < t_err:
            assert not c["err"], f"cycle {t}: err before the illegal word is the head"
        else:
            assert c["err"] and c["err_code"] == want and c["pc"] == k, (
                f"cycle {t}: err={c['err']} code={c['err_code']} pc={c['pc']}, expected {want.name} at pc {k}")
            assert not any(c["issue"].values()), f"cycle {t}: an instruction issued past the illegal word"
            assert c["head"] == bad
    # and the words before it issued on their spec cycles
    for kk, t in enumerate(issue):
        op = mnemonic(program[kk])
        if op in OPS:
            assert trace[t]["issue"][op]


def _fetch_program():
    """Q_LEN = FW words: IFETCH of 2 vectors, then a NOP that lands exactly on the first fetched word."""
    fetched = [write(addr=20), read(addr=21), nop(2), read(addr=22)]
    n_vec = spec.elements("IFETCH", {"count": len(fetched)}, CFG)
    assert n_vec * FW == len(fetched)
    ifetch = spec.encode("IFETCH", stream=3, dir=1, count=len(fetched))
    return ifetch, fetched, n_vec


def _vectors(words):
    return [sum(w << (W * j) for j, w in enumerate(words[i:i + FW])) for i in range(0, len(words), FW)]


@pytest.mark.parametrize("wait_extra", [0, -1], ids=["on_time", "one_cycle_early"])
def test_ifetch(wait_extra):
    """IFETCH on t samples vector k on t + ifetch_sample + k (decoys on every other cycle) and its
    words issue from t + ifetch_write + 1; asking for the first one a cycle earlier is QUEUE_UNDERRUN."""
    ifetch, fetched, n_vec = _fetch_program()
    t_if = 0
    # IFETCH on 0, NOP on 1 for n cycles: the next word is wanted on 1 + n
    n = spec.timing(CFG)["ifetch_write"] + wait_extra
    head = [ifetch, nop(n)]
    assert len(head) % FW == 0, "the fill point after the image is aligned"
    program = head + fetched
    vectors = _vectors(fetched)
    decoys = _vectors([read(addr=200 + i) for i in range(64)])
    sample = {t_if + spec.timing(CFG)["ifetch_sample"] + k: vectors[k] for k in range(n_vec)}
    trace = run_queue(program, 14, q_len=len(head), tap=lambda t: sample.get(t, decoys[t % len(decoys)]))
    for t in sample:
        assert (trace[t]["fetch_stream"], trace[t]["fetch_dir"]) == (3, 1), f"cycle {t}: wrong stream tapped"
    first = 1 + n                      # cycle the first fetched word is needed
    earliest = t_if + spec.timing(CFG)["ifetch_write"] + 1
    if first >= earliest:
        check_trace(trace, program)
        _, issue, _ = schedule(program)
        assert issue[len(head)] == earliest
    else:
        for t, c in enumerate(trace[:first]):
            assert not c["err"], f"cycle {t}: err"
        c = trace[first]
        assert c["err"] and c["err_code"] == spec.ErrorCode.QUEUE_UNDERRUN and c["pc"] == len(head), (
            f"cycle {first}: err={c['err']} code={c['err_code']} pc={c['pc']}")
        assert c["busy"], "a fetch is in flight: the queue is busy"
        assert not any(c["issue"].values())
        if spec.timing(CFG)["error_stop"]:
            # the chip stops error_stop cycles after the error and runs until then: the word lands
            # on the next cycle, but a queue that has failed issues nothing more
            late = [t for t, c in enumerate(trace) if t > first and any(c["issue"].values())]
            assert not late, f"the queue failed on cycle {first} but issued on {late}"


def test_ifetch_misaligned_fill_point():
    """IFETCH while Q_LEN is not a multiple of fetch_words: FETCH_ALIGN at the IFETCH."""
    if FW == 1:
        pytest.skip("with one word per row every fill point is aligned")
    program = [read(addr=1)] * FW + [spec.encode("IFETCH", stream=0, dir=0, count=FW)]
    assert len(program) % FW
    trace = run_queue(program, 8)
    k = len(program) - 1
    for t, c in enumerate(trace):
        if t < k:
            assert not c["err"] and c["issue"]["READ"], f"cycle {t}"
        else:
            assert c["err"] and c["err_code"] == spec.ErrorCode.FETCH_ALIGN and c["pc"] == k, (
                f"cycle {t}: err={c['err']} code={c['err_code']} pc={c['pc']}")


def test_ifetch_overflow():
    """A full ring (Q_LEN = queue_depth): a fetched vector lands on t + ifetch_write + k while more than
    queue_depth - fetch_words words are unissued, so QUEUE_OVERFLOW with the IFETCH's index as pc.
    (The IFETCH itself has issued, so with one word per row the first vector still fits; the
    second overflows.)"""
    depth = CFG.queue_depth
    program = [spec.encode("IFETCH", stream=2, dir=0, count=2 * FW), nop(5)] + [read(addr=3)] * (depth - 2)
    t_land = spec.timing(CFG)["ifetch_write"] + (1 if FW == 1 else 0)
    trace = run_queue(program, t_land + 2, tap=lambda t: _vectors([write(addr=9)] * FW)[0])
    for t, c in enumerate(trace[:t_land]):
        assert not c["err"], f"cycle {t}: err={c['err']} code={c['err_code']}"
    c = trace[t_land]
    assert c["err"] and c["err_code"] == spec.ErrorCode.QUEUE_OVERFLOW and c["pc"] == 0, (
        f"cycle {t_land}: err={c['err']} code={c['err_code']} pc={c['pc']}")


def test_ifetch_wraps_the_ring():
    """Q_LEN = queue_depth - fetch_words: the fetched vectors land in the last row and then in row 0
    (over words already issued); all of them issue in order, each one cycle after the previous."""
    depth = CFG.queue_depth
    fetched = [write(addr=40), read(addr=41), write(addr=42), read(addr=43)]
    n_vec = spec.elements("IFETCH", {"count": len(fetched)}, CFG)
    image = [spec.encode("IFETCH", stream=1, dir=1, count=len(fetched))]
    image += [read(addr=i % CFG.mem_words) for i in range(1, depth - FW)]
    program = image + fetched
    sample = {spec.timing(CFG)["ifetch_sample"] + k: v for k, v in enumerate(_vectors(fetched))}
    assert len(sample) == n_vec
    trace = run_queue(program, len(program) + 2, q_len=len(image), tap=lambda t: sample.get(t, 0))
    issue, end = check_trace(trace, program)
    assert issue == list(range(len(program)))


def _sync_bench(program, release_at=None, cycles=12):
    """Run `program` with `sync_release` pulsed on cycle release_at; per cycle (parked, busy, issue
    strobes, err, err_code, pc)."""
    dut = InstructionQueue(CFG, KIND)
    trace = []

    async def bench(ctx):
        for row in range(0, len(program), FW):
            words = program[row:row + FW]
            ctx.set(dut.host_addr, row // FW)
            ctx.set(dut.host_data, sum(w << (W * i) for i, w in enumerate(words)))
            ctx.set(dut.host_we, (1 << len(words)) - 1)
            await ctx.tick()
        ctx.set(dut.host_we, 0)
        ctx.set(dut.host_len, len(program))
        ctx.set(dut.host_len_we, 1)
        await ctx.tick()
        ctx.set(dut.host_len_we, 0)
        await ctx.tick()                    # (the idle queue takes Q_LEN on this edge)
        for op in OPS:
            ctx.set(getattr(dut, f"ready_{op.lower()}"), 1)
        ctx.set(dut.running, 1)
        for t in range(cycles):
            ctx.set(dut.sync_release, int(t == release_at))
            trace.append({"parked": ctx.get(dut.parked), "busy": ctx.get(dut.busy), "err": ctx.get(dut.err),
                          "code": ctx.get(dut.err_code), "pc": ctx.get(dut.pc),
                          "issue": {op for op in OPS if ctx.get(getattr(dut, f"issue_{op.lower()}"))}})
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return trace


def test_sync_parks_until_the_release():
    """SYNC issued on t parks the queue from t+1 (not busy, nothing issues) until the cycle of the
    release; the next word issues on the cycle after it."""
    sync = spec.encode("SYNC")
    trace = _sync_bench([read(addr=1), sync, write(addr=2)], release_at=6)
    assert trace[0]["issue"] == {"READ"} and not trace[1]["parked"] and trace[1]["busy"]
    for t in range(2, 7):
        assert trace[t]["parked"] and not trace[t]["busy"] and not trace[t]["issue"], (t, trace[t])
    assert trace[7]["issue"] == {"WRITE"} and not trace[7]["parked"]
    assert not trace[8]["busy"] and not any(c["err"] for c in trace)


def test_parked_queue_offers_the_sync_timeout_record():
    """The chip decides the SYNC timeout (hdl/sync.py); a parked queue raises no error itself but
    offers the record the chip's ERROR_INFO then reports: SYNC_TIMEOUT at the SYNC's index."""
    sync = spec.encode("SYNC")
    trace = _sync_bench([nop(2), sync, read(addr=1)])
    assert not any(c["err"] for c in trace)
    for t in range(3, 12):
        assert trace[t]["parked"] and trace[t]["code"] == spec.ErrorCode.SYNC_TIMEOUT and trace[t]["pc"] == 1, t
