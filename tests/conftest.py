"""Shared fixtures.

Real-server tests carry the ``real`` marker. Outside CI they skip when the
server is absent; under ``CI=true`` an absent server is a failure, never a skip.
The ``cluster`` is ours (a 3-master Redis Cluster started on free loopback
ports for the session, torn down at the end), so tests may do anything to it,
e.g. SCRIPT FLUSH. The shared Redis at 127.0.0.1:6379 and MariaDB at
127.0.0.1:3306 are only touched inside a test's own namespace / scratch database.
"""

from __future__ import annotations

import uuid

import pytest
from servers import REDIS_URL, scratch_database, unavailable


@pytest.fixture(scope="session")
def redis_client():
    """A client of the local Redis at 127.0.0.1:6379 (a real server)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as err:
        unavailable(f"Redis at {REDIS_URL}", err)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client):
    """A fresh key namespace; every key under it is deleted afterwards (SCAN, never KEYS)."""
    ns = f"fstest-{uuid.uuid4().hex[:12]}"
    yield ns
    keys = list(redis_client.scan_iter(match=f"{ns}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def mariadb_cursor():
    """A pymysql cursor on a fresh scratch database on the local MariaDB, dropped afterwards."""
    with scratch_database() as cursor:
        yield cursor


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster of 3 masters with slots as engine.slots.even_slot_ranges(3)."""
    from engine.real.cluster import LocalCluster
    from engine.real.target import TargetError

    try:
        local = LocalCluster(3).start()
    except TargetError as err:
        unavailable("redis-server (local cluster)", err)
    yield local
    local.stop()


@pytest.fixture(scope="session")
def mariadb():
    """Skip (or fail under CI) unless MariaDB answers at 127.0.0.1:3306 as root."""
    import pymysql

    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3)
    except pymysql.MySQLError as err:
        unavailable("MariaDB at 127.0.0.1:3306", err)
    yield conn
    conn.close()
