"""The vocabulary with fastText's ids: words and labels, character n-grams and word
n-grams, and lines turned into those ids (the second pass over the corpus).

The tokenizer and hash are `tokens`'s, the first pass `counting`'s. The heavy loops
(looking tokens up, building n-gram rows, encoding lines) are numba kernels over a byte
buffer; `Dictionary` holds the resulting flat arrays and answers lookups.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np
from numba.extending import overload

from .jitting import callee, empty, grow, zeros, zeros2
from .errors import EmbtkError
from .counting import MAX_VOCAB_SIZE, count_pieces
from .introsort import sort_order
from .tokens import (EOS, BOW, EOW, FLORET_SEED, build_keys, floret_key, fnv1a, fnv_step,
                     has_prefix, hash_bytes, is_eos, murmur3_128, next_token_hash, read_only,
                     probe)

MAX_LINE_SIZE = 1024
RECORD_HEADER = 3  # kernels.RECORD_HEADER (kernels imports this module)
WORD, LABEL = 0, 1

# Flat arrays describing a finished dictionary, handed to numba kernels as one argument.
Tables = namedtuple(
    "Tables",
    "slots word_offsets word_bytes types subword_offsets subword_ids prune_map "
    "nwords minn maxn bucket word_ngrams label_prefix keys hash_count",
)
# hash_count 0: fastText's n-grams (FNV-1a, one row each, every word its own row);
# 1..4: floret's (MurmurHash3, that many rows for the wrapped word and for each n-gram).
# The subword scheme is also the tables' class: the same fields under classes numba
# types apart, so that a kernel compiles only the scheme it runs (push_subword_rows picks
# the code by type), not all three (~3 s of a fresh install's first command):
# Tables for fastText's n-grams, FloretTables for floret's, WordOnlyTables for a
# fastText-mode dictionary with maxn 0 (no n-grams; classifiers by default).
FloretTables = namedtuple("FloretTables", Tables._fields)
WordOnlyTables = namedtuple("WordOnlyTables", Tables._fields)


def tables_class(maxn, hash_count):
    if hash_count > 0:
        return FloretTables
    return Tables if maxn > 0 else WordOnlyTables

# Lines encoded for a classifier (`Dictionary.encode`): line i's input rows are
# feats[feat_offsets[i]:feat_offsets[i + 1]], its known labels (0-based label ids)
# labels[label_offsets[i]:label_offsets[i + 1]], and line_tokens[i] its token count.
EncodedLines = namedtuple("EncodedLines", "feat_offsets feats label_offsets labels line_tokens")


# ---------------------------------------------------------------- lookups (pass 2)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _hash_all(word_bytes, offsets):
    out = empty(len(offsets) - 1, np.uint32)
    for i in range(len(out)):
        out[i] = fnv1a(word_bytes, offsets[i], offsets[i + 1])
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def find_id(tables, buf, start, stop, h):
    """Id of the token buf[start:stop] (start -1 == EOS), or -1 if it is not in the vocabulary."""
    keys = tables.keys
    if len(keys) == 0:
        return -1
    key = keys[probe(keys, tables.word_offsets, tables.word_bytes, buf, start, stop, h)]
    return -1 if key == -1 else key >> 32


# Arrays are copied with loops, not slice assignment: numba compiles a slice assignment
# with the machinery of its shape-mismatch error message, seconds on a cold cache.
# Output arrays grow in the caller, written as `if n + k > len(out): out = grow(...)`,
# never through a helper that returns the array: numba reference-counts an array each time
# it is returned and re-bound, which made every appended id cost ~80 ns (10x the work).


@nb.njit(cache=True, nogil=True, inline="always")
def _bucket_row(tables, bucket_id):
    """Input row of hash bucket `bucket_id`, following pruning; -1 if it has none."""
    if len(tables.prune_map) > 0:
        bucket_id = tables.prune_map[bucket_id]
        if bucket_id < 0:
            return -1
    elif tables.bucket == 0:
        return -1
    return tables.nwords + bucket_id


@callee
def push_char_ngrams(tables, word, out, n, spans):
    """Append the char n-gram rows of `word` (already wrapped in '<' '>'), UTF-8 aware.

    When `spans` has rows, the byte range of each n-gram pushed is recorded at the same
    index as its id (how get_subwords names them).
    """
    size = len(word)
    maxn, minn = tables.maxn, tables.minn
    if n + size * maxn > len(out):
        out = grow(out, 2 * (n + size * maxn))
    bucket = np.uint64(max(1, tables.bucket))
    for i in range(size):
        if (word[i] & 0xC0) == 0x80:
            continue
        h = np.uint64(2166136261)
        j = i
        length = 1
        while j < size and length <= maxn:
            h = fnv_step(h, word[j])
            j += 1
            while j < size and (word[j] & 0xC0) == 0x80:
                h = fnv_step(h, word[j])
                j += 1
            if length >= minn and not (length == 1 and (i == 0 or j == size)):
                row = _bucket_row(tables, np.int64(h % bucket))
                if row >= 0:
                    if len(spans) > 0:
                        spans[n, 0], spans[n, 1] = i, j
                    out[n] = row
                    n += 1
            length += 1
    return out, n


@callee
def _push_floret_hashes(tables, word, a, b, out, n, spans):
    """The hash_count rows of floret's MurmurHash3 keys of word[a:b]."""
    h1, h2 = murmur3_128(word, a, b, np.uint64(FLORET_SEED))
    bucket = np.uint64(max(1, tables.bucket))
    for k in range(tables.hash_count):
        row = _bucket_row(tables, np.int64(floret_key(h1, h2, k) % bucket))
        if row >= 0:
            if len(spans) > 0:
                spans[n, 0], spans[n, 1] = a, b
            out[n] = row
            n += 1
    return n


