"""The SimPy internals sim/kernel.py relies on still exist and behave as it assumes.

A SimPy release that renames or changes one of them fails here, with a message
naming the internal, instead of making the simulator silently wrong. The last
tests check that no other module in ``sim/`` reaches into SimPy's internals.
"""

from __future__ import annotations

import ast
import itertools
import tomllib
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import simpy
from packaging.requirements import Requirement
from packaging.version import Version

from sim import kernel

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = {"_now", "_queue", "_eid", "_value", "_ok", "_defused"}


def changed(internal: str, detail: str) -> str:
    return f"SimPy internal {internal} changed (sim/kernel.py relies on it): {detail}"


# --- the pin -------------------------------------------------------------------------------


def simpy_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name == "simpy"]
    return req


def test_simpy_is_pinned_below_the_next_major_and_installed_within_it():
    req = simpy_requirement()
    installed = Version(version("simpy"))
    assert installed in req.specifier, f"installed simpy {installed} does not satisfy the pin {req}"
    uppers = [Version(s.version) for s in req.specifier if s.operator == "<"]
    assert uppers, f"simpy must be pinned below its next major (e.g. simpy>=4.1,<5), not {req}"
    assert min(uppers) <= Version(f"{installed.major + 1}"), f"pin {req} admits another major than {installed.major}"


# --- each internal -------------------------------------------------------------------------


def test_environment_clock_is_now_private():
    env = simpy.Environment(initial_time=2.5)
    assert env._now == 2.5, changed("Environment._now", "it is not the clock set by initial_time")
    env.timeout(1.0)
    env.run()
    assert env._now == env.now == 3.5, changed("Environment._now", "step does not advance it")


def test_kernel_environment_exposes_the_clock_slot_as_now():
    env = kernel.Environment()
    env.timeout(1.5)
    env.run()
    assert env.now == env._now == 1.5, changed("Environment._now", "kernel.Environment.now does not follow it")
    env._now = 7.0
    assert env.now == 7.0
    env.now = 8.0
    assert env._now == 8.0
    assert env.timeout(0.5).env is env and env.peek() == 8.5  # SimPy's own scheduling reads the same slot


def test_queue_is_a_heap_of_time_priority_eid_event():
    env = simpy.Environment()
    first, second = env.event(), env.event()
    env.schedule(second, delay=2.0)
    env.schedule(first, delay=1.0)
    queue = env._queue
    assert isinstance(queue, list), changed("Environment._queue", f"not a list but {type(queue).__name__}")
    assert all(isinstance(entry, tuple) and len(entry) == 4 for entry in queue), \
        changed("Environment._queue", f"entries are not (time, priority, eid, event): {queue!r}")
    time, priority, eid, event = queue[0]  # heap order: the smallest entry first
    assert (time, priority, event) == (1.0, simpy.events.NORMAL, first), \
        changed("Environment._queue", f"unexpected head entry {queue[0]!r}")
    assert isinstance(eid, int) and queue[1][2] == eid - 1, changed("Environment._eid", "entries are not numbered in schedule order")


def test_eid_is_the_counter_numbering_entries():
    env = simpy.Environment()
    taken = next(env._eid)
    env.schedule(env.event())
    assert env._queue[0][2] == taken + 1, changed("Environment._eid", "schedule does not take the next number from it")


def test_normal_is_the_priority_of_schedule_and_timeout():
    env = simpy.Environment()
    env.schedule(env.event())
    env.timeout(0)
    assert {entry[1] for entry in env._queue} == {simpy.events.NORMAL}, \
        changed("simpy.events.NORMAL", "env.schedule/Timeout no longer use it by default")
    assert simpy.events.URGENT < simpy.events.NORMAL, changed("simpy.events.NORMAL", "it no longer sorts after URGENT")


def test_event_value_ok_and_pending():
    env = simpy.Environment()
    event = env.event()
    assert event._value is simpy.events.PENDING, changed("Event._value / PENDING", "an untriggered event is not PENDING")
    event.succeed("payload")
    assert (event._value, event._ok) == ("payload", True), changed("Event._value / Event._ok", "succeed does not set them")
    failed = env.event()
    error = ValueError("boom")
    failed.fail(error)
    assert (failed._value, failed._ok) == (error, False), changed("Event._value / Event._ok", "fail does not set them")


def test_defused_marks_a_handled_failure():
    event = simpy.Environment().event()
    event.fail(ValueError("boom"))
    assert not hasattr(event, "_defused"), changed("Event._defused", "present before defusing")
    event.defused = True
    assert hasattr(event, "_defused"), changed("Event._defused", "defused = True does not set it")


def test_step_pops_sets_the_clock_and_calls_detached_callbacks_in_order():
    env = simpy.Environment()
    seen: list[tuple[str, float, object]] = []
    env.timeout(5.0)
    event = env.timeout(3.0)
    assert isinstance(event.callbacks, list), changed("Event.callbacks", "not a list")
    event.callbacks.append(lambda e: seen.append(("a", env._now, e.callbacks)))
    event.callbacks.append(lambda e: seen.append(("b", env._now, e.callbacks)))
    env.step()
    assert seen == [("a", 3.0, None), ("b", 3.0, None)], \
        changed("Environment.step", f"callbacks not called in order, detached, at the popped time: {seen}")
    assert len(env._queue) == 1 and env._now == 3.0


