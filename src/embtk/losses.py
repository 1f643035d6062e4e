"""The four output layers (hs, ns, softmax, one-vs-all) behind one `forward` and one `predict`.

Each loss scores the hidden vector against rows of the output matrix `wo`, accumulates
the gradient for the input rows into `grad`, and updates `wo` in place. The
parameters a loss needs (negative table, Huffman paths) travel in one `LossParams` tuple,
a training thread's hidden vector, gradient, scores and random state in one `State`.

Training kernels are compiled with fastmath (reordered sums, fused multiply-adds) and
numpy's error model (a diverging run yields NaN, reported after training, instead of
raising inside a thread); the
prediction path is not, so that its float32 arithmetic is done in fastText's order and
probabilities print to the last digit as fastText prints them. The small helpers are
inlined and take their caller's setting.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba as nb
import numpy as np
from numba.extending import overload

from .jitting import callee, empty
from .primitives import alias_table, heap_offer, huffman_tree, rand_below, rand_unit, sort_heap

HS, NS, SOFTMAX, OVA = 1, 2, 3, 4
SIGMOID_TABLE_SIZE = 512
MAX_SIGMOID = 8.0
LOG_TABLE_SIZE = 512


def _sigmoid_table():
    # As fastText builds it: x in float, exp(float) rounded to float, then 1 / (1 + e).
    x = np.arange(SIGMOID_TABLE_SIZE + 1, dtype=np.float32) * np.float32(2 * MAX_SIGMOID / SIGMOID_TABLE_SIZE)
    x -= np.float32(MAX_SIGMOID)
    e = np.array([np.float32(math.exp(-float(v))) for v in x], dtype=np.float64)
    return (1.0 / (1.0 + e)).astype(np.float32)


def _log_table():
    # x = (i + 1e-5) / 512 rounded to float, then log(float) rounded to float.
    x = ((np.arange(LOG_TABLE_SIZE + 1) + 1e-5) / LOG_TABLE_SIZE).astype(np.float32)
    return np.array([math.log(float(v)) for v in x]).astype(np.float32)


_SIGMOID = _sigmoid_table()
_LOG = _log_table()

LossParams = namedtuple("LossParams",
                        "kind neg neg_keep neg_alias tree_left tree_right path_offsets paths codes")
# The same fields under a class of each loss (see `for_kernels`): numba compiles a kernel
# for each class of its arguments, so one given HsParams carries hs's code alone, where
# LossParams, whose kind is known only at run time, compiles all four into the kernel.
HsParams = namedtuple("HsParams", LossParams._fields)
NsParams = namedtuple("NsParams", LossParams._fields)
SoftmaxParams = namedtuple("SoftmaxParams", LossParams._fields)
OvaParams = namedtuple("OvaParams", LossParams._fields)
# A prediction's scratch: every output's score or probability (`output`, room for each
# output), and the top-k heap (`scores`, `ids`, room for k + 1 entries).
TopK = namedtuple("TopK", "output scores ids")
_PARAMS_OF_KIND = {HS: HsParams, NS: NsParams, SOFTMAX: SoftmaxParams, OVA: OvaParams}

# A training thread's own state, as fastText's Model::State: its id (its progress slot in
# kernels.Schedule), its random state (seed_rng's one uint64), and the hidden vector, its
# gradient and the scores of every output (dim, dim and output-size float32 arrays).
# Built once per thread; the kernels overwrite hidden, grad and output before reading them.
State = namedtuple("State", "tid rng hidden grad output")


def thread_state(tid: int, rng: np.ndarray, dim: int, outputs: int) -> State:
    """A State for thread `tid`, drawing from `rng` (a 1-element uint64 array)."""
    return State(int(tid), rng, np.zeros(dim, np.float32), np.zeros(dim, np.float32),
                 np.zeros(outputs, np.float32))


# ------------------------------------------------------------------------- tables


@nb.njit(cache=True, nogil=True, inline="always")
def sigmoid(x):
    if x < -MAX_SIGMOID:
        return np.float32(0.0)
    if x > MAX_SIGMOID:
        return np.float32(1.0)
    # np.int64 and a conditional, not int(), min() and max(): those are numba functions
    # compiled afresh in every process for each set of compile options of the callers
    i = np.int64((x + np.float32(MAX_SIGMOID)) * np.float32(SIGMOID_TABLE_SIZE / MAX_SIGMOID / 2))
    return _SIGMOID[0 if i < 0 else (SIGMOID_TABLE_SIZE if i > SIGMOID_TABLE_SIZE else i)]


@nb.njit(cache=True, nogil=True, inline="always")
def table_log(x):
    if x > 1.0:
        return np.float32(0.0)
    i = np.int64(x * LOG_TABLE_SIZE)  # see sigmoid
    return _LOG[0 if i < 0 else (LOG_TABLE_SIZE if i > LOG_TABLE_SIZE else i)]


# ------------------------------------------------------------------------ updates


@nb.njit(cache=True, nogil=True, inline="always")
def dot_row(wo, row, hidden):
    """wo[row] . hidden in float32."""
    s = np.float32(0.0)
    for j in range(hidden.shape[0]):
        s += wo[row, j] * hidden[j]
    return s


@nb.njit(cache=True, nogil=True, inline="always")
def scaled_dot_row(wo, row, hidden):
    """dot_row for prediction: a quantized output matrix with separate norms carries each
    row's norm in an extra last column, and fastText scales the dot product by it.
    Training calls dot_row: this test in its inner loop would slow every logistic unit."""
    s = dot_row(wo, row, hidden)
    if wo.shape[1] > hidden.shape[0]:
        s *= wo[row, hidden.shape[0]]
    return s


@callee(fastmath=True, error_model="numpy")
def binary_logistic(wo, row, label, lr, hidden, grad):
    """One logistic unit with target `label` (float32 1 or 0): grad += alpha * wo[row];
    wo[row] += alpha * hidden. Returns the loss.

    Callers pass an int64 row and a float32 label, never a literal True/False: numba would
    compile one more copy of this function for each literal value.
    """
    score = sigmoid(dot_row(wo, row, hidden))
    alpha = np.float32(lr * (np.float64(label) - score))
    for j in range(hidden.shape[0]):
        w = wo[row, j]
        grad[j] += alpha * w
        wo[row, j] = w + alpha * hidden[j]
    if label > 0:
        return -table_log(score)
    return -table_log(np.float32(1.0) - score)


@nb.njit(cache=True, nogil=True, inline="always")
def softmax_output(wo, hidden, output):
    """output = softmax(wo @ hidden), computed stably."""
    for i in range(wo.shape[0]):
        output[i] = dot_row(wo, i, hidden)
    softmax_in_place(output, wo.shape[0])


@nb.njit(cache=True, nogil=True, inline="always")
def all_scores(wo_t, hidden, output):
    """output[i] = wo[i] . hidden for every row i, given wo transposed (`wo_t`).

    Each sum is the float32 sum dot_row makes, term by term in the same order, so the
    result is bit-identical; but consecutive rows are summed side by side, which the
    compiler turns into SIMD where dot_row, one row at a time without fastmath, cannot
    vectorize.
    """
    osz = wo_t.shape[1]
    dim = hidden.shape[0]
    for i in range(osz):
        output[i] = 0.0
    for j in range(dim):
        x = hidden[j]
        for i in range(osz):
            output[i] += wo_t[j, i] * x
    if wo_t.shape[0] > dim:  # quantized rows with their norms apart (see scaled_dot_row)
        for i in range(osz):
            output[i] *= wo_t[dim, i]


@nb.njit(cache=True, nogil=True, inline="always")
def softmax_in_place(output, osz):
    """output[:osz] = softmax(output[:osz]), computed stably."""
    top = output[0]
    for i in range(osz):
        top = max(output[i], top)
    z = np.float32(0.0)
    for i in range(osz):
        output[i] = math.exp(np.float64(output[i] - top))  # double exp, as fastText's
        z += output[i]
    for i in range(osz):
        output[i] /= z


@callee
def _contains(values, start, stop, x):
    for k in range(start, stop):
        if values[k] == x:
            return True
    return False


@callee(fastmath=True, error_model="numpy")
def _forward_ova(params, wo, targets, tstart, tstop, target_index, lr, state):
    hidden, grad = state.hidden, state.grad
    loss = np.float32(0.0)
    for i in range(wo.shape[0]):
        label = np.float32(1.0) if _contains(targets, tstart, tstop, i) else np.float32(0.0)
        loss += binary_logistic(wo, i, label, lr, hidden, grad)
    return loss


@callee(fastmath=True, error_model="numpy")
def _forward_ns(params, wo, targets, tstart, tstop, target_index, lr, state):
    hidden, grad, rng = state.hidden, state.grad, state.rng
    loss = np.float32(0.0)
    target = np.int64(targets[target_index])
    loss += binary_logistic(wo, target, np.float32(1.0), lr, hidden, grad)
    for _ in range(params.neg):
        negative = target  # drawn until it differs: one call site, one inlining to compile
        while negative == target:
            negative = draw_negative(params, rng)
        loss += binary_logistic(wo, negative, np.float32(0.0), lr, hidden, grad)
    return loss


@callee(fastmath=True, error_model="numpy")
def _forward_hs(params, wo, targets, tstart, tstop, target_index, lr, state):
    hidden, grad = state.hidden, state.grad
    loss = np.float32(0.0)
    target = np.int64(targets[target_index])
    for k in range(params.path_offsets[target], params.path_offsets[target + 1]):
        loss += binary_logistic(wo, np.int64(params.paths[k]), np.float32(params.codes[k]),
                                lr, hidden, grad)
    return loss


@callee(fastmath=True, error_model="numpy")
def _forward_softmax(params, wo, targets, tstart, tstop, target_index, lr, state):
    hidden, grad, output = state.hidden, state.grad, state.output
    target = np.int64(targets[target_index])
    softmax_output(wo, hidden, output)
    # Every row is updated, starting from a row the random state picks (read, not drawn):
    # Hogwild threads that update a shared matrix's rows in the same order contend for
    # each row's cache lines in step. Threads learn on private copies of matrices up to
    # kernels.PRIVATE_OUTPUT_MAX values, so this order matters for bigger ones only.
    osz = wo.shape[0]
    first = np.int64((state.rng[0] >> np.uint64(32)) % np.uint64(osz))
    for step in range(osz):
        i = first + step
        if i >= osz:
            i -= osz
        alpha = np.float32(lr * ((1.0 if i == target else 0.0) - output[i]))
        for j in range(hidden.shape[0]):
            w = wo[i, j]
            grad[j] += alpha * w
            wo[i, j] = w + alpha * hidden[j]
    return -table_log(output[target])


@nb.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", no_cfunc_wrapper=True)
def forward_any(params, wo, targets, tstart, tstop, target_index, lr, state):
    """`forward` for a LossParams: the loss chosen at run time."""
    kind = params.kind
    if kind == OVA:
        return _forward_ova(params, wo, targets, tstart, tstop, target_index, lr, state)
    if kind == NS:
        return _forward_ns(params, wo, targets, tstart, tstop, target_index, lr, state)
    if kind == HS:
        return _forward_hs(params, wo, targets, tstart, tstop, target_index, lr, state)
    return _forward_softmax(params, wo, targets, tstart, tstop, target_index, lr, state)


_FORWARD_OF_PARAMS = {HsParams: _forward_hs, NsParams: _forward_ns,
                      SoftmaxParams: _forward_softmax, OvaParams: _forward_ova}


def forward(params, wo, targets, tstart, tstop, target_index, lr, state):
    """Score `state.hidden` against targets[target_index] (ova: all of
    targets[tstart:tstop]), update `wo` and accumulate `state.grad` for the input rows;
    return the loss. ns draws its negatives from `state.rng`; softmax uses `state.output`.

    In a kernel, `params` of a loss's own class (`for_kernels`) compiles that loss's
    code alone; a LossParams, and any call from Python, goes through `forward_any`.
    """
    return forward_any(params, wo, targets, tstart, tstop, target_index, lr, state)


@overload(forward, inline="always", jit_options={"no_cfunc_wrapper": True})
def _forward_of(params, wo, targets, tstart, tstop, target_index, lr, state):
    chosen = _FORWARD_OF_PARAMS.get(getattr(params, "instance_class", None), forward_any)

    def call(params, wo, targets, tstart, tstop, target_index, lr, state):
        return chosen(params, wo, targets, tstart, tstop, target_index, lr, state)
    return call


def for_kernels(params: LossParams):
    """The same parameters under their loss's own class: a kernel given them compiles
    that loss's code alone (training's forward, prediction's search)."""
    return _PARAMS_OF_KIND[params.kind](*params)


