"""numba kernels: the training loops (one call per thread) and batched inference.

The model is fastText's: the hidden vector is the mean of some input rows, the loss
(see `losses.forward`) scores it and returns a gradient, and that gradient is added back
to every one of those input rows. Threads share the matrices without locks (Hogwild);
each writes its own progress slot, so the shared token count needs no atomics. The slots
are a cache line apart (rows of 8 int64), so that one thread's writes never evict the line
the other thread is reading.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from collections import namedtuple

from .jitting import callee, zeros, zeros2
from .dictionary import MAX_LINE_SIZE, word_rows
from .losses import (OVA, dot_row, forward, heap_offer, predict_top_k, rand_below, rand_unit,
                     seed_rng, sort_heap)

# The learning-rate schedule and the state the training threads share: the initial rate,
# the tokens of the whole run (epochs x corpus), tokens between updates of the rate, each
# thread's token count and (loss sum, examples) on its own cache line (see
# trainer.cache_line_rows), and the stop flag the caller sets to end the run early.
Schedule = namedtuple("Schedule", "lr0 total_tokens lr_update_rate progress loss_stats stop")

# What the word-vector kernels look up for each token id: the end-of-line id, each word's
# probability to be kept by subsampling, and each word's input rows (itself and its char
# n-grams: the `Tables.subword_*` CSR arrays).
WordTables = namedtuple("WordTables", "eos_id keep_prob subword_offsets subword_ids")

# Classifier lines reach the kernels as records of int32, one after the other: the line's
# token count, its number of input rows, its number of labels, then the rows, then the
# label ids (0-based). RECORD_HEADER is the length of the first part.
RECORD_HEADER = 3


@nb.njit(cache=True, nogil=True, inline="always")
def mean_rows(wi, rows, start, stop, hidden):
    """hidden = mean of the rows wi[rows[start:stop]].

    Kernels pass index ranges, never slices: numba reference-counts every slice it makes,
    and two threads slicing the same shared array fight over the cache line holding that
    count (an atomic add and subtract per example).
    """
    hidden[:] = 0.0
    for k in range(start, stop):
        r = rows[k]
        for j in range(hidden.shape[0]):
            hidden[j] += wi[r, j]
    if stop > start:
        scale = np.float32(1.0 / (stop - start))
        for j in range(hidden.shape[0]):
            hidden[j] *= scale


@callee(fastmath=True, error_model="numpy")
def _update(wi, wo, params, rows, start, stop, targets, tstart, tstop, target, lr, grad_scale,
            hidden, grad, output, rng):
    """One example: the input rows rows[start:stop] predict targets[target] (the other
    targets[tstart:tstop] count as positives for ova); forward through the loss, then push
    the gradient, times `grad_scale`, into the input rows."""
    mean_rows(wi, rows, start, stop, hidden)
    grad[:] = 0.0
    loss = forward(params, wo, targets, tstart, tstop, target, lr, hidden, grad, output, rng)
    if grad_scale != 1.0:
        for j in range(grad.shape[0]):
            grad[j] *= grad_scale
    for k in range(start, stop):
        r = rows[k]
        for j in range(grad.shape[0]):
            wi[r, j] += grad[j]
    return loss


@callee
def _mean_shift(rows, start, stop):
    """How far the mean of wi[rows[start:stop]] moves when `g` is added once to each
    entry, in units of g: 1 unless a row is listed twice (two n-grams hashed to one
    bucket), then (sum of each entry's multiplicity) / entries."""
    total = 0
    for k in range(start, stop):
        for m in range(start, stop):
            total += rows[m] == rows[k]
    return np.float32(total / max(1, stop - start))


@nb.njit(cache=True, nogil=True, inline="always")
def _publish(tid, local, loss_sum, examples, schedule):
    """Add this thread's tokens to its own progress slot; returns the new local count (0)."""
    schedule.progress[tid, 0] += local
    schedule.loss_stats[tid, 0] = loss_sum
    schedule.loss_stats[tid, 1] = examples
    return 0


@nb.njit(cache=True, nogil=True, inline="always")
def _current_lr(schedule, local):
    """fastText's linear decay over the tokens of all threads; negative once training is done."""
    done = local
    progress = schedule.progress
    for t in range(progress.shape[0]):
        done += progress[t, 0]
    if done >= schedule.total_tokens:
        return -1.0
    return schedule.lr0 * (1.0 - done / schedule.total_tokens)


@nb.njit(cache=True, nogil=True, inline="always")
def _line_end(ids, pos, eos_id, at_corpus_end):
    """Where the line starting at ids[pos] ends, as fastText's getLine cuts it: after EOS,
    after MAX_LINE_SIZE + 1 tokens, or at the end of the corpus; -1 if `ids` ends first."""
    n = len(ids)
    last = min(n, pos + MAX_LINE_SIZE + 1)
    for j in range(pos, last):
        if ids[j] == eos_id:
            return j + 1
    if last < n or at_corpus_end or last - pos == MAX_LINE_SIZE + 1:
        return last
    return -1


@nb.njit(cache=True, nogil=True, inline="always")
def read_line(ids, pos, at_corpus_end, eos_id, keep_prob, rng, line):
    """The line starting at ids[pos] into `line`, frequent words dropped with probability
    1 - keep_prob: returns (where it ends, words kept), or (-1, 0) if `ids` ends first."""
    end = _line_end(ids, pos, eos_id, at_corpus_end)
    nline = np.int64(0)  # typed: _update's tstop, never compiled for a literal 0
    if end < 0:
        return end, nline
    for p in range(pos, end):
        w = ids[p]
        if w < len(keep_prob) and rand_unit(rng) <= keep_prob[w]:
            line[nline] = w
            nline += 1
    return end, nline


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def train_unsupervised(tid, rng, words, ids, at_corpus_end, wi, wo, params, cbow, ws, schedule):
    """cbow / skipgram over `ids`, the piece of the corpus that thread `tid` reads next
    (`at_corpus_end`: the piece ends where the corpus does).

    Lines are read as fastText's getLine does (see _line_end), frequent words dropped with
    probability 1 - keep_prob; a line the piece cuts is left for the next piece, so that
    any cutting gives the same training. `rng` and the thread's loss statistics carry
    over from one call to the next. Returns (ids used, finished): finished once all
    threads together have processed the schedule's `total_tokens`, or its stop flag is set.
    """
    eos_id, keep_prob = words.eos_id, words.keep_prob
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    stop, lr_update_rate = schedule.stop, schedule.lr_update_rate
    dim = wi.shape[1]
    nwords = len(keep_prob)
    hidden = np.zeros(dim, dtype=np.float32)
    grad = np.zeros(dim, dtype=np.float32)
    grad_sum = np.zeros(dim, dtype=np.float32)
    output = np.zeros(wo.shape[0], dtype=np.float32)
    line = np.empty(MAX_LINE_SIZE + 2, dtype=np.int32)
    longest = 1
    for w in range(nwords):
        longest = max(longest, sub_offsets[w + 1] - sub_offsets[w])
    bow = np.empty(2 * ws * longest, dtype=np.int32)
    # Typed constants rather than literals: a literal argument (0, False) makes numba
    # compile one more specialization of the callee.
    first = np.int64(0)
    unscaled = np.float32(1.0)
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
        for i in range(nline):
            boundary = 1 + rand_below(rng, ws)
            if cbow:
                nbow = 0
                for c in range(max(0, i - boundary), min(nline, i + boundary + 1)):
                    if c != i:
                        ctx = line[c]
                        for k in range(sub_offsets[ctx], sub_offsets[ctx + 1]):
                            bow[nbow] = sub_ids[k]
                            nbow += 1
                if nbow > 0:
                    loss_sum += _update(wi, wo, params, bow, first, np.int64(nbow), line, first,
                                        nline, i, lr, unscaled, hidden, grad, output, rng)
                    examples += 1
            else:
                # fastText adds each context's gradient to the center's rows and averages
                # them again for the next context. Only that average is read until the
                # center is done, and it moves by exactly the gradient (times `shift`
                # when a row is listed twice), so the rows get the sum once, at the end.
                center = line[i]
                a, b = sub_offsets[center], sub_offsets[center + 1]
                mean_rows(wi, sub_ids, a, b, hidden)
                shift = _mean_shift(sub_ids, a, b)
                grad_sum[:] = 0.0
                for c in range(max(0, i - boundary), min(nline, i + boundary + 1)):
                    if c != i:
                        grad[:] = 0.0
                        loss_sum += forward(params, wo, line, first, nline, c, lr, hidden,
                                            grad, output, rng)
                        for j in range(dim):
                            grad_sum[j] += grad[j]
                            hidden[j] += shift * grad[j]
                        examples += 1
                for k in range(a, b):
                    r = sub_ids[k]
                    for j in range(dim):
                        wi[r, j] += grad_sum[j]
        if local > lr_update_rate:
            local = _publish(tid, local, loss_sum, examples, schedule)
    _publish(tid, local, loss_sum, examples, schedule)
    return pos, finished


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def train_supervised(tid, rng, records, wi, wo, params, schedule):
    """Classifier training over `records` (see RECORD_HEADER), the piece of the corpus
    that thread `tid` reads next; a record the piece cuts is left for the next piece.

    softmax/ns/hs learn one label per line drawn at random; ova learns all of them.
    The gradient is divided by the number of input rows, as in fastText. Returns
    (int32 values used, finished), as train_unsupervised.
    """
    stop, lr_update_rate = schedule.stop, schedule.lr_update_rate
    dim = wi.shape[1]
    hidden = zeros(dim, np.float32)
    grad = zeros(dim, np.float32)
    output = zeros(wo.shape[0], np.float32)
    pos = 0
    local = 0
    loss_sum = schedule.loss_stats[tid, 0]
    examples = np.int64(schedule.loss_stats[tid, 1])
    finished = False
    while pos + RECORD_HEADER <= len(records):
        if stop[0] != 0:
            finished = True
            break
        lr = _current_lr(schedule, local)
        if lr < 0:
            finished = True
            break
        a = pos + RECORD_HEADER
        b = a + records[pos + 1]
        lb = b + records[pos + 2]
        if lb > len(records):
            break
        local += records[pos]
        pos = lb
        if b > a and lb > b:
            target = b if params.kind == OVA else b + rand_below(rng, lb - b)
            loss_sum += _update(wi, wo, params, records, a, b, records, b, lb, target, lr,
                                np.float32(1.0 / (b - a)), hidden, grad, output, rng)
            examples += 1
        if local > lr_update_rate:
            local = _publish(tid, local, loss_sum, examples, schedule)
    _publish(tid, local, loss_sum, examples, schedule)
    return pos, finished


INIT_BLOCK = 1 << 20  # values per independently seeded block of init_uniform


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def init_uniform(matrix, bound, seed, first_block, end_block):
    """Fill blocks [first_block, end_block) of a float32 matrix (INIT_BLOCK values each,
    in row-major order) with U(-bound, bound) from the project's own seeded rng.

    Each block has its own stream, so threads can fill disjoint blocks and the matrix is
    the same whatever the number of threads. Streams are salted so that they differ from
    the ones training threads draw.
    """
    flat = matrix.reshape(-1)
    scale = np.float32(2.0 * bound / 16777216.0)
    shift = np.float32(bound)
    for block in range(first_block, end_block):
        x = seed_rng(seed ^ (0x5EED + (block << 20)))[0]
        for i in range(block * INIT_BLOCK, min((block + 1) * INIT_BLOCK, flat.shape[0])):
            # rand_unit's xorshift64* step, with the state kept in a register
            x ^= x >> np.uint64(12)
            x ^= x << np.uint64(25)
            x ^= x >> np.uint64(27)
            top24 = (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(40)
            flat[i] = np.float32(top24) * scale - shift


# ---------------------------------------------------------------------- inference


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
    for i in range(nlines):
        a, b = feat_offsets[i], feat_offsets[i + 1]
        if b == a:
            continue
        mean_rows(wi, feats, a, b, hidden)
        n = predict_top_k(params, wo, wo_t, hidden, k, threshold, output, heap_scores, heap_ids)
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
