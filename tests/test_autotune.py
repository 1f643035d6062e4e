"""Autotune: option search within a time budget, scored as fastText's Meter scores."""

from pathlib import Path

import pytest

import embtk
from embtk.args import Args
from embtk.autotune import SearchStrategy, cutoff_for_size, validation_score
from embtk.errors import EmbtkError

from conftest import assert_one_line_error, run

DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    path = tmp_path_factory.mktemp("autotune") / "sup.bin"
    model = embtk.train_supervised(str(TRAIN), epoch=5, lr=0.5, dim=10, wordNgrams=2,
                                   bucket=20000, thread=1, verbose=0)
    model.save_model(path)
    return model, path


@pytest.fixture(scope="module")
def warm():
    """The kernels a search runs (training with each loss the tests ask for, prediction,
    quantizing) compiled or loaded before any budget starts: a cold numba cache on a busy
    machine can otherwise eat a budget of a few seconds before the first trial ends."""
    for loss in ("softmax", "hs"):
        model = embtk.train_supervised(str(TRAIN), dim=2, epoch=1, loss=loss, thread=1,
                                       verbose=0)
        model.test(str(TEST))
    model.quantize(dsub=2, cutoff=300, qnorm=True)
    model.test(str(TEST))


@pytest.mark.parametrize("text, expected", [
    ("f1", ("f1", 0.0, "")),
    ("f1:__label__austen", ("f1", 0.0, "__label__austen")),
    ("precisionAtRecall:30", ("precisionAtRecall", 0.3, "")),
    ("recallAtPrecision:95.5:__label__bible", ("recallAtPrecision", 0.955, "__label__bible")),
])
def test_metric_parsing(text, expected):
    name, value, label = Args.for_model("supervised", autotuneMetric=text).autotune_metric()
    assert (name, label) == (expected[0], expected[2])
    assert value == pytest.approx(expected[1])


@pytest.mark.parametrize("text", ["f2", "f1:", "precisionAtRecall:", "precisionAtRecall:x",
                                  "recallAtPrecision:30:", "accuracy"])
def test_bad_metric_is_rejected(text):
    with pytest.raises(EmbtkError, match="autotune-metric"):
        Args.for_model("supervised", autotuneMetric=text).validate()


@pytest.mark.parametrize("text, size", [("", None), ("2M", 2_000_000), ("500k", 500_000),
                                        ("1G", 10 ** 9), ("12345", 12345), (3000, 3000)])
def test_model_size_parsing(text, size):
    assert Args.for_model("supervised", autotuneModelSize=text).validate().autotune_model_size() == size


def test_scores_match_the_official_meter(classifier):
    fasttext = pytest.importorskip("fasttext")
    model, path = classifier
    meter = fasttext.load_model(str(path)).get_meter(str(TEST), 2)
    data = TEST.read_bytes()
    for recall in (0.2, 0.5, 0.9):
        ours = validation_score(model, data, 2, ("precisionAtRecall", recall, ""))
        assert ours == pytest.approx(meter.precision_at_recall(recall))
        ours = validation_score(model, data, 2, ("precisionAtRecall", recall, "__label__austen"))
        assert ours == pytest.approx(meter.precision_at_recall(recall, "__label__austen"))
    for precision in (0.5, 0.8):
        ours = validation_score(model, data, 2, ("recallAtPrecision", precision, "__label__bible"))
        assert ours == pytest.approx(meter.recall_at_precision(precision, "__label__bible"))
        ours = validation_score(model, data, 2, ("recallAtPrecision", precision, ""))
        assert ours == pytest.approx(meter.recall_at_precision(precision))


def test_f1_scores_follow_test_and_test_label(classifier):
    model, _ = classifier
    data = TEST.read_bytes()
    _, p, r = model.test(TEST, k=1)
    assert validation_score(model, data, 1, ("f1", 0.0, "")) == pytest.approx(2 * p * r / (p + r))
    per_label = model.test_label(TEST)["__label__melville"]["f1score"]
    assert validation_score(model, data, 1, ("f1", 0.0, "__label__melville")) == pytest.approx(per_label)


