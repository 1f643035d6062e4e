"""Continued training (-inputModel): an existing model trained further on a new corpus.

The model's options become the run's defaults; the ones that shape its matrices cannot
change. Its vocabulary gains the new corpus's words and labels (counts added, then sorted
again as fastText sorts them), so rows move: `carry_rows` puts every known row where its
entry now is, and the n-gram buckets, shared by old and new words, stay as they are. The
result is an ordinary model, which fastText loads like any other.
"""

from __future__ import annotations

import numpy as np

from .args import Args
from .corpus import count_entries
from .dictionary import Dictionary
from .errors import EmbtkError
from .fileformat import ModelFile, load_bin, release_pages

# What a model's matrices (and output layer) are made of: a continued run keeps them.
FIXED_OPTIONS = ("dim", "minn", "maxn", "bucket", "wordNgrams", "loss", "mode", "hashCount")
# What a .bin stores besides those: a continued run takes them as its defaults.
INHERITED_OPTIONS = FIXED_OPTIONS + ("ws", "epoch", "minCount", "neg", "lrUpdateRate", "t")
_ROWS_AT_A_TIME = 1 << 16


def open_previous(args: Args) -> ModelFile:
    """Load -inputModel and make its options the defaults of `args` (the ones given
    explicitly win). One clear line for a model that cannot be continued this way."""
    path = args.inputModel
    previous = load_bin(path)
    old = previous.args
    if previous.quant_input:
        raise EmbtkError(f"-inputModel {path} is quantized: continue training from the .bin "
                         "it was quantized from")
    if old.model != args.model:
        kind = "a classifier" if old.supervised else f"a {old.model} model (word vectors)"
        raise EmbtkError(f"-inputModel {path} is {kind}: continue it with `embtk {old.model}`, "
                         f"not `embtk {args.model}`")
    for name in INHERITED_OPTIONS:
        if name not in args.manual:
            setattr(args, name, getattr(old, name))
    for name in FIXED_OPTIONS:
        given, had = getattr(args, name), getattr(old, name)
        if name == "bucket":  # buckets that nothing lands in do not count
            given, had = args.effective_bucket(), old.effective_bucket()
        if given != had:
            kept = ", ".join("-" + n for n in FIXED_OPTIONS)
            raise EmbtkError(f"-{name} {given} cannot apply to -inputModel {path}, whose {name} "
                             f"is {had}: continued training keeps {kept}")
    old_nwords = int(np.count_nonzero(previous.types == 0))
    if previous.input.shape[0] != old_nwords + old.effective_bucket():
        raise EmbtkError(f"-inputModel {path} has {previous.input.shape[0]} input rows, not "
                         f"its {old_nwords} words + {old.effective_bucket()} buckets")
    return previous


def previous_dictionary(previous: ModelFile) -> Dictionary:
    a = previous.args
    return Dictionary.from_packed(previous.word_bytes, previous.word_offsets, previous.counts,
                                  previous.types, previous.ntokens, minn=a.minn, maxn=a.maxn,
                                  bucket=a.bucket, word_ngrams=a.wordNgrams, t=a.t,
                                  hash_count=a.floret_hashes)


def extend_vocabulary(args: Args, previous: ModelFile, on_tokens=None):
    """(the vocabulary of the previous model and of -input together, for each of its
    entries the previous id or -1, the number of tokens in -input). `on_tokens(n)` hears
    the tokens of -input read so far."""
    words, counts, types, ntokens = count_entries(args, args.input, on_tokens)
    old = previous_dictionary(previous)
    dictionary, previous_ids = old.extended(words, counts, types, ntokens, args)
    if args.supervised and dictionary.nlabels == 0:
        raise EmbtkError(f"no labels in {args.input} nor in -inputModel {args.inputModel}")
    return dictionary, previous_ids, ntokens


def _copy_rows(target, target_rows, source, source_rows) -> None:
    """target[target_rows] = source[source_rows], a bounded number of rows at a time."""
    for start in range(0, len(target_rows), _ROWS_AT_A_TIME):
        stop = start + _ROWS_AT_A_TIME
        target[target_rows[start:stop]] = source[source_rows[start:stop]]


def carry_rows(previous: ModelFile, dictionary: Dictionary, previous_ids: np.ndarray,
               wi: np.ndarray, wo: np.ndarray, supervised: bool, loss: str) -> dict:
    """Copy the previous model's rows into wi and wo (already filled as for a new model),
    each where its entry now is; returns what was kept and added, for the log.

    Input rows: known words and every n-gram bucket. Output rows: known labels
    (classifiers) or words, except with hs, whose rows belong to the nodes of a Huffman
    tree that the new counts rebuild: that output layer starts again from zero.
    """
    old_nwords = int(np.count_nonzero(previous.types == 0))
    nwords = dictionary.nwords
    words_before = previous_ids[:nwords]
    known = np.flatnonzero(words_before >= 0)
    _copy_rows(wi, known, previous.input, words_before[known])
    # Each piece of the previous model's mapping is let go once copied (release_pages), so
    # that its file's pages do not stay resident beside the new matrices.
    release_pages(previous.input[:old_nwords])
    for start in range(old_nwords, previous.input.shape[0], _ROWS_AT_A_TIME):
        stop = min(start + _ROWS_AT_A_TIME, previous.input.shape[0])
        wi[nwords + start - old_nwords:nwords + stop - old_nwords] = previous.input[start:stop]
        release_pages(previous.input[start:stop])
    outputs_before = previous_ids[nwords:] - old_nwords if supervised else words_before
    known_outputs = np.flatnonzero(outputs_before >= 0)
    if loss != "hs":
        _copy_rows(wo, known_outputs, previous.output, outputs_before[known_outputs])
        release_pages(previous.output)
    labels_before = previous_ids[nwords:]
    return {"words kept": len(known), "new words": nwords - len(known),
            "labels kept": int(np.count_nonzero(labels_before >= 0)),
            "new labels": int(np.count_nonzero(labels_before < 0))}
