"""Training options: fastText's names, defaults and validation rules in one place."""

from __future__ import annotations

import dataclasses
import numbers
import os
import re
from dataclasses import dataclass, field

from .errors import EmbtkError

# Integer codes used in the .bin header (fastText's enums).
LOSS_CODES = {"hs": 1, "ns": 2, "softmax": 3, "ova": 4}
MODEL_CODES = {"cbow": 1, "skipgram": 2, "supervised": 3}
MODE_CODES = {"fasttext": 1, "floret": 2}  # floret's mode_name, in its .bin
MODE_NAMES = {v: k for k, v in MODE_CODES.items()}
LOSS_NAMES = {v: k for k, v in LOSS_CODES.items()}
MODEL_NAMES = {v: k for k, v in MODEL_CODES.items()}
LOSS_ALIASES = {"one-vs-all": "ova"}
MODEL_ALIASES = {"sg": "skipgram", "skipgram": "skipgram", "cbow": "cbow",
                 "supervised": "supervised", "sup": "supervised"}


# Upper limits of two options that size memory wherever a model is used: each word's
# character n-gram table takes up to maxn slots per character, each line's features
# wordNgrams slots per token. fastText's defaults (maxn 6, wordNgrams 1) and documented
# settings (wordNgrams 2-5) are far inside; a model's header is held to them on load too.
MAX_NGRAM_LENGTH = 100
MAX_WORD_NGRAMS = 100


def default_thread_count() -> int:
    return max(1, os.cpu_count() or 1)


def _wrong_type(f, value) -> str | None:
    """What a value of the wrong type for field `f` should be ('an integer', 'a number')."""
    if isinstance(value, bool) and f.type in ("int", "float"):
        return "an integer" if f.type == "int" else "a number"
    if f.type == "int" and not isinstance(value, numbers.Integral):
        return "an integer"
    if f.type == "float" and not isinstance(value, numbers.Real):
        return "a number"
    return None


def check_field_types(options) -> None:
    """Each int field holds an int and each float field a number (made a float), or the
    option is reported by its command-line name."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        expected = _wrong_type(f, value)
        if expected:
            raise EmbtkError(f"-{f.name} must be {expected}, got {value!r}")
        if f.type == "float":
            setattr(options, f.name, float(value))


def check_python_types(options_class, given: dict) -> None:
    """From Python, an option of the wrong type is a TypeError naming it as it was passed:
    `given` maps each keyword as the caller spelt it to (field name, value)."""
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    for keyword, (name, value) in given.items():
        expected = _wrong_type(fields[name], value) if name in fields else None
        if expected:
            raise TypeError(f"{keyword} must be {expected}, got {value!r}")


# ------------------------------------------------ arguments of the Python API
# One place for the checks of what a caller passes: a wrong type is a TypeError and a
# wrong value an EmbtkError (a ValueError), each naming the argument.


def check_k(k, allow_all: bool = True, name: str = "k") -> int:
    """A number of answers: a positive integer, or -1 (all labels) where `allow_all`."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {k!r}")
    if k > 0 or (allow_all and k == -1):
        return int(k)
    more = " or -1 (all labels)" if allow_all else ""
    raise EmbtkError(f"{name} must be a positive integer{more}, got {k}")


def check_threshold(threshold, name: str = "threshold") -> float:
    """A probability threshold: a real number (not a string, not a bool)."""
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"{name} must be a number, got {threshold!r}")
    threshold = float(threshold)
    if threshold != threshold:
        raise EmbtkError(f"{name} must be a number, got nan")
    return threshold


def check_text(text, name: str = "text") -> bytes:
    """A word or a line: str (encoded as UTF-8) or bytes (taken as they are)."""
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8", "surrogateescape")
    raise TypeError(f"{name} must be a str or bytes, got {type(text).__name__}")


