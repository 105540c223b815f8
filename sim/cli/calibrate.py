"""``flashsim calibrate``: measure the servers and the driver, write a calibration profile.

    flashsim calibrate [--redis-url scratch|local|URL] [--db-url URL] [--name NAME] [--out PATH] [--quick]

``--redis-url scratch`` (the default) starts a private redis-server on a free
loopback port for the measurement and stops it afterwards; ``local`` is the
cluster of ``flashsim cluster up``; any other URL is measured as it is (keys
in a namespace of the calibration's own, deleted afterwards; only ``INFO`` is
read, no ``CONFIG``), and its figures include whatever else that server does.
The database is measured only when ``--db-url`` (or ``$FLASHSIM_DB_URL``) names one.
The profile goes to ``results/profiles/NAME.toml`` unless ``--out`` says otherwise;
use it with ``--profile NAME`` on run, compare, sweep and plan.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from engine.profile import dumps
from sim import profiles
from sim.cli.common import CliError, Command, writable_file

COMMENTS = {
    "scenario": "scenario overrides derived from the measurements (applied by --profile, before --set)",
    "measured": "values for scenario keys this flashsim does not know yet (applied once it does)",
    "raw": "the measurements the values come from (seconds; tps = transactions per second)",
}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default="scratch",
                        help="scratch (default: a private redis-server started for the measurement), "
                             "local (the cluster of `flashsim cluster up`) or a redis:// URL")
    parser.add_argument("--redis-password-env", default="FLASHSIM_REDIS_PASSWORD", metavar="VAR",
                        help="environment variable holding the Redis password")
    parser.add_argument("--db-url", help="MariaDB/MySQL to measure (default $FLASHSIM_DB_URL; none: skip the DB); "
                                         "password from $FLASHSIM_DB_PASSWORD")
    parser.add_argument("--name", default="local", help="profile name (default local)")
    parser.add_argument("--out", type=Path, help="where to write the profile (default results/profiles/NAME.toml)")
    parser.add_argument("--quick", action="store_true", help="small, fast measurements (tests, a first look)")
    parser.add_argument("--repeat", type=int, default=1, help="full measurements; the profile takes each value's "
                        "median over them (a noisy machine: 3; default 1)")
    parser.add_argument("--workers", type=int, default=1, help="real-driver processes of the CPU runs: the app fleet the profile describes (default 1)")


def _out_path(args: argparse.Namespace) -> Path:
    if not args.name or "/" in args.name or args.name.startswith("."):
        raise CliError(f"--name must be a plain name (got {args.name!r})")
    path = args.out or profiles.WRITTEN / f"{args.name}.toml"
    writable_file(path, "--out" if args.out else "profile")
    return path


def _calibrate(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CliError(f"--workers must be >= 1 (got {args.workers})")
    if not 1 <= args.repeat <= 20:
        raise CliError(f"--repeat must be in 1..20 (got {args.repeat})")
    path = _out_path(args)
    # real-mode modules load only when this command runs
    import redis

    from engine.real.calibrate import Options, calibrate
    from engine.real.cluster import LocalCluster, default_state_dir
    from engine.real.target import RedisTarget, TargetError
    from sim.eval_trace import record

    def log(line: str) -> None:
        print(f"calibrate: {line}", file=sys.stderr, flush=True)

    password = os.environ.get(args.redis_password_env) or None
    scratch = None
    try:
        url, owned = args.redis_url, args.redis_url in ("scratch", "local")
        if url == "local":
            url = LocalCluster.attach(default_state_dir()).url
        elif url == "scratch":
            log("starting a private redis-server on a loopback port")
            scratch = LocalCluster(1).start()
            url = scratch.url
        options = Options(RedisTarget.from_options(url, password), lambda: record(600 if args.quick else 3000),
                          args.name, args.quick,
                          args.db_url or os.environ.get("FLASHSIM_DB_URL") or None, args.workers,
                          "flashsim " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["calibrate"] else "", owned,
                          repeat=args.repeat)
        profile = calibrate(options, log)
    except TargetError as err:
        raise CliError(str(err)) from None
    except (redis.RedisError, OSError) as err:
        raise CliError(f"calibration failed: {err.__class__.__name__}: {err}") from None
    finally:
        if scratch is not None:
            scratch.stop()
    try:
        path.write_text(dumps(profile, COMMENTS), encoding="utf-8")
    except OSError as err:
        raise CliError(f"cannot write the profile to {path}: {err.strerror or err}") from None
    print(summary(profile))
    print(f"wrote {path}")
    return 0


def summary(profile: dict[str, Any]) -> str:
    """The derived values, one per line (times in microseconds)."""
    lines = [f"profile {profile['profile']['name']} ({profile['machine']['cpu']}, {profile['machine']['cores']} cores, "
             f"load {profile['machine']['load_average']})"]
    for table in ("scenario", "measured"):
        for key, value in profile[table].items():
            lines.append(f"  {key:38s} {_show(value)}" + ("   (not applied: unknown key)" if table == "measured" else ""))
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{value['kind']} mean {value['mean'] * 1e6:.2f} us" + (f" cv {value['cv']}" if "cv" in value else "")
    if isinstance(value, float) and 0 < abs(value) < 0.1:
        return f"{value * 1e6:.2f} us"
    return str(value)


COMMANDS = {"calibrate": Command(_arguments, _calibrate)}
