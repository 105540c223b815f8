"""Python twins of the partition and pool scripts (``partition_*.lua``, ``pool_*.lua``).

A partition (one hash tag, so one slot) holds two sub-domain counters A/B, a
sold counter, ``received`` (units injected so far), ``returned`` (units sent
back to the pool so far), a meta hash (``active``: 0 = A, 1 = B, -1 retired;
``pend0``/``pend1``: epoch of the refill ticket out for A/B, 0: none; ``dry``: the pool answered empty;
``epoch``: refill tickets issued) and a hash of applied tickets. The pool (its
own tag) holds its stock, per-partition ``issued`` and ``back`` counters and a
hash of the tickets it has seen.

Moving stock between the pool and a partition crosses slots, so it takes two
scripts, each idempotent by ticket: ``pool_take`` then ``partition_inject``
(pool -> partition), ``partition_retire``/a bounce then ``pool_return``
(partition -> pool). In between, the units are *in flight*:
``issued - received`` and ``returned - back``. The first script of a transfer
also records it in an *outbox* on its own node (the pool keeps one per
partition: ticket -> ``"grant|sub|flag"``; a partition keeps one: return ticket
-> units), so that recovery (:mod:`engine.sharded.recovery`) can finish a
transfer whose app died between the two scripts: ``*_transfers`` read an outbox
with its counters, ``*_settle`` forget what the other side has applied. Meta
hash values are kept as ints here; Redis keeps them as the same numbers in text.
"""

from __future__ import annotations

from engine.pipeline.twins import write_detail
from engine.scripts import BAD_QTY, NO_STOCK_KEY, REGISTRY, SOLD_OUT, Script, Store, as_int, get, lua_number, register

RETIRED = -4
"""partition_deduct status of a retired partition."""

_META_FIELDS = ("active", "pend0", "pend1", "dry", "epoch")


def partition_init(store: Store, keys: tuple, args: tuple) -> int:
    if any(key in store for key in keys[:6]):
        return 0
    for key in keys[:5]:
        store[key] = 0
    store[keys[5]] = dict.fromkeys(_META_FIELDS, 0)
    return 1


def partition_deduct(store: Store, keys: tuple, args: tuple) -> list[int]:
    qty = args[0]
    if qty.__class__ is not int:
        qty = as_int(qty)
        if qty is None:
            return [BAD_QTY, 0, 0, 0, 0]
    if qty <= 0:
        return [BAD_QTY, 0, 0, 0, 0]
    meta = store.get(keys[3])
    if meta is None:
        return [NO_STOCK_KEY, 0, 0, 0, 0]
    # Lua's tonumber, after the meta check as in the Lua (junk there made the twin raise where the Lua replied)
    threshold = args[1] if args[1].__class__ is int else lua_number(args[1])
    act = meta["active"]
    if act < 0:
        return [RETIRED, 0, act, 0, 0]
    here, there = keys[act], keys[1 - act]
    x, y = store[here], store[there]
    if x + y < qty:
        return [SOLD_OUT, x + y, act, 0, max(meta["pend0"], meta["pend1"])]
    if x >= qty:
        x -= qty
    else:
        y -= qty - x
        x = 0
        store[there] = y
    store[here] = x
    store[keys[2]] = store.get(keys[2], 0) + qty  # INCRBY creates a missing sold counter
    switched = 0
    if (x < threshold and y >= threshold) or (x == 0 and y > 0):
        act = meta["active"] = 1 - act
        switched = 1
        x, y = y, x
    ticket = 0
    pend = "pend1" if act == 0 else "pend0"
    if y < threshold and meta["dry"] == 0 and meta[pend] == 0:
        ticket = meta["epoch"] = meta["epoch"] + 1
        meta[pend] = ticket
    return [0, x + y, act, switched, ticket]


