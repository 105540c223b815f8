"""The driver's own EVALSHA encoding is byte for byte redis-py's (no server needed)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from engine.real.resp import ASKING, EvalPacker

keys = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6)
args = st.lists(st.one_of(st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False),
                          st.text(max_size=20), st.binary(max_size=20)), max_size=6)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a" * 40, "b" * 40]), keys, args), min_size=1, max_size=5))
def test_packed_bytes_are_redis_pys(commands):
    conn = Connection()
    packer = EvalPacker()
    for _ in range(2):  # the second pass uses the cached prefixes
        ours = b"".join(packer.pack(sha, k, a) for sha, k, a in commands)
        theirs = b"".join(conn.pack_commands([("EVALSHA", sha, len(k), *k, *a) for sha, k, a in commands]))
        assert ours == theirs


def test_asking_is_redis_pys():
    assert b"".join(Connection().pack_command("ASKING")) == ASKING


@pytest.mark.parametrize("bad", [True, None, object()])
def test_arguments_redis_py_refuses_are_refused(bad):
    with pytest.raises(DataError):
        EvalPacker().pack("a" * 40, ("k",), (bad,))
