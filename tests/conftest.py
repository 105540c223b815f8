"""Shared fixtures.

Real-server tests carry the ``real`` marker. Outside CI they skip when the
server is absent; under ``CI=true`` an absent server is a failure, never a skip.
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
