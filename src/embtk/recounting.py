"""The second pass from the first pass's ids: when counting has written each token's entry
id (counting.count_state), the corpus is encoded from those ids, with no tokenizing, hashing
or probing of the text again.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

from .jitting import empty, grow
from .dictionary import (RECORD_HEADER, has_subword_rows, no_spans, push_subword_rows,
                         sign_extend32, wrap_word)


# What counting (counting.count_state) leaves for the second pass when it has written each
# token's entry id: the counted entries (entry r is entry_bytes[offsets[r]:offsets[r + 1]],
# with its hash and type), each entry's id in the final dictionary (`remap`, -1 if it was
# dropped) and the id of the EOS entry (-1 if none was counted).
FirstPass = namedtuple("FirstPass", "entry_bytes offsets hashes types remap eos")


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def map_ids(raw, remap, out):
    """encode_ids from counted entry ids: the ids of the in-vocabulary ones, in order,
    written to `out` (as long as `raw`); returns how many."""
    n = np.int64(0)
    for i in range(len(raw)):
        w = remap[raw[i]]
        out[n] = w
        n += w >= 0  # no branch: whether a token is dropped is not predictable
    return n


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def encode_counted_lines(tables, first, raw):
    """encode_lines from counted entry ids (`first` a FirstPass, `raw` the ids of whole
    lines), written directly as the records the classifier kernel reads
    (corpus.pack_records's layout); returns (records, where each record starts).

    The same rows as encode_lines: a token's id, type, hash and bytes come from its
    counted entry instead of the text, which is not read again.
    """
    remap, types, hashes_of, eos_id = first.remap, first.types, first.hashes, first.eos
    entry_bytes, entry_offsets = first.entry_bytes, first.offsets
    subword_offsets, subword_ids = tables.subword_offsets, tables.subword_ids
    nwords, maxn, word_ngrams, nbuckets = tables.nwords, tables.maxn, tables.word_ngrams, tables.bucket
    hashed = has_subword_rows(tables)
    prune_map = tables.prune_map
    pruned = len(prune_map) > 0
    bucket = np.uint64(max(1, nbuckets))
    out = empty(np.int64(len(raw) * 2 + 1024), np.int32)
    starts = empty(np.int64(1024), np.int64)
    feats = empty(np.int64(1024), np.int32)
    labels = empty(np.int64(64), np.int32)
    hashes = empty(np.int64(256), np.uint32)
    scratch = empty(np.int64(64), np.uint8)
    nf = np.int64(0)  # a typed zero: see encode_lines
    nl = np.int64(0)
    nh = np.int64(0)
    ntok = np.int64(0)
    nlines = np.int64(0)
    p = np.int64(0)
    end = len(raw)
    for i in range(end + 1):  # i == end: the last line, if it has no EOS
        if i < end:
            r = raw[i]
            ntok += 1
            wid = remap[r]
            if wid >= nwords:  # a label
                if nl == len(labels):
                    labels = grow(labels, 2 * nl)
                labels[nl] = wid - nwords
                nl += 1
            elif wid >= 0 or types[r] == 0:  # a word, known or not (an unknown label: nothing)
                if wid >= 0 and maxn == 0:
                    if nf == len(feats):
                        feats = grow(feats, 2 * nf)
                    feats[nf] = wid
                    nf += 1
                elif wid >= 0:
                    a, b = subword_offsets[wid], subword_offsets[wid + 1]
                    if nf + b - a > len(feats):
                        feats = grow(feats, 2 * (nf + b - a))
                    for k in range(a, b):
                        feats[nf] = subword_ids[k]
                        nf += 1
                elif hashed and r != eos_id:
                    scratch, size = wrap_word(entry_bytes, entry_offsets[r], entry_offsets[r + 1],
                                              scratch)
                    feats, nf = push_subword_rows(tables, scratch[:size], feats, nf, no_spans())
                if nh == len(hashes):
                    hashes = grow(hashes, 2 * nh)
                hashes[nh] = hashes_of[r]
                nh += 1
            if r != eos_id:
                continue
        elif ntok == 0:
            break
        # the line is complete: add its word n-grams (_push_word_ngrams, with the arrays
        # out of the tuple) and write its record
        if nf + nh * word_ngrams > len(feats):
            feats = grow(feats, 2 * (nf + nh * word_ngrams))
        for j in range(nh):
            h = sign_extend32(hashes[j])
            for k in range(j + 1, min(nh, j + word_ngrams)):
                h = h * np.uint64(116049371) + sign_extend32(hashes[k])
                row = np.int64(h % bucket)
                if pruned:
                    row = prune_map[row]
                    if row < 0:
                        continue
                elif nbuckets == 0:
                    continue
                feats[nf] = nwords + row
                nf += 1
        if p + RECORD_HEADER + nf + nl > len(out):
            out = grow(out, 2 * (p + RECORD_HEADER + nf + nl))
        if nlines == len(starts):
            starts = grow(starts, 2 * nlines)
        starts[nlines] = p
        out[p] = min(ntok, 0x7FFFFFFF)
        out[p + 1] = nf
        out[p + 2] = nl
        p += RECORD_HEADER
        for k in range(nf):
            out[p + k] = feats[k]
        p += nf
        for k in range(nl):
            out[p + k] = labels[k]
        p += nl
        nlines += 1
        nf = 0
        nl = 0
        nh = 0
        ntok = 0
    return out[:p].copy(), starts[:nlines].copy()
