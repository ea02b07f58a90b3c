"""Unit tests of the AXI4-Lite slave (`hdl/axil.py`, `AxiLiteSlave`) under `amaranth.sim`.

The host port is otherwise exercised only by whole-chip cocotb runs through cocotbext-axi, whose
master always behaves the same way. Here a cycle-by-cycle master drives the five channels with
chosen timing (address before data, data before address, both together, responses held off by
`bready` / `rready`, transactions offered back to back, reads and writes offered together) and a
behavioural register file (a dict, with `reg_wbusy` held high for a chosen number of cycles after
writes to "slow" addresses) sits on the register side. Every run is checked by:

* protocol monitors: a response (`bvalid`/`rvalid`) holds, with the same `bresp` / `rdata` /
  `rresp`, until accepted; `bresp` and `rresp` are OKAY (the code answers every access OKAY);
  `reg_we` / `reg_re` are single strobes, a cycle after the handshake, whose `reg_addr` / `reg_wdata` are the handshaken
  channel values;
* a scoreboard: writes reach the register side in order, exactly once each, and every read
  returns what the register side held for that address when the read was performed;
* the code's rules: one transaction at a time (nothing is accepted while a response is pending),
  writes before reads when both are offered, and the write response waits for `reg_wbusy`.
"""
import random

import pytest
from amaranth.sim import Simulator

from hdl.axil import AxiLiteSlave

ADDR_BITS = 8
OKAY = 0


class Item:
    """One beat offered on a master channel: `gap` idle cycles after the previous beat on the same
    channel was accepted (or after cycle 0), and not before `barrier` = (B, R) responses have been
    accepted; then valid until the handshake."""

    def __init__(self, payload, gap=0, barrier=(0, 0)):
        self.payload, self.gap, self.barrier = payload, gap, barrier
        self.offered = None          # first cycle valid was high
        self.accepted = None         # handshake cycle


