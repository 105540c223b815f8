"""Admission control in front of the strategy: a token bucket and a waiting room per app instance.

``config.py`` is the ``gate`` scenario section; ``admission.py`` the decision
logic (sans-IO: the interpreters pass the time in and act on the ticket).
See docs/gate.md.
"""

from engine.gate.admission import Gate, GateStats, Ticket
from engine.gate.config import GateConfig

__all__ = ["Gate", "GateConfig", "GateStats", "Ticket"]
