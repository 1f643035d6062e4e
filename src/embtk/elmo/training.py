"""Training a biLM (`embtk elmo`, `embtk.train_elmo`), as bilm-tf trains one.

Per window (see bilm.py for the streams, windows and the network's layout):

    loss = mean over the window's B x T positions and both directions of the sampled
           softmax loss (softmax.py: S log-uniform samples shared by both directions,
           log Q correction, accidental hits removed)
    g    = the gradient of T x loss (bilm-tf differentiates loss * unroll_steps), every
           weight of both directions, the encoder and the softmax
    g   *= min(1, CLIP_NORM / ||g||)          (the global norm over all of them)
    Adagrad: a += g * g; w -= lr * g / sqrt(a), a starting at ADAGRAD_START (bilm-tf's
             0.2 and 1.0); the softmax's rows only where the window touched them

Initial weights: char embedding U(-1, 1); convolutions N(0, 1 / (width * charDim)) (relu)
or U(-0.05, 0.05) (tanh), highway and projection N(0, 1 / filters), the highway's gate
bias -2 (carry at first); LSTM W_0 and W_P Glorot-uniform, B 0 (TensorFlow adds 1 to the
forget gate); softmax N(0, 1 / projDim), bias 0.

Threads: each window's B streams are split in -thread contiguous pieces, each piece's
forward and backward passes run on a thread of its own (numba kernels and single-threaded
BLAS release the GIL), and their gradients are summed before the update: the same update
as one piece, up to the order of float additions. BLAS itself stays on one thread: its
own threads on a window's products, measured on the 2 shared cores, trained 8 times
slower (218 against 1,778 tokens/s), the pieces at the speed of one thread there, with
8% more CPU time (the cores were busy with other jobs: neither doubled).

`-thread N -seed S` is reproducible for a given N (and N = 1 is the reference): one numpy
Generator(S) draws the initial weights, then per window the samples and one seed per piece
for its dropout masks.

Checkpoints (-checkpoint, -resume; the file and its checks are checkpoint.py's): the
weights, Adagrad's, the LSTM states carried between windows, the random state and the
position (epoch, window), always at a window's end: a signal waits for the window to end
(checkpoint.deferred_signals), so resuming gives the model of the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numba as nb
import numpy as np

from ..checkpoint import deferred_signals, input_fingerprint, read_state, write_state
from ..corpus import training_input
from ..errors import EmbtkError, progress_bar
from ..safeio import available_memory
from ..args import ElmoArgs, check_python_types
from .bilm import BiLM, Streams, read_text, softmax_ids, windows, zero_states
from .model import ElmoModel, blas_threads, load_elmo
from .options import ElmoOptions, options_from_dict, sized_options
from .softmax import SoftmaxGradient, add_rows, draw_samples, sampled_loss
from .weights import ADAGRAD, VOCAB, network_arrays

CLIP_NORM = 10.0      # bilm-tf's all_clip_norm_val
ADAGRAD_START = 1.0   # Adagrad's initial accumulator (TensorFlow's default 0.1; bilm-tf 1.0)
_GB = 1 << 30
# Options that may differ between an interrupted run and its resumption.
FREE_OPTIONS = frozenset(("input", "output", "thread", "verbose", "tmpdir", "checkpoint",
                          "checkpointEvery", "resume"))


# ------------------------------------------------------------------- the weights
def initial_arrays(opt: ElmoOptions, rng: np.random.Generator) -> dict:
    """New weights for the network of `opt` (not the softmax), float32."""
    f, d = opt.n_filters, opt.char_dim
    out = {}
    for name, shape in network_arrays(opt):
        leaf = name.rsplit("/", 1)[-1]
        if name == "char_embed":
            a = rng.uniform(-1.0, 1.0, shape)
        elif leaf.startswith("W_cnn_"):
            width = shape[1]
            a = (rng.normal(0.0, math.sqrt(1.0 / (width * d)), shape) if opt.activation == "relu"
                 else rng.uniform(-0.05, 0.05, shape))
        elif leaf in ("W_carry", "W_transform", "W_proj"):
            a = rng.normal(0.0, math.sqrt(1.0 / f), shape)
        elif leaf in ("W_0", "W_P_0"):
            limit = math.sqrt(6.0 / (shape[0] + shape[1]))
            a = rng.uniform(-limit, limit, shape)
        elif leaf == "b_carry":
            a = np.full(shape, -2.0)
        else:  # the other biases
            a = np.zeros(shape)
        out[name] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def initial_softmax(rows: int, dim: int, rng: np.random.Generator) -> tuple:
    w = rng.normal(0.0, 1.0 / math.sqrt(dim), (rows, dim)).astype(np.float32)
    return w, np.zeros(rows, dtype=np.float32)


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def adagrad(weights, grads, accumulated, lr, scale):
    """Adagrad on flat float32 arrays: g = scale * grads; a += g^2; w -= lr g / sqrt(a)."""
    for i in range(weights.shape[0]):
        g = grads[i] * scale
        a = accumulated[i] + g * g
        accumulated[i] = a
        weights[i] -= lr * g / np.sqrt(a)


# ------------------------------------------------------------------- memory
def needed_bytes(opt: ElmoOptions, batch: int, bptt: int, rows: int, samples: int) -> int:
    """What training holds, about: weights, gradients and Adagrad's state (3 copies), the
    softmax likewise, and a window's saved activations."""
    weights = sum(int(np.prod(shape)) for _, shape in network_arrays(opt))
    softmax = rows * (opt.projection_dim + 1)
    positions = 2 * batch * bptt
    per_position = opt.n_layers * (2 * opt.projection_dim + 7 * opt.cell_dim) \
        + 3 * opt.n_filters * (opt.n_highway + 1) + min(samples, rows) * 2
    return 4 * (3 * (weights + softmax) + positions * per_position)


