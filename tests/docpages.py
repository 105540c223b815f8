"""The documentation pages (README.md and docs/*.md) and the code blocks in them, for the tests that run them.

Fences say how a block is checked:

- ``python``: runs in tests/core/test_readme.py (no servers);
- ``py``: Python that needs real servers, runs in tests/real/test_readme_real.py (docs/real-mode.md);
- ``sh``: command lines. ``flashsim ...`` lines run in the test of their page; lines that take
  minutes (``.venv/bin/python experiments/X.py ...``) are checked, not run; ``make X`` names a target;
- ``toml``: the sweep file example, loaded in tests/bench/test_readme_bench.py;
- ``text``: output (no code), except its ``$ command`` lines, checked like ``sh`` lines.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def page_names() -> list[str]:
    """README.md, then every docs page, as paths relative to the repository."""
    return ["README.md", *sorted(str(p.relative_to(ROOT)) for p in DOCS.glob("*.md"))]


def page(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def blocks(text: str, lang: str) -> list[str]:
    """The bodies of the code blocks fenced as ``lang`` in ``text``."""
    return [body for fence, body in FENCE.findall(text) if fence == lang]


def fences(text: str) -> list[str]:
    """The language of every code block in ``text``, in order."""
    return [fence for fence, _ in FENCE.findall(text)]


def section(text: str, heading: str) -> str:
    """The part of ``text`` under the ``## heading`` that starts with ``heading``, up to the next ``## ``."""
    start = re.search(rf"^## {re.escape(heading)}", text, re.M)
    assert start, f"no section '## {heading}'"
    rest = text[start.end():]
    end = re.search(r"^## ", rest, re.M)
    return rest[: end.start()] if end else rest


def command_lines(block: str) -> list[str]:
    """The commands of an ``sh`` block: one per line, comments and blank lines dropped."""
    return [line.split(" #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def shown_commands(text: str) -> list[str]:
    """Every command a page shows: the lines of its ``sh`` blocks and the ``$ `` lines of its ``text`` blocks."""
    lines = [line for block in blocks(text, "sh") for line in command_lines(block)]
    lines += [line[2:].split(" #")[0].strip() for block in blocks(text, "text") for line in block.splitlines()
              if line.startswith("$ ")]
    return lines


def flashsim(*args: str) -> str:
    """What ``flashsim ARGS`` prints, run in this process (exit status 0 asserted)."""
    from sim.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(list(args))
    assert status == 0, f"flashsim {' '.join(args)} exited with {status}"
    return out.getvalue()
