#!/usr/bin/env python
"""floret mode against fastText mode, in embtk and in the `floret` package, one run.

skipgram, 2 threads, dim 100, minn 4, maxn 5, epoch 5 on corpus/en_corpus.txt:
fastText mode with 2M buckets, floret mode with -bucket 50000 and 200000 (-hashCount 2).
For each: size of the .bin and of the .floret table, training time (wall and CPU, the
training call alone, in a child process), Spearman on every similarity/*.tsv set over the
pairs in the vocabulary and over all pairs (unknown words from their subwords). Both tools'
models are scored by embtk.evaluation on the vectors embtk reads from their .bin (identical
to the floret module's: tests/test_floret.py). Runs alternate between the tools.

    python benchmarks/floret.py                       # the full spec
    python benchmarks/floret.py --prefix-mb 12 --epoch 3 --json out.json   # a shorter run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SRC = str(Path(__file__).resolve().parents[1] / "src")
COMMON = dict(model="skipgram", dim=100, minn=4, maxn=5, thread=2, verbose=0)
CONFIGS = {  # name: (mode, bucket, hashCount)
    "fasttext-2M": ("fasttext", 2000000, 1),
    "floret-50k": ("floret", 50000, 2),
    "floret-200k": ("floret", 200000, 2),
}

# The child trains, saves, and prints its timings as JSON (only the training is timed).
CHILD = r"""
import json, resource, sys, time
tool, corpus, prefix, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if tool == "embtk":
    import embtk as lib
else:
    import floret as lib
start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
model = lib.train_unsupervised(corpus, **options)
wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
model.save_model(prefix + ".bin")
if options["mode"] == "floret":
    model.save_floret_vectors(prefix + ".floret")
print(json.dumps({"wall": wall, "cpu": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime}))
"""


def train(tool: str, corpus: str, prefix: str, options: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", CHILD, tool, corpus, prefix, json.dumps(options)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scores(path: str, sets: list) -> dict:
    """{set: (Spearman over in-vocabulary pairs, Spearman over all pairs)}."""
    import embtk
    from embtk.evaluation import evaluate_similarity

    model = embtk.load_model(path)
    out = {}
    for tsv in sets:
        result = evaluate_similarity(model, str(tsv))
        out[tsv.stem] = (float(result.spearman), float(result.subword_spearman))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epoch", type=int, default=5)
    parser.add_argument("--prefix-mb", type=float, default=0,
                        help="train on the corpus's first N MB (whole lines); 0: all of it")
    parser.add_argument("--tools", default="embtk,floret")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--json", type=Path)
    a = parser.parse_args()
    sys.path.insert(0, SRC)
    corpus = a.data / "corpus" / "en_corpus.txt"
    sets = sorted((a.data / "similarity").glob("*.tsv"))
    if not corpus.is_file() or not sets:
        sys.exit(f"missing {corpus} or {a.data / 'similarity'}/*.tsv: point --data at the shared "
                 "data folder (../shared/data from the project root)")
    with tempfile.TemporaryDirectory() as tmp:
        if a.prefix_mb:
            data = corpus.read_bytes()[: int(a.prefix_mb * 1e6)]
            corpus = Path(tmp) / "prefix.txt"
            corpus.write_bytes(data[: data.rfind(b"\n") + 1])
        # numba's cache warmed on a few lines first: embtk's timings exclude compiling
        warm = Path(tmp) / "warm.txt"
        warm.write_bytes(b"".join(corpus.open("rb").readlines()[:2000]))
        for mode, bucket, count in CONFIGS.values():
            train("embtk", str(warm), str(Path(tmp) / "warm"), dict(
                COMMON, epoch=1, mode=mode, bucket=bucket, hashCount=count, minCount=1))
        results = {}
        for name in a.configs.split(","):
            mode, bucket, count = CONFIGS[name]
            options = dict(COMMON, epoch=a.epoch, mode=mode, bucket=bucket, hashCount=count)
            for tool in a.tools.split(","):
                prefix = str(Path(tmp) / f"{tool}-{name}")
                timing = train(tool, str(corpus), prefix, options)
                row = dict(timing, bin=os.path.getsize(prefix + ".bin"),
                           table=os.path.getsize(prefix + ".floret") if mode == "floret" else None,
                           scores=scores(prefix + ".bin", sets))
                row["in_vocab"] = float(np.mean([s[0] for s in row["scores"].values()]))
                row["all_pairs"] = float(np.mean([s[1] for s in row["scores"].values()]))
                results[f"{tool} {name}"] = row
                print(f"{tool:6} {name:12} bin {row['bin'] / 1e6:8.1f} MB  table "
                      f"{(row['table'] or 0) / 1e6:6.1f} MB  train {row['wall']:6.1f} s wall "
                      f"{row['cpu']:6.1f} s CPU  Spearman in-vocab {row['in_vocab']:.4f} "
                      f"all pairs {row['all_pairs']:.4f}", flush=True)
    print("\nper set (in-vocabulary / all pairs):")
    for key, row in results.items():
        print(f"  {key:20} " + "  ".join(f"{s} {v[0]:.3f}/{v[1]:.3f}"
                                         for s, v in row["scores"].items()))
    if a.json:
        a.json.write_text(json.dumps({"epoch": a.epoch, "prefix_mb": a.prefix_mb,
                                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
