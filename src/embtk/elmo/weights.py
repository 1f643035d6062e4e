"""The arrays of an ELMo model: read from bilm-tf's `weights.hdf5`, or from embtk's `.elmo`.

weights.hdf5 (the published models; float32 datasets; F = the filters' total count,
P = projection_dim, C = lstm.dim, D = char_cnn.embedding.dim):

    char_embed                                  (261, D)   bytes 0-255 and 5 markers;
                                                           row 0 of the id space (no
                                                           token) is a zero row put in front
    CNN/W_cnn_{i}, CNN/b_cnn_{i}                (1, width_i, D, count_i), (count_i,)
    CNN_high_{k}/W_carry, b_carry               (F, F), (F,)   the highway's gate T(x)
    CNN_high_{k}/W_transform, b_transform       (F, F), (F,)   its nonlinear part H(x)
    CNN_proj/W_proj, b_proj                     (F, P), (P,)
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_0   (P + P, 4C)  [input; previous h] rows,
                                                                 gate columns i, j, f, o
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/B     (4C,)        (TensorFlow adds 1 to f)
    RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/W_P_0 (C, P)       the cell's projection

for d = 0 (forward), 1 (backward) and l < n_layers; every product is x @ W. Datasets
not listed (the softmax, training state) are ignored.

embtk's `.elmo` file holds the same arrays, so that h5py is needed once (to convert):

    bytes 0-7    magic b"EMBTKELM"
    uint32       format version (1)
    uint32       n, the length of the options region
    n bytes      the options as JSON (UTF-8), padded with spaces so that 16 + n is a
                 multiple of 64
    then every array of the list above, in that order (char_embed first, then per width,
    per highway layer, the projection, then per direction and layer), float32
    little-endian in C order, each starting at a multiple of 64 bytes (zero bytes between)

The reader checks the magic, the version, n against the file, the options, and that the
file's size is exactly what the options imply, before it maps anything; the arrays are
then read-only views of a memory map of the file (no copy).
"""

from __future__ import annotations

import mmap
import os
import stat
import struct

import numpy as np

from ..errors import EmbtkError
from ..safeio import atomic_write, open_for_reading
from .options import MAX_OPTIONS_BYTES, STORED_CHAR_ROWS, ElmoOptions, parse_options

MAGIC = b"EMBTKELM"
VERSION = 2       # 1: no "training" section (written when there is none, as before)
_HEAD = struct.Struct("<8sII")  # magic, version, options length
ALIGN = 64
_F32 = np.dtype("<f4")
_U8 = np.dtype("u1")
VOCAB = "softmax/vocab"   # the softmax's words, each followed by a newline (uint8)
ADAGRAD = "adagrad/"      # prefix of the accumulated squared gradients


def lstm_prefix(direction: int, layer: int) -> str:
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def expected_arrays(opt: ElmoOptions) -> list:
    """(name, shape) of every array of the model, in the `.elmo` order: those the forward
    pass reads, then (a model trained by embtk) the softmax and Adagrad's state."""
    out = network_arrays(opt)
    if opt.softmax_rows:
        softmax = [("softmax/W", (opt.softmax_rows, opt.projection_dim)),
                   ("softmax/b", (opt.softmax_rows,))]
        out += softmax + [(VOCAB, (opt.vocab_bytes,))]
        if opt.adagrad:
            out += [(ADAGRAD + name, shape) for name, shape in network_arrays(opt) + softmax]
    return out


def dtype_of(name: str) -> np.dtype:
    return _U8 if name == VOCAB else _F32


def network_arrays(opt: ElmoOptions) -> list:
    """(name, shape) of every array the forward pass reads."""
    d, f, p, c = opt.char_dim, opt.n_filters, opt.projection_dim, opt.cell_dim
    out = [("char_embed", (STORED_CHAR_ROWS, d))]
    for i, (width, count) in enumerate(opt.filters):
        out += [(f"CNN/W_cnn_{i}", (1, width, d, count)), (f"CNN/b_cnn_{i}", (count,))]
    for k in range(opt.n_highway):
        out += [(f"CNN_high_{k}/W_carry", (f, f)), (f"CNN_high_{k}/b_carry", (f,)),
                (f"CNN_high_{k}/W_transform", (f, f)), (f"CNN_high_{k}/b_transform", (f,))]
    out += [("CNN_proj/W_proj", (f, p)), ("CNN_proj/b_proj", (p,))]
    for direction in (0, 1):
        for layer in range(opt.n_layers):
            prefix = lstm_prefix(direction, layer)
            out += [(f"{prefix}/W_0", (2 * p, 4 * c)), (f"{prefix}/B", (4 * c,)),
                    (f"{prefix}/W_P_0", (c, p))]
    return out


# ------------------------------------------------------------------------- hdf5
def require_h5py():
    try:
        import h5py
    except ImportError:
        raise EmbtkError("reading ELMo's weights.hdf5 needs h5py: pip install 'embtk[elmo]' "
                         "(or convert the model once with `embtk elmo-convert` where h5py "
                         "is installed)") from None
    return h5py


