"""numba kernels: the training loops (one call per thread) and batched inference.

The model is fastText's: the hidden vector is the mean of some input rows, the loss
(see `losses.forward`) scores it and returns a gradient, and that gradient is added back
to every one of those input rows. Threads share the matrices without locks (Hogwild),
except a small softmax or ova output matrix, which each classifier thread learns on a
copy of and merges every few examples (train_supervised). Each thread writes its own
progress slot, so the shared token count needs no atomics. The slots are a cache line
apart (rows of 8 int64), so that one thread's writes never evict the line the other
thread is reading.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np
from numba.extending import overload

from .jitting import callee, empty
from .dictionary import MAX_LINE_SIZE
from .losses import OVA, SOFTMAX, forward
from .primitives import rand_below, rand_unit, seed_rng

# The learning-rate schedule and the state the training threads share: the initial rate,
# the tokens of the whole run (epochs x corpus), tokens between updates of the rate, each
# thread's token count and (loss sum, examples) on its own cache line (see
# trainer.cache_line_rows), and the stop flag the caller sets to end the run early.
Schedule = namedtuple("Schedule", "lr0 total_tokens lr_update_rate progress loss_stats stop")

# What a training kernel learns: fastText's Model, the input and output matrices and the
# loss's parameters (one of losses' per-loss classes: see losses.for_kernels).
Model = namedtuple("Model", "wi wo params")

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
def _update(model, state, records, a, b, lb, target, lr):
    """One classifier example: the input rows records[a:b] predict records[target] (the
    other labels records[b:lb] count as positives for ova); forward through the loss,
    then push the gradient, divided by the number of input rows as fastText does, into
    those rows."""
    wi, hidden, grad = model.wi, state.hidden, state.grad
    mean_rows(wi, records, a, b, hidden)
    grad[:] = 0.0
    loss = forward(model.params, model.wo, records, b, lb, target, lr, state)
    grad_scale = np.float32(1.0 / (b - a))
    if grad_scale != 1.0:
        for j in range(grad.shape[0]):
            grad[j] *= grad_scale
    for k in range(a, b):
        r = records[k]
        for j in range(grad.shape[0]):
            wi[r, j] += grad[j]
    return loss


@callee
def _shared_rows(rows, a, b):
    """How many (entry, entry) pairs of rows[a:b] name the same row: how far the sum of
    wi[rows[a:b]] moves, in units of g, when g is added once to each of its entries. Its
    number of entries, unless two n-grams share a bucket."""
    total = 0
    for k in range(a, b):
        r = rows[k]
        for m in range(a, b):
            total += rows[m] == r
    return np.float32(total)


# The loop every training kernel runs, in pieces shared by all of them:
#
#     loss_sum, examples = _thread_stats(state, schedule)
#     while there is input:
#         lr = _next_lr(schedule, local)          # negative: stop (flag set, or all done)
#         read one example or line; local += its tokens
#         learn from it at lr
#         if local > schedule.lr_update_rate:   # written out: an inlined helper that
#             local = _publish(...)             # returned either `local` or 0 lost counts
#     _publish(state, schedule, local, loss_sum, examples)


@nb.njit(cache=True, nogil=True, inline="always")
def _thread_stats(state, schedule):
    """This thread's (loss sum, examples) so far: they carry over between kernel calls."""
    return schedule.loss_stats[state.tid, 0], np.int64(schedule.loss_stats[state.tid, 1])


@nb.njit(cache=True, nogil=True, inline="always")
def _publish(state, schedule, local, loss_sum, examples):
    """Add this thread's tokens to its own progress slot; returns the new local count (0)."""
    schedule.progress[state.tid, 0] += local
    schedule.loss_stats[state.tid, 0] = loss_sum
    schedule.loss_stats[state.tid, 1] = examples
    return 0


@nb.njit(cache=True, nogil=True, inline="always")
def _next_lr(schedule, local):
    """fastText's linear decay over the tokens of all threads; negative once training is
    done or the caller has set the stop flag."""
    if schedule.stop[0] != 0:
        return -1.0
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


# How train_unsupervised learns from a line: a tuple of the mode's options and scratch
# arrays, whose class names the function that learns (its `learn_line`, see learn_line).
# Skipgram: the window size and the sum of the center's gradients.
Skipgram = namedtuple("Skipgram", "ws grad_sum")
# cbow: the window size and the window of words around the target (see _cbow_line): a ring
# of power-of-two slots holding each word's read row sum, its pending gradient and its
# number of rows; for each pair of slots, how many rows the two words share; and which
# slots list each row, as a hash table of (row, slot) entries, one per listing.
CbowWindow = namedtuple("CbowWindow", "ws sums pending nrows shared row_keys row_slots")


