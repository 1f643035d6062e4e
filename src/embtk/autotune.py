"""Hyper-parameter search for classifiers (fastText's `-autotune-validation`).

Within a time budget, train one model after another, each with options drawn around
the best ones so far (wide steps at first, narrower as time runs out), score each on
the validation file with the chosen metric, and finally train again with the best.
Options the user set explicitly are never changed. With `-autotune-modelsize` every
trial is also pruned and quantized to fit the size, as fastText does.

The corpus is read and counted once; each trial only rebuilds the n-gram tables.
"""

from __future__ import annotations

import copy
import math
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass

import numpy as np

from .args import Args
from .compress import select_rows
from .tokens import EOS
from .errors import EmbtkError
from .safeio import available_memory, open_for_reading
from .meter import Meter
from .model import FastText
from .quantmatrix import KSUB, ProductQuantizer
from .trainer import TrainingDiverged, TrainingTimeout, build_dictionary

MIN_CUTOFF = 256          # the fewest rows a quantized input matrix can keep
MINN_CHOICES = (0, 2, 3)  # maxn follows as minn + 3 (or 0)
TUNED = ("epoch", "lr", "dim", "wordNgrams", "loss", "bucket", "minn", "maxn", "dsub")


# ------------------------------------------------------------------------ sampling


def _gauss_step(rng, value, low, high, start_sigma, end_sigma, t, linear, as_int):
    """A random step from `value`: additive (linear) or by a power of two, with a spread
    that narrows from start_sigma to end_sigma over the middle half of the budget."""
    sigma = start_sigma - (start_sigma - end_sigma) / 0.5 * min(0.5, max(t - 0.25, 0.0))
    coeff = rng.normal(0.0, sigma)
    new = value + coeff if linear else value * 2.0 ** coeff
    if as_int:
        new = math.trunc(new)
    return min(max(new, low), high)


class SearchStrategy:
    """Proposes the options of each trial: first the user's own, then perturbations of
    the best so far."""

    def __init__(self, base: Args, seed: int):
        self.rng = np.random.default_rng(seed)
        self.trials = 0
        self.original_bucket = base.bucket
        self.best_nonzero_bucket = 2000000
        self.update_best(base)

    def update_best(self, args: Args) -> None:
        self.best = copy.copy(args)
        self.best_minn_index = MINN_CHOICES.index(args.minn) if args.minn in MINN_CHOICES else 0
        self.best_dsub_exponent = max(1, int(math.log2(args.dsub)))
        if args.bucket:
            self.best_nonzero_bucket = args.bucket

    def ask(self, t: float) -> Args:
        """Options for the next trial; `t` is the fraction of the budget used."""
        self.trials += 1
        args = copy.copy(self.best)
        if self.trials == 1:
            return args
        manual, rng = args.manual, self.rng

        def step(value, low, high, s0, s1, linear, as_int=True):
            return _gauss_step(rng, value, low, high, s0, s1, t, linear, as_int)

        if "epoch" not in manual:
            args.epoch = step(args.epoch, 1, 100, 2.8, 2.5, False)
        if "lr" not in manual:
            args.lr = step(args.lr, 0.01, 5.0, 1.9, 1.0, False, as_int=False)
        if "dim" not in manual:
            args.dim = step(args.dim, 1, 1000, 1.4, 0.3, False)
        if "wordNgrams" not in manual:
            args.wordNgrams = step(args.wordNgrams, 1, 5, 4.3, 2.4, True)
        if "dsub" not in manual:
            args.dsub = 1 << step(self.best_dsub_exponent, 1, 4, 2.0, 1.0, True)
        if "minn" not in manual:
            args.minn = MINN_CHOICES[step(self.best_minn_index, 0, len(MINN_CHOICES) - 1,
                                          4.0, 1.4, True)]
        if "maxn" not in manual:
            args.maxn = 0 if args.minn == 0 else args.minn + 3
        if "bucket" not in manual:
            args.bucket = step(self.best_nonzero_bucket, 10000, 10000000, 2.0, 1.5, False)
        else:
            args.bucket = self.original_bucket
        if args.wordNgrams <= 1 and args.maxn == 0 and not args.floret:
            args.bucket = 0  # (floret mode hashes every word: its buckets always count)
        if "loss" not in manual:
            args.loss = "softmax"
        return args


