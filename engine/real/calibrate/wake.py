"""Idle wake-up: how much slower a request is when the machine was idle before it.

One closed-loop buyer (``single_redis``, no pipeline, one app instance) sends,
waits for the answer, thinks ``g`` seconds (exponential), sends again. With no
think time every process stays hot; with a think time the driver's worker and
the Redis server both sleep between requests, and on a virtual machine a
sleeping vCPU halts: waking it (and its cold caches) costs time that grows
with the gap. Measured on the machine of the shipped profile (2 vCPUs, Linux
6.18 guest), the median round trip was 0.20 ms hot, 0.28 ms after 0.2 ms of
think, 0.34 ms after 1 ms and 0.54 ms after 3 ms (2026-12-02).

Part of the excess over the hot median, ``E(g) = p50(g) - p50(0)``, is CPU:
an idle request wakes the event loop for its arrival, which a hot one does not
(``app.cpu_wakeup``, measured by :mod:`engine.real.calibrate.driver_cpu`). The
rest, ``E(g) - cpu_wakeup``, is fitted by least squares as
``base + per_idle * g`` over the gaps measured, and split
evenly between the two components that slept: the app instance's worker
(``app.wake``) and the Redis node (``redis.wake``) — the driver cannot tell
the two apart (a ``PING`` round trip would wake both as well). The delay is
capped at the fitted value at the longest gap measured (no extrapolation),
and gaps up to half the shortest think time measured add nothing.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from engine.real.run import RealOptions, run_real
from engine.real.target import RedisTarget, TargetError
from engine.scenario import Scenario

THINKS = (0.0, 0.25e-3, 0.5e-3, 1e-3, 2e-3, 3e-3)  # seconds; 0 is the hot reference


def _median_latency(target: RedisTarget, think: float, duration: float, namespace: str) -> float:
    dist = f"{{kind='exponential', mean={think!r}}}" if think > 0 else "{kind='deterministic', mean=0.0}"
    scenario = Scenario().with_overrides([
        "strategy=single_redis", "workload.kind=closed", "workload.users=1", f"workload.duration={duration!r}",
        f"workload.think={dist}", "workload.timeout=inf", "pipeline.enabled=false", "sale.stock=1000000000",
        "sale.soldout_flag=false", "redis.nodes=1", "app.instances=1",
    ])
    result = run_real(scenario, 0, "single_redis", RealOptions(target, namespace=namespace, sample_interval=3600.0))
    if not result.ok:
        raise TargetError(f"wake-up calibration run broke an invariant: {result.violations[0]}")
    q = result.requests
    latency = (q["t_done"] - q["t_arrival"]).to_numpy()
    if len(latency) < 20:
        raise TargetError(f"wake-up calibration: only {len(latency)} requests in {duration} s")
    return float(np.median(latency))


def fit(thinks: tuple[float, ...], medians: list[float], cpu_wakeup: float = 0.0) -> dict[str, float]:
    """The per-component wake-up (``after, base, per_idle, cap``) from hot and idle medians."""
    hot = medians[thinks.index(0.0)]
    gaps = np.array([g for g in thinks if g > 0])
    excess = np.array([m - hot - cpu_wakeup for g, m in zip(thinks, medians) if g > 0])
    if len(gaps) < 2:
        raise TargetError("wake-up calibration needs at least two think times above 0")
    slope, intercept = np.polyfit(gaps, excess, 1)
    slope, intercept = max(0.0, float(slope)), max(0.0, float(intercept))
    top = intercept + slope * float(gaps.max())
    return {"after": float(gaps.min()) / 2, "base": intercept / 2, "per_idle": slope / 2, "cap": top / 2}


def measure(target: RedisTarget, namespace: str, duration: float, rounds: int, cpu_wakeup: float = 0.0
            ) -> dict[str, Any]:
    """Median latency per think time (median over ``rounds`` alternated rounds) and the fitted wake-up."""
    samples: dict[float, list[float]] = {g: [] for g in THINKS}
    for round_ in range(rounds):
        for i, think in enumerate(THINKS):
            samples[think].append(_median_latency(target, think, duration, f"{namespace}-wake{round_}-{i}"))
    medians = [statistics.median(samples[g]) for g in THINKS]
    return {"thinks": list(THINKS), "p50": medians, "rounds": {str(g): samples[g] for g in THINKS},
            "cpu_wakeup": cpu_wakeup, "fit": fit(THINKS, medians, cpu_wakeup)}
