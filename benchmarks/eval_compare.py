#!/usr/bin/env python
"""Word similarity and analogies of two word-vector models side by side, scored by the same
code (embtk.evaluation), as markdown tables: by default an embtk and an official-fastText
skipgram model trained with the same settings on corpus/en_corpus.txt.

    python benchmarks/eval_compare.py --models /work/models            # reuse trained models
    python benchmarks/eval_compare.py --models DIR --train --fasttext /path/to/fasttext
    python benchmarks/eval_compare.py --json out.json --method 3cosmul

Models are DIR/<name>.bin (and .vec); `--train` trains the missing ones with
`skipgram -dim 100 -epoch 5 -minCount 5 -thread 2` (embtk through `python -m embtk`,
fastText through its command-line binary given by `--fasttext`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETTINGS = ["-dim", "100", "-epoch", "5", "-minCount", "5", "-thread", "2"]
NAMES = {"embtk": "en_corpus_embtk", "fastText": "en_corpus_ft"}


def train_missing(models: Path, data: Path, fasttext: str | None) -> None:
    corpus = data / "corpus" / "en_corpus.txt"
    commands = {"embtk": [sys.executable, "-m", "embtk", "skipgram"],
                "fastText": [fasttext, "skipgram"] if fasttext else None}
    for tool, name in NAMES.items():
        prefix = models / name
        if prefix.with_suffix(".bin").exists():
            continue
        if commands[tool] is None:
            sys.exit(f"{prefix}.bin is missing: give --fasttext PATH to train it")
        command = commands[tool] + ["-input", str(corpus), "-output", str(prefix)] + SETTINGS
        print("training:", " ".join(command), file=sys.stderr)
        start = time.perf_counter()
        subprocess.run(command + ["-verbose", "1"], check=True)
        print(f"  {time.perf_counter() - start:.1f} s", file=sys.stderr)


def evaluate(models: Path, data: Path, top: int, method: str) -> dict:
    from embtk.evaluation import evaluate_analogies, evaluate_similarity, load_vectors

    report = {}
    for tool, name in NAMES.items():
        vectors = load_vectors(models / f"{name}.bin")
        sims = {p.name: evaluate_similarity(vectors, p).to_dict()
                for p in sorted((data / "similarity").glob("*.tsv"))}
        analogies = evaluate_analogies(vectors, data / "analogy" / "questions-words.txt",
                                       top=top, method=method)
        report[tool] = {"model": str(models / f"{name}.bin"), "similarity": sims,
                        "analogies": analogies.to_dict()}
    return report


def _f(x, spec=".4f"):
    return "–" if x is None else format(x, spec)


def print_tables(report: dict) -> None:
    tools = list(report)
    both = " / ".join(tools)
    print(f"Word similarity, each cell {both}. In-vocabulary pairs: fastText's convention; "
          "OOV via subwords: all pairs, unknown words built from their character n-grams.")
    print()
    print("| data | pairs | in vocab | Pearson | Spearman | OOV via subwords: pairs | "
          "Pearson | Spearman |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in report[tools[0]]["similarity"]:
        rows = [report[t]["similarity"][name] for t in tools]

        def cell(key, spec=".4f"):
            return " / ".join(_f(r[key], spec) if r[key] is not None else "–" for r in rows)

        print(f"| {name} | {rows[0]['pairs']} | {cell('in_vocab', 'd')} | {cell('pearson')} | "
              f"{cell('spearman')} | {cell('subword_pairs', 'd')} | {cell('subword_pearson')} | "
              f"{cell('subword_spearman')} |")
    print()
    first = report[tools[0]]["analogies"]
    print(f"Analogies ({first['method']}, top {first['top']} words), accuracy over answered "
          "questions (correct / answered, skipped):")
    print()
    print("| part | " + " | ".join(tools) + " |")
    print("|---|" + "---:|" * len(tools))
    for part in ("semantic", "syntactic", "total"):
        cells = []
        for t in tools:
            s = report[t]["analogies"][part]
            accuracy = "–" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f}%"
            cells.append(f"{accuracy} ({s['correct']}/{s['answered']}, skipped {s['skipped']})")
        print(f"| {part} | " + " | ".join(cells) + " |")
    print("| seconds to answer | " + " | ".join(
        f"{report[t]['analogies']['seconds']:.2f}" for t in tools) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"),
                        help="folder of en_corpus_embtk.bin and en_corpus_ft.bin")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train", action="store_true", help="train the missing models")
    parser.add_argument("--fasttext", help="official fastText binary (for --train)")
    parser.add_argument("--top", type=int, default=30000)
    parser.add_argument("--method", default="3cosadd", choices=["3cosadd", "3cosmul"])
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    if args.train:
        os.makedirs(args.models, exist_ok=True)
        train_missing(args.models, args.data, args.fasttext)
    report = evaluate(args.models, args.data, args.top, args.method)
    print_tables(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
