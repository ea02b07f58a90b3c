"""C2C slice (hdl/c2c.py): SEND and RECV over a chip-to-chip link, at the level of link times.

The model keeps no frames and no flits: what the hardware guarantees (isa/link.py) is that vector
k of a SEND issued on t, with link time tau = t + c2c_send_sample + k*flits, can be taken by a
RECV on the other chip from cycle tau + L on, in the order it was sent, whatever the physical
delay up to L. So a link end is the list of vectors its chip sent (`LinkEnd.sent`: sample cycle,
link time, the lazy SendOp element) and the peer it receives from. A RECV element taking vector j
on cycle c is legal if j was sent and tau_j + lat <= c; otherwise the chip stops with LINK_RECV.
Faults (seeded bit flips on frames arriving at an end) are counted per codeword as the receiver
counts them; a frame with a codeword of two flips is bad, and a RECV taking it stops with LINK_FEC.

Whether vector j exists and is due is known for certain only once the sender has run past its
sample cycle, so a RECV's elements are checked as the issue loop reaches their take cycles
(`RecvOp.check`, heap events of kind 2 in sim/queue.py); a whole run of due vectors is accepted
at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from isa import spec
from isa.config import ChipConfig
from isa.link import LinkFormat, waiting

from .lazy import Op

Err = spec.ErrorCode


@dataclass
class LinkEnd:
    """One end of a link: the vectors sent from it and, for the vectors arriving, the faults."""
    chip: int
    name: str
    position: int
    latency: int = 0
    peer: "LinkEnd | None" = None
    sent: list = field(default_factory=list)      # (sample cycle, link time, SendOp, element)
    faults: dict = field(default_factory=dict)    # arriving frame index -> [(codeword, bit), ...]
    takes: list = field(default_factory=list)     # the cycle each vector RECVs claimed is taken on

    @property
    def up(self) -> bool:
        return self.peer is not None

    def stop(self, t_err: int) -> None:
        """The sending chip halted at the end of t_err: vectors it would sample later never leave."""
        self.sent = [v for v in self.sent if v[0] <= t_err]

    def frame_status(self, j: int) -> tuple[int, int]:
        """(corrected, uncorrectable) codewords of arriving frame j."""
        flips: dict[int, set] = {}
        for cw, bit in self.faults.get(j, ()):
            flips.setdefault(cw, set()).symmetric_difference_update({bit})
        n = [len(b) for b in flips.values()]
        return sum(1 for x in n if x == 1), sum(1 for x in n if x == 2)

    def most_waiting(self, config: ChipConfig, until: int) -> tuple[int, int]:
        """(the most vectors this end's receive buffer must hold while its chip runs, up to cycle
        `until`, and the cycle): isa/link.py `waiting`."""
        if self.peer is None:
            return 0, 0
        return waiting([v[1] for v in self.peer.sent], self.takes, config, until)

    def counters(self) -> tuple[int, int]:
        """(corrected, uncorrectable) codewords over every frame that arrived here."""
        c = u = 0
        if self.peer is not None:
            for j in range(len(self.peer.sent)):
                a, b = self.frame_status(j)
                c, u = c + a, u + b
        return c, u


class C2cSlice:
    def __init__(self, position: int, config: ChipConfig, fabric, timeline, end: LinkEnd | None = None):
        self.position = position
        self.T = spec.timing(config)
        self.flits = LinkFormat.of(config).flits
        self.lanes = config.lanes
        self.fabric, self.timeline = fabric, timeline
        self.end = end

    def refuse(self, mnemonic: str, ops: dict):
        return None if self.end is not None and self.end.up else Err.LINK_DOWN

    def issue(self, t: int, mnemonic: str, ops: dict):
        if mnemonic == "SEND":
            op = SendOp(self, t, ops)
            self.end.sent += [(op.key + k, t + self.T["c2c_send_sample"] + k * self.flits, op, k) for k in range(op.n)]
            self.timeline.add(op)
            return None
        op = RecvOp(self, t, ops, len(self.end.takes))
        self.end.takes += [op.key + k for k in range(op.n)]
        self.fabric.drive(ops["dir"], ops["stream"], self.position, t + self.T["c2c_recv_drive"], op.n, op, None)
        self.timeline.add(op)
        return op


class SendOp(Op):
    def __init__(self, c2c: C2cSlice, t: int, ops: dict):
        super().__init__(t, ops["count"], t + c2c.T["c2c_send_sample"])
        self.c2c, self.d, self.stream = c2c, ops["dir"], ops["stream"]
        self.vals = np.zeros((self.n, c2c.lanes), np.uint8)

    def compute(self, a: int, b: int) -> None:
        c = self.c2c
        self.vals[a:b] = c.fabric.values(self.d, self.stream, c.position, self.key + a, b - a)


class RecvOp(Op):
    """Elements k = 0..n-1 take vectors base+k of what the peer sent; `check` decides them in order."""

    def __init__(self, c2c: C2cSlice, t: int, ops: dict, base: int):
        super().__init__(t, ops["count"], t + c2c.T["c2c_recv_take"])
        self.c2c, self.base, self.lat = c2c, base, ops["lat"]
        self.vals = np.zeros((self.n, c2c.lanes), np.uint8)
        self.checked = 0            # elements [0, checked) are known to take a due, good vector
        self.next_check = self.key
        self.pc = 0                 # set by the issue loop

    def _due(self, k: int, t: int):
        """Element k's verdict as known on cycle t: True (fine), an ErrorCode, or None (not yet known)."""
        sent = self.c2c.end.peer.sent
        j, take = self.base + k, self.key + k
        if j < len(sent) and sent[j][0] < t and sent[j][1] + self.lat <= take:
            return Err.LINK_FEC if self.c2c.end.frame_status(j)[1] else True
        return Err.LINK_RECV if take <= t else None

    def check(self, t: int):
        """Accept every element decidable on cycle t; returns the next cycle to look again, None when
        all are accepted, or (ErrorCode, pc) for an element taken on t."""
        while self.checked < self.n:
            k = self.checked
            v = self._due(k, t)
            if v is True:
                self.checked += 1
                continue
            if v is None or self.key + k > t:       # an error happens on its take cycle, not before
                return max(self.key + k, t + 1) if v is None else self.key + k
            return v, self.pc
        return None

    def compute(self, a: int, b: int) -> None:
        sent = self.c2c.end.peer.sent
        for k in range(a, b):
            j = self.base + k
            if k < self.checked:
                _, _, op, e = sent[j]
                op.need(e, e + 1)
                self.vals[k] = op.vals[e]
            # else: the element failed (the chip stops before it drives): zeros

    def drive(self, plane, a: int, b: int) -> np.ndarray:
        self.need(a, b)
        return self.vals[a:b]
