"""Columnar stores for the simulator's detail records: a million sales without a million objects.

Both classes are dicts (subclasses) that read and write exactly like the ``dict`` they replace, so
every twin, test and reader sees the same keys and values; only the storage differs. Records are
numbered ``1, 2, 3...`` per partition (or ``<epoch>.<seq>`` after a rollback), so a record's id
splits into a *prefix* (the text before its trailing digits) and a *seq*; each prefix gets a
block of parallel arrays indexed by ``seq - base``. A key or value that does not have the usual
shape (the differential tests feed random ones) goes to an ordinary dict beside the blocks, so
nothing is ever refused or altered.

- :class:`DetailHash`: the Redis hash of one partition's detail records, ``record id ->
  "qty|time|status"`` (``deduct_detail.lua``); a record costs 17 bytes (qty, time, status)
  instead of two strings and a hash entry.
- :class:`DetailRows`: the simulated DB's ``detail`` table, ``detail id -> {detail_id, sku,
  part, qty, t}``; a row costs 17 bytes (present, qty, t) instead of a dict and its strings.
  Rows are values: a row read is a fresh dict, so a change must be written back (the
  ``detail`` twins only insert).
- :class:`IdSet`: a set of detail ids (the pipeline's "applied once" check), one bit-per-byte
  flag per id.
"""

from __future__ import annotations

import copy
from array import array
from collections.abc import Iterator, Mapping, MutableMapping
from itertools import compress
from typing import Any

_DIGITS = "0123456789"
_INT64 = 1 << 63
_SPARSE = 1 << 16  # a seq this far past a block's end goes to the plain dict instead of growing the block
_STATUS = {"p": 1, "s": 2, "a": 3}
_LETTER = ("", "p", "s", "a")


_SPLIT: dict[Any, tuple[str, int] | None] = {}  # recent keys: an id is split at every step of its way
_SPLIT_MAX = 1 << 16
_MISS: Any = object()
_SEQ_LIMIT = 10**15  # split_id reads at most 15 digits


def split_id(key: Any) -> tuple[str, int] | None:
    """``"sku42:17"`` -> ``("sku42:", 17)``; None when ``key`` does not end in a canonical number."""
    parts = _SPLIT.get(key, _MISS)
    if parts is not _MISS:
        return parts  # type: ignore[return-value]
    parts = None
    if key.__class__ is str:
        prefix = key.rstrip(_DIGITS)
        tail = key[len(prefix):]
        if tail and tail[0] != "0" and len(tail) <= 15:
            parts = prefix, int(tail)
    if len(_SPLIT) >= _SPLIT_MAX:
        _SPLIT.clear()
    _SPLIT[key] = parts
    return parts


def _grow(block: Any, index: int, columns: tuple[str, ...]) -> bool:
    """Make ``block``'s arrays long enough for ``index``; False if that would make it sparse."""
    size = len(block.flags)
    if index < size:
        return True
    if index > size + _SPARSE:
        return False
    more = max(index + 1 - size, size, 64)
    block.flags += bytes(more)
    for name in columns:
        column = getattr(block, name)
        column += array(column.typecode, bytes(8 * more))
    return True


def _stamp_fits(t: object) -> float | None:
    """A time written as ``%.6f`` (what the pipeline stamps) as the float that prints back to it."""
    if t.__class__ is not str:
        return None
    try:
        x = float(t)  # type: ignore[arg-type]
    except ValueError:
        return None
    return x if f"{x:.6f}" == t else None


def _rebuild(cls: type, items: list) -> Any:
    made = cls()
    for key, value in items:
        made[key] = value
    return made


