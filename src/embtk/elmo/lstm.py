"""ELMo's biLM: LSTM layers with a projection after the cell, run over packed batches.

One layer of one direction, per step (TensorFlow's LSTMCell, as bilm-tf trained it):

    z = x_t @ W_x + h_{t-1} @ W_h + B          columns: i, j, f, o (4 x C)
    c_t = sigmoid(f + 1) * c_{t-1} + sigmoid(i) * tanh(j)     (forget bias 1, not in B)
    c_t = clip(c_t, +-cell_clip)
    h_t = clip((sigmoid(o) * tanh(c_t)) @ W_P, +-proj_clip)

with zero c and h at the start of every sentence (bilm-tf's use; AllenNLP's `Elmo`
module instead carries the states of a batch into the next one). The backward direction
is the same on each sentence reversed.

Batches are packed in time-major order, as PyTorch's PackedSequence: the sentences of a
batch sorted longest first, row `offsets[t] + b` holding step t of sentence b, so that the
sentences still running at step t are the first `counts[t]` rows, and the previous step's
outputs of those sentences are the first `counts[t]` rows of step t - 1. No padding is
computed, and every product is one BLAS call on contiguous rows: the input projection
x @ W_x for many steps at once (it does not depend on h), then per step h @ W_h and
m @ W_P. Only the gates are a numba kernel.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..jitting import callee
from .options import ElmoOptions
from .weights import lstm_prefix

NO_CLIP = 3.0e38
# The input projection is made for as many steps as give about this many rows: enough for
# BLAS to run at full speed, few enough that its result (rows x 4C floats) stays small.
CHUNK_ROWS = 512


class LstmLayer:
    """One layer of one direction: W_0 split into its input and recurrent rows (views)."""

    def __init__(self, opt: ElmoOptions, arrays: dict, direction: int, layer: int):
        prefix = lstm_prefix(direction, layer)
        w = arrays[f"{prefix}/W_0"]
        p = opt.projection_dim
        self.w_x, self.w_h = w[:p], w[p:]
        self.bias = np.array(arrays[f"{prefix}/B"], dtype=np.float32)
        self.bias[2 * opt.cell_dim:3 * opt.cell_dim] += np.float32(1.0)  # the forget bias
        self.w_p = arrays[f"{prefix}/W_P_0"]
        self.cell_clip = NO_CLIP if opt.cell_clip is None else float(opt.cell_clip)
        self.proj_clip = None if opt.proj_clip is None else float(opt.proj_clip)
        self.cell_dim = opt.cell_dim

    def run(self, xin: np.ndarray, counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The layer's outputs (rows, P) for packed inputs xin (rows, P)."""
        rows, steps = xin.shape[0], len(counts)
        out = np.empty((rows, self.w_p.shape[1]), dtype=np.float32)
        if not rows:
            return out
        first = int(counts[0])
        c = np.zeros((first, self.cell_dim), dtype=np.float32)
        m = np.empty((first, self.cell_dim), dtype=np.float32)
        z = np.empty((first, 4 * self.cell_dim), dtype=np.float32)
        xw = np.empty((max(first, min(rows, CHUNK_ROWS)), 4 * self.cell_dim), dtype=np.float32)
        t = 0
        while t < steps:
            end = t + 1
            while end < steps and offsets[end + 1] - offsets[t] <= CHUNK_ROWS:
                end += 1
            r0 = int(offsets[t])
            np.matmul(xin[r0:offsets[end]], self.w_x, out=xw[:offsets[end] - r0])
            for s in range(t, end):
                n, at = int(counts[s]), int(offsets[s])
                if s == 0:
                    z[:n] = 0
                else:
                    previous = int(offsets[s - 1])
                    np.matmul(out[previous:previous + n], self.w_h, out=z[:n])
                lstm_cell(z[:n], xw[at - r0:at - r0 + n], self.bias, c[:n], m[:n],
                          self.cell_clip)
                step_out = out[at:at + n]
                np.matmul(m[:n], self.w_p, out=step_out)
                if self.proj_clip is not None:
                    np.clip(step_out, -self.proj_clip, self.proj_clip, out=step_out)
            t = end
        return out


# exp(u) in float32 as loops the compiler vectorizes (math.exp and np.tanh are a call per
# value: they took half of the small model's time). u = k ln2 + r with |r| <= ln2 / 2, a
# degree-6 Taylor polynomial of exp(r) (relative error below 3e-8), times 2^k made from
# its bits (k + 127 in the exponent field): float32's own rounding dominates. u is kept
# in [-87, 87], where 2^k is a normal float32 and exp cannot overflow.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)       # exact in a few bits: k * _LN2_HI is exact
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_LIMIT = np.float32(87.0)


@callee(inline="always")
def _exp_parts(u, e, bits, n):
    """e[j] * (bits[j] as float32) = exp(u[j]) for j < n, in two vectorized loops."""
    for j in range(n):
        x = min(max(u[j], -_EXP_LIMIT), _EXP_LIMIT)
        # round to nearest by truncating a positive number: math.floor is a call
        ki = np.int32(x * _LOG2E + np.float32(128.5)) - np.int32(128)
        k = np.float32(ki)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        e[j] = p * r + np.float32(1.0)
        bits[j] = (ki + np.int32(127)) << np.int32(23)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def lstm_cell(z, xw, bias, c, m, cell_clip):
    """The gates of one step, for n rows: z (n, 4C) = h @ W_h, xw (n, 4C) = x @ W_x, bias
    (4C,) with TensorFlow's forget bias (+1) already added to the f columns, c (n, C) the
    cell state (updated in place), m (n, C) receives o * tanh(c).

    sigmoid(a) = 1 / (1 + exp(-a)) and tanh(a) = 2 / (1 + exp(-2a)) - 1, so each row is
    one vectorized exp over its 4C gate values and one over its C cells."""
    n, four = z.shape
    cells = four // 4
    one, two = np.float32(1.0), np.float32(2.0)
    u = np.empty(four, dtype=np.float32)
    e = np.empty(four, dtype=np.float32)
    bits = np.empty(four, dtype=np.int32)
    scale = bits.view(np.float32)
    clip = np.float32(cell_clip)
    for r in range(n):
        for j in range(four):
            u[j] = -(z[r, j] + xw[r, j] + bias[j])
        for j in range(cells, 2 * cells):
            u[j] *= two  # the candidate j: tanh
        _exp_parts(u, e, bits, four)
        for j in range(four):
            e[j] = one / (one + e[j] * scale[j])
        for j in range(cells):
            g = two * e[cells + j] - one
            cell = e[2 * cells + j] * c[r, j] + e[j] * g
            cell = min(max(cell, -clip), clip)
            c[r, j] = cell
            u[j] = -two * cell
        _exp_parts(u, e, bits, cells)
        for j in range(cells):
            m[r, j] = e[3 * cells + j] * (two / (one + e[j] * scale[j]) - one)
