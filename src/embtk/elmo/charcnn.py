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

from collections import namedtuple

import numba as nb
import numpy as np

from ..jitting import callee
from .options import (BOS_CHAR, BOW_CHAR, CHAR_ROWS, EOS_CHAR, EOW_CHAR, PAD_CHAR,
                      ElmoOptions)

BOS_TOKEN = object()  # the sentence boundaries, as tokens of their own
EOS_TOKEN = object()
RELU, TANH = 0, 1
# The convolution as conv_max_pool reads it: `table` the concatenated (width, 262, count)
# tables, `layout` (widths, 4) int64 rows (width, count, table offset, first column),
# `pad_window` and `bias` (filters,) float32.
ConvTables = namedtuple("ConvTables", "table layout pad_window bias")


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
        self.embed = embed
        table = np.concatenate(tables)
        layout = np.array(layout, dtype=np.int64)
        self.conv = ConvTables(table, layout, pad_windows(table, layout, column),
                               np.concatenate(biases))
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
        return self.forward(ids, lengths)

    def forward(self, ids: np.ndarray, lengths: np.ndarray, saved: list | None = None):
        """The output for char ids (T, max_chars) int32 and lengths (T,); `saved`, a list,
        receives what encoder_backward needs (training)."""
        x = np.empty((len(ids), self.n_filters), dtype=np.float32)
        argmax = np.empty(x.shape, dtype=np.int32)
        conv_max_pool(ids, lengths, self.conv, self.activation, x, argmax)
        if saved is not None:
            saved += [ids, argmax, x.copy()]
        if self.highway:
            gate = np.empty_like(x)
            nonlinear = np.empty_like(x)
            for w_carry, b_carry, w_transform, b_transform in self.highway:
                np.matmul(x, w_carry, out=gate)
                np.matmul(x, w_transform, out=nonlinear)
                if saved is not None:
                    saved.append((x.copy(), gate.copy(), nonlinear.copy()))
                highway_mix(x, gate, nonlinear, b_carry, b_transform)
        if saved is not None:
            saved.append(x)
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
def conv_max_pool(ids, lengths, conv, activation, out, argmax):
    """out[t] = activation(max over positions of the convolutions + bias), per filter.

    ids (T, max_chars) int32, lengths (T,) int32, conv a ConvTables, activation RELU or
    TANH, out (T, filters) float32, argmax (T, filters) int32 receives the position of
    the max (what the backward pass follows). A window starting at or after
    `lengths[t]` is all padding: its value is pad_window's, its position lengths[t]."""
    table, layout, pad_window, bias = conv
    n_tokens, max_chars = ids.shape
    acc = np.empty(out.shape[1], dtype=np.float32)
    for t in range(n_tokens):
        length = lengths[t]
        for i in range(layout.shape[0]):
            width, count, offset, column = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            positions = max_chars - width + 1
            best = out[t, column:column + count]
            where = argmax[t, column:column + count]
            if length < positions:
                best[:] = pad_window[column:column + count]
                where[:] = length
            else:
                best[:] = -np.inf
                where[:] = 0
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
                        where[n] = p
            for n in range(count):
                v = best[n] + bias[column + n]
                if activation == 0:
                    best[n] = max(v, np.float32(0.0))
                else:
                    best[n] = np.tanh(v)


@callee(inline="always")
def _highway_parts(gate, nonlinear, b_gate, b_nonlinear, r, j):
    """The carry gate g = sigmoid(gate + b_gate) and the transform relu(nonlinear +
    b_nonlinear) at [r, j]: what highway_mix and highway_backward both recompute."""
    one = np.float32(1.0)
    g = one / (one + np.exp(-(gate[r, j] + b_gate[j])))
    return g, max(nonlinear[r, j] + b_nonlinear[j], np.float32(0.0))


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def highway_mix(x, gate, nonlinear, b_gate, b_nonlinear):
    """x = g * relu(H) + (1 - g) * x in place, g = sigmoid(gate + b_gate) (bilm-tf's
    "carry" weights), H = nonlinear + b_nonlinear; the products were made by BLAS."""
    rows, cols = x.shape
    one = np.float32(1.0)
    for r in range(rows):
        for j in range(cols):
            g, h = _highway_parts(gate, nonlinear, b_gate, b_nonlinear, r, j)
            x[r, j] = g * h + (one - g) * x[r, j]


