"""Python twins of the stock-counter scripts (``deduct.lua``, ``init_stock.lua``)."""

from __future__ import annotations

from engine.scripts import BAD_QTY, NO_STOCK_KEY, SOLD_OUT, Store, as_int, register


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


register("deduct", deduct, __package__)
register("init_stock", init_stock, __package__)
