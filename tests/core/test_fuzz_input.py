"""Fuzz: random ``--set`` assignments and TOML documents never end in a traceback.

Issue #12 item 7. Each input either builds a valid :class:`Scenario` or is refused
with one line (a :class:`ScenarioError` / :class:`CliError`, exit status 2 from the
command). The in-process tests drive the command line's own parse + validate path
(the ``run`` parser, :func:`scenario_from`, :func:`resolve_strategy`); a few
examples go through ``python -m sim.cli run`` in a subprocess with a tiny
workload and must exit 0 or 2 (3: a broken invariant, reported) with no "Traceback"
on stderr. The budget is fixed (derandomized, ~20 s); ``FLASHSIM_FUZZ_RUNS=300``
runs that many subprocess examples for a deeper look.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.faults.config import KINDS as FAULT_KINDS
from engine.faults.config import Fault, parse_fault_spec
from engine.fields import ScenarioError
from engine.scenario import Scenario, reference_rows
from engine.strategies import STRATEGIES
from sim.cli.common import CliError, scenario_from
from sim.cli.main import build_parser
from sim.world import resolve_strategy

# ---------------------------------------------------------------- what to generate
LEAVES = [key for key, _default, _doc in reference_rows()]
DIST_KEYS = [key for key, default, _doc in reference_rows()
             if key in ("workload.think", "network.client", "network.redis", "network.db", "app.cpu_request",
                        "app.cpu_op", "app.cpu_refusal", "redis.command", "redis.batch", "redis.replica_lag",
                        "db.commit", "db.rollback", "db.begin", "pipeline.delivery")]
SUBKEYS = ([f"{k}.{s}" for k in DIST_KEYS for s in ("kind", "mean", "cv")]
           + [f"workload.qty.{s}" for s in ("low", "high")]
           + [f"{k}.{s}" for k in ("app.wake", "redis.wake") for s in ("after", "base", "per_idle", "cap")]
           + [f"{t}.{s}" for t in ("redis.service", "db.service") for s in ("default", "deduct", "x")]
           + [f"{t}.{s}.{f}" for t in ("redis.service", "db.service") for s in ("default", "deduct")
              for f in ("kind", "mean", "cv")]
           + [f"redis.per_item.{s}" for s in ("detail_collect", "deduct")]
           + [f"faults.f{i}.{f.name}" for i in (1, 2) for f in dataclasses.fields(Fault)])
KEYS = LEAVES + SUBKEYS
WORDS = ["burst", "poisson", "closed", "ramp", "uniform", "exponential", "lognormal", "deterministic", "random",
         "round_robin", "balanced", "p2c", "none", "binlog_sync", *STRATEGIES, *FAULT_KINDS, "inf", "nan", ""]

integers = st.one_of(st.integers(-10, 100), st.integers(-2**70, 2**70),
                     st.sampled_from([0, 1, 2**53, 2**53 + 1, 2**63 - 1, 10**8, 10**8 + 1, 10**9]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, 1e-300, 1e-9, 0.5, 1e99, 1e308, -1.0, 1.5]))


def toml_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


scalar_text = st.one_of(
    integers.map(str),
    floats.map(toml_float),
    st.sampled_from(["1e99", "2e18", "9007199254740993", "100000001", "1e-300", "-1"]),  # absurd sizes
    st.booleans().map(lambda b: str(b).lower()),
    st.sampled_from(WORDS).map(json.dumps),
    st.sampled_from(WORDS),  # bare: not TOML, taken as text
    st.text(max_size=12).map(json.dumps),
)
value_text = st.recursive(
    scalar_text,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["kind", "mean", "cv", "low", "high", "after", "cap", "x", "at", "node"]),
                        inner, max_size=3).map(lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"),
    ),
    max_leaves=5,
) | st.text(max_size=16)  # junk

junk_key = st.one_of(st.text(max_size=12), st.sampled_from(["sale.stok", "sharded.apps", "workload..buyers",
                                                            "sale.stock.x", "faults", "faults.x", ".", "a.b.c.d"]))
key = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), junk_key)


def _kind(dotted: str) -> str:
    """The type of a key's value: int, float, bool, str or dist (a number or a table)."""
    leaf = dotted.rsplit(".", 1)[-1]
    if dotted.startswith("faults."):
        return {"int": "int", "float": "float", "bool": "bool"}.get(str({f.name: f.type for f in dataclasses.fields(Fault)}[leaf]), "str")
    if leaf == "kind" or dotted.endswith(".default") and "service" not in dotted:
        return "str"
    if dotted.startswith(("redis.service.", "db.service.")) and dotted.count(".") == 2:
        return "dist"
    if leaf in ("mean", "cv", "after", "base", "per_idle", "cap") or dotted.startswith("redis.per_item."):
        return "float"
    if leaf in ("low", "high"):
        return "int"
    value = Scenario()
    for part in dotted.split("."):
        value = getattr(value, part)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, str, float)):
        return type(value).__name__
    return "dist"  # Dist, Qty, Wake, a table: a number or an inline table