def check_memory(opt: ElmoOptions, args: ElmoArgs, rows: int) -> None:
    need = needed_bytes(opt, args.batchSize, args.bptt, rows, args.samples)
    have = available_memory()
    if need > have:
        raise EmbtkError(f"training this model needs about {need / _GB:.1f} GB of memory, "
                         f"{have / _GB:.1f} GB is available: make -lstmDim, -projDim, "
                         "-batchSize, -samples or the vocabulary (-minCount) smaller")


# ------------------------------------------------------------------- training
class _Run:
    """The state of a training run: weights, Adagrad's, the streams, and the pieces of
    each window (the streams split in -thread parts, each part's forward and backward
    passes on a thread of its own, BLAS single-threaded in each; the gradients summed)."""

    def __init__(self, opt: ElmoOptions, arrays: dict, accumulated: dict, text, of_type,
                 args: ElmoArgs, pool=None):
        self.opt, self.arrays, self.accumulated, self.args = opt, arrays, accumulated, args
        self.bilm = BiLM(opt, arrays)
        self.chars = (text.chars, text.lengths)
        self.of_type = of_type
        self.streams = Streams(text.stream, args.batchSize)
        bounds = np.linspace(0, args.batchSize, min(args.thread, args.batchSize) + 1)
        self.pieces = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        self.grads = [{name: np.zeros_like(arrays[name]) for name, _ in network_arrays(opt)}
                      for _ in self.pieces]
        self.pool = pool

    def new_states(self) -> list:
        return [zero_states(self.opt, piece.stop - piece.start) for piece in self.pieces]

    def joined_states(self, states: list) -> dict:
        """The LSTM states carried between windows, the pieces' rows joined (any -thread
        can resume them)."""
        return {f"{kind}:{d}:{layer}": np.concatenate([s[d][layer][i] for s in states])
                for d in (0, 1) for layer in range(self.opt.n_layers)
                for i, kind in enumerate("hc")}

    def split_states(self, saved: dict) -> list:
        return [[[tuple(np.ascontiguousarray(saved[f"{kind}:{d}:{layer}"][piece])
                        for kind in "hc") for layer in range(self.opt.n_layers)]
                 for d in (0, 1)] for piece in self.pieces]

    def step(self, rng, start: int, steps: int, states: list) -> float:
        """One window: forward, backward, clip, Adagrad. Returns its summed loss."""
        args, arrays = self.args, self.arrays
        fwd, bwd = self.streams.window(start, steps)
        samples = draw_samples(rng, arrays["softmax/W"].shape[0], args.samples)
        seeds = rng.integers(1 << 62, size=len(self.pieces))
        scale = args.bptt / (2 * args.batchSize * steps)  # of the loss: T x the mean

        def piece_pass(k):
            piece, grads = self.pieces[k], self.grads[k]
            with blas_threads(1):
                f, b = fwd[piece], bwd[piece]
                window = self.bilm.forward(self.chars, f, b, states[k],
                                           np.random.default_rng(seeds[k]), args.dropout)
                targets = self.of_type[np.stack([f[:, 1:].T, b[:, 1:].T])].ravel()
                tops = window.tops
                loss, d_tops, softmax = sampled_loss(
                    tops.reshape(len(targets), -1), targets, arrays["softmax/W"],
                    arrays["softmax/b"], samples, scale)
                for g in grads.values():
                    g.fill(0)
                self.bilm.backward(window, d_tops.reshape(tops.shape), grads)
            return loss, softmax

        if self.pool is None or len(self.pieces) == 1:
            results = [piece_pass(k) for k in range(len(self.pieces))]
        else:
            results = list(self.pool.map(piece_pass, range(len(self.pieces))))
        grads = self.grads[0]
        for other in self.grads[1:]:
            for name, g in grads.items():
                g += other[name]
        softmax = _summed([s for _, s in results])
        self._update(grads, softmax)
        return sum(loss for loss, _ in results)

    def _update(self, grads: dict, softmax) -> None:
        """Clip the gradient's global norm to CLIP_NORM, then Adagrad."""
        arrays, accumulated = self.arrays, self.accumulated
        norm2 = sum(float(np.vdot(g, g)) for g in grads.values())
        norm2 += float(np.vdot(softmax.d_w, softmax.d_w)) + float(np.vdot(softmax.d_b,
                                                                        softmax.d_b))
        scale = np.float32(min(1.0, CLIP_NORM / math.sqrt(norm2)) if norm2 > 0 else 1.0)
        lr = np.float32(self.args.lr)
        for name, g in grads.items():
            adagrad(arrays[name].reshape(-1), g.reshape(-1), accumulated[name].reshape(-1),
                    lr, scale)
        for name, d in (("softmax/W", softmax.d_w), ("softmax/b", softmax.d_b)):
            w, a = arrays[name][softmax.rows], accumulated[name][softmax.rows]
            adagrad(w.reshape(-1), d.reshape(-1), a.reshape(-1), lr, scale)
            arrays[name][softmax.rows] = w
            accumulated[name][softmax.rows] = a


