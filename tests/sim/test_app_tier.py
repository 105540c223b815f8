"""The app tier: instances whose workers are a c-server FIFO CPU, routing, per-instance state.

Queueing theory first (one instance is an M/M/c queue), then overload, exact
traces of the folded CPU and client hops, the state each instance keeps on its
own (the sold-out flag, the DB pool), routing, and reproducibility.
"""

import math

import numpy as np
import pandas as pd
import pytest

from engine.counter.strategy import SingleRedis
from engine.model import Outcome, Request
from engine.ops import Eval
from engine.real.loadgen import hosted
from engine.scenario import AppConfig, Scenario, ScenarioError
from engine.scripts import SOLD_OUT
from engine.streams import Streams
from engine.testing import drive
from engine.workload import Schedule
from sim import simulate
from sim.app import Instance, Router, routes
from sim.world import World


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = lam / mu
    rho = a / c
    head = sum(a ** k / math.factorial(k) for k in range(c))
    tail = a ** c / math.factorial(c) / (1 - rho)
    return tail / (head + tail) / (c * mu - lam)


def at_times(*times, qty=1):
    return Schedule(np.array(times, dtype=float), np.full(len(times), qty, dtype=np.int64))


# ------------------------------------------------------------------ queueing theory
MU = 10_000.0  # one worker serves a request in 100 us on average
LAMBDA = 32_000.0  # 4 workers at rho = 0.8
WORKERS = 4
REPS = 10


@pytest.mark.slow
def test_one_instance_is_an_mmc_queue():
    # Sold out from the start: after the first reply each request is a local refusal, a single
    # segment of exponential cpu_request on the instance's 4 workers -- an M/M/4 queue.
    base = Scenario().with_overrides([
        "workload.kind=poisson", f"workload.rate={LAMBDA}", "workload.duration=1.0", "workload.timeout=inf",
        "sale.stock=0", "network.redis=0", "redis.service.default=0", "pipeline.enabled=false",
        "app.instances=1", f"app.workers={WORKERS}", f'app.cpu_request={{kind="exponential", mean={1 / MU}}}',
    ])
    waits, sojourns = [], []
    for seed in range(REPS):
        result = simulate(base, seed=seed)
        local = result.requests[result.requests["ops"] == 0]
        assert len(local) > 0.999 * len(result.requests)  # only the first few reached Redis
        waits.append(result.summary["app_wait_mean"])
        sojourns.append(local["latency"].mean())
    wq = erlang_c_wait(LAMBDA, MU, WORKERS)
    waits, sojourns = np.array(waits), np.array(sojourns)
    half = 2.262 * waits.std(ddof=1) / np.sqrt(REPS)  # 95% Student-t, 9 degrees of freedom
    assert abs(waits.mean() - wq) / wq < 0.05, (waits.mean(), wq)
    assert waits.mean() - half - 0.05 * wq <= wq <= waits.mean() + half + 0.05 * wq
    assert abs(sojourns.mean() - (wq + 1 / MU)) / (wq + 1 / MU) < 0.03


def test_overloaded_instance_queues_and_times_out():
    # 2 workers x 1 ms = 2,000 req/s of capacity, offered 4,000 req/s: the queue grows by one
    # second of work per second, so requests sent late wait longer than the 0.1 s timeout.
    sc = Scenario().with_overrides([
        "workload.kind=poisson", "workload.rate=4000", "workload.duration=0.5", "workload.timeout=0.1",
        "sale.stock=1000000", "pipeline.enabled=false", "app.instances=1", "app.workers=2",
        "app.cpu_request=0.001",
    ])
    result = simulate(sc, seed=3)
    r = result.requests
    early, late = r[r["t_arrival"] < 0.02], r[r["t_arrival"] > 0.25]
    assert (early["outcome"] == "ok").all()
    assert (late["outcome"] == "timeout").all()  # the queue ahead of them exceeds the timeout
    timed_out = r[r["outcome"] == "timeout"]
    assert np.allclose(timed_out["latency"], 0.1)  # reported at the deadline, from the intended send
    # the backlog when the last buyer arrives: 0.5 s x 2,000 req/s too many = 1 s of work on 2 workers
    assert 0.4 < result.summary["app_wait_max"] < 0.6
    assert result.summary["app_util_max"] > 0.95
    ok = r[r["outcome"] == "ok"]
    assert ok["latency"].iloc[-20:].mean() > 5 * ok["latency"].iloc[:20].mean()  # the wait grows


