"""Async persistence: detail records, two sync triggers, MQ, idempotent DB apply.

See :mod:`engine.pipeline.sync` for the flow, :mod:`engine.pipeline.ops` for
the MQ ops (and their Redis Streams mapping), :mod:`engine.pipeline.ledger`
for the pre-allocated stock accounting and the DB statements.
"""

from __future__ import annotations

from .keys import DetailKeys
from .ledger import ApplyReport, LedgerRow
from .ops import Ack, Consume, Message, Publish, Spawn
from .reconcile import Reconciliation
from .sync import SyncPipeline

__all__ = ["Ack", "ApplyReport", "Consume", "DetailKeys", "LedgerRow", "Message", "Publish", "Reconciliation",
           "Spawn", "SyncPipeline"]
