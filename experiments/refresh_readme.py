"""Refresh the generated blocks of the docs: the compare output on the front page, the scenario reference.

    .venv/bin/python experiments/refresh_readme.py [--skip-compare]

README.md holds the output of `flashsim compare` (what `make compare` prints) between
<!-- compare:start --> and <!-- compare:end -->; docs/scenario.md holds the table of
`flashsim reference` between <!-- reference:start --> and <!-- reference:end -->.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

from sim.cli import main as flashsim

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCENARIO = ROOT / "docs" / "scenario.md"


def fill(path: Path, name: str, body: str) -> None:
    """Replace the text between ``path``'s ``name`` markers with ``body``."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path.relative_to(ROOT)} has no {name} markers")
    path.write_text(pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text), encoding="utf-8")
    print(f"refreshed {path.relative_to(ROOT)} ({name})")


def output(*args: str) -> str:
    """What ``flashsim ARGS`` prints; stops when it fails."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = flashsim(list(args))
    if status != 0:
        raise SystemExit(f"flashsim {' '.join(args)} exited with {status}")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-compare", action="store_true", help="only refresh the reference table")
    args = parser.parse_args()
    fill(SCENARIO, "reference", output("reference"))
    if not args.skip_compare:
        fill(README, "compare", "```text\n$ flashsim compare\n" + output("compare", "--quiet") + "```")


if __name__ == "__main__":
    main()
