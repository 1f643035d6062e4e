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

from ..jitting import callee, empty
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
        gates = np.empty_like(z)
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
                lstm_cell(z[:n], xw[at - r0:at - r0 + n], self.bias, c[:n], c[:n], m[:n],
                          gates[:n], self.cell_clip)
                step_out = out[at:at + n]
                np.matmul(m[:n], self.w_p, out=step_out)
                if self.proj_clip is not None:
                    np.clip(step_out, -self.proj_clip, self.proj_clip, out=step_out)
            t = end
        return out


    # ------------------------------------------------------------ training
    def forward_window(self, x: np.ndarray, h0: np.ndarray, c0: np.ndarray) -> tuple:
        """Training's forward pass over a window: x (T, B, P) the inputs of B streams
        for T steps, h0 (B, P) and c0 (B, C) the states the previous window left.
        Returns (outputs (T, B, P), what backward_window needs); the last step's h and
        c are `outputs[-1]` and `saved[2][-1]`."""
        steps, batch, p = x.shape
        cells = self.cell_dim
        xw = (x.reshape(steps * batch, p) @ self.w_x).reshape(steps, batch, 4 * cells)
        cs = np.empty((steps + 1, batch, cells), dtype=np.float32)
        cs[0] = c0
        ms = np.empty((steps, batch, cells), dtype=np.float32)
        gates = np.empty((steps, batch, 4 * cells), dtype=np.float32)
        hs = np.empty((steps, batch, self.w_p.shape[1]), dtype=np.float32)
        z = np.empty((batch, 4 * cells), dtype=np.float32)
        h = h0
        for t in range(steps):
            np.matmul(h, self.w_h, out=z)
            lstm_cell(z, xw[t], self.bias, cs[t], cs[t + 1], ms[t], gates[t], self.cell_clip)
            np.matmul(ms[t], self.w_p, out=hs[t])
            if self.proj_clip is not None:
                np.clip(hs[t], -self.proj_clip, self.proj_clip, out=hs[t])
            h = hs[t]
        return hs, (x, h0, cs, ms, gates, hs)

    def backward_window(self, saved: tuple, d_out: np.ndarray, grads: dict,
                        prefix: str) -> np.ndarray:
        """Back-propagation through the window of forward_window (truncated: nothing
        comes back from the next window, nothing goes to the previous one). d_out (T, B,
        P) is the gradient on the outputs; the weights' gradients are added to
        grads[prefix + "/W_0"], "/B", "/W_P_0"; returns the inputs' gradient (T, B, P)."""
        x, h0, cs, ms, gates, hs = saved
        steps, batch, p = x.shape
        cells = self.cell_dim
        dz = np.empty((steps, batch, 4 * cells), dtype=np.float32)
        dh_kept = np.empty_like(hs)
        dc = np.zeros((batch, cells), dtype=np.float32)
        dh_next = np.zeros((batch, p), dtype=np.float32)
        dm = np.empty((batch, cells), dtype=np.float32)
        w_p_t, w_h_t = self.w_p.T, self.w_h.T
        for t in range(steps - 1, -1, -1):
            dh = dh_kept[t]
            np.add(d_out[t], dh_next, out=dh)
            if self.proj_clip is not None:
                dh *= np.abs(hs[t]) < self.proj_clip
            np.matmul(dh, w_p_t, out=dm)
            lstm_cell_backward(dm, dc, gates[t], cs[t + 1], cs[t], dz[t], self.cell_clip)
            np.matmul(dz[t], w_h_t, out=dh_next)
        flat_dz = dz.reshape(steps * batch, 4 * cells)
        w = grads[prefix + "/W_0"]
        w[:p] += x.reshape(steps * batch, p).T @ flat_dz
        w[p:] += h0.T @ dz[0]
        if steps > 1:
            w[p:] += hs[:-1].reshape((steps - 1) * batch, p).T @ flat_dz[batch:]
        grads[prefix + "/B"] += flat_dz.sum(axis=0)
        grads[prefix + "/W_P_0"] += ms.reshape(steps * batch, cells).T @ \
            dh_kept.reshape(steps * batch, p)
        return (flat_dz @ self.w_x.T).reshape(steps, batch, p)


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


@callee(inline="always")
def exp_scratch(n):
    """_exp_parts's buffers for n values: e, the int32 bits of 2**k, and those bits seen
    as float32 (exp(u[j]) = e[j] * power[j])."""
    e = empty(n, np.float32)
    bits = empty(n, np.int32)
    return e, bits, bits.view(np.float32)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def lstm_cell(z, xw, bias, c_prev, c, m, gates, cell_clip):
    """The gates of one step, for n rows: z (n, 4C) = h @ W_h, xw (n, 4C) = x @ W_x, bias
    (4C,) with TensorFlow's forget bias (+1) already added to the f columns, c_prev (n, C)
    the cell state before, c (n, C) receives it after (c may be c_prev: updated in place),
    m (n, C) receives o * tanh(c), gates (n, 4C) the activations sigmoid(i), tanh(j),
    sigmoid(f + 1), sigmoid(o) (what the backward pass needs).

    sigmoid(a) = 1 / (1 + exp(-a)) and tanh(a) = 2 / (1 + exp(-2a)) - 1, so each row is
    one vectorized exp over its 4C gate values and one over its C cells."""
    n, four = z.shape
    cells = four // 4
    one, two = np.float32(1.0), np.float32(2.0)
    u = empty(four, np.float32)
    e, bits, scale = exp_scratch(four)
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
            e[cells + j] = two * e[cells + j] - one
        for j in range(four):
            gates[r, j] = e[j]
        for j in range(cells):
            g = e[cells + j]
            cell = e[2 * cells + j] * c_prev[r, j] + e[j] * g
            cell = min(max(cell, -clip), clip)
            c[r, j] = cell
            u[j] = -two * cell
        _exp_parts(u, e, bits, cells)
        for j in range(cells):
            m[r, j] = e[3 * cells + j] * (two / (one + e[j] * scale[j]) - one)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def lstm_cell_backward(dm, dc, gates, c, c_prev, dz, cell_clip):
    """The gradient of lstm_cell for one step: dm (n, C) on its output m, dc (n, C) on
    its cell state c (from the step after; replaced by the gradient on c_prev), gates
    (n, 4C) as lstm_cell saved them; dz (n, 4C) receives the gradient of the gates'
    pre-activations. A clipped cell (|c| at the clip) passes no gradient back. tanh(c)
    is lstm_cell's vectorized exp again, and the loops have no branch, so that they
    vectorize too."""
    n, four = dz.shape
    cells = four // 4
    one, two, zero = np.float32(1.0), np.float32(2.0), np.float32(0.0)
    u = empty(cells, np.float32)
    e, bits, scale = exp_scratch(cells)
    clip = np.float32(cell_clip)
    for r in range(n):
        for j in range(cells):
            u[j] = -two * c[r, j]
        _exp_parts(u, e, bits, cells)
        for j in range(cells):
            i = gates[r, j]
            g = gates[r, cells + j]
            f = gates[r, 2 * cells + j]
            o = gates[r, 3 * cells + j]
            tc = two / (one + e[j] * scale[j]) - one
            d = dc[r, j] + dm[r, j] * o * (one - tc * tc)
            d = d if abs(c[r, j]) < clip else zero
            dz[r, j] = d * g * i * (one - i)
            dz[r, cells + j] = d * i * (one - g * g)
            dz[r, 2 * cells + j] = d * c_prev[r, j] * f * (one - f)
            dz[r, 3 * cells + j] = dm[r, j] * tc * o * (one - o)
            dc[r, j] = d * f
