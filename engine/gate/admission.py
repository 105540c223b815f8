"""The gate's decision, sans-IO: one :class:`Gate` per app instance, time passed in.

The bucket refills at a known rate and the room is first come first served,
so the gate knows on arrival when each buyer will be through: a buyer who
finds a token goes on at once; one who finds none joins the room (if it has a
free place) and reserves the next token, which it gets after
``(1 - tokens) / rate`` seconds (tokens go negative while reservations are
outstanding); one whose token would come after ``max_wait`` waits that long
and is refused without taking a token. Nobody in the room leaves early, so a
later buyer never overtakes an earlier one: it is let through only after the
earlier one got its token or gave up.

The interpreter acts on the :class:`Ticket`: start the request at ``at``
(now, or once the wait is over), or answer "refused by the gate" at ``at``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import NamedTuple

from engine.gate.config import GateConfig

EPSILON = 1e-9  # tokens: float refills (0.1 s x 10/s) must still make a whole token


class Ticket(NamedTuple):
    """The gate's answer to one buyer."""

    admitted: bool  # True: run the strategy at ``at``; False: refused by the gate at ``at``
    at: float  # when the buyer leaves the gate (its arrival time unless it waited in the room)
    position: int = 0  # its place in the room on arrival (1: first in line); 0: it never queued


@dataclass
class GateStats:
    """What a gate (or several, merged) did: counts and the time buyers spent in the room."""

    admitted: int = 0  # let through (at once or after waiting)
    refused: int = 0  # refused: no token and no room, or the token would have come after max_wait
    queued: int = 0  # joined the room (then let through or refused)
    wait_total: float = 0.0  # seconds spent in the room, summed over the queued
    wait_max: float = 0.0
    position_max: int = 0  # the longest line a buyer joined (its place in it)

    def merge(self, other: GateStats) -> None:
        self.admitted += other.admitted
        self.refused += other.refused
        self.queued += other.queued
        self.wait_total += other.wait_total
        self.wait_max = max(self.wait_max, other.wait_max)
        self.position_max = max(self.position_max, other.position_max)

    def figures(self, refused: int) -> dict[str, float]:
        """Summary figures; ``refused`` is the count of buyers told "refused by the gate" (the
        ``gated`` outcome: a buyer whose client deadline came first is a timeout instead)."""
        return {
            "gate_refused": refused,
            "gate_queued": self.queued,
            "gate_wait_mean": self.wait_total / self.queued if self.queued else 0.0,
            "gate_wait_max": self.wait_max,
            "gate_position_max": self.position_max,
        }


class Gate:
    """One app instance's token bucket and waiting room."""

    __slots__ = ("rate", "burst", "room", "max_wait", "tokens", "last", "leaving", "stats")

    def __init__(self, config: GateConfig):
        if not config.on:
            raise ValueError("a gate needs 0 < gate.rate < inf")
        self.rate = config.rate
        self.burst = float(config.burst)
        self.room = config.room
        self.max_wait = config.max_wait
        self.tokens = self.burst  # at time ``last`` (negative: tokens reserved by buyers in the room)
        self.last = -math.inf
        self.leaving: list[float] = []  # when each buyer now in the room leaves it (a heap)
        self.stats = GateStats()

    def arrive(self, now: float) -> Ticket:
        """A buyer reaches the instance at ``now`` (non-decreasing from call to call)."""
        if now > self.last:
            self.tokens = self.burst if self.last == -math.inf else min(
                self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
        leaving = self.leaving
        while leaving and leaving[0] <= now:
            heappop(leaving)
        stats = self.stats
        if self.tokens >= 1.0 - EPSILON:
            self.tokens -= 1.0
            stats.admitted += 1
            return Ticket(True, now)
        if len(leaving) >= self.room:  # no token and no free place
            stats.refused += 1
            return Ticket(False, now)
        position = len(leaving) + 1
        wait = (1.0 - self.tokens) / self.rate
        stats.queued += 1
        if position > stats.position_max:
            stats.position_max = position
        admitted = wait <= self.max_wait + EPSILON
        if admitted:
            self.tokens -= 1.0
            stats.admitted += 1
        else:
            wait = self.max_wait
            stats.refused += 1
        stats.wait_total += wait
        if wait > stats.wait_max:
            stats.wait_max = wait
        heappush(leaving, now + wait)
        return Ticket(admitted, now + wait, position)


def fleet(config: GateConfig, instances: int) -> list[Gate] | None:
    """One gate per app instance, or None when the gate is off."""
    return [Gate(config) for _ in range(instances)] if config.on else None


def merged(gates: list[Gate]) -> GateStats:
    total = GateStats()
    for gate in gates:
        total.merge(gate.stats)
    return total
