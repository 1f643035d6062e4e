"""The Python API against the official `fasttext` module, method by method.

Most models here are trained by embtk, saved, and loaded by both modules, so a
difference comes from the API code and not from training. Tests that need the
official module skip without it.
"""

import io
import random
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


def both(path):
    """embtk's and the official module's models for `path`."""
    return embtk.load_model(path), official_load(path)


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
    ours, official = both(classifier_path)
    lines = lines_with_eos(ours)
    labels, probs = ours.predict(lines, k=2)
    assert len(labels) == len(probs) == len(lines)
    official_labels, _ = official.predict(lines, k=2)
    assert [list(row) for row in labels] == official_labels
    np.testing.assert_array_equal(np.array(probs),
                                  np.array(official_probabilities(official, lines, 2)))
    # tokens after the first '</s>' are ignored, as the official module ignores them
    assert ours.predict(["whale ship </s> the LORD"])[0] == ours.predict(["whale ship"])[0]
    assert list(ours.predict(lines[0], k=2)[0]) == official_labels[0]


@pytest.mark.parametrize("k, threshold", [(1, 0.0), (2, 0.0), (-1, 0.05), (3, 0.3)])
def test_predict_list_of_plain_lines_is_the_official_answer(classifier_path, k, threshold):
    # lines without '</s>' are encoded as one buffer; some have fewer answers than k
    ours, official = both(classifier_path)
    lines = [line for line in lines_with_eos(ours) if "</s>" not in line] + ["", "zzz qqq"]
    labels, probs = ours.predict(lines, k=k, threshold=threshold)
    official_labels, official_probs = official.predict(lines, k=k, threshold=threshold)
    assert labels == official_labels
    assert len({len(row) for row in labels}) > 1 or threshold == 0
    assert [p.dtype for p in probs] == [p.dtype for p in official_probs]
    expected = [[p for p, _ in official.f.predict(line + "\n", k, threshold, "strict")]
                for line in lines]  # its list form repeats the first probability (its bug)
    for mine, theirs in zip(probs, expected):
        np.testing.assert_array_equal(mine, np.array(theirs, dtype=np.float32))
    # bytes, or a line with a newline, go through the per-line path
    assert ours.predict([line.encode() for line in lines], k=k, threshold=threshold)[0] == labels
    with pytest.raises(ValueError, match="one line at a time"):
        ours.predict(lines[:3] + ["a\nb"])


def test_cli_predict_keeps_eos_as_a_line_break(classifier_path):
    # fastText's CLI reads a stream: there a '</s>' token ends one example and starts another
    official = official_load(classifier_path)
    code, out = run_cli("predict", classifier_path, "-", input=b"whale ship </s> the LORD God\n")
    assert code == 0
    expected = [official.predict([text])[0][0][0] for text in ("whale ship", "the LORD God")]
    assert out.decode().splitlines() == expected
    assert expected[0] != expected[1]


def test_test_file_keeps_eos_as_a_line_break(classifier_path, tmp_path):
    # test() reads a file as fastText reads a stream: each '</s>' starts another example
    ours, official = both(classifier_path)
    path = tmp_path / "eos.txt"
    path.write_text("__label__bible the LORD God </s> __label__melville whale ship\n"
                    "__label__austen sister </s>\n__label__shakespeare thou art\n")
    assert ours.test(path) == official.test(str(path))
    assert ours.test(path)[0] == 4
    assert ours.test(path, k=2) == pytest.approx(official.test(str(path), k=2))


@pytest.mark.parametrize("which", ["classifier_path", "skipgram_path"])
def test_sentence_vector_of_a_line_with_eos(which, request):
    # a classifier's sentence vector is its first example's (fastText's getLine), a
    # word-vector model's averages every token of the line, '</s>' included
    path = request.getfixturevalue(which)
    ours, official = both(path)
    for line in ["the whale </s> the LORD", "</s>", "sister </s>", "x </s> y </s> z"]:
        np.testing.assert_array_equal(ours.get_sentence_vector(line),
                                      official.get_sentence_vector(line))


# ------------------------------------------------------------------ vocabulary


def test_labels_of_a_word_vector_model_are_its_words(skipgram_path):
    ours, official = both(skipgram_path)
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
    ours, official = both(classifier_path)
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