# ------------------------------------------------------------------ exact traces
H = 0.001  # client hop
R, OP = 0.0002, 0.0001  # cpu_request, cpu_op
D, S = 0.0001, 0.001  # Redis hop, Redis service


def trace_scenario(*extra):
    return Scenario().with_overrides([
        f"network.client={H}", f"network.redis={D}", f"redis.service.default={S}", "redis.nodes=1",
        f"app.cpu_request={R}", f"app.cpu_op={OP}", "app.workers=1", "app.instances=1",
        "sale.stock=100", "pipeline.enabled=false", *extra,
    ])


def test_trace_of_two_requests_on_one_worker():
    result = simulate(trace_scenario(), seed=0, schedule=at_times(0.0, 0.0))
    # A reaches the app at H, its segment (R + OP) ends at H+R+O, Redis serves it [H+R+O+D, +S], the reply
    # is back at H+R+O+2D+S, the worker is idle then, the answer reaches the buyer a client hop later.
    a_done = H + R + OP + 2 * D + S + H
    # B waits for the worker until H+R+O, leaves at H+2(R+O), queues at Redis behind A until A's
    # service ends, and is back one hop after its own service.
    b_done = (H + R + OP + D + S) + S + D + H
    assert result.requests["t_done"].tolist() == pytest.approx([a_done, b_done], abs=1e-12)
    assert result.summary["app_wait_mean"] == pytest.approx((R + OP) / 4, abs=1e-12)  # one wait, four segments


def test_a_local_refusal_pays_request_and_refusal_cpu_only():
    sc = trace_scenario("sale.stock=0", "app.cpu_refusal=0.00005")
    result = simulate(sc, seed=0, schedule=at_times(0.0, 0.1))
    second = result.requests.iloc[1]
    assert second["ops"] == 0 and second["outcome"] == "sold_out"
    assert second["latency"] == pytest.approx(H + R + 0.00005 + H, abs=1e-12)


def test_a_queued_op_does_not_hold_up_an_earlier_arrival_at_redis():
    # Instance 0 is backed up: its third request's op leaves only at 0.03. Instance 1 is idle when its
    # request comes at 0.015; that op leaves at 0.025 and must be served as it arrives, not after the
    # op sent earlier (in program order) that reaches the node later.
    world = World(trace_scenario("app.instances=2", "app.cpu_request=0.01", "app.cpu_op=0", "network.client=0"),
                  Streams(0))
    world.cluster.nodes[0].store.update({"s:{x}": 100, "d:{x}": 0})
    done = {}

    def buyer():
        return (yield Eval("deduct", ("s:{x}", "d:{x}"), (1,)))

    def finish(task, _outcome):
        done[task.tag] = world.env.now

    for tag in ("a", "b", "c"):
        world.interpreter.start_request(buyer(), finish, math.inf, tag, 0)
    world.env.run(until=0.015)
    world.interpreter.start_request(buyer(), finish, math.inf, "d", 1)
    world.env.run()
    assert done["d"] == pytest.approx(0.025 + D + S + D, abs=1e-12)
    assert done["c"] == pytest.approx(0.030 + D + S + D, abs=1e-12)


# ------------------------------------------------------------------ per-instance state
@pytest.mark.parametrize("strategy", ["single_redis", "db_pessimistic"])
def test_each_instance_learns_sold_out_on_its_own(strategy):
    # one unit, two instances, round robin: request 0 (instance 0) buys it and its instance learns
    # "sold out" from the 0 left; request 1 (instance 1) still goes to the server and hears it there;
    # requests 2 and 3 are refused locally, each by its own instance
    sc = Scenario().with_overrides(["sale.stock=1", "app.instances=2", "pipeline.enabled=false"])
    r = simulate(sc, seed=0, strategy=strategy, schedule=at_times(0.0, 0.01, 0.02, 0.03)).requests
    assert r["outcome"].tolist() == ["ok", "sold_out", "sold_out", "sold_out"]
    assert r["ops"].gt(0).tolist() == [True, True, False, False]


