"""The `embtk` command line: fastText's commands, option spellings and output formats.

This module is only the thin layer between the shell and the Python API. It imports
nothing but click, sys and os at load time so that `embtk --help` starts instantly;
the numerical modules (numba) are imported inside the commands that need them.

Every command reads and writes bytes, as fastText does: input lines are never decoded,
and labels and words are printed exactly as the model stores them.
"""

import contextlib
import os
import sys

import click

# dataclasses and the error type only (no numba, no numpy), so --help stays fast
from .args import Args, GloveArgs, check_k, cli_options
from .errors import EmbtkError
# Only the options the user typed are passed on, so `embtk.args.Args.for_model` stays
# the single source of the defaults; --help shows them from there too.
_LOSSES = ("hs", "ns", "softmax", "ova", "one-vs-all")
_EXIT_INTERRUPTED = 130
# Signals that end a run as Ctrl-C does (temporary files removed), with status 128 + number.
_TERMINATING = ("SIGTERM", "SIGHUP")
_EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a C tool killed by the signal reports


# ----------------------------------------------------------------------------- output
def _stdout():
    if sys.stdout is None:  # started with `>&-`
        raise EmbtkError("standard output is closed: nothing can be printed")
    return getattr(sys.stdout, "buffer", sys.stdout)


def _stdin():
    if sys.stdin is None:  # started with `<&-`
        raise EmbtkError("standard input is closed: there is nothing to read")
    return getattr(sys.stdin, "buffer", sys.stdin)


def _text(value) -> bytes:
    """Words and labels as bytes: the API gives bytes or str (str is written as UTF-8)."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogateescape")


# The API's on_unicode_error for words the CLI writes: `_text` turns them back into the
# dictionary's own bytes, which fastText writes as they are.
_AS_BYTES = "surrogateescape"


def _word_arg(raw: bytes):
    """A word read from stdin or argv for the str-based API: str when it is valid UTF-8,
    the raw bytes otherwise (the model encodes str as UTF-8 and accepts bytes as-is)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _vector_text(vec) -> bytes:
    """fastText's `operator<<` for a Vector: 5 significant digits, each value followed
    by a space (so lines have a trailing space)."""
    return "".join(["%.5g " % x for x in vec.tolist()]).encode("ascii")


def _number(x) -> str:
    """A float as C++ streams print it by default (6 significant digits, %g)."""
    return "%g" % x


def _write_pieces(out, lines, piece: int = 1 << 15):
    """Write many lines in pieces of about `piece` bytes. One huge write into a pipe whose
    reader has gone can end without an error (a partial write), which would hide the
    broken pipe; small writes report it."""
    start, size = 0, 0
    for i, line in enumerate(lines):
        size += len(line)
        if size >= piece:
            out.write(b"".join(lines[start:i + 1]))
            start, size = i + 1, 0
    out.write(b"".join(lines[start:]))


def _words_from(stream, piece: int = 1 << 16):
    """Whitespace-separated words (bytes) of a binary stream, read line by line so that
    answers can be given while a pipe is still open, and at most `piece` bytes at a time
    so that memory does not grow with the length of a line. Yields None after each line."""
    carry = b""  # a word cut by the end of a piece
    in_line = False  # a line has begun and not ended
    while True:
        data = stream.readline(piece)
        if not data:
            if carry:
                yield carry
            if in_line:
                yield None
            return
        data = carry + data
        words = data.split()
        carry = words.pop() if words and not data[-1:].isspace() else b""
        yield from words
        in_line = not data.endswith(b"\n")
        if not in_line:
            yield None


def _open_data(path: str, what: str):
    if path == "-":
        return _stdin()
    from .fileformat import open_for_reading

    return open_for_reading(path, what)


def _start_numba() -> None:
    """Bring numba's CPU target up with SciPy's linear algebra hidden from it.

    With SciPy installed, numba's first compilation or cache load imports scipy.linalg
    (0.15-0.25 s, a fifth of a small `embtk predict`) only to decide how np.correlate and
    np.convolve are compiled; no embtk kernel uses them. np.dot would still find BLAS:
    numba imports it again when it compiles one."""
    if "numba.np.arraymath" in sys.modules:  # the target is up already
        return

    class HideLinalg:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "scipy.linalg" or name.startswith("scipy.linalg."):
                raise ModuleNotFoundError(name)
            return None

    hide = HideLinalg()
    sys.meta_path.insert(0, hide)
    try:
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
    finally:
        sys.meta_path.remove(hide)


