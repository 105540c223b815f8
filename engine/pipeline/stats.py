"""What the sync pipeline measured: lag, DB writes, MQ traffic, duplicates, backlog.

Kept app-side by the pipeline's generators (times come from ``Now()`` ops),
so a simulated and a real run report the same figures.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter

import numpy as np

from engine.pipeline.columnar import IdSet
from engine.pipeline.ledger import ApplyReport


class SyncStats:
    def __init__(self) -> None:
        self.max_seq: dict[str, int] = {}  # per partition: records known to exist (seq is 1, 2, ...)
        self.batches: Counter[str] = Counter()  # batches sent, by trigger (count/periodic/drain/resend)
        self.batch_sizes: list[int] = []
        self.published = 0  # publishes the broker confirmed
        self.unconfirmed = 0  # publishes that got no confirm in time
        self.given_up = 0  # batches left to the stale re-send after publish_attempts unconfirmed publishes
        self.apply_failures = 0
        self.ledger_failures = 0  # pre-allocations / releases the DB refused
        self.txn = 0  # apply transactions committed
        self.applied_records = 0  # records new to the DB
        self.duplicates_suppressed = 0  # records the DB already had (INSERT IGNORE)
        self.duplicate_batches = 0  # deliveries that changed nothing
        self.redeliveries = 0  # deliveries after the first of a message
        self.applied_twice = 0  # records the DB took as new twice: must stay 0
        self.lags = array("d")  # per record: deduction -> commit of its apply
        self.record_times = array("d")
        self.first_commit = math.nan
        self.last_commit = math.nan
        self.drain_seconds = math.nan
        self._seen = IdSet()

    @classmethod
    def merged(cls, parts: list[SyncStats]) -> SyncStats:
        """One process's view from several (real mode: app workers count records, the service applies them)."""
        out = cls()
        for part in parts:
            for tag, seq in part.max_seq.items():
                out.saw_record(tag, seq)
            out.batches.update(part.batches)
            out.batch_sizes.extend(part.batch_sizes)
            for name in ("published", "unconfirmed", "given_up", "apply_failures", "ledger_failures", "txn",
                         "applied_records", "duplicates_suppressed", "duplicate_batches", "redeliveries"):
                setattr(out, name, getattr(out, name) + getattr(part, name))
            out.applied_twice += part.applied_twice + len(out._seen & part._seen)  # taken as new in two processes
            out._seen |= part._seen
            out.lags.extend(part.lags)
            out.record_times.extend(part.record_times)
            out.first_commit = min(out.first_commit, part.first_commit) if not math.isnan(out.first_commit) \
                else part.first_commit
            out.last_commit = max(out.last_commit, part.last_commit) if not math.isnan(out.last_commit) \
                else part.last_commit
            if not math.isnan(part.drain_seconds):
                out.drain_seconds = part.drain_seconds
        return out

    def saw_record(self, tag: str, seq: int) -> None:
        if seq > self.max_seq.get(tag, 0):
            self.max_seq[tag] = seq

    @property
    def backlog(self) -> int:
        """Records known to exist in Redis and not yet applied to the DB."""
        return max(0, sum(self.max_seq.values()) - self.applied_records)

    def batch_sent(self, trigger: str, size: int) -> None:
        self.batches[trigger] += 1
        self.batch_sizes.append(size)

    def applied(self, now: float, report: ApplyReport, times: list[float], deliveries: int) -> None:
        self.txn += 1
        if math.isnan(self.first_commit):
            self.first_commit = now
        self.last_commit = now
        self.duplicates_suppressed += report.duplicates
        if not report.inserted:
            self.duplicate_batches += 1
        if deliveries > 1:
            self.redeliveries += 1
        seen = self._seen
        for detail_id in report.inserted:
            if not seen.add(detail_id):
                self.applied_twice += 1
        self.applied_records += len(report.inserted)
        self.lags.extend(now - t for t in times)
        self.record_times.extend(times)

    def figures(self) -> dict[str, float]:
        """Summary figures (``sync_*``, ``db_*``, ``mq_*``)."""
        lags = np.asarray(self.lags)
        times = np.asarray(self.record_times)
        nan = math.nan
        first = float(times.min()) if len(times) else nan
        deduct_span = float(times.max()) - first if len(times) else nan
        apply_span = self.last_commit - first if len(times) else nan
        figures: dict[str, float] = {
            "sync_records": self.applied_records,
            "sync_lag_mean": float(lags.mean()) if len(lags) else nan,
            "sync_lag_p50": float(np.percentile(lags, 50)) if len(lags) else nan,
            "sync_lag_p99": float(np.percentile(lags, 99)) if len(lags) else nan,
            "sync_lag_max": float(lags.max()) if len(lags) else nan,
            "db_txn": self.txn,
            "db_txn_per_s": self.txn / apply_span if apply_span and apply_span > 0 else nan,
            # synchronous writes: one transaction per deduction, at the deduction rate
            "db_sync_txn_per_s": len(times) / deduct_span if deduct_span and deduct_span > 0 else nan,
            "db_write_reduction": self.applied_records / self.txn if self.txn else nan,
            "mq_batches": sum(self.batches.values()),
            "mq_published": self.published,
            "mq_unconfirmed": self.unconfirmed,
            "mq_given_up": self.given_up,
            "mq_batch_mean": float(np.mean(self.batch_sizes)) if self.batch_sizes else nan,
            "mq_batch_max": max(self.batch_sizes, default=0),
            "sync_duplicates_suppressed": self.duplicates_suppressed,
            "sync_duplicate_batches": self.duplicate_batches,
            "sync_redeliveries": self.redeliveries,
            "sync_apply_failures": self.apply_failures,
            "sync_ledger_failures": self.ledger_failures,
            "sync_applied_twice": self.applied_twice,
            "sync_backlog_end": self.backlog,
            "sync_drain_seconds": self.drain_seconds,
        }
        for trigger in ("count", "periodic", "drain", "resend"):
            figures[f"sync_trigger_{trigger}"] = self.batches[trigger]
        return figures