# ------------------------------------------------------------------------- scoring


def validation_score(model: FastText, data: bytes, k: int, metric: tuple) -> float:
    """The -autotune-metric of `model` on labelled lines `data` (fastText's Meter)."""
    name, value, label_name = metric
    label = -1
    if label_name:
        label = model.get_label_id(label_name)
        if label < 0:
            raise EmbtkError(f"-autotune-metric: the label {label_name} is not in the training data")
    meter = Meter(model.labels, log=name != "f1")
    for chunk in model.predictor.chunks(data, k, 0.0):
        meter.add(chunk)
    if name == "f1":
        return meter.label_scores(label)[2] if label >= 0 else meter.f1
    if name == "precisionAtRecall":
        return meter.precision_at_recall(value, label)
    return meter.recall_at_precision(value, label)


# ------------------------------------------------------------------------ model size


def cutoff_for_size(model: FastText, args: Args, size: int) -> int:
    """The most input rows (kept by norm, as pruning keeps them) whose `.ftz` fits in
    `size` bytes, counted exactly: dictionary entries, pruned-index pairs, codes and
    quantizers. MIN_CUTOFF when even that many do not fit (the size cannot be reached)."""
    d, dim = model.dictionary, model.get_dimension()
    nsubq = ProductQuantizer.shape_for(dim, args.dsub)[0]
    pq_block = 16 + 4 * dim * KSUB
    norm_block = (16 + 4 * KSUB) if args.qnorm else 0
    out_rows = model.output_matrix.shape[0]
    if args.qout:
        out_size = 21 + out_rows * ProductQuantizer.shape_for(dim, 2)[0] + pq_block
        out_size += (out_rows + norm_block) if args.qnorm else 0
    else:
        out_size = 16 + 4 * out_rows * dim
    labels = sum(len(w) + 10 for w in d.words[d.nwords:])
    fixed = 8 + 56 + 8 + 28 + labels + 1 + 21 + pq_block + norm_block + 1 + out_size
    rows = model.input_matrix.shape[0]
    order = select_rows(model.input_matrix, rows, d.get_id(EOS))
    lengths = np.array([len(w) for w in d.words[: d.nwords]], dtype=np.int64)
    entry = np.where(order < d.nwords, lengths[np.minimum(order, max(d.nwords - 1, 0))] + 10, 8)
    per_row = nsubq + (1 if args.qnorm else 0)
    total = fixed + np.cumsum(entry + per_row)
    fits = int(np.searchsorted(total, size, side="right"))
    return max(min(fits, rows - 1), MIN_CUTOFF)


def _fit_size(model: FastText, args: Args, size: int | None, counted) -> bool:
    """Quantize a trial's model to the size, as fastText does; False if it cannot fit."""
    if size is None:
        return True
    args.qnorm, args.retrain = True, True
    args.qout = model.output_matrix.shape[0] >= MIN_CUTOFF
    args.cutoff = cutoff_for_size(model, args, size)
    if args.cutoff == MIN_CUTOFF:
        return False
    model.quantize(input=args.input, qout=args.qout, cutoff=args.cutoff, retrain=True,
                   epoch=args.epoch, lr=args.lr, thread=args.thread, verbose=0, dsub=args.dsub,
                   qnorm=True)
    return True


# ------------------------------------------------------------------------- search


def _fits_in_memory(args: Args, nwords: int, share: int = 1) -> bool:
    """fastText skips a sample whose matrices cannot be allocated; Linux would rather
    kill the process later, so check before allocating (half of the free RAM at most,
    divided among the `share` trials that may run at once)."""
    need = 4 * (nwords + args.effective_bucket()) * args.dim
    return need < available_memory() // (2 * share)


class _Progress:
    """fastText's autotune line on stderr, refreshed twice a second."""

    def __init__(self, duration: float, enabled: bool):
        self.duration, self.enabled = duration, enabled
        self.start = time.perf_counter()
        self.trials, self.best = 0, None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if enabled:
            self._thread.start()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def line(self) -> str:
        elapsed = self.elapsed()
        left = int(max(self.duration - elapsed, 0))
        best = "  unknown" if self.best is None else f"{self.best:9.6f}"
        return (f"\rProgress: {min(100.0, 100 * elapsed / self.duration):5.1f}% Trials: "
                f"{self.trials:4d} Best score: {best} ETA: {left // 3600:3d}h{left // 60 % 60:2d}m"
                f"{left % 60:2d}s")

    def _loop(self):
        while not self._done.wait(0.5):
            print(self.line(), end="", file=sys.stderr, flush=True)

    def close(self):
        self._done.set()
        if self.enabled:
            self._thread.join()
            print(self.line(), file=sys.stderr, flush=True)


