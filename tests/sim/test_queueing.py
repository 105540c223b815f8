"""The kernel against queueing theory: M/M/1 and M/D/1 at rho = 0.8.

One node, Poisson arrivals, no network delay, unlimited stock. Ten
independent replications; the mean latency of each is one observation, and the
95% Student-t interval over replications must lie within 3% of theory.
"""

import numpy as np
import pytest

from engine.scenario import Scenario
from sim import simulate

MU = 100_000.0  # service rate of the node: 10 us per script
LAMBDA = 80_000.0
REPS = 10
DURATION = 2.0  # 160k customers per replication


def _t_quantile(df: int) -> float:
    return {9: 2.262}[df]


def replicated_means(service_kind: str) -> np.ndarray:
    base = Scenario().with_overrides([
        "workload.kind=poisson", f"workload.rate={LAMBDA}", f"workload.duration={DURATION}", "workload.timeout=inf",
        "sale.stock=1000000000", "network.redis=0", f'redis.service.default={{kind="{service_kind}", mean={1 / MU}}}',
        "pipeline.enabled=false",  # the kernel alone: no detail records or sync scripts on the node
    ])
    return np.array([simulate(base, seed=seed).requests["latency"].mean() for seed in range(REPS)])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "theory"),
    [
        ("exponential", 1 / (MU - LAMBDA)),  # M/M/1 sojourn time
        ("deterministic", 1 / MU + (LAMBDA / MU) / (2 * MU * (1 - LAMBDA / MU))),  # M/D/1: service + P-K wait
    ],
)
def test_mean_latency_matches_theory(kind, theory):
    means = replicated_means(kind)
    centre = means.mean()
    half = _t_quantile(REPS - 1) * means.std(ddof=1) / np.sqrt(REPS)
    assert abs(centre - theory) / theory < 0.03, (centre, theory)
    assert centre - half - 0.03 * theory <= theory <= centre + half + 0.03 * theory
    assert half / theory < 0.03  # the interval itself is tight enough to mean something
