"""The `embtk` command line: fastText's commands, option spellings and output formats.

This module is only the thin layer between the shell and the Python API. It imports
nothing but click, sys and os at load time so that `embtk --help` starts instantly;
the numerical modules (numba) are imported inside the commands that need them.

Every command reads and writes bytes, as fastText does: input lines are never decoded,
and labels and words are printed exactly as the model stores them.
"""

import os
import sys

import click

# dataclasses and the error type only (no numba, no numpy), so --help stays fast
from .args import Args, ElmoArgs, GloveArgs, QuantizeArgs, check_k, check_text
from .errors import EmbtkError
# Only the options the user typed are passed on (shell.given), so the options classes stay
# the single source of the defaults; --help shows them from there too.
from .shell import (AS_BYTES, CONTEXT, POSITIONAL_CONTEXT, OrderedGroup, as_bytes, given,
                    number, open_data, options_of, run, start_numba, stdin, stdout,
                    vector_text, word_arg, words_from, write_pieces)


def _start_numba() -> None:
    """numba's target up; on a terminal, a note when the first kernel compiles."""
    from .coldstart import announce_compiling

    start_numba()
    announce_compiling()


def _load(path: str):
    import warnings

    from .api import load_model
    from .errors import UnknownWordWarning

    # the commands report unknown words themselves, in one line (see _warn_if_unknown)
    warnings.simplefilter("ignore", UnknownWordWarning)
    _start_numba()
    return load_model(path)


def _load_with_words(path: str):
    """A model for the commands that search its vocabulary (nn, analogies)."""
    model = _load(path)
    if model.dictionary.nwords == 0:
        raise EmbtkError(f"{path} has no vocabulary to search (a .floret table holds only "
                         "hashed rows): use the .bin it was saved from")
    return model


def _warn_if_unknown(model, word) -> None:
    """On stderr, for a model without subwords: this word's vector is only zeros."""
    if model.lacks_vector(word):
        shown = word.decode("utf-8", "replace") if isinstance(word, bytes) else word
        click.echo(f"embtk: warning: '{shown}' is not in the vocabulary (the model has no "
                   "subword information): its vector is all zeros", err=True)


@click.group(cls=OrderedGroup, context_settings=CONTEXT)
@click.version_option(package_name="embtk", prog_name="embtk")
def cli():
    """Word embeddings and text classification, compatible with fastText.

    Commands and option names are fastText's (`-input` and `--input` both work).
    Models are fastText .bin files: either tool can use the other's models.
    """


# ----------------------------------------------------------------------------- train
def _make_train_command(mode: str, summary: str):
    @click.pass_context
    def command(ctx, **options):
        from .api import train_with_args
        from .coldstart import compiled_ahead

        args = Args.for_model(mode, **given(ctx, options)).validate()
        args.check_paths()
        if args.resume and _finished(args):
            return
        start_numba()
        with compiled_ahead(args):
            model = train_with_args(args)
            model.save_model(args.output + (".ftz" if model.is_quantized() else ".bin"))
            model.save_vectors(args.output + ".vec")
            if args.floret and not model.is_quantized():
                model.save_floret_vectors(args.output + ".floret")
            if args.saveOutput:
                model.save_output(args.output + ".output")
        if args.checkpoint and args.verbose > 0:
            size = os.path.getsize(args.checkpoint) / 1e6
            click.echo(f"Checkpoint {args.checkpoint} ({size:.0f} MB) holds the finished run "
                       "(-resume with it trains nothing): it can be deleted", err=True)

    command.__doc__ = summary
    command = options_of(Args, mode, mode)(command)
    return cli.command(mode, context_settings=CONTEXT, short_help=summary.lower().rstrip("."),
                       options_metavar="-input FILE -output PREFIX [OPTIONS]")(command)


def _finished(args: Args) -> bool:
    """-resume of a run that ended normally, whose model is there: say so, touch nothing.
    (Without its .bin, training goes on, and the complete checkpoint gives the model.)"""
    from .checkpoint import complete_run

    if not (complete_run(args) and os.path.exists(args.output + ".bin")):
        return False
    click.echo(f"embtk: checkpoint {args.resume} holds a complete run: nothing to resume, "
               f"{args.output}.bin is left as it is", err=True)
    return True