def run_axil(program, slow=None, bready_delays=(), rready_delays=(), max_cycles=400, init=None):
    """Run `program`, a list of ("W", addr, data, aw_gap, w_gap) and ("R", addr, ar_gap) in the
    order the master offers them on each channel (channels run independently: a read may be
    offered while earlier writes are pending), and SYNC (what follows waits until every earlier
    transaction's response was accepted). `slow[addr]` = cycles `reg_wbusy` stays high
    after a write to addr. bready (rready) stays low for `bready_delays[i]` cycles after the i-th
    response becomes valid. Returns a log of what happened, already checked by the monitors."""
    slow = slow or {}
    dut = AxiLiteSlave(ADDR_BITS)
    aw, w, ar = [], [], []
    barrier = (0, 0)
    for p in program:
        if p == SYNC:
            barrier = (len(aw), len(ar))
        elif p[0] == "W":
            aw.append(Item(p[1], p[3], barrier))
            w.append(Item(p[2], p[4], barrier))
        else:
            ar.append(Item(p[1], p[2], barrier))
    n_w, n_r = len(aw), len(ar)
    log = {"we": [], "re": [], "b": [], "r": [], "b_valid": [], "r_valid": [], "cycles": 0}
    regs = dict(init or {})                 # the register side

    async def bench(ctx):
        chans = {"aw": (aw, dut.awvalid, dut.awready, dut.awaddr),
                 "w": (w, dut.wvalid, dut.wready, dut.wdata),
                 "ar": (ar, dut.arvalid, dut.arready, dut.araddr)}
        pos = {c: 0 for c in chans}
        ready_at = {c: chans[c][0][0].gap if chans[c][0] else 0 for c in chans}
        busy_left = 0
        b_wait = r_wait = 0                  # cycles the pending response has been valid
        prev_b = prev_r = None               # (valid, ready, payload) on the previous cycle
        pending_w = pending_r = None         # accepted on the previous cycle: its strobe is due now
        for t in range(max_cycles):
            # ---- master outputs ----
            for c, (items, valid, _, payload) in chans.items():
                on = (pos[c] < len(items) and t >= ready_at[c]
                      and len(log["b"]) >= items[pos[c]].barrier[0] and len(log["r"]) >= items[pos[c]].barrier[1])
                ctx.set(valid, on)
                if on:
                    it = items[pos[c]]
                    it.offered = t if it.offered is None else it.offered
                    ctx.set(payload, it.payload)
                    if c == "w":
                        ctx.set(dut.wstrb, 0xF)
            nb, nr = len(log["b"]), len(log["r"])
            ctx.set(dut.bready, nb < n_w and b_wait >= (bready_delays[nb] if nb < len(bready_delays) else 0))
            ctx.set(dut.rready, nr < n_r and r_wait >= (rready_delays[nr] if nr < len(rready_delays) else 0))
            # ---- register side (combinational read data, write busy) ----
            ctx.set(dut.reg_wbusy, busy_left > 0)
            ctx.set(dut.reg_rdata, regs.get(ctx.get(dut.reg_addr), 0))
            # ---- sample everything before the clock edge ----
            hs = {c: ctx.get(valid) and ctx.get(ready) for c, (_, valid, ready, _) in chans.items()}
            we, re_ = ctx.get(dut.reg_we), ctx.get(dut.reg_re)
            reg_addr, reg_wdata = ctx.get(dut.reg_addr), ctx.get(dut.reg_wdata)
            b = (ctx.get(dut.bvalid), ctx.get(dut.bready), ctx.get(dut.bresp))
            r = (ctx.get(dut.rvalid), ctx.get(dut.rready), (ctx.get(dut.rdata), ctx.get(dut.rresp)))
            # ---- monitors ----
            assert not (we and re_), f"cycle {t}: reg_we and reg_re together"
            if b[0]:
                assert b[2] == OKAY, f"cycle {t}: bresp {b[2]}"
                log["b_valid"].append(t)
            if r[0]:
                assert r[2][1] == OKAY, f"cycle {t}: rresp {r[2][1]}"
                log["r_valid"].append(t)
            for name, prev, cur in (("B", prev_b, b), ("R", prev_r, r)):
                if prev and prev[0] and not prev[1]:
                    assert cur[0] and cur[2] == prev[2], (
                        f"cycle {t}: {name} response {prev[2]} withdrawn or changed to {cur} before it was accepted")
            assert hs["aw"] == hs["w"], f"cycle {t}: AW and W accepted apart (the slave takes them together)"
            # the strobe follows the handshake by one cycle, with the accepted address and data
            if pending_w is not None:
                assert we and not re_, f"cycle {t}: write accepted on {t - 1} without a reg_we strobe now"
                assert (reg_addr, reg_wdata) == pending_w, (
                    f"cycle {t}: reg_addr/reg_wdata {reg_addr:#x}/{reg_wdata:#x} are not the accepted beats")
            else:
                assert not we, f"cycle {t}: reg_we without a write handshake on the previous cycle"
            if pending_r is not None:
                assert re_ and reg_addr == pending_r, (
                    f"cycle {t}: read accepted on {t - 1}, reg_re={re_} reg_addr={reg_addr:#x}")
            else:
                assert not re_, f"cycle {t}: reg_re without a read handshake on the previous cycle"
            pending_w = (aw[pos["aw"]].payload, w[pos["w"]].payload) if hs["aw"] else None
            pending_r = ar[pos["ar"]].payload if hs["ar"] else None
            # ---- bookkeeping ----
            if we:
                log["we"].append((t, reg_addr, reg_wdata))
            if re_:
                log["re"].append((t, reg_addr, regs.get(reg_addr, 0)))
            if b[0] and b[1]:
                log["b"].append(t)
            if r[0] and r[1]:
                log["r"].append((t, r[2][0]))
            for c, (items, *_rest) in chans.items():
                if hs[c]:
                    items[pos[c]].accepted = t
                    pos[c] += 1
                    if pos[c] < len(items):
                        ready_at[c] = t + 1 + items[pos[c]].gap
            b_wait = 0 if (b[0] and b[1]) or not b[0] else b_wait + 1
            r_wait = 0 if (r[0] and r[1]) or not r[0] else r_wait + 1
            prev_b, prev_r = b, r
            if busy_left:
                busy_left -= 1
            if we:
                regs[reg_addr] = reg_wdata
                busy_left = slow.get(reg_addr, 0)
            await ctx.tick()
            if len(log["b"]) == n_w and len(log["r"]) == n_r and all(pos[c] == len(chans[c][0]) for c in chans):
                log["cycles"] = t + 1
                break
        else:
            raise AssertionError(f"not finished after {max_cycles} cycles: {len(log['b'])}/{n_w} B, "
                                 f"{len(log['r'])}/{n_r} R responses")
        # a few idle cycles: no stray strobes or responses
        for c in ("awvalid", "wvalid", "arvalid"):
            ctx.set(getattr(dut, c), 0)
        for _ in range(3):
            assert not (ctx.get(dut.bvalid) or ctx.get(dut.rvalid) or ctx.get(dut.reg_we) or ctx.get(dut.reg_re))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    log.update(aw=aw, w=w, ar=ar, regs=regs)
    check_scoreboard(program, log, slow, init or {})
    return log