@callee
def push_floret_rows(tables, word, out, n, spans):
    """floret's rows of `word` (already wrapped in '<' '>'): hash_count rows for the whole
    wrapped word, then for each char n-gram as push_char_ngrams finds them."""
    size = len(word)
    maxn, minn = tables.maxn, tables.minn
    need = n + (size * maxn + 1) * tables.hash_count
    if need > len(out):
        out = grow(out, 2 * need)
    n = _push_floret_hashes(tables, word, 0, size, out, n, spans)
    for i in range(size):
        if (word[i] & 0xC0) == 0x80:
            continue
        j = i
        length = 1
        while j < size and length <= maxn:
            j += 1
            while j < size and (word[j] & 0xC0) == 0x80:
                j += 1
            if length >= minn and not (length == 1 and (i == 0 or j == size)):
                n = _push_floret_hashes(tables, word, i, j, out, n, spans)
            length += 1
    return out, n


def _no_rows(tables, word, out, n, spans):
    return out, n


def _subword_pusher(cls):
    return {FloretTables: push_floret_rows, WordOnlyTables: _no_rows}.get(cls, push_char_ngrams)


def push_subword_rows(tables, word, out, n, spans):
    """The rows a wrapped word gets beside its own: fastText's n-grams, floret's or none.
    In numba code the choice is made when the kernel compiles, by the tables' class."""
    return _subword_pusher(type(tables))(tables, word, out, n, spans)


@overload(push_subword_rows, inline="always")
def _push_subword_rows_by_type(tables, word, out, n, spans):
    if tables.instance_class is WordOnlyTables:
        return _no_rows
    push = _subword_pusher(tables.instance_class)

    def impl(tables, word, out, n, spans):
        return push(tables, word, out, n, spans)
    return impl


@callee
def has_subword_rows(tables):
    """Whether words get rows from hashing: floret hashes the whole word even with maxn 0."""
    return tables.maxn > 0 or tables.hash_count > 0


@callee
def no_spans():
    return zeros2(np.int64(0), np.int64(2), np.int64)


