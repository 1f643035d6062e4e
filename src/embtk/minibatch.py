"""Batched skipgram and cbow (-batch N): N neighbouring context windows share one draw of
negatives, so that the work fastText repeats for every (center, context) pair is done
once per center or once per batch.

fastText's skipgram recomputes the center's hidden vector (the mean of its ~10 subword
rows), draws `neg` negatives and scatters the gradient back into those rows for every
context word. Here, per center, the hidden vector is computed once, its contexts and the
batch's shared negatives are scored against it and updated as small matrix products, and
the summed gradient is scattered once. A batch draws as many negatives as fastText draws
for one center (see shared_negatives); each shared negative of a center is weighted so
that, in expectation, the center gets fastText's negative update (neg per context, none
equal to that context's word).

cbow's hidden vector is the mean of the subword rows of every context word (~60 rows).
Neighbouring windows share most of their words, so a batch sums each position's subword
rows once, builds each window's hidden vector from those sums, collects each position's
gradient over the windows that contain it, and scatters it once at the end of the batch
(the input rows are read at the start of the batch: within it, windows do not see each
other's input updates).

train_unsupervised runs these as it runs skipgram and cbow, given a `Batched` step (see
kernels.learn_line): the line reading, subsampling, learning-rate schedule and progress
accounting are its own; batches never span two lines.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

from .dictionary import MAX_LINE_SIZE
from .jitting import callee
from .kernels import mean_rows
from .losses import dot_row, draw_negative, sigmoid, table_log
from .primitives import rand_below

# A thread's -batch options and scratch: cbow or skipgram, the window size, fastText's
# -neg; each center's window (`boundaries`, one a center of the batch, so its length is
# the batch size), the batch's shared negatives, the targets of one hidden vector with
# their weights and step sizes (see _logistic_rows), and for cbow each position's row
# sum and collected gradient (see cbow_step).
Batched = namedtuple("Batched",
                     "cbow ws neg boundaries negatives targets weights alphas sums grads")


def batched(cbow: bool, ws: int, batch: int, neg: int, dim: int) -> Batched:
    """A thread's Batched step for train_unsupervised; `neg` is the loss's (LossParams.neg)."""
    batch = min(batch, MAX_LINE_SIZE + 1)
    span = batch + 2 * ws if cbow else 1
    nneg = shared_negatives(neg, ws, cbow)
    return Batched(bool(cbow), int(ws), int(neg), np.zeros(batch, np.int64),
                   np.zeros(nneg, np.int64), np.zeros(2 * ws + nneg, np.int64),
                   np.zeros(2 * ws + nneg, np.float32), np.zeros(2 * ws + nneg, np.float32),
                   np.zeros((span, dim), np.float32), np.zeros((span, dim), np.float32))


def shared_negatives(neg: int, ws: int, cbow: bool) -> int:
    """How many negatives a batch draws: as many as fastText draws for one window. A cbow
    window is one example (neg); a skipgram center has ws + 1 contexts on average (its
    window is 1..ws words each side), each with neg negatives. Fewer, each standing for
    more pairs, train faster but worse vectors (benchmarks/README.md, batched.py).
    """
    return neg if cbow else neg * (ws + 1)


@nb.njit(cache=True, nogil=True, inline="always")
def draw_shared_negatives(params, rng, negatives):
    """One draw of negatives for a whole batch (all of `negatives`); returns how many."""
    for k in range(len(negatives)):
        negatives[k] = draw_negative(params, rng)
    return np.int64(len(negatives))


@nb.njit(cache=True, nogil=True, inline="always")
def _add_to_rows(wi, rows, start, stop, grad):
    for k in range(start, stop):
        r = rows[k]
        for j in range(grad.shape[0]):
            wi[r, j] += grad[j]


@nb.njit(cache=True, nogil=True, inline="always")
def _logistic_rows(wo, batch, state, npos, n, lr):
    """The ns update of state.hidden against the output rows batch.targets[:n], the first
    npos positive, each weighted by batch.weights[t], as matrix products: scores = O h,
    alpha = lr w (label - sigmoid(scores)), grad += alpha O, O += alpha h^T, all from the
    rows as they were (a row listed twice gets both updates). Returns the weighted loss."""
    targets, weights, alphas = batch.targets, batch.weights, batch.alphas
    hidden, grad = state.hidden, state.grad
    dim = hidden.shape[0]
    loss = np.float32(0.0)
    for t in range(n):
        score = sigmoid(dot_row(wo, targets[t], hidden))
        if t < npos:
            alphas[t] = np.float32(lr * weights[t] * (np.float32(1.0) - score))
            loss -= weights[t] * table_log(score)
        else:
            alphas[t] = np.float32(-lr * weights[t] * score)
            loss -= weights[t] * table_log(np.float32(1.0) - score)
    for t in range(n):
        r, alpha = targets[t], alphas[t]
        for j in range(dim):
            grad[j] += alpha * wo[r, j]
    for t in range(n):
        r, alpha = targets[t], alphas[t]
        for j in range(dim):
            wo[r, j] += alpha * hidden[j]
    return loss


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def skipgram_step(state, model, words, batch, line, nline, first, lr):
    """Centers line[first:last], last = min(nline, first + len(batch.boundaries)), center
    i with the window i +- batch.boundaries[i - first] (dynamic, as drawn by the caller),
    all against the shared batch.negatives (nneg of them).

    For each center in turn: its hidden vector once; its context words and the negatives
    (each weighted by neg / nneg per context whose word it is not) scored and updated
    together (see _logistic_rows); the gradient goes into the center's rows once.
    `targets`, `weights`, `alphas` hold 2 max(boundaries) + nneg values. Returns (loss
    sum, examples), an example being one (center, context) pair as in fastText.
    """
    wi, wo = model.wi, model.wo
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    hidden, grad = state.hidden, state.grad
    boundaries, negatives = batch.boundaries, batch.negatives
    targets, weights = batch.targets, batch.weights
    last = min(nline, first + len(boundaries))
    nneg = len(negatives)
    neg = batch.neg
    loss = np.float64(0.0)
    examples = np.int64(0)
    share = np.float32(neg / max(1, nneg))
    for i in range(first, last):
        b = boundaries[i - first]
        n = 0
        for c in range(max(0, i - b), min(nline, i + b + 1)):
            if c != i:
                targets[n] = line[c]
                weights[n] = 1.0
                n += 1
        contexts = n
        if contexts == 0:
            continue
        for k in range(nneg):
            weight = np.float32(contexts)
            for t in range(contexts):
                if targets[t] == negatives[k]:
                    weight -= 1.0
            if weight > 0:
                targets[n] = negatives[k]
                weights[n] = weight * share
                n += 1
        center = line[i]
        a, z = sub_offsets[center], sub_offsets[center + 1]
        mean_rows(wi, sub_ids, a, z, hidden)
        grad[:] = 0.0
        loss += _logistic_rows(wo, batch, state, contexts, n, lr)
        _add_to_rows(wi, sub_ids, a, z, grad)
        examples += contexts
    return loss, examples


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def cbow_step(state, model, words, batch, line, nline, first, lr):
    """Windows centred on line[first:last], last as in skipgram_step (center i: contexts
    i +- boundaries[i - first]), each predicting its center against the shared negatives
    (weighted neg / nneg; see _logistic_rows).

    `sums[p - lo]` is the sum of position p's subword rows, for the positions lo.. the
    windows reach; `grads[p - lo]` collects the gradient of every window holding p, added
    to p's rows at the end. Returns (loss sum, examples), an example being a window.
    """
    wi, wo = model.wi, model.wo
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    hidden, grad = state.hidden, state.grad
    boundaries, negatives = batch.boundaries, batch.negatives
    targets, weights = batch.targets, batch.weights
    sums, grads = batch.sums, batch.grads
    last = min(nline, first + len(boundaries))
    nneg = len(negatives)
    neg = batch.neg
    loss = np.float64(0.0)
    examples = np.int64(0)
    share = np.float32(neg / max(1, nneg))
    dim = hidden.shape[0]
    lo, hi = nline, 0
    for i in range(first, last):
        b = boundaries[i - first]
        lo = min(lo, max(0, i - b))
        hi = max(hi, min(nline, i + b + 1))
    for p in range(lo, hi):
        word = line[p]
        for j in range(dim):
            sums[p - lo, j] = 0.0
            grads[p - lo, j] = 0.0
        for k in range(sub_offsets[word], sub_offsets[word + 1]):
            r = sub_ids[k]
            for j in range(dim):
                sums[p - lo, j] += wi[r, j]
    for i in range(first, last):
        b = boundaries[i - first]
        start, stop = max(0, i - b), min(nline, i + b + 1)
        nbow = 0
        hidden[:] = 0.0
        for c in range(start, stop):
            if c != i:
                word = line[c]
                nbow += sub_offsets[word + 1] - sub_offsets[word]
                for j in range(dim):
                    hidden[j] += sums[c - lo, j]
        if nbow == 0:
            continue
        scale = np.float32(1.0 / nbow)
        for j in range(dim):
            hidden[j] *= scale
        targets[0] = line[i]
        weights[0] = 1.0
        n = 1
        for k in range(nneg):
            if negatives[k] != line[i]:
                targets[n] = negatives[k]
                weights[n] = share
                n += 1
        grad[:] = 0.0
        loss += _logistic_rows(wo, batch, state, 1, n, lr)
        for c in range(start, stop):
            if c != i:
                for j in range(dim):
                    grads[c - lo, j] += grad[j]
        examples += 1
    for p in range(lo, hi):
        word = line[p]
        _add_to_rows(wi, sub_ids, sub_offsets[word], sub_offsets[word + 1], grads[p - lo])
    return loss, examples


@callee(fastmath=True, error_model="numpy")
def _batched_line(state, model, words, batch, line, nline, lr):
    """One line's centers `len(batch.boundaries)` at a time, each batch drawing its
    windows and one set of negatives (see skipgram_step, cbow_step). Returns (loss sum,
    examples)."""
    loss = 0.0
    examples = np.int64(0)
    size = len(batch.boundaries)
    for first in range(0, nline, size):
        for i in range(first, min(nline, first + size)):
            batch.boundaries[i - first] = 1 + rand_below(state.rng, batch.ws)
        draw_shared_negatives(model.params, state.rng, batch.negatives)
        if batch.cbow:
            step_loss, n = cbow_step(state, model, words, batch, line, nline, first, lr)
        else:
            step_loss, n = skipgram_step(state, model, words, batch, line, nline, first, lr)
        loss += step_loss
        examples += n
    return loss, examples


Batched.learn_line = _batched_line
