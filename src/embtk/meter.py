"""Scoring a classifier's predictions against gold labels (fastText's Meter), in one place.

A test line counts as an example when it has at least one known label and at least one
input row: fastText's rule, here in `_is_example` and nowhere else. The Meter adds up,
chunk by chunk, per-label gold / predicted / correct counts (precision, recall and F1
at k follow from them), optionally the confusion matrix and, for autotune, every
prediction's score (the precision-recall curve).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numba as nb
import numpy as np

from .jitting import empty
from .dictionary import EncodedLines
from .errors import EmbtkError


class Predictions(NamedTuple):
    """Top-k predictions of a chunk of encoded lines: counts[i] of them for line i, best
    first in probs[i] and ids[i] (label ids)."""

    counts: np.ndarray
    probs: np.ndarray
    ids: np.ndarray
    lines: EncodedLines


# ------------------------------------------------------------------------ kernels
@nb.njit(cache=True, nogil=True, inline="always")
def _is_example(i, feat_offsets, label_offsets):
    return label_offsets[i] < label_offsets[i + 1] and feat_offsets[i] < feat_offsets[i + 1]


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _example_lines(feat_offsets, label_offsets, nlines):
    out = empty(nlines, np.bool_)
    for i in range(nlines):
        out[i] = _is_example(i, feat_offsets, label_offsets)
    return out


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _count(counts, ids, feat_offsets, label_offsets, labels, gold, predicted, correct):
    """Add each example's gold, predicted and correct labels; returns the examples seen.
    A line with no prediction left by the threshold is still an example."""
    examples = 0
    for i in range(len(counts)):
        if not _is_example(i, feat_offsets, label_offsets):
            continue
        examples += 1
        a, b = label_offsets[i], label_offsets[i + 1]
        for j in range(a, b):
            gold[labels[j]] += 1
        for j in range(counts[i]):
            p = ids[i, j]
            predicted[p] += 1
            for g in range(a, b):
                if labels[g] == p:
                    correct[p] += 1
                    break
    return examples


@nb.njit(cache=True, nogil=True, no_cfunc_wrapper=True)
def _count_confusion(matrix, counts, ids, feat_offsets, label_offsets, labels):
    """Add each example's (gold label, top prediction) to `matrix`, whose last column
    stands for 'no prediction'."""
    none = matrix.shape[1] - 1
    for i in range(len(counts)):
        if not _is_example(i, feat_offsets, label_offsets):
            continue
        top = ids[i, 0] if counts[i] > 0 else none
        for j in range(label_offsets[i], label_offsets[i + 1]):
            matrix[labels[j], top] += 1


def _ratio(a, b) -> float:
    return float(a) / float(b) if b else float("nan")


# -------------------------------------------------------------------------- meter
class Meter:
    """Per-label counts at k of one test run; `add` each chunk of predictions.

    `confusion`: also count (gold label, top prediction) pairs. `log`: also keep each
    prediction's score and whether it was right, for the precision-recall curve.
    """

    def __init__(self, labels: list, confusion: bool = False, log: bool = False):
        n = len(labels)
        self.labels = labels
        self.examples = 0
        self.gold = np.zeros(n, dtype=np.int64)
        self.predicted = np.zeros(n, dtype=np.int64)
        self.correct = np.zeros(n, dtype=np.int64)
        self.confusion = np.zeros((n, n + 1), dtype=np.int64) if confusion else None
        self._log = [] if log else None

    def add(self, chunk: Predictions) -> "Meter":
        lines = chunk.lines
        self.examples += _count(chunk.counts, chunk.ids, lines.feat_offsets, lines.label_offsets,
                                lines.labels, self.gold, self.predicted, self.correct)
        if self.confusion is not None:
            _count_confusion(self.confusion, chunk.counts, chunk.ids, lines.feat_offsets,
                             lines.label_offsets, lines.labels)
        if self._log is not None:
            self._log.append(_logged(chunk))
        return self

    # micro averages ---------------------------------------------------------------
    @property
    def precision(self) -> float:
        return _ratio(self.correct.sum(), self.predicted.sum())

    @property
    def recall(self) -> float:
        return _ratio(self.correct.sum(), self.gold.sum())

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (NaN when undefined)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else float("nan")

    # per label ------------------------------------------------------------------
    def label_scores(self, i: int) -> tuple:
        """(precision, recall, F1) of label i; F1 is 2·correct / (predicted + gold)."""
        c, p, g = self.correct[i], self.predicted[i], self.gold[i]
        return _ratio(c, p), _ratio(c, g), _ratio(2 * c, p + g)

    def per_label(self) -> dict:
        """fastText's test_label: {label: {precision, recall, f1score}}."""
        out = {}
        for i, label in enumerate(self.labels):
            precision, recall, f1 = self.label_scores(i)
            out[label] = {"precision": precision, "recall": recall, "f1score": f1}
        return out

    # the precision-recall curve (needs log=True) ------------------------------------
    def curve(self, label: int = -1):
        """fastText's precision-recall curve over all labels or one: walk predictions from
        the highest score down (ties as one step), stop at full recall, then add the point
        (precision 1, recall 0)."""
        if self._log is None:
            raise ValueError("this Meter was made without log=True")
        pred_ids, scores, hit, gold_labels = (np.concatenate(c) for c in zip(*self._log)) \
            if self._log else (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64),
                               np.zeros(0, np.int64))
        if label >= 0:
            chosen = pred_ids == label
            scores, hit = scores[chosen], hit[chosen]
            total_gold = int(np.count_nonzero(gold_labels == label))
        else:
            total_gold = len(gold_labels)
        return _curve_points(scores, hit, total_gold)

    def precision_at_recall(self, recall: float, label: int = -1) -> float:
        precision, reached = self.curve(label)
        ok = reached >= recall
        return float(precision[ok].max()) if ok.any() else 0.0

    def recall_at_precision(self, precision: float, label: int = -1) -> float:
        reached, recall = self.curve(label)
        ok = reached >= precision
        return float(recall[ok].max()) if ok.any() else 0.0

    def report(self, data: str, k: int, threshold: float) -> "ClassificationReport":
        return ClassificationReport.from_meter(self, data, k, threshold)


