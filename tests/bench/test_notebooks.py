"""The notebooks execute top to bottom at small scale and draw their figures.

They run in a fresh kernel of this interpreter (ipykernel's native ``python3``
kernel: nothing to register), with FLASHSIM_NOTEBOOK_SCALE=small and results
written under a temporary folder. ``04_validation`` runs ``flashsim validate
--quick`` against real servers, so it needs redis-server and MariaDB (skipped
without them, failed under CI=true).
"""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from servers import unavailable  # tests/servers.py

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.slow


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


def needs_real_servers(path: Path, request: pytest.FixtureRequest) -> None:
    """04_validation drives real servers: redis-server on PATH and MariaDB (the ``mariadb`` fixture)."""
    if path.name.startswith("04"):
        if shutil.which("redis-server") is None:
            unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
        request.getfixturevalue("mariadb_cursor")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_and_draws(path, tmp_path, monkeypatch, request):
    needs_real_servers(path, request)
    monkeypatch.setenv("FLASHSIM_NOTEBOOK_SCALE", "small")
    monkeypatch.setenv("FLASHSIM_NOTEBOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv("FLASHSIM_NOTEBOOK_WORKERS", "2")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(path, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells), "papermill needs a parameters cell"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in outputs)
    assert "scale=small" in text
    assert "Not shown" not in text, "a strategy or section the notebook needs is missing"
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 3, f"{path.name}: {len(figures)} figures"
    assert any(tmp_path.rglob("runs.parquet")), "the notebook's sweeps wrote no results"


def test_papermill_parameters_reach_the_notebook(tmp_path, monkeypatch):
    import papermill
    for name in ("FLASHSIM_NOTEBOOK_SCALE", "FLASHSIM_NOTEBOOK_RESULTS", "FLASHSIM_NOTEBOOK_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    path = NOTEBOOKS[1]
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"scale": "small", "results_root": str(tmp_path / "r"),
                                                                 "workers": 2},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "scale=small" in text and str(tmp_path / "r") in text
    assert any((tmp_path / "r").rglob("runs.parquet"))
