"""Word-word co-occurrence counts for GloVe, in bounded memory.

A corpus arrives as in-vocabulary word ids (ids sorted by decreasing frequency, -1 at
each line end: windows never cross lines). Every pair of words at distance d <= window
adds 1/d to its cell. The symmetric window counts X[a, b] and X[b, a]; the asymmetric one
only X[w, c] for the words c on the left of w.

Where the counts live while counting:
- pairs of two frequent words (rank product (r+1)(c+1) <= P) in a dense triangle-like
  block, rows of decreasing length: few cells, most of the updates, cache friendly;
- all other pairs in an open-addressing hash table. When it passes its load limit, its
  entries are sorted and written as a shard to the temporary folder, and counting goes on
  with an empty table.
A symmetric count is stored once, in the cell (min, max), and expanded at the end.

At the end the shards (the dense block included) are merged k-way, a few blocks at a
time; the merged entries are scattered at random into buckets that fit the memory budget,
each bucket is shuffled in memory, and the result is one file of 12-byte records
(row int32, col int32, count float32) in random order: what GloVe trains on.
"""

from __future__ import annotations

import math
import os
import time
from collections import namedtuple
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..jitting import callee
from ..primitives import next_u32, rand_below, seed_rng

RECORD_BYTES = 12  # row int32, col int32, count float32
SHARD_ENTRY_BYTES = 16  # key int64 (row * nwords + col), count float64
_EMPTY = -1
_MAX_LOAD = 0.7
_MIN_SLOTS = 16
MAX_OPEN_FILES = 256  # shards merged at once, shuffle buckets written at once


# --------------------------------------------------------------------- memory plan


@dataclass
class Plan:
    """How a memory budget is split: the dense block's rank-product limit and its row
    offsets, and the hash table's size."""

    nwords: int
    symmetric: bool
    product_limit: int
    dense_offsets: np.ndarray
    table_slots: int
    memory_bytes: int

    @property
    def table_limit(self) -> int:
        return max(1, int(self.table_slots * _MAX_LOAD))


