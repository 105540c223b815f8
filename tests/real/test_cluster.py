"""The local cluster launcher and `flashsim cluster up|down`."""

from __future__ import annotations

import json

import pytest
import redis

from engine.real.cluster import LocalCluster
from engine.real.target import TargetError
from engine.slots import even_slot_ranges
from sim.cli import main

pytestmark = pytest.mark.real


def test_slots_are_assigned_like_the_simulator(cluster):
    client = redis.Redis(port=cluster.ports[0], decode_responses=True)
    info = dict(line.split(":", 1) for line in client.execute_command("CLUSTER", "INFO").split() if ":" in line)
    assert info["cluster_state"] == "ok" and info["cluster_known_nodes"] == "3"
    rows = client.execute_command("CLUSTER", "SLOTS")
    owners = sorted((int(row[0]), int(row[1]), int(row[2][1])) for row in rows)
    expected = [(first, last, port) for (first, last), port in zip(even_slot_ranges(3), cluster.ports)]
    assert owners == expected
    client.close()


def test_missing_redis_server_says_how_to_install_it():
    with pytest.raises(TargetError, match="apt-get install redis-server"):
        LocalCluster(3, redis_server="redis-server-not-installed-here").start()


def test_cli_cluster_up_and_down(tmp_path, capsys):
    directory = tmp_path / "cl"
    assert main(["cluster", "up", "--nodes", "2", "--dir", str(directory)]) == 0
    state = json.loads((directory / "state.json").read_text())
    out = capsys.readouterr().out
    assert f"--redis-url redis://127.0.0.1:{state['ports'][0]}/0" in out
    try:
        client = redis.Redis(port=state["ports"][1])
        assert client.ping()
        client.close()
        assert main(["cluster", "up", "--nodes", "2", "--dir", str(directory)]) == 2  # already running
    finally:
        assert main(["cluster", "down", "--dir", str(directory)]) == 0
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=state["ports"][0], socket_connect_timeout=1).ping()
    assert main(["cluster", "down", "--dir", str(directory)]) == 2
    assert "no local cluster recorded" in capsys.readouterr().err


def test_cli_run_real_against_the_cluster(cluster, mariadb, capsys, tmp_path):
    code = main(["run", "--real", "--redis-url", cluster.url, "--set", "sale.stock=100", "--set", "workload.buyers=500",
                 "--set", "workload.window=0.2", "--set", "redis.nodes=3", "--quiet", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "real mode: redis://127.0.0.1:" in out and "single_redis" in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["mode"] == "real" and (tmp_path / "r" / "requests.parquet").exists()


def test_cli_run_real_unreachable_target_is_one_line(capsys):
    code = main(["run", "--real", "--redis-url", "redis://127.0.0.1:1/0", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("flashsim: error: cannot reach Redis at redis://127.0.0.1:1")
    assert len(err.strip().splitlines()) == 1


def test_key_slot_is_what_the_cluster_computes(cluster):
    """engine.slots.key_slot against `CLUSTER KEYSLOT` on a live node, for tricky and random keys."""
    import random

    from engine.slots import key_slot

    rng = random.Random(7)
    alphabet = "ab{}:é}{{x"
    keys = ["", "{}", "{{}}", "foo{}{bar}", "foo{{bar}}zap", "a{b}c{d}", "}{", "{é}", "stock:{sku42:p3}:a"]
    keys += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(300)]
    client = redis.Redis(port=cluster.ports[0])
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", key)
    expected = pipe.execute()
    client.close()
    assert [key_slot(key) for key in keys] == expected
    assert len(set(expected)) > 100  # the random keys really spread over many slots
