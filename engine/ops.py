"""Operations: the effects a strategy yields instead of doing I/O.

A strategy is a generator. It yields one of these small frozen values and the
interpreter (the SimPy world in :mod:`sim`, or the real driver) sends back the
result. The engine never reads a clock, never sleeps and never touches a socket.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Eval:
    """Run one registered script atomically on the node that owns ``keys[0]``.

    All keys must share one hash slot (a hash tag), as Redis Cluster demands.
    The reply is whatever the script returns (see :mod:`engine.scripts`).
    """

    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Now:
    """Ask the interpreter for the current time, in seconds."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Suspend this generator for ``seconds`` (>= 0)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start generator ``gen`` as an independent task and continue at once.

    A fire-and-forget job from inside a request (a flush, a refill); the reply
    is ``None`` and it costs no server round trip. Sim: a new interpreter task;
    real: a new task on the same event loop.
    """

    gen: Generator[Any, Any, Any] = field(hash=False)


NOW = Now()
