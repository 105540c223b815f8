"""Faults on real servers: what a kill -9 of a master costs, and how far a replica lags (docs/faults.md).

    python experiments/real_faults.py crash [--seeds 3] [--node-timeout 1] [--pipeline]   # single_redis, kill -9
    python experiments/real_faults.py lag [--trials 5]                       # replication lag on loopback

``crash``: single_redis (async pipeline off) on a local 3-master cluster with
one replica each; a burst of buyers; kill -9 of the master holding the stock
key one second in. Prints, per seed, the loss figures read back from the
servers, how long the promotion took and when buyers were served again.

``lag``: one master and its replica (a local cluster, cluster-node-timeout 1 s)
on loopback, three ways:

1. ``WAIT 1 0`` after each write (idle, then under a pipelined write flood from
   another process): master -> replica -> REPLCONF ACK -> master, a round trip
   that bounds the one-way lag from above;
2. visibility: a write, then the replica polled until it shows it;
3. what a crash loses: a client floods ``INCR`` (pipelined), the master is
   killed (kill -9), the replica promoted; acknowledged increments the new
   master lacks, divided by the acknowledged rate, is the window of writes a
   crash lost: what ``redis.replica_lag`` stands for in the simulator.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import redis  # noqa: E402

from engine.counter.keys import StockKeys  # noqa: E402
from engine.real import RealOptions, RedisTarget, run_real  # noqa: E402
from engine.real.cluster import LocalCluster  # noqa: E402
from engine.real.faults import master_of  # noqa: E402
from engine.scenario import Scenario  # noqa: E402
from engine.slots import even_slot_ranges, key_slot  # noqa: E402


# ---------------------------------------------------------------- crash
def crash(seeds: int, node_timeout: float, pipeline: bool = False) -> None:
    namespace = "fsreal-crashdemo"
    base = Scenario().with_overrides(["redis.nodes=3", f"pipeline.enabled={str(pipeline).lower()}", "sale.stock=20000",
                                      "workload.kind=burst", "workload.buyers=24000", "workload.window=6",
                                      "workload.timeout=0.5"])
    slot = key_slot(StockKeys(namespace, base.sale.sku).all()[0])
    node = next(i for i, (first, last) in enumerate(even_slot_ranges(3)) if first <= slot <= last)
    scenario = base.with_overrides(['faults.crash.kind="redis_crash"', "faults.crash.at=1.0",
                                    f"faults.crash.node={node}"])
    print(f"single_redis, stock {scenario.sale.stock}, {scenario.workload.buyers} buyers over "
          f"{scenario.workload.window:g} s (uniform burst), timeout {scenario.workload.timeout:g} s; "
          f"kill -9 of master {node} (the stock key's) at 1.0 s; cluster-node-timeout {node_timeout:g} s; "
          f"async pipeline {'on (MariaDB: $FLASHSIM_DB_URL or 127.0.0.1:3306)' if pipeline else 'off'}")
    header = ("seed", "ok", "timeout", "error", "sold", "acknowledged", "lost_ack", "lost_ack_max", "in_doubt",
              "oversold_promised", "promoted_after_s", "served_again_after_s")
    print(" | ".join(header))
    for seed in range(seeds):
        with LocalCluster(3, replicas=1, node_timeout=node_timeout) as cluster:
            result = run_real(scenario, seed=seed, options=RealOptions(RedisTarget(cluster.url), namespace=namespace,
                                                                        cluster=cluster))
        s, req, events = result.summary, result.requests, result.events
        killed = events.loc[events["what"] == "killed", "t"].iloc[0]
        promoted = events.loc[events["what"] == "promoted", "t"]
        served = req.loc[(req["outcome"] == "ok") & (req["t_done"] > killed + 0.05), "t_done"]
        row = (seed, s["ok"], s["timeout"], s["error"], s["sold"], s["acknowledged_units"], s["lost_acknowledged"],
               s["lost_acknowledged_max"], s["in_doubt_units"], s["oversold_promised"],
               f"{promoted.iloc[0] - killed:.2f}" if len(promoted) else "-",
               f"{served.min() - killed:.2f}" if len(served) else "-")
        print(" | ".join(map(str, row)), flush=True)
        print(f"  violations (with the pipeline: its reconciliation too): {result.violations}; "
              f"sync_differences {s.get('sync_differences', '-')}", flush=True)


# ---------------------------------------------------------------- lag
def _flood(port: int, seconds: float, key: str) -> None:
    client = redis.Redis(port=port)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pipe = client.pipeline(transaction=False)
        for _ in range(100):
            pipe.incr(key)
        try:
            pipe.execute()
        except redis.RedisError:
            break
    client.close()


def _quantiles(values: list[float]) -> str:
    a = np.asarray(values) * 1e6
    return f"p50 {np.percentile(a, 50):.0f} us, p99 {np.percentile(a, 99):.0f} us, max {a.max():.0f} us (n={len(a)})"


def _tag_on_node0() -> str:
    """A hash tag whose slot master 0 of a 3-master cluster owns."""
    last = even_slot_ranges(3)[0][1]
    return next(f"{{t{i}}}" for i in range(10_000) if key_slot(f"{{t{i}}}") <= last)


def lag(trials: int) -> None:
    tag = _tag_on_node0()
    with LocalCluster(3, replicas=1, node_timeout=1.0) as cluster:  # 3 masters: a failover needs their votes
        master_port, replica_port = cluster.ports[0], cluster.ports[3]
        key = f"{tag}:probe"
        master = redis.Redis(port=master_port)
        replica = redis.Redis(port=replica_port)
        replica.execute_command("READONLY")
        for label, load in (("idle", False), ("under a write flood", True)):
            flood = None
            if load:
                flood = multiprocessing.Process(target=_flood, args=(master_port, 4.0, f"{tag}:flood"))
                flood.start()
                time.sleep(0.3)
            waits, visible = [], []
            for i in range(2000 if not load else 1000):
                t = time.perf_counter()
                master.set(key, i)
                master.execute_command("WAIT", 1, 0)
                waits.append(time.perf_counter() - t)
            for i in range(2000 if not load else 1000):
                value = str(10_000_000 + i).encode()
                t = time.perf_counter()
                master.set(key, value)
                while replica.get(key) != value:
                    pass
                visible.append(time.perf_counter() - t)
            if flood is not None:
                flood.join()
            print(f"{label}: SET + WAIT 1 0: {_quantiles(waits)}")
            print(f"{label}: SET until visible on the replica (includes the SET and GET round trips): "
                  f"{_quantiles(visible)}")
        rtt = []
        for _ in range(2000):
            t = time.perf_counter()
            master.ping()
            rtt.append(time.perf_counter() - t)
        print(f"idle PING round trip: {_quantiles(rtt)}")
        master.close()
        replica.close()
    crash_windows = []
    for trial in range(trials):
        with LocalCluster(3, replicas=1, node_timeout=1.0) as cluster:
            crash_windows.append(_crash_trial(cluster, trial, f"{tag}:n"))
    print(f"kill -9 under an INCR flood: acknowledged writes lost / acknowledged rate = "
          f"{', '.join(f'{w * 1e6:.0f} us' for w in crash_windows)}; median "
          f"{statistics.median(crash_windows) * 1e6:.0f} us")


def _crash_trial(cluster: LocalCluster, trial: int, key: str) -> float:
    """Flood INCR on master 0 from threads, kill -9 it, count acknowledged increments the new master lacks."""
    master_port = cluster.ports[0]
    acked = [0] * 4
    stop = threading.Event()

    def writer(k: int) -> None:
        client = redis.Redis(port=master_port, socket_timeout=2)
        try:
            while not stop.is_set():
                pipe = client.pipeline(transaction=False)
                for _ in range(50):
                    pipe.incr(key)
                pipe.execute()
                acked[k] += 50
        except (redis.RedisError, OSError):
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(len(acked))]
    t_start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    total_before = sum(acked)
    rate = total_before / (time.monotonic() - t_start)
    cluster.kill(master_port)
    stop.set()
    for thread in threads:
        thread.join()
    acknowledged = sum(acked)
    deadline = time.monotonic() + 30
    held = None
    while time.monotonic() < deadline:
        try:
            now = master_of(cluster, 0)
            if now.port != master_port:
                held = int(redis.Redis(port=now.port).get(key) or 0)
                break
        except Exception:
            pass
        time.sleep(0.05)
    assert held is not None, "no promotion"
    lost = max(0, acknowledged - held)
    print(f"trial {trial}: {acknowledged} increments acknowledged at {rate:,.0f}/s, the promoted replica holds "
          f"{held}: {lost} lost")
    return lost / rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("crash", "lag"), help="crash: kill -9 mid-burst; lag: replication lag")
    parser.add_argument("--seeds", type=int, default=3, help="crash: runs, seeds 0..N-1 (default 3)")
    parser.add_argument("--node-timeout", type=float, default=1.0, help="crash: cluster-node-timeout, s (default 1)")
    parser.add_argument("--pipeline", action="store_true", help="crash: with the async pipeline (needs MariaDB)")
    parser.add_argument("--trials", type=int, default=5, help="lag: kill -9 trials under a write flood (default 5)")
    args = parser.parse_args()
    if args.what == "crash":
        crash(args.seeds, args.node_timeout, args.pipeline)
    else:
        lag(args.trials)


if __name__ == "__main__":
    main()