supervised_command = _make_train_command("supervised", "Train a supervised classifier.")
skipgram_command = _make_train_command("skipgram", "Train a skipgram model (word vectors).")
cbow_command = _make_train_command("cbow", "Train a cbow model (word vectors).")


# ----------------------------------------------------------------------------- glove
@cli.command("glove", context_settings=CONTEXT, short_help="train GloVe word vectors",
             options_metavar="-input FILE -output PREFIX [OPTIONS]")
@options_of(GloveArgs)
@click.pass_context
def glove_command(ctx, **options):
    """Train GloVe word vectors: count co-occurrences, then fit them with AdaGrad.

    The .bin is a fastText model without subwords: nn, analogies, print-word-vectors
    and the Python API read it; words outside the vocabulary have no vector.
    """
    from .api import train_glove_with_args

    args = GloveArgs.from_options(**given(ctx, options)).validate()
    args.check_paths()
    _start_numba()
    model = train_glove_with_args(args)
    model.save_model(args.output + ".bin")
    model.save_vectors(args.output + ".vec")


# ----------------------------------------------------------------------------- quantize
@cli.command("quantize", context_settings=CONTEXT, short_help="quantize a model to reduce the memory usage",
             options_metavar="-output PREFIX [-input FILE] [OPTIONS]")
@options_of(QuantizeArgs, command_name="quantize")
@click.pass_context
def quantize_command(ctx, **options):
    """Shrink a classifier: product quantization of its vectors, optionally pruned to
    the -cutoff rows of largest norm (and retrained on -input with -retrain)."""
    args = QuantizeArgs.from_options(**given(ctx, options))
    if args.retrain and args.input and not os.path.isfile(args.input):
        raise EmbtkError(f"-input {args.input}: no such file")
    model = _load(args.output + ".bin")
    model.quantize(input=args.input or None, qout=args.qout, cutoff=args.cutoff,
                   retrain=args.retrain, epoch=args.epoch, lr=args.lr, thread=args.thread,
                   verbose=args.verbose, dsub=args.dsub, qnorm=args.qnorm)
    model.save_model(args.output + ".ftz")


# ------------------------------------------------------------------- test / predict
def _k_and_threshold(default_k: int = 1):
    def decorate(f):
        f = click.argument("threshold", type=float, default=0.0, required=False)(f)
        f = click.argument("k", type=int, default=default_k, required=False)(f)
        f = click.argument("data", metavar="DATA")(f)
        f = click.argument("model", metavar="MODEL")(f)
        return f

    return decorate


def _check_test_input(data, k):
    check_k(k, allow_all=True)
    if data != "-" and not os.path.isfile(data):  # before loading: one line, no note
        raise EmbtkError(f"test file {data} cannot be opened" if os.path.exists(data)
                          else f"test file {data}: no such file")


def _test(model_path, data, k, threshold):
    from .coldstart import queried_ahead
    from .meter import general_metrics_text

    _check_test_input(data, k)
    with queried_ahead("test", model_path):
        model = _load(model_path)
        result = model.evaluate(stdin() if data == "-" else data, k, threshold)
    stdout().write(general_metrics_text(result.examples, result.precision, result.recall,
                                         k).encode("ascii"))
    _note_if_no_examples(result.examples, data)


def _note_if_no_examples(examples: int, data: str) -> None:
    """fastText prints nan for precision and recall over no examples; say why."""
    if examples == 0:
        click.echo(f"embtk: note: no line of {'stdin' if data == '-' else data} has both a "
                   "label the model knows and a word: precision and recall are undefined (nan)",
                   err=True)


@cli.command("test", context_settings=POSITIONAL_CONTEXT,
             short_help="evaluate a supervised classifier")
@_k_and_threshold()
def test_command(model, data, k, threshold):
    """Evaluate a classifier: number of examples, precision and recall at K.

    DATA is a labelled file, or - for stdin. K (default 1) is the number of labels
    predicted per line, -1 for all; THRESHOLD (default 0.0) the minimal probability.
    """
    _test(model, data, k, threshold)


@cli.command("test-label", context_settings=POSITIONAL_CONTEXT,
             short_help="print labels with precision and recall scores")
@_k_and_threshold()
@click.option("-report", "--report", is_flag=True,
              help="a sorted per-label table with support, micro and macro averages, "
                   "instead of fastText's lines")
