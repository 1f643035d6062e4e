"""Vocabulary, character n-grams and word n-grams, with fastText's hashing and ids.

Text is never decoded: the tokenizer and the hash work on raw bytes, as fastText's do,
so any byte sequence trains and predicts. The heavy loops (tokenizing, counting, turning
lines into feature ids) are numba kernels over a byte buffer; `Dictionary` holds the
resulting flat arrays and answers lookups.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

from .errors import EmbtkError

EOS = b"</s>"
BOW, EOW = b"<", b">"
MAX_VOCAB_SIZE = 30_000_000
MAX_LINE_SIZE = 1024
WORD, LABEL = 0, 1

_EOS_ARRAY = np.frombuffer(EOS, dtype=np.uint8)

# Flat arrays describing a finished dictionary, handed to numba kernels as one argument.
Tables = namedtuple(
    "Tables",
    "slots word_offsets word_bytes types subword_offsets subword_ids prune_map "
    "nwords minn maxn bucket word_ngrams label_prefix",
)


# --------------------------------------------------------------------------- hashing


@nb.njit(cache=True, nogil=True, inline="always")
def _fnv_step(h, byte):
    # fastText feeds each byte as a signed char, so bytes >= 128 flip the top 24 bits.
    b = np.uint64(byte)
    if byte >= 128:
        b |= np.uint64(0xFFFFFF00)
    return ((h ^ b) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)


@nb.njit(cache=True, nogil=True)
def fnv1a(buf, start, end):
    h = np.uint64(2166136261)
    for i in range(start, end):
        h = _fnv_step(h, buf[i])
    return h


def hash_bytes(data: bytes) -> int:
    """fastText's 32-bit FNV-1a of `data` (an unsigned int)."""
    return int(fnv1a(np.frombuffer(data, dtype=np.uint8), 0, len(data)))


EOS_HASH = hash_bytes(EOS)


@nb.njit(cache=True, nogil=True, inline="always")
def _is_space(c):
    return c == 32 or c == 10 or c == 13 or c == 9 or c == 11 or c == 12 or c == 0


@nb.njit(cache=True, nogil=True)
def next_token(buf, pos, end):
    """Next token at or after `pos`: (start, stop, next_pos); start == -1 means EOS, -2 end."""
    while pos < end:
        c = buf[pos]
        if not _is_space(c):
            break
        pos += 1
        if c == 10:
            return -1, -1, pos
    if pos >= end:
        return -2, -2, pos
    start = pos
    while pos < end and not _is_space(buf[pos]):
        pos += 1
    return start, pos, pos


@nb.njit(cache=True, nogil=True, inline="always")
def _token_hash(buf, start, stop):
    if start == -1:
        return fnv1a(_EOS_ARRAY, 0, 4)
    return fnv1a(buf, start, stop)


@nb.njit(cache=True, nogil=True)
def _has_prefix(buf, start, stop, prefix):
    if start < 0 or stop - start < len(prefix):
        return False
    for i in range(len(prefix)):
        if buf[start + i] != prefix[i]:
            return False
    return True


# ------------------------------------------------------------------ counting (pass 1)


@nb.njit(cache=True, nogil=True)
def _same_token(buf, start, stop, ebuf, estart, elen):
    """Compare a token in `buf` with an entry stored in `ebuf` (start -1 == EOS)."""
    if start == -1:
        if elen != 4:
            return False
        for i in range(4):
            if ebuf[estart + i] != _EOS_ARRAY[i]:
                return False
        return True
    n = stop - start
    if n != elen:
        return False
    for i in range(n):
        if buf[start + i] != ebuf[estart + i]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _rebuild_slots(hashes, n, nslots):
    slots = np.full(nslots, -1, dtype=np.int32)
    mask = nslots - 1
    for e in range(n):
        s = np.int64(hashes[e]) & mask
        while slots[s] != -1:
            s = (s + 1) & mask
        slots[s] = e
    return slots


