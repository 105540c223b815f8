"""Samplers for :class:`engine.scenario.Dist`: cheap per draw, numpy underneath.

Draws come in blocks from the component's own Generator, so a sampler costs
one list index per call instead of one numpy call.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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
    return _Blocks(dist, rng)


class _Blocks:
    __slots__ = ("dist", "rng", "buffer", "index")

    def __init__(self, dist: Dist, rng: np.random.Generator):
        self.dist = dist
        self.rng = rng
        self.buffer: list[float] = []
        self.index = 0

    def __call__(self) -> float:
        i = self.index
        if i == len(self.buffer):
            self.buffer = draw(self.dist, self.rng, BLOCK).tolist()
            i = 0
        self.index = i + 1
        return self.buffer[i]
