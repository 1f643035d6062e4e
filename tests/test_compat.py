"""Two-way compatibility with the official fastText (the `fasttext` package from PyPI).

A model trained by either tool is loaded by the other; ids, vectors and predictions
must agree. The official package is a test extra; these tests are skipped without it.
"""

from pathlib import Path

import numpy as np
import pytest

import embtk

fasttext = pytest.importorskip("fasttext")

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"
CORPUS = DATA / "austen_small.txt"
PROBES = ["sister", "Elinor", "whale", "café", "naïve", "日本語", "x", "unseenword", "</s>"]


def official_predict(model, lines, k):
    """Per-line official predictions: its list form repeats the first probability (a bug)."""
    labels, probs = [], []
    for line in lines:
        pairs = model.f.predict(line + "\n", k, 0.0, "strict")
        labels.append([label for _, label in pairs])
        probs.append([p for p, _ in pairs])
    return labels, probs


def sample_lines():
    return [line.split(" ", 1)[1] for line in TEST.read_text().splitlines()[:300]]


@pytest.fixture(scope="module")
def official_classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "sup.bin"
    model = fasttext.train_supervised(str(TRAIN), epoch=5, lr=0.5, dim=16, wordNgrams=3, minn=2, maxn=4,
                                      bucket=50000, thread=1, verbose=0)
    model.save_model(str(path))
    return model, path


@pytest.fixture(scope="module")
def official_skipgram(tmp_path_factory):
    path = tmp_path_factory.mktemp("official") / "sg.bin"
    model = fasttext.train_unsupervised(str(CORPUS), model="skipgram", dim=16, epoch=5,
                                        minCount=2, bucket=100000, thread=1, verbose=0)
    model.save_model(str(path))
    return model, path


def test_official_skipgram_in_embtk(official_skipgram):
    official, path = official_skipgram
    ours = embtk.load_model(path)
    assert ours.words == official.words
    for word in PROBES + official.words[:200:7]:
        assert ours.get_word_id(word) == official.get_word_id(word)
        subwords, ids = ours.get_subwords(word)
        o_subwords, o_ids = official.get_subwords(word)
        assert subwords == list(o_subwords) and ids.tolist() == o_ids.tolist(), word
        np.testing.assert_allclose(ours.get_word_vector(word), official.get_word_vector(word),
                                   atol=1e-6)
    for ngram in ["<si", "ste", "er>", "é", "<日本", "\x7f\x80"]:
        assert ours.get_subword_id(ngram) == official.get_subword_id(ngram)
    sentence = "the sister of the naïve whale"
    np.testing.assert_allclose(ours.get_sentence_vector(sentence),
                               official.get_sentence_vector(sentence), atol=1e-6)
    ours_nn = ours.get_nearest_neighbors("sister", k=5)
    official_nn = official.get_nearest_neighbors("sister", k=5)
    assert ours_nn == official_nn  # same float32 arithmetic: equal to the last bit
    assert ours.get_analogies("sister", "her", "him") == official.get_analogies("sister", "her", "him")


def test_official_classifier_in_embtk(official_classifier):
    official, path = official_classifier
    ours = embtk.load_model(path)
    assert ours.labels == official.labels
    lines = sample_lines()
    # word n-gram ids: the sentence vector averages words, char n-grams and word n-grams
    for line in lines[:50]:
        np.testing.assert_array_equal(ours.get_sentence_vector(line),
                                      official.get_sentence_vector(line))
    our_labels, our_probs = ours.predict(lines, k=2)
    official_labels, official_probs = official_predict(official, lines, k=2)
    assert our_labels == official_labels
    np.testing.assert_array_equal(np.array(our_probs), np.array(official_probs))
    assert ours.test(TEST) == pytest.approx(official.test(str(TEST)))
    for token in official.labels + ["__label__unknown", "</s>"]:
        # labels have vectors too: their own row and their char n-grams
        np.testing.assert_array_equal(ours.get_word_vector(token), official.get_word_vector(token))
    for line in lines[:20] + ["__label__bible __label__nope a b", "x </s> y"]:
        assert ours.get_line(line) == official.get_line(line)
    assert ours.test(TEST, k=2, threshold=0.3) == pytest.approx(official.test(str(TEST), k=2, threshold=0.3))


@pytest.mark.parametrize("loss", ["softmax", "hs", "ova", "ns"])
def test_embtk_classifier_in_official(tmp_path, loss):
    ours = embtk.train_supervised(TRAIN, epoch=5, lr=0.5, dim=16, wordNgrams=2, bucket=50000, loss=loss,
                                  thread=1, verbose=0)
    path = tmp_path / "ours.bin"
    ours.save_model(path)
    official = fasttext.load_model(str(path))
    assert official.labels == ours.labels
    assert official.words == ours.words
    np.testing.assert_array_equal(official.get_input_matrix(), ours.get_input_matrix())
    lines = sample_lines()
    official_labels, official_probs = official_predict(official, lines, k=3)
    our_labels, our_probs = ours.predict(lines, k=3)
    assert official_labels == our_labels
    np.testing.assert_array_equal(np.array(official_probs), np.array(our_probs))
    assert official.test(str(TEST)) == pytest.approx(ours.test(TEST))
    reloaded = embtk.load_model(path)
    assert reloaded.predict(lines, k=3)[0] == our_labels


def test_embtk_cbow_in_official(tmp_path):
    ours = embtk.train_unsupervised(CORPUS, model="cbow", dim=16, epoch=1, minCount=2,
                                    bucket=100000, thread=2, verbose=0)
    path = tmp_path / "ours.bin"
    ours.save_model(path)
    official = fasttext.load_model(str(path))
    for word in PROBES:
        np.testing.assert_allclose(official.get_word_vector(word), ours.get_word_vector(word),
                                   atol=1e-6)
    # the .vec file holds the same vectors, in fastText's text layout
    ours.save_vectors(tmp_path / "ours.vec")
    lines = (tmp_path / "ours.vec").read_bytes().split(b"\n")
    assert lines[0] == b"%d 16" % len(ours.words)
    first = lines[1].split(b" ")
    assert first[0] == ours.words[0].encode() and first[-1] == b""
    np.testing.assert_allclose([float(x) for x in first[1:-1]],
                               official.get_word_vector(ours.words[0]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("model, min_count", [("skipgram", 1), ("skipgram", 5), ("supervised", 1)])
def test_same_dictionary_order_as_official(model, min_count):
    # fastText sorts with std::sort, which orders equal counts its own way; embtk ports it
    path = str(TRAIN if model == "supervised" else CORPUS)
    if model == "supervised":
        official = fasttext.train_supervised(path, epoch=1, dim=2, thread=1, verbose=0)
        expected = official.get_words() + official.get_labels()
    else:
        official = fasttext.train_unsupervised(path, epoch=1, dim=2, minCount=min_count, minn=0,
                                               maxn=0, thread=1, verbose=0)
        expected = official.get_words() + official.get_labels()  # its labels are its words
    ours = embtk.train_unsupervised(path, epoch=1, dim=2, minCount=min_count, minn=0, maxn=0,
                                    thread=1, verbose=0) if model != "supervised" else \
        embtk.train_supervised(path, epoch=1, dim=2, thread=1, verbose=0)
    assert ours.words + ours.labels == expected


def test_word_vector_sentence_vectors_bit_identical(official_skipgram):
    official, path = official_skipgram
    ours = embtk.load_model(path)
    for line in CORPUS.read_text().splitlines()[:200]:
        np.testing.assert_array_equal(ours.get_sentence_vector(line),
                                      official.get_sentence_vector(line))
