"""Counting the corpus (the first pass): every distinct token and how often it occurs, in
bounded memory, pruned as fastText prunes once the vocabulary grows past its limit.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

from .jitting import empty, grow, zeros
from .introsort import sort_entries
from .tokens import EOS_BYTES, build_keys, has_prefix, next_token_hash, probe, read_only

MAX_VOCAB_SIZE = 30_000_000
ID_BLOCK = 1 << 20  # entry ids written at a time (count_state's sink)


# What counting has found so far, carried from one piece of the corpus to the next
# (`count_tokens`): entry i is entry_bytes[offsets[i]:offsets[i + 1]], seen counts[i]
# times, of type types[i] (WORD or LABEL), with hash hashes[i]; `keys` is the
# open-addressing table of tokens.build_keys; totals holds (entries, bytes used, tokens
# read, pruning threshold).
TokenCounts = namedtuple("TokenCounts", "entry_bytes offsets counts types hashes keys totals")


def new_token_counts() -> TokenCounts:
    cap = 1024
    return TokenCounts(np.empty(cap * 8, dtype=np.uint8), np.zeros(cap + 1, dtype=np.int64),
                       np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int8),
                       np.zeros(cap, dtype=np.uint32), np.full(2048, -1, dtype=np.int64),
                       np.array([0, 0, 0, 1], dtype=np.int64))


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _prune(state, threshold):
    """fastText's pruning: sort the entries, keep those seen at least `threshold` times."""
    ebytes, eoff, counts, types, hashes, keys, totals = state
    n = totals[0]
    order = sort_entries(types[:n], counts[:n])
    new_bytes = empty(len(ebytes), ebytes.dtype)
    new_off = zeros(len(eoff), eoff.dtype)
    new_counts, new_types = zeros(len(counts), counts.dtype), zeros(len(types), types.dtype)
    new_hashes = zeros(len(hashes), hashes.dtype)
    keep = np.int64(0)  # not the literal 0: see encode_lines
    kept_bytes = 0
    for e in order:
        if counts[e] >= threshold:
            for i in range(eoff[e], eoff[e + 1]):
                new_bytes[kept_bytes] = ebytes[i]
                kept_bytes += 1
            new_counts[keep], new_types[keep], new_hashes[keep] = counts[e], types[e], hashes[e]
            keep += 1
            new_off[keep] = kept_bytes
    totals[0], totals[1], totals[3] = keep, kept_bytes, threshold
    keys = build_keys(new_hashes, keep, len(keys))
    return (new_bytes, new_off, new_counts, new_types, new_hashes, keys, totals)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def count_tokens(buf, pos, label_prefix, max_vocab, state, out):
    """Count the tokens of `buf` from byte `pos` on (a piece of a corpus cut after a
    separator) into `state` (a TokenCounts), and write each token's entry id to `out`
    (none if it is empty). Returns the updated state, whose arrays may be new ones, the
    position reached, whether the entries have passed 3/4 of `max_vocab` there, and the
    ids written. It stops early when `out` is full (the caller goes on from the position
    reached), or at 3/4 of `max_vocab`: then the caller prunes the entries (`_prune`),
    which renumbers them, and goes on from there.

    Entries stay in fastText's order (first seen, or sorted by a pruning), and `totals[2]`
    counts every token read, pruned ones included, as fastText counts them. The pruning is
    left to the caller so that this kernel, compiled by every training command, does not
    carry the sort that only a huge vocabulary needs (a second on a cold cache).
    """
    ebytes, eoff, counts, types, hashes, keys, totals = state
    n, nbytes, ntokens = totals[0], totals[1], totals[2]
    end = len(buf)
    full = False
    written = np.int64(0)
    room = len(out)
    while written < room or room == 0:
        start, stop, pos, h = next_token_hash(buf, pos, end)
        if start == -2:
            break
        ntokens += 1
        s = probe(keys, eoff, ebytes, buf, start, stop, h)
        if keys[s] != -1:
            e = keys[s] >> 32
            counts[e] += 1
            if room:
                out[written] = e
                written += 1
            continue
        # new entry
        tlen = 4 if start == -1 else stop - start
        if n == len(counts):
            cap = 2 * n
            eoff = grow(eoff, cap + 1)
            counts = grow(counts, cap)
            types = grow(types, cap)
            hashes = grow(hashes, cap)
        while nbytes + tlen > len(ebytes):
            ebytes = grow(ebytes, 2 * len(ebytes))
        for i in range(tlen):
            ebytes[nbytes + i] = EOS_BYTES[i] if start == -1 else buf[start + i]
        nbytes += tlen
        eoff[n + 1] = nbytes
        counts[n] = 1
        types[n] = 1 if has_prefix(buf, start, stop, label_prefix) else 0
        hashes[n] = h
        keys[s] = (n << 32) | np.int64(h)
        if room:
            out[written] = n
            written += 1
        n += 1
        if n * 2 > len(keys):
            keys = build_keys(hashes, n, 2 * len(keys))
        if n > max_vocab * 3 // 4:
            full = True
            break
    totals[0], totals[1], totals[2] = n, nbytes, ntokens
    return (ebytes, eoff, counts, types, hashes, keys, totals), pos, full, written


