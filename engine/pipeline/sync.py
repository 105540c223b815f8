"""The async persistence pipeline: detail records -> triggers -> MQ -> idempotent DB apply.

One :class:`SyncPipeline` serves one sale (one SKU) and any number of
partitions (stock counters). Its parts, all sans-IO generators:

- :meth:`deduct` runs ``deduct_detail``: the deduction and its detail record
  in one atomic Lua step. :meth:`recorded` is the hook after any such script
  (a strategy with its own detail-writing deduct script calls it): once a
  partition holds ``threshold`` pending records, it spawns a flush (the
  **count trigger**).
- :meth:`periodic` is the **periodic trigger** of one partition: every
  ``period`` seconds it flushes, and sends again any batch that was sent but
  not applied for ``resend_after`` seconds (a lost message).
- :meth:`flush` collects pending records into batches (``detail_collect``:
  status pending -> sent, so each record goes out once per attempt) and
  publishes each, retrying when no confirm comes.
- :meth:`consumer` takes messages, applies each in ONE DB transaction
  (:func:`~engine.pipeline.ledger.apply_batch`, idempotent by detail id),
  acknowledges, and marks the records applied in Redis (``detail_applied``,
  spawned: a consumer never waits in the hot Redis node's queue; should the
  mark get lost, the batch stays open, is re-sent after ``resend_after`` and
  suppressed as a duplicate, and the mark comes again).
- :meth:`drain` flushes everything after the sale, waits until nothing is
  pending or in flight, applies the copies still in the MQ (counted as
  duplicates; no apply is cut off by the end of the run) and reconciles Redis, detail records and DB
  (:mod:`engine.pipeline.reconcile`).

Figures for the summary come from :class:`~engine.pipeline.stats.SyncStats`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Protocol

from engine.counter.keys import StockKeys
from engine.ops import NOW, Eval, Sleep, Spawn
from engine.pipeline import ledger, twins  # noqa: F401  (twins: registers the detail scripts)
from engine.pipeline.config import PipelineConfig
from engine.pipeline.keys import DetailKeys
from engine.pipeline.ops import Ack, Consume, Message, Publish
from engine.pipeline.reconcile import Reconciliation, reconcile
from engine.pipeline.stats import SyncStats

Ops = Generator[Any, Any, Any]
Note = Callable[..., None]


class Counter(Protocol):
    """A partition's keys as the pipeline needs them (StockKeys, sharded PartitionKeys)."""

    @property
    def namespace(self) -> str: ...
    @property
    def tag(self) -> str: ...
    @property
    def sold(self) -> str: ...

COUNT, PERIODIC, DRAIN, RESEND = "count", "periodic", "drain", "resend"


def stamp(t: float) -> str:
    """The detail record's time as text (microseconds), identical in Lua and Python."""
    return f"{t:.6f}"