def partition_inject(store: Store, keys: tuple, args: tuple) -> list[int]:
    units = as_int(args[1])
    if units is None or units < 0:
        return [BAD_QTY, 0, 0]
    meta = store.get(keys[3])
    if meta is None:
        return [NO_STOCK_KEY, 0, 0]
    applied = store.setdefault(keys[4], {})
    ticket = str(args[0])
    if ticket in applied:
        return [0, 0, 0]
    applied[ticket] = units
    store[keys[1]] = store.get(keys[1], 0) + units  # INCRBY creates a missing counter (here and below)
    credit = 0
    if meta["active"] >= 0:
        room = max(0, lua_number(args[3]) - store[keys[0]])  # type: ignore[operator]
        credit = min(units, room)
        store[keys[0]] += credit
    bounce = units - credit
    if bounce > 0:
        store[keys[2]] = store.get(keys[2], 0) + bounce
        store.setdefault(keys[5], {})[bounce_ticket(ticket)] = bounce
    sub = lua_number(args[2])  # a sub-domain, 0 or 1, from the engine; Lua names the flag "pend" .. sub
    assert sub is not None, "the Lua fails on a non-numeric sub-domain"
    if sub >= 0:
        meta[f"pend{sub}"] = 0
        if units == 0:
            meta["dry"] = 1
    if units > 0:
        meta["dry"] = 0
    return [1, credit, bounce]


def partition_retire(store: Store, keys: tuple, args: tuple) -> list[int]:
    meta = store.get(keys[3])
    if meta is None:
        return [NO_STOCK_KEY, 0]
    if meta["active"] < 0:
        return [0, 0]
    units = store[keys[0]] + store[keys[1]]
    store[keys[0]] = 0
    store[keys[1]] = 0
    store[keys[2]] = store.get(keys[2], 0) + units  # INCRBY creates a missing returned counter
    if units > 0:
        store.setdefault(keys[4], {})[str(args[0])] = units
    meta["active"] = -1
    return [1, units]


def partition_status(store: Store, keys: tuple, args: tuple) -> list[int]:
    meta = store.get(keys[2])
    if meta is None:
        return [NO_STOCK_KEY] * 6
    reply = [store.get(keys[0]), store.get(keys[1]), meta["active"], meta.get("pend0"), meta.get("pend1"),
             store.get(keys[3])]
    # Redis cuts a Lua array at its first nil: a missing counter shortens the reply, as the Lua's does
    return reply[: reply.index(None)] if None in reply else reply


def pool_init(store: Store, keys: tuple, args: tuple) -> int:
    units = as_int(args[0])
    if units is None or units < 0:
        return BAD_QTY
    if keys[0] in store:
        return 0
    store[keys[0]] = units
    return 1


def pool_take(store: Store, keys: tuple, args: tuple) -> int | None:
    want = as_int(args[1])
    if want is None or want < 0:
        return BAD_QTY
    sub, flag = as_int(args[2]), as_int(args[3])
    if sub is None or flag is None:
        return BAD_QTY
    pool = store.get(keys[0])
    if pool is None:
        return NO_STOCK_KEY
    tickets = store.setdefault(keys[2], {})
    ticket = str(args[0])
    if ticket in tickets:
        seen = lua_number(tickets[ticket])  # Lua's tonumber; Redis truncates a Lua number to an integer reply
        return None if seen is None else int(seen)
    grant = min(want, pool)
    store[keys[0]] = pool - grant
    store[keys[1]] = store.get(keys[1], 0) + grant
    tickets[ticket] = grant
    store.setdefault(keys[3], {})[ticket] = take_record(grant, sub, flag)
    return grant


def pool_return(store: Store, keys: tuple, args: tuple) -> int:
    units = as_int(args[1])
    if units is None or units < 0:
        return BAD_QTY
    if keys[0] not in store:
        return NO_STOCK_KEY
    tickets = store.setdefault(keys[2], {})
    ticket = str(args[0])
    if ticket in tickets:
        return 0
    tickets[ticket] = units
    store[keys[0]] += units
    store[keys[1]] = store.get(keys[1], 0) + units
    return 1


def pool_status(store: Store, keys: tuple, args: tuple) -> int:
    pool = store.get(keys[0])
    return NO_STOCK_KEY if pool is None else pool


def bounce_ticket(ticket: str) -> str:
    """The return ticket of units ``ticket`` brought that did not fit (partition_inject names it)."""
    return f"back:{ticket}"


def take_record(grant: int, sub: int, flag: int) -> str:
    """An outbox entry of the pool: what partition_inject must be asked for this grant."""
    return f"{grant}|{sub}|{flag}"


