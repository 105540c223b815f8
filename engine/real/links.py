"""EVALSHA to the masters of a real Redis, auto-pipelined.

Every ``Eval`` op of every running task is routed by slot (CRC16 of the hash
tag, :func:`engine.slots.key_slot`) to the master that owns it, and queued on
one of that master's *lanes* (connections). A lane writes everything queued
since its last write as one pipeline and reads the replies in order, so many
concurrent buyers share a few connections, as a busy app server's client
would: one write and one read wake up many requests. That is how the driver
keeps up with ``redis-benchmark`` from Python.

An op joins the master's *open* lane, the one whose next write has not left
yet, so all ops of one event-loop turn go out in one write per master; only
when that lane is writing or waiting for replies does the next op open an
idle lane (or, all lanes busy, queue on the shortest). Spreading ops round
robin instead cost one ``send`` system call per lane per turn: on this
machine's virtual CPUs a loopback send costs 0.1-0.3 ms, and a sharded sale,
whose ops go to three masters, spent a fifth of its CPU in them (cProfile of
a real run, docs/real-mode.md). Commands are encoded by
:class:`engine.real.resp.EvalPacker`.

Scripts are loaded on every master up front; a ``NOSCRIPT`` reply (a server
restarted or flushed its script cache) reloads the script on that connection
and resends the op; a ``MOVED`` reply updates the slot owner and resends. An
``ASK`` reply (the slot is migrating and the key already moved) resends the op
to the importing master once, preceded by ``ASKING`` on the same connection and
in the same pipeline, as Redis Cluster requires; the slot owner stays as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError

from engine import scripts
from engine.ops import Eval
from engine.real.resp import ASKING, EvalPacker
from engine.real.target import RedisTarget, TargetError, Topology
from engine.slots import key_slot

if TYPE_CHECKING:
    from engine.real.interpreter import RealInterpreter, Task

MAX_BATCH = 512
MAX_REDIRECTS = 5

Item = tuple["Task", Eval, int, bool]  # a queued op: its task, the op, redirects so far, send ASKING first


def sha1(lua: str) -> str:
    """The SHA1 Redis names a script by (what EVALSHA wants)."""
    return hashlib.sha1(lua.encode("utf-8")).hexdigest()


class Lane:
    """One connection to one master: a queue of ops written as one pipeline per turn."""

    def __init__(self, links: RedisLinks, node: int, connection: Any):
        self.links = links
        self.node = node
        self.connection = connection
        self.queue: deque[Item] = deque()
        self.busy = False

    def put(self, task: Task, op: Eval, redirects: int = 0, asking: bool = False) -> None:
        self.queue.append((task, op, redirects, asking))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        conn = self.connection
        links = self.links
        interpreter = links.interpreter
        shas = links.shas
        pack = links.packer.pack
        queue = self.queue
        try:
            while queue:
                if links.open_lane[self.node] is self:  # this write leaves now: later ops open another lane
                    links.open_lane[self.node] = None
                size = min(len(queue), MAX_BATCH)
                batch = [queue.popleft() for _ in range(size)]
                packed: list[bytes] = []
                for _, op, _, asking in batch:
                    if asking:  # only the next command on this connection may touch the importing slot
                        packed.append(ASKING)
                    packed.append(pack(shas[op.script], op.keys, op.args))
                await conn.send_packed_command(b"".join(packed), check_health=False)
                retry: list[Item] = []
                for item in batch:
                    if item[3]:  # ASKING's +OK (were it an error, the run stops: better than replies out of step)
                        await conn.read_response()
                    try:
                        reply = await conn.read_response()
                    except NoScriptError:
                        retry.append(item)
                    except (MovedError, AskError) as err:
                        links.redirected(err, item)
                    except ResponseError as err:
                        interpreter.fail(item[0], err)
                    else:
                        interpreter.wake(item[0], reply)
                if retry:
                    await self._reload({op.script for _, op, _, _ in retry})
                    queue.extendleft(reversed(retry))
        except Exception as err:  # a lost connection ends the run with one clear message
            interpreter.abort(TargetError(f"Redis master {links.names[self.node]} failed: "
                                          f"{err.__class__.__name__}: {err}"))
        finally:
            self.busy = False

    async def _reload(self, names: set[str]) -> None:
        for name in sorted(names):
            await self.connection.send_command("SCRIPT", "LOAD", scripts.get(name).lua, check_health=False)
            await self.connection.read_response()


class RedisLinks:
    """All lanes to all masters, and the slot routing between them."""

    def __init__(self, target: RedisTarget, topology: Topology, interpreter: RealInterpreter, lanes: int = 4):
        self.target = target
        self.topology = topology
        self.interpreter = interpreter
        self.owner = topology.owners()
        self.names = [f"{h}:{p}" if h else target.describe() for h, p in topology.masters]
        self.lanes_per_node = max(1, lanes)
        self.lanes: list[list[Lane]] = []
        self.open_lane: list[Lane | None] = []  # per master: the lane whose next write has not left yet
        self.packer = EvalPacker()
        self._node_of: dict[str, int] = {}
        self.shas = {name: sha1(script.lua) for name, script in scripts.REGISTRY.items()}
        self.moved = 0  # MOVED replies followed (the slot owner changed)
        self.asked = 0  # ASK replies followed (a slot in migration, the key already on the importing master)

    async def open(self) -> None:
        """Connect every lane and load every registered script on every master."""
        for node, (host, port) in enumerate(self.topology.masters):
            lanes = []
            for _ in range(self.lanes_per_node):
                conn = self.target.connection(host, port)
                try:
                    await conn.connect()
                except Exception as err:
                    raise TargetError(f"cannot connect to Redis master {self.names[node]}: {err}") from None
                lanes.append(Lane(self, node, conn))
            await lanes[0]._reload(set(scripts.REGISTRY))
            self.lanes.append(lanes)
            self.open_lane.append(None)

    async def close(self) -> None:
        for lanes in self.lanes:
            for lane in lanes:
                await lane.connection.disconnect()

    def node_of(self, key: str) -> int:
        node = self._node_of.get(key)
        if node is None:
            node = self._node_of[key] = self.owner[key_slot(key)]
        return node

    def submit(self, op: Eval, task: Task, redirects: int = 0) -> None:
        if op.script not in self.shas:
            scripts.get(op.script)  # raises: unknown script, with the known names
        node = self.node_of(op.keys[0])
        task.node = node
        self.lane(node).put(task, op, redirects)

    def lane(self, node: int) -> Lane:
        """The lane an op for ``node`` joins: the open one, else an idle one (now open), else the shortest."""
        lane = self.open_lane[node]
        if lane is not None and len(lane.queue) < MAX_BATCH:
            return lane
        lanes = self.lanes[node]
        for lane in lanes:
            if not lane.busy:
                self.open_lane[node] = lane
                return lane
        return min(lanes, key=lambda lane: len(lane.queue))

    def redirected(self, err: ResponseError, item: Item) -> None:
        """MOVED/ASK: the slot (MOVED) or this key (ASK) lives elsewhere now; follow it if it is a known master."""
        task, op, redirects, _ = item
        parts = str(err).split()
        address = parts[-1] if parts else ""
        if redirects >= MAX_REDIRECTS or address not in self.names:
            self.interpreter.abort(TargetError(f"cluster topology changed during the run ({err})"))
            return
        node = self.names.index(address)
        asking = not isinstance(err, MovedError)  # (redis-py's MovedError is a subclass of AskError)
        if asking:
            self.asked += 1
        else:
            self.moved += 1
            self.owner[key_slot(op.keys[0])] = node
            self._node_of.clear()
        task.node = node
        self.lane(node).put(task, op, redirects + 1, asking)
