"""``flashsim validate --quick`` against the local servers: it runs, and its outputs agree with each other.

It starts its own Redis (1 and 3 masters on free loopback ports) and uses the
local MariaDB; under CI=true a missing server fails the test instead of skipping it.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pandas as pd
import pytest
from servers import unavailable  # tests/servers.py

from sim.cli import main
from sim.validate import QUICK_POINTS, error_table, load_validation

pytestmark = [pytest.mark.real, pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mariadb):
    if shutil.which("redis-server") is None:
        unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
    out = tmp_path_factory.mktemp("validation") / "quick"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = main(["validate", "--quick", "--quiet", "--out", str(out)])
    return status, out, printed.getvalue()


def test_quick_validation_writes_a_consistent_report(quick_run):
    status, out, printed = quick_run
    assert status == 0, f"flashsim validate --quick exited {status}:\n{printed}"
    assert "worst errors:" in printed and "hold-out part:" in printed and f"wrote {out}" in printed
    for name in ("runs.parquet", "errors.csv", "errors.md", "config.json", "meta.json"):
        assert (out / name).is_file(), name
    runs, errors = load_validation(out)

    # every quick point ran in both modes on the same seed, without failures or broken invariants
    assert sorted(runs["point"].unique()) == sorted(QUICK_POINTS)
    assert (runs.groupby("point")["mode"].apply(sorted) == pd.Series({p: ["real", "sim"] for p in QUICK_POINTS})
            .sort_index()).all()
    assert runs["failed"].isna().all() and (runs["violations"] == 0).all()
    open_loop = runs[runs["arrival"] != "closed"].pivot(index="point", columns="mode", values="requests")
    assert (open_loop["sim"] == open_loop["real"]).all(), "same seed must mean the same buyers in sim and real"
    assert (runs["goodput"] > 0).all()

    # the error table is the one the runs give, and covers every point
    again = error_table(runs)
    assert len(again) == len(errors) and list(again["point"]) == list(errors["point"])
    assert again["rel_error"].to_numpy() == pytest.approx(errors["rel_error"].to_numpy(), nan_ok=True)
    assert set(errors["point"]) == set(QUICK_POINTS)
    assert set(errors.loc[errors["strategy"].str.startswith("db_"), "figure"]) >= {"goodput", "db_tps"}
    judged = errors[errors["judged"]]
    assert set(judged["saturation"]) == {"below"} and judged["met"].notna().all()
    assert errors.loc[~errors["judged"], "explanation"].str.len().gt(0).all()

    # the markdown keeps the hold-out apart; the figures are drawn
    md = (out / "errors.md").read_text(encoding="utf-8")
    calibration, holdout = md.split("## Hold-out part")
    holdout_points = set(errors.loc[errors["holdout"], "point"])
    assert holdout_points and all(p in holdout and p not in calibration for p in holdout_points)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "sim_vs_real_goodput.png" in figures and "relative_errors.png" in figures and len(figures) >= 4

    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert [p["point"] for p in config["points"]] == list(QUICK_POINTS)
    assert config["settings"]["capacity"] == "real"
