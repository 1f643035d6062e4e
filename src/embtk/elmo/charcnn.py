"""ELMo's token encoder: a word's characters to one context-independent vector.

Each token becomes its UTF-8 bytes cut to `max_chars - 2`, between a begin-of-word and an
end-of-word marker, padded to `max_chars` (bilm-tf's and AllenNLP's layout); the sentence
boundary tokens <S> and </S> are one marker between the two. Ids are shifted by one so
that 0 is "no token" (AllenNLP's zero row in front of the stored embedding).

Then: character embedding -> convolutions of each width (valid positions only) -> max over
positions -> + bias -> activation -> highway layers -> projection.

Why the convolution is table look-ups rather than a matrix product: a character has only
262 possible ids, so `embedding[c] @ W[k]` (the contribution of offset k of a filter) takes
262 values per offset, computed once at load (`conv_tables`). A window's pre-activation is
then the sum of `width` rows of those tables, 16 times fewer operations than the product
over the embedding (D = 16), and every window that lies wholly in the padding after the
word has the same value (`pad_window`), computed once. The sums are made in the same
order in both places, so skipping those windows changes no bit of the result.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .options import (BOS_CHAR, BOW_CHAR, CHAR_ROWS, EOS_CHAR, EOW_CHAR, PAD_CHAR,
                      ElmoOptions)

BOS_TOKEN = object()  # the sentence boundaries, as tokens of their own
EOS_TOKEN = object()
RELU, TANH = 0, 1


def char_ids(tokens: list, max_chars: int) -> tuple:
    """(ids (T, max_chars) int32, lengths (T,) int32: the positions before the padding)
    of tokens given as bytes (or BOS_TOKEN / EOS_TOKEN)."""
    ids = np.full((len(tokens), max_chars), PAD_CHAR + 1, dtype=np.int32)
    lengths = np.empty(len(tokens), dtype=np.int32)
    room = max_chars - 2
    for t, token in enumerate(tokens):
        if token is BOS_TOKEN or token is EOS_TOKEN:
            body = np.array([BOS_CHAR if token is BOS_TOKEN else EOS_CHAR], dtype=np.int32)
        else:
            body = np.frombuffer(token[:room], dtype=np.uint8)
        n = len(body)
        ids[t, 0] = BOW_CHAR + 1
        ids[t, 1:n + 1] = body + 1
        ids[t, n + 1] = EOW_CHAR + 1
        lengths[t] = n + 2
    return ids, lengths


class TokenEncoder:
    """The encoder's arrays, as the kernels take them (built once per loaded model)."""

    def __init__(self, opt: ElmoOptions, arrays: dict):
        self.max_chars = opt.max_chars
        self.activation = RELU if opt.activation == "relu" else TANH
        embed = np.zeros((CHAR_ROWS, opt.char_dim), dtype=np.float32)
        embed[1:] = arrays["char_embed"]
        tables, layout, offset, column = [], [], 0, 0
        biases = []
        for i, (width, count) in enumerate(opt.filters):
            w = np.asarray(arrays[f"CNN/W_cnn_{i}"])[0]  # (width, D, count)
            # every offset in one product: (262, D) @ (D, width * count)
            both = embed @ np.ascontiguousarray(w.transpose(1, 0, 2)).reshape(w.shape[1], -1)
            table = both.reshape(CHAR_ROWS, width, count).transpose(1, 0, 2)  # (width, 262, count)
            tables.append(np.ascontiguousarray(table).ravel())
            layout.append((width, count, offset, column))
            offset += table.size
            column += count
            biases.append(np.asarray(arrays[f"CNN/b_cnn_{i}"], dtype=np.float32))
        self.table = np.concatenate(tables)
        self.layout = np.array(layout, dtype=np.int64)
        self.bias = np.concatenate(biases)
        self.pad_window = pad_windows(self.table, self.layout, column)
        # the big matrices stay as loaded (memory maps of a .elmo); the small vectors the
        # kernels read are copied, so that each kernel sees writable arrays only (a
        # read-only array is another numba type, another compilation)
        self.highway = [(arrays[f"CNN_high_{k}/W_carry"], _vector(arrays[f"CNN_high_{k}/b_carry"]),
                         arrays[f"CNN_high_{k}/W_transform"],
                         _vector(arrays[f"CNN_high_{k}/b_transform"]))
                        for k in range(opt.n_highway)]
        self.w_proj = arrays["CNN_proj/W_proj"]
        self.b_proj = arrays["CNN_proj/b_proj"]
        self.n_filters = column

    def __call__(self, tokens: list) -> np.ndarray:
        """The encoder's output (T, projection_dim) float32 for tokens (bytes or markers)."""
        ids, lengths = char_ids(tokens, self.max_chars)
        x = np.empty((len(tokens), self.n_filters), dtype=np.float32)
        conv_max_pool(ids, lengths, self.table, self.layout, self.pad_window, self.bias,
                      self.activation, x)
        if self.highway:
            gate = np.empty_like(x)
            nonlinear = np.empty_like(x)
            for w_carry, b_carry, w_transform, b_transform in self.highway:
                np.matmul(x, w_carry, out=gate)
                np.matmul(x, w_transform, out=nonlinear)
                highway_mix(x, gate, nonlinear, b_carry, b_transform)
        out = x @ self.w_proj
        out += self.b_proj
        return out


