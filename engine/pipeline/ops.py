"""Message-queue operations of the sync pipeline.

Semantics (both interpreters must honour them; the real driver maps them onto
Redis Streams with one consumer group):

- ``msg_id = yield Publish(topic, payload)``: hand ``payload`` (a JSON-able
  dict) to the broker. The reply is the message id once the broker confirms
  it (then the message WILL be delivered to the topic's consumer group at
  least once), or ``None`` when no confirm came within the producer's confirm
  timeout; the message may then be lost, and the producer publishes again.
  Real: ``XADD topic * payload <json>`` (reply: the stream entry id).
- ``msg = yield Consume(topic, consumer, block)``: the next message for this
  consumer, a :class:`Message`, or ``None`` when none arrived within ``block``
  seconds. A message delivered but not acknowledged within the broker's ack
  timeout is delivered again (possibly to another consumer), with
  ``deliveries`` counting up. Real: ``XAUTOCLAIM topic group consumer
  <ack_timeout ms> 0 COUNT 1`` first, else ``XREADGROUP GROUP group consumer
  COUNT 1 BLOCK <block ms> STREAMS topic >``.
- ``done = yield Ack(topic, msg_id)``: the consumer is finished with the
  message; ``True`` if it was still outstanding, ``False`` when it was already
  acknowledged (a duplicate delivery). Real: ``XACK topic group id`` (1 / 0).

Duplicates, redelivery and reordering are the consumer's problem by design:
it applies idempotently by detail id (see :mod:`engine.pipeline.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: dict[str, Any] = field(hash=False)

    @property
    def records(self) -> int:
        """Detail records the message carries (the app's per-record CPU is charged for them)."""
        return len(self.payload.get("records", ()))


@dataclass(frozen=True, slots=True)
class Consume:
    topic: str
    consumer: str
    block: float


@dataclass(frozen=True, slots=True)
class Ack:
    topic: str
    msg_id: str


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a published message; ``deliveries`` is 1 the first time."""

    msg_id: str
    payload: dict[str, Any] = field(hash=False)
    deliveries: int = 1

    @property
    def records(self) -> int:
        """Detail records the message carries."""
        return len(self.payload.get("records", ()))
