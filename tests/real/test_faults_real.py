"""Faults injected into real servers flashsim started: replicas, kill -9, failover, DEBUG SLEEP, a killed worker.

Each test runs single_redis (async pipeline off: no database needed) on a
LocalCluster of its own on free loopback ports, with a short
cluster-node-timeout (1 s) so a promotion takes a few seconds, not 15.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import redis
from servers import unavailable  # tests/servers.py

from engine.counter.keys import StockKeys
from engine.faults.config import Fault, parse_fault_spec
from engine.real import RealOptions, RedisTarget, run_real
from engine.real.cluster import LocalCluster, _alive
from engine.real.faults import FaultRefused, fault_times, master_of
from engine.real.losses import loss_figures
from engine.real.target import TargetError
from engine.scenario import Scenario
from engine.slots import even_slot_ranges, key_slot
from sim.cli import main

pytestmark = pytest.mark.real

NODE_TIMEOUT = 1.0
BASE = ["redis.nodes=3", "pipeline.enabled=false", "workload.kind=poisson", "sale.stock=1000000"]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory):
    """3 masters, 1 replica each, cluster-node-timeout 1 s."""
    try:
        cluster = LocalCluster(3, tmp_path_factory.mktemp("replicated"), replicas=1, node_timeout=NODE_TIMEOUT).start()
    except TargetError as err:
        unavailable("redis-server (local cluster with replicas)", err)
    yield cluster
    cluster.stop()


def stock_node(namespace: str, scenario: Scenario) -> int:
    """The master index (0..2) that holds single_redis's stock key in ``namespace``."""
    slot = key_slot(StockKeys(namespace, scenario.sale.sku).all()[0])
    return next(i for i, (first, last) in enumerate(even_slot_ranges(3)) if first <= slot <= last)


def faulted(namespace: str, extra: list[str], **fault: object) -> Scenario:
    scenario = Scenario().with_overrides(BASE + extra)
    node = stock_node(namespace, scenario)
    return scenario.with_overrides([f"faults.f.{key}={json.dumps(value) if isinstance(value, str) else value}"
                                    for key, value in {"node": node, **fault}.items()])


def events_of(result, what: str):
    events = result.events
    return events[(events["kind"] == "fault") & (events["what"] == what)]


def info(port: int, section: str) -> dict:
    client = redis.Redis(port=port, decode_responses=True)
    try:
        return client.info(section)
    finally:
        client.close()


# ---------------------------------------------------------------- the cluster
def test_replicas_are_in_sync_and_their_roles_recorded(replicated):
    cluster = replicated
    assert len(cluster.ports) == 6 and cluster.roles == ["master"] * 3 + ["replica"] * 3
    for port, master in zip(cluster.ports[3:], cluster.replica_of[3:]):
        mine, theirs = info(port, "replication"), info(master, "replication")
        assert mine["role"] == "slave" and mine["master_port"] == master and mine["master_link_status"] == "up"
        assert 0 < mine["slave_repl_offset"] <= theirs["master_repl_offset"]
    state = json.loads((cluster.directory / "state.json").read_text())
    assert state["roles"] == cluster.roles and state["replica_of"] == cluster.replica_of
    assert state["node_timeout"] == NODE_TIMEOUT
    attached = LocalCluster.attach(cluster.directory)
    assert (attached.replicas, attached.node_timeout, attached.ports) == (1, NODE_TIMEOUT, cluster.ports)
    client = redis.Redis(port=cluster.ports[0], decode_responses=True)
    assert client.config_get("cluster-node-timeout") == {"cluster-node-timeout": "1000"}
    rows = client.execute_command("CLUSTER", "SLOTS")
    client.close()
    assert sorted(int(row[3][1]) for row in rows) == sorted(cluster.ports[3:])  # every master lists its replica
    assert master_of(cluster, 2).replicas == (cluster.ports[5],)


def test_cli_cluster_up_with_replicas_and_down(tmp_path, capsys):
    directory = tmp_path / "cl"
    assert main(["cluster", "up", "--nodes", "1", "--replicas", "1", "--node-timeout", "1.5",
                 "--dir", str(directory)]) == 0
    state = json.loads((directory / "state.json").read_text())
    assert "1 replica(s) per master" in capsys.readouterr().out
    try:
        assert state["roles"] == ["master", "replica"] and state["node_timeout"] == 1.5
        assert info(state["ports"][1], "replication")["master_port"] == state["ports"][0]
    finally:
        assert main(["cluster", "down", "--dir", str(directory)]) == 0
    assert not any(_alive(pid) for pid in state["pids"])  # every process, the replica too


