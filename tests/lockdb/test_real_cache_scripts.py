"""The read-cache Lua scripts against their twins on the real Redis (own namespace)."""

import pytest

from engine import scripts

pytestmark = pytest.mark.real


@pytest.mark.parametrize("start", [None, 0, 7])
def test_cache_scripts_agree(redis_client, namespace, start):
    key = f"{namespace}:cache:{{s{start}}}:stock"
    store = {}
    if start is not None:
        redis_client.set(key, start)
        store[key] = start
    for name, args in [("cache_get", ()), ("cache_init", (5,)), ("cache_get", ()), ("cache_deduct", (2,)),
                       ("cache_deduct", (4,)), ("cache_get", ()), ("cache_init", (9,))]:
        real = redis_client.eval(scripts.get(name).lua, 1, key, *args)
        twin = scripts.get(name).twin(store, (key,), args)
        assert real == twin, (name, args)
    assert int(redis_client.get(key)) == store[key]
