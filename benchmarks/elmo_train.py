#!/usr/bin/env python
"""ELMo training: embtk's biLM beside n-gram baselines and the same biLM trained in PyTorch.

    python benchmarks/elmo_train.py                                  # en_small.txt, minutes
    python benchmarks/elmo_train.py --corpus en_corpus.txt --lines 60000 --skip-classify

One run, one split of the corpus (the first `--lines` lines of corpus/CORPUS with a token;
the last 5% of them held out), and on that split:

1. baselines: a unigram model (add-one) and an interpolated Kneser-Ney bigram model, numpy,
   in both directions, over the biLM's vocabulary (words seen `--min-count` times in the
   training part, the others counted as one <UNK> token). Every line is `<S> words </S>`;
   the forward models predict each word and </S>, the backward ones each word and <S>.
2. embtk: `embtk.train_elmo` at each `--threads` (its own process each): training tokens/s
   and held-out perplexity (`lm.perplexity`, full softmax) forward, backward, mean.
3. PyTorch on CPU (optional: `pip install torch`, CPU build): the same biLM in torch ops
   (elmo_speed.py's TorchElmo for the forward pass, its tensors as trained parameters), the
   same sizes, batch, unroll, token windows, sampled softmax and Adagrad, at the same
   threads (`torch.set_num_threads`): tokens/s, held-out perplexity, and the ratios.
4. Does context help? Sentence features (the mean over tokens of ELMo's average layer)
   against fastText sentence vectors (embtk skipgram, same training lines), each through
   the same logistic regression on sets of classify/; and the nearest neighbours of
   ambiguous words' contextual vectors in two contexts among held-out tokens.

Training tokens are the window positions a run processes (batch x unroll per step, each
position read by both directions); tokens/s is wall-clock over the training loop.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from elmo_speed import BOS, EOS, DEFAULT_DATA, TorchElmo, token_char_ids  # noqa: E402

UNK = "<UNK>"
HELD_OUT = 0.05
CLASSIFY_SETS = "rotten_tomatoes,bbc_news"
AMBIGUOUS = {
    "bank": ("He sat on the bank of the river and watched the water .",
             "She took the money to the bank and paid the loan ."),
    "play": ("The children went out to play in the field .",
             "The actors rehearsed the play before it opened at the theatre ."),
    "light": ("The light of the sun filled the room .",
              "The box was light enough for a child to carry ."),
    "spirit": ("The Spirit of God moved upon the face of the waters .",
               "The team played with great spirit and won the match ."),
    "state": ("The state of the economy worries the people .",
              "The President spoke to the state legislature about taxes ."),
}


# --------------------------------------------------------------------------- the split
def read_lines(path: Path, limit: int | None = None) -> list:
    """The first `limit` lines of `path` that have a token, as lists of tokens."""
    out = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            tokens = line.split()
            if tokens:
                out.append(tokens)
                if limit is not None and len(out) >= limit:
                    break
    return out


def split_held_out(lines: list, fraction: float = HELD_OUT) -> tuple:
    """(train, held out): the last `fraction` of the lines held out (at least one line)."""
    if len(lines) < 2:
        raise ValueError("the corpus needs at least two lines to hold one out")
    held = max(1, int(round(len(lines) * fraction)))
    return lines[:-held], lines[-held:]


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join(" ".join(tokens) + "\n" for tokens in lines), encoding="utf-8",
                    errors="surrogateescape")
    return path


class Vocabulary:
    """The output vocabulary: <S>, </S>, <UNK>, then the words seen `min_count` times in
    the training lines, most frequent first (the order the log-uniform sampler assumes)."""

    def __init__(self, train: list, min_count: int):
        counts = Counter(t for tokens in train for t in tokens)
        kept = sorted((w for w, c in counts.items() if c >= min_count),
                      key=lambda w: (-counts[w], w))
        self.words = [BOS, EOS, UNK] + kept
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, tokens: list) -> np.ndarray:
        """`<S> tokens </S>` as ids, unknown words as <UNK>."""
        unk = self.index[UNK]
        return np.array([0] + [self.index.get(t, unk) for t in tokens] + [1], dtype=np.int64)


# --------------------------------------------------------------------------- baselines
def _predictions(sequences: list, backward: bool) -> tuple:
    """(context ids, predicted ids) of every prediction in `sequences` (`<S> ... </S>`
    ids), read left to right, or right to left for the backward direction."""
    seqs = [s[::-1] if backward else s for s in sequences]
    return (np.concatenate([s[:-1] for s in seqs]), np.concatenate([s[1:] for s in seqs]))


def unigram_perplexity(train: list, held: list, vocab_size: int, backward: bool = False) -> float:
    """Add-one unigram model of the predicted tokens: p(w) = (c(w) + 1) / (N + V)."""
    _, targets = _predictions(train, backward)
    counts = np.bincount(targets, minlength=vocab_size).astype(np.float64)
    _, held_targets = _predictions(held, backward)
    p = (counts[held_targets] + 1) / (len(targets) + vocab_size)
    return float(np.exp(-np.log(p).mean()))


def kneser_ney_perplexity(train: list, held: list, vocab_size: int, backward: bool = False,
                          discount: float | None = None) -> float:
    """Interpolated Kneser-Ney bigram model, one absolute discount D (n1 / (n1 + 2 n2) of
    the bigram counts unless given), its continuation unigram interpolated with uniform:

        p1(w) = (max(N(. w) - D, 0) + D * |{w': N(. w') > 0}| / V) / N(. .)
        p(w | v) = (max(c(v w) - D, 0) + D * N(v .) * p1(w)) / c(v)   (p1(w) if c(v) = 0)

    N(. w): distinct contexts before w; N(v .): distinct words after v; N(. .): distinct
    bigrams."""
    v = vocab_size
    contexts, targets = _predictions(train, backward)
    pairs, pair_counts = np.unique(contexts * v + targets, return_counts=True)
    first, second = pairs // v, pairs % v
    if discount is None:
        n1, n2 = np.count_nonzero(pair_counts == 1), np.count_nonzero(pair_counts == 2)
        discount = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
    d = float(discount)
    followers = np.bincount(first, minlength=v).astype(np.float64)       # N(v .)
    continuation = np.bincount(second, minlength=v).astype(np.float64)   # N(. w)
    context_counts = np.bincount(contexts, minlength=v).astype(np.float64)
    p1 = (np.maximum(continuation - d, 0) + d * np.count_nonzero(continuation) / v) / len(pairs)
    held_contexts, held_targets = _predictions(held, backward)
    found = np.searchsorted(pairs, held_contexts * v + held_targets)
    found = np.minimum(found, len(pairs) - 1)
    c_vw = np.where(pairs[found] == held_contexts * v + held_targets, pair_counts[found], 0)
    c_v = context_counts[held_contexts]
    seen = c_v > 0
    p = p1[held_targets].copy()
    p[seen] = (np.maximum(c_vw[seen] - d, 0) + d * followers[held_contexts[seen]]
               * p1[held_targets[seen]]) / c_v[seen]
    return float(np.exp(-np.log(p).mean()))


def baselines(train: list, held: list, vocab: Vocabulary, batch: int) -> dict:
    """{model: (forward, backward)} held-out perplexities over the predictions that
    `lm.perplexity` counts: every adjacent pair of each held-out stream (`Streams`), <S>
    after </S> included; trained on every adjacent pair of the training stream."""
    train_ids = [Streams(train, vocab, {}, 1).ids[0]]
    held_ids = list(Streams(held, vocab, {}, perplexity_rows(held, batch)).ids)
    return {name: tuple(f(train_ids, held_ids, len(vocab), backward=b) for b in (False, True))
            for name, f in (("unigram (add-one)", unigram_perplexity),
                            ("bigram (interpolated Kneser-Ney)", kneser_ney_perplexity))}


# --------------------------------------------------------------------------- windows
class Streams:
    """A text as embtk's trainer reads it (embtk/elmo/bilm.py): every line's `<S> tokens
    </S>` one after the other, cut into `rows` contiguous streams (the last tokens that do
    not fill a row left out), each read in windows of `bptt` positions (the last one
    shorter), the backward LM reading each stream reversed. `words` index `types` (the
    distinct tokens, for the char CNN), `ids` are the softmax's (<UNK> for rare words)."""

    def __init__(self, lines: list, vocab: Vocabulary, types: dict, rows: int):
        tokens = [t for line in lines for t in [BOS] + line + [EOS]]
        length = len(tokens) // rows
        if length < 2:
            raise ValueError(f"{len(tokens)} tokens do not make {rows} streams of 2")
        tokens = tokens[:rows * length]
        self.words = np.array([types.setdefault(t, len(types)) for t in tokens],
                              dtype=np.int64).reshape(rows, length)
        self.ids = np.array([vocab.index.get(t, vocab.index[UNK]) for t in tokens],
                            dtype=np.int64).reshape(rows, length)

    def windows(self, bptt: int, backward: bool = False):
        """(input words, target ids) (rows, steps) of each window of one direction."""
        words, ids = (self.words[:, ::-1], self.ids[:, ::-1]) if backward else (self.words,
                                                                                  self.ids)
        length = words.shape[1]
        for start in range(0, length - 1, bptt):
            steps = min(bptt, length - 1 - start)
            yield words[:, start:start + steps], ids[:, start + 1:start + steps + 1]

    def positions(self, bptt: int) -> int:
        """Positions a pass over the windows predicts (per direction)."""
        return self.words.shape[0] * (self.words.shape[1] - 1)


