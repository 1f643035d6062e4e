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

# Only the options the user typed are passed on, so `embtk.args.Args.for_model` stays
# the single source of the defaults; --help shows them from there too.
_LOSSES = ("hs", "ns", "softmax", "ova", "one-vs-all")
_EXIT_INTERRUPTED = 130
_EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a C tool killed by the signal reports


def _user_error(message: str):
    from .errors import EmbtkError  # a tiny module: no numba

    return EmbtkError(message)


# ----------------------------------------------------------------------------- output
def _stdout():
    return getattr(sys.stdout, "buffer", sys.stdout)


def _stdin():
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


def _words_from(stream):
    """Whitespace-separated words (bytes) of a binary stream, read line by line so that
    answers can be given while a pipe is still open. Yields None after each line."""
    while True:
        line = stream.readline()
        if not line:
            return
        yield from line.split()
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


def _check_k(k: int, allow_all: bool):
    if allow_all and (k == -1 or k > 0):
        return
    if not allow_all and k > 0:
        return
    more = " or -1 (all labels)" if allow_all else ""
    raise _user_error(f"k must be a positive integer{more}, got {k}")


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
def _opt(name, *, help, **kw):
    """An option spelled -name and --name, its default shown in --help."""
    kw.setdefault("show_default", True)
    return click.option(f"-{name}", f"--{name}", name if name != "input" else "input_",
                        help=help, **kw)


def _train_options(mode: str):
    """The options of `embtk <mode>`, with that mode's defaults shown in --help."""
    from .args import Args  # dataclasses only, keeps --help fast

    d = vars(Args.for_model(mode))
    opt = _opt
    specs = [
        opt("input", required=True, metavar="FILE", show_default=False,
            help="training file (one example per line; stdin is not supported)"),
        opt("output", required=True, metavar="PREFIX", show_default=False,
            help="writes PREFIX.bin and PREFIX.vec (and PREFIX.output with -saveOutput)"),
        opt("lr", type=float, default=d["lr"], help="learning rate"),
        opt("lrUpdateRate", type=int, default=d["lrUpdateRate"],
            help="tokens processed between learning-rate updates"),
        opt("dim", type=int, default=d["dim"], help="size of the word vectors"),
        opt("ws", type=int, default=d["ws"], help="size of the context window"),
        opt("epoch", type=int, default=d["epoch"], help="number of passes over the data"),
        opt("minCount", type=int, default=d["minCount"],
            help="minimal number of occurrences of a word"),
        opt("minCountLabel", type=int, default=d["minCountLabel"],
            help="minimal number of occurrences of a label"),
        opt("neg", type=int, default=d["neg"], help="number of negatives sampled"),
        opt("wordNgrams", type=int, default=d["wordNgrams"], help="max length of word n-grams"),
        opt("loss", type=click.Choice(_LOSSES), default=d["loss"], help="loss function"),
        opt("bucket", type=int, default=d["bucket"], help="number of hash buckets for n-grams"),
        opt("minn", type=int, default=d["minn"], help="min length of char n-grams"),
        opt("maxn", type=int, default=d["maxn"], help="max length of char n-grams (0: none)"),
        opt("thread", type=int, default=d["thread"],
            help="number of threads (by default, one per CPU)"),
        opt("t", type=float, default=d["t"], help="sampling threshold"),
        opt("label", default=d["label"], help="prefix that marks labels"),
        opt("verbose", type=int, default=d["verbose"],
            help="0: silent, 1: summary, 2: progress bar on stderr"),
        opt("pretrainedVectors", default=d["pretrainedVectors"], metavar="FILE",
            help="initialise the input vectors from this .vec file"),
        opt("saveOutput", is_flag=True, default=d["saveOutput"], show_default=False,
            help="also write the output vectors to PREFIX.output"),
        opt("seed", type=int, default=d["seed"], help="random seed (reproducible with -thread 1)"),
    ]
    if mode == "supervised":
        specs += _autotune_options(d)

    def decorate(f):
        for spec in reversed(specs):
            f = spec(f)
        return f

    return decorate


def _autotune_options(d):
    def opt(name, dest, **kw):
        return click.option(f"-{name}", f"--{name}", dest, **kw)

    return [
        opt("autotune-validation", "autotuneValidationFile", metavar="FILE",
            default=d["autotuneValidationFile"],
            help="search the options for the best score on this labelled file (turns autotune on)"),
        opt("autotune-metric", "autotuneMetric", default=d["autotuneMetric"], show_default=True,
            help="f1, f1:LABEL, precisionAtRecall:R[:LABEL] or recallAtPrecision:P[:LABEL] (R, P in %)"),
        opt("autotune-predictions", "autotunePredictions", type=int, show_default=True,
            default=d["autotunePredictions"], help="number of labels predicted when scoring"),
        opt("autotune-duration", "autotuneDuration", type=int, default=d["autotuneDuration"],
            show_default=True, help="time budget of the search, in seconds"),
        opt("autotune-modelsize", "autotuneModelSize", default=d["autotuneModelSize"],
            metavar="SIZE", help="largest model file, e.g. 2M (quantizes; writes PREFIX.ftz)"),
    ]