class _ColumnDict(dict):  # type: ignore[type-arg]
    """A ``dict`` whose entries live elsewhere (in columns): every dict method goes through the
    mapping protocol a subclass defines (``__getitem__``, ``__setitem__``, ``__delitem__``,
    ``__iter__``, ``__len__``, ``__contains__``, ``get``), and dict's own storage stays empty.

    A dict, so that code asking ``isinstance(value, dict)`` (is this Redis value a hash?) sees one.
    Only C code that reads a dict's storage directly misses the entries: ``json.dumps`` needs
    ``dict(value)``.
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]
    keys = MutableMapping.keys  # type: ignore[assignment]
    items = MutableMapping.items  # type: ignore[assignment]
    values = MutableMapping.values  # type: ignore[assignment]
    popitem = MutableMapping.popitem  # type: ignore[assignment]
    setdefault = MutableMapping.setdefault  # type: ignore[assignment]
    update = MutableMapping.update  # type: ignore[assignment]
    clear = MutableMapping.clear  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (dict, Mapping)):
            return NotImplemented
        return dict(self.items()) == dict(other.items())

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def pop(self, key: Any, *default: Any) -> Any:
        try:
            value = self[key]
        except KeyError:
            if default:
                return default[0]
            raise
        del self[key]
        return value

    def __reversed__(self) -> Iterator[Any]:
        return reversed(list(self))

    def __or__(self, other: Any) -> dict:  # type: ignore[override]
        return dict(self.items()) | other

    def __ror__(self, other: Any) -> dict:  # type: ignore[override]
        return other | dict(self.items())

    def __ior__(self, other: Any) -> Any:  # type: ignore[override]
        self.update(other)
        return self

    def copy(self) -> Any:
        return _rebuild(type(self), list(self.items()))

    def __reduce_ex__(self, protocol: Any) -> Any:  # pickle, copy.copy: rebuilt entry by entry
        return _rebuild, (type(self), list(self.items()))

    def __deepcopy__(self, memo: dict) -> Any:
        """Column by column (a replica's full sync copies a master's store)."""
        this: Any = self
        made: Any = type(self)()
        for prefix, block in this._blocks.items():
            twin = made._blocks[prefix] = copy.copy(block)
            twin.flags, twin.qty, twin.t = bytearray(block.flags), array("q", block.qty), array("d", block.t)
        made._other = copy.deepcopy(this._other, memo)
        made._n = this._n
        return made

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    # what each subclass keeps: blocks of columns by id prefix, ids of another shape, the column count
    _blocks: dict[str, Any]
    _other: dict[Any, Any]
    _n: int

    def _find(self, key: Any) -> tuple[Any, int] | None:
        raise NotImplementedError

    def __contains__(self, key: object) -> bool:
        return self._find(key) is not None or key in self._other

    def __delitem__(self, key: Any) -> None:
        located = self._find(key)
        if located is None:
            del self._other[key]
            return
        located[0].flags[located[1]] = 0
        self._n -= 1

    def __iter__(self) -> Iterator[Any]:
        for prefix, block in list(self._blocks.items()):
            flags, base = block.flags, block.base
            i = -1
            while (i := _next_set(flags, i + 1)) >= 0:
                yield f"{prefix}{base + i}"
        yield from list(self._other)

    def __len__(self) -> int:
        return self._n + len(self._other)


class _HashBlock:
    __slots__ = ("base", "flags", "qty", "t")

    def __init__(self, base: int):
        self.base = base
        self.flags = bytearray()  # 0 absent, else 1 + the status letter's index (p, s, a)
        self.qty = array("q")
        self.t = array("d")


class DetailHash(_ColumnDict):
    """A partition's detail-record hash (``record id -> "qty|time|status"``), held in columns."""

    __slots__ = ("_blocks", "_other", "_n")

    def __init__(self) -> None:
        self._blocks: dict[str, _HashBlock] = {}
        self._other: dict[str, str] = {}
        self._n = 0  # records held in blocks

    # --- the fast paths the twins use -------------------------------------------
    def add(self, key: str, qty: int, t: str, parts: tuple[str, int] | None = None, status: str = "p") -> None:
        """``self[key] = f"{qty}|{t}|{status}"`` without building the string when it fits a block.

        ``parts``: ``split_id(key)`` when the caller knows it (it made ``key`` from a prefix and a seq).
        """
        if qty.__class__ is int and -_INT64 <= qty < _INT64 and status in _STATUS:
            x = _stamp_fits(t)
            if x is not None and self._put(key, qty, x, _STATUS[status], parts):
                return
        self[key] = f"{qty}|{t}|{status}"

    def restatus(self, key: str, status: str) -> str:
        """Replace the last character of ``key``'s value by ``status`` (KeyError if absent); the new value."""
        located = self._find(key)
        if located is not None and status in _STATUS:
            block, i = located
            block.flags[i] = _STATUS[status]
            return f"{block.qty[i]}|{block.t[i]:.6f}|{status}"
        value = f"{self[key]}"[:-1] + status
        self[key] = value
        return value

    def set_status(self, key: str, status: str) -> None:
        """:meth:`restatus` without building the new value."""
        located = self._find(key)
        if located is not None and status in _STATUS:
            block, i = located
            block.flags[i] = _STATUS[status]
        else:
            self.restatus(key, status)

    def summary(self) -> tuple[int, int, int, int, int, int]:
        """``detail_summary``'s figures: records, qty, pending, sent, applied, applied qty."""
        records = qty = pending = sent = applied = applied_qty = 0
        for block in self._blocks.values():
            flags = block.flags
            p, s, a = flags.count(1), flags.count(2), flags.count(3)
            records += p + s + a
            pending += p
            sent += s
            applied += a
            block_qty = sum(compress(block.qty, flags))
            qty += block_qty
            applied_qty += sum(compress(block.qty, (f == 3 for f in flags))) if p or s else block_qty
        for record in self._other.values():
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
        return records, qty, pending, sent, applied, applied_qty

    # --- storage -------------------------------------------------------------------
    def _find(self, key: object) -> tuple[_HashBlock, int] | None:
        parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
        if parts is _MISS:
            parts = split_id(key)
        if parts is None:
            return None
        block = self._blocks.get(parts[0])
        if block is None:
            return None
        i = parts[1] - block.base
        if 0 <= i < len(block.flags) and block.flags[i]:
            return block, i
        return None

    def _put(self, key: str, qty: int, t: float, status: int, parts: tuple[str, int] | None = None) -> bool:
        if parts is None or parts[1] >= _SEQ_LIMIT:
            parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
            if parts is _MISS:
                parts = split_id(key)
        if parts is None:
            return False
        prefix, seq = parts
        block = self._blocks.get(prefix)
        if block is None:
            block = self._blocks[prefix] = _HashBlock(seq)
        i = seq - block.base
        if i < 0 or (i >= len(block.flags) and not _grow(block, i, ("qty", "t"))):
            return False
        if self._other and key in self._other:
            del self._other[key]
        if not block.flags[i]:
            self._n += 1
        block.flags[i] = status
        block.qty[i] = qty
        block.t[i] = t
        return True

    def __setitem__(self, key: str, value: str) -> None:
        if value.__class__ is str:
            qty, sep, rest = value.partition("|")
            t, sep2, status = rest.rpartition("|")
            if sep and sep2 and status in _STATUS and qty.lstrip("-").isdigit() and str(int(qty)) == qty:
                n = int(qty)
                x = _stamp_fits(t)
                if x is not None and -_INT64 <= n < _INT64 and self._put(key, n, x, _STATUS[status]):
                    return
        located = self._find(key)
        if located is not None:
            located[0].flags[located[1]] = 0
            self._n -= 1
        self._other[key] = value

    def __getitem__(self, key: str) -> str:
        located = self._find(key)
        if located is None:
            return self._other[key]
        block, i = located
        return f"{block.qty[i]}|{block.t[i]:.6f}|{_LETTER[block.flags[i]]}"

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        located = self._find(key)
        if located is None:
            return self._other.get(key, default)
        block, i = located
        return f"{block.qty[i]}|{block.t[i]:.6f}|{_LETTER[block.flags[i]]}"