def _run_trial(trial: Args, deadline, counted, size, validation: bytes, metric):
    """Train (and fit to the size) with the trial's options; its score, or None when the
    size cannot be met, or why there is none: "timeout" (the budget ran out) or "failed"
    (diverged or out of memory). The model is dropped on return."""
    try:
        model = FastText.train(copy.copy(trial), deadline=deadline, counted=counted)
        if not _fit_size(model, trial, size, counted):
            return None
    except TrainingTimeout:
        return "timeout"
    except (TrainingDiverged, MemoryError):
        return "failed"  # a sample that asks too much: try the next one
    return validation_score(model, validation, trial.autotunePredictions, metric)


# ----------------------------------------------------------- trials on other processes


@dataclass(frozen=True)
class TrialPool:
    """Processes to run trials on (e.g. Dask workers, see embtk.dask.trial_pool): a
    concurrent.futures executor, how many trials to run at once, and the threads of each
    (unless -thread was given)."""

    executor: object
    slots: int
    threads: int


@dataclass(frozen=True)
class _TrialJob:
    """What a process needs to run one trial: the search's options (`base`, from which it
    reads and counts the corpus once per search), the trial's, and the deadline as wall
    clock time (a remote process has its own perf_counter)."""

    search: str
    base: Args
    trial: Args
    size: int | None
    metric: tuple
    deadline: float
    share: int  # trials that may run at once on one machine


_COUNTED = {}  # in a process running trials: the corpus of the current search, read once
_COUNTED_LOCK = threading.Lock()


def run_trial_job(job: _TrialJob):
    """One trial in the process the pool chose: _run_trial's outcome."""
    with _COUNTED_LOCK:
        if job.search not in _COUNTED:
            _COUNTED.clear()  # one search at a time: the memory of one corpus
            with open_for_reading(job.base.autotuneValidationFile, "validation file") as f:
                validation = f.read()
            path = job.base.input
            _COUNTED[job.search] = (path, build_dictionary(job.base, path)), validation
        counted, validation = _COUNTED[job.search]
    deadline = time.perf_counter() + (job.deadline - time.time())
    if not _fits_in_memory(job.trial, counted[1].nwords, job.share):  # this machine's memory
        return "failed"
    return _run_trial(job.trial, deadline, counted, job.size, validation, job.metric)


# ------------------------------------------------------------------------- search


def _describe(args: Args) -> str:
    return " ".join(f"{name} {getattr(args, name)}" for name in
                    ("epoch", "lr", "dim", "wordNgrams", "minn", "maxn", "bucket", "dsub", "loss"))