def _check_paths(args):
    """Fail before training, not after it, on files that cannot be read or written."""
    if args.input == "-":
        raise _user_error("training from stdin is not supported: give a file to -input")
    for what, path in (("-input", args.input), ("-pretrainedVectors", args.pretrainedVectors),
                       ("-autotune-validation", args.autotuneValidationFile)):
        if path and not os.path.exists(path):
            raise _user_error(f"{what} {path}: no such file")
        if path and os.path.isdir(path):
            raise _user_error(f"{what} {path} is a directory, not a text file")
    outputs = [".bin", ".vec"] + ([".output"] if args.saveOutput else [])
    for suffix in outputs:
        if os.path.isdir(args.output + suffix):
            raise _user_error(f"cannot write {args.output}{suffix}: it is a directory")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise _user_error(f"cannot write {args.output}.bin: no directory {folder}")
    if not os.access(folder, os.W_OK):
        raise _user_error(f"cannot write {args.output}.bin: {folder} is not writable")


def _make_train_command(mode: str, summary: str):
    @click.pass_context
    def command(ctx, **options):
        from .args import Args
        from .training import train

        given = {}
        for name, value in options.items():
            if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
                given["input" if name == "input_" else name] = value
        args = Args.for_model(mode, **given).validate()
        _check_paths(args)
        _start_numba()
        suffix = ".bin"
        if args.autotuneValidationFile:
            from .autotune import autotune

            model = autotune(args)
            suffix = ".bin" if args.autotune_model_size() is None else ".ftz"
        else:
            model = train(args)
        model.save_model(args.output + suffix)
        model.save_vectors(args.output + ".vec")
        if args.saveOutput:
            model.save_output(args.output + ".output")

    command.__doc__ = summary
    command = _train_options(mode)(command)
    return cli.command(mode, context_settings=_CONTEXT, short_help=summary.lower().rstrip("."),
                       options_metavar="-input FILE -output PREFIX [OPTIONS]")(command)


supervised_command = _make_train_command("supervised", "Train a supervised classifier.")
skipgram_command = _make_train_command("skipgram", "Train a skipgram model (word vectors).")
cbow_command = _make_train_command("cbow", "Train a cbow model (word vectors).")


# ----------------------------------------------------------------------------- glove
def _glove_options(f):
    """The options of `embtk glove`, defaults from `embtk.glove.GloveArgs` (the reference
    GloVe's), shown in --help."""
    import dataclasses

    from .args import default_thread_count

    d = {fl.name: fl.default for fl in dataclasses.fields(_glove_args_class())}
    d["thread"] = default_thread_count()
    opt = _opt
    specs = [
        opt("input", required=True, metavar="FILE", show_default=False,
            help="training text (whitespace-separated words; windows stop at line ends)"),
        opt("output", required=True, metavar="PREFIX", show_default=False,
            help="writes PREFIX.bin (fastText format, no subwords) and PREFIX.vec"),
        opt("dim", type=int, default=d["dim"], help="size of the word vectors"),
        opt("ws", type=int, default=d["ws"], help="context window: words up to this far apart"),
        opt("minCount", type=int, default=d["minCount"],
            help="minimal number of occurrences of a word"),
        opt("epoch", type=int, default=d["epoch"], help="number of passes over the co-occurrences"),
        opt("xmax", type=float, default=d["xmax"], help="count at which the weighting reaches 1"),
        opt("alpha", type=float, default=d["alpha"], help="exponent of the weighting (x/xmax)^alpha"),
        opt("lr", type=float, default=d["lr"], help="initial AdaGrad step"),
        opt("thread", type=int, default=d["thread"],
            help="number of threads (by default, one per CPU)"),
        opt("memory", type=float, default=d["memory"],
            help="GB for counting co-occurrences; more is spilled to sorted shards on disk"),
        click.option("-symmetric/-asymmetric", "--symmetric/--asymmetric", "symmetric",
                     default=d["symmetric"], show_default=True,
                     help="count context on both sides of a word, or only on its left"),
        opt("vectors", type=click.Choice(_glove_args_class().VECTORS), default=d["vectors"],
            help="save word + context vectors, or word vectors alone"),
        opt("tmpdir", default=d["tmpdir"], metavar="DIR", show_default=False,
            help="folder for the temporary shards (default: the system's temporary folder)"),
        opt("seed", type=int, default=d["seed"], help="random seed (reproducible with -thread 1)"),
        opt("verbose", type=int, default=d["verbose"],
            help="0: silent, 1: summary, 2: progress bars on stderr"),
    ]
    for spec in reversed(specs):
        f = spec(f)
    return f


