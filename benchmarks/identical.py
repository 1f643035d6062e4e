#!/usr/bin/env python
"""Are two embtk source trees' models the same, bit for bit?

Trains skipgram, cbow and supervised (`-wordNgrams 2`) with `-thread 1 -seed S` once with
each tree on PYTHONPATH and compares the `.bin` files byte for byte (then, with
`--threads 2`, also the dictionaries of a two-thread run, which share no randomness but
must hold the same entries in the same order).

    python benchmarks/identical.py --before /work/main/src --after src
    python benchmarks/identical.py --before ../main/src --after src --cases supervised
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[0].parent / "shared" / "data"
CASES = {
    "skipgram": ["skipgram", "-input", "corpus/en_small.txt", "-dim", "20", "-epoch", "1"],
    "cbow": ["cbow", "-input", "corpus/en_small.txt", "-dim", "20", "-epoch", "1"],
    "supervised": ["supervised", "-input", "classify/langid_gettext/train.txt", "-dim", "10",
                   "-epoch", "1", "-wordNgrams", "2", "-bucket", "100000"],
}


def train(src: str, argv: list, data: Path, output: Path, thread: int, seed: int) -> Path:
    argv = [a if not a.endswith(".txt") else str(data / a) for a in argv]
    env = dict(os.environ, PYTHONPATH=src)
    cmd = [sys.executable, "-m", "embtk", *argv, "-output", str(output), "-thread",
           str(thread), "-seed", str(seed), "-verbose", "0"]
    subprocess.run(cmd, env=env, check=True)
    return output.with_suffix(".bin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src folder of the reference tree")
    parser.add_argument("--after", required=True, help="src folder of the tree under test")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="embtk-identical-") as tmp:
        for case in args.cases.split(","):
            a = train(os.path.abspath(args.before), CASES[case], args.data, Path(tmp, f"{case}-a"), 1, args.seed)
            b = train(os.path.abspath(args.after), CASES[case], args.data, Path(tmp, f"{case}-b"), 1, args.seed)
            same = filecmp.cmp(a, b, shallow=False)
            failed += not same
            print(f"{case:10s} -thread 1 -seed {args.seed}: {'identical' if same else 'DIFFERENT'} "
                  f"({a.stat().st_size} bytes)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
