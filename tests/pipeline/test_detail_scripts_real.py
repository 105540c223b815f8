"""The detail-record Lua scripts against their Python twins on the real Redis.

Random sequences of deductions, collects, stale re-sends, applied marks and
summaries run on both; every reply and the final state of every key agree.
A deduction's ``seen`` (the highest seq its caller was given) is drawn too, often
above the counter: a rolled-back partition moves to a new epoch in both.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.counter.keys import StockKeys
from engine.pipeline.keys import DetailKeys
from engine.pipeline.sync import stamp

pytestmark = pytest.mark.real
counter = itertools.count()

step = st.one_of(
    st.tuples(st.just("deduct"), st.tuples(st.one_of(st.integers(-1, 4), st.sampled_from(["2", "x", "1.5"])),
                                           st.one_of(st.integers(0, 12), st.sampled_from([-1, "x", "2.5", "3"])))),
    st.tuples(st.just("collect"), st.integers(1, 5)),
    st.tuples(st.just("stale"), st.sampled_from([0.0, 0.5, 3.0])),
    st.tuples(st.just("applied"), st.integers(0, 6)),
    st.tuples(st.just("backlog"), st.just(0)),
    st.tuples(st.just("summary"), st.just(0)),
)


def snapshot(client, stock: StockKeys, part: DetailKeys) -> dict:
    state = {}
    for key in (stock.stock, stock.sold):
        value = client.get(key)
        state[key] = None if value is None else int(value)
    for key in (part.details, part.batches, part.meta):
        state[key] = client.hgetall(key) or None
    state[part.pending] = client.lrange(part.pending, 0, -1) or None
    return state


def twin_snapshot(store: dict, stock: StockKeys, part: DetailKeys) -> dict:
    state = {stock.stock: store.get(stock.stock), stock.sold: store.get(stock.sold)}
    for key in (part.details, part.batches, part.meta):
        value = store.get(key)
        state[key] = {k: str(v) for k, v in value.items()} if value else None
    state[part.pending] = list(store[part.pending]) if store.get(part.pending) else None
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.integers(0, 12), steps=st.lists(step, min_size=1, max_size=30))
def test_detail_scripts_agree(redis_client, namespace, initial, steps):
    stock = StockKeys(namespace, f"dd{next(counter)}")
    part = DetailKeys.beside(stock)
    store: dict = {}
    run = {
        "deduct": ("deduct_detail", (stock.stock, stock.sold, part.details, part.pending, part.meta)),
        "collect": ("detail_collect", (part.details, part.pending, part.batches, part.meta)),
        "stale": ("detail_stale", (part.details, part.batches)),
        "applied": ("detail_applied", (part.details, part.batches)),
        "backlog": ("detail_backlog", (part.pending, part.batches)),
        "summary": ("detail_summary", (part.details, stock.sold)),
    }
    for script, keys, args in [("init_stock", (stock.stock, stock.sold), (initial,))]:
        assert redis_client.eval(scripts.get(script).lua, len(keys), *keys, *args) == \
            scripts.get(script).twin(store, keys, args)
    try:
        for i, (kind, value) in enumerate(steps):
            now = stamp(0.25 * i + 0.123456789)
            args = {"deduct": (value[0], now, value[1]) if kind == "deduct" else (), "collect": (now, value), "stale": (now, value),
                    "applied": (value,), "backlog": (), "summary": ()}[kind]
            name, keys = run[kind]
            real = redis_client.eval(scripts.get(name).lua, len(keys), *keys, *args)
            twin = scripts.get(name).twin(store, keys, args)
            assert real == twin, (kind, args)
        assert snapshot(redis_client, stock, part) == twin_snapshot(store, stock, part)
    finally:
        redis_client.delete(stock.stock, stock.sold, *part.all())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(0, 8), b=st.integers(0, 8), threshold=st.integers(1, 4),
       qtys=st.lists(st.one_of(st.integers(-1, 4), st.just("x")), min_size=1, max_size=12),
       seen=st.lists(st.one_of(st.integers(0, 15), st.just("x")), min_size=1, max_size=4))
def test_partition_deduct_detail_is_partition_deduct_plus_a_record(redis_client, namespace, a, b, threshold, qtys,
                                                                   seen):
    from engine.sharded.keys import PartitionKeys

    part = PartitionKeys(namespace, f"pd{next(counter)}")
    detail = DetailKeys(namespace, part.tag)
    keys = (*part.deduct_keys(), detail.details, detail.pending, detail.meta)
    plain: dict = {}  # the same partition under partition_deduct alone
    store: dict = {}
    for twin_store in (plain, store):
        scripts.get("partition_init").twin(twin_store, part.init_keys(), ())
        twin_store[part.a], twin_store[part.b] = a, b
    redis_client.eval(scripts.get("partition_init").lua, 6, *part.init_keys())
    redis_client.set(part.a, a)
    redis_client.set(part.b, b)
    try:
        for i, qty in enumerate(qtys):
            args = (qty, threshold, stamp(0.1 * i), seen[i % len(seen)])
            real = redis_client.eval(scripts.get("partition_deduct_detail").lua, len(keys), *keys, *args)
            twin = scripts.get("partition_deduct_detail").twin(store, keys, args)
            base = scripts.get("partition_deduct").twin(plain, part.deduct_keys(), args[:2])
            assert real == twin and twin[:5] == base
        assert redis_client.hgetall(detail.details) == (store.get(detail.details) or {})
        assert redis_client.lrange(detail.pending, 0, -1) == (store.get(detail.pending) or [])
        assert int(redis_client.get(part.sold)) == store[part.sold] == plain[part.sold]
        assert redis_client.hgetall(detail.meta) == {k: str(v) for k, v in (store.get(detail.meta) or {}).items()}
    finally:
        redis_client.delete(*part.all(), *detail.all())