def _summed(parts: list) -> SoftmaxGradient:
    """The softmax gradients of the pieces as one (rows in increasing order)."""
    if len(parts) == 1:
        return parts[0]
    rows, where = np.unique(np.concatenate([p.rows for p in parts]), return_inverse=True)
    d_w = np.zeros((len(rows), parts[0].d_w.shape[1]), dtype=np.float32)
    add_rows(d_w, where, np.concatenate([p.d_w for p in parts]))
    d_b = np.zeros(len(rows), dtype=np.float32)
    np.add.at(d_b, where, np.concatenate([p.d_b for p in parts]))
    return SoftmaxGradient(rows, d_w, d_b)


def train(args: ElmoArgs, source=None, given=frozenset()) -> ElmoModel:
    """Train as `args` say (validated here); `source` a file object or iterable of lines
    read instead of args.input; `given` the size options the caller set (checked against
    -inputModel's)."""
    args.validate()
    saved = _resume_options(args, given) if args.resume else None
    base = load_elmo(args.inputModel) if args.inputModel else None
    opt = _network_options(args, base, given)
    with training_input(args.input if source is None else source, args.tmpdir,
                        args.verbose) as path:
        check_memory(opt, args, 3)
        text = read_text(path, opt.max_chars, args.tmpdir)
        fingerprint = input_fingerprint(path) if args.checkpoint or args.resume else None
    shown = "stdin" if args.input == "-" else args.input
    if text.long_words and args.verbose > 0:
        print(f"embtk: {text.long_words:,} distinct words are longer than -maxChars - 2 "
              f"({opt.max_chars - 2}) bytes: the encoder reads their first "
              f"{opt.max_chars - 2} bytes", file=sys.stderr, flush=True)
    of_type, vocab = softmax_ids(text, args.minCount)
    length = len(text.stream) // args.batchSize
    if length < args.bptt + 1:
        raise EmbtkError(f"{shown} has {len(text.stream):,} tokens (with <S> and </S>): fewer "
                         f"than one window of -batchSize {args.batchSize} streams of -bptt "
                         f"{args.bptt} + 1 tokens ({args.batchSize * (args.bptt + 1):,}): "
                         "give more text, or a smaller -batchSize or -bptt")
    check_memory(opt, args, len(vocab))
    rng = np.random.default_rng(args.seed)
    if saved is None:
        arrays, accumulated = _starting_weights(opt, base, vocab, rng)
        at = None
    else:
        arrays, accumulated, at = _resumed(args, saved, fingerprint, opt, vocab, rng)
    plan = windows(length, args.bptt)
    with ThreadPoolExecutor(args.thread, thread_name_prefix="embtk-elmo") as pool:
        run = _Run(opt, arrays, accumulated, text, of_type, args, pool)
        states = run.new_states() if at is None else run.split_states(saved[1])

        def save(position: dict, complete: bool = False) -> None:
            state = {"command": "elmo", "options": _options(args), "fingerprint": fingerprint,
                     "position": position, "rng": rng.bit_generator.state,
                     "complete": complete}
            named = {f"w:{name}": a for name, a in arrays.items()}
            named.update((f"a:{name}", a) for name, a in accumulated.items())
            named.update(run.joined_states(states))
            write_state(args.checkpoint, state, named)

        tokens = _train_passes(run, rng, plan, args, states, at,
                               save if args.checkpoint else None)
    vocab_bytes = b"".join(w + b"\n" for w in vocab)
    arrays[VOCAB] = np.frombuffer(vocab_bytes, dtype=np.uint8)
    for name, a in accumulated.items():
        arrays[ADAGRAD + name] = a
    raw = dict(opt.raw)
    before = base.options.raw.get("training", {}) if base is not None else {}
    raw.update(n_tokens_vocab=len(vocab), unroll_steps=args.bptt, batch_size=args.batchSize,
               n_negative_samples_batch=args.samples, dropout=args.dropout,
               all_clip_norm_val=CLIP_NORM, n_epochs=args.epoch)
    raw["training"] = {"softmax_rows": len(vocab), "vocab_bytes": len(vocab_bytes),
                       "adagrad": True, "lr": args.lr, "minCount": args.minCount,
                       "tokens": int(before.get("tokens", 0)) + tokens, "seed": args.seed}
    return ElmoModel(options_from_dict(raw, "the trained model's options"), arrays)


