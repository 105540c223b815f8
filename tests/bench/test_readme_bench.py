"""The README's research-bench section: its shell commands and its sweep file example run as written.

(Its Python example runs in tests/core/test_readme.py with every other README block.)
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from sim.bench import expand, sweep_from_dict

ROOT = Path(__file__).resolve().parents[2]
SECTION = (ROOT / "README.md").read_text(encoding="utf-8").split("## Research bench", 1)[1].split("\n## ", 1)[0]


def test_shell_commands_run_as_written(tmp_path):
    commands = [line.split("#")[0].strip() for block in re.findall(r"```sh\n(.*?)```", SECTION, flags=re.S)
                for line in block.splitlines() if line.strip()]
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
    blocks = re.findall(r"```toml\n(.*?)```", SECTION, flags=re.S)
    assert len(blocks) == 1
    sweep = sweep_from_dict(tomllib.loads(blocks[0]))
    assert sweep.adaptive is not None and sweep.record == ("latency", "timeline")
    assert len(expand(sweep)) == 3 * 3