def perplexity_rows(lines: list, batch: int) -> int:
    """The streams `lm.perplexity` cuts a text into: the batch, fewer for a short text."""
    return max(1, min(batch, sum(len(t) + 2 for t in lines) // 2))


def char_table(types: dict, max_chars: int) -> np.ndarray:
    """(len(types), max_chars) char ids of every distinct token (markers included)."""
    table = np.empty((len(types), max_chars), dtype=np.int64)
    for token, row in types.items():
        key = token if token in (BOS, EOS) else token.encode("utf-8", "surrogateescape")
        table[row] = token_char_ids(key, max_chars)
    return table


def log_uniform(vocab_size: int, count: int, rng) -> tuple:
    """`count` distinct ids from P(k) = log((k + 2) / (k + 1)) / log(V + 1) (ids in order
    of frequency), drawn until that many distinct ones are seen, and a function giving the
    log of the expected count of given ids, 1 - (1 - P(k))^draws: the correction subtracted
    from each logit of the sampled softmax (TensorFlow's for unique sampling). With
    count >= V, every id and no correction (the full softmax)."""
    if count >= vocab_size:
        return np.arange(vocab_size), lambda k: np.zeros(len(k))
    seen: dict = {}
    draws = 0
    while len(seen) < count:
        for k in np.minimum(np.exp(rng.random(count) * math.log(vocab_size + 1)).astype(
                np.int64) - 1, vocab_size - 1).tolist():
            draws += 1
            seen.setdefault(k, draws)
            if len(seen) == count:
                break
    ids = np.fromiter(seen, dtype=np.int64, count=count)

    def log_expected(k):
        p = np.log((k + 2.0) / (k + 1.0)) / math.log(vocab_size + 1)
        return np.log(-np.expm1(draws * np.log1p(-p)))

    return ids, log_expected


# --------------------------------------------------------------------------- torch
def elmo_options(args) -> dict:
    """bilm-tf's options.json for the sizes of the command line."""
    return {"lstm": {"use_skip_connections": True, "projection_dim": args.proj_dim,
                     "cell_clip": args.cell_clip, "proj_clip": args.proj_clip,
                     "dim": args.lstm_dim, "n_layers": args.layers},
            "char_cnn": {"activation": "relu", "filters": parse_filters(args.filters),
                         "n_highway": args.highway, "embedding": {"dim": args.char_dim},
                         "n_characters": 262, "max_characters_per_token": args.max_chars}}


def parse_filters(text: str) -> list:
    """"1:32,2:32" -> [[1, 32], [2, 32]] (embtk's -filters)."""
    return [[int(v) for v in pair.split(":")] for pair in text.split(",")]


class TorchBiLM:
    """The biLM trained in torch as embtk trains it (embtk/elmo/training.py and bilm.py):
    elmo_speed.TorchElmo's ops over trainable tensors initialised alike, one softmax for
    both directions, dropout on each LSTM layer's input (the skip connection adds the
    dropped-out input) and on the top output, the sampled softmax of `log_uniform`."""

    def __init__(self, opt: dict, vocab_size: int, seed: int, dropout: float):
        import torch

        self.torch, self.opt, self.dropout = torch, opt, dropout
        g = torch.Generator().manual_seed(seed)
        cnn, lstm = opt["char_cnn"], opt["lstm"]
        d, p, c = cnn["embedding"]["dim"], lstm["projection_dim"], lstm["dim"]
        f = sum(n for _, n in cnn["filters"])

        def normal(*shape, scale):
            return (torch.randn(*shape, generator=g) * scale).requires_grad_()

        def zeros(n, value=0.0):
            return torch.full((n,), value).requires_grad_()

        def glorot(rows, columns):
            limit = math.sqrt(6 / (rows + columns))
            return torch.rand(rows, columns, generator=g) * 2 * limit - limit

        def lstm_weights():
            w_0 = glorot(2 * p, 4 * c)  # bilm-tf's W_0: [input; previous output] x gates
            return (w_0[:p].clone().requires_grad_(), w_0[p:].clone().requires_grad_(),
                    zeros(4 * c), glorot(c, p).requires_grad_())

        params = {
            "char_embed": (torch.rand(262, d, generator=g) * 2 - 1).requires_grad_(),
            "convs": [(normal(n, d, w, scale=1 / math.sqrt(w * d)), zeros(n))
                      for w, n in cnn["filters"]],
            # the carry gate starts mostly closed (bias -2): the highway passes its input on
            "highway": [(normal(f, 2 * f, scale=1 / math.sqrt(f)),
                         torch.cat([torch.full((f,), -2.0), torch.zeros(f)]).requires_grad_())
                        for _ in range(cnn["n_highway"])],
            "proj": (normal(f, p, scale=1 / math.sqrt(f)), zeros(p)),
            "lstm": [[lstm_weights() for _ in range(lstm["n_layers"])] for _ in (0, 1)]}
        self.net = TorchElmo(opt, params)
        self.softmax = (normal(vocab_size, p, scale=1 / math.sqrt(p)), zeros(vocab_size))
        self.parameters = [params["char_embed"], *[t for pair in params["convs"] for t in pair],
                           *[t for pair in params["highway"] for t in pair], *params["proj"],
                           *[t for direction in params["lstm"] for layer in direction
                             for t in layer], *self.softmax]

    def initial_state(self, rows: int) -> list:
        torch, lstm = self.torch, self.opt["lstm"]
        return [[(torch.zeros(rows, lstm["dim"]), torch.zeros(rows, lstm["projection_dim"]))
                 for _ in range(lstm["n_layers"])] for _ in (0, 1)]

    def top(self, direction: int, x, state: list, train: bool) -> tuple:
        """The top layer's outputs (rows, steps, P) of one direction, and its new state."""
        drop = self.torch.nn.functional.dropout
        lengths = self.torch.full((x.shape[0],), x.shape[1])
        inp, carried = x, []
        for k, weights in enumerate(self.net.lstm[direction]):
            inp = drop(inp, self.dropout, train)
            h, (c, hn) = self.net.run_lstm(inp, lengths, *weights, state=state[k])
            if k > 0 and self.opt["lstm"]["use_skip_connections"]:
                h = h + inp
            carried.append((c.detach(), hn.detach()))
            inp = h
        return drop(inp, self.dropout, train), carried

    def encode(self, chars: np.ndarray, windows: list) -> list:
        """The token encoder's rows for each window's words (each distinct word once)."""
        both = np.concatenate([w.ravel() for w in windows])
        distinct, inverse = np.unique(both, return_inverse=True)
        encoded = self.net.encode(self.torch.from_numpy(chars[distinct]))
        p, out, at = encoded.shape[1], [], 0
        for w in windows:
            rows = self.torch.from_numpy(inverse[at:at + w.size])
            out.append(encoded[rows].reshape(*w.shape, p))
            at += w.size
        return out

    def sampled_loss(self, top, targets, sampled, log_expected):
        """Mean sampled-softmax loss: the target against the shared sampled ids, each logit
        minus the log of its expected count, sampled ids equal to the target removed."""
        torch = self.torch
        w, b = self.softmax
        top = top.reshape(-1, top.shape[-1])
        targets = targets.reshape(-1)
        t = torch.from_numpy(targets)
        s = torch.from_numpy(sampled)
        true = (top * w[t]).sum(1) + b[t] - torch.from_numpy(log_expected(targets)).float()
        other = top @ w[s].T + b[s] - torch.from_numpy(log_expected(sampled)).float()
        other = other.masked_fill(t[:, None] == s[None, :], float("-inf"))
        logits = torch.cat([true[:, None], other], 1)
        return (torch.logsumexp(logits, 1) - true).mean()

    def log_likelihood(self, top, targets) -> tuple:
        """(sum of log p(target) under the full softmax, predictions)."""
        torch = self.torch
        w, b = self.softmax
        logp = torch.log_softmax(top.reshape(-1, top.shape[-1]) @ w.T + b, 1)
        t = torch.from_numpy(targets.reshape(-1))
        return float(logp[torch.arange(len(t)), t].double().sum()), len(t)


def torch_train(spec: dict) -> dict:
    """Train the torch biLM on the spec's training lines, then its held-out perplexity.
    Per window: the mean sampled-softmax loss of both directions times the unroll (bilm-tf
    differentiates loss x unroll_steps), the gradient clipped to a global norm of
    `clip`, Adagrad with accumulators starting at 1 (bilm-tf's)."""
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    opt = spec["options"]
    train = read_lines(Path(spec["train"]))
    held = read_lines(Path(spec["held"]))
    vocab = Vocabulary(train, spec["min_count"])
    types: dict = {}
    streams = Streams(train, vocab, types, spec["batch"])
    model = TorchBiLM(opt, len(vocab), spec["seed"], spec["dropout"])
    adagrad = torch.optim.Adagrad(model.parameters, lr=spec["lr"], initial_accumulator_value=1.0)
    rng = np.random.default_rng(spec["seed"])
    chars = char_table(types, opt["char_cnn"]["max_characters_per_token"])
    tokens, losses = 0, []
    began, cpu = time.perf_counter(), time.process_time()
    for _ in range(spec["epochs"]):
        state = model.initial_state(spec["batch"])
        for (wf, tf), (wb, tb) in zip(streams.windows(spec["bptt"]),
                                      streams.windows(spec["bptt"], backward=True)):
            xf, xb = model.encode(chars, [wf, wb])
            top_f, state[0] = model.top(0, xf, state[0], True)
            top_b, state[1] = model.top(1, xb, state[1], True)
            sampled, log_expected = log_uniform(len(vocab), spec["samples"], rng)
            loss = 0.5 * (model.sampled_loss(top_f, tf, sampled, log_expected)
                          + model.sampled_loss(top_b, tb, sampled, log_expected))
            adagrad.zero_grad()
            (spec["bptt"] * loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters, spec["clip"])
            adagrad.step()
            tokens += wf.size
            losses.append(float(loss.detach()))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"tokens": tokens, "seconds": seconds, "cpu_seconds": cpu, "vocab": len(vocab),
            "loss_first": float(np.mean(losses[:10])) if losses else math.nan,
            "loss_last": float(np.mean(losses[-10:])) if losses else math.nan,
            **torch_perplexity(model, held, vocab, types, spec)}


def torch_perplexity(model: TorchBiLM, held: list, vocab: Vocabulary, types: dict,
                     spec: dict) -> dict:
    """Full-softmax perplexity of the held-out lines as `lm.perplexity` measures it:
    forward, backward and exp of their mean loss."""
    torch = model.torch
    rows = perplexity_rows(held, spec["batch"])
    streams = Streams(held, vocab, types, rows)
    chars = char_table(types, model.opt["char_cnn"]["max_characters_per_token"])
    out, losses = {}, []
    with torch.inference_mode():
        for d, name in ((0, "forward"), (1, "backward")):
            state, total, count = model.initial_state(rows), 0.0, 0
            for words, targets in streams.windows(spec["bptt"], backward=d == 1):
                x, = model.encode(chars, [words])
                top, state[d] = model.top(d, x, state[d], False)
                s, n = model.log_likelihood(top, targets)
                total, count = total + s, count + n
            losses.append(-total / count)
            out[name] = math.exp(losses[-1])
    out["mean"] = math.exp(sum(losses) / 2)
    out["positions"] = count
    return out


# --------------------------------------------------------------------------- embtk
def embtk_train(spec: dict) -> dict:
    """`embtk.train_elmo` on the training lines, its training loop timed (after a warm-up
    run on a few lines: numba's compilation is not training); its held-out perplexity;
    the model saved for the classification part."""
    import embtk
    from embtk.elmo import training

    opt = spec["options"]
    cnn, lstm = opt["char_cnn"], opt["lstm"]
    options = dict(
        charDim=cnn["embedding"]["dim"], filters=cnn["filters"], highway=cnn["n_highway"],
        projDim=lstm["projection_dim"], lstmDim=lstm["dim"], layers=lstm["n_layers"],
        maxChars=cnn["max_characters_per_token"], bptt=spec["bptt"], batchSize=spec["batch"],
        lr=spec["lr"], epoch=spec["epochs"], minCount=spec["min_count"],
        samples=spec["samples"], cellClip=lstm["cell_clip"], projClip=lstm["proj_clip"],
        dropout=spec["dropout"], thread=spec["threads"], seed=spec["seed"], verbose=0,
        tmpdir=spec["tmpdir"])
    warm = read_lines(Path(spec["held"]))
    embtk.train_elmo([" ".join(t) + "\n" for t in warm], **{**options, "epoch": 1})
    clock = [0.0, 0.0]
    passes = training._train_passes

    def timed(*args, **kw):
        began, cpu = time.perf_counter(), time.process_time()
        try:
            return passes(*args, **kw)
        finally:
            clock[0] += time.perf_counter() - began
            clock[1] += time.process_time() - cpu

    training._train_passes = timed
    lm = embtk.train_elmo(spec["train"], **options)
    perplexity = lm.perplexity(spec["held"], thread=spec["threads"])
    if spec.get("save"):
        lm.save(spec["save"])
    return {"tokens": int(lm.options.raw["training"]["tokens"]), "seconds": clock[0],
            "cpu_seconds": clock[1],
            "forward": perplexity.forward, "backward": perplexity.backward,
            "mean": perplexity.mean, "positions": perplexity.tokens}


# --------------------------------------------------------------------------- context
def logistic_regression(train_x, train_y, test_x, test_y, l2: float = 1e-3,
                        steps: int = 500) -> float:
    """Accuracy of a multinomial logistic regression (standardised features, L2, full-batch
    gradient descent with Nesterov momentum): the same learner for every feature set."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    x = np.hstack([(train_x - mean) / std, np.ones((len(train_x), 1))])
    xt = np.hstack([(test_x - mean) / std, np.ones((len(test_x), 1))])
    classes = int(max(train_y.max(), test_y.max())) + 1
    onehot = np.eye(classes)[train_y]
    w = np.zeros((x.shape[1], classes))
    velocity = np.zeros_like(w)
    rate = 0.5
    for _ in range(steps):
        ahead = w + 0.9 * velocity
        z = x @ ahead
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        grad = x.T @ (p - onehot) / len(x) + l2 * ahead
        velocity = 0.9 * velocity - rate * grad
        w += velocity
    return float(((xt @ w).argmax(1) == test_y).mean())


def read_classify(path: Path, limit: int, max_tokens: int, rng) -> tuple:
    """(texts, label ids) of a fastText-format file: `limit` lines drawn at random, each
    text cut to its first `max_tokens` tokens (labels numbered by name)."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            tokens = line.split()
            labels = [t for t in tokens if t.startswith("__label__")]
            words = [t for t in tokens if not t.startswith("__label__")]
            if labels and words:
                rows.append((labels[0], words[:max_tokens]))
    if len(rows) > limit:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), limit, replace=False))]
    return [w for _, w in rows], [label for label, _ in rows]


