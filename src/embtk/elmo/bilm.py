"""The biLM as training and perplexity see it: a corpus as token streams, and a window of
both directions through the network, forward and backward.

Text. A corpus is read by embtk's tokenizer (whitespace-separated byte strings, bounded
pieces; see corpus.py), each line becoming <S> w_1 ... w_n </S>, the lines one after the
other: one stream of token ids (int32, in memory: 4 bytes a token). Every distinct word
keeps its own characters for the token encoder, however rare; the softmax's vocabulary is
<S>, </S>, <UNK>, then the words seen -minCount times or more, by decreasing count (the
order the log-uniform sampler needs); a rarer word's target is <UNK>.

Streams and windows (bilm-tf's layout). The stream is cut into B = -batchSize parallel
streams, stream b the b-th contiguous 1/B of it (the last N mod B tokens are left out).
Window k holds positions kT .. kT + T of every stream (T = -bptt; the last window of a
pass may be shorter): the forward LM reads positions kT .. kT + T - 1 and predicts each
next one. The backward LM reads each stream reversed, in windows of the same length from
the stream's end (its own windows: it is not the forward window turned round), and
predicts each previous token. Each direction carries its LSTM states (h and c of every
layer) from one window of a stream to the next; they start at zero at every pass.
Gradients are truncated at window boundaries.

Network over a window (both directions share the token encoder and the softmax):
encoder -> per layer: dropout on the input, the LSTM (lstm.py), + its (dropped-out)
input from the second layer on (use_skip_connections) -> dropout -> softmax. Dropout
masks are drawn anew for every window (inverted scaling by 1 / (1 - dropout)).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..args import Args
from ..corpus import corpus_ids, count_vocabulary
from ..errors import EmbtkError
from .charcnn import (BOS_TOKEN, EOS_TOKEN, TokenEncoder, char_ids, encoder_backward,
                      packed_char_ids)
from .lstm import LstmLayer
from .options import ElmoOptions
from .softmax import add_rows
from .weights import lstm_prefix

BOS, EOS, UNK = 0, 1, 2  # type ids of <S> and </S>; softmax id of <UNK>
MARKERS = (b"<S>", b"</S>", b"<UNK>")


class TokenText(NamedTuple):
    """A corpus read for the biLM: every distinct token (type) with its characters and
    count (types 0 and 1 are <S> and </S>, the words follow by decreasing count), and
    the stream of type ids."""

    chars: np.ndarray        # (types, max_chars) int32
    lengths: np.ndarray      # (types,) int32
    counts: np.ndarray       # (types,) int64
    words: list              # (types,) bytes; MARKERS for the first two
    stream: np.ndarray       # (tokens,) int32
    long_words: int          # distinct words cut to max_chars - 2 bytes


def read_text(path: str, max_chars: int, tmpdir: str = "") -> TokenText:
    counting = Args.for_model("skipgram", minCount=1, minn=0, maxn=0, label="\0",
                              tmpdir=tmpdir, verbose=0, thread=1)
    full = count_vocabulary(counting, path)
    ids = corpus_ids(full, path)
    eos = full.eos_id()
    keep = np.array([i for i in range(full.nwords) if i != eos], dtype=np.int64)
    packed = full.packed_words()
    chars = np.empty((full.nwords, max_chars), dtype=np.int32)
    lengths = np.empty(full.nwords, dtype=np.int32)
    packed_char_ids(packed.word_bytes, packed.offsets, chars, lengths)
    sizes = np.diff(packed.offsets)[keep]
    markers = char_ids([BOS_TOKEN, EOS_TOKEN], max_chars)
    n_lines = int(full.counts[eos]) if eos >= 0 else 0
    type_of = np.full(max(1, full.nwords), -1, dtype=np.int32)
    type_of[keep] = np.arange(2, 2 + len(keep), dtype=np.int32)
    words = full.words
    text = TokenText(np.concatenate([markers[0], chars[keep]]),
                     np.concatenate([markers[1], lengths[keep]]),
                     np.concatenate([[n_lines + 1, n_lines + 1], full.counts[keep]]),
                     [MARKERS[0], MARKERS[1]] + [words[i] for i in keep.tolist()],
                     _with_boundaries(type_of[ids]), int(np.count_nonzero(sizes > max_chars - 2)))
    return text


def _with_boundaries(types: np.ndarray) -> np.ndarray:
    """<S> first, and each line end (-1) made </S> <S>; no <S> after the last line."""
    repeat = np.where(types < 0, 2, 1)
    out = np.empty(1 + int(repeat.sum()), dtype=np.int32)
    out[0] = BOS
    out[1:] = np.repeat(types, repeat)
    ends = np.flatnonzero(out < 0)
    out[ends[0::2]] = EOS
    out[ends[1::2]] = BOS
    return out[:-1] if len(out) > 1 and types[-1] < 0 else out


def softmax_ids(text: TokenText, min_count: int) -> tuple:
    """(softmax id of each type, the softmax's words): <S>, </S>, <UNK>, then the words
    counted min_count times or more."""
    kept = 2 + int(np.count_nonzero(text.counts[2:] >= min_count))
    of_type = np.full(len(text.counts), UNK, dtype=np.int64)
    of_type[:2] = [BOS, EOS]
    of_type[2:kept] = np.arange(3, kept + 1)
    return of_type, list(MARKERS) + text.words[2:kept]


def windows(length: int, bptt: int) -> list:
    """(start, steps) of the windows over streams of `length` tokens."""
    return [(start, min(bptt, length - 1 - start)) for start in range(0, length - 1, bptt)]


class Streams:
    """The B parallel streams of a token stream, forward and reversed (views, no copy)."""

    def __init__(self, stream: np.ndarray, batch: int):
        self.length = len(stream) // batch
        self.forward = stream[:batch * self.length].reshape(batch, self.length)
        self.backward = self.forward[:, ::-1]

    def window(self, start: int, steps: int) -> tuple:
        """(forward, backward) type ids (B, steps + 1) of a window."""
        return (self.forward[:, start:start + steps + 1],
                self.backward[:, start:start + steps + 1])


def zero_states(opt: ElmoOptions, batch: int) -> list:
    """states[direction][layer] = (h (B, P), c (B, C)), zero."""
    return [[(np.zeros((batch, opt.projection_dim), dtype=np.float32),
              np.zeros((batch, opt.cell_dim), dtype=np.float32))
             for _ in range(opt.n_layers)] for _ in (0, 1)]


class WindowPass(NamedTuple):
    """What the forward pass of a window keeps for the backward one."""

    encoder: TokenEncoder
    encoder_saved: list
    inverse: np.ndarray      # (2, T, B): the row of encoded of each input token
    layers: list             # [direction][layer] = (LstmLayer, dropout mask or None, saved)
    top_masks: list          # [direction]: the dropout mask before the softmax, or None
    tops: np.ndarray         # (2, T, B, P): what the softmax reads


class BiLM:
    """The network of a model's arrays (name -> array, weights.expected_arrays' names):
    the forward pass of a window of both directions, and its backward pass. The arrays
    may change between windows (training): each pass reads them as they are."""

    def __init__(self, opt: ElmoOptions, arrays: dict):
        self.opt = opt
        self.arrays = arrays

    def forward(self, text_chars: tuple, fwd: np.ndarray, bwd: np.ndarray, states: list,
                rng=None, dropout: float = 0.0) -> WindowPass:
        """The window's pass: fwd and bwd (B, T + 1) type ids, text_chars (chars,
        lengths) of the types; `states` are read and replaced by the ones at the window's
        end. Dropout (with `rng`) when dropout > 0."""
        opt = self.opt
        steps = fwd.shape[1] - 1
        inputs = np.stack([fwd[:, :steps].T, bwd[:, :steps].T])
        types, inverse = np.unique(inputs, return_inverse=True)
        inverse = inverse.reshape(inputs.shape)
        chars, lengths = text_chars
        encoder = TokenEncoder(opt, self.arrays)
        saved = []
        encoded = encoder.forward(chars[types], lengths[types], saved)
        keep = 1.0 - dropout
        layers, top_masks, tops = [], [], []
        for d in (0, 1):
            x = encoded[inverse[d]]
            kept = []
            for i in range(opt.n_layers):
                lstm = LstmLayer(opt, self.arrays, d, i)
                mask = _mask(rng, x.shape, keep) if dropout > 0 else None
                if mask is not None:
                    x = x * mask
                h, lstm_saved = lstm.forward_window(x, *states[d][i])
                states[d][i] = (h[-1].copy(), lstm_saved[2][-1].copy())
                if i > 0 and opt.skip_connections:
                    h = h + x
                kept.append((lstm, mask, lstm_saved))
                x = h
            mask = _mask(rng, x.shape, keep) if dropout > 0 else None
            layers.append(kept)
            top_masks.append(mask)
            tops.append(x if mask is None else x * mask)
        return WindowPass(encoder, saved, inverse, layers, top_masks, np.stack(tops))

    def backward(self, window: WindowPass, d_tops: np.ndarray, grads: dict) -> None:
        """Add to `grads` the gradient of every weight but the softmax's, for d_tops
        (2, T, B, P) the gradient on window.tops."""
        opt = self.opt
        p = opt.projection_dim
        d_encoded = np.zeros((window.encoder_saved[0].shape[0], p), dtype=np.float32)
        for d in (0, 1):
            dx = d_tops[d] if window.top_masks[d] is None else d_tops[d] * window.top_masks[d]
            for i in reversed(range(opt.n_layers)):
                lstm, mask, lstm_saved = window.layers[d][i]
                d_in = lstm.backward_window(lstm_saved, dx, grads, lstm_prefix(d, i))
                if i > 0 and opt.skip_connections:
                    d_in += dx
                if mask is not None:
                    d_in *= mask
                dx = d_in
            add_rows(d_encoded, window.inverse[d].ravel(), dx.reshape(-1, p))
        encoder_backward(window.encoder, self.arrays, window.encoder_saved, d_encoded, grads)


def _mask(rng, shape, keep: float) -> np.ndarray:
    if rng is None:
        raise EmbtkError("internal error: dropout without a random generator")
    mask = rng.random(shape, dtype=np.float32) < keep
    return mask.astype(np.float32) * np.float32(1.0 / keep)