def check_index(index, size: int, name: str = "index") -> int:
    """A row number in 0..size-1 (no counting from the end, as the official module)."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {index!r}")
    if not 0 <= index < size:
        raise EmbtkError(f"{name} must be between 0 and {size - 1}, got {index}")
    return int(index)


def as_path(path, name: str = "path") -> str:
    """A file name given as str, bytes or os.PathLike, as a str."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    raise TypeError(f"{name} must be a path (str, bytes or os.PathLike), got "
                    f"{type(path).__name__}")


def check_paths(inputs: dict, outputs: list) -> None:
    """Fail before training, not after it, on files that cannot be read or written.
    `inputs`: option name -> path ('' when unset); `outputs`: paths to be written."""
    for what, path in inputs.items():
        if path == "-" and what == "-input":
            continue  # stdin, spooled to a temporary file (corpus.training_input)
        if path and not os.path.exists(path):
            raise EmbtkError(f"{what} {path}: no such file")
        if path and os.path.isdir(path):
            raise EmbtkError(f"{what} {path} is a directory, not a text file")
    for path in outputs:
        if os.path.isdir(path):
            raise EmbtkError(f"cannot write {path}: it is a directory")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise EmbtkError(f"cannot write {path}: no directory {folder}")
        if not os.access(folder, os.W_OK):
            raise EmbtkError(f"cannot write {path}: {folder} is not writable")


def check_tmpdir(folder: str) -> None:
    """-tmpdir, when given, is a folder this process can write in."""
    if folder and not os.path.isdir(folder):
        raise EmbtkError(f"-tmpdir {folder}: no such directory")
    if folder and not os.access(folder, os.W_OK | os.X_OK):
        raise EmbtkError(f"-tmpdir {folder}: not writable")