def _load(path: str):
    import warnings

    from .api import load_model
    from .errors import UnknownWordWarning

    # the commands report unknown words themselves, in one line (see _warn_if_unknown)
    warnings.simplefilter("ignore", UnknownWordWarning)
    _start_numba()
    return load_model(path)


def _warn_if_unknown(model, word) -> None:
    """On stderr, for a model without subwords: this word's vector is only zeros."""
    if model.lacks_vector(word):
        shown = word.decode("utf-8", "replace") if isinstance(word, bytes) else word
        click.echo(f"embtk: warning: '{shown}' is not in the vocabulary (the model has no "
                   "subword information): its vector is all zeros", err=True)


# ----------------------------------------------------------------------------- group
class _Command(click.Command):
    """Reports an unknown option as typed (click would call `-foo` `-f`), suggesting
    the known spellings that look like it."""

    def parse_args(self, ctx, args):
        given = list(args)  # the parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:
            known = [o for p in self.get_params(ctx) for o in getattr(p, "opts", [])]
            for arg in given:
                name = arg.split("=", 1)[0]
                if name == e.option_name or (name.startswith(e.option_name) and len(name) > 2
                                             and not name.startswith("--")):
                    if name in known:
                        continue
                    dashes = "--" if name.startswith("--") else "-"
                    alike = [o for o in known if o.startswith(dashes)
                             and (dashes == "--" or not o.startswith("--"))]
                    raise click.NoSuchOption(name, ctx=ctx, possibilities=alike) from None
            raise


class _OrderedGroup(click.Group):
    """Lists the commands in fastText's order rather than alphabetically."""

    command_class = _Command

    def list_commands(self, ctx):
        return list(self.commands)


_CONTEXT = {"help_option_names": ["-h", "-help", "--help"], "max_content_width": 100}
_POSITIONAL_CONTEXT = dict(_CONTEXT, ignore_unknown_options=True)  # so `-1` can be a K


@click.group(cls=_OrderedGroup, context_settings=_CONTEXT)
@click.version_option(package_name="embtk", prog_name="embtk")
def cli():
    """Word embeddings and text classification, compatible with fastText.

    Commands and option names are fastText's (`-input` and `--input` both work).
    Models are fastText .bin files: either tool can use the other's models.
    """


# ----------------------------------------------------------------------------- train
def _click_option(name, f, default):
    """The click option of one options-dataclass field: spelled -name and --name (or its
    `flag_name`), its type from the field, its default shown in --help."""
    meta = f.metadata
    flag = meta.get("flag_name", name)
    dest = "input_" if name == "input" else name
    kw = {"help": meta["help"], "show_default": meta.get("show_default", True)}
    if meta.get("required"):
        kw.update(required=True, show_default=False)
    else:
        kw["default"] = default
    if "metavar" in meta:
        kw["metavar"] = meta["metavar"]
    if "negative" in meta:  # a pair of flags, e.g. -symmetric/-asymmetric
        no = meta["negative"]
        return click.option(f"-{flag}/-{no}", f"--{flag}/--{no}", dest, **kw)
    if f.type == "bool":
        kw.update(is_flag=True, show_default=False)
    elif "choices" in meta:
        kw["type"] = click.Choice(meta["choices"])
    else:
        kw["type"] = {"int": int, "float": float, "str": str}[f.type]
    return click.option(f"-{flag}", f"--{flag}", dest, **kw)


def _options_of(options_class, mode: str = ""):
    """Decorate a command with the options of an options dataclass (args.cli_options)."""
    def decorate(command):
        for name, f, default in reversed(cli_options(options_class, mode)):
            command = _click_option(name, f, default)(command)
        return command

    return decorate


def _given(ctx, options: dict) -> dict:
    """The options the user typed (the defaults stay the options class's own)."""
    return {("input" if name == "input_" else name): value for name, value in options.items()
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}