class _Search:
    """One search: the options proposed, the trials' outcomes, the best so far."""

    def __init__(self, args: Args, base: Args, counted, size, validation: bytes, metric):
        self.args, self.base, self.counted = args, base, counted
        self.size, self.validation, self.metric = size, validation, metric
        self.strategy = SearchStrategy(base, args.seed)
        self.progress = _Progress(args.autotuneDuration, args.verbose > 0)
        self.deadline = self.progress.start + args.autotuneDuration
        self.best_args, self.best_score, self.size_failures, self.failures = None, None, 0, 0

    def ask(self, share: int = 1) -> Args | None:
        """The next trial's options, or None for a sample too large for the memory
        (shared by `share` trials at once)."""
        self.progress.trials += 1
        trial = self.strategy.ask(self.progress.elapsed() / self.args.autotuneDuration)
        return trial if _fits_in_memory(trial, self.counted[1].nwords, share) else None

    def record(self, trial: Args, outcome) -> None:
        if outcome == "failed":
            self.failures += 1
        elif outcome is None:
            self.size_failures += 1
        elif outcome != "timeout":
            if self.args.verbose > 2:
                print(f"\nTrial {self.progress.trials}: {_describe(trial)} score {outcome:.6f}",
                      file=sys.stderr)
            if self.best_score is None or outcome > self.best_score:
                self.best_args, self.best_score = trial, outcome
                self.progress.best = outcome
                self.strategy.update_best(trial)

    def run_here(self) -> None:
        """One trial after another in this process."""
        while time.perf_counter() < self.deadline:
            trial = self.ask()
            if trial is None:
                continue
            outcome = _run_trial(trial, self.deadline, self.counted, self.size,
                                 self.validation, self.metric)
            if outcome == "timeout":
                break
            self.record(trial, outcome)

    def run_on(self, pool: TrialPool) -> None:
        """`pool.slots` trials at a time on the pool's processes, each new one drawn around
        the best known when it starts. Trials stop at the deadline by themselves; those
        not back a little later (a lost worker) are given up."""
        search = os.urandom(8).hex()
        left = lambda: self.deadline - time.perf_counter()
        running = {}
        try:
            while True:
                while left() > 0 and len(running) < pool.slots:
                    trial = self.ask(pool.slots)  # this machine may hold the workers too
                    if trial is None:
                        continue
                    if "thread" not in self.args.manual:
                        trial.thread = pool.threads
                    job = _TrialJob(search, self.base, trial, self.size, self.metric,
                                    time.time() + left(), pool.slots)
                    running[pool.executor.submit(run_trial_job, job)] = trial
                if not running:
                    return
                done, _ = wait(running, timeout=max(left(), 0) + _LATE_TRIALS,
                               return_when=FIRST_COMPLETED)
                if not done:
                    return
                for future in done:
                    self.record(running.pop(future), future.result())
        finally:
            for future in running:
                future.cancel()


_LATE_TRIALS = 10.0  # seconds past the deadline to wait for the trials still running


def autotune(args: Args, pool: TrialPool | None = None) -> FastText:
    """Search options for a classifier on args.input, scored on args.autotuneValidationFile;
    returns the model trained with the best ones (quantized with -autotune-modelsize).
    With a `pool`, trials run concurrently on its processes."""
    args.validate()
    if not args.supervised:
        raise EmbtkError("autotune is for supervised models only")
    metric = args.autotune_metric()
    size = args.autotune_model_size()
    with open_for_reading(args.autotuneValidationFile, "validation file") as f:
        validation = f.read()
    if not validation.strip():
        raise EmbtkError(f"validation file {args.autotuneValidationFile} is empty")
    if args.pretrainedVectors:  # the vectors fix the dimension
        args.manual = args.manual | {"dim"}
    if args.verbose > 0:
        for name in TUNED:
            if name in args.manual:
                print(f"Warning : {name} is manually set to a specific value. It will not be "
                      "automatically optimized.", file=sys.stderr)

    quiet = copy.copy(args)
    quiet.verbose = 0
    counted = (args.input, build_dictionary(quiet, args.input))
    if metric[2] and counted[1].get_id(metric[2].encode("utf-8")) < counted[1].nwords:
        raise EmbtkError(f"-autotune-metric: the label {metric[2]} is not in the training data")

    search = _Search(args, quiet, counted, size, validation, metric)
    try:
        search.run_here() if pool is None else search.run_on(pool)
    except KeyboardInterrupt:
        if args.verbose > 0:
            print("\nAborting autotune...", file=sys.stderr)
    finally:
        search.progress.close()
    best_args, best_score = search.best_args, search.best_score
    if best_args is None:
        if size is not None and search.size_failures:
            raise EmbtkError("cannot reach -autotune-modelsize "
                             f"{args.autotuneModelSize}: increase it")
        if search.failures:
            raise EmbtkError(f"every one of the {search.failures} trials diverged or ran out of "
                             "memory; set a smaller -lr, -dim or -bucket")
        raise EmbtkError("not enough time to train even once: increase -autotune-duration")
    if args.verbose > 0:
        print("Training again with best arguments", file=sys.stderr)
    if args.verbose > 2:
        print(f"Best: {_describe(best_args)} score {best_score:.6f}", file=sys.stderr)
    final = copy.copy(best_args)
    final.verbose, final.thread = args.verbose, args.thread
    model = FastText.train(copy.copy(final), counted=counted)
    _fit_size(model, final, size, counted)
    model.args.autotuneValidationFile = model.args.autotuneScheduler = ""
    return model
