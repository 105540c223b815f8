"""The columnar stores read and write exactly like the dicts they replace (engine/pipeline/columnar.py).

Checked three ways: each class against a plain dict (or set) under random operations; the detail
twins on a store whose hashes are columnar against the same twins on plain dicts, reply by reply;
and a simulated sale, after which the Redis hash and the DB table hold every record in columns and
the DB and the broker hold no per-record object.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.pipeline.columnar import DetailHash, DetailRows, IdSet, split_id
from engine.pipeline.twins import detail_summary
from engine.scenario import Scenario
from sim import simulate
from sim.world import COMPONENTS

# ids: usual ones (seq, epoch.seq, tag:seq) and ones that must go to the plain dict
ids = st.one_of(
    st.integers(1, 300).map(str),
    st.integers(1, 50).map(lambda n: f"r7.{n}"),
    st.integers(1, 50).map(lambda n: f"sku42:{n}"),
    st.sampled_from(["0", "007", "x", "", "sku42:", "-3", "12345678901234567890", "1" * 15, "9" * 16]),
    st.integers(10**6, 10**6 + 3).map(str),  # far past a block's end: sparse
)
stamps = st.one_of(st.floats(0, 1e5, allow_nan=False).map(lambda x: f"{x:.6f}"),
                   st.sampled_from(["1.5", "abc", "1e3", "0.1000000", "-0.000000", "nan"]))
records = st.one_of(
    st.tuples(st.integers(-(2**64), 2**64), stamps, st.sampled_from("psax")).map(lambda r: f"{r[0]}|{r[1]}|{r[2]}"),
    st.sampled_from(["", "|", "1|2", "01|1.000000|p", "1|1.000000|pp", "+1|1.000000|p"]),
)


def test_split_id():
    assert split_id("sku42:17") == ("sku42:", 17)
    assert split_id("17") == ("", 17)
    assert split_id("r3.17") == ("r3.", 17)
    for key in ("017", "x", "", "sku:", "0", 17, None, "1" * 16):
        assert split_id(key) is None


hash_ops = st.lists(st.one_of(
    st.tuples(st.just("set"), ids, records),
    st.tuples(st.just("add"), ids, st.tuples(st.integers(-5, 2**63), stamps)),
    st.tuples(st.just("restatus"), ids, st.sampled_from("psaq")),
    st.tuples(st.just("del"), ids, st.none()),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(hash_ops)
def test_detail_hash_is_a_dict(ops):
    h, model = DetailHash(), {}
    for op, key, value in ops:
        if op == "set":
            h[key] = model[key] = value
        elif op == "add":
            qty, t = value
            h.add(key, qty, t)
            model[key] = f"{qty}|{t}|p"
        elif op == "restatus":
            if key in model:
                model[key] = model[key][:-1] + value
                assert h.restatus(key, value) == model[key]
            else:
                with pytest.raises(KeyError):
                    h.restatus(key, value)
        elif key in model:
            del h[key], model[key]
        else:
            with pytest.raises(KeyError):
                del h[key]
        assert len(h) == len(model)
        assert dict(h.items()) == model and h == model and model == h
        assert all(k in h and h.get(k) == v for k, v in model.items())
        assert h.get("nope", 5) == 5 and "nope" not in h
    if all(v.rpartition("|")[0].partition("|")[0].lstrip("-").isdigit() for v in model.values()):
        plain = {"d": model, "sold": 3}
        assert detail_summary({"d": h, "sold": 3}, ("d", "sold"), ()) == detail_summary(plain, ("d", "sold"), ())


row_values = st.tuples(st.sampled_from(["sku42", "sku7"]), st.sampled_from(["sku42", "sku42:p1"]),
                       st.one_of(st.integers(-(2**64), 2**64), st.just(1.5)),
                       st.one_of(st.floats(allow_nan=False), st.just(3)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("insert"), ids, row_values),
    st.tuples(st.just("set"), ids, row_values),
    st.tuples(st.just("del"), ids, st.none()),
    st.tuples(st.just("copy"), ids, st.none()),
), max_size=60))
def test_detail_rows_is_a_dict(ops):
    rows, model = DetailRows(), {}
    committed, committed_model = DetailRows(), {}
    for op, key, value in ops:
        if op in ("insert", "set"):
            sku, part, qty, t = value
            row = {"detail_id": key, "sku": sku, "part": part, "qty": qty, "t": t}
            if op == "insert":
                assert rows.insert(key, sku, part, qty, t) == (key not in model)
                model.setdefault(key, row)
            else:
                rows[key] = model[key] = row
        elif op == "copy":
            rows.copy_to(key, committed)
            if key in model:
                committed_model[key] = dict(model[key])
            else:
                committed_model.pop(key, None)
        elif key in model:
            del rows[key], model[key]
        else:
            with pytest.raises(KeyError):
                del rows[key]
        assert len(rows) == len(model) and dict(rows.items()) == model and rows == model
        assert dict(committed.items()) == committed_model
        assert all(k in rows and rows.get(k) == v for k, v in model.items())
    for sku in ("sku42", "sku7"):  # (BIGINT qty: the twins write ints; a float sum would depend on the order)
        qtys = [r["qty"] for r in model.values() if r["sku"] == sku]
        if all(q.__class__ is int for q in qtys):
            assert rows.totals(sku) == (len(qtys), sum(qtys))


@settings(max_examples=200, deadline=None)
@given(st.lists(ids, max_size=80))
def test_id_set_is_a_set(keys):
    seen, model = IdSet(), set()
    for key in keys:
        assert seen.add(key) == (key not in model)
        model.add(key)
        assert len(seen) == len(model) and all(k in seen for k in model)
    assert "never" not in seen and sorted(seen) == sorted(model)
    half = IdSet()
    for key in keys[::2] + ["sku42:1", "other"]:
        half.add(key)
    assert sorted(seen & half) == sorted(model & {*keys[::2], "sku42:1", "other"})
    seen |= half
    assert sorted(seen) == sorted(model | {*keys[::2], "sku42:1", "other"})


# The detail twins on columnar hashes (made by deduct_detail) against the same twins on plain dict
# hashes (made beforehand: write_detail keeps a hash it finds), reply by reply.
twin_step = st.one_of(
    st.tuples(st.just("deduct"), st.integers(-1, 3), st.one_of(st.integers(0, 400), st.just("junk"))),
    st.tuples(st.just("collect"), st.integers(0, 5), st.none()),
    st.tuples(st.just("stale"), st.integers(0, 3), st.none()),
    st.tuples(st.just("applied"), st.integers(0, 8), st.none()),
    st.tuples(st.just("summary"), st.none(), st.none()),
)
KEYS = ("stock", "sold", "details", "pending", "meta")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.lists(twin_step, min_size=1, max_size=50), st.floats(0, 100))
def test_twins_agree_on_columnar_and_plain_hashes(stock, steps, t0):
    columnar: dict = {"stock": stock}
    plain: dict = {"stock": stock, "details": {}}
    for k, (step, a, b) in enumerate(steps):
        now = f"{t0 + k * 0.013:.6f}" if k % 7 else f"{t0 + k}"  # now and then a time not written as %.6f
        replies = []
        for store in (columnar, plain):
            try:
                reply = run_step(store, step, a, b, now)
            except Exception as err:  # noqa: BLE001  (a Redis error in the Lua: the same for both)
                reply = type(err).__name__
            replies.append(reply)
        assert replies[0] == replies[1], step
        details = columnar.get("details")
        assert details is None or details.__class__ is DetailHash
        assert {k: v for k, v in columnar.items() if k != "details"} == {
            k: v for k, v in plain.items() if k != "details"}
        assert dict((details or {}).items()) == plain["details"]


def run_step(store: dict, step: str, a, b, now: str):
    if step == "deduct":
        return scripts.get("deduct_detail").twin(store, KEYS, (a, now, b))
    if step == "collect":
        return scripts.get("detail_collect").twin(store, ("details", "pending", "batches", "meta"), (now, a))
    if step == "stale":
        return scripts.get("detail_stale").twin(store, ("details", "batches"), (now, a))
    if step == "applied":
        return scripts.get("detail_applied").twin(store, ("details", "batches"), (a,))
    reply = scripts.get("detail_summary").twin(store, ("details", "sold"), ())
    return reply


def capture_world(worlds: list):
    def install(world):
        worlds.append(world)
    return install


def test_a_simulated_sale_keeps_records_in_columns_and_no_per_record_object():
    worlds: list = []
    hook = capture_world(worlds)
    COMPONENTS.append(hook)
    try:
        scenario = Scenario().with_overrides(["sale.stock=100000", "workload.kind=poisson", "workload.rate=20000",
                                              "workload.duration=0.5", "pipeline.enabled=true"])
        result = simulate(scenario, seed=2)
    finally:
        COMPONENTS.remove(hook)
    world = worlds[0]
    s = result.summary
    assert s["ok"] > 9000 and s["recon_db_detail_rows"] == s["recon_detail_records"] == s["ok"]
    assert s["sync_differences"] == 0 and s["sync_applied_twice"] == 0
    for image in (world.db.working, world.db.committed):
        table = image["detail"]
        assert table.__class__ is DetailRows and len(table) == s["ok"] and not table._other
        some = next(iter(table))
        assert table[some]["sku"] == scenario.sale.sku and table[some]["qty"] >= 1
    # every detail row lock released and its Row dropped (a ledger row may still wait for its lock timer)
    assert not [key for key in world.db.rows if key[0] == "detail"] and len(world.db.rows) <= 2
    hashes = [v for node in world.cluster.nodes for v in node.store.values() if v.__class__ is DetailHash]
    assert len(hashes) == 1 and len(hashes[0]) == s["ok"] and not hashes[0]._other
    assert set(hashes[0].summary()[2:4]) == {0}  # nothing pending or sent: all applied
    assert all(not topic.messages for topic in world.mq.topics.values())  # acknowledged: forgotten
    assert not math.isnan(s["sync_lag_p99"])


@pytest.mark.parametrize("cls, entries", [
    (DetailHash, {"1": "2|0.500000|p", "2": "1|0.600000|a", "r3.4": "1|0.700000|s", "x": "odd"}),
    (DetailRows, {f"sku42:{n}": {"detail_id": f"sku42:{n}", "sku": "sku42", "part": "sku42", "qty": n, "t": 0.5}
                  for n in (1, 2, 3)} | {"odd": {"detail_id": "odd", "sku": "s", "part": "p", "qty": 1.5, "t": 1}}),
])
def test_columnar_stores_are_dicts_to_every_reader(cls, entries):
    """Code that asks isinstance(value, dict), copies, pickles or serialises a hash sees the same entries."""
    import copy
    import json
    import pickle

    store = cls()
    for key, value in entries.items():
        store[key] = value
    assert isinstance(store, dict) and store == entries and entries == store and not (store != entries)  # noqa: SIM202
    assert store != {} and {} != store and bool(store) and not cls()  # noqa: SIM300  (both sides asked)
    assert dict(store) == {**store} == entries and sorted(store.keys()) == sorted(entries)
    assert json.dumps(dict(store), sort_keys=True) == json.dumps(entries, sort_keys=True)  # (C reads dict storage)
    for twin in (copy.deepcopy(store), pickle.loads(pickle.dumps(store)), store.copy(), copy.copy(store)):
        assert twin.__class__ is cls and twin == entries
    assert list(reversed(store)) == list(store)[::-1] and store | {} == entries
    assert repr(store) == repr(dict(store.items()))
    key = next(iter(entries))
    assert store.pop(key) == entries[key] and key not in store and len(store) == len(entries) - 1
    store.clear()
    assert store == {} and len(store) == 0
