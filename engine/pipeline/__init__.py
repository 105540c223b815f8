"""Async persistence: detail records, two sync triggers, MQ, idempotent DB apply.

See :mod:`engine.pipeline.sync` for the flow, :mod:`engine.pipeline.ops` for
the MQ ops (and their Redis Streams mapping), :mod:`engine.pipeline.ledger`
for the pre-allocated stock accounting and the DB statements.
"""

from __future__ import annotations

from engine.pipeline.keys import DetailKeys
from engine.pipeline.ledger import ApplyReport, LedgerRow
from engine.pipeline.ops import Ack, Consume, Message, Publish
from engine.pipeline.reconcile import Reconciliation
from engine.pipeline.sync import SyncPipeline

__all__ = ["Ack", "ApplyReport", "Consume", "DetailKeys", "LedgerRow", "Message", "Publish", "Reconciliation",
           "SyncPipeline"]
