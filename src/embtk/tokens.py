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


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def rebuild_slots(hashes, n, nslots):
    slots = empty(nslots, np.int32)
    for i in range(nslots):
        slots[i] = -1
    mask = nslots - 1
    for e in range(n):
        s = np.int64(hashes[e]) & mask
        while slots[s] != -1:
            s = (s + 1) & mask
        slots[s] = e
    return slots