@click.option("-sort", "--sort", "order", default="support", show_default=True,
              type=click.Choice(["support", "f1", "precision", "recall", "label"]),
              help="order of the -report table, -json labels and -plot bars")
@click.option("-confusion", "--confusion", is_flag=True,
              help="also print the confusion matrix (gold label x top prediction) as TSV")
@click.option("-json", "--json", "as_json", is_flag=True,
              help="print the report as JSON instead of text")
@click.option("-plot", "--plot", metavar="FILE.png",
              help="also draw per-label precision/recall bars (needs matplotlib: embtk[plot])")
def test_label_command(model, data, k, threshold, report, order, confusion, as_json, plot):
    """Like test, preceded by F1-score, precision and recall of every label.

    Without options the output is fastText's, line for line. -report, -confusion,
    -json and -plot add a sorted table with micro/macro averages, a confusion matrix,
    machine-readable output and a picture.
    """
    _label_report(model, data, k, threshold, report, order, confusion, as_json, plot)


def _label_report(model_path, data, k, threshold, report, order, confusion, as_json, plot):
    """test-label with the evaluation extras (see test_label_command)."""
    from .api import classification_report

    _check_plot(plot)
    _check_test_input(data, k)
    model = _load(model_path)
    result = classification_report(model, stdin() if data == "-" else data, k, threshold,
                                   confusion=confusion)
    if plot:
        from .plots import label_plot

        label_plot(result, plot, order)
    if as_json:
        _json_out(dict(result.to_dict(order), model=model_path))
        return
    _note_if_no_examples(result.examples, data)
    text = result.to_text(order) if report else result.fasttext_text()
    if confusion:
        text += "\n" + result.confusion_text()
    stdout().write(text.encode("utf-8", "surrogateescape"))


def _predict(model_path, data, k, threshold, with_prob: bool):
    from .coldstart import queried_ahead

    check_k(k, allow_all=True)
    stream = open_data(data, "input file")  # before loading: one line, no note
    with queried_ahead("predict", model_path):
        model = _load(model_path)
        _predict_stream(model, stream, data == "-", k, threshold, with_prob)


def _predict_stream(model, stream, live: bool, k, threshold, with_prob: bool):
    """Answer each line of `stream`, as soon as it arrives when `live` (a pipe)."""
    out = stdout()
    try:
        while True:
            # a live pipe is answered line by line; a file in blocks of whole lines
            data = stream.readline() if live else stream.read(1 << 24)
            if not data:
                break
            if not live and not data.endswith(b"\n"):
                data += stream.readline()
            write_pieces(out, model.predictor.lines(data, k, threshold, with_prob))
            if live:
                out.flush()
    finally:
        if not live:
            stream.close()


@cli.command("predict", context_settings=POSITIONAL_CONTEXT,
             short_help="predict most likely labels")
@_k_and_threshold()
def predict_command(model, data, k, threshold):
    """Most likely labels of each line of DATA (a file, or - for stdin).

    Prints one line per input line: up to K labels (default 1, -1 for all) whose
    probability is at least THRESHOLD (default 0.0), best first.
    """
    _predict(model, data, k, threshold, with_prob=False)


@cli.command("predict-prob", context_settings=POSITIONAL_CONTEXT,
             short_help="predict most likely labels with probabilities")
@_k_and_threshold()
def predict_prob_command(model, data, k, threshold):
    """Like predict, with each label followed by its probability."""
    _predict(model, data, k, threshold, with_prob=True)


@cli.command("predict-files", context_settings=CONTEXT,
             short_help="predict the labels of files on a Dask cluster",
             options_metavar="-output DIR [OPTIONS]")
@click.argument("model", metavar="MODEL")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-output", "--output", required=True, metavar="DIR",
              help="folder of the outputs: INPUT's name + .pred for each input")
@click.option("-k", "--k", type=int, default=1, show_default=True,
              help="number of labels per line (-1: all)")
@click.option("-threshold", "--threshold", type=float, default=0.0, show_default=True,
              help="minimal probability of a label")
@click.option("-prob", "--prob", is_flag=True, help="write probabilities too, as predict-prob")
@click.option("-scheduler", "--scheduler", metavar="ADDRESS",
              help="a running Dask scheduler, e.g. tcp://host:8786 [default: a local cluster, "
                   "one worker per core]")
