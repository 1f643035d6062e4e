"""The output layers: negatives drawn as fastText draws them, and for each loss the updates
forward() applies checked against finite differences of the loss."""

import numba as nb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embtk.losses import (HS, LOG_TABLE_SIZE, MAX_SIGMOID, NS, OVA, SIGMOID_TABLE_SIZE, SOFTMAX,
                          State, draw_negative, forward, make_loss_params)
from embtk.primitives import alias_table, seed_rng


def implied_probabilities(keep, alias):
    """What an alias table draws: slot i kept, plus every slot that falls through to i."""
    n = len(keep)
    p = keep.astype(np.float64).copy()
    np.add.at(p, alias, 1.0 - keep.astype(np.float64))
    p -= np.where(alias == np.arange(n), 1.0 - keep, 0.0)  # a slot aliased to itself
    return p / n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=300))
def test_alias_table_draws_each_output_in_proportion_to_its_weight(counts):
    weights = np.sqrt(np.array(counts, dtype=np.float64))
    keep, alias = alias_table(weights)
    assert keep.dtype == np.float32 and alias.dtype == np.int32
    assert np.all((keep >= 0) & (keep <= 1)) and np.all((alias >= 0) & (alias < len(counts)))
    np.testing.assert_allclose(implied_probabilities(keep, alias), weights / weights.sum(),
                               rtol=1e-5, atol=1e-9)


@nb.njit
def _draw_counts(params, seed, draws):
    rng = seed_rng(seed)
    out = np.zeros(len(params.neg_keep), dtype=np.int64)
    for _ in range(draws):
        out[draw_negative(params, rng)] += 1
    return out


@pytest.mark.slow
def test_negatives_follow_the_square_root_of_counts():
    counts = np.array([1, 4, 9, 16, 100, 10000], dtype=np.int64)
    params = make_loss_params(NS, counts, neg=5)
    drawn = _draw_counts(params, 7, 2_000_000)
    expected = np.sqrt(counts) / np.sqrt(counts).sum()
    np.testing.assert_allclose(drawn / drawn.sum(), expected, atol=2e-3)
    assert drawn[0] > 0  # the rarest output is still drawn


def test_a_single_output_has_no_negatives():
    assert make_loss_params(NS, np.array([5]), neg=5).neg == 0


# ------------------------------------------------------------------ gradient checks
# forward() returns fastText's loss, computed with its tables: sigmoid tabulated at 512
# points over [-8, 8] (each score rounded down to a grid point 1/32 apart) and log at 512
# points over [0, 1]. The returned loss is therefore piecewise constant and cannot be
# differentiated itself; what it tabulates is the exact loss below. The updates must be
# -lr times the exact loss's derivatives, up to what the sigmoid table costs: a score
# rounded down by at most 1/32 moves the sigmoid by at most 0.25 / 32.
SIGMOID_ERR = 0.25 * (2 * MAX_SIGMOID / SIGMOID_TABLE_SIZE) + 1e-6
LOG_STEP = 1.0 / LOG_TABLE_SIZE
LR = 1e-3
KINDS = {"softmax": SOFTMAX, "ns": NS, "hs": HS, "ova": OVA}


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@nb.njit
def _drawn_negatives(params, seed, target):
    """The negatives forward() draws for `target` from rng seed_rng(seed), in order:
    fastText redraws a negative equal to the target."""
    rng = seed_rng(seed)
    out = np.empty(params.neg, dtype=np.int64)
    for i in range(params.neg):
        negative = draw_negative(params, rng)
        while negative == target:
            negative = draw_negative(params, rng)
        out[i] = negative
    return out


def logistic_units(kind, params, osz, targets, tstart, tstop, target_index, seed):
    """(row, label) of every logistic unit forward() scores, for ns, hs and ova."""
    target = int(targets[target_index])
    if kind == NS:
        drawn = _drawn_negatives(params, seed, target)
        return [(target, 1)] + [(int(n), 0) for n in drawn]
    if kind == HS:
        path = range(params.path_offsets[target], params.path_offsets[target + 1])
        return [(int(params.paths[k]), int(params.codes[k])) for k in path]
    positives = set(targets[tstart:tstop].tolist())
    return [(i, int(i in positives)) for i in range(osz)]


def exact_loss(kind, wo, hidden, target, units):
    """The loss in float64 with the exact sigmoid and log."""
    scores = wo @ hidden
    if kind == SOFTMAX:
        top = scores.max()
        return -(scores[target] - top - np.log(np.sum(np.exp(scores - top))))
    # -log sigmoid(s) for a positive, -log(1 - sigmoid(s)) = -log sigmoid(-s) otherwise
    return sum(np.logaddexp(0.0, -scores[row] if label else scores[row])
               for row, label in units)


