"""What a trained model answers from its matrices, in numba: word and sentence vectors,
nearest neighbours, and batched prediction of encoded lines.

The training kernels are `kernels`'s; prediction straight from raw text is `predicting`'s.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .jitting import callee, zeros, zeros2
from .dictionary import word_rows
from .losses import TopK, dot_row, predict_top_k
from .primitives import heap_offer, sort_heap
from .kernels import mean_rows


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def rows_mean(wi, rows):
    out = zeros(wi.shape[1], np.float32)
    mean_rows(wi, rows, 0, len(rows), out)
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def word_vectors(wi, sub_offsets, sub_ids, first, end):
    """getWordVector for dictionary words first..end-1 at once."""
    out = zeros2(end - first, wi.shape[1], np.float32)
    for w in range(first, end):
        mean_rows(wi, sub_ids, sub_offsets[w], sub_offsets[w + 1], out[w - first])
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def predict_lines(wi, wo, wo_t, params, feat_offsets, feats, k, threshold):
    """Top-k (label id, probability) for each encoded line, best first; count[i] may be < k.

    `wo_t` is wo transposed (C-contiguous). The probability is exp(log(p + 1e-5)) in
    32-bit floats, exactly as fastText reports it.
    """
    nlines = len(feat_offsets) - 1
    threshold = np.float32(threshold)
    counts = zeros(nlines, np.int64)
    probs = zeros2(nlines, k, np.float32)
    ids = zeros2(nlines, k, np.int64)
    hidden = zeros(wi.shape[1], np.float32)
    output = zeros(wo.shape[0], np.float32)
    heap_scores = zeros(k + 1, np.float32)
    heap_ids = zeros(k + 1, np.int64)
    best = TopK(output, heap_scores, heap_ids)
    for i in range(nlines):
        a, b = feat_offsets[i], feat_offsets[i + 1]
        if b == a:
            continue
        mean_rows(wi, feats, a, b, hidden)
        n = predict_top_k(params, wo, wo_t, hidden, k, threshold, best)
        counts[i] = n
        for j in range(n):
            probs[i, j] = math.exp(heap_scores[j])
            ids[i, j] = heap_ids[j]
    return counts, probs, ids


# ------------------------------------------------------------- nearest neighbours
# Plain float32 loops in fastText's order (no fastmath, no BLAS), so that scores and the
# order of near-ties come out as the official tool's.


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def norm(vec):
    total = np.float32(0.0)
    for x in vec:
        total += x * x
    return np.float32(math.sqrt(total))


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def unit_word_vectors(wi, sub_offsets, sub_ids, nwords):
    """Every word's vector scaled to unit length (zero vectors stay zero)."""
    out = word_vectors(wi, sub_offsets, sub_ids, np.int64(0), nwords)
    for w in range(nwords):
        length = norm(out[w])
        if length > 0:
            scale = np.float32(1.0 / length)
            for j in range(out.shape[1]):
                out[w, j] = scale * out[w, j]
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def nearest_words(unit_vectors, query, k, banned):
    """The k rows most similar (cosine) to `query`, skipping `banned` ids, best first."""
    qnorm = norm(query)
    if abs(qnorm) < 1e-8:
        qnorm = np.float32(1.0)
    scores = zeros(k + 1, np.float32)
    ids = zeros(k + 1, np.int64)
    n = np.int64(0)
    for i in range(unit_vectors.shape[0]):
        skip = False
        for b in banned:
            skip |= b == i
        if skip:
            continue
        similarity = np.float32(dot_row(unit_vectors, i, query) / qnorm)
        if n == k and similarity < scores[0]:
            continue
        n = heap_offer(scores, ids, n, k, similarity, i)
    sort_heap(scores, ids, n)
    return scores[:n].copy(), ids[:n].copy()


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def add_unit(query, vec, sign):
    """query += sign * vec / (|vec| + 1e-8): one term of an analogy query."""
    scale = np.float32(sign / (np.float64(norm(vec)) + 1e-8))
    for j in range(query.shape[0]):
        query[j] += scale * vec[j]


# --------------------------------------------------------------- sentence vectors


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def line_means(wi, feat_offsets, feats):
    """Classifiers: each encoded line's vector is the mean of its input rows."""
    nlines = len(feat_offsets) - 1
    out = zeros2(nlines, wi.shape[1], np.float32)
    for i in range(nlines):
        mean_rows(wi, feats, feat_offsets[i], feat_offsets[i + 1], out[i])
    return out


@callee
def _stream_space(c):
    # what C++'s `stream >> word` skips: space, \t, \n, \v, \f, \r
    return c == 32 or (9 <= c <= 13)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def word_vector_means(wi, tables, buf, nlines):
    """Word-vector models: each line's vector is the mean of its words' unit vectors."""
    dim = wi.shape[1]
    out = zeros2(nlines, dim, np.float32)
    vec = zeros(dim, np.float32)
    line = 0
    count = 0
    pos = 0
    while line < nlines:
        if pos >= len(buf) or buf[pos] == 10:
            if count > 0:
                scale = np.float32(1.0 / count)
                for j in range(dim):
                    out[line, j] *= scale
            line += 1
            count = 0
            pos += 1
            continue
        if _stream_space(buf[pos]):
            pos += 1
            continue
        start = pos
        while pos < len(buf) and not _stream_space(buf[pos]):
            pos += 1
        rows = word_rows(tables, buf[start:pos])
        mean_rows(wi, rows, 0, len(rows), vec)
        length = norm(vec)
        if length > 0:
            scale = np.float32(1.0 / length)
            for j in range(dim):
                out[line, j] += vec[j] * scale
            count += 1
    return out
