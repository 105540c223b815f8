"""Drive an engine generator by hand, the way h11's tests pass bytes between peers: no SimPy, no server."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any


def drive(gen: Generator[Any, Any, Any], replies: Iterable[Any]) -> tuple[list[Any], Any]:
    """Run ``gen``, answering each op it yields from ``replies``; return (ops, return value).

    Fails if the generator asks for more ops than there are replies.
    """
    ops = []
    try:
        op = next(gen)
        for reply in replies:
            ops.append(op)
            op = gen.send(reply)
        raise AssertionError(f"generator wanted more: {op}")
    except StopIteration as stop:
        return ops, stop.value
