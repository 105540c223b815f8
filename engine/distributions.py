"""Samplers for :class:`engine.scenario.Dist`: cheap per draw, numpy underneath.

Draws come in blocks from the component's own Generator, so a sampler costs
one C-level ``next`` per call instead of one numpy call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import partial
from itertools import chain

import numpy as np

from engine.scenario import Dist

BLOCK = 4096


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the underlying normal for a lognormal with this mean and cv."""
    sigma2 = math.log1p(cv * cv)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


def draw(dist: Dist, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` draws of ``dist`` as a float array."""
    if dist.is_constant or dist.mean == 0:
        return np.full(size, dist.mean)
    if dist.kind == "exponential":
        return rng.exponential(dist.mean, size)
    mu, sigma = lognormal_params(dist.mean, dist.cv)
    return rng.lognormal(mu, sigma, size)


def sampler(dist: Dist, rng: np.random.Generator) -> Callable[[], float]:
    """A zero-argument callable returning one draw per call."""
    if dist.is_constant or dist.mean == 0:
        value = float(dist.mean)
        return lambda: value
    # next() over a chain of blocks: each call stays in C (no Python frame per draw)
    return partial(next, chain.from_iterable(_blocks(dist, rng)))


def _blocks(dist: Dist, rng: np.random.Generator) -> Iterator[list[float]]:
    while True:
        yield draw(dist, rng, BLOCK).tolist()
