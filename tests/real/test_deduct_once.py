"""deduct_once / deduct_once_detail / deduct_audit against their twins on the real Redis, on random
sequences of attempts: request ids repeat (a client retry), keyed or not, with and without the
detail record. Replies and the final state of every key must agree after each call; and keyed, no
request id ever deducts twice (the audit hash holds 1 at most), while unkeyed repeats do.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.real.servers import to_value

pytestmark = pytest.mark.real

_tags = itertools.count()


def state(redis_client, keys):
    """Every key as Redis holds it: a counter, a hash or a list (numbers as numbers)."""
    out = {}
    for key in keys:
        kind = redis_client.type(key)  # the client decodes responses
        if kind == "string":
            out[key] = to_value(redis_client.get(key))
        elif kind == "hash":
            out[key] = {k: to_value(v) for k, v in redis_client.hgetall(key).items()}
        elif kind == "list":
            out[key] = [to_value(v) for v in redis_client.lrange(key, 0, -1)]
    return out


def twin_state(store, keys):
    out = {}
    for key in keys:
        value = store.get(key)
        if value is None or value == {} or value == []:
            continue
        if isinstance(value, dict):
            value = {str(k): to_value(str(v)) for k, v in value.items()}
        elif isinstance(value, list):
            value = [to_value(str(v)) for v in value]
        out[key] = value
    return out


attempt = st.tuples(st.integers(1, 3), st.integers(0, 5), st.sampled_from([1, 1, 1, 0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stock=st.integers(0, 12), attempts=st.lists(attempt, min_size=1, max_size=14), detail=st.booleans())
def test_retries_agree_with_the_twin(redis_client, namespace, stock, attempts, detail):
    tag = f"o{next(_tags)}"
    keys = tuple(f"{namespace}:{name}:{{{tag}}}" for name in ("stock", "sold", "req", "ded", "det", "pend", "meta"))
    base = keys[:4]
    redis_client.set(keys[0], stock)
    redis_client.set(keys[1], 0)
    store: dict = {keys[0]: stock, keys[1]: 0}
    name = "deduct_once_detail" if detail else "deduct_once"
    used = keys if detail else base
    for t, (qty, rid, keyed) in enumerate(attempts):
        args = (qty, rid, keyed, *((f"{t}.5", 0) if detail else ()))
        real = redis_client.eval(scripts.get(name).lua, len(used), *used, *args)
        twin = scripts.get(name).twin(store, used, args)
        assert real == twin, (t, qty, rid, keyed)
        assert state(redis_client, used) == twin_state(store, used)
    audit = redis_client.eval(scripts.get("deduct_audit").lua, 1, keys[3])
    assert audit == scripts.get("deduct_audit").twin(store, (keys[3],), ())
    ids, deductions = audit
    if all(keyed for _, _, keyed in attempts):
        assert deductions == ids  # keyed: at most one deduction per request id
    assert int(redis_client.get(keys[1])) == store[keys[1]]


def test_a_keyed_retry_replays_the_first_reply_and_an_unkeyed_one_deducts_again(redis_client, namespace):
    keys = tuple(f"{namespace}:{name}:{{r}}" for name in ("stock", "sold", "req", "ded"))
    redis_client.set(keys[0], 5)
    redis_client.set(keys[1], 0)
    run = lambda *args: redis_client.eval(scripts.get("deduct_once").lua, 4, *keys, *args)  # noqa: E731
    assert run(2, 7, 1) == [3, 0]
    assert run(2, 7, 1) == [3, 1]  # the retry: the first reply, nothing deducted
    assert int(redis_client.get(keys[0])) == 3
    assert run(2, 7, 0) == [1, 0]  # without the key the same request deducts again
    assert redis_client.eval(scripts.get("deduct_audit").lua, 1, keys[3]) == [1, 2]  # one id, two deductions
    assert run(4, 8, 1) == [-1, 0] and run(1, 8, 1) == [-1, 1]  # a sold-out answer is remembered too
