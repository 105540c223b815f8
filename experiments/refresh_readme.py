"""Refresh the generated blocks of README.md: the scenario reference and the sample compare output.

    .venv/bin/python experiments/refresh_readme.py [--skip-compare]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from pathlib import Path

from sim.cli import main as flashsim
from sim.cli.commands import reference_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def fill(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {name} markers")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-compare", action="store_true", help="only refresh the reference table")
    args = parser.parse_args()
    text = fill(README.read_text(encoding="utf-8"), "reference", reference_markdown())
    if not args.skip_compare:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = flashsim(["compare", "--quiet"])
        if status != 0:
            raise SystemExit(f"flashsim compare exited with {status}")
        text = fill(text, "compare", "```text\n$ flashsim compare\n" + out.getvalue() + "```")
    README.write_text(text, encoding="utf-8")
    print(f"refreshed {README}")


if __name__ == "__main__":
    main()
