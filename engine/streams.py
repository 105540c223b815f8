"""Random streams: one numpy Generator per component, all from one seed.

``SeedSequence(seed).spawn(len(STREAMS))`` gives each named component its own
independent stream, so the arrival stream depends only on the seed and the
workload (common random numbers across strategies), and adding a random draw
in one component never shifts another's numbers. No global RNG anywhere.
"""

from __future__ import annotations

import numpy as np

# Order is part of the reproducibility contract: append, never reorder.
STREAMS = ("arrivals", "qty", "think", "network", "nodes", "strategy", "db", "mq", "faults", "app", "routing",
           "client", "retry")


class Uniforms:
    """``rng.random()`` one number at a time, drawn from ``rng`` in blocks: the same numbers, in the same order.

    numpy's ``Generator.random()`` costs about 0.5 us a call here, a tenth of a
    sharded request's strategy-side CPU; ``random(n)`` gives exactly the next
    ``n`` numbers of the same stream, so every consumer of ``rng`` must draw
    through one shared instance (a second one, or a direct ``rng.random()``,
    would take numbers out of order). :meth:`clear` drops the drawn block (after
    the generator's state is replaced).
    """

    BLOCK = 256
    __slots__ = ("rng", "_block", "_next")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self._block: list[float] = []
        self._next = 0

    def __call__(self) -> float:
        i = self._next
        if i == len(self._block):
            self._block = self.rng.random(self.BLOCK).tolist()
            i = 0
        self._next = i + 1
        return self._block[i]

    def clear(self) -> None:
        self._block, self._next = [], 0


class Streams:
    def __init__(self, seed: int):
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer (got {seed!r})")
        self.seed = int(seed)
        children = np.random.SeedSequence(self.seed).spawn(len(STREAMS))
        self._children = dict(zip(STREAMS, children))

    def generator(self, name: str) -> np.random.Generator:
        """A fresh Generator for component ``name`` (same name, same numbers)."""
        return np.random.default_rng(self._children[name])

    def generators(self, name: str, count: int) -> list[np.random.Generator]:
        """``count`` independent Generators for the instances of one component (e.g. nodes)."""
        seq = np.random.SeedSequence(
            entropy=self._children[name].entropy, spawn_key=self._children[name].spawn_key + (1,)
        )
        return [np.random.default_rng(child) for child in seq.spawn(count)]
