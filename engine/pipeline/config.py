"""The ``pipeline`` scenario section: detail records, sync triggers, MQ and DB apply.

Redis takes the deductions; the database learns of them asynchronously
(design article, "Asynchronous Stock Updates"). These knobs shape that path:
when a partition's unsynced detail records go out (a count threshold and a
period, independent of each other), how the message queue behaves
(latencies, at-least-once delivery, duplicates, reordering, loss with
producer retry) and how many consumers apply batches. What an apply
transaction costs comes from the ``db`` section (the simulated MySQL).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.fields import Dist, doc, require


def _prob(name: str, value: float) -> None:
    require(0.0 <= value <= 1.0, f"pipeline.{name} must be in [0, 1] (got {value})")


def _positive(name: str, value: float) -> None:
    require(math.isfinite(value) and value > 0, f"pipeline.{name} must be > 0 (got {value})")


@dataclass(frozen=True)
class PipelineConfig:
    enabled: bool = doc(
        True,
        "write a detail record with every deduction (same Lua script) and sync them to the DB through the MQ",
    )
    threshold: int = doc(100, "count trigger: a partition flushes once it holds this many unsynced detail records")
    period: float = doc(1.0, "periodic trigger: every partition flushes its unsynced records this often, seconds")
    batch_size: int = doc(200, "most detail records in one MQ message")
    publish: Dist = doc(lambda: Dist("deterministic", 0.0005), "producer -> broker until the publish is confirmed", factory=True)
    delivery: Dist = doc(lambda: Dist("exponential", 0.001), "broker -> consumer delay of each message (random: reorders)", factory=True)
    consumers: int = doc(2, "concurrent consumers applying batches to the DB")
    ack_timeout: float = doc(0.5, "a delivered message not acknowledged within this many seconds is delivered again")
    duplicate: float = doc(0.0, "probability that the broker delivers a message twice (at-least-once)")
    reorder: float = doc(0.0, "probability that a message is held back by reorder_delay (overtaken by later ones)")
    reorder_delay: float = doc(0.05, "extra delivery delay of a reordered message, seconds")
    loss: float = doc(0.0, "probability that a publish is lost; the producer sees no confirm and publishes again")
    confirm_timeout: float = doc(0.05, "how long the producer waits for a publish confirm before retrying, seconds")
    publish_attempts: int = doc(20, "publishes of one batch without a confirm before the producer leaves it to resend_after")
    resend_after: float = doc(2.0, "a batch sent but still not applied after this many seconds is sent again")
    poll: float = doc(0.05, "consumer blocking-read timeout and drain polling interval, seconds")
    drain_timeout: float = doc(120.0, "after the sale, give up draining the pipeline after this many simulated seconds")

    def __post_init__(self) -> None:
        require(self.threshold >= 1, f"pipeline.threshold must be >= 1 (got {self.threshold})")
        require(self.batch_size >= 1, f"pipeline.batch_size must be >= 1 (got {self.batch_size})")
        require(self.publish_attempts >= 1, f"pipeline.publish_attempts must be >= 1 (got {self.publish_attempts})")
        require(self.consumers >= 1, f"pipeline.consumers must be >= 1 (got {self.consumers})")
        for name in ("period", "ack_timeout", "confirm_timeout", "resend_after", "poll", "drain_timeout"):
            _positive(name, getattr(self, name))
        for name in ("duplicate", "reorder", "loss"):
            _prob(name, getattr(self, name))
        require(self.loss < 1.0, "pipeline.loss must be < 1 (every publish lost: nothing ever arrives)")
        require(math.isfinite(self.reorder_delay) and self.reorder_delay >= 0,
                f"pipeline.reorder_delay must be >= 0 (got {self.reorder_delay})")