# ---------------------------------------------------------------------- prediction


@callee
def _std_log(x):
    # fastText keeps these log-probabilities in 32-bit floats; so do we, to print the same.
    return np.float32(math.log(np.float32(x) + 1e-5))


@nb.njit(cache=True, nogil=True, inline="always")
def predict_top_k(params, wo, wo_t, hidden, k, threshold, best):
    """The k most probable outputs with p >= threshold, best first, as log(p + 1e-5), in
    best.scores and best.ids (a `TopK`: its heap needs room for k + 1 entries).

    `wo_t` is wo transposed (softmax and ova score every row with it). Returns how many
    were found. Given `params` of a loss's own class (`for_kernels`), a kernel compiles
    that loss's search alone.
    """
    n = find_k_best(params, wo, wo_t, hidden, k, threshold, best)
    sort_heap(best.scores, best.ids, n)
    return n


def find_k_best(params, wo, wo_t, hidden, k, threshold, best):
    """The unsorted top-k heap of predict_top_k; returns its size."""
    if params.kind == HS:
        return _tree_k_best(params, wo, hidden, k, threshold, best)
    return _scored_k_best(params, wo, wo_t, hidden, k, threshold, best)


@overload(find_k_best, jit_options={"no_cfunc_wrapper": True})
def _find_k_best_of(params, wo, wo_t, hidden, k, threshold, best):
    cls = getattr(params, "instance_class", None)
    if cls is HsParams:
        def tree(params, wo, wo_t, hidden, k, threshold, best):
            return _tree_k_best(params, wo, hidden, k, threshold, best)
        return tree
    if cls in (SoftmaxParams, OvaParams, NsParams):
        def scored(params, wo, wo_t, hidden, k, threshold, best):
            return _scored_k_best(params, wo, wo_t, hidden, k, threshold, best)
        return scored
    return find_k_best  # a LossParams: the kind is known at run time