def read_hdf5(path, opt: ElmoOptions) -> dict:
    """The arrays of a published weights.hdf5, as float32, checked against the options."""
    h5py = require_h5py()
    path = os.fsdecode(path)
    _require_regular(path)
    with open_for_reading(path, "weights file"):
        pass  # a missing file or a directory: the usual one-line errors
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EmbtkError(f"{path} is not an HDF5 weights file ({_reason(exc)})") from None
    arrays = {}
    with f:
        for name, shape in expected_arrays(opt):
            node = f.get(name)
            if node is None:
                raise EmbtkError(f"{path} has no dataset {name} (the options ask for it): "
                                 "not the weights of these options")
            if not isinstance(node, h5py.Dataset):
                raise EmbtkError(f"{path}: {name} is a group, not a dataset")
            if node.shape != shape:
                raise EmbtkError(f"{path}: dataset {name} has shape {node.shape}, the options "
                                 f"need {shape}")
            if node.dtype.kind != "f":
                raise EmbtkError(f"{path}: dataset {name} holds {node.dtype}, not floating-point "
                                 "numbers")
            try:
                value = np.ascontiguousarray(node[()], dtype=np.float32)
            except OSError as exc:
                raise EmbtkError(f"{path}: cannot read dataset {name} ({_reason(exc)})") from None
            if not np.isfinite(value).all():
                raise EmbtkError(f"{path}: dataset {name} holds NaN or infinite values")
            arrays[name] = value
    return arrays


def _reason(exc) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


# ------------------------------------------------------------------------- .elmo
def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _options_region(opt: ElmoOptions) -> bytes:
    text = opt.to_json().encode("utf-8")
    size = _aligned(_HEAD.size + len(text)) - _HEAD.size
    return text + b" " * (size - len(text))


def write_elmo(path, opt: ElmoOptions, arrays: dict) -> None:
    """Save `arrays` (as expected_arrays lists them) to `path` atomically."""
    region = _options_region(opt)
    with atomic_write(path) as f:
        f.write(_HEAD.pack(MAGIC, VERSION if opt.softmax_rows else 1, len(region)))
        f.write(region)
        pos = _HEAD.size + len(region)
        for name, shape in expected_arrays(opt):
            a = np.ascontiguousarray(arrays[name], dtype=dtype_of(name))
            assert a.shape == shape, (name, a.shape, shape)
            pad = _aligned(pos) - pos  # zero bytes before an array, none after the last
            f.write(b"\0" * pad)
            f.write(memoryview(a).cast("B"))
            pos += pad + a.nbytes


def is_elmo_file(path) -> bool:
    """Whether `path` is a regular file that starts with the `.elmo` magic (False if it
    cannot be read: the caller's reader then says why)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # opening a FIFO would wait for a writer
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _require_regular(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # open_for_reading says why
    if stat.S_ISDIR(mode):
        raise EmbtkError(f"cannot read {path}: it is a directory")
    if not stat.S_ISREG(mode):
        raise EmbtkError(f"cannot read {path} as a model: it is not a regular file")


def read_elmo(path) -> tuple:
    """(options, arrays) of a `.elmo` file; the arrays are read-only views of a memory map."""
    path = os.fsdecode(path)
    _require_regular(path)  # before opening: opening a FIFO would wait for a writer
    with open_for_reading(path, "model") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_HEAD.size)
        if len(head) < len(MAGIC) or head[:len(MAGIC)] != MAGIC:
            raise EmbtkError(f"{path} is not an embtk ELMo model (.elmo) file (bad magic number)")
        if len(head) < _HEAD.size:
            raise EmbtkError(f"{path} is truncated (it ends at byte {size}, inside the header)")
        _, version, n = _HEAD.unpack(head)
        if version not in (1, VERSION):
            raise EmbtkError(f"{path} has .elmo format version {version}; this embtk reads "
                             f"versions 1 and {VERSION}")
        if n > MAX_OPTIONS_BYTES or _HEAD.size + n > size:
            raise EmbtkError(f"{path} is truncated or corrupt: its options take {n} bytes, "
                             f"the file has {size}")
        opt = parse_options(f.read(n), f"{path} (its options)")
        start = _HEAD.size + n
        layout, pos = [], _aligned(start)
        for name, shape in expected_arrays(opt):
            layout.append((name, shape, pos))
            pos = _aligned(pos + dtype_of(name).itemsize * int(np.prod(shape)))
        last_name, last_shape, last_at = layout[-1]
        end = last_at + dtype_of(last_name).itemsize * int(np.prod(last_shape))
        if size != end:
            raise EmbtkError(f"{path} is truncated or corrupt: its options need {end} bytes, "
                             f"the file has {size}")
        try:
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise EmbtkError(f"cannot map {path}: {_reason(exc)}") from None
    arrays = {}
    for name, shape, offset in layout:
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(buf, dtype=dtype_of(name), count=count,
                                     offset=offset).reshape(shape)
    return opt, arrays