def _vector(a) -> np.ndarray:
    return np.array(a, dtype=np.float32)


def pad_windows(table, layout, n_filters) -> np.ndarray:
    """Per filter, the pre-activation of a window wholly in the padding, summed in the
    order conv_max_pool sums (offset 0 first)."""
    out = np.empty(n_filters, dtype=np.float32)
    pad = PAD_CHAR + 1
    for width, count, offset, column in layout.tolist():
        rows = table[offset:offset + width * CHAR_ROWS * count].reshape(width, CHAR_ROWS, count)
        acc = rows[0, pad].copy()
        for k in range(1, width):
            acc += rows[k, pad]
        out[column:column + count] = acc
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def conv_max_pool(ids, lengths, table, layout, pad_window, bias, activation, out):
    """out[t] = activation(max over positions of the convolutions + bias), per filter.

    ids (T, max_chars) int32, lengths (T,) int32, table the concatenated (width, 262,
    count) tables, layout (widths, 4) int64 rows (width, count, table offset, first
    column), pad_window and bias (filters,) float32, activation RELU or TANH, out (T,
    filters) float32. A window starting at or after `lengths[t]` is all padding: its
    value is pad_window's."""
    n_tokens, max_chars = ids.shape
    acc = np.empty(out.shape[1], dtype=np.float32)
    for t in range(n_tokens):
        length = lengths[t]
        for i in range(layout.shape[0]):
            width, count, offset, column = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            positions = max_chars - width + 1
            best = out[t, column:column + count]
            if length < positions:
                best[:] = pad_window[column:column + count]
            else:
                best[:] = -np.inf
            for p in range(min(length, positions)):
                row = offset + ids[t, p] * count
                for n in range(count):
                    acc[n] = table[row + n]
                for k in range(1, width):
                    row = offset + (k * CHAR_ROWS + ids[t, p + k]) * count
                    for n in range(count):
                        acc[n] += table[row + n]
                for n in range(count):
                    if acc[n] > best[n]:
                        best[n] = acc[n]
            for n in range(count):
                v = best[n] + bias[column + n]
                if activation == 0:
                    best[n] = max(v, np.float32(0.0))
                else:
                    best[n] = np.tanh(v)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def highway_mix(x, gate, nonlinear, b_gate, b_nonlinear):
    """x = g * relu(H) + (1 - g) * x in place, g = sigmoid(gate + b_gate) (bilm-tf's
    "carry" weights), H = nonlinear + b_nonlinear; the products were made by BLAS."""
    rows, cols = x.shape
    one = np.float32(1.0)
    for r in range(rows):
        for j in range(cols):
            g = one / (one + np.exp(-(gate[r, j] + b_gate[j])))
            h = max(nonlinear[r, j] + b_nonlinear[j], np.float32(0.0))
            x[r, j] = g * h + (one - g) * x[r, j]
