"""The ``db`` scenario section: the MySQL/InnoDB world of the lock-based strategies.

Defaults are stock MySQL/InnoDB and HikariCP settings where those exist, and
otherwise calibrated so the simulated hot row lands on public figures (see the
README section "Lock-based DB strategies" for the sources):

- a single hot row under stock MySQL manages roughly 500-600 TPS at high
  concurrency (deadlock detection on, ``innodb_flush_log_at_trx_commit=1``);
- AliSQL's inventory hint (hot-row group commit) reports up to ~31,000 TPS on
  one row;
- LAN round trip app <-> DB 0.2-0.5 ms (``network.db`` is the one-way hop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from engine.fields import Dist, choice, doc, require


def _default_service() -> dict[str, Dist]:
    return {
        "default": Dist("lognormal", 4.0e-5, 0.3),
        "select_stock": Dist("lognormal", 2.5e-5, 0.3),
        "select_stock_for_update": Dist("lognormal", 3.0e-5, 0.3),
    }


@dataclass(frozen=True)
class DbConfig:
    RETRY: ClassVar[tuple[str, ...]] = ("none", "immediate", "backoff")
    COMMIT_PATHS: ClassVar[tuple[str, ...]] = ("binlog_sync", "group_commit")

    pool_size: int = doc(250, "app-side connections to MySQL per app instance (the fleet holds app.instances x "
                              "this: 4 x 250 = 1000 by default, the figure the hot-row defaults were calibrated at)")
    acquire_timeout: float = doc(30.0, "seconds to wait for a pooled connection (HikariCP connectionTimeout: 30 s)")
    threads: int = doc(64, "statements the server executes at once (thread pool / innodb_thread_concurrency)")
    service: dict[str, Dist] = doc(
        _default_service,
        "server CPU time per statement name; 'default' covers the rest (point PK access: tens of us)",
        factory=True,
    )
    commit_path: str = doc(
        "binlog_sync",
        "what a writing commit waits for: binlog_sync (the log flush db.commit, row locks held: binary log on, "
        "sync_binlog=1) | group_commit (locks released first, then the reply waits for the next grouped "
        "redo-log flush: InnoDB with the binary log off)")
    commit: Dist = doc(lambda: Dist("lognormal", 8.0e-4, 0.3),
                       "log flush of a writing commit (binlog_sync: with row locks held, redo + binlog, "
                       "flush_log_at_trx_commit=1, sync_binlog=1; group_commit: one flush per group)",
                       factory=True)
    rollback: Dist = doc(lambda: Dist("deterministic", 2.0e-5), "rollback cost", factory=True)
    begin: Dist = doc(lambda: Dist("deterministic", 1.0e-5), "BEGIN cost (one round trip as well)", factory=True)
    lock_wait_timeout: float = doc(50.0, "seconds a statement waits for a row lock (innodb_lock_wait_timeout: 50)")
    deadlock_detect: bool = doc(True, "search the waits-for graph on every lock wait (innodb_deadlock_detect: ON)")
    detect_cost: float = doc(
        1.8e-6,
        "lock_sys mutex time per transaction already waiting on the row, paid by each new waiter "
        "(calibrated: ~550 TPS for one hot row at 1000 connections)",
    )
    grant_cost: float = doc(5.0e-6, "lock_sys mutex time to hand a released row lock to the next waiter")
    retry: str = doc("none", "client retry on a DB error (lock-wait timeout, deadlock, pool timeout): none, immediate or backoff")
    retry_max: int = doc(3, "retries per request after a DB error")
    retry_base: float = doc(0.005, "backoff: first delay, seconds; doubles per retry, full jitter")
    retry_cap: float = doc(0.2, "backoff: largest delay, seconds")
    optimistic_max: int = doc(5, "db_optimistic: retries after a version conflict")
    optimistic_base: float = doc(0.001, "db_optimistic: first backoff after a conflict, seconds; doubles, full jitter (0: immediate)")
    batch_size: int = doc(64, "db_batched: most updates in one hot-row group (one lock hand-off, one flush)")
    batch_window: float = doc(1.0e-4, "db_batched: seconds a group leader waits for followers before taking the lock")
    group_member_cost: float = doc(2.0e-5, "db_batched: server time per update applied inside a group")
    read_cache: bool = doc(False, "db_* strategies: check stock in a Redis read cache first; decrement it after each commit")

    def __post_init__(self) -> None:
        require(self.pool_size >= 1, f"db.pool_size must be >= 1 (got {self.pool_size})")
        require(self.threads >= 1, f"db.threads must be >= 1 (got {self.threads})")
        if "default" not in self.service:  # a partial table adds to the defaults, never drops them
            object.__setattr__(self, "service", {**_default_service(), **self.service})
        for name, value in (("acquire_timeout", self.acquire_timeout), ("lock_wait_timeout", self.lock_wait_timeout)):
            require(value > 0 and not math.isnan(value), f"db.{name} must be > 0 (got {value})")
        for name, value in (("detect_cost", self.detect_cost), ("grant_cost", self.grant_cost),
                            ("retry_base", self.retry_base), ("retry_cap", self.retry_cap),
                            ("optimistic_base", self.optimistic_base), ("batch_window", self.batch_window),
                            ("group_member_cost", self.group_member_cost)):
            require(math.isfinite(value) and value >= 0, f"db.{name} must be >= 0 (got {value})")
        choice("db.retry", self.retry, self.RETRY)
        choice("db.commit_path", self.commit_path, self.COMMIT_PATHS)
        require(self.retry_max >= 0, f"db.retry_max must be >= 0 (got {self.retry_max})")
        require(self.optimistic_max >= 0, f"db.optimistic_max must be >= 0 (got {self.optimistic_max})")
        require(self.batch_size >= 1, f"db.batch_size must be >= 1 (got {self.batch_size})")

    def service_of(self, statement: str) -> Dist:
        return self.service.get(statement, self.service["default"])
