"""Two-step transfers under crashes: first script, crash (the app forgets), recovery, then the second script.

Extends the rule machine of ``test_interleaving.CrashesAndRecoveries`` (sales, refreshes, crashes at any
step, recoveries) with what issue #12 asks of the sharded transfers: a transfer (refill into a given
sub-domain, top-up, retirement, or a bounce back to the pool) is run up to its first script and stalled
there; the app that started it may then lose its memory (its recovery's first sightings, its refill
ticket sightings); a recovery finishes the transfer from the outbox; and the stalled task may still wake
up and run its second script (the app was only slow), or die. After every step, on top of the base
invariants (conservation with what is in flight, nothing oversold, each ticket's credit summed once):
a ticket, once credited on either side, keeps the credit it got (it completes at most once), and once
nothing is stalled or running a recovery leaves nothing in flight.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from engine.ops import Eval
from engine.sharded.recovery import Recovery
from engine.sharded.strategy import Refill
from engine.tasks import TaskKind
from engine.testing import Task
from tests.sharded.test_interleaving import CrashesAndRecoveries

FIRST = {"refill": "pool_take", "top_up": "pool_take", "retire": "partition_retire", "back": "partition_inject"}


class TransferCrashes(CrashesAndRecoveries):
    def __init__(self) -> None:
        super().__init__()
        self.stalled: list[Task] = []  # transfers stopped right after their first script
        self.credits: dict[tuple[str, str], int] = {}  # (side, ticket) -> units credited, as first seen
        self.started = 0

    def _stall(self, task: Task, script: str) -> None:
        for _ in range(1000):
            if task.finished:
                return  # it ended before that script (nothing to move): nothing stalled
            op = self.ref.step(task)
            if isinstance(op, Eval) and op.script == script:
                if not task.finished:
                    self.stalled.append(task)
                return
        raise AssertionError(f"{task!r} never ran {script}")

    @rule(kind=st.sampled_from(sorted(FIRST)), partition=st.integers(0, 2), sub=st.integers(0, 1),
          units=st.integers(1, 8))
    def start_transfer(self, kind: str, partition: int, sub: int, units: int) -> None:
        s = self.strategy
        app = s.owner(partition)
        self.started += 1
        if kind == "retire":
            gen = s._retire(app, partition, topup=False)
        elif kind == "back":  # an injection into a full sub-domain (size 6) bounces the excess back to the pool
            gen = s.move(partition, sub, f"top:x{self.started}", units, -1)
        else:
            app.topups += 1
            job = Refill(partition, sub if kind == "refill" else -1, f"top:a{app.index}:{app.topups}:{self.started}",
                         units, -1)
            gen = s._refill(app, job)
        # a task of its own kind: the base machine's steps and crashes leave it where it stalled
        self._stall(self.ref.start(gen, TaskKind.BACKGROUND), FIRST[kind])

    @rule(app=st.integers(0, 1))
    def app_forgets(self, app: int) -> None:
        """The app restarts: what it had learned about transfers and tickets in flight is gone."""
        a = self.strategy.apps[app]
        a.recovery = Recovery(self.strategy, a)
        a.seen_tickets.clear()

    @precondition(lambda self: self.stalled)
    @rule(pick=st.integers(0, 10**6))
    def second_script(self, pick: int) -> None:
        """The stalled app was only slow: it runs the rest of its transfer (a no-op if recovery did it)."""
        task = self.stalled.pop(pick % len(self.stalled))
        self.ref.run(task)

    @precondition(lambda self: self.stalled)
    @rule(pick=st.integers(0, 10**6))
    def stalled_dies(self, pick: int) -> None:
        self.ref.abandon(self.stalled.pop(pick % len(self.stalled)))

    @precondition(lambda self: self.stalled and not self.transfers())
    @rule()
    def recovery_finishes_stalled(self) -> None:
        for i in range(3):
            self.ref.run(self.strategy.recover(i), TaskKind.BACKGROUND)
        assert self.strategy.inventory(self.ref.read).in_flight == {}  # every stalled transfer finished

    @invariant()
    def each_ticket_completes_once(self) -> None:
        store = self.ref.store
        sides = [("pool", store.get(self.strategy.pool.tickets, {}))]
        sides += [(part.applied, store.get(part.applied, {})) for part in self.strategy.parts]
        for side, tickets in sides:
            for ticket, units in tickets.items():
                first = self.credits.setdefault((side, ticket), int(units))
                assert int(units) == first, f"{side} ticket {ticket}: credited {first}, then {units}"


TransferCrashes.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None,
                                             derandomize=True, database=None)
test_transfer_crashes = TransferCrashes.TestCase
