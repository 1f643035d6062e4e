"""The scripts in benchmarks/ keep working.

Every script answers --help (the list comes from the folder, so a new script is covered
without editing this file), and each one also does a tiny real run on tests/data, laid
out like the shared data folder. Nothing here reads ../shared/data, which CI lacks.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

import embtk

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py"))
DATA = Path(__file__).parent / "data"

# Word pairs and analogies over words of austen_small.txt; "zzqx" is out of vocabulary,
# and no adverb question can be answered (a part with nothing answered).
WORDSIM = [("he", "him", 8.5), ("have", "had", 7.0), ("at", "on", 5.5),
           ("Elinor", "Marianne", 6.0), ("very", "much", 4.0), ("would", "could", 8.0),
           ("zzqx", "he", 1.0)]
SIMLEX = [("old", "young", 2.0), ("he", "she", 6.0), ("said", "told", 7.5),
          ("every", "all", 6.5)]
ANALOGIES = (": family\nhe she him her\nhe she his her\n"
             ": gram1-adjective-to-adverb\nhappy happilyzz quick quicklyzz\n")


def run_script(name, *args, cwd, timeout=600):
    """Run benchmarks/NAME with this Python; the embtk command is put on PATH (speed.py
    times it), as in an activated environment."""
    env = {k: v for k, v in os.environ.items() if k != "EMBTK_DEBUG"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["DASK_TEMPORARY_DIRECTORY"] = str(cwd)  # a local cluster's scratch space: not in TMPDIR
    return subprocess.run([sys.executable, str(BENCHMARKS / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=timeout)


def _write_pairs(path, pairs):
    path.write_text("".join(f"{a}\t{b}\t{score}\n" for a, b, score in pairs))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A miniature of the shared data folder, built from tests/data."""
    root = tmp_path_factory.mktemp("bench") / "data"
    for folder in ("corpus", "similarity", "analogy", "classify/langid_gettext"):
        (root / folder).mkdir(parents=True)
    shutil.copy(DATA / "austen_small.txt", root / "corpus" / "en_small.txt")
    shutil.copy(DATA / "austen_small.txt", root / "corpus" / "en_corpus.txt")
    shutil.copy(DATA / "authors.train", root / "classify" / "langid_gettext" / "train.txt")
    shutil.copy(DATA / "authors.test", root / "classify" / "langid_gettext" / "test.txt")
    _write_pairs(root / "similarity" / "wordsim353.tsv", WORDSIM)
    _write_pairs(root / "similarity" / "simlex999.tsv", SIMLEX)
    (root / "analogy" / "questions-words.txt").write_text(ANALOGIES)
    return root


@pytest.fixture(scope="module")
def vectors(data):
    """A tiny skipgram model of the corpus, saved under the names eval_compare.py reads."""
    models = data.parent / "models"
    models.mkdir()
    model = embtk.train_unsupervised(str(data / "corpus" / "en_small.txt"), model="skipgram",
                                     dim=10, epoch=1, minCount=3, bucket=2000, minn=3, maxn=4,
                                     thread=1, seed=1, verbose=0)
    model.save_model(models / "en_corpus_embtk.bin")
    shutil.copy(models / "en_corpus_embtk.bin", models / "en_corpus_ft.bin")
    return models / "en_corpus_embtk.bin"


def test_the_benchmarks_folder_is_found():
    assert {"eval_compare.py", "glove_similarity.py", "quality.py", "speed.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_answers_help(script, tmp_path):
    done = run_script(script, "--help", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {script} "), done.stdout
    assert "--help" in done.stdout and done.stderr == ""


def spearman_in_vocab(model, pairs):
    """(Spearman of cosine vs human scores, pairs used), over pairs in the vocabulary."""
    vocab = set(model.words)
    used = [(a, b, s) for a, b, s in pairs if a in vocab and b in vocab]
    cosines = []
    for a, b, _ in used:
        u, v = model.get_word_vector(a), model.get_word_vector(b)
        cosines.append(float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))))
    return scipy.stats.spearmanr([s for _, _, s in used], cosines)[0], len(used)


