"""The strategies the bench compares, by name."""

from __future__ import annotations

from engine.counter.strategy import SingleRedis
from engine.lockdb.batched import DbBatched
from engine.lockdb.conditional import DbConditional
from engine.lockdb.optimistic import DbOptimistic
from engine.lockdb.pessimistic import DbPessimistic
from engine.sharded.strategy import Sharded
from engine.strategy import Strategy

STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    if cls.name in STRATEGIES:
        raise ValueError(f"strategy {cls.name!r} registered twice")
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; choose from: {', '.join(STRATEGIES)}") from None


register(SingleRedis)
register(Sharded)
for _db in (DbPessimistic, DbOptimistic, DbConditional, DbBatched):
    register(_db)

__all__ = ["STRATEGIES", "Strategy", "register", "strategy_class"]
