"""The Python API against the official `fasttext` module, method by method.

Each model here is trained by embtk, saved, and loaded by both modules, so any
difference comes from the API code and not from training. Tests that need the
official module skip without it.
"""

import io
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import embtk
from embtk.cli import main

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"
CORPUS = DATA / "austen_small.txt"


def official_module():
    return pytest.importorskip("fasttext")


def official_load(path):
    """The official module's model for `path` (its load_model prints a warning to stderr)."""
    fasttext = official_module()
    with mock.patch.object(sys, "stderr", io.StringIO()):
        return fasttext.load_model(str(path))


def official_probabilities(model, lines, k):
    """Per-line official probabilities: its list form repeats the first one (its bug)."""
    return [[p for p, _ in model.f.predict(line + "\n", k, 0.0, "strict")] for line in lines]


def run_cli(*args, input=b""):
    """`embtk ARGS` in this process, with `input` on stdin: (exit status, stdout bytes)."""
    out = io.BytesIO()
    streams = {"stdin": io.TextIOWrapper(io.BytesIO(input)),
               "stdout": io.TextIOWrapper(out, write_through=True),
               "stderr": io.StringIO()}
    with mock.patch.multiple(sys, **streams):
        code = main([str(a) for a in args])
        sys.stdout.flush()
    return code, out.getvalue()


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    model = embtk.train_supervised(TRAIN, epoch=3, lr=0.5, dim=8, wordNgrams=2, bucket=20000,
                                   thread=1, verbose=0)
    path = tmp_path_factory.mktemp("parity") / "classifier.bin"
    model.save_model(path)
    return path


@pytest.fixture(scope="module")
def skipgram_path(tmp_path_factory):
    model = embtk.train_unsupervised(CORPUS, model="skipgram", dim=8, epoch=1, minCount=3,
                                     bucket=20000, thread=1, verbose=0)
    path = tmp_path_factory.mktemp("parity") / "skipgram.bin"
    model.save_model(path)
    return path


# --------------------------------------------------------------------- predict


def lines_with_eos(model):
    """Test lines, some holding the literal token '</s>' (as get_line's words end with it)."""
    lines = [line.split(" ", 1)[1] for line in TEST.read_text().splitlines()[:60]]
    built = [" ".join(model.get_line(line)[0]) for line in lines[:10]]
    assert all(line.endswith(" </s>") for line in built)
    return (built + [lines[10] + " </s> " + lines[11], "</s>", "a </s>b </s>", "x\t</s>\ty"]
            + ["</s>x </s>", "", "__label__austen </s> whale"] + lines[12:])


def test_predict_list_gives_one_result_per_element(classifier_path):
    ours = embtk.load_model(classifier_path)
    official = official_load(classifier_path)
    lines = lines_with_eos(ours)
    labels, probs = ours.predict(lines, k=2)
    assert len(labels) == len(probs) == len(lines)
    official_labels, _ = official.predict(lines, k=2)
    assert [list(row) for row in labels] == official_labels
    np.testing.assert_array_equal(np.array(probs), np.array(official_probabilities(official, lines, 2)))
    # tokens after the first '</s>' are ignored, as the official module ignores them
    assert ours.predict(["whale ship </s> the LORD"])[0] == ours.predict(["whale ship"])[0]
    single_labels, single_probs = ours.predict(lines[0], k=2)
    assert list(single_labels) == official_labels[0]


def test_cli_predict_keeps_eos_as_a_line_break(classifier_path):
    # fastText's CLI reads a stream: there a '</s>' token ends one example and starts another
    official = official_load(classifier_path)
    code, out = run_cli("predict", classifier_path, "-", input=b"whale ship </s> the LORD God\n")
    assert code == 0
    expected = [official.predict(["whale ship"])[0][0][0], official.predict(["the LORD God"])[0][0][0]]
    assert out.decode().splitlines() == expected
    assert expected[0] != expected[1]


@pytest.mark.parametrize("which", ["classifier_path", "skipgram_path"])
def test_sentence_vector_of_a_line_with_eos(which, request):
    # a classifier's sentence vector is its first example's (fastText's getLine), a
    # word-vector model's averages every token of the line, '</s>' included
    path = request.getfixturevalue(which)
    ours, official = embtk.load_model(path), official_load(path)
    for line in ["the whale </s> the LORD", "</s>", "sister </s>", "x </s> y </s> z"]:
        np.testing.assert_array_equal(ours.get_sentence_vector(line),
                                      official.get_sentence_vector(line))


# ------------------------------------------------------------------ vocabulary


def test_labels_of_a_word_vector_model_are_its_words(skipgram_path):
    ours, official = embtk.load_model(skipgram_path), official_load(skipgram_path)
    assert len(ours.words) > 100
    assert ours.get_labels() == official.get_labels() == ours.words
    assert ours.labels == official.labels == ours.words
    words, counts = ours.get_labels(include_freq=True)
    official_words, official_counts = official.get_labels(include_freq=True)
    assert words == official_words
    assert counts.dtype == official_counts.dtype == np.int64
    np.testing.assert_array_equal(counts, official_counts)
    np.testing.assert_array_equal(counts, ours.get_words(include_freq=True)[1])


def test_labels_and_words_of_a_classifier(classifier_path):
    ours, official = embtk.load_model(classifier_path), official_load(classifier_path)
    for include_freq in (False, True):
        for name in ("get_words", "get_labels"):
            got = getattr(ours, name)(include_freq=include_freq)
            expected = getattr(official, name)(include_freq=include_freq)
            if include_freq:
                assert got[0] == expected[0] and got[1].dtype == expected[1].dtype
                np.testing.assert_array_equal(got[1], expected[1])
            else:
                assert got == expected
    assert ours.labels == official.labels and ours.words == official.words
