"""Measuring vectors and classifiers: word similarity, analogies, per-label reports.

Results are plain dataclasses (`to_dict()` gives JSON-ready values) so that the CLI,
the Python API and the plots all read the same numbers. Correlations are computed here,
in float64, with SciPy's conventions: Spearman is the Pearson correlation of the ranks,
and tied values share their average rank.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numba as nb
import numpy as np

from .jitting import empty
from .errors import EmbtkError
from .fileformat import MAGIC, load_bin
from .safeio import open_for_reading
from .vecformat import read_vec
from .meter import ClassificationReport, json_ready, score_text
from .model import from_floret_table, from_model_file

# Analogy sections whose name starts with this are syntactic (Google's set: gram1-...).
_SYNTACTIC_PREFIX = "gram"
# 3CosMul's epsilon (Levy and Goldberg 2014), which keeps the division finite.
_COSMUL_EPSILON = 1e-3
# Bytes of similarities per batch of analogy questions (3 rows of `top` floats each).
_ANALOGY_MEMORY = 1 << 28
ANALOGY_METHODS = ("3cosadd", "3cosmul")


# ----------------------------------------------------------------------- correlations
def pearson(x, y) -> float:
    """Pearson's r of two equally long score lists (NaN when either is constant)."""
    x, y = _paired_scores(x, y)
    if np.all(x == x[0]) or np.all(y == y[0]):  # constant: the mean may not subtract to 0
        return float("nan")
    dx = x - x.mean()
    dy = y - y.mean()
    # Scaling first keeps the products away from overflow and underflow.
    nx, ny = np.linalg.norm(dx), np.linalg.norm(dy)
    if nx == 0 or ny == 0:
        return float("nan")
    r = float(np.dot(dx / nx, dy / ny))
    return max(-1.0, min(1.0, r))


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the average ranks (ties share their mean rank)."""
    x, y = _paired_scores(x, y)
    return pearson(average_ranks(x), average_ranks(y))


def average_ranks(values) -> np.ndarray:
    """1-based ranks of `values`; equal values get the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.empty(len(values), dtype=bool)
    starts_group[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], len(values))  # exclusive
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = ((starts + ends + 1) / 2.0)[group]
    return ranks


def _paired_scores(x, y):
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise EmbtkError(f"correlation needs two lists of equal length, got {x.size} and {y.size}")
    if x.size < 2:
        raise EmbtkError(f"correlation needs at least 2 pairs, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise EmbtkError("correlation needs finite scores (found NaN or infinity)")
    return x, y


# ----------------------------------------------------------------------------- vectors
def _bytes_word(word) -> bytes:
    return word if isinstance(word, bytes) else str(word).encode("utf-8", "surrogateescape")


def _lower(word: bytes) -> bytes:
    return word.decode("utf-8", "surrogateescape").lower().encode("utf-8", "surrogateescape")


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), float32. Values above ~1.8e19 are
    valid float32 but their squares are not: such lengths are measured in float64."""
    matrix = np.asarray(matrix, dtype=np.float32)
    with np.errstate(over="ignore"):
        lengths = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not np.isfinite(lengths).all():
        lengths = np.linalg.norm(matrix.astype(np.float64), axis=1, keepdims=True)
    return np.divide(matrix, lengths, out=np.zeros_like(matrix), where=lengths > 0)


class WordVectors:
    """A vocabulary (most frequent first) with unit-length vectors, from a `.vec`/GloVe
    text file, a `.bin` model or a loaded model. A model with character n-grams can
    also build vectors for words outside its vocabulary (`has_subwords`)."""

    def __init__(self, words: Sequence, vectors=None, model=None, source: str = ""):
        self.words = [_bytes_word(w) for w in words]
        self.model = model
        self.source = source
        self._vectors = vectors
        self._unit = None
        self._index = {}

    @classmethod
    def from_model(cls, model, source: str = "") -> "WordVectors":
        d = model.dictionary
        return cls(d.words[: d.nwords], model=model, source=source)

    @property
    def has_subwords(self) -> bool:
        return self.model is not None and (self.model.args.maxn > 0 or self.model.args.floret)

    @property
    def dim(self) -> int:
        return int(self.unit.shape[1])

    @property
    def unit(self) -> np.ndarray:
        """Unit vectors of the whole vocabulary, one row per word."""
        if self._unit is None:
            if self.model is not None:
                # Shared with the model's `nn`/`analogies` (computed once per model).
                self._unit = self.model.unit_word_vectors()
            else:
                self._unit = _unit_rows(self._vectors)
        return self._unit

    def index(self, lower: bool = False, top: int | None = None) -> dict:
        """word -> row; lower-cased words map to their most frequent spelling."""
        key = (lower, top)
        if key not in self._index:
            words = self.words if top is None else self.words[:top]
            table = {}
            for i, w in enumerate(words):
                table.setdefault(_lower(w) if lower else w, i)
            self._index[key] = table
        return self._index[key]

    def lookup(self, words: Sequence[bytes], lower: bool = False, top: int | None = None):
        """Rows of `words` (-1 when unknown) as an int64 array."""
        table = self.index(lower, top)
        return np.fromiter((table.get(_lower(w) if lower else w, -1) for w in words),
                           dtype=np.int64, count=len(words))

    def unit_with_subwords(self, words: Sequence[bytes], rows: np.ndarray,
                           lower: bool = False) -> np.ndarray:
        """Unit vectors of `words`: the vocabulary's row where `rows` has one, else built
        from the word's character n-grams (zero when it has none in the model)."""
        known = rows >= 0
        out = np.zeros((len(words), self.dim), dtype=np.float32)
        out[known] = self.unit[rows[known]]
        for i in np.flatnonzero(~known):
            out[i] = self.model.get_word_vector(_lower(words[i]) if lower else words[i])
        return _unit_rows(out)


