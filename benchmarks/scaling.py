#!/usr/bin/env python
"""Wall time and peak memory of embtk and the official fastText as the corpus grows.

The corpus is a shared data file repeated 1, 4, 16... times (written once under --work).
Every run is a fresh process, tools alternating; its peak RSS comes from
resource.getrusage(RUSAGE_CHILDREN) in a small process that started it and nothing else
(a process's peak includes what its parent held when it was forked, so the measuring
process imports nothing heavy). The table gives, per size, each tool's seconds (whole
process and the train call alone), peak RSS, and embtk's ratios to fastText.

    flock /tmp/embtk-bench.lock python benchmarks/scaling.py                  # 1x and 4x
    flock /tmp/embtk-bench.lock python benchmarks/scaling.py --sizes 1,4,16 --json out.json
    python benchmarks/scaling.py --cases skipgram --sizes 1 --threads 1 --set dim=10

Needs the official `fasttext` module (`pip install '.[test]'`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
CASES = {
    # name: (data file under --data, training call, options)
    "skipgram": ("corpus/en_corpus.txt", "unsupervised", dict(model="skipgram", bucket=200000)),
    "supervised": ("classify/langid_gettext/train.txt", "supervised", dict(wordNgrams=2)),
}


# ------------------------------------------------------------------ worker: one training

def worker(job: dict) -> dict:
    module = __import__(job["tool"])
    train = module.train_supervised if job["call"] == "supervised" else module.train_unsupervised
    start = time.perf_counter()
    model = train(job["input"], thread=job["thread"], epoch=job["epoch"], verbose=0,
                  **job["options"])
    return {"train_seconds": time.perf_counter() - start, "words": len(model.words)}


# ------------------------------------------------------- measurer: one child, its peak RSS

def measure(argv: list) -> dict:
    """Run `argv`; its wall time, its peak RSS (MB) and the last line it printed."""
    import resource

    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                         f"{proc.stderr.decode(errors='replace')[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    result.update(wall_seconds=wall, peak_rss_mb=peak_kb / 1024.0)
    return result


# ------------------------------------------------------------------------------ parent

def repeated(source: Path, times: int, work: Path) -> Path:
    """`source` repeated `times` times, written once and kept for the next run."""
    if times == 1:
        return source
    target = work / f"{source.stem}_x{times}{source.suffix}"
    size = source.stat().st_size * times
    if not target.exists() or target.stat().st_size != size:
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            for _ in range(times):
                with open(source, "rb") as f:
                    while block := f.read(1 << 24):
                        out.write(block)
        partial.rename(target)
    return target


def run(tool: str, call: str, path: Path, opts, options: dict) -> dict:
    job = dict(tool=tool, call=call, input=str(path), thread=opts.threads, epoch=opts.epoch,
               options=options)
    worker_argv = [sys.executable, __file__, "--worker", json.dumps(job)]
    measurer = subprocess.run([sys.executable, __file__, "--measure", json.dumps(worker_argv)],
                              stdout=subprocess.PIPE)
    if measurer.returncode != 0:
        raise SystemExit(f"{tool} on {path} failed")
    return json.loads(measurer.stdout.decode().strip().splitlines()[-1])


def warm_up(opts) -> None:
    """Compile (or load) embtk's numba kernels once, so that no timed run compiles."""
    tiny = Path(opts.work) / "warm-up.txt"
    tiny.write_text("__label__a hello world\n__label__b other words here\n" * 50)
    for call, options in (("supervised", dict(wordNgrams=2)),
                          ("unsupervised", dict(model="skipgram", minCount=1, bucket=1000))):
        run("embtk", call, tiny, argparse.Namespace(threads=opts.threads, epoch=1), options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder")
    parser.add_argument("--work", default="/tmp/embtk-scaling",
                        help="where the repeated corpora are written (and kept)")
    parser.add_argument("--sizes", default="1,4", help="repetitions of each file, e.g. 1,4,16")
    parser.add_argument("--cases", default="skipgram,supervised", help="skipgram, supervised")
    parser.add_argument("--tools", default="fasttext,embtk")
    parser.add_argument("--epoch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="override a training option in every case, e.g. --set dim=10")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        print(json.dumps(worker(json.loads(opts.worker))))
        return
    if opts.measure:
        print(json.dumps(measure(json.loads(opts.measure))))
        return

    work = Path(opts.work)
    work.mkdir(parents=True, exist_ok=True)
    tools = opts.tools.split(",")
    if "embtk" in tools:
        warm_up(opts)
    overrides = {}
    for item in opts.set:
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.lstrip("-").isdigit() else value
    rows = []
    for case in opts.cases.split(","):
        data, call, options = CASES[case]
        options = {**options, **overrides}
        for times in (int(s) for s in opts.sizes.split(",")):
            path = repeated(Path(opts.data) / data, times, work)
            row = dict(case=case, times=times, megabytes=path.stat().st_size / 1e6)
            for tool in tools:
                print(f"{case} x{times} {tool} ...", file=sys.stderr, flush=True)
                row[tool] = run(tool, call, path, opts, options)
            rows.append(row)
    print_table(rows, tools)
    if opts.json:
        Path(opts.json).write_text(json.dumps(dict(settings=vars(opts), rows=rows), indent=1))


def print_table(rows: list, tools: list) -> None:
    head = ["case", "size", "text MB", "words"]
    for tool in tools:
        head += [f"{tool} s (train)", f"{tool} peak RSS MB"]
    both = {"fasttext", "embtk"} <= set(tools)
    if both:
        head += ["time ratio (train)", "RSS ratio"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        words = row[tools[-1]].get("words", "")
        cells = [row["case"], f"{row['times']}x", f"{row['megabytes']:.0f}", f"{words}"]
        for tool in tools:
            r = row[tool]
            cells += [f"{r['wall_seconds']:.1f} ({r['train_seconds']:.1f})", f"{r['peak_rss_mb']:.0f}"]
        if both:
            ft, em = row["fasttext"], row["embtk"]
            cells += [f"{em['train_seconds'] / ft['train_seconds']:.2f}",
                      f"{em['peak_rss_mb'] / ft['peak_rss_mb']:.2f}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
