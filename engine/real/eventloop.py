"""An event loop whose timers fire when they are due, for the load generator's workers.

The open-loop sender releases each buyer at an intended instant and measures
latency from that instant, so a late timer is latency the system under test
never caused. asyncio's default selector on Linux is epoll, whose timeout has
millisecond resolution (CPython rounds it up): a sleep of 0.3 ms wakes after
1 ms. Measured on the 2-core machine the shipped profile comes from (3,000
Poisson arrivals at 3,000/s, nothing else running; ``experiments/timer_lateness.py``
prints the comparison, side by side):

- epoll (the default):                 lateness p50 0.58 ms, mean 0.61 ms;
- ``select()`` (microsecond timeout):  p50 0.12 ms, mean 0.13 ms;
- ``select()`` and 1 ns timer slack:   p50 0.065 ms, mean 0.08 ms.

So the workers run on a :class:`selectors.SelectSelector` loop and ask the
kernel for 1 ns of timer slack (``prctl(PR_SET_TIMERSLACK)``; Linux's default
slack is 50 us). ``select()`` only handles descriptors below ``FD_SETSIZE``
(1024): a process that expects more connections than :data:`SELECT_FDS` keeps
epoll, and its coarser timers are reported as sender lag like any other. What
remains of the lateness is measured per request (``send_lag`` in the real
requests table), not hidden.
"""

from __future__ import annotations

import asyncio
import ctypes
import selectors
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SELECT_FDS = 768  # connections a worker may open and still use select() (FD_SETSIZE is 1024)
PR_SET_TIMERSLACK = 29  # linux/prctl.h


def tighten_timer_slack() -> bool:
    """Ask Linux for 1 ns of timer slack for this thread; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def precise_loop_factory(connections: int = 0) -> Any:
    """A loop factory for :class:`asyncio.Runner`: select() when ``connections`` fit under it, else the default."""
    if connections > SELECT_FDS:
        return None
    return lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())


def run_precise(coro: Coroutine[Any, Any, T], connections: int = 0) -> T:
    """``asyncio.run(coro)`` on a loop with fine timers (see the module docstring)."""
    tighten_timer_slack()
    with asyncio.Runner(loop_factory=precise_loop_factory(connections)) as runner:
        return runner.run(coro)