def _glove_args_class():
    from .args import GloveArgs  # dataclasses only, keeps --help fast

    return GloveArgs


@cli.command("glove", context_settings=_CONTEXT, short_help="train GloVe word vectors",
             options_metavar="-input FILE -output PREFIX [OPTIONS]")
@_glove_options
@click.pass_context
def glove_command(ctx, **options):
    """Train GloVe word vectors: count co-occurrences, then fit them with AdaGrad.

    The .bin is a fastText model without subwords: nn, analogies, print-word-vectors
    and the Python API read it; words outside the vocabulary have no vector.
    """
    from .glove import train

    given = {}
    for name, value in options.items():
        if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT:
            given["input" if name == "input_" else name] = value
    args = _glove_args_class().from_options(**given).validate()
    _check_paths(args.model_args())
    if args.tmpdir and not os.path.isdir(args.tmpdir):
        raise _user_error(f"-tmpdir {args.tmpdir}: no such directory")
    _start_numba()
    model = train(args)
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
        raise _user_error(f"-input {input_}: no such file")
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


def _write_general_metrics(out, n, precision, recall, k, fixed: bool):
    # fastText prints these with precision 3, in fixed notation only after test-label
    # switched the stream to std::fixed.
    spec = ".3f" if fixed else ".3g"
    out.write(f"N\t{n}\nP@{k}\t{precision:{spec}}\nR@{k}\t{recall:{spec}}\n".encode("ascii"))


def _load_for_test(model_path, data, k):
    _check_k(k, allow_all=True)
    model = _load(model_path)
    if data != "-" and not os.path.isfile(data):
        raise _user_error(f"test file {data} cannot be opened" if os.path.exists(data)
                          else f"test file {data}: no such file")
    return model


def _test(model_path, data, k, threshold):
    model = _load_for_test(model_path, data, k)
    result = model.evaluate(_stdin() if data == "-" else data, k, threshold)
    _write_general_metrics(_stdout(), result.examples, result.precision, result.recall, k,
                           fixed=False)


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
    from .evaluation import classification_report

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
    out = _stdout()
    if report:
        scores = result.sorted_labels(order)
        width = max(len(s.label) for s in scores + [result.micro])

        def row(s):
            return (f"{s.label:<{width}}  {s.support:>7}  {s.predicted:>9}  {s.correct:>7}  "
                    f"{_fixed(s.precision):>9}  {_fixed(s.recall):>7}  {_fixed(s.f1):>7}")

        lines = [f"{'label':<{width}}  {'support':>7}  {'predicted':>9}  {'correct':>7}  "
                 f"{'precision':>9}  {'recall':>7}  {'F1':>7}"]
        lines += [row(s) for s in scores] + ["", row(result.micro), row(result.macro)]
        lines.append(f"N {result.examples} lines, k={result.k}, threshold {result.threshold:g}; "
                     "macro: mean over labels in the data or predicted (undefined = 0)")
        out.write(("\n".join(lines) + "\n").encode("utf-8"))
    else:
        _test_label_lines(out, result)
    if confusion:
        names = [s.label for s in result.labels]
        out.write(b"\nconfusion (rows: gold label, columns: top prediction)\n")
        out.write(("gold\\predicted\t" + "\t".join(names + ["(none)"]) + "\n").encode("utf-8"))
        for name, counts in zip(names, result.confusion.tolist()):
            out.write((name + "\t" + "\t".join(map(str, counts)) + "\n").encode("utf-8"))


def _test_label_lines(out, report):
    """fastText's test-label output, from a ClassificationReport."""
    import math

    def metric(name, value):
        shown = f"{value:.6f}" if math.isfinite(value) else "--------"
        return f"{name} : {shown}  "

    for s in report.labels:
        line = (metric("F1-Score", s.f1) + metric("Precision", s.precision)
                + metric("Recall", s.recall) + " ")
        out.write(line.encode("ascii") + _text(s.label) + b"\n")
    m = report.micro
    _write_general_metrics(out, report.examples, m.precision, m.recall, report.k, fixed=True)


def _predict(model_path, data, k, threshold, with_prob: bool):
    _check_k(k, allow_all=True)
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
            _write_pieces(out, _prediction_lines(model, data, k, threshold, with_prob))
            if live:
                out.flush()
    finally:
        if not live:
            stream.close()


