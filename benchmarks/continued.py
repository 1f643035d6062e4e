#!/usr/bin/env python
"""Continued training (-inputModel) against training on everything at once; resuming.

A corpus is cut in two halves, A (its first lines) and B (the rest). Three models with the
same settings: A alone, A continued on B (each line seen -epoch times, as below), and A+B
in one run with -epoch epochs. Classifiers are scored by P@1 on the test file, word
vectors by Spearman on the similarity sets (pairs in the vocabulary; the mean over sets).
The new words of B get nearest neighbours, to see whether their vectors mean something.

    python benchmarks/continued.py                          # both parts, about 5 minutes
    python benchmarks/continued.py --parts classify --json out.json
    python benchmarks/continued.py --parts resume

With --parts resume: one classifier and one skipgram run killed (SIGKILL) at about half
their time and resumed from their last checkpoint, against uninterrupted runs.

Targets (issue 12): P@1 of A->B within 1 point of A+B; mean Spearman within 0.02; the
same tolerances for resumed against uninterrupted runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
CLASSIFY = dict(dim=50, lr=0.5, wordNgrams=2)  # as speed.py's langid runs
WORDS = dict(model="skipgram")  # fastText's defaults otherwise


def halves(path: Path, work: Path) -> tuple:
    lines = path.read_bytes().splitlines(keepends=True)
    a, b = work / f"{path.stem}.A.txt", work / f"{path.stem}.B.txt"
    a.write_bytes(b"".join(lines[:len(lines) // 2]))
    b.write_bytes(b"".join(lines[len(lines) // 2:]))
    return a, b


def three_models(train, path: Path, work: Path, options: dict) -> dict:
    """{name: (model, seconds)} for A, A->B and A+B."""
    a, b = halves(path, work)
    models = {}
    start = time.perf_counter()
    models["A"] = (train(a, **options), time.perf_counter() - start)
    models["A"][0].save_model(work / "A.bin")
    start = time.perf_counter()
    models["A->B"] = (train(b, inputModel=str(work / "A.bin"), **options),
                      time.perf_counter() - start)
    start = time.perf_counter()
    models["A+B"] = (train(path, **options), time.perf_counter() - start)
    return models


def classify(opts, work: Path) -> dict:
    import embtk

    folder = Path(opts.data) / "classify" / opts.dataset
    options = dict(CLASSIFY, epoch=opts.epoch, thread=opts.thread, seed=opts.seed, verbose=0)
    models = three_models(embtk.train_supervised, folder / "train.txt", work, options)
    rows = {}
    for name, (model, seconds) in models.items():
        n, p1, _ = model.test(str(folder / "test.txt"))
        rows[name] = dict(p_at_1=p1, seconds=seconds, labels=len(model.labels))
    return rows


def word_vectors(opts, work: Path) -> dict:
    import embtk
    from quality import similarity_scores

    sets = {p.stem: p for p in sorted((Path(opts.data) / "similarity").glob("*.tsv"))}
    options = dict(WORDS, epoch=opts.epoch, thread=opts.thread, seed=opts.seed, verbose=0)
    models = three_models(embtk.train_unsupervised, Path(opts.data) / "corpus" / opts.corpus,
                          work, options)
    rows = {}
    for name, (model, seconds) in models.items():
        scores = similarity_scores(model, sets)
        rhos = [rho for rho, _ in scores.values() if rho == rho]
        rows[name] = dict(mean_spearman=sum(rhos) / len(rhos), seconds=seconds,
                          words=len(model.words),
                          spearman={k: v[0] for k, v in scores.items()})
    continued = models["A->B"][0]
    known = set(models["A"][0].words)
    new = [w for w in continued.words if w not in known and w.isalpha()][:opts.new_words]
    rows["new words"] = {w: [n for _, n in continued.get_nearest_neighbors(w, k=6)]
                         for w in new}
    return rows


def killed_and_resumed(opts, work: Path, command: list, score) -> dict:
    """An uninterrupted run of `command` (embtk's CLI), then the same run killed with
    SIGKILL at about half its time and resumed from its last checkpoint; their scores."""
    import subprocess

    base = [sys.executable, "-m", "embtk", *command, "-thread", str(opts.thread), "-verbose", "0"]
    start = time.perf_counter()
    subprocess.run(base + ["-output", str(work / "whole")], check=True)
    whole_seconds = time.perf_counter() - start
    checkpoint = work / "run.ckpt"
    start = time.perf_counter()
    proc = subprocess.Popen(base + ["-output", str(work / "part"), "-checkpoint",
                                    str(checkpoint), "-checkpointEvery", str(opts.every)])
    # Kill at half the uninterrupted time, but not before the first checkpoint exists: on a
    # loaded machine the start (imports, dictionary) can take half the run by itself.
    while proc.poll() is None and (time.perf_counter() - start < whole_seconds / 2
                                   or not checkpoint.exists()):
        time.sleep(0.05)
    if proc.poll() is not None:
        raise SystemExit("the run ended before it could be killed: lower --every")
    proc.kill()
    proc.wait()
    start = time.perf_counter()
    resumed = subprocess.run(base[:-2] + ["-verbose", "1", "-output", str(work / "part"),
                                          "-resume", str(checkpoint)],
                             check=True, stderr=subprocess.PIPE, text=True)
    at = resumed.stderr.split("Resuming", 1)[1].split(" at ", 1)[1].split("%")[0]
    import embtk

    return dict(uninterrupted=score(embtk.load_model(work / "whole.bin")),
                resumed=score(embtk.load_model(work / "part.bin")), resumed_at_percent=float(at),
                uninterrupted_seconds=whole_seconds,
                resume_seconds=time.perf_counter() - start)


def resume(opts, work: Path) -> dict:
    from quality import similarity_scores

    folder = Path(opts.data) / "classify" / opts.dataset
    flags = [f"-{k}" if i % 2 == 0 else str(v) for k, v in CLASSIFY.items() for i in (0, 1)]
    rows = {"classify": killed_and_resumed(
        opts, work, ["supervised", "-input", str(folder / "train.txt"), "-epoch",
                     str(opts.epoch), *flags],
        lambda model: model.test(str(folder / "test.txt"))[1])}
    sets = {p.stem: p for p in sorted((Path(opts.data) / "similarity").glob("*.tsv"))}

    def mean_spearman(model):
        rhos = [rho for rho, _ in similarity_scores(model, sets).values() if rho == rho]
        return sum(rhos) / len(rhos)

    rows["words"] = killed_and_resumed(
        opts, work, ["skipgram", "-input", str(Path(opts.data) / "corpus" / opts.corpus),
                     "-epoch", str(opts.epoch)], mean_spearman)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--parts", default="classify,words",
                        help="classify, words (continued training), resume (kill -9 at half-way)")
    parser.add_argument("--every", type=float, default=2.0,
                        help="seconds between checkpoints in the resume part")
    parser.add_argument("--dataset", default="langid_gettext", help="a folder of classify/")
    parser.add_argument("--corpus", default="en_corpus.txt", help="a file of corpus/")
    parser.add_argument("--epoch", type=int, default=5)
    parser.add_argument("--thread", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--new-words", type=int, default=8, help="new words of B to show")
    parser.add_argument("--json", help="also write the results to this file")
    opts = parser.parse_args()
    results = {}
    parts = opts.parts.split(",")
    with tempfile.TemporaryDirectory(prefix="embtk-continued-") as work:
        for part, measure in (("classify", classify), ("words", word_vectors),
                              ("resume", resume)):
            if part in parts:  # each table as soon as it is measured
                results[part] = measure(opts, Path(work))
                report({part: results[part]}, opts)
    if opts.json:
        Path(opts.json).write_text(json.dumps(dict(settings=vars(opts), results=results),
                                              indent=1))


def report(results: dict, opts) -> None:
    if "classify" in results:
        r = results["classify"]
        print(f"\n{opts.dataset}, epoch {opts.epoch} ({CLASSIFY})\n")
        print("| model | P@1 | labels | seconds |\n|---|---|---|---|")
        for name, row in r.items():
            print(f"| {name} | {row['p_at_1']:.4f} | {row['labels']} | {row['seconds']:.1f} |")
        gap = 100 * (r["A->B"]["p_at_1"] - r["A+B"]["p_at_1"])
        print(f"\nA->B minus A+B: {gap:+.2f} points (target: within 1)")
    if "words" in results:
        r = results["words"]
        sets = list(r["A"]["spearman"])
        print(f"\n{opts.corpus} skipgram, epoch {opts.epoch}\n")
        print("| model | words | " + " | ".join(sets) + " | mean | seconds |")
        print("|---|---|" + "---|" * (len(sets) + 2))
        for name in ("A", "A->B", "A+B"):
            row = r[name]
            cells = [f"{row['spearman'][s]:.3f}" for s in sets]
            print(f"| {name} | {row['words']} | " + " | ".join(cells) +
                  f" | {row['mean_spearman']:.3f} | {row['seconds']:.1f} |")
        gap = r["A->B"]["mean_spearman"] - r["A+B"]["mean_spearman"]
        print(f"\nA->B minus A+B: {gap:+.3f} (target: within 0.02)\n\nNew words of B:")
        for word, neighbours in r["new words"].items():
            print(f"- {word}: {', '.join(neighbours)}")
    if "resume" in results:
        print("\nKilled with SIGKILL at about half-way, then resumed from the last checkpoint\n")
        print("| run | uninterrupted | resumed | resumed at | seconds (whole, resume) |")
        print("|---|---|---|---|---|")
        for name, what in (("classify", "P@1"), ("words", "mean Spearman")):
            r = results["resume"][name]
            print(f"| {name} ({what}) | {r['uninterrupted']:.4f} | {r['resumed']:.4f} | "
                  f"{r['resumed_at_percent']:.1f}% | {r['uninterrupted_seconds']:.0f}, "
                  f"{r['resume_seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
