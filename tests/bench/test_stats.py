"""Student-t intervals and adding replications until the interval is tight."""

import math

import numpy as np
import pandas as pd
import pytest

from sim.bench import confidence_interval, replicate_until, summarize_points, t_quantile
from sim.bench.stats import t_cdf

# Two-sided 95 % (p = 0.975) and 99 % (p = 0.995) critical values from a printed t table.
TABLE = [(1, 0.975, 12.706), (2, 0.975, 4.303), (3, 0.975, 3.182), (4, 0.975, 2.776), (9, 0.975, 2.262),
         (19, 0.975, 2.093), (29, 0.975, 2.045), (120, 0.975, 1.980), (5, 0.995, 4.032), (10, 0.995, 3.169)]


@pytest.mark.parametrize("df, p, expected", TABLE)
def test_t_quantile_matches_the_table(df, p, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-3)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-3)
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-10)


def test_t_tends_to_the_normal():
    assert t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)
    assert t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_interval_by_hand():
    values = [10.0, 12.0, 14.0]
    interval = confidence_interval(values)
    s = np.std(values, ddof=1)
    assert interval.mean == 12.0 and interval.n == 3
    assert interval.half_width == pytest.approx(4.303 * s / math.sqrt(3), rel=1e-3)
    assert (interval.low, interval.high) == pytest.approx((12 - interval.half_width, 12 + interval.half_width))
    assert interval.relative == pytest.approx(interval.half_width / 12)
    assert math.isinf(confidence_interval([5.0]).half_width)
    assert confidence_interval([1.0, float("nan"), 3.0]).n == 2
    assert confidence_interval([7.0, 7.0]).met(0.001, relative=True)


def test_ninety_five_percent_intervals_cover_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    trials = 4000
    samples = rng.exponential(2.0, size=(trials, 30))  # skewed, like latencies
    covered = sum(confidence_interval(row).low <= 2.0 <= confidence_interval(row).high for row in samples)
    assert 0.92 <= covered / trials <= 0.96  # exponential with n = 30: a little under 95 %, never far


def test_replicate_until_stops_at_the_target():
    rng = np.random.default_rng(7)
    draws = rng.normal(100.0, 5.0, 1000)
    calls = []

    def run(replication):
        calls.append(replication)
        return draws[replication]

    values, interval = replicate_until(run, 0.01, relative=True, min_replications=3, max_replications=200)
    assert calls == list(range(len(values)))
    assert interval.met(0.01, True) and interval.n >= 3
    shorter = confidence_interval(values[:-1])
    assert not shorter.met(0.01, True)  # it stopped at the first n that met the target


def test_replicate_until_respects_the_budget():
    values, interval = replicate_until(lambda r: float(r % 2) * 100, 0.001, min_replications=2, max_replications=6)
    assert len(values) == 6 and not interval.met(0.001, True)
    with pytest.raises(ValueError):
        replicate_until(lambda r: 1.0, 0.1, min_replications=1)


def test_summarize_points_groups_by_point_and_parameters():
    runs = pd.DataFrame({
        "run_key": ["a0", "a1", "b0", "b1"], "point_id": ["a", "a", "b", "b"], "strategy": ["s"] * 4,
        "workload.rate": [1, 1, 2, 2], "replication": [0, 1, 0, 1], "seed": [5, 6, 5, 6],
        "goodput": [10.0, 12.0, 20.0, 20.0],
    })
    points = summarize_points(runs)
    assert list(points["point_id"]) == ["a", "b"] and list(points["workload.rate"]) == [1, 2]
    assert "seed_mean" not in points and "replication_mean" not in points and "workload.rate_mean" not in points
    assert points.loc[0, "goodput_mean"] == 11.0
    assert points.loc[0, "goodput_ci"] == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2), rel=1e-3)
    assert points.loc[1, "goodput_ci"] == 0.0 and (points["n"] == 2).all()
