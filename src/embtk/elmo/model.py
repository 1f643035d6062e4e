"""ElmoModel: a loaded ELMo model, and its contextual vectors for sentences.

    lm = load_elmo("options.json", weights="weights.hdf5")   # or load_elmo("lm.elmo")
    vectors = lm.embed(["The bank of the river .", ["A", "bank", "loan"]])
    vectors[0].shape        # (5, 3, 1024): tokens, layers, forward + backward

Work is split in batches of sentences of similar length (sorted longest first, so that a
batch's padding is small and packing removes it, see lstm.py); each batch is one task of a
thread pool, from its token encoder (each distinct word once) to both directions of the
biLM. Inside a task the products run in BLAS on the task's thread only, so that `thread`
tasks use `thread` cores.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from typing import NamedTuple

from ..corpus import training_input
from ..errors import EmbtkError
from .bilm import BOS, EOS, UNK, BiLM, Streams, read_text, windows, zero_states
from .charcnn import BOS_TOKEN, EOS_TOKEN, TokenEncoder
from .lstm import LstmLayer
from .options import ElmoOptions, read_options
from .softmax import full_loss
from .weights import VOCAB, is_elmo_file, read_elmo, read_hdf5, write_elmo

# A sentence longer than this is refused (the API raises, the command line stops with one
# line): the model was trained on 20-token windows, and the memory of a batch grows with
# its longest sentence (12 KB of output per token for the large model).
MAX_SENTENCE_TOKENS = 10_000
# Sentences are embedded in groups of about this many tokens: each group's distinct
# tokens go through the token encoder once (a word's encoding does not depend on its
# sentence), then its batches through the biLM. The group bounds the memory of the table.
GROUP_TOKENS = 65536
ENCODER_PIECE = 1024  # tokens per task of the encoder


def _groups(batches: list, lengths: np.ndarray):
    group, size = [], 0
    for batch in batches:
        group.append(batch)
        size += int(lengths[batch].sum())
        if size >= GROUP_TOKENS:
            yield group
            group, size = [], 0
    if group:
        yield group


def load_elmo(path, weights=None) -> "ElmoModel":
    """An ELMo model: bilm-tf's `options.json` with `weights=` its `weights.hdf5`, or an
    embtk `.elmo` file (memory-mapped) alone."""
    path = os.fsdecode(path) if not isinstance(path, str) else path
    if weights is not None:
        opt = read_options(path)
        return ElmoModel(opt, read_hdf5(weights, opt))
    if not is_elmo_file(path):
        _explain_not_elmo(path)
    opt, arrays = read_elmo(path)
    return ElmoModel(opt, arrays)


def _explain_not_elmo(path: str):
    """The one-line error for a file given alone that is not a `.elmo`."""
    start = b""
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.stat(path).st_mode):  # not a FIFO: opening it would wait
            with open(path, "rb") as f:
                start = f.read(8)
    if start.lstrip()[:1] == b"{":
        raise EmbtkError(f"{path} looks like an options.json: give its weights too "
                         "(weights= in Python, -weights on the command line)")
    if start[:8] == b"\x89HDF\r\n\x1a\n":
        raise EmbtkError(f"{path} is an HDF5 file: load it with its options.json "
                         "(load_elmo('options.json', weights=...))")
    read_elmo(path)  # missing, unreadable or foreign: its own one-line error


def mix(layers: np.ndarray, weights, gamma: float = 1.0) -> np.ndarray:
    """ELMo's task mix gamma * sum_j softmax(weights)_j * h_j over the layer axis of
    `layers` (tokens, L, dim), e.g. one array of `embed`: (tokens, dim) float32.
    "average" is weights all equal and gamma 1; "top" puts all the weight on the last."""
    layers = np.asarray(layers, dtype=np.float32)
    s = np.asarray(weights, dtype=np.float64).ravel()
    if layers.ndim != 3 or s.shape != (layers.shape[1],):
        raise EmbtkError(f"mix takes layers of shape (tokens, L, dim) and L weights; got "
                         f"{layers.shape} and {s.shape[0]} weights")
    if not np.isfinite(s).all() or not np.isfinite(gamma):
        raise EmbtkError("mix weights and gamma must be finite numbers")
    e = np.exp(s - s.max())
    w = (gamma * e / e.sum()).astype(np.float32)
    return np.einsum("tld,l->td", layers, w).astype(np.float32, copy=False)


class ElmoModel:
    """A loaded ELMo model. `options` (ElmoOptions) gives its sizes; `embed` and
    `sentence_vectors` its vectors; `save` writes a `.elmo` file."""

    def __init__(self, options: ElmoOptions, arrays: dict):
        self.options = options
        self._arrays = arrays
        with _blas_single_thread(), np.errstate(all="ignore"):  # small products: no threads
            self.encoder = TokenEncoder(options, arrays)
        self.layers = [[LstmLayer(options, arrays, d, layer) for layer in range(options.n_layers)]
                       for d in (0, 1)]

    @property
    def dim(self) -> int:
        """The size of one output layer: 2 x projection_dim (forward and backward)."""
        return self.options.output_dim

    @property
    def n_output_layers(self) -> int:
        return self.options.n_layers + 1

    @property
    def arrays(self) -> dict:
        """Every array of the model, by its weights.hdf5 name (read-only when loaded)."""
        return self._arrays

    @property
    def vocabulary(self) -> list:
        """The softmax's words (bytes; <S>, </S>, <UNK> first), [] without a softmax."""
        if VOCAB not in self._arrays:
            return []
        return bytes(self._arrays[VOCAB]).split(b"\n")[:-1]

    def perplexity(self, path, batch_size: int | None = None, bptt: int | None = None,
                   thread: int | None = None) -> "Perplexity":
        """Perplexity of the forward and backward LMs on a text (full softmax), read as
        training reads its corpus (bilm.py: batch_size streams, windows of bptt tokens,
        states carried; by default the model's training values); every position of the
        streams counts, <S> after </S> included, and words outside the vocabulary are
        <UNK>. `mean` is exp of the mean of the two directions' losses."""
        if VOCAB not in self._arrays:
            raise EmbtkError("this model has no softmax (a converted published model): "
                             "perplexity needs one trained by embtk elmo")
        raw = self.options.raw
        batch = _check_int("batch_size", batch_size or raw.get("batch_size", 64))
        bptt = _check_int("bptt", bptt or raw.get("unroll_steps", 20))
        thread = _check_int("thread", (os.cpu_count() or 1) if thread is None else thread)
        with training_input(os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike))
                            else path) as text_path:
            text = read_text(text_path, self.options.max_chars)
        at = {word: i for i, word in enumerate(self.vocabulary)}
        of_type = np.array([BOS, EOS] + [at.get(w, UNK) for w in text.words[2:]],
                           dtype=np.int64)
        batch = max(1, min(batch, len(text.stream) // 2))
        streams = Streams(text.stream, batch)
        if streams.length < 2:
            raise EmbtkError(f"{path} has too few tokens to measure a perplexity")
        bilm = BiLM(self.options, self._arrays)
        w, b = self._arrays["softmax/W"], self._arrays["softmax/b"]
        plan = windows(streams.length, bptt)

        def piece_losses(piece: slice) -> np.ndarray:
            """The summed losses of both directions over streams `piece`, every window."""
            losses = np.zeros(2)
            states = zero_states(self.options, piece.stop - piece.start)
            with _blas_single_thread(), np.errstate(all="ignore"):
                for start, steps in plan:
                    fwd, bwd = (ids[piece] for ids in streams.window(start, steps))
                    window = bilm.forward((text.chars, text.lengths), fwd, bwd, states)
                    for d, ids in enumerate((fwd, bwd)):
                        targets = of_type[ids[:, 1:].T].ravel()
                        losses[d] += full_loss(window.tops[d].reshape(len(targets), -1),
                                               targets, w, b)
            return losses

        # the streams in `thread` pieces, each on a thread of its own (single-threaded BLAS)
        bounds = np.linspace(0, batch, min(thread, batch) + 1).astype(int)
        with _pool(thread) as pool:
            losses = sum(pool.map(piece_losses, [slice(int(a), int(z)) for a, z in
                                                 zip(bounds[:-1], bounds[1:])]))
        count = batch * sum(steps for _, steps in plan)
        forward, backward = np.exp(losses / count)
        return Perplexity(float(forward), float(backward), float(np.exp(losses.mean() / count)),
                          count)

    def save(self, path) -> None:
        """Write the model as an embtk `.elmo` file (atomically)."""
        write_elmo(path, self.options, self._arrays)

    def embed(self, sentences, layer=None, thread: int | None = None, batch_size: int = 64,
              verbose: int = 1) -> list:
        """One float32 array per sentence: (tokens, L + 1, dim) with every layer, or
        (tokens, dim) for `layer` = "average", "top" or a layer's number.

        A sentence is a str (split on whitespace) or a list of tokens (str or bytes;
        str is encoded as UTF-8, bytes go to the character encoder as they are); an empty
        one gives an array of 0 tokens. `thread`: threads (default: one per core);
        `batch_size`: sentences per batch; `verbose=2` shows a progress bar."""
        layer = self._check_layer(layer)
        thread = _check_int("thread", (os.cpu_count() or 1) if thread is None else thread)
        batch_size = _check_int("batch_size", batch_size)
        tokens = [_tokens(s, i) for i, s in enumerate(_sentence_list(sentences))]
        results = [None] * len(tokens)
        lengths = np.array([len(t) for t in tokens], dtype=np.int64)
        for i in np.flatnonzero(lengths == 0).tolist():
            results[i] = self._empty(layer)
        order = np.argsort(-lengths, kind="stable")
        order = order[:np.count_nonzero(lengths)]
        batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        bar = _progress(verbose, int(lengths.sum()))
        try:
            with _pool(thread) as pool:
                for group in _groups(batches, lengths):
                    vocab, encoded = self._encode_tokens(pool, [tokens[i] for b in group for i in b])
                    work = [[tokens[i] for i in batch] for batch in group]
                    for batch, arrays in zip(group, pool.map(
                            lambda ts: self._embed_batch(ts, layer, vocab, encoded), work)):
                        for i, a in zip(batch, arrays):
                            results[i] = a
                        if bar is not None:
                            bar.update(sum(len(tokens[i]) for i in batch))
        finally:
            if bar is not None:
                bar.close()
        return results

    def sentence_vectors(self, sentences, thread: int | None = None, batch_size: int = 64,
                         verbose: int = 1) -> np.ndarray:
        """(sentences, dim) float32: the mean over each sentence's tokens of the average
        layer (zeros for an empty sentence)."""
        vectors = self.embed(sentences, layer="average", thread=thread, batch_size=batch_size,
                             verbose=verbose)
        out = np.zeros((len(vectors), self.dim), dtype=np.float32)
        for i, v in enumerate(vectors):
            if len(v):
                out[i] = v.mean(axis=0, dtype=np.float64)
        return out

    # ------------------------------------------------------------------ internals
    def _check_layer(self, layer):
        if layer is None or layer in ("average", "top"):
            return layer
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool) \
                and 0 <= layer <= self.options.n_layers:
            return int(layer)
        raise EmbtkError(f"layer must be None (all), 'average', 'top' or 0 to "
                         f"{self.options.n_layers}, got {layer!r}")

    def _empty(self, layer) -> np.ndarray:
        shape = (0, self.n_output_layers, self.dim) if layer is None else (0, self.dim)
        return np.zeros(shape, dtype=np.float32)

    def _encode_tokens(self, pool, sentences: list) -> tuple:
        """Each distinct token of `sentences` (and <S>, </S>) once through the token
        encoder, in pieces shared by the threads: ({token: row}, (rows, P) float32)."""
        vocab = {BOS_TOKEN: 0, EOS_TOKEN: 1}
        for sentence in sentences:
            for token in sentence:
                vocab.setdefault(token, len(vocab))
        words = list(vocab)
        pieces = [words[i:i + ENCODER_PIECE] for i in range(0, len(words), ENCODER_PIECE)]
        return vocab, np.concatenate(list(pool.map(self._encode_piece, pieces)))

    # The weights of a .elmo are memory-mapped, not read at load: a file damaged inside
    # its values (a NaN, an overflow) gives NaN vectors, and numpy's warnings about them
    # are silenced (per thread: numpy's error state does not pass to the pool's threads).
    def _encode_piece(self, words: list) -> np.ndarray:
        with _blas_single_thread(), np.errstate(all="ignore"):
            return self.encoder(words)

    def _embed_batch(self, batch: list, layer, vocab: dict, encoded: np.ndarray) -> list:
        """The vectors of sentences (lists of bytes), longest first."""
        with _blas_single_thread(), np.errstate(all="ignore"):
            return self._embed_packed(batch, layer, vocab, encoded)

    def _embed_packed(self, batch: list, layer, ids: dict, encoded: np.ndarray) -> list:
        p = self.options.projection_dim
        lengths = np.array([len(s) + 2 for s in batch], dtype=np.int64)
        steps = int(lengths[0])
        counts = (lengths[None, :] > np.arange(steps)[:, None]).sum(axis=1)
        offsets = np.zeros(steps + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        rows = int(offsets[-1])
        # forward[b][t] and backward[b][t]: the packed row of sentence b's position t
        token_ids = np.empty(rows, dtype=np.int64)
        forward, backward = [], []
        for b, sentence in enumerate(batch):
            n = int(lengths[b])
            at = offsets[:n] + b
            forward.append(at)
            backward.append(at[::-1])
            token_ids[at] = [0] + [ids[t] for t in sentence] + [1]
        # the backward direction's input: each sentence reversed, packed the same way
        reverse = np.empty(rows, dtype=np.int64)
        for b in range(len(batch)):
            reverse[forward[b]] = token_ids[backward[b]]
        # layer 0 of both directions is the encoder's output: [x; x] once unpacked
        outputs = [[encoded[token_ids]], [encoded[reverse]]]
        for d in (0, 1):
            x = outputs[d][0]
            for i, lstm in enumerate(self.layers[d]):
                h = lstm.run(x, counts, offsets)
                if i > 0 and self.options.skip_connections:
                    h += x
                outputs[d].append(h)
                x = h
        top = self.options.n_layers
        result = []
        for b, sentence in enumerate(batch):
            f, r = forward[b][1:-1], backward[b][1:-1]  # without <S> and </S>
            rows_of = [(outputs[0][j][f], outputs[1][j][r]) for j in range(top + 1)
                       if layer in (None, "average", j) or (layer == "top" and j == top)]
            if layer is None:
                out = np.empty((len(sentence), top + 1, 2 * p), dtype=np.float32)
                for j, (fw, bw) in enumerate(rows_of):
                    out[:, j, :p], out[:, j, p:] = fw, bw
            elif layer == "average":
                out = np.zeros((len(sentence), 2 * p), dtype=np.float32)
                for fw, bw in rows_of:
                    out[:, :p] += fw
                    out[:, p:] += bw
                out /= np.float32(top + 1)
            else:
                (fw, bw), = rows_of
                out = np.concatenate([fw, bw], axis=1)
            result.append(out)
        return result


class Perplexity(NamedTuple):
    """Held-out perplexities: forward and backward LMs, exp of their mean loss, and the
    tokens each was measured on."""

    forward: float
    backward: float
    mean: float
    tokens: int

    def dict(self) -> dict:
        return self._asdict()

    def to_text(self) -> str:
        return (f"forward perplexity {self.forward:.2f}\nbackward perplexity "
                f"{self.backward:.2f}\nmean perplexity {self.mean:.2f}\n"
                f"tokens {self.tokens}\n")


def _sentence_list(sentences) -> list:
    if isinstance(sentences, (str, bytes)):
        raise TypeError("sentences must be a list of sentences (str or lists of tokens), "
                        "not a single str: wrap it in a list")
    try:
        return list(sentences)
    except TypeError:
        raise TypeError(f"sentences must be an iterable of sentences, not "
                        f"{type(sentences).__name__}") from None


def _tokens(sentence, index: int) -> list:
    if isinstance(sentence, (str, bytes)):
        tokens = sentence.split()
    elif isinstance(sentence, (list, tuple)):
        tokens = list(sentence)
    else:
        raise TypeError(f"sentence {index} must be a str or a list of tokens, not "
                        f"{type(sentence).__name__}")
    out = []
    for token in tokens:
        if isinstance(token, str):
            token = token.encode("utf-8", "surrogateescape")
        elif not isinstance(token, bytes):
            raise TypeError(f"sentence {index}: tokens must be str or bytes, not "
                            f"{type(token).__name__}")
        if not token:
            raise EmbtkError(f"sentence {index} has an empty token")
        out.append(token)
    if len(out) > MAX_SENTENCE_TOKENS:
        raise EmbtkError(f"sentence {index} has {len(out):,} tokens, more than the limit of "
                         f"{MAX_SENTENCE_TOKENS:,}: split it into shorter sentences")
    return out


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise EmbtkError(f"{name} must be a positive integer, got {value}")
    return int(value)


def _progress(verbose: int, total: int):
    if verbose < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="tok", unit_scale=True, desc="embed", leave=False)


@contextlib.contextmanager
def _pool(threads: int):
    """A thread pool that, when the caller stops early (an error, Ctrl-C), drops the
    batches not yet started instead of computing them all before returning."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="embtk-elmo")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# ------------------------------------------------------------------ BLAS threads
_blas_lock = threading.Lock()
_blas_setters = None


def _find_blas_setters() -> list:
    """OpenBLAS's (and MKL's) per-thread thread-count setters of the libraries this process
    has loaded (numpy's BLAS among them); empty where there is none or no /proc."""
    setters = []
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if ".so" in line and "/" in line}
    except OSError:
        return setters
    for path in sorted(paths):
        name = os.path.basename(path)
        if "openblas" not in name and "mkl_rt" not in name:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in ("openblas_set_num_threads_local", "MKL_Set_Num_Threads_Local"):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                setters.append(fn)
    return setters


@contextlib.contextmanager
def blas_threads(threads: int):
    """BLAS calls made by this thread use `threads` threads, while inside."""
    global _blas_setters
    with _blas_lock:
        if _blas_setters is None:
            _blas_setters = _find_blas_setters()
    previous = [fn(threads) for fn in _blas_setters]
    try:
        yield
    finally:
        for fn, n in zip(_blas_setters, previous):
            fn(n)


def _blas_single_thread():
    """BLAS calls made by this thread run on this thread only, while inside."""
    return blas_threads(1)