def test_step_raises_a_failed_event_unless_defused():
    env = simpy.Environment()
    env.event().fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        env.step()
    defused = env.event()
    defused.fail(ValueError("handled"))
    defused.defused = True
    env.step()  # no raise


# --- the kernel against SimPy's own loop ---------------------------------------------------


def test_call_is_a_processed_simpy_event_with_a_plain_value():
    env = kernel.Environment()
    got: list[object] = []
    kernel.schedule_call(env, 1.0, lambda e: got.append((e.value, e.triggered, e.ok, e.env is env)), "x")
    env.run()
    assert got == [("x", True, True, True)] and env.now == 1.0


def test_schedule_call_orders_like_env_schedule_normal():
    """Interleaved with Timeouts (env.schedule(event, NORMAL, delay)), ties break by scheduling order."""
    env = kernel.Environment()
    trace: list[tuple[str, float]] = []
    for i, delay in enumerate([1.0, 0.0, 1.0, 0.5, 0.0, 1.0]):
        tag = f"{i}"
        if i % 2:
            env.timeout(delay).callbacks.append(lambda e, tag=tag: trace.append((tag, env.now)))
        else:
            kernel.schedule_call(env, delay, lambda e, tag=tag: trace.append((tag, env.now)))
    env.run()
    assert trace == [("1", 0.0), ("4", 0.0), ("3", 0.5), ("0", 1.0), ("2", 1.0), ("5", 1.0)]


LATE = simpy.events.NORMAL + 1  # an arrival at the same instant as an event runs after it


def random_world(env: simpy.Environment, seed: int, trace: list[tuple[str, float, bool]]):
    """Arrivals that start chains of calls with tied, zero and random delays; returns (times, arrive)."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, 20, 40) / 4).tolist()  # many ties among arrivals and with events
    delays = itertools.cycle((rng.integers(0, 8, 200) / 4).tolist())

    def hop(event):
        tag, left = event.value
        trace.append((tag, env.now, event.processed))  # step detaches the callbacks before calling them
        if left:
            kernel.schedule_call(env, next(delays), hop, (f"{tag}.", left - 1))

    def arrive(i: int) -> None:
        trace.append((f"arrive{i}", env.now, True))
        kernel.schedule_call(env, next(delays), hop, (f"r{i}", i % 4))

    return times, arrive


@pytest.mark.parametrize("seed", range(5))
def test_run_with_arrivals_matches_simpy_run(seed):
    """The inlined step loop gives the same trace as SimPy's own env.run, arrivals as late-priority events."""
    fast_env, fast = kernel.Environment(), []
    times, arrive = random_world(fast_env, seed, fast)
    done = fast_env.event()
    kernel.schedule_call(fast_env, 30.0, lambda e: done.succeed())
    kernel.run_with_arrivals(fast_env, done, 0.0, times, arrive)

    ref_env, ref = simpy.Environment(), []
    times, arrive = random_world(ref_env, seed, ref)
    ref_done = ref_env.event()
    kernel.schedule_call(ref_env, 30.0, lambda e: ref_done.succeed())
    for i, t in enumerate(times):
        event = ref_env.event()
        event._ok, event._value = True, None
        event.callbacks.append(lambda e, i=i: arrive(i))
        ref_env.schedule(event, LATE, t)
    ref_env.run(until=ref_done)

    assert len(fast) > 2 * len(times) and fast == ref and all(processed for _, _, processed in fast)
    assert fast_env.now == ref_env.now == 30.0 and done.triggered


def test_run_with_arrivals_offsets_arrivals_by_t0_and_returns_when_idle():
    env = kernel.Environment(initial_time=10.0)
    seen: list[tuple[int, float]] = []
    never = env.event()
    kernel.run_with_arrivals(env, never, 10.0, [0.0, 0.25, 0.25], lambda i: seen.append((i, env.now)))
    assert seen == [(0, 10.0), (1, 10.25), (2, 10.25)] and not never.triggered


def test_run_with_arrivals_raises_a_failed_event_unless_defused():
    env = kernel.Environment()
    env.event().fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        kernel.run_with_arrivals(env, env.event(), 0.0, [], lambda i: None)
    defused = env.event()
    defused.fail(ValueError("handled"))
    defused.defused = True
    kernel.run_with_arrivals(env, env.event(), 0.0, [], lambda i: None)  # no raise


# --- one module --------------------------------------------------------------------------------


def private_uses(path: Path) -> list[str]:
    """SimPy-private attribute names and simpy submodule imports in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("simpy"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module} import ...")
    return found


def test_only_the_kernel_touches_simpy_internals():
    files = [p for p in (ROOT / "sim").rglob("*.py") if p.name != "kernel.py" or p.parent.name != "sim"]
    assert len(files) > 5
    offenders = [use for path in files for use in private_uses(path)]
    assert offenders == [], "use sim.kernel (or SimPy's public API) instead of:\n" + "\n".join(offenders)


def test_the_scan_sees_private_uses():
    uses = private_uses(ROOT / "sim" / "kernel.py")
    assert any(u.endswith("._queue") for u in uses) and any("from simpy.events" in u for u in uses)
