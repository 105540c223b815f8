"""The scheduler registry: one app instance's view of the stock partitions.

For every partition the registry holds what this app last learned: remaining
stock (A + B), the active sub-domain and a state. It learns from the replies
to its own requests and from a periodic refresh, so between refreshes it can
be stale: a partition another app refilled still looks empty here, one another
app drained still looks full. Selection only considers partitions that are
``ACTIVE`` and believed to hold at least ``qty`` (the sufficiency check).

States: ``ACTIVE`` (selectable), ``DRAINED`` (answered "not enough" but the
pool may refill it), ``REMOVED`` (exhausted and the pool is empty, or retired:
it has left the registry; only a refresh showing stock brings it back).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class State(IntEnum):
    ACTIVE = 0
    DRAINED = 1
    REMOVED = 2


@dataclass
class PartitionView:
    """What one app believes about one partition."""

    index: int
    node: int
    remaining: int = 0
    active: int = 0
    state: State = State.ACTIVE


POLICIES = ("random", "round_robin", "p2c", "p2c_load")


class Registry:
    """Partition views plus a selection policy.

    ``random``: uniform among eligible partitions. ``round_robin``: the next
    eligible one after the last pick. ``p2c``: of two random eligible ones,
    the one believed to hold more stock. ``p2c_load``: of two, the one whose
    node has fewer of this app's requests outstanding (ties: more stock).
    """

    def __init__(self, nodes: list[int], policy: str, rng: np.random.Generator):
        if policy not in POLICIES:
            raise ValueError(f"unknown selection policy {policy!r}; choose from: {', '.join(POLICIES)}")
        self.views = [PartitionView(i, node) for i, node in enumerate(nodes)]
        self.policy = policy
        self.rng = rng
        self.pool_empty = False  # what this app last learned about the pool
        self.outstanding = [0] * (max(nodes) + 1 if nodes else 0)  # this app's requests in flight per node
        self._cursor = -1
        self._random = rng.random  # bound once: selection is on every request's path

    # --- selection --------------------------------------------------------
    def eligible(self, qty: int, tried: tuple[int, ...] = ()) -> list[int]:
        return [v.index for v in self.views
                if v.state is State.ACTIVE and v.remaining >= qty and v.index not in tried]

    def select(self, qty: int, tried: tuple[int, ...] = ()) -> int | None:
        """A partition to try for ``qty`` units, or None when none looks sufficient."""
        views = self.views
        n = len(views)
        if self.policy == "round_robin":
            for step in range(1, n + 1):
                i = (self._cursor + step) % n
                v = views[i]
                if v.state is State.ACTIVE and v.remaining >= qty and i not in tried:
                    self._cursor = i
                    return i
            return None
        first = self._pick(qty, tried)
        if first is None or self.policy == "random":
            return first
        second = self._pick(qty, tried)
        if second is None or second == first:
            return first
        a, b = views[first], views[second]
        if self.policy == "p2c":
            return first if a.remaining >= b.remaining else second
        load_a, load_b = self.outstanding[a.node], self.outstanding[b.node]
        if load_a != load_b:
            return first if load_a < load_b else second
        return first if a.remaining >= b.remaining else second

    def _pick(self, qty: int, tried: tuple[int, ...]) -> int | None:
        """Uniform among eligible partitions: a few blind draws, then an exact list."""
        views = self.views
        n = len(views)
        for _ in range(4):
            v = views[int(self._random() * n)]
            if v.state is State.ACTIVE and v.remaining >= qty and v.index not in tried:
                return v.index
        candidates = self.eligible(qty, tried)
        if not candidates:
            return None
        return candidates[int(self._random() * len(candidates))]

    # --- learning -----------------------------------------------------------
    def on_sold(self, index: int, remaining: int, active: int) -> None:
        """A deduction succeeded; the reply says what the partition holds now."""
        v = self.views[index]
        v.remaining = remaining
        v.active = active
        if remaining == 0:
            v.state = State.REMOVED if self.pool_empty else State.DRAINED

    def on_refused(self, index: int, remaining: int, retired: bool = False) -> State:
        """The partition answered "not enough" (holding ``remaining``) or "retired"."""
        v = self.views[index]
        v.remaining = remaining
        if retired or (remaining == 0 and self.pool_empty):
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

    def on_pool(self, units: int) -> None:
        """The pool holds ``units`` (a refresh or an injection's grant told us)."""
        self.pool_empty = units <= 0
        if self.pool_empty:
            for v in self.views:
                if v.state is State.DRAINED:
                    v.state = State.REMOVED

    def on_status(self, index: int, a: int, b: int, active: int) -> State:
        """A refresh read the partition: A, B and the active sub-domain (-1: retired)."""
        v = self.views[index]
        if active < 0:
            v.remaining, v.state = 0, State.REMOVED
            return v.state
        v.remaining = a + b
        v.active = active
        if v.remaining > 0:
            v.state = State.ACTIVE
        else:
            v.state = State.REMOVED if self.pool_empty else State.DRAINED
        return v.state

    # --- questions ----------------------------------------------------------
    @property
    def exhausted(self) -> bool:
        """True when every partition has left the registry: the sale is over, for this app."""
        return all(v.state is State.REMOVED for v in self.views)

    def live(self) -> list[int]:
        return [v.index for v in self.views if v.state is State.ACTIVE and v.remaining > 0]
