"""The README is executed: its Python examples run, its reference table matches the code."""

import re
from pathlib import Path

from sim.cli.commands import reference_markdown

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_python_examples_run():
    blocks = python_blocks()
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})


def test_scenario_reference_is_in_sync():
    match = re.search(r"<!-- reference:start -->\n(.*?)<!-- reference:end -->", README, flags=re.S)
    assert match, "README lacks the reference markers"
    assert match.group(1).strip() == reference_markdown().strip(), "run: flashsim reference, and paste it into README"


def test_two_commands():
    assert "make compare" in README and "make test" in README