def load_vectors(source, max_words: int | None = None) -> WordVectors:
    """WordVectors from a path (`.bin` model, or vectors as text with or without the
    'count dim' header), a loaded model, a (words, matrix) pair or WordVectors."""
    if isinstance(source, WordVectors):
        return source
    if hasattr(source, "dictionary") and hasattr(source, "input_matrix"):
        return WordVectors.from_model(source)
    if isinstance(source, tuple) and len(source) == 2:
        words, matrix = source
        matrix = np.asarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise EmbtkError(f"vectors need one row per word: {len(words)} words, "
                             f"matrix of shape {matrix.shape}")
        return WordVectors(words, matrix)
    path = os.fsdecode(source)
    if path.endswith(".floret"):
        return WordVectors.from_model(from_floret_table(path), source=path)
    if _is_model_file(path):
        return WordVectors.from_model(from_model_file(load_bin(path)), source=path)
    words, matrix = read_vec(path, max_words)
    if not words:
        raise EmbtkError(f"{path} has no word vectors")
    return WordVectors(words, matrix, source=path)


def _is_model_file(path: str) -> bool:
    with open_for_reading(path, "model or vectors file") as f:
        head = f.read(4)
    return len(head) == 4 and int.from_bytes(head, "little", signed=True) == MAGIC


# -------------------------------------------------------------------------- similarity
@dataclass
class SimilarityPairs:
    """A word-similarity data set: word pairs and their human scores."""

    path: str
    first: list
    second: list
    human: np.ndarray


def read_similarity_pairs(path) -> SimilarityPairs:
    """`word1 word2 score` per line (tab- or space-separated); `#` lines and blank lines
    are skipped. Anything else is an error naming the line."""
    path = os.fsdecode(path)
    first, second, human = [], [], []
    for lineno, line in _data_lines(path, "similarity data"):
        fields = line.split(b"\t") if b"\t" in line else line.split()
        fields = [x.strip() for x in fields]
        score = _score(fields[2]) if len(fields) >= 3 and fields[0] and fields[1] else None
        if score is None:
            raise EmbtkError(f"line {lineno} of {path} should be 'word1 word2 score', "
                             f"got {line[:60].decode('utf-8', 'replace')!r}")
        first.append(fields[0])
        second.append(fields[1])
        human.append(score)
    if not human:
        raise EmbtkError(f"{path} has no word pairs")
    return SimilarityPairs(path, first, second, np.array(human, dtype=np.float64))


def _data_lines(path: str, what: str):
    """(line number, stripped line) of a text data file, blank and `#` lines skipped."""
    try:
        with open_for_reading(path, what) as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if line and not line.startswith(b"#"):
                    yield lineno, line
    except OSError as exc:
        raise EmbtkError(f"cannot read {path}: {exc.strerror or exc}") from None


