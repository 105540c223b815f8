"""flashsim's engine: inventory logic written once, with no I/O.

Strategies are generators that yield operations (:mod:`engine.ops`); the
simulator (:mod:`sim`) and the real driver (:mod:`engine.real`) interpret
them under the same task rules (:mod:`engine.tasks`), and
:mod:`engine.testing` is the serial reference interpreter tests run them on.
Nothing here imports simpy, and only the real driver imports redis or a
database client.
"""

from engine.model import Inventory, Outcome, Request
from engine.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["Inventory", "Outcome", "Request", "Scenario", "ScenarioError", "load_scenario"]
