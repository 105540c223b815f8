"""Writing a run to disk: config.json, requests.parquet, timeline.parquet, summary.csv, meta.json."""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from engine.result import Result

PACKAGES = ("flashsim", "simpy", "numpy", "pandas", "pyarrow", "matplotlib", "redis")


def git_sha(cwd: Path | None = None) -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), or None outside git."""
    here = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def meta(seed: int | None, wall_seconds: float, **extra: Any) -> dict[str, Any]:
    return {"git_sha": git_sha(), "versions": versions(), "seed": seed, "wall_seconds": wall_seconds,
            "argv": sys.argv, **extra}


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def save_result(result: Result, out: str | Path) -> Path:
    """Write ``result`` into directory ``out`` (created if needed); returns it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"strategy": result.strategy, "seed": result.seed, "mode": result.mode,
                                     "scenario": result.scenario.to_dict()})
    result.requests.to_parquet(out / "requests.parquet", index=False)
    if not result.timeline.empty:
        result.timeline.to_parquet(out / "timeline.parquet", index=False)
    if not result.events.empty:
        result.events.to_parquet(out / "events.parquet", index=False)
    pd.DataFrame([result.summary]).to_csv(out / "summary.csv", index=False)
    if not result.faults.empty:
        result.faults.to_csv(out / "faults.csv", index=False)
    extra = {"broken_by_fault": result.broken_by_fault} if result.broken_by_fault else {}
    write_json(out / "meta.json", meta(result.seed, result.wall_seconds, mode=result.mode,
                                       violations=result.violations, **extra))
    return out
