"""Python twins of the stock-counter scripts (``deduct.lua``, ``init_stock.lua``, and the
idempotent ``deduct_once.lua``, ``deduct_once_detail.lua``, ``deduct_audit.lua``)."""

from __future__ import annotations

from typing import Any

from engine.pipeline.twins import write_detail
from engine.scripts import BAD_QTY, NO_STOCK_KEY, SOLD_OUT, Store, as_int, lua_number, register


def deduct(store: Store, keys: tuple, args: tuple) -> int:
    qty = args[0]
    if qty.__class__ is not int:  # fast path: the engine always sends ints
        qty = as_int(qty)
        if qty is None:
            return BAD_QTY
    if qty <= 0:
        return BAD_QTY
    stock_key = keys[0]
    stock = store.get(stock_key)
    if stock is None:
        return NO_STOCK_KEY
    if stock < qty:
        return SOLD_OUT
    sold_key = keys[1]
    store[sold_key] = store.get(sold_key, 0) + qty
    stock -= qty
    store[stock_key] = stock
    return stock


def init_stock(store: Store, keys: tuple, args: tuple) -> int:
    stock = as_int(args[0])
    if stock is None or stock < 0:
        return BAD_QTY
    if keys[0] in store or keys[1] in store:
        return 0
    store[keys[0]] = stock
    store[keys[1]] = 0
    return 1


def _field(value: Any) -> str:
    """An ARGV as the hash field Redis makes of it (redis-py sends ints and floats as their repr)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _once(store: Store, keys: tuple, args: tuple) -> tuple[list[Any] | None, int, str, bool]:
    """The shared start of the deduct_once scripts: (early reply, qty, request id, keyed)."""
    qty = as_int(args[0]) if args[0].__class__ is not int else args[0]
    if qty is None or qty <= 0:
        return [BAD_QTY, 0], 0, "", False
    rid = _field(args[1])
    keyed = _field(args[2]) == "1"
    if keyed:
        first = store.get(keys[2], {}).get(rid)
        if first is not None:
            number = lua_number(first)
            return ([] if number is None else [number, 1]), qty, rid, keyed
    if store.get(keys[0]) is None:
        return [NO_STOCK_KEY, 0], qty, rid, keyed
    return None, qty, rid, keyed


def _take(store: Store, keys: tuple, qty: int, rid: str, keyed: bool) -> int:
    """Deduct ``qty`` if the stock holds it (audit the request id); remember the reply when keyed."""
    stock = store[keys[0]]
    reply = SOLD_OUT
    if stock >= qty:
        store[keys[1]] = store.get(keys[1], 0) + qty
        reply = store[keys[0]] = stock - qty
        audit = store.setdefault(keys[3], {})
        audit[rid] = int(audit.get(rid, 0)) + 1
    if keyed:
        store.setdefault(keys[2], {})[rid] = reply
    return reply


def deduct_once(store: Store, keys: tuple, args: tuple) -> list[Any]:
    early, qty, rid, keyed = _once(store, keys, args)
    if early is not None:
        return early
    return [_take(store, keys, qty, rid, keyed), 0]


def deduct_once_detail(store: Store, keys: tuple, args: tuple) -> list[Any]:
    early, qty, rid, keyed = _once(store, keys, args)
    if early is not None:
        return early + [0, 0] if early else early
    reply = _take(store, keys, qty, rid, keyed)
    if reply < 0:
        return [reply, 0, 0, 0]
    return [reply, 0, *write_detail(store, keys[4], keys[5], keys[6], qty, args[3], args[4])]


def deduct_audit(store: Store, keys: tuple, args: tuple) -> list[int]:
    counts = store.get(keys[0], {})
    return [len(counts), sum(int(lua_number(c) or 0) for c in counts.values())]


register("deduct", deduct, __package__)
register("deduct_once", deduct_once, __package__)
register("deduct_once_detail", deduct_once_detail, __package__)
register("deduct_audit", deduct_audit, __package__)
register("init_stock", init_stock, __package__)
