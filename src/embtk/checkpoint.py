"""Checkpoints (-checkpoint) and resuming (-resume): a long run that is killed continues
from its last saved state to the same end.

A checkpoint is one file, written atomically (a killed write leaves the previous one): a
NumPy .npz archive, uncompressed, holding the matrices, the dictionary, each thread's
position in the encoded corpus and random state, and as JSON the options, the tokens done
(which fix the learning rate) and a fingerprint of the input. Resuming needs the same
input and options; -thread, -verbose, -output, -tmpdir and the checkpoint options may
change (with another -thread, threads start afresh at their usual places).

When training ends normally the checkpoint is written once more, marked complete, with the
final matrices: resuming it trains nothing (the command line says so and leaves an existing
model alone, or writes the model if it is missing; Python gets the finished model back).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import threading
import zipfile
from typing import NamedTuple

import numpy as np

from .args import Args
from .dictionary import Dictionary
from .errors import EmbtkError
from .safeio import atomic_write

FORMAT = "embtk-checkpoint"
VERSION = 1
# Options that may differ between an interrupted run and its resumption.
FREE_OPTIONS = frozenset(("thread", "verbose", "output", "tmpdir", "checkpoint",
                          "checkpointEvery", "resume", "saveOutput", "manual", "input"))
_SAMPLE = 1 << 20  # bytes hashed at each end of the input


def input_fingerprint(path: str) -> dict:
    """What identifies a training file cheaply: its size and a hash of its first and
    last MiB (a different corpus, or an edited one, is caught; the name may change)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        digest = hashlib.sha1(f.read(_SAMPLE))
        f.seek(max(0, size - _SAMPLE))
        digest.update(f.read(_SAMPLE))
    return {"bytes": size, "sha1": digest.hexdigest()}


class Progress(NamedTuple):
    """Where a run stands: tokens done (all threads), the loss sum and examples behind the
    average loss, and each thread's position in the encoded corpus and random state."""

    tokens_done: int
    loss_sum: float
    examples: float
    positions: list
    rngs: np.ndarray


class Checkpoint(NamedTuple):
    options: dict
    fingerprint: dict
    corpus_tokens: int
    progress: Progress
    dictionary: Dictionary
    input: np.ndarray
    output: np.ndarray
    complete: bool = False
    loss: float = 0.0


def _options(args: Args) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(args)
            if f.name != "manual"}


def write_checkpoint(path: str, args: Args, fingerprint: dict, corpus_tokens: int,
                     progress: Progress, dictionary: Dictionary, wi: np.ndarray,
                     wo: np.ndarray, loss: float | None = None) -> None:
    """Save a resumable state atomically (the matrices may be changing meanwhile: a
    Hogwild snapshot, as good a starting point as any state of the run). With the final
    `loss`, the state of a run that ended normally: marked complete."""
    state = {"format": FORMAT, "version": VERSION, "options": _options(args),
             "fingerprint": fingerprint, "corpus_tokens": int(corpus_tokens),
             "tokens_done": int(progress.tokens_done), "loss_sum": float(progress.loss_sum),
             "examples": float(progress.examples), "positions": [int(p) for p in progress.positions],
             "ntokens": dictionary.ntokens, "complete": loss is not None,
             "loss": float(loss or 0.0)}
    tables = dictionary.tables
    write_state(path, state, {"input": wi, "output": wo,
                              "rngs": np.asarray(progress.rngs, dtype=np.uint64),
                              "word_bytes": tables.word_bytes, "word_offsets": tables.word_offsets,
                              "counts": dictionary.counts, "types": dictionary.types})


def write_state(path: str, state: dict, arrays: dict) -> None:
    """A checkpoint file, atomically and durably: `state` (JSON, FORMAT and VERSION added)
    and the named arrays."""
    state = {"format": FORMAT, "version": VERSION, **state}
    with atomic_write(path, durable=True) as f:
        np.savez(f, state=np.frombuffer(json.dumps(state).encode(), dtype=np.uint8), **arrays)


