"""Copies of a batch in a real run: each reaches the DB in a counted apply, and asyncmy stays quiet (issue #12).

A batch re-sent after ``resend_after`` (or published again after a lost
confirm) sits in the stream twice. Every copy must be applied inside the run,
its records refused by ``INSERT IGNORE`` and counted in
``sync_duplicates_suppressed`` as the simulator counts them, and the MariaDB
warning each refusal raises (asyncmy logs it) must not reach the terminal.
"""

from __future__ import annotations

import json

import pymysql
import pytest
from servers import REDIS_URL

from engine.real import RealOptions, RedisTarget, run_real
from engine.real.mq import stream_key
from engine.real.sql import database_name
from engine.scenario import Scenario

pytestmark = pytest.mark.real

# A re-send after 1 ms and a periodic trigger every 10 ms: most batches go out more than once.
RESENDS = ["sale.stock=300", "workload.buyers=1200", "workload.window=0.3", "workload.timeout=10",
           "pipeline.period=0.01", "pipeline.resend_after=0.001", "pipeline.threshold=20", "pipeline.batch_size=20"]


def test_every_copy_in_the_stream_is_applied_counted_and_not_logged(redis_client, namespace, mariadb, capfd):
    run_ns = f"{namespace}-run"
    try:
        result = run_real(Scenario().with_overrides(RESENDS), 1, "single_redis",
                          RealOptions(RedisTarget(REDIS_URL), namespace=run_ns, keep=True))
        stream = stream_key(run_ns, f"{run_ns}:stock-sync:sku42")
        entries = redis_client.xrange(stream)
        sent = sum(len(json.loads(fields["payload"])["records"]) for _, fields in entries)
        s = result.summary
        assert result.ok, result.violations
        assert s["sync_records"] == s["sold"] > 0
        assert sent > s["sync_records"]  # the settings did make copies
        # every record of every copy went through a counted apply: new once, a duplicate each other time
        assert s["sync_records"] + s["sync_duplicates_suppressed"] == sent
        assert s["mq_acked"] == len(entries)
        assert s.get("db_abandoned", 0) == 0  # no apply was cut off by the end of the run
    finally:
        keys = list(redis_client.scan_iter(match=f"{run_ns}:*", count=1000))
        if keys:
            redis_client.delete(*keys)
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{database_name(run_ns)}`")
        finally:
            conn.close()
    assert "Duplicate entry" not in capfd.readouterr().err
