"""Re-execute the notebooks at small scale and save their outputs into the committed .ipynb files.

    .venv/bin/python experiments/refresh_notebooks.py [--workers N] [NOTEBOOK ...]     (or: make notebooks)

Each notebook runs top to bottom in a fresh kernel with FLASHSIM_NOTEBOOK_SCALE=small (the scale
tests/bench/test_notebooks.py executes) and its sweeps written under results/notebooks-small/,
which is emptied first: no run is reused, so the outputs are those of the code as it is now.
Progress bars and stderr are dropped from the saved outputs. The test re-executes the notebooks
the same way and compares the text of their outputs (:func:`text_outputs`) with the saved ones.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
RESULTS = "../results/notebooks-small"
"""Where the refresh writes the notebooks' sweeps, relative to notebooks/ (the kernel's folder)."""
SCALE = "small"
COMMAND = "make notebooks  (or: .venv/bin/python experiments/refresh_notebooks.py)"

_WIDGET = "application/vnd.jupyter.widget-view+json"
_TEXT_TYPES = ("text/plain", "text/markdown", "text/html")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_PROGRESS = re.compile(r"^.*(\d+%\||it/s\]|s/it\]).*$", re.M)  # a tqdm line carries rates and times


def execute(path: Path, results: str, workers: int = 2, timeout: int = 900) -> Any:
    """Run notebook ``path`` at small scale in a fresh kernel; return the executed notebook.

    ``results`` is the folder for its sweeps (absolute, or relative to notebooks/).
    """
    notebook = nbformat.read(path, as_version=4)
    env = {**os.environ, "FLASHSIM_NOTEBOOK_SCALE": SCALE, "FLASHSIM_NOTEBOOK_RESULTS": results,
           "FLASHSIM_NOTEBOOK_WORKERS": str(workers), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    return notebook


def compared(notebook: Any) -> bool:
    """Whether the test compares this notebook's outputs with fresh ones (the default).

    A notebook whose outputs depend on more than the seed (real servers, wall-clock measurements)
    opts out with notebook metadata ``{"flashsim": {"compare_outputs": false}}``: it is still
    executed by the test and refreshed with its outputs here, but not compared.
    """
    return bool(notebook.metadata.get("flashsim", {}).get("compare_outputs", True))


def _kept(output: Any) -> bool:
    """Outputs worth saving and comparing: not stderr, not progress widgets."""
    if output.get("output_type") == "stream":
        return output.get("name") == "stdout"
    return _WIDGET not in output.get("data", {})


def clean(notebook: Any) -> Any:
    """Drop stderr and progress widgets from every code cell's outputs."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if _kept(o)]
    return notebook


def normalise(text: str, results: str) -> str:
    """Text with run-specific detail removed: the results folder, memory addresses, progress lines."""
    text = text.replace(str(results), "<results>").replace(str(ROOT), "<repo>")
    text = _ADDRESS.sub("0x…", text)
    text = _PROGRESS.sub("", text)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def text_outputs(notebook: Any, results: str) -> list[list[str]]:
    """Per code cell, its outputs as normalised text (an image counts as a placeholder)."""
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for output in filter(_kept, cell.get("outputs", [])):
            kind = output.get("output_type")
            if kind == "stream":
                texts.append(normalise(output.get("text", ""), results))
            elif kind == "error":
                texts.append(f"error: {output.get('ename')}: {output.get('evalue')}")
            else:
                data = output.get("data", {})
                texts += [f"{mime}: {normalise(_joined(data[mime]), results)}" for mime in _TEXT_TYPES if mime in data]
                texts += [f"<{mime}>" for mime in sorted(data) if mime.startswith("image/")]
        cells.append(texts)
    return cells


def _joined(value: str | list[str]) -> str:
    return value if isinstance(value, str) else "".join(value)


def differences(saved: list[list[str]], fresh: list[list[str]]) -> str:
    """A readable account of where the saved outputs differ from fresh ones ('' when they agree)."""
    if saved == fresh:
        return ""
    lines = []
    for index in range(max(len(saved), len(fresh))):
        old = saved[index] if index < len(saved) else []
        new = fresh[index] if index < len(fresh) else []
        if old != new:
            diff = difflib.unified_diff("\n".join(old).splitlines(), "\n".join(new).splitlines(),
                                        "saved", "fresh", lineterm="", n=1)
            lines += [f"code cell {index}:", *list(diff)[:40]]
    return "\n".join(lines)


def refresh(path: Path, workers: int) -> None:
    start = time.monotonic()
    executed = clean(execute(path, RESULTS, workers))
    nbformat.write(executed, path)
    figures = sum("image/png" in o.get("data", {}) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    print(f"refreshed {path.relative_to(ROOT)}: {figures} figures, {time.monotonic() - start:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to refresh (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="sweep worker processes (default 2)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or NOTEBOOKS
    shutil.rmtree(NOTEBOOK_DIR / RESULTS, ignore_errors=True)
    failed = []
    for path in paths:
        try:
            refresh(path, args.workers)
        except CellExecutionError as err:  # leave that notebook as it was; refresh the others
            failed.append(path.name)
            print(f"NOT refreshed {path.name}: a cell failed\n{err}", file=sys.stderr, flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
