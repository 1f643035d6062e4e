"""fastText's `.vec` text vectors: writing them exactly as fastText prints them, and
reading them (and GloVe's headerless text) back with every line checked.

Writing is most of this module: C++ prints each float32 with `%.5g`, and Python's `%`
formatting of millions of values would take longer than training, so a numba kernel
formats them, exactly (it is checked against Python's `%.5g`) for every value it accepts.
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Sequence

import numba as nb
import numpy as np

from .jitting import callee, empty, zeros
from .args import Args, training_rule_broken
from .errors import EmbtkError
from .safeio import atomic_write, open_for_reading, os_reason
from .tokens import FLORET_SEED


_VEC_BLOCK = 1024  # rows formatted at a time
_VEC_BLOCK_VALUES = 1 << 20  # and at most about this many values (the buffer is 12 B each)
# The longest line read_vec takes: a row of 100,000 values (training's largest -dim) in
# full float precision is 2.6 MB. It bounds what one line can make it buffer: a device
# or a binary file may have no line end at all.
_VEC_MAX_LINE = 1 << 24


def write_vec(path, words: Sequence[bytes], vectors: np.ndarray) -> None:
    """Write fastText's `.vec` text: "n dim" then "word v1 ... vd \n" per row, values as
    C++ `setprecision(5)` prints them ('%.5g'), words written as raw bytes."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"write_vec: vectors must be 2-D, got shape {vectors.shape}")
    if len(words) != len(vectors):
        raise ValueError(f"write_vec: {len(words)} words but {len(vectors)} vectors")
    write_vec_rows(path, words, vectors.shape[1], lambda start, stop: vectors[start:stop])