def _options(args: ElmoArgs) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(args)
            if f.name not in FREE_OPTIONS}


def complete_run(args: ElmoArgs, given) -> bool:
    """Whether args.resume is the checkpoint of a run that ended normally, for these options
    and (when it is a file) this input: resuming it would train nothing."""
    state, _ = _resume_options(args, given, ())
    if not state.get("complete"):
        return False
    if args.input != "-" and state.get("fingerprint") != input_fingerprint(args.input):
        raise EmbtkError(f"checkpoint {args.resume} was written for another input, not "
                         f"{args.input}")
    return True


def _resume_options(args: ElmoArgs, given, names: tuple | None = None) -> tuple:
    """Read args.resume (its arrays `names`, None: all), whose options become those of
    `args`: an option given explicitly must have the checkpoint's value (or be one that
    may change, FREE_OPTIONS)."""
    path = args.resume
    state, saved = read_state(path, "elmo", names)
    try:
        stored, mine = state["options"], _options(args)
        for name, value in stored.items():
            if name in given and mine.get(name) != value:
                raise EmbtkError(f"-{name} {mine.get(name)} differs from checkpoint {path} "
                                 f"({value}): resume with the options of the interrupted run")
            setattr(args, name, value)
    except (KeyError, AttributeError, TypeError):
        raise EmbtkError(f"checkpoint {path} is corrupt: its options are unreadable") from None
    args.validate()
    return state, saved


