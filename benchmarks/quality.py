#!/usr/bin/env python
"""Quality and speed of embtk next to the official fastText, same settings, one run.

1. skipgram on corpus/en_small.txt, Spearman on every similarity/*.tsv set
2. supervised on classify/<dataset>, P@1 from model.test()
3. wall time of every train call

    python benchmarks/quality.py                 # full run (several minutes on 2 cores)
    python benchmarks/quality.py --quick         # one seed, twitter only
    python benchmarks/quality.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SKIPGRAM = dict(dim=100, epoch=5, minn=3, maxn=6, lr=0.05, ws=5, neg=5, minCount=5)
SUPERVISED = dict(epoch=10, lr=0.5, wordNgrams=2, dim=50)
DATASETS = ("langid_gettext", "twitter_sentiment_crowdflower")
SPEARMAN_TOL = 0.02  # absolute, on the mean Spearman over sets
P1_TOL = 1.0         # points of P@1


# ---------------------------------------------------------------- scoring

def similarity_scores(model, sets: dict) -> dict:
    """{set: (spearman, pairs used)}; pairs with an out-of-vocabulary word are skipped.

    Scored by embtk.evaluation (SciPy's tie convention, checked against SciPy in the tests),
    on the vectors either tool's model gives. Words are looked up as written (the corpus is
    mixed case, so no lowercasing).
    """
    from embtk.errors import EmbtkError
    from embtk.evaluation import evaluate_similarity, read_similarity_pairs

    vocab = set(model.words)
    out = {}
    for name, path in sets.items():
        pairs = read_similarity_pairs(path)
        needed = sorted({w.decode("utf-8") for w in pairs.first + pairs.second} & vocab)
        matrix = np.array([model.get_word_vector(w) for w in needed], dtype=np.float32)
        try:
            result = evaluate_similarity((needed, matrix.reshape(len(needed), -1)), path)
            out[name] = (result.spearman, result.in_vocab)
        except EmbtkError:  # fewer than 2 pairs in the vocabulary
            out[name] = (float("nan"), 0)
    return out


# ---------------------------------------------------------------- measurements

def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def warm_up_embtk(embtk, data: Path, thread: int) -> float:
    """Train embtk once on a tiny file so numba's compile/cache load is not timed below."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.txt"
        with open(data / "corpus" / "en_small.txt", encoding="utf-8") as f:
            small.write_text("".join(f.readline() for _ in range(300)), encoding="utf-8")
        embtk.train_unsupervised(str(small), model="skipgram", epoch=1, minCount=1,
                                 thread=thread, verbose=0)
        labelled = Path(tmp) / "labelled.txt"
        labelled.write_text("__label__a x y z\n__label__b u v w\n" * 50, encoding="utf-8")
        embtk.train_supervised(str(labelled), epoch=1, wordNgrams=2, thread=thread, verbose=0)
    return time.perf_counter() - start


def measure_skipgram(tools: dict, data: Path, seeds: int, thread: int) -> dict:
    corpus = str(data / "corpus" / "en_small.txt")
    sets = {p.stem: p for p in sorted((data / "similarity").glob("*.tsv"))}
    results = {}
    for name, (module, takes_seed) in tools.items():
        runs = []
        for seed in range(seeds):
            extra = {"seed": seed} if takes_seed else {}
            print(f"  skipgram  {name:8s} seed {seed} ...", end="", flush=True, file=sys.stderr)
            model, seconds = timed(module.train_unsupervised, corpus, model="skipgram",
                                   thread=thread, verbose=0, **SKIPGRAM, **extra)
            scores = similarity_scores(model, sets)
            mean = float(np.mean([rho for rho, _ in scores.values()]))
            weighted = float(np.average([r for r, _ in scores.values()],
                                        weights=[n for _, n in scores.values()]))
            print(f" {seconds:6.1f}s  mean Spearman {mean:.4f}", file=sys.stderr)
            runs.append({"seed": seed, "seconds": seconds, "mean_spearman": mean,
                         "pair_weighted_spearman": weighted,
                         "sets": {k: {"spearman": r, "pairs": n} for k, (r, n) in scores.items()}})
            del model
        results[name] = {
            "runs": runs,
            "mean_spearman": float(np.mean([r["mean_spearman"] for r in runs])),
            "pair_weighted_spearman": float(np.mean([r["pair_weighted_spearman"] for r in runs])),
            "seconds": float(np.mean([r["seconds"] for r in runs])),
            "sets": {k: {"spearman": float(np.mean([r["sets"][k]["spearman"] for r in runs])),
                         "pairs": sorted({r["sets"][k]["pairs"] for r in runs})}
                     for k in sets},
        }
    return results


def measure_supervised(tools: dict, data: Path, dataset: str, thread: int) -> dict:
    train = str(data / "classify" / dataset / "train.txt")
    test = str(data / "classify" / dataset / "test.txt")
    results = {}
    for name, (module, _) in tools.items():
        print(f"  supervised {name:8s} {dataset} ...", end="", flush=True, file=sys.stderr)
        model, seconds = timed(module.train_supervised, train, thread=thread, verbose=0,
                               **SUPERVISED)
        n, p1, _ = model.test(test)
        print(f" {seconds:6.1f}s  P@1 {p1:.4f}", file=sys.stderr)
        results[name] = {"p_at_1": float(p1), "n": int(n), "seconds": seconds}
        del model
    return results


