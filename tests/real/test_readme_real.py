"""The examples of docs/real-mode.md, executed against real servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docpages import blocks, command_lines, page

pytestmark = pytest.mark.real

PAGE = "docs/real-mode.md"


def test_python_example_runs(mariadb):
    examples = blocks(page(PAGE), "py")
    assert examples, f"{PAGE} has no Python example"
    for example in examples:
        exec(compile(example, PAGE, "exec"), {"__name__": "docs"})


def test_shell_example_runs(tmp_path, mariadb):
    lines = [line for block in blocks(page(PAGE), "sh") for line in command_lines(block)]
    assert lines and all(line.startswith("flashsim ") for line in lines), lines
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "TMPDIR": str(tmp_path), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        for line in lines:
            done = subprocess.run(line, shell=True, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    finally:  # never leave a cluster behind, whatever failed
        subprocess.run("flashsim cluster down", shell=True, env=env, capture_output=True, timeout=60)
