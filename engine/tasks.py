"""Tasks: the kinds of generator an interpreter runs, and the rules all interpreters apply to them.

Every interpreter (the simulator, the real driver, the serial reference in
:mod:`engine.testing`) wraps each generator it runs in a task of one
:class:`TaskKind` and applies the same three rules, written here once:

- **stop**: once the sale is over (after the drain), background and spawned
  tasks end at their next wake; requests, setup and drain run to their end
  (:attr:`TaskKind.ends_when_stopped`);
- **setup quiet**: the sale starts only when setup has finished *and* every
  task setup spawned has finished (e.g. the DB pre-allocations a sharded setup
  queues), so no setup work runs into the sale;
- **failure**: an exception a buyer's request raises ends that request with
  ``Outcome.ERROR``, counted with its first message (:class:`StrategyErrors`);
  an exception in any other task stops the run (:class:`TaskFailed`).

``Spawn`` starts a task of kind ``SPAWN``; it is not a server round trip, so
it never counts in a request's ``ops``.
"""

from __future__ import annotations

from enum import Enum


class TaskKind(Enum):
    """What a task is for; decides how the stop and failure rules treat it."""

    REQUEST = "request"  # one buyer's deduct
    BACKGROUND = "background"  # Strategy.background(): triggers, refreshers, consumers
    SPAWN = "spawn"  # started by a Spawn op (a flush, a refill)
    SETUP = "setup"  # Strategy.setup()
    DRAIN = "drain"  # Strategy.drain()

    @property
    def ends_when_stopped(self) -> bool:
        """The stop rule: True for the kinds that end at their next wake once the sale is over."""
        return self is TaskKind.BACKGROUND or self is TaskKind.SPAWN


class TaskFailed(RuntimeError):
    """A setup, drain, background or spawned task raised: the run cannot be trusted and stops."""

    def __init__(self, kind: TaskKind, error: BaseException):
        super().__init__(f"{kind.value} task failed: {error.__class__.__name__}: {error}")
        self.kind = kind
        self.error = error


class StrategyErrors:
    """Requests ended by an exception their strategy raised: how many, and the first message.

    Summary figures: ``strategy_errors`` (always) and ``first_strategy_error``
    (only when there was one), the same in every mode.
    """

    __slots__ = ("count", "first")

    def __init__(self, count: int = 0, first: str | None = None):
        self.count = count
        self.first = first

    def record(self, error: BaseException) -> None:
        self.count += 1
        if self.first is None:
            self.first = f"{error.__class__.__name__}: {error}"

    def merge(self, other: StrategyErrors) -> None:
        """Add another process's errors (real mode: one per worker)."""
        self.count += other.count
        if self.first is None:
            self.first = other.first

    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {"strategy_errors": self.count}
        if self.first is not None:
            figures["first_strategy_error"] = self.first
        return figures

    def warning(self) -> str | None:
        """One line for stderr when requests failed, else None."""
        if not self.count:
            return None
        return f"flashsim: {self.count} request(s) raised in the strategy; first: {self.first}"
