"""Python twins of the detail-record scripts (``deduct_detail.lua``, ``detail_*.lua``).

A partition's detail records live next to its stock counter (one hash tag):
a hash ``seq -> "qty|time|status"`` (status ``p`` pending, ``s`` sent, ``a``
applied), a list of pending seqs (oldest first), a hash of open batches
``batch id -> "sent_time|seq,seq,..."`` and a meta hash numbering records and
batches. Replies are what Redis returns for the Lua tables (strings where the
script returns strings, integers where it returns numbers).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from engine.pipeline.columnar import DetailHash
from engine.scripts import BAD_QTY, NO_STOCK_KEY, SOLD_OUT, Store, as_int, register


def deduct_detail(store: Store, keys: tuple, args: tuple) -> list[int]:
    qty = args[0]
    if qty.__class__ is not int:
        qty = as_int(qty)
        if qty is None:
            return [BAD_QTY, 0, 0]
    if qty <= 0:
        return [BAD_QTY, 0, 0]
    stock = store.get(keys[0])
    if stock is None:
        return [NO_STOCK_KEY, 0, 0]
    if stock < qty:
        return [SOLD_OUT, 0, 0]
    store[keys[1]] = store.get(keys[1], 0) + qty
    stock -= qty
    store[keys[0]] = stock
    return [stock, *write_detail(store, keys[2], keys[3], keys[4], qty, args[1], args[2])]


def write_detail(store: Store, details: str, pending: str, meta: str, qty: int, t: str,
                 seen: object) -> tuple[int, int]:
    """Number a new pending record ``qty|t|p``; return its seq and the partition's pending count.

    ``seen`` is the highest seq the caller was ever given for this partition: a
    seq counter below it was rolled back, so the partition's epoch becomes
    ``<epoch>r<seen>`` and numbering resumes after ``seen`` (see ``deduct_detail.lua``).
    The record's id is its seq, or ``<epoch>.<seq>`` once the partition has an epoch.
    """
    high = seen if seen.__class__ is int else as_int(seen)
    if high is None or high < 0:
        high = 0
    numbers = store.get(meta)
    if numbers is None:
        numbers = store[meta] = {}
    epoch = numbers.get("epoch", "")
    if epoch.__class__ is not str:
        epoch = str(epoch)
    seq = numbers.get("seq", 0)
    if seq.__class__ is not int:
        seq = int(seq)
    if seq < high:
        epoch = numbers["epoch"] = f"{epoch}r{high}"
        seq = high
    seq = numbers["seq"] = seq + 1
    record_id = f"{epoch}.{seq}" if epoch else str(seq)
    records = store.get(details)
    if records is None:
        records = store[details] = DetailHash()  # a dict in columns (engine/pipeline/columnar.py)
    if records.__class__ is DetailHash:
        records.add(record_id, qty, t, (f"{epoch}." if epoch else "", seq) if seq > 0 else None)
    else:
        records[record_id] = f"{qty}|{t}|p"
    queue = store.setdefault(pending, [])
    queue.append(record_id)
    return seq, len(queue)


def _restatus(details: MutableMapping[str, str], seq: str, status: str) -> str:
    if details.__class__ is DetailHash:
        return details.restatus(seq, status)  # type: ignore[attr-defined]
    record = details[seq] = f"{details[seq]}"[:-1] + status  # (the Lua treats any value as text)
    return record


def detail_collect(store: Store, keys: tuple, args: tuple) -> list:
    pending = store.get(keys[1])
    if not pending:
        return []
    take = args[1] if args[1].__class__ is int else as_int(args[1])  # Lua: tonumber, then LPOP's count
    if take is None or take < 0:
        raise ValueError(f"LPOP count must be a non-negative integer (got {args[1]!r})")  # a Redis error too
    seqs = pending[:take]
    del pending[:take]
    if not pending:
        del store[keys[1]]  # Redis deletes an emptied list
    meta = store.setdefault(keys[3], {})
    batch = meta["batch"] = meta.get("batch", 0) + 1
    # Looked up only when there are records to mark: with a count of 0 the Lua files an empty batch
    # and never reads the detail hash (the twin used to fail on a missing one; found by the twin test).
    details = store[keys[0]] if seqs else {}
    out: list[str] = []
    for seq in seqs:
        out += (seq, _restatus(details, seq, "s"))
    store.setdefault(keys[2], {})[str(batch)] = f"{args[0]}|{','.join(seqs)}"
    return [batch, out]


def detail_stale(store: Store, keys: tuple, args: tuple) -> list:
    batches = store.get(keys[1])
    if not batches:
        return []
    cutoff = float(args[0]) - float(args[1])
    due = []
    for batch, value in batches.items():
        sent, _, seqs = value.partition("|")
        if float(sent) <= cutoff:
            due.append((int(batch), seqs))
    due.sort()
    # read only when a batch is due, and a missing record is nil, as in the Lua (the twin used to raise)
    details = store.get(keys[0], {}) if due else {}
    out = []
    for batch, seqs in due:
        batches[str(batch)] = f"{args[0]}|{seqs}"
        records: list[str | None] = []
        for seq in seqs.split(","):
            records += (seq, details.get(seq))
        out.append([batch, records])
    return out


def detail_applied(store: Store, keys: tuple, args: tuple) -> int:
    batches = store.get(keys[1])
    value = batches.pop(str(args[0]), None) if batches else None
    if value is None:
        return 0
    if not batches:
        del store[keys[1]]  # Redis deletes an emptied hash
    details = store[keys[0]]
    seqs = value.partition("|")[2].split(",")
    if details.__class__ is DetailHash:
        for seq in seqs:
            details.set_status(seq, "a")
    else:
        for seq in seqs:
            _restatus(details, seq, "a")
    return len(seqs)


def detail_backlog(store: Store, keys: tuple, args: tuple) -> list[int]:
    return [len(store.get(keys[0], ())), len(store.get(keys[1], ()))]


def detail_summary(store: Store, keys: tuple, args: tuple) -> list[int]:
    details = store.get(keys[0], {})
    if details.__class__ is DetailHash:
        return [*details.summary(), int(store.get(keys[1]) or 0)]
    records = qty = pending = sent = applied = applied_qty = 0
    for record in details.values():
        n = int(record.partition("|")[0])
        status = record[-1]
        records += 1
        qty += n
        if status == "p":
            pending += 1
        elif status == "s":
            sent += 1
        else:
            applied += 1
            applied_qty += n
    return [records, qty, pending, sent, applied, applied_qty, int(store.get(keys[1]) or 0)]


register("deduct_detail", deduct_detail, __package__)
register("detail_collect", detail_collect, __package__)
register("detail_stale", detail_stale, __package__)
register("detail_applied", detail_applied, __package__)
register("detail_backlog", detail_backlog, __package__)
register("detail_summary", detail_summary, __package__)