def count_pieces(pieces, label: bytes, max_vocab: int = MAX_VOCAB_SIZE, on_tokens=None):
    """count_tokens over a corpus given as byte arrays, each cut after a separator: every
    entry before any threshold (words as bytes, counts, types), and the tokens read.
    `on_tokens(n)`, if given, hears the tokens read so far before each piece."""
    return counted_entries(count_state(pieces, label, max_vocab, on_tokens=on_tokens)[0])


def count_state(pieces, label: bytes, max_vocab: int = MAX_VOCAB_SIZE, sink=None,
                on_tokens=None):
    """count_pieces's TokenCounts, and whether it pruned. With `sink`, each token's entry
    id (int32 arrays, in the corpus's order) goes to sink(ids) until a pruning
    renumbers the entries; the ids written before one are then wrong (and `pruned` says
    so). `on_tokens` as count_pieces's."""
    prefix = np.frombuffer(label, dtype=np.uint8)
    state = new_token_counts()
    out = np.empty(0 if sink is None else ID_BLOCK, dtype=np.int32)
    pruned = False
    for piece in pieces:
        if on_tokens is not None:
            on_tokens(int(state.totals[2]))
        piece = read_only(piece)
        pos = 0
        while pos < len(piece):
            arrays, pos, full, written = count_tokens(piece, pos, prefix, max_vocab, state, out)
            state = TokenCounts(*arrays)
            if written:
                sink(out[:written])
            if full:
                state = TokenCounts(*_prune(state, state.totals[3] + 1))
                pruned = True
                out = np.empty(0, dtype=np.int32)
            elif written < len(out):
                break
    return state, pruned


def counted_entries(state: TokenCounts):
    """The entries of a finished count: (words as bytes, counts, types, tokens read)."""
    n, nbytes, ntokens = (int(x) for x in state.totals[:3])
    raw = state.entry_bytes[:nbytes].tobytes()
    bounds = state.offsets[:n + 1].tolist()
    words = [raw[a:b] for a, b in zip(bounds, bounds[1:])]
    return words, state.counts[:n].copy(), state.types[:n].copy(), ntokens


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def merge_counts(state, other, max_vocab):
    """Add the entries of `other` (the count of the text after `state`'s) to `state`, in
    other's order: a known entry adds its count, a new one comes last, as counting the
    two texts one after the other orders them. Returns the updated state, the id in it of
    each of other's entries, and whether the entries passed 3/4 of `max_vocab` (then
    counting the texts one after the other would have pruned: the caller does that)."""
    ebytes, eoff, counts, types, hashes, keys, totals = state
    obytes, ooff, ocounts, otypes, ohashes = other[0], other[1], other[2], other[3], other[4]
    m = other[6][0]
    n, nbytes = totals[0], totals[1]
    ids = empty(m, np.int32)
    full = False
    for r in range(m):
        h = ohashes[r]
        s = probe(keys, eoff, ebytes, obytes, ooff[r], ooff[r + 1], h)
        if keys[s] != -1:
            e = keys[s] >> 32
            counts[e] += ocounts[r]
            ids[r] = e
            continue
        tlen = ooff[r + 1] - ooff[r]
        if n == len(counts):
            cap = 2 * n
            eoff = grow(eoff, cap + 1)
            counts = grow(counts, cap)
            types = grow(types, cap)
            hashes = grow(hashes, cap)
        while nbytes + tlen > len(ebytes):
            ebytes = grow(ebytes, 2 * len(ebytes))
        for i in range(tlen):
            ebytes[nbytes + i] = obytes[ooff[r] + i]
        nbytes += tlen
        eoff[n + 1] = nbytes
        counts[n] = ocounts[r]
        types[n] = otypes[r]
        hashes[n] = h
        keys[s] = (n << 32) | np.int64(h)
        ids[r] = n
        n += 1
        if n * 2 > len(keys):
            keys = build_keys(hashes, n, 2 * len(keys))
        if n > max_vocab * 3 // 4:
            full = True
            break
    totals[0], totals[1], totals[2] = n, nbytes, totals[2] + other[6][2]
    return (ebytes, eoff, counts, types, hashes, keys, totals), ids, full
