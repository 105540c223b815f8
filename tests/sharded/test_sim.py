"""The sharded strategy in the simulator: scaling, refusals while servable, conservation, skew.

One small flash sale, scaled down so each run takes about a second: Redis
scripts cost 1 ms (1,000 ops/s per node), 9,000 buyers arrive over 0.75 s
(12,000/s: 1.5x what 8 nodes can serve, 12x one node) for 4,800 units over
16 partitions, a third of the stock left in the pool for injections.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from engine.scenario import Scenario
from engine.strategies import STRATEGIES
from sim.world import simulate

SALE = [
    "strategy=sharded", "sale.stock=4800", "workload.buyers=9000", "workload.window=0.75",
    'redis.service.default={kind="lognormal", mean=0.001, cv=0.3}',
    "sharded.partitions=16", "sharded.subdomain_size=100", "sharded.threshold=30",
    "sharded.preallocation=200", "sharded.injection=70", "sharded.refresh_interval=0.25",
]


@functools.cache
def run(nodes: int, *extra: str):
    return simulate(Scenario().with_overrides([*SALE, f"redis.nodes={nodes}", *extra]), seed=1)


def test_sharded_is_one_of_the_compared_strategies():
    assert "sharded" in STRATEGIES


def test_goodput_with_8_nodes_is_at_least_6x_one_node():
    one, eight = run(1).summary, run(8).summary
    assert one["violations"] == 0 and eight["violations"] == 0
    assert 900 < one["goodput"] <= 1100  # one node: its capacity, 1,000 scripts/s
    assert eight["goodput"] >= 6 * one["goodput"]
    assert eight["sold"] == 4800 and eight["time_to_sellout"] < 1.0


def test_no_buyer_refused_while_servable_with_or_without_fallback():
    with_fallback = run(8).summary
    assert with_fallback["refused_servable"] == 0 and with_fallback["partition_refusals"] > 0
    without = run(8, "sharded.fallback=0").summary
    assert without["refused_servable"] == 0 and without["false_sold_outs"] == 0
    assert without["bound_waits"] > 0  # a refused buyer waits for news instead of hearing "sold out"
    assert without["sold"] == with_fallback["sold"] == 4800


def test_stock_is_conserved_at_every_sampled_instant():
    result = run(8)
    timeline = result.timeline.fillna(0)
    assert len(timeline) > 50
    held = timeline.filter(regex=r"^(pool|p\d+\.[ab])$").sum(axis=1)
    in_flight = timeline.filter(regex=r"^in_flight:").sum(axis=1)
    assert ((timeline["sold"] + held + in_flight) == 4800).all()
    assert (timeline.filter(regex=r"^in_flight:").to_numpy() > 0).any()  # injections were caught mid-way
    assert result.summary["injections"] > 0 and result.summary["switches"] > 0


def test_skew_is_bounded_by_the_sub_domain_size_and_balanced_placement():
    result = run(8)
    subs = result.timeline.filter(regex=r"^p\d+\.[ab]$").to_numpy()
    assert subs.max() <= 100  # no sub-domain ever holds more than subdomain_size
    assert result.summary["skew"] < 1.3  # max/mean Redis ops per node
    utils = [result.summary[f"util_node{k}"] for k in range(8)]
    assert max(utils) / np.mean(utils) < 1.3
    hashed = run(8, "sharded.placement=hash").summary
    assert hashed["skew"] > result.summary["skew"]  # CRC16 alone puts partitions unevenly


def test_events_record_switches_injections_and_removals():
    result = run(8)
    kinds = set(result.events["kind"])
    assert {"switch", "injection", "removed"} <= kinds
    mine = result.events[result.events["kind"].isin(["switch", "injection", "removed", "retire"])]
    assert (mine["t"].diff().dropna() >= 0).all()  # noted as they happen, in time order
    assert len(mine[mine["kind"] == "injection"]) == result.summary["injections"]


@pytest.mark.parametrize("give_back", [False, True])
def test_stranded_stock_with_and_without_return_to_pool(give_back):
    flag = str(give_back).lower()
    result = run(8, "workload.buyers=2000", "workload.qty={low=1, high=3}", f"sharded.return_stranded={flag}")
    summary = result.summary
    assert summary["violations"] == 0 and summary["sold"] < 4800  # too few buyers: stock is left
    assert summary["stranded"] > 0  # left in partitions when the buyers stop
    in_partitions = sum(v for k, v in result.inventory.holders.items() if k != "pool")
    if give_back:
        assert in_partitions == 0 and summary["returned_units"] >= summary["stranded"]
    else:
        assert in_partitions == summary["stranded"] and summary["returned_units"] == 0


def test_experiment_figures_draw_from_real_runs(tmp_path):
    """The experiment's plotting code, fed with runs from this file (the sweep itself is too long for a test)."""
    import sys
    from pathlib import Path

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
    import sharded_scaling as experiment

    rows = [experiment.row(run(n), strategy="sharded", load="flash sale", nodes=n, ideal=n * 1000.0) for n in (1, 8)]
    table = pd.DataFrame(rows)
    experiment.plot_scaling(table, tmp_path / "scaling.png")
    experiment.plot_timeline(run(8), tmp_path / "timeline.png")
    stale = pd.DataFrame([experiment.row(run(8), nodes=8, refresh_interval=0.25),
                          experiment.row(run(8, "sharded.fallback=0"), nodes=8, refresh_interval=1.0)])
    experiment.plot_staleness(stale, tmp_path / "staleness.png")
    for name in ("scaling.png", "timeline.png", "staleness.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    scenario = experiment.sale(16, quick=True)
    assert scenario.sharded.preallocation * scenario.sharded.partitions < scenario.sale.stock  # the pool keeps some
