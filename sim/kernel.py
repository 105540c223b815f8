"""The simulation kernel: the only module that touches SimPy's private internals.

flashsim does not run a SimPy ``Process`` per request. A request costs one
event per hop it really waits for: a pre-triggered event carrying one callback
(:func:`schedule_call`), pushed straight onto SimPy's heap; open-loop arrivals
are merged into the event loop from their sorted schedule instead of taking a
heap entry each (:func:`run_with_arrivals`); and the hot paths read the clock
and an event's payload as plain attribute loads (:class:`Environment`,
``event.value`` of a scheduled call). That is what makes the request path
faster than SimPy's own ``Resource`` M/M/1 (``experiments/bench_core.py``).

Everything else in ``sim/`` uses SimPy's public API only (``env.now``,
``event.value``, ``env.event()``, ``env.run``) plus the functions here.

SimPy internals relied on (``simpy>=4.1,<5``, pinned in pyproject.toml; each is
checked by ``tests/sim/test_kernel.py`` so an upgrade that changes one fails
there, naming it, instead of silently giving wrong results):

- ``Environment._now``: the clock (a float). :class:`Environment` keeps it in a
  slot and exposes the slot as ``now``; :func:`run_with_arrivals` sets it.
- ``Environment._queue``: a ``heapq`` list of ``(time, priority, eid, event)``,
  popped in that order by ``Environment.step``.
- ``Environment._eid``: the ``itertools.count`` giving each entry its ``eid``
  (the FIFO tie-break among equal times and priorities).
- ``simpy.events.NORMAL``: the priority ``env.schedule`` and ``Timeout`` use.
- ``Event._value`` / ``Event._ok`` and the ``PENDING`` sentinel: an event's
  payload and success flag, ``_value is PENDING`` until it is triggered.
- ``Event.callbacks``: the list ``step`` calls with the event, then sets to None.
- ``Event._defused``: present once a failed event has been handled.
- ``Environment.step`` semantics, replicated inline by :func:`run_with_arrivals`:
  pop the heap's smallest entry, set the clock to its time, detach and call its
  callbacks in order, then raise if the event failed and was not defused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL, PENDING

Callback = Callable[["Call"], None]


def _expose_slot(cls: type, public: str, slot: str) -> None:
    """Make ``cls.<public>`` read and write the slot ``cls.<slot>``.

    SimPy's ``now`` and ``value`` are Python properties: a function call per
    read, several times per request. A slot's member descriptor under the
    public name is a plain attribute load, as fast as the private name.
    """
    setattr(cls, public, cls.__dict__[slot])


class Environment(simpy.Environment):
    """A ``simpy.Environment`` whose ``now`` is a plain attribute read.

    Behaves exactly like SimPy's: the clock still lives in ``_now``, which
    SimPy's own code reads and writes; only its storage is a slot.
    """

    __slots__ = ("_now",)


_expose_slot(Environment, "now", "_now")


class Call(simpy.Event):
    """A pre-triggered event carrying one callback: the cheapest timer SimPy can process.

    Made by :func:`schedule_call`; its callback reads the payload as ``event.value``
    (a plain attribute load: a slot, not SimPy's property).
    """

    __slots__ = ("env", "callbacks", "_value", "_ok")
    value: Any

    def __init__(self, env: simpy.Environment, callback: Callback, value: Any):
        # No Event.__init__: it would set _value = PENDING only for us to overwrite it.
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


_expose_slot(Call, "value", "_value")


def schedule_call(env: simpy.Environment, delay: float, callback: Callback, value: Any = None) -> None:
    """Run ``callback(event)`` after ``delay`` (>= 0); ``event.value`` is ``value``.

    Same ordering as ``env.schedule(event, NORMAL, delay)``, without its call overhead.
    """
    heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), Call(env, callback, value)))


def run_with_arrivals(env: simpy.Environment, until: simpy.Event, t0: float, times: Sequence[float],
                      arrive: Callable[[int], object], patience: float = math.inf,
                      expire: Callable[[int], object] | None = None) -> None:
    """Run ``env`` until ``until`` fires, calling ``arrive(i)`` at time ``t0 + times[i]``.

    ``times`` is sorted. Arrivals are merged into the event loop straight from
    it instead of taking a heap entry each: before every step the next arrival
    is compared with the next event, and the earlier runs first (an event and
    an arrival at the same instant: the event first). Returns early if neither
    events nor arrivals remain.

    With ``expire``, each arrival's deadline ``t0 + times[j] + patience`` is a
    third stream, sorted like the arrivals: ``expire(j)`` runs then, after the
    events of that instant (a reply exactly at the deadline comes first).
    """
    queue = env._queue
    n = len(times)
    i = 0
    j = 0 if expire is not None and patience < math.inf else n  # next deadline (n: none to watch)
    while until._value is PENDING:
        t_next = t0 + times[i] if i < n else math.inf
        if j < i:
            t_exp = t0 + times[j] + patience
            if t_exp < t_next:
                if not (queue and queue[0][0] <= t_exp):
                    env._now = t_exp
                    expire(j)  # type: ignore[misc]
                    j += 1
                    continue
                t_next = t_exp
        if queue and queue[0][0] <= t_next:
            # simpy.Environment.step, inlined: this loop runs once per event
            env._now, _, _, event = heappop(queue)
            callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):
                raise event._value
        elif t_next < math.inf:
            env._now = t_next
            arrive(i)
            i += 1
        else:
            break
    if not until.processed and queue:
        env.run(until=until)
