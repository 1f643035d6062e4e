"""-batch N: the batched skipgram and cbow steps against a plain numpy reference of the same
step, reproducibility with -thread 1, -batch 0 left as it was, and the refusals."""

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run

import embtk
from embtk.errors import EmbtkError
from embtk.losses import _LOG, _SIGMOID, LOG_TABLE_SIZE, MAX_SIGMOID, SIGMOID_TABLE_SIZE
from embtk.kernels import Model, WordTables
from embtk.losses import NS, State, make_loss_params
from embtk.minibatch import Batched, cbow_step, skipgram_step

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "austen_small.txt"
SMALL = dict(dim=10, epoch=1, minCount=3, bucket=2000, minn=3, maxn=4, thread=1, verbose=0)


# ------------------------------------------------------------- the numpy reference

def table_sigmoid(x):
    """fastText's table sigmoid, as numpy arithmetic."""
    x = np.float32(x)
    if x < -MAX_SIGMOID:
        return np.float32(0.0)
    if x > MAX_SIGMOID:
        return np.float32(1.0)
    i = int((x + np.float32(MAX_SIGMOID)) * np.float32(SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2))
    return _SIGMOID[min(max(i, 0), SIGMOID_TABLE_SIZE)]


def table_log(x):
    return np.float32(0.0) if x > 1.0 else _LOG[min(max(int(x * LOG_TABLE_SIZE), 0),
                                                    LOG_TABLE_SIZE)]


def logistic_targets(wo, h, targets, labels, weights, lr):
    """The ns update of one hidden vector against output rows `targets`, as matrices:
    scores = O h, alpha = lr w (label - sigmoid), grad = alpha O, O += alpha h^T."""
    rows = wo[targets]
    scores = rows @ h
    probs = np.array([table_sigmoid(s) for s in scores], dtype=np.float32)
    alpha = (lr * weights * (labels - probs)).astype(np.float32)
    grad = alpha @ rows
    np.add.at(wo, targets, np.outer(alpha, h))
    losses = [-table_log(p if label else 1.0 - p) for p, label in zip(probs, labels)]
    return grad, float(np.dot(weights, losses))


def reference_skipgram(wi, wo, subwords, line, first, last, boundaries, negatives, neg, lr):
    """Each center: one hidden vector; its contexts (weight 1) and every shared negative
    (weight neg / len(negatives) for each context whose word it is not) as matrices."""
    share = neg / len(negatives)
    loss, examples = 0.0, 0
    for i in range(first, last):
        b = boundaries[i - first]
        contexts = [line[c] for c in range(max(0, i - b), min(len(line), i + b + 1)) if c != i]
        if not contexts:
            continue
        rows = subwords[line[i]]
        h = wi[rows].mean(axis=0)
        weights = [share * (len(contexts) - contexts.count(n)) for n in negatives]
        negs = [n for n, w in zip(negatives, weights) if w > 0]
        targets = np.array(contexts + negs)
        labels = np.array([1.0] * len(contexts) + [0.0] * len(negs), dtype=np.float32)
        w = np.array([1.0] * len(contexts) + [w for w in weights if w > 0], dtype=np.float32)
        grad, step_loss = logistic_targets(wo, h, targets, labels, w, lr)
        np.add.at(wi, rows, grad)
        loss += step_loss
        examples += len(contexts)
    return loss, examples


def reference_cbow(wi, wo, subwords, line, first, last, boundaries, negatives, neg, lr):
    """Every window's hidden vector from the input rows as they were when the batch began;
    each window's gradient goes to the rows of its context words at the end."""
    start_wi = wi.copy()
    loss, examples = 0.0, 0
    pending = []
    for i in range(first, last):
        b = boundaries[i - first]
        context = [c for c in range(max(0, i - b), min(len(line), i + b + 1)) if c != i]
        rows = np.concatenate([subwords[line[c]] for c in context]) if context else []
        if len(rows) == 0:
            continue
        h = start_wi[rows].mean(axis=0)
        negs = [n for n in negatives if n != line[i]]
        targets = np.array([line[i]] + negs)
        labels = np.array([1.0] + [0.0] * len(negs), dtype=np.float32)
        weights = np.array([1.0] + [neg / len(negatives)] * len(negs), dtype=np.float32)
        grad, step_loss = logistic_targets(wo, h, targets, labels, weights, lr)
        pending.append((rows, grad))
        loss += step_loss
        examples += 1
    for rows, grad in pending:
        np.add.at(wi, rows, grad)
    return loss, examples


# ------------------------------------------------------------- tiny data