def test_the_strategy_keeps_one_flag_per_instance():
    scenario = Scenario().with_overrides(["sale.stock=1", "app.instances=2", "pipeline.enabled=false"])
    s = SingleRedis(scenario, np.random.default_rng(0), namespace="t")
    _, outcome = drive(s.deduct(Request(0, 1, 0.0, 0)), [0])  # 0 left: instance 0 learns
    assert outcome is Outcome.OK and s.sold_out == [True, False]
    ops, outcome = drive(s.deduct(Request(1, 1, 0.0, 1)), [SOLD_OUT])  # instance 1 asks Redis
    assert len(ops) == 1 and outcome is Outcome.SOLD_OUT and s.sold_out == [True, True]
    ops, outcome = drive(s.deduct(Request(2, 1, 0.0, 0)), [])
    assert ops == [] and outcome is Outcome.SOLD_OUT


def test_db_pool_is_per_instance(monkeypatch):
    # one connection per instance, a short acquire timeout; requests 0 and 1 go to instance 0, request 2
    # to instance 1: the 2nd finds its instance's only connection taken (a fleet pool of 2 would not)
    monkeypatch.setattr("sim.world.routes", lambda config, count, rng: np.array([0, 0, 1]))
    sc = Scenario().with_overrides([
        "app.instances=2", "db.pool_size=1", "db.acquire_timeout=0.001", "db.commit=0.01", "sale.stock=100",
        "workload.timeout=10",
    ])
    result = simulate(sc, seed=0, strategy="db_conditional", schedule=at_times(0.0, 0.0, 0.0))
    assert result.requests["outcome"].tolist() == ["ok", "error", "ok"]
    assert result.summary["db_pool_timeouts"] == 1


def test_sharded_registry_belongs_to_the_request_instance():
    sc = Scenario().with_overrides(["app.instances=3", "pipeline.enabled=false", "sale.stock=2000",
                                    "workload.buyers=3000", "workload.window=0.1"])
    result = simulate(sc, seed=1, strategy="sharded")
    assert result.ok and result.summary["ok"] == 2000


def test_sharded_apps_was_moved_to_app_instances():
    with pytest.raises(ScenarioError, match="'sharded.apps' was removed: set app.instances"):
        Scenario().with_overrides(["sharded.apps=4"])
    with pytest.raises(ScenarioError, match="'sharded.apps' was removed"):
        Scenario.from_dict({"sharded": {"apps": 2}})


# ------------------------------------------------------------------ routing
def test_round_robin_spreads_evenly():
    config = AppConfig(instances=4)
    counts = np.bincount(routes(config, 10_002, np.random.default_rng(0)), minlength=4)
    assert counts.max() - counts.min() <= 1
    router = Router(config, np.random.default_rng(0))
    assert [router() for _ in range(6)] == [0, 1, 2, 3, 0, 1]


def test_random_routing_is_seeded_and_spreads():
    config = AppConfig(instances=4, routing="random")
    one = routes(config, 40_000, np.random.default_rng(7))
    assert np.array_equal(one, routes(config, 40_000, np.random.default_rng(7)))
    assert not np.array_equal(one, routes(config, 40_000, np.random.default_rng(8)))
    counts = np.bincount(one, minlength=4)
    assert counts.min() > 9_500 and counts.max() < 10_500  # 4 sigma is about 350


def test_the_router_sends_request_i_to_its_instance(monkeypatch):
    seen = {}

    class Spy(SingleRedis):  # records the instance each request was handed
        def deduct(self, request: Request):
            seen[request.id] = request.app
            return (yield from super().deduct(request))

    monkeypatch.setattr("sim.world.strategy_class", lambda name: Spy)
    sc = Scenario().with_overrides(["app.instances=3", "app.routing=\"random\"", "sale.stock=10",
                                    "workload.buyers=300", "pipeline.enabled=false"])
    simulate(sc, seed=5)
    expected = routes(sc.app, 300, Streams(5).generator("routing"))
    assert [seen[i] for i in range(300)] == expected.tolist()
    assert set(seen.values()) == {0, 1, 2}


