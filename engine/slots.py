"""Redis Cluster slot placement.

Every key a strategy touches carries a hash tag, so that one script only ever
touches one slot, e.g. ``fs:stock:{sku42}`` and ``fs:sold:{sku42}`` live together.
:func:`key_slot` is CRC16/XMODEM mod 16384 over the tag, exactly as Redis Cluster
computes it, so the simulator places keys on nodes as a real cluster would.
"""

from __future__ import annotations

SLOTS = 16384


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16/XMODEM (polynomial 0x1021, initial value 0), as used by Redis Cluster."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that decides its slot: the first non-empty ``{...}``, else all."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def key_slot(key: str | bytes) -> int:
    """The Redis Cluster slot (0..16383) of ``key``."""
    raw = key.encode() if isinstance(key, str) else key
    return crc16(hash_tag(raw)) % SLOTS


def even_slot_ranges(masters: int) -> list[tuple[int, int]]:
    """Slot ranges ``(first, last)`` per master, split as ``redis-cli --cluster create`` does."""
    if masters < 1:
        raise ValueError("a cluster needs at least one master")
    per_node = SLOTS / masters
    ranges = []
    first = 0
    cursor = 0.0
    for i in range(masters):
        last = int(cursor + per_node - 1 + 0.5)  # C lround for positive values
        if last > SLOTS - 1 or i == masters - 1:
            last = SLOTS - 1
        ranges.append((first, last))
        first = last + 1
        cursor += per_node
    return ranges


class SlotMap:
    """Which node owns which slot; routes a key to a node index."""

    def __init__(self, ranges: list[tuple[int, int]]):
        owner = [-1] * SLOTS
        for node, (first, last) in enumerate(ranges):
            for slot in range(first, last + 1):
                owner[slot] = node
        if -1 in owner:
            raise ValueError("slot ranges leave slots unassigned")
        self._owner = owner
        self.nodes = len(ranges)
        self._cache: dict[str, int] = {}

    @classmethod
    def even(cls, masters: int) -> SlotMap:
        return cls(even_slot_ranges(masters))

    def node_of(self, key: str) -> int:
        node = self._cache.get(key)
        if node is None:
            node = self._cache[key] = self._owner[key_slot(key)]
        return node
