"""One machine under every server: ``host.cores`` CPU cores that Redis, the app tier and the DB share.

Without it (``host.cores = 0``) each server of the model has CPU of its own:
a Redis node is one thread, an app instance ``app.workers`` cores, the DB
``db.threads``. A test box runs them all on a few cores, and once their
demand together passes the cores they slow each other down: measured here
with ``experiments/real_burst.py``, a sharded burst on 3 masters asked for
about 2.7 cores' worth of CPU on a 2-core machine (load generator, pipeline
service and Redis together), and sold 0.5-0.7x what single_redis sold, where
the model with a CPU per server predicted more.

With ``host.cores = N``, a segment of CPU work (a Redis command's service, an
app segment, a DB statement) that may start at ``t`` on its own server also
needs one of the N cores for its whole cost: it takes the earliest gap of that
length from ``t`` on, on any core. Servers book at the current simulated time,
a queued segment for its future start, so the cores keep a calendar of booked
intervals (not just when each comes free: a queued app segment booked for
later must not hide the idle time before it). No preemption: an approximation
of the kernel's time sharing that keeps a saturated machine's throughput (one
core under an app worker and a Redis node serves 1 / (app + Redis) requests a
second, not 1 / max) and adds the waiting a busy one shows.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

INF = float("inf")


class Host:
    __slots__ = ("env", "cores", "busy", "segments", "waited", "wait_total", "wait_max")

    def __init__(self, cores: int, env: Any):
        if cores < 1:
            raise ValueError(f"a host needs at least one core (got {cores})")
        self.env = env  # for the current time: intervals that ended before it are forgotten
        self.cores: list[list[tuple[float, float]]] = [[] for _ in range(cores)]  # booked (start, end), sorted
        self.busy = 0.0
        self.segments = 0
        self.waited = 0  # segments that waited for a core
        self.wait_total = 0.0
        self.wait_max = 0.0

    def start(self, t: float, cost: float) -> float:
        """Book ``cost`` seconds of CPU on the core with the earliest gap from ``t``; return when it starts."""
        if cost <= 0.0:
            return t
        now = self.env.now
        cores = self.cores
        for booked in cores:  # forget what ended; then a core free at t for the whole cost: the common case
            drop = 0
            while drop < len(booked) and booked[drop][1] <= now:
                drop += 1
            if drop:
                del booked[:drop]
        for booked in cores:
            at = bisect_right(booked, (t, INF))
            if (at == 0 or booked[at - 1][1] <= t) and (at == len(booked) or booked[at][0] >= t + cost):
                booked.insert(at, (t, t + cost))
                self._count(t, t, cost)
                return t
        best, best_core = INF, cores[0]
        # first fit on each core, the least booked ahead first, given up once it cannot beat the best found
        starts = [(bisect_right(booked, (t, INF)), booked) for booked in cores]
        starts.sort(key=lambda pair: len(pair[1]) - pair[0])
        for at, booked in starts:
            begin = t if at == 0 or booked[at - 1][1] <= t else booked[at - 1][1]
            while at < len(booked) and booked[at][0] < begin + cost and begin < best:
                if booked[at][1] > begin:
                    begin = booked[at][1]
                at += 1
            if begin < best:
                best, best_core = begin, booked
        insort(best_core, (best, best + cost))
        self._count(t, best, cost)
        return best

    def _count(self, t: float, begin: float, cost: float) -> None:
        self.segments += 1
        self.busy += cost
        if begin > t:
            wait = begin - t
            self.waited += 1
            self.wait_total += wait
            if wait > self.wait_max:
                self.wait_max = wait

    def figures(self, t0: float, t_end: float) -> dict[str, float]:
        span = t_end - t0
        return {"host_util": self.busy / (len(self.cores) * span) if span > 0 else float("nan"),
                "host_wait_mean": self.wait_total / self.segments if self.segments else 0.0,
                "host_wait_max": self.wait_max}

    def reset_counters(self) -> None:
        self.busy = 0.0
        self.segments = 0
        self.waited = 0
        self.wait_total = 0.0
        self.wait_max = 0.0
