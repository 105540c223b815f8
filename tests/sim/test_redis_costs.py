"""The Redis cost model: command + batch share + script body + records, and queueing theory with it."""

import numpy as np
import pytest

from engine.ops import Eval, Sleep
from engine.scenario import RedisConfig, Scenario, ScenarioError
from engine.streams import Streams
from sim import simulate
from sim.interpreter import Task
from sim.servers.redis_node import ITEMS, RedisNode
from sim.world import World

HOP = 0.0001


def world(*overrides):
    scenario = Scenario().with_overrides([
        f"network.redis={HOP}", "redis.nodes=1", "pipeline.enabled=false", "redis.service.default=0.00001",
        *overrides,
    ])
    return World(scenario, Streams(0))


def reply_time(*overrides, script="deduct"):
    """When one lone deduct's reply reaches the app."""
    w = world(*overrides)
    w.cluster.nodes[0].store.update({"s:{x}": 5, "d:{x}": 0})
    seen = []

    def buyer():
        yield Sleep(0)
        yield Eval(script, ("s:{x}", "d:{x}"), (1,))
        seen.append(w.env.now)

    w.interpreter.start(buyer(), lambda task, value: None)
    w.env.run()
    return seen[0]


def test_service_is_command_plus_body():
    body_only = reply_time("redis.service.deduct=0.00002")
    assert body_only == pytest.approx(2 * HOP + 20e-6, abs=1e-12)
    split = reply_time("redis.service.deduct=0.00002", "redis.command=0.000003")
    assert split == pytest.approx(2 * HOP + 23e-6, abs=1e-12)
    # a script without its own entry pays the default body, and the same command cost
    assert reply_time("redis.command=0.000003", script="cache_deduct") == pytest.approx(2 * HOP + 13e-6, abs=1e-12)


def test_pipelining_divides_the_batch_cost_by_the_depth():
    unpipelined = reply_time("redis.command=0.000002", "redis.batch=0.000008")
    assert unpipelined == pytest.approx(2 * HOP + (10 + 2 + 8) * 1e-6, abs=1e-12)
    deep = reply_time("redis.command=0.000002", "redis.batch=0.000008", "redis.pipeline=4")
    assert deep == pytest.approx(2 * HOP + (10 + 2 + 2) * 1e-6, abs=1e-12)


def test_default_costs_are_unchanged():
    config = RedisConfig()
    assert config.command.mean == 0 and config.batch.mean == 0 and config.per_item == {}
    assert config.service_of("deduct").mean == 1.0e-5
    assert config.fixed_mean == 0


def _node(**fields):
    return RedisNode(0, RedisConfig(nodes=1, **fields), np.random.default_rng(0))


def _pending(node, records):
    node.store.update({"det:{p}": {str(i): "1|0|p" for i in range(records)},
                       "pend:{p}": [str(i) for i in range(records)]})


def test_per_record_cost_counts_the_records_a_collect_takes():
    from engine.fields import Dist

    fields = {"service": {"default": Dist("deterministic", 5e-6)}, "command": Dist("deterministic", 1e-6),
              "per_item": {"detail_collect": 2e-7}}
    keys = ("det:{p}", "pend:{p}", "bat:{p}", "meta:{p}")
    for records, batch, taken in ((50, 200, 50), (300, 200, 200), (0, 200, 0)):
        node = _node(**fields)
        _pending(node, records)
        task = Task(iter(()), lambda task, value: None)
        finish = node.execute(1.0, Eval("detail_collect", keys, ("1.0", batch)), task)
        assert finish - 1.0 == pytest.approx(6e-6 + taken * 2e-7, abs=1e-15), (records, batch)
        node.advance(1.0)  # the twin takes the records it was charged for
        assert len(task.reply[1]) // 2 == taken if taken else task.reply == []
    # scripts without a per-record entry pay no record cost
    node = _node(**fields)
    _pending(node, 300)
    task = Task(iter(()), lambda task, value: None)
    assert node.execute(0.0, Eval("detail_summary", ("det:{p}", "sold:{p}")), task) == pytest.approx(6e-6)


def test_record_counts_match_the_twins():
    """ITEMS reads the same count the script's reply reports (collect, applied, stale, summary)."""
    from engine import scripts

    store: dict = {"det:{p}": {str(i): "1|0|p" for i in range(7)}, "pend:{p}": [str(i) for i in range(7)]}
    det, pend, bat, meta = "det:{p}", "pend:{p}", "bat:{p}", "meta:{p}"
    counted = ITEMS["detail_collect"](store, (det, pend, bat, meta), ("1.0", 5))
    batch, flat = scripts.get("detail_collect").twin(store, (det, pend, bat, meta), ("1.0", 5))
    assert counted == len(flat) // 2 == 5
    assert ITEMS["detail_stale"](store, (det, bat), ("9.0", "1.0")) == 5
    due = scripts.get("detail_stale").twin(store, (det, bat), ("9.0", "1.0"))
    assert sum(len(records) // 2 for _, records in due) == 5
    counted = ITEMS["detail_applied"](store, (det, bat), (batch,))
    assert counted == scripts.get("detail_applied").twin(store, (det, bat), (batch,)) == 5
    assert ITEMS["detail_applied"](store, (det, bat), (batch,)) == 0  # a duplicate marks nothing
    assert ITEMS["detail_summary"](store, (det, "sold:{p}"), ()) == 7
    assert set(ITEMS) == set(RedisConfig.PER_ITEM)


def test_bad_cost_settings_are_one_line_errors():
    with pytest.raises(ScenarioError, match="redis.pipeline must be >= 1"):
        Scenario().with_overrides(["redis.pipeline=0.5"])
    with pytest.raises(ScenarioError, match="redis.per_item: script must be one of"):
        Scenario().with_overrides(["redis.per_item.deduct=1e-6"])
    with pytest.raises(ScenarioError, match="redis.per_item.detail_collect must be >= 0"):
        Scenario().with_overrides(["redis.per_item.detail_collect=-1"])


MU = 100_000.0
LAMBDA = 80_000.0


@pytest.mark.slow
def test_md1_with_the_cost_split():
    """M/D/1 at rho = 0.8 where the 10 us service is 3 us command + 4 us batch share (8 us / 2) + 3 us body."""
    base = Scenario().with_overrides([
        "workload.kind=poisson", f"workload.rate={LAMBDA}", "workload.duration=2.0", "workload.timeout=inf",
        "sale.stock=1000000000", "network.redis=0", "pipeline.enabled=false", "redis.nodes=1",
        "redis.service.default=0.000003", "redis.command=0.000003", "redis.batch=0.000008", "redis.pipeline=2",
    ])
    means = np.array([simulate(base, seed=seed).requests["latency"].mean() for seed in range(6)])
    rho = LAMBDA / MU
    theory = 1 / MU + rho / (2 * MU * (1 - rho))
    half = 2.571 * means.std(ddof=1) / np.sqrt(len(means))
    assert abs(means.mean() - theory) / theory < 0.03, (means.mean(), theory)
    assert half / theory < 0.03