def skipgram_scratch(ws: int, dim: int) -> Skipgram:
    """A thread's skipgram options and scratch for train_unsupervised."""
    return Skipgram(int(ws), np.zeros(dim, np.float32))


def cbow_window(ws: int, dim: int, subword_offsets: np.ndarray) -> CbowWindow:
    """A thread's cbow options and window for train_unsupervised."""
    span = 2
    while span <= 2 * ws:  # the target and ws words either side
        span *= 2
    longest = max(1, int(np.diff(subword_offsets).max(initial=1)))
    entries = 16
    while entries < 4 * span * longest:  # a quarter full at most: short probes
        entries *= 2
    return CbowWindow(int(ws), np.zeros((span, dim), np.float32),
                      np.zeros((span, dim), np.float32), np.zeros(span, np.int64),
                      np.zeros((span, span), np.float32), np.full(entries, -1, np.int32),
                      np.zeros(entries, np.int32))


@nb.njit(cache=True, nogil=True, inline="always")
def _home(row, entries):
    """Where a row's probe sequence starts in the window's table (Fibonacci hashing)."""
    return np.int64((np.uint64(row) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & (
        entries - 1)


@callee(fastmath=True)
def _enter(wi, window, p, word, sub_offsets, sub_ids):
    """Word `word` at line position p comes within ws of the target: read its row sum,
    list its rows in the table and count the rows it shares with each word there."""
    sums, nrows, shared = window.sums, window.nrows, window.shared
    keys, slots = window.row_keys, window.row_slots
    mask, entries = sums.shape[0] - 1, len(keys)
    s = p & mask
    a, b = sub_offsets[word], sub_offsets[word + 1]
    sums[s, :] = 0.0
    window.pending[s, :] = 0.0
    shared[s, :] = 0.0
    repeats = 0  # pairs of listings of one row within this word
    for k in range(a, b):
        r = sub_ids[k]
        for j in range(sums.shape[1]):
            sums[s, j] += wi[r, j]
        at = _home(r, entries)
        while keys[at] >= 0:
            if keys[at] == r:
                if slots[at] == s:
                    repeats += 1
                else:
                    shared[s, slots[at]] += 1.0
            at = (at + 1) & (entries - 1)
        keys[at] = r
        slots[at] = s
    nrows[s] = b - a
    shared[s, s] = b - a + 2 * repeats
    for t in range(mask + 1):
        shared[t, s] = shared[s, t]


@nb.njit(cache=True, nogil=True, inline="always")
def _unlist(keys, slots, row, s):
    """Remove the entry (row, s) from the table, moving later entries of the probe run
    back so that no lookup stops early (linear probing's deletion)."""
    entries = len(keys)
    at = _home(row, entries)
    while keys[at] != row or slots[at] != s:
        at = (at + 1) & (entries - 1)
    hole, nxt = at, (at + 1) & (entries - 1)
    while keys[nxt] >= 0:
        home = _home(keys[nxt], entries)
        # the entry at nxt may fill the hole unless its home lies in (hole, nxt]
        if (nxt - home) & (entries - 1) >= (nxt - hole) & (entries - 1):
            keys[hole], slots[hole] = keys[nxt], slots[nxt]
            hole = nxt
        nxt = (nxt + 1) & (entries - 1)
    keys[hole] = -1


@callee(fastmath=True)
def _leave(wi, window, p, end_live, sub_offsets, sub_ids, word):
    """Word p falls behind the window: its pending gradient goes into its rows, and into
    the read sums of the words after it that share some of those rows."""
    sums, pending, shared = window.sums, window.pending, window.shared
    mask = sums.shape[0] - 1
    s = p & mask
    dim = wi.shape[1]
    for k in range(sub_offsets[word], sub_offsets[word + 1]):
        r = sub_ids[k]
        for j in range(dim):
            wi[r, j] += pending[s, j]
        _unlist(window.row_keys, window.row_slots, r, s)
    for q in range(p + 1, end_live):
        both = shared[q & mask, s]
        if both != 0.0:
            for j in range(dim):
                sums[q & mask, j] += both * pending[s, j]


@callee(fastmath=True, error_model="numpy")
def _cbow_line(state, model, words, window, line, nline, lr):
    """fastText's cbow over one line, with each word's rows read once and written once.

    fastText averages the rows of every context word for each target and adds the gradient
    to all of them: a word's ~18 rows are read and written for each of its ~2 x ws
    targets. Here a word's row sum is read when it comes within ws of the target, and the
    gradients for its rows add up until it falls behind the window, when they are written.
    The sum of a word's rows, as fastText would see it, is its read sum plus, for each word
    in the window, that word's pending gradient times the rows the two share (n-grams like
    "ing>", a repeated word). In exact arithmetic this is fastText's training.
    Returns (loss sum, examples).
    """
    wi, wo, params = model.wi, model.wo, model.params
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    hidden, grad, rng = state.hidden, state.grad, state.rng
    ws = window.ws
    sums, pending, shared = window.sums, window.pending, window.shared
    mask = sums.shape[0] - 1
    dim = hidden.shape[0]
    first = np.int64(0)  # typed: a literal 0 would compile another forward
    loss = 0.0
    examples = np.int64(0)
    entered = np.int64(0)  # typed: a literal 0 would compile another _enter
    for i in range(nline):
        while entered < min(nline, i + ws + 1):
            _enter(wi, window, entered, line[entered], sub_offsets, sub_ids)
            entered += 1
        boundary = 1 + rand_below(rng, ws)
        lo, hi = max(0, i - boundary), min(nline, i + boundary + 1)
        nrows = 0
        hidden[:] = 0.0
        for q in range(lo, hi):
            if q != i:
                nrows += window.nrows[q & mask]
                for j in range(dim):
                    hidden[j] += sums[q & mask, j]
        if nrows > 0:
            for t in range(max(0, i - ws), entered):
                weight = np.float32(0.0)
                for q in range(lo, hi):
                    if q != i:
                        weight += shared[q & mask, t & mask]
                if weight != 0.0:
                    for j in range(dim):
                        hidden[j] += weight * pending[t & mask, j]
            scale = np.float32(1.0 / nrows)
            for j in range(dim):
                hidden[j] *= scale
            grad[:] = 0.0
            loss += forward(params, wo, line, first, nline, i, lr, state)
            for q in range(lo, hi):
                if q != i:
                    for j in range(dim):
                        pending[q & mask, j] += grad[j]
            examples += 1
        if i >= ws:
            _leave(wi, window, i - ws, entered, sub_offsets, sub_ids, line[i - ws])
    for p in range(max(0, nline - ws), nline):
        _leave(wi, window, p, nline, sub_offsets, sub_ids, line[p])
    return loss, examples


@callee(fastmath=True, error_model="numpy")
def _skipgram_line(state, model, words, step, line, nline, lr):
    """fastText's skipgram over one line: each word predicts the words within a window of
    1..ws words either side. Returns (loss sum, examples).

    fastText adds each context's gradient to the center's rows and averages them again
    for the next context. Only that average is read until the center is done, and it
    moves by exactly the gradient (times `shift` when a row is listed twice), so the rows
    get the sum once, at the end.
    """
    wi, wo, params = model.wi, model.wo, model.params
    sub_offsets, sub_ids = words.subword_offsets, words.subword_ids
    hidden, grad, grad_sum = state.hidden, state.grad, step.grad_sum
    dim = wi.shape[1]
    first = np.int64(0)  # typed: a literal 0 would compile another forward
    loss = 0.0
    examples = np.int64(0)
    for i in range(nline):
        boundary = 1 + rand_below(state.rng, step.ws)
        center = line[i]
        a, b = sub_offsets[center], sub_offsets[center + 1]
        if a == b:  # a word without rows (floret's EOS): fastText's update returns at once
            continue
        mean_rows(wi, sub_ids, a, b, hidden)
        shift = _shared_rows(sub_ids, a, b) / np.float32(max(1, b - a))
        grad_sum[:] = 0.0
        for c in range(max(0, i - boundary), min(nline, i + boundary + 1)):
            if c != i:
                grad[:] = 0.0
                loss += forward(params, wo, line, first, nline, c, lr, state)
                for j in range(dim):
                    grad_sum[j] += grad[j]
                    hidden[j] += shift * grad[j]
                examples += 1
        for k in range(a, b):
            r = sub_ids[k]
            for j in range(dim):
                wi[r, j] += grad_sum[j]
    return loss, examples


Skipgram.learn_line = _skipgram_line
CbowWindow.learn_line = _cbow_line


def learn_line(state, model, words, step, line, nline, lr):
    """Learn from line[:nline] at rate `lr` as `step` says (Skipgram, CbowWindow,
    minibatch.Batched): its class's `learn_line`. Returns (loss sum, examples).

    In a kernel the function is chosen from the class when the kernel is compiled, so each
    mode compiles its own code alone (as losses.forward chooses a loss).
    """
    return type(step).learn_line(state, model, words, step, line, nline, lr)


@overload(learn_line, inline="always", jit_options={"no_cfunc_wrapper": True})
def _learn_line_of(state, model, words, step, line, nline, lr):
    chosen = step.instance_class.learn_line

    def call(state, model, words, step, line, nline, lr):
        return chosen(state, model, words, step, line, nline, lr)
    return call


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def train_unsupervised(state, model, words, ids, at_corpus_end, step, schedule):
    """Word vectors as `step` says (skipgram, cbow, or -batch: see learn_line) over `ids`,
    the piece of the corpus that thread `state.tid` reads next (`at_corpus_end`: the
    piece ends where the corpus does).

    Lines are read as fastText's getLine does (see _line_end), frequent words dropped with
    probability 1 - keep_prob; a line the piece cuts is left for the next piece, so that
    any cutting gives the same training. The thread's random state and loss statistics
    carry over from one call to the next. Returns (ids used, finished): finished once all
    threads together have processed the schedule's `total_tokens`, or its stop flag is set.
    """
    line = empty(MAX_LINE_SIZE + 2, np.int32)
    pos = 0
    local = 0
    loss_sum, examples = _thread_stats(state, schedule)
    finished = False
    while pos < len(ids):
        lr = _next_lr(schedule, local)
        if lr < 0:
            finished = True
            break
        end, nline = read_line(ids, pos, at_corpus_end, words.eos_id, words.keep_prob,
                               state.rng, line)
        if end < 0:
            break
        local += end - pos
        pos = end
        line_loss, line_examples = learn_line(state, model, words, step, line, nline, lr)
        loss_sum += line_loss
        examples += line_examples
        if local > schedule.lr_update_rate:
            local = _publish(state, schedule, local, loss_sum, examples)
    _publish(state, schedule, local, loss_sum, examples)
    return pos, finished


# Examples a thread learns on its own copy of a softmax or ova output matrix before it adds
# them to the shared one (train_supervised): often enough that the threads see each other's
# updates soon, rarely enough that adding costs little (from 4 to 64 train equally fast:
# benchmarks/README.md, "Design notes behind the kernels").
SHARE_EVERY = 16
# The copies cost two output matrices a thread: above this many values (16 MB) threads
# update the shared matrix directly, as fastText's.
PRIVATE_OUTPUT_MAX = 1 << 22


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def train_supervised(state, model, records, schedule):
    """Classifier training over `records` (see RECORD_HEADER), the piece of the corpus
    that thread `state.tid` reads next; a record the piece cuts is left for the next piece.

    softmax/ns/hs learn one label per line drawn at random; ova learns all of them.
    Returns (int32 values used, finished), as train_unsupervised.
    """
    wo, params = model.wo, model.params
    # softmax and ova write every output row for every example; threads sharing those rows
    # at that rate spend their time moving cache lines, so each thread learns on its own
    # copy and adds what it learned to the shared matrix every SHARE_EVERY examples.
    private = learns_privately(schedule.progress.shape[0], wo.size, params.kind)
    mine = wo.copy() if private else wo
    shared_as = mine.copy() if private else wo  # mine's copy: wo may change in between
    learner = Model(model.wi, mine, params)
    pos = 0
    local = 0
    loss_sum, examples = _thread_stats(state, schedule)
    finished = False
    while pos + RECORD_HEADER <= len(records):
        lr = _next_lr(schedule, local)
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
            target = b if params.kind == OVA else b + rand_below(state.rng, lb - b)
            loss_sum += _update(learner, state, records, a, b, lb, target, lr)
            examples += 1
            if private and examples % SHARE_EVERY == 0:
                share_output(wo, mine, shared_as)
        if local > schedule.lr_update_rate:
            local = _publish(state, schedule, local, loss_sum, examples)
    if private:
        share_output(wo, mine, shared_as)
    _publish(state, schedule, local, loss_sum, examples)
    return pos, finished


@nb.njit(cache=True, nogil=True)
def learns_privately(nthreads, output_size, kind):
    """Whether train_supervised's threads learn on copies of the output matrix."""
    return nthreads > 1 and output_size <= PRIVATE_OUTPUT_MAX and (kind == SOFTMAX or kind == OVA)


@nb.njit(cache=True, nogil=True)
def share_output(wo, mine, shared_as):
    """Add what this thread learned since the last call (mine - shared_as) to the shared
    `wo`, and start again from the result, which has the other threads' updates too.
    Two threads sharing at the same moment race as Hogwild updates do, so one may lose a
    value's last few examples of the other; none is ever counted twice."""
    for i in range(wo.shape[0]):
        for j in range(wo.shape[1]):
            w = wo[i, j] + (mine[i, j] - shared_as[i, j])
            wo[i, j] = w
            mine[i, j] = w
            shared_as[i, j] = w


INIT_BLOCK = 1 << 20  # values per independently seeded block of init_uniform


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def init_uniform(flat, bound, seed, first_block, end_block):
    """Fill blocks [first_block, end_block) of a float32 matrix's values in row-major
    order (`flat`, INIT_BLOCK values a block) with U(-bound, bound) from the project's
    own seeded rng.

    Each block has its own stream, so threads can fill disjoint blocks and the matrix is
    the same whatever the number of threads. Streams are salted so that they differ from
    the ones training threads draw.
    """
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