# ------------------------------------------------------------- on_unicode_error

SEA = [b"whale", b"ship", b"sea", b"harpoon", b"captain", b"deck"]
BALL = [b"caf\xe9", b"\xff\xfe", b"na\xefve", b"dance", b"ball", b"sister"]  # 3 not UTF-8
BAD_LABEL = b"__label__b\xe4ll"


@pytest.fixture(scope="module")
def invalid_utf8_models(tmp_path_factory):
    """A classifier and a skipgram model whose vocabularies hold bytes that are not UTF-8."""
    folder = tmp_path_factory.mktemp("utf8")
    rng = random.Random(3)
    lines = []
    for i in range(400):
        label, words = (b"__label__sea", SEA) if i % 2 else (BAD_LABEL, BALL)
        lines.append(b" ".join([label] + [rng.choice(words) for _ in range(8)]))
    corpus = folder / "corpus.txt"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    paths = {}
    for name, train in (("classifier", lambda: embtk.train_supervised(
            corpus, epoch=5, lr=0.5, dim=8, thread=1, verbose=0)),
            ("skipgram", lambda: embtk.train_unsupervised(
                corpus, dim=8, epoch=2, minCount=1, bucket=10000, thread=1, verbose=0))):
        paths[name] = folder / f"{name}.bin"
        train().save_model(paths[name])
    return paths


def assert_same_under_each_handler(call, ours, official):
    """`call(model, ...)` raises UnicodeDecodeError by default and with 'strict' in both
    modules, and gives the same values with 'replace' and 'ignore' (returned by name)."""
    for model in (ours, official):
        with pytest.raises(UnicodeDecodeError):
            call(model)
        with pytest.raises(UnicodeDecodeError):
            call(model, on_unicode_error="strict")
    answers = {}
    for handler in ("replace", "ignore"):
        got = call(ours, on_unicode_error=handler)
        expected = call(official, on_unicode_error=handler)
        assert got == expected, handler
        answers[handler] = got
    return answers


def test_get_words_and_labels_honour_on_unicode_error(invalid_utf8_models):
    ours, official = both(invalid_utf8_models["classifier"])
    for name in ("get_words", "get_labels"):
        answers = assert_same_under_each_handler(
            lambda m, **kw: getattr(m, name)(**kw), ours, official)
        assert any("\ufffd" in text for text in answers["replace"])
        freq = getattr(ours, name)(include_freq=True, on_unicode_error="replace")
        official_freq = getattr(official, name)(include_freq=True, on_unicode_error="replace")
        assert freq[0] == official_freq[0]
        np.testing.assert_array_equal(freq[1], official_freq[1])
    assert "__label__b\ufffdll" in ours.get_labels(on_unicode_error="replace")
    # embtk's properties never raise: they replace (the official ones are 'strict')
    assert ours.words == ours.get_words(on_unicode_error="replace")
    assert ours.labels == ours.get_labels(on_unicode_error="replace")


def test_labels_of_word_vector_model_honour_on_unicode_error(invalid_utf8_models):
    ours, official = both(invalid_utf8_models["skipgram"])
    with pytest.raises(UnicodeDecodeError):
        ours.get_labels()
    # the official module drops the argument here (always 'strict'); embtk passes it on
    replaced = ours.get_labels(on_unicode_error="replace")
    assert replaced == official.get_words(on_unicode_error="replace")
    assert "caf\ufffd" in replaced


def test_neighbours_and_analogies_honour_on_unicode_error(invalid_utf8_models):
    ours, official = both(invalid_utf8_models["skipgram"])
    k = len(ours.words)  # every word: the ones that are not UTF-8 too
    for call in (lambda m, **kw: m.get_nearest_neighbors("dance", k=k, **kw),
                 lambda m, **kw: m.get_analogies("dance", "ball", "whale", k=k, **kw)):
        answers = assert_same_under_each_handler(call, ours, official)
        assert "caf\ufffd" in [word for _, word in answers["replace"]]
        assert "caf" in [word for _, word in answers["ignore"]]
    assert ours.get_nearest_neighbors("whale", k=1) == official.get_nearest_neighbors("whale", k=1)