def _score(text: bytes):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) else None


@dataclass
class SimilarityResult:
    """One data set against one model.

    `pearson`/`spearman` are over the pairs with both words in the vocabulary (fastText's
    convention); the `subword_*` figures, only for models with character n-grams, are over
    all pairs, unknown words being built from their n-grams.
    """

    data: str
    pairs: int
    in_vocab: int
    pearson: float
    spearman: float
    lower: bool = False
    subword_pairs: int | None = None
    subword_pearson: float | None = None
    subword_spearman: float | None = None
    # Per pair, for plots: the human score, the model's cosine (NaN when not scored in
    # vocabulary) and the subword cosine (NaN without subwords).
    human: np.ndarray = field(default=None, repr=False)
    cosine: np.ndarray = field(default=None, repr=False)
    subword_cosine: np.ndarray = field(default=None, repr=False)

    @property
    def coverage(self) -> float:
        return self.in_vocab / self.pairs

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items()
               if k not in ("human", "cosine", "subword_cosine")}
        out["coverage"] = self.coverage
        return json_ready(out)

    def to_text(self) -> str:
        return similarity_table([self])


def similarity_table(results: Sequence[SimilarityResult]) -> str:
    """The `eval-similarity` table: one row per data set, the all-pairs figures beside
    when the vectors have subwords."""
    subwords = any(r.subword_pairs is not None for r in results)
    name_width = max(len("data"), *(len(os.path.basename(r.data)) for r in results))
    head = f"{'data':<{name_width}}  {'pairs':>6}  {'in vocab':>14}  {'Pearson':>8}  {'Spearman':>8}"
    if subwords:
        head += f"  | {'OOV via subwords: pairs':>23}  {'Pearson':>8}  {'Spearman':>8}"
    lines = [head]
    for r in results:
        row = (f"{os.path.basename(r.data):<{name_width}}  {r.pairs:>6}  "
               f"{f'{r.in_vocab} ({100 * r.coverage:.1f}%)':>14}  {score_text(r.pearson):>8}  "
               f"{score_text(r.spearman):>8}")
        if subwords:
            row += (f"  | {r.subword_pairs:>23}  {score_text(r.subword_pearson):>8}  "
                    f"{score_text(r.subword_spearman):>8}")
        lines.append(row)
    if subwords:
        lines.append("OOV via subwords: all pairs scored, words outside the vocabulary built "
                     "from their character n-grams")
    return "\n".join(lines) + "\n"


def evaluate_similarity(vectors, path, lower: bool = False, subwords: bool = True) -> SimilarityResult:
    """Score one similarity file: cosine of each pair against the human score."""
    vectors = load_vectors(vectors)
    data = read_similarity_pairs(path)
    n = len(data.human)
    rows_a = vectors.lookup(data.first, lower)
    rows_b = vectors.lookup(data.second, lower)
    known = (rows_a >= 0) & (rows_b >= 0)
    cosine = np.full(n, np.nan)
    unit = vectors.unit
    cosine[known] = np.einsum("ij,ij->i", unit[rows_a[known]], unit[rows_b[known]])
    in_vocab = int(known.sum())
    subwords = subwords and vectors.has_subwords
    if in_vocab < 2 and not subwords:
        raise EmbtkError(f"{data.path}: {in_vocab} of its {n} pairs have both words in "
                         f"the vocabulary of {vectors.source or 'the model'}; need at least 2"
                         + ("" if lower else " (try -lower)"))
    # With subwords, a data set outside the vocabulary still gets its all-pairs figures.
    r, rho = ((pearson(data.human[known], cosine[known]), spearman(data.human[known], cosine[known]))
              if in_vocab >= 2 else (float("nan"), float("nan")))
    result = SimilarityResult(data.path, n, in_vocab, r, rho, lower, human=data.human,
                              cosine=cosine, subword_cosine=np.full(n, np.nan))
    if subwords:
        ua = vectors.unit_with_subwords(data.first, rows_a, lower)
        ub = vectors.unit_with_subwords(data.second, rows_b, lower)
        # A word with no n-gram in the model has a zero vector: it cannot be scored.
        scored = (np.abs(ua).sum(1) > 0) & (np.abs(ub).sum(1) > 0)
        sub = np.einsum("ij,ij->i", ua, ub).astype(np.float64)
        result.subword_cosine[scored] = sub[scored]
        result.subword_pairs = int(scored.sum())
        if result.subword_pairs >= 2:
            result.subword_pearson = pearson(data.human[scored], sub[scored])
            result.subword_spearman = spearman(data.human[scored], sub[scored])
    return result