@nb.njit(cache=True, nogil=True, inline="always")
def _tree_k_best(params, wo, hidden, k, threshold, best):
    """hs: fastText's depth-first search of the Huffman tree, branches below the heap's
    minimum skipped."""
    _, scores, ids = best
    n = np.int64(0)
    osz = wo.shape[0]
    log_threshold = _std_log(threshold)
    stack_nodes = empty(2 * osz, np.int64)
    stack_scores = empty(2 * osz, np.float32)
    stack_nodes[0] = 2 * osz - 2
    stack_scores[0] = 0.0
    top = 1
    while top > 0:
        top -= 1
        node = stack_nodes[top]
        score = stack_scores[top]
        if score < log_threshold or (n == k and score < scores[0]):
            continue
        if node < osz:
            n = heap_offer(scores, ids, n, k, score, node)
            continue
        e = math.exp(-scaled_dot_row(wo, node - osz, hidden))
        f = np.float32(1.0 / np.float32(np.float32(1.0) + e))
        stack_nodes[top] = params.tree_right[node]
        stack_scores[top] = score + _std_log(f)
        stack_nodes[top + 1] = params.tree_left[node]
        stack_scores[top + 1] = score + _std_log(1.0 - f)
        top += 2
    return n


@nb.njit(cache=True, nogil=True, inline="always")
def _scored_k_best(params, wo, wo_t, hidden, k, threshold, best):
    """softmax, ova and ns: every output scored, then offered to the heap."""
    output, scores, ids = best
    n = np.int64(0)
    all_scores(wo_t, hidden, output)
    if params.kind == SOFTMAX:
        softmax_in_place(output, wo.shape[0])
    else:
        for i in range(wo.shape[0]):
            output[i] = sigmoid(output[i])
    return offer_probabilities(output, wo.shape[0], threshold, k, scores, ids, n)


