"""The model and vector readers under a seeded fuzz run (see fuzzing.py).

Every header field of each seed file set to boundary and out-of-range values, every
truncation at a section boundary, odd text in a `.vec`, then random bit flips and byte
runs: each variant is opened through the API and the command line in worker processes
with an address-space limit, and must end as a clean one-line error or a model that
works -- never a traceback, an internal error, a signal, a hang or a memory blow-up.
benchmarks/fuzz.py runs the same fuzzer for longer.
"""

from __future__ import annotations

import collections
import os
import tempfile

import pytest

import fuzzing

SEED = 20251201
RANDOM_VARIANTS = 300
WORKERS = 2


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz-seeds")
    return directory, fuzzing.make_seeds(directory)


@pytest.fixture(scope="module")
def run_tmpdir(tmp_path_factory):
    """An empty folder that is TMPDIR (for this process and the workers) during `report`'s
    run: what the run leaves in it, it would leave in the user's."""
    return tmp_path_factory.mktemp("fuzz-tmpdir")


@pytest.fixture(scope="module")
def report(seeds, run_tmpdir):
    directory, files = seeds
    count = len(fuzzing.systematic_variants(files)) + RANDOM_VARIANTS
    # Each variant goes through the API and one command, the commands in turn: half the
    # time of running them all (benchmarks/fuzz.py does), and every command still sees
    # hundreds of variants.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(run_tmpdir))
        mp.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
        return fuzzing.run(fuzzing.plan(files, count, SEED), files, directory,
                           workers=WORKERS, every_command=False)


def _by_label(report, seed, label):
    return next(r for r in report.results if (r.variant.seed, r.variant.label) == (seed, label))


@pytest.mark.slow
def test_no_variant_breaks_the_error_contract(report):
    bad = fuzzing.failures(report.results)
    summary = fuzzing.table(report.results)
    assert not bad, summary + "\n" + "\n".join(fuzzing.describe(r) for r in bad[:20])


@pytest.mark.slow
def test_every_seed_is_exercised_both_ways(report, seeds):
    """Each seed file has variants that load and variants that are refused: the run
    reaches past the first check of every reader."""
    _, files = seeds
    outcomes = collections.Counter((r.variant.seed, r.outcome) for r in report.results)
    for name in files:
        assert outcomes[(name, "loaded fine")] >= 10, (name, outcomes)
        assert outcomes[(name, "clean error")] >= 50, (name, outcomes)
    assert len(report.results) == len(fuzzing.systematic_variants(files)) + RANDOM_VARIANTS
    assert report.peak_rss_mb < fuzzing.PEAK_RSS_MB


@pytest.mark.slow
def test_a_run_leaves_nothing_in_tmpdir(report, run_tmpdir):
    assert os.listdir(run_tmpdir) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed,label,message", [
    ("sg.bin", "args.maxn=2147483647", "maxn must be at most 100, got 2147483647"),
    ("sg.bin", "args.maxn=16777220", "maxn must be at most 100, got 16777220"),
    ("sup.bin", "args.wordNgrams=1073741824", "wordNgrams must be at most 100, got 1073741824"),
    ("sup.bin", "args.wordNgrams=0", "wordNgrams must be a positive integer, got 0"),
    ("floret.bin", "args.hashCount=0", "hashCount must be between 1 and 4 (floret's range), got 0"),
    ("floret_sup.bin", "args.hashCount=2147483647",
     "hashCount must be between 1 and 4 (floret's range), got 2147483647"),
    ("pruned.ftz", "args.bucket=2147483647",
     "bucket is 2147483647 in a pruned model (expected at most 67108864)"),
    ("full.ftz", "input.codesize=-2147483648", "the input codes: a negative size -2147483648"),
])
def test_reported_findings_are_clean_errors(report, seed, label, message):
    """The findings of the first fuzz run, by name: each is now one clear line."""
    result = _by_label(report, seed, label)
    assert result.outcome == "clean error"
    assert result.results["api"]["detail"].endswith(message)
    cli = [r for name, r in result.results.items() if name != "api"]
    assert all(r["status"] == "error" and r["detail"].endswith(message + "\n") for r in cli)


@pytest.mark.slow
@pytest.mark.parametrize("label,message", [
    ("header.dim=b'11111111111111111111'",
     "has an invalid dimension: dim 111111111111111111111111111111 is unreasonably large"),
    (r"row 1.word=b'a\x00b'",
     "contains a NUL byte: not a word-vector text file (or a word that no model can hold)"),
    ("row 1.value=b'1e999'",
     "has the value inf: values must be finite and within float32's range (about 3.4e38)"),
])
def test_vec_findings_are_clean_errors(report, label, message):
    result = _by_label(report, "sg.vec", label)
    assert result.outcome == "clean error"
    assert result.results["api"]["detail"].endswith(message)
    cli = [r for name, r in result.results.items() if name != "api"]
    assert all(r["status"] == "error" and r["detail"].endswith(message + "\n") for r in cli)


@pytest.mark.parametrize("code,stderr,status", [
    (0, "", "ok"),
    (0, "embtk: warning: 'x' is not in the vocabulary\n", "ok"),
    (0, "/x.py:9: RuntimeWarning: overflow\n  a = b * c\n", "unclean"),
    (1, "embtk: error: m.bin is truncated\n", "error"),
    (2, "embtk: error: no such option (see 'embtk --help')\n", "error"),
    (1, "embtk: error: a\nembtk: error: b\n", "unclean"),
    (1, "embtk: internal error: ValueError: x (set EMBTK_DEBUG=1 for a traceback)\n",
     "internal"),
    (1, "embtk: internal error: MemoryError: y (set EMBTK_DEBUG=1 for a traceback)\n",
     "memory"),
    (1, "Traceback (most recent call last):\n  ...\nValueError: z\n", "traceback"),
])
def test_command_line_outcomes_are_classified(code, stderr, status):
    assert fuzzing.classify_cli(code, stderr) == status


@pytest.mark.slow
def test_a_hanging_variant_is_killed_and_the_run_goes_on(seeds, tmp_path, monkeypatch):
    directory, files = seeds
    variants = fuzzing.plan(files, 3, SEED, systematic=False)
    variants[1].hang = True
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    report = fuzzing.run(variants, files, directory, workers=1, timeout=5.0)
    outcomes = [r.outcome for r in report.results]
    assert outcomes[1] == "timeout" and report.results[1].detail == "no answer within 5 s"
    assert outcomes[0] in fuzzing.ACCEPTABLE and outcomes[2] in fuzzing.ACCEPTABLE
    assert report.workers_started == 2
    assert os.listdir(tmp_path) == []  # the killed worker's files went with the parent's folder