def test_get_subwords_honours_on_unicode_error(invalid_utf8_models):
    ours, official = both(invalid_utf8_models["skipgram"])
    # a word given as bytes (the official module accepts them too) keeps its bytes
    answers = assert_same_under_each_handler(
        lambda m, **kw: (lambda r: (r[0], r[1].tolist()))(m.get_subwords(b"caf\xe9", **kw)),
        ours, official)
    names, ids = answers["replace"]
    assert names[0] == "caf\ufffd" and "<caf" in names and "af\ufffd>" in names
    assert ids[0] == ours.get_word_id(b"caf\xe9")


def test_predict_honours_on_unicode_error(invalid_utf8_models):
    ours, official = both(invalid_utf8_models["classifier"])
    lines = ["whale ship sea", "dance ball sister"]
    answers = assert_same_under_each_handler(
        lambda m, **kw: [list(row) for row in m.predict(lines, k=-1, **kw)[0]], ours, official)
    assert ["__label__b\ufffdll", "__label__sea"] in [sorted(row) for row in answers["replace"]]
    assert [list(ours.predict(lines[1], on_unicode_error="replace")[0])] == \
        official.predict(lines[1:], on_unicode_error="replace")[0] == [["__label__b\ufffdll"]]
    # only the labels returned are decoded: a valid top label never raises
    assert [list(ours.predict(lines[0])[0])] == official.predict(lines[:1])[0] == [["__label__sea"]]
    with pytest.raises(UnicodeDecodeError):
        ours.predict(lines[1])


def test_get_line_honours_on_unicode_error(invalid_utf8_models):
    ours = embtk.load_model(invalid_utf8_models["classifier"])
    # embtk also takes bytes (the official module takes str only, which is always UTF-8)
    line = b"caf\xe9 whale " + BAD_LABEL + b" __label__nope"
    with pytest.raises(UnicodeDecodeError):
        ours.get_line(line)
    with pytest.raises(UnicodeDecodeError):
        ours.get_line([b"whale", line], on_unicode_error="strict")
    assert ours.get_line(line, on_unicode_error="replace") == (
        ["caf\ufffd", "whale", "</s>"], ["__label__b\ufffdll"])
    assert ours.get_line([b"whale", line], on_unicode_error="ignore") == (
        [["whale", "</s>"], ["caf", "whale", "</s>"]], [[], ["__label__bll"]])


def test_cli_writes_words_that_are_not_utf8_as_their_bytes(invalid_utf8_models):
    # fastText's CLI writes the dictionary's bytes as they are
    path = invalid_utf8_models["skipgram"]
    code, out = run_cli("nn", path, 20, input=b"dance\n")
    assert code == 0
    assert b"\ncaf\xe9 " in out and b"\xff\xfe " in out and "\ufffd".encode() not in out
    code, out = run_cli("analogies", path, 20, input=b"dance ball whale\n")
    assert code == 0 and b"\nna\xefve " in out
    code, out = run_cli("print-ngrams", path, b"caf\xe9".decode("utf-8", "surrogateescape"))
    assert code == 0
    assert [line.split(b" ")[0] for line in out.splitlines()][:2] == [b"caf\xe9", b"<ca"]


# ------------------------------------------------------- return types and values


def test_predict_return_types(classifier_path):
    ours, official = both(classifier_path)
    lines = ["whale ship", "the LORD God", "sister"]
    labels, probs = ours.predict(lines, k=2)
    official_labels, official_probs = official.predict(lines, k=2)
    # a list of lists of labels and a list of float32 arrays
    assert type(labels) is list and all(type(row) is list for row in labels)
    assert labels == official_labels
    assert ours.predict([]) == official.predict([]) == ([], [])
    assert type(probs) is list and [p.dtype for p in probs] == [p.dtype for p in official_probs]
    # one string: a tuple of labels and a float64 array (the official module's single-string
    # form needs numpy < 2, so its pybind answer is compared)
    single_labels, single_probs = ours.predict(lines[0], k=2)
    pairs = official.f.predict(lines[0] + "\n", 2, 0.0, "strict")
    assert single_labels == tuple(label for _, label in pairs)
    assert single_probs.dtype == np.float64
    np.testing.assert_array_equal(single_probs, [p for p, _ in pairs])


