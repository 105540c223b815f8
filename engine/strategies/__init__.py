"""The strategies the bench compares, by name."""

from __future__ import annotations

from .base import Strategy
from .db_batched import DbBatched
from .db_conditional import DbConditional
from .db_optimistic import DbOptimistic
from .db_pessimistic import DbPessimistic
from .sharded import Sharded
from .single_redis import SingleRedis

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
