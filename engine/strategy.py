"""What every strategy provides to the interpreters.

A strategy object holds the app-side state of one sale (a sold-out flag per
app instance, a registry, ...) and hands out generators; it never performs
I/O itself:

- :meth:`setup` yields the ops that put the initial stock in place;
- :meth:`deduct` yields the ops of one buyer's request and returns an
  :class:`~engine.model.Outcome`;
- :meth:`background` gives long-running generators (sync triggers, registry
  refresh) that the interpreter runs until the sale is over;
- :meth:`drain` yields the ops that finish outstanding work after the last buyer;
- :meth:`keys` names every Redis key it may create (cleanup, real-mode safety);
- :meth:`inventory` says where every unit is, from a snapshot of those keys;
- :meth:`servable` and :meth:`pieces` feed the sold-out metrics (docs/soldout.md): whether
  one buyer's quantity could be served from what the servers hold at an instant, and the
  units in each place a single request takes from (partitions), for stranded stock.

and the hooks an interpreter may use, declared here so that no interpreter
ever probes a strategy with ``hasattr``/``getattr``:

- :attr:`oracle`: exact, free reads of the whole state, for metrics only
  (never for decisions); the simulator sets it, the real driver cannot (it
  stays ``None`` there, and metrics that need it say "unknown");
- :meth:`reconciliation`: the end-of-run differences of the strategy's sync
  pipeline; every interpreter counts them as violations.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from engine.model import Inventory, Outcome, Request
from engine.scenario import Scenario, ScenarioError

if TYPE_CHECKING:
    from engine.pipeline.reconcile import Reconciliation

Ops = Generator[Any, Any, Any]
Read = Callable[[str], Any]


def retrying() -> list[str]:
    """Names of the strategies that support client retries (``retries_once``), among those defined."""
    found, todo = set(), list(Strategy.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.retries_once and cls.name:
            found.add(cls.name)
    return sorted(found)


class Strategy:
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # Whether a retried request (workload.retry > 0, same request id) is deducted at most once
    retries_once: ClassVar[bool] = False

    def __init__(self, scenario: Scenario, rng: np.random.Generator, namespace: str = "fs"):
        self.scenario = scenario
        self.rng = rng
        self.namespace = namespace
        self.sold_out = [False] * scenario.app.instances  # per app instance: it has heard "sold out"
        self.event_log: list[dict[str, Any]] = []  # notable moments (switches, injections, ...)
        self.oracle: Read | None = None  # exact reads for metrics only; set by the simulator (see module doc)
        if scenario.workload.retry > 0 and not self.retries_once:
            raise ScenarioError(f"workload.retry > 0: {self.name} cannot deduct a retried request only once "
                                f"(no idempotency key); strategies that can: {', '.join(retrying())}")

    # --- life cycle -----------------------------------------------------
    def setup(self) -> Ops:
        return
        yield

    def deduct(self, request: Request) -> Generator[Any, Any, Outcome]:
        raise NotImplementedError

    def background(self) -> list[Ops]:
        """Every background generator (triggers, refreshers, consumers), in a fixed order."""
        return []

    def background_of(self, instance: int | None) -> list[Ops]:
        """The background generators app instance ``instance`` runs; ``None``: the fleet's own
        (one copy for the whole fleet, e.g. the pipeline's consumers), run by instance 0.

        Together they are :meth:`background`. A strategy whose background work belongs to
        instances (a registry each instance refreshes) overrides both; the default gives the
        whole list to the fleet. The simulator runs each instance's on that instance's CPU; real
        mode runs them in the worker process that hosts the instance.
        """
        return self.background() if instance is None else []

    def drain(self) -> Ops:
        return
        yield

    # --- observation ----------------------------------------------------
    def keys(self) -> tuple[str, ...]:
        raise NotImplementedError

    def inventory(self, read: Read) -> Inventory:
        raise NotImplementedError

    def servable(self, qty: int, read: Read) -> bool:
        """Could one buyer of ``qty`` units be served from the stock the servers hold now?

        For metrics only (refused / timed out while servable), never for decisions: the
        simulator calls it with exact, free reads at the instant a buyer is refused or its
        patience runs out. Stock in flight or already claimed does not count.
        """
        raise NotImplementedError

    def pieces(self, inventory: Inventory) -> list[int]:
        """Units in each partition of an inventory snapshot (empty: the strategy has none).

        Stock in a partition is *stranded* while no buyer can take it (a piece smaller than
        the smallest quantity asked) and at the end of the sale; one counter or one DB row
        never strands anything.
        """
        return []

    def reseed(self, rng: np.random.Generator) -> None:
        """Make ``rng``'s state this strategy's own random choices from now on (real mode: one per worker).

        In place: samplers built on ``self.rng`` keep their reference.
        """
        self.rng.bit_generator.state = rng.bit_generator.state

    def counters(self) -> dict[str, float]:
        """Strategy-specific figures for the summary (retries, injections, ...)."""
        return {}

    def tally(self) -> dict[str, Any]:
        """What this process counted (real mode: each worker and the pipeline service send theirs back)."""
        return {"counters": self.counters()}

    def merge_tallies(self, tallies: list[dict[str, Any]]) -> dict[str, float]:
        """The fleet's counters from every process's :meth:`tally`: summed, except what a sum would break.

        A strategy whose figures are not counts (percentiles, rates, ratios) overrides this and
        recomputes them from the merged raw tallies.
        """
        merged: dict[str, float] = {}
        for tally in tallies:
            for key, value in tally["counters"].items():
                merged[key] = merged.get(key, 0.0) + value
        return merged

    def reconciliation(self) -> Reconciliation | None:
        """The sync pipeline's end-of-run reconciliation (after :meth:`drain`), or None without one."""
        return None

    def reconciliation_differences(self) -> list[str]:
        """The reconciliation's differences as violations, ``"reconciliation: ..."`` (empty when none)."""
        recon = self.reconciliation()
        return [] if recon is None else [f"reconciliation: {d}" for d in recon.differences]

    def note(self, t: float, kind: str, **fields: Any) -> None:
        """Record a notable moment (time from a ``Now()`` op); ends up in ``Result.events``."""
        self.event_log.append({"t": t, "kind": kind, **fields})

    @property
    def sold_out_seen(self) -> bool:
        """True once some app instance has learned that the sale is over."""
        return any(self.sold_out)

    # --- shared helpers -------------------------------------------------
    def _refuse_locally(self, request: Request) -> bool:
        """True when the request's app instance already knows the sale is over (its sold-out flag)."""
        return self.sold_out[request.app] and self.scenario.sale.soldout_flag

    def _learn(self, request: Request, remaining: int) -> None:
        """Remember a sold-out on the request's instance: after a sale that left 0, or a refusal of one unit."""
        if remaining == 0 or (remaining < 0 and request.qty == 1):
            self.sold_out[request.app] = True
