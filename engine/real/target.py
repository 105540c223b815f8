"""Which Redis a real run talks to, and how: URL, secrets from options or env, topology.

A :class:`RedisTarget` is a URL (``redis://host:port/db``, ``rediss://`` for
TLS, or ``unix:///path``) plus a password and TLS files taken from options or
the environment (``FLASHSIM_REDIS_PASSWORD``, ``FLASHSIM_REDIS_TLS_CA``,
``FLASHSIM_REDIS_TLS_CERT``, ``FLASHSIM_REDIS_TLS_KEY``). Its ``repr`` and
:meth:`RedisTarget.describe` never show the password, so a target can be
printed and logged.

:func:`discover` asks the server whether it is a cluster (``INFO cluster``) and,
if so, which master owns which slots (``CLUSTER SLOTS``). Masters are numbered
by their first slot, so node ``i`` of a cluster made with
:func:`engine.slots.even_slot_ranges` is node ``i`` of the simulator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool

from engine.slots import SLOTS

try:  # redis-py >= 7: every new connection resolves its CLIENT SETINFO metadata, reading the package's
    # metadata from disk (importlib.metadata: about 1.7 ms of CPU per connection here, cProfile of a real
    # sharded run, where the stream consumers open connections mid-sale); resolve it once per process.
    from redis.driver_info import DriverInfo

    DRIVER_INFO: Any = DriverInfo()
except ImportError:  # older redis-py resolves it once, at import
    DRIVER_INFO = None

ENV_PASSWORD = "FLASHSIM_REDIS_PASSWORD"
ENV_TLS = {"ssl_ca_certs": "FLASHSIM_REDIS_TLS_CA", "ssl_certfile": "FLASHSIM_REDIS_TLS_CERT",
           "ssl_keyfile": "FLASHSIM_REDIS_TLS_KEY"}
DEFAULT_URL = "redis://127.0.0.1:6379/0"


class TargetError(Exception):
    """The target cannot be used (unreachable, unsupported, misconfigured): one readable line."""


@dataclass(frozen=True)
class RedisTarget:
    """A Redis server or cluster entry point. Secrets stay out of ``repr``."""

    url: str = DEFAULT_URL
    password: str | None = field(default=None, repr=False)
    tls: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_options(cls, url: str | None = None, password: str | None = None) -> RedisTarget:
        """URL from the option (default local Redis); password and TLS files from options or env."""
        tls = {arg: os.environ[env] for arg, env in ENV_TLS.items() if os.environ.get(env)}
        return cls(url or DEFAULT_URL, password or os.environ.get(ENV_PASSWORD) or None, tls)

    def describe(self) -> str:
        """Scheme, host and port only: safe to print."""
        parts = urlsplit(self.url)
        where = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
        return f"{parts.scheme}://{where}"

    def _pool(self, host: str | None = None, port: int | None = None) -> ConnectionPool:
        try:
            pool = ConnectionPool.from_url(self.url, decode_responses=True)
        except ValueError as err:
            raise TargetError(f"bad Redis URL {self.describe()!r}: {err}") from None
        kwargs = pool.connection_kwargs
        if self.password is not None:
            kwargs["password"] = self.password
        if self.tls:
            kwargs.update(self.tls)
        if host is not None:
            kwargs["host"], kwargs["port"] = host, port
        if DRIVER_INFO is not None:
            kwargs["driver_info"] = DRIVER_INFO
        return pool

    def client(self, host: str | None = None, port: int | None = None, **extra: Any) -> Redis:
        """An asyncio client of the entry point (or of ``host:port`` with the same settings)."""
        pool = self._pool(host, port)
        if "max_connections" in extra:
            pool.max_connections = extra.pop("max_connections")
        pool.connection_kwargs.update(extra)
        return Redis(connection_pool=pool)

    def connection(self, host: str | None = None, port: int | None = None) -> AbstractConnection:
        """One raw connection (hot path: no socket timeout, the run has its own watchdog)."""
        pool = self._pool(host, port)
        pool.connection_kwargs["socket_timeout"] = None
        return pool.make_connection()


@dataclass(frozen=True)
class Topology:
    """The masters of the target, numbered by first slot, and who owns which slot."""

    cluster: bool
    masters: tuple[tuple[str | None, int | None], ...]  # (host, port); (None, None) = the URL itself
    ranges: tuple[tuple[tuple[int, int], ...], ...]  # per master: its slot ranges
    replicas: tuple[tuple[str, int], ...] = ()  # every replica CLUSTER SLOTS lists (seeds for rediscover)

    def owners(self) -> list[int]:
        """Master index of every slot (0..16383)."""
        owner = [-1] * SLOTS
        for node, ranges in enumerate(self.ranges):
            for first, last in ranges:
                owner[first : last + 1] = [node] * (last - first + 1)
        if -1 in owner:
            raise TargetError(f"the cluster leaves {owner.count(-1)} slots unassigned")
        return owner

    def describe(self) -> str:
        if not self.cluster:
            return "a single Redis node"
        return f"a Redis Cluster of {len(self.masters)} masters"


async def discover(target: RedisTarget, host: str | None = None, port: int | None = None) -> Topology:
    """Single node or cluster, and the cluster's masters by first slot (asking the URL's node, or ``host:port``)."""
    client = target.client(host, port, socket_timeout=5, socket_connect_timeout=5)
    try:
        info = await client.info("cluster")
        if not info.get("cluster_enabled"):
            return Topology(False, ((None, None),), (((0, SLOTS - 1),),))
        rows = await client.execute_command("CLUSTER SLOTS")
    except Exception as err:  # redis errors and OS errors alike: say what and where
        raise TargetError(f"cannot reach Redis at {target.describe()}: {err.__class__.__name__}: {err}") from None
    finally:
        await client.aclose()
    by_master: dict[tuple[str, int], list[tuple[int, int]]] = {}
    default_host = urlsplit(target.url).hostname or "127.0.0.1"
    for row in _slot_rows(rows):
        first, last, master_host, master_port = row
        by_master.setdefault((master_host or default_host, master_port), []).append((first, last))
    order = sorted(by_master, key=lambda m: min(by_master[m]))
    replicas = tuple(dict.fromkeys((h or default_host, p) for h, p in _replica_rows(rows)))
    return Topology(True, tuple(order), tuple(tuple(sorted(by_master[m])) for m in order), replicas)


async def rediscover(target: RedisTarget, known: Topology) -> Topology:
    """The topology now, asked of the URL's node or else of any master or replica ``known`` names.

    After a failover the URL's node may be dead: any surviving node answers for the cluster.
    """
    seeds: list[tuple[str | None, int | None]] = [(None, None)]
    seeds += [m for m in known.masters if m != (None, None)] + list(known.replicas)
    failure: TargetError | None = None
    for host, port in dict.fromkeys(seeds):
        try:
            return await discover(target, host, port)
        except TargetError as err:
            failure = failure or err
    assert failure is not None
    raise failure


def _slot_rows(rows: Any) -> list[tuple[int, int, str, int]]:
    """CLUSTER SLOTS as (first, last, master host, master port), whatever shape redis-py returns."""
    out = []
    if isinstance(rows, dict):  # redis-py's cluster-mode callback: {(first, last): {"primary": (host, port)}}
        for (first, last), nodes in rows.items():
            host, port = nodes["primary"][:2]
            out.append((int(first), int(last), host, int(port)))
        return out
    for row in rows:
        first, last, master = row[0], row[1], row[2]
        out.append((int(first), int(last), master[0], int(master[1])))
    return out


def _replica_rows(rows: Any) -> list[tuple[str, int]]:
    """The replicas CLUSTER SLOTS lists, as (host, port)."""
    if isinstance(rows, dict):
        return [(r[0], int(r[1])) for nodes in rows.values() for r in nodes.get("replicas", [])]
    return [(r[0], int(r[1])) for row in rows for r in row[3:]]
