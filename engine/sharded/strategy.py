"""Sharded stock: partitions of two sub-domains on many Redis nodes, refilled from a pool.

The design article's answer to the single-node ceiling. Stock starts in the
pre-allocation pool; each partition takes ``preallocation`` units at setup.
A buyer's request goes to a partition picked by its app's registry (policy +
sufficiency check) and is one atomic script on that partition's node. When
the active sub-domain runs below the threshold the script switches to the
other one and hands out a refill ticket for the idle one; the request spawns
a task that takes stock from the pool and credits it, each step idempotent by
ticket. A partition that answers "not enough" makes the request fall back to
another one, up to a bound; when nothing looks sufficient (or the bound ran
out) the request waits for news.

The end game (docs/soldout.md): a buyer hears "sold out" only when its app
*knows* that less than its quantity remains unsold anywhere: the registry
bounds what remains by the partitions' sold counters it has read, which only
grow. Until then the buyer waits for news (a refresh, a refill) within its
patience. With ``return_stranded`` (the default), a partition left with a piece
smaller than what a waiting buyer asks, once the pool is empty, is retired and
its units gathered into the anchor partition (partition 0, never retired
before the end), so pieces add up again.

The app never reads a global truth: it learns from replies and from a
periodic refresh, so each app's registry is stale in its own way. The
simulator hands the strategy its ``oracle`` (free, exact reads, declared on
:class:`~engine.strategy.Strategy`) used for one legacy metric only
(``false_sold_outs``); the sold-out metrics of every strategy come from
:meth:`Sharded.servable` and :meth:`Sharded.pieces`.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.model import Inventory, Outcome, Request
from engine.ops import NOW, Eval, Sleep, Spawn
from engine.pipeline import Reconciliation, SyncPipeline
from engine.pipeline.stats import SyncStats
from engine.scripts import SOLD_OUT
from engine.sharded.keys import PartitionKeys, PoolKeys, balanced_tags, hash_tags, pool_tag
from engine.sharded.recovery import Recovery
from engine.sharded.registry import Registry, State
from engine.sharded.twins import RETIRED, bounce_ticket
from engine.slots import SlotMap
from engine.strategy import Ops, Read, Strategy
from engine.streams import Uniforms


@dataclass(frozen=True, slots=True)
class Refill:
    """A job for an injection worker: move up to ``want`` units from the pool into a partition.

    ``sub`` is the target sub-domain (-1: whichever is idle when the job runs);
    ``flag`` is the sub-domain whose refill ticket this settles (-1: a top-up).
    """

    partition: int
    sub: int
    ticket: str
    want: int
    flag: int


@dataclass(frozen=True, slots=True)
class Retire:
    """A job: take a partition offline and give its stock back to the pool."""

    partition: int


class App:
    """One app instance: its registry, its injection jobs in progress, its sold-out flag."""

    def __init__(self, index: int, registry: Registry):
        self.index = index
        self.registry = registry
        self.jobs: list[Refill | Retire] = []  # spawned and not finished yet (drain waits for them)
        self.topups = 0
        self.retiring: set[int] = set()
        self.topping: set[int] = set()  # partitions with a top-up of this app running
        self.seen_tickets: dict[int, list[list[int]]] = {}  # partition -> [epoch, sightings] per sub-domain
        self.waiting: dict[int, int] = {}  # qty -> this app's buyers waiting for news with that quantity
        self.recovery: Recovery  # set by the strategy: finishes transfers stranded between their two scripts

    def want(self) -> int:
        """The largest quantity one of this app's buyers is waiting for (0: none waits)."""
        return max((qty for qty, n in self.waiting.items() if n > 0), default=0)


