#!/usr/bin/env python
"""Spearman of a word-vector model on WordSim-353 and SimLex-999 (in-vocabulary pairs).

    embtk glove -input ../shared/data/corpus/en_corpus.txt -output /tmp/g \\
        -dim 50 -ws 15 -minCount 5 -epoch 15 -xmax 10 -thread 2 -memory 1
    python benchmarks/glove_similarity.py /tmp/g.bin

Targets of issue 6 (the reference GloVe on this machine, same settings): WS353 0.338,
SimLex 0.126, within 0.01. Exits non-zero when a score is below its target.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import DEFAULT_DATA, similarity_scores  # noqa: E402

TARGETS = {"wordsim353": 0.338 - 0.01, "simlex999": 0.126 - 0.01}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .bin (embtk or fastText) file")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    opts = parser.parse_args(argv)

    import embtk
    from embtk.evaluation import read_similarity_pairs

    model = embtk.load_model(opts.model)
    sets = {name: opts.data / "similarity" / f"{name}.tsv" for name in TARGETS}
    sizes = {name: len(read_similarity_pairs(path).human) for name, path in sets.items()}
    failed = False
    print(f"model {opts.model}: {len(model.words)} words, dim {model.get_dimension()}")
    print("| set | pairs used / all | Spearman | target |")
    print("|---|---|---|---|")
    for name, (rho, used) in similarity_scores(model, sets).items():
        ok = rho >= TARGETS[name]
        failed |= not ok
        print(f"| {name} | {used} / {sizes[name]} | {rho:.4f} | >= {TARGETS[name]:.3f} "
              f"{'PASS' if ok else 'FAIL'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