def _logged(chunk: Predictions):
    """Each prediction of the chunk's examples: label, score (p capped at 1), whether it is
    gold; and every gold label of the examples."""
    counts, probs, ids, lines = chunk
    n = len(counts)
    examples = _example_lines(lines.feat_offsets, lines.label_offsets, n)
    mask = (np.arange(ids.shape[1])[None, :] < counts[:, None]) & examples[:, None]
    pred_ids = ids[mask].astype(np.int64)
    scores = np.minimum(probs[mask].astype(np.float64), 1.0)
    rows = np.nonzero(mask)[0]
    lab_off, labels = lines.label_offsets, lines.labels
    gold_sets = [set(labels[lab_off[i]:lab_off[i + 1]].tolist()) for i in range(n)]
    hit = np.array([p in gold_sets[r] for r, p in zip(rows.tolist(), pred_ids.tolist())],
                   dtype=np.int64)
    gold = [labels[lab_off[i]:lab_off[i + 1]] for i in np.nonzero(examples)[0]]
    gold_labels = np.concatenate(gold).astype(np.int64) if gold else np.zeros(0, np.int64)
    return pred_ids, scores, hit, gold_labels


def _curve_points(scores: np.ndarray, hit: np.ndarray, total_gold: int):
    """(precision, recall) at each distinct score; recall is over `total_gold`, which
    counts the gold labels never predicted too."""
    order = np.argsort(-scores, kind="stable")
    scores, hit = scores[order], hit[order]
    if not len(scores):
        return np.zeros(0), np.zeros(0)
    tp = np.cumsum(hit)
    fp = np.cumsum(1 - hit)
    last_of_tie = np.append(scores[1:] != scores[:-1], True)
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    full = np.searchsorted(tp, total_gold, side="left")
    tp, fp = tp[: full + 1], fp[: full + 1]
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = tp / total_gold if total_gold else np.full(len(tp), np.nan)
    return np.append(precision, 1.0), np.append(recall, 0.0)


# ------------------------------------------------------------------------- report
def json_ready(value):
    """Floats as JSON accepts them: NaN and infinities become None; numpy scalars plain."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def score_text(value, spec: str = ".4f") -> str:
    """A score for a text table: 'nan' when undefined."""
    return "nan" if value is None or value != value else format(value, spec)


def general_metrics_text(examples: int, precision: float, recall: float, k: int,
                         fixed: bool = False) -> str:
    """fastText's `test` lines: N, P@k, R@k with 3 significant digits (3 decimals after
    test-label, which switched its stream to fixed notation)."""
    spec = ".3f" if fixed else ".3g"
    return f"N\t{examples}\nP@{k}\t{precision:{spec}}\nR@{k}\t{recall:{spec}}\n"


REPORT_ORDERS = ("support", "f1", "precision", "recall", "label")


@dataclass
class LabelScore:
    """One label's counts at k and the scores derived from them (NaN when undefined)."""

    label: str
    support: int      # test lines carrying the label
    predicted: int    # times it was among the predictions
    correct: int
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return json_ready(asdict(self))


