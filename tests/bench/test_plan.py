"""The capacity planner on small cases: 0.1 s of sustained load, a handful of candidates.

Redis-bound: slow nodes (100 us per script) and an app tier that costs nothing, 25k req/s.
Queueing theory bounds it: one node serves ~10k scripts/s, so 25k req/s needs >= 3 shards,
and one app instance is enough. App-bound: fast nodes, 200 us of app CPU per request on
one worker per instance, 8k req/s: one instance serves 5k req/s, so it needs >= 2.
"""

import math

import pandas as pd
import pytest

from engine.scenario import Scenario, ScenarioError
from engine.strategies import STRATEGIES
from sim.bench import plan
from sim.bench.plan import NEITHER, false_sold_outs, limiting_tier, smallest_passing
from sim.cli import main

SMALL = ["--set", "workload.duration=0.1", "--set", "redis.service.default=0.0001"]
APP_BOUND = ["workload.duration=0.1", "app.cpu_request=0.0002", "app.workers=1"]


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    base = Scenario().with_overrides(["workload.duration=0.1", "redis.service.default=0.0001"])
    return plan(25_000, 0.01, stock=100_000, scenario=base, sizes=(20, 100), partitions_per_node=2, max_shards=8,
                max_instances=4, replications=2, workers=2, quiet=True, results_root=tmp_path_factory.mktemp("plan"))


@pytest.fixture(scope="module")
def app_bound(tmp_path_factory):
    return plan(8_000, 0.01, scenario=Scenario().with_overrides(APP_BOUND), sizes=(100,), max_shards=4,
                max_instances=8, replications=2, workers=2, quiet=True, results_root=tmp_path_factory.mktemp("plan"))


def test_planner_finds_the_smallest_shard_count(answer):
    evidence = answer.evidence
    assert answer.answer is not None
    shards = answer.answer["shards"]
    # one node serves ~10k scripts/s: 25k req/s cannot fit on fewer than 3 (utilisation >= 1)
    assert 3 <= shards <= 4 and answer.answer["partitions"] == 2 * shards
    generous = evidence[evidence["instances"] == 4]
    probed = sorted(generous["shards"].unique())
    assert {1, 2, 4} <= set(probed)  # doubling first, then bisection between the last failure and success
    assert shards - 1 in probed and not generous[generous["shards"] < shards]["meets"].any()
    size = answer.answer["subdomain_size"]
    chosen = evidence[(evidence["shards"] == shards) & (evidence["subdomain_size"] == size)
                      & (evidence["instances"] == answer.answer["instances"])].iloc[0]
    assert chosen["meets"] and chosen["p99_worst"] <= 0.01 and chosen["false_sold_outs"] == 0
    # the evidence is the runs: every candidate's replications are in runs.parquet
    assert len(answer.runs) == 2 * len(evidence) and (answer.path / "runs.parquet").is_file()
    assert (answer.path / "evidence.csv").is_file()
    worst = answer.runs.groupby(["redis.nodes", "sharded.subdomain_size", "app.instances"])["steady_p99"].max()
    assert worst[(shards, size, answer.answer["instances"])] == chosen["p99_worst"]
    assert f"{shards} shard(s) ({2 * shards} partitions, sub-domain size {size})" in answer.describe()


def test_load_is_sustained_and_latency_judged_after_the_warm_up(answer):
    runs = answer.runs
    assert answer.warmup == pytest.approx(0.02)  # 20 % of the 0.1 s span
    assert (runs["remaining"] > 0).all() and runs["time_to_sellout"].isna().all() and (runs["sold_out"] == 0).all()
    # the judged p99 leaves the warm-up's requests out
    assert (runs["steady_requests"] < runs["requests"]).all() and (runs["steady_requests"] > 0).all()


def test_a_free_app_tier_never_limits(answer):
    assert answer.answer["instances"] == 1  # zero app CPU: one instance carries the peak
    table = answer.table.set_index("role")
    assert list(table.index) == ["answer", "fewer shards"]  # no smaller fleet than 1
    assert table.loc["answer", "limit"] == NEITHER
    fewer = table.loc["fewer shards"]
    assert fewer["shards"] == answer.answer["shards"] - 1 and fewer["limit"] == "redis" and "p99" in fewer["failed"]
    assert fewer["redis_util_max"] > 0.8 and fewer["app_util_max"] == 0  # 25k req/s x 100 us over 2 nodes
    saved = pd.read_csv(answer.path / "plan.csv")
    assert list(saved["limit"]) == [NEITHER, "redis"]


def test_an_app_bound_plan_grows_the_fleet_and_names_the_app(app_bound):
    assert app_bound.answer is not None
    assert app_bound.answer["shards"] == 1 and app_bound.answer["instances"] > 1
    evidence = app_bound.evidence.set_index(["shards", "instances"])
    assert not evidence.loc[(1, 1), "meets"]  # one instance (5k req/s of CPU) cannot carry 8k req/s
    table = app_bound.table.set_index("role")
    assert list(table.index) == ["answer", "smaller fleet"]  # one shard passes: no fewer shards to show
    smaller = table.loc["smaller fleet"]
    assert smaller["instances"] == app_bound.answer["instances"] - 1 and smaller["limit"] == "app"
    assert smaller["app_util_max"] > 0.9 > smaller["redis_util_max"]
    assert table.loc["answer", "limit"] == NEITHER
    assert f"and {app_bound.answer['instances']} app instance(s) x 1 worker(s)" in app_bound.describe()
    assert any(line.startswith("smaller fleet:") and line.endswith("-> limit app") for line in app_bound.limits())


