"""Prediction: the official module's `predict` and the commands' answers (`Predictor`),
and the kernel behind them, batched prediction from raw text in one call: each line is
tokenized, looked up, averaged and scored before the next, with nothing materialised but
the answers.

`predict_text` gives exactly what `Dictionary.encode` followed by `vectors.predict_lines`
gives (same lines, same float32 arithmetic in the same order), without the feature arrays
and with the memory latency of the lookups overlapped: a line's tokens are all hashed
first, then their hash-table slots and entry bytes prefetched together, so that their
cache misses overlap instead of following one another token by token.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numba as nb
from numba.extending import overload
import numpy as np

from .args import check_k, check_text, check_threshold
from .errors import EmbtkError
from .jitting import callee, empty, grow, prefetch, prefetch2, zeros, zeros2
from .dictionary import (LABEL, has_subword_rows, no_spans, push_subword_rows, sign_extend32,
                         wrap_word)
from .tokens import EOS, has_prefix, is_eos, next_token_hash, read_only
from .kernels import mean_rows
from .vectors import predict_lines
from .losses import (SoftmaxParams, TopK, _below_score, _std_log, all_scores, for_kernels,
                     make_loss_params, offer_probabilities, predict_top_k)
from .meter import Predictions
from .primitives import sort_heap


@nb.njit(cache=True, nogil=True)
def slot_keys(slots, hashes):
    """The hash table of `Tables.slots` with each entry's hash (`Dictionary.hashes`) beside
    its id, as one int64 per slot (id << 32 | hash; -1 free): probing compares hashes
    without reading the entries, and one load brings both."""
    keys = empty(len(slots), np.int64)
    for s in range(len(slots)):
        keys[s] = -1
        e = slots[s]
        if e >= 0:
            keys[s] = (np.int64(e) << 32) | np.int64(hashes[e])
    return keys


@nb.njit(cache=True, nogil=True, inline="always")
def _find(keys, offsets, entries, buf, start, stop, h):
    """dictionary.find_id for a token of `buf` (not EOS) through `slot_keys`; the bytes
    are compared without a branch per byte (one mispredicted branch per token was half
    the cost of a lookup)."""
    mask = len(keys) - 1
    s = np.int64(h) & mask
    n = stop - start
    while True:
        key = keys[s]
        if key == -1:
            return np.int64(-1)
        if (key & 0xFFFFFFFF) == np.int64(h):
            e = key >> 32
            o = offsets[e]
            if offsets[e + 1] - o == n:
                same = True
                for j in range(n):
                    same &= entries[o + j] == buf[start + j]
                if same:
                    return e
        s = (s + 1) & mask


@nb.njit(cache=True, nogil=True, inline="always")
def _prefetch_row(wi, r):
    """Every cache line of row r of a float32 matrix with rows in one piece."""
    dim = wi.shape[1]
    for j in range(0, dim + 15, 16):
        prefetch2(wi, r, min(j, dim - 1))


# exp(x) for x <= 0 as a polynomial that the compiler vectorizes (math.exp is a call per
# value, two thirds of softmax): x = k ln2 + r, |r| <= ln2 / 2, then Taylor to degree 13
# (truncation 4e-18, rounding a few 1e-16) times 2^k from a table.
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts (fdlibm's): k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.4426950408889634
_POW2_NEG = np.array([2.0 ** -j for j in range(160)], dtype=np.float64)
# Relative room around the polynomial's value, far above its error and math.exp's (each
# under 1e-15): a float32 rounding boundary inside it sends the value to math.exp.
_EXP_SLACK = 1e-13


@nb.njit(cache=True, nogil=True, inline="always")
def _exp_below(scores, top, osz, out, unsure):
    """out[i] = float32(math.exp(float64(scores[i] - top))) for i < osz, bit for bit.

    The polynomial's value is rounded to float32 from just below and just above it: the
    same float32 both times means that the exact exp, and math.exp's, round to it too
    (rounding is monotone). Otherwise (one value in ~10^6), and for NaN or x < -100,
    math.exp decides."""
    recheck = 0
    for i in range(osz):
        x = np.float64(scores[i] - top)
        ok = x >= -100.0  # False for NaN
        xc = x if ok else -100.0
        kf = math.floor(xc * _INV_LN2 + 0.5)
        r = (xc - kf * _LN2_HI) - kf * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        e = p * _POW2_NEG[-np.int64(kf)]
        low = np.float32(e * (1.0 - _EXP_SLACK))
        out[i] = low
        flag = np.int64((low != np.float32(e * (1.0 + _EXP_SLACK))) | (not ok))
        unsure[i] = flag
        recheck |= flag
    if recheck:
        for i in range(osz):
            if unsure[i]:
                out[i] = math.exp(np.float64(scores[i] - top))


@nb.njit(cache=True, nogil=True, inline="always")
def _top_score(output, osz):
    """max(output[:osz]) as softmax_in_place finds it: in four interleaved runs, which
    give the same maximum when nothing is NaN (one run of 121 dependent comparisons
    took as long as the exps); with a NaN, its one run decides."""
    a0 = a1 = a2 = a3 = output[0]
    nan = False
    i = 0
    while i + 4 <= osz:
        x0, x1, x2, x3 = output[i], output[i + 1], output[i + 2], output[i + 3]
        nan |= (x0 != x0) | (x1 != x1) | (x2 != x2) | (x3 != x3)
        a0, a1, a2, a3 = max(x0, a0), max(x1, a1), max(x2, a2), max(x3, a3)
        i += 4
    for j in range(i, osz):
        nan |= output[j] != output[j]
        a0 = max(output[j], a0)
    if nan or a0 != a0:
        top = output[0]
        for j in range(osz):
            top = max(output[j], top)
        return top
    return max(max(a0, a1), max(a2, a3))


@nb.njit(cache=True, nogil=True, inline="always")
def _softmax_top_1(osz, z, threshold, probs, scores, ids):
    """_softmax_top_k's selection for k = 1 without the heap: its answer is the last
    output of the highest score among those with p >= threshold (a later equal score
    replaces the heap's one). With z finite and >= 1 nothing is NaN, the top output's
    exp is 1 and its p = 1 / z is the highest; outputs below _below_score of its score
    score lower, so only those above (usually the top one alone) need a logarithm."""
    best = np.float32(np.float32(1.0) / z)
    if best < threshold:
        return np.int64(0)
    top_score = _std_log(best)
    cut = _below_score(top_score)
    for i in range(osz - 1, -1, -1):
        p = probs[i]
        if p >= threshold and p >= cut and _std_log(p) == top_score:
            scores[0] = top_score
            ids[0] = i
            return np.int64(1)
    return np.int64(0)  # not reached: the top output qualifies


@callee
def _softmax_top_k(osz, wo_t, hidden, k, threshold, best, exps, unsure):
    """losses.predict_top_k for softmax over osz outputs, with its exps (softmax_in_place)
    from _exp_below: the same float32 values, the same selection (find_k_best), the same
    answer (in `best`, a losses.TopK)."""
    output, scores, ids = best
    all_scores(wo_t, hidden, output)
    top = _top_score(output, osz)
    _exp_below(output, top, osz, exps, unsure)
    z = np.float32(0.0)
    for i in range(osz):
        z += exps[i]
    for i in range(osz):
        output[i] = exps[i] / z
    if k == 1 and z >= 1.0 and z < np.inf:
        return _softmax_top_1(osz, z, threshold, output, scores, ids)
    n = offer_probabilities(output, osz, threshold, k, scores, ids, np.int64(0))
    sort_heap(scores, ids, n)
    return n


def line_top_k(params, wo, wo_t, hidden, k, threshold, best, exps, unsure):
    """predict_text's top k of one line: softmax through _softmax_top_k (the same answer,
    faster), the other losses through losses.predict_top_k. Chosen by the class of
    `params` (losses.for_kernels) when the kernel compiles."""
    if isinstance(params, SoftmaxParams):
        return _softmax_top_k(wo.shape[0], wo_t, hidden, k, threshold, best, exps, unsure)
    return predict_top_k(params, wo, wo_t, hidden, k, threshold, best)


@overload(line_top_k, jit_options={"no_cfunc_wrapper": True})
def _line_top_k_of(params, wo, wo_t, hidden, k, threshold, best, exps, unsure):
    if getattr(params, "instance_class", None) is SoftmaxParams:
        def softmax(params, wo, wo_t, hidden, k, threshold, best, exps, unsure):
            return _softmax_top_k(wo.shape[0], wo_t, hidden, k, threshold, best, exps, unsure)
        return softmax

    def other(params, wo, wo_t, hidden, k, threshold, best, exps, unsure):
        return predict_top_k(params, wo, wo_t, hidden, k, threshold, best)
    return other


# What predict_text scores lines with: the input matrix, the output matrix, the output
# matrix transposed (`padded_transpose`) and the loss's parameters (of the loss's own
# class: losses.for_kernels).
Classifier = namedtuple("Classifier", "wi wo wo_t params")


def padded_transpose(wo) -> np.ndarray:
    """wo transposed (C-contiguous), with zero columns up to a multiple of 16: scoring all
    outputs (losses.all_scores) then runs in whole vectors, 30% faster for 121 labels;
    the extra outputs are scored 0 and never read."""
    rows, cols = wo.shape
    out = np.zeros((cols, -(-rows // 16) * 16), dtype=np.float32)
    out[:, :rows] = wo.T
    return out


@nb.njit(cache=True, nogil=True)
def _count_lines(buf):
    n = np.int64(1)
    for c in buf:
        n += c == 10
    return n


@nb.njit(cache=True, nogil=True)
def _grow_rows(arr, rows):
    out = zeros2(rows, arr.shape[1], arr.dtype)
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            out[i, j] = arr[i, j]
    return out


@nb.njit(cache=True, nogil=True)
def predict_text(tables, keys, eos_id, classifier, buf, k, threshold):
    """Top-k (label id, probability) of each line of `buf`, best first: what
    `predict_lines` answers for `encode_lines(tables, buf)`, as (counts, probs, ids).
    `keys` is `slot_keys` of the tables, `eos_id` the id of EOS (-1 if unknown),
    `classifier` a `Classifier` (its wo_t, see `padded_transpose`, is wo transposed, with
    zero columns up to a multiple of 16)."""
    wi, wo, wo_t, params = classifier
    threshold = np.float32(threshold)
    cap = _count_lines(buf)
    counts = zeros(cap, np.int64)
    probs = zeros2(cap, k, np.float32)
    ids = zeros2(cap, k, np.int64)
    hidden = zeros(wi.shape[1], np.float32)
    output = zeros(wo_t.shape[1], np.float32)
    exps = zeros(wo.shape[0], np.float32)
    unsure = zeros(wo.shape[0], np.int64)
    heap_scores = zeros(k + 1, np.float32)
    heap_ids = zeros(k + 1, np.int64)
    best = TopK(output, heap_scores, heap_ids)
    tok_start = empty(64, np.int64)
    tok_stop = empty(64, np.int64)
    tok_hash = empty(64, np.uint64)
    feats = empty(1024, np.int32)
    hashes = empty(64, np.uint64)
    scratch = empty(64, np.uint8)
    # arrays taken out of the tuple once: reading them from it in the loops costs a
    # reference count update each time
    word_offsets, word_bytes, label_prefix = tables.word_offsets, tables.word_bytes, tables.label_prefix
    subword_offsets, subword_ids, prune_map = tables.subword_offsets, tables.subword_ids, tables.prune_map
    pruned = len(prune_map) > 0
    mask = len(keys) - 1
    nwords, maxn, word_ngrams = tables.nwords, tables.maxn, tables.word_ngrams
    hashed = has_subword_rows(tables)
    nbuckets = tables.bucket
    bucket = np.uint64(max(1, nbuckets))
    pos = np.int64(0)
    end = len(buf)
    nlines = 0
    while True:
        # the line's tokens, up to its EOS, each hash-table slot asked for at once
        nt = 0
        while True:
            tstart, tstop, pos, h = next_token_hash(buf, pos, end)
            if tstart == -2:
                break
            if nt == len(tok_start):
                tok_start = grow(tok_start, 2 * nt)
                tok_stop = grow(tok_stop, 2 * nt)
                tok_hash = grow(tok_hash, 2 * nt)
            tok_start[nt], tok_stop[nt], tok_hash[nt] = tstart, tstop, h
            nt += 1
            if tstart == -1:
                break
            if mask >= 0:
                prefetch(keys, np.int64(h) & mask)
            if tstop - tstart == 4 and is_eos(buf, tstart, tstop):  # a literal </s>
                break
        if nt == 0:
            break
        if mask >= 0:
            # then the bytes of each first candidate (their slots are arriving meanwhile)
            for t in range(nt):
                if tok_start[t] >= 0:
                    key = keys[np.int64(tok_hash[t]) & mask]
                    if key >= 0:
                        prefetch(word_bytes, word_offsets[key >> 32])
        # input rows, as encode_lines makes them
        nf = np.int64(0)
        nh = 0
        if nt > len(hashes):
            hashes = empty(2 * nt, np.uint64)
        for t in range(nt):
            tstart, tstop, h = tok_start[t], tok_stop[t], tok_hash[t]
            if tstart == -1:
                wid = np.int64(eos_id)
            elif mask < 0:
                wid = np.int64(-1)
            else:
                wid = _find(keys, word_offsets, word_bytes, buf, tstart, tstop, h)
            if wid >= 0:
                is_label = wid >= nwords
            else:
                is_label = has_prefix(buf, tstart, tstop, label_prefix)
            if is_label:
                continue
            if wid >= 0 and maxn == 0:
                if nf == len(feats):
                    feats = grow(feats, 2 * nf)
                feats[nf] = wid
                nf += 1
                _prefetch_row(wi, wid)
            elif wid >= 0:
                a, b = subword_offsets[wid], subword_offsets[wid + 1]
                if nf + b - a > len(feats):
                    feats = grow(feats, 2 * (nf + b - a))
                for j in range(a, b):
                    feats[nf] = subword_ids[j]
                    _prefetch_row(wi, subword_ids[j])
                    nf += 1
            elif hashed and not is_eos(buf, tstart, tstop):
                scratch, size = wrap_word(buf, tstart, tstop, scratch)
                feats, nf = push_subword_rows(tables, scratch[:size], feats, nf, no_spans())
            hashes[nh] = h
            nh += 1
        # word n-grams (dictionary._push_word_ngrams, _bucket_row)
        if nf + nh * word_ngrams > len(feats):
            feats = grow(feats, 2 * (nf + nh * word_ngrams))
        for i in range(nh):
            g = sign_extend32(hashes[i])
            for j in range(i + 1, min(nh, i + word_ngrams)):
                g = g * np.uint64(116049371) + sign_extend32(hashes[j])
                row = np.int64(g % bucket)
                if pruned:
                    row = prune_map[row]
                    if row < 0:
                        continue
                elif nbuckets == 0:
                    continue
                row += nwords
                feats[nf] = row
                nf += 1
                _prefetch_row(wi, row)
        if nlines == len(counts):
            counts = grow(counts, 2 * nlines)
            probs = _grow_rows(probs, 2 * nlines)
            ids = _grow_rows(ids, 2 * nlines)
        if nf > 0:
            mean_rows(wi, feats, 0, nf, hidden)
            n = line_top_k(params, wo, wo_t, hidden, k, threshold, best, exps, unsure)
            counts[nlines] = n
            for j in range(n):
                probs[nlines, j] = math.exp(heap_scores[j])
                ids[nlines, j] = heap_ids[j]
        nlines += 1
    return counts[:nlines], probs[:nlines], ids[:nlines]


# ----------------------------------------------------------------------------- engine
_CHUNK_BYTES = 1 << 22  # lines are encoded and predicted a few MB at a time
_MANY_LINES = 4096  # predict cuts a list this long into groups (Predictor._predict_many)
# Small groups keep the pipeline full: one group's Python work, under the GIL, overlaps the
# kernels of the others.
_GROUPS_PER_WORKER = 8
# A literal `</s>` token: one between fastText's separators (or the ends of the text).
_EOS_TOKEN = re.compile(rb"(?<![^ \n\r\t\v\f\x00])</s>(?![^ \n\r\t\v\f\x00])")


class Predictor:
    """Prediction for one classifier's dictionary and matrices: the official module's
    `predict`, arrays for the commands, and per-chunk `Predictions` for scoring.

    It keeps what every call would otherwise derive again (the loss's parameters, the
    lookup table's keys, the labels' bytes); a model makes a new one whenever its
    dictionary or matrices change."""

    def __init__(self, args, dictionary, input_matrix, output_matrix):
        if not args.supervised:
            raise EmbtkError("this model is not a classifier (it was trained with "
                             f"{args.model}); prediction needs a supervised model")
        self.dictionary = dictionary
        self.input_matrix = input_matrix
        self.output_matrix = output_matrix
        self.params = for_kernels(make_loss_params(args.loss_code, dictionary.counts_of(LABEL), 0))
        self._slot_keys = None  # slot_keys of the dictionary, and the EOS id
        self._label_bytes = None  # dictionary.labels, which unpacks every entry's bytes

    @property
    def label_bytes(self) -> list:
        if self._label_bytes is None:
            self._label_bytes = self.dictionary.labels
        return self._label_bytes

    def _checked(self, k, threshold):
        """k as the kernels take it (nlabels for -1, at most nlabels), and threshold."""
        k, threshold = check_k(k), check_threshold(threshold)
        return (self.dictionary.nlabels if k == -1 else min(k, self.dictionary.nlabels),
                threshold)

    def chunks(self, data, k=1, threshold=0.0, then=None, threads=None) -> list:
        """Predictions for the lines of `data` (raw bytes), one `meter.Predictions` per
        line-aligned chunk, in input order, or `then(chunk)` of each."""
        k, threshold = self._checked(k, threshold)
        output_t = np.ascontiguousarray(self.output_matrix.T)  # tiny for classifiers
        then = then or (lambda chunk: chunk)

        def work(chunk):
            lines = self.dictionary.encode(np.frombuffer(chunk, dtype=np.uint8))
            counts, probs, ids = predict_lines(self.input_matrix, self.output_matrix, output_t,
                                               self.params, lines.feat_offsets, lines.feats,
                                               k, float(threshold))
            return then(Predictions(counts, probs, ids, lines))
        return map_chunks(work, data, threads)

    def _text_kernel(self, k, threshold):
        """predict_text on these matrices as a function of raw bytes (a chunk of whole
        lines), and k as it answers."""
        k, threshold = self._checked(k, threshold)
        output_t = padded_transpose(self.output_matrix)
        d = self.dictionary
        if self._slot_keys is None:
            self._slot_keys = slot_keys(d.tables.slots, d.hashes), d.get_id(EOS)
        keys, eos_id = self._slot_keys
        classifier = Classifier(self.input_matrix, self.output_matrix, output_t, self.params)
        return (lambda chunk: predict_text(
            d.tables, keys, eos_id, classifier, read_only(np.frombuffer(chunk, dtype=np.uint8)),
            k, float(threshold))), k

    def arrays(self, data: bytes, k=1, threshold=0.0, threads=None):
        """Top-k of each line of `data` (raw bytes, newline-separated) as arrays:
        counts (lines,), probabilities and label indices (lines, k), best first."""
        work, k = self._text_kernel(k, threshold)
        parts = map_chunks(work, data, threads)
        if not parts:
            return (np.zeros(0, np.int64), np.zeros((0, max(1, k)), np.float32),
                    np.zeros((0, max(1, k)), np.int64))
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(column) for column in zip(*parts))

    def predict(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
        """Labels and probabilities for a line (a tuple and a float64 array), or for each
        line of a list (a list of lists and a list of float32 arrays), as the official
        module answers."""
        many = isinstance(text, (list, tuple))
        k, threshold = check_k(k), check_threshold(threshold)
        if many and len(text) >= _MANY_LINES:
            answer = self._predict_many(text, k, threshold, on_unicode_error)
            if answer is not None:
                return answer
        data = _joined_lines(text) if many else None
        if data is None:
            data = b"".join([_one_line(t) for t in (text if many else [text])])
        counts, probs, ids = self.arrays(data, k, threshold)
        returned = _returned(counts, ids)
        # only the labels returned are decoded, so 'strict' raises only for those
        names = np.empty(max(1, self.dictionary.nlabels), dtype=object)
        for i in np.flatnonzero(np.bincount(returned, minlength=1)).tolist():
            names[i] = self.label_bytes[i].decode("utf-8", on_unicode_error)
        with _gc_paused():
            if many:
                return _split_rows(names[returned].tolist(), probs, counts)
            return tuple(names[returned].tolist()), probs[0, :counts[0]].astype(np.float64)

    def _predict_many(self, texts, k, threshold, on_unicode_error):
        """predict's answer for a long list of str, or None when a line needs _one_line's
        care. The list is cut into groups, and each worker thread encodes its group, runs
        the kernel on it and builds its part of the answer, so that the Python work of one
        group (which holds the GIL) overlaps the kernel of another (which does not)."""
        work, k = self._text_kernel(k, threshold)
        # every label decoded ahead; one that fails raises only if it is returned, as in
        # predict (the lowest such label id's error)
        names, failures = np.empty(max(1, len(self.label_bytes)), dtype=object), {}
        for i, raw in enumerate(self.label_bytes):
            try:
                names[i] = raw.decode("utf-8", on_unicode_error)
            except UnicodeDecodeError as error:
                failures[i] = error
        workers = os.cpu_count() or 1
        size = -(-len(texts) // (_GROUPS_PER_WORKER * workers))
        groups = [texts[i:i + size] for i in range(0, len(texts), size)]

        def part(group):
            data = _joined_lines(group)
            if data is None:
                return None
            counts, probs, ids = work(data)
            returned = _returned(counts, ids)
            if failures:
                failed = set(returned.tolist()) & failures.keys()
                if failed:
                    return min(failed)
            return _split_rows(names[returned].tolist(), probs, counts)

        with _gc_paused(), ThreadPoolExecutor(min(workers, len(groups))) as pool:
            parts = list(pool.map(part, groups))
            if any(p is None for p in parts):
                return None
            failed = [p for p in parts if isinstance(p, int)]
            if failed:
                raise failures[min(failed)]
            labels, probs = [], []
            for part_labels, part_probs in parts:
                labels += part_labels
                probs += part_probs
            return labels, probs

    def lines(self, data: bytes, k=1, threshold=0.0, with_prob=False, threads=None) -> list:
        """What fastText's `predict` (or with `with_prob`, `predict-prob`) prints for each
        line of `data` (raw bytes), as bytes ending in a newline: the labels, each followed
        by its probability in C++'s default format (%g). The CLI and `predict-files` both
        print these."""
        counts, probs, ids = self.arrays(data, k, threshold, threads)
        names = self.label_bytes
        ids = ids.tolist()
        if not with_prob and (k == 1 or probs.shape[1] == 1):
            return [names[row[0]] + b"\n" if n else b"\n" for n, row in zip(counts.tolist(), ids)]
        probs = probs.tolist()
        if with_prob:
            return [b" ".join([b"%s %s" % (names[i], b"%g" % p) for i, p in
                               zip(row[:n], prow)]) + b"\n"
                    for n, row, prow in zip(counts.tolist(), ids, probs)]
        return [b" ".join([names[i] for i in row[:n]]) + b"\n"
                for n, row in zip(counts.tolist(), ids)]


def _returned(counts, ids):
    """The label ids answered, line after line (each line's first counts[i] of ids[i])."""
    if ids.shape[1] == 1 and counts.all():
        return ids[:, 0]
    return ids[np.arange(ids.shape[1]) < counts[:, None]]


def _split_rows(flat: list, probs: np.ndarray, counts: np.ndarray) -> tuple:
    """predict's answer for a list: each line's labels (a list) and probabilities (an
    array), cut from `flat`, the labels of all lines in order, and the arrays."""
    k = probs.shape[1]
    if k == 1 and counts.all():
        return [[name] for name in flat], list(probs)
    if counts.all() and np.all(counts == k):
        return [flat[i:i + k] for i in range(0, len(flat), k)], list(probs)
    ends = np.cumsum(counts).tolist()
    starts = [0] + ends[:-1]
    return ([flat[a:b] for a, b in zip(starts, ends)],
            [row[:n] for n, row in zip(counts.tolist(), probs)])


def first_example(line: bytes) -> bytes:
    """`line` cut before its first `</s>` token, and ended by a newline there instead.

    fastText's getLine stops at the first end of sentence, so the official module reads
    one example per string given and ignores what follows the token; the encoder, like
    fastText reading a stream (the CLI), would start a new example there instead.
    """
    if EOS not in line:
        return line
    found = _EOS_TOKEN.search(line)
    if found is None:
        return line
    return line[:found.start()] + b"\n"


def _one_line(text) -> bytes:
    data = check_text(text, "text")
    if b"\n" in data:
        raise ValueError("predict processes one line at a time (remove '\\n')")
    return first_example(data + b"\n")


def _joined_lines(texts) -> bytes | None:
    """A list of str lines as one buffer of newline-ended lines, encoded at once; None
    when a line needs _one_line's care (bytes, a newline, an end-of-sentence token, text
    that does not encode strictly). The checks look at the bytes, which are shorter than
    the str and hold a newline or `</s>` exactly where it does."""
    if not texts:
        return b""
    try:
        # each line encoded apart (str.encode refuses a non-str), then the bytes joined:
        # joining the str first would widen every line to the widest one's kind; the
        # empty last one ends the text with a newline
        data = b"\n".join([*map(str.encode, texts), b""])
    except (TypeError, UnicodeEncodeError):
        return None  # bytes, or a surrogate: _one_line takes it (or says what is wrong)
    if data.count(b"\n") != len(texts) or EOS in data:
        return None
    return data


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection meanwhile: building predict's answer for 100,000 lines
    makes as many lists, which set off collections (full ones included) that cost many
    times the building itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def map_chunks(work, data, threads=None) -> list:
    """[work(chunk) for each line-aligned chunk of data], in order, on `threads` threads
    (default: one per core; the kernels release the GIL)."""
    workers = threads or os.cpu_count() or 1
    # as many chunks for each thread (4 MB ones would leave a thread idle at the end)
    rounds = -(-len(data) // (workers * _CHUNK_BYTES))
    size = max(_CHUNK_BYTES // 64, len(data) // max(1, workers * rounds) + 1)
    chunks = list(_line_chunks(data, size))
    if len(chunks) <= 1 or workers == 1:
        return [work(c) for c in chunks]
    with ThreadPoolExecutor(min(workers, len(chunks))) as pool:
        return list(pool.map(work, chunks))


def _line_chunks(data: bytes, size: int = _CHUNK_BYTES):
    """Slices of `data` of about `size` bytes that end at a line end."""
    view = memoryview(data)
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos + size)
        end = len(data) if end < 0 else end + 1
        yield view[pos:end]
        pos = end
