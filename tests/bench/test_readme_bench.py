"""docs/bench.md: the shell commands of its Sweeps section and its sweep file example run as written.

(Its Python example runs in tests/core/test_readme.py with every other docs block; its `make notebooks`
line is the notebook refresh, which tests/bench/test_notebooks.py covers.)
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from docpages import blocks, command_lines, page, section

from sim.bench import expand, sweep_from_dict

ROOT = Path(__file__).resolve().parents[2]
SECTION = section(page("docs/bench.md"), "Sweeps")


def test_shell_commands_run_as_written(tmp_path):
    commands = [line for block in blocks(SECTION, "sh") for line in command_lines(block)]
    assert commands and all(c.startswith("flashsim ") for c in commands)
    (tmp_path / "experiments").mkdir()
    shutil.copytree(ROOT / "experiments" / "sweeps", tmp_path / "experiments" / "sweeps")
    flashsim = Path(sys.executable).parent / "flashsim"
    outputs = []
    for command in commands:
        done = subprocess.run([str(flashsim), *command.split()[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    assert "12 runs (12 run now, 0 reused)" in outputs[0]
    assert "12 runs (0 run now, 12 reused)" in outputs[1]
    figures = {p.name for p in (tmp_path / "results" / "quick" / "figures").iterdir()}
    assert {"goodput_vs_load.png", "goodput_vs_load.svg", "latency_cdf.svg", "stock_timeline.png"} <= figures


def test_sweep_file_example_is_valid():
    examples = blocks(page("docs/bench.md"), "toml")
    assert len(examples) == 1 and examples[0] in SECTION
    sweep = sweep_from_dict(tomllib.loads(examples[0]))
    assert sweep.adaptive is not None and sweep.record == ("latency", "timeline")
    assert len(expand(sweep)) == 3 * 3
