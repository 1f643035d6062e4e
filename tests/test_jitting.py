"""The allocation intrinsics (jitting.empty, zeros, empty2, zeros2, grow): the arrays numba
code gets from them have numpy's shapes, dtypes and contents, and outlive the kernel
that made them, as numba's own arrays do."""

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embtk.jitting import empty2, grow, zeros, zeros2


@nb.njit(cache=True)
def _grown(values, sizes):
    out = values.copy()
    for size in sizes:
        out = grow(out, size)
    return out


@nb.njit(cache=True)
def _zeroed(n, m):
    return zeros(n, np.int64), zeros(n, np.float32), zeros2(n, m, np.uint8), zeros2(n, m, np.float64)


@nb.njit(cache=True)
def _filled(n, m):
    out = empty2(n, m, np.int32)
    for i in range(n):
        for j in range(m):
            out[i, j] = i * m + j
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2**31, 2**31 - 1), max_size=40),
       st.lists(st.integers(0, 100), min_size=1, max_size=5))
def test_grow_keeps_the_values_and_zeroes_the_tail_or_cuts(values, sizes):
    expected = np.array(values, dtype=np.int32)
    for size in sizes:
        expected = np.concatenate([expected[:size], np.zeros(max(0, size - len(expected)),
                                                             np.int32)])
    got = _grown(np.array(values, dtype=np.int32), np.array(sizes, dtype=np.int64))
    assert got.dtype == np.int32 and got.flags.c_contiguous
    assert np.array_equal(got, expected)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 50), st.integers(0, 7))
def test_zeros_and_empty2_have_numpy_s_shapes_types_and_contents(n, m):
    ints, floats, bytes2, doubles2 = _zeroed(n, m)
    for got, like in ((ints, np.zeros(n, np.int64)), (floats, np.zeros(n, np.float32)),
                      (bytes2, np.zeros((n, m), np.uint8)), (doubles2, np.zeros((n, m)))):
        assert got.dtype == like.dtype and got.shape == like.shape and got.flags.c_contiguous
        assert np.array_equal(got, like)
    filled = _filled(n, m)
    assert np.array_equal(filled, np.arange(n * m, dtype=np.int32).reshape(n, m))
    assert filled.strides == (4 * m, 4)


def test_arrays_outlive_the_kernel_that_made_them():
    kept = [_filled(1000, 10) for _ in range(50)]
    assert all(np.array_equal(a, kept[0]) for a in kept) and kept[-1][999, 9] == 9999
