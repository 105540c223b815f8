"""The real driver follows an ASK redirect as Redis Cluster requires: ASKING, then the command, on one connection.

A slot of a 2-master cluster is put in migration (IMPORTING on the target,
MIGRATING on the source) and one product's keys are moved with MIGRATE. The
source then answers ``ASK`` for those keys, and the target refuses them with
``MOVED`` back to the source unless the command comes right after ``ASKING``.
"""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.exceptions import AskError, MovedError
from servers import unavailable  # tests/servers.py

from engine.ops import Eval
from engine.real.cluster import LocalCluster
from engine.real.interpreter import RealInterpreter
from engine.real.links import RedisLinks, sha1
from engine.real.target import RedisTarget, TargetError, discover
from engine.scripts import get as get_script
from engine.slots import key_slot

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def migrating(tmp_path_factory):
    """(cluster, slot, source client, target client, moved keys, staying keys): keys of one slot, half migrated."""
    try:
        cluster = LocalCluster(2, tmp_path_factory.mktemp("ask")).start()
    except TargetError as err:
        unavailable("redis-server (local cluster)", err)
    source, target = (redis.Redis(port=port, decode_responses=True) for port in cluster.ports)
    try:
        # two products whose keys share one slot owned by the source (master 0 owns the low slots)
        tag = next(f"ask{i}" for i in range(10_000) if key_slot(f"{{ask{i}}}") < 8000)
        moved = (f"stock:{{{tag}}}:moved", f"sold:{{{tag}}}:moved")
        staying = (f"stock:{{{tag}}}:staying", f"sold:{{{tag}}}:staying")
        slot = key_slot(moved[0])
        assert {key_slot(k) for k in (*moved, *staying)} == {slot}
        source.mset({moved[0]: 10, moved[1]: 0, staying[0]: 5, staying[1]: 0})
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.execute_command("CLUSTER", "MYID"))
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.execute_command("CLUSTER", "MYID"))
        assert source.execute_command("MIGRATE", "127.0.0.1", cluster.ports[1], "", 0, 5000, "KEYS", *moved) == "OK"
        yield cluster, slot, source, target, moved, staying
    finally:
        source.close()
        target.close()
        cluster.stop()


def drive(url: str, ops: list[Eval]) -> tuple[list, RedisLinks]:
    """Send ``ops`` through the real interpreter and its lanes; the replies and the links (for their counters)."""

    async def main():
        loop = asyncio.get_running_loop()
        interpreter = RealInterpreter(loop, loop.time())
        target = RedisTarget(url)
        links = RedisLinks(target, await discover(target), interpreter, lanes=1)
        await links.open()
        interpreter.redis = links

        def flow():
            replies = []
            for op in ops:
                replies.append((yield op))
            return replies

        try:
            return await interpreter.run_to_end(flow(), "setup"), links
        finally:
            await links.close()

    return asyncio.run(main())


def test_the_slot_is_really_migrating(migrating):
    """Without ASKING the importing master refuses the key; right after ASKING (same connection) it serves it."""
    cluster, slot, source, target, moved, staying = migrating
    sha = sha1(get_script("deduct").lua)
    target.script_load(get_script("deduct").lua)
    with pytest.raises(AskError, match=f"^{slot} 127.0.0.1:{cluster.ports[1]}$") as ask:
        source.evalsha(sha, 2, *moved, 1)
    assert not isinstance(ask.value, MovedError)
    with pytest.raises(MovedError, match=f"^{slot} 127.0.0.1:{cluster.ports[0]}$"):
        target.evalsha(sha, 2, *moved, 1)
    pipe = target.pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.get(moved[0])
    assert pipe.execute() == [True, "10"]


def test_driver_sends_asking_before_the_command_on_the_importing_master(migrating):
    cluster, slot, source, target, moved, staying = migrating
    deduct = [Eval("deduct", keys=moved, args=(3,)), Eval("deduct", keys=staying, args=(2,)),
              Eval("deduct", keys=moved, args=(4,))]
    replies, links = drive(cluster.url, deduct)
    assert replies == [7, 3, 3]  # 10 - 3, 5 - 2, 7 - 4: every deduction applied once, where its keys live
    assert links.asked == 2 and links.moved == 0  # one ASK per op on the moved keys; the slot owner unchanged
    assert links.owner[key_slot(moved[0])] == 0
    pipe = target.pipeline(transaction=False)
    pipe.execute_command("ASKING")
    pipe.mget(moved)
    assert pipe.execute() == [True, ["3", "7"]]
    assert source.mget(staying) == ["3", "2"]
    for node in (source, target):  # nothing written twice or on the wrong master
        assert node.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 2
