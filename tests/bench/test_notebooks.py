"""The notebooks execute top to bottom at small scale, draw their figures, and are committed current.

Each runs once, in a fresh kernel of this interpreter (ipykernel's native ``python3`` kernel:
nothing to register), exactly as ``experiments/refresh_notebooks.py`` (``make notebooks``) runs it
before saving its outputs: FLASHSIM_NOTEBOOK_SCALE=small, results under a temporary folder.
``04_validation`` runs ``flashsim validate --quick`` against real servers, so it needs redis-server
and MariaDB (skipped without them, failed under CI=true), and its outputs are not compared. The
text of the fresh outputs must equal the text saved in the committed .ipynb (images may differ
byte-wise; only their presence is compared). The simulation is deterministic, so a difference
means the code changed since the last refresh.
"""

import importlib.util
import shutil
from pathlib import Path

import nbformat
import pytest
from servers import unavailable  # tests/servers.py

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("refresh_notebooks", ROOT / "experiments" / "refresh_notebooks.py")
assert _spec and _spec.loader
refresh = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refresh)

NOTEBOOKS = refresh.NOTEBOOKS

pytestmark = pytest.mark.slow


def figures(notebook) -> int:
    return sum("image/png" in o.get("data", {}) for c in notebook.cells if c.cell_type == "code"
               for o in c.get("outputs", []))


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]
    assert sorted(NOTEBOOKS) == sorted((ROOT / "notebooks").glob("*.ipynb")), "a notebook the refresh would miss"


def needs_real_servers(path: Path, request: pytest.FixtureRequest) -> None:
    """04_validation drives real servers: redis-server on PATH and MariaDB (the ``mariadb`` fixture)."""
    if path.name.startswith("04"):
        if shutil.which("redis-server") is None:
            unavailable("redis-server", FileNotFoundError("redis-server is not on PATH"))
        request.getfixturevalue("mariadb_cursor")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_shows_its_small_run(path):
    saved = nbformat.read(path, as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in saved.cells), "papermill needs a parameters cell"
    assert figures(saved) >= 3, f"{path.name} is committed without its figures: run {refresh.COMMAND}"
    outputs = [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} was saved with an error"
    assert any(f"scale={refresh.SCALE}" in o.get("text", "") for o in outputs), "saved outputs are not the small run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_draws_and_is_current(path, tmp_path, request):
    needs_real_servers(path, request)
    executed = refresh.execute(path, str(tmp_path), workers=2)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors
    text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", "")) for o in outputs)
    assert "scale=small" in text
    assert "Not shown" not in text, "a strategy or section the notebook needs is missing"
    assert figures(executed) >= 3, f"{path.name}: {figures(executed)} figures"
    assert any(tmp_path.rglob("runs.parquet")), "the notebook's sweeps wrote no results"

    committed = nbformat.read(path, as_version=4)
    if not refresh.compared(committed):
        return  # its outputs depend on more than the seed (see refresh.compared)
    saved = refresh.text_outputs(committed, refresh.RESULTS)
    fresh = refresh.text_outputs(executed, str(tmp_path))
    assert any(saved), f"{path.name} is committed without outputs: run {refresh.COMMAND}"
    diff = refresh.differences(saved, fresh)
    assert not diff, f"{path.name}: the committed outputs are stale; run {refresh.COMMAND}\n{diff}"


def test_normalise_keeps_figures_and_drops_run_details():
    text = "scale=small, results under /tmp/x1/r, strategies: a\n<Figure at 0x7f3a2b1c9d80>\n 50%|#####     | 1/2 [00:01<00:01, 1.2it/s]\n"
    assert refresh.normalise(text, "/tmp/x1/r") == "scale=small, results under <results>, strategies: a\n<Figure at 0x…>"
    assert refresh.normalise("goodput 12,345 at 0.041 s", "/r") == "goodput 12,345 at 0.041 s"


def test_only_notebooks_that_opt_out_are_not_compared():
    notebook = nbformat.v4.new_notebook()
    assert refresh.compared(notebook)
    notebook.metadata["flashsim"] = {"compare_outputs": False}
    assert not refresh.compared(notebook)
    assert all(refresh.compared(nbformat.read(p, as_version=4)) for p in NOTEBOOKS[:3])
    assert not refresh.compared(nbformat.read(NOTEBOOKS[3], as_version=4)), "04_validation measures real servers"


def test_a_stale_output_is_reported():
    saved = [["text/plain: 1"], ["<image/png>"]]
    assert refresh.differences(saved, saved) == ""
    report = refresh.differences(saved, [["text/plain: 2"], ["<image/png>"]])
    assert "code cell 0" in report and "-text/plain: 1" in report and "+text/plain: 2" in report
    assert "code cell 1" not in report


def test_papermill_parameters_reach_the_notebook(tmp_path, monkeypatch):
    """papermill's injected parameters override the defaults (the setup cells only: no sweep runs here)."""
    import papermill
    for name in ("FLASHSIM_NOTEBOOK_SCALE", "FLASHSIM_NOTEBOOK_RESULTS", "FLASHSIM_NOTEBOOK_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    path = NOTEBOOKS[1]
    notebook = nbformat.read(path, as_version=4)
    setup = next(i for i, c in enumerate(notebook.cells) if "results under" in c.source)
    notebook.cells = notebook.cells[: setup + 1]
    head = tmp_path / path.name
    nbformat.write(notebook, head)
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(head), str(out), parameters={"scale": "small", "results_root": str(tmp_path / "r"),
                                                                 "workers": 2},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    text = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "scale=small" in text and f"results under {tmp_path / 'r'}," in text
