"""Training: count and encode the corpus, run the kernels on every thread, show progress."""

from __future__ import annotations

import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from .args import Args, default_thread_count
from .checkpoint import (Progress, check_same_input, input_fingerprint, read_checkpoint,
                         resume_options, write_checkpoint)
from .continuation import carry_rows, extend_vocabulary, open_previous
from .corpus import EncodedCorpus, count_vocabulary, encode_corpus
from .dictionary import LABEL, WORD, Dictionary
from .errors import EmbtkError, progress_bar
from .vecformat import read_vec
from .kernels import (INIT_BLOCK, Model, Schedule, cbow_window, init_uniform, skipgram_scratch,
                      train_supervised, train_unsupervised)
from .losses import for_kernels, make_loss_params, thread_state
from .minibatch import batched
from .primitives import seed_rng


def cache_line_rows(n: int, dtype) -> np.ndarray:
    """n zeroed rows of 8 values, each row exactly one 64-byte cache line, so that threads
    writing their own row never contend for a line."""
    flat = np.zeros((n + 1) * 8, dtype=dtype)
    skip = (-flat.ctypes.data % 64) // flat.itemsize
    return flat[skip:skip + 8 * n].reshape(n, 8)


def thread_seed(seed: int, tid: int) -> int:
    """Thread `tid`'s seed, as fastText's `seed + tid`, kept a non-negative int64."""
    return (seed + tid) & 0x7FFFFFFFFFFFFFFF


def log(args, message: str) -> None:
    """A line on stderr unless -verbose 0 (the options of any command that has -verbose)."""
    if args.verbose > 0:
        print(message, file=sys.stderr, flush=True)


_FILL_ROUND = 32  # blocks per thread between two looks at the deadline (~0.1 s)


