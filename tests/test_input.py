"""Training input that is not a file: stdin ('-'), Python file objects and iterables of
lines. They are copied to a temporary file, which must be gone afterwards, however the
run ends."""

import errno
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run

import embtk
from embtk import corpus, trainer
from embtk.errors import EmbtkError

DATA = Path(__file__).parent / "data"
TRAIN = DATA / "authors.train"
CORPUS = DATA / "austen_small.txt"
SUPERVISED = dict(dim=8, epoch=2, wordNgrams=2, bucket=5000, thread=1, seed=2, verbose=0)
SKIPGRAM = dict(model="skipgram", dim=8, epoch=1, bucket=5000, thread=1, seed=2, verbose=0)


def _same(a, b):
    return (np.array_equal(a.get_input_matrix(), b.get_input_matrix())
            and np.array_equal(a.get_output_matrix(), b.get_output_matrix()))


@pytest.fixture(scope="module")
def from_path():
    return embtk.train_supervised(TRAIN, **SUPERVISED)


# ------------------------------------------------------------------------------ Python


@pytest.mark.parametrize("kind", ["binary file", "text file", "list of str", "generator",
                                  "lines without newlines", "bytes lines"])
def test_python_inputs_train_the_same_model_as_the_path(from_path, kind, tmp_path):
    text = TRAIN.read_text()
    source = {
        "binary file": lambda: open(TRAIN, "rb"),
        "text file": lambda: open(TRAIN, encoding="utf-8"),
        "list of str": lambda: text.splitlines(keepends=True),
        "generator": lambda: (line for line in text.splitlines(keepends=True)),
        "lines without newlines": lambda: text.splitlines(),
        "bytes lines": lambda: TRAIN.read_bytes().splitlines(),
    }[kind]()
    model = embtk.train_supervised(source, tmpdir=str(tmp_path), **SUPERVISED)
    assert _same(model, from_path)
    assert model.args.input == "-"
    assert list(tmp_path.iterdir()) == []


def test_lists_of_tokens_as_gensim_passes_them(tmp_path):
    sentences = [line.split() for line in CORPUS.read_text().splitlines()]
    model = embtk.train_unsupervised(sentences, tmpdir=str(tmp_path), **SKIPGRAM)
    assert _same(model, embtk.train_unsupervised(CORPUS, **SKIPGRAM))
    assert list(tmp_path.iterdir()) == []


def test_glove_takes_an_iterable_too():
    lines = CORPUS.read_text().splitlines()
    kw = dict(dim=5, epoch=2, minCount=2, thread=1, seed=1, verbose=0)
    a = embtk.train_glove(iter(lines), **kw)
    b = embtk.train_glove(CORPUS, **kw)
    assert np.array_equal(a.get_input_matrix(), b.get_input_matrix())


@pytest.mark.parametrize("source, error", [
    ([], "the Python input is empty"),
    (iter(()), "the Python input is empty"),
    (io.BytesIO(b""), "the Python input is empty"),
])
def test_empty_python_input_is_a_clear_error(source, error, tmp_path):
    with pytest.raises(EmbtkError, match=error):
        embtk.train_supervised(source, tmpdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", [12, [1, 2], [b"ok\n", None]])
def test_wrong_input_types_are_type_errors(source, tmp_path):
    with pytest.raises(TypeError, match="input"):
        embtk.train_supervised(source, tmpdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_while_copying_leaves_nothing(tmp_path):
    def lines():
        yield "__label__a hello world\n"
        assert len(list(tmp_path.iterdir())) == 1  # the copy exists while it is written
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embtk.train_supervised(lines(), tmpdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_copying_is_one_clear_line(monkeypatch, tmp_path):
    class FullDisk(io.RawIOBase):
        def __init__(self, fd, mode):
            os.close(fd)

        def writable(self):
            return True

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corpus, "open", FullDisk, raising=False)
    with pytest.raises(EmbtkError, match=f"no space left in {tmp_path} for the Python input"):
        embtk.train_supervised(["__label__a b\n"], tmpdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- stdin


def test_cli_stdin_trains_the_same_model_as_the_file(from_path, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    code, out, err = run("supervised", "-input", "-", "-output", tmp_path / "m", "-dim", 8,
                         "-epoch", 2, "-wordNgrams", 2, "-bucket", 5000, "-thread", 1,
                         "-seed", 2, "-verbose", 2, "-tmpdir", spool, input=TRAIN.read_bytes())
    assert code == 0, err
    assert f"Copied stdin (0.8 MB) to {spool}{os.sep}embtk-input-" in err  # said at -verbose 2
    assert _same(embtk.load_model(tmp_path / "m.bin"), from_path)
    assert list(spool.iterdir()) == []


def test_cli_empty_stdin_is_one_clear_line(tmp_path):
    code, out, err = run("skipgram", "-input", "-", "-output", tmp_path / "m", "-tmpdir", tmp_path)
    assert_one_line_error(code, err)
    assert "stdin is empty" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_error_after_copying_stdin_leaves_nothing(tmp_path):
    code, out, err = run("supervised", "-input", "-", "-output", tmp_path / "m", "-tmpdir",
                         tmp_path, "-verbose", 0, input=b"no labels on this line\n")
    assert_one_line_error(code, err)
    assert "no labels" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_ctrl_c_during_training_leaves_nothing(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        assert len(list(tmp_path.iterdir())) == 1  # stdin's copy, while training
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "fit", interrupted)
    code, out, err = run("skipgram", "-input", "-", "-output", tmp_path / "m", "-tmpdir",
                         tmp_path, "-verbose", 0, input=CORPUS.read_bytes())
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_training_from_a_pipe_leaves_nothing(signum, status, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "embtk", "skipgram", "-input", "-", "-output", str(tmp_path / "m"),
         "-tmpdir", str(spool), "-epoch", "1000", "-dim", "10", "-bucket", "1000", "-thread", "1"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(CORPUS.read_bytes())
    proc.stdin.close()
    seen = b""
    while b"Progress:" not in seen:  # training has begun, on the copy of stdin
        chunk = proc.stderr.read1(4096)
        assert chunk, seen
        seen += chunk
    assert len(list(spool.iterdir())) == 1
    proc.send_signal(signum)
    proc.stderr.read()
    assert proc.wait(timeout=60) == status
    assert list(spool.iterdir()) == []
    assert not (tmp_path / "m.bin").exists()
