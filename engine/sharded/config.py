"""The ``sharded`` scenario section: partitions, sub-domains, pool and registry knobs.

Stock is split over ``partitions`` partitions, each a pair of sub-domains (A/B)
on one Redis node; the rest waits in the pre-allocation pool and is injected
into a sub-domain when it runs low. ``subdomain_size`` caps what one
sub-domain can hold, so no partition ever holds more than twice that: this is
what bounds skew. Each app instance (``app.instances``) keeps its own registry
of the partitions, refreshed every ``refresh_interval`` seconds, so the
registry can be stale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from engine.fields import choice, doc, require


@dataclass(frozen=True)
class ShardedConfig:
    POLICIES: ClassVar[tuple[str, ...]] = ("random", "round_robin", "p2c", "p2c_load")
    PLACEMENTS: ClassVar[tuple[str, ...]] = ("balanced", "hash")

    partitions: int = doc(16, "sharded: stock partitions (each two sub-domains A/B on one Redis node)")
    placement: str = doc(
        "balanced",
        "sharded: balanced (hash tags chosen so partitions spread evenly over the nodes' slot ranges) "
        "| hash (tag {sku:pK} wherever its CRC16 slot lands)",
    )
    subdomain_size: int = doc(200, "sharded: most units one sub-domain may hold (bounds skew: a partition holds <= 2x)")
    threshold: int = doc(
        40, "sharded: below this the active sub-domain switches to the other and the idle one asks the pool for stock"
    )
    preallocation: int = doc(400, "sharded: units each partition takes from the pool at setup (A first, then B)")
    injection: int = doc(160, "sharded: units one refill asks the pool for (<= subdomain_size - threshold never overflows; excess goes back)")
    policy: str = doc("p2c", "sharded: partition selection: random | round_robin | p2c (more remaining stock of two) "
                             "| p2c_load (fewer outstanding requests of two)")
    fallback: int = doc(64, "sharded: other partitions tried after a sold-out answer (capped at partitions - 1; 0: none)")
    inflight_share: float = doc(
        0.5, "sharded: most of a partition's believed stock that requests in flight may claim (all apps); below 1 "
             "keeps node queues short so refills land before the stock runs out")
    refill_wait: float = doc(
        math.inf, "sharded: longest a request waits for a sufficient partition while the registry believes stock "
                  "remains (inf: until the client gives up; the buyer then times out instead of a false sold-out)")
    wait_step: float = doc(0.002, "sharded: first pause of a waiting request before it looks again (doubles, "
                                  "up to refresh_interval)")
    refresh_interval: float = doc(0.05, "sharded: seconds between registry refreshes (reads every partition + pool)")
    recovery_interval: float = doc(
        1.0, "sharded: seconds between recovery passes over each partition's two-step transfers; a transfer seen "
             "in flight for this long is completed (inf: no recovery)")
    return_stranded: bool = doc(
        True, "sharded: once the pool is empty, a partition holding less than a waiting buyer asks is retired and its "
              "units gathered into partition 0 (and every partition's leftover returns to the pool at the end)"
    )

    def __post_init__(self) -> None:
        require(1 <= self.partitions <= 4096, f"sharded.partitions must be in 1..4096 (got {self.partitions})")
        choice("sharded.placement", self.placement, self.PLACEMENTS)
        choice("sharded.policy", self.policy, self.POLICIES)
        require(self.subdomain_size >= 1, f"sharded.subdomain_size must be >= 1 (got {self.subdomain_size})")
        require(1 <= self.threshold <= self.subdomain_size,
                f"sharded.threshold must be in 1..subdomain_size={self.subdomain_size} (got {self.threshold})")
        require(0 <= self.preallocation <= 2 * self.subdomain_size,
                f"sharded.preallocation must be in 0..2*subdomain_size={2 * self.subdomain_size} "
                f"(got {self.preallocation})")
        require(self.injection >= 1, f"sharded.injection must be >= 1 (got {self.injection})")
        require(self.fallback >= 0, f"sharded.fallback must be >= 0 (got {self.fallback})")
        require(0 < self.inflight_share <= 1, f"sharded.inflight_share must be in (0, 1] (got {self.inflight_share})")
        require(self.refill_wait >= 0,
                f"sharded.refill_wait must be >= 0 (got {self.refill_wait})")
        require(math.isfinite(self.wait_step) and self.wait_step > 0,
                f"sharded.wait_step must be > 0 (got {self.wait_step})")
        require(self.recovery_interval > 0, f"sharded.recovery_interval must be > 0 (got {self.recovery_interval})")
        require(math.isfinite(self.refresh_interval) and self.refresh_interval > 0,
                f"sharded.refresh_interval must be > 0 (got {self.refresh_interval})")

    @property
    def fallback_tries(self) -> int:
        """Partitions tried after the first one, at most."""
        return min(self.fallback, self.partitions - 1)
