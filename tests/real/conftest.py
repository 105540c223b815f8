"""Real-server fixtures: a 3-master Redis Cluster launched for the session, MariaDB probe.

The cluster is ours (started on free loopback ports, torn down at the end),
so tests may do anything to it, e.g. SCRIPT FLUSH. The shared Redis at
127.0.0.1:6379 and MariaDB at 127.0.0.1:3306 are only touched inside a
test's own namespace / scratch database.
"""

from __future__ import annotations

import pytest
from servers import unavailable  # tests/servers.py


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
