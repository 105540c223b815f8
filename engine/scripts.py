"""Atomic Redis steps: each one a Lua script and its Python twin.

The Lua file is what a real Redis runs (EVALSHA); the twin is its reference
semantics, applied by the simulator to an in-memory ``dict`` store. A
differential test on a real Redis proves the two agree on random inputs.

A twin has the signature ``twin(store, keys, args) -> reply`` where ``store``
maps key -> ``int`` (a Redis string holding an integer), ``dict`` (a hash) or
``list`` (a list), ``args`` are the script's ARGV as Python values, and the
reply is what the Lua script returns, with Redis' conversion applied (Lua
tables become lists, integers stay integers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

Store = dict[str, Any]
Twin = Callable[[Store, tuple, tuple], Any]


@dataclass(frozen=True)
class Script:
    name: str
    lua: str
    twin: Twin


REGISTRY: dict[str, Script] = {}
"""Every script registered so far; a family registers its scripts when its twins module is imported
(:mod:`engine.strategies` imports every family)."""

# Replies shared by the stock-moving scripts of every family.
SOLD_OUT = -1
BAD_QTY = -2
NO_STOCK_KEY = -3


def as_int(value: object) -> int | None:
    """Lua's ``tonumber`` followed by an integrality check, for the inputs we send."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, (str, bytes)):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def lua_number(value: object) -> int | float | None:
    """Lua's ``tonumber`` for the inputs we send: an integral number as ``int``, else ``float``; None for junk.

    Where a script writes a number into a name, Lua formats it with ``%.14g``: an
    integral value has no ".0", which an ``int`` here reproduces (``f"pend{n}"``).
    """
    if value.__class__ is int:
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, (str, bytes)):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return int(number) if number.is_integer() else number


def register(name: str, twin: Twin, family: str) -> Script:
    """Register ``<family>/scripts/<name>.lua`` with its Python twin.

    ``family`` is the package that owns the script (pass ``__package__`` from
    its twins module): the Lua file lives in that package's ``scripts/`` folder.
    """
    if name in REGISTRY:
        raise ValueError(f"script {name!r} registered twice")
    lua = resources.files(family).joinpath("scripts", f"{name}.lua").read_text(encoding="utf-8")
    script = REGISTRY[name] = Script(name, lua, twin)
    return script


def get(name: str) -> Script:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown script {name!r}; known: {sorted(REGISTRY)}") from None
