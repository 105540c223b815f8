"""Reading and cleaning the run's own keys on the real masters, safely.

Used around the hot path, never in it: inventory snapshots (timeline, final
read-back), the namespace check before a run, cleanup after it, and each
master's CPU time (its utilisation over the run).

Safety rules (see README "Real mode"): a run owns exactly the keys under its
namespace ``<ns>:``; it refuses to start when any key with that prefix exists;
it deletes only keys with that prefix (found with SCAN, never KEYS), and never
calls FLUSHALL/FLUSHDB.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.real.target import RedisTarget, TargetError, Topology
from engine.slots import key_slot


class NamespaceInUse(TargetError):
    """The target already holds keys of the namespace a run wants to own."""


def to_value(raw: Any) -> Any:
    """A Redis string as the simulator's store holds it: int when integral, else float or text."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


class Servers:
    """Admin clients of every master of a target, routed by slot."""

    def __init__(self, target: RedisTarget, topology: Topology):
        self.target = target
        self.topology = topology
        self.owner = topology.owners()
        self.clients: list[Redis] = [target.client(host, port, socket_timeout=30, socket_connect_timeout=5)
                                     for host, port in topology.masters]

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()

    def _by_node(self, keys: Iterable[str]) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {}
        for key in keys:
            groups.setdefault(self.owner[key_slot(key)], []).append(key)
        return groups

    async def snapshot(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of ``keys`` (absent keys are missing), typed as in the simulator's store."""
        values: dict[str, Any] = {}
        for node, group in self._by_node(keys).items():
            client = self.clients[node]
            pipe = client.pipeline(transaction=False)
            for key in group:
                pipe.type(key)
            types = await pipe.execute()
            pipe = client.pipeline(transaction=False)
            readers = []
            for key, kind in zip(group, types):
                if kind == "none":
                    continue
                readers.append((key, kind))
                if kind == "string":
                    pipe.get(key)
                elif kind == "hash":
                    pipe.hgetall(key)
                elif kind == "list":
                    pipe.lrange(key, 0, -1)
                elif kind == "set":
                    pipe.smembers(key)
                elif kind == "zset":
                    pipe.zrange(key, 0, -1, withscores=True)
                elif kind == "stream":
                    pipe.xlen(key)
                else:
                    raise TargetError(f"key {key!r} has unsupported type {kind!r}")
            for (key, kind), raw in zip(readers, await pipe.execute()):
                values[key] = _typed(kind, raw)
        return values

    async def existing(self, namespace: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` keys under ``namespace:`` on any master (SCAN, never KEYS)."""
        found: list[str] = []
        for client in self.clients:
            async for key in client.scan_iter(match=_pattern(namespace), count=1000):
                found.append(key)
                if len(found) >= limit:
                    return found
        return found

    async def delete_namespace(self, namespace: str) -> int:
        """Delete every key under ``namespace:`` (the run created them all); returns how many.

        A master that does not answer (a fault killed it) is skipped with a warning on stderr,
        after the others are cleaned: its keys died with it, or live on in a replica promoted later.
        """
        deleted = 0
        unreachable: list[str] = []
        for node, client in enumerate(self.clients):
            batch: list[str] = []
            try:
                async for key in client.scan_iter(match=_pattern(namespace), count=1000):
                    batch.append(key)
                    if len(batch) >= 500:
                        deleted += await _unlink(client, batch)
                        batch = []
                if batch:
                    deleted += await _unlink(client, batch)
            except (RedisError, OSError) as err:
                host, port = self.topology.masters[node]
                unreachable.append(f"{host}:{port} ({err.__class__.__name__})")
        if unreachable:
            print(f"flashsim: could not delete the keys of {namespace!r} on unreachable master(s) "
                  f"{', '.join(unreachable)}", file=sys.stderr)
        return deleted

    async def cpu_seconds(self) -> list[float]:
        """CPU time (user + system) each master has used since it started (NaN: it does not answer)."""
        out = []
        for client in self.clients:
            try:
                info = await client.info("cpu")
            except (RedisError, OSError):  # a master a fault killed: its CPU time is gone with it
                out.append(math.nan)
                continue
            out.append(float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0)))
        return out


def _pattern(namespace: str) -> str:
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in namespace)
    return f"{escaped}:*"


async def _unlink(client: Redis, keys: list[str]) -> int:
    pipe = client.pipeline(transaction=False)
    for key in keys:  # one key per command: keys of a namespace span many slots
        pipe.unlink(key)
    return sum(await pipe.execute())


def _typed(kind: str, raw: Any) -> Any:
    if kind == "string":
        return to_value(raw)
    if kind == "hash":
        return {field: to_value(value) for field, value in raw.items()}
    if kind == "list":
        return [to_value(item) for item in raw]
    if kind == "set":
        return {to_value(item) for item in raw}
    if kind == "zset":
        return {member: score for member, score in raw}
    return raw  # stream: its length
