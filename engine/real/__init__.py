"""Real mode: the same engine generators driven against real servers.

The only engine package allowed to import ``redis`` and database drivers.
``run_real(scenario, seed, strategy, RealOptions(...))`` returns the same
``Result`` as ``sim.world.simulate``; :class:`LocalCluster` starts a throwaway
Redis Cluster on loopback ports.
"""

from __future__ import annotations

from engine.real.run import RealOptions, run_real
from engine.real.servers import NamespaceInUse
from engine.real.target import RedisTarget, TargetError

__all__ = ["NamespaceInUse", "RealOptions", "RedisTarget", "TargetError", "run_real"]