@nb.njit(cache=True, nogil=True, inline="always")
def offer_probabilities(output, count, threshold, k, scores, ids, n):
    """Offer output[:count] (probabilities at or above `threshold`) to the top-k heap of
    `n` entries by log probability; returns its new size. Outputs that cannot enter are
    skipped before their log is taken."""
    cut = np.float64(-1.0)  # outputs below it score below the full heap's minimum
    for i in range(count):
        p = output[i]
        if p < threshold or p < cut:
            continue
        score = _std_log(p)
        if n == k and score < scores[0]:
            continue
        n = heap_offer(scores, ids, n, k, score, i)
        if n == k:
            cut = _below_score(scores[0])
    return n


@callee
def _below_score(score):
    """A probability under which _std_log is certainly below `score`, so that most
    outputs are passed over without their logarithm (a log per output and line is a large
    part of prediction). Any p + 1e-5 < exp(the float32 just below `score`) has a log that rounds
    to that float32 or lower; the factor leaves room for the error of exp and log."""
    below = np.nextafter(np.float32(score), np.float32(-np.inf))
    return math.exp(np.float64(below)) * (1.0 - 1e-9) - 1e-5


# ------------------------------------------------------------------ construction


@nb.njit(cache=True, nogil=True, inline="always")
def draw_negative(params, rng):
    """An output drawn with probability proportional to sqrt(count), as fastText samples."""
    slot = rand_below(rng, len(params.neg_keep))
    if rand_unit(rng) < params.neg_keep[slot]:
        return slot
    return np.int64(params.neg_alias[slot])


def make_loss_params(kind: int, counts: np.ndarray, neg: int) -> LossParams:
    """Everything `forward`/`predict_top_k` need for `kind`, built from output counts."""
    counts = np.asarray(counts, dtype=np.float64)
    empty_i32, empty_i64 = np.zeros(0, np.int32), np.zeros(1, np.int64)
    keep, alias = np.zeros(0, np.float32), empty_i32
    left = right = np.zeros(0, np.int64)
    offsets, paths, codes = empty_i64, empty_i32, np.zeros(0, np.int8)
    if kind == NS and len(counts) < 2:
        neg = 0  # nothing to sample that differs from the target
    elif kind == NS:
        keep, alias = alias_table(np.sqrt(counts))
    elif kind == HS:
        left, right, offsets, paths, codes = huffman_tree(counts)
    return LossParams(int(kind), int(neg), keep, alias, left, right, offsets, paths, codes)
