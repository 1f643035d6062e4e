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

The line reading, subsampling, learning-rate schedule and progress accounting are
train_unsupervised's own (see kernels.py); batches never span two lines.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .dictionary import MAX_LINE_SIZE
from .kernels import _current_lr, _publish, mean_rows, read_line
from .losses import dot_row, draw_negative, sigmoid, table_log
from .primitives import rand_below


@nb.njit(cache=True, nogil=True, inline="always")
def shared_negatives(neg, ws, cbow):
    """How many negatives a batch draws: as many as fastText draws for one window. A cbow
    window is one example (neg); a skipgram center has ws + 1 contexts on average (its
    window is 1..ws words each side), each with neg negatives.

    Fewer, each standing for more pairs, is faster but worse: on en_corpus (seed 0,
    -batch 16) neg draws gave mean Spearman 0.236, 3 neg 0.356, 6 neg 0.374, the
    default algorithm 0.363.
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
def _logistic_rows(wo, targets, weights, npos, n, lr, hidden, grad, alphas):
    """The ns update of one hidden vector against the output rows targets[:n], the first
    npos positive, each weighted by weights[t], as matrix products: scores = O h, alpha =
    lr w (label - sigmoid(scores)), grad += alpha O, O += alpha h^T, all from the rows
    as they were (a row listed twice gets both updates). Returns the weighted loss."""
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
def skipgram_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last, boundaries,
                  negatives, nneg, neg, lr, hidden, grad, targets, weights, alphas):
    """Centers line[first:last], center i with the window i +- boundaries[i - first]
    (dynamic, as drawn by the caller), all against the shared negatives[:nneg].

    For each center in turn: its hidden vector once; its context words and the negatives
    (each weighted by neg / nneg per context whose word it is not) scored and updated
    together (see _logistic_rows); the gradient goes into the center's rows once. `targets`, `weights`,
    `alphas` hold 2 max(boundaries) + nneg values. Returns (loss sum, examples), an
    example being one (center, context) pair as in fastText.
    """
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
        loss += _logistic_rows(wo, targets, weights, contexts, n, lr, hidden, grad, alphas)
        _add_to_rows(wi, sub_ids, a, z, grad)
        examples += contexts
    return loss, examples


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def cbow_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last, boundaries, negatives,
              nneg, neg, lr, sums, grads, hidden, grad, targets, weights, alphas):
    """Windows centred on line[first:last] (center i: contexts i +- boundaries[i - first]),
    each predicting its center against the shared negatives[:nneg] (weighted neg / nneg;
    see _logistic_rows).

    `sums[p - lo]` is the sum of position p's subword rows, for the positions lo.. the
    windows reach; `grads[p - lo]` collects the gradient of every window holding p, added
    to p's rows at the end. Returns (loss sum, examples), an example being a window.
    """
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
        loss += _logistic_rows(wo, targets, weights, 1, n, lr, hidden, grad, alphas)
        for c in range(start, stop):
            if c != i:
                for j in range(dim):
                    grads[c - lo, j] += grad[j]
        examples += 1
    for p in range(lo, hi):
        word = line[p]
        _add_to_rows(wi, sub_ids, sub_offsets[word], sub_offsets[word + 1], grads[p - lo])
    return loss, examples


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def train_batched(tid, rng, words, ids, at_corpus_end, wi, wo, params, cbow, ws, batch,
                  schedule):
    """train_unsupervised with -batch: the same reading of `ids` (lines, subsampling,
    learning rate, progress, return value), each line's centers taken `batch` at a time,
    every batch drawing one set of negatives (see skipgram_step, cbow_step)."""
    eos_id, keep_prob = words.eos_id, words.keep_prob
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    stop, lr_update_rate = schedule.stop, schedule.lr_update_rate
    dim = wi.shape[1]
    batch = min(batch, MAX_LINE_SIZE + 1)
    hidden = np.zeros(dim, dtype=np.float32)
    grad = np.zeros(dim, dtype=np.float32)
    span = batch + 2 * ws if cbow else 1
    sums = np.zeros((span, dim), dtype=np.float32)
    grads = np.zeros((span, dim), dtype=np.float32)
    line = np.empty(MAX_LINE_SIZE + 2, dtype=np.int32)
    boundaries = np.empty(batch, dtype=np.int64)
    negatives = np.empty(shared_negatives(params.neg, ws, cbow), dtype=np.int64)
    targets = np.empty(2 * ws + len(negatives), dtype=np.int64)
    weights = np.empty(2 * ws + len(negatives), dtype=np.float32)
    alphas = np.empty(2 * ws + len(negatives), dtype=np.float32)
    pos = 0
    local = 0
    loss_sum = schedule.loss_stats[tid, 0]
    examples = np.int64(schedule.loss_stats[tid, 1])
    finished = False
    while pos < len(ids):
        if stop[0] != 0:
            finished = True
            break
        lr = _current_lr(schedule, local)
        if lr < 0:
            finished = True
            break
        end, nline = read_line(ids, pos, at_corpus_end, eos_id, keep_prob, rng, line)
        if end < 0:
            break
        local += end - pos
        pos = end
        for first in range(0, nline, batch):
            last = min(nline, first + batch)
            for i in range(first, last):
                boundaries[i - first] = 1 + rand_below(rng, ws)
            nneg = draw_shared_negatives(params, rng, negatives)
            if cbow:
                loss, n = cbow_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last,
                                    boundaries, negatives, nneg, params.neg, lr, sums, grads, hidden,
                                    grad, targets, weights, alphas)
            else:
                loss, n = skipgram_step(wi, wo, sub_offsets, sub_ids, line, nline, first,
                                        last, boundaries, negatives, nneg, params.neg, lr,
                                        hidden, grad, targets, weights, alphas)
            loss_sum += loss
            examples += n
        if local > lr_update_rate:
            local = _publish(tid, local, loss_sum, examples, schedule)
    _publish(tid, local, loss_sum, examples, schedule)
    return pos, finished
