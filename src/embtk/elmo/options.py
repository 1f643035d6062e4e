"""The options of an ELMo model: bilm-tf's `options.json`, read and checked.

A published model comes as `options.json` (the sizes) and `weights.hdf5` (the arrays).
The options this package reads are

    {"lstm": {"dim": 4096, "projection_dim": 512, "n_layers": 2, "cell_clip": 3,
              "proj_clip": 3, "use_skip_connections": true},
     "char_cnn": {"activation": "relu", "filters": [[1, 32], [2, 32], ..., [7, 1024]],
                  "n_highway": 2, "embedding": {"dim": 16}, "n_characters": 262,
                  "max_characters_per_token": 50}}

Other keys (training settings: "bidirectional", "n_tokens_vocab", "dropout", ...) are
kept and shown by `embtk dump MODEL args` but not used. Every size is bounded so that
what a file may make embtk allocate stays reasonable (the largest published model is
about 20 times smaller than the bounds).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import EmbtkError
from ..safeio import open_for_reading

# The character ids (before the +1 that frees 0 for "no token"): bytes are 0..255.
BOS_CHAR, EOS_CHAR, BOW_CHAR, EOW_CHAR, PAD_CHAR = 256, 257, 258, 259, 260
CHAR_ROWS = 262          # the embedding table once row 0 (absent token) is put in front
STORED_CHAR_ROWS = 261   # rows of `char_embed` in weights.hdf5
ACTIVATIONS = ("relu", "tanh")

# Bounds on what a file may ask for (the published large model: 4096, 512, 2048, 50).
MAX_DIM = 1 << 15            # LSTM cells, projection, filters per width, char embedding
MAX_FILTERS_TOTAL = 1 << 15
MAX_WIDTH = 64
MAX_CHARS = 1024
MAX_LAYERS = 8
MAX_HIGHWAY = 16
MAX_OPTIONS_BYTES = 1 << 20
MAX_SOFTMAX_ROWS = 1 << 26


@dataclass(frozen=True)
class ElmoOptions:
    """The sizes the forward pass needs, checked; `raw` is the whole options dict."""

    cell_dim: int
    projection_dim: int
    n_layers: int
    cell_clip: float | None
    proj_clip: float | None
    skip_connections: bool
    activation: str
    filters: tuple           # ((width, count), ...)
    n_highway: int
    char_dim: int
    max_chars: int
    raw: dict
    # what a model trained by embtk adds (the "training" section, see training_section):
    # the softmax's rows (0: none), the bytes of its vocabulary, and Adagrad's state
    softmax_rows: int = 0
    vocab_bytes: int = 0
    adagrad: bool = False

    @property
    def n_filters(self) -> int:
        return sum(n for _, n in self.filters)

    @property
    def output_dim(self) -> int:
        """Dimension of each of the 2L + 1 output layers: forward and backward."""
        return 2 * self.projection_dim

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True)

    def dump(self) -> list:
        """(name, value) pairs for `embtk dump MODEL args`, flattened as section.key."""
        out = []
        for section in sorted(self.raw):
            value = self.raw[section]
            if isinstance(value, dict):
                for key in sorted(value):
                    out.append((f"{section}.{key}", _shown(value[key])))
            else:
                out.append((section, _shown(value)))
        return out


def _shown(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else (
        "true" if value is True else "false" if value is False else str(value))


def parse_options(text, where: str) -> ElmoOptions:
    """Options from the text of an options.json (str or bytes); `where` names it in errors."""
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        raw = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EmbtkError(f"{where} is not a valid options.json: {_short(exc)}") from None
    return options_from_dict(raw, where)


def read_options(path) -> ElmoOptions:
    with open_for_reading(path, "options file") as f:
        data = f.read(MAX_OPTIONS_BYTES + 1)
    if len(data) > MAX_OPTIONS_BYTES:
        raise EmbtkError(f"{path} is larger than 1 MB: not an ELMo options.json")
    return parse_options(data, str(path))


def _short(exc) -> str:
    return " ".join(str(exc).split())[:200]


def options_from_dict(raw, where: str) -> ElmoOptions:
    if not isinstance(raw, dict):
        raise EmbtkError(f"{where}: the options must be a JSON object")
    lstm = _section(raw, "lstm", where)
    cnn = _section(raw, "char_cnn", where)
    embedding = _section(cnn, "embedding", where, "char_cnn.")

    cell_dim = _int(lstm, "dim", where, "lstm.", 1, MAX_DIM)
    projection = _int(lstm, "projection_dim", where, "lstm.", 1, MAX_DIM)
    n_layers = _int(lstm, "n_layers", where, "lstm.", 1, MAX_LAYERS)
    skip = lstm.get("use_skip_connections", False)
    if not isinstance(skip, bool):
        raise EmbtkError(f"{where}: lstm.use_skip_connections must be true or false, got {skip!r}")
    cell_clip = _clip(lstm, "cell_clip", where)
    proj_clip = _clip(lstm, "proj_clip", where)

    activation = cnn.get("activation")
    if activation is None:
        raise EmbtkError(f"{where}: char_cnn.activation is missing")
    if activation not in ACTIVATIONS:
        raise EmbtkError(f"{where}: char_cnn.activation {activation!r} is not supported "
                         f"(only {' and '.join(ACTIVATIONS)})")
    filters = cnn.get("filters")
    if filters is None:
        raise EmbtkError(f"{where}: char_cnn.filters is missing")
    if not isinstance(filters, list) or not filters or not all(
            isinstance(f, list) and len(f) == 2 and all(_is_int(v) for v in f) for f in filters):
        raise EmbtkError(f"{where}: char_cnn.filters must be a non-empty list of "
                         f"[width, count] pairs, got {_short(json.dumps(filters))}")
    max_chars = _int(cnn, "max_characters_per_token", where, "char_cnn.", 3, MAX_CHARS)
    for width, count in filters:
        if not 1 <= width <= min(MAX_WIDTH, max_chars):
            raise EmbtkError(f"{where}: a char_cnn filter width is {width}, expected 1 to "
                             f"{min(MAX_WIDTH, max_chars)} (max_characters_per_token {max_chars})")
        if not 1 <= count <= MAX_DIM:
            raise EmbtkError(f"{where}: a char_cnn filter count is {count}, expected 1 to {MAX_DIM}")
    n_filters = sum(n for _, n in filters)
    if n_filters > MAX_FILTERS_TOTAL:
        raise EmbtkError(f"{where}: the char_cnn filters add up to {n_filters}, more than "
                         f"{MAX_FILTERS_TOTAL}")
    n_highway = _int(cnn, "n_highway", where, "char_cnn.", 0, MAX_HIGHWAY)
    char_dim = _int(embedding, "dim", where, "char_cnn.embedding.", 1, MAX_DIM)
    n_chars = _int(cnn, "n_characters", where, "char_cnn.", 1, 1 << 20)
    if n_chars not in (STORED_CHAR_ROWS, CHAR_ROWS):
        raise EmbtkError(f"{where}: char_cnn.n_characters is {n_chars}, expected 261 or 262 "
                         "(UTF-8 bytes and 5 markers, and padding)")
    rows, vocab_bytes, adagrad = _training(raw, where)
    return ElmoOptions(cell_dim, projection, n_layers, cell_clip, proj_clip, skip, activation,
                       tuple((int(w), int(n)) for w, n in filters), n_highway, char_dim,
                       max_chars, raw, rows, vocab_bytes, adagrad)


def _training(raw, where) -> tuple:
    """The "training" section of a model trained by embtk: {"softmax_rows": V (the
    output vocabulary, <S> </S> <UNK> first), "vocab_bytes": its words' bytes, one
    newline after each, "adagrad": whether the optimizer's state follows}."""
    section = raw.get("training")
    if section is None:
        return 0, 0, False
    if not isinstance(section, dict):
        raise EmbtkError(f"{where}: training must be a JSON object")
    rows = _int(section, "softmax_rows", where, "training.", 3, MAX_SOFTMAX_ROWS)
    vocab_bytes = _int(section, "vocab_bytes", where, "training.", 2 * rows, 1 << 40)
    adagrad = section.get("adagrad", False)
    if not isinstance(adagrad, bool):
        raise EmbtkError(f"{where}: training.adagrad must be true or false")
    return rows, vocab_bytes, adagrad


def _section(raw, key, where, prefix=""):
    value = raw.get(key)
    if value is None:
        raise EmbtkError(f"{where}: the options have no {prefix}{key} section")
    if not isinstance(value, dict):
        raise EmbtkError(f"{where}: {prefix}{key} must be a JSON object")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(section, key, where, prefix, low, high) -> int:
    if key not in section:
        raise EmbtkError(f"{where}: {prefix}{key} is missing")
    value = section[key]
    if not _is_int(value):
        raise EmbtkError(f"{where}: {prefix}{key} must be an integer, got {_short(json.dumps(value))}")
    if not low <= value <= high:
        raise EmbtkError(f"{where}: {prefix}{key} is {value}, expected {low} to {high}")
    return value


def _clip(section, key, where) -> float | None:
    """A clip value: absent or null for none (bilm-tf's default)."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise EmbtkError(f"{where}: lstm.{key} must be a positive number, got "
                         f"{_short(json.dumps(value))}")
    return float(value)


def sized_options(*, char_dim: int, filters, n_highway: int, projection_dim: int, cell_dim: int,
                  n_layers: int, max_chars: int, cell_clip: float | None,
                  proj_clip: float | None, activation: str = "relu",
                  extra: dict | None = None) -> ElmoOptions:
    """Options of a new model, in options.json's terms (bilm-tf's names), checked as a
    read file's are; `extra` adds top-level keys (training settings)."""
    raw = {"lstm": {"dim": cell_dim, "projection_dim": projection_dim, "n_layers": n_layers,
                    "cell_clip": cell_clip, "proj_clip": proj_clip,
                    "use_skip_connections": True},
           "char_cnn": {"activation": activation, "filters": [list(f) for f in filters],
                        "n_highway": n_highway, "embedding": {"dim": char_dim},
                        "n_characters": CHAR_ROWS, "max_characters_per_token": max_chars},
           "bidirectional": True}
    raw.update(extra or {})
    return options_from_dict(raw, "the options")