def test_limiting_tier_is_the_busier_one():
    row = {"meets": False, "failed": "p99", "redis_util_max": 0.5, "app_util_max": 0.99}
    assert limiting_tier(row) == "app"
    assert limiting_tier({**row, "redis_util_max": 1.2}) == "redis"
    assert limiting_tier({**row, "failed": "false sold-outs"}) == "redis"
    assert limiting_tier({**row, "meets": True, "failed": ""}) == NEITHER


def test_smallest_passing_doubles_then_bisects():
    tried = []

    def at_least(n):
        def passes(value):
            tried.append(value)
            return value >= n
        return passes

    assert smallest_passing(at_least(5), 64) == (4, 5) and tried == [1, 2, 4, 8, 6, 5]
    assert smallest_passing(at_least(1), 64) == (0, 1)
    assert smallest_passing(at_least(100), 10) == (10, 0)


def test_false_sold_outs_come_from_the_strategy_when_it_counts_them(answer):
    assert (false_sold_outs(answer.runs) == answer.runs["false_sold_outs"]).all()


def test_cli_plan_prints_evidence_answer_and_limits(tmp_path, capsys):
    args = ["plan", "--peak", "25000", "--p99", "0.01", *SMALL, "--sizes", "100", "--partitions-per-node", "2",
            "--max-instances", "2", "--replications", "2", "--quiet", "--out", str(tmp_path)]
    code = main([*args, "--max-shards", "8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "evidence" in out and ("answer: peak 25,000 req/s sustained for 0.1 s, p99 <= 10 ms after a 0.02 s "
                                  "warm-up, stock 10,000: ") in out
    assert "limits (plan table: " in out and "-> limit redis" in out and f"-> limit {NEITHER}" in out
    code = main([*args, "--max-shards", "2"])
    out = capsys.readouterr().out
    assert code == 1 and "no candidate up to 2 shards meets the SLO" in out
    assert "max shards: 2 shard(s), 2 instance(s)" in out and "-> limit redis" in out


def test_cli_plan_help_names_the_two_dimensions(capsys):
    assert main(["plan", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--profile", "--warmup", "--max-instances", "app instances", "neither: SLO met"):
        assert text in out


@pytest.mark.parametrize("args, message", [
    (["--peak", "0", "--p99", "0.05"], "--peak must be > 0"),
    (["--peak", "1000", "--p99", "-1"], "--p99 must be > 0"),
    (["--peak", "1000", "--p99", "0.05", "--stock", "100"], "could sell out within the 1 s of load"),
    (["--peak", "1000", "--p99", "0.05", "--warmup", "1"], "--warmup must be >= 0 and shorter than"),
])
def test_bad_plan_input_is_one_line(args, message, capsys):
    assert main(["plan", *args]) == 2
    assert message in capsys.readouterr().err


def test_planner_needs_the_sharded_strategy(monkeypatch):
    monkeypatch.delitem(STRATEGIES, "sharded")
    with pytest.raises(ScenarioError, match="flashsim plan needs the 'sharded' strategy"):
        plan(1000, 0.05)


def test_the_slo_can_be_on_successful_buyers_only(tmp_path, capsys):
    args = ["plan", "--peak", "25000", "--p99", "0.01", *SMALL, "--sizes", "100", "--partitions-per-node", "2",
            "--max-shards", "8", "--max-instances", "1", "--replications", "2", "--quiet", "--out", str(tmp_path)]
    main([*args, "--of", "ok", "--warmup", "0.05"])
    out = capsys.readouterr().out
    assert "p99 (successful buyers) <= 10 ms after a 0.05 s warm-up" in out
    runs = pd.read_parquet(next(tmp_path.glob("plan/*/runs.parquet")))
    evidence = pd.read_csv(next(tmp_path.glob("plan/*/evidence.csv")))
    worst_ok = runs.groupby("redis.nodes")["steady_ok_p99"].max()
    assert (evidence.set_index("shards")["p99_worst"] == worst_ok.loc[evidence["shards"]].to_numpy()).all()
    assert not math.isnan(worst_ok.iloc[0])
    assert main([*args, "--of", "some"]) == 2


def test_a_plan_gives_servers_cpu_of_their_own_unless_set(tmp_path, capsys):
    import argparse

    from sim.bench.commands import fleet_scenario

    profile = tmp_path / "onehost.toml"
    profile.write_text('[profile]\nname = "onehost"\n[scenario]\n"host.cores" = 2\n')

    def args(*overrides: str) -> argparse.Namespace:
        return argparse.Namespace(scenario=None, profile=str(profile), overrides=list(overrides), seed=0)

    assert fleet_scenario(args()).host.cores == 0
    assert "host.cores 2 -> 0" in capsys.readouterr().err
    assert fleet_scenario(args("host.cores=1")).host.cores == 1  # asked for: one 1-core host
    assert capsys.readouterr().err == ""