class Sharded(Strategy):
    ANCHOR = 0  # the partition gathered pieces go to; never retired before the end of the sale
    RECOVER_AFTER = 3  # refreshes that must see the same refill ticket out before it is re-run
    DRAIN_POLL = 0.001  # seconds between drain's looks at the jobs still running

    name = "sharded"
    summary = "partitions with A/B sub-domains on many Redis nodes, refilled from a pre-allocation pool"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        scenario = self.scenario
        cfg = self.cfg = scenario.sharded
        sku = scenario.sale.sku
        slots = SlotMap.even(scenario.redis.nodes)
        if cfg.placement == "balanced":
            tags = balanced_tags(sku, cfg.partitions, slots)
        else:
            tags = hash_tags(sku, cfg.partitions)
        self.parts = [PartitionKeys(self.namespace, tag) for tag in tags]
        self.pool = PoolKeys(self.namespace, pool_tag(sku))
        self.part_node = [slots.node_of(p.a) for p in self.parts]
        self.pool_node = slots.node_of(self.pool.stock)
        instances = scenario.app.instances  # one registry per app instance of the fleet
        self.uniform = Uniforms(self.rng)  # the registries' one draw of self.rng, shared in call order
        self.apps = [App(k, Registry(self.part_node, cfg.policy, self.uniform, instances, cfg.inflight_share))
                     for k in range(instances)]
        for app in self.apps:
            app.recovery = Recovery(self, app)
        self._deduct_keys = [p.deduct_keys() for p in self.parts]
        self.pipeline: SyncPipeline | None = None
        if scenario.pipeline.enabled:  # detail records in the deduct script, synced to the DB over the MQ
            self.pipeline = SyncPipeline(scenario.pipeline, sku, self.namespace, self.note)
            for part in self.parts:
                self.pipeline.add_partition(part)
        self.initial = scenario.sale.stock
        self._unsold_exact = scenario.sale.stock  # servable's cache: unsold stock never grows
        self._all_sold = False
        self.node_ops = [0] * scenario.redis.nodes
        self.part_requests = [0] * cfg.partitions
        self.stats = dict.fromkeys(
            ("switches", "injections", "waits", "injected_units", "dry_refills", "bounced_units", "partition_refusals",
             "fallbacks", "bound_waits", "refused_exhausted", "refused_waiting", "false_sold_outs", "removals",
             "retired", "returned_units", "recovered_tickets", "duplicate_tickets", "recovered_transfers"), 0)
        self.stranded = 0  # units left in partitions at the end (drain)
        self.stranded_end = 0

    # --- life cycle -----------------------------------------------------
    def setup(self) -> Ops:
        cfg = self.cfg
        if self.pipeline is not None:  # DB ledger: all stock in the pool; _move records each pre-allocation
            yield from self.pipeline.setup(self.scenario.sale.stock, [])
        created = yield self.eval_at(self.pool_node, "pool_init", (self.pool.stock,), (self.scenario.sale.stock,))
        if created != 1:
            raise RuntimeError(f"pool {self.pool.stock} already exists (pool_init returned {created})")
        first = min(cfg.subdomain_size, cfg.preallocation)
        for i, part in enumerate(self.parts):
            created = yield self.eval_at(self.part_node[i], "partition_init", part.init_keys())
            if created != 1:
                raise RuntimeError(f"partition {part.tag} already exists (partition_init returned {created})")
            for sub, want in ((0, first), (1, cfg.preallocation - first)):
                if want > 0:
                    _, credited = yield from self.move(i, sub, f"p{i}:init:{'ab'[sub]}", want, -1)
                    for app in self.apps:
                        app.registry.on_injected(i, credited)
        pool = yield self.eval_at(self.pool_node, "pool_status", (self.pool.stock,))
        for app in self.apps:
            app.registry.on_pool(pool)
            for view in app.registry.views:
                if view.remaining == 0:
                    view.state = State.REMOVED if pool == 0 else State.DRAINED

    def deduct(self, request: Request) -> Generator[Any, Any, Outcome]:
        app = self.apps[request.app]
        registry = app.registry
        qty = request.qty
        if qty > registry.unsold_bound(self.initial) and self.scenario.sale.soldout_flag:
            self.stats["refused_exhausted"] += 1  # less than qty remains anywhere: no need to ask
            self._refused(qty)
            return Outcome.SOLD_OUT
        tried: tuple[int, ...] = ()
        i = registry.select(qty)
        while True:
            if i is None:
                i = yield from self._await_news(app, qty, tried)
                if i is None:
                    break
            status, remaining, active, switched, ticket = yield from self._send(registry, i, qty)
            if status == 0:
                before = registry.views[i].state
                registry.on_sold(i, remaining, active)
                if switched or ticket or registry.views[i].state is not before:
                    t = yield NOW
                    job = self._after_sale(app, t, i, active, switched, ticket, before)
                    if job is not None:
                        yield self._spawn(app, job)  # the refill runs as its own task: the buyer does not wait
                return Outcome.OK
            if status != SOLD_OUT and status != RETIRED:
                return Outcome.ERROR
            self.stats["partition_refusals"] += 1
            before = registry.views[i].state
            state = registry.on_refused(i, remaining, retired=status == RETIRED, refill_pending=ticket > 0)
            if state is State.REMOVED and before is not State.REMOVED:
                self._removed(app, (yield NOW), i)
            elif status == SOLD_OUT:
                yield from self._gather(app, i, remaining, max(qty, app.want()))
            tried += (i,)
            if len(tried) > self.cfg.fallback_tries:
                self.stats["bound_waits"] += 1  # the fallback bound ran out: wait for news, then start over
                tried, i = (), None
            else:
                i = registry.select(qty, tried)
                if i is not None:
                    self.stats["fallbacks"] += 1
        if qty > registry.unsold_bound(self.initial):
            self.stats["refused_exhausted"] += 1  # known: less than qty remains unsold anywhere
        else:
            self.stats["refused_waiting"] += 1  # refill_wait ran out while stock may remain
        self._refused(qty)
        return Outcome.SOLD_OUT

    def _send(self, registry: Registry, i: int, qty: int) -> Ops:
        """One deduction at partition ``i``: reserve in the registry, run the script, release.

        The release is in ``finally``: a buyer who gives up while the script is in flight (the
        interpreter closes the generator) must not keep its reservation, or the partition
        looks claimed for ever.
        """
        registry.send(i, qty)
        self.node_ops[self.part_node[i]] += 1
        self.part_requests[i] += 1
        try:
            if self.pipeline is None:
                reply = yield Eval("partition_deduct", self._deduct_keys[i], (qty, self.cfg.threshold))
            else:
                reply = yield from self.pipeline.deduct_with(
                    "partition_deduct_detail", self._deduct_keys[i], (qty, self.cfg.threshold), self.parts[i].tag)
        finally:
            registry.reply(i, qty)
        return reply

    def _await_news(self, app: App, qty: int, tried: tuple[int, ...] = ()) -> Ops:
        """No partition looks sufficient: wait for news (a refill, a refresh), then look again.

        Returns a partition, or None once the app knows that less than ``qty`` remains unsold
        anywhere, or ``refill_wait`` has passed (default: never; the buyer's patience runs out
        first). While it waits, the app's gathering knows a buyer wants ``qty``.
        """
        registry = app.registry
        waited, step, longest = 0.0, self.cfg.wait_step, self.cfg.refresh_interval
        seen = registry.version
        app.waiting[qty] = app.waiting.get(qty, 0) + 1
        try:
            while waited < self.cfg.refill_wait and qty <= registry.unsold_bound(self.initial):
                nap = min(step, self.cfg.refill_wait - waited)
                yield Sleep(nap)
                waited += nap
                step = min(2 * step, max(longest, self.cfg.wait_step))  # back off: news comes by refresh
                if registry.version == seen or registry.most_free() < qty:
                    continue  # nothing learned since the last look, or still nothing free
                seen = registry.version
                i = registry.select(qty, tried)
                if i is not None:
                    self.stats["waits"] += 1
                    return i
            return None
        finally:
            app.waiting[qty] -= 1

    def _gather(self, app: App, i: int, units: int, want: int) -> Ops:
        """Retire partition ``i`` if its piece cannot serve a buyer who waits and the pool is empty.

        Its units go back to the pool and on to the anchor partition, where pieces add up
        again. The anchor itself is never retired here, so some partition always stays live
        to take what the pool holds.
        """
        if (self.cfg.return_stranded and app.registry.pool_empty and 0 < units < want and i != self.ANCHOR
                and i not in app.retiring):
            app.retiring.add(i)
            yield self._spawn(app, Retire(i))

    def background(self) -> list[Ops]:
        gens: list[Ops] = []
        for app in self.apps:
            gens += [self._refresher(app, i) for i in range(len(self.parts))]
            gens.append(self._pool_refresher(app))
        if math.isfinite(self.cfg.recovery_interval):  # each partition's transfers, by the app that owns it
            gens += [self.owner(i).recovery.loop(i) for i in range(len(self.parts))]
        if self.pipeline is not None:
            gens += self.pipeline.background()
        return gens

    def background_of(self, instance: int | None) -> list[Ops]:
        if instance is None:
            return self.pipeline.background() if self.pipeline is not None else []
        app = self.apps[instance]
        gens = [self._refresher(app, i) for i in range(len(self.parts))]
        gens.append(self._pool_refresher(app))
        if math.isfinite(self.cfg.recovery_interval):
            gens += [app.recovery.loop(i) for i in range(len(self.parts)) if self.owner(i) is app]
        return gens

    def drain(self) -> Ops:
        """Finish every injection job, then count (and optionally return) what partitions hold.

        ``stranded`` is every unit left in a partition; ``stranded_end`` the same, except when
        all unsold stock together (partitions and pool) is less than the smallest quantity a
        buyer asks: then no placement could have sold it, and it is a remainder, not stranded.
        """
        while any(app.jobs for app in self.apps):
            yield Sleep(self.DRAIN_POLL)
        held: list[int] = []
        for i, part in enumerate(self.parts):
            a, b, active, _, _, _ = yield self.eval_at(self.part_node[i], "partition_status", part.status_keys())
            held.append(a + b if active >= 0 else 0)
        pool = yield self.eval_at(self.pool_node, "pool_status", (self.pool.stock,))
        self.stranded = sum(held)
        self.stranded_end = self.stranded if self.stranded + pool >= self.scenario.workload.qty.low else 0
        if self.cfg.return_stranded:
            for i, units in enumerate(held):
                if units > 0:
                    yield from self._retire(self.apps[0], i, topup=False)
        if self.pipeline is not None:  # last: every sale and every stock move is final by now
            yield from self.pipeline.drain(self.scenario.sale.stock)

    # --- injection, retirement, refresh ----------------------------------
    def _after_sale(self, app: App, t: float, i: int, active: int, switched: int, ticket: int,
                    before: State) -> Refill | None:
        """Note a switch or a removal; a refill ticket becomes a job to spawn."""
        if switched:
            self.stats["switches"] += 1
            self.note(t, "switch", partition=i, active=active, app=app.index)
        if app.registry.views[i].state is State.REMOVED and before is not State.REMOVED:
            self._removed(app, t, i)
        if ticket:
            idle = 1 - active
            return Refill(i, idle, f"p{i}:e{ticket}", self.cfg.injection, idle)
        return None

    def _removed(self, app: App, t: float, i: int) -> None:
        self.stats["removals"] += 1
        self.note(t, "removed", partition=i, app=app.index)

    def _spawn(self, app: App, job: Refill | Retire) -> Spawn:
        """The op that starts ``job`` as its own task (every refill at once, none queued behind another)."""
        app.jobs.append(job)
        return Spawn(self._run(app, job))

    def _run(self, app: App, job: Refill | Retire) -> Ops:
        try:
            if isinstance(job, Retire):
                yield from self._retire(app, job.partition, topup=True)
            else:
                yield from self._refill(app, job)
        finally:
            app.jobs.remove(job)
            app.topping.discard(job.partition)

    def _refill(self, app: App, job: Refill) -> Ops:
        i = job.partition
        sub = job.sub if job.sub >= 0 else 1 - app.registry.views[i].active
        grant = yield self.eval_at(self.pool_node, "pool_take", self.pool.take_keys(i), (job.ticket, job.want, sub, job.flag))
        applied, credited = yield from self.move(i, sub, job.ticket, grant, job.flag, taken=True)
        t = yield NOW
        app.registry.on_injected(i, credited)
        if grant < job.want:
            app.registry.on_pool(0)  # it gave less than asked: it is empty now
        if not applied:
            self.stats["duplicate_tickets"] += 1  # run before (a recovery and a slow first run): no effect
        elif grant > 0:
            self.stats["injections"] += 1
            self.stats["injected_units"] += grant
            self.note(t, "injection", partition=i, sub=sub, units=credited, ticket=job.ticket, app=app.index)
        else:
            self.stats["dry_refills"] += 1

    def move(self, i: int, sub: int, ticket: str, want: int, flag: int, taken: bool = False) -> Ops:
        """Pool -> partition ``i``'s sub-domain by ``ticket`` (``want`` already granted if ``taken``).

        Returns (applied, credited): applied is False when the ticket had been applied before.
        """
        grant = want
        if not taken:
            grant = yield self.eval_at(self.pool_node, "pool_take", self.pool.take_keys(i), (ticket, want, sub, flag))
        if grant < 0:
            raise RuntimeError(f"pool_take {ticket} failed with {grant}")
        status, credited, bounced = yield self.eval_at(
            self.part_node[i], "partition_inject", self.parts[i].inject_keys(sub),
            (ticket, grant, flag, self.cfg.subdomain_size))
        if status < 0:
            raise RuntimeError(f"partition_inject {ticket} failed with {status}")
        if self.pipeline is not None:  # the DB ledger: pool -> pre-allocated (queued, in order)
            yield from self.pipeline.move_later(self.parts[i].tag, credited)
        if bounced:
            self.stats["bounced_units"] += bounced
            yield from self.give_back(i, bounce_ticket(ticket), bounced)
        return status == 1, credited

    def give_back(self, i: int, ticket: str, units: int) -> Ops:
        """Partition ``i`` -> pool: credit ``units`` by ``ticket``; True if this call credited them (not seen before)."""
        status = yield self.eval_at(self.pool_node, "pool_return", self.pool.return_keys(i), (ticket, units))
        if status < 0:
            raise RuntimeError(f"pool_return {ticket} failed with {status}")
        return status == 1

    def _retire(self, app: App, i: int, topup: bool) -> Ops:
        ticket = f"retire:p{i}"  # a partition retires once: the ticket is unique
        status, units = yield self.eval_at(self.part_node[i], "partition_retire", self.parts[i].retire_keys(), (ticket,))
        if status != 1:
            return
        t = yield NOW
        self.stats["retired"] += 1
        self.note(t, "retire", partition=i, units=units, app=app.index)
        app.registry.on_status(i, 0, 0, -1)
        if units == 0:
            return
        yield from self.give_back(i, ticket, units)
        if self.pipeline is not None:  # the DB ledger: pre-allocated -> pool (queued, in order)
            yield from self.pipeline.move_later(self.parts[i].tag, units, preallocation=False)
        self.stats["returned_units"] += units
        # Gather the units in the anchor partition (an empty one is fine: the refill revives it),
        # the same one for every app, so that pieces add up again.
        if topup:
            app.topups += 1
            yield self._spawn(app, Refill(self.ANCHOR, -1, f"top:a{app.index}:{app.topups}", units, -1))

    def _refresher(self, app: App, i: int) -> Ops:
        """Re-read partition ``i`` every interval; re-run a refill ticket nobody settled."""
        interval = self.cfg.refresh_interval
        yield Sleep(interval * (app.index + 1) / len(self.apps))  # apps refresh out of phase
        keys = self.parts[i].status_keys()
        node = self.part_node[i]
        registry = app.registry
        while True:
            a, b, active, pend0, pend1, sold = yield self.eval_at(node, "partition_status", keys)
            before = registry.views[i].state
            state = registry.on_status(i, a, b, active, refill_pending=pend0 > 0 or pend1 > 0, sold=sold)
            if state is State.REMOVED and before is not State.REMOVED:
                self._removed(app, (yield NOW), i)
            if active >= 0:
                yield from self._gather(app, i, a + b, app.want())
            if i % len(self.apps) == app.index:  # this app looks after partition i's tickets
                yield from self._recover(app, i, (pend0, pend1))
                if (active >= 0 and a + b < self.cfg.threshold and not (pend0 or pend1)
                        and not registry.pool_empty and i not in app.topping):
                    # starving, no refill out (the pool once answered empty, so the script asks for
                    # none), yet the pool holds stock again (returned units): top it up
                    app.topping.add(i)
                    app.topups += 1
                    yield self._spawn(app, Refill(i, -1, f"top:a{app.index}:{app.topups}", self.cfg.injection, -1))
            yield Sleep(interval)

    def _recover(self, app: App, i: int, pending: tuple[int, int]) -> Ops:
        """A ticket pending across RECOVER_AFTER refreshes may be lost (its buyer timed out): run it again.

        Harmless if its first run is merely slow: both steps are idempotent by ticket.
        """
        seen = app.seen_tickets.setdefault(i, [[0, 0], [0, 0]])  # per sub-domain: [epoch, sightings]
        for sub, epoch in enumerate(pending):
            mark = seen[sub]
            mark[:] = [epoch, mark[1] + 1] if epoch and epoch == mark[0] else [epoch, 1]
            if epoch and mark[1] == self.RECOVER_AFTER:
                self.stats["recovered_tickets"] += 1
                yield self._spawn(app, Refill(i, sub, f"p{i}:e{epoch}", self.cfg.injection, sub))
                mark[1] = 0  # if this run is lost too, try again after as many refreshes

    def owner(self, i: int) -> App:
        """The app that looks after partition ``i``'s tickets and transfers."""
        return self.apps[i % len(self.apps)]

    def recover(self, i: int, older_than: float = 0.0) -> Ops:
        """Finish partition ``i``'s transfers in flight for ``older_than`` or more (engine.sharded.recovery)."""
        return self.owner(i).recovery.run(i, older_than)

    def _pool_refresher(self, app: App) -> Ops:
        interval = self.cfg.refresh_interval
        yield Sleep(interval * (app.index + 1) / len(self.apps))
        while True:
            units = yield self.eval_at(self.pool_node, "pool_status", (self.pool.stock,))
            app.registry.on_pool(units)
            yield Sleep(interval)

    def eval_at(self, node: int, script: str, keys: tuple[str, ...], args: tuple[Any, ...] = ()) -> Eval:
        self.node_ops[node] += 1
        return Eval(script, keys, args)

    # --- observation ----------------------------------------------------
    def reconciliation(self) -> Reconciliation | None:
        return self.pipeline.reconciliation if self.pipeline is not None else None

    def _refused(self, qty: int) -> None:
        """Count a refusal as false when, at this instant, unsold stock >= qty existed anywhere."""
        if self.oracle is None or self._all_sold:
            return
        unsold = self.scenario.sale.stock - sum(int(self.oracle(p.sold) or 0) for p in self.parts)
        if unsold <= 0:
            self._all_sold = True
        elif unsold >= qty:
            self.stats["false_sold_outs"] += 1

    def servable(self, qty: int, read: Read) -> bool:
        """One partition holds ``qty``, or would once the pool's stock were injected into it.

        Unsold stock only shrinks, so once it is below ``qty`` (read from the exact sold
        counters) the answer is no without reading every partition again: after the sell-out,
        the common case, this costs nothing.
        """
        if qty > self._unsold_exact:
            return False
        self._unsold_exact = self.initial - sum(int(read(p.sold) or 0) for p in self.parts)
        if qty > self._unsold_exact:
            return False
        pool = int(read(self.pool.stock) or 0)
        most = max(int(read(p.a) or 0) + int(read(p.b) or 0) for p in self.parts)
        return pool + most >= qty

    def pieces(self, inventory: Inventory) -> list[int]:
        holders = inventory.holders
        return [holders[f"p{i}.a"] + holders[f"p{i}.b"] for i in range(len(self.parts))]

    def keys(self) -> tuple[str, ...]:
        keys = [key for part in self.parts for key in part.all()]
        pipeline = self.pipeline.keys() if self.pipeline is not None else ()
        return (*keys, *self.pool.all(len(self.parts)), *pipeline)

    def inventory(self, read: Read) -> Inventory:
        def value(key: str) -> int:
            return int(read(key) or 0)

        holders = {"pool": value(self.pool.stock)}
        sold = injecting = returning = 0
        for i, part in enumerate(self.parts):
            holders[f"p{i}.a"] = value(part.a)
            holders[f"p{i}.b"] = value(part.b)
            sold += value(part.sold)
            injecting += value(self.pool.issued(i)) - value(part.received)
            returning += value(part.returned) - value(self.pool.back(i))
        in_flight = {name: units for name, units in (("injection", injecting), ("return", returning)) if units}
        return Inventory(initial=self.scenario.sale.stock, sold=sold, holders=holders, in_flight=in_flight)

    def reseed(self, rng: np.random.Generator) -> None:
        super().reseed(rng)
        self.uniform.clear()  # numbers drawn from the old state are not this process's

    def tally(self) -> dict[str, Any]:
        return {**super().tally(), "node_ops": list(self.node_ops), "part_requests": list(self.part_requests),
                "sync": self.pipeline.stats if self.pipeline is not None else None}

    def merge_tallies(self, tallies: list[dict[str, Any]]) -> dict[str, float]:
        merged = super().merge_tallies(tallies)
        loads = [sum(ops) for ops in zip(*(t["node_ops"] for t in tallies))]
        parts = [sum(n) for n in zip(*(t["part_requests"] for t in tallies))]
        merged["skew"] = max(loads) / (sum(loads) / len(loads)) if sum(loads) else float("nan")
        merged["partition_skew"] = max(parts) / (sum(parts) / len(parts)) if sum(parts) else float("nan")
        if self.oracle is None:
            merged["false_sold_outs"] = float("nan")
        if self.pipeline is not None:  # records counted by the app workers, applied by the service
            merged.update(self.pipeline.counters(SyncStats.merged([t["sync"] for t in tallies])))
        return merged

    def counters(self) -> dict[str, float]:
        figures: dict[str, float] = dict(self.stats)
        if self.oracle is None:
            figures["false_sold_outs"] = float("nan")  # unknowable without an exact global view
        figures["stranded"] = self.stranded  # the name before stranded_end; same figure
        figures["stranded_end"] = self.stranded_end
        loads = self.node_ops
        figures["redis_ops"] = sum(loads)  # partition and pool scripts: buyers', refreshes', stock moves'
        figures["skew"] = max(loads) / (sum(loads) / len(loads)) if sum(loads) else float("nan")
        parts = self.part_requests
        figures["partition_skew"] = max(parts) / (sum(parts) / len(parts)) if sum(parts) else float("nan")
        if self.pipeline is not None:
            figures.update(self.pipeline.counters())
        return figures
