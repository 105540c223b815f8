"""Real-mode safety: a run touches only its own namespace and scratch database."""

from __future__ import annotations

import pytest

from engine.real import NamespaceInUse, RealOptions, RedisTarget, TargetError, run_real
from engine.real.sql import database_name
from engine.scenario import Scenario

pytestmark = pytest.mark.real

SMALL = ["sale.stock=50", "workload.buyers=300", "workload.window=0.2"]
LOCAL = "redis://127.0.0.1:6379/0"


def snapshot(client, keys):
    return {key: (client.type(key), client.dump(key), client.pttl(key) > 0) for key in keys}


def test_keys_already_in_the_target_survive_a_run(redis_client, namespace, mariadb):
    run_ns = f"{namespace}:run"
    neighbours = {  # same sku, look-alike prefixes, other types, a TTL
        f"{namespace}:runx:stock:{{sku42}}": "7",
        f"{namespace}:ru:stock:{{sku42}}": "8",
        f"{namespace}:other:sold:{{sku42}}": "9",
        f"{namespace}:run-2:stock:{{sku42}}": "10",
    }
    for key, value in neighbours.items():
        redis_client.set(key, value)
    redis_client.expire(f"{namespace}:ru:stock:{{sku42}}", 600)
    redis_client.hset(f"{namespace}:runx:meta:{{sku42}}", mapping={"active": 1, "seq": 5})
    redis_client.rpush(f"{namespace}:runx:pending:{{sku42}}", "1", "2")
    keys = list(neighbours) + [f"{namespace}:runx:meta:{{sku42}}", f"{namespace}:runx:pending:{{sku42}}"]
    before = snapshot(redis_client, keys)

    result = run_real(Scenario().with_overrides(SMALL), 0, "single_redis",
                      RealOptions(RedisTarget(LOCAL), namespace=run_ns))

    assert result.ok and result.inventory.sold == 50
    assert snapshot(redis_client, keys) == before
    assert list(redis_client.scan_iter(match=f"{run_ns}:*")) == []


def test_refuses_a_namespace_that_exists_and_leaves_it_alone(redis_client, namespace):
    run_ns = f"{namespace}:taken"
    redis_client.set(f"{run_ns}:stock:{{sku42}}", "123")
    with pytest.raises(NamespaceInUse, match="already exists"):
        run_real(Scenario().with_overrides(SMALL), 0, "single_redis", RealOptions(RedisTarget(LOCAL), namespace=run_ns))
    assert redis_client.get(f"{run_ns}:stock:{{sku42}}") == "123"
    assert sorted(redis_client.scan_iter(match=f"{run_ns}:*")) == [f"{run_ns}:stock:{{sku42}}"]


def test_refuses_a_scratch_database_that_exists(redis_client, namespace, mariadb):
    run_ns = f"{namespace}-db"
    name = database_name(run_ns)
    with mariadb.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.keepme (id INT PRIMARY KEY)")
    try:
        with pytest.raises(TargetError, match="already exists"):
            run_real(Scenario().with_overrides(SMALL), 0, "db_conditional",
                     RealOptions(RedisTarget(LOCAL), namespace=run_ns))
        with mariadb.cursor() as cur:
            cur.execute(f"SHOW TABLES FROM `{name}`")
            assert [row[0] for row in cur.fetchall()] == ["keepme"]
    finally:
        with mariadb.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    assert list(redis_client.scan_iter(match=f"{run_ns}:*")) == []


def test_keep_leaves_the_run_in_place(redis_client, namespace, mariadb):
    run_ns = f"{namespace}-keep"
    result = run_real(Scenario().with_overrides(SMALL + ["pipeline.enabled=false"]), 0, "single_redis",
                      RealOptions(RedisTarget(LOCAL), namespace=run_ns, keep=True))
    assert result.ok
    assert redis_client.get(f"{run_ns}:sold:{{sku42}}") == "50"
    redis_client.delete(*redis_client.scan_iter(match=f"{run_ns}:*"))


def test_secrets_never_shown(monkeypatch):
    monkeypatch.setenv("FLASHSIM_REDIS_PASSWORD", "s3cret-pw")
    target = RedisTarget.from_options("redis://127.0.0.1:6379/0")
    assert target.password == "s3cret-pw"
    assert "s3cret" not in repr(target) and "s3cret" not in target.describe()
    assert "s3cret" not in repr(RealOptions(target))
    with_url = RedisTarget("redis://:urlpw@127.0.0.1:6379/0")
    assert "urlpw" not in with_url.describe()


def test_sigterm_mid_run_still_cleans_up(redis_client, namespace):
    import subprocess
    import sys
    import time

    run_ns = f"{namespace}-term"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.cli", "run", "--real", "--namespace", run_ns, "--quiet",
         "--set", "pipeline.enabled=false", "--set", "sale.stock=1000000", "--set", "workload.buyers=50000",
         "--set", "workload.window=20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not redis_client.exists(f"{run_ns}:stock:{{sku42}}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert redis_client.exists(f"{run_ns}:stock:{{sku42}}"), "the run never started"
        time.sleep(0.5)
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert list(redis_client.scan_iter(match=f"{run_ns}:*")) == []
