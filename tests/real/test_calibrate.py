"""``flashsim calibrate --quick`` against real servers: a private redis-server and the local MariaDB."""

from __future__ import annotations

import math
import shutil

import pytest
from servers import IN_CI, MYSQL_HOST, MYSQL_PORT, unavailable

from engine.profile import known_key, load_profile
from engine.scenario import Scenario
from sim.cli import main

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def quick_profile(tmp_path_factory, mariadb):
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            if IN_CI:
                pytest.fail(f"{tool} is not installed (CI=true: real-server tests must run)")
            pytest.skip(f"{tool} is not installed")
    path = tmp_path_factory.mktemp("calibrate") / "quick.toml"
    code = main(["calibrate", "--quick", "--name", "quick", "--out", str(path),
                 "--db-url", f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}"])
    assert code == 0
    return path


def _mean(value):
    return value["mean"] if isinstance(value, dict) else value


def test_quick_calibration_writes_a_usable_profile(quick_profile):
    profile = load_profile(quick_profile)
    data = profile.data
    assert data["profile"]["name"] == "quick" and data["profile"]["quick"] is True
    assert data["machine"]["cores"] >= 1 and data["versions"]["redis"] and data["versions"]["mariadb"]
    values = profile.scenario
    for key in ("network.redis", "network.db", "redis.command", "redis.batch", "redis.pipeline",
                "redis.service.default", "redis.service.deduct", "redis.service.partition_deduct",
                "redis.per_item.detail_collect", "db.commit", "db.service.select_stock_for_update"):
        assert key in values, key
        assert math.isfinite(_mean(values[key])) and _mean(values[key]) >= 0, (key, values[key])
    assert all(known_key(key) for key in values)
    assert not any(known_key(key) for key in profile.measured)
    # Orders of magnitude a working measurement cannot miss, even on a busy machine.
    assert 0 < values["redis.service.deduct"]["mean"] < 1e-3
    assert 0 < values["network.redis"] < 5e-3 and 0 < values["network.db"] < 5e-2
    assert values["redis.pipeline"] >= 1
    assert values["redis.per_item.detail_collect"] > 0  # collecting 200 records costs more than 1
    scenario, _ = profile.apply(Scenario())
    assert scenario.redis.service["deduct"].mean == values["redis.service.deduct"]["mean"]


def test_raw_measurements_back_the_values(quick_profile):
    data = load_profile(quick_profile).data
    raw = data["raw"]
    fixed = raw["redis"]["fixed"]
    assert [run["depth"] for run in fixed["runs"]] == [1, 16]
    deep, shallow = fixed["runs"][1], fixed["runs"][0]
    assert deep["reads_per_call"] < shallow["reads_per_call"]  # pipelining: fewer reads per command
    assert deep["cpu_per_call"] < shallow["cpu_per_call"]  # ... and less server CPU per command
    scripts = raw["redis"]["scripts"]
    assert scripts["deduct"]["calls"] > 100 and all(s["errors"] == 0 for s in scripts.values())
    records = raw["redis"]["records"]["detail_collect"]
    assert max(records["items"]) >= 100 and records["calls"] >= 4
    assert {row["depth"] for row in raw["redis"]["check"]} == {1, 16}
    db = raw["db"]
    assert db["settings"]["innodb_flush_log_at_trx_commit"] in (0, 1, 2)
    assert "log_bin" in db["settings"] and "sync_binlog" in db["settings"]
    assert [row["connections"] for row in db["hot_row"]] == [1, 8, 32]
    assert all(row.get("tps", 0) > 0 for row in db["hot_row"]), db["hot_row"]
    if shutil.which("mariadb-slap") or shutil.which("mysqlslap"):
        assert db["slap"] and db["slap"][0].get("tps", 0) > 0, db["slap"]
    assert data["measured"].get("db.commit_path") in ("binlog_sync", "group_commit") or \
        data["scenario"].get("db.commit_path") in ("binlog_sync", "group_commit")
    driver = raw["driver"]
    assert driver["cpu_op"] > 0 and driver["runs"]["busy"][1]["ok"] == driver["runs"]["busy"][1]["requests"] > 0
    assert driver["single"] > driver["busy"] > 0 and driver["cpu_record"] is not None
    assert set(raw["wake"]["fit"]) == {"after", "base", "per_idle", "cap"}


def test_the_profile_drives_a_simulation(quick_profile, capsys):
    assert main(["run", "--profile", str(quick_profile), "--set", "workload.buyers=500",
                 "--set", "workload.window=0.01", "--set", "sale.stock=100"]) == 0
    assert "single_redis" in capsys.readouterr().out


def test_unreachable_redis_is_one_line(tmp_path, capsys):
    from engine.real.cluster import free_port

    code = main(["calibrate", "--quick", "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
                 "--out", str(tmp_path / "p.toml")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("flashsim: error:") and "Redis" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "p.toml").exists()


def test_unwritable_output_is_refused_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["calibrate", "--quick", "--out", str(blocker / "p.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"flashsim: error: --out {blocker / 'p.toml'}: cannot create its folder") and "\n" not in err


def test_unreachable_database_is_one_line(tmp_path, capsys):
    from engine.real.cluster import free_port

    try:
        code = main(["calibrate", "--quick", "--db-url", f"mysql://root@127.0.0.1:{free_port()}",
                     "--out", str(tmp_path / "p.toml")])
    except Exception as err:  # pragma: no cover - the test's point is that none escapes
        unavailable("calibrate", err)
        raise
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("flashsim: error: cannot use MariaDB")
