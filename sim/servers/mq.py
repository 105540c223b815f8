"""A simulated message broker for the sync pipeline.

One consumer group per topic, at-least-once delivery (``pipeline`` section):

- ``Publish``: with probability ``loss`` the message is lost and the producer
  hears nothing for ``confirm_timeout`` (reply ``None``: it publishes again);
  otherwise the broker confirms after ``publish`` and the message becomes
  deliverable ``delivery`` later (a random delay reorders messages), plus
  ``reorder_delay`` with probability ``reorder``. With probability
  ``duplicate`` a second copy is delivered as well.
- ``Consume``: hands the oldest deliverable message to the consumer, or parks
  it until one arrives or ``block`` runs out (reply ``None``). A delivery not
  acknowledged within ``ack_timeout`` is delivered again (``deliveries`` + 1).
- ``Ack``: ``True`` the first time a message is acknowledged, else ``False``.

Every random draw comes from the ``mq`` stream, in event order: same seed,
same run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import simpy

from engine.distributions import sampler
from engine.pipeline.ops import Ack, Consume, Message, Publish
from sim.interpreter import Interpreter, Task
from sim.kernel import Call, schedule_call
from sim.world import COMPONENTS, World


class _Stored:
    """A message the broker holds until it is acknowledged."""

    __slots__ = ("msg_id", "payload", "deliveries", "acked")

    def __init__(self, msg_id: str, payload: dict[str, Any]):
        self.msg_id = msg_id
        self.payload = payload
        self.deliveries = 0
        self.acked = False


class _Topic:
    def __init__(self) -> None:
        self.ready: deque[_Stored] = deque()  # deliverable, in the order they became so
        self.waiting: deque[list[Any]] = deque()  # parked consumers: [task, still waiting?]
        self.messages: dict[str, _Stored] = {}


class SimMq:
    """The broker: topics, delivery timers and the figures tests and summaries read."""

    def __init__(self, world: World):
        config = self.config = world.scenario.pipeline
        self.env: simpy.Environment = world.env
        self.interpreter: Interpreter = world.interpreter
        self.rng = world.streams.generator("mq")
        self._publish = sampler(config.publish, self.rng)
        self._delivery = sampler(config.delivery, self.rng)
        self.topics: dict[str, _Topic] = {}
        self._ids = 0
        self.lost = 0
        self.duplicated = 0
        self.reordered = 0
        self.delivered = 0
        self.redelivered = 0  # deliveries caused by an expired ack timeout
        self.acks = 0

    def _topic(self, name: str) -> _Topic:
        topic = self.topics.get(name)
        if topic is None:
            topic = self.topics[name] = _Topic()
        return topic

    # --- publish ------------------------------------------------------------
    def publish(self, task: Task, op: Publish) -> None:
        config = self.config
        if config.loss and self.rng.random() < config.loss:
            self.lost += 1
            self.interpreter.wake_after(config.confirm_timeout, task, None)
            return
        self._ids += 1
        msg = _Stored(f"{self._ids}-0", op.payload)
        topic = self._topic(op.topic)
        topic.messages[msg.msg_id] = msg
        confirm = self._publish()
        self.interpreter.wake_after(confirm, task, msg.msg_id)
        copies = 2 if config.duplicate and self.rng.random() < config.duplicate else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            delay = confirm + self._delivery()
            if config.reorder and self.rng.random() < config.reorder:
                self.reordered += 1
                delay += config.reorder_delay
            schedule_call(self.env, delay, self._arrive, (topic, msg))

    def _arrive(self, event: Call) -> None:
        topic, msg = event.value
        while topic.waiting:
            entry = topic.waiting.popleft()
            if entry[1]:
                entry[1] = False
                self._deliver(topic, msg, entry[0])
                return
        topic.ready.append(msg)

    # --- consume ------------------------------------------------------------
    def consume(self, task: Task, op: Consume) -> None:
        topic = self._topic(op.topic)
        if topic.ready:
            self._deliver(topic, topic.ready.popleft(), task)
            return
        entry = [task, True]
        topic.waiting.append(entry)
        schedule_call(self.env, op.block, self._give_up, entry)

    def _give_up(self, event: Call) -> None:
        entry = event.value
        if entry[1]:  # still parked: nothing arrived in time (its stale entry is skipped later)
            entry[1] = False
            self.interpreter.wake(entry[0], None)

    def _deliver(self, topic: _Topic, msg: _Stored, task: Task) -> None:
        msg.deliveries += 1
        self.delivered += 1
        schedule_call(self.env, self.config.ack_timeout, self._ack_due, (topic, msg))
        message = Message(msg.msg_id, msg.payload, msg.deliveries)
        if task.cpu is not None:  # the consumer's half of the per-record CPU, paid in its next segment
            task.charge += self.interpreter.record_cost * message.records
        self.interpreter.wake_after(0.0, task, message)

    def _ack_due(self, event: Call) -> None:
        topic, msg = event.value
        if not msg.acked:
            self.redelivered += 1
            self._arrive(event)  # deliverable again, now

    # --- ack ----------------------------------------------------------------
    def ack(self, task: Task, op: Ack) -> None:
        messages = self._topic(op.topic).messages
        msg = messages.get(op.msg_id)
        first = msg is not None and not msg.acked
        if msg is not None and first:
            msg.acked = True
            self.acks += 1
            # Forgotten once acknowledged: a later ack of it is not the first (as when kept), and a
            # copy still on its way or a redelivery already queued holds the message itself.
            del messages[op.msg_id]
        self.interpreter.wake_after(self._publish(), task, first)

    def figures(self) -> dict[str, float]:
        return {"mq_lost": self.lost, "mq_duplicated": self.duplicated, "mq_reordered": self.reordered,
                "mq_delivered": self.delivered, "mq_redelivered": self.redelivered}


def install(world: World) -> None:
    mq = world.mq = SimMq(world)  # type: ignore[attr-defined]
    handlers = world.interpreter.handlers
    handlers[Publish] = mq.publish
    handlers[Consume] = mq.consume
    handlers[Ack] = mq.ack
    if world.scenario.pipeline.enabled:
        world.summaries.append(mq.figures)


COMPONENTS.append(install)
