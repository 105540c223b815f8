"""The README's "Real mode" examples, executed against real servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Real mode"):]
SECTION = SECTION[: SECTION.find("\n## ", 5)] if SECTION.find("\n## ", 5) > 0 else SECTION


def test_python_example_runs(mariadb):
    blocks = re.findall(r"```py\n(.*?)```", SECTION, flags=re.S)
    assert blocks, "the Real mode section has no Python example"
    for block in blocks:
        exec(compile(block, "README.md (Real mode)", "exec"), {"__name__": "readme"})


def test_shell_example_runs(tmp_path, mariadb):
    blocks = re.findall(r"```sh\n(.*?)```", SECTION, flags=re.S)
    assert blocks, "the Real mode section has no shell example"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "TMPDIR": str(tmp_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    try:
        for line in filter(None, lines):
            done = subprocess.run(line, shell=True, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    finally:  # never leave a cluster behind, whatever failed
        subprocess.run("flashsim cluster down", shell=True, env=env, capture_output=True, timeout=60)
