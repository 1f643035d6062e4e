#!/usr/bin/env python
"""Prediction at scale: `embtk predict` next to `embtk predict-files` on Dask workers.

The input is the langid test file repeated `--repeat` times (10 gives about 1M lines).
Measured, each in a fresh process or on a fresh local cluster:

- `embtk predict MODEL INPUT > /dev/null`, whole process (one thread per core);
- `embtk predict-files MODEL INPUT -output DIR`, whole process, with the local cluster it
  starts itself (one worker per core): its overhead against plain predict;
- `predict-files` on a running cluster of 1 and of 2 workers (one thread each), the
  workers warmed up by a first small job (the model loaded): the throughput of the
  workers, and 2 workers against 1;
- the size of a pickled loaded model, and of the same model pickled from memory;
- with `--autotune SECONDS`: trials completed by autotune serially and with 2 workers
  (`-autotune-scheduler`), and the validation F1 of each final model.

    python benchmarks/dask_predict.py                  # repeat 2 (about 200k lines)
    python benchmarks/dask_predict.py --repeat 10 --autotune 120 --json dask.json

Needs `pip install '.[dask]'` (or '.[test]'). On a shared machine, run it under a lock
(e.g. `flock /tmp/embtk-bench.lock python benchmarks/dask_predict.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
SUPERVISED = dict(dim=50, epoch=10, lr=0.5, wordNgrams=2)


def _embtk(*args, stdout=subprocess.DEVNULL) -> tuple[float, str]:
    """Run the embtk command; (wall seconds, stderr)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "embtk", *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"embtk {' '.join(map(str, args))} failed: {done.stderr.strip()}")
    return seconds, done.stderr


def _cluster(workers: int):
    import distributed

    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    return cluster, distributed.Client(cluster)


def _predict_files_on(workers: int, model: Path, big: Path, small: Path, out: Path) -> float:
    """Seconds of the command on a running cluster whose workers have loaded the model."""
    cluster, client = _cluster(workers)
    try:
        address = cluster.scheduler_address
        _embtk("predict-files", model, small, "-output", out / f"warm{workers}",
               "-scheduler", address, "-verbose", 0)
        seconds, _ = _embtk("predict-files", model, big, "-output", out / f"run{workers}",
                            "-scheduler", address, "-verbose", 0)
        return seconds
    finally:
        client.close()
        cluster.close()


def _f1(model_path: Path, validation: Path) -> float:
    import embtk
    from embtk.autotune import validation_score

    return validation_score(embtk.load_model(model_path), validation.read_bytes(), 1,
                            ("f1", 0.0, ""))