def _resumed(args: ElmoArgs, saved: tuple, fingerprint: dict, opt, vocab, rng) -> tuple:
    """(weights, Adagrad's, position) of the checkpoint, checked against this input and
    network; rng set to the checkpoint's state."""
    state, named = saved
    path = args.resume
    if state.get("fingerprint") != fingerprint:
        was = (state.get("fingerprint") or {}).get("bytes")
        raise EmbtkError(f"checkpoint {path} was written for another input ({was} bytes), "
                         f"not {args.input} ({fingerprint['bytes']} bytes)")
    shapes = dict(network_arrays(opt))
    shapes["softmax/W"], shapes["softmax/b"] = (len(vocab), opt.projection_dim), (len(vocab),)
    try:
        arrays = {name: np.array(named[f"w:{name}"], dtype=np.float32) for name in shapes}
        accumulated = {name: np.array(named[f"a:{name}"], dtype=np.float32) for name in shapes}
        if any(arrays[n].shape != tuple(s) or accumulated[n].shape != tuple(s)
               for n, s in shapes.items()):
            raise ValueError
        rng.bit_generator.state = state["rng"]
        at = dict(state["position"])
        for name in ("h", "c"):
            for d in (0, 1):
                for layer in range(opt.n_layers):
                    if named[f"{name}:{d}:{layer}"].shape[0] != args.batchSize:
                        raise ValueError
    except (KeyError, ValueError, TypeError):
        raise EmbtkError(f"checkpoint {path} is corrupt: its arrays do not match its "
                         "options and input") from None
    if args.verbose > 0:
        print(f"embtk: resuming {path} at epoch {at['epoch'] + 1}, window {at['window']}"
              if not state.get("complete") else
              f"embtk: checkpoint {path} holds a complete run: nothing to train",
              file=sys.stderr, flush=True)
    return arrays, accumulated, at


def _network_options(args: ElmoArgs, base: ElmoModel | None, given) -> ElmoOptions:
    sized = sized_options(char_dim=args.charDim, filters=args.filter_pairs(),
                          n_highway=args.highway, projection_dim=args.projDim,
                          cell_dim=args.lstmDim, n_layers=args.layers, max_chars=args.maxChars,
                          cell_clip=args.cellClip or None, proj_clip=args.projClip or None)
    if base is None:
        return sized
    have = base.options
    for name, mine, theirs in (
            ("charDim", sized.char_dim, have.char_dim), ("filters", sized.filters, have.filters),
            ("highway", sized.n_highway, have.n_highway),
            ("projDim", sized.projection_dim, have.projection_dim),
            ("lstmDim", sized.cell_dim, have.cell_dim), ("layers", sized.n_layers, have.n_layers),
            ("maxChars", sized.max_chars, have.max_chars),
            ("cellClip", sized.cell_clip, have.cell_clip),
            ("projClip", sized.proj_clip, have.proj_clip)):
        if name in given and mine != theirs:
            shown = ",".join(f"{w}:{n}" for w, n in theirs) if name == "filters" else theirs
            raise EmbtkError(f"-inputModel {args.inputModel} has {name} {shown}; -{name} "
                             f"{getattr(args, name)} cannot change it (leave it out)")
    if not have.skip_connections and have.n_layers > 1:
        raise EmbtkError(f"-inputModel {args.inputModel} has no skip connections: embtk "
                         "trains models with them only")
    raw = {key: value for key, value in have.raw.items() if key != "training"}
    return options_from_dict(raw, f"-inputModel {args.inputModel}")