def check_scoreboard(program, log, slow, init):
    """Writes in order, once each; reads return the register side's value at the read; one
    transaction at a time; the write response after reg_wbusy."""
    writes = [(p[1], p[2]) for p in program if p != SYNC and p[0] == "W"]
    reads = [p[1] for p in program if p != SYNC and p[0] == "R"]
    assert [(a, d) for _, a, d in log["we"]] == writes
    assert [a for _, a, _ in log["re"]] == reads
    assert [d for _, d in log["r"]] == [v for _, _, v in log["re"]], "read data differs from the register side"
    # the register side's value at each read, replayed from the write order
    model = dict(init)
    events = sorted([(t, "W", a, d) for t, a, d in log["we"]] + [(t, "R", a, v) for t, a, v in log["re"]])
    for _, kind, a, v in events:
        if kind == "W":
            model[a] = v
        else:
            assert v == model.get(a, 0)
    # one at a time: every strobe comes after the previous transaction's response was accepted
    done = sorted([(t, "W", i) for i, (t, _, _) in enumerate(log["we"])] +
                  [(t, "R", i) for i, (t, _, _) in enumerate(log["re"])])
    for (t0, k0, i0), (t1, _, _) in zip(done, done[1:]):
        resp = log["b"][i0] if k0 == "W" else log["r"][i0][0]
        assert t0 < resp < t1, f"a transaction was accepted on cycle {t1} before the response of the one on {t0}"
    # write responses: not before reg_wbusy has fallen, and at most two cycles after it
    for (t_we, a, _), t_b, bv in zip(log["we"], log["b"], _first_valid(log["b_valid"], log["b"])):
        busy = slow.get(a, 0)
        assert t_we + busy + 1 <= bv <= t_we + busy + 2, (
            f"write on {t_we} with {busy} busy cycles: bvalid first on {bv}")
        assert bv <= t_b


def _first_valid(valid_cycles, accepted):
    """For each accepted response, the first cycle of its valid run."""
    out, start = [], 0
    vs = sorted(valid_cycles)
    for t_acc in accepted:
        run = [v for v in vs if start <= v <= t_acc]
        out.append(run[0])
        start = t_acc + 1
    return out


SYNC = ("SYNC",)


def W(addr, data, aw_gap=0, w_gap=0):
    return ("W", addr, data, aw_gap, w_gap)


def R(addr, ar_gap=0):
    return ("R", addr, ar_gap)


def test_write_then_read():
    program = [W(0x04, 0x12345678), W(0x08, 0xDEADBEEF), W(0xFC, 0xFFFFFFFF), SYNC, R(0x04), R(0x08), R(0xFC), R(0x10)]
    log = run_axil(program, init={0x10: 0x0BADF00D})
    assert [d for _, d in log["r"]] == [0x12345678, 0xDEADBEEF, 0xFFFFFFFF, 0x0BADF00D]


@pytest.mark.parametrize("aw_gap,w_gap", [(0, 0), (0, 3), (3, 0), (1, 2), (5, 1)])
def test_address_and_data_in_either_order(aw_gap, w_gap):
    """AW before W, W before AW, or together: one write strobe once both are there, with both
    beats, and both channels accepted on that cycle (valid held until then)."""
    program = [W(0x20, 0xA5A5_0001, aw_gap, w_gap), SYNC, W(0x24, 0xA5A5_0002, w_gap, aw_gap), SYNC, R(0x20), R(0x24)]
    log = run_axil(program)
    for a, d in zip(log["aw"], log["w"]):
        assert a.accepted == d.accepted == max(a.offered, d.offered)
    assert [d for _, d in log["r"]] == [0xA5A5_0001, 0xA5A5_0002]


def test_read_passes_a_half_offered_write():
    """A write whose data has not arrived yet does not block a read offered meanwhile."""
    program = [W(0x30, 0x1111, aw_gap=0, w_gap=6), R(0x30, ar_gap=1)]
    log = run_axil(program, init={0x30: 0x2222})
    (t_re, _, _), (t_we, _, _) = log["re"][0], log["we"][0]
    assert t_re < t_we and log["r"][0][1] == 0x2222


