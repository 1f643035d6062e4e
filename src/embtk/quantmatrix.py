"""Product-quantized matrices (the `.ftz` models' storage) and their k-means kernels.

A quantized matrix keeps, for each row, one byte per sub-vector of `dsub` columns: the
index of the nearest of 256 centroids learnt by k-means for that sub-vector. With
`qnorm` the rows are first divided by their L2 norm and the norms are quantized the
same way (one sub-vector of size 1). Rows are used decoded: row i is
`norm_i * centroid` per element in float32, exactly what fastText adds into a hidden
vector, so inference on the decoded dense matrix gives fastText's own numbers.

A leaf module (numpy and numba only): the file format reads and writes these matrices,
`compress` builds them from a trained model.
"""

from __future__ import annotations

import os
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numba as nb
import numpy as np

from .errors import EmbtkError
from .jitting import callee
from .primitives import rand_below, rand_unit, seed_rng

KSUB = 256                # centroids per sub-quantizer (8-bit codes)
MAX_POINTS = 256 * KSUB   # k-means trains on at most this many sampled rows
NITER = 25                # k-means iterations
SEED = 1234
EPS = np.float32(1e-7)    # split distance when an empty cluster takes half of another


@dataclass
class ProductQuantizer:
    """Centroids of `nsubq` sub-quantizers over `dim` columns, laid out as fastText does:
    sub-quantizer m < nsubq-1 holds 256 x dsub floats, the last one 256 x lastdsub."""

    dim: int
    nsubq: int
    dsub: int
    lastdsub: int
    centroids: np.ndarray  # float32[dim * 256]

    @classmethod
    def shape_for(cls, dim: int, dsub: int) -> tuple[int, int]:
        """(nsubq, lastdsub) for `dim` columns cut in sub-vectors of `dsub`."""
        nsubq, last = dim // dsub, dim % dsub
        if last == 0:
            return nsubq, dsub
        return nsubq + 1, last


@dataclass
class QuantMatrix:
    """A quantized m x n matrix: codes[m, nsubq] into `pq`, and optionally norm codes."""

    m: int
    n: int
    codes: np.ndarray  # uint8[m, nsubq]
    pq: ProductQuantizer
    norm_codes: np.ndarray | None = None  # uint8[m] when qnorm
    npq: ProductQuantizer | None = None

    @property
    def qnorm(self) -> bool:
        return self.norm_codes is not None

    def norms(self) -> np.ndarray:
        if self.qnorm:
            return self.npq.centroids[self.norm_codes.astype(np.int64)].astype(np.float32)
        return np.ones(self.m, dtype=np.float32)

    def decode(self, out: np.ndarray | None = None) -> np.ndarray:
        """The dense float32 rows fastText adds when it reads this matrix (input side),
        written into `out` when it is a writable float32 m x n array (the matrix this one
        was quantized from: no second matrix of that size in memory)."""
        fits = (out is not None and out.shape == (self.m, self.n) and out.dtype == np.float32
                and out.flags.c_contiguous and out.flags.writeable)
        if not fits:
            out = np.empty((self.m, self.n), dtype=np.float32)
        _decode(self.codes, self.pq.centroids, self.pq.dsub, self.pq.lastdsub, self.norms(), out)
        return out

    def decode_for_scoring(self) -> np.ndarray:
        """Rows to score against (output side). fastText computes (x . centroids) * norm
        there, so with qnorm the rows stay unscaled and each norm goes in an extra last
        column, which `losses.scaled_dot_row` applies after the sum: the same float32 results."""
        if not self.qnorm:
            return self.decode()
        rows = np.empty((self.m, self.n), dtype=np.float32)
        _decode(self.codes, self.pq.centroids, self.pq.dsub, self.pq.lastdsub,
                np.ones(self.m, dtype=np.float32), rows)
        return np.ascontiguousarray(np.hstack([rows, self.norms()[:, None]]))


# ------------------------------------------------------------------------- kernels


@nb.njit(cache=True, nogil=True, inline="always")
def _centroid_base(q, nsubq, dsub, lastdsub):
    """Offset of sub-quantizer q's first centroid, and its sub-vector size."""
    return q * KSUB * dsub, (lastdsub if q == nsubq - 1 else dsub)