def step_arguments(wi, wo, offsets, ids, boundaries, negatives, neg, span=1):
    """state, model, words and batch for the step kernels (ws 5, the boundaries of centers
    first..last - 1, `span` positions of row sums for cbow)."""
    dim, n = wi.shape[1], 2 * 5 + len(negatives)
    state = State(0, np.ones(1, np.uint64), np.zeros(dim, np.float32), np.zeros(dim, np.float32),
                  np.zeros(wo.shape[0], np.float32))
    params = make_loss_params(NS, np.ones(wo.shape[0]), neg)
    words = WordTables(np.int32(0), np.ones(wo.shape[0], np.float32), offsets, ids)
    batch = Batched(span > 1, 5, neg, np.asarray(boundaries, np.int64),
                    np.asarray(negatives, np.int64), np.zeros(n, np.int64),
                    np.zeros(n, np.float32), np.zeros(n, np.float32),
                    np.zeros((span, dim), np.float32), np.zeros((span, dim), np.float32))
    return state, Model(wi, wo, params), words, batch


def tiny_problem(seed):
    """12 words with 2-4 input rows each (some shared, as hashed n-grams are), 30 input
    rows, a line of 20 words with repeats, random windows and 4 negatives, one of them a
    word of the line."""
    rng = np.random.default_rng(seed)
    nwords, nrows, dim = 12, 30, 8
    subwords = [np.array([w] + list(rng.choice(np.arange(nwords, nrows), rng.integers(1, 4),
                                               replace=False)), dtype=np.int32)
                for w in range(nwords)]
    offsets = np.zeros(nwords + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(s) for s in subwords])
    ids = np.concatenate(subwords).astype(np.int32)
    wi = rng.uniform(-0.5, 0.5, (nrows, dim)).astype(np.float32)
    wo = rng.uniform(-0.5, 0.5, (nwords, dim)).astype(np.float32)
    line = rng.integers(0, nwords, 20).astype(np.int32)
    negatives = np.array(list(rng.integers(0, nwords, 3)) + [line[7]], dtype=np.int64)
    return subwords, offsets, ids, wi, wo, line, negatives


