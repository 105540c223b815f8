"""Hot-row TPS by concurrency: a calibration profile's measurements against the simulator's two commit paths.

For each connection count the profile measured (``[raw.db]``: own client and
``mariadb-slap``), simulates ``db_conditional`` with that many closed-loop
connections hammering one row (no think time), with the profile applied, once
with ``db.commit_path = "binlog_sync"`` and once with ``"group_commit"``, and
prints the steady TPS (successes between ``--warmup`` and ``--duration``).

    .venv/bin/python experiments/commit_path.py [--profile local-2core] [--duration 2] [--warmup 0.5]
"""

from __future__ import annotations

import argparse
import sys

from engine.scenario import Scenario
from sim import profiles, simulate


def sim_tps(base: Scenario, users: int, path: str, duration: float, warmup: float, seed: int = 0) -> float:
    scenario = base.with_overrides([
        "workload.kind=closed", f"workload.users={users}", "workload.think=0", f"workload.duration={duration}",
        "workload.timeout=inf", "sale.stock=1000000000", f"db.pool_size={users}", f'db.commit_path="{path}"',
    ])
    requests = simulate(scenario, seed, "db_conditional").requests
    done = requests["t_done"]
    ok = (requests["outcome"] == "ok") & (done >= warmup) & (done <= duration)
    return int(ok.sum()) / (duration - warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="local-2core")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    args = parser.parse_args(argv)
    profile = profiles.find(args.profile)
    raw = profile.data.get("raw", {}).get("db")
    if not raw:
        print(f"profile {profile.name} has no database measurements", file=sys.stderr)
        return 2
    base, _ = profile.apply(Scenario())
    settings = raw["settings"]
    print(f"profile {profile.name}: {settings.get('version')}, log_bin={settings.get('log_bin')}, "
          f"sync_binlog={settings.get('sync_binlog')}, "
          f"innodb_flush_log_at_trx_commit={settings.get('innodb_flush_log_at_trx_commit')}; "
          f"db.commit mean {base.db.commit.mean * 1e6:.0f} us")
    slap = {row["connections"]: row.get("tps") for row in raw.get("slap", [])}
    print(f"{'connections':>11} {'measured':>9} {'slap':>9} {'binlog_sync':>12} {'group_commit':>13}")
    for row in raw["hot_row"]:
        users = row["connections"]
        cells = [sim_tps(base, users, path, args.duration, args.warmup) for path in ("binlog_sync", "group_commit")]
        measured = f"{row['tps']:,.0f}" if "tps" in row else "-"
        check = f"{slap[users]:,.0f}" if slap.get(users) else "-"
        print(f"{users:>11} {measured:>9} {check:>9} {cells[0]:>12,.0f} {cells[1]:>13,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