class SyncPipeline:
    """Detail records and their asynchronous way into the DB, for one SKU."""

    def __init__(self, config: PipelineConfig, sku: str, namespace: str, note: Note | None = None):
        self.config = config
        self.sku = sku
        self.namespace = namespace
        self.topic = f"{namespace}:stock-sync:{sku}"
        self.partitions: dict[str, DetailKeys] = {}
        self._sold_keys: dict[str, str] = {}
        self._deduct_keys: dict[str, tuple[StockKeys, tuple[str, ...]]] = {}  # (key properties format strings)
        self._detail_keys: dict[str, tuple[str, str, str]] = {}
        self._flushing: set[str] = set()
        self._moves: deque[tuple[bool, str, int]] = deque()  # (pre-allocation?, partition, units), in order
        self._mover = False  # a task is writing _moves to the DB
        self._with_keys: dict[tuple[str, ...], tuple[str, ...]] = {}  # deduct_with: base KEYS -> with detail KEYS
        self._applying = 0  # deliveries being applied right now (drain waits for them)
        self.stats = SyncStats()
        self.reconciliation: Reconciliation | None = None
        self._note = note or (lambda t, kind, **fields: None)

    # --- partitions ---------------------------------------------------------
    def add_partition(self, counter: Counter) -> DetailKeys:
        """Give stock counter ``counter`` detail records; its tag is the partition id."""
        keys = DetailKeys(counter.namespace, counter.tag)
        if keys.tag in self.partitions:
            raise ValueError(f"partition {keys.tag!r} added twice")
        self.partitions[keys.tag] = keys
        self._sold_keys[keys.tag] = counter.sold
        return keys

    def keys(self) -> tuple[str, ...]:
        return tuple(key for part in self.partitions.values() for key in part.all())

    def deduct_keys(self, counter: StockKeys) -> tuple[str, ...]:
        """KEYS of ``deduct_detail`` for ``counter``: stock, sold, details, pending, meta."""
        made = self._deduct_keys.get(counter.tag)
        if made is None or made[0] is not counter:
            part = self.partitions[counter.tag]
            made = self._deduct_keys[counter.tag] = (
                counter, (counter.stock, counter.sold, part.details, part.pending, part.meta))
        return made[1]

    def detail_keys(self, tag: str) -> tuple[str, str, str]:
        """The KEYS a detail-writing deduct script appends: details, pending, meta."""
        keys = self._detail_keys.get(tag)
        if keys is None:
            part = self.partitions[tag]
            keys = self._detail_keys[tag] = (part.details, part.pending, part.meta)
        return keys

    # --- setup --------------------------------------------------------------
    def setup(self, initial: int, allocations: list[tuple[str, int]]) -> Ops:
        """Create the DB tables, put ``initial`` units in the pool, pre-allocate per partition."""
        yield from ledger.create_tables()
        yield from ledger.init_ledger(self.sku, initial)
        for tag, qty in allocations:
            yield from self.preallocate(tag, qty)

    def preallocate(self, tag: str, qty: int) -> Ops:
        """Record in the DB that ``qty`` units moved from the pool to partition ``tag``."""
        if qty > 0 and not (yield from ledger.preallocate(self.sku, tag, qty)):
            raise RuntimeError(f"DB pool of {self.sku!r} cannot pre-allocate {qty} units to {tag!r}")

    def release(self, tag: str, qty: int) -> Ops:
        """Record in the DB that ``qty`` unsold units went back from partition ``tag`` to the pool."""
        if qty > 0 and not (yield from ledger.release(self.sku, tag, qty)):
            raise RuntimeError(f"DB partition {tag!r} of {self.sku!r} cannot release {qty} units")

    def move_later(self, tag: str, qty: int, preallocation: bool = True) -> Ops:
        """Queue a pre-allocation (or a release) for the DB; one spawned writer applies them in order.

        The stock move in Redis does not wait for the DB (an injection must reach
        buyers fast). The order of moves is kept, so a release never overtakes
        the pre-allocations it returns; an MQ update may overtake the
        pre-allocation of the units it reports (the partition's pre-allocated
        figure dips below zero until it lands). :meth:`drain` waits for the queue.
        """
        if qty > 0:
            self._moves.append((preallocation, tag, qty))
            if not self._mover:
                self._mover = True
                yield Spawn(self._write_moves())

    def _write_moves(self) -> Ops:
        try:
            while self._moves:
                preallocation, tag, qty = self._moves.popleft()
                try:
                    if preallocation:
                        yield from self.preallocate(tag, qty)
                    else:
                        yield from self.release(tag, qty)
                except (RuntimeError, ledger.ApplyFailed) as err:  # refused: counted, and reconciliation says so
                    self.stats.ledger_failures += 1
                    now = yield NOW
                    self._note(now, "sync_ledger_move_failed", part=tag, units=qty, error=str(err))
        finally:
            self._mover = False

    # --- producer side -------------------------------------------------------
    def deduct(self, counter: StockKeys, qty: int) -> Generator[Any, Any, int]:
        """Deduct ``qty`` and write its detail record atomically; the reply codes of ``deduct``."""
        now = yield NOW
        tag = counter.tag
        max_seq = self.stats.max_seq
        remaining, seq, pending = yield Eval("deduct_detail", self.deduct_keys(counter),
                                             (qty, f"{now:.6f}", max_seq.get(tag, 0)))  # (stamp, inline)
        if remaining >= 0:  # recorded(), inline: this runs once per sale
            if seq > max_seq.get(tag, 0):
                max_seq[tag] = seq
            if pending >= self.config.threshold and tag not in self._flushing:
                self._flushing.add(tag)
                yield Spawn(self._count_flush(tag))
        return remaining

    def deduct_with(self, script: str, keys: tuple[str, ...], args: tuple[Any, ...], tag: str) -> Generator[Any, Any, list]:
        """Run a detail-writing variant of a deduct script for partition ``tag``.

        The variant takes the base script's KEYS plus :meth:`detail_keys` and its
        ARGV plus the time and the highest seq seen for the partition (a counter
        below it was rolled back: the script changes the partition's epoch), and replies the base reply followed by ``seq, pending``
        (``seq`` 0 when nothing was sold); the base reply is returned.
        """
        now = yield NOW
        seen = self.stats.max_seq.get(tag, 0)
        full = self._with_keys.get(keys)
        if full is None:
            full = self._with_keys[keys] = (*keys, *self.detail_keys(tag))
        reply = yield Eval(script, full, (*args, stamp(now), seen))
        if reply[-2] > 0:
            yield from self.recorded(tag, reply[-2], reply[-1])
        return reply[:-2]

    def recorded(self, tag: str, seq: int, pending: int) -> Ops:
        """After a detail record was written: the count trigger."""
        self.stats.saw_record(tag, seq)
        if pending >= self.config.threshold and tag not in self._flushing:
            self._flushing.add(tag)
            yield Spawn(self._count_flush(tag))

    def _count_flush(self, tag: str) -> Ops:
        try:
            yield from self.flush(tag, COUNT)
        finally:
            self._flushing.discard(tag)

    def flush(self, tag: str, trigger: str) -> Ops:
        """Send every pending record of partition ``tag`` as batches of at most ``batch_size``."""
        part = self.partitions[tag]
        size = self.config.batch_size
        while True:
            now = yield NOW
            reply = yield Eval("detail_collect", (part.details, part.pending, part.batches, part.meta),
                               (stamp(now), size))
            if not reply:
                return
            batch, flat = reply
            yield from self._publish(tag, int(batch), flat, trigger)
            if len(flat) < 2 * size:
                return

    def periodic(self, tag: str) -> Ops:
        """The periodic trigger of partition ``tag``; also re-sends batches lost on the way."""
        part = self.partitions[tag]
        while True:
            yield Sleep(self.config.period)
            yield from self.flush(tag, PERIODIC)
            now = yield NOW
            due = yield Eval("detail_stale", (part.details, part.batches), (stamp(now), self.config.resend_after))
            for batch, flat in due:
                yield from self._publish(tag, int(batch), flat, RESEND)

    def _publish(self, tag: str, batch: int, flat: list, trigger: str) -> Ops:
        records = []
        for i in range(0, len(flat), 2):  # seq, "qty|time|status"
            qty, t, _ = flat[i + 1].split("|")
            records.append((str(flat[i]), int(qty), float(t)))
        payload = {"sku": self.sku, "part": tag, "batch": batch, "records": records}
        now = yield NOW
        self.stats.batch_sent(trigger, len(records))
        self._note(now, "sync_publish", part=tag, batch=batch, trigger=trigger, size=len(records),
                   backlog=self.stats.backlog)
        for _attempt in range(self.config.publish_attempts):
            msg_id = yield Publish(self.topic, payload)
            if msg_id is not None:
                self.stats.published += 1
                return
            self.stats.unconfirmed += 1  # no confirm: maybe lost; publish again (same records)
        self.stats.given_up += 1
        now = yield NOW
        self._note(now, "sync_publish_gave_up", part=tag, batch=batch)

    # --- consumer side -------------------------------------------------------
    def consumer(self, name: str) -> Ops:
        """Apply batches from the MQ to the DB, idempotently, and acknowledge them."""
        while True:
            msg = yield Consume(self.topic, name, self.config.poll)
            if msg is not None:
                yield from self.consume(msg)

    def consume(self, msg: Message) -> Ops:
        """One delivery: apply (one transaction), acknowledge, mark applied in Redis."""
        self._applying += 1
        try:
            yield from self._consume(msg)
        finally:
            self._applying -= 1

    def _consume(self, msg: Message) -> Ops:
        payload = msg.payload
        tag = payload["part"]
        part = self.partitions[tag]
        prefix = part.detail_id("")  # detail ids are <tag>:<record id>
        records = [(f"{prefix}{record_id}", qty, t) for record_id, qty, t in payload["records"]]
        try:
            report = yield from ledger.apply_batch(self.sku, tag, records)
        except ledger.ApplyFailed as err:
            now = yield NOW
            self.stats.apply_failures += 1
            self._note(now, "sync_apply_failed", part=tag, batch=payload["batch"], error=str(err))
            return  # no ack: the broker delivers it again after the ack timeout
        now = yield NOW
        if len(report.inserted) == len(records):  # all new (inserted lists them in order)
            inserted_times = [t for _, _, t in records]
        else:
            times = {detail_id: t for detail_id, _, t in records}
            inserted_times = [times[i] for i in report.inserted]
        self.stats.applied(now, report, inserted_times, msg.deliveries)
        yield Ack(self.topic, msg.msg_id)
        yield Spawn(_mark_applied(part, payload["batch"]))
        self._note(now, "sync_apply", part=tag, batch=payload["batch"], inserted=len(report.inserted),
                   duplicates=report.duplicates, deliveries=msg.deliveries, backlog=self.stats.backlog)

    # --- life cycle ----------------------------------------------------------
    def background(self) -> list[Ops]:
        """Periodic triggers (one per partition) and the consumers."""
        triggers = [self.periodic(tag) for tag in self.partitions]
        return triggers + [self.consumer(f"consumer-{i}") for i in range(self.config.consumers)]

    def drain(self, initial: int) -> Ops:
        """After the sale: flush, wait until all is applied, then reconcile."""
        start = yield NOW
        for tag in self.partitions:
            yield from self.flush(tag, DRAIN)
        while True:
            outstanding = 0
            for tag, part in self.partitions.items():
                pending, batches = yield Eval("detail_backlog", (part.pending, part.batches))
                if pending:
                    yield from self.flush(tag, DRAIN)
                outstanding += pending + batches
            outstanding += len(self._moves) + self._mover
            now = yield NOW
            if outstanding == 0 or now - start > self.config.drain_timeout:
                break
            yield Sleep(self.config.poll)
        yield from self._empty_queue(start)
        now = yield NOW
        self.stats.drain_seconds = now - start
        sources = [(part.details, self._sold_keys[tag]) for tag, part in self.partitions.items()]
        self.reconciliation = yield from reconcile(sources, self.sku, self.stats, initial)
        self._note(now, "sync_reconciled", differences=len(self.reconciliation.differences))

    def _empty_queue(self, start: float) -> Ops:
        """Apply what is still in the MQ and let every apply under way finish.

        Once Redis has nothing outstanding, the MQ may still hold copies of
        applied batches (a batch re-sent after ``resend_after``, a publish
        repeated after a lost confirm). Each copy is applied here, so the DB
        refuses its records as duplicates inside a counted apply
        (``sync_duplicates_suppressed``) rather than in a transaction the end
        of the run cuts off, and no consumer is left holding one.
        """
        while True:
            now = yield NOW
            if now - start > self.config.drain_timeout:
                return
            msg = yield Consume(self.topic, "drain", 0.0)
            if msg is not None:
                yield from self.consume(msg)
            elif not self._applying:
                return
            else:
                yield Sleep(self.config.poll)

    def counters(self, stats: SyncStats | None = None) -> dict[str, float]:
        """Summary figures from this pipeline's stats (or from ``stats``: several processes' merged)."""
        figures = (stats or self.stats).figures()
        recon = self.reconciliation
        if recon is not None:
            figures.update({
                "sync_differences": len(recon.differences), "recon_redis_sold": recon.redis_sold,
                "recon_detail_records": recon.detail_records, "recon_detail_qty": recon.detail_qty,
                "recon_db_deducted": recon.db_deducted, "recon_db_preallocated": recon.db_preallocated,
                "recon_db_pool": recon.db_pool, "recon_db_detail_rows": recon.db_detail_rows,
                "recon_db_detail_qty": recon.db_detail_qty,
            })
        return figures


def _mark_applied(part: DetailKeys, batch: int) -> Ops:
    yield Eval("detail_applied", (part.details, part.batches), (batch,))

