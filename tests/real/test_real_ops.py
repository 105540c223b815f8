"""The MQ and SQL ops on real servers, op by op through the real interpreter."""

from __future__ import annotations

import asyncio

import pytest

from engine.ops import Sleep, Spawn
from engine.pipeline.ops import Ack, Consume, Publish
from engine.real import drivers
from engine.real.interpreter import RealInterpreter
from engine.real.links import RedisLinks
from engine.real.sql import database_name
from engine.real.target import RedisTarget, discover
from engine.scenario import Scenario
from engine.sql import DB_BEGIN, DbCommit, DbError, DbExec, DbRollback

pytestmark = pytest.mark.real
LOCAL = "redis://127.0.0.1:6379/0"


def run(namespace, gen, scenario=None):
    """Run one generator through a coordinator-side interpreter with every driver installed."""
    scenario = scenario or Scenario().with_overrides(["pipeline.ack_timeout=0.2"])

    async def main():
        target = RedisTarget(LOCAL)
        context = drivers.Context(target, namespace, scenario=scenario)
        loop = asyncio.get_running_loop()
        interpreter = RealInterpreter(loop, loop.time())
        links = RedisLinks(target, await discover(target), interpreter, lanes=1)
        await links.open()
        interpreter.redis = links
        opened = await drivers.install(interpreter, context)
        try:
            return await interpreter.run_to_end(gen, "setup"), drivers.figures(opened)
        finally:
            for driver in opened:
                await driver.close()
            await links.close()
            await drivers.cleanup(context)

    return asyncio.run(main())


def test_streams_deliver_at_least_once(redis_client, namespace):
    topic = f"{namespace}:sync"

    def flow():
        msg_id = yield Publish(topic, {"batch": "b1", "records": [["1", 2, 0.5]]})
        first = yield Consume(topic, "c1", 0.05)
        nothing = yield Consume(topic, "c2", 0.05)  # delivered to c1, not yet timed out
        yield Sleep(0.3)  # longer than pipeline.ack_timeout: the entry is claimable
        again = yield Consume(topic, "c2", 0.05)
        acked = yield Ack(topic, again.msg_id)
        twice = yield Ack(topic, first.msg_id)
        empty = yield Consume(topic, "c1", 0.05)
        return msg_id, first, nothing, again, acked, twice, empty

    (msg_id, first, nothing, again, acked, twice, empty), figures = run(namespace, flow())
    assert first.msg_id == msg_id and first.deliveries == 1 and first.payload["records"] == [["1", 2, 0.5]]
    assert nothing is None
    assert again.msg_id == msg_id and again.deliveries == 2  # redelivered after the ack timeout
    assert acked is True and twice is False and empty is None
    assert figures["mq_delivered"] == 2 and figures["mq_redelivered"] == 1 and figures["mq_acked"] == 1
    assert redis_client.xlen(topic) == 1  # the stream lives in the namespace (the fixture deletes it)


def test_spawn_runs_a_task_and_resumes_at_once(namespace):
    seen = []

    def child():
        yield Sleep(0.01)
        seen.append("child")

    def parent():
        yield Spawn(child())
        seen.append("parent")
        yield Sleep(0.05)
        return list(seen)

    result, _ = run(namespace, parent())
    assert result == ["parent", "child"]


def test_sql_ops_on_mariadb_in_a_scratch_database(namespace, mariadb):
    run_ns = f"{namespace}-sql"

    def flow():
        assert (yield DbExec(None, "create_stock")).affected == 0
        again = yield DbExec(None, "create_stock")
        yield DbExec(None, "insert_stock", ("sku42", 10))
        txn = yield DB_BEGIN
        row = yield DbExec(txn, "select_stock_for_update", ("sku42",))
        changed = yield DbExec(txn, "deduct_if_enough", (3, 3, "sku42", 3))
        yield DbRollback(txn)
        txn = yield DB_BEGIN
        yield DbExec(txn, "deduct_if_enough", (4, 4, "sku42", 4))
        committed = yield DbCommit(txn)
        too_much = yield DbExec(None, "deduct_if_enough", (7, 7, "sku42", 7))
        final = yield DbExec(None, "select_stock", ("sku42",))
        duplicate = yield DbExec(None, "insert_stock", ("sku42", 1))
        return again, row.first, changed.affected, committed, too_much.affected, final.first, duplicate

    (again, row, changed, committed, too_much, final, duplicate), figures = run(run_ns, flow())
    assert isinstance(again, DbError) and again.code == "table_exists"
    assert row == (10, 0) and changed == 1 and committed is None
    assert too_much == 0 and final == (6, 1)  # the rolled-back deduction left no trace
    assert isinstance(duplicate, DbError) and duplicate.code == "duplicate_key"
    assert figures["db_commits"] == 1 and figures["db_rollbacks"] == 1
    with mariadb.cursor() as cur:  # cleanup dropped exactly the run's database
        cur.execute("SHOW DATABASES LIKE %s", (database_name(run_ns),))
        assert cur.fetchall() == ()
