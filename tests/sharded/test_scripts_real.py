"""Differential test: every partition/pool Lua script agrees with its Python twin on a real Redis.

One random sequence of script calls (hypothesis) runs against a real Redis (EVAL of
the ``.lua``) and against an in-memory store (the twin); replies and final state must
be identical. Keys live in a fresh namespace that the fixture deletes afterwards.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.sharded import twins  # noqa: F401  (registers the partition and pool scripts)
from engine.sharded.keys import PartitionKeys, PoolKeys

pytestmark = pytest.mark.real

TICKETS = st.sampled_from(["t1", "t2", "t3", "p0:e1"])
UNITS = st.integers(min_value=-1, max_value=30)
BACKS = st.sampled_from(["back:t1", "back:p0:e1", "retire:p0", "r2"])
DEDUCT = st.tuples(st.just("partition_deduct"), st.sampled_from([1, 1, 1, 1, 2, 2, 3, 0, -1, "x"]), st.integers(1, 6))
INJECT = st.tuples(st.just("partition_inject"), TICKETS, UNITS, st.sampled_from([-1, 0, 1]), st.sampled_from([0, 1]))
CALLS = st.one_of(  # deductions and injections most often, a retirement now and then
    DEDUCT, DEDUCT, DEDUCT, DEDUCT, DEDUCT, INJECT, INJECT,
    st.tuples(st.just("partition_retire"), st.sampled_from(["retire:p0", "r2"])),
    st.tuples(st.just("partition_transfers")),
    st.tuples(st.just("pool_transfers")),
    st.tuples(st.just("partition_settle"), st.integers(-1, 30), st.lists(BACKS, max_size=3)),
    st.tuples(st.just("pool_settle"), st.integers(-1, 30), st.lists(TICKETS, max_size=3)),
    st.tuples(st.just("partition_status")),
    st.tuples(st.just("pool_take"), TICKETS, UNITS, st.sampled_from([0, 1]), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just("pool_return"), TICKETS, UNITS),
    st.tuples(st.just("pool_status")),
    st.tuples(st.just("partition_init")),
    st.tuples(st.just("pool_init"), UNITS),
)


def _keys_and_args(call: tuple, part: PartitionKeys, pool: PoolKeys) -> tuple[tuple, tuple]:
    name, *rest = call
    if name == "partition_deduct":
        return part.deduct_keys(), (rest[0], rest[1])
    if name == "partition_inject":
        ticket, units, sub, target = rest
        return part.inject_keys(target), (ticket, units, sub, 20)
    if name == "partition_retire":
        return part.retire_keys(), tuple(rest)
    if name == "partition_transfers":
        return part.transfer_keys(), ()
    if name == "pool_transfers":
        return pool.transfer_keys(0), ()
    if name == "partition_settle":
        return part.settle_keys(), (rest[0], *rest[1])
    if name == "pool_settle":
        return pool.settle_keys(0), (rest[0], *rest[1])
    if name == "partition_status":
        return part.status_keys(), ()
    if name == "pool_take":
        return pool.take_keys(0), tuple(rest)
    if name == "pool_return":
        return pool.return_keys(0), ("back:" + rest[0], rest[1])
    if name == "pool_status":
        return (pool.stock,), ()
    if name == "partition_init":
        return part.init_keys(), ()
    return (pool.stock,), tuple(rest)


def _state(client, part: PartitionKeys, pool: PoolKeys) -> dict:
    state = {}
    for key in (part.a, part.b, part.sold, part.received, part.returned, pool.stock, pool.issued(0), pool.back(0)):
        value = client.get(key)
        state[key] = None if value is None else int(value)
    for key in (part.meta, part.applied, pool.tickets, part.outbox, pool.outbox(0)):
        state[key] = {k: _number(v) for k, v in client.hgetall(key).items()} or None
    return state


def _number(value):
    """Replies and hash values as Redis holds them: numeric text as a number (outbox records stay text)."""
    if isinstance(value, list):
        return [_number(v) for v in value]
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _twin_state(store: dict, part: PartitionKeys, pool: PoolKeys) -> dict:
    keys = (part.a, part.b, part.sold, part.received, part.returned, pool.stock, pool.issued(0), pool.back(0),
            part.meta, part.applied, pool.tickets, part.outbox, pool.outbox(0))
    return {key: (dict(store[key]) or None) if isinstance(store.get(key), dict) else store.get(key) for key in keys}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup_units=st.integers(0, 40), a=st.integers(0, 12), b=st.integers(0, 12),
       calls=st.lists(CALLS, min_size=1, max_size=40))
def test_lua_and_twin_agree(redis_client, namespace, setup_units, a, b, calls):
    run = f"{namespace}:{redis_client.incr(namespace + ':run')}"
    part, pool = PartitionKeys(run, "sku:p0"), PoolKeys(run, "sku:pool")
    store: dict = {}
    prelude = [("partition_init",), ("pool_init", setup_units),
               ("pool_take", "init-a", a, 0, -1), ("partition_inject", "init-a", a, -1, 0),
               ("pool_take", "init-b", b, 1, -1), ("partition_inject", "init-b", b, -1, 1)]
    for call in prelude + calls:
        keys, args = _keys_and_args(call, part, pool)
        script = scripts.get(call[0])
        real = redis_client.eval(script.lua, len(keys), *keys, *args)
        twin = script.twin(store, keys, args)
        assert _number(real) == _number(twin), (call, real, twin)
    assert _state(redis_client, part, pool) == _twin_state(store, part, pool)
