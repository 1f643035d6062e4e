"""Checkpoints and resuming: a run stopped by a signal, or killed, continues to the same
end; a checkpoint is refused for another input or other options."""

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run

import embtk

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"
CORPUS = DATA / "austen_small.txt"
SUPERVISED = ["supervised", "-input", TRAIN, "-dim", 10, "-epoch", 1000, "-lr", 0.5,
              "-wordNgrams", 2, "-bucket", 20000, "-thread", 1, "-seed", 4]
SKIPGRAM = ["skipgram", "-input", CORPUS, "-dim", 10, "-epoch", 25, "-bucket", 20000,
            "-thread", 1, "-seed", 4]


def _start(command, *more):
    argv = [sys.executable, "-m", "embtk", *map(str, command), *map(str, more)]
    return subprocess.Popen(argv, stderr=subprocess.PIPE)


def _child(command, *more) -> int:
    """The exit status of `embtk COMMAND MORE` run in a child process."""
    argv = [sys.executable, "-m", "embtk", *map(str, command), *map(str, more)]
    return subprocess.run(argv, stderr=subprocess.DEVNULL).returncode


def _wait_for(proc, predicate, what):
    deadline = time.time() + 120
    while not predicate():
        assert proc.poll() is None, f"ended before {what}: {proc.stderr.read().decode()}"
        assert time.time() < deadline, f"no {what}"
        time.sleep(0.05)


def _wait_for_progress(proc, timeout=120):
    """Read the child's progress bar (-verbose 2, on stderr) until it shows more than 0%:
    training is under way, and a signal now stops it in the middle."""
    seen, deadline = b"", time.monotonic() + timeout
    while not any(0 < float(p) < 100 for p in re.findall(rb"Progress: *([0-9.]+)%", seen)):
        left = deadline - time.monotonic()
        ready = left > 0 and select.select([proc.stderr], [], [], left)[0]
        assert ready, f"no progress past 0% within {timeout} s: {seen.decode(errors='replace')}"
        chunk = os.read(proc.stderr.fileno(), 1 << 16)
        assert chunk, f"ended before its progress passed 0%: {seen.decode(errors='replace')}"
        seen += chunk


@pytest.mark.slow
@pytest.mark.parametrize("command", [SUPERVISED, SKIPGRAM], ids=["supervised", "skipgram"])
def test_resume_after_sigterm_ends_with_the_uninterrupted_model(command, tmp_path):
    # Every run in a child process on a warm numba cache: a kernel compiled in the running
    # process and the same kernel loaded from the cache can round differently (fastmath),
    # so a model trained partly by each would differ from one trained by either.
    assert _child(command, "-output", tmp_path / "warm", "-epoch", 1, "-verbose", 0) == 0
    assert _child(command, "-output", tmp_path / "whole", "-verbose", 0) == 0
    checkpoint = tmp_path / "run.ckpt"
    proc = _start(command, "-output", tmp_path / "part", "-checkpoint", checkpoint)
    _wait_for_progress(proc)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 143, err
    assert f"continue with -resume {checkpoint}" in err
    assert checkpoint.exists() and not (tmp_path / "part.bin").exists()
    resumed = subprocess.run([sys.executable, "-m", "embtk", *map(str, command), "-output",
                              str(tmp_path / "part"), "-resume", str(checkpoint)],
                             stderr=subprocess.PIPE)
    err = resumed.stderr.decode()
    assert resumed.returncode == 0, err
    done = float(err.split("Resuming")[1].split(" at ")[1].split("%")[0])
    assert 0 < done < 100
    # with -thread 1, the state saved when the threads were stopped is exact
    assert (tmp_path / "part.bin").read_bytes() == (tmp_path / "whole.bin").read_bytes()