def _starting_weights(opt: ElmoOptions, base: ElmoModel | None, vocab: list, rng) -> tuple:
    """(weights, Adagrad's accumulators), writable float32: new, or -inputModel's with
    its softmax rows kept for the words the new vocabulary shares with it."""
    names = [name for name, _ in network_arrays(opt)]
    rows, dim = len(vocab), opt.projection_dim
    if base is None:
        arrays = initial_arrays(opt, rng)
        accumulated = {name: np.full_like(arrays[name], ADAGRAD_START) for name in names}
        arrays["softmax/W"], arrays["softmax/b"] = initial_softmax(rows, dim, rng)
    else:
        old = base.arrays
        arrays = {name: np.array(old[name], dtype=np.float32) for name in names}
        accumulated = {name: (np.array(old[ADAGRAD + name], dtype=np.float32)
                              if ADAGRAD + name in old else np.full_like(arrays[name],
                                                                         ADAGRAD_START))
                       for name in names}
        w, b = initial_softmax(rows, dim, rng)
        arrays["softmax/W"], arrays["softmax/b"] = w, b
        acc_w, acc_b = np.full_like(w, ADAGRAD_START), np.full_like(b, ADAGRAD_START)
        known = base.vocabulary
        if known:
            at = {word: i for i, word in enumerate(known)}
            pairs = [(i, at[word]) for i, word in enumerate(vocab) if word in at]
            new, was = (np.array(x, dtype=np.int64) for x in zip(*pairs))
            w[new], b[new] = old["softmax/W"][was], old["softmax/b"][was]
            if ADAGRAD + "softmax/W" in old:
                acc_w[new] = old[ADAGRAD + "softmax/W"][was]
                acc_b[new] = old[ADAGRAD + "softmax/b"][was]
        accumulated["softmax/W"], accumulated["softmax/b"] = acc_w, acc_b
    accumulated.setdefault("softmax/W", np.full_like(arrays["softmax/W"], ADAGRAD_START))
    accumulated.setdefault("softmax/b", np.full_like(arrays["softmax/b"], ADAGRAD_START))
    return arrays, accumulated