def _next_set(flags: bytearray, start: int) -> int:
    """Index of the first non-zero flag at or after ``start``, or -1."""
    size = len(flags)
    while start < size:
        if flags[start]:
            return start
        start += 1
    return -1


class _RowBlock:
    __slots__ = ("base", "flags", "qty", "t", "sku", "part")

    def __init__(self, base: int, sku: Any, part: Any):
        self.base = base
        self.flags = bytearray()  # 1 where a row is present
        self.qty = array("q")
        self.t = array("d")
        self.sku = sku
        self.part = part


_COLUMNS = frozenset(("detail_id", "sku", "part", "qty", "t"))


class DetailRows(_ColumnDict):
    """The simulated DB's ``detail`` table (``detail id -> row dict``), held in columns."""

    __slots__ = ("_blocks", "_other", "_n")

    def __init__(self) -> None:
        self._blocks: dict[str, _RowBlock] = {}
        self._other: dict[Any, dict[str, Any]] = {}
        self._n = 0

    def insert(self, detail_id: Any, sku: Any, part: Any, qty: Any, t: Any) -> bool:
        """INSERT IGNORE: ``self[detail_id] = {"detail_id": detail_id, "sku": sku, ...}`` unless the id is
        there already (False); no dict is made when the row fits a block."""
        parts = _SPLIT.get(detail_id, _MISS)  # (split_id's cache, looked up inline: the hot path)
        if parts is _MISS:
            parts = split_id(detail_id)
        if self._find(detail_id, parts) is not None or detail_id in self._other:
            return False
        if not (qty.__class__ is int and t.__class__ is float and self._put(detail_id, sku, part, qty, t, parts)):
            self[detail_id] = {"detail_id": detail_id, "sku": sku, "part": part, "qty": qty, "t": t}
        return True

    def copy_to(self, key: Any, target: DetailRows) -> None:
        """``target[key] = self[key]`` (a commit publishing a row), or delete it from ``target`` if absent here."""
        parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
        if parts is _MISS:
            parts = split_id(key)
        located = self._find(key, parts)
        if located is not None:
            block, i = located
            if target._put(key, block.sku, block.part, block.qty[i], block.t[i], parts):
                return
            target[key] = self[key]
        elif key in self._other:
            target[key] = dict(self._other[key])
        else:
            target.pop(key, None)

    def totals(self, sku: Any) -> tuple[int, int]:
        """``SELECT COUNT(*), SUM(qty) ... WHERE sku = %s`` over the table."""
        count = total = 0
        for block in self._blocks.values():
            if block.sku == sku:
                count += block.flags.count(1)
                total += sum(compress(block.qty, block.flags))
        for row in self._other.values():
            if row["sku"] == sku:
                count += 1
                total += row["qty"]
        return count, total

    def _find(self, key: object, parts: Any = _MISS) -> tuple[_RowBlock, int] | None:
        if parts is _MISS:
            parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
            if parts is _MISS:
                parts = split_id(key)
        if parts is None:
            return None
        block = self._blocks.get(parts[0])
        if block is None:
            return None
        i = parts[1] - block.base
        if 0 <= i < len(block.flags) and block.flags[i]:
            return block, i
        return None

    def _put(self, key: Any, sku: Any, part: Any, qty: int, t: float, parts: Any = _MISS) -> bool:
        if not -_INT64 <= qty < _INT64:
            return False
        if parts is _MISS:
            parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
            if parts is _MISS:
                parts = split_id(key)
        if parts is None:
            return False
        prefix, seq = parts
        block = self._blocks.get(prefix)
        if block is None:
            block = self._blocks[prefix] = _RowBlock(seq, sku, part)
        elif block.sku != sku or block.part != part or sku.__class__ is not block.sku.__class__ \
                or part.__class__ is not block.part.__class__:
            return False
        i = seq - block.base
        if i < 0 or (i >= len(block.flags) and not _grow(block, i, ("qty", "t"))):
            return False
        if self._other and key in self._other:
            del self._other[key]
        if not block.flags[i]:
            self._n += 1
        block.flags[i] = 1
        block.qty[i] = qty
        block.t[i] = t
        return True

    def __setitem__(self, key: Any, row: dict[str, Any]) -> None:
        if (row.__class__ is dict and len(row) == 5 and row.keys() == _COLUMNS and row["detail_id"] == key
                and row["detail_id"].__class__ is key.__class__ and row["qty"].__class__ is int
                and row["t"].__class__ is float
                and self._put(key, row["sku"], row["part"], row["qty"], row["t"])):
            return
        located = self._find(key)
        if located is not None:
            located[0].flags[located[1]] = 0
            self._n -= 1
        self._other[key] = row

    def __getitem__(self, key: Any) -> dict[str, Any]:
        located = self._find(key)
        if located is None:
            return self._other[key]
        block, i = located
        return {"detail_id": key, "sku": block.sku, "part": block.part, "qty": block.qty[i], "t": block.t[i]}

    def get(self, key: Any, default: Any = None) -> Any:  # type: ignore[override]
        located = self._find(key)
        if located is None:
            return self._other.get(key, default)
        block, i = located
        return {"detail_id": key, "sku": block.sku, "part": block.part, "qty": block.qty[i], "t": block.t[i]}




