"""Numba primitives below the models: a seeded random number generator, Walker's alias
table, fastText's Huffman tree and its top-k heap.

They hold no model: fastText's losses draw negatives and build hs paths with them, the
predictors rank with the heap, GloVe shuffles its co-occurrences and the quantizer seeds
k-means with the generator. Kept together, apart from the losses, so that those users
depend on these few functions and not on the loss layer; each is ported so that its
results match fastText's (the heap's order of ties, the tree's shape).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .jitting import callee, empty, zeros


# ------------------------------------------------------------------ random numbers


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def seed_rng(seed):
    """A per-thread xorshift64* state, spread from a small seed by splitmix64."""
    z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    state = empty(np.int64(1), np.uint64)
    state[0] = z if z != 0 else np.uint64(1)
    return state


@nb.njit(cache=True, nogil=True, inline="always")
def next_u32(state):
    x = state[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[0] = x
    return (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(32)


@nb.njit(cache=True, nogil=True, inline="always")
def rand_below(state, n):
    """Uniform integer in [0, n)."""
    return np.int64((next_u32(state) * np.uint64(n)) >> np.uint64(32))


@nb.njit(cache=True, nogil=True, inline="always")
def rand_unit(state):
    """Uniform float in [0, 1)."""
    return np.float32(next_u32(state) >> np.uint64(8)) * np.float32(1.0 / 16777216.0)


@nb.njit(cache=True, no_cfunc_wrapper=True)
def alias_table(weights):
    """Walker's alias method for drawing i with probability weights[i] / sum: (keep, alias).

    Draw a slot uniformly, keep it with probability keep[slot], else take alias[slot].
    fastText draws from a table of 10M entries instead: 40 MB read at random, a cache miss
    for every negative; these two arrays take 8 bytes per output and are exact.
    """
    n = len(weights)
    # loops rather than np.sum, `*`, np.ones, np.arange and astype: the same sums and
    # products, without compiling numba's own implementations of those in every process
    total = 0.0
    for i in range(n):
        total += weights[i]
    factor = n / total
    scaled = empty(n, np.float64)
    keep = empty(n, np.float32)
    alias = empty(n, np.int32)
    for i in range(n):
        scaled[i] = weights[i] * factor
        keep[i] = 1.0
        alias[i] = i
    small = empty(n, np.int64)
    large = empty(n, np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        nl -= 1
        s, g = small[ns], large[nl]
        keep[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            small[ns] = g
            ns += 1
        else:
            large[nl] = g
            nl += 1
    return keep, alias


# ---------------------------------------------------------------- Huffman tree


@nb.njit(cache=True, no_cfunc_wrapper=True)
def huffman_tree(counts):
    """fastText's Huffman tree over output counts (sorted by decreasing count), for hs:
    (left, right) children of each inner node, and each output's path of inner nodes
    (paths[offsets[i]:offsets[i + 1]], 0-based inner ids) with its branch codes."""
    osz = len(counts)
    size = 2 * osz - 1
    count = empty(size, np.float64)
    parent, left, right = empty(size, np.int64), empty(size, np.int64), empty(size, np.int64)
    binary = zeros(size, np.int8)
    for i in range(size):
        count[i] = 1e15
        parent[i], left[i], right[i] = -1, -1, -1
    for i in range(osz):
        count[i] = counts[i]
    leaf = osz - 1
    node = osz
    for i in range(osz, size):
        mini = zeros(2, np.int64)
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j] = leaf
                leaf -= 1
            else:
                mini[j] = node
                node += 1
        left[i] = mini[0]
        right[i] = mini[1]
        count[i] = count[mini[0]] + count[mini[1]]
        parent[mini[0]] = i
        parent[mini[1]] = i
        binary[mini[1]] = 1
    offsets = zeros(osz + 1, np.int64)
    for i in range(osz):
        depth = 0
        j = i
        while parent[j] != -1:
            depth += 1
            j = parent[j]
        offsets[i + 1] = offsets[i] + depth
    paths = empty(offsets[osz], np.int32)
    codes = empty(offsets[osz], np.int8)
    for i in range(osz):
        k = offsets[i]
        j = i
        while parent[j] != -1:
            paths[k] = parent[j] - osz
            codes[k] = binary[j]
            k += 1
            j = parent[j]
    return left, right, offsets, paths, codes


# ------------------------------------------------------------------- top-k heap


# The k best are kept in a min-heap ordered exactly as fastText's (libstdc++'s
# push_heap/pop_heap/sort_heap with "greater score first"), so that equal
# probabilities, common with the table sigmoid, come out in the same order.


@callee
def _sift_up(scores, ids, hole, top, score, idx):
    parent = (hole - 1) // 2
    while hole > top and scores[parent] > score:
        scores[hole] = scores[parent]
        ids[hole] = ids[parent]
        hole = parent
        parent = (hole - 1) // 2
    scores[hole] = score
    ids[hole] = idx


@callee
def _pop_to(scores, ids, last):
    """Move the heap's front to position `last`, restoring the heap on [0, last)."""
    score, idx = scores[last], ids[last]
    scores[last], ids[last] = scores[0], ids[0]
    hole, child = 0, 0
    while child < (last - 1) // 2:
        child = 2 * (child + 1)
        if scores[child] > scores[child - 1]:
            child -= 1
        scores[hole], ids[hole] = scores[child], ids[child]
        hole = child
    if (last & 1) == 0 and child == (last - 2) // 2:
        child = 2 * (child + 1)
        scores[hole], ids[hole] = scores[child - 1], ids[child - 1]
        hole = child - 1
    _sift_up(scores, ids, hole, 0, score, idx)


@callee
def heap_offer(scores, ids, n, k, score, idx):
    """Add (score, idx) to a heap of at most k items held in arrays of size k + 1."""
    _sift_up(scores, ids, n, 0, score, idx)
    n += 1
    if n > k:
        _pop_to(scores, ids, n - 1)
        n -= 1
    return n


@callee
def sort_heap(scores, ids, n):
    """Best first, as std::sort_heap leaves it."""
    while n > 1:
        n -= 1
        _pop_to(scores, ids, n)