def classify(data: Path, sets: list, features: dict, limit: int, max_tokens: int,
             seed: int) -> list:
    """[(set, train, test, {features: accuracy})]; `features` maps a name to a function
    from lists of token lists to a (texts, dim) array."""
    out = []
    for name in sets:
        rng = np.random.default_rng(seed)
        folder = data / "classify" / name
        train_texts, train_labels = read_classify(folder / "train.txt", limit, max_tokens, rng)
        test_texts, test_labels = read_classify(folder / "test.txt", limit // 2, max_tokens, rng)
        names = {label: i for i, label in enumerate(sorted(set(train_labels) | set(test_labels)))}
        y = np.array([names[label] for label in train_labels])
        yt = np.array([names[label] for label in test_labels])
        scores = {}
        for feature, embed in features.items():
            scores[feature] = logistic_regression(embed(train_texts), y, embed(test_texts), yt)
        majority = float((yt == np.bincount(y).argmax()).mean())
        out.append((name, len(y), len(yt), majority, scores))
    return out


def neighbours(lm, held: list, words: dict, pool_lines: int, top: int, thread: int) -> list:
    """For each ambiguous word and each of its two contexts, the `top` tokens of held-out
    sentences whose contextual vectors (average layer) are nearest (cosine) to the word's
    in that context: [(word, context, [(token, its sentence's words around it)])]."""
    pool_sentences = held[:pool_lines]
    vectors = lm.embed(pool_sentences, layer="average", thread=thread, verbose=0)
    where = [(s, i) for s, v in enumerate(vectors) for i in range(len(v))]
    pool = np.concatenate(vectors)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True) + 1e-9
    out = []
    for word, contexts in words.items():
        for context in contexts:
            tokens = context.split()
            vector = lm.embed([tokens], layer="average", thread=thread, verbose=0)[0]
            v = vector[[t.lower() for t in tokens].index(word)]
            order = np.argsort(-(pool @ (v / (np.linalg.norm(v) + 1e-9))))[:top]
            found = []
            for k in order.tolist():
                s, i = where[k]
                around = pool_sentences[s][max(0, i - 3):i + 4]
                found.append((pool_sentences[s][i], " ".join(around)))
            out.append((word, context, found))
    return out


