"""The vectors of many lines of text, written as `embtk elmo-vectors` writes them.

Text (the default): per token, the token and its values ('%.5g ', as fastText's
print-word-vectors), then an empty line after each sentence; with `sentence`, one line of
values per input line. HDF5 (`output`): AllenNLP's `elmo` command layout, one dataset per
line named by its index ("0", "1", ...): (layers, tokens, dim) for every layer, (tokens,
dim) for one, (dim,) or (layers * dim,) with `sentence`; and `sentence_to_index`, one
JSON string mapping each line's text to its index (the last index for a repeated line).

Lines are read and embedded a chunk at a time, so memory does not grow with the input.
Tokens are the line's whitespace-separated bytes: bytes that are not UTF-8 reach the
character encoder as they are (the model reads bytes), and are printed back unchanged;
only `sentence_to_index` keys, which JSON makes text, show them as U+FFFD.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

import numpy as np

from ..errors import EmbtkError
from ..vecformat import _vec_block
from .model import ElmoModel
from .weights import require_h5py

CHUNK_LINES = 2048


@contextlib.contextmanager
def _atomic_path(path):
    """A hidden temporary path beside `path` (h5py writes a file by name), renamed over
    `path` when the block succeeds and removed when it does not, Ctrl-C included: as
    fileformat.atomic_write does for file objects."""
    path = os.fsdecode(path)
    if os.path.isdir(path):
        raise EmbtkError(f"cannot write {path}: it is a directory")
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.tmp-{secrets.token_hex(4)}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise EmbtkError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _chunks(stream):
    lines = []
    for line in stream:
        lines.append(line)
        if len(lines) == CHUNK_LINES:
            yield lines
            lines = []
    if lines:
        yield lines


def _values(v: np.ndarray, sentence: bool) -> np.ndarray:
    """A sentence's array as rows to print (tokens, values), or its mean over tokens."""
    rows = v.reshape(len(v), int(np.prod(v.shape[1:])))
    if not sentence:
        return rows
    if not len(rows):
        return np.zeros(rows.shape[1], dtype=np.float32)
    return rows.mean(axis=0, dtype=np.float64).astype(np.float32)


def write_vectors(lm: ElmoModel, stream, out, *, layer=None, sentence=False, thread=None,
                  output=None, verbose=1) -> int:
    """Embed every line of the binary `stream`; write text to `out` (binary), or HDF5 to
    `output`. Returns the number of lines."""
    bar = None
    if verbose >= 2:
        from tqdm import tqdm

        bar = tqdm(unit=" lines", desc="elmo-vectors", leave=False)
    try:
        if output is None:
            return _write_text(lm, stream, out, layer, sentence, thread, bar)
        h5py = require_h5py()
        with _atomic_path(output) as tmp, h5py.File(tmp, "w") as h5:
            return _write_hdf5(lm, stream, h5, layer, sentence, thread, bar)
    finally:
        if bar is not None:
            bar.close()


def _embed(lm, lines, layer, thread):
    return lm.embed([line.split() for line in lines], layer=layer, thread=thread, verbose=0)


def _write_text(lm, stream, out, layer, sentence, thread, bar) -> int:
    buffer = np.empty(0, dtype=np.uint8)
    count = 0
    for lines in _chunks(stream):
        for line, v in zip(lines, _embed(lm, lines, layer, thread)):
            values = _values(v, sentence)
            if sentence:
                out.write("".join(["%.5g " % x for x in values.tolist()]).encode("ascii"))
                out.write(b"\n")
                continue
            pieces, buffer = _vec_block(line.split(), values.shape[1], values, buffer)
            for piece in pieces:
                out.write(piece)
            out.write(b"\n")
        out.flush()
        count += len(lines)
        if bar is not None:
            bar.update(len(lines))
    return count


def _write_hdf5(lm, stream, h5, layer, sentence, thread, bar) -> int:
    index = {}
    count = 0
    for lines in _chunks(stream):
        for line, v in zip(lines, _embed(lm, lines, layer, thread)):
            if sentence:
                value = _values(v, True)
            elif layer is None:
                value = v.transpose(1, 0, 2)  # (layers, tokens, dim), as AllenNLP's --all
            else:
                value = v
            h5.create_dataset(str(count), data=value)
            index[line.strip().decode("utf-8", "replace")] = str(count)
            count += 1
        if bar is not None:
            bar.update(len(lines))
    h5py = require_h5py()
    table = h5.create_dataset("sentence_to_index", (1,), dtype=h5py.special_dtype(vlen=str))
    table[0] = json.dumps(index)
    return count