def _dense_offsets(nwords: int, limit: int, symmetric: bool) -> np.ndarray:
    """Row r of the dense block holds columns c with (r+1)(c+1) <= limit (and c >= r when
    symmetric); offsets[r] is where row r starts, offsets[-1] the number of cells."""
    rows = np.arange(min(nwords, limit), dtype=np.int64)
    ends = np.minimum(nwords, limit // (rows + 1))
    starts = rows if symmetric else np.zeros_like(rows)
    lengths = np.maximum(0, ends - starts)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def plan_memory(nwords: int, symmetric: bool, memory_bytes: int, window: int,
                max_pairs: int) -> Plan:
    """A quarter of the budget for the dense block, half for the hash table (the rest is
    headroom for the corpus ids and the merge buffers), neither bigger than `max_pairs`
    (the corpus's number of pairs) needs. The table always has room for one token's
    pairs, whatever the budget."""
    dense_cells = min(max(0, memory_bytes // 4) // 8, max_pairs)
    lo, hi = 0, max(1, nwords) ** 2 + 1
    while lo < hi:  # the largest product limit whose dense block fits
        mid = (lo + hi + 1) // 2
        if _dense_offsets(nwords, mid, symmetric)[-1] <= dense_cells:
            lo = mid
        else:
            hi = mid - 1
    slots = _MIN_SLOTS
    while slots * _MAX_LOAD < 2 * window + 1:
        slots *= 2
    while 2 * slots * SHARD_ENTRY_BYTES <= memory_bytes // 2 and slots * _MAX_LOAD < max_pairs:
        slots *= 2
    return Plan(nwords, symmetric, lo, _dense_offsets(nwords, lo, symmetric), slots, memory_bytes)


# ------------------------------------------------------------------------ counting

# Where the counts live while counting: the dense block (`dense`, cells of the pairs whose
# rank product is <= `limit`, row r from offsets[r]) and the hash table (`keys`, r * nwords
# + c or _EMPTY, and `vals`); `symmetric` stores each pair once, in cell (min, max).
CountTable = namedtuple("CountTable", "nwords symmetric limit dense offsets keys vals")


@nb.njit(cache=True, nogil=True, inline="always")
def _slot(key, bits):
    return np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))


@callee
def _add(r, c, weight, table, bits, used):
    """Add `weight` to cell (r, c) of `table` (a CountTable): dense block when both words
    are frequent, else the hash table (of 2**bits slots). Returns the hash table's new
    number of used slots."""
    nwords, symmetric, limit, dense, offsets, keys, vals = table
    if symmetric and r > c:
        r, c = c, r
    if (r + 1) * (c + 1) <= limit:
        dense[offsets[r] + c - (r if symmetric else 0)] += weight
        return used
    key = r * nwords + c
    mask = len(keys) - 1
    s = _slot(key, bits)
    while True:
        k = keys[s]
        if k == key:
            vals[s] += weight
            return used
        if k == _EMPTY:
            keys[s] = key
            vals[s] = weight
            return used + 1
        s = (s + 1) & mask


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def count_span(ids, start, stop, window, table, used, table_limit):
    """Count into `table` (a CountTable) the pairs that end at tokens start..stop-1 (each
    token with the `window` tokens before it, up to its line start). Stops early, before
    a token whose pairs could overfill the hash table (`used` slots of at most
    `table_limit`). Returns (position reached, used slots)."""
    bits = 0
    while (1 << bits) < len(table.keys):
        bits += 1
    for i in range(start, stop):
        if used + window > table_limit:
            return i, used
        w = ids[i]
        if w < 0:
            continue
        lo = max(0, i - window)
        for k in range(i - 1, lo - 1, -1):
            c = ids[k]
            if c < 0:
                break
            weight = 1.0 / (i - k)
            # row = the later word, col = its left context (symmetric: stored once)
            used = _add(w, c, weight, table, bits, used)
    return stop, used


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def take_table(keys, vals):
    """The table's entries sorted by key (keys, counts); the table is left empty."""
    n = 0
    for k in keys:
        if k != _EMPTY:
            n += 1
    found = np.empty(n, dtype=np.int64)
    counts = np.empty(n, dtype=np.float64)
    j = 0
    for s in range(len(keys)):
        if keys[s] != _EMPTY:
            found[j] = keys[s]
            counts[j] = vals[s]
            j += 1
            keys[s] = _EMPTY
            vals[s] = 0.0
    order = np.argsort(found)
    return found[order], counts[order]


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def dense_entries(dense, offsets, nwords, symmetric, row_start, row_stop):
    """Non-zero cells of dense rows row_start..row_stop-1 as sorted keys and counts."""
    n = 0
    for i in range(offsets[row_start], offsets[row_stop]):
        if dense[i] != 0.0:
            n += 1
    keys = np.empty(n, dtype=np.int64)
    counts = np.empty(n, dtype=np.float64)
    j = 0
    for r in range(row_start, row_stop):
        base = r if symmetric else 0
        for i in range(offsets[r], offsets[r + 1]):
            if dense[i] != 0.0:
                keys[j] = r * nwords + base + (i - offsets[r])
                counts[j] = dense[i]
                j += 1
    return keys, counts


# ------------------------------------------------------------------------- shards


def write_shard(path: str, keys: np.ndarray, counts: np.ndarray) -> None:
    """A sorted run on disk: 16-byte entries (key int64, count float64)."""
    entries = np.empty((len(keys), 2), dtype=np.int64)
    entries[:, 0] = keys
    entries[:, 1] = counts.view(np.int64)
    with open(path, "ab") as f:
        entries.tofile(f)


class _ShardReader:
    """Reads one shard a block at a time (plain reads: no mapping grows the RSS)."""

    def __init__(self, path: str, block: int):
        self.file = open(path, "rb")
        self.left = os.path.getsize(path) // SHARD_ENTRY_BYTES
        self.block = block

    def next_block(self):
        n = min(self.block, self.left)
        entries = np.fromfile(self.file, dtype=np.int64, count=2 * n).reshape(n, 2)
        self.left -= n
        return entries[:, 0], entries[:, 1].view(np.float64), self.left == 0

    def close(self):
        self.file.close()


# The current blocks of K sorted runs being merged: run s has keys[s, :lens[s]] and
# vals[s, :lens[s]], read up to pos[s]; last[s] when its file has nothing more.
Runs = namedtuple("Runs", "keys vals lens pos last")


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def merge_step(runs, pending_key, pending_val, out_keys, out_vals):
    """Merge the current blocks of `runs` (a Runs), summing equal keys, into the output.

    Stops when the output is full (status -2), when a run's block is used up while its
    file has more (status = that run, to be refilled), or when all runs are done (-1,
    the last pending entry written). The entry being summed is carried in pending_*.
    Returns (entries written, status).
    """
    keys, vals, lens, pos, last = runs
    n = 0
    nruns = keys.shape[0]
    while True:
        if n == len(out_keys):
            return n, -2
        best = -1
        for s in range(nruns):
            if pos[s] < lens[s]:
                if best < 0 or keys[s, pos[s]] < keys[best, pos[best]]:
                    best = s
            elif not last[s]:
                return n, s
        if best < 0:
            if pending_key[0] != _EMPTY:
                out_keys[n] = pending_key[0]
                out_vals[n] = pending_val[0]
                n += 1
                pending_key[0] = _EMPTY
            return n, -1
        key = keys[best, pos[best]]
        value = vals[best, pos[best]]
        pos[best] += 1
        if key == pending_key[0]:
            pending_val[0] += value
            continue
        if pending_key[0] != _EMPTY:
            out_keys[n] = pending_key[0]
            out_vals[n] = pending_val[0]
            n += 1
        pending_key[0] = key
        pending_val[0] = value


def merge_shards(paths, block: int, sink) -> None:
    """k-way merge of sorted shard files; `sink(keys, counts)` gets the merged entries
    in key order, one block at a time (the arrays are reused after the call).

    More than MAX_OPEN_FILES shards are first merged, that many at a time, into bigger
    shards (which are removed once merged)."""
    paths = [p for p in paths if os.path.getsize(p) > 0]
    made = []
    while len(paths) > MAX_OPEN_FILES:
        group, paths = paths[:MAX_OPEN_FILES], paths[MAX_OPEN_FILES:]
        merged = os.path.join(os.path.dirname(group[0]), f"merged{len(made):05d}.bin")
        _merge_runs(group, block, lambda k, c, out=merged: write_shard(out, k, c))
        for p in group:
            if p in made:
                os.remove(p)
        made.append(merged)
        paths.append(merged)
    try:
        _merge_runs(paths, block, sink)
    finally:
        for p in made:
            if os.path.exists(p):
                os.remove(p)


def _merge_runs(paths, block: int, sink) -> None:
    if not paths:
        return
    runs = len(paths)
    block = max(1, block)
    readers = [_ShardReader(p, block) for p in paths]
    keys = np.zeros((runs, block), dtype=np.int64)
    vals = np.zeros((runs, block), dtype=np.float64)
    lens = np.zeros(runs, dtype=np.int64)
    pos = np.zeros(runs, dtype=np.int64)
    last = np.zeros(runs, dtype=np.bool_)
    pending_key = np.full(1, _EMPTY, dtype=np.int64)
    pending_val = np.zeros(1, dtype=np.float64)
    out_keys = np.empty(block, dtype=np.int64)
    out_vals = np.empty(block, dtype=np.float64)
    blocks = Runs(keys, vals, lens, pos, last)

    def refill(s):
        k, v, is_last = readers[s].next_block()
        keys[s, :len(k)] = k
        vals[s, :len(v)] = v
        lens[s], pos[s], last[s] = len(k), 0, is_last

    try:
        for s in range(runs):
            refill(s)
        while True:
            n, status = merge_step(blocks, pending_key, pending_val, out_keys, out_vals)
            if n:
                sink(out_keys[:n], out_vals[:n])
            if status == -1:
                return
            if status >= 0:
                refill(status)
    finally:
        for r in readers:
            r.close()


# ------------------------------------------------------------------ records, shuffle


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def to_records(keys, counts, nwords, symmetric):
    """Merged (key, count) entries as (row, col, count-bits) int32 records; a symmetric
    entry (r, c) stands for both cells, the diagonal for twice its count."""
    n = len(keys)
    if symmetric:
        m = 0
        for i in range(n):
            m += 1 if keys[i] // nwords == keys[i] % nwords else 2
    else:
        m = n
    out = np.empty((m, 3), dtype=np.int32)
    x = out.view(np.float32)
    j = 0
    for i in range(n):
        r = keys[i] // nwords
        c = keys[i] % nwords
        value = counts[i]
        if symmetric and r == c:
            value *= 2.0
        out[j, 0], out[j, 1] = r, c
        x[j, 2] = np.float32(value)
        j += 1
        if symmetric and r != c:
            out[j, 0], out[j, 1] = c, r
            x[j, 2] = np.float32(value)
            j += 1
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def random_buckets(n, nbuckets, rng):
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = rand_below(rng, nbuckets)
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def shuffle_records(records, rng):
    """Fisher-Yates over the rows of an (n, 3) int32 array."""
    for i in range(records.shape[0] - 1, 0, -1):
        if i < 0xFFFFFFFF:
            j = rand_below(rng, i + 1)
        else:
            j = np.int64(((next_u32(rng) << np.uint64(32)) | next_u32(rng)) % np.uint64(i + 1))
        for k in range(3):
            records[i, k], records[j, k] = records[j, k], records[i, k]


# ------------------------------------------------------------------------ pipeline


@dataclass
class Counted:
    """Result of `count_to_file`: the shuffled records file and what it took."""

    path: str
    count: int
    shards: int
    buckets: int
    seconds: dict


def count_shards(ids, nwords: int, window: int, symmetric: bool, plan: Plan, folder: str,
                 advance=None, chunk: int = 1 << 20) -> list:
    """Count all pairs of `ids` into sorted shard files in `folder`; returns their paths
    (the dense block's shard included). `advance(tokens)` reports progress."""
    dense = np.zeros(plan.dense_offsets[-1], dtype=np.float64)
    keys = np.full(plan.table_slots, _EMPTY, dtype=np.int64)
    vals = np.zeros(plan.table_slots, dtype=np.float64)
    paths = []

    def spill():
        k, c = take_table(keys, vals)  # noqa: F821 (called before the `del` below)
        if len(k):
            path = os.path.join(folder, f"shard{len(paths):05d}.bin")
            write_shard(path, k, c)
            paths.append(path)

    table = CountTable(nwords, symmetric, plan.product_limit, dense, plan.dense_offsets, keys, vals)
    used = 0
    pos = 0
    n = len(ids)
    while pos < n:
        stop = min(n, pos + chunk)
        reached, used = count_span(ids, pos, stop, window, table, used, plan.table_limit)
        if advance is not None:
            advance(reached - pos)
        if reached < stop or used + window > plan.table_limit:
            spill()
            used = 0
        pos = reached
    spill()
    del keys, vals, table
    # the dense block, written as one more sorted run, a bounded number of cells at a time
    offsets = plan.dense_offsets
    rows = len(offsets) - 1
    if rows:
        path = os.path.join(folder, f"shard{len(paths):05d}.bin")
        step = max(1, plan.memory_bytes // 8 // SHARD_ENTRY_BYTES)
        r = 0
        while r < rows:
            end = int(np.searchsorted(offsets, offsets[r] + step, side="right")) - 1
            end = min(rows, max(end, r + 1))
            k, c = dense_entries(dense, offsets, nwords, symmetric, r, end)
            write_shard(path, k, c)
            r = end
        if os.path.getsize(path) > 0:
            paths.append(path)
        else:
            os.remove(path)
    return paths


def count_to_file(ids, nwords: int, window: int, symmetric: bool, memory_bytes: int,
                  folder: str, seed: int, advance=None, phase=None) -> Counted:
    """Count, merge and shuffle: the co-occurrence records of `ids` in random order, in
    one file of `folder`. `phase(name)` is called as each phase starts."""
    seconds = {}
    plan = plan_memory(nwords, symmetric, memory_bytes, window, len(ids) * window)
    started = time.perf_counter()
    shards = count_shards(ids, nwords, window, symmetric, plan, folder, advance)
    seconds["count"] = time.perf_counter() - started

    if phase:
        phase("merge")
    started = time.perf_counter()
    bound = sum(os.path.getsize(p) for p in shards) // SHARD_ENTRY_BYTES * (2 if symmetric else 1)
    bucket_bytes = max(RECORD_BYTES, memory_bytes // 2)
    nbuckets = min(MAX_OPEN_FILES, max(1, math.ceil(bound * RECORD_BYTES / bucket_bytes)))
    rng = seed_rng(seed ^ 0xC0FFEE)
    bucket_paths = [os.path.join(folder, f"bucket{b:05d}.bin") for b in range(nbuckets)]
    bucket_files = [open(p, "wb") for p in bucket_paths]
    total = 0
    try:
        def scatter(keys, counts):
            nonlocal total
            records = to_records(keys, counts, nwords, symmetric)
            total += len(records)
            if nbuckets == 1:
                records.tofile(bucket_files[0])
                return
            which = random_buckets(len(records), nbuckets, rng)
            order = np.argsort(which, kind="stable")
            bounds = np.searchsorted(which[order], np.arange(nbuckets + 1))
            grouped = records[order]
            for b in range(nbuckets):
                if bounds[b + 1] > bounds[b]:
                    grouped[bounds[b]:bounds[b + 1]].tofile(bucket_files[b])

        block = max(1024, min(1 << 20, memory_bytes // 8 // max(1, len(shards)) // SHARD_ENTRY_BYTES))
        merge_shards(shards, block, scatter)
    finally:
        for f in bucket_files:
            f.close()
    for p in shards:
        os.remove(p)
    seconds["merge"] = time.perf_counter() - started

    if phase:
        phase("shuffle")
    started = time.perf_counter()
    path = os.path.join(folder, "cooccurrences.bin")
    with open(path, "wb") as out:
        for p in bucket_paths:
            records = np.fromfile(p, dtype=np.int32).reshape(-1, 3)
            os.remove(p)
            shuffle_records(records, rng)
            records.tofile(out)
            del records
    seconds["shuffle"] = time.perf_counter() - started
    return Counted(path, total, len(shards), nbuckets, seconds)


def load_records(path: str, count: int) -> np.ndarray:
    """The records file as a read-only (count, 3) int32 mapping (column 2 holds float32
    bits: view it with `.view(np.float32)`)."""
    if count == 0:
        return np.zeros((0, 3), dtype=np.int32)
    return np.memmap(path, dtype=np.int32, mode="r", shape=(count, 3))


def cooccurrence_matrix(ids, nwords: int, window: int, symmetric: bool, memory_bytes: int,
                        folder: str):
    """All counts of `ids` merged in key order, as (rows, cols, counts float64): the
    unshuffled result, for checks and small corpora."""
    plan = plan_memory(nwords, symmetric, memory_bytes, window, len(ids) * window)
    shards = count_shards(ids, nwords, window, symmetric, plan, folder)
    parts = []

    def collect(keys, counts):
        parts.append((keys.copy(), counts.copy()))

    merge_shards(shards, max(1024, memory_bytes // 64), collect)
    for p in shards:
        os.remove(p)
    keys = np.concatenate([k for k, _ in parts]) if parts else np.zeros(0, np.int64)
    counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0)
    rows, cols = keys // nwords, keys % nwords
    if symmetric:
        off = rows != cols
        counts = np.where(off, counts, 2 * counts)
        rows, cols, counts = (np.concatenate([rows, cols[off]]), np.concatenate([cols, rows[off]]),
                              np.concatenate([counts, counts[off]]))
        order = np.lexsort((cols, rows))
        rows, cols, counts = rows[order], cols[order], counts[order]
    return rows, cols, counts
