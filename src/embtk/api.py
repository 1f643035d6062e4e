"""The module-level functions of the official `fasttext` Python API, and the entry points
the command line calls. Everything a user can reach from Python starts here."""

from __future__ import annotations

import contextlib
import dataclasses
import re

from .args import Args, GloveArgs, as_path, check_python_types, did_you_mean
from .autotune import autotune
from .corpus import is_path, training_input
from .dask import trial_pool
from .errors import EmbtkError
from .evaluation import (AnalogyResult, ClassificationReport, SimilarityResult, WordVectors,
                         classification_report, load_vectors)
from .evaluation import evaluate_analogies as _evaluate_analogies
from .evaluation import evaluate_similarity as _evaluate_similarity
from .glove import train as _train_glove
from .model import FastText
from .model import load as _load

__all__ = ["train_supervised", "train_unsupervised", "train_glove", "load_model", "tokenize",
           "evaluate_similarity", "evaluate_analogies", "classification_report",
           "load_vectors", "train_with_args", "train_glove_with_args", "WordVectors",
           "ClassificationReport"]

# The official module's names for the end-of-sentence token and the word boundaries
# that wrap a word before its character n-grams are taken.
EOS, BOW, EOW = "</s>", "<", ">"

# Spellings the official module accepts besides fastText's own option names.
_ALIASES = {
    "min_count": "minCount", "min_count_label": "minCountLabel", "word_ngrams": "wordNgrams",
    "lr_update_rate": "lrUpdateRate", "label_prefix": "label",
    "pretrained_vectors": "pretrainedVectors", "save_output": "saveOutput",
}
_OPTION_NAMES = {f.name for f in dataclasses.fields(Args)} - {"input", "model", "manual"}


def _options(input, options: dict) -> dict:
    """The options with their official names; `input` as a str when it is a path, "-"
    for a file object or iterable (spooled by `training_input`)."""
    given = {"input": as_path(input, "input") if is_path(input) else "-"}
    for key, value in options.items():
        given[_ALIASES.get(key, key)] = value
    return given


def _train_options(input, options: dict) -> dict:
    """`_options` for train_supervised/train_unsupervised: a misspelt or repeated option
    is a TypeError, as for any Python call (and in the official module); `model` is
    train_unsupervised's argument, not an option."""
    seen = set()
    for key in options:
        name = _ALIASES.get(key, key)
        if name not in _OPTION_NAMES:
            alike = did_you_mean(key, sorted(_OPTION_NAMES | set(_ALIASES)))
            raise TypeError(f"unexpected keyword argument '{key}'{alike}")
        if name in seen:
            raise TypeError(f"multiple values for argument '{name}'")
        seen.add(name)
    check_python_types(Args, {key: (_ALIASES.get(key, key), value)
                              for key, value in options.items()})
    return _options(input, options)


@contextlib.contextmanager
def _input_as_path(args, source):
    """args.input made a path for the duration of training: stdin ('-') or a Python file
    object or iterable (`source`) is spooled to a temporary file, removed afterwards."""
    shown = args.input
    with training_input(args.input if source is None else source, args.tmpdir,
                        args.verbose) as path:
        args.input = path
        try:
            yield
        finally:
            args.input = shown


def train_with_args(args: Args, source=None) -> FastText:
    """Train with complete options: autotune when a validation file is set (its trials on
    a Dask cluster with autotuneScheduler). `source`, a file object or an iterable of
    lines, is read instead of args.input."""
    with _input_as_path(args, source):
        if args.autotuneValidationFile and args.autotuneScheduler:
            args.validate()  # before connecting
            with trial_pool(args.autotuneScheduler) as pool:
                return autotune(args, pool)
        if args.autotuneValidationFile:
            return autotune(args)
        return FastText.train(args)


def _source(input):
    return None if is_path(input) else input


def train_supervised(input, **options) -> FastText:
    """Train a classifier on lines tagged `__label__X` (options: fastText's names).
    `input`: a path ('-' for stdin), a binary or text file object, or an iterable of lines."""
    args = Args.for_model("supervised", **_train_options(input, options))
    return train_with_args(args, _source(input))


def train_unsupervised(input, model="skipgram", **options) -> FastText:
    """Learn word vectors with `skipgram` or `cbow`; `seed` is honoured (with thread=1).
    `input` as for train_supervised (an iterable may give lists of tokens, as gensim's)."""
    if model not in ("skipgram", "cbow"):
        raise EmbtkError(f"unknown model '{model}' (use skipgram or cbow)")
    if any(key.startswith("autotune") for key in options):
        raise EmbtkError("autotune is for supervised models only (train_supervised)")
    args = Args.for_model(model, **_train_options(input, options))
    return train_with_args(args, _source(input))


def train_glove_with_args(args: GloveArgs, source=None) -> FastText:
    with _input_as_path(args, source):
        return _train_glove(args)


def train_glove(input, **options) -> FastText:
    """GloVe word vectors (options: `embtk glove`'s names, e.g. dim, ws, epoch, xmax,
    memory, symmetric, vectors). Returns a model without subwords: get_word_vector,
    get_nearest_neighbors, get_analogies, save_model and save_vectors work as usual.
    `input` as for train_supervised."""
    check_python_types(GloveArgs, {key: (key, value) for key, value in options.items()})
    return train_glove_with_args(GloveArgs.from_options(**_options(input, options)),
                                 _source(input))


def load_model(path) -> FastText:
    """Load a `.bin` or `.ftz` written by embtk or by the official fastText. The model
    pickles as a reference to the file (see model.FileIdentity), so it travels cheaply to
    other processes (multiprocessing, Dask, Ray, Spark)."""
    return _load(as_path(path))


def tokenize(text: str) -> list:
    """fastText's tokenizer: tokens split on its six separators, '</s>' for each newline."""
    tokens = []
    for i, line in enumerate(text.encode("utf-8").split(b"\n")):
        if i:
            tokens.append("</s>")
        tokens.extend(t.decode("utf-8") for t in _SEPARATORS.split(line) if t)
    return tokens


_SEPARATORS = re.compile(rb"[ \r\t\v\f\0]+")


def evaluate_similarity(model_or_vectors, path, lower=False, subwords=True) -> SimilarityResult:
    """Pearson and Spearman of cosine similarities against a `word1 word2 score` file.

    `model_or_vectors`: a loaded model, a `.bin` or `.vec`/GloVe path, or (words, matrix).
    Returns an `embtk.evaluation.SimilarityResult` (`.to_dict()` for JSON, `.to_text()`).
    """
    return _evaluate_similarity(model_or_vectors, path, lower=lower, subwords=subwords)


def evaluate_analogies(model_or_vectors, path, top=30000, method="3cosadd",
                       lower=False) -> AnalogyResult:
    """Accuracy on questions-words analogies (3CosAdd, or method='3cosmul'), per section
    and semantic / syntactic / total. Returns an `embtk.evaluation.AnalogyResult`."""
    return _evaluate_analogies(model_or_vectors, path, top=top, method=method, lower=lower)
