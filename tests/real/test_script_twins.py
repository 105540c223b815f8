"""Every script in engine.scripts.REGISTRY against its Python twin, on the real Redis, on random inputs.

Generic over the registry (a script registered tomorrow is covered without a
new test): the number of KEYS and ARGV comes from the Lua text, the type of
each key from the commands the script runs on it (GET/INCRBY -> string,
H* -> hash, list commands -> list), and hash field names and string values
from the script's own literals; ARGV are mostly integers (as the engine sends them), and also
floats, numeric text and junk text, which the scripts must refuse or accept exactly as the
twins do. Each example puts the same random start state in Redis (inside this test's
namespace, one hash tag) and in a twin store, runs the Lua (EVAL) and the twin, and requires
the same reply and the same final state. Inputs on which the Lua script raises a Redis error
(states the engine never makes, e.g. a hash field that is not a number) are discarded; a twin
that raises where the Lua replies is a divergence and fails the test. Every script must still
be compared on enough inputs for the test to mean something.
"""

from __future__ import annotations

import itertools
import re

import pytest
import redis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine import scripts
from engine.real.servers import to_value

pytestmark = pytest.mark.real

EXAMPLES = 60
MIN_COMPARED = 10  # examples per script that must reach a comparison
_counter = itertools.count()
_compared: dict[str, int] = {}

STRING_COMMANDS = {"GET", "SET", "INCR", "DECR", "INCRBY", "DECRBY", "INCRBYFLOAT", "SETNX", "GETSET", "MGET"}
LIST_COMMANDS = {"LPUSH", "RPUSH", "LPOP", "RPOP", "LLEN", "LRANGE", "LINDEX", "LREM", "LSET", "LTRIM"}
_CALL = re.compile(r"""redis\.call\(\s*['"](\w+)['"]\s*,\s*KEYS\[(\d+)\]""")


def shape(lua: str) -> tuple[int, int, dict[int, str], list[str]]:
    """(number of KEYS, number of ARGV, key index -> type, string literals) of a script."""
    n_keys = max((int(i) for i in re.findall(r"KEYS\[(\d+)\]", lua)), default=0)
    n_args = max((int(i) for i in re.findall(r"ARGV\[(\d+)\]", lua)), default=0)
    types: dict[int, str] = {}
    for command, index in _CALL.findall(lua):
        command = command.upper()
        kind = "hash" if command.startswith("H") else "list" if command in LIST_COMMANDS else \
            "string" if command in STRING_COMMANDS else None
        if kind:
            types.setdefault(int(index), kind)
    literals = sorted({w for w in re.findall(r"'([A-Za-z_][\w]*)'", lua) if not w.isupper()})
    return n_keys, n_args, types, literals


def normalise(value):
    """Replies and states compared as Redis holds them: text that looks numeric compares as a number."""
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, bool):
        return int(value)
    if value is None:
        return None
    return to_value(str(value))


def values(literals, records):
    """Hash values: small counters, or (scripts that parse "|" records) records "qty|time|status"."""
    small = st.integers(min_value=-2, max_value=12)
    if not records:
        return small.map(str)
    letters = [w for w in literals if len(w) == 1] or ["p"]
    record = st.tuples(st.integers(1, 5), st.integers(0, 9), st.sampled_from(letters)).map(
        lambda r: f"{r[0]}|{r[1]}|{r[2]}")
    return st.one_of(small.map(str), small.map(str), record)


