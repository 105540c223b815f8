"""Recovery of two-step stock transfers whose app died between the two scripts.

Units move between the pool and a partition in two scripts on two nodes, each
idempotent by ticket (:mod:`engine.sharded.twins`): pool -> partition is
``pool_take`` then ``partition_inject`` (refills, top-ups, setup), partition ->
pool is ``partition_retire`` or a bounce in ``partition_inject``, then
``pool_return`` (``retire:`` and ``back:`` tickets). The first script records
the transfer in an *outbox* on its own node, atomically with the move. An app
that dies before the second script leaves the units in flight, and the outbox
entry says how to finish.

A recovery pass over one partition (:meth:`Recovery.run`) reads both outboxes
with their counters, then for each direction:

- nothing in flight (``issued <= received``, ``returned <= back``): the other
  side has applied every entry; the outbox is forgotten (``*_settle``, which
  checks the counter again atomically, so a transfer recorded meanwhile stays);
- else every entry in flight for at least ``older_than`` is finished by running
  its second script again (a no-op when it had run: the ticket is known there),
  then forgotten. The age is the time since this app first saw the entry in
  flight; a transfer merely slow is finished twice at worst, which moves nothing twice.

Finishing never undoes: an injection always lands (a retired partition bounces it,
and the bounce is a return recorded like any other), a return always reaches the
pool. Refill tickets whose *first* script never ran (the buyer that got the ticket
timed out before spawning the refill) are not in any outbox: the partition's
``pend`` flags show them, and the registry refresh re-runs them
(:meth:`engine.sharded.strategy.Sharded._recover`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.ops import NOW, Sleep

if TYPE_CHECKING:
    from engine.sharded.strategy import App, Sharded

Ops = Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Take:
    """Pool -> partition: ``grant`` units taken for ``ticket``, to be injected into ``sub``, clearing ``flag``."""

    ticket: str
    grant: int
    sub: int
    flag: int

    @classmethod
    def parse(cls, ticket: str, record: Any) -> Take:
        grant, sub, flag = (int(x) for x in str(record).split("|"))
        return cls(ticket, grant, sub, flag)


@dataclass(frozen=True, slots=True)
class Return:
    """Partition -> pool: ``units`` sent back under ``ticket``."""

    ticket: str
    units: int


@dataclass(frozen=True, slots=True)
class Transfers:
    """One side's outbox toward the other, with the counters that tell whether anything is in flight."""

    sent: int  # units this side has sent (issued, or returned)
    arrived: int  # units the other side has applied (as read on *its* node)
    entries: list[Any]


def _pairs(reply: list[Any]) -> list[tuple[str, Any]]:
    flat = reply[2:]
    return [(str(flat[k]), flat[k + 1]) for k in range(0, len(flat), 2)]


class Recovery:
    """One app's recovery of the transfers of the partitions it looks after."""

    def __init__(self, strategy: Sharded, app: App):
        self.strategy = strategy
        self.app = app
        self.first_seen: dict[int, dict[str, float]] = {}  # partition -> ticket -> when first seen in flight

    def loop(self, i: int) -> Ops:
        """Background: a pass over partition ``i`` every ``recovery_interval`` (apps out of phase)."""
        interval = self.strategy.cfg.recovery_interval
        yield Sleep(interval * (self.app.index + 1) / len(self.strategy.apps))
        while True:
            yield from self.run(i, older_than=interval)
            yield Sleep(interval)

    def run(self, i: int, older_than: float = 0.0) -> Ops:
        """Recover partition ``i``'s transfers; returns how many it finished (moved stock).

        A finished injection may bounce (the partition is full or retired): the bounce is a new
        return, credited at once, that one more pass settles, so that a recovery leaves nothing
        for the next one to do.
        """
        finished, again = 0, True
        while again:
            done, again = yield from self._pass(i, older_than)
            finished += done
        return finished

    def _pass(self, i: int, older_than: float) -> Ops:
        s = self.strategy
        part, pool = s.parts[i], s.pool
        mine = yield s.eval_at(s.part_node[i], "partition_transfers", part.transfer_keys())
        theirs = yield s.eval_at(s.pool_node, "pool_transfers", pool.transfer_keys(i))
        now = yield NOW
        # pool -> partition: issued (pool) against received (partition)
        takes = Transfers(int(theirs[0]), int(mine[0]), [Take.parse(t, r) for t, r in _pairs(theirs)])
        # partition -> pool: returned (partition) against back (pool)
        returns = Transfers(int(mine[1]), int(theirs[1]), [Return(t, int(u)) for t, u in _pairs(mine)])
        seen = self.first_seen.setdefault(i, {})
        live = {e.ticket for e in (*takes.entries, *returns.entries)}
        for ticket in [t for t in seen if t not in live]:
            del seen[ticket]  # settled meanwhile
        finished, bounced = yield from self._takes(i, takes, now, older_than)
        finished += yield from self._returns(i, returns, now, older_than)
        return finished, bounced

    def _old(self, i: int, ticket: str, now: float, older_than: float) -> bool:
        return now - self.first_seen[i].setdefault(ticket, now) >= older_than

    def _takes(self, i: int, takes: Transfers, now: float, older_than: float) -> Ops:
        s = self.strategy
        if not takes.entries:
            return 0, False
        done: list[str] = []
        finished, bounced = 0, False
        if takes.sent > takes.arrived:
            for take in takes.entries:
                if self._old(i, take.ticket, now, older_than):
                    applied, credited = yield from s.move(i, take.sub, take.ticket, take.grant, take.flag, taken=True)
                    if applied:
                        finished += 1
                        bounced |= credited < take.grant
                        self.app.registry.on_injected(i, credited)
                    done.append(take.ticket)
        if done or takes.sent <= takes.arrived:  # received as read before: all goes if nothing is in flight now
            yield s.eval_at(s.pool_node, "pool_settle", s.pool.settle_keys(i), (takes.arrived, *done))
        for ticket in done:
            self.first_seen[i].pop(ticket, None)
        s.stats["recovered_transfers"] += finished
        return finished, bounced

    def _returns(self, i: int, returns: Transfers, now: float, older_than: float) -> Ops:
        s = self.strategy
        if not returns.entries:
            return 0
        done: list[str] = []
        finished = 0
        if returns.sent > returns.arrived:
            for back in returns.entries:
                if self._old(i, back.ticket, now, older_than):
                    credited = yield from s.give_back(i, back.ticket, back.units)
                    if credited:
                        finished += 1
                        if back.ticket.startswith("retire:") and s.pipeline is not None:
                            # the retirement's DB release was queued after its pool_return, so it was lost too
                            yield from s.pipeline.move_later(s.parts[i].tag, back.units, preallocation=False)
                    done.append(back.ticket)
        if done or returns.sent <= returns.arrived:  # back as read before: all goes if nothing is in flight now
            yield s.eval_at(s.part_node[i], "partition_settle", s.parts[i].settle_keys(), (returns.arrived, *done))
        for ticket in done:
            self.first_seen[i].pop(ticket, None)
        s.stats["recovered_transfers"] += finished
        return finished
