"""Waking an idle app worker or Redis node, per-argument op CPU, and background work on the app's CPU.

Exact traces with deterministic costs: every figure below is a sum the test
writes out, so a change of rule (who pays a wake-up, when) shows as a number.
"""

import math

import numpy as np
import pytest

from engine.fields import Wake
from engine.pipeline.ops import Ack, Consume, Publish
from engine.real.calibrate.wake import fit
from engine.scenario import Scenario, ScenarioError
from engine.streams import Streams
from engine.tasks import TaskKind
from sim import simulate
from sim.app import RECEIVE, SEND, Instance
from sim.world import World
from tests.sim.test_app_tier import OP, D, H, R, S, at_times, trace_scenario

W = 0.0003  # cpu_wakeup


# ------------------------------------------------------------------ the Wake value
def test_wake_delay_grows_with_the_idle_gap_up_to_its_cap():
    wake = Wake(after=0.001, base=0.0001, per_idle=0.05, cap=0.0004)
    assert wake.delay(0.0005) == 0.0 and wake.delay(0.001) == 0.0  # not idle long enough
    assert wake.delay(0.002) == pytest.approx(0.0001 + 0.05 * 0.002)
    assert wake.delay(1.0) == 0.0004  # capped
    assert not Wake().costs and Wake(cap=1e-4, base=1e-5).costs


def test_wake_is_a_scenario_value_and_rejects_negative_numbers():
    s = Scenario().with_overrides(["app.wake={after=1e-4, base=2e-5, per_idle=0.05, cap=3e-4}",
                                   "redis.wake={cap=1e-4, base=1e-5}"])
    assert s.app.wake == Wake(1e-4, 2e-5, 0.05, 3e-4) and s.redis.wake.delay(1.0) == 1e-5
    assert s.app.costs_cpu  # a wake-up alone turns the tier on
    with pytest.raises(ScenarioError, match="wake.base must be >= 0"):
        Scenario().with_overrides(["app.wake={base=-1.0}"])
    with pytest.raises(ScenarioError, match="app.cpu_wakeup must be >= 0"):
        Scenario().with_overrides(["app.cpu_wakeup=-1e-6"])


# ------------------------------------------------------------------ one instance's CPU
def test_an_idle_worker_wakes_up_and_pays_a_turn_only_for_io():
    cpu = Instance(0, 1, Wake(after=0.1, base=0.01, per_idle=0.1, cap=0.05), cpu_wakeup=0.2)
    # idle 1 s: woken; it reads and writes, so it pays the whole turn (half for each)
    assert cpu.run(1.0, 0.5) == pytest.approx(1.05) and cpu.charged == pytest.approx(0.7)
    assert cpu.run(1.2, 0.3) == pytest.approx(1.75) and cpu.charged == 0.3  # queued behind it: shares the turn
    assert cpu.run(2.1, 0.1, io=0) == pytest.approx(2.1) and cpu.charged == 0.1  # idle 0.05 s: a new turn, no I/O
    assert cpu.run(2.2, 0.1, io=SEND) == pytest.approx(2.2) and cpu.charged == pytest.approx(0.2)  # same turn: writes
    assert cpu.run(2.4, 0.1, io=SEND | RECEIVE) == pytest.approx(2.4) and cpu.charged == pytest.approx(0.2)  # reads
    assert cpu.run(2.6, 0.1) == pytest.approx(2.6) and cpu.charged == 0.1  # both halves paid in this turn
    assert cpu.busy == pytest.approx(0.7 + 0.3 + 0.1 + 0.2 + 0.2 + 0.1)  # a wake-up is latency, not CPU
    assert cpu.wait_max == pytest.approx(0.55)


# ------------------------------------------------------------------ exact request traces
def test_a_request_on_an_idle_app_pays_half_a_turn_going_out_and_half_coming_back():
    # the first segment only writes (its op), the last only reads (the reply): one turn in all
    result = simulate(trace_scenario(f"app.cpu_wakeup={W}"), seed=0, schedule=at_times(0.0))
    assert result.requests["t_done"].tolist() == pytest.approx([H + R + OP + W / 2 + 2 * D + S + W / 2 + H],
                                                               abs=1e-12)


def test_one_closed_loop_user_pays_a_whole_turn_per_request():
    # What calibrate measures as cpu_wakeup: a reply and the next request's write share a turn.
    scenario = trace_scenario(f"app.cpu_wakeup={W}", "workload.kind=closed", "workload.users=1", "workload.think=0",
                              "workload.duration=0.05", "network.client=0", "sale.stock=1000000")
    result = simulate(scenario, seed=0)
    per_request = result.summary["app_util"] * 0.05 / len(result.requests)  # CPU per request
    assert per_request == pytest.approx(R + OP + W, rel=0.05)


def test_a_local_refusal_does_no_io_and_pays_no_turn():
    result = simulate(trace_scenario(f"app.cpu_wakeup={W}", "sale.stock=0"), seed=0, schedule=at_times(0.0, 0.1))
    second = result.requests.iloc[1]
    assert second["ops"] == 0 and second["latency"] == pytest.approx(H + R + H, abs=1e-12)


def test_an_idle_redis_node_wakes_up_before_it_serves():
    wake = 0.002
    result = simulate(trace_scenario(f"redis.wake={{after=0.0, base={wake}, per_idle=0.0, cap={wake}}}"), seed=0,
                      schedule=at_times(0.0, 0.0))
    a_done = H + R + OP + D + wake + S + D + H
    # B leaves the app at H+2(R+OP), finds the node busy with A: no wake-up, it queues
    b_done = (H + R + OP + D + wake + S) + S + D + H
    assert result.requests["t_done"].tolist() == pytest.approx([a_done, b_done], abs=1e-12)
    assert result.summary["util_node0"] < 1.0


