"""The same sweep on a Dask distributed cluster (a LocalCluster here) gives the same tables."""

import distributed
import pandas as pd
import pytest

from sim.bench import run_sweep, sweep_from_dict
from sim.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


def sweep():
    return sweep_from_dict({
        "sweep": {"name": "dask", "seed": 21, "replications": 2, "record": ["latency", "timeline"],
                  "strategies": ["single_redis", "sharded"]},
        "base": {"sale": {"stock": 400}, "workload": {"kind": "poisson", "duration": 0.05}},
        "grid": {"workload.rate": [5000, 30000]},
    })


def test_local_and_dask_runs_give_identical_tables(tmp_path, cluster):
    local = run_sweep(sweep(), tmp_path / "local", workers=2, quiet=True)
    remote = run_sweep(sweep(), tmp_path / "dask", dask=cluster.scheduler_address, quiet=True)
    assert remote.executed == len(local.runs) == 8
    pd.testing.assert_frame_equal(local.runs, remote.runs)
    for table in ("latency", "timeline"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local" / f"{table}.parquet"),
                                      pd.read_parquet(tmp_path / "dask" / f"{table}.parquet"))


def test_cli_takes_a_scheduler_address(tmp_path, cluster, capsys):
    definition = tmp_path / "s.toml"
    definition.write_text('[sweep]\nname = "d"\nreplications = 2\n[base]\nsale.stock = 50\n'
                          'workload.buyers = 500\nworkload.window = 0.05\n')
    assert main(["sweep", str(definition), "--dask", cluster.scheduler_address, "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert "2 runs (2 run now, 0 reused)" in capsys.readouterr().out


def test_unreachable_scheduler_is_one_line(tmp_path, capsys):
    definition = tmp_path / "s.toml"
    definition.write_text('[sweep]\nname = "d"\nreplications = 1\n')
    assert main(["sweep", str(definition), "--dask", "tcp://127.0.0.1:9", "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flashsim: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and "\n" not in err
