"""EVALSHA to the masters of a real Redis, auto-pipelined, surviving failovers.

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
restarted or flushed its script cache, or a promoted replica never had it)
reloads the script on that connection and resends the op; a ``MOVED`` reply
updates the slot owner and resends, after re-reading the slot map
(``CLUSTER SLOTS``) when it names an address that is no master we know (a
replica promoted by a failover). An ``ASK`` reply (the slot is migrating and
the key already moved) resends the op to the importing master once, preceded
by ``ASKING`` on the same connection and in the same pipeline, as Redis
Cluster requires; the slot owner stays as it was.

Faults (a master killed, a failover, a restart). A command is resent only when
it certainly did not run:

- the connection was closed by the server before the write (the lane checks
  for end-of-file first), or a new connection was refused: the queued ops wait
  and the lane reconnects with bounded exponential backoff
  (:data:`BACKOFF_FIRST` doubling up to :data:`BACKOFF_MAX`), re-reading the
  slot map between attempts, so once a replica is promoted the ops go to it;
- the connection broke after the write (the server may have run the script
  and died before answering, or answered into a closed socket): never resent.
  The op fails with :class:`LostReply` inside its generator: a buyer's request
  ends as an ``error`` (its units are *in doubt*, see
  :mod:`engine.real.losses`); any other task stops the run, as any failure of
  one does.

While a lane waits to reconnect, every queued request whose client deadline
passes is answered ``timeout`` at once (no request waits past its deadline for
a dead server); ops without a deadline (setup, drain, background) fail with
:class:`LostReply` after :data:`GIVE_UP_AFTER` seconds of failed attempts.
An error reply (``CLUSTERDOWN`` while the cluster notices a dead master,
``TRYAGAIN``) is raised inside the generator, like any error reply.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import TYPE_CHECKING, Any

from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine import scripts
from engine.ops import Eval
from engine.real.resp import ASKING, EvalPacker
from engine.real.target import RedisTarget, TargetError, Topology, rediscover
from engine.slots import key_slot

if TYPE_CHECKING:
    from engine.real.interpreter import RealInterpreter, Task

MAX_BATCH = 512
MAX_REDIRECTS = 5
BACKOFF_FIRST = 0.01  # seconds before the first reconnection attempt; doubles each failed attempt
BACKOFF_MAX = 0.2  # ... up to this: a promoted replica is found within BACKOFF_MAX of its promotion
GIVE_UP_AFTER = 30.0  # seconds of failed reconnection after which ops without a deadline fail
CONNECT_TIMEOUT = 1.0  # seconds for one connection attempt (loopback or LAN: refusals are immediate)
BROKEN = (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError, OSError)


class LostReply(TargetError):
    """The connection broke after the command was written: it may have run. Never resent."""

Item = tuple["Task", Eval, int, bool]  # a queued op: its task, the op, redirects so far, send ASKING first


def sha1(lua: str) -> str:
    """The SHA1 Redis names a script by (what EVALSHA wants)."""
    return hashlib.sha1(lua.encode("utf-8")).hexdigest()


class Lane:
    """One connection to one master: a queue of ops written as one pipeline per turn."""

    def __init__(self, links: RedisLinks, node: int, connection: Any):
        self.links = links
        self.node = node
        self.connection: Any = connection  # None: broken, reconnect before the next write
        self.address = links.address(node)  # where the connection goes
        self.queue: deque[Item] = deque()
        self.busy = False

    def put(self, task: Task, op: Eval, redirects: int = 0, asking: bool = False) -> None:
        self.queue.append((task, op, redirects, asking))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        links = self.links
        interpreter = links.interpreter
        shas = links.shas
        pack = links.packer.pack
        queue = self.queue
        try:
            while queue:
                conn = self.connection
                if conn is not None and self.address != links.address(self.node):
                    self._drop()  # the node's slots moved to a promoted replica; no reply is pending here
                    conn = None
                if conn is None or _closed(conn):
                    if not await self._reconnect():
                        continue
                    conn = self.connection
                if links.open_lane[self.node] is self:  # this write leaves now: later ops open another lane
                    links.open_lane[self.node] = None
                size = min(len(queue), MAX_BATCH)
                batch = [queue.popleft() for _ in range(size)]
                packed: list[bytes] = []
                for _, op, _, asking in batch:
                    if asking:  # only the next command on this connection may touch the importing slot
                        packed.append(ASKING)
                    packed.append(pack(shas[op.script], op.keys, op.args))
                try:
                    await conn.send_packed_command(b"".join(packed), check_health=False)
                except BROKEN as err:  # part of the pipeline may have reached the server
                    self._lost(batch, err)
                    continue
                retry: list[Item] = []
                for position, item in enumerate(batch):
                    try:
                        if item[3]:  # ASKING's +OK (were it an error, the run stops: better than replies out of step)
                            await conn.read_response()
                        reply = await conn.read_response()
                    except NoScriptError:
                        retry.append(item)
                    except (MovedError, AskError) as err:
                        links.redirected(err, item)
                    except ResponseError as err:
                        interpreter.fail(item[0], err)
                    except BROKEN as err:
                        self._lost(batch[position:], err)
                        break
                    else:
                        interpreter.wake(item[0], reply)
                if retry:  # NOSCRIPT: certainly not run
                    queue.extendleft(reversed(retry))
                    if self.connection is not None:
                        try:
                            await self._reload({op.script for _, op, _, _ in retry})
                        except BROKEN:
                            self._drop()
        except Exception as err:  # anything else ends the run with one clear message
            interpreter.abort(TargetError(f"Redis master {links.names[self.node]} failed: "
                                          f"{err.__class__.__name__}: {err}"))
        finally:
            self.busy = False

    def _lost(self, items: list[Item], err: BaseException) -> None:
        """The connection broke with ``items`` written and unanswered: each may have run; fail them."""
        self._drop()
        self.links.lost += len(items)
        lost = LostReply(f"connection to Redis master {self.links.names[self.node]} lost after the command was "
                         f"sent ({err.__class__.__name__}): it may have run, not resent")
        for task, *_ in items:
            self.links.interpreter.fail(task, lost)

    def _drop(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            asyncio.get_running_loop().create_task(_quietly_disconnect(conn))

    async def _reconnect(self) -> bool:
        """Connect again (to whoever owns the node's slots now), with backoff; False: nothing left to send."""
        links = self.links
        interpreter = links.interpreter
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay = BACKOFF_FIRST
        while True:
            self._expire()
            if not self.queue:
                return False
            self.address = host, port = links.address(self.node)
            conn = links.target.connection(host, port)
            try:
                await asyncio.wait_for(conn.connect(), CONNECT_TIMEOUT)
                self.connection = conn
                await self._reload(set(scripts.REGISTRY))
                links.reconnects += 1
                return True
            except BROKEN:
                self.connection = None
                await _quietly_disconnect(conn)
            if loop.time() - started > GIVE_UP_AFTER:
                failure = LostReply(f"Redis master {links.names[self.node]} unreachable for {GIVE_UP_AFTER:g} s")
                while self.queue:
                    interpreter.fail(self.queue.popleft()[0], failure)
                return False
            await asyncio.sleep(delay)
            delay = min(2 * delay, BACKOFF_MAX)
            await links.refresh()  # a promoted replica now owns the node's slots: connect to it

    def _expire(self) -> None:
        """Answer ``timeout`` to every queued request whose client has given up (it was never sent)."""
        interpreter = self.links.interpreter
        now = asyncio.get_running_loop().time()
        keep = [item for item in self.queue if not item[0].finished and item[0].deadline >= now]
        for item in self.queue:
            if not item[0].finished and item[0].deadline < now:
                interpreter.wake(item[0], None)  # past its deadline: the interpreter reports the timeout
        self.queue.clear()
        self.queue.extend(keep)

    async def _reload(self, names: set[str]) -> None:
        for name in sorted(names):
            await self.connection.send_command("SCRIPT", "LOAD", scripts.get(name).lua, check_health=False)
            await self.connection.read_response()


def _closed(conn: Any) -> bool:
    """True when the server closed this idle connection (EOF already read): a write would be lost unsent."""
    reader = getattr(conn, "_reader", None)
    return reader is None or reader.at_eof()


async def _quietly_disconnect(conn: Any) -> None:
    try:
        await conn.disconnect()
    except Exception:
        pass


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
        self.refreshes = 0  # slot maps re-read (after an unknown MOVED or a failed reconnection)
        self.reconnects = 0  # lanes connected again after a broken connection
        self.lost = 0  # ops whose connection broke after they were sent (failed, never resent)
        self._refreshing: asyncio.Future[None] | None = None

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
                if lane.connection is not None:
                    await _quietly_disconnect(lane.connection)

    def address(self, node: int) -> tuple[str | None, int | None]:
        """Where master ``node`` is now (it moves when a replica is promoted)."""
        return self.topology.masters[node]

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
        """MOVED/ASK: the slot (MOVED) or this key (ASK) lives elsewhere now; follow it.

        An address that is no master we know (a replica promoted meanwhile) makes the
        links re-read the slot map first. A request redirected more than
        :data:`MAX_REDIRECTS` times fails (its command never ran: a redirect is a refusal).
        """
        task, op, redirects, _ = item
        parts = str(err).split()
        address = parts[-1] if parts else ""
        if redirects >= MAX_REDIRECTS:
            self.interpreter.fail(task, TargetError(f"cluster topology kept changing ({err})"))
            return
        if address not in self.names:
            asyncio.get_running_loop().create_task(self._after_refresh(err, item))
            return
        self._follow(err, item, self.names.index(address))

    def _follow(self, err: ResponseError, item: Item, node: int) -> None:
        task, op, redirects, _ = item
        asking = not isinstance(err, MovedError)  # (redis-py's MovedError is a subclass of AskError)
        if asking:
            self.asked += 1
        else:
            self.moved += 1
            self.owner[key_slot(op.keys[0])] = node
            self._node_of.clear()
        task.node = node
        self.lane(node).put(task, op, redirects + 1, asking)

    async def _after_refresh(self, err: ResponseError, item: Item) -> None:
        await self.refresh()
        task, op, redirects, _ = item
        address = str(err).split()[-1]
        if address in self.names:
            self._follow(err, item, self.names.index(address))
        elif isinstance(err, MovedError):  # the map moved on again: route by the fresh map
            self.moved += 1
            self.submit(op, task, redirects + 1)
        else:
            self.interpreter.fail(task, TargetError(f"ASK to {address}, no master of the cluster ({err})"))

    async def refresh(self) -> None:
        """Re-read the slot map (from any node that answers); masters keep their index (first slot)."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
            return
        self._refreshing = asyncio.get_running_loop().create_future()
        try:
            topology = await rediscover(self.target, self.topology)
            if topology.cluster and len(topology.masters) == len(self.topology.masters):
                self.topology = topology
                self.owner = topology.owners()
                self.names = [f"{h}:{p}" for h, p in topology.masters]
                self._node_of.clear()
                self.refreshes += 1
        except TargetError:
            pass  # nobody answers now: the caller backs off and tries again
        finally:
            self._refreshing.set_result(None)
            self._refreshing = None

    def figures(self) -> dict[str, float]:
        """What the links did about redirects and faults (summed over workers into the summary)."""
        return {"redis_moved": self.moved, "redis_asked": self.asked, "redis_refreshes": self.refreshes,
                "redis_reconnects": self.reconnects, "redis_lost_replies": self.lost}