@click.option("-timeout", "--timeout", type=float, default=10.0, show_default=True,
              help="seconds to wait for the scheduler and its first worker")
@click.option("-verbose", "--verbose", type=int, default=2, show_default=True,
              help="0: silent, 1: summary line, 2: progress bar too (on stderr)")
def predict_files_command(model, inputs, output, k, threshold, prob, scheduler, timeout, verbose):
    """Predict the labels of every line of large files, on a Dask cluster.

    Each INPUT (a file, a glob, or a URL fsspec can read) gets one output in DIR with
    what `predict` (or `predict-prob`, with -prob) prints for it. Outputs are written
    atomically, block by block: a rerun skips what is complete, so a killed job resumes.
    Needs dask: pip install 'embtk[dask]'.
    """
    import logging

    from .dask import predict_files

    check_k(k, allow_all=True)
    if not timeout > 0:
        raise EmbtkError(f"-timeout must be a positive number of seconds, got {timeout}")
    logging.getLogger("distributed").setLevel(logging.ERROR)  # a lost worker is retried
    _start_numba()
    summary = predict_files(model, inputs, output, k=k, threshold=threshold, prob=prob,
                            scheduler=scheduler, timeout=timeout, progress=verbose >= 2)
    if verbose >= 1:
        click.echo(f"embtk: {summary.to_text()}", err=True)


# ----------------------------------------------------------------------------- vectors
@cli.command("print-word-vectors", context_settings=CONTEXT,
             short_help="print word vectors given a trained model")
@click.argument("model", metavar="MODEL")
def print_word_vectors_command(model):
    """Print the vector of each word read from stdin (whitespace-separated)."""
    m = _load(model)
    out = stdout()
    for word in words_from(stdin()):
        if word is None:
            out.flush()
            continue
        _warn_if_unknown(m, word)
        out.write(word + b" " + vector_text(m.get_word_vector(word)) + b"\n")


@cli.command("print-sentence-vectors", context_settings=CONTEXT,
             short_help="print sentence vectors given a trained model")
@click.argument("model", metavar="MODEL")
def print_sentence_vectors_command(model):
    """Print one vector for each line read from stdin."""
    m = _load(model)
    out, stream = stdout(), stdin()
    while True:
        line = stream.readline()  # answered as it arrives, like fastText
        if not line:
            break
        out.write(vector_text(m.get_sentence_vector_bytes(line)) + b"\n")
        out.flush()


@cli.command("print-ngrams", context_settings=CONTEXT,
             short_help="print ngrams given a trained model and word")
@click.argument("model", metavar="MODEL")
@click.argument("word", metavar="WORD")
def print_ngrams_command(model, word):
    """Print each subword of WORD (the word itself if it is known, then its character
    n-grams) with its vector.

    A floret-mode model prints each subword ('<WORD>' first), its hashCount row ids joined
    by commas, and the sum of those rows; entry 0, the one word that keeps a row of its own,
    is printed first as 'WORD ROW' (floret's own command adds the first row hashCount times
    and leaves entry 0's row out)."""
    import numpy as np

    m = _load(model)
    out = stdout()
    if m.args.floret:
        return _print_floret_ngrams(m, word_arg(os.fsencode(word)), out)
    subwords, ids = m.get_subwords(word_arg(os.fsencode(word)), on_unicode_error=AS_BYTES)
    for subword, row in zip(subwords, ids):
        vec = m.get_input_vector(int(row)) if row >= 0 else np.zeros(m.get_dimension())
        out.write(as_bytes(subword) + b" " + vector_text(vec) + b"\n")


def _print_floret_ngrams(m, word, out) -> None:
    import numpy as np

    groups = [(word, np.array([0]))] if m.get_word_id(word) == 0 else []
    groups += m.dictionary.subword_groups(check_text(word, "word"))
    for name, rows in groups:
        vec = m.input_matrix[rows].sum(axis=0, dtype=np.float32)
        out.write(as_bytes(name) + b" " + b",".join(b"%d" % r for r in rows) + b" "
                  + vector_text(vec) + b"\n")


def _write_neighbors(out, pairs):
    for score, word in pairs:
        out.write(as_bytes(word) + b" " + number(score).encode("ascii") + b"\n")