def _read(path: str, arrays: tuple | None) -> tuple:
    """(the state, {name: array} for `arrays`, None: all of them); one clear line for
    anything that is not one of ours, or is the checkpoint of another command."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = json.loads(archive["state"].tobytes())
            if state.get("format") != FORMAT:
                raise ValueError("not a checkpoint")
            if state.get("version") != VERSION:
                raise EmbtkError(f"checkpoint {path} has version {state.get('version')}; this "
                                 f"embtk reads version {VERSION}")
            names = [n for n in archive.files if n != "state"] if arrays is None else arrays
            return state, {name: archive[name] for name in names}
    except FileNotFoundError:
        raise EmbtkError(f"cannot read checkpoint {path}: no such file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise EmbtkError(f"{path} is not an embtk checkpoint ({type(exc).__name__})") from None


def read_state(path: str, command: str, names: tuple | None = None) -> tuple:
    """(the state, {name: array} for `names`, None: all) of a checkpoint written by
    `embtk command` with write_state; one clear line for anything else."""
    state, arrays = _read(path, names)
    _check_command(state, command, path)
    return state, arrays


def _check_command(state: dict, command: str, path: str) -> None:
    written_by = state.get("command") or state.get("options", {}).get("model")
    if (written_by == "elmo") != (command == "elmo"):
        article = "an" if written_by == "elmo" else "a"
        raise EmbtkError(f"checkpoint {path} is of {article} {written_by} run: resume it with "
                         f"`embtk {written_by}`")


def read_summary(path: str) -> Checkpoint:
    """A checkpoint's options, input and progress without its arrays (a few KB read, not
    the matrices): enough to check a resumption and to see whether the run is complete."""
    state, _ = _read(path, ())
    _check_command(state, "", path)
    progress = Progress(state["tokens_done"], state["loss_sum"], state["examples"],
                        state["positions"], None)
    return Checkpoint(state["options"], state["fingerprint"], state["corpus_tokens"], progress,
                      None, None, None, state.get("complete", False), state.get("loss", 0.0))


def read_checkpoint(path: str) -> Checkpoint:
    """Load a checkpoint; one clear line for anything that is not one of ours."""
    state, arrays = _read(path, ("input", "output", "rngs", "word_bytes", "word_offsets",
                                 "counts", "types"))
    _check_command(state, "", path)
    o = state["options"]
    dictionary = Dictionary.from_packed(
        arrays["word_bytes"], arrays["word_offsets"], arrays["counts"], arrays["types"],
        state["ntokens"], minn=o["minn"], maxn=o["maxn"], bucket=o["bucket"],
        word_ngrams=o["wordNgrams"], label=o["label"], t=o["t"],
        hash_count=o.get("hashCount", 1) if o.get("mode") == "floret" else 0)
    progress = Progress(state["tokens_done"], state["loss_sum"], state["examples"],
                        state["positions"], arrays["rngs"])
    return Checkpoint(o, state["fingerprint"], state["corpus_tokens"], progress, dictionary,
                      arrays["input"], arrays["output"], state.get("complete", False),
                      state.get("loss", 0.0))


def resume_options(args: Args, checkpoint: Checkpoint, path: str) -> None:
    """Make the checkpoint's options those of `args`: an option given explicitly must
    have the checkpoint's value (or be one that may change, FREE_OPTIONS)."""
    stored = checkpoint.options
    if stored["model"] != args.model:
        raise EmbtkError(f"checkpoint {path} is of a {stored['model']} run: resume it with "
                         f"`embtk {stored['model']}`")
    for name, value in stored.items():
        if name in FREE_OPTIONS:
            continue
        given = getattr(args, name)
        if name in args.manual and given != value:
            raise EmbtkError(f"-{name} {given} differs from checkpoint {path} ({value}): resume "
                             "with the options of the interrupted run")
        setattr(args, name, value)


def check_same_input(args: Args, checkpoint: Checkpoint, path: str) -> dict:
    """The fingerprint of -input, which must be the checkpoint's."""
    fingerprint = input_fingerprint(args.input)
    if fingerprint != checkpoint.fingerprint:
        raise EmbtkError(f"checkpoint {path} was written for another input "
                         f"({checkpoint.fingerprint['bytes']} bytes), not {args.input} "
                         f"({fingerprint['bytes']} bytes)")
    return fingerprint


def complete_run(args: Args) -> bool:
    """Whether args.resume is the checkpoint of a run that ended normally, for these options
    and (when it is a file) this input: resuming it would train nothing."""
    summary = read_summary(args.resume)
    if not summary.complete:
        return False
    resume_options(args, summary, args.resume)
    if args.input != "-":
        check_same_input(args, summary, args.resume)
    return True


@contextlib.contextmanager
def deferred_signals():
    """Ctrl-C, SIGTERM and SIGHUP wait for the end of the block (then act as they would
    have), so that a checkpoint written on the way out sees a whole step, not part of
    one. Only in the main thread, where Python runs signal handlers; elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught, previous = [], {}

    def note(signum, frame):
        caught.append(signum)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, note)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in caught[:1]:
            handler = previous[number]
            if callable(handler):
                handler(number, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)
