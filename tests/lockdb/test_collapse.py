"""The collapse of one hot row under pessimistic locking, on a small fast sweep.

Uses the experiment's own code (experiments/db_collapse.py), so the figure and
this assertion come from the same sweep.
"""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "experiments" / "db_collapse.py"
spec = importlib.util.spec_from_file_location("db_collapse", PATH)
db_collapse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(db_collapse)

RATES = (150, 300, 450, 600, 800, 1200, 2400, 4800)


@pytest.fixture(scope="module")
def curve():
    return db_collapse.sweep([("db_pessimistic", "db_pessimistic", ())], RATES, duration=1.0, seed=0)


def test_pessimistic_rises_peaks_and_collapses(curve):
    goodput = curve["goodput"].tolist()
    peak = max(goodput)
    at = goodput.index(peak)
    assert 0 < at < len(RATES) - 2  # an interior peak, with room to fall
    assert goodput[:at + 1] == sorted(goodput[:at + 1])  # rises to the peak
    assert 350 < peak < 800  # the hot row's few hundred TPS
    row = db_collapse.peaks(curve).iloc[0]
    assert row["peak_at"] == RATES[at] and row["goodput_at_4x"] < 0.5 * peak  # 4x the load: collapse
    assert goodput[-1] < 0.25 * peak


def test_the_cause_is_visible(curve):
    low, high = curve.iloc[0], curve.iloc[-1]
    assert low["timeout"] == 0 and low["db_abandoned"] == 0 and low["db_replies_to_gone"] == 0
    assert high["timeout"] > 0.8 * high["requests"]  # buyers gave up waiting ...
    assert high["db_abandoned"] > 0  # ... while the row kept working for them
    assert high["db_replies_to_gone"] >= high["db_abandoned"]
    assert high["db_lock_wait_mean"] > 100 * max(low["db_lock_wait_mean"], 1e-4)
    assert (curve["violations"] == 0).all()


def test_the_experiment_writes_its_figure(tmp_path):
    table = db_collapse.sweep([("db_conditional", "db_conditional", ())], (200, 3200), duration=0.3)
    db_collapse.plot(table, tmp_path / "g.png", 0.3)
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_defaults_land_on_the_public_hot_row_figures():
    # stock MySQL, one hot row, high concurrency: ~500-600 TPS
    assert 450 < db_collapse.hot_row_tps("db_conditional", 1000) < 650
    # fewer connections: faster (less deadlock-detection work per wait)
    assert db_collapse.hot_row_tps("db_conditional", 64) > 1000
    # AliSQL's inventory hint: up to ~31,000 TPS on one row
    assert 25_000 < db_collapse.hot_row_tps("db_batched", 1000, duration=1.5, warmup=0.5) < 37_000


def test_capping_row_concurrency_and_failing_fast_removes_the_collapse():
    # the same overload (4x the stock peak), with 100 connections that give up on the pool after 0.1 s:
    # the row keeps serving live buyers at capacity and sheds the rest as fast pool-timeout errors
    lever = ("pool 100, fail fast", "db_pessimistic", ("db.pool_size=25", "db.acquire_timeout=0.1"))  # 4 instances x 25
    curve = db_collapse.sweep([lever], (2800,), duration=1.0)
    row = curve.iloc[0]
    assert row["goodput"] > 550 and row["timeout"] == 0 and row["db_pool_timeouts"] > 1000