def write_vec_rows(path, words: Sequence[bytes], dim: int, rows, header: bytes = b"") -> None:
    """`write_vec` with the vectors given by `rows(start, stop)`, asked for a block at a
    time: a model's word vectors need not all be in memory at once. `header`: the first
    line instead of "n dim" (floret's table has its own)."""
    words = [w.encode("utf-8") if isinstance(w, str) else bytes(w) for w in words]
    n = len(words)
    block = max(1, min(_VEC_BLOCK, _VEC_BLOCK_VALUES // max(dim, 1)))
    buffer = np.empty(0, dtype=np.uint8)  # reused block after block: no fresh pages each time
    with atomic_write(path, "wb") as f:
        try:
            f.write(header or b"%d %d\n" % (n, dim))
            for start in range(0, n, block):
                stop = min(n, start + block)
                pieces, buffer = _vec_block(words[start:stop], dim, rows(start, stop), buffer)
                for piece in pieces:
                    f.write(piece)
        except OSError as exc:
            raise EmbtkError(f"cannot write {path}: {os_reason(exc)}") from None


def _vec_block_python(words, dim: int, values) -> bytes:
    """The lines of a block through Python's '%.5g' (the reference the kernel matches)."""
    # tolist() gives the exact double of each float32, the value C++ prints.
    values = np.asarray(values).tolist()
    flat = []
    for word, row in zip(words, values):
        flat.append(word)
        flat.extend(row)
    return ((b"%s " + b"%.5g " * dim + b"\n") * len(values)) % tuple(flat)


def _vec_block(words, dim: int, values, buffer):
    """The lines of a block as byte pieces (views of `buffer`, or of a larger one it
    returns): float32 rows through `_format_vec_lines`, a row it cannot format exactly (a
    value below ~1e-12 or above ~1e22) and other dtypes through `_vec_block_python`."""
    values = np.asarray(values)
    if values.dtype != np.float32 or values.shape != (len(words), dim):
        return [_vec_block_python(words, dim, values)], buffer
    bits = np.ascontiguousarray(values).view(np.uint32)
    word_data = np.frombuffer(b"".join(words), dtype=np.uint8)
    word_ends = np.fromiter(map(len, words), dtype=np.int64, count=len(words)).cumsum()
    need = len(word_data) + len(words) * (_VEC_VALUE_WIDTH * dim + 2)
    if len(buffer) < need:
        buffer = np.empty(need, dtype=np.uint8)
    ends, bad = _format_vec_lines(bits, word_data, word_ends, buffer)
    text = memoryview(buffer)
    if not bad.any():
        return ([text[:ends[-1]]] if len(words) else []), buffer
    pieces, done = [], 0
    for i in np.flatnonzero(bad):
        pieces.append(text[done:ends[i]])
        pieces.append(_vec_block_python([words[i]], dim, values[i:i + 1]))
        done = ends[i]
    pieces.append(text[done:ends[-1]])
    return pieces, buffer


_POW5 = np.array([5 ** i for i in range(27)], dtype=np.int64)


def _decimal_exponents():
    """For each float32 exponent field: floor(log10) of its smallest normal value, and the
    bits of the first float32 of that binade whose floor(log10) is one more (beyond the
    binade if none): the decimal exponent then costs a table look-up and a comparison."""
    tens = np.zeros(256, dtype=np.int64)
    tens_from = np.full(256, 1 << 40, dtype=np.int64)
    for ex in range(1, 255):
        low = Fraction(2) ** (ex - 127)
        d = 0
        while Fraction(10) ** (d + 1) <= low:
            d += 1
        while Fraction(10) ** d > low:
            d -= 1
        tens[ex] = d
        power = Fraction(10) ** (d + 1)
        if power < 2 * low:
            m = -(-power / low * 2 ** 23 // 1)  # the least 24-bit significand reaching it
            tens_from[ex] = (ex << 23) | (int(m) - (1 << 23)) if m < 1 << 24 else 1 << 40
    return tens, tens_from


_TENS, _TENS_FROM = _decimal_exponents()
_VEC_VALUE_WIDTH = 12  # the longest '%.5g ' of a float32: "-1.2346e+38 " or "-0.00012346 "


@callee
def _scale(m, e, k):
    """floor(m * 2**e * 10**k) and how the rest compares with one half (-1, 0, 1), in
    exact int64 arithmetic (rounding to 5 digits must be exact); floor -1 when it does not
    fit."""
    if k >= 0:
        s = -(e + k)
        if k > 16 or s < 1 or s > 62:
            return -1, 0
        num = m * _POW5[k]  # < 2**24 * 5**16 < 2**62
        rest = num & ((1 << s) - 1)
        half = 1 << (s - 1)
        return num >> s, np.int64(rest > half) - np.int64(rest < half)
    j = -k
    if j > 26:
        return -1, 0
    den = _POW5[j]
    s = e - j
    if s >= 0:
        if s > 38:
            return -1, 0
        num = m << s  # m < 2**24
    else:
        if -s > 62 or den > ((1 << 62) >> -s):
            return -1, 0
        num = m
        den = den << -s
    q = num // den
    twice = 2 * (num - q * den)  # den <= 2**62: no overflow
    return q, np.int64(twice > den) - np.int64(twice < den)


@callee
def _five_digits(bits):
    """A finite nonzero float32 (by its bits) rounded to 5 significant digits, as q and the
    decimal exponent d (x ~ q * 10**(d - 4), 10000 <= q < 100000); q -1 beyond the exact
    int64 path (subnormals, |x| below 1e-12 or above ~1e22)."""
    ex = (bits >> 23) & 0xFF
    if ex == 0:
        return -1, 0
    d = _TENS[ex] + ((bits & 0x7FFFFFFF) >= _TENS_FROM[ex])
    q, half = _scale((bits & 0x7FFFFF) | 0x800000, ex - 150, 4 - d)
    if q < 0:
        return -1, 0
    if half > 0 or (half == 0 and q & 1):  # round half to even, as printf and Python do
        q += 1
    if q == 100000:
        return 10000, d + 1
    return q, d


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _format_vec_lines(bits, word_data, word_ends, out):
    """The lines "word v1 ... vd \n" of a block of float32 rows (as uint32 bits) into
    out, each value as Python's '%.5g' prints its double: each line's end, and the rows
    the exact path cannot format (left empty). One flat loop: a helper taking `out` per
    value costs more than the formatting."""
    n, dim = bits.shape
    ends = empty(n, np.int64)
    bad = zeros(n, np.bool_)
    digits = empty(np.int64(5), np.uint8)
    pos = 0
    w = 0
    for i in range(n):
        start = pos
        for c in range(w, word_ends[i]):
            out[pos] = word_data[c]
            pos += 1
        w = word_ends[i]
        out[pos] = 32
        pos += 1
        for j in range(dim):
            b = np.int64(bits[i, j])
            if (b & 0x7F800000) == 0x7F800000 and (b & 0x7FFFFF) != 0:
                out[pos] = 110  # Python prints every nan as "nan", with no sign
                out[pos + 1] = 97
                out[pos + 2] = 110
                out[pos + 3] = 32
                pos += 4
                continue
            out[pos] = 45  # "-", "-0" and "-inf" too: kept only when the sign bit is set,
            pos += b >> 31  # with no branch to mispredict on random signs
            if (b & 0x7FFFFFFF) == 0:
                out[pos] = 48
                out[pos + 1] = 32
                pos += 2
                continue
            if (b & 0x7FFFFFFF) == 0x7F800000:
                out[pos] = 105
                out[pos + 1] = 110
                out[pos + 2] = 102
                out[pos + 3] = 32
                pos += 4
                continue
            q, d = _five_digits(b)
            if q < 0:
                bad[i] = True
                break
            digits[0] = 48 + q // 10000
            digits[1] = 48 + q // 1000 % 10
            digits[2] = 48 + q // 100 % 10
            digits[3] = 48 + q // 10 % 10
            digits[4] = 48 + q % 10
            nd = 5  # trailing zeros dropped, as %g does
            while digits[nd - 1] == 48:
                nd -= 1
            if d < -4 or d >= 5:  # 1.2346e+05, 1e-05
                out[pos] = digits[0]
                pos += 1
                if nd > 1:
                    out[pos] = 46
                    for k in range(1, nd):
                        out[pos + k] = digits[k]
                    pos += nd
                out[pos] = 101
                out[pos + 1] = 43 if d >= 0 else 45
                pos += 2
                d = abs(d)
                if d >= 100:
                    out[pos] = 48 + d // 100
                    pos += 1
                out[pos] = 48 + d // 10 % 10
                out[pos + 1] = 48 + d % 10
                pos += 2
            elif d < 0:  # 0.00012346, the common case: fixed stores, no loop to mispredict;
                out[pos] = 48  # what goes beyond the text is overwritten (12 B a value)
                out[pos + 1] = 46
                out[pos + 2] = 48
                out[pos + 3] = 48
                out[pos + 4] = 48
                pos += 1 - d
                out[pos] = digits[0]
                out[pos + 1] = digits[1]
                out[pos + 2] = digits[2]
                out[pos + 3] = digits[3]
                out[pos + 4] = digits[4]
                pos += nd
            elif nd <= d + 1:  # 12300
                for k in range(d + 1):
                    out[pos + k] = digits[k] if k < nd else 48
                pos += d + 1
            else:  # 12.346
                for k in range(d + 1):
                    out[pos + k] = digits[k]
                out[pos + d + 1] = 46
                for k in range(d + 1, nd):
                    out[pos + k + 1] = digits[k]
                pos += nd + 1
            out[pos] = 32
            pos += 1
        if bad[i]:
            pos = start
        else:
            out[pos] = 10
            pos += 1
        ends[i] = pos
    return ends, bad


def read_vec(path, max_words: int | None = None) -> tuple[list, np.ndarray]:
    """Read word vectors from text: fastText/word2vec layout ("n dim" header) or GloVe
    layout (no header; detected when the first line has more than two fields).
    Returns (words as bytes, float32 matrix). `max_words` keeps only the first rows."""
    path = os.fsdecode(path)  # str, bytes or PathLike
    if max_words is not None and max_words < 0:
        raise EmbtkError(f"max_words must be zero or positive, got {max_words}")
    f = open_for_reading(path)
    try:
        with f:
            return _read_vec(f, path, max_words)
    except OSError as exc:
        raise EmbtkError(f"cannot read {path}: {os_reason(exc)}") from None


def _parse_row(rest: bytes, dim: int, lineno: int, path: str) -> np.ndarray:
    try:
        values = np.fromstring(rest, dtype=np.float32, sep=" ")
    except (ValueError, DeprecationWarning):
        bad = next((tok for tok in rest.split() if not _is_float(tok)), rest.strip()[:40])
        raise EmbtkError(f"line {lineno} of {path} has a value that is not a number: "
                         f"{bad[:40].decode('utf-8', 'replace')!r}") from None
    if values.size != dim:
        raise EmbtkError(f"line {lineno} of {path} has {values.size} values, expected {dim}")
    return values


def _is_float(token: bytes) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


def _vec_lines(f: BinaryIO, path: str, lineno: int):
    """(line number, line) from `f`, each at most _VEC_MAX_LINE bytes and free of NUL
    bytes (no word has one: fastText's tokenizer splits on them, and a model cannot
    store one)."""
    for lineno, line in enumerate(iter(lambda: f.readline(_VEC_MAX_LINE), b""), lineno + 1):
        if len(line) == _VEC_MAX_LINE and not line.endswith(b"\n"):
            raise EmbtkError(f"line {lineno} of {path} is longer than {_VEC_MAX_LINE >> 20} MiB: "
                             "not a word-vector text file")
        if b"\0" in line:
            raise EmbtkError(f"line {lineno} of {path} contains a NUL byte: not a word-vector "
                             "text file (or a word that no model can hold)")
        yield lineno, line


def _check_vec_dim(dim: int, lineno: int, path: str) -> None:
    """The dimension training would accept (Args.validate's rule for -dim)."""
    broken = training_rule_broken(Args.for_model("skipgram", dim=dim))
    if broken:
        raise EmbtkError(f"line {lineno} of {path} has an invalid dimension: {broken}")


def _check_finite(words: list, vectors: np.ndarray, path: str) -> None:
    """inf, nan, or a number beyond float32's range (1e39 reads as inf): such a vector has
    no length or direction, and would turn training or a similarity into NaN."""
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        value = vectors[row][~np.isfinite(vectors[row])][0]
        word = words[row].decode("utf-8", "replace")
        raise EmbtkError(f"{path}: the vector of '{word}' (row {row + 1}) has the value {value}: "
                         "values must be finite and within float32's range (about 3.4e38)")


def _read_vec(f: BinaryIO, path: str, max_words: int | None):
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = 0
    lineno = 0
    first = b""
    lines = _vec_lines(f, path, 0)
    for lineno, first in lines:
        if first.strip():
            break
    else:
        raise EmbtkError(f"{path} is empty, not a word-vector text file")
    fields = first.split()

    pending = None  # a GloVe file's first line is already a vector
    if len(fields) == 2:
        try:
            declared, dim = int(fields[0]), int(fields[1])
        except ValueError:
            raise EmbtkError(f"line {lineno} of {path} should be the header 'count dim', "
                             f"got {first.strip()[:60].decode('utf-8', 'replace')!r}") from None
        if declared < 0 or dim <= 0:
            raise EmbtkError(f"line {lineno} of {path} has an invalid header: {declared} words "
                             f"of dimension {dim}")
    elif len(fields) > 2:
        declared, dim = None, len(fields) - 1
        pending = (lineno, first)
    else:
        raise EmbtkError(f"line {lineno} of {path} should be the header 'count dim' or a "
                         f"word and its values, got {first.strip()[:60].decode('utf-8', 'replace')!r}")
    _check_vec_dim(dim, lineno, path)

    wanted = declared
    if max_words is not None:
        wanted = max_words if wanted is None else min(wanted, max_words)
    # Every row takes at least 2 bytes per value: do not trust a header to size memory.
    capacity = size // (2 * dim)
    if wanted is not None:
        capacity = min(capacity, wanted)
    out = np.empty((capacity, dim), dtype=np.float32)
    words: list = []
    count = 0
    rows = itertools.chain([pending] if pending else [], lines)
    with warnings.catch_warnings():
        # numpy 1.x only warns (and stops) on a non-number; make that an exception too.
        warnings.simplefilter("error", DeprecationWarning)
        for no, line in rows:
            parts = line.split(None, 1)
            if not parts:
                continue  # blank line
            if wanted is not None and count >= wanted:
                if declared is not None and count >= declared:
                    raise EmbtkError(f"{path} has more lines than the {declared} words its "
                                     f"header declares (line {no})")
                break  # max_words reached
            values = _parse_row(parts[1] if len(parts) > 1 else b"", dim, no, path)
            if count == out.shape[0]:
                grown = np.empty((max(2 * count, 1024), dim), dtype=np.float32)
                grown[:count] = out
                out = grown
            out[count] = values
            words.append(parts[0])
            count += 1
    if wanted is not None and declared is not None and count < wanted:
        raise EmbtkError(f"{path} is truncated: its header declares {declared} words but it "
                         f"has only {count}")
    if out.shape[0] != count:
        out = out[:count].copy()
    _check_finite(words, out, path)
    return words, out


# ------------------------------------------------------------------ floret's table
FLORET_HEADER = "bucket dim minn maxn hashCount hashSeed BOW EOW"


@dataclass
class FloretTable:
    """A `.floret` file: the hashing options of its header and its bucket rows."""

    bucket: int
    dim: int
    minn: int
    maxn: int
    hash_count: int
    matrix: np.ndarray


def read_floret(path) -> FloretTable:
    """Read floret's `.floret` table (what save_floret_vectors writes and spaCy loads):
    every row, numbered 0..bucket-1 in order, checked against the header."""
    path = os.fsdecode(path)
    f = open_for_reading(path)
    try:
        with f:
            return _read_floret(f, path)
    except OSError as exc:
        raise EmbtkError(f"cannot read {path}: {os_reason(exc)}") from None


def _floret_header(line: bytes, path: str, size: int) -> FloretTable:
    fields = line.split()
    shown = line.strip()[:80].decode("utf-8", "replace")
    if len(fields) != 8 or not all(_is_int(x) for x in fields[:6]):
        raise EmbtkError(f"line 1 of {path} should be floret's header '{FLORET_HEADER}', "
                         f"got {shown!r}")
    bucket, dim, minn, maxn, hash_count, seed = map(int, fields[:6])
    if (fields[6], fields[7]) != (b"<", b">") or seed != FLORET_SEED:
        raise EmbtkError(f"{path}: embtk hashes as floret does (seed {FLORET_SEED}, words "
                         f"wrapped in '<' '>'), this table's header is {shown!r}")
    broken = training_rule_broken(Args.for_model(
        "skipgram", dim=dim, minn=minn, maxn=maxn, bucket=bucket, mode="floret",
        hashCount=hash_count))
    if broken:
        raise EmbtkError(f"line 1 of {path} has an invalid header: {broken}")
    if bucket * dim * 2 > size:  # each value takes at least 2 bytes
        raise EmbtkError(f"{path}: its header declares {bucket} rows of {dim} values, more "
                         f"than its {size} bytes can hold (truncated, or not its header)")
    return FloretTable(bucket, dim, minn, maxn, hash_count, np.empty((bucket, dim), np.float32))


def _is_int(token: bytes) -> bool:
    return token.lstrip(b"-").isdigit()


def _read_floret(f: BinaryIO, path: str) -> FloretTable:
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError:
        size = 0
    lines = _vec_lines(f, path, 0)
    first = next(lines, (1, b""))[1]
    if not first.strip():
        raise EmbtkError(f"{path} is empty or has no header, not a .floret table")
    table = _floret_header(first, path, size)
    count = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for no, line in lines:
            parts = line.split(None, 1)
            if not parts:
                continue
            if count == table.bucket:
                raise EmbtkError(f"{path} has more rows than the {table.bucket} buckets its "
                                 f"header declares (line {no})")
            if parts[0] != b"%d" % count:
                raise EmbtkError(f"line {no} of {path} should be row {count}, got "
                                 f"{parts[0][:20].decode('utf-8', 'replace')!r}")
            table.matrix[count] = _parse_row(parts[1] if len(parts) > 1 else b"", table.dim,
                                             no, path)
            count += 1
    if count < table.bucket:
        raise EmbtkError(f"{path} is truncated: its header declares {table.bucket} rows but it "
                         f"has only {count}")
    finite = np.isfinite(table.matrix).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise EmbtkError(f"{path}: row {row} has a value that is not finite (inf or nan, or "
                         "beyond float32's range)")
    return table
