"""Real-mode command line: ``flashsim run --real ...`` and ``flashsim cluster up|down``.

    flashsim run --real [--redis-url URL|local] [--db-url URL] [--workers N] [--namespace NS] [--keep] ...
    flashsim run --real ... --fault SPEC [--fault SPEC ...]   (faults: only on `cluster up`'s servers)
    flashsim cluster up [--nodes N] [--replicas N] [--node-timeout S] [--dir DIR]   (prints the URL for --redis-url)
    flashsim cluster down [--dir DIR]

The Redis password comes from ``--redis-password-env VAR`` (default
``FLASHSIM_REDIS_PASSWORD``) and TLS files from ``FLASHSIM_REDIS_TLS_*``: a
password never appears on a command line, in output or in saved results.

``flashsim run`` imports this module for its options; the real-mode stack
(:mod:`engine.real`: redis, asyncmy, the load-generator processes) is imported
only when a real run or the cluster command actually starts.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.cli.common import CliError, Command, writable_dir

if TYPE_CHECKING:
    from engine.real import RealOptions
    from engine.result import Result
    from engine.scenario import Scenario


def add_real_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` gains for real mode."""
    group = parser.add_argument_group("real mode (drive real servers instead of simulating)")
    group.add_argument("--real", action="store_true", help="run against a real Redis (single node or cluster)")
    group.add_argument("--redis-url", help="Redis entry point (default redis://127.0.0.1:6379/0; rediss:// for TLS; "
                       "'local': the cluster started by `flashsim cluster up`)")
    group.add_argument("--db-url", help="MariaDB/MySQL server for SQL ops (default $FLASHSIM_DB_URL or "
                       "mysql://root@127.0.0.1:3306; password from $FLASHSIM_DB_PASSWORD)")
    group.add_argument("--redis-password-env", default="FLASHSIM_REDIS_PASSWORD", metavar="VAR",
                       help="environment variable holding the Redis password (default FLASHSIM_REDIS_PASSWORD)")
    group.add_argument("--workers", type=int, default=1, help="load-generator processes (default 1)")
    group.add_argument("--lanes", type=int, default=4, help="connections per master per worker (default 4)")
    group.add_argument("--sample-interval", type=float, metavar="S",
                       help="seconds between inventory samples read from the servers for the timeline (default: "
                       "report.timeline_interval, at least 0.1: sampling loads the servers)")
    group.add_argument("--namespace", help="key namespace of the run (default: a fresh fsreal-<hex>)")
    group.add_argument("--keep", action="store_true", help="leave the run's keys in place afterwards")
    group.add_argument("--fault", dest="faults", action="append", default=[], metavar="SPEC",
                       help="inject a fault, kind@seconds:key=value,... e.g. redis_crash@0.5:node=0 (repeatable; "
                       "added to the scenario's faults section, simulated or real; real mode acts only on "
                       "`flashsim cluster up`'s servers, see docs/faults.md)")


def real_options(args: argparse.Namespace) -> RealOptions:
    from engine.real import RealOptions, RedisTarget, TargetError
    from engine.real.cluster import LocalCluster, default_state_dir

    if args.workers < 1:
        raise CliError(f"--workers must be >= 1 (got {args.workers})")
    if args.lanes < 1:
        raise CliError(f"--lanes must be >= 1 (got {args.lanes})")
    if args.sample_interval is not None and not args.sample_interval > 0:
        raise CliError(f"--sample-interval must be > 0 (got {args.sample_interval})")
    password = os.environ.get(args.redis_password_env) or None
    url = args.redis_url
    if url == "local":
        try:
            url = LocalCluster.attach(default_state_dir()).url
        except TargetError as err:
            raise CliError(f"{err}; start one with: flashsim cluster up") from None
    target = RedisTarget.from_options(url, password)
    return RealOptions(target=target, namespace=args.namespace, workers=args.workers, lanes=args.lanes,
                       keep=args.keep, db_url=args.db_url, sample_interval=args.sample_interval,
                       cluster=_our_cluster(target.url))


