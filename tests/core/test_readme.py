"""The docs are executed: README.md and docs/*.md.

Every Python example runs, the usage page's command lines run, every other command shown is
checked, every link and figure resolves, and the generated blocks match the code.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from docpages import DOCS, ROOT, blocks, command_lines, fences, flashsim, page, page_names, section, shown_commands

PAGES = page_names()
WITH_PYTHON = ["docs/usage.md", "docs/lockdb.md", "docs/single-redis.md", "docs/sharded.md", "docs/pipeline.md",
               "docs/bench.md"]
"""Pages whose examples live in ``python`` blocks: each must keep at least one."""
RUN_HERE = {"docs/usage.md"}
"""Pages whose ``flashsim`` lines this module runs (docs/bench.md and docs/real-mode.md have their own tests)."""
FENCED = {"python": None, "text": None, "sh": None, "py": {"docs/real-mode.md"}, "toml": {"docs/bench.md", "docs/faults.md"}}
"""Fences a page may use, and the pages allowed each one when only some are (the ones whose test reads it)."""
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_manual_is_there():
    expected = {"README.md", "how-it-works.md", "scenario.md", "usage.md", "lockdb.md", "single-redis.md",
                "sharded.md", "pipeline.md", "real-mode.md", "bench.md", "speed.md"}
    assert expected <= {Path(p).name for p in PAGES if p.startswith("docs/")}
    assert set(WITH_PYTHON) <= set(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_python_examples_run(name):
    examples = blocks(page(name), "python")
    if name in WITH_PYTHON:
        assert examples, f"{name} has no Python example any more"
    for example in examples:
        exec(compile(example, name, "exec"), {"__name__": "docs"})


@pytest.mark.parametrize("name", PAGES)
def test_every_code_block_is_one_the_tests_check(name):
    for fence in fences(page(name)):
        assert fence in FENCED, f"{name}: a ```{fence} block no test runs (use one of {sorted(FENCED)})"
        allowed = FENCED[fence]
        assert allowed is None or name in allowed, f"{name}: ```{fence} blocks are only run on {sorted(allowed)}"
    for command in shown_commands(page(name)):
        assert command.startswith(("flashsim ", ".venv/bin/python experiments/", "make ")), \
            f"{name}: `{command}` is neither a flashsim, an experiment nor a make command"


def test_the_front_page_commands_are_the_compare_output():
    """README's only `flashsim` line is the `$ flashsim compare` heading of the generated output."""
    assert [c for c in shown_commands(page("README.md")) if c.startswith("flashsim")] == ["flashsim compare"]


def test_two_commands():
    front = page("README.md")
    first = blocks(section(front, "Two commands"), "sh")
    assert len(first) == 1 and [c.split()[:2] for c in command_lines(first[0])] == [["make", "compare"], ["make", "test"]]
    assert re.search(r"^compare: install\n\t\$\(BIN\)/flashsim compare$", MAKEFILE, re.M)
    assert re.search(r"^test: install\n\t\$\(BIN\)/python -m pytest", MAKEFILE, re.M)
    generated = re.search(r"<!-- compare:start -->\n```text\n\$ flashsim compare\n(.*?)```\n<!-- compare:end -->",
                          front, flags=re.S)
    assert generated, "README lacks the compare output (experiments/refresh_readme.py writes it)"
    table = generated.group(1)
    assert table.startswith("scenario 'default'") and "oversold" in table and "violations" in table


def test_make_targets_shown_exist():
    targets = set(re.findall(r"^([\w-]+):", MAKEFILE, re.M))
    shown = [c for name in PAGES for c in shown_commands(page(name)) if c.startswith("make ")]
    assert shown, "no make command shown"
    for command in shown:
        assert command.split()[1] in targets, f"`{command}`: no such Makefile target"


@cache
def _help(script: str) -> str:
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_experiment_commands_name_real_scripts_and_options():
    """Commands that take minutes are not run here: their script must exist and accept every option shown."""
    shown = {c for name in PAGES for c in shown_commands(page(name)) if c.startswith(".venv/bin/python")}
    inline = {m for name in PAGES for m in re.findall(r"`(\.venv/bin/python experiments/[^`]+)`", page(name))}
    commands = shown | inline
    assert len({c.split()[1] for c in commands}) >= 6, sorted(commands)
    for command in commands:
        words = shlex.split(command)
        script = words[1]
        assert (ROOT / script).is_file(), f"`{command}`: no {script}"
        for option in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
            assert re.search(rf"(^|\s){re.escape(option)}\b", _help(script)), f"`{command}`: {script} has no {option}"


RUN_ELSEWHERE = {"docs/bench.md", "docs/real-mode.md"}
"""Pages whose ``flashsim`` lines their own test runs (tests/bench/test_readme_bench.py, tests/real/test_readme_real.py)."""


