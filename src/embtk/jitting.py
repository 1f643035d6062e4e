"""How the kernels are compiled: `callee` for helpers that only numba code calls, and
array allocation (`empty`, `zeros`, `empty2`, `zeros2`) compiled once for all kernels.

A fresh install's first commands compile every kernel they use (the numba cache is
empty), and most of that time is fixed cost per compiled function, not per line. Two
kinds of it are avoidable:

- numba gives every compiled function a CPython wrapper (unboxing each argument,
  boxing the result) and a C-callable one (for ctypes/cfunc use, which embtk never
  makes), also for helpers only other kernels call; building them is a large part of a
  small function's compile time. Every kernel is compiled with no_cfunc_wrapper=True,
  and `callee` leaves out both wrappers.
- numba compiles its own `np.empty`/`np.zeros` afresh in every process, for each (shape
  type, dtype) and again for each set of compile options (fastmath, error model) of the
  calling kernels, and caches none of it. Here they are cached functions, compiled once
  per dtype.

benchmarks/README.md ("Design notes behind the kernels") has the measured costs.

Sizes are passed to the allocation helpers as int64: a literal (`empty(64, np.uint8)`)
compiles one more signature for that literal, so such call sites write np.int64(64).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core.registry import CPUDispatcher

_NO_WRAPPERS = ("no_cpython_wrapper", "no_cfunc_wrapper")


class CalleeDispatcher(CPUDispatcher):
    """A dispatcher compiled without the CPython wrapper, for calls from numba code.

    Called from Python (tests, a debugging session), it runs a separate, uncached
    compilation of the same function with the wrappers; calling the wrapper-less code
    from Python would crash the interpreter.
    """

    def __call__(self, *args, **kws):
        twin = self.__dict__.get("_python_twin")
        if twin is None:
            options = {k: v for k, v in self.targetoptions.items()
                       if k not in _NO_WRAPPERS and k != "nopython"}
            twin = self.__dict__["_python_twin"] = nb.njit(**options)(self.py_func)
        return twin(*args, **kws)


def callee(func=None, **options):
    """`@nb.njit(cache=True, nogil=True, **options)` for a function that only other
    kernels call: compiled without the CPython and C wrappers (see the module's doc).

    Use it bare (`@callee`) or with options (`@callee(fastmath=True)`).
    """
    def decorate(f):
        disp = nb.njit(cache=True, nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True,
                       **options)(f)
        disp.__class__ = CalleeDispatcher
        return disp
    return decorate if func is None else decorate(func)


@callee
def empty(n, dtype):
    """np.empty(n, dtype), n an int64 and dtype a class (np.int32, ...)."""
    return np.empty(n, dtype)


@callee
def zeros(n, dtype):
    """np.zeros(n, dtype), n an int64 and dtype a class (np.int32, ...). A loop over
    `empty`: numba's np.zeros compiles np.empty and a fill of its own for each dtype."""
    out = empty(n, dtype)
    for i in range(n):
        out[i] = 0
    return out


@callee
def empty2(n, m, dtype):
    """np.empty((n, m), dtype), n and m int64."""
    return np.empty((n, m), dtype)


@callee
def zeros2(n, m, dtype):
    """np.zeros((n, m), dtype), n and m int64 (a loop, as `zeros`)."""
    out = empty2(n, m, dtype)
    for i in range(n):
        for j in range(m):
            out[i, j] = 0
    return out
