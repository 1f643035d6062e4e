"""Batched skipgram and cbow (-batch N): N neighbouring context windows share one draw of
negatives, so that the work fastText repeats for every (center, context) pair is done
once per center or once per batch.

fastText's skipgram recomputes the center's hidden vector (the mean of its ~10 subword
rows), draws `neg` negatives and scatters the gradient back into those rows for every
context word. Here, per center, the hidden vector is computed once, its contexts and the
batch's shared negatives are scored against it (a small matrix-vector product), and the
summed gradient is scattered once. A shared negative stands for the `neg` draws of each of
the center's pairs (all scored against the same hidden vector), so its step is weighted
by the number of the center's contexts it is not the target of: the same update in
expectation as fastText's, with fewer, larger steps.

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
from .kernels import _current_lr, _line_end, _publish, mean_rows
from .losses import binary_logistic, draw_negative, rand_below, rand_unit


@nb.njit(cache=True, nogil=True, inline="always")
def draw_shared_negatives(params, rng, negatives):
    """One draw of params.neg negatives for a whole batch; returns how many."""
    for k in range(params.neg):
        negatives[k] = draw_negative(params, rng)
    return np.int64(params.neg)


@nb.njit(cache=True, nogil=True, inline="always")
def _add_to_rows(wi, rows, start, stop, grad):
    for k in range(start, stop):
        r = rows[k]
        for j in range(grad.shape[0]):
            wi[r, j] += grad[j]


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def skipgram_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last, boundaries,
                  negatives, nneg, lr, hidden, grad):
    """Centers line[first:last], center i with the window i +- boundaries[i - first]
    (dynamic, as drawn by the caller), all against the shared negatives[:nneg].

    For each center in turn: its hidden vector once; each context word, then each
    negative (weighted by the number of contexts it is not), updates its output row and
    adds to the gradient; the gradient goes into the center's rows once. Returns (loss
    sum, examples), an example being one (center, context) pair as in fastText.
    """
    loss = np.float64(0.0)
    examples = np.int64(0)
    one, zero = np.float32(1.0), np.float32(0.0)
    for i in range(first, last):
        b = boundaries[i - first]
        lo, hi = max(0, i - b), min(nline, i + b + 1)
        contexts = hi - lo - 1
        if contexts <= 0:
            continue
        center = line[i]
        a, z = sub_offsets[center], sub_offsets[center + 1]
        mean_rows(wi, sub_ids, a, z, hidden)
        grad[:] = 0.0
        for c in range(lo, hi):
            if c != i:
                loss += binary_logistic(wo, np.int64(line[c]), one, lr, hidden, grad)
        for k in range(nneg):
            negative = negatives[k]
            weight = contexts
            for c in range(lo, hi):
                if c != i and line[c] == negative:
                    weight -= 1
            if weight > 0:
                loss += weight * binary_logistic(wo, np.int64(negative), zero,
                                                 lr * weight, hidden, grad)
        _add_to_rows(wi, sub_ids, a, z, grad)
        examples += contexts
    return loss, examples


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def cbow_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last, boundaries, negatives,
              nneg, lr, sums, grads, hidden, grad):
    """Windows centred on line[first:last] (center i: contexts i +- boundaries[i - first]),
    each predicting its center against the shared negatives[:nneg].

    `sums[p - lo]` is the sum of position p's subword rows, for the positions lo.. the
    windows reach; `grads[p - lo]` collects the gradient of every window holding p, added
    to p's rows at the end. Returns (loss sum, examples), an example being a window.
    """
    loss = np.float64(0.0)
    examples = np.int64(0)
    one, zero = np.float32(1.0), np.float32(0.0)
    dim = hidden.shape[0]
    span_lo, span_hi = nline, 0
    for i in range(first, last):
        b = boundaries[i - first]
        span_lo = min(span_lo, max(0, i - b))
        span_hi = max(span_hi, min(nline, i + b + 1))
    lo = span_lo
    for p in range(span_lo, span_hi):
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
        grad[:] = 0.0
        target = line[i]
        loss += binary_logistic(wo, np.int64(target), one, lr, hidden, grad)
        for k in range(nneg):
            if negatives[k] != target:
                loss += binary_logistic(wo, np.int64(negatives[k]), zero, lr, hidden, grad)
        for c in range(start, stop):
            if c != i:
                for j in range(dim):
                    grads[c - lo, j] += grad[j]
        examples += 1
    for p in range(span_lo, span_hi):
        word = line[p]
        _add_to_rows(wi, sub_ids, sub_offsets[word], sub_offsets[word + 1], grads[p - lo])
    return loss, examples


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def train_batched(tid, rng, words, ids, at_corpus_end, wi, wo, params, cbow, ws, batch,
                  schedule):
    """train_unsupervised with -batch: the same reading of `ids` (lines, subsampling,
    learning rate, progress, return value), each line's centers taken `batch` at a time,
    every batch drawing one set of negatives (see skipgram_step, cbow_step)."""
    eos_id, keep_prob = words.eos_id, words.keep_prob
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    stop, lr_update_rate = schedule.stop, schedule.lr_update_rate
    dim = wi.shape[1]
    nwords = len(keep_prob)
    batch = min(batch, MAX_LINE_SIZE + 1)
    hidden = np.zeros(dim, dtype=np.float32)
    grad = np.zeros(dim, dtype=np.float32)
    span = batch + 2 * ws if cbow else 1
    sums = np.zeros((span, dim), dtype=np.float32)
    grads = np.zeros((span, dim), dtype=np.float32)
    line = np.empty(MAX_LINE_SIZE + 2, dtype=np.int32)
    boundaries = np.empty(batch, dtype=np.int64)
    negatives = np.empty(max(1, params.neg), dtype=np.int64)
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
        end = _line_end(ids, pos, eos_id, at_corpus_end)
        if end < 0:
            break
        nline = 0
        for p in range(pos, end):
            w = ids[p]
            if w < nwords and rand_unit(rng) <= keep_prob[w]:
                line[nline] = w
                nline += 1
        local += end - pos
        pos = end
        for first in range(0, nline, batch):
            last = min(nline, first + batch)
            for i in range(first, last):
                boundaries[i - first] = 1 + rand_below(rng, ws)
            nneg = draw_shared_negatives(params, rng, negatives)
            if cbow:
                loss, n = cbow_step(wi, wo, sub_offsets, sub_ids, line, nline, first, last,
                                    boundaries, negatives, nneg, lr, sums, grads, hidden,
                                    grad)
            else:
                loss, n = skipgram_step(wi, wo, sub_offsets, sub_ids, line, nline, first,
                                        last, boundaries, negatives, nneg, lr, hidden,
                                        grad)
            loss_sum += loss
            examples += n
        if local > lr_update_rate:
            local = _publish(tid, local, loss_sum, examples, schedule)
    _publish(tid, local, loss_sum, examples, schedule)
    return pos, finished