def _prediction_lines(model, data: bytes, k, threshold, with_prob: bool) -> list:
    """fastText's output for each line of `data`: labels (and probabilities), then newline."""
    counts, probs, ids = model.predict_arrays(data, k, threshold)
    names = [_text(label) for label in model.dictionary.labels]
    ids = ids.tolist()
    if not with_prob and (k == 1 or probs.shape[1] == 1):
        return [names[row[0]] + b"\n" if n else b"\n" for n, row in zip(counts.tolist(), ids)]
    probs = probs.tolist()
    if with_prob:
        return [b" ".join([b"%s %s" % (names[i], _number(p).encode()) for i, p in
                           zip(row[:n], prow)]) + b"\n"
                for n, row, prow in zip(counts.tolist(), ids, probs)]
    return [b" ".join([names[i] for i in row[:n]]) + b"\n" for n, row in zip(counts.tolist(), ids)]


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
    _check_k(k, allow_all=False)
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
    _check_k(k, allow_all=False)
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
            raise _user_error(f"dump {what} is not supported for quantized models")
        _dump_matrix(out, m.get_input_matrix() if what == "input" else m.get_output_matrix())


# ----------------------------------------------------------------------- evaluation
def _json_out(value) -> None:
    import json

    _stdout().write((json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def _check_plot(plot):
    if plot:
        from .plots import check_plot_path

        check_plot_path(plot)


def _fixed(value, spec: str = ".4f") -> str:
    return "nan" if value is None or value != value else format(value, spec)


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
    from .evaluation import evaluate_similarity, load_vectors

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
    subwords = vectors.has_subwords
    name_width = max(len("data"), *(len(os.path.basename(r.data)) for r in results))
    head = f"{'data':<{name_width}}  {'pairs':>6}  {'in vocab':>14}  {'Pearson':>8}  {'Spearman':>8}"
    if subwords:
        head += f"  | {'OOV via subwords: pairs':>23}  {'Pearson':>8}  {'Spearman':>8}"
    lines = [head]
    for r in results:
        row = (f"{os.path.basename(r.data):<{name_width}}  {r.pairs:>6}  "
               f"{f'{r.in_vocab} ({100 * r.coverage:.1f}%)':>14}  {_fixed(r.pearson):>8}  "
               f"{_fixed(r.spearman):>8}")
        if subwords:
            row += (f"  | {r.subword_pairs:>23}  {_fixed(r.subword_pearson):>8}  "
                    f"{_fixed(r.subword_spearman):>8}")
        lines.append(row)
    if subwords:
        lines.append("OOV via subwords: all pairs scored, words outside the vocabulary built "
                     "from their character n-grams")
    _stdout().write(("\n".join(lines) + "\n").encode("utf-8"))


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

    from .evaluation import evaluate_analogies, load_vectors

    started = time.perf_counter()
    _check_plot(plot)
    if top < 1:
        raise _user_error(f"-top must be a positive number of words, got {top}")
    _start_numba()
    result = evaluate_analogies(load_vectors(model, max_words=top), questions, top=top,
                                method=method, lower=lower)
    if plot:
        from .plots import analogy_plot

        analogy_plot(result, plot)
    if as_json:
        _json_out(dict(result.to_dict(), model=model))
        return
    width = max(len("section"), *(len(s.name) for s in result.sections))
    lines = [f"{'section':<{width}}  {'questions':>9}  {'answered':>8}  {'correct':>7}  "
             f"{'accuracy':>8}"]

    def row(s):
        accuracy = f"{100 * s.accuracy:.2f}%" if s.answered else "-"
        return (f"{s.name:<{width}}  {s.questions:>9}  {s.answered:>8}  {s.correct:>7}  "
                f"{accuracy:>8}")

    lines += [row(s) for s in result.sections]
    lines.append("")
    lines += [row(s) for s in (result.semantic, result.syntactic, result.total)]
    lines.append(f"{result.method}, top {result.top} words{', lower-cased' if lower else ''}: "
                 f"{result.total.skipped} of {result.total.questions} questions skipped "
                 f"(a word outside the top words); answered in {result.seconds:.2f} s, "
                 f"{time.perf_counter() - started:.2f} s in all")
    _stdout().write(("\n".join(lines) + "\n").encode("utf-8"))


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


def main(argv=None) -> int:
    """Run the command line; returns the exit status (the console script exits with it).

    All error reporting lives here: a user error (EmbtkError) is one line on stderr and
    status 1, a usage error one line and status 2, Ctrl-C is status 130, a
    closed stdout (`| head`) ends quietly, and anything else is reported as an internal
    error in one line unless EMBTK_DEBUG=1 asks for the traceback.
    """
    from .errors import EmbtkError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            with cli.make_context("embtk", args) as ctx:
                cli.invoke(ctx)
        finally:
            # What was written must reach the pipe (a closed one is reported below).
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
