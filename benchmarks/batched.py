#!/usr/bin/env python
"""Speed and quality of -batch N (shared negatives) next to the default algorithm and a
native fastText binary, same corpus and options.

Each configuration (fastText's algorithm, then -batch N for every N asked) is trained by
the command line in a fresh process for every seed and thread count; the words/sec/thread
each tool prints on its closing progress line are reported (median over the seeds), with
the ratio to native fastText at the same thread count, and the mean Spearman over the
similarity/*.tsv sets, averaged over the seeds (at the first thread count). Every timed
training holds --lock (flock), so that runs on a shared machine do not overlap.

    python benchmarks/batched.py                               # en_corpus, N = 8 16 32
    python benchmarks/batched.py --corpus ../shared/data/corpus/en_small.txt --seeds 1
    python benchmarks/batched.py --batches 0,16 --threads 1,2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
UNSUPERVISED = dict(dim=100, epoch=5, minn=3, maxn=6, lr=0.05, ws=5, neg=5, minCount=5)
NATIVE = "/tmp/ft-native/fasttext"
SPEED = re.compile(rb"words/sec/thread:\s*([0-9.]+)")
TIMER = ["/usr/bin/time", "-f", "%e %U %S %M"] if os.path.exists("/usr/bin/time") else []


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="batched.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--corpus", type=Path, help="training text (default: corpus/en_corpus.txt)")
    p.add_argument("--model", default="skipgram", choices=("skipgram", "cbow"))
    p.add_argument("--batches", default="0,8,16,32",
                   help="values of -batch, comma-separated (0: the default algorithm)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per configuration")
    p.add_argument("--first-seed", type=int, default=0, help="seeds run from this one on")
    p.add_argument("--threads", default="1,2", help="thread counts, comma-separated; quality "
                   "is averaged at the first")
    p.add_argument("--native", default=NATIVE, help="native fastText binary ('' to skip it)")
    p.add_argument("--native-seeds", type=int, default=1, help="runs of the native binary")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a training option, e.g. --set epoch=1")
    p.add_argument("--lock", default="/tmp/embtk-bench.lock",
                   help="flock file held during each timed run ('' for none)")
    p.add_argument("--work", type=Path, help="folder for the models (default: a temporary one)")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args(argv)


def train(argv: list, lock: str) -> dict:
    """Run one training command; its words/sec/thread and (wall, user, sys, peak MB)."""
    locked = ["flock", lock] if lock else []
    done = subprocess.run(locked + TIMER + argv, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"batched.py: {' '.join(map(str, argv))} failed:\n"
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    err = done.stderr.replace(b"\r", b"\n")
    speeds = SPEED.findall(err)
    result = {"words_per_sec_thread": float(speeds[-1]) if speeds else float("nan")}
    if TIMER:
        wall, user, system, rss = err.strip().splitlines()[-1].split()
        result.update(wall=float(wall), cpu=float(user) + float(system),
                      peak_mb=float(rss) / 1024)
    return result


def mean_spearman(model_path: Path, sets: dict) -> dict:
    sys.path.insert(0, str(HERE))
    import embtk
    from quality import similarity_scores

    scores = similarity_scores(embtk.load_model(str(model_path)), sets)
    return {"mean": float(np.mean([rho for rho, _ in scores.values()])),
            "sets": {name: rho for name, (rho, _) in scores.items()}}


def options_of(params: dict) -> list:
    return [x for name, value in params.items() for x in (f"-{name}", str(value))]


def main(argv=None) -> int:
    opts = parse_args(argv)
    corpus = opts.corpus or opts.data / "corpus" / "en_corpus.txt"
    sets = {p.stem: p for p in sorted((opts.data / "similarity").glob("*.tsv"))}
    if not corpus.exists() or not sets:
        print(f"batched.py: no corpus {corpus} or no similarity sets in {opts.data}",
              file=sys.stderr)
        return 1
    params = dict(UNSUPERVISED)
    for item in opts.set:
        name, _, value = item.partition("=")
        params[name] = value
    batches = [int(b) for b in opts.batches.split(",") if b]
    threads = [int(t) for t in opts.threads.split(",") if t]
    work = opts.work or Path(tempfile.mkdtemp(prefix="embtk-batched-"))
    work.mkdir(parents=True, exist_ok=True)
    native = opts.native if opts.native and os.path.exists(opts.native) else ""
    configs = ([("fastText native", None)] if native else []) + \
        [(f"embtk -batch {b}" if b else "embtk default", b) for b in batches]
    report = {"corpus": str(corpus), "model": opts.model, "params": params, "runs": []}
    for name, batch in configs:
        seeds = opts.native_seeds if batch is None else opts.seeds
        for thread in threads:
            for seed in range(opts.first_seed, opts.first_seed + seeds):
                out = work / f"{re.sub(r'[^a-z0-9]+', '_', name)}_t{thread}_s{seed}"
                if batch is None:
                    argv = [native, opts.model]
                else:
                    argv = [sys.executable, "-m", "embtk", opts.model]
                    argv += ["-batch", str(batch)] if batch else []
                argv += ["-input", str(corpus), "-output", str(out), "-thread", str(thread),
                         "-seed", str(seed), "-verbose", "2"] + options_of(params)
                print(f"  {name:16s} thread {thread} seed {seed} ...", end="", file=sys.stderr,
                      flush=True)
                run = dict(config=name, batch=batch, thread=thread, seed=seed,
                           **train(argv, opts.lock))
                if thread == threads[0]:
                    run["spearman"] = mean_spearman(out.with_suffix(".bin"), sets)
                report["runs"].append(run)
                print(f" {run['words_per_sec_thread']:9.0f} words/sec/thread  mean Spearman "
                      f"{run.get('spearman', {}).get('mean', float('nan')):.4f}",
                      file=sys.stderr)
                for suffix in (".bin", ".vec"):
                    out.with_suffix(suffix).unlink(missing_ok=True)
                if opts.json:
                    opts.json.write_text(json.dumps(report, indent=1))
    report["summary"] = summarize(report["runs"], configs, threads)
    print_table(report, threads)
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1))
    if not opts.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def summarize(runs: list, configs: list, threads: list) -> list:
    rows = []
    for name, batch in configs:
        mine = [r for r in runs if r["config"] == name]
        row = {"config": name, "batch": batch}
        for t in threads:
            speeds = [r["words_per_sec_thread"] for r in mine if r["thread"] == t]
            native = [r["words_per_sec_thread"] for r in runs
                      if r["batch"] is None and r["thread"] == t]
            row[f"wps_t{t}"] = statistics.median(speeds)
            row[f"ratio_t{t}"] = row[f"wps_t{t}"] / statistics.median(native) if native else None
        quality = [r["spearman"]["mean"] for r in mine if "spearman" in r]
        row["mean_spearman"] = float(np.mean(quality)) if quality else float("nan")
        row["seeds"] = len(quality)
        rows.append(row)
    default = [r["mean_spearman"] for r in rows if r["batch"] == 0]
    for row in rows:
        row["spearman_minus_default"] = row["mean_spearman"] - default[0] if default else None
    return rows


def print_table(report: dict, threads: list) -> None:
    print(f"{report['model']} on {report['corpus']}, "
          + " ".join(f"{k} {v}" for k, v in report["params"].items()))
    head = ["configuration"] + [f"words/sec/thread ({t} thr)" for t in threads] + \
        [f"vs native ({t} thr)" for t in threads] + ["mean Spearman", "vs default"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in report["summary"]:
        ratios = [f"{row[f'ratio_t{t}']:.2f}x" if row[f"ratio_t{t}"] else "" for t in threads]
        cells = [row["config"]] + [f"{row[f'wps_t{t}']:.0f}" for t in threads] + ratios + \
            [f"{row['mean_spearman']:.4f} ({row['seeds']} seeds)",
             "" if row["spearman_minus_default"] is None else f"{row['spearman_minus_default']:+.4f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