def fill_uniform(matrix: np.ndarray, bound: float, seed: int, nthreads: int,
                 deadline: float | None = None) -> None:
    """init_uniform over the whole matrix, its blocks shared among `nthreads` threads (at
    least one per core), in rounds so that a `deadline` (time.perf_counter()) stops a huge
    matrix with TrainingTimeout. Each block has its own stream: rounds and threads change
    nothing.

    Why one per core even at -thread 1: this first touch faults the matrix in, on
    transparent huge pages (numpy asks for them; skipgram trains faster on them). In a
    VM a huge-page fault can wait on the host, and one thread then waits alone, where
    several wait side by side (figures: benchmarks/README.md, "Design notes behind the
    kernels")."""
    blocks = -(-matrix.size // INIT_BLOCK)
    if not matrix.flags.c_contiguous:  # reshape would fill a copy
        raise ValueError("fill_uniform needs a C-contiguous matrix")
    flat = matrix.reshape(-1)
    nthreads = max(1, min(max(nthreads, default_thread_count()), blocks))
    step = _FILL_ROUND * nthreads
    for first in range(0, blocks, step):
        if deadline is not None and time.perf_counter() > deadline:
            raise TrainingTimeout()
        last = min(blocks, first + step)
        cuts = [first + (last - first) * t // nthreads for t in range(nthreads + 1)]
        threads = [threading.Thread(target=init_uniform,
                                    args=(flat, bound, seed, cuts[t], cuts[t + 1]))
                   for t in range(1, nthreads)]
        for t in threads:
            t.start()
        init_uniform(flat, bound, seed, cuts[0], cuts[1])
        for t in threads:
            t.join()


class Reading:
    """fastText's "Read NM words": at -verbose 2 updated in place while the corpus is
    counted (`update`, given as on_tokens), then the final count and the vocabulary's size."""

    def __init__(self, args: Args):
        self.args, self.shown = args, -1

    def update(self, ntokens: int) -> None:
        millions = ntokens // 1_000_000
        # from 1M on, as fastText: a small corpus (or one refused) prints only the summary
        if self.args.verbose >= 2 and millions != self.shown and millions > 0:
            self.shown = millions
            print(f"\rRead {millions}M words", end="", file=sys.stderr, flush=True)

    def done(self, ntokens: int, dictionary: Dictionary) -> None:
        back = "\r" if self.shown >= 0 else ""
        log(self.args, f"{back}Read {ntokens // 1_000_000}M words")
        log(self.args, f"Number of words:  {dictionary.nwords}")
        log(self.args, f"Number of labels: {dictionary.nlabels}")


def build_dictionary(args: Args, path: str, keep_ids: bool = False) -> Dictionary:
    """The dictionary of the training file `path`, with fastText's summary lines
    (`keep_ids`: see corpus.count_vocabulary)."""
    reading = Reading(args)
    dictionary = count_vocabulary(args, path, keep_ids, reading.update)
    if args.supervised and dictionary.nlabels == 0:
        if reading.shown >= 0:
            print(file=sys.stderr)  # end the "Read" line before the error
        raise EmbtkError(f"no labels in {path}: supervised training needs lines tagged "
                         f"'{args.label}<name>' (see -label)")
    reading.done(dictionary.ntokens, dictionary)
    return dictionary


def _pretrained(args: Args, dictionary: Dictionary):
    words, vectors = read_vec(args.pretrainedVectors)
    if vectors.shape[1] != args.dim:
        raise EmbtkError(f"-pretrainedVectors has dimension {vectors.shape[1]}, but -dim is {args.dim}")
    return dictionary.with_extra_words(words), words, vectors


class TrainingTimeout(Exception):
    """Training was stopped at its deadline (autotune's time budget ran out)."""


class TrainingDiverged(EmbtkError):
    """The loss became NaN (usually a learning rate too large)."""


class Trained(NamedTuple):
    """What training produces; `model.FastText` wraps it."""

    args: Args
    dictionary: Dictionary
    input: np.ndarray
    output: np.ndarray
    loss: float


def train(args: Args, deadline: float | None = None, counted=None) -> Trained:
    """Train as fastText's `supervised`, `skipgram` or `cbow` commands do.

    `deadline` (a time.perf_counter() value) stops training there with TrainingTimeout.
    `counted`, a (path, Dictionary) pair from an earlier call on the same input and
    count options, skips counting the corpus again (autotune's trials).
    """
    args.validate()
    if args.resume:
        return _resume(args, deadline)
    previous = open_previous(args) if args.inputModel else None
    args.bucket = args.effective_bucket()
    corpus_tokens = None  # the dictionary's own count, unless a previous model adds to it
    if previous is not None:
        reading = Reading(args)
        dictionary, previous_ids, corpus_tokens = extend_vocabulary(args, previous,
                                                                    reading.update)
        reading.done(corpus_tokens, dictionary)
    elif counted is None:
        dictionary = build_dictionary(args, args.input, keep_ids=True)
    else:
        dictionary = counted[1].with_options(args)
    pretrained = None
    if args.pretrainedVectors:
        dictionary, *pretrained = _pretrained(args, dictionary)

    _say_preparing(args, dictionary, previous is not None)
    with encode_corpus(args, dictionary, args.input) as encoded:
        wi = np.empty((dictionary.nwords + args.bucket, args.dim), dtype=np.float32)
        fill_uniform(wi, 1.0 / args.dim, thread_seed(args.seed, 0), args.thread, deadline)
        if pretrained is not None:
            words, vectors = pretrained
            rows = np.array([dictionary.get_id(w) for w in words])
            ok = (rows >= 0) & (rows < dictionary.nwords)
            wi[rows[ok]] = vectors[ok]
        out_kind = LABEL if args.supervised else WORD
        wo = np.zeros((int(np.count_nonzero(dictionary.types == out_kind)), args.dim),
                      dtype=np.float32)
        if previous is not None:
            carried = carry_rows(previous, dictionary, previous_ids, wi, wo, args.supervised,
                                 args.loss)
            del previous  # its matrices are mapped from its file: let them go
            log(args, f"Continuing {args.inputModel}: " +
                 ", ".join(f"{n} {what}" for what, n in carried.items()))
        loss = fit(args, dictionary, wi, wo, encoded, deadline, corpus_tokens, _saving(args))
    return Trained(args, dictionary, wi, wo, loss)


def _say_preparing(args: Args, dictionary: Dictionary, continued: bool) -> None:
    """At -verbose 2, what happens between the vocabulary and the first progress bar:
    on a large corpus, seconds that would otherwise pass with no output."""
    if args.verbose < 2:
        return
    rows = dictionary.nwords + args.bucket
    size = rows * args.dim * 4 / 1e6
    start = "carrying the rows of -inputModel over" if continued else "random start"
    print(f"Encoding the corpus into a temporary file of ids, and filling the input matrix "
          f"({rows} x {args.dim}, {size:.0f} MB; {start})", file=sys.stderr, flush=True)


class Saving(NamedTuple):
    """Where fit saves checkpoints, how often (seconds), and what identifies the input."""

    path: str
    every: float
    fingerprint: dict


def _saving(args: Args, fingerprint: dict | None = None) -> Saving | None:
    if not args.checkpoint:
        return None
    return Saving(args.checkpoint, args.checkpointEvery, fingerprint or input_fingerprint(args.input))


def _resume(args: Args, deadline: float | None) -> Trained:
    """Continue the run saved in args.resume, on the same input, to the same end."""
    checkpoint = read_checkpoint(args.resume)
    resume_options(args, checkpoint, args.resume)
    fingerprint = check_same_input(args, checkpoint, args.resume)
    dictionary, wi, wo = checkpoint.dictionary, checkpoint.input, checkpoint.output
    nout = dictionary.nlabels if args.supervised else dictionary.nwords
    if wi.shape != (dictionary.nwords + args.bucket, args.dim) or wo.shape != (nout, args.dim):
        raise EmbtkError(f"checkpoint {args.resume} is corrupt: its matrices do not match its "
                         "dictionary and options")
    if checkpoint.complete:  # the run ended normally: its final state, nothing to train
        log(args, f"Checkpoint {args.resume} holds a complete run: nothing to train")
        return Trained(args, dictionary, wi, wo, checkpoint.loss)
    done = checkpoint.progress.tokens_done / max(1, args.epoch * checkpoint.corpus_tokens)
    log(args, f"Resuming {args.resume} at {100 * min(1.0, done):.1f}%")
    with encode_corpus(args, dictionary, args.input) as encoded:
        loss = fit(args, dictionary, wi, wo, encoded, deadline, checkpoint.corpus_tokens,
                   _saving(args, fingerprint), checkpoint.progress)
    return Trained(args, dictionary, wi, wo, loss)


def fit(args: Args, dictionary: Dictionary, wi: np.ndarray, wo: np.ndarray,
        encoded: EncodedCorpus, deadline: float | None = None,
        corpus_tokens: int | None = None, saving: Saving | None = None,
        resumed: Progress | None = None) -> float:
    """Run the training kernels over an encoded corpus, updating the matrices wi and wo in
    place (fastText's startThreads); returns the final average loss. Used by `train` and
    by retraining after pruning. The learning rate falls to zero over -epoch passes of
    `corpus_tokens` (default: the dictionary's count, the corpus it was counted on).

    Each thread reads the corpus through its own bounded PieceReader and hands each piece
    to one nogil kernel call; its random state and statistics carry over between calls.
    `saving` writes checkpoints while the threads run and once they are stopped by Ctrl-C
    or a signal; `resumed` starts from a checkpoint's progress instead of the beginning.
    """
    out_kind = LABEL if args.supervised else WORD
    params = for_kernels(make_loss_params(args.loss_code, dictionary.counts_of(out_kind),
                                           args.neg))
    nthreads = args.thread
    if corpus_tokens is None:
        corpus_tokens = dictionary.ntokens
    schedule = Schedule(lr0=args.lr, total_tokens=args.epoch * corpus_tokens,
                        lr_update_rate=args.lrUpdateRate,
                        progress=cache_line_rows(nthreads, np.int64),
                        loss_stats=cache_line_rows(nthreads, np.float64),
                        stop=np.zeros(1, dtype=np.int32))
    # each thread's random state and place in the corpus, where a checkpoint can read them
    rngs = cache_line_rows(nthreads, np.uint64)
    for tid in range(nthreads):
        rngs[tid, :1] = seed_rng(thread_seed(args.seed, tid))
    positions = [encoded.thread_start(tid, nthreads) for tid in range(nthreads)]
    if resumed is not None:
        schedule.progress[0, 0] = resumed.tokens_done
        schedule.loss_stats[0, :2] = resumed.loss_sum, resumed.examples
        if len(resumed.positions) == nthreads:
            positions = [int(p) % max(1, encoded.size) for p in resumed.positions]
            rngs[:, 0] = resumed.rngs
    model = Model(wi, wo, params)

    def work(tid):
        state = thread_state(tid, rngs[tid, :1], args.dim, wo.shape[0])
        reader = encoded.reader(positions[tid])
        step = _unsupervised_step(args, params, encoded) if not args.supervised else None
        finished = False
        while not finished and schedule.stop[0] == 0:
            piece, at_end = reader.piece()
            if args.supervised:
                used, finished = train_supervised(state, model, piece, schedule)
            else:
                used, finished = train_unsupervised(state, model, encoded.words, piece, at_end,
                                                    step, schedule)
            positions[tid] = (reader.position + used) % encoded.size
            if not finished:
                reader.advance(used)

    def save(loss=None):
        progress = Progress(int(schedule.progress[:, 0].sum()),
                            float(schedule.loss_stats[:, 0].sum()),
                            float(schedule.loss_stats[:, 1].sum()), list(positions),
                            rngs[:, 0].copy())
        write_checkpoint(saving.path, args, saving.fingerprint, corpus_tokens, progress,
                         dictionary, wi, wo, loss)

    try:
        _run_threads(work, args, schedule, deadline, _every(saving, save))
    except BaseException as exc:
        if saving is not None and not isinstance(exc, Exception):  # Ctrl-C, a signal
            save()
            log(args, f"\nCheckpoint saved: continue with -resume {saving.path}")
        raise
    stats = schedule.loss_stats
    loss = stats[:, 0].sum() / max(1.0, stats[:, 1].sum())
    if not np.isfinite(loss) or not np.all(np.isfinite(wo)):
        raise TrainingDiverged("training diverged (the loss became NaN); try a smaller -lr")
    if saving is not None:  # the final state, marked complete: resuming it trains nothing
        save(float(loss))
    return float(loss)


def _unsupervised_step(args: Args, params, encoded: EncodedCorpus):
    """How a thread of train_unsupervised learns from a line (kernels.learn_line)."""
    cbow = args.model == "cbow"
    if args.batch > 0:
        return batched(cbow, args.ws, args.batch, params.neg, args.dim)
    if cbow:
        return cbow_window(args.ws, args.dim, encoded.words.subword_offsets)
    return skipgram_scratch(args.ws, args.dim)


def _every(saving: Saving | None, save):
    """A poll function that calls save() every saving.every seconds (None: no saving)."""
    if saving is None:
        return None
    last = [time.perf_counter()]

    def poll():
        if time.perf_counter() - last[0] >= saving.every:
            save()
            last[0] = time.perf_counter()

    return poll


def run_threads(work, nthreads: int, stop, poll=None) -> None:
    """Run `work(tid)` (a nogil kernel call) on `nthreads` threads, calling `poll()` every
    0.1 s until they finish. On Ctrl-C, or an error in a thread, stop[0] is set so the
    kernels return; the threads are joined and the exception is raised here."""
    errors = []

    def guarded(tid):
        try:
            work(tid)
        except BaseException as e:  # surfaced in the main thread below
            errors.append(e)
            stop[0] = 1

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in range(nthreads)]
    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.1)
            if poll is not None:
                poll()
    except BaseException:
        stop[0] = 1
        for t in threads:
            t.join()
        raise
    if errors:
        raise errors[0]