@callee
def wrap_word(buf, start, stop, scratch):
    size = stop - start + 2
    if len(scratch) < size:
        scratch = empty(2 * size, np.uint8)
    scratch[0] = 60  # '<'
    for i in range(start, stop):
        scratch[1 + i - start] = buf[i]
    scratch[size - 1] = 62  # '>'
    return scratch, size


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def build_subword_table(tables_without_subwords):
    """CSR of each entry's input rows: its own row, then its char n-grams (none for EOS).

    In floret mode only entry 0 keeps its own row (floret's initNgrams drops it from every
    other entry, so EOS, when not entry 0, has no row at all)."""
    t = tables_without_subwords
    size = len(t.word_offsets) - 1
    offsets = zeros(size + 1, np.int64)
    ids = empty(max(16, size * 4), np.int32)
    n = np.int64(0)
    scratch = empty(np.int64(64), np.uint8)
    for w in range(size):
        if n == len(ids):
            ids = grow(ids, 2 * n)
        if t.hash_count == 0 or w == 0:
            ids[n] = w
            n += 1
        a, b = t.word_offsets[w], t.word_offsets[w + 1]
        if has_subword_rows(t) and not is_eos(t.word_bytes, a, b):
            scratch, length = wrap_word(t.word_bytes, a, b, scratch)
            ids, n = push_subword_rows(t, scratch[:length], ids, n, no_spans())
        offsets[w + 1] = n
    return offsets, ids[:n].copy()


@callee
def sign_extend32(h):
    h = np.uint64(h)
    if h >= np.uint64(0x80000000):
        h |= np.uint64(0xFFFFFFFF00000000)
    return h


