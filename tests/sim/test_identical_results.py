"""Identical results: every strategy, small fixed sales, a few seeds, against golden digests.

A speed-up must not change any result (issue 15): for each case below the test hashes
the whole ``requests`` table (columns sorted by name; each column's dtype and values,
floats written with 12 significant digits so that the digest does not hang on the last
bit of a platform's libm) and compares it, and a few key summary figures, with
``tests/sim/golden_requests.json``.

A deliberate model change (a new column, a different draw, a cost model that moves a
result) changes the digests: regenerate the file and commit it with the change, saying why::

    FLASHSIM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/sim/test_identical_results.py

With the variable set, every case rewrites its entry and passes; without it, a case whose
figures differ fails and shows which summary figures moved.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine.scenario import Scenario
from sim import simulate

GOLDEN = Path(__file__).with_name("golden_requests.json")
UPDATE = os.environ.get("FLASHSIM_UPDATE_GOLDEN") == "1"
SEEDS = (1, 2, 3)
# summary figures every strategy reports, compared in the clear (readable diffs) next to the digest
KEY_FIGURES = ("requests", "ok", "sold_out", "timeout", "error", "ok_qty", "sold", "remaining", "oversold",
               "goodput", "p50", "p99", "ok_p99", "time_to_sellout", "violations")

# A burst of 3,000 buyers for 1,000 units: the sale sells out and later buyers are refused. The DB
# strategies get 2,000 buyers over 4 s (500/s, below the hot row's capacity) so that they sell out
# too rather than collapse into timeouts only.
BASE = ("workload.buyers=3000", "workload.window=0.5", "sale.stock=1000", "workload.qty={low=1, high=3}",
        "workload.timeout=0.2", "network.redis={kind='lognormal', mean=0.0002, cv=0.5}")
DB_LOAD = ("workload.buyers=2000", "workload.window=4.0")
CASES: dict[str, tuple[str, ...]] = {
    "single_redis": ("strategy=single_redis",),  # the async pipeline is on by default
    "single_redis+app": ("strategy=single_redis", "app.instances=2", "app.workers=2",
                         'app.cpu_request={kind="lognormal", mean=2.0e-5, cv=0.5}',
                         'app.cpu_op={kind="lognormal", mean=1.5e-5, cv=0.5}', "network.client=0.0002"),
    "sharded": ("strategy=sharded", "redis.nodes=4", "sharded.partitions=8", "sharded.preallocation=60",
                "sharded.subdomain_size=60", "sharded.threshold=15", "sharded.injection=40"),
    "db_pessimistic": ("strategy=db_pessimistic", *DB_LOAD),
    "db_optimistic": ("strategy=db_optimistic", *DB_LOAD),
    "db_conditional": ("strategy=db_conditional", *DB_LOAD),
    "db_batched": ("strategy=db_batched", *DB_LOAD),
}


def _number(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), ".12g")
    return str(value)


def table_digest(frame: pd.DataFrame) -> str:
    """sha256 of a DataFrame: columns sorted by name, each with its dtype and its values as text."""
    h = hashlib.sha256()
    h.update(f"rows={len(frame)}\n".encode())
    for name in sorted(frame.columns):
        column = frame[name]
        h.update(f"{name}:{column.dtype}\n".encode())
        if isinstance(column.dtype, pd.CategoricalDtype):
            values = column.astype(str).to_numpy()
            text = "\n".join(values.tolist())
        elif np.issubdtype(column.dtype, np.floating):
            text = "\n".join(format(v, ".12g") for v in column.to_numpy(dtype=float).tolist())
        else:
            text = "\n".join(map(str, column.to_numpy().tolist()))
        h.update(text.encode())
        h.update(b"\n")
    return h.hexdigest()


def figures(case: str, seed: int) -> dict[str, Any]:
    scenario = Scenario().with_overrides([*BASE, *CASES[case]])
    result = simulate(scenario, seed=seed)
    return {"requests_sha256": table_digest(result.requests),
            "summary": {k: _number(result.summary[k]) for k in KEY_FIGURES}}


def _load() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.is_file() else {}


@pytest.fixture(scope="module")
def golden():
    data = _load()
    yield data
    if UPDATE:
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def test_digest_is_stable_and_sensitive():
    frame = pd.DataFrame({"b": [0.1 + 0.2, 1.0], "a": pd.Categorical(["ok", "sold_out"]), "c": [1, 2]})
    assert table_digest(frame) == table_digest(frame[["c", "a", "b"]])  # column order does not matter
    assert table_digest(frame) == table_digest(frame.assign(b=[0.3 + 1e-17, 1.0]))  # nor the last bits
    assert table_digest(frame) != table_digest(frame.assign(b=[0.3001, 1.0]))
    assert table_digest(frame) != table_digest(frame.assign(c=[1, 3]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("case", list(CASES))
def test_identical_results(golden, case, seed):
    key = f"{case}/seed{seed}"
    got = figures(case, seed)
    if UPDATE:
        golden[key] = got
        return
    assert key in golden, f"no golden entry {key}: run with FLASHSIM_UPDATE_GOLDEN=1 (see the module docstring)"
    want = golden[key]
    moved = {k: (want["summary"].get(k), v) for k, v in got["summary"].items() if want["summary"].get(k) != v}
    assert not moved, f"{key}: summary figures moved (golden, now): {moved}"
    assert got["requests_sha256"] == want["requests_sha256"], f"{key}: the requests table differs from the golden one"


def test_scenarios_exercise_their_strategy(golden):
    """The golden cases are not degenerate: every strategy sells out without violating an invariant."""
    if UPDATE or not golden:
        pytest.skip("golden file being written")
    for case in CASES:
        summary = golden[f"{case}/seed1"]["summary"]
        assert int(summary["ok"]) > 0 and int(summary["sold"]) == 1000 and int(summary["violations"]) == 0, case
