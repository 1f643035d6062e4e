"""GloVe's training: the vocabulary, then AdaGrad over the shuffled co-occurrence records.

The vocabulary comes from embtk's tokenizer and Dictionary (words kept at -minCount;
line ends separate windows and get no vector). `cooccurrence` counts the weighted pairs
in bounded memory and writes them shuffled; here, AdaGrad fits

    J = sum over non-zero X_ij of f(X_ij) (w_i . c_j + b_i + b~_j - log X_ij)^2,
    f(x) = min(1, (x / xmax)^alpha),

with one nogil numba call per thread and epoch (Hogwild: threads share the matrices
without locks, each over its own slice of the shuffled records). The result is a
FastText model with no subwords, so every vector command and method accepts it.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections import namedtuple
from dataclasses import dataclass

import numba as nb
import numpy as np

from ..args import Args, GloveArgs
from .cooccurrence import count_to_file, load_records
from ..corpus import corpus_ids, count_vocabulary
from ..dictionary import Dictionary
from ..errors import EmbtkError, progress_bar
from ..model import FastText
from ..trainer import fill_uniform, log, run_threads, thread_seed

_GB = 1 << 30
BIAS_STEP = 1.0  # AdaGrad step of the biases (see adagrad_step)
# Every fastmath flag except 'nnan' and 'ninf': the non-finite check must stay.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


# ----------------------------------------------------------------------- vocabulary


def build_vocabulary(path: str, args: GloveArgs):
    """(Dictionary of the words kept, corpus as word ids with -1 at each line end).

    Every token is a word here: the label prefix is set to a byte no token can hold.
    The text is read in pieces; the ids are held in memory, for counting co-occurrences.
    """
    counting = Args.for_model("skipgram", minCount=args.minCount, minn=0, maxn=0, label="\0")
    full = count_vocabulary(counting, path)
    ids = corpus_ids(full, path)
    eos = full.eos_id()
    keep = [i for i in range(full.nwords) if i != eos]
    if not keep:
        raise EmbtkError(f"{args.input} has no word that occurs -minCount ({args.minCount}) times")
    remap = np.full(full.nwords, -1, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    ids = remap[ids]  # EOS -> -1, the other ids shifted down past it
    words = [full.words[i] for i in keep]
    dictionary = Dictionary(words, full.counts[keep], np.zeros(len(keep), np.int8), full.ntokens,
                            minn=0, maxn=0, bucket=0, word_ngrams=1)
    return dictionary, ids


# ------------------------------------------------------------------------- training

# What AdaGrad fits: the word and context vectors, each row's bias in its last column
# (wv, cv), and their accumulated squared gradients (wsq, csq, starting at 1).
GloveParams = namedtuple("GloveParams", "wv cv wsq csq")
# An epoch's step sizes and weighting (lr, xmax, alpha), and where its threads report:
# records done (progress[tid]), cost and records skipped (costs[tid]), and the stop flag
# (halt[0]).
GloveStep = namedtuple("GloveStep", "lr xmax alpha progress costs halt")


@nb.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def weighting(x, xmax, alpha):
    """f(x) = (x / xmax)^alpha below xmax, 1 from there on."""
    if x >= xmax:
        return np.float32(1.0)
    return np.float32((x / xmax) ** alpha)


@nb.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy", no_cfunc_wrapper=True)
def adagrad_step(params, i, j, x, lr, xmax, alpha):
    """One record (i, j, X_ij): AdaGrad on w_i, c_j and their biases (last column).

    Each step divides by the root of the squared gradients accumulated before it (they
    start at 1), then adds its own. The vectors' step is `lr`; the biases' is BIAS_STEP,
    as in the reference tool: they must reach log counts (up to ~10) within a few
    epochs, which measurably helps similarity scores (SimLex-999 +0.015 on en_corpus).
    Returns the record's cost 0.5 f(x) diff^2, or -1 when the difference is not finite
    (the record is then skipped).
    """
    wv, cv, wsq, csq = params
    dim = wv.shape[1] - 1
    dot = wv[i, dim] + cv[j, dim]
    for k in range(dim):
        dot += wv[i, k] * cv[j, k]
    diff = dot - np.float32(math.log(x))
    fdiff = weighting(x, xmax, alpha) * diff
    if not math.isfinite(fdiff):
        return -1.0
    g = np.float32(lr) * fdiff
    for k in range(dim):
        gw = g * cv[j, k]
        gc = g * wv[i, k]
        wv[i, k] -= gw / math.sqrt(wsq[i, k])
        cv[j, k] -= gc / math.sqrt(csq[j, k])
        wsq[i, k] += gw * gw
        csq[j, k] += gc * gc
    gb = np.float32(BIAS_STEP) * fdiff
    wv[i, dim] -= gb / math.sqrt(wsq[i, dim])
    cv[j, dim] -= gb / math.sqrt(csq[j, dim])
    wsq[i, dim] += gb * gb
    csq[j, dim] += gb * gb
    return 0.5 * fdiff * diff


@nb.njit(cache=True, nogil=True, fastmath=_FAST, error_model="numpy", no_cfunc_wrapper=True)
def train_records(tid, pairs, counts, start, stop, params, step):
    """One thread's share of an epoch: records start..stop-1, in file order, fitting
    `params` (a GloveParams) as `step` (a GloveStep) says."""
    cost = 0.0
    skipped = 0
    lr = step.lr
    xmax = np.float32(step.xmax)
    alpha = np.float32(step.alpha)
    progress, costs, halt = step.progress, step.costs, step.halt
    for n in range(start, stop):
        if (n - start) & 0x3FFF == 0:
            progress[tid] = n - start
            costs[tid, 0] = cost
            if halt[0] != 0:
                return
        c = adagrad_step(params, pairs[n, 0], pairs[n, 1], counts[n, 2], lr, xmax, alpha)
        if c < 0:
            skipped += 1
        else:
            cost += c
    progress[tid] = stop - start
    costs[tid, 0] = cost
    costs[tid, 1] = skipped


def _bar(args: GloveArgs, total: int, unit: str, fmt: str):
    if args.verbose < 2:
        return None
    return progress_bar(total=total, unit=unit, unit_scale=True, bar_format=fmt)


def _run_epochs(records, params: GloveParams, args: GloveArgs) -> list:
    """All epochs, one thread call per thread and epoch; returns the cost of each epoch
    (mean over the records). Ctrl-C stops the threads before it propagates."""
    pairs = np.asarray(records)
    counts = pairs.view(np.float32)
    n = len(pairs)
    nthreads = max(1, min(args.thread, n))
    bounds = [t * n // nthreads for t in range(nthreads + 1)]
    progress = np.zeros(nthreads, dtype=np.int64)
    costs = np.zeros((nthreads, 2), dtype=np.float64)
    halt = np.zeros(1, dtype=np.int32)
    step = GloveStep(float(args.lr), float(args.xmax), float(args.alpha), progress, costs, halt)
    history = []
    bar = _bar(args, args.epoch * n, "rec",
               "Training: {percentage:5.1f}% |{bar}| {desc} {rate_fmt} ETA: {remaining}")

    def show(epoch):
        done = int(progress.sum())
        cost = costs[:, 0].sum() / max(1, done)
        bar.set_description_str(f"epoch {epoch + 1}/{args.epoch} cost {cost:.5f}", refresh=False)
        bar.update(epoch * n + done - bar.n)

    try:
        for epoch in range(args.epoch):
            progress[:] = 0
            costs[:] = 0

            def work(tid):
                train_records(tid, pairs, counts, bounds[tid], bounds[tid + 1], params, step)

            run_threads(work, nthreads, halt, None if bar is None else lambda: show(epoch))
            cost = costs[:, 0].sum() / max(1, n - costs[:, 1].sum())
            if not math.isfinite(cost) or costs[:, 1].sum() > n // 2:
                raise EmbtkError("training diverged (the cost became NaN); try a smaller -lr")
            history.append(float(cost))
            if bar is not None:
                bar.set_description_str(f"epoch {epoch + 1}/{args.epoch} cost {cost:.5f}", refresh=False)
                bar.update((epoch + 1) * n - bar.n)
            elif args.verbose > 0:
                log(args, f"epoch {epoch + 1}/{args.epoch} cost {cost:.6f}")
    finally:
        if bar is not None:
            bar.close()
    return history


def train(args: GloveArgs) -> FastText:
    """Count, shuffle and train; returns the vectors as a FastText model (no subwords).

    The temporary folder (shards, buckets, the shuffled records) is removed at the end,
    whether training succeeded, failed or was interrupted.
    """
    args.validate()
    timings = {}
    started = time.perf_counter()
    dictionary, ids = build_vocabulary(args.input, args)
    nwords = dictionary.nwords
    timings["vocabulary"] = time.perf_counter() - started
    log(args, f"Read {dictionary.ntokens // 1_000_000}M words")
    log(args, f"Number of words:  {nwords}")

    folder = tempfile.mkdtemp(prefix="embtk-glove-", dir=args.tmpdir or None)
    try:
        bar = _bar(args, len(ids), "tok",
                   "Counting: {percentage:5.1f}% |{bar}| {n_fmt}/{total_fmt} tokens ETA: {remaining}")

        def phase(name):
            if bar is not None and not bar.disable:
                bar.close()  # counting is over
            log(args, f"{name.capitalize()} ...")

        try:
            counted = count_to_file(ids, nwords, args.ws, args.symmetric, int(args.memory * _GB),
                                    folder, thread_seed(args.seed, 2),
                                    advance=bar.update if bar else None, phase=phase)
        finally:
            if bar is not None and not bar.disable:
                bar.close()
        del ids
        timings.update(counted.seconds)
        log(args, f"Non-zero co-occurrences: {counted.count} ({counted.shards} shards, "
                   f"{counted.buckets} shuffle buckets)")
        if counted.count == 0:
            raise EmbtkError(f"{args.input} has no pair of words within -ws {args.ws} of each "
                             "other on one line: nothing to train on")

        started = time.perf_counter()
        dim = args.dim
        wv = np.empty((nwords, dim + 1), dtype=np.float32)
        cv = np.empty((nwords, dim + 1), dtype=np.float32)
        fill_uniform(wv, 0.5 / dim, thread_seed(args.seed, 0), args.thread)
        fill_uniform(cv, 0.5 / dim, thread_seed(args.seed, 1), args.thread)
        wsq = np.ones_like(wv)
        csq = np.ones_like(cv)
        records = load_records(counted.path, counted.count)
        costs = _run_epochs(records, GloveParams(wv, cv, wsq, csq), args)
        del records
        timings["train"] = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    words = np.ascontiguousarray(wv[:, :dim])
    contexts = np.ascontiguousarray(cv[:, :dim])
    vectors = words + contexts if args.vectors == "w+w~" else words
    info = GloveInfo(cooccurrences=counted.count, shards=counted.shards, epoch_costs=costs,
                     seconds=timings, word_biases=wv[:, dim].copy(),
                     context_biases=cv[:, dim].copy())
    model = FastText(args.model_args(), dictionary, vectors, contexts, final_loss=costs[-1],
                     glove=info)
    log(args, "Times: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return model


@dataclass
class GloveInfo:
    """What training found and took, kept on the model as `model.glove`."""

    cooccurrences: int
    shards: int
    epoch_costs: list
    seconds: dict
    word_biases: np.ndarray
    context_biases: np.ndarray