@callee
def _push_word_ngrams(tables, hashes, nh, out, n):
    if n + nh * tables.word_ngrams > len(out):
        out = grow(out, 2 * (n + nh * tables.word_ngrams))
    bucket = np.uint64(max(1, tables.bucket))
    for i in range(nh):
        h = sign_extend32(hashes[i])
        for j in range(i + 1, min(nh, i + tables.word_ngrams)):
            h = h * np.uint64(116049371) + sign_extend32(hashes[j])
            row = _bucket_row(tables, np.int64(h % bucket))
            if row >= 0:
                out[n] = row
                n += 1
    return out, n


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def encode_lines(tables, buf):
    """Turn each line of `buf` into input rows and label ids (fastText's supervised getLine).

    Returns CSR arrays (feature offsets, feature ids, label offsets, label ids) and the
    number of tokens of each line. A line ends with its EOS token or at the end of `buf`.
    """
    feats = empty(np.int64(1024), np.int32)
    labels = empty(np.int64(64), np.int32)
    line_feat = zeros(np.int64(64), np.int64)
    line_lab = zeros(np.int64(64), np.int64)
    line_tok = empty(np.int64(64), np.int64)
    hashes = empty(np.int64(256), np.uint32)
    scratch = empty(np.int64(64), np.uint8)
    hashed = has_subword_rows(tables)
    # A counter that starts as the literal 0 and is passed to a kernel (push_char_ngrams)
    # makes numba compile that kernel twice: once for the literal, met while the loop is
    # being typed, then for int64. A typed zero compiles it once.
    nf = np.int64(0)
    nl = 0
    nlines = 0
    nh = np.int64(0)
    ntok = 0
    pos = np.int64(0)
    end = len(buf)
    while True:
        tstart, tstop, pos, h = next_token_hash(buf, pos, end)
        if tstart == -2 and ntok == 0:
            break
        if tstart != -2:
            ntok += 1
            eos = is_eos(buf, tstart, tstop)
            wid = find_id(tables, buf, tstart, tstop, h)
            if wid >= 0:
                is_label = wid >= tables.nwords  # labels follow the words
            else:
                is_label = has_prefix(buf, tstart, tstop, tables.label_prefix)
            if not is_label:
                if wid >= 0 and tables.maxn == 0:
                    # a word's only row is its own: skip two lookups, each a cache miss
                    if nf == len(feats):
                        feats = grow(feats, 2 * nf)
                    feats[nf] = wid
                    nf += 1
                elif wid >= 0:
                    a, b = tables.subword_offsets[wid], tables.subword_offsets[wid + 1]
                    if nf + b - a > len(feats):
                        feats = grow(feats, 2 * (nf + b - a))
                    for k in range(a, b):
                        feats[nf] = tables.subword_ids[k]
                        nf += 1
                elif hashed and not eos:
                    scratch, size = wrap_word(buf, tstart, tstop, scratch)
                    feats, nf = push_subword_rows(tables, scratch[:size], feats, nf, no_spans())
                if nh == len(hashes):
                    hashes = grow(hashes, 2 * nh)
                hashes[nh] = h
                nh += 1
            elif wid >= 0:
                if nl == len(labels):
                    labels = grow(labels, 2 * nl)
                labels[nl] = wid - tables.nwords
                nl += 1
            if not eos:
                continue
        # the line is complete: add its word n-grams and close it
        feats, nf = _push_word_ngrams(tables, hashes, nh, feats, nf)
        if nlines + 2 > len(line_tok):
            line_feat = grow(line_feat, 2 * (nlines + 2))
            line_lab = grow(line_lab, 2 * (nlines + 2))
            line_tok = grow(line_tok, 2 * (nlines + 2))
        line_feat[nlines + 1] = nf
        line_lab[nlines + 1] = nl
        line_tok[nlines] = ntok
        nlines += 1
        nh = 0
        ntok = 0
        if tstart == -2:
            break
    return (line_feat[: nlines + 1].copy(), feats[:nf].copy(), line_lab[: nlines + 1].copy(),
            labels[:nl].copy(), line_tok[:nlines].copy())


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def encode_ids(tables, buf, start, out):
    """In-vocabulary token ids of buf from byte `start` on, OOV tokens dropped (the
    unsupervised getLine), written to `out` until the buffer ends or `out` is full.

    Returns (ids written, byte position reached): encoding resumes from that position.
    """
    # arrays taken out of the tuple once: read from it in the loop, each costs a
    # reference count update per token
    keys, offsets, entries = tables.keys, tables.word_offsets, tables.word_bytes
    n = 0
    pos = start
    end = len(buf)
    if len(keys) == 0:
        return n, end
    while n < len(out):
        tstart, tstop, pos, h = next_token_hash(buf, pos, end)
        if tstart == -2:
            break
        key = keys[probe(keys, offsets, entries, buf, tstart, tstop, h)]
        if key != -1:
            out[n] = key >> 32
            n += 1
    return n, pos


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def char_ngram_rows(tables, word, spans):
    """The rows of a word's char n-grams (none for EOS); their byte ranges in '<word>'
    go to `spans` when it has rows."""
    out = empty(max(1, len(spans)), np.int32)
    n = np.int64(0)
    if has_subword_rows(tables) and not is_eos(word, np.int64(0), len(word)):
        scratch, size = wrap_word(word, np.int64(0), len(word), empty(len(word) + 2, np.uint8))
        out, n = push_subword_rows(tables, scratch[:size], out, n, spans)
    return out[:n].copy()


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def word_rows(tables, word):
    """Input rows averaged into a word's vector: the entry's own list, or its char n-grams."""
    wid = find_id(tables, word, np.int64(0), len(word), fnv1a(word, np.int64(0), len(word)))
    if wid >= 0:
        return tables.subword_ids[tables.subword_offsets[wid]:tables.subword_offsets[wid + 1]].copy()
    return char_ngram_rows(tables, word, no_spans())


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def lookup(tables, word):
    return find_id(tables, word, np.int64(0), len(word), fnv1a(word, np.int64(0), len(word)))


# Entries packed in one byte array: entry i is word_bytes[offsets[i]:offsets[i + 1]]. What a
# model file is saved from, without a bytes object per entry (30 MB for 500,000 words).
PackedWords = namedtuple("PackedWords", "word_bytes offsets")


def file_entries(word_bytes, offsets, counts, types, block: int = 1 << 16) -> np.ndarray:
    """The entries as a model file stores them, one after the other: the word's bytes,
    a NUL, its count (int64, little-endian) and its type (int8). numpy, a block of
    entries at a time (its index arrays are 8 bytes a word byte): nothing to compile."""
    n = len(offsets) - 1
    lengths = np.diff(offsets)
    ends = np.cumsum(lengths + 10)
    out = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
    counts = np.asarray(counts).astype("<i8").view(np.uint8).reshape(n, 8)
    types = np.asarray(types).astype(np.int8).view(np.uint8)
    for first in range(0, n, block):
        last = min(n, first + block)
        tails = ends[first:last] - 10  # where each entry's NUL goes
        a, b = offsets[first], offsets[last]
        out[np.repeat(tails - offsets[first + 1:last + 1], lengths[first:last])
            + np.arange(a, b)] = word_bytes[a:b]
        out[tails] = 0
        out[tails[:, None] + np.arange(1, 9)] = counts[first:last]
        out[tails + 9] = types[first:last]
    return out


