"""Quantized models (.ftz): both tools read each other's files and predict the same.

The official `fasttext` package is a test extra; the tests that need it are skipped
without it.
"""

import random
from pathlib import Path

import numpy as np
import pytest

import embtk
from embtk.errors import EmbtkError
from embtk.fileformat import load_bin
from embtk.quantmatrix import KSUB, ProductQuantizer, quantize_matrix

from conftest import assert_one_line_error, run

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"


def sample_lines(n=300):
    return [line.split(" ", 1)[1] for line in TEST.read_text().splitlines()[:n]]


def official_predictions(model, lines, k):
    """One call per line: the official list form repeats the first probability (a bug)."""
    out = []
    for line in lines:
        pairs = model.f.predict(line + "\n", k, 0.0, "strict")
        out.append((tuple(label for _, label in pairs), [p for p, _ in pairs]))
    return out


def assert_same_predictions(official, ours, lines, k=3):
    for line, (labels, probs) in zip(lines, official_predictions(official, lines, k)):
        got_labels, got_probs = ours.predict(line, k=k)
        assert got_labels == labels
        assert np.array_equal(got_probs.astype(np.float32), np.array(probs, dtype=np.float32))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("quant")


@pytest.fixture(scope="module")
def classifier_bin(workdir, official_fasttext):
    """An official classifier with word bigrams, so that pruning keeps hash buckets."""
    path = workdir / "sup.bin"
    model = official_fasttext.train_supervised(str(TRAIN), epoch=5, lr=0.5, dim=20,
                                               wordNgrams=2, bucket=20000, thread=1, verbose=0)
    model.save_model(str(path))
    return path


@pytest.fixture(scope="module")
def many_labels(workdir, official_fasttext):
    """300 labels, enough to quantize the output matrix (-qout needs 256 rows)."""
    rng = random.Random(0)
    path = workdir / "many.txt"
    with open(path, "w") as f:
        for _ in range(3000):
            label = rng.randrange(300)
            words = [f"w{(label * 7 + rng.randrange(20)) % 2000}" for _ in range(8)]
            f.write(f"__label__{label} " + " ".join(words) + "\n")
    model = official_fasttext.train_supervised(str(path), epoch=3, dim=12, thread=1, verbose=0)
    model.save_model(str(workdir / "many.bin"))
    lines = [line.split(" ", 1)[1] for line in path.read_text().splitlines()[:200]]
    return workdir / "many.bin", lines


@pytest.mark.parametrize("options", [
    dict(cutoff=1500, retrain=True, qnorm=True, epoch=2),
    pytest.param(dict(dsub=3), marks=pytest.mark.slow),  # no cutoff: k-means on every row
    dict(cutoff=300, qnorm=False, dsub=4),
])
def test_official_ftz_predicts_the_same_in_embtk(classifier_bin, workdir, options,
                                                  official_fasttext):
    official = official_fasttext.load_model(str(classifier_bin))
    official.quantize(input=str(TRAIN), thread=1, verbose=0, **options)
    path = workdir / "official.ftz"
    official.save_model(str(path))
    ours = embtk.load_model(path)
    assert ours.is_quantized()
    assert ours.words == official.words and ours.labels == official.labels
    assert_same_predictions(official, ours, sample_lines())
    for word in ["the", "whale", "Elinor", "unseen"]:
        assert np.array_equal(ours.get_word_vector(word), official.get_word_vector(word))
    # re-saved by embtk: the same bytes
    again = workdir / "resaved.ftz"
    ours.save_model(again)
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("qnorm", [False, True])
def test_quantized_output_matrix_both_ways(many_labels, workdir, qnorm, official_fasttext):
    path, lines = many_labels
    official = official_fasttext.load_model(str(path))
    official.quantize(qout=True, qnorm=qnorm)
    official.save_model(str(workdir / "official_qout.ftz"))
    assert_same_predictions(official, embtk.load_model(workdir / "official_qout.ftz"), lines, k=5)

    ours = embtk.load_model(path)
    ours.quantize(qout=True, qnorm=qnorm)
    ours.save_model(workdir / "ours_qout.ftz")
    contents = load_bin(workdir / "ours_qout.ftz")
    assert contents.quant_input and contents.quant_output
    assert contents.output.qnorm == qnorm
    back = official_fasttext.load_model(str(workdir / "ours_qout.ftz"))
    assert back.is_quantized()
    assert_same_predictions(back, embtk.load_model(workdir / "ours_qout.ftz"), lines, k=5)
    assert_same_predictions(back, ours, lines, k=5)


def test_embtk_ftz_loads_in_official_and_keeps_accuracy(classifier_bin, tmp_path,
                                                        official_fasttext):
    ours = embtk.load_model(classifier_bin)
    dense_precision = ours.test(TEST)[1]
    ours.quantize(input=str(TRAIN), cutoff=2000, retrain=True, qnorm=True, thread=1, verbose=0,
                  epoch=2)
    path = tmp_path / "ours.ftz"
    ours.save_model(path)
    official = official_fasttext.load_model(str(path))
    assert official.is_quantized()
    assert official.words == ours.words
    assert_same_predictions(official, ours, sample_lines())
    assert official.test(str(TEST)) == pytest.approx(ours.test(TEST))
    assert ours.test(TEST)[1] > dense_precision - 0.05
    assert path.stat().st_size < classifier_bin.stat().st_size / 20