# --------------------------------------------------------------------------- analogies
@dataclass
class AnalogySection:
    name: str
    correct: int
    answered: int
    skipped: int

    @property
    def questions(self) -> int:
        return self.answered + self.skipped

    @property
    def accuracy(self) -> float:
        return self.correct / self.answered if self.answered else float("nan")

    @property
    def syntactic(self) -> bool:
        return self.name.startswith(_SYNTACTIC_PREFIX)

    def to_dict(self) -> dict:
        return json_ready(dict(asdict(self), questions=self.questions, accuracy=self.accuracy,
                                syntactic=self.syntactic))


@dataclass
class AnalogyResult:
    """Accuracy per section and in total; a question is skipped when one of its four
    words is not among the `top` most frequent words. Accuracy is over answered ones."""

    data: str
    method: str
    top: int
    lower: bool
    sections: list
    seconds: float

    def _total(self, name: str, sections) -> AnalogySection:
        sections = list(sections)
        return AnalogySection(name, sum(s.correct for s in sections),
                              sum(s.answered for s in sections), sum(s.skipped for s in sections))

    @property
    def semantic(self) -> AnalogySection:
        return self._total("semantic", (s for s in self.sections if not s.syntactic))

    @property
    def syntactic(self) -> AnalogySection:
        return self._total("syntactic", (s for s in self.sections if s.syntactic))

    @property
    def total(self) -> AnalogySection:
        return self._total("total", self.sections)

    def to_dict(self) -> dict:
        return json_ready({"data": self.data, "method": self.method, "top": self.top,
                            "lower": self.lower, "seconds": self.seconds,
                            "sections": [s.to_dict() for s in self.sections],
                            "semantic": self.semantic.to_dict(),
                            "syntactic": self.syntactic.to_dict(),
                            "total": self.total.to_dict()})

    def to_text(self, elapsed: float | None = None) -> str:
        """Accuracy per section, then semantic / syntactic / total; `elapsed`, the time
        of the whole run, is added to the closing line when given."""
        width = max(len("section"), *(len(s.name) for s in self.sections))
        lines = [f"{'section':<{width}}  {'questions':>9}  {'answered':>8}  {'correct':>7}  "
                 f"{'accuracy':>8}"]

        def row(s):
            accuracy = f"{100 * s.accuracy:.2f}%" if s.answered else "-"
            return (f"{s.name:<{width}}  {s.questions:>9}  {s.answered:>8}  {s.correct:>7}  "
                    f"{accuracy:>8}")

        lines += [row(s) for s in self.sections]
        lines.append("")
        lines += [row(s) for s in (self.semantic, self.syntactic, self.total)]
        lines.append(f"{self.method}, top {self.top} words{', lower-cased' if self.lower else ''}: "
                     f"{self.total.skipped} of {self.total.questions} questions skipped "
                     f"(a word outside the top words); answered in {self.seconds:.2f} s"
                     + (f", {elapsed:.2f} s in all" if elapsed is not None else ""))
        return "\n".join(lines) + "\n"


def read_analogy_questions(path):
    """The questions-words layout: `: section` lines, then `a b c d` per question.
    Returns (section names, section index per question, list of 4-word tuples)."""
    path = os.fsdecode(path)
    names, section_of, questions = [], [], []
    for lineno, line in _data_lines(path, "analogy questions"):
        fields = line.split()
        if fields[0] == b":" or (fields[0].startswith(b":") and len(fields) == 1):
            names.append(b" ".join(fields).lstrip(b": ").decode("utf-8", "replace") or "?")
            continue
        if len(fields) != 4:
            raise EmbtkError(f"line {lineno} of {path} should be ': section' or four words "
                             f"'a b c d', got {line[:60].decode('utf-8', 'replace')!r}")
        if not names:
            names.append("(no section)")
        section_of.append(len(names) - 1)
        questions.append(tuple(fields))
    if not questions:
        raise EmbtkError(f"{path} has no analogy questions")
    return names, np.array(section_of, dtype=np.int64), questions


