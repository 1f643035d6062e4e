"""The module-level functions of the official `fasttext` Python API."""

from __future__ import annotations

import dataclasses
import re

from .args import Args
from .errors import EmbtkError

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


def _train(model: str, input, options: dict):
    from .training import train

    given = {"input": str(input)}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        # a misspelt or repeated option is a TypeError, as for any Python call (and in
        # the official module); `model` is train_unsupervised's argument, not an option
        if name not in _OPTION_NAMES:
            raise TypeError(f"unexpected keyword argument '{key}'")
        if name in given:
            raise TypeError(f"multiple values for argument '{name}'")
        given[name] = value
    args = Args.for_model(model, **given)
    if args.autotuneValidationFile:
        from .autotune import autotune

        return autotune(args)
    return train(args)


def train_supervised(input, **options):
    """Train a classifier on lines tagged `__label__X` (options: fastText's names)."""
    return _train("supervised", input, options)


def train_unsupervised(input, model="skipgram", **options):
    """Learn word vectors with `skipgram` or `cbow`; `seed` is honoured (with thread=1)."""
    if model not in ("skipgram", "cbow"):
        raise EmbtkError(f"unknown model '{model}' (use skipgram or cbow)")
    if any(key.startswith("autotune") for key in options):
        raise EmbtkError("autotune is for supervised models only (train_supervised)")
    return _train(model, input, options)


def train_glove(input, **options):
    """GloVe word vectors (options: `embtk glove`'s names, e.g. dim, ws, epoch, xmax,
    memory, symmetric, vectors). Returns a model without subwords: get_word_vector,
    get_nearest_neighbors, get_analogies, save_model and save_vectors work as usual."""
    from .args import GloveArgs
    from .glove import train

    given = {"input": str(input)}
    for key, value in options.items():
        given[_ALIASES.get(key, key)] = value
    return train(GloveArgs.from_options(**given))


def load_model(path):
    """Load a `.bin` written by embtk or by the official fastText."""
    from .fileformat import load_bin
    from .model import from_model_file

    return from_model_file(load_bin(str(path)))


def tokenize(text: str) -> list:
    """fastText's tokenizer: tokens split on its six separators, '</s>' for each newline."""
    tokens = []
    for i, line in enumerate(text.encode("utf-8").split(b"\n")):
        if i:
            tokens.append("</s>")
        tokens.extend(t.decode("utf-8") for t in _SEPARATORS.split(line) if t)
    return tokens


_SEPARATORS = re.compile(rb"[ \r\t\v\f\0]+")


def evaluate_similarity(model_or_vectors, path, lower=False, subwords=True):
    """Pearson and Spearman of cosine similarities against a `word1 word2 score` file.

    `model_or_vectors`: a loaded model, a `.bin` or `.vec`/GloVe path, or (words, matrix).
    Returns an `embtk.evaluation.SimilarityResult` (`.to_dict()` for JSON).
    """
    from .evaluation import evaluate_similarity as evaluate

    return evaluate(model_or_vectors, path, lower=lower, subwords=subwords)


def evaluate_analogies(model_or_vectors, path, top=30000, method="3cosadd", lower=False):
    """Accuracy on questions-words analogies (3CosAdd, or method='3cosmul'), per section
    and semantic / syntactic / total. Returns an `embtk.evaluation.AnalogyResult`."""
    from .evaluation import evaluate_analogies as evaluate

    return evaluate(model_or_vectors, path, top=top, method=method, lower=lower)