def _run_threads(work, args, schedule: Schedule, deadline=None, every=None):
    """Start the kernels, show progress until they finish; Ctrl-C stops them cleanly, and
    so does `deadline` (a time.perf_counter() value), with TrainingTimeout. `every()`, if
    given, is called as often as the progress is polled."""
    bar = _progress_bar(args, schedule.total_tokens)
    started = (time.perf_counter(), int(schedule.progress[:, 0].sum()))

    def poll():
        if deadline is not None and time.perf_counter() > deadline:
            raise TrainingTimeout()
        if bar is not None:
            _update_bar(bar, args, schedule, started)
        if every is not None:
            every()

    try:
        run_threads(work, args.thread, schedule.stop, poll)
    except KeyboardInterrupt:
        raise
    except BaseException:
        if bar is not None:
            bar.close()  # as far as it got: an interrupted run must not look finished
        raise
    closing = _progress_text(args, schedule, started, final=True)
    if bar is not None:
        bar.set_description_str(closing.split("% ", 1)[1], refresh=False)
        bar.update(schedule.total_tokens - bar.n)
        bar.close()
    elif args.verbose > 0:  # the closing line, as fastText prints it
        print(closing, file=sys.stderr, flush=True)


def _progress_bar(args, total):
    if args.verbose < 2:
        return None
    return progress_bar(total=total,
                        bar_format="Progress: {percentage:5.1f}% |{bar}| {desc} ETA: {remaining}")


def _progress_text(args, schedule: Schedule, started, final=False):
    """fastText's progress line; `started`: (time, tokens done then), as a resumed run
    starts with tokens done."""
    total = schedule.total_tokens
    processed = int(schedule.progress[:, 0].sum())
    done = total if final else min(processed, total)
    elapsed = max(1e-9, time.perf_counter() - started[0])
    lr = 0.0 if final else args.lr * (1.0 - done / total)
    examples = schedule.loss_stats[:, 1].sum()
    loss = schedule.loss_stats[:, 0].sum() / examples if examples else 0.0
    speed = (processed - started[1]) / elapsed / args.thread
    text = f"words/sec/thread: {speed:.0f} lr: {lr:.6f} avg.loss: {loss:.6f}"
    return f"Progress: 100.0% {text}" if final else text


def _update_bar(bar, args, schedule: Schedule, started):
    bar.set_description_str(_progress_text(args, schedule, started), refresh=False)
    bar.update(min(int(schedule.progress[:, 0].sum()), schedule.total_tokens) - bar.n)