def test_pruning_keeps_eos_and_matches_official_selection(classifier_bin, workdir,
                                                          official_fasttext):
    official = official_fasttext.load_model(str(classifier_bin))
    official.quantize(cutoff=400)
    official.save_model(str(workdir / "pruned_official.ftz"))
    ours = embtk.load_model(classifier_bin)
    ours.quantize(cutoff=400)
    assert "</s>" in ours.words
    theirs = load_bin(workdir / "pruned_official.ftz")
    assert ours.words == official.words  # same rows kept: same norms, same order
    assert ours.dictionary.pruneidx is not None
    assert sorted(map(tuple, ours.dictionary.pruneidx)) == sorted(map(tuple, theirs.pruneidx))
    assert len(ours.words) + len(ours.dictionary.pruneidx) == 400


def test_pruning_keeps_eos_even_with_the_smallest_norm(classifier_bin):
    ours = embtk.load_model(classifier_bin)
    eos = ours.get_word_id("</s>")
    ours.input_matrix = np.array(ours.input_matrix)
    ours.input_matrix[eos] = 0.0
    ours.quantize(cutoff=300)
    assert "</s>" in ours.words
    assert len(ours.words) + len(ours.dictionary.pruneidx) == 300


def test_product_quantizer_layout_and_reconstruction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 7)).astype(np.float32)
    q = quantize_matrix(x, dsub=3, qnorm=False)
    assert (q.pq.nsubq, q.pq.dsub, q.pq.lastdsub) == (3, 3, 1)
    assert q.pq.centroids.shape == (7 * KSUB,) and q.codes.shape == (600, 3)
    decoded = q.decode()
    # the last sub-vector has one column: 256 centroids for 600 values, nearly exact
    error = np.abs(decoded[:, 6] - x[:, 6])
    assert error.mean() < 0.01 and error.max() < 0.15
    assert np.mean((decoded - x) ** 2) < 0.35 * np.mean(x ** 2)
    assert ProductQuantizer.shape_for(50, 2) == (25, 2)
    with_norms = quantize_matrix(x * 10, dsub=2, qnorm=True)
    # 600 norms on 256 levels: close on average, a few percent at the sparse extremes
    relative = np.abs(with_norms.norms() / np.linalg.norm(x * 10, axis=1) - 1)
    assert relative.mean() < 0.005 and np.quantile(relative, 0.99) < 0.02


def test_quantizing_is_deterministic(classifier_bin):
    a, b = embtk.load_model(classifier_bin), embtk.load_model(classifier_bin)
    a.quantize(cutoff=500, qnorm=True)
    b.quantize(cutoff=500, qnorm=True)
    assert np.array_equal(a.input_matrix, b.input_matrix)


def test_cli_quantize_and_commands_on_ftz(classifier_bin, tmp_path, official_fasttext):
    prefix = tmp_path / "m"
    (tmp_path / "m.bin").write_bytes(classifier_bin.read_bytes())
    code, out, err = run("quantize", "-input", str(TRAIN), "-output", str(prefix), "-cutoff", "1000",
                         "-retrain", "-qnorm", "-epoch", "1", "-thread", "1", "-verbose", "0")
    assert code == 0, err
    ftz = str(prefix) + ".ftz"
    official = official_fasttext.load_model(ftz)
    code, out, _ = run("predict-prob", ftz, str(TEST), "2")
    assert code == 0 and out.count(b"\n") == 800
    code, out, _ = run("test", ftz, str(TEST))
    assert out.splitlines()[0] == b"N\t800"
    code, out, _ = run("dump", ftz, "dict")
    assert out.splitlines()[0] == str(len(official.words) + len(official.labels)).encode()
    code, out, _ = run("print-word-vectors", ftz, input=b"the\n")
    got = np.array(out.split()[1:], dtype=np.float32)
    assert np.allclose(got, official.get_word_vector("the"), atol=1e-4)
    for what in ("input", "output"):
        code, _, err = run("dump", ftz, what)
        assert_one_line_error(code, err)


@pytest.mark.slow
def test_bad_inputs_are_one_line_errors(classifier_bin, tmp_path, official_fasttext):
    sg = tmp_path / "sg.bin"
    official_fasttext.train_unsupervised(str(DATA / "austen_small.txt"), dim=8, epoch=1,
                                         minCount=3, bucket=1000, thread=1,
                                         verbose=0).save_model(str(sg))
    code, out, err = run("quantize", "-output", str(tmp_path / "sg"))
    assert_one_line_error(code, err)
    assert "supervised" in err and not (tmp_path / "sg.ftz").exists()
    (tmp_path / "m.bin").write_bytes(classifier_bin.read_bytes())
    for options, words in ((["-cutoff", "100"], "256"), (["-qout"], "256"),
                           (["-dsub", "0"], "dsub"), (["-cutoff", "500", "-retrain"], "-input")):
        code, out, err = run("quantize", "-output", str(tmp_path / "m"), *options)
        assert_one_line_error(code, err)
        assert words in err
        assert not (tmp_path / "m.ftz").exists()
    ours = embtk.load_model(classifier_bin)
    ours.quantize()
    with pytest.raises(EmbtkError, match="already quantized"):
        ours.quantize()
    with pytest.raises(EmbtkError, match="quantized"):
        ours.get_input_matrix()
