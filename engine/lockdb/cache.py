"""Python twins of the DB read-cache scripts (``cache_init``, ``cache_get``, ``cache_deduct``).

The cache is one Redis integer per SKU: the stock the app believes the DB row
holds, read instead of the DB and decremented after each committed deduction.
"""

from __future__ import annotations

from engine.scripts import BAD_QTY, Store, as_int, register

MISSING = -1


def cache_init(store: Store, keys: tuple, args: tuple) -> int:
    stock = as_int(args[0])
    if stock is None or stock < 0:
        return BAD_QTY
    if keys[0] in store:
        return 0
    store[keys[0]] = stock
    return 1


def cache_get(store: Store, keys: tuple, args: tuple) -> int:
    return store.get(keys[0], MISSING)


def cache_deduct(store: Store, keys: tuple, args: tuple) -> int:
    value = store.get(keys[0])
    if value is None:
        return MISSING
    value -= int(args[0])
    store[keys[0]] = value
    return value


register("cache_init", cache_init, __package__)
register("cache_get", cache_get, __package__)
register("cache_deduct", cache_deduct, __package__)
