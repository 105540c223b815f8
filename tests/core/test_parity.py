"""Interpreter parity: the same strategy, seed and arrivals yield the same ops in every interpreter.

Each strategy runs one calm sale (no sell-out, no timeouts, no contention, the
periodic sync trigger out of the way) under the simulator, the serial
reference interpreter (:mod:`engine.testing`) and, marked ``real``, the real
driver on a 3-master cluster and MariaDB. A traced subclass of the strategy
records every op each of its generators yields (and every generator each
``Spawn`` starts), normalised, into one file per process (real mode forks its
workers). Then, interpreter against interpreter:

- **each request** yields exactly the same op sequence (``Spawn`` included),
  ends with the same outcome and counts the same round trips (``ops``:
  ``Spawn``, ``Now`` and ``Sleep`` are none);
- **setup** yields the same sequence, and so does every task setup spawned,
  each of which has finished before the sale starts;
- **spawned tasks** (count-trigger flushes, refills, "applied" marks) form the
  same multiset of op sequences;
- **background** tasks and the **drain** use the same vocabulary of ops (the
  distinct ops, ``Sleep`` aside; the drain's in first-occurrence order), and
  the reconciliation finds no difference, with the same figures.

What may legitimately differ, and is masked or left out:

- times: ``Now`` replies, so every float in an op (detail-record stamps,
  record times inside MQ payloads and SQL parameters) is masked;
- the namespace in keys and topics (``fs`` in the simulator, a fresh one in
  real mode), masked;
- opaque handles: transaction handles and MQ message ids (an ``Ack`` is
  compared by topic only);
- how often a loop polls: background loops and the drain's wait repeat their
  ops as often as the clock lets them (hence vocabularies, not sequences),
  and which consumer takes which message;
- real mode starts background tasks at the sale start in each worker; the
  simulator and the reference at the sale start too (same phase).

Other parity rules (request exceptions, fatal ones, reconciliation as a
violation) are checked at the end of this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.model import Request
from engine.ops import Eval, Now, Sleep, Spawn
from engine.pipeline.ops import Ack, Consume, Publish
from engine.scenario import Scenario
from engine.sql import DbBegin, DbCommit, DbExec, DbRollback
from engine.strategies import STRATEGIES, Strategy
from engine.streams import Streams
from engine.tasks import TaskFailed
from engine.testing import Reference
from engine.workload import open_loop_schedule
from sim.world import simulate

SEED = 79  # its 30 arrivals are >= 16 ms apart (checked): every reply and spawned flush lands before the next buyer
CALM = [
    "sale.stock=3000", "workload.buyers=30", "workload.window=3.0", "workload.timeout=30", "redis.nodes=3",
    "pipeline.threshold=4", "pipeline.period=1000",  # count-trigger flushes only, at fixed records
    "sharded.partitions=3", "sharded.subdomain_size=300", "sharded.preallocation=600", "sharded.threshold=5",
    "sharded.policy=round_robin", "sharded.refresh_interval=0.1", "app.instances=1",
    # Transfer recovery acts only on what it finds in flight at each pass, which depends on each
    # interpreter's timing; tests/sharded/test_recovery.py and test_scripts_real.py cover it.
    "sharded.recovery_interval=inf",
]
FLOAT = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


# --- recording ------------------------------------------------------------------------------
class Sink:
    """One JSON-lines file per process (real mode forks), line-buffered (workers end with os._exit)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._pid = -1
        self._file: Any = None
        self._tasks = 0
        self._seq = 0  # order of records within this process

    def write(self, record: dict[str, Any]) -> None:
        if self._pid != os.getpid() or self._file.closed:
            self._pid = os.getpid()
            self._file = open(self.folder / f"{self._pid}.jsonl", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._seq += 1
        self._file.write(json.dumps({**record, "pid": self._pid, "seq": self._seq}) + "\n")

    def task_key(self) -> str:
        self._tasks += 1
        return f"{os.getpid()}:{self._tasks}"

    def load(self) -> list[dict[str, Any]]:
        return [json.loads(line) for path in sorted(self.folder.glob("*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines()]


def mask(value: Any, namespace: str) -> Any:
    """An op's field with what may legitimately differ masked (times, the namespace)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return "<f>"
    if isinstance(value, str):
        return FLOAT.sub("<f>", value.replace(namespace + ":", "NS:"))
    if isinstance(value, (list, tuple)):
        return [mask(v, namespace) for v in value]
    if isinstance(value, dict):
        return {str(k): mask(v, namespace) for k, v in sorted(value.items())}
    return f"<{type(value).__name__}>"


def normalize(op: Any, namespace: str) -> str:
    kind = op.__class__
    if kind is Eval:
        fields: list[Any] = [op.script, mask(op.keys, namespace), mask(op.args, namespace)]
    elif kind is DbExec:
        fields = [op.statement, op.txn is None, mask(op.params, namespace)]
    elif kind is DbBegin:
        fields = [op.autocommit]
    elif kind is Spawn:
        fields = [op.gen.__qualname__]
    elif kind is Publish:
        fields = [mask(op.topic, namespace), mask(op.payload, namespace)]
    elif kind is Consume:
        fields = [mask(op.topic, namespace), op.consumer, op.block]
    elif kind is Ack:
        fields = [mask(op.topic, namespace)]  # the message id is the broker's
    elif kind is Sleep:
        fields = [op.seconds]
    elif kind in (Now, DbCommit, DbRollback):
        fields = []
    else:
        fields = [repr(op)]
    return json.dumps([kind.__name__, *fields])


def recorded(gen: Any, sink: Sink, namespace: str, kind: str, root: str, tag: Any) -> Any:
    """``gen``, yielding the same ops, each written to ``sink``; spawned generators are recorded too."""
    key = sink.task_key()
    sink.write({"task": key, "kind": kind, "root": root, "tag": tag, "name": gen.__qualname__})
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = gen.send(reply) if error is None else gen.throw(error)
        except StopIteration as stop:
            sink.write({"task": key, "end": "returned"})
            return stop.value
        except BaseException:
            sink.write({"task": key, "end": "raised"})
            raise
        sink.write({"task": key, "op": normalize(op, namespace)})
        if isinstance(op, Spawn):
            op = Spawn(recorded(op.gen, sink, namespace, "spawn", root, key))
        try:
            reply, error = (yield op), None
        except GeneratorExit:
            gen.close()
            sink.write({"task": key, "end": "closed"})
            raise
        except BaseException as err:  # a server error thrown in: pass it on to the strategy
            reply, error = None, err


def traced(name: str, sink: Sink) -> type[Strategy]:
    """A subclass of strategy ``name`` whose generators are all recorded."""
    base = STRATEGIES[name]

    class Traced(base):  # type: ignore[valid-type, misc]
        def setup(self):
            return recorded(super().setup(), sink, self.namespace, "setup", "setup", None)

        def deduct(self, request):
            return recorded(super().deduct(request), sink, self.namespace, "request", "request", request.id)

        def background(self):
            return [recorded(g, sink, self.namespace, "background", "background", i)
                    for i, g in enumerate(super().background())]

        def background_of(self, instance):  # real workers and the simulator's app tier ask per instance
            if base.background_of is Strategy.background_of:  # the default goes through background()
                return super().background_of(instance)
            return [recorded(g, sink, self.namespace, "background", "background", f"{instance}:{i}")
                    for i, g in enumerate(super().background_of(instance))]

        def drain(self):
            return recorded(super().drain(), sink, self.namespace, "drain", "drain", None)

    return Traced


class Trace:
    """The records of one run, grouped the way the comparison needs them."""

    def __init__(self, records: list[dict[str, Any]]):
        tasks: dict[str, dict[str, Any]] = {}
        for record in records:
            if "kind" in record:
                tasks[record["task"]] = {**record, "ops": [], "end": None, "end_seq": None}
            elif "op" in record:
                tasks[record["task"]]["ops"].append(record["op"])
            else:
                tasks[record["task"]].update(end=record["end"], end_seq=record["seq"])
        self.tasks = list(tasks.values())

    def of(self, kind: str, root: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.tasks if t["kind"] == kind and (root is None or t["root"] == root)]

    @property
    def requests(self) -> dict[int, list[str]]:
        return {t["tag"]: t["ops"] for t in self.of("request")}

    @property
    def setup(self) -> list[str]:
        (task,) = self.of("setup")
        return task["ops"]

    def setup_done_before_sale(self) -> bool:
        """Setup and every task it spawned had ended before the first request started (in its process)."""
        first = {t["pid"]: t["seq"] for t in sorted(self.of("request"), key=lambda t: -t["seq"])}
        early = self.of("setup") + self.of("spawn", "setup")
        return all(t["end"] == "returned" and t["end_seq"] < first.get(t["pid"], math.inf) for t in early)

    def spawned(self, root: str) -> Counter[str]:
        return Counter(json.dumps([t["name"], t["ops"]]) for t in self.of("spawn", root))

    def spawned_ops(self, root: str) -> Counter[str]:
        """The ops of the tasks ``root`` spawned, by task name, however they were grouped into tasks.

        A queue-draining writer (the pipeline's DB moves) takes whatever is queued when it runs: how
        many writers there are depends on the servers' timing, what they write does not.
        """
        return Counter(json.dumps([t["name"], op]) for t in self.of("spawn", root) for op in t["ops"])

    def vocabulary(self, kind: str) -> list[str]:
        """Distinct ops of every task of ``kind`` in first-occurrence order, Sleep aside."""
        ops = [op for t in self.of(kind) for op in t["ops"] if not op.startswith('["Sleep"')]
        return list(dict.fromkeys(ops))


def calm_run(name: str, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: Any = None):
    """One calm sale of ``name`` in ``mode`` (sim, reference, real): its Trace and its result."""
    folder = tmp_path / mode
    folder.mkdir()
    sink = Sink(folder)
    cls = traced(name, sink)
    scenario = Scenario().with_overrides(CALM)
    assert np.diff(open_loop_schedule(scenario.workload, Streams(SEED)).times).min() > 0.016  # timing cannot matter
    if mode == "reference":
        strategy = cls(scenario, Streams(SEED).generator("strategy"))
        schedule = open_loop_schedule(scenario.workload, Streams(SEED))
        requests = [Request(i, int(q), float(t)) for i, (t, q) in enumerate(zip(schedule.times, schedule.qty))]
        ref = Reference(ack_timeout=scenario.pipeline.ack_timeout)
        sale = ref.sale(strategy, requests)
        result = {"outcomes": [o.label for o in sale.outcomes], "ops": [t.ops for t in sale.requests],
                  "counters": strategy.counters(), "violations": strategy.inventory(ref.read).violations()
                  + strategy.reconciliation_differences()}
        return Trace(sink.load()), result
    key = f"traced-{name}"
    monkeypatch.setitem(STRATEGIES, key, cls)
    if mode == "sim":
        run = simulate(scenario, SEED, key)
    else:
        from engine.real import RealOptions, RedisTarget, run_real

        options = RealOptions(RedisTarget(cluster.url), namespace=f"fstest-{uuid.uuid4().hex[:10]}", lanes=1)
        run = run_real(scenario, SEED, key, options)
    result = {"outcomes": run.requests["outcome"].astype(str).tolist(), "ops": run.requests["ops"].tolist(),
              "counters": run.summary, "violations": run.violations}
    return Trace(sink.load()), result


RECON = ("recon_redis_sold", "recon_detail_records", "recon_detail_qty", "recon_db_deducted",
         "recon_db_preallocated", "recon_db_pool", "recon_db_detail_rows", "recon_db_detail_qty", "sync_differences")


def assert_same(a: tuple[Trace, dict], b: tuple[Trace, dict], name: str) -> None:
    (ta, ra), (tb, rb) = a, b
    assert ra["violations"] == [] and rb["violations"] == []
    assert ra["outcomes"] == rb["outcomes"] and set(ra["outcomes"]) == {"ok"}  # calm: everybody buys
    assert ra["ops"] == rb["ops"]  # round trips per request; Spawn counts in neither
    requests_a, requests_b = ta.requests, tb.requests
    assert sorted(requests_a) == sorted(requests_b) == list(range(30))
    for rid in requests_a:
        assert requests_a[rid] == requests_b[rid], f"request {rid}"
    assert all(t["end"] == "returned" for t in ta.of("request") + tb.of("request"))
    assert ta.setup == tb.setup
    assert ta.setup_done_before_sale() and tb.setup_done_before_sale()
    assert ta.spawned("setup") == tb.spawned("setup")
    for root in ("request", "background"):
        assert ta.spawned(root) == tb.spawned(root), root
    assert ta.spawned_ops("drain") == tb.spawned_ops("drain")
    assert set(ta.vocabulary("background")) == set(tb.vocabulary("background"))
    assert ta.vocabulary("drain") == tb.vocabulary("drain")
    for figure in RECON:
        assert ra["counters"].get(figure) == rb["counters"].get(figure), figure
    if name in ("single_redis", "sharded"):  # the things this sale is meant to exercise did happen
        assert ta.spawned("request") and ta.spawned("background") and ra["counters"]["sync_differences"] == 0
    if name == "sharded":
        assert ta.spawned("setup")  # the DB pre-allocation writer


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_sim_and_reference_yield_the_same_ops(name, tmp_path, monkeypatch):
    sim = calm_run(name, "sim", tmp_path, monkeypatch)
    ref = calm_run(name, "reference", tmp_path, monkeypatch)
    assert_same(sim, ref, name)


@pytest.mark.real
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_sim_and_real_yield_the_same_ops(name, tmp_path, monkeypatch, cluster, mariadb):
    sim = calm_run(name, "sim", tmp_path, monkeypatch)
    real = calm_run(name, "real", tmp_path, monkeypatch, cluster)
    assert_same(sim, real, name)


# --- the other rules of engine.tasks, the same in every interpreter -------------------------------------
SMALL = ["sale.stock=50", "workload.buyers=40", "workload.window=0.4", "workload.timeout=30", "redis.nodes=3",
         "pipeline.enabled=false"]


def faulty(where: str) -> type[Strategy]:
    """single_redis raising in every 7th request (``request``) or in one of its other generators."""
    base = STRATEGIES["single_redis"]

    def broken(gen):
        yield from gen
        raise RuntimeError(f"broken {where}")

    class Faulty(base):  # type: ignore[valid-type, misc]
        def setup(self):
            return broken(super().setup()) if where == "setup" else super().setup()

        def deduct(self, request):
            if where == "request" and request.id % 7 == 3:
                return broken(super().deduct(request))
            return super().deduct(request)

        def background(self):
            return [broken(iter(()))] if where == "background" else super().background()

        def drain(self):
            return broken(super().drain()) if where == "drain" else super().drain()

    return Faulty


def run_faulty(mode: str, where: str, monkeypatch, cluster=None):
    scenario = Scenario().with_overrides(SMALL)
    if mode == "reference":
        schedule = open_loop_schedule(scenario.workload, Streams(SEED))
        requests = [Request(i, int(q), float(t)) for i, (t, q) in enumerate(zip(schedule.times, schedule.qty))]
        ref = Reference()
        sale = ref.sale(faulty(where)(scenario, Streams(SEED).generator("strategy")), requests)
        return [o.label for o in sale.outcomes], ref.errors.figures()
    monkeypatch.setitem(STRATEGIES, "faulty", faulty(where))
    if mode == "sim":
        result = simulate(scenario, SEED, "faulty")
    else:
        from engine.real import RealOptions, RedisTarget, run_real

        options = RealOptions(RedisTarget(cluster.url), namespace=f"fstest-{uuid.uuid4().hex[:10]}")
        result = run_real(scenario, SEED, "faulty", options)
    figures = {k: result.summary[k] for k in ("strategy_errors", "first_strategy_error") if k in result.summary}
    return result.requests["outcome"].astype(str).tolist(), figures


def check_request_errors(outcomes: list[str], figures: dict) -> None:
    failing = [i for i in range(40) if i % 7 == 3]
    assert [i for i, o in enumerate(outcomes) if o == "error"] == failing
    assert figures == {"strategy_errors": len(failing), "first_strategy_error": "RuntimeError: broken request"}


@pytest.mark.parametrize("mode", ["sim", "reference"])
def test_a_request_that_raises_is_an_error_outcome(mode, monkeypatch):
    check_request_errors(*run_faulty(mode, "request", monkeypatch))


@pytest.mark.parametrize("where", ["setup", "background", "drain"])
@pytest.mark.parametrize("mode", ["sim", "reference"])
def test_any_other_task_that_raises_stops_the_run(mode, where, monkeypatch):
    with pytest.raises(TaskFailed, match=f"{where} task failed: RuntimeError: broken {where}"):
        run_faulty(mode, where, monkeypatch)


@pytest.mark.real
def test_real_mode_applies_the_same_failure_rules(monkeypatch, cluster, mariadb):
    from engine.real import TargetError

    check_request_errors(*run_faulty("real", "request", monkeypatch, cluster))
    for where in ("setup", "background", "drain"):
        with pytest.raises((TaskFailed, TargetError), match=f"{where} task failed: RuntimeError: broken {where}"):
            run_faulty("real", where, monkeypatch, cluster)


def slow_setup() -> type[Strategy]:
    """single_redis whose setup spawns a task that takes 0.3 s; a buyer served before it ended raises."""
    base = STRATEGIES["single_redis"]

    class SlowSetup(base):  # type: ignore[valid-type, misc]
        ready = False

        def setup(self):
            yield from super().setup()
            yield Spawn(self._prepare())

        def _prepare(self):
            yield Sleep(0.3)
            self.ready = True

        def deduct(self, request):
            if not self.ready:
                raise RuntimeError("the sale started before what setup spawned had finished")
            return (yield from super().deduct(request))

    return SlowSetup


def run_slow_setup(mode: str, monkeypatch, cluster=None) -> list[str]:
    scenario = Scenario().with_overrides(SMALL)
    if mode == "reference":
        schedule = open_loop_schedule(scenario.workload, Streams(SEED))
        requests = [Request(i, int(q), float(t)) for i, (t, q) in enumerate(zip(schedule.times, schedule.qty))]
        sale = Reference().sale(slow_setup()(scenario, Streams(SEED).generator("strategy")), requests)
        return [o.label for o in sale.outcomes]
    monkeypatch.setitem(STRATEGIES, "slow_setup", slow_setup())
    if mode == "sim":
        result = simulate(scenario, SEED, "slow_setup")
    else:
        from engine.real import RealOptions, RedisTarget, run_real

        options = RealOptions(RedisTarget(cluster.url), namespace=f"fstest-{uuid.uuid4().hex[:10]}")
        result = run_real(scenario, SEED, "slow_setup", options)
    assert result.summary["strategy_errors"] == 0, result.summary.get("first_strategy_error")
    return result.requests["outcome"].astype(str).tolist()


@pytest.mark.parametrize("mode", ["sim", "reference"])
def test_the_sale_waits_for_what_setup_spawned(mode, monkeypatch):
    assert set(run_slow_setup(mode, monkeypatch)) == {"ok"}


@pytest.mark.real
def test_real_mode_waits_for_what_setup_spawned(monkeypatch, cluster, mariadb):
    assert set(run_slow_setup("real", monkeypatch, cluster)) == {"ok"}


def unreconciled() -> type[Strategy]:
    """single_redis whose pipeline reports one reconciliation difference."""
    base = STRATEGIES["single_redis"]

    class Unreconciled(base):  # type: ignore[valid-type, misc]
        def reconciliation(self):
            return dataclasses.replace(super().reconciliation(), differences=("DB deducted 1 != detail records' qty 2",))

    return Unreconciled


def check_unreconciled(result) -> None:
    assert result.violations == ["reconciliation: DB deducted 1 != detail records' qty 2"]
    assert result.summary["violations"] == 1 and not result.ok


def test_reconciliation_differences_are_violations_in_the_simulator(monkeypatch):
    monkeypatch.setitem(STRATEGIES, "unreconciled", unreconciled())
    scenario = Scenario().with_overrides([*SMALL[:-1], "pipeline.enabled=true"])
    check_unreconciled(simulate(scenario, SEED, "unreconciled"))


@pytest.mark.real
def test_reconciliation_differences_are_violations_in_real_mode(monkeypatch, cluster, mariadb):
    from engine.real import RealOptions, RedisTarget, run_real

    monkeypatch.setitem(STRATEGIES, "unreconciled", unreconciled())
    scenario = Scenario().with_overrides([*SMALL[:-1], "pipeline.enabled=true"])
    options = RealOptions(RedisTarget(cluster.url), namespace=f"fstest-{uuid.uuid4().hex[:10]}")
    check_unreconciled(run_real(scenario, SEED, "unreconciled", options))


def test_no_interpreter_probes_a_strategy():
    """The hooks are declared on the base; the interpreters never ask hasattr/getattr of a strategy."""
    root = Path(__file__).resolve().parents[2]
    sources = [root / "sim" / "world.py", root / "sim" / "interpreter.py", *sorted((root / "engine" / "real").glob("*.py")),
               root / "engine" / "testing" / "__init__.py"]
    probes = [f"{p.name}: {line.strip()}" for p in sources for line in p.read_text().splitlines()
              if re.search(r"\b(hasattr|getattr)\((strat|strategy)\b", line)]
    assert probes == []
    plain = STRATEGIES["db_conditional"](Scenario(), np.random.default_rng(0))
    assert plain.oracle is None and plain.reconciliation() is None and plain.reconciliation_differences() == []
