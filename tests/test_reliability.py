"""Misuse and hostile conditions end in one clear line: closed standard streams,
terminating signals while a model is saved, options fastText accepts, and memory that
does not grow with the length of an input line."""

import io
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embtk.shell import words_from as _words_from
from conftest import assert_one_line_error, run


def _shell(command: str, cwd):
    env = {k: v for k, v in os.environ.items() if k != "EMBTK_DEBUG"}
    return subprocess.run(["sh", "-c", command], capture_output=True, env=env, cwd=cwd,
                          timeout=120)


@pytest.mark.slow
def test_closed_stdout_and_stdin_are_one_clear_line(classifier, tmp_path):
    python = f"'{sys.executable}' -m embtk"
    done = _shell(f"echo 'a b' | {python} predict '{classifier}' - >&-", tmp_path)
    assert_one_line_error(done.returncode, done.stderr.decode())
    assert "standard output is closed" in done.stderr.decode()
    done = _shell(f"{python} predict '{classifier}' - <&-", tmp_path)
    assert_one_line_error(done.returncode, done.stderr.decode())
    assert "standard input is closed" in done.stderr.decode()


_TERMINATE_WHILE_SAVING = """
import os, signal, sys
import embtk.fileformat as ff
from embtk.cli import main

write = ff._write_dense
def write_then_terminated(f, matrix):
    os.kill(os.getpid(), signal.SIG{name})  # arrives in the middle of the file
    write(f, matrix)
ff._write_dense = write_then_terminated
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["TERM", "HUP"])
def test_terminating_signal_while_saving_leaves_nothing(corpus, tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "EMBTK_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", _TERMINATE_WHILE_SAVING.format(name=name), "supervised",
         "-input", str(corpus), "-output", str(out / "clf"), "-dim", "5", "-epoch", "1",
         "-thread", "1", "-verbose", "0"], capture_output=True, env=env, timeout=120)
    number = getattr(signal, f"SIG{name}")
    assert done.returncode == 128 + number, done.stderr
    assert done.stderr.decode().splitlines() == [f"embtk: stopped by SIG{name}"]
    assert list(out.iterdir()) == []  # neither the model nor a hidden .clf.bin.tmp-* file


def test_neg_zero_is_accepted_where_no_negatives_are_drawn(corpus, tmp_path):
    for loss in ("softmax", "hs", "ova"):
        code, _, err = run("supervised", "-input", corpus, "-output", tmp_path / loss,
                           "-loss", loss, "-neg", 0, "-dim", 5, "-epoch", 1, "-thread", 1,
                           "-verbose", 0)
        assert code == 0, err
    code, _, err = run("supervised", "-input", corpus, "-output", tmp_path / "ns",
                       "-loss", "ns", "-neg", 0, "-verbose", 0)
    assert_one_line_error(code, err)
    assert "-neg must be a positive integer, got 0" in err


def test_test_without_known_labels_prints_fasttexts_nan_and_a_note(classifier, tmp_path):
    data = tmp_path / "unlabelled.txt"
    data.write_text("apple banana\n__label__nobody car\n")
    code, out, err = run("test", classifier, data)
    assert code == 0
    assert out == b"N\t0\nP@1\tnan\nR@1\tnan\n"  # fastText's quiet NaN prints as nan
    assert err.startswith("embtk: note: no line of") and len(err.splitlines()) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bc", b"def", b" ", b"  ", b"\t", b"\n"]), max_size=60),
       st.integers(1, 8))
def test_words_are_read_in_bounded_pieces(parts, piece):
    data = b"".join(parts)
    calls = []

    class Stream(io.BytesIO):
        def readline(self, size=-1):
            calls.append(size)
            return super().readline(size)

    seen = list(_words_from(Stream(data), piece))
    assert all(0 < size <= piece for size in calls)  # never a whole line at once
    lines = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        lines.pop()  # what follows the last newline is not a line
    expected = [x for line in lines for x in line.split() + [None]]
    assert seen == expected


# ------------------------------------------------------------ Python API arguments
@pytest.fixture(scope="module")
def loaded(classifier, vectors):
    import embtk

    return embtk.load_model(classifier), embtk.load_model(vectors)


@pytest.mark.parametrize("call, argument", [
    (lambda clf, vec: clf.predict(None), "text"),
    (lambda clf, vec: clf.predict(123), "text"),
    (lambda clf, vec: clf.predict(["a", None]), "text"),
    (lambda clf, vec: clf.predict("a", k="2"), "k"),
    (lambda clf, vec: clf.predict("a", k=1.5), "k"),
    (lambda clf, vec: clf.predict("a", threshold="0.5"), "threshold"),
    (lambda clf, vec: vec.get_word_vector(123), "word"),
    (lambda clf, vec: vec.get_input_vector("a"), "ind"),
    (lambda clf, vec: vec.get_nearest_neighbors("apple", k=2.0), "k"),
    (lambda clf, vec: clf.test(123), "path"),
])
def test_wrong_argument_types_are_type_errors_naming_the_argument(loaded, call, argument):
    with pytest.raises(TypeError, match=rf"^{argument} must be"):
        call(*loaded)


@pytest.mark.parametrize("call, argument", [
    (lambda clf, vec: vec.get_input_vector(-1), "ind"),
    (lambda clf, vec: vec.get_input_vector(10 ** 9), "ind"),
    (lambda clf, vec: vec.get_nearest_neighbors("apple", k=0), "k"),
    (lambda clf, vec: vec.get_analogies("a", "b", "c", k=-3), "k"),
    (lambda clf, vec: clf.predict("a", k=0), "k"),
])
def test_wrong_argument_values_are_value_errors_naming_the_argument(loaded, call, argument):
    from embtk.errors import EmbtkError

    with pytest.raises(EmbtkError, match=rf"^{argument} must be"):
        call(*loaded)


def test_huge_k_answers_the_whole_vocabulary(loaded):
    _, vec = loaded
    everyone = vec.get_nearest_neighbors("apple", k=10 ** 9)
    assert len(everyone) == len(vec.words) - 1  # all but the word itself
    assert everyone[:5] == vec.get_nearest_neighbors("apple", k=5)
    assert len(vec.get_analogies("apple", "banana", "car", k=10 ** 12)) == len(vec.words) - 3


def test_nn_command_with_huge_k_stays_small(vectors):
    code, out, err = run("nn", vectors, 10 ** 9, input=b"apple\n")
    assert code == 0, err
    import embtk

    assert out.count(b"\n") == len(embtk.load_model(vectors).words) - 1


def test_paths_may_be_bytes_or_pathlike(classifier, tmp_path):
    import pathlib

    import embtk

    by_bytes = embtk.load_model(bytes(classifier))
    by_path = embtk.load_model(pathlib.Path(classifier))
    assert by_bytes.get_labels() == by_path.get_labels()
    by_bytes.save_model(os.fsencode(tmp_path / "copy.bin"))
    assert embtk.load_model(tmp_path / "copy.bin").get_words() == by_path.get_words()
