"""The sync pipeline's message queue on Redis Streams.

One stream per topic (under the run's namespace, so cleanup removes it) and
one consumer group, ``flashsim``, created at the stream's start (id 0) the
first time a process touches the topic, so no message published before a
consumer arrives is missed:

- ``Publish``  -> ``XADD <stream> * payload <json>``; reply the entry id, or
  ``None`` when the server did not confirm within ``pipeline.confirm_timeout``;
- ``Consume``  -> ``XAUTOCLAIM <stream> flashsim <consumer> <ack_timeout ms> 0
  COUNT 1`` first (a message delivered but not acknowledged in time is
  delivered again, to whoever asks: at-least-once for real), its delivery
  count from ``XPENDING``; else ``XREADGROUP ... COUNT 1 BLOCK <block ms>``;
- ``Ack``      -> ``XACK`` (True if the entry was still pending).

Blocking reads use their own pooled connections (a client per master), never
the EVALSHA lanes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from engine.pipeline.ops import Ack, Consume, Message, Publish
from engine.real.drivers import DRIVERS, Context, Driver
from engine.real.interpreter import RealInterpreter, Task
from engine.real.target import discover
from engine.slots import key_slot

GROUP = "flashsim"


def stream_key(namespace: str, topic: str) -> str:
    """The stream of ``topic``: inside the run's namespace, whatever the topic's name."""
    return topic if topic.startswith(namespace + ":") else f"{namespace}:mq:{topic}"


class StreamsMQ(Driver):
    name = "mq"

    def __init__(self, context: Context):
        super().__init__(context)
        self.interpreter: RealInterpreter | None = None
        self.clients: list[Redis] = []
        self.owner: list[int] = []
        self._groups: dict[str, asyncio.Future[None]] = {}
        self._connecting: asyncio.Task[None] | None = None
        pipeline = getattr(context.scenario, "pipeline", None)
        self.ack_timeout = float(getattr(pipeline, "ack_timeout", 0.5))
        self.confirm_timeout = float(getattr(pipeline, "confirm_timeout", 0.05))
        self.counts = {"mq_published": 0, "mq_unconfirmed": 0, "mq_delivered": 0, "mq_redelivered": 0, "mq_acked": 0}

    def figures(self) -> dict[str, float]:
        """Deliveries as the simulator's broker reports them (the pipeline counts its own publishes)."""
        if not any(self.counts.values()):
            return {}
        return {key: float(self.counts[key]) for key in ("mq_delivered", "mq_redelivered", "mq_acked")}

    async def open(self, interpreter: RealInterpreter) -> None:
        self.interpreter = interpreter
        handlers = interpreter.handlers
        handlers[Publish] = lambda task, op: self._later(task, self._publish(op))
        handlers[Consume] = lambda task, op: self._later(task, self._consume(op))
        handlers[Ack] = lambda task, op: self._later(task, self._ack(op))

    async def _connect(self) -> None:
        if self.clients:
            return
        if self._connecting is None:  # the first caller discovers; callers meanwhile wait for it
            self._connecting = asyncio.get_running_loop().create_task(self._discover())
        await asyncio.shield(self._connecting)

    async def _discover(self) -> None:
        topology = await discover(self.context.target)
        self.owner = topology.owners()
        self.clients = [self.context.target.client(host, port, max_connections=256)
                        for host, port in topology.masters]

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()

    def _later(self, task: Task, work: Any) -> None:
        asyncio.get_running_loop().create_task(self._answer(task, work))

    async def _answer(self, task: Task, work: Any) -> None:
        assert self.interpreter is not None
        try:
            reply = await work
        except Exception as err:
            self.interpreter.fail(task, err)
            return
        self.interpreter.wake(task, reply)

    async def _stream(self, topic: str) -> tuple[Redis, str]:
        await self._connect()
        key = stream_key(self.context.namespace, topic)
        client = self.clients[self.owner[key_slot(key)]]
        ready = self._groups.get(key)
        if ready is None:
            ready = self._groups[key] = asyncio.get_running_loop().create_future()
            try:
                await client.xgroup_create(key, GROUP, id="0", mkstream=True)
            except ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    ready.set_exception(err)
                    raise
            ready.set_result(None)
        await ready
        return client, key

    async def _publish(self, op: Publish) -> str | None:
        client, key = await self._stream(op.topic)
        data = json.dumps(op.payload, separators=(",", ":"))
        added: Any = client.xadd(key, {"payload": data})
        try:
            msg_id = await asyncio.wait_for(added, self.confirm_timeout)
        except TimeoutError:
            self.counts["mq_unconfirmed"] += 1
            return None
        self.counts["mq_published"] += 1
        return msg_id  # no confirm: the producer publishes again (the entry may still be there)

    async def _consume(self, op: Consume) -> Message | None:
        client, key = await self._stream(op.topic)
        idle_ms = max(1, int(self.ack_timeout * 1000))
        claimed: Any = await client.xautoclaim(key, GROUP, op.consumer, idle_ms, "0-0", count=1)
        entries = claimed[1] if len(claimed) > 1 else []
        if entries:
            msg_id, fields = entries[0]
            pending = await client.xpending_range(key, GROUP, min=msg_id, max=msg_id, count=1)
            deliveries = int(pending[0]["times_delivered"]) if pending else 2
            self.counts["mq_delivered"] += 1
            self.counts["mq_redelivered"] += 1
            return Message(msg_id, json.loads(fields["payload"]), deliveries)
        block = int(op.block * 1000)
        streams: Any = await client.xreadgroup(GROUP, op.consumer, {key: ">"}, count=1,
                                          block=block if block > 0 else None)
        if not streams:
            return None
        _, items = streams[0]
        if not items:
            return None
        msg_id, fields = items[0]
        self.counts["mq_delivered"] += 1
        return Message(msg_id, json.loads(fields["payload"]), 1)

    async def _ack(self, op: Ack) -> bool:
        client, key = await self._stream(op.topic)
        acked = bool(await client.xack(key, GROUP, op.msg_id))
        self.counts["mq_acked"] += acked
        return acked


DRIVERS.append(StreamsMQ)
