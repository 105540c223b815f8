"""Confidence intervals over replications, and adding replications until they are tight.

A flash sale is a terminating simulation: one run is one sample, so a figure is
reported as the mean over independent replications with a 95 % Student-t
interval (``mean ± t(0.975, n-1) · s / √n``). scipy is not a dependency, so the
t quantile is computed here from the regularized incomplete beta function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` replications and the half-width of its confidence interval."""

    mean: float
    half_width: float
    n: int
    std: float
    level: float = LEVEL

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    @property
    def relative(self) -> float:
        """Half-width as a fraction of the mean (inf when the mean is 0)."""
        if self.mean == 0:
            return 0.0 if self.half_width == 0 else math.inf
        return abs(self.half_width / self.mean)

    def met(self, target: float, relative: bool) -> bool:
        """True when the interval is at least as tight as ``target``."""
        width = self.relative if relative else self.half_width
        return self.n >= 2 and width <= target


def confidence_interval(values: Iterable[float], level: float = LEVEL) -> Interval:
    """Student-t interval of the mean; NaN values are dropped, n < 2 gives an infinite half-width."""
    data = np.asarray([v for v in values if v is not None], dtype=float)
    data = data[~np.isnan(data)]
    n = len(data)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan, level)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, math.inf, 1, math.nan, level)
    std = float(data.std(ddof=1))
    return Interval(mean, t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n), n, std, level)


def summarize_points(runs: pd.DataFrame, metrics: Sequence[str] | None = None,
                     by: Sequence[str] | None = None, level: float = LEVEL) -> pd.DataFrame:
    """One row per sweep point: ``<metric>_mean``, ``_ci`` (half-width), ``_low``, ``_high`` and ``n``.

    ``by`` defaults to the point's identity: ``point_id``, ``strategy`` and the
    varied parameters (every column that is neither a metric nor run bookkeeping).
    """
    if metrics is None:
        metrics = [c for c in runs.columns if c not in _BOOKKEEPING and c not in (by or ())
                   and pd.api.types.is_numeric_dtype(runs[c]) and not _is_param(c)]
    if by is None:
        by = [c for c in runs.columns if c in ("point_id", "strategy") or _is_param(c)]
    rows = []
    for key, group in runs.groupby(list(by), sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row["n"] = len(group)
        for metric in metrics:
            interval = confidence_interval(group[metric].to_numpy(dtype=float), level)
            row[f"{metric}_mean"] = interval.mean
            row[f"{metric}_ci"] = interval.half_width
            row[f"{metric}_low"] = interval.low
            row[f"{metric}_high"] = interval.high
        rows.append(row)
    return pd.DataFrame(rows)


# Columns of a runs table that describe the run rather than measure it.
_BOOKKEEPING = ("run_key", "point_id", "strategy", "replication", "seed")


def _is_param(column: str) -> bool:
    """Varied scenario keys are dotted (``workload.rate``); metrics never are."""
    return "." in column


def replicate_until(run: Callable[[int], float], target: float, *, relative: bool = True,
                    min_replications: int = 3, max_replications: int = 30,
                    level: float = LEVEL) -> tuple[list[float], Interval]:
    """Call ``run(replication)`` for 0, 1, 2, ... until the interval is tight enough.

    Stops when the half-width is <= ``target`` (a fraction of the mean when
    ``relative``) after at least ``min_replications``, or when the budget
    ``max_replications`` is spent; returns the values and the final interval,
    whose :meth:`Interval.met` says which of the two happened.
    """
    if not 2 <= min_replications <= max_replications:
        raise ValueError(f"need 2 <= min_replications <= max_replications (got {min_replications}, {max_replications})")
    if not target > 0:
        raise ValueError(f"target half-width must be > 0 (got {target})")
    values: list[float] = []
    interval = confidence_interval(values, level)
    while len(values) < max_replications:
        values.append(float(run(len(values))))
        if len(values) >= min_replications:
            interval = confidence_interval(values, level)
            if interval.met(target, relative):
                break
    return values, confidence_interval(values, level)


# ---------------------------------------------------------------- Student t
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (e.g. 0.975, 4 -> 2.776)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) (got {p})")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0 (got {df})")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # bracket, then bisect: monotone and plenty fast for a report
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t, through I_x(df/2, 1/2) with x = df / (df + t²)."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2, 0.5, x)
    return 1 - tail if t > 0 else tail


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h