# ---------------------------------------------------------------- refusals
def test_a_fault_needs_a_cluster_flashsim_started(cluster):
    scenario = Scenario().with_overrides(BASE + ["faults.f.kind=\"redis_pause\"", "faults.f.duration=0.1"])
    with pytest.raises(FaultRefused, match="only on servers flashsim started"):
        run_real(scenario, options=RealOptions(RedisTarget(cluster.url)))  # no cluster named
    other = LocalCluster(1)
    other.ports = [1]  # a cluster object that does not serve the target
    with pytest.raises(FaultRefused, match="is not a node of the local cluster"):
        run_real(scenario, options=RealOptions(RedisTarget(cluster.url), cluster=other))


def test_cli_refuses_a_fault_on_an_external_server(capsys):
    code = main(["run", "--real", "--redis-url", "redis://127.0.0.1:1/0", "--fault", "redis_pause@0.1:duration=0.1",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "fault injection acts only on servers flashsim started" in err


@pytest.mark.parametrize(("spec", "message"), [
    ("redis_crash@0.1", "no replica to take over"),
    ("redis_failover@0.1", "no replica to take over"),
    ("slow_node@0.1:duration=0.1", "no real-mode equivalent"),
    ("db_outage@0.1:duration=0.1", "not injected in real mode yet"),
    ("app_crash@0.1:instance=0", "only under an open-loop workload"),
])
def test_faults_real_mode_cannot_act_out_are_refused_before_the_run(cluster, spec, message):
    base = Scenario().with_overrides(BASE + (['workload.kind="closed"'] if spec.startswith("app_crash") else []))
    scenario = Scenario.from_dict({**base.to_dict(), "faults": {"f": parse_fault_spec(spec)}})
    with pytest.raises(FaultRefused, match=message):
        run_real(scenario, options=RealOptions(RedisTarget(cluster.url), namespace="fsreal-refused", cluster=cluster))
    for port in cluster.ports:  # refused before anything was created
        client = redis.Redis(port=port)
        assert not list(client.scan_iter(match="fsreal-refused:*", count=1000))
        client.close()


# ---------------------------------------------------------------- faults on a live sale
def test_manual_failover_is_followed_through_moved_and_loses_nothing(replicated):
    scenario = faulted("fsreal-failover", ["workload.rate=1500", "workload.duration=1.5", "workload.timeout=1"],
                       kind="redis_failover", at=0.5)
    before = master_of(replicated, scenario.faults["f"].node)
    result = run_real(scenario, seed=3, options=RealOptions(RedisTarget(replicated.url), namespace="fsreal-failover",
                                                             cluster=replicated))
    s = result.summary
    assert s["ok"] == s["requests"] > 1500 and s["error"] == s["timeout"] == 0  # nobody noticed
    assert s["redis_moved"] > 0 and s["redis_refreshes"] >= 1  # the old master answered MOVED; the map was re-read
    assert s["sold"] == s["acknowledged_units"] and s["lost_acknowledged"] == s["oversold_promised"] == 0
    assert result.violations == []
    promoted = events_of(result, "promoted")
    assert len(promoted) == 1 and promoted["address"].iloc[0] == f"127.0.0.1:{before.replicas[0]}"
    assert master_of(replicated, scenario.faults["f"].node).port == before.replicas[0]


def test_debug_sleep_pauses_the_master_and_requests_time_out_meanwhile(replicated):
    scenario = faulted("fsreal-pause", ["workload.rate=1000", "workload.duration=1.2", "workload.timeout=0.15"],
                       kind="redis_pause", at=0.4, duration=0.4)
    result = run_real(scenario, seed=4, options=RealOptions(RedisTarget(replicated.url), namespace="fsreal-pause",
                                                             cluster=replicated))
    s = result.summary
    paused, resumed = events_of(result, "paused")["t"].iloc[0], events_of(result, "resumed")["t"].iloc[0]
    assert resumed - paused >= 0.35  # DEBUG SLEEP 0.4 answered when the pause was over
    req = result.requests
    late = req[req["outcome"] == "timeout"]
    assert len(late) > 0 and s["error"] == 0
    assert late["t_arrival"].min() >= paused - 0.16 and late["t_arrival"].max() <= resumed + 0.05
    # the backlog was served after the pause: deducted, though its buyers had given up (in doubt, not lost)
    assert s["acknowledged_units"] == req.loc[req["outcome"] == "ok", "qty"].sum() < s["sold"]
    assert s["lost_acknowledged"] == 0 and s["in_doubt_units"] >= s["sold"] - s["acknowledged_units"]
    assert result.violations == []


def test_kill_9_of_the_master_mid_sale_then_restart_as_a_replica(replicated):
    """kill -9 of the stock key's master: errors and timeouts until its replica is promoted, then ok again."""
    scenario = faulted("fsreal-crash", ["workload.rate=800", "workload.duration=4.5", "workload.timeout=0.3"],
                       kind="redis_crash", at=0.5, duration=2.0)
    node = scenario.faults["f"].node
    old = master_of(replicated, node)
    result = run_real(scenario, seed=5, options=RealOptions(RedisTarget(replicated.url), namespace="fsreal-crash",
                                                             cluster=replicated))
    s = result.summary
    killed, promoted = events_of(result, "killed"), events_of(result, "promoted")
    assert killed["pid"].iloc[0] not in replicated.pids and len(events_of(result, "restarted")) == 1
    assert len(promoted) == 1, result.events
    t_kill, t_promoted = killed["t"].iloc[0], promoted["t"].iloc[0]
    assert NODE_TIMEOUT < t_promoted - t_kill < 15
    req = result.requests
    assert req["outcome"].notna().all() and np.isfinite(req["t_done"]).all()  # every buyer got an answer
    outage = req[(req["t_arrival"] > t_kill + 0.05) & (req["t_arrival"] < t_kill + NODE_TIMEOUT)]
    assert len(outage) > 0 and (outage["outcome"] != "ok").all()  # nobody served while the slots had no master
    assert (req.loc[req["t_arrival"] > t_promoted + 0.5, "outcome"] == "ok").all()  # served again by the new master
    assert (req["latency"] <= scenario.workload.timeout + 0.25).all()  # nobody waited past the client timeout
    # accounting read back from the servers (an acknowledged deduction the replica never got is lost)
    ok_units = int(req.loc[req["outcome"] == "ok", "qty"].sum())
    assert s["acknowledged_units"] == ok_units
    assert s["lost_acknowledged"] == max(0, ok_units - s["sold"]) <= s["lost_acknowledged_max"]
    assert s["oversold_promised"] == 0 and result.violations == []
    if s["redis_lost_replies"]:  # a reply lost after the send is an error, never resent
        assert s["error"] >= s["redis_lost_replies"] and "not resent" in s["first_strategy_error"]
    now = master_of(replicated, node)
    assert now.port == old.replicas[0]
    restarted = replicated.pid_of(old.port)
    assert restarted != killed["pid"].iloc[0] and os.path.exists(f"/proc/{restarted}")


def test_app_crash_kills_a_worker_and_the_run_still_reports(cluster):
    scenario = Scenario().with_overrides(BASE + ["app.instances=2", "workload.rate=800", "workload.duration=1.2",
                                                 "workload.timeout=0.5", 'faults.a.kind="app_crash"',
                                                 "faults.a.at=0.5", "faults.a.instance=1"])
    result = run_real(scenario, seed=6, options=RealOptions(RedisTarget(cluster.url), workers=2, cluster=cluster))
    s = result.summary
    killed = events_of(result, "killed")
    assert killed["worker"].tolist() == [1]
    req = result.requests
    errors = req[req["outcome"] == "error"]
    assert s["app_crash_errors"] == len(errors) > 0 and (errors["id"] % 2 == 1).all()  # worker 1's buyers only
    assert (errors["t_arrival"] >= killed["t"].iloc[0] - 0.1).all()
    assert (req.loc[req["id"] % 2 == 0, "outcome"] == "ok").all()  # worker 0 went on
    assert s["sold"] == s["acknowledged_units"] and result.violations == []


# ---------------------------------------------------------------- pure parts
def test_loss_figures_bound_what_was_lost():
    assert loss_figures(initial=100, sold=90, acknowledged=95, in_doubt=0) == {
        "acknowledged_units": 95, "lost_acknowledged": 5, "lost_acknowledged_max": 5, "in_doubt_units": 0,
        "oversold_promised": 0}
    # 4 units in doubt may be among the 90 held: up to 9 acknowledged units lost
    figures = loss_figures(initial=100, sold=90, acknowledged=95, in_doubt=4)
    assert (figures["lost_acknowledged"], figures["lost_acknowledged_max"]) == (5, 9)
    assert loss_figures(initial=100, sold=100, acknowledged=103, in_doubt=0)["oversold_promised"] == 3


def test_fault_times_once_or_poisson_before_the_horizon():
    rng = np.random.default_rng(0)
    once = fault_times({"a": Fault(kind="redis_pause", at=0.3, duration=0.1)}, rng, 1.0)
    assert [(f.t, f.name) for f in once] == [(0.3, "a")]
    many = fault_times({"p": Fault(kind="redis_pause", at=0.5, rate=20.0, duration=0.01),
                        "c": Fault(kind="redis_crash", at=0.7)}, np.random.default_rng(1), 3.0)
    times = [f.t for f in many]
    assert times == sorted(times) and all(0.5 < f.t < 3.0 for f in many if f.name == "p")
    assert 20 < sum(f.name == "p" for f in many) < 80 and [f.t for f in many if f.name == "c"] == [0.7]
    again = fault_times({"p": Fault(kind="redis_pause", at=0.5, rate=20.0, duration=0.01),
                         "c": Fault(kind="redis_crash", at=0.7)}, np.random.default_rng(1), 3.0)
    assert [f.t for f in again] == times and not math.isnan(times[0])


# ---------------------------------------------------------------- the driver's resend rule
def test_a_command_is_resent_only_when_it_certainly_did_not_run(tmp_path):
    """Connections closed by the server before the write: resent after a reconnect. A reply lost after
    the write (the server killed while the command waited): the request fails, never resent."""
    import asyncio
    import contextlib
    import threading

    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from engine.ops import Eval
    from engine.real.interpreter import RealInterpreter
    from engine.real.links import LostReply, RedisLinks
    from engine.real.target import discover

    server = LocalCluster(1, tmp_path / "one").start()
    keys = ("fsreal-resend:stock:{r}", "fsreal-resend:sold:{r}")
    admin = redis.Redis(port=server.ports[0], decode_responses=True)
    admin.mset({keys[0]: 10, keys[1]: 0})

    async def main():
        loop = asyncio.get_running_loop()
        interpreter = RealInterpreter(loop, loop.time())
        target = RedisTarget(server.url)
        links = RedisLinks(target, await discover(target), interpreter, lanes=2)
        await links.open()
        interpreter.redis = links

        def one(qty):
            return (yield Eval("deduct", keys=keys, args=(qty,)))

        try:
            assert await interpreter.run_to_end(one(1)) == 9
            killed = admin.client_kill_filter(_type="normal", skipme=True)  # every lane, idle
            assert killed >= 2
            await asyncio.sleep(0.05)
            assert await interpreter.run_to_end(one(2)) == 7  # written on a fresh connection, once
            assert (links.reconnects, links.lost) == (1, 0)
            # now a command written while the server sleeps, and the server killed before it answers
            def sleep():  # its reply never comes either: the server dies first
                with contextlib.suppress(redis.RedisError):
                    redis.Redis(port=server.ports[0], retry=Retry(NoBackoff(), 0)).execute_command("DEBUG", "SLEEP", "0.5")

            sleeper = threading.Thread(target=sleep, daemon=True)
            sleeper.start()
            await asyncio.sleep(0.1)
            outcome: dict = {}

            def lost():
                try:
                    yield Eval("deduct", keys=keys, args=(3,))
                except LostReply as err:
                    outcome["error"] = err
                return None

            waiting = loop.create_task(interpreter.run_to_end(lost()))
            await asyncio.sleep(0.1)
            server.kill(server.ports[0])
            await asyncio.wait_for(waiting, 5)
            assert "not resent" in str(outcome["error"]) and links.lost == 1
        finally:
            await links.close()

    try:
        asyncio.run(main())
    finally:
        admin.close()
        server.stop()


def test_cli_fault_on_the_cluster_of_cluster_up(tmp_path):
    """`flashsim cluster up --replicas 1` then `flashsim run --real --redis-url local --fault ...`, as documented."""
    import subprocess
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cli = [sys.executable, "-m", "sim.cli"]
    up = subprocess.run([*cli, "cluster", "up", "--nodes", "3", "--replicas", "1", "--node-timeout", "1"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        run = subprocess.run([*cli, "run", "--real", "--redis-url", "local", "--quiet", "--set", "redis.nodes=3",
                              "--set", "pipeline.enabled=false", "--set", "workload.buyers=1500",
                              "--set", "workload.window=1.0", "--fault", "redis_failover@0.3:node=1",
                              "--fault", "redis_pause@0.6:node=2,duration=0.1"],
                             env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "fault fault1: redis_failover at 0.3 s" in run.stdout and "fault fault2: redis_pause" in run.stdout
        assert "acknowledged_units" in run.stdout and "lost_acknowledged" in run.stdout
    finally:
        down = subprocess.run([*cli, "cluster", "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
