"""Issued instructions as lazily computed element arrays, and the windows that retire them.

Why: the model's cost must scale with instructions, not with elements. An instruction with
count=n is one `Op`; its n element values are computed by numpy over whole ranges of elements
when something asks for them (a downstream sample, a state query, the end of a window) and then
memoized. Every latency (isa.spec.timing of the configuration) is >= 1, so an element decided on
cycle c depends only on values of cycles < c: a demand recurses strictly backwards in time and
always ends.

State (SRAM words, VXM registers, MXM weights and accumulators) lives in `Store`s. A store holds
the state as of the start of the current window [F, G) in plain arrays plus the ops whose writes
land at F or later; a query inside the window looks at those writes first. `Timeline.advance_to`
closes windows: it forces every element decided in the window, then lets each store fold the
window's writes into its arrays in cycle order, so nothing before F is ever evaluated again.
"""
from __future__ import annotations

import numpy as np

WINDOW = 256        # cycles per window: bounds the in-window write lists a query compares against


class Op:
    """One issued instruction: elements k = 0..n-1, element k decided on cycle `key + k`
    (its sample or access cycle). Subclasses fill their value arrays in `compute(a, b)`."""

    def __init__(self, t: int, n: int, key: int):
        self.t, self.n, self.key = t, n, key
        self.ready = 0          # elements [0, ready) are computed
        self._done = None       # bool [n]: elements computed out of order, beyond `ready`

    def compute(self, a: int, b: int) -> None:
        raise NotImplementedError

    def need(self, a: int, b: int) -> None:
        """Make elements [a, b) available (computing the missing ones once)."""
        if b <= self.ready:
            return
        if a < self.ready:
            a = self.ready
        done = self._done
        if done is not None:
            miss = np.flatnonzero(~done[a:b])
            if not len(miss):
                return
            a, b = a + int(miss[0]), a + int(miss[-1]) + 1
        self.compute(a, b)
        if a <= self.ready:                 # (a nested demand may have moved `ready` meanwhile)
            self.ready = max(self.ready, b)
            if done is not None and self.ready < self.n:
                rest = done[self.ready:]
                self.ready += len(rest) if rest.all() else int(np.argmin(rest))
        else:
            if done is None:
                self._done = done = np.zeros(self.n, bool)
            done[a:b] = True

    def force_until(self, g: int) -> None:
        """Compute every element decided before cycle g."""
        b = min(self.n, g - self.key)
        if b > 0:
            self.need(0, b)


class Store:
    """Interface of a piece of state kept per window (see the module docstring)."""

    def next_change(self) -> int | None:
        """Earliest cycle of a write not yet folded into the arrays (None: none pending)."""
        return None

    def apply(self, g: int) -> None:
        """Fold every pending write of a cycle < g into the arrays (their values are computed)."""

    def drop_after(self, stop: int) -> None:
        """Forget writes of cycles >= stop (the run halted on an error before them)."""


class Timeline:
    """The window [F, G) bookkeeping: open ops, stores, and closing windows in cycle order."""

    def __init__(self, stores: list[Store]):
        self.stores = stores
        self.active: list[Op] = []      # ops with elements decided at F or later, in issue order
        self.F = 0

    def add(self, op: Op) -> None:
        self.active.append(op)

    def _next_work(self) -> int | None:
        cands = [op.key + op.ready for op in self.active]
        cands += [c for c in (s.next_change() for s in self.stores) if c is not None]
        return min(cands) if cands else None

    def advance_to(self, target: int) -> None:
        """Close windows until F >= target: everything decided or written before `target` is final.
        Callers guarantee that every instruction issued before `target` has been added."""
        while self.F < target:
            nxt = self._next_work()
            if nxt is None or nxt >= target:
                self.F = target
                break
            if nxt > self.F:
                self.F = nxt
            g = min(self.F + WINDOW, target)
            for op in self.active:
                op.force_until(g)
            for s in self.stores:
                s.apply(g)
            self.active = [op for op in self.active if op.key + op.n > g]
            self.F = g
