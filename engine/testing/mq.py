"""The reference message broker: the MQ ops' meaning (:mod:`engine.pipeline.ops`) and nothing more.

One consumer group per topic, as the real driver's Redis Streams: ``Publish``
confirms at once (a message id, never ``None``), ``Consume`` first hands out
a message delivered earlier but not acknowledged within ``ack_timeout`` (at
least once: ``deliveries`` counts up), else the oldest new one, else
``None``; ``Ack`` is ``True`` the first time. Payloads go through JSON, as on
the wire, so a payload that is not JSON-able fails here too. No loss, no
duplicates, no reordering: those faults are the simulator's to model.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from engine.pipeline.ops import Ack, Consume, Message, Publish


class _Entry:
    __slots__ = ("msg_id", "data", "deliveries", "delivered_at")

    def __init__(self, msg_id: str, data: str):
        self.msg_id = msg_id
        self.data = data
        self.deliveries = 0
        self.delivered_at = 0.0


class _Topic:
    def __init__(self) -> None:
        self.new: deque[_Entry] = deque()  # never delivered, oldest first
        self.pending: dict[str, _Entry] = {}  # delivered, not acknowledged yet, in delivery order


class ReferenceMq:
    """Topics of JSON messages with at-least-once delivery on the reference clock."""

    def __init__(self, ack_timeout: float = 0.5):
        self.ack_timeout = ack_timeout
        self.topics: dict[str, _Topic] = {}
        self._ids = 0
        self.delivered = 0
        self.redelivered = 0
        self.acked = 0

    def topic(self, name: str) -> _Topic:
        found = self.topics.get(name)
        if found is None:
            found = self.topics[name] = _Topic()
        return found

    def answer(self, op: Any, now: float) -> Any:
        """The reply to one MQ op at reference time ``now``."""
        if isinstance(op, Publish):
            return self.publish(op.topic, op.payload)
        if isinstance(op, Consume):
            return self.consume(op.topic, now)
        if isinstance(op, Ack):
            return self.ack(op.topic, op.msg_id)
        raise TypeError(f"not an MQ op: {op!r}")

    def publish(self, topic: str, payload: dict[str, Any]) -> str:
        self._ids += 1
        entry = _Entry(f"{self._ids}-0", json.dumps(payload, separators=(",", ":")))
        self.topic(topic).new.append(entry)
        return entry.msg_id

    def consume(self, topic: str, now: float) -> Message | None:
        stream = self.topic(topic)
        entry = next((e for e in stream.pending.values() if now - e.delivered_at >= self.ack_timeout), None)
        if entry is not None:
            self.redelivered += 1
            del stream.pending[entry.msg_id]  # re-inserted below: last delivered, last in line
        elif stream.new:
            entry = stream.new.popleft()
        else:
            return None
        entry.deliveries += 1
        entry.delivered_at = now
        stream.pending[entry.msg_id] = entry
        self.delivered += 1
        return Message(entry.msg_id, json.loads(entry.data), entry.deliveries)

    def ack(self, topic: str, msg_id: str) -> bool:
        entry = self.topic(topic).pending.pop(msg_id, None)
        if entry is None:
            return False
        self.acked += 1
        return True

    def backlog(self, topic: str) -> int:
        """Messages not acknowledged yet (new or delivered)."""
        stream = self.topic(topic)
        return len(stream.new) + len(stream.pending)
