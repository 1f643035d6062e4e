"""libstdc++'s std::sort (introsort), ported so that entries come out in fastText's order.

fastText orders its vocabulary with std::sort, which is not stable: entries with equal
counts end up in an order that only that algorithm reproduces. Median-of-three quicksort,
heapsort past the depth limit, then insertion sort of runs of 16, each as libstdc++ does
it, so that a corpus gives the same ids in embtk as in fastText.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.extending import overload

from .jitting import callee, empty

_SORT_RUN = 16
_KEY_TOP = np.int64(1) << 62


def sort_keys(types, counts):
    """One int64 per entry whose order is fastText's (words before labels, then the higher
    count first): type * 2**62 + (2**62 - 1 - count). The sort compares keys[a] < keys[b]
    instead of calling a comparator over two arrays. numpy from Python (nothing to
    compile), the same lines in a kernel (`_sort_keys_of`)."""
    return (np.asarray(types).astype(np.int64) * _KEY_TOP
            + (_KEY_TOP - 1 - np.asarray(counts).astype(np.int64)))


@overload(sort_keys, jit_options={"no_cfunc_wrapper": True})
def _sort_keys_of(types, counts):
    return sort_keys


@callee
def _adjust_heap(perm, first, hole, length, value, keys):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if keys[perm[first + child]] < keys[perm[first + child - 1]]:
            child -= 1
        perm[first + hole] = perm[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        perm[first + hole] = perm[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and keys[perm[first + parent]] < keys[value]:
        perm[first + hole] = perm[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    perm[first + hole] = value


@callee
def _heap_sort(perm, first, last, keys):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(perm, first, parent, length, perm[first + parent], keys)
        if parent == 0:
            break
        parent -= 1
    while last - first > 1:
        last -= 1
        value = perm[last]
        perm[last] = perm[first]
        _adjust_heap(perm, first, np.int64(0), last - first, value, keys)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _introsort_loop(keys):
    """std::sort up to its final insertion sort: (perm, ranges, nranges), where
    ranges[2k:2k+2] are the nranges ranges the depth limit leaves to heapsort.

    Each range is cut by the median of three moved to its first place, then the
    unguarded Hoare partition around it. Ranges past the depth limit are rare (orders
    built to defeat the median of three), so `sort_order` compiles the heapsort only when
    one shows up; they are disjoint, so sorting them after the loop rather than when met
    gives the same permutation."""
    n = len(keys)
    perm = empty(n, np.int64)
    for i in range(n):
        perm[i] = i
    ranges = empty(2 * (n // _SORT_RUN + 1), np.int64)
    nranges = 0
    if n < 2:
        return perm, ranges, nranges
    depth = 0
    while (1 << (depth + 1)) <= n:
        depth += 1
    stack = empty((2 * depth + 2) * 3 + 3, np.int64)
    stack[0], stack[1], stack[2] = 0, n, 2 * depth
    top = 1
    while top > 0:
        top -= 1
        first, last, limit = stack[3 * top], stack[3 * top + 1], stack[3 * top + 2]
        while last - first > _SORT_RUN:
            if limit == 0:
                ranges[2 * nranges], ranges[2 * nranges + 1] = first, last
                nranges += 1
                break
            limit -= 1
            a, b, c = first + 1, first + (last - first) // 2, last - 1
            ka, kb, kc = keys[perm[a]], keys[perm[b]], keys[perm[c]]
            if ka < kb:
                m = b if kb < kc else (c if ka < kc else a)
            else:
                m = a if ka < kc else (c if kb < kc else b)
            perm[first], perm[m] = perm[m], perm[first]
            pivot = keys[perm[first]]
            lo, hi = first + 1, last
            while True:
                while keys[perm[lo]] < pivot:
                    lo += 1
                hi -= 1
                while pivot < keys[perm[hi]]:
                    hi -= 1
                if lo >= hi:
                    break
                perm[lo], perm[hi] = perm[hi], perm[lo]
                lo += 1
            stack[3 * top], stack[3 * top + 1], stack[3 * top + 2] = lo, last, limit
            top += 1
            last = lo
    return perm, ranges, nranges


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _heap_sort_ranges(perm, ranges, nranges, keys):
    for k in range(nranges):
        _heap_sort(perm, ranges[2 * k], ranges[2 * k + 1], keys)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _final_insertion_sort(perm, keys):
    """std::sort's last step: guarded insertion over the first run (an entry before the
    first one goes first), unguarded after it."""
    for i in range(1, len(perm)):
        value = perm[i]
        key = keys[value]
        if i < _SORT_RUN and key < keys[perm[0]]:
            for j in range(i, 0, -1):
                perm[j] = perm[j - 1]
            perm[0] = value
            continue
        j = i
        while key < keys[perm[j - 1]]:
            perm[j] = perm[j - 1]
            j -= 1
        perm[j] = value


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def sort_entries(types, counts):
    """The permutation std::sort (libstdc++) applies to entries with these keys."""
    keys = sort_keys(types, counts)
    perm, ranges, nranges = _introsort_loop(keys)
    _heap_sort_ranges(perm, ranges, nranges, keys)
    _final_insertion_sort(perm, keys)
    return perm


def sort_order(types, counts):
    """sort_entries from Python, compiling the heapsort only for an input that needs it."""
    keys = sort_keys(types, counts)
    perm, ranges, nranges = _introsort_loop(keys)
    if nranges:
        _heap_sort_ranges(perm, ranges, nranges, keys)
    _final_insertion_sort(perm, keys)
    return perm
