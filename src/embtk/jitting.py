"""How the kernels are compiled: `callee` for helpers that only numba code calls, array
allocation (`empty`, `zeros`, `empty2`, `zeros2`, `grow`) lowered in place, and
`prefetch`, the CPU's cache hint, which numba does not offer.

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
  calling kernels, and caches none of it. Here they are intrinsics: a few LLVM
  instructions in the calling kernel, nothing compiled on their own.

benchmarks/README.md ("Design notes behind the kernels") has the measured costs.
"""

from __future__ import annotations

import numba as nb
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.imputils import impl_ret_new_ref
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic
from numba.np.arrayobj import populate_array

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


def _element_type(dtype):
    """The numba type of a dtype argument: a class (np.int32) or an array's .dtype."""
    if isinstance(dtype, types.NumberClass):
        return dtype.instance_type
    if isinstance(dtype, types.DType):
        return dtype.dtype
    return None


def _allocate(context, builder, arrtype, shapes, zeroed):
    """A new C-contiguous `arrtype` of `shapes` (LLVM intp values) in numba runtime memory,
    aligned as numba aligns arrays; all bytes zero if `zeroed`. Returns (array, bytes)."""
    intp = context.get_value_type(types.intp)
    itemsize = context.get_abi_sizeof(context.get_data_type(arrtype.dtype))
    strides = [ir.Constant(intp, itemsize)]
    for size in reversed(shapes[1:]):
        strides.insert(0, builder.mul(strides[0], size))
    nbytes = builder.mul(strides[0], shapes[0])
    meminfo = context.nrt.meminfo_alloc_aligned(
        builder, nbytes, context.get_preferred_array_alignment(arrtype.dtype))
    data = context.nrt.meminfo_data(builder, meminfo)
    if zeroed:
        cgutils.memset(builder, data, nbytes, 0)
    array = context.make_array(arrtype)(context, builder)
    populate_array(array, data=builder.bitcast(data, context.get_data_type(arrtype.dtype).as_pointer()),
                   shape=cgutils.pack_array(builder, shapes, ty=intp),
                   strides=cgutils.pack_array(builder, strides, ty=intp),
                   itemsize=ir.Constant(intp, itemsize), meminfo=meminfo)
    return array, nbytes


def _new_array(ndim, zeroed):
    """An intrinsic's typing for np.empty/np.zeros of `ndim` int sizes and a dtype."""
    def codegen(context, builder, signature, args):
        shapes = [context.cast(builder, v, t, types.intp)
                  for v, t in zip(args[:ndim], signature.args[:ndim])]
        array, _ = _allocate(context, builder, signature.return_type, shapes, zeroed)
        return impl_ret_new_ref(context, builder, signature.return_type, array._getvalue())

    def typer(typingctx, *args):
        *sizes, dtype = args
        element = _element_type(dtype)
        if element is None or not all(isinstance(n, types.Integer) for n in sizes):
            return None
        return types.Array(element, ndim, "C")(*args), codegen
    return typer


# The allocation helpers are intrinsics, lowered inside the kernel that calls them, so
# nothing is compiled for them: numba's np.empty compiles a function per dtype and per set
# of the caller's compile options in every process, uncached (13 in a first `supervised`),
# and a helper of our own would be compiled once per dtype. A negative size is a caller's
# bug: the allocation fails with MemoryError.

@intrinsic
def empty(typingctx, n, dtype):
    """np.empty(n, dtype) in numba code: n an integer, dtype a class (np.int32) or an
    array's .dtype."""
    return _new_array(1, zeroed=False)(typingctx, n, dtype)


@intrinsic
def zeros(typingctx, n, dtype):
    """np.zeros(n, dtype) in numba code (see `empty`)."""
    return _new_array(1, zeroed=True)(typingctx, n, dtype)


@intrinsic
def empty2(typingctx, n, m, dtype):
    """np.empty((n, m), dtype) in numba code."""
    return _new_array(2, zeroed=False)(typingctx, n, m, dtype)


@intrinsic
def zeros2(typingctx, n, m, dtype):
    """np.zeros((n, m), dtype) in numba code."""
    return _new_array(2, zeroed=True)(typingctx, n, m, dtype)


def _grow_codegen(context, builder, signature, args):
    arrtype = signature.return_type
    old = context.make_array(signature.args[0])(context, builder, args[0])
    size = context.cast(builder, args[1], signature.args[1], types.intp)
    new, nbytes = _allocate(context, builder, arrtype, [size], zeroed=False)
    itemsize = context.get_abi_sizeof(context.get_data_type(arrtype.dtype))
    kept = builder.mul(old.nitems, ir.Constant(nbytes.type, itemsize))
    kept = builder.select(builder.icmp_signed("<", kept, nbytes), kept, nbytes)
    i8p = ir.IntType(8).as_pointer()
    src, dst = builder.bitcast(old.data, i8p), builder.bitcast(new.data, i8p)
    cgutils.raw_memcpy(builder, dst, src, kept, 1)
    cgutils.memset(builder, builder.gep(dst, [kept]), builder.sub(nbytes, kept), 0)
    return impl_ret_new_ref(context, builder, arrtype, new._getvalue())


@intrinsic
def grow(typingctx, arr, size):
    """A copy of the contiguous 1-d `arr`, `size` long (cut if shorter), the new tail
    zeroed: how the kernels' output arrays grow."""
    if (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and isinstance(size, types.Integer)):
        return types.Array(arr.dtype, 1, "C")(arr, size), _grow_codegen
    return None


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