@pytest.mark.slow
def test_resume_after_sigkill_reaches_the_same_quality(tmp_path):
    code, _, err = run(*SUPERVISED, "-output", tmp_path / "whole", "-verbose", 0)
    assert code == 0, err
    checkpoint, spool = tmp_path / "run.ckpt", tmp_path / "tmp"
    spool.mkdir()
    proc = _start(SUPERVISED, "-output", tmp_path / "part", "-checkpoint", checkpoint,
                  "-checkpointEvery", 0.3, "-tmpdir", spool)
    _wait_for(proc, checkpoint.exists, "checkpoint")
    assert proc.poll() is None, "training ended before it could be killed"
    proc.kill()
    proc.wait(timeout=60)
    # killed: no model, and no temporary file (the encoded corpus never had a name). The
    # kill may land while the next checkpoint is written: its .run.ckpt.tmp-* is the one
    # file kill -9 may leave (README), and the checkpoint itself is whole.
    assert not (tmp_path / "part.bin").exists() and list(spool.iterdir()) == []
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert [name for name in hidden if not name.startswith(".run.ckpt.tmp-")] == []
    code, _, err = run(*SUPERVISED, "-output", tmp_path / "part", "-resume", checkpoint,
                       "-verbose", 1)
    assert code == 0, err
    assert "Resuming" in err
    whole = embtk.load_model(tmp_path / "whole.bin").test(TEST)
    resumed = embtk.load_model(tmp_path / "part.bin").test(TEST)
    assert resumed[0] == whole[0] and abs(resumed[1] - whole[1]) < 0.02, (resumed, whole)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A checkpoint of a supervised run on TRAIN, saved by the Python API."""
    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "run.ckpt"
    embtk.train_supervised(TRAIN, dim=10, epoch=5, lr=0.5, wordNgrams=2, bucket=20000,
                           thread=1, verbose=0, checkpoint=str(path), checkpointEvery=1e-6)
    return path


def test_python_resumes_with_another_thread_count(saved):
    model = embtk.train_supervised(TRAIN, thread=2, verbose=0, resume=str(saved))
    assert model.test(TEST)[1] > 0.7
    assert (model.args.thread, model.args.epoch, model.args.dim) == (2, 5, 10)


@pytest.mark.parametrize("change, message", [
    (["-input", TEST], "written for another input"),
    (["-input", TRAIN, "-dim", 12], "-dim 12 differs from checkpoint"),
    (["-input", TRAIN, "-epoch", 2], "-epoch 2 differs from checkpoint"),
    (["-input", TRAIN, "-lr", 0.1], "-lr 0.1 differs from checkpoint"),
])
def test_another_input_or_options_are_refused(saved, tmp_path, change, message):
    code, _, err = run("supervised", *change, "-output", tmp_path / "m", "-resume", saved)
    assert_one_line_error(code, err)
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_of_another_kind_or_no_checkpoint_is_refused(saved, tmp_path):
    code, _, err = run("skipgram", "-input", TRAIN, "-output", tmp_path / "m", "-resume", saved)
    assert_one_line_error(code, err)
    assert "is of a supervised run: resume it with `embtk supervised`" in err
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 this is no checkpoint")
    for path, message in ((tmp_path / "junk", "is not an embtk checkpoint"),
                          (TRAIN, "is not an embtk checkpoint"),
                          (tmp_path / "none", "no such file")):
        code, _, err = run("supervised", "-input", TRAIN, "-output", tmp_path / "m",
                           "-resume", path)
        assert_one_line_error(code, err)
        assert message in err
    assert not (tmp_path / "m.bin").exists()


def test_checkpoint_every_must_be_positive(tmp_path):
    code, _, err = run(*SUPERVISED, "-output", tmp_path / "m", "-checkpoint", tmp_path / "c",
                       "-checkpointEvery", 0)
    assert_one_line_error(code, err)
    assert "-checkpointEvery must be a positive number" in err


def test_a_checkpoint_holds_the_run(saved):
    with np.load(saved) as archive:
        assert {"state", "input", "output", "rngs", "word_bytes", "counts"} <= set(archive.files)
        assert archive["input"].shape[1] == 10
    assert os.path.getsize(saved) > 20000 * 10 * 4
