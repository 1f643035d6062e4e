"""Reading and writing fastText's files: the `.bin` model and `.vec` text vectors.

The `.bin` layout (native little-endian, fastText version 12) is

    int32 magic 793712314, int32 version
    int32 x12 args: dim ws epoch minCount neg wordNgrams loss model bucket minn maxn lrUpdateRate
    float64 t
    dictionary: int32 size nwords nlabels, int64 ntokens pruneidx_size,
                size x (word bytes, NUL, int64 count, int8 type),
                pruneidx_size x (int32 bucket_id, int32 new_index)
    bool quant_input, input matrix, bool qout, output matrix
    dense matrix: int64 m, int64 n, float32[m * n] row-major
    quantized matrix (.ftz): bool qnorm, int64 m, int64 n, int32 codesize, uint8 codes[codesize],
                quantizer {int32 dim nsubq dsub lastdsub, float32 centroids[dim * 256]},
                then if qnorm: uint8 norm_codes[m] and a second quantizer (dim 1)

Loaded matrices are memory-mapped copy-on-write, never read into RAM up front: a 2 GB
model opens in milliseconds, and training in place on them leaves the file untouched.
Every problem with a file is reported as one EmbtkError.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import re
import secrets
import stat
import struct
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Iterator, Sequence

import numba as nb
import numpy as np

from .jitting import callee, empty, zeros
from .args import LOSS_NAMES, MODEL_CODES, MODEL_NAMES, Args
from .dictionary import PackedWords, file_entries, unpack_entries
from .errors import EmbtkError
from .quantmatrix import KSUB, ProductQuantizer, QuantMatrix

MAGIC = 793712314
VERSION = 12
MIN_VERSION = 11

_HEAD = struct.Struct("<ii")            # magic, version
_ARGS = struct.Struct("<12id")          # the 12 int32 options, then t
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


# ---------------------------------------------------------------------------
# atomic_write


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", durable: bool = False) -> Iterator:
    """Yield a file object on a temporary file beside `path`; on success it is flushed
    and renamed over `path`. On any exception, KeyboardInterrupt included, the
    temporary file is removed and the exception re-raised, so `path` is either its old
    self or completely written, never half written.

    `durable` also fsyncs the file before the rename and its directory after it, so that
    the new file survives a power loss too. Models are saved without it, as fastText
    saves them: on ext4 the fsync of an 800 MB model costs ~0.5 s of waiting for the
    disk, as much as writing it, and a rename over an older file already has its data
    written first (auto_da_alloc). Checkpoints, whose point is to survive a crash, ask
    for it.
    """
    path = os.fsdecode(path)  # str, bytes or PathLike
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    shown = path
    if os.path.islink(path):
        path = os.path.realpath(path)  # replace the file the link points to, not the link
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise EmbtkError(f"cannot write {shown}: it is a directory")
    name = os.path.basename(path)

    fd, tmp = -1, ""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.tmp-{secrets.token_hex(4)}")
        try:
            # 0o666 lets the user's umask decide the permissions, as for any new file.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise EmbtkError(f"cannot write {shown}: {_os_reason(exc)}") from None
    else:  # pragma: no cover - 100 random collisions in a row
        raise EmbtkError(f"cannot write {shown}: cannot create a temporary file in {directory}")

    try:
        with contextlib.suppress(OSError):  # keep an overwritten file's permissions
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding="utf-8", newline="")
        fd = -1  # now owned by f
        with f:
            yield f
            try:
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            except OSError as exc:
                raise EmbtkError(f"cannot write {shown}: {_os_reason(exc)}") from None
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise EmbtkError(f"cannot write {shown}: {_os_reason(exc)}") from None
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (not every platform or filesystem allows it)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------
# .bin


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


class _Reader:
    """Bounds-checked reads from a buffer, each failure one EmbtkError."""

    def __init__(self, buf, path: str):
        self.buf = buf
        self.size = len(buf)
        self.path = path
        self.pos = 0

    def truncated(self, what: str) -> EmbtkError:
        return EmbtkError(
            f"{self.path} is truncated or corrupt (the file ends at byte {self.size} "
            f"while reading {what} at byte {self.pos})")

    def corrupt(self, what: str) -> EmbtkError:
        return EmbtkError(f"{self.path} is truncated or corrupt: {what}")

    def unpack(self, st: struct.Struct, what: str) -> tuple:
        if self.pos + st.size > self.size:
            raise self.truncated(what)
        values = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return values

    def flag(self, what: str) -> bool:
        if self.pos >= self.size:
            raise self.truncated(what)
        value = self.buf[self.pos]
        if value not in (0, 1):
            raise self.corrupt(f"{what} at byte {self.pos} is {value}, not a boolean")
        self.pos += 1
        return bool(value)

    def remaining(self) -> int:
        return self.size - self.pos


def open_for_reading(path, what: str = ""):
    """Open a file the user named, for reading bytes; OS errors become one-line EmbtkErrors."""
    name = f"{what} {path}" if what else str(path)
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise EmbtkError(f"cannot read {name}: it is a directory") from None
    except FileNotFoundError:
        raise EmbtkError(f"cannot read {name}: no such file") from None
    except OSError as exc:
        raise EmbtkError(f"cannot read {name}: {_os_reason(exc)}") from None


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
            raise EmbtkError(f"cannot read {path}: {_os_reason(exc)}") from None
    if not data:
        raise EmbtkError(f"{path} is empty, not a fastText/embtk model file")
    return data


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
    r = _Reader(buf, path)

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

    args = _read_args(r, version)
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


def _read_args(r: _Reader, version: int) -> Args:
    (dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket,
     minn, maxn, lr_update_rate, t) = r.unpack(_ARGS, "the training options")
    if loss not in LOSS_NAMES:
        raise _foreign(r.path, f"loss is {loss} (expected 1-4: hs, ns, softmax, one-vs-all)")
    if model not in MODEL_NAMES:
        raise _foreign(r.path, f"model is {model} (expected 1-3: cbow, skipgram, supervised)")
    if version == 11 and MODEL_NAMES[model] == "supervised":
        maxn = 0  # as fastText: old supervised models had no character n-grams
    args = Args.for_model(MODEL_NAMES[model], dim=dim, ws=ws, epoch=epoch, minCount=min_count,
                          neg=neg, wordNgrams=word_ngrams, loss=LOSS_NAMES[loss], bucket=bucket,
                          minn=minn, maxn=maxn, lrUpdateRate=lr_update_rate, t=t)
    check_header_args(args, r.path)
    return args


def check_header_args(args: Args, path: str) -> None:
    """The one check of the options a `.bin` header stores: training's rules, limits
    included (Args.validate), so that a file never holds what `embtk supervised`,
    `skipgram` or `cbow` would refuse, and nothing in it sizes memory without bound."""
    broken = training_rule_broken(args)
    if broken:
        raise _foreign(path, broken)


def training_rule_broken(args: Args) -> str | None:
    """What Args.validate says about `args` (None if they pass), with the options named
    as in a file ("maxn"), not as on the command line ("-maxn")."""
    try:
        args.validate()
    except EmbtkError as exc:
        return re.sub(r"(?<![\w-])-(?=[A-Za-z])", "", str(exc))
    return None


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


def _read_dictionary(r: _Reader):
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


def _read_dense(r: _Reader, name: str, rows: int, why: str, dim: int) -> np.ndarray:
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


def _read_pq(r: _Reader, name: str, dim: int):
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


def _read_bytes(r: _Reader, count: int, what: str) -> np.ndarray:
    if count < 0:
        raise r.corrupt(f"{what}: a negative size {count}")
    if count > r.remaining():
        raise r.truncated(f"{what} ({count} bytes, {r.remaining()} left)")
    out = np.frombuffer(r.buf, dtype=np.uint8, count=count, offset=r.pos).copy()
    r.pos += count
    return out


def _read_quant(r: _Reader, name: str, rows: int, why: str, dim: int):
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
    f.write(np.ascontiguousarray(q.codes, dtype=np.uint8).tobytes())
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
            raise EmbtkError(f"cannot write {path}: {_os_reason(exc)}") from None


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

    header = _HEAD.pack(MAGIC, VERSION) + _ARGS.pack(
        dim, int(args.ws), int(args.epoch), int(args.minCount), int(args.neg),
        int(args.wordNgrams), args.loss_code, args.model_code, bucket, int(args.minn),
        int(args.maxn), int(args.lrUpdateRate), float(args.t))
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
        # In 1 MB writes: numpy puts big arrays on transparent huge pages, and one write()
        # of 800 MB from such pages took 3.7-12 s of system time on Linux 6.18 against
        # 0.3-1.8 s in pieces (benchmarks/README.md, "Saving").
        flat = memoryview(matrix.reshape(-1)).cast("B")
        for start in range(0, len(flat), _WRITE_CHUNK):
            f.write(flat[start:start + _WRITE_CHUNK])
        return
    rows = max(1, _WRITE_CHUNK // max(1, 4 * n))
    for start in range(0, m, rows):
        part = np.ascontiguousarray(matrix[start:start + rows], dtype=_F32)
        f.write(memoryview(part.reshape(-1)).cast("B"))


# ---------------------------------------------------------------------------
# .vec


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


def write_vec_rows(path, words: Sequence[bytes], dim: int, rows) -> None:
    """`write_vec` with the vectors given by `rows(start, stop)`, asked for a block at a
    time: a model's word vectors need not all be in memory at once."""
    words = [w.encode("utf-8") if isinstance(w, str) else bytes(w) for w in words]
    n = len(words)
    block = max(1, min(_VEC_BLOCK, _VEC_BLOCK_VALUES // max(dim, 1)))
    buffer = np.empty(0, dtype=np.uint8)  # reused block after block: no fresh pages each time
    with atomic_write(path, "wb") as f:
        try:
            f.write(b"%d %d\n" % (n, dim))
            for start in range(0, n, block):
                stop = min(n, start + block)
                pieces, buffer = _vec_block(words[start:stop], dim, rows(start, stop), buffer)
                for piece in pieces:
                    f.write(piece)
        except OSError as exc:
            raise EmbtkError(f"cannot write {path}: {_os_reason(exc)}") from None


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
        raise EmbtkError(f"cannot read {path}: {_os_reason(exc)}") from None


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
