"""Making a classifier small (fastText's `quantize`): prune, retrain, quantize.

Pruning (`-cutoff`) keeps the input rows of largest norm (the end-of-line token `</s>`
always), renumbers the kept words and maps the kept hash buckets through `pruneidx`;
retraining fine-tunes the kept rows on the training file; product quantization
(`quantmatrix`) then stores each row in one byte per sub-vector. Works on a model's
parts (options, dictionary, matrices), so `model.FastText.quantize` is a thin call.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from .args import Args
from .corpus import encode_corpus
from .dictionary import Dictionary
from .tokens import EOS
from .errors import EmbtkError, progress_bar
from .quantmatrix import KSUB, QuantMatrix, quantize_matrix, row_norms
from .trainer import fit


class Compressed(NamedTuple):
    """A quantized classifier's parts: the matrices to save, and the dense rows that
    inference reads (decoded exactly as fastText decodes them)."""

    args: Args
    dictionary: Dictionary
    quant_input: QuantMatrix
    quant_output: QuantMatrix | None
    input: np.ndarray
    output: np.ndarray


def select_rows(input_matrix: np.ndarray, cutoff: int, eos_id: int) -> np.ndarray:
    """The `cutoff` input rows of largest norm, largest first, `</s>` always first."""
    norms = row_norms(input_matrix)
    order = np.argsort(-norms, kind="stable")
    if eos_id >= 0:
        order = np.concatenate([[eos_id], order[order != eos_id]])
    return order[:cutoff]


def prune_dictionary(dictionary: Dictionary, input_matrix: np.ndarray, cutoff: int):
    """fastText's pruning: (new Dictionary, new dense input) keeping `cutoff` rows.

    Kept words keep their order (they are renumbered densely, labels follow them); kept
    hash buckets get rows after the words, in norm order, found through `pruneidx`.
    """
    d = dictionary
    keep = select_rows(input_matrix, cutoff, d.get_id(EOS))
    words = np.sort(keep[keep < d.nwords])
    ngrams = keep[keep >= d.nwords]
    entries = np.concatenate([words, np.arange(d.nwords, d.nwords + d.nlabels)])
    pruneidx = np.stack([ngrams - d.nwords, np.arange(len(ngrams))], axis=1).astype(np.int32)
    pruned = Dictionary([d.words[i] for i in entries], d.counts[entries], d.types[entries],
                        d.ntokens, minn=d.minn, maxn=d.maxn, bucket=d.bucket,
                        word_ngrams=d.word_ngrams, label=d.label, pruneidx=pruneidx, t=d.t,
                        hash_count=d.hash_count)
    rows = np.concatenate([words, ngrams])
    return pruned, np.ascontiguousarray(input_matrix[rows], dtype=np.float32)


def quantize(args: Args, dictionary: Dictionary, input_matrix: np.ndarray,
             output_matrix: np.ndarray, *, input=None, qout=False, cutoff=0, retrain=False,
             epoch=None, lr=None, thread=None, verbose=None, dsub=2, qnorm=False) -> Compressed:
    """Optional pruning to `cutoff` rows (then optional retraining on `input`), product
    quantization of the input matrix and, with qout, of the output matrix. Every check
    runs before the expensive work. Without pruning, the given input matrix is replaced by
    its decoded rows, in place (when it is writable): the model gives it up anyway, and a
    second matrix of its size would double the peak memory (fastText decodes nothing)."""
    if not args.supervised:
        raise EmbtkError(f"only supervised models can be quantized, this one is a "
                         f"{args.model} model")
    for name, value, low in (("cutoff", cutoff, 0), ("dsub", dsub, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise EmbtkError(f"-{name} must be an integer >= {low}, got {value!r}")
    args = copy.copy(args)
    for name, value in (("epoch", epoch), ("lr", lr), ("thread", thread), ("verbose", verbose)):
        if value is not None:
            setattr(args, name, value)
    args.validate()
    rows = input_matrix.shape[0]
    pruning = 0 < cutoff < rows
    if min(cutoff if pruning else rows, rows) < KSUB:
        raise EmbtkError(f"cannot quantize to {cutoff if pruning else rows} input rows: product "
                         f"quantization needs at least {KSUB} (raise -cutoff)")
    if qout and output_matrix.shape[0] < KSUB:
        raise EmbtkError(f"-qout needs at least {KSUB} labels to quantize the output matrix, "
                         f"this model has {output_matrix.shape[0]}")
    if pruning and retrain and not input:
        raise EmbtkError("-retrain needs the training file (-input)")

    wi = input_matrix
    wo = np.array(output_matrix, dtype=np.float32)
    if pruning:
        dictionary, wi = prune_dictionary(dictionary, wi, cutoff)
        if retrain:
            args.input = str(input)
            with encode_corpus(args, dictionary, args.input) as encoded:
                fit(args, dictionary, wi, wo, encoded)
    bar = _bars(args.verbose)
    quant_input = quantize_matrix(wi, dsub, qnorm, bar and bar("input"))
    quant_output = quantize_matrix(wo, 2, qnorm, bar and bar("output")) if qout else None
    output = wo if quant_output is None else quant_output.decode_for_scoring()
    return Compressed(args, dictionary, quant_input, quant_output, quant_input.decode(out=wi),
                      output)


def _bars(verbose: int):
    """At -verbose 2, bar(matrix)(total) makes the progress bar of a matrix's k-means: one
    step per sub-quantizer (each a k-means over a sample of its columns, then the code of
    every row), the long silent part of quantize."""
    if verbose < 2:
        return None

    def bar(matrix):
        return lambda total: progress_bar(total=total, unit="subq",
                                          desc=f"Quantizing the {matrix} matrix (k-means)")

    return bar
