"""The training text, in memory that does not grow with it.

A corpus is read twice, as fastText reads it, but in bounded pieces: once to count the
vocabulary (`count_vocabulary`), once to encode it (`encode_corpus`) into an unnamed
temporary file of int32 values, which the training threads then read back piece by piece
(`PieceReader`), each from its own start, wrapping round at the end. The process holds the
dictionary, the matrices and a few buffers of PIECE_BYTES; the encoded corpus lives in the
file (and the system's page cache), never in the process. Tokenizing happens once, not
once per epoch as in fastText.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from .jitting import empty
from .args import Args
from .counting import MAX_VOCAB_SIZE, TokenCounts, count_pieces, count_state, merge_counts
from .dictionary import EOS, Dictionary
from .recounting import FirstPass, encode_counted_lines, map_ids
from .errors import EmbtkError
from .safeio import open_for_reading
from .kernels import RECORD_HEADER, WordTables

# Bytes of text read at a time, and bytes of int32 values a training thread reads at a time
# (tests make it small, to cut lines and tokens everywhere).
PIECE_BYTES = 1 << 22
PARALLEL_BYTES = 1 << 23  # a smaller file is counted on one thread, whatever -thread says
LINE_INDEX_STRIDE = 1024  # a classifier corpus remembers where every 1024th line starts
_SEPARATORS = b" \n\r\t\v\f\0"


# ------------------------------------------------------------- stdin and Python input


def is_path(source) -> bool:
    return isinstance(source, (str, bytes, os.PathLike))


def _byte_pieces(source):
    """The text of a non-path training input as pieces of bytes: a binary or text file
    object (read in bounded pieces), or an iterable of lines (str or bytes, a newline
    added where missing; a line may also be a list of tokens, joined by spaces)."""
    read = getattr(source, "read", None)
    if read is not None:
        while piece := read(PIECE_BYTES):
            yield piece.encode("utf-8", "surrogateescape") if isinstance(piece, str) else piece
        return
    try:
        lines = iter(source)
    except TypeError:
        raise TypeError("input must be a path, a file object or an iterable of lines, got "
                        f"{type(source).__name__}") from None
    for line in lines:
        if isinstance(line, (list, tuple)):
            line = " ".join(t.decode("utf-8", "surrogateescape") if isinstance(t, bytes) else t
                            for t in line)
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        elif not isinstance(line, (bytes, bytearray, memoryview)):
            raise TypeError(f"input lines must be str, bytes or lists of tokens, got "
                            f"{type(line).__name__}")
        yield bytes(line) if line[-1:] == b"\n" else bytes(line) + b"\n"


@contextlib.contextmanager
def training_input(source, tmpdir: str = "", verbose: int = 0):
    """The training input as a path: a path as it is; stdin ('-') or a Python file object
    or iterable of lines copied ("spooled") to a temporary file first, since training
    reads its input more than once. The temporary file is removed when the block ends,
    however it ends (error, Ctrl-C, SIGTERM)."""
    if is_path(source) and os.fsdecode(source) != "-":
        yield os.fsdecode(source)
        return
    if is_path(source):
        source = getattr(sys.stdin, "buffer", sys.stdin)
        if source is None:
            raise EmbtkError("standard input is closed: there is nothing to train on")
        what = "stdin"
    else:
        what = "the Python input"
    folder = tmpdir or tempfile.gettempdir()
    try:
        fd, path = tempfile.mkstemp(prefix="embtk-input-", suffix=".txt", dir=folder)
    except OSError as exc:
        raise _no_room(folder, exc, what) from None
    try:
        size = 0
        with open(fd, "wb") as out:
            try:
                for piece in _byte_pieces(source):
                    out.write(piece)
                    size += len(piece)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise _no_room(folder, exc, what) from None
                raise
        if size == 0:
            raise EmbtkError(f"{what} is empty: nothing to train on")
        if verbose > 1:
            print(f"Copied {what} ({size / 1e6:.1f} MB) to {path}, removed at the end",
                  file=sys.stderr, flush=True)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def check_input(path: str) -> None:
    """A training file exists, can be read and is not empty (one line, not a traceback)."""
    if not path:
        raise EmbtkError("no input file given (-input)")
    with open_for_reading(path, "input file") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise EmbtkError(f"input file {path} is empty")


def _last_cut(buffer: bytearray, end: int, whole_lines: bool) -> int:
    """Just after the last newline (whole_lines) or separator in buffer[:end]; 0 if none."""
    if whole_lines:
        return buffer.rfind(b"\n", 0, end) + 1
    return max(buffer.rfind(bytes((c,)), 0, end) for c in _SEPARATORS) + 1


def text_pieces(f, whole_lines: bool, piece_bytes: int = 0):
    """The bytes of the binary file `f`, from its start, as uint8 arrays of about
    `piece_bytes`, each cut just after a separator, so that no token is split (with
    `whole_lines`, just after a newline, so that no line is). A longer line or token is
    yielded whole. Each array is a view of one reused buffer: use it before the next."""
    f.seek(0)
    buffer = bytearray(piece_bytes or PIECE_BYTES)
    filled = 0
    while True:
        at_eof = False
        while filled < len(buffer):
            n = f.readinto(memoryview(buffer)[filled:])
            if not n:
                at_eof = True
                break
            filled += n
        if at_eof:
            if filled:
                yield np.frombuffer(buffer, dtype=np.uint8, count=filled)
            return
        cut = _last_cut(buffer, filled, whole_lines)
        if cut == 0:  # no separator in the whole buffer: read on, in a bigger one
            bigger = bytearray(2 * len(buffer))
            bigger[:filled] = buffer
            buffer = bigger
            continue
        yield np.frombuffer(buffer, dtype=np.uint8, count=cut)
        rest = filled - cut
        buffer[:rest] = buffer[cut:filled]
        filled = rest


class _FileRange:
    """Bytes start..stop of a binary file, read as text_pieces reads a whole file."""

    def __init__(self, f, start: int, stop: int):
        self.f, self.start, self.stop, self.pos = f, start, stop, 0

    def seek(self, pos: int) -> None:
        self.f.seek(self.start + pos)
        self.pos = pos

    def readinto(self, buffer) -> int:
        left = self.stop - self.start - self.pos
        if left <= 0:
            return 0
        n = self.f.readinto(memoryview(buffer)[:left])
        self.pos += n
        return n


def _range_cuts(f, size: int, parts: int) -> list:
    """Where to cut a file into about `parts` ranges, each just after a separator (so
    that no token is split): [0, cut1, ..., size]."""
    cuts = [0]
    for k in range(1, parts):
        at = max(k * size // parts, cuts[-1])
        f.seek(at)
        cut = size
        while chunk := f.read(1 << 16):
            hits = [i for i in (chunk.find(bytes((c,))) for c in _SEPARATORS) if i >= 0]
            if hits:
                cut = at + min(hits) + 1
                break
            at += len(chunk)
        if cuts[-1] < cut < size:
            cuts.append(cut)
    return cuts + [size]


def _count_file(args: Args, path: str, label: bytes, keep_ids: bool, on_tokens=None):
    """count_state over the file, with each token's entry id written to temporary files
    when `keep_ids`: (state, pruned, [(ids file, ids in it, their ids in state or None)]).

    With -thread N > 1, N ranges of the file are counted at once, each into its own
    table, and the tables are merged in the file's order (merge_counts): the entries,
    their order and counts are those of counting the file from start to end. When one
    range alone, or the merge, passes the pruning limit, the file is counted again from
    its start on one thread, where fastText prunes. `on_tokens(n)` hears the tokens read so
    far, over all ranges.
    """
    files = []
    try:
        size = os.path.getsize(path)
        parts = max(1, args.thread) if size >= PARALLEL_BYTES else 1
        with open_for_reading(path, "input file") as f:
            cuts = _range_cuts(f, size, parts) if parts > 1 else [0, size]
        files = [_temporary_file(args.tmpdir) if keep_ids else None for _ in cuts[1:]]

        seen = [0] * len(files)  # tokens read in each range so far

        def count(k):
            sink = None if files[k] is None else (lambda ids: files[k].write(memoryview(ids)))
            heard = None if on_tokens is None else (lambda n: _hear(seen, k, n, on_tokens))
            with open(path, "rb") as f:
                return count_state(text_pieces(_FileRange(f, cuts[k], cuts[k + 1]), False),
                                   label, MAX_VOCAB_SIZE, sink, heard)

        if len(files) == 1:
            counted = [count(0)]
        else:
            with ThreadPoolExecutor(len(files)) as pool:
                counted = list(pool.map(count, range(len(files))))
        tokens = [int(c[0].totals[2]) for c in counted]  # merging adds to the first's
        state, pruned = counted[0]
        maps = [None]
        for other, other_pruned in counted[1:]:
            arrays, ids, full = merge_counts(state, other, MAX_VOCAB_SIZE)
            state = TokenCounts(*arrays)
            maps.append(ids)
            if full or other_pruned:
                pruned = True
                break
        if pruned and len(files) > 1:  # count again, one range, as fastText prunes
            for file in files:
                if file is not None:
                    file.close()
            files = [_temporary_file(args.tmpdir) if keep_ids else None]
            cuts, seen = [0, size], [0]
            (state, pruned), maps = count(0), [None]
            tokens = [int(state.totals[2])]
        sources = list(zip(files, tokens, maps))
        return state, pruned, sources
    except BaseException:
        for file in files:
            if file is not None:
                file.close()
        raise


def _hear(seen: list, k: int, n: int, on_tokens) -> None:
    """Range k has read n tokens: on_tokens hears the sum over the ranges."""
    seen[k] = n
    on_tokens(sum(seen))


def count_vocabulary(args: Args, path: str, keep_ids: bool = False,
                     on_tokens=None) -> Dictionary:
    """The dictionary of a training file, counted piece by piece (fastText's readFromFile).

    With `keep_ids`, counting also writes each token's entry id to unnamed temporary
    files, from which encode_corpus then encodes the corpus without reading the text again
    (the dictionary's `first_pass`). Not when counting has to prune (the ids change), nor
    when the label prefix starts "</s>" (a newline and a literal `</s>` differ then).
    `on_tokens(n)` hears the tokens read so far, as counting goes.
    """
    check_input(path)
    label = args.label.encode("utf-8")
    keep_ids = keep_ids and not EOS.startswith(label)
    sources = []
    try:
        state, pruned, sources = _count_file(args, path, label, keep_ids, on_tokens)
        n, nbytes, ntokens = (int(x) for x in state.totals[:3])
        entry_bytes, offsets = state.entry_bytes[:nbytes], state.offsets[:n + 1]
        dictionary, order = Dictionary.from_count(entry_bytes, offsets, state.counts[:n],
                                                  state.types[:n], state.hashes[:n], ntokens, args)
        if keep_ids and not pruned:
            for file, _, _ in sources:
                file.flush()
            fours = np.flatnonzero(np.diff(offsets) == len(EOS))
            spelled = entry_bytes[offsets[fours][:, None] + np.arange(len(EOS))]
            eos = fours[np.all(spelled == np.frombuffer(EOS, dtype=np.uint8), axis=1)]
            remap = np.full(n, -1, dtype=np.int32)  # counted entry -> dictionary id
            remap[order] = np.arange(len(order), dtype=np.int32)
            first = FirstPass(entry_bytes.copy(), offsets.copy(), state.hashes[:n].copy(),
                              state.types[:n].copy(), remap, int(eos[0]) if len(eos) else -1)
            dictionary.first_pass = (path, sources, first)
            sources = []
    except OSError as exc:
        if not keep_ids or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise _no_room(args.tmpdir, exc, "the counted token ids") from None
    finally:
        for file, _, _ in sources:
            if file is not None:
                file.close()
    return dictionary


def count_entries(args: Args, path: str, on_tokens=None):
    """Every entry of a training file with its count, before any threshold (words as
    bytes, counts, types, tokens read): what continued training adds to a vocabulary."""
    check_input(path)
    with open_for_reading(path, "input file") as f:
        return count_pieces(text_pieces(f, whole_lines=False), args.label.encode("utf-8"),
                            on_tokens=on_tokens)


def corpus_ids(dictionary: Dictionary, path: str) -> np.ndarray:
    """The in-vocabulary token ids of a training file, in memory (GloVe counts pairs in
    them), read piece by piece: 4 bytes a kept token, not the text besides."""
    ids = np.empty(max(1, dictionary.ntokens), dtype=np.int32)
    size = 0
    with open_for_reading(path, "input file") as text:
        for piece in text_pieces(text, whole_lines=False):
            position = 0
            while position < len(piece) and size < len(ids):
                n, position = dictionary.encode_ids(piece, position, ids[size:])
                size += n
    return ids[:size]  # the unused tail was never touched: it takes no memory


# ------------------------------------------------------------------ the encoded corpus


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def pack_records(feat_offsets, feats, label_offsets, labels, line_tokens):
    """EncodedLines as the records the classifier kernel reads (kernels.RECORD_HEADER),
    and where each record starts."""
    nlines = len(line_tokens)
    out = empty(RECORD_HEADER * nlines + len(feats) + len(labels), np.int32)
    starts = empty(nlines, np.int64)
    p = 0
    for i in range(nlines):
        starts[i] = p
        a, b = feat_offsets[i], feat_offsets[i + 1]
        la, lb = label_offsets[i], label_offsets[i + 1]
        out[p] = min(line_tokens[i], 0x7FFFFFFF)
        out[p + 1] = b - a
        out[p + 2] = lb - la
        p += RECORD_HEADER
        for k in range(a, b):
            out[p] = feats[k]
            p += 1
        for k in range(la, lb):
            out[p] = labels[k]
            p += 1
    return out, starts


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def skip_records(records, count):
    """(position after the first `count` complete records of `records`, records skipped)."""
    pos = 0
    skipped = 0
    while skipped < count and pos + RECORD_HEADER <= len(records):
        end = pos + RECORD_HEADER + records[pos + 1] + records[pos + 2]
        if end > len(records):
            break
        pos = end
        skipped += 1
    return pos, skipped


class EncodedCorpus:
    """A corpus encoded into an unnamed temporary file of int32 values: in-vocabulary token
    ids for word vectors, line records for classifiers. The file has no name from the
    start, so nothing is left behind however the process ends (even killed); `close()`
    frees its disk space. `size` counts int32 values, `nlines` lines (classifiers)."""

    def __init__(self, file, size: int, nlines: int, line_index: np.ndarray, supervised: bool,
                 words: WordTables | None):
        self.file = file
        self.size = size
        self.nlines = nlines
        self.line_index = line_index
        self.supervised = supervised
        self.words = words

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "EncodedCorpus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read_at(self, buffer: np.ndarray, offset: int) -> None:
        """Fill `buffer` with the values from `offset` on (positional reads: threads share
        the file without sharing a file position)."""
        fd = self.file.fileno()
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            position = offset * 4 + done
            if hasattr(os, "preadv"):
                n = os.preadv(fd, [view[done:]], position)
            else:  # pragma: no cover - platforms without preadv
                data = os.pread(fd, len(view) - done, position)
                n = len(data)
                view[done:done + n] = data
            if n == 0:
                raise EmbtkError("the temporary encoded corpus ended early (was it truncated?)")
            done += n

    def thread_start(self, tid: int, nthreads: int) -> int:
        """Where thread `tid` of `nthreads` starts: at token tid/nthreads of the corpus
        (word vectors) or at line tid/nthreads (classifiers), as fastText's threads
        start at that fraction of the file."""
        if not self.supervised:
            return tid * self.size // nthreads
        line = tid * self.nlines // nthreads
        pos = int(self.line_index[line // LINE_INDEX_STRIDE])
        remaining = line % LINE_INDEX_STRIDE
        buffer = np.empty(0, dtype=np.int32)
        while remaining:
            length = min(max(2 * len(buffer), PIECE_BYTES // 4), self.size - pos)
            buffer = np.empty(length, dtype=np.int32)
            self.read_at(buffer, pos)
            moved, skipped = skip_records(buffer, remaining)
            pos += int(moved)
            remaining -= int(skipped)
        return pos

    def reader(self, start: int) -> "PieceReader":
        return PieceReader(self, start, PIECE_BYTES // 4)


class PieceReader:
    """One training thread's window on an EncodedCorpus: the next values from its
    position, in a buffer of bounded size, wrapping round at the end of the corpus."""

    def __init__(self, corpus: EncodedCorpus, start: int, piece_values: int):
        self.corpus = corpus
        self.position = start % max(1, corpus.size)
        self.buffer = np.empty(max(1, min(piece_values, corpus.size)), dtype=np.int32)
        self.length = 0

    def piece(self):
        """(values from the current position, whether they reach the end of the corpus)."""
        remaining = self.corpus.size - self.position
        self.length = min(len(self.buffer), remaining)
        piece = self.buffer[:self.length]
        self.corpus.read_at(piece, self.position)
        return piece, self.length == remaining

    def advance(self, used: int) -> None:
        """Move past the `used` values of the last piece. None used means a line longer
        than the buffer (a classifier's): the buffer grows to hold it."""
        if used == 0:
            if self.length == self.corpus.size - self.position:
                raise EmbtkError("internal error: a piece at the end of the corpus was not used")
            self.buffer = np.empty(2 * len(self.buffer), dtype=np.int32)
            return
        self.position += used
        if self.position >= self.corpus.size:
            self.position = 0


def _no_room(folder: str | None, exc: OSError, what: str = "the encoded corpus") -> EmbtkError:
    where = folder or tempfile.gettempdir()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return EmbtkError(f"no space left in {where} for {what}: free some, or point "
                          "-tmpdir at a folder with more room")
    return EmbtkError(f"cannot write a temporary file in {where}: {exc.strerror or exc}")


def _temporary_file(folder: str | None):
    try:
        return tempfile.TemporaryFile(prefix="embtk-corpus-", dir=folder or None)
    except OSError as exc:
        raise _no_room(folder, exc) from None


def encode_corpus(args: Args, dictionary: Dictionary, path: str) -> EncodedCorpus:
    """Encode the training file into an EncodedCorpus, piece by piece (close it when done,
    or use it as a context manager)."""
    first_pass, dictionary.first_pass = dictionary.first_pass, None
    if first_pass is not None and first_pass[0] != path:
        _close_sources(first_pass[1])
        first_pass = None
    out = _temporary_file(args.tmpdir)
    try:
        if first_pass is not None:
            try:
                encoded = _encode_counted(out, first_pass, dictionary, args)
            finally:
                _close_sources(first_pass[1])
        else:
            with open_for_reading(path, "input file") as text:
                encode = _encode_lines if args.supervised else _encode_words
                encoded = encode(out, text, dictionary, args.thread)
        out.flush()
    except OSError as exc:
        out.close()
        raise _no_room(args.tmpdir, exc) from None
    except BaseException:
        out.close()
        raise
    if encoded.size == 0:
        encoded.close()
        what = "labelled line" if args.supervised else "word that occurs -minCount " \
            f"({args.minCount}) times"
        raise EmbtkError(f"{path} has no {what}")
    return encoded


def _in_order(pieces, encode, nthreads: int, copy: bool = True):
    """encode(piece) for each piece, yielded in the pieces' order, computed on up to
    `nthreads` threads (the encoding kernels release the GIL); at most nthreads + 1
    pieces are in memory at a time. `copy`: the pieces are views of a reused buffer."""
    if nthreads <= 1:
        yield from map(encode, pieces)
        return
    with ThreadPoolExecutor(nthreads) as pool:
        pending = deque()
        try:
            for piece in pieces:
                pending.append(pool.submit(encode, piece.copy() if copy else piece))
                if len(pending) > nthreads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _counted_pieces(sources, eos: int, whole_lines: bool):
    """The entry ids that counting wrote (count_vocabulary), from each of its files in
    turn and translated to the merged entries' ids, in new arrays of about PIECE_BYTES / 4
    ids; with `whole_lines`, each cut just after an EOS id, so that no line is split (a
    longer line is yielded whole)."""
    carry = np.zeros(0, dtype=np.int32)
    total = sum(ntokens for _, ntokens, _ in sources)
    done = 0
    for ids_file, ntokens, ids_map in sources:
        ids_file.seek(0)
        read = 0
        while read < ntokens:
            fresh = np.empty(min(PIECE_BYTES // 4, ntokens - read), dtype=np.int32)
            view = memoryview(fresh).cast("B")
            filled = 0
            while filled < len(view):
                n = ids_file.readinto(view[filled:])
                if not n:
                    raise EmbtkError("the temporary file of counted ids ended early "
                                     "(was it truncated?)")
                filled += n
            read += len(fresh)
            done += len(fresh)
            if ids_map is not None:
                fresh = ids_map[fresh]
            piece = np.concatenate([carry, fresh]) if len(carry) else fresh
            carry = piece[:0]
            if not whole_lines or done == total:
                yield piece
                continue
            ends = np.flatnonzero(piece == eos)
            cut = int(ends[-1]) + 1 if len(ends) else 0
            if cut:
                yield piece[:cut]
            carry = piece[cut:]


def _close_sources(sources) -> None:
    for file, _, _ in sources:
        file.close()


def _encode_counted(out, first_pass, dictionary: Dictionary, args: Args) -> EncodedCorpus:
    """encode_corpus from the entry ids that counting wrote: each counted entry's id in
    the dictionary is known from its sort (FirstPass.remap), so every token is an array
    lookup, not a tokenizer, hash and probe over its bytes again."""
    _, sources, first = first_pass
    if args.supervised:
        def encode(raw):
            return encode_counted_lines(dictionary.tables, first, raw)

        pieces = _counted_pieces(sources, first.eos, whole_lines=True)
        return _write_records(out, _in_order(pieces, encode, args.thread, copy=False))

    def encode_words(raw):
        ids = np.empty(len(raw), dtype=np.int32)
        return ids[:map_ids(raw, first.remap, ids)]

    size = 0
    pieces = _counted_pieces(sources, first.eos, whole_lines=False)
    for ids in _in_order(pieces, encode_words, args.thread, copy=False):
        out.write(memoryview(ids))
        size += len(ids)
    return _word_corpus(out, size, dictionary)


def _encode_words(out, text, dictionary: Dictionary, nthreads: int) -> EncodedCorpus:
    def encode(piece):
        parts, position = [], 0
        while position < len(piece):
            ids = np.empty(len(piece) // 4 + 1024, dtype=np.int32)  # ~5 bytes a token
            n, position = dictionary.encode_ids(piece, position, ids)
            parts.append(ids[:n])
        return parts

    size = 0
    for parts in _in_order(text_pieces(text, whole_lines=False), encode, nthreads):
        for ids in parts:
            out.write(memoryview(ids))
            size += len(ids)
    return _word_corpus(out, size, dictionary)


def _word_corpus(out, size: int, dictionary: Dictionary) -> EncodedCorpus:
    tables = dictionary.tables
    words = WordTables(dictionary.eos_id(), dictionary.discard_probabilities(),
                       tables.subword_offsets, tables.subword_ids)
    return EncodedCorpus(out, size, 0, np.zeros(1, dtype=np.int64), False, words)


def _encode_lines(out, text, dictionary: Dictionary, nthreads: int) -> EncodedCorpus:
    def encode(piece):
        return pack_records(*dictionary.encode(piece))

    return _write_records(out, _in_order(text_pieces(text, whole_lines=True), encode, nthreads))


def _write_records(out, encoded) -> EncodedCorpus:
    """Write (records, their starts) pairs, in order, with the index of every
    LINE_INDEX_STRIDE-th line."""
    size = 0
    nlines = 0
    index = []
    for records, starts in encoded:
        out.write(memoryview(records))
        # the starts of lines LINE_INDEX_STRIDE, 2 * LINE_INDEX_STRIDE... in this piece
        first = -nlines % LINE_INDEX_STRIDE
        index.extend((size + starts[first::LINE_INDEX_STRIDE]).tolist())
        size += len(records)
        nlines += len(starts)
    return EncodedCorpus(out, size, nlines, np.array(index, dtype=np.int64), True, None)
