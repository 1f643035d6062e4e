"""Training options: fastText's names, defaults and validation rules in one place."""

from __future__ import annotations

import dataclasses
import numbers
import os
from dataclasses import dataclass, field

from .errors import EmbtkError

# Integer codes used in the .bin header (fastText's enums).
LOSS_CODES = {"hs": 1, "ns": 2, "softmax": 3, "ova": 4}
MODEL_CODES = {"cbow": 1, "skipgram": 2, "supervised": 3}
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


def check_field_types(options) -> None:
    """Each int field holds an int and each float field a number (made a float), or the
    option is reported by its command-line name."""
    for f in dataclasses.fields(options):
        value = getattr(options, f.name)
        if f.type == "int" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise EmbtkError(f"-{f.name} must be an integer, got {value!r}")
        if f.type == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise EmbtkError(f"-{f.name} must be a number, got {value!r}")
            setattr(options, f.name, float(value))


@dataclass
class Args:
    """Every option of the train commands. Field names are fastText's."""

    input: str = ""
    output: str = ""
    model: str = "skipgram"
    lr: float = 0.05
    lrUpdateRate: int = 100
    dim: int = 100
    ws: int = 5
    epoch: int = 5
    minCount: int = 5
    minCountLabel: int = 0
    neg: int = 5
    wordNgrams: int = 1
    loss: str = "ns"
    bucket: int = 2000000
    minn: int = 3
    maxn: int = 6
    thread: int = field(default_factory=default_thread_count)
    t: float = 1e-4
    label: str = "__label__"
    verbose: int = 2
    pretrainedVectors: str = ""
    saveOutput: bool = False
    seed: int = 0
    # quantization (`embtk quantize`; autotune uses them to meet -autotune-modelsize)
    cutoff: int = 0
    retrain: bool = False
    qnorm: bool = False
    qout: bool = False
    dsub: int = 2
    # autotune: a validation file turns it on
    autotuneValidationFile: str = ""
    autotuneMetric: str = "f1"
    autotunePredictions: int = 1
    autotuneDuration: int = 300
    autotuneModelSize: str = ""
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
                raise EmbtkError(f"unknown option '{key}'")
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

    def effective_bucket(self) -> int:
        """fastText allocates no hash buckets when nothing would land in them."""
        if self.wordNgrams <= 1 and self.maxn == 0:
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

    def validate(self) -> "Args":
        check_field_types(self)
        if self.model not in MODEL_CODES:
            raise EmbtkError(f"unknown model '{self.model}' (use cbow, skipgram or supervised)")
        if self.loss not in LOSS_CODES:
            raise EmbtkError(f"unknown loss '{self.loss}' (use hs, ns, softmax or one-vs-all)")
        positive = ("dim", "ws", "epoch", "neg", "wordNgrams", "thread", "lrUpdateRate")
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise EmbtkError(f"-{name} must be a positive integer, got {getattr(self, name)}")
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
        if self.autotuneDuration <= 0:
            raise EmbtkError(f"-autotune-duration must be a positive number of seconds, "
                             f"got {self.autotuneDuration}")
        return self


@dataclass
class GloveArgs:
    """Options of `embtk glove`: names in fastText's style, defaults the reference GloVe's."""

    input: str = ""
    output: str = ""
    dim: int = 50
    ws: int = 15
    minCount: int = 5
    epoch: int = 25
    xmax: float = 100.0
    alpha: float = 0.75
    lr: float = 0.05
    thread: int = field(default_factory=default_thread_count)
    memory: float = 4.0
    symmetric: bool = True
    seed: int = 0
    verbose: int = 2
    vectors: str = "w+w~"
    tmpdir: str = ""

    VECTORS = ("w+w~", "w")

    @classmethod
    def from_options(cls, **options) -> "GloveArgs":
        names = {f.name for f in dataclasses.fields(cls)}
        args = cls()
        for key, value in options.items():
            if key not in names:
                raise EmbtkError(f"unknown option '{key}'")
            if value is not None:
                setattr(args, key, value)
        return args

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