class IdSet:
    """A set of ids (``add``, ``in``, ``len``), with ``<prefix><seq>`` ids held as flags in blocks."""

    __slots__ = ("_blocks", "_other", "_n")

    def __init__(self) -> None:
        self._blocks: dict[str, tuple[int, bytearray]] = {}
        self._other: set[Any] = set()
        self._n = 0

    def add(self, key: Any) -> bool:
        """Add ``key``; False if it was there already."""
        parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
        if parts is _MISS:
            parts = split_id(key)
        if parts is not None:
            prefix, seq = parts
            block = self._blocks.get(prefix)
            if block is None:
                block = self._blocks[prefix] = (seq, bytearray())
            base, flags = block
            i = seq - base
            if 0 <= i <= len(flags) + _SPARSE and not (self._other and key in self._other):
                if i >= len(flags):
                    flags += bytes(max(i + 1 - len(flags), len(flags), 64))
                if flags[i]:
                    return False
                flags[i] = 1
                self._n += 1
                return True
        if key in self._other:
            return False
        self._other.add(key)
        return True

    def __contains__(self, key: object) -> bool:
        parts = _SPLIT.get(key, _MISS)  # (split_id's cache, looked up inline: the hot path)
        if parts is _MISS:
            parts = split_id(key)
        if parts is not None:
            block = self._blocks.get(parts[0])
            if block is not None:
                i = parts[1] - block[0]
                if 0 <= i < len(block[1]) and block[1][i]:
                    return True
        return key in self._other

    def __len__(self) -> int:
        return self._n + len(self._other)

    def __iter__(self) -> Iterator[Any]:
        for prefix, (base, flags) in list(self._blocks.items()):
            i = flags.find(1)
            while i >= 0:
                yield f"{prefix}{base + i}"
                i = flags.find(1, i + 1)
        yield from list(self._other)

    def __and__(self, other: IdSet) -> IdSet:
        """The ids in both (``set & set``)."""
        small, large = (self, other) if len(self) <= len(other) else (other, self)
        common = IdSet()
        for key in small:
            if key in large:
                common.add(key)
        return common

    def __ior__(self, other: IdSet) -> IdSet:
        """Add every id of ``other`` (``set |= set``)."""
        for key in other:
            self.add(key)
        return self
