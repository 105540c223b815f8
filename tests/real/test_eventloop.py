"""The real workers' event loop: select() for fine timers, the default beyond select()'s descriptor limit."""

import asyncio
import selectors

from engine.real.eventloop import SELECT_FDS, precise_loop_factory, run_precise


async def selector_kind() -> type:
    return type(asyncio.get_running_loop()._selector)  # type: ignore[attr-defined]


def test_workers_run_on_a_select_loop():
    assert run_precise(selector_kind()) is selectors.SelectSelector


def test_too_many_connections_for_select_keep_the_default_loop():
    assert precise_loop_factory(SELECT_FDS + 1) is None
    assert run_precise(selector_kind(), SELECT_FDS + 1) is not selectors.SelectSelector