def test_matrices_are_copies(skipgram_path):
    # the official module copies the matrices out: writing to them leaves the model as it was
    ours, official = both(skipgram_path)
    for model in (ours, official):
        before = model.get_word_vector("sister")
        neighbours = model.get_nearest_neighbors("sister", k=3)
        for matrix in (model.get_input_matrix(), model.get_output_matrix()):
            assert matrix.dtype == np.float32 and matrix.flags.writeable
            matrix[:] = 0
        np.testing.assert_array_equal(model.get_word_vector("sister"), before)
        assert model.get_nearest_neighbors("sister", k=3) == neighbours
        assert np.any(model.get_input_matrix() != 0) and np.any(model.get_output_matrix() != 0)
    np.testing.assert_array_equal(ours.get_input_matrix(), official.get_input_matrix())
    np.testing.assert_array_equal(ours.get_output_matrix(), official.get_output_matrix())


OPTION_ATTRIBUTES = ["lr", "dim", "ws", "epoch", "minCount", "minCountLabel", "minn", "maxn", "neg",
                     "wordNgrams", "loss", "bucket", "thread", "lrUpdateRate", "t", "label",
                     "verbose", "pretrainedVectors"]


@pytest.mark.parametrize("model", ["supervised", "cbow"])
def test_training_options_are_attributes_of_the_model(model):
    # the official module copies the options onto a model it trains (model.dim, ...)
    fasttext = official_module()
    options = dict(epoch=1, dim=4, thread=1, verbose=0, bucket=1000, lr=0.2, t=1e-3)
    if model == "supervised":
        official = fasttext.train_supervised(str(TRAIN), wordNgrams=2, **options)
        ours = embtk.train_supervised(TRAIN, wordNgrams=2, **options)
    else:
        official = fasttext.train_unsupervised(str(CORPUS), model=model, minCount=3, **options)
        ours = embtk.train_unsupervised(CORPUS, model=model, minCount=3, **options)
    got = {name: getattr(ours, name) for name in OPTION_ATTRIBUTES}
    expected = {name: getattr(official, name) for name in OPTION_ATTRIBUTES}
    expected["loss"] = expected["loss"].name  # an enum there, its name in embtk
    assert got == pytest.approx(expected)
    assert got["dim"] == 4 and got["bucket"] == 1000
    with pytest.raises(AttributeError):
        ours.no_such_option


# --------------------------------------------------------------- module level


def test_module_constants():
    fasttext = official_module()
    assert (embtk.EOS, embtk.BOW, embtk.EOW) == (fasttext.EOS, fasttext.BOW, fasttext.EOW) \
        == ("</s>", "<", ">")
    assert {"EOS", "BOW", "EOW"} <= set(embtk.__all__)


@pytest.mark.parametrize("options, message", [
    ({"no_such": 1}, "unexpected keyword argument 'no_such'"),
    ({"min_count": 1, "minCount": 2}, "multiple values for argument 'minCount'"),
    ({"model": "cbow"}, "unexpected keyword argument 'model'"),
])
def test_train_supervised_refuses_bad_keywords_with_type_error(options, message):
    fasttext = official_module()
    for train in (fasttext.train_supervised, embtk.train_supervised):
        with pytest.raises(TypeError, match=message):
            train(str(TRAIN), epoch=1, dim=2, thread=1, verbose=0, **options)
    with pytest.raises(TypeError, match="unexpected keyword argument 'no_such'"):
        embtk.train_unsupervised(str(CORPUS), no_such=1)


# -------------------------------------------------------------- tokens and rows


@pytest.mark.parametrize("text", [
    "the sister\x00whale", "a\x0bb\x0cc\rd\te  f", "\x00__label__austen\x00x\x00", "\x00a\rb\x0b",
    "a\xa0b", "a\u2003b\x85c", "x \x1c y\x85z",  # \xa0 \u2003 \x85 \x1c are not separators
    "", "a b\n c", " x\t\ty\n"])  # several lines: tokenize only (get_line takes one)
