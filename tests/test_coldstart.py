"""A training command on a cold numba cache (coldstart.py): its kernels are compiled in
child processes and loaded from the cache, so the model is the one a warm cache trains,
the note is printed once, and errors found before training still print one line."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from embtk import coldstart
from embtk.args import Args

DATA = Path(__file__).parent / "data"
SMALL = ["-dim", "10", "-epoch", "1", "-bucket", "2000", "-thread", "1", "-seed", "3"]


def _embtk(cache: Path, *argv) -> subprocess.CompletedProcess:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "embtk", *map(str, argv)], env=env,
                          stderr=subprocess.PIPE, text=True)


def _skip_if_recorded_by_another_numba():
    import numba

    if coldstart.recorded_with() != numba.__version__:
        pytest.skip(f"coldstart.pickle was recorded with numba {coldstart.recorded_with()}, "
                    f"this is {numba.__version__}: run python -m embtk.coldstart --record")


def test_a_list_from_another_numba_is_not_used(tmp_path, monkeypatch):
    stale = tmp_path / "coldstart.pickle"
    with open(coldstart.KERNELS_FILE, "rb") as f:
        kinds = pickle.load(f)
    with open(stale, "wb") as f:
        pickle.dump({**kinds, coldstart.NUMBA_KEY: "0.0.1"}, f)
    monkeypatch.setattr(coldstart, "KERNELS_FILE", stale)
    assert coldstart.listed_kernels("supervised softmax") == []


def test_every_listed_kernel_is_a_numba_function_of_embtk():
    _skip_if_recorded_by_another_numba()
    for key in ("supervised softmax", "supervised ova", "skipgram ns", "cbow hs",
                "skipgram ns batch"):
        listed = coldstart.listed_kernels(key)
        assert listed, key
        for k, (module, name, sig, callees) in enumerate(listed):
            assert module.startswith("embtk.")
            assert hasattr(coldstart._dispatcher(module, name), "compile"), (module, name)
            assert all(c < k for c in callees)  # callees come first


def test_a_callee_only_cached_callers_need_counts_as_compiled():
    # 0 <- 1 <- 3 and 2 <- 3: 3 cached, so 0, 1 and 2 are not needed; 4 (no caller) is
    cached = [False, False, False, True, False]
    callees = [[], [0], [], [0, 1, 2], []]
    assert coldstart.still_needed_done(cached, callees) == [True, True, True, True, False]
    # a missing caller needs its callees, even where another caller is cached
    cached = [False, False, True, False]
    callees = [[], [], [0], [0, 1]]
    assert coldstart.still_needed_done(cached, callees) == [False, False, True, False]


def test_run_key_names_the_model_the_loss_and_batch():
    assert coldstart.run_key(Args.for_model("supervised")) == "supervised softmax"
    assert coldstart.run_key(Args.for_model("cbow", loss="hs")) == "cbow hs"
    assert coldstart.run_key(Args.for_model("skipgram", batch=8)) == "skipgram ns batch"
    # the subword scheme sets the kernels' types: off the model's default, a key of its own
    assert coldstart.run_key(Args.for_model("supervised", maxn=3)) == "supervised softmax n-grams"
    assert coldstart.run_key(Args.for_model("cbow", maxn=0)) == "cbow ns words only"
    assert coldstart.run_key(Args.for_model("skipgram", mode="floret")) == "skipgram ns floret"


@pytest.mark.slow
@pytest.mark.parametrize("command, data, more", [
    ("supervised", DATA / "authors.train", ["-wordNgrams", "2", "-lr", "0.5"]),
    ("skipgram", DATA / "austen_small.txt", ["-minCount", "1"]),
], ids=["supervised", "skipgram"])
def test_a_cold_cache_trains_the_model_a_warm_one_trains(command, data, more, tmp_path):
    runs = {}
    for phase in ("cold", "warm"):
        done = _embtk(tmp_path / "cache", command, "-input", data, "-output", tmp_path / phase,
                      *SMALL, *more)
        assert done.returncode == 0, done.stderr
        runs[phase] = done.stderr.splitlines()
    assert runs["cold"].count(coldstart.NOTE) == 1
    assert coldstart.NOTE not in runs["warm"]
    assert (tmp_path / "cold.bin").read_bytes() == (tmp_path / "warm.bin").read_bytes()
    assert (tmp_path / "cold.vec").read_bytes() == (tmp_path / "warm.vec").read_bytes()


@pytest.mark.slow
def test_errors_before_training_and_verbose_0_print_no_note(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    done = _embtk(tmp_path / "cache", "supervised", "-input", empty, "-output", tmp_path / "m")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"embtk: error: input file {empty} is empty"]
    done = _embtk(tmp_path / "cache", "supervised", "-input", DATA / "authors.train",
                  "-output", tmp_path / "m", *SMALL, "-verbose", "0")
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.slow
def test_the_kernels_list_is_what_a_run_compiles_today(tmp_path):
    """After a kernel's arguments or callees change, `python -m embtk.coldstart --record`
    writes the list again (a stale list costs time on a cold cache, not correctness)."""
    _skip_if_recorded_by_another_numba()
    for run in [("supervised", "softmax", []), ("skipgram", "ns", [])]:
        key = f"{run[0]} {run[1]}"
        assert coldstart.record(tmp_path, [run])[key] == coldstart.listed_kernels(key), key


def _on_a_terminal(cache: Path, *argv) -> tuple[int, str]:
    """Run embtk with stderr on a pseudo-terminal (stdout a pipe): status and stderr."""
    import pty

    leader, follower = pty.openpty()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    proc = subprocess.Popen([sys.executable, "-m", "embtk", *map(str, argv)], env=env,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(), b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.slow
def test_a_query_command_notes_its_first_compile_on_a_terminal_only(tmp_path):
    done = _embtk(tmp_path / "train-cache", "supervised", "-input", DATA / "authors.train",
                  "-output", tmp_path / "m", *SMALL, "-verbose", "0")
    assert done.returncode == 0, done.stderr
    test = ("test", tmp_path / "m.bin", DATA / "authors.test")
    piped = _embtk(tmp_path / "piped-cache", *test)  # cold, stderr a pipe: no note
    assert piped.returncode == 0 and piped.stderr == ""
    for phase, notes in (("cold", 1), ("warm", 0)):
        status, err = _on_a_terminal(tmp_path / "tty-cache", *test)
        assert status == 0, err
        assert err.splitlines().count(coldstart.NOTE) == notes, (phase, err)
    missing = _on_a_terminal(tmp_path / "missing-cache", "test", tmp_path / "m.bin",
                             tmp_path / "none.txt")  # found before any kernel compiles
    assert missing == (1, f"embtk: error: test file {tmp_path / 'none.txt'}: no such file\n")


def test_query_commands_compile_ahead_from_the_model_header(tmp_path):
    _skip_if_recorded_by_another_numba()
    from embtk.fileformat import peek_args

    done = _embtk(tmp_path / "train-cache", "supervised", "-input", DATA / "authors.train",
                  "-output", tmp_path / "m", *SMALL, "-verbose", "0")
    assert done.returncode == 0, done.stderr
    args = peek_args(tmp_path / "m.bin")
    assert coldstart.run_key(args) == "supervised softmax"
    for command in ("test", "predict"):
        assert coldstart.listed_kernels(f"{command} supervised softmax"), command
    assert peek_args(DATA / "authors.test") is None  # not a model: compiled as they go
    assert peek_args(tmp_path / "none.bin") is None
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "query-cache"))
    for argv in (("test", tmp_path / "m.bin", DATA / "authors.test"),
                 ("predict-prob", tmp_path / "m.bin", DATA / "authors.test", "2")):
        cold, warm = (subprocess.run([sys.executable, "-m", "embtk", *map(str, argv)],
                                     capture_output=True, env=env) for _ in range(2))
        assert cold.returncode == 0 and cold.stderr == b"", cold.stderr  # a pipe: no note
        assert cold.stdout == warm.stdout and warm.stderr == b""
        assert cold.stdout.startswith(b"N\t800\n" if argv[0] == "test" else b"__label__")
