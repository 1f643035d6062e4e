#!/usr/bin/env python
"""Peak memory (maximum resident set size) of embtk beside the official fastText module.

Each measurement is one child process (its own peak, from os.wait4), so nothing carries
over between them:

- quantize: a langid classifier of default size (dim 100, -wordNgrams 2, so 2M hash buckets:
  an 800 MB input matrix), saved once by the official module; then, in a fresh process,
  `load_model(bin).quantize(input=train.txt, retrain=True)` and `save_model(ftz)`, by
  fastText's module and by embtk.
- continued: `embtk skipgram` on en_small from scratch, then the same command continuing
  that model (`-inputModel`): the continued run should need what a fresh one needs.

    python benchmarks/memory.py                         # both parts, about 3 minutes
    python benchmarks/memory.py --parts quantize --cutoff 100000 --work /tmp/mem

Targets (issue 25): quantize within fastText's peak + 10%; continued training within the
fresh run's peak + 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"


def peak(code: str | None = None, command: list | None = None) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a child running `code` (Python) or `command`."""
    argv = command if command is not None else [sys.executable, "-c", code]
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{argv[:4]}... failed with status {child.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - start


def quantize(data: Path, work: Path, cutoff: int, thread: int, dim: int, bucket: int) -> dict:
    train = data / "classify" / "langid_gettext" / "train.txt"
    clf = work / f"clf-{dim}-{bucket}.bin"
    if not clf.exists():
        peak(f"import fasttext; fasttext.train_supervised({str(train)!r}, wordNgrams=2, "
             f"dim={dim}, bucket={bucket}, epoch=1, thread={thread}, verbose=0)"
             f".save_model({str(clf)!r})")
    call = (f"m.quantize(input={str(train)!r}, retrain=True, cutoff={cutoff}, "
            f"thread={thread}, verbose=0)")
    results = {}
    for name, module in (("fastText", "fasttext"), ("embtk", "embtk")):
        ftz = work / f"clf.{name}.ftz"
        mb, seconds = peak(f"import {module} as t; m = t.load_model({str(clf)!r}); {call}; "
                           f"m.save_model({str(ftz)!r})")
        results[name] = {"peak_mb": round(mb), "seconds": round(seconds, 1)}
    results["ratio"] = round(results["embtk"]["peak_mb"] / results["fastText"]["peak_mb"], 3)
    return results


def continued(data: Path, work: Path, thread: int, dim: int, bucket: int) -> dict:
    corpus = data / "corpus" / "en_small.txt"
    embtk = [sys.executable, "-m", "embtk", "skipgram", "-input", str(corpus), "-epoch", "1",
             "-dim", str(dim), "-bucket", str(bucket), "-thread", str(thread), "-verbose", "0"]
    fresh_mb, fresh_s = peak(command=embtk + ["-output", str(work / "fresh")])
    more_mb, more_s = peak(command=embtk + ["-output", str(work / "more"),
                                            "-inputModel", str(work / "fresh.bin")])
    return {"fresh": {"peak_mb": round(fresh_mb), "seconds": round(fresh_s, 1)},
            "continued": {"peak_mb": round(more_mb), "seconds": round(more_s, 1)},
            "ratio": round(more_mb / fresh_mb, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--parts", default="quantize,continued")
    p.add_argument("--cutoff", type=int, default=0, help="quantize's cutoff (0: no pruning)")
    p.add_argument("--thread", type=int, default=2)
    p.add_argument("--dim", type=int, default=100, help="-dim of both models")
    p.add_argument("--bucket", type=int, default=2000000, help="-bucket of both models")
    p.add_argument("--work", type=Path, help="keep the models in this folder (the classifier is "
                   "trained once and reused)")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="embtk-memory-") as tmp:
        if a.work:
            a.work.mkdir(parents=True, exist_ok=True)
            tmp = a.work
        if "quantize" in a.parts:
            results["quantize"] = quantize(a.data, Path(tmp), a.cutoff, a.thread, a.dim, a.bucket)
            print("quantize:", json.dumps(results["quantize"]), flush=True)
        if "continued" in a.parts:
            results["continued"] = continued(a.data, Path(tmp), a.thread, a.dim, a.bucket)
            print("continued:", json.dumps(results["continued"]), flush=True)
    targets = {"quantize": 1.10, "continued": 1.10}
    for part, result in results.items():
        verdict = "ok" if result["ratio"] <= targets[part] else "over"
        print(f"{part}: {result['ratio']:.2f}x (target <= {targets[part]:.2f}x) {verdict}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
