"""What a Redis master spends per command, per batch, per script and per record.

Every figure comes from the server's own counters, read before and after a
controlled load (``INFO``: ``used_cpu_user + used_cpu_sys``,
``total_reads_processed``, and ``INFO commandstats``: calls and usec per
command). Nothing needs ``CONFIG SET`` or ``CONFIG RESETSTAT``, so the same
measurement runs on a server flashsim started (clean figures) or on one it
did not (figures then include other clients' traffic).

- **fixed costs** (:func:`fixed_costs`): ``redis-benchmark PING`` at several
  pipeline depths. Server CPU per PING = its body (commandstats usec) + a
  per-command part + a per-batch part x (reads / commands); a least-squares
  line over the depths gives the per-batch cost (slope) and, minus PING's body,
  the per-command cost (intercept).
- **script bodies** (:func:`script_bodies`): a replay of the EVALSHA calls a
  simulated sale sends, in order, so every script meets the arguments and
  state it really meets; ``commandstats`` usec of EVALSHA is read after each
  run of one script, so each run's time belongs to that script alone. The
  first call after the server has been idle runs with cold caches: that extra
  time (``cold``, from ``deduct`` timed alone and in runs of 100) is taken off
  each run once. A script's body is then the median of usec per call over its
  calls (each call counted at its run's mean: robust to the scheduler pausing
  the server in the middle of a run).
- **records** (:func:`record_costs`): the detail scripts timed one call at a
  time over batches of 1..N records; body (less ``cold``) and per-record cost
  are the intercept and slope of a Theil-Sen line (median of pairwise slopes).
- **round trip** (:func:`round_trip`): sequential PINGs on one connection.
- **cross-check** (:func:`deduct_check`): ``redis-benchmark EVALSHA deduct``
  at depth 1 and 16; its measured CPU per call against body + command +
  batch x reads/call.

All keys live under the hash tag ``{<namespace>}`` (one slot, so one master)
and are deleted afterwards.
"""

from __future__ import annotations

import csv
import io
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from engine import scripts
from engine.ops import Eval
from engine.real.links import sha1
from engine.real.target import TargetError

SEGMENT = 200  # most calls of one script between two commandstats reads


@dataclass(frozen=True)
class Node:
    """One Redis master to measure on (the one owning the namespace's slot)."""

    host: str
    port: int
    password: str | None = None
    ssl: bool = False  # rediss://
    tls: dict[str, str] | None = None  # ssl_ca_certs, ssl_certfile, ssl_keyfile

    def client(self) -> redis.Redis:
        extra: dict[str, Any] = {"ssl": True, **(self.tls or {})} if self.ssl else {}
        return redis.Redis(host=self.host, port=self.port, password=self.password, socket_timeout=30,
                           socket_connect_timeout=5, decode_responses=True, **extra)


def counters(client: redis.Redis) -> dict[str, float]:
    """The server counters a measurement reads before and after its load."""
    info = client.info("all")
    out = {"cpu": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
           "reads": float(info.get("total_reads_processed", 0)),
           "commands": float(info["total_commands_processed"])}
    for command in ("ping", "evalsha"):
        stat = info.get(f"cmdstat_{command}", {})
        out[f"{command}_calls"] = float(stat.get("calls", 0))
        out[f"{command}_usec"] = float(stat.get("usec", 0))
    return out


def _evalsha_usage(client: redis.Redis) -> tuple[float, float]:
    stat = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stat.get("calls", 0)), float(stat.get("usec", 0))