ABSURD = ["1e99", "-1e99", "2e18", "9007199254740993", "9223372036854775807", "100000001", "1e9", "1e-300",
          "-1", "1.5", "inf", "nan", "1e308"]
TYPED = {
    "int": st.one_of(st.integers(0, 1000).map(str), st.sampled_from(ABSURD)),
    "float": st.one_of(st.floats(0, 10).map(toml_float), st.sampled_from(ABSURD)),
    "bool": st.one_of(st.booleans().map(lambda b: str(b).lower()), st.sampled_from(["1", '"yes"'])),
    "str": st.sampled_from(WORDS).map(json.dumps),
    "dist": st.one_of(st.floats(0, 1).map(toml_float), st.sampled_from(ABSURD),
                      st.tuples(st.sampled_from(["deterministic", "exponential", "lognormal", "x"]),
                                st.sampled_from(["0", "0.001", "1e99", "-1", "nan"]), st.sampled_from(["0", "0.5", "inf"]))
                      .map(lambda t: f'{{kind = "{t[0]}", mean = {t[1]}, cv = {t[2]}}}'),
                      st.tuples(st.sampled_from(["1", "3", "1e99", "0"]), st.sampled_from(["2", "1e20", "-1"]))
                      .map(lambda t: f"{{low = {t[0]}, high = {t[1]}}}")),
}
INT_KEYS = [k for k in KEYS if _kind(k) == "int"]  # drawn as often as all the rest: sizes are what blow up
typed_assignment = st.one_of(st.sampled_from(KEYS), st.sampled_from(INT_KEYS)).flatmap(lambda k: TYPED[_kind(k)].map(lambda v: f"{k}={v}"))
assignment = st.one_of(typed_assignment, typed_assignment, typed_assignment,
                       st.tuples(key, value_text).map(lambda kv: f"{kv[0]}={kv[1]}"), st.text(max_size=20))


def check_clean(make) -> Scenario | None:
    """``make()`` builds a scenario or refuses it with one line; anything else fails the test."""
    try:
        scenario = make()
    except (ScenarioError, CliError) as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message, message
        return None
    assert isinstance(scenario, Scenario)
    assert all(abs(v) <= 2**53 for v in _integers(scenario.to_dict())), "an integer the Lua scripts cannot hold"
    assert Scenario.from_dict(scenario.to_dict()) == scenario  # what it accepted, it reads back
    return scenario


def _integers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _integers(value)
    elif isinstance(tree, int) and not isinstance(tree, bool):
        yield tree


def cli_scenario(argv: list[str]) -> Scenario:
    """The command line's parse + validate path of ``flashsim run``, up to the run itself."""
    args = build_parser("run").parse_args(["run", *argv])
    scenario = scenario_from(args)
    resolve_strategy(scenario, args.strategy)
    return scenario


# ---------------------------------------------------------------- in process
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(assignment, min_size=1, max_size=4))
def test_random_set_assignments_build_or_refuse_in_one_line(assignments):
    check_clean(lambda: cli_scenario([f"--set={a}" for a in assignments]))


