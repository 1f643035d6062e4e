"""Training ELMo (embtk.elmo.training): every layer's gradient against finite differences
on tiny sizes, the sampled softmax against the full one, training that lowers held-out
perplexity, reproducibility, the .elmo round trip with the softmax and Adagrad's state,
continued training, the commands and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from embtk.elmo.bilm import BiLM
from embtk.elmo.charcnn import char_ids
from embtk.elmo.options import sized_options
from embtk.elmo.softmax import draw_samples, full_loss, sampled_loss
from embtk.elmo.training import initial_arrays, initial_softmax

WORDS = [b"ab", b"c", b"abc", b"dd", b"e", b"abcdefghij", b"x", "naïve".encode()]


def _tiny_network(activation, clip, seed=1):
    opt = sized_options(char_dim=3, filters=((1, 2), (2, 3), (3, 2)), n_highway=2,
                        projection_dim=4, cell_dim=5, n_layers=2, max_chars=8, cell_clip=clip,
                        proj_clip=clip, activation=activation)
    rng = np.random.default_rng(seed)
    arrays = initial_arrays(opt, rng)
    for name in arrays:  # away from the initial values: gates and biases not at 0
        arrays[name] += rng.normal(0, 0.3, arrays[name].shape).astype(np.float32)
    arrays["softmax/W"], arrays["softmax/b"] = initial_softmax(11, 4, rng)
    return opt, arrays, rng


class _Problem:
    """The summed sampled-softmax loss of one window of both directions, from states
    that are not zero, with dropout: a function of the arrays, and its gradient."""

    def __init__(self, activation, clip, dropout):
        self.opt, self.arrays, rng = _tiny_network(activation, clip)
        self.chars = char_ids(WORDS, 8)
        batch, steps = 2, 3
        self.fwd = rng.integers(0, len(WORDS), (batch, steps + 1))
        self.bwd = rng.integers(0, len(WORDS), (batch, steps + 1))
        self.of_type = rng.integers(0, 11, len(WORDS))
        self.samples = draw_samples(np.random.default_rng(5), 11, 5)
        self.states = [[(rng.normal(0, 0.5, (batch, 4)).astype(np.float32),
                         rng.normal(0, 1.0, (batch, 5)).astype(np.float32))
                        for _ in range(2)] for _ in (0, 1)]
        self.dropout = dropout

    def run(self, gradient=False):
        states = [[(h.copy(), c.copy()) for h, c in layers] for layers in self.states]
        bilm = BiLM(self.opt, self.arrays)
        window = bilm.forward(self.chars, self.fwd, self.bwd, states, np.random.default_rng(9),
                              self.dropout)
        targets = self.of_type[np.stack([self.fwd[:, 1:].T, self.bwd[:, 1:].T])].ravel()
        tops = window.tops.reshape(len(targets), -1)
        loss, d_tops, softmax = sampled_loss(tops, targets, self.arrays["softmax/W"],
                                             self.arrays["softmax/b"], self.samples, 1.0)
        if not gradient:
            return loss
        grads = {name: np.zeros_like(a) for name, a in self.arrays.items()}
        bilm.backward(window, d_tops.reshape(window.tops.shape), grads)
        grads["softmax/W"][softmax.rows] += softmax.d_w
        grads["softmax/b"][softmax.rows] += softmax.d_b
        return grads


def _difference(problem, a, i, eps):
    flat = a.reshape(-1)
    old = flat[i]
    flat[i] = old + eps
    up = problem.run()
    flat[i] = old - eps
    down = problem.run()
    flat[i] = old
    return (up - down) / (2 * eps)


@pytest.mark.parametrize("activation,clip,dropout", [("relu", 3.0, 0.3), ("tanh", 0.4, 0.0)])
def test_every_gradient_matches_finite_differences(activation, clip, dropout):
    """Char embedding, convolutions (max over time, activation), highway, projection,
    both directions' LSTMs (projection, cell and output clips; small clips make many
    cells clip), the residual, dropout and the sampled softmax: float32 forward passes,
    central differences. A max or a relu may switch inside a step: the check passes
    when either step size agrees."""
    problem = _Problem(activation, clip, dropout)
    grads = problem.run(gradient=True)
    picker = np.random.default_rng(0)
    checked = 0
    for name, a in problem.arrays.items():
        for i in picker.choice(a.size, min(5, a.size), replace=False):
            analytic = float(grads[name].reshape(-1)[i])
            errors = []
            for eps in (1e-2, 2e-3):
                numeric = _difference(problem, a, i, eps)
                errors.append(abs(numeric - analytic) / max(3e-2, abs(numeric) + abs(analytic)))
            assert min(errors) < 2e-2, (name, i, analytic, numeric)
            checked += 1
    assert checked > 100
    nonzero = [name for name, g in grads.items() if np.abs(g).max() > 0]
    assert len(nonzero) == len(grads)


def test_sampled_softmax_with_every_word_is_the_full_softmax():
    rng = np.random.default_rng(3)
    h = rng.normal(size=(7, 4)).astype(np.float32)
    w = rng.normal(size=(9, 4)).astype(np.float32)
    b = rng.normal(size=9).astype(np.float32)
    targets = rng.integers(0, 9, 7)
    every = draw_samples(rng, 9, 9)
    loss, d_h, softmax = sampled_loss(h, targets, w, b, every, 1.0)
    assert loss == pytest.approx(full_loss(h, targets, w, b), rel=1e-5)
    logits = h.astype(np.float64) @ w.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(7), targets] -= 1
    np.testing.assert_allclose(d_h, p @ w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(softmax.d_w, (p.T @ h)[softmax.rows], rtol=1e-4, atol=1e-5)


def test_log_uniform_samples_are_distinct_frequent_first_and_corrected():
    rng = np.random.default_rng(0)
    counts = np.zeros(1000)
    for _ in range(200):
        s = draw_samples(rng, 1000, 50)
        assert len(np.unique(s.words)) == 50 and s.words.min() >= 0 and s.words.max() < 1000
        counts[s.words] += 1
        assert s.tries >= 50
        # Q, the expected count of a word in `tries` draws, is below 1 and falls with rank
        q = np.exp(s.log_q_of(np.array([0, 10, 999])))
        assert 1 >= q[0] > q[1] > q[2] > 0
    assert counts[:10].sum() > counts[-500:].sum()