def _make_train_command(mode: str, summary: str):
    @click.pass_context
    def command(ctx, **options):
        from .api import train_with_args

        args = Args.for_model(mode, **_given(ctx, options)).validate()
        args.check_paths()
        _start_numba()
        model = train_with_args(args)
        model.save_model(args.output + (".ftz" if model.is_quantized() else ".bin"))
        model.save_vectors(args.output + ".vec")
        if args.saveOutput:
            model.save_output(args.output + ".output")

    command.__doc__ = summary
    command = _options_of(Args, mode)(command)
    return cli.command(mode, context_settings=_CONTEXT, short_help=summary.lower().rstrip("."),
                       options_metavar="-input FILE -output PREFIX [OPTIONS]")(command)


supervised_command = _make_train_command("supervised", "Train a supervised classifier.")
skipgram_command = _make_train_command("skipgram", "Train a skipgram model (word vectors).")
cbow_command = _make_train_command("cbow", "Train a cbow model (word vectors).")


# ----------------------------------------------------------------------------- glove
@cli.command("glove", context_settings=_CONTEXT, short_help="train GloVe word vectors",
             options_metavar="-input FILE -output PREFIX [OPTIONS]")
@_options_of(GloveArgs)
@click.pass_context
def glove_command(ctx, **options):
    """Train GloVe word vectors: count co-occurrences, then fit them with AdaGrad.

    The .bin is a fastText model without subwords: nn, analogies, print-word-vectors
    and the Python API read it; words outside the vocabulary have no vector.
    """
    from .api import train_glove_with_args

    args = GloveArgs.from_options(**_given(ctx, options)).validate()
    args.check_paths()
    _start_numba()
    model = train_glove_with_args(args)
    model.save_model(args.output + ".bin")
    model.save_vectors(args.output + ".vec")


# ----------------------------------------------------------------------------- quantize
@cli.command("quantize", context_settings=_CONTEXT, short_help="quantize a model to reduce the memory usage",
             options_metavar="-output PREFIX [-input FILE] [OPTIONS]")
@click.option("-output", "--output", required=True, metavar="PREFIX",
              help="reads the classifier PREFIX.bin, writes PREFIX.ftz")
@click.option("-input", "--input", "input_", default="", metavar="FILE",
              help="training file, needed by -retrain")
@click.option("-cutoff", "--cutoff", type=int, default=0, show_default=True,
              help="number of words and n-grams to keep, by norm (0: all)")
@click.option("-retrain", "--retrain", is_flag=True, help="finetune the embeddings after -cutoff")
@click.option("-qnorm", "--qnorm", is_flag=True, help="quantize the norms separately")
@click.option("-qout", "--qout", is_flag=True, help="quantize the output matrix too (256+ labels)")
@click.option("-dsub", "--dsub", type=int, default=2, show_default=True, help="size of each sub-vector")
@click.option("-epoch", "--epoch", type=int, default=5, show_default=True, help="epochs of -retrain")
@click.option("-lr", "--lr", type=float, default=0.05, show_default=True, help="learning rate of -retrain")
@click.option("-thread", "--thread", type=int, default=None, help="threads of -retrain [default: one per CPU]")
@click.option("-verbose", "--verbose", type=int, default=2, show_default=True,
              help="0: silent, 2: progress bar of -retrain")
def quantize_command(output, input_, cutoff, retrain, qnorm, qout, dsub, epoch, lr, thread, verbose):
    """Shrink a classifier: product quantization of its vectors, optionally pruned to
    the -cutoff rows of largest norm (and retrained on -input with -retrain)."""
    if retrain and input_ and not os.path.isfile(input_):
        raise EmbtkError(f"-input {input_}: no such file")
    model = _load(output + ".bin")
    model.quantize(input=input_ or None, qout=qout, cutoff=cutoff, retrain=retrain, epoch=epoch,
                   lr=lr, thread=thread, verbose=verbose, dsub=dsub, qnorm=qnorm)
    model.save_model(output + ".ftz")


