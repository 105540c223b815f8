"""Trace tests: exact simulated instants for tiny, deterministic worlds."""

import math

import numpy as np
import pytest

from engine.model import Outcome
from engine.ops import NOW, Eval, Sleep
from engine.scenario import Scenario
from engine.streams import Streams
from engine.workload import Schedule
from sim import simulate
from sim.world import World

SERVICE = 0.001
HOP = 0.0001


def scenario(**extra):
    return Scenario().with_overrides([
        f"redis.service.default={SERVICE}", f"network.redis={HOP}", "sale.stock=2", "redis.nodes=1",
        "report.timeline_interval=0.0005", "pipeline.enabled=false",  # kernel traces: no sync pipeline
        "app.instances=1",  # one app instance: one sold-out flag (tests/sim/test_app_tier.py has the fleet)
        *[f"{k}={v}" for k, v in extra.items()],
    ])


def test_interpreter_trace():
    world = World(scenario(), Streams(0))
    world.cluster.nodes[0].store.update({"s:{x}": 5, "d:{x}": 0})
    log = []

    def buyer(tag, qty):
        log.append((tag, "start", (yield NOW)))
        left = yield Eval("deduct", ("s:{x}", "d:{x}"), (qty,))
        log.append((tag, "reply", left, (yield NOW)))
        yield Sleep(0.01)
        log.append((tag, "woke", (yield NOW)))

    world.interpreter.start(buyer("a", 2), lambda task, value: log.append(("a", "done")))
    world.interpreter.start(buyer("b", 4), lambda task, value: log.append(("b", "done")))
    world.env.run()
    at = lambda x: pytest.approx(x, abs=1e-12)  # noqa: E731
    assert log == [
        ("a", "start", 0.0),
        ("b", "start", 0.0),
        ("a", "reply", 3, at(HOP + SERVICE + HOP)),
        ("b", "reply", -1, at(HOP + 2 * SERVICE + HOP)),  # queued behind a; 3 left < 4
        ("a", "woke", at(2 * HOP + SERVICE + 0.01)),
        ("a", "done"),
        ("b", "woke", at(2 * HOP + 2 * SERVICE + 0.01)),
        ("b", "done"),
    ]


def test_requests_queue_fifo_at_one_node():
    # three buyers 0.5 ms apart at a node that needs 1 ms each: the queue builds
    times = np.array([0.0, 0.0005, 0.001, 0.010])
    result = simulate(scenario(), seed=0, schedule=Schedule(times, np.ones(4, dtype=np.int64)))
    r = result.requests
    # the 4th comes after the sold-out flag is set: refused locally, at once
    expected_done = [HOP + SERVICE + HOP, HOP + 2 * SERVICE + HOP, HOP + 3 * SERVICE + HOP, 0.010]
    assert r["t_done"].tolist() == pytest.approx(expected_done, abs=1e-12)
    assert r["outcome"].tolist() == ["ok", "ok", "sold_out", "sold_out"]
    # the flag set by the 2nd reply (0 left) does not help the 3rd: it was sent before that reply
    assert r["ops"].tolist() == [1, 1, 1, 0]
    assert result.summary["time_to_sellout"] == pytest.approx(HOP + 2 * SERVICE + HOP)


def test_timeline_shows_stock_when_service_starts():
    times = np.array([0.0, 0.0, 0.0])
    result = simulate(scenario(**{"sale.stock": 3}), seed=0, schedule=Schedule(times, np.ones(3, dtype=np.int64)))
    tl = result.timeline.set_index("t")["sold"]
    # services start at HOP, HOP+1ms, HOP+2ms; samples every 0.5 ms
    assert tl.loc[0.0] == 0 and tl.loc[0.0005] == 1 and tl.loc[0.0015] == 2 and tl.loc[0.0025] == 3


def test_client_timeout_is_reported_at_the_deadline():
    times = np.zeros(5)
    result = simulate(scenario(**{"sale.stock": 100, "workload.timeout": 0.0025}), seed=0,
                      schedule=Schedule(times, np.ones(5, dtype=np.int64)))
    r = result.requests
    # replies at 1.2, 2.2, 3.2, 4.2, 5.2 ms: the last three miss a 2.5 ms deadline
    assert r["outcome"].tolist() == ["ok", "ok", "timeout", "timeout", "timeout"]
    assert r["t_done"].tolist()[2:] == [0.0025] * 3
    # the server still served them: sold counts what Redis did, not what clients heard
    assert result.summary["sold"] == 5 and result.summary["ok"] == 2 and result.violations == []


def test_closed_loop_users_think_and_time_out():
    s = scenario(**{"workload.kind": "closed", "workload.users": 2, "workload.duration": 0.01,
                    "workload.think": 0.002, "sale.stock": 1000, "workload.timeout": "inf"})
    result = simulate(s, seed=3)
    r = result.requests
    # each cycle: 1.2 ms round trip (the two users share the node) + 2 ms think
    assert len(r) >= 6 and (r["outcome"] == "ok").all()
    assert r["t_arrival"].max() < 0.01
    s2 = s.with_overrides(["workload.timeout=0.0005"])
    r2 = simulate(s2, seed=3).requests
    assert (r2["outcome"] == "timeout").all()
    assert r2["latency"].tolist() == pytest.approx([0.0005] * len(r2))


def test_empty_stock_sells_nothing():
    result = simulate(scenario(**{"sale.stock": 0, "workload.buyers": 100}), seed=1)
    assert result.summary["ok"] == 0 and result.summary["sold_out"] == 100
    assert math.isnan(result.summary["time_to_sellout"]) and result.violations == []
    assert set(result.requests["outcome"]) == {"sold_out"}
    assert Outcome.SOLD_OUT.label == "sold_out"