# ---------------------------------------------------------------- report

def verdict(diff: float, tol: float) -> str:
    return "PASS" if abs(diff) <= tol else f"FAIL (off by {abs(diff) - tol:.3g})"


def build_rows(report: dict) -> list:
    rows = []
    sg = report.get("skipgram")
    if sg:
        ft, em = sg["fasttext"], sg["embtk"]
        for k in ft["sets"]:
            f, e = ft["sets"][k], em["sets"][k]
            pairs = "/".join(map(str, f["pairs"])) + " vs " + "/".join(map(str, e["pairs"]))
            rows.append([f"skipgram {k}", f"Spearman (pairs {pairs})", f"{f['spearman']:.4f}",
                         f"{e['spearman']:.4f}", f"{e['spearman'] - f['spearman']:+.4f}", "", ""])
        per_seed = lambda t: " (" + ", ".join(f"{r['mean_spearman']:.4f}" for r in t["runs"]) + ")"
        d = em["mean_spearman"] - ft["mean_spearman"]
        rows.append([f"**skipgram mean of {len(ft['sets'])} sets**",
                     f"mean Spearman, mean of {len(ft['runs'])} seed(s)",
                     f"**{ft['mean_spearman']:.4f}**" + per_seed(ft),
                     f"**{em['mean_spearman']:.4f}**" + per_seed(em),
                     f"**{d:+.4f}**", f"±{SPEARMAN_TOL}", verdict(d, SPEARMAN_TOL)])
        d = em["pair_weighted_spearman"] - ft["pair_weighted_spearman"]
        rows.append(["skipgram (info)", "pair-weighted mean Spearman",
                     f"{ft['pair_weighted_spearman']:.4f}", f"{em['pair_weighted_spearman']:.4f}",
                     f"{d:+.4f}", "", ""])
        rows.append(["skipgram en_small.txt", "train s (mean per run)", f"{ft['seconds']:.1f}",
                     f"{em['seconds']:.1f}", f"×{em['seconds'] / ft['seconds']:.2f}", "", ""])
    for dataset, res in report.get("supervised", {}).items():
        ft, em = res["fasttext"], res["embtk"]
        d = 100 * (em["p_at_1"] - ft["p_at_1"])
        rows.append([f"**supervised {dataset}**", f"P@1 (N={ft['n']})",
                     f"**{ft['p_at_1']:.4f}**", f"**{em['p_at_1']:.4f}**", f"**{d:+.2f} pt**",
                     f"±{P1_TOL:g} pt", verdict(d, P1_TOL)])
        rows.append([f"supervised {dataset}", "train s", f"{ft['seconds']:.1f}",
                     f"{em['seconds']:.1f}", f"×{em['seconds'] / ft['seconds']:.2f}", "", ""])
    return rows


def print_table(header: list, rows: list) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


# ---------------------------------------------------------------- main

def _dist_version(*names) -> str:
    from importlib.metadata import PackageNotFoundError, version
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            pass
    return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data dir")
    ap.add_argument("--seeds", type=int, default=2, help="skipgram runs per tool (default 2)")
    ap.add_argument("--thread", type=int, default=2, help="training threads (default 2)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS),
                    help=f"classify/ folders for supervised (default: {' '.join(DATASETS)})")
    ap.add_argument("--no-skipgram", action="store_true", help="skip the skipgram part")
    ap.add_argument("--quick", action="store_true", help="one seed, twitter only")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    opts = ap.parse_args(argv)
    if opts.quick:
        opts.seeds, opts.datasets = 1, ["twitter_sentiment_crowdflower"]

    data = opts.data
    needed = [data / "corpus" / "en_small.txt", data / "similarity"]
    needed += [data / "classify" / d / f for d in opts.datasets for f in ("train.txt", "test.txt")]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(f"error: shared data not found (looked in {data}; use --data DIR).\n"
                 f"missing: {', '.join(missing)}")

    import fasttext

    import embtk

    # fasttext's train_unsupervised has no seed= (only train_supervised does): just repeat it.
    ft_takes_seed = False
    tools = {"fasttext": (fasttext, ft_takes_seed), "embtk": (embtk, True)}

    report = {"settings": {"skipgram": SKIPGRAM, "supervised": SUPERVISED, "thread": opts.thread,
                           "seeds": opts.seeds, "fasttext_seeded": ft_takes_seed,
                           "data": str(data)}}
    report["embtk_warmup_seconds"] = warm_up_embtk(embtk, data, opts.thread)
    if not opts.no_skipgram:
        report["skipgram"] = measure_skipgram(tools, data, opts.seeds, opts.thread)
    report["supervised"] = {d: measure_supervised(tools, data, d, opts.thread)
                            for d in opts.datasets}

    print(f"\nfastText {_dist_version('fasttext-wheel', 'fasttext')} vs embtk "
          f"{embtk.__version__}, thread={opts.thread}, seeds={opts.seeds} "
          f"(fastText seeded: {ft_takes_seed}); cpu count {os.cpu_count()}\n")
    rows = build_rows(report)
    print_table(["task", "metric", "fastText", "embtk", "embtk − fastText", "target", "result"], rows)
    print(f"\nembtk warm-up (numba compile/cache load, not in the times above): "
          f"{report['embtk_warmup_seconds']:.1f}s")
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {opts.json}")
    return 1 if any(str(row[-1]).startswith("FAIL") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