@st.composite
def start_state(draw, n_keys, types, literals, records):
    fields = literals + [str(i) for i in range(1, 5)]
    state = {}
    for index in range(1, n_keys + 1):
        kind = types.get(index, "string")
        if draw(st.integers(0, 9)) == 0:
            continue  # absent key
        if kind == "string":
            state[index] = ("string", str(draw(st.integers(min_value=-2, max_value=40))))
        elif kind == "hash":
            # fields the script names are counters (all present, as the engine's setup makes them);
            # numbered fields (record seqs, ticket ids) come and go and hold records or numbers
            named = {f: str(draw(st.integers(min_value=-1, max_value=12))) for f in literals}
            numbered = draw(st.lists(st.sampled_from(fields[len(literals):]), unique=True, max_size=4))
            state[index] = ("hash", {**named, **{f: draw(values(literals, records)) for f in numbered}} or {"1": "0"})
        else:
            items = draw(st.lists(st.integers(min_value=1, max_value=6).map(str), min_size=1, max_size=5))
            state[index] = ("list", items)
    return state


# ARGV that are not integers: what a caller's bug or a hand-typed command would send. Lua reads them
# with tonumber (nil for junk); redis-py sends a float as its repr ("1.5", "2.0").
NOT_INTEGERS = st.one_of(
    st.sampled_from([0.5, 1.5, -1.5, 2.0, 3.0, 1e3]),
    st.sampled_from(["1.5", "2.0", "-1", "1e1", "abc", "", "3x", "x3", " 2", "2 "]),
)


def argument(literals):
    """ARGV: integers (qty, thresholds, ids, times) as the engine sends them, as numbers or text; now and
    then a float, numeric text or junk text."""
    integers = st.one_of(st.integers(min_value=-2, max_value=30), st.integers(min_value=0, max_value=5).map(str))
    return st.one_of(integers, integers, integers, NOT_INTEGERS)


def twin_store(keys, state):
    store = {}
    for index, (kind, value) in state.items():
        key = keys[index - 1]
        if kind == "string":
            store[key] = int(value)
        elif kind == "hash":
            store[key] = {f: (int(v) if re.fullmatch(r"-?\d+", v) else v) for f, v in value.items()}
        else:
            store[key] = list(value)
    return store


def read_back(client, keys):
    out = {}
    for key in keys:
        kind = client.type(key)
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind != "none":
            out[key] = f"<{kind}>"
    return out


@pytest.mark.parametrize("name", sorted(scripts.REGISTRY))
def test_lua_agrees_with_twin(redis_client, namespace, name):
    script = scripts.get(name)
    n_keys, n_args, types, literals = shape(script.lua)
    _compared[name] = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much,
                                     HealthCheck.too_slow])
    @given(state=start_state(n_keys, types, literals, "|" in script.lua), args=st.lists(argument(literals), min_size=n_args,
                                                                       max_size=n_args))
    def check(state, args):
        tag = f"tw{next(_counter)}"
        keys = [f"{namespace}:{name}:{i}:{{{tag}}}" for i in range(1, n_keys + 1)]
        for index, (kind, value) in state.items():
            key = keys[index - 1]
            if kind == "string":
                redis_client.set(key, value)
            elif kind == "hash":
                redis_client.hset(key, mapping=value)
            else:
                redis_client.rpush(key, *value)
        store = twin_store(keys, state)
        try:
            real = redis_client.eval(script.lua, n_keys, *keys, *args)
        except redis.ResponseError:
            redis_client.delete(*keys)
            assume(False)  # the script itself rejects this state: nothing to compare
            return
        real_state = read_back(redis_client, keys)
        redis_client.delete(*keys)
        try:
            twin = script.twin(store, tuple(keys), tuple(args))
        except Exception as err:  # the Lua replied: a twin that cannot is a divergence, not a skip
            raise AssertionError(f"{name}: the Lua replied {real!r} but the twin raised "
                                 f"{err.__class__.__name__}: {err} for {state} {args}") from err
        twin_state = {k: v for k, v in store.items() if k in keys and v not in ({}, [])}
        assert normalise(real) == normalise(twin), f"{name}: reply differs for {state} {args}"
        assert normalise(real_state) == normalise(twin_state), f"{name}: final state differs for {state} {args}"
        _compared[name] += 1

    check()
    assert _compared[name] >= MIN_COMPARED, f"{name}: only {_compared[name]} inputs reached a comparison"
