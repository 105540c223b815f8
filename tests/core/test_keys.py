import pytest
from redis.crc import key_slot as redis_key_slot

from engine.counter.keys import StockKeys
from engine.slots import SLOTS, SlotMap, even_slot_ranges, key_slot


@pytest.mark.parametrize(
    ("key", "slot"),
    [
        ("123456789", 12739),  # the CRC16/XMODEM check value 0x31C3 mod 16384
        ("foo", 12182),
        ("bar", 5061),
        ("{user1000}.following", key_slot("user1000")),
        ("foo{}{bar}", key_slot("foo{}{bar}")),  # empty first tag: whole key
        ("foo{{bar}}zap", key_slot("{bar")),
        ("foo{bar}{zap}", key_slot("bar")),
    ],
)
def test_known_slots(key, slot):
    assert key_slot(key) == slot


def test_empty_tag_hashes_whole_key():
    assert key_slot("foo{}{bar}") != key_slot("bar") or key_slot("foo{}{bar}") == redis_key_slot(b"foo{}{bar}")
    assert key_slot("foo{}{bar}") == redis_key_slot(b"foo{}{bar}")


@pytest.mark.parametrize("key", ["", "a", "stock:{sku42:p3}:a", "x{y", "x}y{", "{}", "é{ü}", "{a}{b}"])
def test_agrees_with_redis_py(key):
    assert key_slot(key) == redis_key_slot(key.encode())


def test_hash_tag_keeps_counter_keys_together():
    keys = StockKeys("ns", "sku42")
    assert key_slot(keys.stock) == key_slot(keys.sold) == key_slot("sku42")
    assert key_slot(StockKeys("other", "sku42").stock) == key_slot(keys.stock)  # namespace outside the tag


@pytest.mark.parametrize("masters", [1, 2, 3, 5, 7, 16])
def test_even_ranges_cover_all_slots(masters):
    ranges = even_slot_ranges(masters)
    assert ranges[0][0] == 0 and ranges[-1][1] == SLOTS - 1
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))
    sizes = [last - first + 1 for first, last in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_three_masters_match_redis_cli():
    # what `redis-cli --cluster create` assigns to three masters
    assert even_slot_ranges(3) == [(0, 5460), (5461, 10922), (10923, 16383)]


def test_slot_map_routes_by_owner():
    slots = SlotMap.even(3)
    assert slots.node_of("123456789") == 2  # slot 12739
    assert slots.node_of("bar") == 0  # slot 5061
    with pytest.raises(ValueError):
        SlotMap.even(0)