def _our_cluster(url: str) -> Any:
    """The cluster of `flashsim cluster up` when ``url`` points at one of its nodes (fault injection needs it)."""
    from engine.real.cluster import LocalCluster, default_state_dir
    from engine.real.target import TargetError

    try:
        cluster = LocalCluster.attach(default_state_dir())
    except (TargetError, OSError, ValueError, KeyError):
        return None
    return cluster if cluster.serves(url) else None


def with_faults(scenario: Scenario, specs: list[str]) -> Scenario:
    """The scenario with each ``--fault SPEC`` added to its faults section (as fault1, fault2, ...)."""
    if not specs:
        return scenario
    from engine.faults.config import parse_fault_spec
    from engine.fields import ScenarioError
    from engine.scenario import Scenario as ScenarioClass

    data = scenario.to_dict()
    faults = data.setdefault("faults", {})
    try:
        for number, spec in enumerate(specs, 1):
            name = f"fault{number}"
            while name in faults:
                name += "_"
            faults[name] = parse_fault_spec(spec)
        return ScenarioClass.from_dict(data)
    except ScenarioError as err:
        raise CliError(str(err)) from None


def run_for_real(args: argparse.Namespace, scenario: Scenario, strategy: str, progress: Any) -> Result:
    """``flashsim run --real``: one real run, errors as one line."""
    from engine.real import TargetError, run_real

    options = real_options(args)
    print(f"real mode: {options.target.describe()}, {options.workers} worker(s)")
    for name, fault in scenario.faults.items():
        print(f"fault {name}: {fault.kind} at {fault.at:g} s" + (f", {fault.rate:g}/s" if fault.rate else ""))
    try:
        return run_real(scenario, args.seed, strategy, options, progress)
    except TargetError as err:
        raise CliError(str(err)) from None


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.real.cluster import default_state_dir

    parser.add_argument("action", choices=("up", "down"), help="start or stop the local cluster")
    parser.add_argument("--nodes", type=int, default=3, help="masters to start (default 3)")
    parser.add_argument("--replicas", type=int, default=0, help="replicas per master (default 0)")
    parser.add_argument("--node-timeout", type=float, default=None, metavar="S",
                        help="cluster-node-timeout in seconds: how long a master may be unreachable before its "
                        "replica takes over (default 5; the scenario's redis.node_timeout is the simulator's)")
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"where the cluster lives (default {default_state_dir()})")


def _cluster(args: argparse.Namespace) -> int:
    from engine.real.cluster import DEFAULT_NODE_TIMEOUT, LocalCluster, default_state_dir
    from engine.real.target import TargetError

    directory = args.dir or default_state_dir()
    try:
        if args.action == "up":
            if args.nodes < 1:
                raise CliError(f"--nodes must be >= 1 (got {args.nodes})")
            if args.replicas < 0:
                raise CliError(f"--replicas must be >= 0 (got {args.replicas})")
            timeout = DEFAULT_NODE_TIMEOUT if args.node_timeout is None else args.node_timeout
            if not timeout > 0:
                raise CliError(f"--node-timeout must be > 0 (got {timeout})")
            writable_dir(directory, "--dir")
            cluster = LocalCluster(args.nodes, directory, detach=True, replicas=args.replicas,
                                   node_timeout=timeout).start()
            kind = "cluster of" if cluster.cluster else "single node,"
            ports = ", ".join(map(str, cluster.ports[:args.nodes]))
            print(f"local Redis {kind} {args.nodes} master(s) on ports {ports}")
            if args.replicas:
                print(f"{args.replicas} replica(s) per master on ports {', '.join(map(str, cluster.ports[args.nodes:]))}, "
                      f"in sync; cluster-node-timeout {timeout:g} s")
            print(f"use: flashsim run --real --redis-url {cluster.url}")
        else:
            LocalCluster.attach(directory).stop()
            print(f"stopped the local cluster in {directory}")
    except TargetError as err:
        raise CliError(str(err)) from None
    return 0


COMMANDS = {"cluster": Command(_cluster_arguments, _cluster)}
