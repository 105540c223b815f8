"""The capacity planner on a small case: slow nodes (100 us per script), 25k req/s for 0.1 s.

Stock outlasts the load, so the p99 measures the deduction path's capacity, which
queueing theory bounds: one node serves ~10k scripts/s, so 25k req/s needs >= 3.
"""

import pandas as pd
import pytest

from engine.scenario import Scenario, ScenarioError
from engine.strategies import STRATEGIES
from sim.bench import plan
from sim.bench.plan import false_sold_outs
from sim.cli import main

SMALL = ["--set", "workload.duration=0.1", "--set", "redis.service.default=0.0001"]


@pytest.fixture(scope="module")
def answer(tmp_path_factory):
    base = Scenario().with_overrides(["workload.duration=0.1", "redis.service.default=0.0001"])
    return plan(25_000, 0.01, stock=100_000, scenario=base, sizes=(20, 100), partitions_per_node=2, max_shards=8,
                replications=2, workers=2, quiet=True, results_root=tmp_path_factory.mktemp("plan"))


def test_planner_finds_the_smallest_shard_count(answer):
    evidence = answer.evidence
    assert answer.answer is not None
    shards = answer.answer["shards"]
    # one node serves ~10k scripts/s: 25k req/s cannot fit on fewer than 3 (utilisation >= 1)
    assert 3 <= shards <= 4 and answer.answer["partitions"] == 2 * shards
    probed = sorted(evidence["shards"].unique())
    assert {1, 2, 4} <= set(probed)  # doubling first, then bisection between the last failure and success
    assert shards - 1 in probed and not evidence[evidence["shards"] < shards]["meets"].any()
    size = answer.answer["subdomain_size"]
    chosen = evidence[(evidence["shards"] == shards) & (evidence["subdomain_size"] == size)].iloc[0]
    assert chosen["meets"] and chosen["p99_worst"] <= 0.01 and chosen["false_sold_outs"] == 0
    # the evidence is the runs: every candidate's replications are in runs.parquet
    assert len(answer.runs) == 2 * len(evidence) and (answer.path / "runs.parquet").is_file()
    assert (answer.path / "evidence.csv").is_file()
    worst = answer.runs.groupby(["redis.nodes", "sharded.subdomain_size"])["p99"].max()
    assert worst[(shards, size)] == chosen["p99_worst"]
    assert f"{shards} shard(s) ({2 * shards} partitions, sub-domain size {size})" in answer.describe()


def test_false_sold_outs_come_from_the_strategy_when_it_counts_them(answer):
    assert (false_sold_outs(answer.runs) == answer.runs["false_sold_outs"]).all()


def test_cli_plan_prints_evidence_and_answer(tmp_path, capsys):
    code = main(["plan", "--peak", "25000", "--p99", "0.01", "--stock", "100000", *SMALL, "--sizes", "100",
                 "--partitions-per-node", "2", "--max-shards", "8", "--replications", "2", "--quiet",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "evidence" in out and "answer: peak 25,000 req/s, p99 <= 10 ms, stock 100,000: " in out
    code = main(["plan", "--peak", "25000", "--p99", "0.01", "--stock", "100000", *SMALL, "--sizes", "100",
                 "--partitions-per-node", "2", "--max-shards", "2", "--replications", "2", "--quiet",
                 "--out", str(tmp_path)])
    assert code == 1 and "no candidate up to 2 shards meets the SLO" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--peak", "0", "--p99", "0.05"], "--peak must be > 0"),
    (["--peak", "1000", "--p99", "-1"], "--p99 must be > 0"),
    (["--peak", "1000", "--p99", "0.05", "--stock", "0"], "--stock must be >= 1"),
])
def test_bad_plan_input_is_one_line(args, message, capsys):
    assert main(["plan", *args]) == 2
    assert message in capsys.readouterr().err


def test_planner_needs_the_sharded_strategy(monkeypatch):
    monkeypatch.delitem(STRATEGIES, "sharded")
    with pytest.raises(ScenarioError, match="flashsim plan needs the 'sharded' strategy"):
        plan(1000, 0.05)


def test_the_slo_can_be_on_successful_buyers_only(tmp_path, capsys):
    # stock 2,000 sells out within the 0.1 s: sold-out answers then weigh on the p99 of all buyers
    args = ["plan", "--peak", "25000", "--p99", "0.01", "--stock", "2000", *SMALL, "--sizes", "100",
            "--partitions-per-node", "2", "--max-shards", "8", "--replications", "2", "--quiet", "--out", str(tmp_path)]
    main([*args, "--of", "ok"])
    out = capsys.readouterr().out
    assert "p99 (successful buyers) <= 10 ms, stock 2,000" in out
    runs = pd.read_parquet(next(tmp_path.glob("plan/*/runs.parquet")))
    evidence = pd.read_csv(next(tmp_path.glob("plan/*/evidence.csv")))
    worst_ok = runs.groupby("redis.nodes")["ok_p99"].max()
    assert (evidence.set_index("shards")["p99_worst"] == worst_ok.loc[evidence["shards"]].to_numpy()).all()
    assert main([*args, "--of", "some"]) == 2