def option(default=dataclasses.MISSING, help="", *, factory=None, **cli):
    """A field that is also a command-line option: `help` and the `cli` keywords (metavar,
    choices, flag) are what `embtk.cli` builds the option from."""
    meta = {"help": help, **cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def cli_options(options_class, mode: str = "") -> list:
    """The command-line options of a dataclass of options, in field order: (name, field,
    default for `mode`). Fields without help text are not options."""
    defaults = vars(options_class.for_model(mode)) if mode else {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(options_class)}
    return [(f.name, f, defaults[f.name]) for f in dataclasses.fields(options_class)
            if f.metadata.get("help") and mode in f.metadata.get("modes", (mode,))]


@dataclass
class Args:
    """Every option of the train commands. Field names are fastText's."""

    input: str = option("", "training file (one example per line; '-' reads stdin)",
                        metavar="FILE", required=True)
    output: str = option("", "writes PREFIX.bin and PREFIX.vec (and PREFIX.output with "
                         "-saveOutput, PREFIX.floret in floret mode)", metavar="PREFIX",
                         required=True)
    model: str = "skipgram"
    lr: float = option(0.05, "learning rate")
    lrUpdateRate: int = option(100, "tokens processed between learning-rate updates")
    dim: int = option(100, "size of the word vectors")
    ws: int = option(5, "size of the context window")
    epoch: int = option(5, "number of passes over the data")
    minCount: int = option(5, "minimal number of occurrences of a word")
    minCountLabel: int = option(0, "minimal number of occurrences of a label")
    neg: int = option(5, "number of negatives sampled")
    batch: int = option(0, "N neighbouring context windows share one draw of negatives: "
                        "faster, slightly different vectors (see README; -loss ns only; "
                        "0: fastText's algorithm)", modes=("skipgram", "cbow"))
    wordNgrams: int = option(1, "max length of word n-grams")
    loss: str = option("ns", "loss function", choices=("hs", "ns", "softmax", "ova", "one-vs-all"))
    bucket: int = option(2000000, "number of hash buckets for n-grams")
    minn: int = option(3, "min length of char n-grams")
    maxn: int = option(6, "max length of char n-grams (0: none)")
    mode: str = option("fasttext", "fasttext, or floret: each word and n-gram spread over "
                       "-hashCount rows of one hashed table of -bucket rows (see README)",
                       metavar="fasttext|floret")
    hashCount: int = option(1, "floret mode: rows per word and per n-gram (1-4)")
    thread: int = option(help="number of threads (by default, one per CPU)",
                         factory=default_thread_count)
    t: float = option(1e-4, "sampling threshold")
    label: str = option("__label__", "prefix that marks labels")
    verbose: int = option(2, "0: silent, 1: summary, 2: progress bar on stderr")
    pretrainedVectors: str = option("", "initialise the input vectors from this .vec file",
                                    metavar="FILE")
    saveOutput: bool = option(False, "also write the output vectors to PREFIX.output")
    seed: int = option(0, "random seed (reproducible with -thread 1)")
    inputModel: str = option(
        "", "continue training this .bin on -input: its options are the defaults, new words "
        "and labels are added (-dim, -minn, -maxn, -bucket, -wordNgrams, -loss, -mode, "
        "-hashCount cannot change)",
        metavar="FILE", show_default=False)
    checkpoint: str = option("", "save a resumable state to this file every -checkpointEvery "
                             "seconds, when interrupted, and at the end (marked complete: "
                             "resuming it trains nothing; delete it when done)", metavar="FILE",
                             show_default=False)
    checkpointEvery: float = option(600.0, "seconds between checkpoints")
    resume: str = option("", "continue the interrupted run saved in this checkpoint, to the "
                         "same end (same -input and options)", metavar="FILE",
                         show_default=False)
    tmpdir: str = option("", "folder for temporary files: the encoded corpus, stdin spooled "
                         "(default: the system's temporary folder)", metavar="DIR",
                         show_default=False)
    # quantization (`embtk quantize`; autotune uses them to meet -autotune-modelsize)
    cutoff: int = 0
    retrain: bool = False
    qnorm: bool = False
    qout: bool = False
    dsub: int = option(2, "size of each sub-vector when -autotune-modelsize quantizes (tuned "
                       "unless given)", modes=("supervised",))
    # autotune: a validation file turns it on
    autotuneValidationFile: str = option(
        "", "search the options for the best score on this labelled file (turns autotune on)",
        metavar="FILE", flag_name="autotune-validation", modes=("supervised",), show_default=False)
    autotuneMetric: str = option(
        "f1", "f1, f1:LABEL, precisionAtRecall:R[:LABEL] or recallAtPrecision:P[:LABEL] "
        "(R, P in %)", flag_name="autotune-metric", modes=("supervised",))
    autotunePredictions: int = option(1, "number of labels predicted when scoring",
                                      flag_name="autotune-predictions", modes=("supervised",))
    autotuneDuration: int = option(300, "time budget of the search, in seconds",
                                   flag_name="autotune-duration", modes=("supervised",))
    autotuneModelSize: str = option(
        "", "largest model file, e.g. 2M (quantizes; writes PREFIX.ftz)", metavar="SIZE",
        flag_name="autotune-modelsize", modes=("supervised",), show_default=False)
    autotuneScheduler: str = option(
        "", "run the trials concurrently on the workers of this Dask scheduler, e.g. "
        "tcp://host:8786 (needs embtk[dask])", metavar="ADDRESS",
        flag_name="autotune-scheduler", modes=("supervised",), show_default=False)
    # The options the user gave explicitly: autotune never changes them.
    manual: frozenset = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def for_model(cls, model: str, **overrides) -> "Args":
        """Defaults of fastText for `model`, then the user's overrides."""
        model = MODEL_ALIASES.get(model, model)
        base = cls(model=model)
        if model == "supervised":
            base.lr, base.minCount, base.loss, base.minn, base.maxn = 0.1, 1, "softmax", 0, 0
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in overrides.items():
            if key not in names:
                raise EmbtkError(f"unknown option '{key}'{did_you_mean(key, names)}")
            if value is not None:
                setattr(base, key, value)
        base.manual = frozenset(k for k, v in overrides.items() if v is not None)
        base.loss = LOSS_ALIASES.get(base.loss, base.loss)
        return base

    @property
    def loss_code(self) -> int:
        return LOSS_CODES[self.loss]

    @property
    def model_code(self) -> int:
        return MODEL_CODES[self.model]

    @property
    def supervised(self) -> bool:
        return self.model == "supervised"

    @property
    def floret(self) -> bool:
        return self.mode == "floret"

    @property
    def floret_hashes(self) -> int:
        """Rows per word and n-gram in floret mode; 0 in fastText mode (Dictionary's hash_count)."""
        return int(self.hashCount) if self.mode == "floret" else 0

    def effective_bucket(self) -> int:
        """fastText allocates no hash buckets when nothing would land in them (floret
        always does: it hashes whole words too)."""
        if self.wordNgrams <= 1 and self.maxn == 0 and not self.floret:
            return 0
        return self.bucket

    def autotune_metric(self) -> tuple:
        """(name, value, label) of -autotune-metric: name is f1, precisionAtRecall or
        recallAtPrecision, value the R or P given in percent as a fraction, label '' for
        all labels. Raises EmbtkError when it cannot be parsed."""
        text = str(self.autotuneMetric)
        name, _, rest = text.partition(":")
        value, label = 0.0, ""
        if name == "f1" and text == "f1":
            pass
        elif name == "f1":
            label = rest
        elif name in ("precisionAtRecall", "recallAtPrecision") and rest:
            number, _, label = rest.partition(":")
            try:
                value = float(number) / 100.0
            except ValueError:
                raise EmbtkError(f"-autotune-metric {text}: '{number}' is not a number") from None
            if not 0.0 <= value <= 1.0:
                raise EmbtkError(f"-autotune-metric {text}: {number} is not a percentage (0-100)")
            if ":" in rest and not label:
                raise EmbtkError(f"-autotune-metric {text}: empty label")
        else:
            raise EmbtkError(f"unknown -autotune-metric '{text}' (use f1, f1:LABEL, "
                             "precisionAtRecall:R[:LABEL] or recallAtPrecision:P[:LABEL])")
        if name == "f1" and text != "f1" and not label:
            raise EmbtkError(f"-autotune-metric {text}: empty label")
        return name, value, label

    def autotune_model_size(self) -> int | None:
        """-autotune-modelsize in bytes (k, m, g suffixes are powers of 1000); None if unset."""
        text = str(self.autotuneModelSize)
        if not text:
            return None
        units = {"k": 1000, "m": 1000 ** 2, "g": 1000 ** 3}
        number, unit = (text[:-1], units[text[-1].lower()]) if text[-1].lower() in units else (text, 1)
        if not number.isdigit():
            raise EmbtkError(f"cannot parse -autotune-modelsize '{text}' (e.g. 2000000, 500k or 2M)")
        return int(number) * unit

    def check_paths(self) -> None:
        """The files this run reads exist, the ones it writes can be written."""
        suffixes = [".bin", ".vec"] + ([".output"] if self.saveOutput else []) + (
            [".floret"] if self.floret else [])
        check_paths({"-input": self.input, "-pretrainedVectors": self.pretrainedVectors,
                     "-autotune-validation": self.autotuneValidationFile,
                     "-inputModel": "" if self.resume else self.inputModel,
                     "-resume": self.resume},
                    [self.output + s for s in suffixes] + ([self.checkpoint] if self.checkpoint else []))
        check_tmpdir(self.tmpdir)

    def validate(self) -> "Args":
        check_field_types(self)
        if self.model not in MODEL_CODES:
            raise EmbtkError(f"unknown model '{self.model}' (use cbow, skipgram or supervised)")
        if self.loss not in LOSS_CODES:
            raise EmbtkError(f"unknown loss '{self.loss}' (use hs, ns, softmax or one-vs-all)")
        if self.mode not in MODE_CODES:
            raise EmbtkError(f"unknown mode '{self.mode}' (use fasttext or floret)"
                             f"{did_you_mean(str(self.mode), MODE_CODES)}")
        if not 1 <= self.hashCount <= 4:
            raise EmbtkError(f"-hashCount must be between 1 and 4 (floret's range), got "
                             f"{self.hashCount}")
        if self.floret and self.bucket <= 0:
            raise EmbtkError("-bucket must be positive in floret mode: every word's rows are "
                             "hash buckets")
        positive = ("dim", "ws", "epoch", "wordNgrams", "thread", "lrUpdateRate")
        # negatives are drawn by the ns loss only: fastText accepts -neg 0 with the others
        positive += ("neg",) if self.loss == "ns" else ()
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise EmbtkError(f"-{name} must be a positive integer, got {getattr(self, name)}")
        if self.neg < 0:
            raise EmbtkError(f"-neg must be zero or positive, got {self.neg}")
        if self.batch < 0:
            raise EmbtkError(f"-batch must be zero or positive, got {self.batch}")
        if self.batch > 0 and self.supervised:
            raise EmbtkError("-batch applies to skipgram and cbow, not to supervised training")
        if self.batch > 0 and self.loss != "ns":
            raise EmbtkError(f"-batch shares the negatives of -loss ns; it cannot be used with "
                             f"-loss {self.loss}")
        for name in ("minCount", "minCountLabel", "bucket", "minn", "maxn"):
            if int(getattr(self, name)) < 0:
                raise EmbtkError(f"-{name} must be zero or positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise EmbtkError(f"-lr must be positive, got {self.lr}")
        if not self.t > 0:
            raise EmbtkError(f"-t must be positive, got {self.t}")
        for name, limit in (("maxn", MAX_NGRAM_LENGTH), ("wordNgrams", MAX_WORD_NGRAMS)):
            if int(getattr(self, name)) > limit:
                raise EmbtkError(f"-{name} must be at most {limit}, got {getattr(self, name)}")
        if self.maxn > 0 and self.minn > self.maxn:
            raise EmbtkError(f"-minn ({self.minn}) must not exceed -maxn ({self.maxn})")
        if self.bucket == 0 and (self.maxn > 0 or self.wordNgrams > 1):
            raise EmbtkError("-bucket must be positive when subwords or word n-grams are used")
        if not self.label:
            raise EmbtkError("-label must not be empty")
        if self.dim > 100000:
            raise EmbtkError(f"-dim {self.dim} is unreasonably large")
        if self.cutoff < 0:
            raise EmbtkError(f"-cutoff must be zero or positive, got {self.cutoff}")
        if self.dsub <= 0:
            raise EmbtkError(f"-dsub must be a positive integer, got {self.dsub}")
        if isinstance(self.autotuneModelSize, numbers.Integral):  # the official module allows it
            self.autotuneModelSize = str(self.autotuneModelSize)
        self.autotune_metric()
        self.autotune_model_size()
        if self.autotunePredictions != -1 and self.autotunePredictions <= 0:
            raise EmbtkError(f"-autotune-predictions must be positive (or -1 for all labels), "
                             f"got {self.autotunePredictions}")
        if not self.checkpointEvery > 0:
            raise EmbtkError(f"-checkpointEvery must be a positive number of seconds, got "
                             f"{self.checkpointEvery}")
        if (self.checkpoint or self.resume) and self.autotuneValidationFile:
            raise EmbtkError("autotune cannot be checkpointed or resumed (-checkpoint, -resume)")
        if self.inputModel and not self.resume and (self.pretrainedVectors
                                                    or self.autotuneValidationFile):
            other = "-pretrainedVectors" if self.pretrainedVectors else "autotune"
            raise EmbtkError(f"-inputModel cannot be combined with {other}: the model already "
                             "holds the vectors and options to start from")
        if self.autotuneDuration <= 0:
            raise EmbtkError(f"-autotune-duration must be a positive number of seconds, "
                             f"got {self.autotuneDuration}")
        return self


# Every option of fastText's own command line (its Args::parseArgs), by field name. fastText
# takes each of them on every command that has options (the train commands and quantize)
# and ignores those that do not apply, so scripts share one option string: embtk takes them
# too, with a warning for one that has no effect on the command (shell.options_of).
FASTTEXT_OPTIONS = (
    "input", "output", "lr", "lrUpdateRate", "dim", "ws", "epoch", "minCount", "minCountLabel",
    "neg", "wordNgrams", "loss", "bucket", "minn", "maxn", "thread", "t", "label", "verbose",
    "pretrainedVectors", "saveOutput", "seed", "qnorm", "retrain", "qout", "cutoff", "dsub",
    "autotuneValidationFile", "autotuneMetric", "autotunePredictions", "autotuneDuration",
    "autotuneModelSize")


def did_you_mean(name: str, known) -> str:
    """' (did you mean 'x'?)' for the known names that look like `name`, else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.7)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


class CommandOptions:
    """The options of a command other than training fastText's models, as a dataclass."""

    @classmethod
    def from_options(cls, **options):
        """The options given set (None: left at its default), the others at their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        args = cls()
        for key, value in options.items():
            if key not in names:
                raise EmbtkError(f"unknown option '{key}'{did_you_mean(key, names)}")
            if value is not None:
                setattr(args, key, value)
        return args


def _default_of(name: str):
    """The default of an Args field: commands that share an option share its default."""
    return Args.__dataclass_fields__[name].default


@dataclass
class QuantizeArgs(CommandOptions):
    """Options of `embtk quantize`; those of the retraining are the train commands'."""

    output: str = option("", "reads the classifier PREFIX.bin, writes PREFIX.ftz",
                         metavar="PREFIX", required=True)
    input: str = option("", "training file, needed by -retrain", metavar="FILE",
                        show_default=False)
    cutoff: int = option(_default_of("cutoff"), "number of words and n-grams to keep, by norm "
                         "(0: all)")
    retrain: bool = option(_default_of("retrain"), "finetune the embeddings after -cutoff")
    qnorm: bool = option(_default_of("qnorm"), "quantize the norms separately")
    qout: bool = option(_default_of("qout"), "quantize the output matrix too (256+ labels)")
    dsub: int = option(_default_of("dsub"), "size of each sub-vector")
    epoch: int = option(_default_of("epoch"), "epochs of -retrain")
    lr: float = option(_default_of("lr"), "learning rate of -retrain")
    thread: int = option(help="threads of -retrain (by default, one per CPU)",
                         factory=default_thread_count)
    verbose: int = option(_default_of("verbose"), "0: silent, 2: progress bar of -retrain")


@dataclass
class GloveArgs(CommandOptions):
    """Options of `embtk glove`: names in fastText's style, defaults the reference GloVe's."""

    input: str = option("", "training text (whitespace-separated words; windows stop at line "
                        "ends; '-' reads stdin)", metavar="FILE", required=True)
    output: str = option("", "writes PREFIX.bin (fastText format, no subwords) and PREFIX.vec",
                         metavar="PREFIX", required=True)
    dim: int = option(50, "size of the word vectors")
    ws: int = option(15, "context window: words up to this far apart")
    minCount: int = option(5, "minimal number of occurrences of a word")
    epoch: int = option(25, "number of passes over the co-occurrences")
    xmax: float = option(100.0, "count at which the weighting reaches 1")
    alpha: float = option(0.75, "exponent of the weighting (x/xmax)^alpha")
    lr: float = option(0.05, "initial AdaGrad step")
    thread: int = option(help="number of threads (by default, one per CPU)",
                         factory=default_thread_count)
    memory: float = option(4.0, "GB for counting co-occurrences; more is spilled to sorted "
                           "shards on disk")
    symmetric: bool = option(True, "count context on both sides of a word, or only on its left",
                             negative="asymmetric")
    vectors: str = option("w+w~", "save word + context vectors, or word vectors alone",
                          choices=("w+w~", "w"))
    tmpdir: str = option("", "folder for the temporary shards (default: the system's temporary "
                         "folder)", metavar="DIR", show_default=False)
    seed: int = option(0, "random seed (reproducible with -thread 1)")
    verbose: int = option(2, "0: silent, 1: summary, 2: progress bars on stderr")

    VECTORS = ("w+w~", "w")


    def check_paths(self) -> None:
        check_paths({"-input": self.input}, [self.output + ".bin", self.output + ".vec"])
        check_tmpdir(self.tmpdir)

    def validate(self) -> "GloveArgs":
        check_field_types(self)
        for name in ("dim", "ws", "epoch", "thread", "minCount"):
            if getattr(self, name) <= 0:
                raise EmbtkError(f"-{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("xmax", "lr", "memory"):
            value = getattr(self, name)
            if not (value > 0 and value != float("inf")):
                raise EmbtkError(f"-{name} must be a positive number, got {value}")
        if not (self.alpha >= 0 and self.alpha != float("inf")):
            raise EmbtkError(f"-alpha must be zero or positive, got {self.alpha}")
        if self.vectors not in self.VECTORS:
            raise EmbtkError(f"-vectors must be one of {', '.join(self.VECTORS)}, got {self.vectors!r}")
        if self.dim > 100000:
            raise EmbtkError(f"-dim {self.dim} is unreasonably large")
        if not isinstance(self.symmetric, bool):
            raise EmbtkError(f"symmetric must be True or False, got {self.symmetric!r}")
        return self

    def model_args(self) -> Args:
        """The fastText options stored in the .bin: a skipgram-like model, no subwords."""
        return Args.for_model("skipgram", input=self.input, output=self.output, dim=self.dim,
                              ws=self.ws, epoch=self.epoch, minCount=self.minCount, lr=self.lr,
                              minn=0, maxn=0, bucket=0, thread=self.thread, seed=self.seed,
                              verbose=self.verbose)


@dataclass
class ElmoArgs(CommandOptions):
    """Options of `embtk elmo`: sizes as bilm-tf's options.json names them, training as
    bilm-tf trains (defaults: a small model that trains en_small.txt in minutes)."""

    input: str = option("", "training text (whitespace-separated words, one sentence or "
                        "paragraph a line; '-' reads stdin)", metavar="FILE", required=True)
    output: str = option("", "writes PREFIX.elmo", metavar="PREFIX", required=True)
    charDim: int = option(16, "size of the character embedding")
    filters: str = option("1:32,2:32,3:64,4:128", "the convolutions: width:count pairs",
                          metavar="W:N,...")
    highway: int = option(1, "number of highway layers")
    projDim: int = option(128, "size of the token encoding and of each LSTM's output")
    lstmDim: int = option(512, "cells of each LSTM")
    layers: int = option(2, "LSTM layers per direction")
    maxChars: int = option(50, "characters per token (longer words are cut)")
    bptt: int = option(20, "unroll: tokens per window of back-propagation through time")
    batchSize: int = option(64, "parallel streams per window")
    lr: float = option(0.2, "Adagrad's learning rate")
    epoch: int = option(1, "passes over the corpus")
    minCount: int = option(3, "minimal count of a word in the softmax (rarer: <UNK>)")
    samples: int = option(1024, "words of the sampled softmax per window (>= the vocabulary: "
                          "the full softmax)")
    cellClip: float = option(3.0, "clip of the LSTM cells (0: none)")
    projClip: float = option(3.0, "clip of the LSTM outputs (0: none)")
    dropout: float = option(0.1, "dropout rate of the LSTM inputs and the softmax input")
    thread: int = option(help="number of threads (by default, one per CPU)",
                         factory=default_thread_count)
    seed: int = option(0, "random seed (reproducible with -thread 1)")
    verbose: int = option(2, "0: silent, 1: summary, 2: progress bar on stderr")
    tmpdir: str = option("", "folder for a copy of stdin (default: the system's temporary "
                         "folder)", metavar="DIR", show_default=False)
    inputModel: str = option("", "continue from this .elmo (a converted published model gets "
                             "a new softmax)", metavar="FILE", show_default=False)
    checkpoint: str = option("", "save a resumable state to this file every "
                             "-checkpointEvery seconds, on Ctrl-C and at the end",
                             metavar="FILE", show_default=False)
    checkpointEvery: float = option(600.0, "seconds between checkpoints")
    resume: str = option("", "continue the interrupted run saved in this checkpoint, to the "
                         "model it would have given", metavar="FILE", show_default=False)

    SIZES = ("charDim", "filters", "highway", "projDim", "lstmDim", "layers", "maxChars",
             "cellClip", "projClip")

    def filter_pairs(self) -> tuple:
        """-filters as ((width, count), ...)."""
        pairs = []
        for piece in self.filters.replace(" ", "").split(","):
            width, _, count = piece.partition(":")
            if not (width.isdigit() and count.isdigit()) or int(width) < 1 or int(count) < 1:
                raise EmbtkError(f"-filters must be width:count pairs separated by commas, "
                                 f"such as 1:32,2:32,3:64; got {self.filters!r}")
            pairs.append((int(width), int(count)))
        return tuple(pairs)

    def check_paths(self) -> None:
        check_paths({"-input": self.input, "-inputModel": self.inputModel,
                     "-resume": self.resume},
                    [self.output + ".elmo"] + ([self.checkpoint] if self.checkpoint else []))
        check_tmpdir(self.tmpdir)

    def validate(self) -> "ElmoArgs":
        check_field_types(self)
        if not self.checkpointEvery > 0:
            raise EmbtkError(f"-checkpointEvery must be a positive number of seconds, got "
                             f"{self.checkpointEvery}")
        for name in ("charDim", "projDim", "lstmDim", "layers", "maxChars", "bptt",
                     "batchSize", "epoch", "minCount", "samples", "thread"):
            if getattr(self, name) <= 0:
                raise EmbtkError(f"-{name} must be a positive integer, got {getattr(self, name)}")
        if self.highway < 0:
            raise EmbtkError(f"-highway must be zero or positive, got {self.highway}")
        for name in ("cellClip", "projClip"):
            value = getattr(self, name)
            if not (value >= 0 and value != float("inf")):
                raise EmbtkError(f"-{name} must be zero (no clip) or positive, got {value}")
        if not (self.lr > 0 and self.lr != float("inf")):
            raise EmbtkError(f"-lr must be a positive number, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise EmbtkError(f"-dropout must be at least 0 and below 1, got {self.dropout}")
        if self.maxChars < 3:
            raise EmbtkError(f"-maxChars must be at least 3 (a marker at each end), got "
                             f"{self.maxChars}")
        for width, _ in self.filter_pairs():
            if width > self.maxChars:
                raise EmbtkError(f"-filters: a width of {width} is more than -maxChars "
                                 f"({self.maxChars})")
        return self


def training_rule_broken(args: Args) -> str | None:
    """What Args.validate says about `args` (None if they pass), with the options named
    as in a file ("maxn"), not as on the command line ("-maxn")."""
    try:
        args.validate()
    except EmbtkError as exc:
        return re.sub(r"(?<![\w-])-(?=[A-Za-z])", "", str(exc))
    return None