def _end_prompt(out):
    """At end of input fastText leaves the last prompt as it is; on a terminal, end its
    line so that the shell prompt starts on a fresh one."""
    if stdin().isatty():
        out.write(b"\n")


@cli.command("nn", context_settings=POSITIONAL_CONTEXT,
             short_help="query for nearest neighbors")
@click.argument("model", metavar="MODEL")
@click.argument("k", type=int, default=10, required=False)
def nn_command(model, k):
    """Nearest neighbours of query words read from stdin (K of them, default 10)."""
    check_k(k, allow_all=False)
    m = _load_with_words(model)
    out = stdout()
    prompt = b"Query word? "
    out.write(prompt)
    out.flush()
    for word in words_from(stdin()):
        if word is None:
            continue
        _warn_if_unknown(m, word_arg(word))
        neighbors = m.get_nearest_neighbors(word_arg(word), k, on_unicode_error=AS_BYTES)
        _write_neighbors(out, neighbors)
        out.write(prompt)
        out.flush()
    _end_prompt(out)


@cli.command("analogies", context_settings=POSITIONAL_CONTEXT,
             short_help="query for analogies")
@click.argument("model", metavar="MODEL")
@click.argument("k", type=int, default=10, required=False)
def analogies_command(model, k):
    """Words closest to A - B + C, for triplets A B C read from stdin (K answers,
    default 10)."""
    check_k(k, allow_all=False)
    m = _load_with_words(model)
    out = stdout()
    prompt = b"Query triplet (A - B + C)? "
    out.write(prompt)
    out.flush()
    triplet = []
    for word in words_from(stdin()):
        if word is None:
            continue
        triplet.append(word_arg(word))
        _warn_if_unknown(m, triplet[-1])
        if len(triplet) == 3:
            _write_neighbors(out, m.get_analogies(*triplet, k=k, on_unicode_error=AS_BYTES))
            triplet.clear()
            out.write(prompt)
            out.flush()
    _end_prompt(out)


# ----------------------------------------------------------------------------- dump
def _dump_matrix(out, matrix):
    rows, cols = matrix.shape
    out.write(f"{rows} {cols}\n".encode("ascii"))
    for row in matrix:
        out.write((" ".join(["%g" % x for x in row.tolist()]) + "\n").encode("ascii"))


_DUMP_LOSS = {"hs": "hs", "ns": "ns", "softmax": "softmax", "ova": "one-vs-all"}
_DUMP_MODEL = {"cbow": "cbow", "skipgram": "sg", "supervised": "sup"}


def _dump_args(a: Args) -> list:
    """The options as fastText's `dump args` names and orders them."""
    return [("dim", a.dim), ("ws", a.ws), ("epoch", a.epoch), ("minCount", a.minCount),
            ("neg", a.neg), ("wordNgrams", a.wordNgrams), ("loss", _DUMP_LOSS[a.loss]),
            ("model", _DUMP_MODEL[a.model]), ("bucket", a.bucket), ("minn", a.minn),
            ("maxn", a.maxn)] + ([("mode", a.mode), ("hashCount", a.hashCount)] if a.floret
                                 else []) + [("lrUpdateRate", a.lrUpdateRate), ("t", a.t)]


@cli.command("dump", context_settings=CONTEXT,
             short_help="dump arguments, dictionary, input/output vectors")
@click.argument("model", metavar="MODEL")
@click.argument("what", type=click.Choice(["args", "dict", "input", "output"]))
def dump_command(model, what):
    """Print a model's arguments, dictionary, or input/output matrix as text."""
    if _is_elmo(model):
        return _dump_elmo(model, what)
    from .dictionary import WORD

    m = _load(model)
    out = stdout()
    if what == "args":
        for name, value in _dump_args(m.args):
            shown = number(value) if isinstance(value, float) else str(value)
            out.write(f"{name} {shown}\n".encode("utf-8"))
    elif what == "dict":
        d = m.dictionary
        out.write(f"{d.size}\n".encode("ascii"))
        for word, count, kind in zip(d.words, d.counts.tolist(), d.types.tolist()):
            out.write(as_bytes(word) + (b" %d word\n" if kind == WORD else b" %d label\n") % count)
    else:
        if m.is_quantized():
            raise EmbtkError(f"dump {what} is not supported for quantized models")
        _dump_matrix(out, m.get_input_matrix() if what == "input" else m.get_output_matrix())