def test_write_before_read_when_offered_together():
    """AW, W and AR valid on the same cycle: the write goes first, so a read of the same address
    returns the new value."""
    program = [W(0x40, 0xCAFE), R(0x40)]
    log = run_axil(program, init={0x40: 0x1})
    assert log["we"][0][0] < log["re"][0][0]
    assert log["r"][0][1] == 0xCAFE


@pytest.mark.parametrize("delay", [1, 2, 5])
def test_response_backpressure(delay):
    """bready / rready low for a few cycles: the response holds (monitors) and nothing else is
    accepted meanwhile (scoreboard), even with the next transactions already offered."""
    program = [W(0x50, 0x5), W(0x54, 0x6), SYNC, R(0x50), R(0x54), SYNC, W(0x50, 0x7), SYNC, R(0x50)]
    log = run_axil(program, bready_delays=[delay, 0, delay], rready_delays=[delay, delay, 0])
    assert [d for _, d in log["r"]] == [0x5, 0x6, 0x7]
    b_first = _first_valid(log["b_valid"], log["b"])
    assert log["b"][0] - b_first[0] == delay and log["b"][2] - b_first[2] == delay
    r_first = _first_valid(log["r_valid"], [t for t, _ in log["r"]])
    assert log["r"][0][0] - r_first[0] == delay


def test_back_to_back():
    """Valid held high across transactions (next beat on the cycle after each handshake): every
    write and read completes once, in order, with ready responses taken at once."""
    writes = [W(4 * i, (0x01010101 * (i + 1)) ^ 0x80000000) for i in range(8)]
    reads = [R(4 * i) for i in reversed(range(8))]
    log = run_axil(writes + [SYNC] + reads)
    assert [d for _, d in log["r"]] == [p[2] for p in reversed(writes)]
    # no transaction waits longer than the slave's own turnaround (the master never stalls):
    # handshake, strobe, response (a write's after its wait cycle), then the next handshake
    starts = [t for t, _, _ in log["we"]] + [t for t, _, _ in log["re"]]
    assert all(b - a == 4 for a, b in zip(starts[:7], starts[1:8])), starts
    assert all(b - a == 3 for a, b in zip(starts[8:], starts[9:])), starts


@pytest.mark.parametrize("busy", [1, 2, 7])
def test_wbusy_stalls_the_write_response(busy):
    """A write to a slow register: bvalid waits until reg_wbusy has fallen (scoreboard), and the read
    offered right behind it is not accepted until that response is (one at a time)."""
    program = [W(0x60, 0x77), R(0x60), SYNC, W(0x64, 0x88), R(0x64)]
    log = run_axil(program, slow={0x60: busy})
    t_we = log["we"][0][0]
    b_first = _first_valid(log["b_valid"], log["b"])[0]
    assert b_first > t_we + busy, "write response before reg_wbusy fell"
    assert log["re"][0][0] > log["b"][0]
    # the fast register's response is not delayed
    t_we2 = log["we"][1][0]
    assert _first_valid(log["b_valid"], log["b"])[1] - t_we2 < b_first - t_we
    assert [d for _, d in log["r"]] == [0x77, 0x88]


@pytest.mark.parametrize("seed", range(4))
def test_random_traffic(seed):
    """Random mixes of writes and reads, channel gaps, slow registers and back-pressure."""
    rng = random.Random(seed)
    addrs = [4 * i for i in range(6)]
    program = []
    for _ in range(60):
        if rng.random() < 0.2:
            program.append(SYNC)
        if rng.random() < 0.5:
            program.append(W(rng.choice(addrs), rng.getrandbits(32), rng.randint(0, 3), rng.randint(0, 3)))
        else:
            program.append(R(rng.choice(addrs), rng.randint(0, 3)))
    slow = {a: rng.randint(0, 4) for a in addrs[:3]}
    n_w = sum(p[0] == "W" for p in program)
    n_r = sum(p[0] == "R" for p in program)
    run_axil(program, slow=slow, bready_delays=[rng.randint(0, 3) for _ in range(n_w)],
             rready_delays=[rng.randint(0, 3) for _ in range(n_r)], max_cycles=1000,
             init={a: rng.getrandbits(32) for a in addrs})
