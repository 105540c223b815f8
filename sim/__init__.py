"""flashsim's simulator: engine strategies in SimPy time.

Public API::

    from sim import Scenario, simulate
    result = simulate(Scenario(), seed=1)
    result.summary["goodput"], result.requests, result.timeline
"""

from engine.result import Result
from engine.scenario import Scenario, ScenarioError, load_scenario
from sim.servers import (
    db,  # noqa: F401  (installs the simulated MySQL into sim.world.COMPONENTS)
    mq,  # noqa: F401  (installs the simulated message broker into sim.world.COMPONENTS)
)
from sim.world import simulate

__all__ = ["Result", "Scenario", "ScenarioError", "load_scenario", "simulate"]