def kept_order(counts, types, min_count: int, min_count_label: int) -> np.ndarray:
    """fastText's threshold(): the entries in std::sort's order (words before labels, more
    frequent first), those below their type's count left out."""
    order = sort_order(types, counts)
    limits = np.where(types[order] == WORD, min_count, min_count_label)
    order = order[counts[order] >= limits]
    if not len(order):
        raise EmbtkError("empty vocabulary: no word occurs -minCount times; try a smaller -minCount")
    return order


# ------------------------------------------------------------------------ Dictionary
def unpack_entries(word_bytes, offsets, start: int, stop: int) -> list[bytes]:
    """Entries start..stop-1 of a packed dictionary (entry i is word_bytes[offsets[i]:offsets[i+1]])."""
    raw = word_bytes.tobytes()
    bounds = offsets[start:stop + 1].tolist()
    return [raw[a:b] for a, b in zip(bounds, bounds[1:])]


class Dictionary:
    """A finished vocabulary: words then labels, each with its count, and the hash tables."""

    def __init__(self, words, counts, types, ntokens, *, minn, maxn, bucket, word_ngrams,
                 label=b"__label__", pruneidx=None, t=1e-4, hash_count=0):
        words = list(map(bytes, words))  # bytes(b) is b itself: no copy
        offsets = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(np.array(list(map(len, words)), dtype=np.int64), out=offsets[1:])
        word_bytes = np.frombuffer(b"".join(words), dtype=np.uint8).copy()
        self._setup(word_bytes, offsets, counts, types, ntokens, minn, maxn, bucket,
                    word_ngrams, label, pruneidx, t, hash_count)
        # `words` is rebuilt from the packed bytes when asked for: kept, the list would
        # hold ~50 bytes an entry (25 MB for 500,000 words) through training

    @classmethod
    def from_packed(cls, word_bytes, offsets, counts, types, ntokens, *, minn, maxn, bucket,
                    word_ngrams, label=b"__label__", pruneidx=None, t=1e-4, hash_count=0,
                    hashes=None):
        """From entries packed in one byte array (entry i is word_bytes[offsets[i]:offsets[i+1]]),
        as a loaded model holds them: no list of bytes objects is built. `hashes`: each
        entry's fnv1a, when counting has them already."""
        d = cls.__new__(cls)
        d._setup(np.ascontiguousarray(word_bytes, dtype=np.uint8),
                 np.ascontiguousarray(offsets, dtype=np.int64), counts, types, ntokens, minn,
                 maxn, bucket, word_ngrams, label, pruneidx, t, hash_count, hashes)
        return d

    def _setup(self, word_bytes, offsets, counts, types, ntokens, minn, maxn, bucket,
               word_ngrams, label, pruneidx, t, hash_count, hashes=None):
        self._words = None
        # (path, file of counted entry ids, tokens, FirstPass) when counting kept the ids
        # (corpus.count_vocabulary): what encode_corpus reads instead of the text
        self.first_pass = None
        self.size = len(offsets) - 1
        self.counts = np.asarray(counts, dtype=np.int64)
        self.types = np.asarray(types, dtype=np.int8)
        if len(self.counts) != self.size or len(self.types) != self.size:
            raise EmbtkError(f"{self.size} dictionary entries but {len(self.counts)} counts "
                             f"and {len(self.types)} types")
        self.ntokens = int(ntokens)
        self.nwords = int(np.count_nonzero(self.types == WORD))
        self.nlabels = self.size - self.nwords
        if np.any(self.types[: self.nwords] != WORD):
            raise EmbtkError("dictionary entries must list all words before labels")
        self.minn, self.maxn, self.bucket, self.word_ngrams = int(minn), int(maxn), int(bucket), int(word_ngrams)
        self.label = label.encode() if isinstance(label, str) else bytes(label)
        self.t = float(t)
        # 0: fastText's subwords; 1..4: floret's (see Tables)
        self.hash_count = int(hash_count)
        self.pruneidx = pruneidx
        word_bytes = read_only(word_bytes)
        # fastText's hash of each entry: the slots are placed by it, and prediction's
        # table (predicting.slot_keys) keeps it beside each id
        if hashes is None:
            hashes = _hash_all(word_bytes, offsets)
        self.hashes = hashes = np.ascontiguousarray(hashes, dtype=np.uint32)
        nslots = 1 << max(4, int(2 * max(1, self.size)).bit_length())
        keys = build_keys(hashes, self.size, nslots)
        slots = (keys >> 32).astype(np.int32)  # each slot's entry id, -1 where free
        prune_map = np.zeros(0, dtype=np.int32)
        if pruneidx is not None:
            prune_map = np.full(max(1, self.bucket), -1, dtype=np.int32)
            if len(pruneidx):
                prune_map[pruneidx[:, 0]] = pruneidx[:, 1]
        base = tables_class(self.maxn, self.hash_count)(
            slots, offsets, word_bytes, self.types, np.zeros(1, np.int64), np.zeros(0, np.int32),
            prune_map, self.nwords, self.minn, self.maxn, self.bucket, self.word_ngrams,
            np.frombuffer(self.label, dtype=np.uint8).copy(), keys,
            self.hash_count)
        if self.maxn > 0 or self.hash_count > 0:
            sub_off, sub_ids = build_subword_table(base)
        else:  # each entry is its only row: what build_subword_table gives, not compiled
            sub_off = np.arange(self.size + 1, dtype=np.int64)
            sub_ids = np.arange(self.size, dtype=np.int32)
        self.tables = base._replace(subword_offsets=sub_off, subword_ids=sub_ids)

    @property
    def words(self) -> list[bytes]:
        """Every entry, words then labels, built from the packed bytes on first use."""
        if self._words is None:
            self._words = self.entries(0, self.size)
        return self._words

    def packed_words(self) -> PackedWords:
        t = self.tables
        return PackedWords(t.word_bytes, t.word_offsets)

    @property
    def labels(self) -> list[bytes]:
        return self.entries(self.nwords, self.size)

    def entries(self, start: int, stop: int) -> list[bytes]:
        """Entries start..stop-1 as bytes (the labels alone stay cheap on a big model)."""
        if self._words is not None:
            return self._words[start:stop]
        return unpack_entries(self.tables.word_bytes, self.tables.word_offsets, start, stop)

    # construction -----------------------------------------------------------------
    @classmethod
    def _thresholded(cls, words, counts, types, ntokens, min_count, min_count_label, **options):
        order = kept_order(counts, types, min_count, min_count_label)
        return cls([words[i] for i in order], counts[order], types[order], ntokens, **options)

    @classmethod
    def from_buffer(cls, buf, args, max_vocab=MAX_VOCAB_SIZE):
        """Count the tokens of a corpus and keep those at or above the count thresholds."""
        return cls.from_pieces([buf], args, max_vocab)

    @classmethod
    def from_pieces(cls, pieces, args, max_vocab=MAX_VOCAB_SIZE, on_tokens=None):
        """`from_buffer` over a corpus given as byte arrays, each cut after a separator
        (see corpus.text_pieces): memory holds the vocabulary, never the corpus.
        `on_tokens(n)` hears the tokens read so far, as counting goes (see count_pieces)."""
        label = args.label.encode("utf-8")
        return cls.from_counted(count_pieces(pieces, label, max_vocab, on_tokens), args)

    @classmethod
    def from_counted(cls, counted, args):
        """From count_pieces's answer (words, counts, types, tokens read): the entries at
        or above the count thresholds, in fastText's order."""
        words, counts, types, ntokens = counted
        return cls._thresholded(words, counts, types, ntokens, args.minCount, args.minCountLabel,
                                minn=args.minn, maxn=args.maxn, bucket=args.effective_bucket(),
                                word_ngrams=args.wordNgrams, label=args.label.encode("utf-8"),
                                t=args.t, hash_count=args.floret_hashes)

    @classmethod
    def from_count(cls, entry_bytes, offsets, counts, types, hashes, ntokens, args):
        """from_counted on a count's packed entries (entry i is
        entry_bytes[offsets[i]:offsets[i + 1]], its fnv1a hashes[i]), without a bytes object
        per entry. Returns the dictionary and the counted entry of each of its entries."""
        order = kept_order(counts, types, args.minCount, args.minCountLabel)
        starts = offsets[order]
        lengths = offsets[order + 1] - starts
        new_offsets = np.zeros(len(order) + 1, dtype=np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        picked = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
        return cls.from_packed(entry_bytes[picked], new_offsets, counts[order], types[order],
                               ntokens, minn=args.minn, maxn=args.maxn,
                               bucket=args.effective_bucket(), word_ngrams=args.wordNgrams,
                               label=args.label.encode("utf-8"), t=args.t,
                               hash_count=args.floret_hashes, hashes=hashes[order]), order

    def with_extra_words(self, extra):
        """A copy that also holds `extra` words (pretrained vectors), each counted once more,
        ordered as fastText orders them (add each word, then threshold(1, 0))."""
        words, counts, types = list(self.words), list(self.counts), list(self.types)
        position = {w: i for i, w in enumerate(words)}
        for w in extra:
            i = position.get(w)
            if i is None:
                position[w] = len(words)
                words.append(w)
                counts.append(1)
                types.append(LABEL if w.startswith(self.label) else WORD)
            else:
                counts[i] += 1
        return Dictionary._thresholded(
            words, np.array(counts, dtype=np.int64), np.array(types, dtype=np.int8),
            self.ntokens + len(extra), 1, 0, minn=self.minn, maxn=self.maxn, bucket=self.bucket,
            word_ngrams=self.word_ngrams, label=self.label, pruneidx=self.pruneidx, t=self.t,
            hash_count=self.hash_count)

    def extended(self, words, counts, types, ntokens: int, args):
        """This vocabulary with the counts of a new corpus added (its entries as counted,
        before any threshold: words, counts, types, and the tokens read), for continued
        training. A known entry adds its count; a new one joins when it reaches -minCount
        (-minCountLabel for labels); then all are sorted again as fastText sorts them.

        Returns the new Dictionary and, for each of its entries, its id here (-1: new).
        """
        known = {w: i for i, w in enumerate(self.words)}
        merged = self.counts.copy()
        added, added_counts, added_types = [], [], []
        for w, c, t in zip(words, counts.tolist(), types.tolist()):
            i = known.get(w)
            if i is not None:
                merged[i] += c
            elif c >= (args.minCount if t == WORD else args.minCountLabel):
                added.append(w)
                added_counts.append(c)
                added_types.append(t)
        everything = self.words + added
        all_counts = np.concatenate([merged, np.array(added_counts, dtype=np.int64)])
        all_types = np.concatenate([self.types, np.array(added_types, dtype=np.int8)])
        order = sort_order(all_types, all_counts)
        extended = Dictionary([everything[i] for i in order], all_counts[order],
                              all_types[order], self.ntokens + ntokens, minn=self.minn,
                              maxn=self.maxn, bucket=self.bucket, word_ngrams=self.word_ngrams,
                              label=args.label, t=args.t, hash_count=self.hash_count)
        return extended, np.where(order < self.size, order, -1)

    def with_options(self, args):
        """The same entries with the n-gram options of `args` (minn, maxn, bucket,
        wordNgrams): what counting the same corpus again would give."""
        return Dictionary(self.words, self.counts, self.types, self.ntokens, minn=args.minn,
                          maxn=args.maxn, bucket=args.effective_bucket(),
                          word_ngrams=args.wordNgrams, label=self.label, t=args.t,
                          hash_count=args.floret_hashes)

    # queries ---------------------------------------------------------------------
    def get_id(self, word: bytes) -> int:
        return int(lookup(self.tables, np.frombuffer(word, dtype=np.uint8)))

    def word_rows(self, word: bytes) -> np.ndarray:
        """The `word_rows` kernel's answer, from the lookup and char_ngram_rows kernels:
        a command asking for a few words' vectors (nn, analogies) then compiles neither
        word_rows nor, when the words are known, char_ngram_rows (1 s on a cold cache)."""
        t = self.tables
        wid = self.get_id(word)
        if wid >= 0:
            return t.subword_ids[t.subword_offsets[wid]:t.subword_offsets[wid + 1]].copy()
        return char_ngram_rows(t, np.frombuffer(word, dtype=np.uint8), np.zeros((0, 2), np.int64))

    def subword_groups(self, word: bytes) -> list:
        """Each subword of a word's hashed rows with its row ids: [(bytes, int64 array)].
        In floret mode '<word>' first, then each n-gram, hash_count rows each (fewer in a
        pruned model, whose pruned buckets have no row)."""
        per_name = max(1, self.hash_count)
        spans = np.zeros(((len(word) + 2) * max(1, self.maxn) * per_name + per_name, 2),
                         dtype=np.int64)
        ids = char_ngram_rows(self.tables, np.frombuffer(word, dtype=np.uint8), spans)
        wrapped = BOW + word + EOW
        groups = []
        for i, (a, b) in enumerate(spans[: len(ids)].tolist()):
            if i == 0 or (a, b) != tuple(spans[i - 1]) or len(groups[-1][1]) == per_name:
                groups.append((wrapped[a:b], []))
            groups[-1][1].append(int(ids[i]))
        return [(name, np.array(rows, dtype=np.int64)) for name, rows in groups]

    def subwords(self, word: bytes):
        """The entry (if known) and the char n-grams of a word: (list of bytes, row ids).

        In floret mode, as floret's get_subwords: the wrapped word first, then each n-gram,
        and hash_count row ids for each of them (no entry's own row)."""
        if self.hash_count:
            groups = self.subword_groups(word)
            return [name for name, _ in groups], np.concatenate(
                [rows for _, rows in groups] + [np.zeros(0, np.int64)])
        spans = np.zeros(((len(word) + 2) * max(1, self.maxn), 2), dtype=np.int64)
        ids = char_ngram_rows(self.tables, np.frombuffer(word, dtype=np.uint8), spans)
        wrapped = BOW + word + EOW
        names = [wrapped[a:b] for a, b in spans[: len(ids)]]
        wid = self.get_id(word)
        if wid >= 0:
            return [word] + names, np.concatenate([[wid], ids]).astype(np.int64)
        return names, ids.astype(np.int64)

    def subword_rows(self, subword: bytes) -> int:
        """Input row of one char n-gram (what fastText's getSubwordId returns; floret's
        returns -1 in floret mode, where an n-gram has hash_count rows)."""
        if self.hash_count:
            return -1
        return self.nwords + hash_bytes(subword) % max(1, self.bucket)

    def encode(self, buf: np.ndarray) -> EncodedLines:
        """The lines of a byte buffer as input rows and label ids."""
        return EncodedLines(*encode_lines(self.tables, read_only(buf)))

    def encode_ids(self, buf: np.ndarray, start: int, out: np.ndarray):
        """dictionary.encode_ids on this vocabulary: (ids written to out, position reached)."""
        n, position = encode_ids(self.tables, read_only(buf), np.int64(start), out)
        return int(n), int(position)

    def corpus_ids(self, buf: np.ndarray) -> np.ndarray:
        """The in-vocabulary ids of the tokens of `buf` (a corpus in memory)."""
        out = np.empty(max(1, min(len(buf), self.ntokens)), dtype=np.int32)
        buf = read_only(buf)
        filled, pos = 0, 0
        while True:
            n, pos = encode_ids(self.tables, buf, np.int64(pos), out[filled:])
            filled += n
            if filled < len(out):
                return out[:filled].copy()
            out = np.concatenate([out, np.empty(len(out), dtype=np.int32)])

    def counts_of(self, kind: int) -> np.ndarray:
        return self.counts[self.types == kind]

    def discard_probabilities(self) -> np.ndarray:
        """fastText's subsampling: keep a word with probability sqrt(t/f) + t/f."""
        f = self.counts[: self.nwords] / max(1, self.ntokens)
        return (np.sqrt(self.t / f) + self.t / f).astype(np.float32)

    def eos_id(self) -> int:
        return self.get_id(EOS)