def test_strategy_keeps_manual_options_and_bounds():
    base = Args.for_model("supervised", dim=7, epoch=3, autotuneValidationFile="v")
    strategy = SearchStrategy(base, seed=0)
    first = strategy.ask(0.0)
    assert (first.dim, first.epoch, first.lr) == (7, 3, 0.1)
    for i in range(200):
        a = strategy.ask(i / 200)
        assert a.dim == 7 and a.epoch == 3
        assert 0.01 <= a.lr <= 5.0 and 1 <= a.wordNgrams <= 5 and a.dsub in (2, 4, 8, 16)
        assert a.minn in (0, 2, 3) and a.maxn == (0 if a.minn == 0 else a.minn + 3)
        assert a.loss == "softmax"
        assert a.bucket == 0 or 10000 <= a.bucket <= 10000000


def test_cutoff_for_size_matches_the_file_it_produces(classifier, tmp_path):
    model, path = classifier
    args = Args.for_model("supervised", dsub=2, qnorm=True)
    size = 60_000
    cutoff = cutoff_for_size(model, args, size)
    quantized = embtk.load_model(path)
    quantized.quantize(cutoff=cutoff, qnorm=True, dsub=2)
    quantized.save_model(tmp_path / "m.ftz")
    assert (tmp_path / "m.ftz").stat().st_size <= size


@pytest.mark.slow
def test_autotune_respects_explicit_options(warm, tmp_path):
    model = embtk.train_supervised(str(TRAIN), autotuneValidationFile=str(TEST), autotuneDuration=4,
                                   dim=6, loss="hs", thread=1, verbose=0)
    assert model.args.dim == 6 and model.args.loss == "hs"
    assert model.get_dimension() == 6
    assert model.test(TEST)[1] > 0.5


@pytest.mark.slow
def test_autotune_cli_with_model_size_writes_ftz(warm, tmp_path):
    out = tmp_path / "m"
    code, _, err = run("supervised", "-input", TRAIN, "-output", out, "-autotune-validation", TEST,
                       "-autotune-duration", "5", "-autotune-modelsize", "300k", "-dim", "8",
                       "-epoch", "3", "-thread", "1", "-verbose", "0")
    assert code == 0, err
    assert not (tmp_path / "m.bin").exists()
    ftz = tmp_path / "m.ftz"
    assert ftz.stat().st_size <= 300_000 and (tmp_path / "m.vec").exists()
    assert embtk.load_model(ftz).is_quantized()


@pytest.mark.parametrize("options, words", [
    (["-autotune-metric", "accuracy"], "unknown -autotune-metric"),
    (["-autotune-metric", "f1:__label__nobody"], "not in the training data"),
    pytest.param(["-autotune-modelsize", "1k"], "cannot reach -autotune-modelsize",
                 marks=pytest.mark.slow),  # known after the search: its whole budget
    (["-autotune-modelsize", "2X"], "cannot parse -autotune-modelsize"),
    (["-autotune-duration", "0"], "autotune-duration"),
])
def test_bad_autotune_input_is_one_line_error(warm, tmp_path, options, words):
    out = tmp_path / "m"
    code, _, err = run("supervised", "-input", TRAIN, "-output", out, "-autotune-validation", TEST,
                       "-autotune-duration", "2", "-dim", "4", "-epoch", "1", "-thread", "1",
                       "-verbose", "0", *options)
    assert_one_line_error(code, err)
    assert words in err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_every_trial_diverging_is_reported(warm):
    with pytest.raises(EmbtkError, match="diverged"):
        embtk.train_supervised(str(TRAIN), autotuneValidationFile=str(TEST), autotuneDuration=3,
                               lr=1e30, dim=4, epoch=1, thread=1, verbose=0)


def test_autotune_is_for_classifiers_only():
    with pytest.raises(EmbtkError, match="supervised"):
        embtk.train_unsupervised(str(DATA / "austen_small.txt"), autotuneValidationFile=str(TEST))
    with pytest.raises(EmbtkError, match="validation file"):
        embtk.train_supervised(str(TRAIN), autotuneValidationFile=str(DATA / "missing.txt"))
