"""fastText's model files, `.bin` and quantized `.ftz`: reading them bounds-checked and
writing them atomically (text vectors are `vecformat`'s).

The `.bin` layout (native little-endian, fastText version 12) is

    int32 magic 793712314, int32 version
    int32 x12 args: dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate
    float64 t
    (floret's layout, in every file floret writes, has two more int32 after maxn: mode
    (1 fasttext, 2 floret) and hashCount; the magic and version are the same)
    dictionary: int32 size nwords nlabels, int64 ntokens pruneidx_size,
                size x (word bytes, NUL, int64 count, int8 type),
                pruneidx_size x (int32 bucket_id, int32 new_index)
    bool quant_input, input matrix, bool qout, output matrix
    dense matrix: int64 m, int64 n, float32[m * n] row-major
    quantized matrix (.ftz): bool qnorm, int64 m, int64 n, int32 codesize, uint8 codes[codesize],
                quantizer {int32 dim nsubq dsub lastdsub, float32 centroids[dim * 256]},
                then if qnorm: uint8 norm_codes[m] and a second quantizer (dim 1)

The two layouts cannot be told apart by their headers: a file is read in fastText's layout
and, if that fails and the bytes where floret keeps mode and hashCount hold sensible values,
in floret's. Each reading checks every size down to the file's last byte, so only the right
layout reads a file to its exact end; a file that both would read is refused.

Loaded matrices are memory-mapped copy-on-write, never read into RAM up front: a 2 GB
model opens in milliseconds, and training in place on them leaves the file untouched.
Every problem with a file is reported as one EmbtkError.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO, Sequence

import numba as nb
import numpy as np

from .jitting import empty, zeros
from .args import (LOSS_NAMES, MODE_CODES, MODE_NAMES, MODEL_CODES, MODEL_NAMES, Args,
                   training_rule_broken)
from .dictionary import PackedWords, file_entries, unpack_entries
from .errors import EmbtkError
from .quantmatrix import KSUB, ProductQuantizer, QuantMatrix
from .safeio import CheckedReader, atomic_write, open_for_reading, os_reason

MAGIC = 793712314
VERSION = 12
MIN_VERSION = 11

_HEAD = struct.Struct("<ii")            # magic, version
_ARGS = struct.Struct("<12id")          # the 12 int32 options, then t
_FLORET_ARGS = struct.Struct("<14id")   # floret's: mode and hashCount after maxn
_FLORET_MODE_AT = _HEAD.size + 4 * 11   # where floret's mode and hashCount would be
_FLORET_MODE = struct.Struct("<ii")
_DICT = struct.Struct("<iiiqq")         # size, nwords, nlabels, ntokens, pruneidx_size
_MATRIX = struct.Struct("<qq")          # m, n
_ENTRY_TAIL = 9                         # int64 count + int8 type after the word's NUL
_ENTRY_DTYPE = np.dtype([("count", "<i8"), ("type", "i1")])
_F32 = np.dtype("<f4")
# Matrices are written in slices of this many bytes (see _write_dense).
_WRITE_CHUNK = 1 << 20

# A pruned model (.ftz made with -cutoff) keeps no row per hash bucket, so its bucket is
# not backed by bytes of the file; but looking n-grams up allocates 4 bytes per bucket.
# 2^26 (a 256 MiB map) is 33 times fastText's default of 2,000,000.
MAX_PRUNED_BUCKET = 1 << 26


@dataclass
class ModelFile:
    """Everything a `.bin` file holds.

    `word_bytes` and `word_offsets` hold the dictionary entries in id order (words, then
    labels) packed, as `Dictionary.from_packed` takes them; `pruneidx` is
    None when the file says the dictionary is not pruned. `input` and `output` are
    copy-on-write memory maps of the file when loaded (writable; writes stay in RAM),
    or `quantmatrix.QuantMatrix` objects for a quantized model (`.ftz`).
    `quant_output` is true only when the output matrix itself is quantized (fastText
    reads `qout` as meaningful only for quantized models).
    """

    args: Args
    word_bytes: np.ndarray
    word_offsets: np.ndarray
    counts: np.ndarray
    types: np.ndarray
    ntokens: int
    pruneidx: np.ndarray | None
    input: np.ndarray
    output: np.ndarray
    quant_input: bool = False
    quant_output: bool = False

    @property
    def words(self) -> list[bytes]:
        return unpack_entries(self.word_bytes, self.word_offsets, 0, len(self.word_offsets) - 1)


def _open_buffer(path: str):
    """The file's bytes as a copy-on-write mapping (or a bytearray if mapping fails).

    Only regular files: a model is memory-mapped, and a pipe or device would have to be
    read whole into memory with nothing to bound it (`/dev/zero` never ends). Checked
    before opening too, since opening a FIFO blocks until someone writes to it."""
    with contextlib.suppress(OSError):  # open_for_reading reports a missing file
        _require_regular(path, os.stat(path).st_mode)
    f = open_for_reading(path)
    with f:
        try:
            st = os.fstat(f.fileno())
            _require_regular(path, st.st_mode)
            if st.st_size == 0:
                raise EmbtkError(f"{path} is empty, not a fastText/embtk model file")
            try:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError, OverflowError):
                pass  # e.g. a filesystem without mmap: fall back to reading
            data = bytearray(f.read(st.st_size + 1))
        except OSError as exc:
            raise EmbtkError(f"cannot read {path}: {os_reason(exc)}") from None
    if not data:
        raise EmbtkError(f"{path} is empty, not a fastText/embtk model file")
    return data


def release_pages(array: np.ndarray) -> None:
    """Give back the memory of a view on a loaded model's file mapping (madvise
    MADV_DONTNEED): its pages leave this process's resident memory and would be read from
    the file again if used. For views that were never written to (the mapping is
    copy-on-write: a written page would return to the file's contents); other arrays are
    left alone. Continued training reads a whole previous model once: without this, its
    mapped pages stayed resident beside the new matrices, doubling the peak."""
    base = array
    while not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
        if base is None:
            return
    if not hasattr(mmap, "MADV_DONTNEED") or array.size == 0:
        return
    page = mmap.PAGESIZE
    offset = array.ctypes.data - np.frombuffer(base, dtype=np.uint8).ctypes.data
    first = -(-offset // page) * page  # whole pages inside the array only
    last = (offset + array.nbytes) // page * page
    if last > first:
        base.madvise(mmap.MADV_DONTNEED, first, last - first)


def _require_regular(path: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise EmbtkError(f"cannot read {path}: it is a directory")
    if not stat.S_ISREG(mode):
        kind = ("a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device")
        raise EmbtkError(f"cannot read {path} as a model: it is {kind}, not a regular file "
                         "(save the model to a file first)")


def load_bin(path, data: bytearray | None = None) -> ModelFile:
    """Read a fastText `.bin` model (version 11 or 12); dense matrices are memory-mapped.
    `data`: the file's bytes when they are already in memory (an unpickled model); the
    matrices are then views on it, and `path` only names the model in errors."""
    path = os.fsdecode(path)  # str, bytes or PathLike
    buf = _open_buffer(path) if data is None else data
    r = CheckedReader(buf, path)
    version = _read_head(r)
    try:
        model = _read_body(r, version, floret_layout=False)
    except EmbtkError as fasttext_error:
        if not _may_be_floret(buf):
            raise
        floret = CheckedReader(buf, path)
        floret.pos = _HEAD.size
        try:
            return _read_body(floret, version, floret_layout=True)
        except EmbtkError as floret_error:
            # The error of the file's own layout: fastText's if that reading got past its
            # dictionary header further than floret's did (read in the wrong layout, the
            # dictionary sizes come out as nonsense at once).
            past_header = r.pos > _HEAD.size + _ARGS.size + _DICT.size
            raise (fasttext_error if past_header and r.pos >= floret.pos
                   else floret_error) from None
    if _may_be_floret(buf):  # a fastText file with -lrUpdateRate 1 or 2: fails at once
        floret = CheckedReader(buf, path)
        floret.pos = _HEAD.size
        try:
            _read_body(floret, version, floret_layout=True)
        except EmbtkError:
            return model
        raise _foreign(path, "it reads as a fastText and as a floret model alike")
    return model


def peek_args(path) -> Args | None:
    """The training options in a fastText-layout `.bin` header, read from its first bytes
    alone; None where they cannot be read so (no file, another layout, a bad header):
    what the kernels a command will call depend on, before the model is loaded."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size + _FLORET_ARGS.size)
        if _may_be_floret(head):
            return None
        r = CheckedReader(head, os.fsdecode(path))
        return _read_args(r, _read_head(r))
    except (OSError, EmbtkError, ValueError):
        return None


def _may_be_floret(buf) -> bool:
    """Whether the int32 where floret's layout keeps the mode holds one (1 or 2): only
    then is reading the file in that layout worth trying (its hashCount is checked as
    every option is, so that a bad one is reported as such)."""
    if len(buf) < _FLORET_MODE_AT + _FLORET_MODE.size:
        return False
    mode, _ = _FLORET_MODE.unpack_from(buf, _FLORET_MODE_AT)
    return mode in MODE_NAMES


def _read_head(r: CheckedReader) -> int:
    """The magic number and version (the same in both layouts); returns the version."""
    path = r.path
    if r.size < _HEAD.size:
        raise EmbtkError(f"{path} is not a fastText/embtk model file (only {r.size} bytes)")
    magic, version = r.unpack(_HEAD, "the header")
    if magic != MAGIC:
        raise EmbtkError(f"{path} is not a fastText/embtk model file (bad magic number)")
    if version > VERSION:
        raise EmbtkError(f"{path} has model format version {version}, newer than the "
                         f"versions {MIN_VERSION}-{VERSION} this embtk reads")
    if version < MIN_VERSION:
        raise EmbtkError(f"{path} has model format version {version}, which is not supported "
                         f"(only versions {MIN_VERSION}-{VERSION})")
    return version


def _read_body(r: CheckedReader, version: int, floret_layout: bool) -> ModelFile:
    """Everything after the magic and version, in fastText's layout or floret's, to the
    file's last byte."""
    path = r.path
    args = _read_args(r, version, floret_layout)
    packed, counts, types, ntokens, pruneidx, nwords, nlabels = _read_dictionary(r)

    quant_input = r.flag("the quant_input flag")
    if pruneidx is not None and not quant_input:
        raise EmbtkError(f"{path} is corrupt: its dictionary is pruned but its matrix is not "
                         "quantized (fastText rejects such files too, see its issue #332)")
    if pruneidx is not None:
        if args.bucket > MAX_PRUNED_BUCKET:
            raise _foreign(path, f"bucket is {args.bucket} in a pruned model (expected at "
                                 f"most {MAX_PRUNED_BUCKET})")
        input_rows, why = nwords + len(pruneidx), f"nwords + pruned n-grams = {nwords} + {len(pruneidx)}"
        if len(pruneidx) and (pruneidx[:, 1].min() < 0 or pruneidx[:, 1].max() >= len(pruneidx)
                              or pruneidx[:, 0].min() < 0 or pruneidx[:, 0].max() >= args.bucket):
            raise r.corrupt("its pruned-index pairs point outside the buckets or the matrix")
    else:
        input_rows, why = nwords + args.bucket, f"nwords + bucket = {nwords} + {args.bucket}"
    read = _read_quant if quant_input else _read_dense
    input_matrix = read(r, "input", input_rows, why, args.dim)
    qout = r.flag("the qout flag")
    if args.model_code == MODEL_CODES["supervised"]:
        output_rows, why = nlabels, f"the number of labels, {nlabels}"
    else:
        output_rows, why = nwords, f"the number of words, {nwords}"
    read = _read_quant if quant_input and qout else _read_dense
    output_matrix = read(r, "output", output_rows, why, args.dim)
    if r.remaining():
        raise EmbtkError(f"{path} is corrupt: {r.remaining()} unexpected bytes after the output "
                         f"matrix (the model ends at byte {r.pos})")
    return ModelFile(args=args, word_bytes=packed[0], word_offsets=packed[1], counts=counts,
                     types=types, ntokens=ntokens, pruneidx=pruneidx, input=input_matrix,
                     output=output_matrix, quant_input=quant_input, quant_output=quant_input and qout)


def _read_args(r: CheckedReader, version: int, floret_layout: bool = False) -> Args:
    mode, hash_count = MODE_CODES["fasttext"], 1
    if floret_layout:
        (dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn,
         mode, hash_count, lr_update_rate, t) = r.unpack(_FLORET_ARGS, "the training options")
    else:
        (dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket,
         minn, maxn, lr_update_rate, t) = r.unpack(_ARGS, "the training options")
    if mode not in MODE_NAMES:
        raise _foreign(r.path, f"mode is {mode} (expected 1-2: fasttext, floret)")
    if loss not in LOSS_NAMES:
        raise _foreign(r.path, f"loss is {loss} (expected 1-4: hs, ns, softmax, one-vs-all)")
    if model not in MODEL_NAMES:
        raise _foreign(r.path, f"model is {model} (expected 1-3: cbow, skipgram, supervised)")
    if version == 11 and MODEL_NAMES[model] == "supervised":
        maxn = 0  # as fastText: old supervised models had no character n-grams
    args = Args.for_model(MODEL_NAMES[model], dim=dim, ws=ws, epoch=epoch, minCount=min_count,
                          neg=neg, wordNgrams=word_ngrams, loss=LOSS_NAMES[loss], bucket=bucket,
                          minn=minn, maxn=maxn, lrUpdateRate=lr_update_rate, t=t,
                          mode=MODE_NAMES[mode], hashCount=hash_count)
    check_header_args(args, r.path)
    return args


def check_header_args(args: Args, path: str) -> None:
    """The one check of the options a `.bin` header stores: training's rules, limits
    included (Args.validate), so that a file never holds what `embtk supervised`,
    `skipgram` or `cbow` would refuse, and nothing in it sizes memory without bound."""
    broken = training_rule_broken(args)
    if broken:
        raise _foreign(path, broken)


def _foreign(path: str, problem: str) -> EmbtkError:
    return EmbtkError(f"{path}: corrupt or foreign model file: {problem}")


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _scan_entries(raw, pos, size):
    """Walk `size` dictionary entries (word, NUL, int64 count, int8 type) from `pos`.

    Returns how many entries fit in `raw` and where the first one that did not starts (or
    its tail, if its word did fit), then each entry's NUL offset, count and type.
    """
    ends = empty(size, np.int64)
    counts = empty(size, np.int64)
    types = empty(size, np.int8)
    n = len(raw)
    for i in range(size):
        entry = pos
        while pos < n and raw[pos] != 0:
            pos += 1
        if pos >= n:
            return i, entry, ends, counts, types
        if pos + 1 + _ENTRY_TAIL > n:
            return i, pos + 1, ends, counts, types
        ends[i] = pos
        count = np.uint64(0)
        for k in range(8):  # little-endian int64
            count |= np.uint64(raw[pos + 1 + k]) << np.uint64(8 * k)
        counts[i] = np.int64(count)
        types[i] = np.int8(raw[pos + 9])
        pos += 1 + _ENTRY_TAIL
    return size, pos, ends, counts, types


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _gather_entries(raw, pos, ends):
    """The words of entries scanned from `pos` (each ends at its NUL), packed together."""
    offsets = zeros(len(ends) + 1, np.int64)
    start = pos
    for i in range(len(ends)):
        offsets[i + 1] = offsets[i] + ends[i] - start
        start = ends[i] + 1 + _ENTRY_TAIL
    data = empty(offsets[-1], np.uint8)
    start = pos
    for i in range(len(ends)):
        for k in range(ends[i] - start):
            data[offsets[i] + k] = raw[start + k]
        start = ends[i] + 1 + _ENTRY_TAIL
    return data, offsets


def _read_dictionary(r: CheckedReader):
    size, nwords, nlabels, ntokens, prune_size = r.unpack(_DICT, "the dictionary header")
    if size < 0 or nwords < 0 or nlabels < 0 or nwords + nlabels != size:
        raise r.corrupt(f"invalid dictionary sizes (size {size}, nwords {nwords}, nlabels {nlabels})")
    if ntokens < 0:
        raise r.corrupt(f"invalid token count {ntokens}")
    if prune_size < -1:
        raise r.corrupt(f"invalid pruned-index size {prune_size}")
    # Each entry takes at least a NUL, a count and a type: 10 bytes.
    if size * (_ENTRY_TAIL + 1) > r.remaining():
        raise r.truncated(f"the {size} dictionary entries")

    raw = np.frombuffer(r.buf, dtype=np.uint8)
    done, stopped_at, ends, counts, types = _scan_entries(raw, r.pos, size)
    if done < size:
        r.pos = int(stopped_at)
        raise r.truncated(f"dictionary entry {done}")
    entries = _gather_entries(raw, r.pos, ends)
    buf = r.buf
    if size:
        r.pos = int(ends[-1]) + 1 + _ENTRY_TAIL
    del raw
    # fastText sorts words before labels; ids of labels are nwords + label index.
    if np.any(types[:nwords] != 0) or np.any(types[nwords:] != 1):
        raise r.corrupt(f"dictionary entry types do not match nwords {nwords} and nlabels {nlabels}")
    if size and counts.min() < 0:  # counts are occurrences in the training data
        i = int(np.argmin(counts))
        raise r.corrupt(f"dictionary entry {i} has a negative count {counts[i]}")

    pruneidx = None
    if prune_size >= 0:
        nbytes = 8 * prune_size
        if nbytes > r.remaining():
            raise r.truncated(f"the {prune_size} pruned-index pairs")
        pruneidx = np.frombuffer(buf, dtype="<i4", count=2 * prune_size, offset=r.pos) \
            .astype(np.int32).reshape(prune_size, 2)
        r.pos += nbytes
    return entries, counts, types, int(ntokens), pruneidx, nwords, nlabels


def _read_dense(r: CheckedReader, name: str, rows: int, why: str, dim: int) -> np.ndarray:
    m, n = r.unpack(_MATRIX, f"the {name} matrix header")
    if m < 0 or n < 0:
        raise r.corrupt(f"the {name} matrix has a negative size {m} x {n}")
    if n != dim:
        raise r.corrupt(f"the {name} matrix has {n} columns but the model's dim is {dim}")
    if m != rows:
        raise r.corrupt(f"the {name} matrix has {m} rows, expected {why}")
    nbytes = 4 * m * n
    if nbytes > r.remaining():
        raise r.truncated(f"the {name} matrix ({m} x {n} floats need {nbytes} bytes, "
                          f"{r.remaining()} left)")
    if nbytes == 0:
        matrix = np.zeros((m, n), dtype=np.float32)
    else:
        # A view on the copy-on-write mapping: no copy, writable, the file stays untouched.
        matrix = np.ndarray((m, n), dtype=_F32, buffer=r.buf, offset=r.pos)
        if matrix.dtype != np.float32:  # pragma: no cover - big-endian hosts
            matrix = matrix.astype(np.float32)
    r.pos += nbytes
    return matrix


_QUANT_HEAD = struct.Struct("<?qqi")   # qnorm, m, n, codesize
_PQ_HEAD = struct.Struct("<iiii")       # dim, nsubq, dsub, lastdsub


def _read_pq(r: CheckedReader, name: str, dim: int):
    pq_dim, nsubq, dsub, lastdsub = r.unpack(_PQ_HEAD, f"the {name} quantizer header")
    if (pq_dim != dim or dsub <= 0 or (nsubq, lastdsub) != ProductQuantizer.shape_for(dim, dsub)):
        raise r.corrupt(f"the {name} quantizer has an invalid shape (dim {pq_dim}, nsubq {nsubq}, "
                        f"dsub {dsub}, lastdsub {lastdsub})")
    nbytes = 4 * dim * KSUB
    if nbytes > r.remaining():
        raise r.truncated(f"the {name} centroids")
    centroids = np.frombuffer(r.buf, dtype=_F32, count=dim * KSUB, offset=r.pos).astype(np.float32)
    r.pos += nbytes
    return ProductQuantizer(pq_dim, nsubq, dsub, lastdsub, centroids)


def _read_bytes(r: CheckedReader, count: int, what: str) -> np.ndarray:
    if count < 0:
        raise r.corrupt(f"{what}: a negative size {count}")
    if count > r.remaining():
        raise r.truncated(f"{what} ({count} bytes, {r.remaining()} left)")
    out = np.frombuffer(r.buf, dtype=np.uint8, count=count, offset=r.pos).copy()
    r.pos += count
    return out


def _read_quant(r: CheckedReader, name: str, rows: int, why: str, dim: int):
    """A product-quantized matrix (see quantmatrix.QuantMatrix), read into RAM."""
    if r.pos >= r.size:
        raise r.truncated(f"the {name} matrix")
    if r.buf[r.pos] not in (0, 1):
        raise r.corrupt(f"the qnorm flag of the {name} matrix is {r.buf[r.pos]}, not a boolean")
    qnorm, m, n, codesize = r.unpack(_QUANT_HEAD, f"the {name} matrix header")
    if n != dim:
        raise r.corrupt(f"the {name} matrix has {n} columns but the model's dim is {dim}")
    if m != rows:
        raise r.corrupt(f"the {name} matrix has {m} rows, expected {why}")
    codes = _read_bytes(r, codesize, f"the {name} codes")
    pq = _read_pq(r, name, dim)
    if codesize != m * pq.nsubq:
        raise r.corrupt(f"the {name} matrix has {codesize} codes, expected {m} x {pq.nsubq}")
    norm_codes = npq = None
    if qnorm:
        norm_codes = _read_bytes(r, m, f"the {name} norm codes")
        npq = _read_pq(r, f"{name} norm", 1)
    return QuantMatrix(m, n, codes.reshape(m, pq.nsubq), pq, norm_codes, npq)


def _write_pq(f: BinaryIO, pq) -> None:
    f.write(_PQ_HEAD.pack(pq.dim, pq.nsubq, pq.dsub, pq.lastdsub))
    f.write(np.ascontiguousarray(pq.centroids, dtype=_F32).tobytes())


def _write_quant(f: BinaryIO, q) -> None:
    f.write(_QUANT_HEAD.pack(q.qnorm, q.m, q.n, q.codes.size))
    # in pieces, not one tobytes() copy: the codes of a default-size model are 100+ MB
    flat = memoryview(np.ascontiguousarray(q.codes, dtype=np.uint8).reshape(-1))
    for start in range(0, len(flat), _WRITE_CHUNK):
        f.write(flat[start:start + _WRITE_CHUNK])
    _write_pq(f, q.pq)
    if q.qnorm:
        f.write(np.ascontiguousarray(q.norm_codes, dtype=np.uint8).tobytes())
        _write_pq(f, q.npq)


def _write_matrix(f: BinaryIO, matrix) -> None:
    if isinstance(matrix, np.ndarray):
        _write_dense(f, matrix)
    else:
        _write_quant(f, matrix)


def save_bin(path, args: Args, words: Sequence[bytes], counts, types, ntokens: int,
             pruneidx, input: np.ndarray, output: np.ndarray) -> None:
    """Write a fastText version-12 model atomically: a `.bin`, or an `.ftz` when `input`
    is a quantmatrix.QuantMatrix (the output may then be one too).

    The arguments must describe a loadable model (words before labels, input rows =
    nwords + args.bucket, or + the pruned n-grams, output rows = nlabels for supervised
    models or nwords otherwise, dim columns); inconsistent arguments are a programming
    error and raise ValueError before anything is written. `path` may also be a binary
    file object (e.g. io.BytesIO, to pickle a model), written to as it is. `words` is a
    list of bytes or, to save without one object per entry, a dictionary.PackedWords.
    """
    input, output = (m if hasattr(m, "codes") else np.asarray(m) for m in (input, output))
    if pruneidx is not None and int(args.bucket) > MAX_PRUNED_BUCKET:
        raise EmbtkError(f"cannot save {path}: a pruned model's bucket must be at most "
                         f"{MAX_PRUNED_BUCKET} to load again, this one has {args.bucket}")
    header, dictionary = _encode_header(args, words, counts, types, ntokens, pruneidx, input, output)
    quant_input = not isinstance(input, np.ndarray)
    if not quant_input and (pruneidx is not None or not isinstance(output, np.ndarray)):
        raise ValueError("save_bin: a pruned dictionary or a quantized output needs a quantized input")

    def write(f):
        f.write(header)
        f.write(dictionary)
        f.write(b"\1" if quant_input else b"\0")
        _write_matrix(f, input)
        f.write(b"\0" if isinstance(output, np.ndarray) else b"\1")  # qout
        _write_matrix(f, output)

    if hasattr(path, "write"):
        write(path)
        return
    with atomic_write(path, "wb") as f:
        try:
            write(f)
        except OSError as exc:
            raise EmbtkError(f"cannot write {path}: {os_reason(exc)}") from None


def _encode_header(args, words, counts, types, ntokens, pruneidx, input, output):
    packed = words if isinstance(words, PackedWords) else None
    if packed is None:
        words = list(words)
    size = len(words) if packed is None else len(packed.offsets) - 1
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    types = np.asarray(types, dtype=np.int8).reshape(-1)
    if len(counts) != size or len(types) != size:
        raise ValueError(f"save_bin: {size} words but {len(counts)} counts and {len(types)} types")
    nwords = int(np.count_nonzero(types == 0))
    nlabels = size - nwords
    if np.any(types[:nwords] != 0) or np.any(types[nwords:] != 1):
        raise ValueError("save_bin: types must be 0 for all words, then 1 for all labels")
    if packed is None and any(not isinstance(w, (bytes, bytearray)) for w in words):
        raise ValueError("save_bin: words must be bytes")
    if (b"\0" in b"".join(words) if packed is None else
            np.any(packed.word_bytes[packed.offsets[0]:packed.offsets[-1]] == 0)):
        raise ValueError("save_bin: a word contains a NUL byte")
    dim, bucket = int(args.dim), int(args.bucket)
    in_shape, out_shape = _shape(input), _shape(output)
    in_rows = nwords + (bucket if pruneidx is None else len(pruneidx))
    if in_shape != (in_rows, dim):
        raise ValueError(f"save_bin: input matrix is {in_shape}, expected "
                         f"(nwords + bucket or pruned n-grams, dim) = ({in_rows}, {dim})")
    out_rows = nlabels if args.supervised else nwords
    if out_shape != (out_rows, dim):
        raise ValueError(f"save_bin: output matrix is {out_shape}, expected ({out_rows}, {dim})")
    if pruneidx is None:
        prune_size, prune_bytes = -1, b""
    else:
        pairs = np.ascontiguousarray(pruneidx, dtype="<i4").reshape(-1, 2)
        prune_size, prune_bytes = len(pairs), pairs.tobytes()

    options = (dim, int(args.ws), int(args.epoch), int(args.minCount), int(args.neg),
               int(args.wordNgrams), args.loss_code, args.model_code, bucket, int(args.minn),
               int(args.maxn))
    if args.floret:  # floret's layout, which only floret reads
        options += (MODE_CODES["floret"], int(args.hashCount))
    layout = _FLORET_ARGS if args.floret else _ARGS
    header = _HEAD.pack(MAGIC, VERSION) + layout.pack(
        *options, int(args.lrUpdateRate), float(args.t))
    header += _DICT.pack(size, nwords, nlabels, int(ntokens), prune_size)

    if packed is not None:
        entries = file_entries(packed.word_bytes, packed.offsets, counts, types)
        return header, (entries if not prune_bytes else entries.tobytes() + prune_bytes)
    tails = np.empty(size, dtype=_ENTRY_DTYPE)
    tails["count"] = counts
    tails["type"] = types
    raw = tails.tobytes()
    step = _ENTRY_TAIL
    dictionary = b"".join([b"%s\0%s" % (w, raw[i * step:(i + 1) * step])
                           for i, w in enumerate(words)])
    return header, dictionary + prune_bytes


def _shape(matrix) -> tuple:
    if isinstance(matrix, np.ndarray):
        return matrix.shape
    return (matrix.m, matrix.n)  # a QuantMatrix


def _write_dense(f: BinaryIO, matrix: np.ndarray) -> None:
    m, n = matrix.shape
    f.write(_MATRIX.pack(m, n))
    if matrix.dtype == _F32 and matrix.flags.c_contiguous:
        # In 1 MB writes: numpy puts big arrays on transparent huge pages, and one huge
        # write() from such pages costs the kernel several times the system time of
        # writing them in pieces (figures in benchmarks/README.md, "Saving").
        flat = memoryview(matrix.reshape(-1)).cast("B")
        for start in range(0, len(flat), _WRITE_CHUNK):
            f.write(flat[start:start + _WRITE_CHUNK])
        return
    rows = max(1, _WRITE_CHUNK // max(1, 4 * n))
    for start in range(0, m, rows):
        part = np.ascontiguousarray(matrix[start:start + rows], dtype=_F32)
        f.write(memoryview(part.reshape(-1)).cast("B"))