@pytest.mark.parametrize("first, last", [(0, 8), (5, 13), (12, 20), (0, 20)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_skipgram_step_equals_the_numpy_reference(seed, first, last):
    subwords, offsets, ids, wi, wo, line, negatives = tiny_problem(seed)
    boundaries = np.random.default_rng(seed + 10).integers(1, 6, last - first)
    lr = 0.05
    want_wi, want_wo = wi.copy(), wo.copy()
    want = reference_skipgram(want_wi, want_wo, subwords, list(line), first, last,
                              boundaries, list(negatives), 5, np.float32(lr))
    got = skipgram_step(*step_arguments(wi, wo, offsets, ids, boundaries, negatives, 5), line,
                        len(line), first, lr)
    assert got[1] == want[1]
    assert got[0] == pytest.approx(want[0], rel=1e-4)
    np.testing.assert_allclose(wo, want_wo, atol=2e-6)
    np.testing.assert_allclose(wi, want_wi, atol=2e-6)
    assert not np.allclose(wi, tiny_problem(seed)[3])  # the step did move the input rows


@pytest.mark.parametrize("first, last", [(0, 8), (5, 13), (12, 20), (0, 20)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cbow_step_equals_the_numpy_reference(seed, first, last):
    subwords, offsets, ids, wi, wo, line, negatives = tiny_problem(seed)
    boundaries = np.random.default_rng(seed + 10).integers(1, 6, last - first)
    lr = 0.05
    want_wi, want_wo = wi.copy(), wo.copy()
    want = reference_cbow(want_wi, want_wo, subwords, list(line), first, last, boundaries,
                          list(negatives), 5, np.float32(lr))
    span = last - first + 2 * 5
    got = cbow_step(*step_arguments(wi, wo, offsets, ids, boundaries, negatives, 5, span), line,
                    len(line), first, lr)
    assert got[1] == want[1]
    assert got[0] == pytest.approx(want[0], rel=1e-4)
    np.testing.assert_allclose(wo, want_wo, atol=2e-6)
    np.testing.assert_allclose(wi, want_wi, atol=2e-6)


def test_a_shared_negative_is_weighted_by_the_pairs_it_stands_for():
    # one center, three contexts; negative 5 is one of them: it counts for the other two
    subwords, offsets, ids, wi, wo, line, _ = tiny_problem(0)
    line = np.array([1, 5, 2, 3], dtype=np.int32)
    start, start_wi = wo.copy(), wi.copy()
    h = wi[subwords[2]].mean(axis=0)
    skipgram_step(*step_arguments(wi, wo, offsets, ids, [2], [5, 7], 2), line, 4, 2, 0.05)

    def alpha(row, label, weight):
        return 0.05 * weight * (label - table_sigmoid(start[row] @ h))

    # 5 is a positive (weight 1) and a negative for the 2 other contexts
    alphas = {1: alpha(1, 1, 1), 3: alpha(3, 1, 1), 7: alpha(7, 0, 3),
              5: alpha(5, 1, 1) + alpha(5, 0, 2)}
    for row, a in alphas.items():
        np.testing.assert_allclose(wo[row], start[row] + a * h, atol=1e-6)
    grad = (alpha(1, 1, 1) * start[1] + alpha(3, 1, 1) * start[3] + alpha(7, 0, 3) * start[7]
            + (alpha(5, 1, 1) + alpha(5, 0, 2)) * start[5])
    for row in subwords[2]:
        np.testing.assert_allclose(wi[row], start_wi[row] + grad, atol=1e-6)


# ------------------------------------------------------------- whole runs

@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_thread_1_and_a_seed_reproduce_a_batched_run(model):
    runs = [embtk.train_unsupervised(str(CORPUS), model=model, batch=8, seed=3, **SMALL)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].get_input_matrix(), runs[1].get_input_matrix())
    np.testing.assert_array_equal(runs[0].get_output_matrix(), runs[1].get_output_matrix())
    other = embtk.train_unsupervised(str(CORPUS), model=model, batch=8, seed=4, **SMALL)
    assert not np.array_equal(runs[0].get_input_matrix(), other.get_input_matrix())
    default = embtk.train_unsupervised(str(CORPUS), model=model, seed=3, **SMALL)
    assert not np.array_equal(runs[0].get_input_matrix(), default.get_input_matrix())


def test_batch_0_is_the_default_algorithm(tmp_path):
    common = ["skipgram", "-input", CORPUS, "-dim", 10, "-epoch", 1, "-minCount", 3, "-bucket",
              2000, "-thread", 1, "-seed", 1, "-verbose", 0]
    assert run(*common, "-output", tmp_path / "plain")[0] == 0
    assert run(*common, "-output", tmp_path / "zero", "-batch", 0)[0] == 0
    assert (tmp_path / "plain.bin").read_bytes() == (tmp_path / "zero.bin").read_bytes()


def test_a_batched_model_is_an_ordinary_model(tmp_path, official_fasttext):
    model = embtk.train_unsupervised(str(CORPUS), batch=16, seed=1,
                                     **dict(SMALL, dim=30, epoch=5))
    path = tmp_path / "batched.bin"
    model.save_model(path)
    official = official_fasttext.load_model(str(path))
    np.testing.assert_array_equal(official.get_input_matrix(), model.get_input_matrix())
    assert embtk.load_model(path).args.batch == 0  # a training option, not in the file
    assert np.isfinite(model.get_input_matrix()).all()


@pytest.mark.parametrize("options, message", [
    (["-batch", -1], "-batch must be zero or positive, got -1"),
    (["-batch", 8, "-loss", "hs"], "-batch shares the negatives of -loss ns"),
    (["-batch", 8, "-loss", "softmax"], "cannot be used with -loss softmax"),
])
def test_bad_batch_options_are_refused(tmp_path, options, message):
    code, _, err = run("skipgram", "-input", CORPUS, "-output", tmp_path / "m", *options)
    assert_one_line_error(code, err)
    assert message in err and list(tmp_path.iterdir()) == []


def test_supervised_has_no_batch(tmp_path):
    code, _, err = run("supervised", "-input", DATA / "authors.train", "-output",
                       tmp_path / "m", "-batch", 8)
    assert_one_line_error(code, err, expected_status=2)
    assert "-batch" in err
    with pytest.raises(EmbtkError, match="not to supervised training"):
        embtk.train_supervised(str(DATA / "authors.train"), batch=8, verbose=0)


def test_a_checkpoint_keeps_the_batch(tmp_path):
    path = tmp_path / "run.ckpt"
    embtk.train_unsupervised(str(CORPUS), batch=8, checkpoint=str(path),
                             checkpointEvery=1e-6, **dict(SMALL, epoch=3))
    assert path.exists()
    resumed = embtk.train_unsupervised(str(CORPUS), verbose=0, resume=str(path))
    assert resumed.args.batch == 8
    code, _, err = run("skipgram", "-input", CORPUS, "-output", tmp_path / "m", "-resume", path,
                       "-batch", 16)
    assert_one_line_error(code, err)
    assert "-batch 16 differs from checkpoint" in err


def test_continued_training_with_a_batch(tmp_path):
    first = embtk.train_unsupervised(str(CORPUS), seed=1, **SMALL)
    first.save_model(tmp_path / "first.bin")
    more = embtk.train_unsupervised(str(CORPUS), inputModel=str(tmp_path / "first.bin"),
                                    batch=8, thread=1, verbose=0)
    assert more.args.batch == 8
    assert more.get_input_matrix().shape == first.get_input_matrix().shape
    assert not np.array_equal(more.get_input_matrix(), first.get_input_matrix())