def _transfers(store: Store, keys: tuple) -> list:
    """Both counters (0 when missing), then the outbox as HGETALL lists it."""
    reply: list = [lua_number(store.get(keys[0])) or 0, lua_number(store.get(keys[1])) or 0]
    for ticket, value in store.get(keys[2], {}).items():
        reply += [ticket, value]
    return reply


def _settle(store: Store, keys: tuple, args: tuple) -> int:
    """Forget the whole outbox once the other side's counter caught up with ours, else the tickets named."""
    seen = lua_number(args[0]) if args else None
    outbox = store.get(keys[1], {})
    if seen is not None and (lua_number(store.get(keys[0])) or 0) <= seen:
        store.pop(keys[1], None)
        return len(outbox)
    removed = 0
    for ticket in args[1:]:
        removed += outbox.pop(str(ticket), None) is not None
    if not outbox:
        store.pop(keys[1], None)
    return removed


def partition_transfers(store: Store, keys: tuple, args: tuple) -> list:
    return _transfers(store, keys)


def pool_transfers(store: Store, keys: tuple, args: tuple) -> list:
    return _transfers(store, keys)


def partition_settle(store: Store, keys: tuple, args: tuple) -> int:
    return _settle(store, keys, args)


def pool_settle(store: Store, keys: tuple, args: tuple) -> int:
    return _settle(store, keys, args)


for _twin in (partition_init, partition_deduct, partition_inject, partition_retire, partition_status,
              partition_transfers, partition_settle, pool_init, pool_take, pool_return, pool_status,
              pool_transfers, pool_settle):
    register(_twin.__name__, _twin, __package__)


# partition_deduct_detail is partition_deduct itself, run as a local function, followed by the
# detail record: the sharded deduction keeps its exact semantics and gains the record atomically.
_PARTITION_WRAPPER = """\
-- partition_deduct_detail: partition_deduct (unchanged, as a local function) plus the
-- deduction's detail record, in one atomic step.
-- KEYS[1..4], ARGV[1..2]  as partition_deduct
-- KEYS[5]  detail hash   KEYS[6]  pending list   KEYS[7]  detail meta hash (same hash tag)
-- ARGV[3]  time of the deduction, decimal text in seconds
-- ARGV[4]  seen: the highest seq the caller was ever given for this partition (see deduct_detail.lua:
--          a seq counter below it was rolled back; the partition's epoch changes, ids never repeat)
-- Returns partition_deduct's reply followed by {seq, pending}: the new record's seq and the
--   partition's pending count when it sold (status 0), else 0, 0.
local function partition_deduct()
{body}
end
local reply = partition_deduct()
if reply[1] ~= 0 then
  reply[6] = 0
  reply[7] = 0
  return reply
end
local seen = tonumber(ARGV[4])
if seen == nil or seen < 0 or seen ~= math.floor(seen) then
  seen = 0
end
local epoch = redis.call('HGET', KEYS[7], 'epoch') or ''
if tonumber(redis.call('HGET', KEYS[7], 'seq') or 0) < seen then
  epoch = string.format('%sr%d', epoch, seen)
  redis.call('HSET', KEYS[7], 'epoch', epoch, 'seq', seen)
end
local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
local id = seq
if epoch ~= '' then
  id = epoch .. '.' .. seq
end
redis.call('HSET', KEYS[5], id, string.format('%d|%s|p', tonumber(ARGV[1]), ARGV[3]))
reply[6] = seq
reply[7] = redis.call('RPUSH', KEYS[6], id)
return reply
"""


def partition_deduct_detail(store: Store, keys: tuple, args: tuple) -> list[int]:
    reply = partition_deduct(store, keys[:4], args[:2])
    if reply[0] != 0:
        return [*reply, 0, 0]
    qty = as_int(args[0])  # an integer > 0: partition_deduct sold it
    assert qty is not None
    return [*reply, *write_detail(store, keys[4], keys[5], keys[6], qty, args[2], args[3])]


REGISTRY["partition_deduct_detail"] = Script(
    "partition_deduct_detail",
    _PARTITION_WRAPPER.replace("{body}", get("partition_deduct").lua.rstrip("\n")),
    partition_deduct_detail,
)
