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


def register(name: str, twin: Twin) -> Script:
    """Register ``<name>.lua`` (next to this file) with its Python twin."""
    if name in REGISTRY:
        raise ValueError(f"script {name!r} registered twice")
    lua = resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
    script = REGISTRY[name] = Script(name, lua, twin)
    return script


def get(name: str) -> Script:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown script {name!r}; known: {sorted(REGISTRY)}") from None


from . import (  # noqa: E402
    db_cache,  # noqa: E402,F401  (registers the read-cache scripts of the db_* strategies)
    detail,  # noqa: E402,F401  (registers the detail-record scripts of the sync pipeline)
    partition,  # noqa: E402,F401  (registers the partition and pool scripts of the sharded strategy)
    stock,  # noqa: E402,F401  (registers the stock scripts)
)
