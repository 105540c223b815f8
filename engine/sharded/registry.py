"""The scheduler registry: one app instance's view of the stock partitions.

For every partition the registry holds what this app last learned: remaining
stock (A + B), the active sub-domain and a state. It learns from the replies
to its own requests and from a periodic refresh, so between refreshes it can
be stale: a partition another app refilled still looks empty here, one another
app drained still looks full. Selection only considers partitions that are
``ACTIVE`` and believed to hold at least ``qty`` beyond what requests in
flight there may take (the sufficiency check): this app's own, times the
number of apps, as every app sees its share of the buyers, over
``inflight_share``. Without that, an overloaded node's queue fills with
requests the partition can only refuse; with a share below 1 the queue stays
short enough for a refill to overtake the stock's depletion.

The registry also keeps, per partition, the largest ``sold`` counter a refresh
has read. Sold counters only grow and stock only leaves the sale by being sold,
so ``initial - sum(sold read)`` bounds from above what remains unsold anywhere
(pool, partitions, in flight), however stale the reads: a buyer asking for more
than that bound can be told "sold out" without a doubt (:meth:`unsold_bound`).

States: ``ACTIVE`` (selectable), ``DRAINED`` (empty, but the pool may refill
it or a refill is on its way), ``REMOVED`` (empty, the pool is empty and no
refill is out, or retired: it has left the registry; only a refresh showing
stock brings it back).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from engine.streams import Uniforms


class State(IntEnum):
    ACTIVE = 0
    DRAINED = 1
    REMOVED = 2


@dataclass(slots=True)
class PartitionView:
    """What one app believes about one partition."""

    index: int
    node: int
    remaining: int = 0
    active: int = 0
    state: State = State.ACTIVE
    reserved: int = 0  # units this app's requests in flight to it may take
    refill_pending: bool = False  # a refill ticket may be out for it: stock may still arrive


POLICIES = ("random", "round_robin", "p2c", "p2c_load")
_ACTIVE = State.ACTIVE  # (bound once: read on every request's path)


class Registry:
    """Partition views plus a selection policy.

    ``random``: uniform among eligible partitions. ``round_robin``: the next
    eligible one after the last pick. ``p2c``: of two random eligible ones,
    the one believed to hold more stock. ``p2c_load``: of two, the one whose
    node has fewer of this app's requests outstanding (ties: more stock).
    """

    def __init__(self, nodes: list[int], policy: str, rng: np.random.Generator | Uniforms, apps: int = 1,
                 inflight_share: float = 1.0):
        if policy not in POLICIES:
            raise ValueError(f"unknown selection policy {policy!r}; choose from: {', '.join(POLICIES)}")
        self.views = [PartitionView(i, node) for i, node in enumerate(nodes)]
        self.policy = policy
        self.rng = rng
        # Units in flight, all apps together, may take at most inflight_share of a partition's
        # believed stock: this app's own times the number of apps, over the share.
        self.load = apps / inflight_share
        self.pool_empty = False  # what this app last learned about the pool
        self.outstanding = [0] * (max(nodes) + 1 if nodes else 0)  # this app's requests in flight per node
        self.version = 0  # bumped whenever a partition may have become eligible (waiters look again)
        self._cursor = -1
        self._free: float = 0.0
        self._free_version = -1
        self.sold = [0] * len(self.views)  # per partition: the largest sold counter a refresh read
        self.sold_total = 0
        # bound once: selection is on every request's path (registries sharing a generator share one Uniforms)
        self._random = rng if isinstance(rng, Uniforms) else rng.random

    # --- selection --------------------------------------------------------
    def eligible(self, qty: int, tried: tuple[int, ...] = ()) -> list[int]:
        load = self.load
        return [v.index for v in self.views
                if v.state is _ACTIVE and v.remaining - v.reserved * load >= qty and v.index not in tried]

    def select(self, qty: int, tried: tuple[int, ...] = ()) -> int | None:
        """A partition to try for ``qty`` units, or None when none looks sufficient."""
        views = self.views
        n = len(views)
        if self.policy == "round_robin":
            for step in range(1, n + 1):
                i = (self._cursor + step) % n
                v = views[i]
                if v.state is State.ACTIVE and v.remaining - v.reserved * self.load >= qty and i not in tried:
                    self._cursor = i
                    return i
            return None
        first = self._pick(qty, tried)
        if first is None or self.policy == "random":
            return first
        second = self._pick(qty, (*tried, first))  # two distinct candidates
        if second is None:
            return first
        a, b = views[first], views[second]
        if self.policy == "p2c":
            return first if a.remaining - a.reserved >= b.remaining - b.reserved else second
        load_a, load_b = self.outstanding[a.node], self.outstanding[b.node]
        if load_a != load_b:
            return first if load_a < load_b else second
        return first if a.remaining >= b.remaining else second

    def _pick(self, qty: int, tried: tuple[int, ...]) -> int | None:
        """Uniform among eligible partitions: a few blind draws, then an exact list."""
        views = self.views
        n = len(views)
        draw = self._random
        load = self.load
        for _ in range(4):
            v = views[int(draw() * n)]
            if v.state is _ACTIVE and v.remaining - v.reserved * load >= qty and v.index not in tried:
                return v.index
        candidates = self.eligible(qty, tried)
        if not candidates:
            return None
        return candidates[int(self._random() * len(candidates))]

    # --- learning -----------------------------------------------------------
    def send(self, index: int, qty: int) -> None:
        """A request for ``qty`` units leaves for partition ``index``."""
        v = self.views[index]
        v.reserved += qty
        self.outstanding[v.node] += 1
        self.version += 1

    def reply(self, index: int, qty: int) -> None:
        """Its reply is back (before learning what it says)."""
        v = self.views[index]
        v.reserved -= qty
        self.outstanding[v.node] -= 1
        self.version += 1

    def on_sold(self, index: int, remaining: int, active: int) -> None:
        """A deduction succeeded; the reply says what the partition holds now."""
        self.version += 1
        v = self.views[index]
        v.remaining = remaining
        v.active = active
        if remaining == 0:  # whether a refill is on its way, a refusal or a refresh will tell
            v.state = State.DRAINED
            v.refill_pending = True

    def on_refused(self, index: int, remaining: int, retired: bool = False, refill_pending: bool = False) -> State:
        """The partition answered "not enough" (holding ``remaining``; a refill may be out) or "retired"."""
        v = self.views[index]
        v.remaining = remaining
        v.refill_pending = refill_pending
        if retired or (remaining == 0 and self.pool_empty and not refill_pending):
            v.state = State.REMOVED
        elif remaining == 0:
            v.state = State.DRAINED
        return v.state

    def on_injected(self, index: int, credited: int) -> None:
        """An injection this app ran credited ``credited`` units to the partition."""
        v = self.views[index]
        if credited > 0:  # a retired partition credits nothing, so this one is live
            v.remaining += credited
            v.state = State.ACTIVE
            self.version += 1

    def on_pool(self, units: int) -> None:
        """The pool holds ``units`` (a refresh or an injection's grant told us)."""
        self.pool_empty = units <= 0
        self.version += 1
        if self.pool_empty:
            for v in self.views:
                if v.state is State.DRAINED and not v.refill_pending:
                    v.state = State.REMOVED

    def on_status(self, index: int, a: int, b: int, active: int, refill_pending: bool = False,
                  sold: int = 0) -> State:
        """A refresh read the partition: A, B, the active sub-domain (-1: retired), a refill out, sold."""
        if sold > self.sold[index]:
            self.sold_total += sold - self.sold[index]
            self.sold[index] = sold
        v = self.views[index]
        v.refill_pending = refill_pending
        if active < 0:
            v.remaining, v.state = 0, State.REMOVED
            return v.state
        if a + b > v.remaining or v.state is not State.ACTIVE:
            self.version += 1
        v.remaining = a + b
        v.active = active
        if v.remaining > 0:
            v.state = State.ACTIVE
        else:
            v.state = State.REMOVED if self.pool_empty and not refill_pending else State.DRAINED
        return v.state

    # --- questions ----------------------------------------------------------
    def most_free(self) -> float:
        """The most units any selectable partition can still take (cheap to ask again: cached)."""
        if self._free_version != self.version:
            load = self.load
            self._free = max((v.remaining - v.reserved * load for v in self.views if v.state is State.ACTIVE),
                             default=0)
            self._free_version = self.version
        return self._free

    @property
    def exhausted(self) -> bool:
        """True when every partition has left the registry: the sale is over, for this app."""
        return all(v.state is State.REMOVED for v in self.views)

    def hopeless(self, qty: int) -> bool:
        """True when nothing can serve ``qty`` units, now or later, as far as this app knows.

        No partition holds ``qty``, no refill is on its way and the pool is empty. Stock may
        remain, spread in pieces smaller than ``qty`` (what ``return_stranded`` gathers again).
        """
        if not self.pool_empty:
            return False
        return not any(v.state is not State.REMOVED and (v.remaining >= qty or v.refill_pending)
                       for v in self.views)

    def unsold_bound(self, initial: int) -> int:
        """At least what remains unsold anywhere right now (see the module docstring)."""
        return initial - self.sold_total

    def live(self) -> list[int]:
        return [v.index for v in self.views if v.state is State.ACTIVE and v.remaining > 0]
