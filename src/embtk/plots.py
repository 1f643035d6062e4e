"""Pictures of evaluation results (PNG), drawn with matplotlib, an optional extra.

matplotlib is imported only here and only when a plot is asked for; without it the
user gets one line saying how to install it (`pip install 'embtk[plot]'`).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .errors import EmbtkError
from .safeio import atomic_write

MISSING_MATPLOTLIB = ("plotting needs matplotlib, which is not installed: "
                      "pip install 'embtk[plot]' (or pip install matplotlib)")


def require_matplotlib():
    """The pyplot module on a file-only backend, or the one-line install message."""
    try:
        import matplotlib
    except ImportError:
        raise EmbtkError(MISSING_MATPLOTLIB) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path: str) -> None:
    """Fail before the (possibly long) evaluation, not after it."""
    require_matplotlib()
    if os.path.isdir(path):
        raise EmbtkError(f"cannot write the plot {path}: it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise EmbtkError(f"cannot write the plot {path}: no directory {folder}")


def _save(fig, path: str) -> None:
    plt = require_matplotlib()
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)


def _grid(plt, n: int, width: float, height: float):
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def similarity_plot(results, path: str, model_name: str = "") -> None:
    """One scatter per data set: model cosine against human score, both correlations
    in the title; pairs scored only through subwords are drawn hollow."""
    plt = require_matplotlib()
    fig, axes = _grid(plt, len(results), 4.6, 4.0)
    for ax, r in zip(axes, results):
        known = np.isfinite(r.cosine)
        only_sub = ~known & np.isfinite(r.subword_cosine)
        ax.scatter(r.human[known], r.cosine[known], s=10, alpha=0.7, label="in vocabulary")
        if only_sub.any():
            ax.scatter(r.human[only_sub], r.subword_cosine[only_sub], s=12, facecolors="none",
                       edgecolors="tab:orange", label="OOV via subwords")
            ax.legend(fontsize=7, loc="lower right")
        title = (f"{os.path.basename(r.data)}: {r.in_vocab}/{r.pairs} pairs\n"
                 f"Pearson {r.pearson:.3f}  Spearman {r.spearman:.3f}")
        if r.subword_spearman is not None:
            title += (f"\nall via subwords: Pearson {r.subword_pearson:.3f}  "
                      f"Spearman {r.subword_spearman:.3f}")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("human score")
        ax.set_ylabel("cosine similarity")
    if model_name:
        fig.suptitle(os.path.basename(model_name), fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def _bars(plt, names, series, ylabel: str, title: str):
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(names) + 2), 4.5))
    x = np.arange(len(names))
    for i, (label, values) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def label_plot(report, path: str, order: str = "support") -> None:
    """Per-label precision and recall bars, in the order of the printed table."""
    plt = require_matplotlib()
    scores = report.sorted_labels(order)
    title = (f"{os.path.basename(report.data)} at k={report.k}: micro P {report.micro.precision:.3f} "
             f"R {report.micro.recall:.3f}, macro F1 {report.macro.f1:.3f}")
    fig = _bars(plt, [s.label for s in scores],
                [("precision", [s.precision for s in scores]),
                 ("recall", [s.recall for s in scores])], "score", title)
    _save(fig, path)


def analogy_plot(result, path: str) -> None:
    """Accuracy per section (answered questions), with the totals last."""
    plt = require_matplotlib()
    sections = list(result.sections) + [result.semantic, result.syntactic, result.total]
    title = f"{os.path.basename(result.data)}: {result.method}, top {result.top} words"
    fig = _bars(plt, [s.name for s in sections], [("accuracy", [s.accuracy for s in sections])],
                "accuracy", title)
    _save(fig, path)