# ------------------------------------------------------------------ backward (training)
@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def conv_backward(ids, argmax, layout, out, dout, activation, dtable, dbias):
    """The gradient of conv_max_pool: dout (T, filters) on its output `out` goes through
    the activation to the one window each filter took (`argmax`), and from there to the
    table rows of that window's characters: dtable (same layout as ConvTables.table) and
    dbias (filters,) are added to."""
    n_tokens = ids.shape[0]
    one = np.float32(1.0)
    for t in range(n_tokens):
        for i in range(layout.shape[0]):
            width, count, offset, column = layout[i, 0], layout[i, 1], layout[i, 2], layout[i, 3]
            for n in range(count):
                y = out[t, column + n]
                if activation == 0:
                    g = dout[t, column + n] if y > 0 else np.float32(0.0)
                else:
                    g = dout[t, column + n] * (one - y * y)
                if g == 0:
                    continue
                dbias[column + n] += g
                p = argmax[t, column + n]
                for k in range(width):
                    dtable[offset + (k * CHAR_ROWS + ids[t, p + k]) * count + n] += g


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def highway_backward(x, gate, nonlinear, b_gate, b_nonlinear, dout, d_gate, d_nonlinear):
    """The gradient of highway_mix, x its input: dout (the gradient on its output) becomes
    the part of the input's gradient that passes by the carry, (1 - g) * dout; d_gate and
    d_nonlinear receive the gradients of the two pre-activations (their products with the
    weights are BLAS's)."""
    rows, cols = x.shape
    one = np.float32(1.0)
    for r in range(rows):
        for j in range(cols):
            g, h = _highway_parts(gate, nonlinear, b_gate, b_nonlinear, r, j)
            d = dout[r, j]
            d_gate[r, j] = d * (h - x[r, j]) * g * (one - g)
            d_nonlinear[r, j] = d * g if h > 0 else np.float32(0.0)
            dout[r, j] = d * (one - g)


def encoder_backward(encoder: TokenEncoder, arrays: dict, saved: list, dout: np.ndarray,
                     grads: dict) -> None:
    """Add to `grads` (name -> array, the names of weights.expected_arrays) the gradient of
    the encoder's weights for dout (T, projection_dim) on the output of
    `encoder.forward(..., saved)`; `arrays` are the weights the encoder was built from."""
    ids, argmax, conv_out = saved[0], saved[1], saved[2]
    x = saved[-1]
    grads["CNN_proj/W_proj"] += x.T @ dout
    grads["CNN_proj/b_proj"] += dout.sum(axis=0)
    dx = dout @ np.asarray(encoder.w_proj).T
    d_gate = np.empty_like(dx)
    d_nonlinear = np.empty_like(dx)
    for k in reversed(range(len(encoder.highway))):
        w_carry, b_carry, w_transform, b_transform = encoder.highway[k]
        x_in, gate, nonlinear = saved[3 + k]
        highway_backward(x_in, gate, nonlinear, b_carry, b_transform, dx, d_gate, d_nonlinear)
        grads[f"CNN_high_{k}/W_carry"] += x_in.T @ d_gate
        grads[f"CNN_high_{k}/b_carry"] += d_gate.sum(axis=0)
        grads[f"CNN_high_{k}/W_transform"] += x_in.T @ d_nonlinear
        grads[f"CNN_high_{k}/b_transform"] += d_nonlinear.sum(axis=0)
        dx += d_gate @ np.asarray(w_carry).T
        dx += d_nonlinear @ np.asarray(w_transform).T
    conv = encoder.conv
    dtable = np.zeros_like(conv.table)
    dbias = np.zeros_like(conv.bias)
    conv_backward(ids, argmax, conv.layout, conv_out, dx, encoder.activation, dtable, dbias)
    d_embed = np.zeros_like(encoder.embed)
    column = 0
    for i, (width, count, offset, _) in enumerate(conv.layout.tolist()):
        dt = dtable[offset:offset + width * CHAR_ROWS * count].reshape(width, CHAR_ROWS, count)
        w = np.asarray(arrays[f"CNN/W_cnn_{i}"])[0]  # (width, D, count)
        grads[f"CNN/W_cnn_{i}"][0] += np.matmul(encoder.embed.T[None], dt)
        d_embed += np.matmul(dt, w.transpose(0, 2, 1)).sum(axis=0)
        grads[f"CNN/b_cnn_{i}"] += dbias[column:column + count]
        column += count
    grads["char_embed"] += d_embed[1:]


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def packed_char_ids(word_bytes, offsets, ids, lengths):
    """char_ids of words packed in one byte array (word i is word_bytes[offsets[i]:
    offsets[i + 1]]), into ids (words, max_chars) int32 and lengths (words,) int32."""
    max_chars = ids.shape[1]
    room = max_chars - 2
    for i in range(ids.shape[0]):
        start = offsets[i]
        n = min(offsets[i + 1] - start, room)
        ids[i, 0] = BOW_CHAR + 1
        for k in range(n):
            ids[i, k + 1] = word_bytes[start + k] + 1
        ids[i, n + 1] = EOW_CHAR + 1
        for k in range(n + 2, max_chars):
            ids[i, k] = PAD_CHAR + 1
        lengths[i] = n + 2
