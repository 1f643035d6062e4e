"""The repository's own promises: CI runs the test command the README gives."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"To run the test suite:\n\n```sh\n(.*?)\n```", readme, re.S)
    assert block, "the README lost its 'To run the test suite:' block"
    command = block.group(1).strip()
    assert "ruff check" in command and "pytest" in command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command  # CI installs and tests exactly as the README says
