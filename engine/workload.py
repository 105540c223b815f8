"""Who arrives when: the arrival schedule of a scenario, from the arrivals stream only.

The schedule depends on the workload section and the seed, never on the
strategy, so every strategy in a comparison sees the same buyers at the same
instants (common random numbers). The real load generator replays the same
schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.scenario import Qty, Workload
from engine.streams import Streams


@dataclass(frozen=True)
class Schedule:
    """Open-loop arrivals: intended send times (sorted, seconds from sale start) and qty."""

    times: np.ndarray
    qty: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def draw_qty(qty: Qty, rng: np.random.Generator, size: int) -> np.ndarray:
    if qty.low == qty.high:
        return np.full(size, qty.low, dtype=np.int64)
    return rng.integers(qty.low, qty.high + 1, size, dtype=np.int64)


class QtyStream:
    """Units per request, one at a time, drawn in blocks (closed-loop users ask as they go)."""

    def __init__(self, qty: Qty, rng: np.random.Generator, block: int = 4096):
        self.qty = qty
        self.rng = rng
        self.block = block
        self._left: list[int] = []

    def __call__(self) -> int:
        if not self._left:
            self._left = draw_qty(self.qty, self.rng, self.block).tolist()[::-1]
        return self._left.pop()


def open_loop_schedule(workload: Workload, streams: Streams) -> Schedule:
    """Arrival times and qty for a ``burst`` or ``poisson`` workload."""
    rng = streams.generator("arrivals")
    if workload.kind == "burst":
        u = rng.random(workload.buyers)
        if workload.shape == "ramp":  # density 2t/W^2: rises linearly to the end of the window
            u = np.sqrt(u)
        times = np.sort(u * workload.window)
    elif workload.kind == "poisson":
        times = poisson_times(workload.rate, workload.duration, rng)
    else:
        raise ValueError(f"workload {workload.kind!r} is not open loop")
    return Schedule(times, draw_qty(workload.qty, streams.generator("qty"), len(times)))


def poisson_times(rate: float, duration: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson arrival instants in [0, duration), drawn as exponential gaps."""
    chunks = []
    t = 0.0
    chunk = max(1024, int(rate * duration * 1.05) + 64)
    while t < duration:
        gaps = rng.exponential(1.0 / rate, chunk)
        times = t + np.cumsum(gaps)
        chunks.append(times)
        t = float(times[-1])
    times = np.concatenate(chunks)
    return times[times < duration]