def _train_passes(run: _Run, rng, plan: list, args: ElmoArgs, states: list,
                  at: dict | None = None, save=None) -> int:
    """Every window of every epoch from `at` (a checkpoint's position; None: the start),
    `states` the LSTM states carried between windows; returns the tokens trained on (per
    direction). With `save(position, complete)`, a checkpoint every -checkpointEvery
    seconds, on Ctrl-C or a signal (at a window's end), and at the end, complete."""
    batch = args.batchSize
    total = sum(steps for _, steps in plan) * batch * args.epoch
    at = at or {"epoch": 0, "window": 0, "done": 0, "smooth": None}
    bar = progress_bar(total=total, initial=at["done"], unit="tok", unit_scale=True,
                       desc="elmo", leave=False) if args.verbose >= 2 else None
    started, first, saved_at = time.perf_counter(), at["done"], time.perf_counter()
    whole_window = deferred_signals if save is not None else contextlib.nullcontext
    try:
        with blas_threads(1), np.errstate(over="ignore", under="ignore"):
            while at["epoch"] < args.epoch:
                with whole_window():
                    start, steps = plan[at["window"]]
                    loss = run.step(rng, start, steps, states) / (2 * batch * steps)
                    if not math.isfinite(loss):
                        raise EmbtkError("training diverged (the loss is not finite): try a "
                                         "smaller -lr")
                    smooth = at["smooth"]
                    at["smooth"] = loss if smooth is None else 0.98 * smooth + 0.02 * loss
                    at["done"] += batch * steps
                    at["window"] += 1
                    if at["window"] == len(plan):  # the epoch's end: the streams start afresh
                        at["epoch"], at["window"] = at["epoch"] + 1, 0
                        states[:] = run.new_states()
                if bar is not None:
                    bar.set_postfix_str(f"ppl {math.exp(min(at['smooth'], 50)):.1f}",
                                        refresh=False)
                    bar.update(batch * steps)
                if save is not None and time.perf_counter() - saved_at >= args.checkpointEvery:
                    save(at)
                    saved_at = time.perf_counter()
    except BaseException as exc:
        if save is not None and not isinstance(exc, Exception):  # Ctrl-C, a signal
            save(at)
            if args.verbose > 0:
                print(f"\nCheckpoint saved: continue with -resume {args.checkpoint}",
                      file=sys.stderr, flush=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    if save is not None:  # the final state, marked complete: resuming it trains nothing
        save(at, complete=True)
    done, smooth = at["done"], at["smooth"] if at["smooth"] is not None else 0.0
    if args.verbose > 0:
        seconds = max(1e-9, time.perf_counter() - started)
        print(f"Trained on {done:,} tokens per direction in {seconds:.0f} s "
              f"({(done - first) / seconds:,.0f} tokens/s), sampled-softmax perplexity "
              f"{math.exp(min(smooth, 50)):.1f} at the end", file=sys.stderr, flush=True)
    return done


def train_elmo(input, *, charDim=None, filters=None, highway=None, projDim=None,
               lstmDim=None, layers=None, maxChars=None, bptt=None, batchSize=None, lr=None,
               epoch=None, minCount=None, samples=None, cellClip=None, projClip=None,
               dropout=None, thread=None, seed=None, verbose=None, tmpdir=None,
               inputModel=None, checkpoint=None, checkpointEvery=None,
               resume=None) -> ElmoModel:
    """Train a biLM on `input` (a path, '-' for stdin, a file object or an iterable of
    lines); the options are `embtk elmo`'s (None: its default, or -inputModel's size),
    `filters` also as ((width, count), ...). Returns the ElmoModel with its softmax and
    Adagrad's state (`save` keeps them; `perplexity` uses the softmax). `checkpoint`: a
    file saved every `checkpointEvery` seconds, on Ctrl-C and at the end; `resume`: such
    a file, whose run goes on to the model it would have given."""
    options = {key: value for key, value in locals().items()
               if key != "input" and value is not None and value is not False}
    check_python_types(ElmoArgs, {key: (key, value) for key, value in options.items()
                                  if key != "filters"})
    if "filters" in options and not isinstance(options["filters"], str):
        try:
            options["filters"] = ",".join(f"{int(w)}:{int(n)}" for w, n in options["filters"])
        except (TypeError, ValueError):
            raise TypeError("filters must be a str such as '1:32,2:32' or (width, count) "
                            f"pairs, got {options['filters']!r}") from None
    for key in ("inputModel", "checkpoint", "resume", "tmpdir"):
        if key in options:
            options[key] = os.fsdecode(options[key]) if not isinstance(options[key], bool) \
                else "yes"
    is_path = isinstance(input, (str, bytes, os.PathLike))
    args = ElmoArgs.from_options(input=os.fsdecode(input) if is_path else "-", **options)
    return train(args, None if is_path else input, frozenset(options))
