"""Where the real servers are, and what a test does when one is missing.

Outside CI a missing server skips the test; under ``CI=true`` it fails it,
so real-server tests can never silently not run in CI. Imported by the
conftest files and by tests as ``servers`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REDIS_URL = os.environ.get("FLASHSIM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MYSQL_HOST = os.environ.get("FLASHSIM_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("FLASHSIM_TEST_MYSQL_PORT", "3306"))


def unavailable(what: str, err: Exception) -> None:
    """Skip (locally) or fail (in CI) because a real server is not there."""
    message = f"{what} is not reachable: {err.__class__.__name__}: {err}"
    if IN_CI:
        pytest.fail(message + " (CI=true: real-server tests must run)")
    pytest.skip(message)


@contextlib.contextmanager
def scratch_database() -> Iterator:
    """A pymysql cursor on a fresh MariaDB database (root, empty password), dropped afterwards."""
    import pymysql

    try:
        conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", autocommit=True,
                               connect_timeout=5)
    except pymysql.MySQLError as err:
        unavailable(f"MariaDB at {MYSQL_HOST}:{MYSQL_PORT}", err)
    database = f"fstest_{uuid.uuid4().hex[:12]}"
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{database}`")
    cur.execute(f"USE `{database}`")
    try:
        yield cur
    finally:
        cur.execute(f"DROP DATABASE `{database}`")
        conn.close()