SECTIONS = sorted({k.split(".")[0] for k in LEAVES if "." in k}) + ["faults.f1", "nope"]


def toml_document() -> st.SearchStrategy[str]:
    line = st.one_of(st.tuples(st.sampled_from([k.rsplit(".", 1)[-1] for k in KEYS] + ["x"]), value_text)
                     .map(lambda kv: f"{kv[0]} = {kv[1]}"), st.text(max_size=12))
    table = st.tuples(st.sampled_from(SECTIONS), st.lists(line, max_size=4)).map(
        lambda t: "\n".join([f"[{t[0]}]", *t[1]]))
    top = st.lists(st.tuples(st.sampled_from(["name", "strategy", "x"]), value_text)
                   .map(lambda kv: f"{kv[0]} = {kv[1]}"), max_size=2)
    return st.tuples(top, st.lists(table, max_size=4)).map(lambda t: "\n".join([*t[0], *t[1]]) + "\n")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(toml_document(), st.lists(assignment, max_size=2))
def test_random_toml_documents_build_or_refuse_in_one_line(text, assignments):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.toml"
        path.write_text(text, encoding="utf-8")
        check_clean(lambda: cli_scenario([str(path), *[f"--set={a}" for a in assignments]]))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sampled_from([*FAULT_KINDS, "nope"]), st.one_of(st.none(), floats.map(toml_float), st.text(max_size=6)),
       st.lists(st.tuples(st.sampled_from([*(f.name for f in dataclasses.fields(Fault)), "x"]), scalar_text), max_size=3))
def test_random_fault_specs_parse_or_refuse_in_one_line(kind, at, items):
    spec = kind + (f"@{at}" if at is not None else "") + (":" + ",".join(f"{k}={v}" for k, v in items) if items else "")
    try:
        table = parse_fault_spec(spec)
    except ScenarioError as err:
        assert "\n" not in str(err)
        return
    check_clean(lambda: Scenario.from_dict({"faults": {"f": table}}))


# ---------------------------------------------------------------- the command itself, in a subprocess
# After a tiny sale, random assignments whose numbers are either small (the run stays short) or absurd
# (huge, tiny, negative, not finite): an absurd value must be refused before the run, never crash it.
TINY = ["--set", "workload.buyers=200", "--set", "workload.window=0.01", "--set", "workload.duration=0.01",
        "--set", "workload.rate=2000", "--set", "workload.users=5", "--set", "sale.stock=50"]
small_or_absurd = st.one_of(
    st.integers(0, 8).map(str),
    st.sampled_from(["0.0", "0.001", "0.01", "0.05"]),
    st.sampled_from(["1e99", "1e308", "-1e99", "1e-300", "1e-12", "-1", "inf", "-inf", "nan", "2e18",
                     "9223372036854775807", "100000001", "1e9", "4097", "100001", "1000001"]),
    st.sampled_from(WORDS).map(json.dumps),
)
fault_table = st.tuples(st.sampled_from(list(FAULT_KINDS)), small_or_absurd, small_or_absurd, small_or_absurd).map(
    lambda t: f'faults.f1={{kind = "{t[0]}", rate = {t[1]}, duration = {t[2]}, factor = {t[3]}}}')
run_assignment = st.one_of(st.tuples(st.sampled_from(KEYS), small_or_absurd).map(lambda kv: f"{kv[0]}={kv[1]}"),
                           fault_table)


@settings(max_examples=int(os.environ.get("FLASHSIM_FUZZ_RUNS", 5)), deadline=None, derandomize=True)
@given(st.lists(run_assignment, min_size=1, max_size=3))
def test_flashsim_run_exits_0_or_2_without_a_traceback(assignments):
    argv = [sys.executable, "-m", "sim.cli", "run", "--quiet", *TINY, *[f"--set={a}" for a in assignments]]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    # 0: ran; 3: ran and reported a broken invariant (e.g. a drain that timed out); 2: refused
    assert done.returncode in (0, 2, 3), (done.returncode, done.stderr)
    if done.returncode == 2:
        assert done.stderr.startswith("flashsim: error: ") and done.stderr.count("\n") == 1, done.stderr