# ------------------------------------------------------------------- test / predict
def _k_and_threshold(default_k: int = 1):
    def decorate(f):
        f = click.argument("threshold", type=float, default=0.0, required=False)(f)
        f = click.argument("k", type=int, default=default_k, required=False)(f)
        f = click.argument("data", metavar="DATA")(f)
        f = click.argument("model", metavar="MODEL")(f)
        return f

    return decorate


def _load_for_test(model_path, data, k):
    check_k(k, allow_all=True)
    model = _load(model_path)
    if data != "-" and not os.path.isfile(data):
        raise EmbtkError(f"test file {data} cannot be opened" if os.path.exists(data)
                          else f"test file {data}: no such file")
    return model


def _test(model_path, data, k, threshold):
    from .meter import general_metrics_text

    model = _load_for_test(model_path, data, k)
    result = model.evaluate(_stdin() if data == "-" else data, k, threshold)
    _stdout().write(general_metrics_text(result.examples, result.precision, result.recall,
                                         k).encode("ascii"))
    _note_if_no_examples(result.examples, data)


def _note_if_no_examples(examples: int, data: str) -> None:
    """fastText prints nan for precision and recall over no examples; say why."""
    if examples == 0:
        click.echo(f"embtk: note: no line of {'stdin' if data == '-' else data} has both a "
                   "label the model knows and a word: precision and recall are undefined (nan)",
                   err=True)


@cli.command("test", context_settings=_POSITIONAL_CONTEXT,
             short_help="evaluate a supervised classifier")
@_k_and_threshold()
def test_command(model, data, k, threshold):
    """Evaluate a classifier: number of examples, precision and recall at K.

    DATA is a labelled file, or - for stdin. K (default 1) is the number of labels
    predicted per line, -1 for all; THRESHOLD (default 0.0) the minimal probability.
    """
    _test(model, data, k, threshold)


