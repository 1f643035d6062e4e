"""Helpers and fixtures shared by several test files.

The helpers are plain functions: test files import them with `from conftest import run`
(pytest puts this folder on sys.path). The fixtures are found by name. No test file
imports from another test file. A module that defines a fixture of the same name (say its
own `corpus`) uses its own.
"""

import io
import random
import sys
from pathlib import Path
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


# -------------------------------- a small labelled corpus and its classifier (CLI tests)
TOPICS = {
    "fruit": "apple banana cherry grape melon peach plum pear lemon lime".split(),
    "vehicle": "car truck bus train bike boat plane tram van taxi".split(),
    "colour": "red blue green cyan pink black white grey brown gold".split(),
}
FILLER = "the a of and to in is it on".split()


def make_corpus(path: Path, n=200, seed=0):
    """n labelled lines, each mostly words of its topic."""
    rng = random.Random(seed)
    everything = sum(TOPICS.values(), [])
    with open(path, "w") as f:
        for _ in range(n):
            topic = rng.choice(sorted(TOPICS))
            words = ([rng.choice(TOPICS[topic]) for _ in range(6)]
                     + [rng.choice(FILLER) for _ in range(3)] + [rng.choice(everything)])
            rng.shuffle(words)
            f.write(f"__label__{topic} " + " ".join(words) + "\n")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def corpus(workdir):
    return make_corpus(workdir / "train.txt")


@pytest.fixture(scope="module")
def classifier(workdir, corpus):
    """A supervised model of `corpus` trained through the command line: its .bin path."""
    prefix = workdir / "clf"
    code, out, err = run("supervised", "-input", corpus, "-output", prefix, "-dim", 10,
                         "-epoch", 5, "-thread", 1, "-verbose", 0, "-lr", 0.5)
    assert code == 0, err
    return prefix.with_suffix(".bin")


@pytest.fixture(scope="module")
def vectors(workdir, corpus):
    """A skipgram model of `corpus` trained through the command line: its .bin path."""
    prefix = workdir / "sg"
    code, out, err = run("skipgram", "-input", corpus, "-output", prefix, "-dim", 5,
                         "-epoch", 1, "-minCount", 1, "-bucket", 1000, "-thread", 1,
                         "-verbose", 0)
    assert code == 0, err
    return prefix.with_suffix(".bin")
