"""libstdc++'s std::sort (introsort), ported so that entries come out in fastText's order.

fastText orders its vocabulary with std::sort, which is not stable: entries with equal
counts end up in an order that only that algorithm reproduces. Median-of-three quicksort,
heapsort past the depth limit, then insertion sort of runs of 16, each as libstdc++ does
it, so that a corpus gives the same ids in embtk as in fastText.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .jitting import callee, empty

_SORT_RUN = 16


@callee
def _before(a, b, types, counts):
    """fastText's entry order: words before labels, then the higher count first."""
    if types[a] != types[b]:
        return types[a] < types[b]
    return counts[a] > counts[b]


@callee
def _adjust_heap(perm, first, hole, length, value, types, counts):
    top = hole
    child = hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if _before(perm[first + child], perm[first + child - 1], types, counts):
            child -= 1
        perm[first + hole] = perm[first + child]
        hole = child
    if (length & 1) == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        perm[first + hole] = perm[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and _before(perm[first + parent], value, types, counts):
        perm[first + hole] = perm[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    perm[first + hole] = value


@callee
def _heap_sort(perm, first, last, types, counts):
    length = last - first
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(perm, first, parent, length, perm[first + parent], types, counts)
        if parent == 0:
            break
        parent -= 1
    while last - first > 1:
        last -= 1
        value = perm[last]
        perm[last] = perm[first]
        _adjust_heap(perm, first, np.int64(0), last - first, value, types, counts)


@callee
def _partition(perm, first, last, types, counts):
    """Median of three moved to `first`, then the unguarded Hoare partition around it."""
    a, b, c = first + 1, first + (last - first) // 2, last - 1
    pa, pb, pc = perm[a], perm[b], perm[c]
    if _before(pa, pb, types, counts):
        if _before(pb, pc, types, counts):
            perm[first], perm[b] = perm[b], perm[first]
        elif _before(pa, pc, types, counts):
            perm[first], perm[c] = perm[c], perm[first]
        else:
            perm[first], perm[a] = perm[a], perm[first]
    elif _before(pa, pc, types, counts):
        perm[first], perm[a] = perm[a], perm[first]
    elif _before(pb, pc, types, counts):
        perm[first], perm[c] = perm[c], perm[first]
    else:
        perm[first], perm[b] = perm[b], perm[first]
    pivot = perm[first]
    lo, hi = first + 1, last
    while True:
        while _before(perm[lo], pivot, types, counts):
            lo += 1
        hi -= 1
        while _before(pivot, perm[hi], types, counts):
            hi -= 1
        if lo >= hi:
            return lo
        perm[lo], perm[hi] = perm[hi], perm[lo]
        lo += 1


@callee
def _insert_back(perm, i, types, counts):
    value = perm[i]
    while _before(value, perm[i - 1], types, counts):
        perm[i] = perm[i - 1]
        i -= 1
    perm[i] = value


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _introsort_loop(types, counts):
    """std::sort up to its final insertion sort: (perm, ranges, nranges), where
    ranges[2k:2k+2] are the nranges ranges the depth limit leaves to heapsort.

    Those are rare (orders built to defeat the median of three), so `sort_order`
    compiles the heapsort only when one shows up; the ranges are disjoint, so sorting
    them after the loop rather than when met gives the same permutation."""
    n = len(types)
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
            cut = _partition(perm, first, last, types, counts)
            stack[3 * top], stack[3 * top + 1], stack[3 * top + 2] = cut, last, limit
            top += 1
            last = cut
    return perm, ranges, nranges


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _heap_sort_ranges(perm, ranges, nranges, types, counts):
    for k in range(nranges):
        _heap_sort(perm, ranges[2 * k], ranges[2 * k + 1], types, counts)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _final_insertion_sort(perm, types, counts):
    """std::sort's last step: guarded insertion over the first run, unguarded after it."""
    n = len(perm)
    for i in range(1, min(n, _SORT_RUN)):
        value = perm[i]
        if _before(value, perm[0], types, counts):
            for j in range(i, 0, -1):
                perm[j] = perm[j - 1]
            perm[0] = value
        else:
            _insert_back(perm, i, types, counts)
    for i in range(_SORT_RUN, n):
        _insert_back(perm, i, types, counts)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def sort_entries(types, counts):
    """The permutation std::sort (libstdc++) applies to entries with these keys."""
    perm, ranges, nranges = _introsort_loop(types, counts)
    _heap_sort_ranges(perm, ranges, nranges, types, counts)
    _final_insertion_sort(perm, types, counts)
    return perm


def sort_order(types, counts):
    """sort_entries from Python, compiling the heapsort only for an input that needs it."""
    perm, ranges, nranges = _introsort_loop(types, counts)
    if nranges:
        _heap_sort_ranges(perm, ranges, nranges, types, counts)
    _final_insertion_sort(perm, types, counts)
    return perm