@nb.njit(cache=True, nogil=True, parallel=True)
def _decode(codes, centroids, dsub, lastdsub, norms, out):
    m, nsubq = codes.shape
    for i in nb.prange(m):
        alpha = norms[i]
        for q in range(nsubq):
            base, d = _centroid_base(q, nsubq, dsub, lastdsub)
            c = base + np.int64(codes[i, q]) * d
            for j in range(d):
                out[i, q * dsub + j] = alpha * centroids[c + j]


@nb.njit(cache=True, nogil=True, fastmath=True, no_cfunc_wrapper=True)
def _nearest(x, cent, dist):
    """Index of the centroid (columns of cent, d x 256) nearest to x; first one on ties."""
    d = x.shape[0]
    for k in range(KSUB):
        dist[k] = 0.0
    for j in range(d):
        xj = x[j]
        for k in range(KSUB):
            t = xj - cent[j, k]
            dist[k] += t * t
    best = 0
    low = dist[0]
    for k in range(1, KSUB):
        if dist[k] < low:
            low = dist[k]
            best = k
    return best


@callee
def _kmeans(points, rng):
    """256 centroids (d x 256, column per centroid) of `points` (n x d), NITER rounds.

    Starts from 256 distinct random points; an empty cluster takes over half of a
    cluster chosen with probability growing with its size, the two split by EPS.
    """
    n, d = points.shape
    cent = np.empty((d, KSUB), dtype=np.float32)
    perm = np.arange(n)
    for i in range(KSUB):  # partial Fisher-Yates: the first 256 of a random order
        j = i + rand_below(rng, n - i)
        perm[i], perm[j] = perm[j], perm[i]
        for c in range(d):
            cent[c, i] = points[perm[i], c]
    assign = np.empty(n, dtype=np.int64)
    dist = np.empty(KSUB, dtype=np.float32)
    sums = np.empty((KSUB, d), dtype=np.float64)
    counts = np.empty(KSUB, dtype=np.int64)
    for _ in range(NITER):
        for i in range(n):
            assign[i] = _nearest(points[i], cent, dist)
        sums[:] = 0.0
        counts[:] = 0
        for i in range(n):
            k = assign[i]
            counts[k] += 1
            for c in range(d):
                sums[k, c] += points[i, c]
        for k in range(KSUB):
            if counts[k] > 0:
                for c in range(d):
                    cent[c, k] = np.float32(sums[k, c] / counts[k])
        for k in range(KSUB):
            if counts[k] != 0:
                continue
            donor = 0
            while rand_unit(rng) * (n - KSUB) >= counts[donor] - 1:
                donor = (donor + 1) % KSUB
            for c in range(d):
                sign = np.float32(1.0 if c % 2 == 1 else -1.0)
                cent[c, k] = cent[c, donor] + sign * EPS
                cent[c, donor] -= sign * EPS
            counts[k] = counts[donor] // 2
            counts[donor] -= counts[k]
    return cent


# What the sub-quantizers fill in: the centroids of all of them (fastText's layout, each
# sub-quantizer's block at its _centroid_base) and every row's codes, a column for each.
Quantized = namedtuple("Quantized", "centroids codes")


@nb.njit(cache=True, nogil=True)
def _train_subquantizer(x, norms, q, dsub, lastdsub, nsubq, seed, out):
    """Sub-quantizer q: k-means on a sample of its columns of x (each row divided by its
    norm where `norms` has one, for qnorm), its centroids into out.centroids (fastText's
    layout) and the code of every row into out.codes[:, q] (`out` a Quantized).

    Sub-quantizers are independent (each has its own rng), so they can run on any number
    of threads and the result does not change. The rows are divided as they are read, so
    qnorm needs no normalized copy of the matrix.
    """
    centroids, codes = out
    m = x.shape[0]
    npoints = min(m, MAX_POINTS)
    scaled = norms.shape[0] == m
    rng = seed_rng(seed + 7919 * q)
    base, d = _centroid_base(q, nsubq, dsub, lastdsub)
    col = q * dsub
    # the sample's rows: the first npoints of a partial Fisher-Yates shuffle (int32, as
    # fastText's: one of these per thread on a 2.5M-row matrix)
    rows = np.empty(m, dtype=np.int32)
    for i in range(m):
        rows[i] = i
    if npoints < m:
        for i in range(npoints):
            j = i + rand_below(rng, m - i)
            rows[i], rows[j] = rows[j], rows[i]
    sample = np.empty((npoints, d), dtype=np.float32)
    for i in range(npoints):
        r = rows[i]
        for c in range(d):
            sample[i, c] = _scaled(x[r, col + c], norms, r, scaled)
    cent = _kmeans(sample, rng)
    for k in range(KSUB):
        for c in range(d):
            centroids[base + k * d + c] = cent[c, k]
    dist = np.empty(KSUB, dtype=np.float32)
    point = np.empty(d, dtype=np.float32)
    for i in range(m):
        for c in range(d):
            point[c] = _scaled(x[i, col + c], norms, i, scaled)
        codes[i, q] = _nearest(point, cent, dist)


