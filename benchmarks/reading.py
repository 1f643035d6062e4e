#!/usr/bin/env python
"""How fast the text is read: embtk's count and encode passes next to fastText's reading.

embtk (one or more source trees, e.g. before and after a change) counts and encodes a
corpus as `train` does (`count_vocabulary(keep_ids=True)` then `encode_corpus`), each
run in a fresh process whose kernels are loaded first on a small file; the two passes are
timed inside the process (wall and CPU: user + sys of all its threads). fastText reads
inside `train_*`, so its reading is isolated from outside: `epoch=0` runs its counting
pass (readFromFile, threshold, n-gram setup) and starts threads that train nothing;
`epoch=1` with `dim=1 lr=0` (and `ws=1 neg=1` for word vectors) adds one pass of getLine
over the text (tokenize, hash, look up, subsample, word n-grams) with almost no training.
fastText's one-epoch reading is then counted two ways: "est" = 2 x the counting pass
(an epoch's getLine costing what counting costs), and "ub" = the whole `epoch=1 dim=1`
call, an upper bound (it includes a dim-1 training). Rates are MB of text per second.

    python benchmarks/reading.py --trees before=/work/main/src,after=src --reps 3
    python benchmarks/reading.py --cases supervised --threads 2 --reps 5 --json out.json

Runs alternate tools and trees within each repetition; the table gives medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
CASES = {
    # name: (file under --data, model, embtk options, fastText options)
    "unsupervised": ("corpus/en_corpus.txt", "skipgram", {},
                     dict(minn=0, maxn=0, ws=1, neg=1)),
    "supervised": ("classify/langid_gettext/train.txt", "supervised", dict(wordNgrams=2),
                   dict(wordNgrams=2)),
}


def _cpu() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def embtk_worker(job: dict) -> dict:
    import time

    from embtk import corpus
    from embtk.args import Args

    args = Args.for_model(job["model"], thread=job["thread"], **job["options"])

    def passes(path):
        w0, c0 = time.perf_counter(), _cpu()
        try:
            d = corpus.count_vocabulary(args, path, keep_ids=True)
        except TypeError:  # a tree from before keep_ids
            d = corpus.count_vocabulary(args, path)
        w1, c1 = time.perf_counter(), _cpu()
        corpus.encode_corpus(args, d, path).close()
        w2, c2 = time.perf_counter(), _cpu()
        return dict(count_wall=w1 - w0, count_cpu=c1 - c0, encode_wall=w2 - w1,
                    encode_cpu=c2 - c1)

    passes(job["warm"])  # loads (or compiles) the kernels
    return passes(job["input"])


def fasttext_worker(job: dict) -> dict:
    import time

    import fasttext

    train = fasttext.train_supervised if job["model"] == "supervised" else fasttext.train_unsupervised
    extra = {} if job["model"] == "supervised" else dict(model=job["model"])
    out = {}
    for epoch in (0, 1):
        w0, c0 = time.perf_counter(), _cpu()
        train(job["input"], epoch=epoch, dim=1, lr=0.0, thread=job["thread"], verbose=0,
              **extra, **job["options"])
        out[f"epoch{epoch}_wall"], out[f"epoch{epoch}_cpu"] = time.perf_counter() - w0, _cpu() - c0
    return out


def run(job: dict, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"worker failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--trees", default="embtk=" + str(HERE.parent / "src"),
                        help="name=src_folder,... (embtk source trees to compare)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-fasttext", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        result = (fasttext_worker if job["tool"] == "fasttext" else embtk_worker)(job)
        print(json.dumps(result))
        return
    trees = dict(t.split("=", 1) for t in args.trees.split(","))
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="embtk-reading-") as tmp:
        for case in args.cases.split(","):
            rel, model, options, ft_options = CASES[case]
            path = args.data / rel
            warm = Path(tmp, f"{case}-warm.txt")
            with open(path, "rb") as f:
                head = f.read(1 << 20)
            warm.write_bytes(head[:head.rfind(b"\n") + 1])
            for thread in map(int, args.threads.split(",")):
                for rep in range(args.reps):
                    tools = list(trees.items()) + ([] if args.no_fasttext else [("fastText", None)])
                    if rep % 2:
                        tools.reverse()
                    for name, src in tools:
                        job = dict(tool="fasttext" if src is None else "embtk", model=model,
                                   thread=thread, input=str(path), warm=str(warm),
                                   options=ft_options if src is None else options)
                        r = run(job, src)
                        results.setdefault(f"{case} t{thread} {name}", []).append(r)
                        print(f"{case} t{thread} {name} rep {rep}: "
                              + " ".join(f"{k} {v:.2f}" for k, v in r.items()), file=sys.stderr)
    mb = {case: (args.data / CASES[case][0]).stat().st_size / 1e6 for case in args.cases.split(",")}
    print("| case | threads | tool | count CPU s | encode CPU s | count+encode CPU s | wall s "
          "| MB/s (CPU) | MB/s (wall) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, runs in results.items():
        case, thread, name = key.split(" ", 2)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        size = mb[case]
        if name == "fastText":
            for label, cpu, wall in (
                    ("fastText counting pass (epoch=0)", med["epoch0_cpu"], med["epoch0_wall"]),
                    ("fastText reading est. (2 x epoch=0)", 2 * med["epoch0_cpu"], 2 * med["epoch0_wall"]),
                    ("fastText reading ub (epoch=1 dim=1)", med["epoch1_cpu"], med["epoch1_wall"])):
                print(f"| {case} | {thread[1:]} | {label} | | | {cpu:.2f} | {wall:.2f} "
                      f"| {size / cpu:.1f} | {size / wall:.1f} |")
        else:
            cpu = med["count_cpu"] + med["encode_cpu"]
            wall = med["count_wall"] + med["encode_wall"]
            print(f"| {case} | {thread[1:]} | {name} | {med['count_cpu']:.2f} | {med['encode_cpu']:.2f} "
                  f"| {cpu:.2f} | {wall:.2f} | {size / cpu:.1f} | {size / wall:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