def _autotune(seconds: int, train: Path, valid: Path, out: Path, workers: int) -> dict:
    """Trials completed (the `Trial N:` lines of -verbose 3), wall time, F1 of the result."""
    options = ["supervised", "-input", train, "-output", out / f"tuned{workers}",
               "-autotune-validation", valid, "-autotune-duration", seconds, "-verbose", 3]
    cluster = client = None
    if workers:
        cluster, client = _cluster(workers)
        options += ["-autotune-scheduler", cluster.scheduler_address]
    try:
        wall, err = _embtk(*options)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    trials = len(re.findall(r"^Trial \d+:", err, re.M))
    return {"trials": trials, "seconds": wall, "f1": _f1(out / f"tuned{workers}.bin", valid)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="dask_predict.py", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--repeat", type=int, default=2,
                        help="times the langid test file is repeated (10: about 1M lines)")
    parser.add_argument("--model", type=Path,
                        help="a langid classifier (.bin); default: train one (dim 50, epoch "
                             "10, lr 0.5, wordNgrams 2)")
    parser.add_argument("--workers", default="1,2",
                        help="sizes of the running clusters predict-files is timed on "
                             "(empty: none)")
    parser.add_argument("--autotune", type=int, default=0, metavar="SECONDS",
                        help="also run autotune for this many seconds, serially and on 2 "
                             "workers (0: skip)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)

    import embtk

    langid = args.data / "classify" / "langid_gettext"
    if not (langid / "test.txt").exists():
        print(f"shared data not found in {args.data} (see --data)", file=sys.stderr)
        return 1
    report = {"cores": os.cpu_count(), "repeat": args.repeat}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            model = tmp / "langid.bin"
            embtk.train_supervised(str(langid / "train.txt"), verbose=0, **SUPERVISED).save_model(model)
        test = (langid / "test.txt").read_bytes()
        big, small = tmp / "big.txt", tmp / "small.txt"
        big.write_bytes(test * args.repeat)
        small.write_bytes(test[: test.index(b"\n", 10000) + 1])
        lines = test.count(b"\n") * args.repeat
        report["lines"] = lines

        _embtk("predict", model, small)  # numba's cache loaded once before timing
        plain, _ = _embtk("predict", model, big)
        whole, _ = _embtk("predict-files", model, big, "-output", tmp / "whole", "-verbose", 0)
        expected = subprocess.run([sys.executable, "-m", "embtk", "predict", str(model), str(big)],
                                  capture_output=True, check=True).stdout
        same = (tmp / "whole" / "big.txt.pred").read_bytes() == expected
        sizes = [int(n) for n in args.workers.split(",") if n.strip()]
        on = {n: _predict_files_on(n, model, big, small, tmp) for n in sizes}
        loaded = embtk.load_model(model)
        in_memory = embtk.load_model(model)
        in_memory.set_matrices(in_memory.get_input_matrix(), in_memory.get_output_matrix())
        report.update({
            "predict_seconds": plain, "predict_files_local_seconds": whole,
            "predict_files_same_bytes": same,
            "predict_files_on_workers_seconds": on,
            "pickled_loaded_bytes": len(pickle.dumps(loaded)),
            "pickled_in_memory_bytes": len(pickle.dumps(in_memory)),
            "model_file_bytes": os.path.getsize(model),
        })
        if args.autotune:
            report["autotune"] = {
                "seconds": args.autotune,
                "serial": _autotune(args.autotune, langid / "train.txt", langid / "test.txt", tmp, 0),
                "2 workers": _autotune(args.autotune, langid / "train.txt", langid / "test.txt", tmp, 2),
            }
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _print(r: dict) -> None:
    rate = lambda seconds: f"{r['lines'] / seconds:,.0f}"
    print(f"input: langid test x {r['repeat']} = {r['lines']:,} lines; {r['cores']} cores\n")
    print("| run | seconds | lines/s |\n|---|---|---|")
    print(f"| `embtk predict` (whole process) | {r['predict_seconds']:.2f} | "
          f"{rate(r['predict_seconds'])} |")
    print(f"| `embtk predict-files`, own local cluster (whole process) | "
          f"{r['predict_files_local_seconds']:.2f} | {rate(r['predict_files_local_seconds'])} |")
    for n, seconds in r["predict_files_on_workers_seconds"].items():
        print(f"| `predict-files` on a running cluster, {n} worker{'s' * (n > 1)} (warm) | "
              f"{seconds:.2f} | {rate(seconds)} |")
    on = r["predict_files_on_workers_seconds"]
    if 1 in on and 2 in on:
        print(f"\n2 workers / 1 worker: {on[1] / on[2]:.2f}x")
    print(f"cluster overhead against plain "
          f"predict: {100 * (r['predict_files_local_seconds'] / r['predict_seconds'] - 1):.0f}%; "
          f"outputs identical to predict: {r['predict_files_same_bytes']}")
    print(f"pickled model: {r['pickled_loaded_bytes']:,} bytes loaded from its file, "
          f"{r['pickled_in_memory_bytes']:,} bytes in memory (file: {r['model_file_bytes']:,})")
    if "autotune" in r:
        a = r["autotune"]
        print(f"\nautotune, -autotune-duration {a['seconds']}:\n\n| run | trials | wall s | F1 |\n"
              "|---|---|---|---|")
        for name in ("serial", "2 workers"):
            print(f"| {name} | {a[name]['trials']} | {a[name]['seconds']:.0f} | "
                  f"{a[name]['f1']:.4f} |")


if __name__ == "__main__":
    sys.exit(main())