@dataclass
class ClassificationReport:
    """test-label's numbers, with micro averages (fastText's P@k and R@k) and macro
    averages (the mean over labels present in the test data or predicted; an undefined
    precision counts as 0). `confusion[g, p]` counts lines of gold label g whose top
    prediction is p; its last column counts lines left with no prediction."""

    data: str
    k: int
    threshold: float
    examples: int
    labels: list
    micro: LabelScore
    macro: LabelScore
    confusion: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_meter(cls, meter: Meter, data, k: int, threshold: float) -> "ClassificationReport":
        labels = [LabelScore(name, int(meter.gold[i]), int(meter.predicted[i]),
                             int(meter.correct[i]), *meter.label_scores(i))
                  for i, name in enumerate(meter.labels)]
        micro = LabelScore("micro avg", int(meter.gold.sum()), int(meter.predicted.sum()),
                           int(meter.correct.sum()), meter.precision, meter.recall,
                           _ratio(2 * meter.correct.sum(), meter.predicted.sum() + meter.gold.sum()))
        present = [s for s in labels if s.support or s.predicted]

        def mean(values):
            values = [0.0 if v != v else v for v in values]
            return float(np.mean(values)) if values else float("nan")

        macro = LabelScore("macro avg", micro.support, micro.predicted, micro.correct,
                           mean(s.precision for s in present), mean(s.recall for s in present),
                           mean(s.f1 for s in present))
        name = "-" if hasattr(data, "read") or str(data) == "-" else os.fsdecode(data)
        return cls(name, int(k), float(threshold), int(meter.examples), labels, micro, macro,
                   meter.confusion)

    def sorted_labels(self, order: str = "support") -> list:
        """Labels with test lines or predictions, best or most frequent first; ties in the
        model's order, which the confusion matrix and fastText's lines follow."""
        if order not in REPORT_ORDERS:
            raise EmbtkError(f"unknown order {order!r} (use one of {', '.join(REPORT_ORDERS)})")
        present = [s for s in self.labels if s.support or s.predicted]
        if order == "label":
            return sorted(present, key=lambda s: s.label)
        value = {"support": lambda s: s.support, "f1": lambda s: s.f1,
                 "precision": lambda s: s.precision, "recall": lambda s: s.recall}[order]

        def key(s):
            v = value(s)
            return (-(v if v == v else -1.0), -s.support)  # NaN last

        return sorted(present, key=key)  # a stable sort: ties stay in the model's order

    def to_dict(self, order: str = "support") -> dict:
        out = {"data": self.data, "k": self.k, "threshold": self.threshold,
               "examples": self.examples,
               "labels": [s.to_dict() for s in self.sorted_labels(order)],
               "micro": self.micro.to_dict(), "macro": self.macro.to_dict()}
        if self.confusion is not None:
            out["confusion"] = {"gold": [s.label for s in self.labels],
                                "predicted": [s.label for s in self.labels] + [None],
                                "counts": self.confusion.tolist()}
        return json_ready(out)

    def to_text(self, order: str = "support") -> str:
        """The sorted per-label table with micro and macro averages (`test-label -report`)."""
        scores = self.sorted_labels(order)
        width = max(len(s.label) for s in scores + [self.micro])

        def row(s):
            return (f"{s.label:<{width}}  {s.support:>7}  {s.predicted:>9}  {s.correct:>7}  "
                    f"{score_text(s.precision):>9}  {score_text(s.recall):>7}  {score_text(s.f1):>7}")

        lines = [f"{'label':<{width}}  {'support':>7}  {'predicted':>9}  {'correct':>7}  "
                 f"{'precision':>9}  {'recall':>7}  {'F1':>7}"]
        lines += [row(s) for s in scores] + ["", row(self.micro), row(self.macro)]
        lines.append(f"N {self.examples} lines, k={self.k}, threshold {self.threshold:g}; "
                     "macro: mean over labels in the data or predicted (undefined = 0)")
        return "\n".join(lines) + "\n"

    def fasttext_text(self) -> str:
        """fastText's own `test-label` output: a line per label, then N, P@k and R@k."""
        def metric(name, value):
            shown = f"{value:.6f}" if value == value and abs(value) != float("inf") else "--------"
            return f"{name} : {shown}  "

        lines = [metric("F1-Score", s.f1) + metric("Precision", s.precision)
                 + metric("Recall", s.recall) + " " + s.label for s in self.labels]
        m = self.micro
        return "".join(line + "\n" for line in lines) + general_metrics_text(
            self.examples, m.precision, m.recall, self.k, fixed=True)

    def confusion_text(self) -> str:
        """The confusion matrix as TSV, gold labels down, top predictions across."""
        names = [s.label for s in self.labels]
        lines = ["confusion (rows: gold label, columns: top prediction)",
                 "gold\\predicted\t" + "\t".join(names + ["(none)"])]
        lines += [name + "\t" + "\t".join(map(str, counts))
                  for name, counts in zip(names, self.confusion.tolist())]
        return "\n".join(lines) + "\n"