def evaluate_analogies(vectors, path, top: int = 30000, method: str = "3cosadd",
                       lower: bool = False) -> AnalogyResult:
    """Answer `a : b :: c : ?` with the word closest to b - a + c (3CosAdd) or with
    3CosMul, among the `top` most frequent words, a, b and c excluded."""
    method = method.lower()
    if method not in ANALOGY_METHODS:
        raise EmbtkError(f"unknown analogy method {method!r} (use {' or '.join(ANALOGY_METHODS)})")
    if top < 1:
        raise EmbtkError(f"top must be a positive number of words, got {top}")
    vectors = load_vectors(vectors, max_words=top)
    names, section_of, questions = read_analogy_questions(path)
    start = time.perf_counter()
    words = [w for q in questions for w in q]
    rows = vectors.lookup(words, lower, top).reshape(-1, 4)
    candidates = np.arange(min(top, len(vectors.words)))
    if lower:
        # One candidate per lower-cased word: its most frequent spelling.
        candidates = np.array(sorted(vectors.index(lower, top).values()), dtype=np.int64)
        rows = np.where(rows >= 0, np.searchsorted(candidates, rows), -1)
    unit = np.ascontiguousarray(vectors.unit[candidates])
    answerable = (rows >= 0).all(axis=1)
    correct = np.zeros(len(questions), dtype=bool)
    asked = rows[answerable]
    correct[np.flatnonzero(answerable)] = _answer(unit, asked, method) == asked[:, 3]
    nsec = len(names)
    sections = [AnalogySection(names[i], int(c), int(a), int(s)) for i, (c, a, s) in enumerate(zip(
        np.bincount(section_of, weights=correct, minlength=nsec),
        np.bincount(section_of, weights=answerable, minlength=nsec),
        np.bincount(section_of, weights=~answerable, minlength=nsec)))]
    return AnalogyResult(os.fsdecode(path), method, top, lower, sections,
                         time.perf_counter() - start)


def _answer(unit: np.ndarray, rows: np.ndarray, method: str) -> np.ndarray:
    """Row of the best answer to each question (a, b, c, _).

    Question words repeat a lot (the Google set has under a thousand distinct ones), so
    each batch takes the similarities of its distinct words to every candidate in one
    matrix product (BLAS) and scores questions from those rows in one fused pass.
    """
    answers = np.empty(len(rows), dtype=np.int64)
    batch = max(1, _ANALOGY_MEMORY // (3 * 4 * unit.shape[0]))
    for lo in range(0, len(rows), batch):
        q = np.ascontiguousarray(rows[lo:lo + batch, :3])
        words, local = np.unique(q.ravel(), return_inverse=True)
        sims = unit[words] @ unit.T
        answers[lo:lo + len(q)] = _best_answers(sims, local.reshape(q.shape), q,
                                                method == "3cosmul", np.float32(_COSMUL_EPSILON))
    return answers


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _best_answers(sims, local, excluded, cosmul, epsilon):
    """For each question, the arg-max over candidates of sim(x,b) - sim(x,a) + sim(x,c)
    (3CosAdd) or of s(x,b) s(x,c) / (s(x,a) + epsilon), s = (sim + 1) / 2 (3CosMul),
    the question's own words excluded. `local` indexes the rows of `sims`."""
    out = empty(len(local), np.int64)
    scores = empty(sims.shape[1], np.float32)
    half = np.float32(0.5)
    for i in range(len(local)):
        sa, sb, sc = sims[local[i, 0]], sims[local[i, 1]], sims[local[i, 2]]
        if cosmul:
            for j in range(len(scores)):
                scores[j] = (sb[j] + 1) * half * ((sc[j] + 1) * half) / ((sa[j] + 1) * half + epsilon)
        else:
            for j in range(len(scores)):
                scores[j] = sb[j] - sa[j] + sc[j]
        for k in range(3):
            scores[excluded[i, k]] = -np.inf
        out[i] = np.argmax(scores)
    return out


def classification_report(model, path, k: int = 1, threshold: float = 0.0,
                          confusion: bool = False) -> ClassificationReport:
    """Per-label precision, recall and F1 of a classifier on a labelled file, with micro
    and macro averages (see meter.ClassificationReport)."""
    return model.evaluate(path, k, threshold, confusion=confusion).report(path, k, threshold)
