"""Tokens as fastText sees them: its tokenizer and its 32-bit FNV-1a hash over raw bytes,
and the open-addressing table that finds a token among stored entries by that hash.

Text is never decoded: any byte sequence tokenizes, hashes and trains.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .jitting import empty

EOS = b"</s>"
BOW, EOW = b"<", b">"
EOS_BYTES = np.frombuffer(EOS, dtype=np.uint8)


@nb.njit(cache=True, nogil=True, inline="always")
def fnv_step(h, byte):
    # fastText feeds each byte as a signed char, so bytes >= 128 flip the top 24 bits.
    b = np.uint64(byte)
    if byte >= 128:
        b |= np.uint64(0xFFFFFF00)
    return ((h ^ b) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def fnv1a(buf, start, end):
    h = np.uint64(2166136261)
    for i in range(start, end):
        h = fnv_step(h, buf[i])
    return h


def hash_bytes(data: bytes) -> int:
    """fastText's 32-bit FNV-1a of `data` (an unsigned int)."""
    return int(fnv1a(np.frombuffer(data, dtype=np.uint8), 0, len(data)))


def read_only(buf: np.ndarray) -> np.ndarray:
    """A read-only view of a byte array, as the text kernels are given every buffer.

    numba compiles a kernel once per argument type, and a read-only array (np.frombuffer
    of bytes) is another type than a writable one (of a bytearray): were both to reach
    encode_lines, it would be compiled twice, 2 s on a cold cache.
    """
    if not buf.flags.writeable:
        return buf
    view = buf.view()
    view.flags.writeable = False
    return view


@nb.njit(cache=True, nogil=True, inline="always")
def _is_space(c):
    return c == 32 or c == 10 or c == 13 or c == 9 or c == 11 or c == 12 or c == 0


@nb.njit(cache=True, nogil=True, inline="always")
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
def token_hash(buf, start, stop):
    if start == -1:
        return fnv1a(EOS_BYTES, np.int64(0), np.int64(4))
    return fnv1a(buf, start, stop)


@nb.njit(cache=True, nogil=True, inline="always")
def is_eos(buf, start, stop):
    """A newline, or the literal token `</s>`, which fastText takes for one."""
    if start == -1:
        return True
    if stop - start != 4:
        return False
    for i in range(4):
        if buf[start + i] != EOS_BYTES[i]:
            return False
    return True


@nb.njit(cache=True, nogil=True, inline="always")
def has_prefix(buf, start, stop, prefix):
    if start < 0 or stop - start < len(prefix):
        return False
    for i in range(len(prefix)):
        if buf[start + i] != prefix[i]:
            return False
    return True


@nb.njit(cache=True, nogil=True, inline="always")
def same_token(buf, start, stop, ebuf, estart, elen):
    """Compare a token in `buf` with an entry stored in `ebuf` (start -1 == EOS)."""
    if start == -1:
        if elen != 4:
            return False
        for i in range(4):
            if ebuf[estart + i] != EOS_BYTES[i]:
                return False
        return True
    n = stop - start
    if n != elen:
        return False
    for i in range(n):
        if buf[start + i] != ebuf[estart + i]:
            return False
    return True


# fastText's separators (_is_space) as bits of one constant, c <= 32: one compare and one
# shift per byte instead of seven compares
_SPACE_BITS = np.uint64((1 << 32) | (1 << 13) | (1 << 12) | (1 << 11) | (1 << 10) | (1 << 9) | 1)
EOS_HASH = 0xD79C9359  # fnv1a of b"</s>" (a test checks it)


@nb.njit(cache=True, nogil=True, inline="always")
def _space(c):
    return c <= 32 and (_SPACE_BITS >> np.uint64(c)) & np.uint64(1) != 0


