"""db.commit_path: the log flush with the row lock held (binlog_sync) or after it, in groups (group_commit)."""

import numpy as np
import pytest

from engine.scenario import Scenario, ScenarioError
from engine.workload import Schedule
from sim import simulate

H = 0.0002  # one-way hop
S = 0.00005  # statement service
F = 0.001  # one log flush
G = 0.000005  # lock hand-off
at = lambda x: pytest.approx(x, abs=1e-12)  # noqa: E731


def scenario(path, *extra):
    return Scenario().with_overrides([
        f"network.db={H}", f"db.service.default={S}", f"db.service.select_stock={S}",
        f"db.service.select_stock_for_update={S}", f"db.commit={F}", f"db.grant_cost={G}", "db.begin=0.00001",
        "db.rollback=0.00002", "sale.stock=100", "workload.timeout=10", f'db.commit_path="{path}"', *extra,
    ])


def at_times(*times):
    return Schedule(np.array(times, dtype=float), np.ones(len(times), dtype=np.int64))


def test_a_lone_commit_waits_for_one_flush_either_way():
    for path in ("binlog_sync", "group_commit"):
        r = simulate(scenario(path), 0, "db_conditional", schedule=at_times(0.0)).requests
        assert r["latency"].tolist() == [at(2 * H + S + F)], path


def test_binlog_sync_holds_the_row_through_the_flush():
    r = simulate(scenario("binlog_sync"), 0, "db_conditional", schedule=at_times(0.0, 0.0, 0.0)).requests
    first = 2 * H + S + F
    second = H + S + F + G + S + F + H  # waits for the first flush, then its own
    third = H + S + F + G + S + F + G + S + F + H
    assert r["t_done"].tolist() == [at(first), at(second), at(third)]


def test_group_commit_releases_the_row_and_flushes_in_groups():
    result = simulate(scenario("group_commit"), 0, "db_conditional", schedule=at_times(0.0, 0.0, 0.0))
    r = result.requests
    # the first flushes alone from H+S; the other two update while it flushes and share the next flush
    first = H + S + F + H
    rest = H + S + F + F + H
    assert r["t_done"].tolist() == [at(first), at(rest), at(rest)]
    assert result.summary["db_flushes"] == 1 + 2  # the setup's INSERT of the row, then the two flushes


def test_group_commit_lifts_a_hot_rows_throughput():
    def tps(path):
        sc = scenario(path, "workload.kind=closed", "workload.users=32", "workload.think=0",
                      "workload.duration=0.5", "workload.timeout=inf", "sale.stock=1000000000", "db.pool_size=32")
        r = simulate(sc, 0, "db_conditional").requests
        return ((r["outcome"] == "ok") & (r["t_done"] >= 0.1) & (r["t_done"] <= 0.5)).sum() / 0.4

    binlog, grouped = tps("binlog_sync"), tps("group_commit")
    assert binlog == pytest.approx(1 / (S + F + G), rel=0.05)  # one flush per update, row held
    assert grouped > 5 * binlog  # flushes are shared: the row is free most of the time


def test_pessimistic_commit_also_groups():
    sc = scenario("group_commit")
    r = simulate(sc, 0, "db_pessimistic", schedule=at_times(0.0)).requests
    assert r["outcome"].tolist() == ["ok"]
    assert r["latency"].tolist() == [at(8 * H + 0.00001 + 2 * S + F)]


def test_unknown_commit_path_is_an_error():
    with pytest.raises(ScenarioError, match="db.commit_path must be one of binlog_sync, group_commit"):
        Scenario().with_overrides(['db.commit_path="fast"'])
