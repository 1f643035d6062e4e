"""Helpers and fixtures shared by several test files.

The helpers are plain functions: test files import them with `from conftest import run`
(pytest puts this folder on sys.path). No test file imports from another test file.
"""

import io
import sys
from unittest import mock

import pytest

from embtk.cli import main


def run(*args, input=b""):
    """Run `embtk ARGS` in this process through `main`, the console script's entry:
    returns (exit status, stdout bytes, stderr text)."""
    out, err = io.BytesIO(), io.BytesIO()
    streams = {
        "stdin": io.TextIOWrapper(io.BytesIO(input)),
        "stdout": io.TextIOWrapper(out, write_through=True),
        "stderr": io.TextIOWrapper(err, write_through=True),
    }
    with mock.patch.multiple(sys, **streams):
        code = main([str(a) for a in args])
        sys.stdout.flush()
        sys.stderr.flush()
    return code, out.getvalue(), err.getvalue().decode()


def assert_one_line_error(code, err, expected_status=1):
    """The error contract: the exit status, one line on stderr, no traceback."""
    assert code == expected_status, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("embtk: error: "), err


@pytest.fixture(scope="session")
def official_fasttext():
    """The official `fasttext` module (PyPI's fasttext-wheel, a test extra).

    Without it, only the tests that ask for this fixture (directly or through a fixture
    that trains an official model) are skipped; the rest of their file still runs."""
    return pytest.importorskip("fasttext")
