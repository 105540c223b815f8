"""Lua against its Python twin on the real Redis at 127.0.0.1:6379, on random inputs.

Each example runs in a fresh hash-tagged key set inside the test's own
namespace: the same start state goes to Redis and to an in-memory store, the
same script runs on both, and replies and final states must agree.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scripts

pytestmark = pytest.mark.real

counter = itertools.count()
# Lua numbers are doubles: stay well inside 2**53 so both sides are exact.
amounts = st.integers(min_value=-(2**40), max_value=2**40)


def fresh_keys(namespace: str) -> tuple[str, str]:
    tag = f"d{next(counter)}"
    return f"{namespace}:stock:{{{tag}}}", f"{namespace}:sold:{{{tag}}}"


def run_both(redis_client, name, keys, args, start):
    for key, value in start.items():
        redis_client.set(key, value)
    store = dict(start)
    real = redis_client.eval(scripts.get(name).lua, len(keys), *keys, *args)
    twin = scripts.get(name).twin(store, tuple(keys), tuple(args))
    real_state = {k: (int(v) if v is not None else None) for k, v in zip(keys, redis_client.mget(keys))}
    twin_state = {k: store.get(k) for k in keys}
    redis_client.delete(*keys)
    return real, twin, real_state, twin_state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
       sold=st.one_of(st.none(), st.integers(min_value=0, max_value=2**40)),
       qty=st.one_of(amounts, st.sampled_from(["1", "2.5", "abc", "", "-3", "1e2"])))
def test_deduct_agrees(redis_client, namespace, stock, sold, qty):
    keys = fresh_keys(namespace)
    start = {k: v for k, v in zip(keys, (stock, sold)) if v is not None}
    real, twin, real_state, twin_state = run_both(redis_client, "deduct", keys, [qty], start)
    assert real == twin
    assert real_state == twin_state


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(initial=st.one_of(amounts, st.sampled_from(["7", "x", "0.5"])),
       existing=st.sampled_from(["none", "stock", "sold", "both"]))
def test_init_stock_agrees(redis_client, namespace, initial, existing):
    keys = fresh_keys(namespace)
    start = {}
    if existing in ("stock", "both"):
        start[keys[0]] = 5
    if existing in ("sold", "both"):
        start[keys[1]] = 1
    real, twin, real_state, twin_state = run_both(redis_client, "init_stock", keys, [initial], start)
    assert real == twin
    assert real_state == twin_state


def test_a_sequence_of_deductions_agrees(redis_client, namespace):
    keys = fresh_keys(namespace)
    redis_client.eval(scripts.get("init_stock").lua, 2, *keys, 10)
    store: dict = {}
    scripts.get("init_stock").twin(store, keys, (10,))
    for qty in [3, 3, 3, 3, 1, 1, 0, -1]:
        assert redis_client.eval(scripts.get("deduct").lua, 2, *keys, qty) == scripts.get("deduct").twin(store, keys, (qty,))
    assert int(redis_client.get(keys[0])) == store[keys[0]] == 0
    assert int(redis_client.get(keys[1])) == store[keys[1]] == 10
