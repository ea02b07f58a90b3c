"""Run control: START, the stop (DONE, or DONE | ERROR on an illegal instruction), CYCLES, ECC counts.

START sets RUNNING; cycle 0 is the first running cycle. The chip stops (DONE) the cycle after
one on which no slice is busy, leaving CYCLES at the number of busy cycles, or when a slice
reports an error (DONE | ERROR, CYCLES counts the failing cycle too, ERROR_INFO says where: the
chip top hands in the westmost failing slice's). Where the configuration gives the error stop a
cycle (spec.TIMING `error_stop` 1) the slices' errors arrive here from registers, a cycle late:
the chip stops at the end of the cycle after the error, which CYCLES also counts. Nothing issues,
reads, writes or drives after the stop, because every slice sees `running` low.
"""
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from isa import spec
from isa.config import ChipConfig, SliceKind

from .host_regs import RunCommand, RunStatus, reg_layout


class RunControl(wiring.Component):
    """The chip's run state, as STATUS, CYCLES, ERROR_INFO and the ECC counters show it.

    Parameters
    ----------
    config : ChipConfig
        the number of MEM slices (how many ECC events can happen on one cycle).

    Members
    -------
    cmd : In(RunCommand())
        START (only sent while idle) and CLEAR, from the host register file.
    status : Out(RunStatus())
        `running` (every slice runs while it is high), `done`, `error`, `ecc_sticky`, `cycles`,
        `err_info`, `ecc_corrected`, `ecc_uncorrectable`.
    busy : In(1)
        some slice still has something to do this cycle.
    err, err_info : In
        some slice raises an error this cycle (with `error_stop` 1: raised one on the previous
        cycle); the ERROR_INFO of the previous cycle's errors (the westmost's), recorded on the
        cycle after the error (a START or CLEAR then still wins).
    corrected, uncorrectable : In(MEM slices)
        ECC events of program reads on the previous cycle, one bit per MEM slice (registered in
        the slices).
    parked : In(1)
        some queue is parked at a SYNC.
    quiet : Out(1)
        running, nothing busy, some queue parked: the chip holds this cycle (with `error_stop` 1:
        held on the previous cycle and not released on it).
    now : Out(32)
        the program time of this cycle: CYCLES, which (with `error_stop` 1) counts the previous
        cycle a cycle late, so plus whether it was busy. The SYNC unit and the links read it.
    release : In(1); t_rel : In(32)
        the SYNC releases this cycle; CYCLES becomes t_rel.
    timeout : In(1)
        the SYNC held too long: an error stop like a slice's (the parked queues name it in
        ERROR_INFO).

    `busy` and `err` come from the slices as if the chip were running (hdl/queue.py): `running`
    is applied here, once, so the stop's loop crosses the device once per cycle. With
    `error_stop` 1 nothing here has the slices' flags in front of anything but a register: the
    errors arrive registered, and `busy` and `parked` are registered on arrival; the idle stop,
    CYCLES and `quiet` (so the SYNC unit) work from those, a cycle late. Programs see no
    difference: only DONE and a SYNC's release come a cycle later in wall time.
    """

    def __init__(self, config: ChipConfig):
        n = len(config.slices_of(SliceKind.MEM))
        self.lag = spec.timing(config)["error_stop"]
        if self.lag > 1:
            raise NotImplementedError(f"run control implements error_stop 0 or 1, config {config.name!r} says {self.lag}")
        super().__init__({"cmd": In(RunCommand()), "status": Out(RunStatus()), "busy": In(1), "err": In(1),
                          "err_info": In(reg_layout("ERROR_INFO")),
                          "corrected": In(n), "uncorrectable": In(n),
                          "parked": In(1), "quiet": Out(1), "now": Out(32), "release": In(1), "t_rel": In(32),
                          "timeout": In(1)})

    def elaborate(self, platform):
        m = Module()
        st = self.status
        if self.lag:
            # busy, and quiet (nothing busy, some queue parked), on the previous cycle while
            # running (cycle 0 has no previous one to count). A chip quiet on t-1 is still quiet on
            # t (nothing starts while it holds) unless released on t-1.
            counted, held, released = Signal(), Signal(), Signal()
            m.d.sync += [counted.eq(st.running & self.busy), held.eq(st.running & ~self.busy & self.parked),
                         released.eq(self.release)]
            m.d.comb += [self.quiet.eq(st.running & held & ~released), self.now.eq(st.cycles + counted)]
        else:
            counted = self.busy
            m.d.comb += [self.quiet.eq(st.running & ~self.busy & self.parked), self.now.eq(st.cycles)]
        err = self.err | self.timeout
        capture = Signal()           # the cycle after an error: ERROR_INFO arrives now
        if self.lag:                 # a slice's error arrives when its info does (the timeout is local)
            m.d.sync += capture.eq(st.running & self.timeout)
            record = capture | (st.running & self.err)
        else:
            m.d.sync += capture.eq(st.running & err)
            record = capture
        with m.If(record):
            m.d.sync += st.err_info.eq(self.err_info)
        with m.If(self.cmd.start):
            m.d.sync += [st.running.eq(1), st.cycles.eq(0), st.done.eq(0), st.error.eq(0), st.err_info.eq(0)]
        # ECC events (gated by `running` in the MEM slices) arrive a cycle after they happen, from
        # each slice's own registers: the sum over the slices and the 32-bit add are then not
        # behind the SRAM's output, its decoder and a wire across the chip in one cycle. A CLEAR
        # on that cycle still wins.
        m.d.sync += [st.ecc_corrected.eq(st.ecc_corrected + sum(self.corrected)),
                     st.ecc_uncorrectable.eq(st.ecc_uncorrectable + sum(self.uncorrectable))]
        with m.If(self.uncorrectable != 0):
            m.d.sync += st.ecc_sticky.eq(1)
        with m.If(self.cmd.clear):
            m.d.sync += [st.done.eq(0), st.error.eq(0), st.ecc_sticky.eq(0), st.ecc_corrected.eq(0),
                         st.ecc_uncorrectable.eq(0), st.err_info.eq(0)]
        # The stop and the count are decided apart: a SYNC release (which comes out of the SYNC
        # unit's logic behind `quiet`) only happens while some queue is parked, when the idle stop
        # cannot, so it moves CYCLES but is not in front of `running` and `done`.
        # The idle stop comes a cycle late, from a register: a cycle on which no slice is busy and
        # no queue parked is followed by another (nothing can start without an instruction), and
        # CYCLES counts busy cycles only, so it reads the same; the slices' busy flags reach it
        # from across the chip with the whole cycle to do it in. (`idle` while the chip is idle is
        # that of the words loaded, as the slices report busy as if running: an empty program
        # still stops after cycle 0.)
        idle = Signal()
        m.d.sync += idle.eq(~self.busy & ~self.parked)
        with m.If(st.running):
            with m.If(err | idle):
                m.d.sync += [st.running.eq(0), st.done.eq(1)]
            # (`counted`: this cycle's busy, or the previous one's, which CYCLES then counts now;
            # a cycle that fails is busy, and so is counted along with the stopping one)
            with m.If(err):
                m.d.sync += [st.error.eq(1), st.cycles.eq(self.now + 1)]
            with m.Elif(self.release):
                m.d.sync += st.cycles.eq(self.t_rel)
            with m.Elif(counted):
                m.d.sync += st.cycles.eq(st.cycles + 1)
        return m