# ----------------------------------------------------------------------------- ELMo
# Thin commands over embtk.elmo (contextual vectors of the published ELMo models).
def _is_elmo(path) -> bool:
    from .elmo.weights import is_elmo_file

    return is_elmo_file(path)


def _dump_elmo(path, what):
    if what != "args":
        raise EmbtkError(f"an ELMo model has no {what} to dump: only `dump MODEL args`")
    from .elmo.weights import read_elmo

    options, _ = read_elmo(path)
    stdout().write("".join(f"{name} {value}\n" for name, value in options.dump())
                    .encode("utf-8"))


def _load_elmo(model, weights):
    from .elmo import load_elmo

    _start_numba()
    return load_elmo(model, weights=weights)


def _elmo_layer(ctx, param, value):
    if value == "all":
        return None
    if value in ("top", "average"):
        return value
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r} is not 0, 1, 2, top, average or all")


@cli.command("elmo", context_settings=CONTEXT, short_help="train an ELMo biLM on a corpus",
             options_metavar="-input FILE -output PREFIX [OPTIONS]")
@options_of(ElmoArgs)
@click.pass_context
def elmo_command(ctx, **options):
    """Train an ELMo biLM (character CNN, LSTMs both ways, sampled softmax) and write
    PREFIX.elmo, with its softmax and Adagrad's state: elmo-vectors, elmo-perplexity and
    -inputModel read it."""
    from .elmo.training import train

    typed = given(ctx, options)
    args = ElmoArgs.from_options(**typed).validate()
    args.check_paths()
    if args.resume and os.path.exists(args.output + ".elmo"):
        from .elmo.training import complete_run

        if complete_run(args, frozenset(typed)):
            click.echo(f"embtk: checkpoint {args.resume} holds a complete run: nothing to "
                       f"resume, {args.output}.elmo is left as it is", err=True)
            return
    _start_numba()
    lm = train(args, given=frozenset(typed))
    lm.save(args.output + ".elmo")


@cli.command("elmo-perplexity", context_settings=CONTEXT,
             short_help="perplexity of a trained ELMo biLM on a text (full softmax)")
@click.argument("model", metavar="MODEL.elmo")
@click.argument("text", metavar="TEXT")
@click.option("-thread", "--thread", type=click.IntRange(min=1), default=None,
              help="threads [default: one per CPU]")
def elmo_perplexity_command(model, text, thread):
    """Forward, backward and mean perplexity of MODEL on TEXT ('-' reads stdin), read
    as training reads a corpus."""
    lm = _load_elmo(model, None)
    result = lm.perplexity(stdin() if text == "-" else text, thread=thread)
    stdout().write(result.to_text().encode("ascii"))


@cli.command("elmo-convert", context_settings=CONTEXT,
             short_help="convert an ELMo options.json + weights.hdf5 to a .elmo file")
@click.argument("options", metavar="OPTIONS.json")
@click.argument("weights", metavar="WEIGHTS.hdf5")
@click.option("-output", "--output", required=True, metavar="PREFIX",
              help="writes PREFIX.elmo (memory-mapped when loaded; no h5py needed)")
def elmo_convert_command(options, weights, output):
    """Convert a published ELMo model (bilm-tf's options and weights) to one .elmo file."""
    lm = _load_elmo(options, weights)
    lm.save(output if output.endswith(".elmo") else output + ".elmo")


@cli.command("elmo-vectors", context_settings=CONTEXT,
             short_help="print contextual ELMo vectors of the sentences read from stdin")
@click.argument("model", metavar="MODEL")
@click.option("-weights", "--weights", metavar="W.hdf5",
              help="the weights.hdf5 when MODEL is an options.json")
@click.option("-layer", "--layer", default="average", show_default=True,
              callback=_elmo_layer, metavar="0|1|2|top|average|all",
              help="which layer (all: every layer, concatenated per token)")
@click.option("-sentence", "--sentence", is_flag=True,
              help="one vector per line: the mean over its tokens")
@click.option("-thread", "--thread", type=click.IntRange(min=1), default=None,
              help="threads [default: one per CPU]")
@click.option("-output", "--output", metavar="FILE.hdf5",
              help="write AllenNLP's `elmo` layout to FILE.hdf5 instead of printing")