@nb.njit(cache=True, nogil=True, inline="always")
def _scaled(value, norms, row, scaled):
    """A value of x as k-means sees it: divided by its row's norm with qnorm (not a zero
    norm), in float32 as fastText divides the rows before quantizing them."""
    if scaled:
        n = norms[row]
        if n != 0:
            return value / n
    return value


@nb.njit(cache=True, nogil=True, parallel=True)
def row_norms(x):
    """L2 norm of each row, summed in float64 as fastText does."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for i in nb.prange(x.shape[0]):
        s = 0.0
        for j in range(x.shape[1]):
            v = np.float32(x[i, j] * x[i, j])
            s += v
        out[i] = np.float32(np.sqrt(s))
    return out


# ------------------------------------------------------------------------- python side


def train_product_quantizer(x: np.ndarray, dsub: int, seed: int = SEED, norms=None,
                            progress=None):
    """(ProductQuantizer, codes) for the rows of float32 matrix x (divided by `norms`,
    when given, as they are read). `progress`, if given, is called once per finished
    sub-quantizer. The sub-quantizers run on one thread per core."""
    m, dim = x.shape
    if m < KSUB:
        raise EmbtkError(f"the matrix is too small to quantize: it has {m} rows, "
                         f"product quantization needs at least {KSUB}")
    nsubq, lastdsub = ProductQuantizer.shape_for(dim, dsub)
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.zeros(0, dtype=np.float32) if norms is None else norms
    centroids = np.empty(dim * KSUB, dtype=np.float32)
    codes = np.empty((m, nsubq), dtype=np.uint8)
    out = Quantized(centroids, codes)

    def one(q):
        _train_subquantizer(x, norms, q, dsub, lastdsub, nsubq, seed, out)

    nthreads = max(1, min(nsubq, os.cpu_count() or 1))
    with ThreadPoolExecutor(nthreads) as pool:
        for done in as_completed([pool.submit(one, q) for q in range(nsubq)]):
            done.result()
            if progress is not None:
                progress()
    return ProductQuantizer(dim, nsubq, dsub, lastdsub, centroids), codes


def quantize_matrix(x: np.ndarray, dsub: int, qnorm: bool, bar=None) -> QuantMatrix:
    """Product-quantize a dense matrix; with qnorm, unit rows plus quantized norms.
    `bar(total)`, if given, makes a progress bar that counts the sub-quantizers."""
    m, n = x.shape
    if dsub < 1:
        raise EmbtkError(f"-dsub must be a positive integer, got {dsub}")
    if m < KSUB:
        raise EmbtkError(f"the matrix is too small to quantize: it has {m} rows, "
                         f"product quantization needs at least {KSUB}")
    norm_codes = npq = None
    if qnorm:
        norms = row_norms(x)
        if not np.all(np.isfinite(norms)):
            raise EmbtkError("the model has NaN or infinite values; it cannot be quantized")
        npq, ncodes = train_product_quantizer(norms.reshape(-1, 1), 1)
        norm_codes = ncodes.reshape(-1)
    progress = None if bar is None else bar(ProductQuantizer.shape_for(n, dsub)[0])
    try:
        pq, codes = train_product_quantizer(x, dsub, norms=norms if qnorm else None,
                                            progress=None if progress is None else
                                            lambda: progress.update(1))
    finally:
        if progress is not None:
            progress.close()
    return QuantMatrix(m, n, codes, pq, norm_codes, npq)
