"""Continued training (-inputModel): the vocabulary grows, known rows carry over, the
options that shape the matrices cannot change, and the result is an ordinary model."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run

import embtk
from embtk.errors import EmbtkError

DATA = Path(__file__).parent / "data"
TEST = DATA / "authors.test"


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """Two halves of a labelled corpus: B has words and a label that A has not."""
    folder = tmp_path_factory.mktemp("halves")
    lines = (DATA / "authors.train").read_text().splitlines(keepends=True)
    a, b = folder / "a.txt", folder / "b.txt"
    a.write_text("".join(lines[0::2]) + "__label__bible onlyina onlyina\n")
    b.write_text("".join(lines[1::2]) + "__label__newlabel brandnew brandnew words\n" * 20)
    return a, b


OPTIONS = dict(dim=10, epoch=3, lr=0.5, wordNgrams=2, bucket=20000, thread=1, seed=1, verbose=0)


@pytest.fixture(scope="module")
def model_a(halves, tmp_path_factory):
    model = embtk.train_supervised(halves[0], **OPTIONS)
    path = tmp_path_factory.mktemp("a") / "a.bin"
    model.save_model(path)
    return model, path


def test_the_vocabulary_grows_and_counts_add_up(halves, model_a):
    a, path = model_a
    continued = embtk.train_supervised(halves[1], inputModel=str(path), **OPTIONS)
    b_alone = embtk.train_supervised(halves[1], **OPTIONS)
    words_a, counts_a = a.get_words(include_freq=True)
    words_b, counts_b = b_alone.get_words(include_freq=True)
    words, counts = continued.get_words(include_freq=True)
    assert set(words) == set(words_a) | set(words_b)
    count, count_b = dict(zip(words, counts)), dict(zip(words_b, counts_b))
    for w, c in zip(words_a, counts_a):
        assert count[w] == c + count_b.get(w, 0)
    assert list(counts) == sorted(counts, reverse=True)  # sorted again, as fastText sorts
    assert set(continued.labels) == set(a.labels) | {"__label__newlabel"}
    assert continued.dictionary.ntokens == a.dictionary.ntokens + b_alone.dictionary.ntokens
    # a word only in A is not trained on B (no subwords): its own row is A's
    assert np.array_equal(continued["onlyina"], a["onlyina"])
    assert not np.array_equal(continued["the"], a["the"])
    assert continued.predict("brandnew brandnew words")[0] == ("__label__newlabel",)


def test_the_options_of_the_model_are_the_defaults(halves, tmp_path):
    prefix = tmp_path / "m"
    code, _, err = run("skipgram", "-input", halves[0], "-output", prefix, "-dim", 6,
                       "-epoch", 1, "-ws", 2, "-minCount", 3, "-minn", 2, "-maxn", 4,
                       "-bucket", 3000, "-thread", 1, "-verbose", 0)
    assert code == 0, err
    continued = embtk.train_unsupervised(halves[1], inputModel=str(prefix) + ".bin", epoch=2,
                                         thread=1, verbose=0)
    a = continued.args
    assert (a.dim, a.ws, a.minCount, a.minn, a.maxn, a.bucket, a.epoch) == (6, 2, 3, 2, 4, 3000, 2)
    assert continued.get_input_matrix().shape == (len(continued.words) + 3000, 6)
    assert "brandnew" in continued.words and "brandnew" not in embtk.load_model(
        str(prefix) + ".bin").words


@pytest.mark.parametrize("option, value", [
    ("-dim", 11), ("-wordNgrams", 3), ("-loss", "hs"), ("-bucket", 99), ("-minn", 2),
    ("-maxn", 3),
])
def test_options_that_shape_the_matrices_cannot_change(halves, model_a, tmp_path, option, value):
    extra = ["-maxn", 5] if option == "-minn" else []  # changes minn alone
    code, _, err = run("supervised", "-input", halves[1], "-output", tmp_path / "m",
                       "-inputModel", model_a[1], option, value, *extra)
    assert_one_line_error(code, err)
    assert "cannot apply to -inputModel" in err
    assert list(tmp_path.iterdir()) == []


def test_the_same_value_of_a_fixed_option_is_fine(halves, model_a, tmp_path):
    code, _, err = run("supervised", "-input", halves[1], "-output", tmp_path / "m",
                       "-inputModel", model_a[1], "-dim", 10, "-bucket", 20000, "-verbose", 0,
                       "-thread", 1)
    assert code == 0, err


@pytest.mark.parametrize("command", ["skipgram", "cbow"])
def test_a_model_of_another_kind_is_refused(halves, model_a, tmp_path, command):
    code, _, err = run(command, "-input", halves[1], "-output", tmp_path / "m",
                       "-inputModel", model_a[1])
    assert_one_line_error(code, err)
    assert "is a classifier: continue it with `embtk supervised`" in err
    assert list(tmp_path.iterdir()) == []


def test_skipgram_is_not_continued_as_cbow(halves, tmp_path):
    sg = embtk.train_unsupervised(halves[0], dim=5, epoch=1, bucket=1000, verbose=0)
    sg.save_model(tmp_path / "sg.bin")
    with pytest.raises(EmbtkError, match="is a skipgram model.*embtk skipgram"):
        embtk.train_unsupervised(halves[1], model="cbow", inputModel=str(tmp_path / "sg.bin"))


def test_quantized_and_foreign_files_are_refused(halves, model_a, tmp_path):
    model = embtk.load_model(model_a[1])
    model.quantize(cutoff=256, qnorm=True)  # few rows: quick; still a .ftz
    model.save_model(tmp_path / "a.ftz")
    (tmp_path / "junk.bin").write_bytes(b"not a model at all")
    for path, message in ((tmp_path / "a.ftz", "is quantized"),
                          (tmp_path / "junk.bin", "not a fastText/embtk model"),
                          (tmp_path / "none.bin", "no such file")):
        code, _, err = run("supervised", "-input", halves[1], "-output", tmp_path / "m",
                           "-inputModel", path)
        assert_one_line_error(code, err)
        assert message in err
    assert not (tmp_path / "m.bin").exists()


def test_pretrained_vectors_or_autotune_with_an_input_model_are_refused(halves, model_a):
    with pytest.raises(EmbtkError, match="-inputModel cannot be combined with autotune"):
        embtk.train_supervised(halves[1], inputModel=str(model_a[1]),
                               autotuneValidationFile=str(TEST))


@pytest.mark.parametrize("loss", ["hs", "ns"])
def test_word_vectors_continue_with_either_output_layer(halves, tmp_path, loss):
    kw = dict(model="skipgram", dim=8, epoch=1, bucket=200000, minCount=2, thread=1, seed=1,
              verbose=0, loss=loss)
    first = embtk.train_unsupervised(halves[0], **kw)
    first.save_model(tmp_path / "first.bin")
    continued = embtk.train_unsupervised(halves[1], inputModel=str(tmp_path / "first.bin"), **kw)
    assert np.isfinite(continued.final_loss) and len(continued.words) > len(first.words)
    # the n-gram buckets are shared: those no word of B reaches keep their values
    nw, nf = len(continued.words), len(first.words)
    unchanged = np.all(continued.get_input_matrix()[nw:] == first.get_input_matrix()[nf:], axis=1)
    assert 0 < unchanged.sum() < 200000


def test_official_fasttext_loads_a_continued_model(halves, model_a, tmp_path, official_fasttext):
    continued = embtk.train_supervised(halves[1], inputModel=str(model_a[1]), **OPTIONS)
    continued.save_model(tmp_path / "c.bin")
    official = official_fasttext.load_model(str(tmp_path / "c.bin"))
    assert official.words == continued.words and official.labels == continued.labels
    assert official.test(str(TEST)) == continued.test(TEST)
    assert np.array_equal(official.get_input_matrix(), continued.get_input_matrix())
