"""The ``gate`` scenario section: admission control per app instance (off by default).

Each app instance holds a token bucket (``rate`` tokens per second, at most
``burst`` of them, full at the start) and a FIFO waiting room of ``room``
places. A buyer that reaches its instance takes a token, or waits in the room
for one (at most ``max_wait`` seconds), or is refused by the gate. See
docs/gate.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.fields import doc, require


@dataclass(frozen=True)
class GateConfig:
    rate: float = doc(0.0, "admission tokens per second per app instance (0 or inf: no gate, every buyer goes "
                           "straight to the strategy)")
    burst: int = doc(1, "token bucket size: tokens an instance can bank while idle (the bucket starts full)")
    room: int = doc(0, "waiting-room places per instance: a buyer with no token waits there, first come first "
                       "served (0: refused at once when no token is left)")
    max_wait: float = doc(0.5, "seconds a buyer may wait in the room; one whose token would come later is refused "
                               "after waiting that long (keep it below workload.timeout)")

    def __post_init__(self) -> None:
        require(not math.isnan(self.rate) and self.rate >= 0, f"gate.rate must be >= 0 (got {self.rate})")
        require(self.burst >= 1, f"gate.burst must be >= 1 (got {self.burst})")
        require(self.room >= 0, f"gate.room must be >= 0 (got {self.room})")
        require(not math.isnan(self.max_wait) and self.max_wait >= 0,
                f"gate.max_wait must be >= 0 (got {self.max_wait})")

    @property
    def on(self) -> bool:
        """True when the gate admits at a finite rate (else it lets everyone through and is not built)."""
        return 0 < self.rate < math.inf