def test_glove_similarity_on_a_tiny_model(data, vectors, tmp_path):
    done = run_script("glove_similarity.py", vectors, "--data", data, cwd=tmp_path)
    lines = done.stdout.splitlines()
    assert done.returncode == (1 if "FAIL" in done.stdout else 0), done.stderr
    model = embtk.load_model(vectors)
    assert lines[0] == f"model {vectors}: {len(model.words)} words, dim 10"
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines[3:]}
    assert sorted(rows) == ["simlex999", "wordsim353"]
    for name, pairs in (("wordsim353", WORDSIM), ("simlex999", SIMLEX)):
        rho, used = spearman_in_vocab(model, pairs)
        _, counts, shown, target = rows[name]
        assert counts == f"{used} / {len(pairs)}"
        assert float(shown) == pytest.approx(rho, abs=1e-4)
        assert target.endswith("PASS |" if float(shown) >= float(target.split()[1]) else "FAIL |")


@pytest.mark.slow
def test_eval_compare_on_tiny_models(data, vectors, tmp_path):
    out = tmp_path / "report.json"
    done = run_script("eval_compare.py", "--models", vectors.parent, "--data", data,
                      "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert list(report) == ["embtk", "fastText"]
    assert report["embtk"]["similarity"] == report["fastText"]["similarity"]  # same model
    sims = report["embtk"]["similarity"]
    assert sorted(sims) == ["simlex999.tsv", "wordsim353.tsv"]
    model = embtk.load_model(vectors)
    rho, used = spearman_in_vocab(model, WORDSIM)
    assert (sims["wordsim353.tsv"]["pairs"], sims["wordsim353.tsv"]["in_vocab"]) == (7, used)
    assert sims["wordsim353.tsv"]["spearman"] == pytest.approx(rho, abs=1e-9)
    analogies = report["embtk"]["analogies"]
    assert (analogies["total"]["questions"], analogies["total"]["answered"]) == (3, 2)
    assert analogies["syntactic"]["accuracy"] is None  # nothing answered: shown as "–"
    assert "| syntactic | – (0/0, skipped 1) | – (0/0, skipped 1) |" in done.stdout


@pytest.mark.slow
def test_quality_supervised_part_on_tiny_data(data, tmp_path, official_fasttext):
    out = tmp_path / "quality.json"
    done = run_script("quality.py", "--data", data, "--seeds", 1, "--thread", 1,
                      "--datasets", "langid_gettext", "--no-skipgram", "--json", out,
                      cwd=tmp_path)
    assert done.returncode == (1 if "FAIL" in done.stdout else 0), done.stderr
    report = json.loads(out.read_text())
    assert "skipgram" not in report
    results = report["supervised"]["langid_gettext"]
    for tool in ("fasttext", "embtk"):
        assert results[tool]["n"] == 800  # the lines of authors.test
        assert 0.6 < results[tool]["p_at_1"] <= 1.0, results  # four authors: far from chance
    assert "| **supervised langid_gettext** | P@1 (N=800)" in done.stdout


def test_quality_says_where_the_data_is_missing(tmp_path):
    done = run_script("quality.py", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert done.returncode == 1
    assert "shared data not found" in done.stderr and "nowhere" in done.stderr


@pytest.mark.slow
def test_speed_main_on_tiny_data(data, tmp_path):
    out = tmp_path / "speed.json"
    done = run_script("speed.py", "--data", data, "--corpus", data / "corpus" / "en_small.txt",
                      "--reps", 1, "--threads", 1, "--tools", "embtk", "--cases", "help",
                      "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["case"] for row in rows] == ["--help", "launch -> first training step (warm)"]
    for row in rows:
        assert list(row["tools"]) == ["embtk"] and row["tools"]["embtk"]["seconds"] > 0
    assert "| --help |" in done.stdout


@pytest.mark.slow
def test_speed_workers_on_tiny_data(data, tmp_path):
    # What speed.py runs in a fresh process per measurement, on settings small enough here.
    def worker(**job):
        done = run_script("speed.py", "--worker", json.dumps(job), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    sims = [str(data / "similarity" / name) for name in ("wordsim353.tsv", "simlex999.tsv")]
    langid = data / "classify" / "langid_gettext"
    sg = worker(kind="train", tool="embtk", mode="skipgram", thread=1, similarity=sims,
                params=dict(dim=10, epoch=1, minCount=3, bucket=2000, minn=3, maxn=4),
                input=str(data / "corpus" / "en_small.txt"), save=str(tmp_path / "sg.bin"))
    assert sorted(sg["quality"]) == ["simlex999", "wordsim353"] and sg["seconds"] > 0
    assert all(-1 <= rho <= 1 for rho in sg["quality"].values())
    loaded = worker(kind="load", tool="embtk", model=str(tmp_path / "sg.bin"), nn=True)
    assert loaded["load"] > 0 and loaded["first_query"] > 0 and loaded["seconds"] > 0
    sup = worker(kind="train", tool="embtk", mode="supervised", thread=1,
                 params=dict(dim=10, epoch=5, lr=0.5), input=str(langid / "train.txt"),
                 test=str(langid / "test.txt"), save=str(tmp_path / "sup.bin"))
    assert 0.6 < sup["quality"]["P@1"] <= 1.0
    predicted = worker(kind="predict-api", tool="embtk", model=str(tmp_path / "sup.bin"),
                       input=str(langid / "test.txt"))
    assert predicted["lines"] == 800 and predicted["seconds"] > 0


@pytest.mark.slow
def test_dask_predict_on_tiny_data(data, tmp_path):
    pytest.importorskip("distributed")
    model = tmp_path / "small.bin"
    embtk.train_supervised(str(data / "classify" / "langid_gettext" / "train.txt"), dim=10,
                           epoch=2, thread=1, verbose=0).save_model(model)
    out = tmp_path / "dask.json"
    done = run_script("dask_predict.py", "--data", data, "--model", model, "--repeat", 2,
                      "--workers", "", "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["lines"] == 1600 and report["predict_files_same_bytes"] is True
    assert report["predict_seconds"] > 0 and report["predict_files_local_seconds"] > 0
    assert report["pickled_loaded_bytes"] < 2000 < report["model_file_bytes"]
    assert report["model_file_bytes"] < report["pickled_in_memory_bytes"]
    assert "outputs identical to predict: True" in done.stdout


@pytest.mark.slow
def test_scaling_on_tiny_data(data, tmp_path, official_fasttext):
    out = tmp_path / "scaling.json"
    done = run_script("scaling.py", "--data", data, "--work", tmp_path / "work", "--sizes", "1,2",
                      "--threads", 1, "--set", "dim=5", "--set", "bucket=1000", "--json", out,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["case"], r["times"]) for r in rows] == [
        ("skipgram", 1), ("skipgram", 2), ("supervised", 1), ("supervised", 2)]
    assert rows[1]["megabytes"] == pytest.approx(2 * rows[0]["megabytes"])
    for row in rows:
        for tool in ("fasttext", "embtk"):
            assert row[tool]["peak_rss_mb"] > 10 and row[tool]["train_seconds"] > 0
    assert "| supervised | 2x |" in done.stdout


@pytest.mark.slow
def test_continued_on_tiny_data(data, tmp_path):
    out = tmp_path / "continued.json"
    done = run_script("continued.py", "--data", data, "--epoch", 1, "--thread", 1,
                      "--new-words", 2, "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())["results"]
    for name in ("A", "A->B", "A+B"):
        assert 0 < results["classify"][name]["p_at_1"] <= 1
        assert -1 <= results["words"][name]["mean_spearman"] <= 1
    assert results["words"]["A->B"]["words"] > results["words"]["A"]["words"]
    assert len(results["words"]["new words"]) == 2
    assert "A->B minus A+B" in done.stdout


@pytest.mark.slow
def test_batched_on_tiny_data(data, tmp_path):
    out = tmp_path / "batched.json"
    done = run_script("batched.py", "--data", data, "--corpus", data / "corpus" / "en_small.txt",
                      "--batches", "0,4", "--seeds", 2, "--threads", "1", "--native", "",
                      "--lock", "", "--set", "dim=10", "--set", "epoch=1", "--set", "minCount=3",
                      "--set", "bucket=2000", "--set", "maxn=4", "--json", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [(r["config"], r["seed"]) for r in report["runs"]] == [
        ("embtk default", 0), ("embtk default", 1), ("embtk -batch 4", 0), ("embtk -batch 4", 1)]
    for run in report["runs"]:
        assert run["words_per_sec_thread"] > 0 and -1 <= run["spearman"]["mean"] <= 1
        assert sorted(run["spearman"]["sets"]) == ["simlex999", "wordsim353"]
    rows = {row["config"]: row for row in report["summary"]}
    batched = rows["embtk -batch 4"]
    assert batched["seeds"] == 2 and batched["ratio_t1"] is None  # no native binary given
    assert batched["mean_spearman"] == pytest.approx(
        np.mean([r["spearman"]["mean"] for r in report["runs"][2:]]))
    assert batched["spearman_minus_default"] == pytest.approx(
        batched["mean_spearman"] - rows["embtk default"]["mean_spearman"])
    assert "| embtk -batch 4 |" in done.stdout

@pytest.mark.slow
def test_first_run_on_a_tiny_script(vectors, tmp_path):
    # A script laid out as the quickstart: set-up, an untimed echo, one embtk command at
    # the end of a pipe spread over lines.
    shutil.copy(vectors, tmp_path / "model.bin")
    script = tmp_path / "first.sh"
    script.write_text('#!/bin/sh\nset -e\ncd "$(dirname "$0")"\necho "== not timed"\n'
                      "printf '%s\\n' he \\\n  she |\n  embtk nn model.bin 2\n")
    out = tmp_path / "first.json"
    done = run_script("first_run.py", "--script", script, "--top", 50, "--json", out,
                      "--settle", 0, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [row["command"] for row in report["rows"]] == ["embtk nn model.bin 2"]
    (rep,) = report["reps"]
    compiled = {event["function"] for event in rep["compiles"][0]}
    assert "embtk.vectors.nearest_words" in compiled  # cold: compiled from an empty cache
    assert rep["warm_compile_count"] == [0]  # warm: everything loaded from that cache
    for phase in ("cold", "warm"):
        (wall, cpu, user), = rep[phase]
        assert wall > 0 and cpu >= user > 0
    assert "| `embtk nn model.bin 2` |" in done.stdout and "| total |" in done.stdout
    assert "| embtk.vectors.nearest_words |" in done.stdout


def test_first_run_says_when_a_script_has_no_embtk_command(tmp_path):
    script = tmp_path / "none.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    done = run_script("first_run.py", "--script", script, cwd=tmp_path)
    assert done.returncode == 1 and "runs no embtk command" in done.stderr


@pytest.mark.slow
def test_elmo_speed_on_a_tiny_model(data, tmp_path):
    """elmo_speed.py end to end on a tiny random model (torch's side only if installed)."""
    pytest.importorskip("h5py")
    import importlib.util

    args = ["--data", data, "--sizes", "tiny", "--lines", 30, "--threads", "1",
            "--workdir", tmp_path / "models"]
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        args.append("--no-torch")
    r = run_script("elmo_speed.py", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("| tiny | 1 | 30 |"))
    if has_torch:
        assert float(row.split("|")[-2]) < 1e-4  # both tools give the same vectors
    assert "tiny, 1 thread" in r.stdout and "token encoder" in r.stdout


def test_elmo_speed_says_where_the_data_is_missing(tmp_path):
    r = run_script("elmo_speed.py", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert r.returncode == 2 and "missing" in r.stderr


def test_floret_says_where_the_data_is_missing(tmp_path):
    r = run_script("floret.py", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("missing") and "nowhere" in r.stderr
    assert "Traceback" not in r.stderr


def _elmo_train():
    """benchmarks/elmo_train.py as a module (its pure parts: split, vocabulary, n-grams)."""
    import importlib.util

    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("elmo_train", BENCHMARKS / "elmo_train.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:  # the script puts its folder on sys.path too: none may stay, or the folder's
        while str(BENCHMARKS) in sys.path:  # floret.py would hide the floret package
            sys.path.remove(str(BENCHMARKS))
    return module


def test_elmo_train_holds_out_the_last_lines():
    et = _elmo_train()
    lines = [[f"w{i}"] for i in range(40)]
    train, held = et.split_held_out(lines)
    assert train == lines[:38] and held == lines[38:]            # 5% of 40
    assert et.split_held_out(lines[:3]) == (lines[:2], lines[2:3])  # at least one line
    with pytest.raises(ValueError):
        et.split_held_out(lines[:1])


def test_elmo_train_ngram_baselines_by_hand():
    """Train "a b" and "a", vocabulary <S> </S> <UNK> a b (V = 5); held out "b a" and "c a"
    (c is <UNK>). The forward predictions of training: a|<S> b|a </S>|b a|<S> </S>|a."""
    et = _elmo_train()
    vocab = et.Vocabulary([["a", "b"], ["a"]], min_count=1)
    assert vocab.words == ["<S>", "</S>", "<UNK>", "a", "b"]
    train = [vocab.ids(["a", "b"]), vocab.ids(["a"])]
    held = [vocab.ids(["b", "a"])]
    # add-one unigram: counts a 2, b 1, </S> 2 of N = 5; p = (c + 1) / 10
    assert et.unigram_perplexity(train, held, 5) == pytest.approx((0.2 * 0.3 * 0.3) ** (-1 / 3))
    unknown = [vocab.ids(["c", "a"])]
    assert et.unigram_perplexity(train, unknown, 5) == pytest.approx((0.1 * 0.3 * 0.3) ** (-1 / 3))
    # Kneser-Ney, D = 0.5: bigram types <S>a (x2), ab, b</S>, a</S>: N(. .) = 4;
    # continuation N(. a) = 1, N(. b) = 1, N(. </S>) = 2, three words with one:
    # p1(a) = p1(b) = (0.5 + 0.5 * 3 / 5) / 4 = 0.2, p1(</S>) = 0.45, the others 0.075.
    # b|<S>: c(<S>) = 2, N(<S> .) = 1 -> 0.5 * 1 * 0.2 / 2 = 0.05
    # a|b:   c(b) = 1,   N(b .) = 1   -> 0.5 * 1 * 0.2 / 1 = 0.1
    # </S>|a: c(a) = 2, c(a </S>) = 1, N(a .) = 2 -> (0.5 + 0.5 * 2 * 0.45) / 2 = 0.475
    kn = et.kneser_ney_perplexity(train, held, 5, discount=0.5)
    assert kn == pytest.approx((0.05 * 0.1 * 0.475) ** (-1 / 3))
    # backward: held "b a" read right to left predicts a|</S>, b|a, <S>|b
    # training backward bigrams: </S>b, ba, a<S>, </S>a, a<S>: a<S> twice, N(. .) = 4,
    # N(. a) = 2 (after b and </S>), N(. b) = N(. <S>) = 1 -> p1(a) = 0.45, p1(b) = 0.2;
    # a|</S>: c(</S>) = 2, c(</S> a) = 1, N(</S> .) = 2 -> (0.5 + 0.5 * 2 * 0.45) / 2 = 0.475
    # b|a: c(a) = 2, c(a b) = 0, N(a .) = 1 -> 0.5 * 1 * 0.2 / 2 = 0.05
    # <S>|b: c(b) = 1, c(b <S>) = 0, N(b .) = 1 -> 0.5 * 0.2 = 0.1
    backward = et.kneser_ney_perplexity(train, held, 5, backward=True, discount=0.5)
    assert backward == pytest.approx((0.475 * 0.05 * 0.1) ** (-1 / 3))


def test_elmo_train_kneser_ney_is_a_distribution():
    """Every context's probabilities over the vocabulary add up to one (seen and unseen
    contexts), with the discount from the counts of counts."""
    et = _elmo_train()
    lines = [line.split() for line in (DATA / "austen_small.txt").read_text().splitlines()
             if line.split()][:300]
    vocab = et.Vocabulary(lines, min_count=2)
    train = [vocab.ids(t) for t in lines]
    v = len(vocab)
    for context in (0, vocab.index["the"], vocab.index["<UNK>"], 1):
        # one held-out "sentence" per word w: the pair (context, w)
        held = [np.array([context, w]) for w in range(v)]
        probabilities = [1 / et.kneser_ney_perplexity(train, [h], v) for h in held]
        assert sum(probabilities) == pytest.approx(1.0, rel=1e-9)


def test_elmo_train_log_uniform_sampler():
    """Distinct ids, the frequent ones nearly always drawn; the expected counts of all ids
    add up to about the number drawn; the whole vocabulary uncorrected when S >= V."""
    et = _elmo_train()
    rng = np.random.default_rng(0)
    ids, log_expected = et.log_uniform(1000, 300, rng)
    assert len(set(ids.tolist())) == 300 and ids.min() >= 0 and ids.max() < 1000
    assert set(range(10)) <= set(ids.tolist())
    assert np.exp(log_expected(np.arange(1000))).sum() == pytest.approx(300, rel=0.1)
    hits = np.zeros(1000)
    for _ in range(200):
        drawn, log_expected = et.log_uniform(1000, 300, rng)
        hits[drawn] += 1
    expected = np.exp(log_expected(np.arange(1000)))
    assert np.abs(hits[[50, 200, 900]] / 200 - expected[[50, 200, 900]]).max() < 0.12
    ids, log_expected = et.log_uniform(50, 50, rng)
    assert ids.tolist() == list(range(50)) and not log_expected(ids).any()


@pytest.mark.slow
def test_elmo_train_torch_reference_learns(tmp_path):
    """The torch biLM of elmo_train.py on a tiny size: its sampled softmax trains the full
    softmax: held-out perplexity falls to a fifth of the untrained model's in both
    directions (beating the unigram model takes more tokens than a test should)."""
    pytest.importorskip("torch")
    et = _elmo_train()
    lines = et.read_lines(DATA / "austen_small.txt", 600)
    train, held = et.split_held_out(lines)
    spec = {"threads": 1, "seed": 1, "train": str(et.write_lines(tmp_path / "t.txt", train)),
            "held": str(et.write_lines(tmp_path / "h.txt", held)), "min_count": 2,
            "batch": 16, "bptt": 10, "dropout": 0.0, "lr": 0.2, "samples": 200, "clip": 10.0,
            "options": {"lstm": {"use_skip_connections": True, "projection_dim": 16,
                                 "cell_clip": 3, "proj_clip": 3, "dim": 32, "n_layers": 2},
                        "char_cnn": {"activation": "relu", "filters": [[1, 8], [2, 8]],
                                     "n_highway": 1, "embedding": {"dim": 8},
                                     "n_characters": 262, "max_characters_per_token": 20}}}
    untrained = et.torch_train({**spec, "epochs": 0})
    trained = et.torch_train({**spec, "epochs": 2})
    assert untrained["tokens"] == 0 and trained["tokens"] > 0
    assert trained["loss_last"] < trained["loss_first"]
    for direction in ("forward", "backward"):
        assert trained[direction] < 0.2 * untrained[direction]


@pytest.mark.slow
def test_elmo_train_end_to_end_on_tiny_data(data, tmp_path):
    """elmo_train.py on 300 lines at a tiny size: the baselines' table, every trainer that
    is installed, the classification table and the JSON."""
    import importlib.util

    args = ["--data", data, "--lines", 300, "--threads", 1, "--filters", "1:8,2:8",
            "--char-dim", 8, "--proj-dim", 8, "--lstm-dim", 16, "--bptt", 5, "--batch", 8,
            "--samples", 50, "--max-chars", 20, "--classify", "langid_gettext",
            "--classify-lines", 100, "--json", tmp_path / "out.json"]
    has_torch = importlib.util.find_spec("torch") is not None
    if not has_torch:
        args.append("--skip-torch")
    r = run_script("elmo_train.py", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| bigram (interpolated Kneser-Ney) |" in r.stdout
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["lines"] == 300 and report["held_lines"] == 15
    unigram, bigram = report["baselines"].values()
    assert min(bigram) < min(unigram)
    row = report["runs"][0]
    assert ("torch" in row) == has_torch and ("embtk" in row) == hasattr(embtk, "train_elmo")
    for tool in ("torch", "embtk"):
        if tool in row:
            assert row[tool]["tokens"] > 0 and row[tool]["mean"] > 1
    (name, _, tested, majority, scores), = report["classify"]
    assert name == "langid_gettext" and tested == 50 and scores["fastText"] > majority