@cli.command("test-label", context_settings=_POSITIONAL_CONTEXT,
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
    model = _load_for_test(model_path, data, k)
    result = classification_report(model, _stdin() if data == "-" else data, k, threshold,
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
    _stdout().write(text.encode("utf-8", "surrogateescape"))


def _predict(model_path, data, k, threshold, with_prob: bool):
    check_k(k, allow_all=True)
    model = _load(model_path)
    stream = _open_data(data, "input file")
    live = data == "-"  # answer each line as soon as it arrives
    out = _stdout()
    try:
        while True:
            # a live pipe is answered line by line; a file in blocks of whole lines
            data = stream.readline() if live else stream.read(1 << 24)
            if not data:
                break
            if not live and not data.endswith(b"\n"):
                data += stream.readline()
            _write_pieces(out, model.prediction_lines(data, k, threshold, with_prob))
            if live:
                out.flush()
    finally:
        if not live:
            stream.close()


@cli.command("predict", context_settings=_POSITIONAL_CONTEXT,
             short_help="predict most likely labels")
@_k_and_threshold()
def predict_command(model, data, k, threshold):
    """Most likely labels of each line of DATA (a file, or - for stdin).

    Prints one line per input line: up to K labels (default 1, -1 for all) whose
    probability is at least THRESHOLD (default 0.0), best first.
    """
    _predict(model, data, k, threshold, with_prob=False)


@cli.command("predict-prob", context_settings=_POSITIONAL_CONTEXT,
             short_help="predict most likely labels with probabilities")
@_k_and_threshold()
def predict_prob_command(model, data, k, threshold):
    """Like predict, with each label followed by its probability."""
    _predict(model, data, k, threshold, with_prob=True)


@cli.command("predict-files", context_settings=_CONTEXT,
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
@cli.command("print-word-vectors", context_settings=_CONTEXT,
             short_help="print word vectors given a trained model")
@click.argument("model", metavar="MODEL")
def print_word_vectors_command(model):
    """Print the vector of each word read from stdin (whitespace-separated)."""
    m = _load(model)
    out = _stdout()
    for word in _words_from(_stdin()):
        if word is None:
            out.flush()
            continue
        _warn_if_unknown(m, word)
        out.write(word + b" " + _vector_text(m.get_word_vector(word)) + b"\n")


@cli.command("print-sentence-vectors", context_settings=_CONTEXT,
             short_help="print sentence vectors given a trained model")
@click.argument("model", metavar="MODEL")
def print_sentence_vectors_command(model):
    """Print one vector for each line read from stdin."""
    m = _load(model)
    out, stream = _stdout(), _stdin()
    while True:
        line = stream.readline()  # answered as it arrives, like fastText
        if not line:
            break
        out.write(_vector_text(m.get_sentence_vector_bytes(line)) + b"\n")
        out.flush()


@cli.command("print-ngrams", context_settings=_CONTEXT,
             short_help="print ngrams given a trained model and word")
@click.argument("model", metavar="MODEL")
@click.argument("word", metavar="WORD")
def print_ngrams_command(model, word):
    """Print each subword of WORD (the word itself if it is known, then its character
    n-grams) with its vector."""
    import numpy as np

    m = _load(model)
    out = _stdout()
    subwords, ids = m.get_subwords(_word_arg(os.fsencode(word)), on_unicode_error=_AS_BYTES)
    for subword, row in zip(subwords, ids):
        vec = m.get_input_vector(int(row)) if row >= 0 else np.zeros(m.get_dimension())
        out.write(_text(subword) + b" " + _vector_text(vec) + b"\n")


def _write_neighbors(out, pairs):
    for score, word in pairs:
        out.write(_text(word) + b" " + _number(score).encode("ascii") + b"\n")


def _end_prompt(out):
    """At end of input fastText leaves the last prompt as it is; on a terminal, end its
    line so that the shell prompt starts on a fresh one."""
    if _stdin().isatty():
        out.write(b"\n")


@cli.command("nn", context_settings=_POSITIONAL_CONTEXT,
             short_help="query for nearest neighbors")
@click.argument("model", metavar="MODEL")
@click.argument("k", type=int, default=10, required=False)
def nn_command(model, k):
    """Nearest neighbours of query words read from stdin (K of them, default 10)."""
    check_k(k, allow_all=False)
    m = _load(model)
    out = _stdout()
    prompt = b"Query word? "
    out.write(prompt)
    out.flush()
    for word in _words_from(_stdin()):
        if word is None:
            continue
        _warn_if_unknown(m, _word_arg(word))
        neighbors = m.get_nearest_neighbors(_word_arg(word), k, on_unicode_error=_AS_BYTES)
        _write_neighbors(out, neighbors)
        out.write(prompt)
        out.flush()
    _end_prompt(out)


@cli.command("analogies", context_settings=_POSITIONAL_CONTEXT,
             short_help="query for analogies")
@click.argument("model", metavar="MODEL")
@click.argument("k", type=int, default=10, required=False)
def analogies_command(model, k):
    """Words closest to A - B + C, for triplets A B C read from stdin (K answers,
    default 10)."""
    check_k(k, allow_all=False)
    m = _load(model)
    out = _stdout()
    prompt = b"Query triplet (A - B + C)? "
    out.write(prompt)
    out.flush()
    triplet = []
    for word in _words_from(_stdin()):
        if word is None:
            continue
        triplet.append(_word_arg(word))
        _warn_if_unknown(m, triplet[-1])
        if len(triplet) == 3:
            _write_neighbors(out, m.get_analogies(*triplet, k=k, on_unicode_error=_AS_BYTES))
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


@cli.command("dump", context_settings=_CONTEXT,
             short_help="dump arguments, dictionary, input/output vectors")
@click.argument("model", metavar="MODEL")
@click.argument("what", type=click.Choice(["args", "dict", "input", "output"]))
def dump_command(model, what):
    """Print a model's arguments, dictionary, or input/output matrix as text."""
    if _is_elmo(model):
        return _dump_elmo(model, what)
    m = _load(model)
    out = _stdout()
    if what == "args":
        for name, value in m.dump_args():
            shown = _number(value) if isinstance(value, float) else str(value)
            out.write(f"{name} {shown}\n".encode("utf-8"))
    elif what == "dict":
        entries = m.dump_dict()
        out.write(f"{len(entries)}\n".encode("ascii"))
        for word, count, kind in entries:
            out.write(_text(word) + f" {count} {kind}\n".encode("ascii"))
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
    _stdout().write("".join(f"{name} {value}\n" for name, value in options.dump())
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


@cli.command("elmo-convert", context_settings=_CONTEXT,
             short_help="convert an ELMo options.json + weights.hdf5 to a .elmo file")
@click.argument("options", metavar="OPTIONS.json")
@click.argument("weights", metavar="WEIGHTS.hdf5")
@click.option("-output", "--output", required=True, metavar="PREFIX",
              help="writes PREFIX.elmo (memory-mapped when loaded; no h5py needed)")
def elmo_convert_command(options, weights, output):
    """Convert a published ELMo model (bilm-tf's options and weights) to one .elmo file."""
    lm = _load_elmo(options, weights)
    lm.save(output if output.endswith(".elmo") else output + ".elmo")


@cli.command("elmo-vectors", context_settings=_CONTEXT,
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
    write_vectors(lm, _stdin(), _stdout(), layer=layer, sentence=sentence, thread=thread,
                  output=output, verbose=verbose)


# ----------------------------------------------------------------------- evaluation
def _json_out(value) -> None:
    import json

    _stdout().write((json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def _check_plot(plot):
    if plot:
        from .plots import check_plot_path

        check_plot_path(plot)


_JSON_HELP = "print the result as JSON instead of a table"
_PLOT_HELP = "also draw the result to this PNG file (needs matplotlib: embtk[plot])"


@cli.command("eval-similarity", context_settings=_CONTEXT,
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
    _stdout().write(similarity_table(results).encode("utf-8"))


@cli.command("eval-analogies", context_settings=_CONTEXT,
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
    _stdout().write(result.to_text(time.perf_counter() - started).encode("utf-8"))


# ----------------------------------------------------------------------------- main
def _debugging() -> bool:
    return os.environ.get("EMBTK_DEBUG", "") not in ("", "0")


def _silence_stdout():
    """After a broken pipe, point stdout at /dev/null so that the final flush at exit
    does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (removing temporary files on the way) and exit.
    A BaseException, like KeyboardInterrupt, so that no `except Exception` stops it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def _terminating_signals_raise():
    """While the command runs, SIGTERM and SIGHUP raise Terminated in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in _TERMINATING:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_terminated)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (the console script exits with it).

    All error reporting lives here: a user error (EmbtkError) is one line on stderr and
    status 1, a usage error one line and status 2, Ctrl-C is status 130 (SIGTERM 143 and
    SIGHUP 129, temporary files removed as for Ctrl-C), a
    closed stdout (`| head`) ends quietly, and anything else is reported as an internal
    error in one line unless EMBTK_DEBUG=1 asks for the traceback.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            with _terminating_signals_raise(), cli.make_context("embtk", args) as ctx:
                cli.invoke(ctx)
        finally:
            # What was written must reach the pipe (a closed one is reported below).
            if sys.stdout is not None:
                sys.stdout.flush()
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `embtk`: the help is the answer
            e.show()
            return 0
        where = e.ctx.command_path if e.ctx is not None else "embtk"
        click.echo(f"embtk: error: {_one_line(e.format_message())} (see '{where} --help')",
                   err=True)
        return e.exit_code
    except click.ClickException as e:
        click.echo(f"embtk: error: {_one_line(e.format_message())}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("embtk: interrupted", err=True)
        return _EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("embtk: interrupted", err=True)
        return _EXIT_INTERRUPTED
    except Terminated as e:
        import signal

        click.echo(f"embtk: stopped by {signal.Signals(e.signum).name}", err=True)
        return 128 + e.signum
    except BrokenPipeError:
        _silence_stdout()
        return _EXIT_BROKEN_PIPE
    except EmbtkError as e:
        click.echo(f"embtk: error: {_one_line(e)}", err=True)
        return 1
    except OSError as e:
        # A file the user named could not be read or written: their problem, not ours.
        if _debugging():
            raise
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        click.echo(f"embtk: error: {where}{e.strerror or _one_line(e)}", err=True)
        return 1
    except Exception as e:
        if _debugging():
            raise
        click.echo(f"embtk: internal error: {type(e).__name__}: {_one_line(e)} "
                   "(set EMBTK_DEBUG=1 for a traceback)", err=True)
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
