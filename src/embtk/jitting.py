"""How the kernels are compiled: `callee` for helpers that only numba code calls, array
allocation (`empty`, `zeros`, `empty2`, `zeros2`, `grow`) compiled once for all kernels,
and `prefetch`, the CPU's cache hint, which numba does not offer.

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
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic

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


@callee
def grow(arr, size):
    """A copy of `arr` `size` long, the new tail zeroed (np.empty and a loop: numba's
    np.zeros would compile two more functions per dtype on a cold cache)."""
    out = np.empty(size, dtype=arr.dtype)
    for i in range(len(arr)):
        out[i] = arr[i]
    for i in range(len(arr), size):
        out[i] = 0
    return out


def _prefetch_codegen(context, builder, signature, args):
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    index = [context.cast(builder, v, t, types.intp)
             for v, t in zip(args[1:], signature.args[1:])]
    ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index, wraparound=False)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")
    # a read, to be kept in all cache levels, of data
    builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
    return context.get_dummy_value()


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring array[index] into cache: no effect on any result."""
    if isinstance(array, types.Array) and array.ndim == 1 and isinstance(index, types.Integer):
        return types.void(array, index), _prefetch_codegen
    return None


@intrinsic
def prefetch2(typingctx, array, i, j):
    """prefetch of array[i, j] (a 2-d array)."""
    if (isinstance(array, types.Array) and array.ndim == 2 and isinstance(i, types.Integer)
            and isinstance(j, types.Integer)):
        return types.void(array, i, j), _prefetch_codegen
    return None