def test_each_key_and_argument_of_an_op_costs_cpu():
    arg = 0.00001
    result = simulate(trace_scenario(f"app.cpu_arg={arg}"), seed=0, schedule=at_times(0.0))
    items = 3  # single_redis's deduct: two keys (stock, sold), one argument (qty)
    assert result.requests["t_done"].tolist() == pytest.approx([H + R + OP + items * arg + 2 * D + S + H], abs=1e-12)


# ------------------------------------------------------------------ background work
REC = 0.00002  # app.cpu_record


def world_with_mq(*extra):
    return World(trace_scenario("pipeline.enabled=true", f"app.cpu_record={REC}", "app.instances=2", *extra), Streams(0))


def test_background_publish_and_consume_run_on_the_pipeline_service_and_pay_per_record():
    world = world_with_mq()
    records = [(i, 1, 0.0) for i in range(10)]
    got = []

    def producer():
        yield Publish("t", {"records": records})

    def consumer():
        msg = yield Consume("t", "c1", 1.0)
        got.append(msg)
        yield Ack("t", msg.msg_id)

    world.interpreter.start(producer(), lambda *_: None, math.inf, None, TaskKind.BACKGROUND)
    world.interpreter.start(consumer(), lambda *_: None, math.inf, None, TaskKind.BACKGROUND)
    world.env.run(until=2.0)
    zero, one = world.app.instances
    service = world.app.service
    assert got and got[0].records == 10
    # consume, publish and ack each cost an op; half the per-record CPU at publish, half at delivery,
    # all on the pipeline service's CPU (its own process in real mode), none on the app instances'
    assert service.busy == pytest.approx(3 * OP + 10 * REC, abs=1e-12)
    assert zero.busy == one.busy == 0.0
    assert service.index == 2 and len(service.free) == 1  # one event loop, after the instances


def test_a_spawned_task_runs_on_its_spawners_instance():
    from engine.ops import Spawn

    world = world_with_mq()

    def publish():
        yield Publish("t", {"records": [(1, 1, 0.0)]})

    def request():
        yield Spawn(publish())
        return None

    world.interpreter.start_request(request(), lambda *_: None, math.inf, None, 1)
    world.env.run(until=1.0)
    zero, one = world.app.instances
    assert one.busy == pytest.approx(R + OP + REC / 2, abs=1e-12) and zero.busy == 0.0


def test_setup_work_costs_no_app_cpu():
    world = world_with_mq()

    def setup():
        yield Publish("t", {"records": [(1, 1, 0.0)]})

    world.interpreter.start(setup(), lambda *_: None, math.inf, None, TaskKind.SETUP)
    world.env.run(until=1.0)
    assert all(i.busy == 0.0 for i in world.app.instances)


# ------------------------------------------------------------------ calibration fit
def test_the_wake_fit_recovers_a_linear_excess_and_splits_it_between_app_and_node():
    thinks = (0.0, 0.25e-3, 0.5e-3, 1e-3, 2e-3, 3e-3)
    hot, turn, base, slope = 0.2e-3, 0.05e-3, 0.04e-3, 0.1
    medians = [hot] + [hot + turn + base + slope * g for g in thinks[1:]]
    fitted = fit(thinks, medians, cpu_wakeup=turn)
    assert fitted["base"] == pytest.approx(base / 2) and fitted["per_idle"] == pytest.approx(slope / 2)
    assert fitted["cap"] == pytest.approx((base + slope * 3e-3) / 2) and fitted["after"] == pytest.approx(0.125e-3)
    flat = fit(thinks, [hot] * len(thinks))  # no excess at all: nothing to model
    assert flat["base"] == 0.0 and flat["per_idle"] == 0.0 and not Wake(**flat).costs


# ------------------------------------------------------------------ whose background work
def test_each_instance_refreshes_its_own_registry_and_together_they_are_the_background():
    from engine.sharded.strategy import Sharded

    sc = Scenario().with_overrides(["app.instances=3", "sharded.partitions=4", "redis.nodes=2"])
    strat = Sharded(sc, np.random.default_rng(0))
    every = strat.background()
    per = {k: strat.background_of(k) for k in (None, 0, 1, 2)}
    assert sorted(g.__qualname__ for g in every) == sorted(g.__qualname__ for gens in per.values() for g in gens)
    for k in (0, 1, 2):
        apps = {id(g.gi_frame.f_locals.get("app", strat.apps[k])) for g in per[k]}
        assert apps == {id(strat.apps[k])}  # instance k's generators serve its own registry only
    for gens in per.values():
        for g in gens:
            g.close()
    for g in every:
        g.close()


def test_with_the_tier_on_an_instances_background_runs_on_its_own_cpu(monkeypatch):
    import sim.world

    worlds = []
    init = sim.world.World.__init__

    def capture(self, *args, **kwargs):
        init(self, *args, **kwargs)
        worlds.append(self)

    monkeypatch.setattr(sim.world.World, "__init__", capture)
    sc = Scenario().with_overrides([
        "strategy=sharded", "app.instances=3", "app.workers=1", f"app.cpu_op={OP}", "sharded.partitions=3",
        "redis.nodes=1", "pipeline.enabled=false", "sale.stock=100", "sharded.recovery_interval=inf",
        "sharded.refresh_interval=0.01"])
    result = simulate(sc, seed=0, schedule=at_times(0.0, 0.3))  # two buyers: instances 0 and 1
    assert result.summary["violations"] == 0
    idle = worlds[0].app.instances[2]  # served nobody: its CPU worked only if its registry's refreshers ran on it
    assert idle.busy >= 10 * OP
