"""The strategies the bench compares, by name."""

from __future__ import annotations

from .base import Strategy
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

__all__ = ["STRATEGIES", "Strategy", "register", "strategy_class"]