def fasttext_vectors(train_path: Path, dim: int, threads: int, seed: int):
    """embtk skipgram on the same training lines; its sentence vectors of token lists."""
    import embtk

    model = embtk.train_unsupervised(str(train_path), model="skipgram", dim=dim, epoch=5,
                                     minCount=3, thread=threads, seed=seed, verbose=0)

    def embed(texts):
        lines = [(" ".join(t) + "\n").encode("utf-8", "surrogateescape") for t in texts]
        return np.asarray(model.sentence_vectors_bytes(lines), dtype=np.float64)

    return embed


# --------------------------------------------------------------------------- driver
def worker_main(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    out = torch_train(spec) if spec["tool"] == "torch" else embtk_train(spec)
    print(json.dumps(out))


def run_worker(spec: dict, workdir: Path) -> dict:
    """One training run in its own process (fresh thread pools, its own memory)."""
    path = workdir / f"spec-{spec['tool']}-{spec['threads']}.json"
    path.write_text(json.dumps(spec))
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]),
               NUMBA_NUM_THREADS=str(spec["threads"]))
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--worker", str(path)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{spec['tool']} training at {spec['threads']} thread(s) failed:\n"
                         f"{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load"] = os.getloadavg()[0]
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--corpus", default="en_small.txt", help="a file of DATA/corpus")
    parser.add_argument("--lines", type=int, default=8000,
                        help="the first N lines with a token (0: all)")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--char-dim", type=int, default=16)
    parser.add_argument("--filters", default="1:32,2:32,3:64,4:128", help="width:count,...")
    parser.add_argument("--highway", type=int, default=1)
    parser.add_argument("--proj-dim", type=int, default=64)
    parser.add_argument("--lstm-dim", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-chars", type=int, default=50)
    parser.add_argument("--bptt", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--cell-clip", type=float, default=3.0)
    parser.add_argument("--proj-clip", type=float, default=3.0)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=10.0, help="gradient norm clip (torch)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-embtk", action="store_true")
    parser.add_argument("--skip-classify", action="store_true")
    parser.add_argument("--classify", default=CLASSIFY_SETS, help="sets of DATA/classify")
    parser.add_argument("--classify-lines", type=int, default=2000,
                        help="training lines per set (test: half as many)")
    parser.add_argument("--classify-tokens", type=int, default=60,
                        help="tokens kept of each text")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker)
        return 0
    corpus = args.data / "corpus" / args.corpus
    if not corpus.exists():
        print(f"missing {corpus}: point --data at the shared data folder (see "
              "../shared/data/README.md)", file=sys.stderr)
        return 2
    torch_ok = not args.skip_torch
    if torch_ok:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: measuring embtk only", file=sys.stderr)
            torch_ok = False
    embtk_ok = not args.skip_embtk
    if embtk_ok:
        import embtk

        if not hasattr(embtk, "train_elmo"):
            print("this embtk has no train_elmo: baselines and torch only", file=sys.stderr)
            embtk_ok = False
    threads = [int(t) for t in args.threads.split(",")]
    lines = read_lines(corpus, args.lines or None)
    train, held = split_held_out(lines)
    vocab = Vocabulary(train, args.min_count)
    opt = elmo_options(args)
    report = {"corpus": args.corpus, "lines": len(lines), "train_lines": len(train),
              "held_lines": len(held), "train_tokens": sum(len(t) for t in train),
              "held_tokens": sum(len(t) for t in held), "vocab": len(vocab),
              "options": opt, "args": {k: str(v) for k, v in vars(args).items()}}
    print(f"{args.corpus}: {len(lines):,} lines, {report['train_tokens']:,} training tokens, "
          f"{len(held):,} held-out lines ({report['held_tokens']:,} tokens); vocabulary "
          f"{len(vocab):,} (words seen {args.min_count}+ times, <S>, </S>, <UNK>)", flush=True)
    started = time.perf_counter()
    report["baselines"] = baselines(train, held, vocab, args.batch)
    print(f"baselines in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="elmo-train-") as tmp:
        workdir = Path(tmp)
        train_path = write_lines(workdir / "train.txt", train)
        held_path = write_lines(workdir / "held.txt", held)
        spec = {"options": opt, "train": str(train_path), "held": str(held_path),
                "min_count": args.min_count, "batch": args.batch, "bptt": args.bptt,
                "dropout": args.dropout, "lr": args.lr, "samples": args.samples,
                "clip": args.clip, "epochs": args.epochs, "seed": args.seed,
                "tmpdir": str(workdir)}
        runs = []
        for n in threads:
            row = {"threads": n}
            if embtk_ok:
                save = str(workdir / "lm.elmo") if n == threads[-1] else None
                row["embtk"] = run_worker({**spec, "tool": "embtk", "threads": n,
                                           "save": save}, workdir)
                print(f"embtk, {n} thread(s): {row['embtk']}", flush=True)
            if torch_ok:
                row["torch"] = run_worker({**spec, "tool": "torch", "threads": n}, workdir)
                print(f"torch, {n} thread(s): {row['torch']}", flush=True)
            runs.append(row)
        report["runs"] = runs
        if not args.skip_classify:
            report.update(context_part(args, workdir, train_path, held, threads[-1]))
    print_report(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def context_part(args, workdir: Path, train_path: Path, held: list, thread: int) -> dict:
    """The classification sets with both feature sets (fastText alone without a trained
    ELMo), and the neighbours of ambiguous words."""
    import embtk

    saved = workdir / "lm.elmo"
    lm = embtk.load_elmo(saved) if saved.exists() else None
    features = {"fastText": fasttext_vectors(train_path, 2 * args.proj_dim, thread, args.seed)}
    if lm is not None:
        features["ELMo"] = lambda texts: lm.sentence_vectors(
            texts, thread=thread, verbose=0).astype(np.float64)
    sets = [s for s in args.classify.split(",") if s]
    started = time.perf_counter()
    scores = classify(args.data, sets, features, args.classify_lines, args.classify_tokens,
                      args.seed)
    print(f"classification in {time.perf_counter() - started:.1f} s", flush=True)
    near = [] if lm is None else neighbours(lm, held, AMBIGUOUS, 2000, 5, thread)
    return {"classify": scores, "neighbours": near}


def print_report(report: dict, args) -> None:
    print(f"\n{report['corpus']}, first {report['lines']:,} lines: "
          f"{report['train_tokens']:,} training tokens, held out the last "
          f"{report['held_lines']:,} lines ({report['held_tokens']:,} tokens); <UNK> counts "
          "as one token of the vocabulary")
    print("\n| model | threads | tokens | tokens/s | tokens per CPU s | load | "
          "perplexity fw | bw | mean |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, (fw, bw) in report["baselines"].items():
        print(f"| {name} | | | | | | {fw:.1f} | {bw:.1f} | {math.sqrt(fw * bw):.1f} |")
    for row in report["runs"]:
        for tool in ("embtk", "torch"):
            r = row.get(tool)
            if r:
                print(f"| {tool} biLM | {row['threads']} | {r['tokens']:,} | "
                      f"{r['tokens'] / r['seconds']:,.0f} | "
                      f"{r['tokens'] / r['cpu_seconds']:,.0f} | {r['load']:.1f} | "
                      f"{r['forward']:.1f} | {r['backward']:.1f} | {r['mean']:.1f} |")
    for row in report["runs"]:
        if "embtk" in row and "torch" in row:
            e, t = row["embtk"], row["torch"]
            print(f"{row['threads']} thread(s): embtk / torch tokens/s "
                  f"{(e['tokens'] / e['seconds']) / (t['tokens'] / t['seconds']):.2f}x "
                  f"(target >= 1.0; per CPU second "
                  f"{(e['tokens'] / e['cpu_seconds']) / (t['tokens'] / t['cpu_seconds']):.2f}x), "
                  f"perplexity embtk / torch {e['mean'] / t['mean']:.3f} (target within 5%)")
    print("load: the machine's 1-minute load average at the end of the run (other work "
          "shares the cores)")
    if "classify" in report:
        print("\n| set | train / test | majority | ELMo (mean of the average layer) | "
              "fastText sentence vectors |")
        print("|---|---|---|---|---|")
        for name, n, nt, majority, scores in report["classify"]:
            elmo = f"{scores['ELMo']:.3f}" if "ELMo" in scores else "-"
            print(f"| {name} | {n:,} / {nt:,} | {majority:.3f} | {elmo} | "
                  f"{scores['fastText']:.3f} |")
        if report["neighbours"]:
            print("\nNearest held-out tokens (cosine of the average layer):")
        for word, context, found in report["neighbours"]:
            print(f"  {word} in \"{context}\":")
            print("    " + "; ".join(f"{t} [{around}]" for t, around in found))


if __name__ == "__main__":
    sys.exit(main())