def test_real_workers_host_the_instances_round_robin_would_pick():
    # with W dividing the instances, worker k's j-th request goes to hosted[j % len] == i % instances
    for workers, instances in ((1, 4), (2, 4), (4, 4), (3, 6)):
        for i in range(60):
            k, j = i % workers, i // workers
            own = hosted(k, workers, instances)
            assert own[j % len(own)] == i % instances
    assert hosted(5, 8, 4) == [1]  # more workers than instances: each plays a copy of one


# ------------------------------------------------------------------ reproducibility and defaults
def busy_scenario():
    return Scenario().with_overrides([
        "workload.buyers=20000", "workload.window=0.2", "sale.stock=3000", "app.routing=\"random\"",
        'app.cpu_request={kind="lognormal", mean=3e-5, cv=1}', 'app.cpu_op={kind="exponential", mean=2e-5}',
        "app.workers=2", 'network.client={kind="exponential", mean=2e-4}',
    ])


@pytest.mark.parametrize("strategy", ["single_redis", "sharded"])
def test_same_seed_same_results_with_the_app_tier_on(strategy):
    first = simulate(busy_scenario(), seed=11, strategy=strategy)
    second = simulate(busy_scenario(), seed=11, strategy=strategy)
    pd.testing.assert_frame_equal(first.requests, second.requests)
    assert first.summary == second.summary and first.ok
    assert first.summary["app_wait_mean"] > 0  # the tier really queued
    other = simulate(busy_scenario(), seed=12, strategy=strategy)
    assert not first.requests["t_done"].equals(other.requests["t_done"])


def test_closed_loop_users_go_through_the_tier():
    sc = Scenario().with_overrides([
        "workload.kind=closed", "workload.users=50", "workload.duration=0.2", "workload.think=0.001",
        "sale.stock=100000", "app.cpu_request=0.0001", "app.workers=1", "network.client=0.0005",
        "pipeline.enabled=false",
    ])
    result = simulate(sc, seed=2)
    assert result.ok and result.summary["app_util"] > 0.3
    assert result.requests["latency"].min() >= 2 * 0.0005 + 0.0001  # two client hops and the request's CPU


def test_the_default_tier_costs_nothing_and_adds_no_figures():
    result = simulate(Scenario().with_overrides(["workload.buyers=2000", "pipeline.enabled=false"]), seed=0)
    assert not any(key.startswith("app_") for key in result.summary)
    assert result.summary["served"] == (result.requests["ops"] > 0).sum()


def test_served_latency_leaves_local_refusals_out():
    result = simulate(Scenario().with_overrides(["workload.buyers=20000", "sale.stock=500",
                                                 "pipeline.enabled=false"]), seed=0)
    s, r = result.summary, result.requests
    served = r[r["ops"] > 0]["latency"]
    assert s["served"] == len(served) < len(r)
    assert s["served_p99"] == pytest.approx(np.percentile(served, 99))
    assert s["served_p50"] > s["p50"]  # the all-buyer median is a local refusal's


def test_instance_heap_is_a_fifo_c_server():
    cpu = Instance(0, 2)
    starts = [cpu.run(t, cost) for t, cost in ((0.0, 1.0), (0.0, 3.0), (0.5, 1.0), (0.6, 0.0), (5.0, 1.0))]
    # 3rd waits for the first worker (free at 1), the zero-cost 4th for the next free one (at 2), 5th at once
    assert starts == [0.0, 0.0, 1.0, 2.0, 5.0]
    assert cpu.busy == 6.0 and cpu.wait_max == pytest.approx(1.4)


def test_outcome_timeout_when_the_answer_arrives_after_the_deadline():
    # the client hop back alone makes the answer late: the request counts as a timeout at its deadline
    sc = trace_scenario("workload.timeout=0.0034")  # the answer would reach the buyer at 0.0035
    r = simulate(sc, seed=0, schedule=at_times(0.0)).requests
    assert r["outcome"].tolist() == [Outcome.TIMEOUT.label] and r["latency"].tolist() == [0.0034]
