"""The biLM's output layer: a softmax over the vocabulary, sampled while training.

Both directions share one softmax, logits h @ W.T + b over V words sorted by frequency
(<S>, </S>, <UNK> first). Training approximates it as TensorFlow's sampled_softmax_loss
with its default sampler, as bilm-tf trains:

- once per window, S distinct words are drawn from the log-uniform (Zipf) distribution
  p(k) = log((k + 2) / (k + 1)) / log(V + 1) over ranks k (draws repeat until S distinct
  ones are seen; `tries` counts the draws);
- every logit of a word, true or sampled, has log Q subtracted, Q(k) = 1 - (1 - p(k))^tries
  the expected number of times k was drawn (TensorFlow's correction for unique sampling);
- a sampled word that is the row's own target is removed ("accidental hit");
- the loss of a row is -log softmax over [its target, the S samples].

With S >= V the "samples" are the whole vocabulary with no correction: the full softmax.
"""

from __future__ import annotations

from typing import NamedTuple

import math

import numba as nb
import numpy as np

from .lstm import _exp_parts, exp_scratch

LOGIT_CHUNK = 256  # rows of the full softmax's logits held at a time (rows x V floats)


class Samples(NamedTuple):
    """One window's sampled words (S,) int64 and the log Q of each, and of the targets."""

    words: np.ndarray
    log_q: np.ndarray       # (S,) float32
    rows: int               # V
    tries: int              # 0: the full softmax, no correction

    def log_q_of(self, targets: np.ndarray) -> np.ndarray:
        if not self.tries:
            return np.zeros(len(targets), dtype=np.float32)
        return _log_expected(targets, self.rows, self.tries)


def _log_expected(words: np.ndarray, rows: int, tries: int) -> np.ndarray:
    k = words.astype(np.float64)
    p = (np.log(k + 2) - np.log(k + 1)) / np.log(rows + 1.0)
    return np.log(-np.expm1(tries * np.log1p(-p))).astype(np.float32)


def draw_samples(rng: np.random.Generator, rows: int, count: int) -> Samples:
    """`count` distinct log-uniform words of `rows` (all of them when count >= rows)."""
    if count >= rows:
        return Samples(np.arange(rows, dtype=np.int64), np.zeros(rows, dtype=np.float32),
                       rows, 0)
    log_range = np.log(rows + 1.0)
    draws = np.empty(0, dtype=np.int64)
    while True:
        more = (np.exp(rng.random(2 * count) * log_range) - 1).astype(np.int64)
        draws = np.concatenate([draws, np.minimum(more, rows - 1)])
        _, first = np.unique(draws, return_index=True)
        if len(first) >= count:
            first.sort()
            words = draws[first[:count]]
            tries = int(first[count - 1]) + 1
            return Samples(words, _log_expected(words, rows, tries), rows, tries)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def softmax_rows(logits, shift, true_logit, hit, scale, d_true):
    """Each row of logits (N, S) (the products with the sampled words): + shift (S,) (their
    bias - log Q), the row's own target (column hit[r], or -1) removed, then replaced by
    scale x its softmax probability among [true_logit[r], the row]; d_true[r] receives
    scale x (p_true - 1). Returns the summed loss -log p_true (float64)."""
    n, count = logits.shape
    e, bits, power = exp_scratch(count)
    loss = 0.0
    for r in range(n):
        row = logits[r]
        top = true_logit[r]
        for j in range(count):
            row[j] += shift[j]
        if hit[r] >= 0:
            row[hit[r]] = -np.inf
        for j in range(count):
            top = max(top, row[j])
        for j in range(count):
            row[j] -= top
        _exp_parts(row, e, bits, count)
        total = np.float32(0.0)
        for j in range(count):
            row[j] = e[j] * power[j]
            total += row[j]
        if hit[r] >= 0:
            total -= row[hit[r]]
            row[hit[r]] = 0.0
        e_true = np.float32(math.exp(true_logit[r] - top))
        total += e_true
        loss += math.log(total) - math.log(e_true)
        coef = scale / total
        for j in range(count):
            row[j] *= coef
        d_true[r] = e_true * coef - scale
    return loss


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def add_rows(out, index, values):
    """out[index[i]] += values[i] for each row i (np.add.at, without its slowness)."""
    for i in range(index.shape[0]):
        row = index[i]
        for j in range(values.shape[1]):
            out[row, j] += values[i, j]


class SoftmaxGradient(NamedTuple):
    """The gradient of the softmax's rows `rows` (R,) only: d_w (R, P), d_b (R,)."""

    rows: np.ndarray
    d_w: np.ndarray
    d_b: np.ndarray


def sampled_loss(h: np.ndarray, targets: np.ndarray, w: np.ndarray, b: np.ndarray,
                 samples: Samples, scale: float) -> tuple:
    """(sum of the rows' losses, gradient on h (N, P), SoftmaxGradient) for outputs h (N,
    P) float32 and targets (N,) int64; the gradients are those of `scale` x the sum."""
    rows, local = np.unique(np.concatenate([targets, samples.words]), return_inverse=True)
    n = len(targets)
    t_local, s_local = local[:n], local[n:]
    w_rows = np.asarray(w[rows])
    b_rows = np.asarray(b[rows])
    w_true = w_rows[t_local]
    true_logit = np.einsum("np,np->n", h, w_true) + b_rows[t_local] - samples.log_q_of(targets)
    w_sampled = w_rows[s_local]
    logits = h @ w_sampled.T
    column = np.full(len(rows), -1, dtype=np.int64)
    column[s_local] = np.arange(len(s_local))
    d_true = np.empty(n, dtype=np.float32)
    loss = softmax_rows(logits, b_rows[s_local] - samples.log_q,
                        true_logit.astype(np.float32), column[t_local], np.float32(scale), d_true)
    d_h = logits @ w_sampled
    d_h += d_true[:, None] * w_true
    d_w = np.zeros_like(w_rows)
    d_w[s_local] = logits.T @ h
    add_rows(d_w, t_local, d_true[:, None] * h)
    d_b = np.zeros(len(rows), dtype=np.float32)
    d_b[s_local] = logits.sum(axis=0)
    np.add.at(d_b, t_local, d_true)
    return loss, d_h, SoftmaxGradient(rows, d_w, d_b)


def full_loss(h: np.ndarray, targets: np.ndarray, w: np.ndarray, b: np.ndarray) -> float:
    """The sum over rows of -log softmax(h @ W.T + b)[target], a chunk of rows at a time
    (float32 products, each row's sum in float64)."""
    total = 0.0
    w_t = np.asarray(w).T
    bias = np.asarray(b, dtype=np.float32)
    for start in range(0, len(h), LOGIT_CHUNK):
        logits = h[start:start + LOGIT_CHUNK] @ w_t
        total += row_losses(logits, bias, targets[start:start + LOGIT_CHUNK])
    return total


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def row_losses(logits, bias, targets):
    """sum over rows r of logsumexp(logits[r] + bias) - (logits[r] + bias)[targets[r]]
    (logits are overwritten)."""
    n, count = logits.shape
    e, bits, power = exp_scratch(count)
    loss = 0.0
    for r in range(n):
        row = logits[r]
        for j in range(count):
            row[j] += bias[j]
        picked = row[targets[r]]
        top = row[0]
        for j in range(count):
            top = max(top, row[j])
        for j in range(count):
            row[j] -= top
        _exp_parts(row, e, bits, count)
        total = 0.0
        for j in range(count):
            total += e[j] * power[j]
        loss += math.log(total) + top - picked
    return loss