@nb.njit(cache=True, nogil=True, inline="always")
def next_token_hash(buf, pos, end):
    """next_token and the token's hash (token_hash) in one pass over its bytes:
    (start, stop, next position, hash), start -1 for EOS and -2 at the end."""
    while pos < end:
        c = buf[pos]
        if not _space(c):
            break
        pos += 1
        if c == 10:
            return np.int64(-1), np.int64(-1), pos, np.uint64(EOS_HASH)
    if pos >= end:
        return np.int64(-2), np.int64(-2), pos, np.uint64(EOS_HASH)
    start = pos
    h = np.uint64(2166136261)
    while pos < end:
        c = buf[pos]
        if _space(c):
            break
        b = np.uint64(c)
        if c >= 128:  # fastText's signed char, as fnv_step
            b |= np.uint64(0xFFFFFF00)
        h = ((h ^ b) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
        pos += 1
    return start, pos, pos, h


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def build_keys(hashes, n, nslots):
    """An open-addressing table of entries 0..n-1 placed by their hashes, each slot one
    int64 holding the entry's id and hash (id << 32 | hash; -1 free): a probe compares
    hashes without reading the entries, and one load brings both."""
    keys = empty(nslots, np.int64)
    for i in range(nslots):
        keys[i] = -1
    mask = nslots - 1
    for e in range(n):
        h = np.int64(hashes[e])
        s = h & mask
        while keys[s] != -1:
            s = (s + 1) & mask
        keys[s] = (np.int64(e) << 32) | h
    return keys


@nb.njit(cache=True, nogil=True, inline="always")
def probe(keys, offsets, entries, buf, start, stop, h):
    """The slot of `keys` (see build_keys) holding the token buf[start:stop] (start -1 ==
    EOS), or the free slot where it would go; entry e is entries[offsets[e]:offsets[e + 1]].
    The bytes are compared without a branch per byte (a mispredicted branch per token
    costs more than the compare)."""
    mask = len(keys) - 1
    s = np.int64(h) & mask
    n = 4 if start == -1 else stop - start
    while True:
        key = keys[s]
        if key == -1:
            return s
        if (key & 0xFFFFFFFF) == np.int64(h):
            e = key >> 32
            o = offsets[e]
            if offsets[e + 1] - o == n:
                same = True
                if start == -1:
                    for j in range(4):
                        same &= entries[o + j] == EOS_BYTES[j]
                else:
                    for j in range(n):
                        same &= entries[o + j] == buf[start + j]
                if same:
                    return s
        s = (s + 1) & mask



# ------------------------------------------------------------ floret's hash
# floret hashes a word and its n-grams with MurmurHash3 (x64, 128-bit) seeded with the
# FNV offset basis, and takes up to four 32-bit keys from the 128 bits: the low then the
# high half of the first 64-bit word, then of the second. Everything is uint64 arithmetic
# modulo 2^64, as the reference's.
FLORET_SEED = 2166136261
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_C1 = np.uint64(0x87C37B91114253D5)
_C2 = np.uint64(0x4CF5AD432745937F)


@nb.njit(cache=True, nogil=True, inline="always")
def _rotl64(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@nb.njit(cache=True, nogil=True, inline="always")
def _fmix64(k):
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xFF51AFD7ED558CCD)
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xC4CEB9FE1A85EC53)
    k ^= k >> np.uint64(33)
    return k


@nb.njit(cache=True, nogil=True, inline="always")
def _le64(buf, at, count):
    """`count` (<= 8) bytes from buf[at] as a little-endian integer."""
    v = np.uint64(0)
    for i in range(count):
        v |= np.uint64(buf[at + i]) << np.uint64(8 * i)
    return v


@nb.njit(cache=True, nogil=True, inline="always")
def _mix_k1(k1):
    return _rotl64(k1 * _C1, 31) * _C2


@nb.njit(cache=True, nogil=True, inline="always")
def _mix_k2(k2):
    return _rotl64(k2 * _C2, 33) * _C1


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def murmur3_128(buf, start, end, seed):
    """MurmurHash3_x64_128 of buf[start:end]: its two 64-bit output words."""
    length = end - start
    h1 = np.uint64(seed)
    h2 = np.uint64(seed)
    at = start
    for _ in range(length // 16):
        h1 ^= _mix_k1(_le64(buf, at, 8))
        h1 = _rotl64(h1, 27) + h2
        h1 = h1 * np.uint64(5) + np.uint64(0x52DCE729)
        h2 ^= _mix_k2(_le64(buf, at + 8, 8))
        h2 = _rotl64(h2, 31) + h1
        h2 = h2 * np.uint64(5) + np.uint64(0x38495AB5)
        at += 16
    rest = end - at
    if rest > 8:
        h2 ^= _mix_k2(_le64(buf, at + 8, rest - 8))
    if rest > 0:
        h1 ^= _mix_k1(_le64(buf, at, min(rest, 8)))
    h1 ^= np.uint64(length)
    h2 ^= np.uint64(length)
    h1 += h2
    h2 += h1
    h1 = _fmix64(h1)
    h2 = _fmix64(h2)
    h1 += h2
    h2 += h1
    return h1, h2


@nb.njit(cache=True, nogil=True, inline="always")
def floret_key(h1, h2, k):
    """floret's k-th 32-bit key (0..3) of a 128-bit hash."""
    word = h1 if k < 2 else h2
    return (word >> np.uint64(32)) if k % 2 == 1 else (word & np.uint64(0xFFFFFFFF))


def floret_keys(data: bytes, count: int = 4) -> list[int]:
    """The first `count` keys floret takes from the MurmurHash3 of `data`."""
    h1, h2 = murmur3_128(np.frombuffer(data, dtype=np.uint8), np.int64(0), np.int64(len(data)),
                         np.uint64(FLORET_SEED))
    h1, h2 = int(h1), int(h2)
    return [(h1 & 0xFFFFFFFF, h1 >> 32, h2 & 0xFFFFFFFF, h2 >> 32)[k] for k in range(count)]