def _benchmark(node: Node, requests: int, depth: int, clients: int, command: Sequence[str]) -> float:
    """One ``redis-benchmark`` run; returns its requests per second."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        raise TargetError("redis-benchmark not found (it measures the fixed costs); "
                          "install it with: apt-get install redis-tools")
    args = [binary, "-h", node.host, "-p", str(node.port), "-c", str(clients), "-n", str(requests),
            "-P", str(depth), "--csv"]
    if node.ssl:
        tls = node.tls or {}
        args.append("--tls")
        for key, flag in (("ssl_ca_certs", "--cacert"), ("ssl_certfile", "--cert"), ("ssl_keyfile", "--key")):
            if key in tls:
                args += [flag, tls[key]]
    args += command
    env = {"REDISCLI_AUTH": node.password} if node.password else None
    try:
        done = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600, env=env)
    except subprocess.CalledProcessError as err:
        raise TargetError(f"redis-benchmark failed: {err.stderr.strip() or err.stdout.strip()}") from None
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    return float(rows[-1]["rps"]) if rows else float("nan")


def _loaded(node: Node, command: Sequence[str], name: str, requests: int, depth: int,
            clients: int) -> dict[str, float]:
    """Server counters around one redis-benchmark run of ``command`` (commandstats name ``name``)."""
    client = node.client()
    try:
        before = counters(client)
        rps = _benchmark(node, requests, depth, clients, command)
        after = counters(client)
    finally:
        client.close()
    calls = after[f"{name}_calls"] - before[f"{name}_calls"]
    reads = after["reads"] - before["reads"]
    if calls <= 0:
        raise TargetError(f"redis-benchmark sent no {name.upper()} (server counters did not move)")
    return {"depth": depth, "clients": clients, "calls": calls, "rps": rps,
            "cpu_per_call": (after["cpu"] - before["cpu"]) / calls,
            "usec_per_call": (after[f"{name}_usec"] - before[f"{name}_usec"]) / calls * 1e-6,
            "reads_per_call": reads / calls if reads > 0 else float("nan")}


def fixed_costs(node: Node, requests: int, depths: Sequence[int] = (1, 4, 16, 64), clients: int = 50
                ) -> dict[str, Any]:
    """Per-command and per-batch server time, from PING at several pipeline depths."""
    rows = [_loaded(node, ["PING"], "ping", requests, depth, clients) for depth in depths]
    x = [r["reads_per_call"] for r in rows]
    y = [r["cpu_per_call"] for r in rows]
    slope, intercept = _least_squares(x, y)
    ping_body = statistics.median(r["usec_per_call"] for r in rows)
    return {"command": max(0.0, intercept - ping_body), "batch": max(0.0, slope), "ping_body": ping_body,
            "runs": rows}


def deduct_check(node: Node, namespace: str, requests: int, body: float, command: float, batch: float,
                 depths: Sequence[int] = (1, 16), clients: int = 50) -> list[dict[str, float]]:
    """``redis-benchmark EVALSHA deduct``: measured server CPU per call against the cost model."""
    client = node.client()
    lua = scripts.get("deduct").lua
    sha = client.script_load(lua)
    stock, sold = f"{{{namespace}}}:bench:stock", f"{{{namespace}}}:bench:sold"
    client.set(stock, 10**15)
    client.close()
    rows = []
    for depth in depths:
        row = _loaded(node, ["EVALSHA", sha, "2", stock, sold, "1"], "evalsha", requests, depth, clients)
        row["model"] = body + command + batch * row["reads_per_call"]
        rows.append(row)
    return rows


def round_trip(node: Node, count: int) -> dict[str, float]:
    """Sequential PINGs on one connection: the client's round trip, seconds."""
    client = node.client()
    try:
        conn = client.connection_pool.get_connection()
        try:
            samples = []
            for _ in range(count):
                start = time.perf_counter()
                conn.send_command("PING")
                conn.read_response()
                samples.append(time.perf_counter() - start)
        finally:
            client.connection_pool.release(conn)
    finally:
        client.close()
    samples.sort()
    return {"count": count, "median": statistics.median(samples), "p10": samples[len(samples) // 10],
            "p90": samples[len(samples) * 9 // 10]}


# ---------------------------------------------------------------- script bodies
def rename(op: Eval, namespace: str) -> Eval:
    """``op`` with every key moved under the hash tag ``{namespace}``."""
    return Eval(op.script, tuple(f"{{{namespace}}}:{key}" for key in op.keys), op.args)


def _runs(ops: Iterable[Eval]) -> Iterable[list[Eval]]:
    """Consecutive calls of one script, at most SEGMENT at a time."""
    run: list[Eval] = []
    for op in ops:
        if run and (op.script != run[0].script or len(run) == SEGMENT):
            yield run
            run = []
        run.append(op)
    if run:
        yield run


def load_scripts(client: redis.Redis) -> dict[str, str]:
    shas = {}
    for name, script in scripts.REGISTRY.items():
        shas[name] = client.script_load(script.lua)
        if shas[name] != sha1(script.lua):
            raise TargetError(f"the server names script {name} {shas[name]}, not its SHA1")
    return shas


def cold_start(node: Node, namespace: str, count: int) -> dict[str, float]:
    """Extra time of a call that finds the server idle: ``deduct`` alone minus ``deduct`` in runs of 100."""
    client = node.client()
    sha = client.script_load(scripts.get("deduct").lua)
    stock, sold = f"{{{namespace}}}:cold:stock", f"{{{namespace}}}:cold:sold"
    client.set(stock, 10**15)

    def run(size: int) -> float:
        before = _evalsha_usage(client)
        pipe = client.pipeline(transaction=False)
        for _ in range(size):
            pipe.evalsha(sha, 2, stock, sold, 1)
        pipe.execute()
        after = _evalsha_usage(client)
        return (after[1] - before[1]) / (after[0] - before[0]) * 1e-6

    try:
        alone = statistics.median(run(1) for _ in range(count))
        warm = statistics.median(run(100) for _ in range(max(5, count // 20)))
    finally:
        client.delete(stock, sold)
        client.close()
    return {"alone": alone, "warm": warm, "cold": max(0.0, alone - warm)}


def weighted_median(values: Sequence[tuple[float, int]]) -> float:
    """The median of ``value`` repeated ``weight`` times, for (value, weight) pairs."""
    ordered = sorted(values)
    half = sum(w for _, w in ordered) / 2
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= half:
            return value
    raise ValueError("no values")


def script_bodies(node: Node, traces: Sequence[Sequence[Eval]], namespace: str, cold: float = 0.0
                  ) -> dict[str, dict[str, Any]]:
    """Per script: its body (median usec per call, ``cold`` taken off each run) over the replayed traces."""
    client = node.client()
    per_script: dict[str, list[tuple[int, float]]] = {}
    errors: dict[str, int] = {}
    try:
        shas = load_scripts(client)
        for number, trace in enumerate(traces):
            space = f"{namespace}-t{number}"
            for run in _runs(rename(op, space) for op in trace):
                before = _evalsha_usage(client)
                pipe = client.pipeline(transaction=False)
                for op in run:
                    pipe.evalsha(shas[op.script], len(op.keys), *op.keys, *op.args)
                replies = pipe.execute(raise_on_error=False)
                after = _evalsha_usage(client)
                failed = sum(isinstance(r, Exception) for r in replies)
                if failed:
                    errors[run[0].script] = errors.get(run[0].script, 0) + failed
                calls = after[0] - before[0]
                if calls >= len(run):  # other clients' EVALSHAs (a shared server) only add calls
                    total = (after[1] - before[1]) * 1e-6 * len(run) / calls
                    per_script.setdefault(run[0].script, []).append((len(run), max(0.0, total - cold) / len(run)))
    finally:
        delete_namespace(client, namespace)
        client.close()
    out = {}
    for name, runs in per_script.items():
        out[name] = {"calls": sum(n for n, _ in runs), "runs": len(runs),
                     "median": weighted_median([(mean, n) for n, mean in runs]),
                     "mean": sum(n * m for n, m in runs) / sum(n for n, _ in runs), "errors": errors.get(name, 0)}
    for name, failed in errors.items():
        out.setdefault(name, {"calls": 0, "runs": 0, "errors": failed})
    return out


def delete_namespace(client: redis.Redis, namespace: str) -> int:
    """Delete every key under ``{namespace}...`` (this measurement's keys only)."""
    deleted = 0
    batch: list[str] = []
    for key in client.scan_iter(match=f"{{{namespace}*", count=1000):
        batch.append(key)
        if len(batch) == 500:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


# ---------------------------------------------------------------- per-record costs
def record_costs(node: Node, namespace: str, sizes: Sequence[int], repeats: int, cold: float = 0.0
                 ) -> dict[str, dict[str, Any]]:
    """Body and per-record cost of the record-walking detail scripts, one call at a time."""
    client = node.client()
    shas = load_scripts(client)
    samples: dict[str, list[tuple[int, float]]] = {}
    tag = f"{{{namespace}}}:rec"
    stock, sold, details, pending, meta, batches = (f"{tag}:{k}" for k in
                                                    ("stock", "sold", "det", "pend", "meta", "bat"))

    def timed(script: str, keys: tuple[str, ...], args: tuple[Any, ...], items: Callable[[Any], int]) -> Any:
        before = _evalsha_usage(client)
        reply = client.evalsha(shas[script], len(keys), *keys, *args)
        after = _evalsha_usage(client)
        if after[0] - before[0] == 1:  # exactly our call: nobody else ran an EVALSHA meanwhile
            samples.setdefault(script, []).append((items(reply), (after[1] - before[1]) * 1e-6 - cold))
        return reply

    try:
        client.set(stock, 10**15)
        for _ in range(repeats):
            for size in sizes:
                pipe = client.pipeline(transaction=False)
                for _ in range(size):
                    pipe.evalsha(shas["deduct_detail"], 5, stock, sold, details, pending, meta, 1, "1.0")
                pipe.execute()
                batch, flat = timed("detail_collect", (details, pending, batches, meta), ("2.0", size),
                                    lambda reply: len(reply[1]) // 2)
                timed("detail_stale", (details, batches), ("3.0", "0"),
                      lambda reply: sum(len(records) // 2 for _, records in reply))
                timed("detail_applied", (details, batches), (batch,), int)
                timed("detail_summary", (details, sold), (), lambda reply: int(reply[0]))
    finally:
        delete_namespace(client, namespace)
        client.close()
    out = {}
    for script, points in samples.items():
        slope, intercept = theil_sen([float(n) for n, _ in points], [t for _, t in points])
        out[script] = {"body": max(0.0, intercept), "per_item": max(0.0, slope), "calls": len(points),
                       "items": sorted({n for n, _ in points})}
    return out


# ---------------------------------------------------------------- fitting
def _least_squares(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Slope and intercept of the least-squares line through (x, y)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    if sxx == 0:
        return 0.0, my
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx
    return slope, my - slope * mx


def theil_sen(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Slope (median of pairwise slopes) and intercept (median of y - slope x): robust to outliers."""
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(x)) for j in range(i + 1, len(x)) if x[j] != x[i]]
    slope = statistics.median(slopes) if slopes else 0.0
    return slope, statistics.median(b - slope * a for a, b in zip(x, y))
