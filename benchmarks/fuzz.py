#!/usr/bin/env python
"""Fuzz embtk's file readers (`.bin`, `.ftz`, `.vec`) longer than the test suite does.

The same fuzzer as tests/test_fuzz.py (tests/fuzzing.py): tiny seed models are trained,
then every header field is set to boundary and out-of-range values, every section
boundary is cut, and random bit flips and byte runs follow, up to --variants in all.
Each variant is opened through the API and the command line in worker processes with
an address-space limit; the table counts the outcomes, and anything but a clean error
or a working model is listed with the edits that reproduce it.

    python benchmarks/fuzz.py --variants 10000 --seed 1
    python benchmarks/fuzz.py --variants 500 --random-only --keep /tmp/findings

Exit status 1 when any variant broke the error contract.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import fuzzing  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=10000, help="variants in all")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random variants")
    parser.add_argument("--workers", type=int, default=2, help="worker processes at a time")
    parser.add_argument("--random-only", action="store_true",
                        help="skip the systematic variants (every field, every cut)")
    parser.add_argument("--timeout", type=float, default=fuzzing.VARIANT_TIMEOUT_S,
                        help="seconds a variant may take before it counts as a hang")
    parser.add_argument("--keep", metavar="DIR",
                        help="write each failing variant's file into DIR")
    parser.add_argument("--json", metavar="PATH", help="write every variant's outcome here")
    parser.add_argument("--list", type=int, default=30, help="failures to describe")
    opts = parser.parse_args(argv)

    print("$ python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]))
    with tempfile.TemporaryDirectory(prefix="embtk-fuzz-seeds-") as directory:
        began = time.monotonic()
        seeds = fuzzing.make_seeds(directory)
        sizes = ", ".join(f"{name} ({len(s.data)} bytes)" for name, s in seeds.items())
        print(f"seed files: {sizes}; trained in {time.monotonic() - began:.1f} s")
        variants = fuzzing.plan(seeds, opts.variants, opts.seed, not opts.random_only)
        systematic = 0 if opts.random_only else min(
            opts.variants, len(fuzzing.systematic_variants(seeds)))
        print(f"{len(variants)} variants: {systematic} systematic, "
              f"{len(variants) - systematic} random (seed {opts.seed}); "
              f"{opts.workers} workers, {fuzzing.ADDRESS_SPACE_MB} MB address space each, "
              f"{opts.timeout:g} s per variant")
        report = fuzzing.run(variants, seeds, directory, workers=opts.workers,
                             timeout=opts.timeout)
        failed = fuzzing.failures(report.results)
        if opts.keep and failed:
            keep = Path(opts.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for i, r in enumerate(failed):
                data = fuzzing.apply_splices(seeds[r.variant.seed].data, r.variant.splices)
                (keep / f"{i:04d}-{r.variant.seed}").write_bytes(data)
    print()
    print(fuzzing.table(report.results))
    print()
    print(f"{report.seconds:.1f} s ({len(variants) / report.seconds:.0f} variants/s), "
          f"{report.workers_started} worker processes, largest peak resident size "
          f"{report.peak_rss_mb:.0f} MB (limit {fuzzing.PEAK_RSS_MB} MB), largest address "
          f"space {report.peak_address_space_mb:.0f} MB")
    for r in failed[:opts.list]:
        print(fuzzing.describe(r))
        print(f"    edits: {json.dumps(r.variant.splices)[:300]}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(
            [dict(r.variant.to_json(), outcome=r.outcome, detail=r.detail)
             for r in report.results], indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