def numeric_gradient(f, x, eps=1e-6):
    """Central finite differences of f() with respect to every entry of x (in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        up = f()
        x[i] = saved - eps
        down = f()
        x[i] = saved
        g[i] = (up - down) / (2 * eps)
    return g


def make_case(kind, seed):
    """Tiny random float64 problem: output matrix, hidden vector, targets, loss params."""
    rng = np.random.default_rng(seed)
    dim, osz = int(rng.integers(2, 9)), int(rng.integers(3, 10))
    wo = rng.normal(0.0, 0.5, size=(osz, dim))
    hidden = rng.normal(0.0, 0.5, size=dim)
    counts = np.sort(rng.integers(1, 1000, size=osz))[::-1]  # a dictionary sorts by count
    params = make_loss_params(kind, counts, neg=4)
    # several targets: forward must pick targets[target_index] (ova: targets[tstart:tstop])
    targets = rng.permutation(osz)[:3].astype(np.int32)
    return wo, hidden, targets, params


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", list(KINDS))
def test_updates_are_minus_lr_times_the_gradient_of_the_loss(name, seed):
    kind = KINDS[name]
    wo, hidden, targets, params = make_case(kind, seed)
    osz, dim = wo.shape
    tstart, tstop, target_index = 0, 2, 1  # targets[0] is a positive for ova only
    target = int(targets[target_index])
    units = (logistic_units(kind, params, osz, targets, tstart, tstop, target_index, seed)
             if kind != SOFTMAX else [(i, int(i == target)) for i in range(osz)])
    assert np.all(np.abs(wo @ hidden) < MAX_SIGMOID - 1)  # inside the sigmoid table

    w0, h0 = wo.copy(), hidden.copy()
    grad0 = np.random.default_rng(seed + 100).normal(size=dim)  # forward must add to it
    grad = grad0.copy()
    output = np.zeros(osz)
    rng = seed_rng(seed)
    state = rng.copy()
    loss = forward(params, wo, targets, np.int64(tstart), np.int64(tstop),
                   np.int64(target_index), LR, State(0, rng, hidden, grad, output))
    assert np.array_equal(hidden, h0)
    if kind in (SOFTMAX, OVA):  # they draw nothing (softmax reads its starting row)
        assert np.array_equal(rng, state)

    x_w, x_h = w0.copy(), h0.copy()
    expected_loss = exact_loss(kind, x_w, x_h, target, units)
    d_hidden = numeric_gradient(lambda: exact_loss(kind, x_w, x_h, target, units), x_h)
    d_wo = numeric_gradient(lambda: exact_loss(kind, x_w, x_h, target, units), x_w)

    # How far each unit's coefficient (label - probability) may be from the exact one.
    if kind == SOFTMAX:
        coef_err = 1e-6  # exact exp in float64; only alpha is rounded to float32
    else:
        coef_err = SIGMOID_ERR
        if kind == NS:
            # a row drawn twice is scored the second time after its first update, which
            # moved its score by at most lr * |h|^2 and the row itself by lr * |h|
            coef_err += params.neg * LR * float(h0 @ h0)
    uses = np.zeros(osz)
    for row, _ in units:
        uses[row] += 1
    # grad gets alpha * row per unit: |alpha| <= lr, off by at most lr * coef_err, and with
    # ns the row may already have moved (by at most neg * lr * |h_j| per coordinate)
    row_drift = params.neg * LR * np.abs(h0) if kind == NS else np.zeros(dim)
    tol_grad = LR * (coef_err * (uses @ (np.abs(w0) + row_drift)) + uses.sum() * row_drift)
    tol_grad += 1e-10
    tol_wo = LR * coef_err * np.outer(uses, np.abs(h0)) + 1e-10

    np.testing.assert_array_less(np.abs((grad - grad0) + LR * d_hidden), tol_grad)
    np.testing.assert_array_less(np.abs((wo - w0) + LR * d_wo), tol_wo)
    untouched = uses == 0
    assert np.array_equal(wo[untouched], w0[untouched])

    # The returned loss tabulates the exact one: each unit's probability is off by at
    # most coef_err (sigmoid table), then its log is taken 1/512 below (log table).
    if kind == SOFTMAX:
        p = np.exp(-expected_loss)
        low, high = -np.log(p + coef_err), -np.log(p - coef_err - LOG_STEP)
    else:
        scores = w0 @ h0
        p = np.array([sigmoid(scores[r]) if y else sigmoid(-scores[r]) for r, y in units])
        low = -np.log(np.minimum(p + coef_err, 1.0)).sum()
        high = -np.log(p - coef_err - LOG_STEP).sum()
    assert low - 1e-5 <= loss <= high + 1e-5, (loss, expected_loss, low, high)


@pytest.mark.parametrize("seed", range(4))
def test_hierarchical_softmax_paths_are_a_distribution(seed):
    # Each leaf's probability is the product of sigmoid(+-score) along its path: over all
    # leaves they must sum to 1 for any hidden vector, else the tree (paths, codes) is wrong.
    rng = np.random.default_rng(seed)
    osz, dim = int(rng.integers(2, 40)), 4
    counts = np.sort(rng.integers(1, 10**5, size=osz))[::-1]
    params = make_loss_params(HS, counts, neg=0)
    wo = rng.normal(size=(osz - 1, dim))  # one row per internal node
    scores = wo @ rng.normal(size=dim)
    total = 0.0
    for leaf in range(osz):
        k = range(params.path_offsets[leaf], params.path_offsets[leaf + 1])
        total += np.prod([sigmoid(scores[params.paths[i]] * (1 if params.codes[i] else -1))
                          for i in k])
    assert total == pytest.approx(1.0, abs=1e-9)
    # a Huffman code: a more frequent output never has a longer path
    depth = np.diff(params.path_offsets)
    more_frequent = counts[:, None] > counts[None, :]
    assert np.all(depth[:, None] <= depth[None, :], where=more_frequent)