@click.option("-verbose", "--verbose", type=int, default=1, show_default=True,
              help="2 shows a progress bar (lines) on stderr")
def elmo_vectors_command(model, weights, layer, sentence, thread, output, verbose):
    """One line per token of each stdin line: the token and its vector (%.5g), then an
    empty line; with -sentence, one vector per line."""
    from .elmo.output import write_vectors

    lm = _load_elmo(model, weights)
    write_vectors(lm, stdin(), stdout(), layer=layer, sentence=sentence, thread=thread,
                  output=output, verbose=verbose)


# ----------------------------------------------------------------------- evaluation
def _json_out(value) -> None:
    import json

    stdout().write((json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def _check_plot(plot):
    if plot:
        from .plots import check_plot_path

        check_plot_path(plot)


_JSON_HELP = "print the result as JSON instead of a table"
_PLOT_HELP = "also draw the result to this PNG file (needs matplotlib: embtk[plot])"


@cli.command("eval-similarity", context_settings=CONTEXT,
             short_help="score word vectors on word-similarity data (Pearson, Spearman)")
@click.argument("model", metavar="MODEL")
@click.argument("data", metavar="DATA...", nargs=-1, required=True)
@click.option("-lower", "--lower", is_flag=True,
              help="lower-case the data's and the model's words (most frequent spelling wins)")
@click.option("-json", "--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.option("-plot", "--plot", metavar="FILE.png", help=_PLOT_HELP)
def eval_similarity_command(model, data, lower, as_json, plot):
    """Correlate the model's cosine similarities with human scores.

    MODEL is a .bin model or word vectors as text (.vec, word2vec or GloVe layout,
    with or without the 'count dim' header). Each DATA file has 'word1 word2 score'
    lines (tab- or space-separated, '#' comments skipped). Pearson and Spearman are
    over the pairs with both words in the vocabulary; with a .bin model that has
    character n-grams, a second pair of figures scores all pairs, building unknown
    words from their n-grams.
    """
    from .api import evaluate_similarity, load_vectors
    from .evaluation import similarity_table

    _check_plot(plot)
    _start_numba()
    vectors = load_vectors(model)
    results = [evaluate_similarity(vectors, path, lower=lower) for path in data]
    if plot:
        from .plots import similarity_plot

        similarity_plot(results, plot, model)
    if as_json:
        _json_out({"model": model, "results": [r.to_dict() for r in results]})
        return
    stdout().write(similarity_table(results).encode("utf-8"))


@cli.command("eval-analogies", context_settings=CONTEXT,
             short_help="analogy accuracy (a : b :: c : d) per section")
@click.argument("model", metavar="MODEL")
@click.argument("questions", metavar="QUESTIONS")
@click.option("-top", "--top", type=int, default=30000, show_default=True,
              help="candidate answers: the most frequent words; questions with other words "
                   "are skipped")
@click.option("-method", "--method", type=click.Choice(["3cosadd", "3cosmul"], case_sensitive=False),
              default="3cosadd", show_default=True, help="how the answer is chosen")
@click.option("-lower", "--lower", is_flag=True,
              help="lower-case questions and vocabulary (most frequent spelling wins)")
@click.option("-json", "--json", "as_json", is_flag=True, help=_JSON_HELP)
@click.option("-plot", "--plot", metavar="FILE.png", help=_PLOT_HELP)
def eval_analogies_command(model, questions, top, method, lower, as_json, plot):
    """Accuracy on analogy questions in the questions-words layout (': section'
    lines, then 'a b c d'): d should be the word nearest to b - a + c, a, b and c
    excluded. Sections named gram* count as syntactic, the others as semantic.
    Accuracy is over the questions answered; the skipped ones are counted.
    """
    import time

    from .api import evaluate_analogies, load_vectors

    started = time.perf_counter()
    _check_plot(plot)
    check_k(top, allow_all=False, name="-top")
    _start_numba()
    result = evaluate_analogies(load_vectors(model, max_words=top), questions, top=top,
                                method=method, lower=lower)
    if plot:
        from .plots import analogy_plot

        analogy_plot(result, plot)
    if as_json:
        _json_out(dict(result.to_dict(), model=model))
        return
    stdout().write(result.to_text(time.perf_counter() - started).encode("utf-8"))


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    return run(cli, sys.argv[1:] if argv is None else list(argv))