@nb.njit(cache=True, nogil=True)
def count_tokens(buf, label_prefix, max_vocab, min_count, min_count_label):
    """Count every distinct token of `buf`, pruning rare ones past `max_vocab` entries.

    Returns entry arrays in first-seen order: byte storage, offsets, counts, types,
    plus the total number of tokens read (pruned ones included, as fastText counts them).
    """
    end = len(buf)
    cap = 1024
    ebytes = np.empty(cap * 8, dtype=np.uint8)
    eoff = np.zeros(cap + 1, dtype=np.int64)
    elen = np.zeros(cap, dtype=np.int64)
    counts = np.zeros(cap, dtype=np.int64)
    types = np.zeros(cap, dtype=np.int8)
    hashes = np.zeros(cap, dtype=np.uint32)
    nslots = 2048
    slots = np.full(nslots, -1, dtype=np.int32)
    n = 0
    nbytes = 0
    ntokens = 0
    threshold = 1
    pos = 0
    while True:
        start, stop, pos = next_token(buf, pos, end)
        if start == -2:
            break
        ntokens += 1
        h = _token_hash(buf, start, stop)
        mask = nslots - 1
        s = np.int64(h) & mask
        while slots[s] != -1:
            e = slots[s]
            if hashes[e] == h and _same_token(buf, start, stop, ebytes, eoff[e], elen[e]):
                break
            s = (s + 1) & mask
        if slots[s] != -1:
            counts[slots[s]] += 1
            continue
        # new entry
        tlen = 4 if start == -1 else stop - start
        if n == cap:
            cap *= 2
            eoff = _grow(eoff, cap + 1)
            elen = _grow(elen, cap)
            counts = _grow(counts, cap)
            types = _grow(types, cap)
            hashes = _grow(hashes, cap)
        while nbytes + tlen > len(ebytes):
            ebytes = _grow(ebytes, 2 * len(ebytes))
        for i in range(tlen):
            ebytes[nbytes + i] = _EOS_ARRAY[i] if start == -1 else buf[start + i]
        eoff[n] = nbytes
        elen[n] = tlen
        nbytes += tlen
        counts[n] = 1
        types[n] = 1 if _has_prefix(buf, start, stop, label_prefix) else 0
        hashes[n] = h
        slots[s] = n
        n += 1
        if n * 2 > nslots:
            nslots *= 2
            slots = _rebuild_slots(hashes, n, nslots)
        if n > max_vocab * 3 // 4:
            # fastText's pruning: raise the threshold until the vocabulary fits again.
            threshold += 1
            keep = 0
            kept_bytes = 0
            for e in range(n):
                if counts[e] >= threshold:
                    for i in range(elen[e]):
                        ebytes[kept_bytes + i] = ebytes[eoff[e] + i]
                    eoff[keep] = kept_bytes
                    elen[keep] = elen[e]
                    counts[keep] = counts[e]
                    types[keep] = types[e]
                    hashes[keep] = hashes[e]
                    kept_bytes += elen[e]
                    keep += 1
            n = keep
            nbytes = kept_bytes
            slots = _rebuild_slots(hashes, n, nslots)
    eoff[n] = nbytes
    return ebytes[:nbytes].copy(), eoff[: n + 1].copy(), counts[:n].copy(), types[:n].copy(), ntokens


