#!/usr/bin/env python
"""Do two source trees train bit-identical models? For refactors that must change nothing.

Trains the same list of small `-thread 1 -seed 7` models (skipgram, cbow with ns and hs,
supervised with each loss and -wordNgrams 2, -batch skipgram and cbow) with each tree's
`embtk` (PYTHONPATH=TREE), one fresh process a model, and compares the `.bin` files (and
the `.vec` of word-vector models) byte for byte; prints one line a model and exits 1 if any
differs.

    python benchmarks/identical.py /work/main/src src
    python benchmarks/identical.py BEFORE_SRC AFTER_SRC --work /tmp/identical --reuse
    python benchmarks/identical.py BEFORE_SRC AFTER_SRC --only 'supervised|batch'

`--reuse` keeps models already trained under WORK/before (a BEFORE tree that does not
change need not train them again).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUSTEN = ROOT / "tests" / "data" / "austen_small.txt"
AUTHORS = ROOT / "tests" / "data" / "authors.train"
COMMON = "-dim 20 -epoch 2 -bucket 20000 -minCount 1 -thread 1 -seed 7 -verbose 0".split()

# name -> (command, input, options)
MODELS = {
    "skipgram-ns": ("skipgram", AUSTEN, []),
    "skipgram-hs": ("skipgram", AUSTEN, ["-loss", "hs"]),
    "cbow-ns": ("cbow", AUSTEN, []),
    "cbow-hs": ("cbow", AUSTEN, ["-loss", "hs"]),
    "skipgram-nongrams": ("skipgram", AUSTEN, ["-maxn", "0"]),
    "supervised-softmax": ("supervised", AUTHORS, ["-loss", "softmax", "-wordNgrams", "2"]),
    "supervised-ns": ("supervised", AUTHORS, ["-loss", "ns", "-wordNgrams", "2"]),
    "supervised-hs": ("supervised", AUTHORS, ["-loss", "hs", "-wordNgrams", "2"]),
    "supervised-ova": ("supervised", AUTHORS, ["-loss", "ova", "-wordNgrams", "2"]),
    "batch-skipgram": ("skipgram", AUSTEN, ["-batch", "8"]),
    "batch-cbow": ("cbow", AUSTEN, ["-batch", "8"]),
}


def train(tree: Path, name: str, out: Path) -> None:
    command, data, options = MODELS[name]
    env = dict(os.environ, PYTHONPATH=str(tree))
    lr = ["-lr", "0.5"] if command == "supervised" else []
    subprocess.run([sys.executable, "-m", "embtk", command, "-input", str(data),
                    "-output", str(out / name), *COMMON, *lr, *options],
                   env=env, check=True)


def outputs(out: Path, name: str) -> list[Path]:
    files = [out / f"{name}.bin"]
    if (out / f"{name}.vec").exists():
        files.append(out / f"{name}.vec")
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, help="source tree (the directory holding embtk/)")
    parser.add_argument("after", type=Path)
    parser.add_argument("--work", type=Path, default=None,
                        help="where to write WORK/before and WORK/after (default: a temporary "
                             "directory)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep models already under WORK/before")
    parser.add_argument("--only", default="", help="regular expression on the model names")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="identical-"))
    names = [n for n in MODELS if re.search(args.only, n)]
    different = 0
    for name in names:
        for side, tree in (("before", args.before), ("after", args.after)):
            out = work / side
            out.mkdir(parents=True, exist_ok=True)
            if side == "before" and args.reuse and (out / f"{name}.bin").exists():
                continue
            train(tree.resolve(), name, out)
        pairs = list(zip(outputs(work / "before", name), outputs(work / "after", name)))
        same = all(filecmp.cmp(a, b, shallow=False) for a, b in pairs)
        sizes = ", ".join(f"{a.suffix[1:]} {a.stat().st_size} B" for a, _ in pairs)
        print(f"{name:20} {'identical' if same else 'DIFFERENT'}  ({sizes})", flush=True)
        different += not same
    print(f"{len(names) - different} of {len(names)} identical ({work})")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