@cache
def _flashsim_help(subcommand: str) -> str:
    done = subprocess.run([sys.executable, "-m", "sim.cli", subcommand, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"flashsim {subcommand}: {done.stderr}"
    return done.stdout


def test_flashsim_commands_not_run_name_real_options():
    """`flashsim` lines no test runs as written (long runs: validate, plan, ...) name a real subcommand and options."""
    checked = 0
    for name in PAGES:
        if name in RUN_HERE | RUN_ELSEWHERE or name == "README.md":
            continue
        for command in (c for c in shown_commands(page(name)) if c.startswith("flashsim ")):
            words = shlex.split(command)
            usage = _flashsim_help(words[1])
            for option in (w.split("=")[0] for w in words[2:] if w.startswith("--")):
                assert re.search(rf"(^|\s){re.escape(option)}\b", usage), f"{name}: `{command}`: no option {option}"
            checked += 1
    pages_with_long_runs = [n for n in PAGES if n not in RUN_HERE | RUN_ELSEWHERE | {"README.md"}
                            and any(c.startswith("flashsim ") for c in shown_commands(page(n)))]
    assert checked >= len(pages_with_long_runs)


def test_usage_commands_run_as_written(tmp_path):
    commands = [c for c in shown_commands(page("docs/usage.md")) if c.startswith("flashsim ")]
    assert len(commands) >= 3
    binary = Path(sys.executable).parent / "flashsim"
    outputs = []
    for command in commands:
        done = subprocess.run([str(binary), *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    run = tmp_path / "results" / "one-sale"
    assert {"config.json", "requests.parquet", "timeline.parquet", "summary.csv", "meta.json"} <= \
        {p.name for p in run.iterdir()}
    assert {"latency_cdf.png", "stock_timeline.png"} <= {p.name for p in (run / "figures").iterdir()}
    assert any(out.strip() == flashsim("reference").strip() for out in outputs), "`flashsim reference` was not shown"


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a page."""
    headings = re.findall(r"^#+ (.+)$", re.sub(FENCE_BODY, "", text), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


FENCE_BODY = re.compile(r"^```.*?^```", re.S | re.M)


@pytest.mark.parametrize("name", PAGES)
def test_links_and_figures_resolve(name):
    text = re.sub(FENCE_BODY, "", page(name))
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (ROOT / name).parent / path if path else ROOT / name
        assert resolved.exists(), f"{name}: link to {target} which does not exist"
        if anchor:
            assert anchor in _anchors(resolved.read_text(encoding="utf-8")), f"{name}: no heading for #{anchor}"


def _layout_entries(top: str) -> set[str]:
    """The names the layout tree of docs/how-it-works.md lists directly under ``top/``."""
    tree = blocks(section(page("docs/how-it-works.md"), "Layout"), "text")
    assert len(tree) == 1, "docs/how-it-works.md: the Layout section has one tree"
    entries: set[str] = set()
    inside = False
    for line in tree[0].splitlines():
        if not line.startswith(" "):
            inside = line.startswith(f"{top}/")
        elif inside and re.match(r"  \S", line):
            first_column = re.split(r"\s{2,}", line.strip())[0]
            entries |= set(re.findall(r"\w+\.py|\w+/", first_column))
    return entries


@pytest.mark.parametrize("top", ["engine", "sim"])
def test_layout_names_every_module_and_package(top):
    """docs/how-it-works.md's tree lists every module and package directly under engine/ and sim/."""
    here = {p.name for p in (ROOT / top).glob("*.py") if p.name != "__init__.py"}
    here |= {f"{p.name}/" for p in (ROOT / top).iterdir() if (p / "__init__.py").exists()}
    listed = _layout_entries(top)
    assert here - listed == set(), f"add to the layout in docs/how-it-works.md: {sorted(here - listed)}"
    assert listed - here == set(), f"the layout in docs/how-it-works.md lists what is gone: {sorted(listed - here)}"


@pytest.mark.parametrize("name", PAGES)
def test_files_named_exist(name):
    """Every repository path a page names in backticks (``engine/sharded/registry.py``) is there."""
    named = re.findall(r"`((?:engine|sim|tests|experiments|notebooks|results/curated|docs)/[\w./-]*)`", page(name))
    for path in named:
        assert (ROOT / path).exists(), f"{name} names {path}, which does not exist"


def test_every_page_is_linked_from_the_index():
    index = page("docs/README.md")
    linked = set(LINK.findall(index))
    for path in DOCS.glob("*.md"):
        if path.name != "README.md":
            assert path.name in linked, f"docs/README.md does not link {path.name}"
    assert "docs/README.md" in LINK.findall(page("README.md"))


def test_front_page_shows_the_key_figures():
    figures = [t for t in LINK.findall(page("README.md")) if t.endswith(".png")]
    assert len(figures) >= 3 and all(t.startswith("results/curated/") for t in figures)


def test_every_curated_figure_is_shown_somewhere():
    shown = {((ROOT / name).parent / t).resolve() for name in PAGES for t in LINK.findall(page(name))}
    for figure in (ROOT / "results" / "curated").rglob("*.png"):
        assert figure.resolve() in shown, f"{figure.relative_to(ROOT)} is on no page"


def test_scenario_reference_is_in_sync():
    match = re.search(r"<!-- reference:start -->\n(.*?)<!-- reference:end -->", page("docs/scenario.md"), flags=re.S)
    assert match, "docs/scenario.md lacks the reference markers"
    assert match.group(1).strip() == flashsim("reference").strip(), \
        "run: .venv/bin/python experiments/refresh_readme.py --skip-compare"