def test_separators_split_as_in_fasttext(classifier_path, text):
    """fastText's separators (space, tab, \\v, \\f, \\r, NUL; newline ends a line) and
    no others, in embtk.tokenize and in a model's get_line."""
    assert embtk.tokenize(text) == official_module().tokenize(text)
    if "\n" not in text:
        ours, official = both(classifier_path)
        assert ours.get_line(text) == official.get_line(text)
        if text == "the sister\x00whale":  # by hand too, not only as the official module
            assert ours.get_line(text) == (["the", "sister", "whale", "</s>"], [])


def test_word_vector_of_a_label_has_no_row_outside_the_matrix(classifier_path):
    # a label's entry lists its own id as its row, past the words: in the hash buckets
    # when the model has some (as fastText reads it), outside the matrix when it has none
    ours, official = both(classifier_path)
    for label in ours.labels:
        np.testing.assert_array_equal(ours.get_word_vector(label), official.get_word_vector(label))
    bucketless = embtk.train_supervised(TRAIN, epoch=1, dim=8, thread=1, verbose=0)
    assert bucketless.args.bucket == 0
    assert bucketless.get_input_matrix().shape[0] == len(bucketless.words)
    for label in bucketless.labels:
        np.testing.assert_array_equal(bucketless.get_word_vector(label), np.zeros(8, np.float32))
    assert np.any(bucketless.get_word_vector("the") != 0)

# ----------------------------------------------------------------- set_matrices


@pytest.mark.parametrize("which", ["classifier_path", "skipgram_path"])
def test_set_matrices(which, request, tmp_path):
    path = request.getfixturevalue(which)
    ours, official = both(path)
    rng = np.random.default_rng(5)
    rows_in, rows_out = ours.get_input_matrix().shape[0], ours.get_output_matrix().shape[0]
    new_in = rng.standard_normal((rows_in, 5))  # float64 and another dim: both are converted
    new_out = rng.standard_normal((rows_out, 5))
    neighbours = ours.get_nearest_neighbors("sister", k=5)  # fills embtk's caches first
    for model in (ours, official):
        model.set_matrices(new_in, new_out)
        assert model.get_dimension() == 5
        np.testing.assert_array_equal(model.get_input_matrix(), new_in.astype(np.float32))
        np.testing.assert_array_equal(model.get_output_matrix(), new_out.astype(np.float32))
    new_in[:] = 0  # the model keeps its own copy
    assert ours.get_nearest_neighbors("sister", k=5) != neighbours
    assert ours.get_nearest_neighbors("sister", k=5) == \
        official.get_nearest_neighbors("sister", k=5)
    for word in ["sister", "whale", "zzzq"]:
        np.testing.assert_allclose(ours.get_word_vector(word), official.get_word_vector(word),
                                   rtol=1e-6)
    line = "the sister and the whale"
    np.testing.assert_allclose(ours.get_sentence_vector(line), official.get_sentence_vector(line),
                               rtol=1e-5, atol=1e-6)
    if ours.args.supervised:
        labels, probs = ours.predict([line], k=-1)
        assert labels == official.predict([line], k=-1)[0]
        np.testing.assert_allclose(probs[0], official_probabilities(official, [line], -1)[0],
                                   rtol=1e-5)
    # saved, the new matrices load in both modules
    ours.save_model(tmp_path / "set.bin")
    again, official_again = both(tmp_path / "set.bin")
    np.testing.assert_array_equal(again.get_input_matrix(), official.get_input_matrix())
    np.testing.assert_array_equal(official_again.get_output_matrix(), official.get_output_matrix())
    assert again.dim == official_again.get_dimension() == 5


def test_set_matrices_checks_shapes(classifier_path):
    ours = embtk.load_model(classifier_path)
    rows_in, rows_out = ours.get_input_matrix().shape[0], ours.get_output_matrix().shape[0]
    for new_in, new_out in [(np.zeros((rows_in - 1, 8)), np.zeros((rows_out, 8))),
                            (np.zeros((rows_in, 8)), np.zeros((rows_out + 1, 8))),
                            (np.zeros((rows_in, 8)), np.zeros((rows_out, 7))),
                            (np.zeros(rows_in), np.zeros((rows_out, 8)))]:
        with pytest.raises(ValueError):
            ours.set_matrices(new_in, new_out)
    assert ours.get_dimension() == 8
