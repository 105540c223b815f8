import pytest
from redis.crc import key_slot as redis_key_slot

from engine.counter.keys import StockKeys
from engine.slots import SLOTS, SlotMap, even_slot_ranges, key_slot


# Slots as a real Redis computes them: `CLUSTER KEYSLOT <key>` on redis-server 7.0 (the first is
# the CRC16/XMODEM check value 0x31C3 mod 16384); tests/real/test_cluster.py asks a live cluster too.
@pytest.mark.parametrize(
    ("key", "slot"),
    [
        ("123456789", 12739),
        ("foo", 12182),
        ("bar", 5061),
        ("{user1000}.following", 3443),  # the slot of "user1000"
        ("foo{}{bar}", 8363),  # empty first tag: the whole key decides (not "bar", 5061)
        ("foo{{bar}}zap", 4015),  # the tag is "{bar"
        ("foo{bar}{zap}", 5061),  # the first tag only: "bar"
        ("", 0),
        ("{}", 15257),
        ("x{y", 2740),
        ("x}y{", 8402),
        ("{a}{b}", 15495),
        ("stock:{sku42:p3}:a", 3765),
        ("é{ü}", 9552),  # the UTF-8 bytes of the tag
    ],
)
def test_slots_as_redis_computes_them(key, slot):
    assert key_slot(key) == slot
    assert key_slot(key.encode()) == slot


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