@nb.njit(cache=True, nogil=True)
def _grow(arr, size):
    out = np.zeros(size, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


# ---------------------------------------------------------------- lookups (pass 2)


@nb.njit(cache=True, nogil=True)
def _hash_all(word_bytes, offsets):
    out = np.empty(len(offsets) - 1, dtype=np.uint32)
    for i in range(len(out)):
        out[i] = fnv1a(word_bytes, offsets[i], offsets[i + 1])
    return out


@nb.njit(cache=True, nogil=True)
def find_id(tables, buf, start, stop, h):
    """Id of the token buf[start:stop] (start -1 == EOS), or -1 if it is not in the vocabulary."""
    slots = tables.slots
    if len(slots) == 0:
        return -1
    mask = len(slots) - 1
    s = np.int64(h) & mask
    while slots[s] != -1:
        e = slots[s]
        o = tables.word_offsets[e]
        if _same_token(buf, start, stop, tables.word_bytes, o, tables.word_offsets[e + 1] - o):
            return e
        s = (s + 1) & mask
    return -1


@nb.njit(cache=True, nogil=True)
def _push(out, n, value):
    if n == len(out):
        out = _grow(out, 2 * len(out))
    out[n] = value
    return out, n + 1


@nb.njit(cache=True, nogil=True)
def _push_bucket(tables, out, n, bucket_id):
    """Append the input row of hash bucket `bucket_id`, following pruning if any."""
    if len(tables.prune_map) > 0:
        bucket_id = tables.prune_map[bucket_id]
        if bucket_id < 0:
            return out, n
    elif tables.bucket == 0:
        return out, n
    return _push(out, n, tables.nwords + bucket_id)


@nb.njit(cache=True, nogil=True)
def push_char_ngrams(tables, word, out, n):
    """Append the char n-gram rows of `word` (already wrapped in '<' '>'), UTF-8 aware."""
    size = len(word)
    for i in range(size):
        if (word[i] & 0xC0) == 0x80:
            continue
        h = np.uint64(2166136261)
        j = i
        length = 1
        while j < size and length <= tables.maxn:
            h = _fnv_step(h, word[j])
            j += 1
            while j < size and (word[j] & 0xC0) == 0x80:
                h = _fnv_step(h, word[j])
                j += 1
            if length >= tables.minn and not (length == 1 and (i == 0 or j == size)):
                out, n = _push_bucket(tables, out, n, np.int64(h % np.uint64(tables.bucket)))
            length += 1
    return out, n


@nb.njit(cache=True, nogil=True)
def _wrap_word(buf, start, stop, scratch):
    size = stop - start + 2
    if len(scratch) < size:
        scratch = np.empty(2 * size, dtype=np.uint8)
    scratch[0] = 60  # '<'
    scratch[1 : size - 1] = buf[start:stop]
    scratch[size - 1] = 62  # '>'
    return scratch, size


@nb.njit(cache=True, nogil=True)
def build_subword_table(tables_without_subwords):
    """CSR of each word's feature rows: its own row, then its char n-grams (not for EOS)."""
    t = tables_without_subwords
    nwords = t.nwords
    offsets = np.zeros(nwords + 1, dtype=np.int64)
    ids = np.empty(max(16, nwords * 4), dtype=np.int32)
    n = 0
    scratch = np.empty(64, dtype=np.uint8)
    for w in range(nwords):
        ids, n = _push(ids, n, w)
        a, b = t.word_offsets[w], t.word_offsets[w + 1]
        is_eos = b - a == 4 and _same_token(t.word_bytes, a, b, _EOS_ARRAY, 0, 4)
        if t.maxn > 0 and not is_eos:
            scratch, size = _wrap_word(t.word_bytes, a, b, scratch)
            ids, n = push_char_ngrams(t, scratch[:size], ids, n)
        offsets[w + 1] = n
    return offsets, ids[:n].copy()


@nb.njit(cache=True, nogil=True)
def _sign_extend32(h):
    h = np.uint64(h)
    if h >= np.uint64(0x80000000):
        h |= np.uint64(0xFFFFFFFF00000000)
    return h


@nb.njit(cache=True, nogil=True)
def _push_word_ngrams(tables, hashes, nh, out, n):
    bucket = np.uint64(tables.bucket)
    for i in range(nh):
        h = _sign_extend32(hashes[i])
        for j in range(i + 1, min(nh, i + tables.word_ngrams)):
            h = h * np.uint64(116049371) + _sign_extend32(hashes[j])
            out, n = _push_bucket(tables, out, n, np.int64(h % bucket))
    return out, n


@nb.njit(cache=True, nogil=True)
def encode_lines(tables, buf, start, end, with_oov_subwords):
    """Turn each line of buf[start:end] into input rows and label ids (supervised getLine).

    Returns CSR arrays (feature offsets, feature ids, label offsets, label ids) and the
    number of tokens of each line. A line ends after its newline (EOS) or at `end`.
    """
    feats = np.empty(1024, dtype=np.int32)
    labels = np.empty(64, dtype=np.int32)
    line_feat = np.empty(64, dtype=np.int64)
    line_lab = np.empty(64, dtype=np.int64)
    line_tok = np.empty(64, dtype=np.int64)
    hashes = np.empty(256, dtype=np.uint32)
    scratch = np.empty(64, dtype=np.uint8)
    nf = 0
    nl = 0
    nlines = 0
    line_feat[0] = 0
    line_lab[0] = 0
    nh = 0
    ntok = 0
    pos = start
    while True:
        tstart, tstop, pos = next_token(buf, pos, end)
        if tstart == -2:
            if ntok > 0:
                feats, nf = _push_word_ngrams(tables, hashes, nh, feats, nf)
                line_feat, _ = _push(line_feat, nlines + 1, nf)
                line_lab, _ = _push(line_lab, nlines + 1, nl)
                line_tok, _ = _push(line_tok, nlines, ntok)
                nlines += 1
            break
        ntok += 1
        h = _token_hash(buf, tstart, tstop)
        wid = find_id(tables, buf, tstart, tstop, h)
        if wid >= 0:
            is_label = tables.types[wid] == 1
        else:
            is_label = _has_prefix(buf, tstart, tstop, tables.label_prefix)
        if not is_label:
            if wid >= 0:
                if tables.maxn <= 0:
                    feats, nf = _push(feats, nf, wid)
                else:
                    for k in range(tables.subword_offsets[wid], tables.subword_offsets[wid + 1]):
                        feats, nf = _push(feats, nf, tables.subword_ids[k])
            elif with_oov_subwords and tstart != -1 and tables.maxn > 0:
                scratch, size = _wrap_word(buf, tstart, tstop, scratch)
                feats, nf = push_char_ngrams(tables, scratch[:size], feats, nf)
            hashes, nh = _push(hashes, nh, np.uint32(h))
        elif wid >= 0:
            labels, nl = _push(labels, nl, wid - tables.nwords)
        if tstart == -1:
            feats, nf = _push_word_ngrams(tables, hashes, nh, feats, nf)
            line_feat, _ = _push(line_feat, nlines + 1, nf)
            line_lab, _ = _push(line_lab, nlines + 1, nl)
            line_tok, _ = _push(line_tok, nlines, ntok)
            nlines += 1
            nh = 0
            ntok = 0
    return (line_feat[: nlines + 1].copy(), feats[:nf].copy(), line_lab[: nlines + 1].copy(),
            labels[:nl].copy(), line_tok[:nlines].copy())


@nb.njit(cache=True, nogil=True)
def encode_corpus_ids(tables, buf):
    """In-vocabulary token ids of the whole buffer, OOV tokens dropped (unsupervised getLine)."""
    out = np.empty(max(1024, len(buf) // 4), dtype=np.int32)
    n = 0
    pos = 0
    end = len(buf)
    while True:
        start, stop, pos = next_token(buf, pos, end)
        if start == -2:
            break
        wid = find_id(tables, buf, start, stop, _token_hash(buf, start, stop))
        if wid >= 0:
            out, n = _push(out, n, wid)
    return out[:n].copy()


@nb.njit(cache=True, nogil=True)
def word_rows(tables, word):
    """Input rows averaged into a word's vector: in-vocab subword list or OOV char n-grams."""
    h = fnv1a(word, 0, len(word))
    wid = find_id(tables, word, 0, len(word), h)
    if wid >= 0:
        return tables.subword_ids[tables.subword_offsets[wid] : tables.subword_offsets[wid + 1]].copy()
    out = np.empty(64, dtype=np.int32)
    n = 0
    if tables.maxn > 0:
        scratch, size = _wrap_word(word, 0, len(word), np.empty(len(word) + 2, dtype=np.uint8))
        out, n = push_char_ngrams(tables, scratch[:size], out, n)
    return out[:n].copy()


# ------------------------------------------------------------------------ Dictionary


class Dictionary:
    """A finished vocabulary: words then labels, each with its count, and the hash tables."""

    def __init__(self, words, counts, types, ntokens, *, minn, maxn, bucket, word_ngrams,
                 label=b"__label__", pruneidx=None, t=1e-4):
        self.words = [bytes(w) for w in words]
        self.counts = np.asarray(counts, dtype=np.int64)
        self.types = np.asarray(types, dtype=np.int8)
        self.ntokens = int(ntokens)
        self.nwords = int(np.count_nonzero(self.types == WORD))
        self.nlabels = len(self.words) - self.nwords
        if np.any(self.types[: self.nwords] != WORD):
            raise EmbtkError("dictionary entries must list all words before labels")
        self.minn, self.maxn, self.bucket, self.word_ngrams = int(minn), int(maxn), int(bucket), int(word_ngrams)
        self.label = label.encode() if isinstance(label, str) else bytes(label)
        self.t = float(t)
        self.pruneidx = pruneidx
        self._index = {w: i for i, w in enumerate(self.words)}
        lengths = np.fromiter((len(w) for w in self.words), dtype=np.int64, count=len(self.words))
        offsets = np.zeros(len(self.words) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        word_bytes = np.frombuffer(b"".join(self.words), dtype=np.uint8).copy()
        hashes = _hash_all(word_bytes, offsets)
        nslots = 1 << max(4, int(2 * max(1, len(self.words))).bit_length())
        slots = _rebuild_slots(hashes, len(self.words), nslots)
        prune_map = np.zeros(0, dtype=np.int32)
        if pruneidx is not None:
            prune_map = np.full(max(1, self.bucket), -1, dtype=np.int32)
            if len(pruneidx):
                prune_map[pruneidx[:, 0]] = pruneidx[:, 1]
        base = Tables(slots, offsets, word_bytes, self.types, np.zeros(1, np.int64),
                      np.zeros(0, np.int32), prune_map, self.nwords, self.minn, self.maxn,
                      self.bucket, self.word_ngrams,
                      np.frombuffer(self.label, dtype=np.uint8).copy())
        sub_off, sub_ids = build_subword_table(base)
        self.tables = base._replace(subword_offsets=sub_off, subword_ids=sub_ids)

    # construction -----------------------------------------------------------------
    @classmethod
    def from_buffer(cls, buf, args, max_vocab=MAX_VOCAB_SIZE):
        """Count the tokens of a corpus and keep those at or above the count thresholds."""
        label = args.label.encode("utf-8")
        ebytes, eoff, counts, types, ntokens = count_tokens(
            buf, np.frombuffer(label, dtype=np.uint8), max_vocab, args.minCount, args.minCountLabel)
        keep = np.where(types == WORD, counts >= args.minCount, counts >= args.minCountLabel)
        idx = np.nonzero(keep)[0]
        # words before labels, by count descending; first-seen order breaks ties.
        order = idx[np.lexsort((idx, -counts[idx], types[idx]))]
        raw = ebytes.tobytes()
        words = [raw[eoff[i]:eoff[i + 1]] for i in order]
        if not words:
            raise EmbtkError("empty vocabulary: no word occurs -minCount times; try a smaller -minCount")
        return cls(words, counts[order], types[order], ntokens, minn=args.minn, maxn=args.maxn,
                   bucket=args.effective_bucket(), word_ngrams=args.wordNgrams, label=label, t=args.t)

    def with_extra_words(self, extra):
        """A copy that also holds `extra` words (pretrained vectors), each counted once more."""
        counts = {w: int(c) for w, c in zip(self.words, self.counts)}
        types = {w: int(t) for w, t in zip(self.words, self.types)}
        order = list(self.words)
        for w in extra:
            if w in counts:
                counts[w] += 1
            else:
                counts[w] = 1
                types[w] = LABEL if w.startswith(self.label) else WORD
                order.append(w)
        first_seen = {w: i for i, w in enumerate(order)}
        order.sort(key=lambda w: (types[w], -counts[w], first_seen[w]))
        return Dictionary(order, [counts[w] for w in order], [types[w] for w in order],
                          self.ntokens + len(extra), minn=self.minn, maxn=self.maxn,
                          bucket=self.bucket, word_ngrams=self.word_ngrams, label=self.label,
                          pruneidx=self.pruneidx, t=self.t)

    # queries ---------------------------------------------------------------------
    @property
    def size(self):
        return len(self.words)

    def get_id(self, word: bytes) -> int:
        return self._index.get(word, -1)

    def word_rows(self, word: bytes) -> np.ndarray:
        return word_rows(self.tables, np.frombuffer(word, dtype=np.uint8))

    def subword_rows(self, subword: bytes) -> int:
        """Input row of one char n-gram (what fastText's getSubwordId returns)."""
        return self.nwords + hash_bytes(subword) % max(1, self.bucket)

    def subword_strings(self, word: bytes):
        """The n-gram strings of a word, matching `word_rows` (for get_subwords)."""
        wid = self.get_id(word)
        out = [word] if wid >= 0 else []
        if self.maxn <= 0 or word == EOS:
            return out
        wrapped = BOW + word + EOW
        starts = [i for i in range(len(wrapped)) if (wrapped[i] & 0xC0) != 0x80]
        starts.append(len(wrapped))
        for a in range(len(starts) - 1):
            for length in range(1, self.maxn + 1):
                if a + length >= len(starts):
                    break
                end = starts[a + length]
                if length >= self.minn and not (length == 1 and (a == 0 or end == len(wrapped))):
                    out.append(wrapped[starts[a]:end])
        return out

    def encode(self, buf: np.ndarray, with_oov_subwords=True):
        """Lines of a byte buffer as (feature CSR, label CSR, tokens per line)."""
        return encode_lines(self.tables, buf, 0, len(buf), with_oov_subwords)

    def corpus_ids(self, buf: np.ndarray) -> np.ndarray:
        return encode_corpus_ids(self.tables, buf)

    def counts_of(self, kind: int) -> np.ndarray:
        return self.counts[self.types == kind]

    def discard_probabilities(self) -> np.ndarray:
        """fastText's subsampling: keep a word with probability sqrt(t/f) + t/f."""
        f = self.counts[: self.nwords] / max(1, self.ntokens)
        return (np.sqrt(self.t / f) + self.t / f).astype(np.float32)

    def eos_id(self) -> int:
        return self.get_id(EOS)
