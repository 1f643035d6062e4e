"""Evaluation: correlations against SciPy, similarity coverage and OOV-through-subwords
scoring, analogies against a brute-force answer, test-label reports, CLI output and errors."""

import json
import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from hypothesis import example, given, settings
from hypothesis import strategies as st

import embtk
from embtk.errors import EmbtkError
from embtk.evaluation import (average_ranks, classification_report, evaluate_analogies,
                              evaluate_similarity, load_vectors, pearson, read_similarity_pairs,
                              spearman)
from conftest import assert_one_line_error, run

DATA = Path(__file__).parent / "data"


# ----------------------------------------------------------------------- correlations
def _scores(draw_ties):
    # Scores as data sets have them (a few decimals): well-conditioned, so that two
    # correct float64 computations agree to 1e-9.
    values = (st.integers(0, 4).map(float) if draw_ties
              else st.integers(-10 ** 5, 10 ** 5).map(lambda i: i / 100))
    return st.integers(2, 60).flatmap(
        lambda n: st.tuples(st.lists(values, min_size=n, max_size=n),
                            st.lists(values, min_size=n, max_size=n)))


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.booleans().flatmap(_scores))
@example(([0.0, 0.0, 0.01], [5.65, 5.65, 5.65]))  # the mean of a constant is not exact
def test_correlations_equal_scipy(pair):
    x, y = (np.array(v) for v in pair)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(pearson(x, y)) and math.isnan(spearman(x, y))
        return
    assert pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0], abs=1e-9)
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40))
def test_ties_get_their_average_rank(values):
    np.testing.assert_array_equal(average_ranks(values), scipy.stats.rankdata(values))


def test_spearman_by_hand_with_a_tie():
    # ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): centred dot 4.5, norms sqrt(4.5), sqrt(5)
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(4.5 / math.sqrt(4.5 * 5),
                                                                     abs=1e-12)
    assert average_ranks([5, 1, 5, 5]).tolist() == [3.0, 1.0, 3.0, 3.0]


def test_correlations_are_blind_to_a_quadratic_relation():
    x = np.array([-2.0, -1, 0, 1, 2])
    assert pearson(x, x ** 2) == pytest.approx(0, abs=1e-12)
    assert spearman(x, x ** 2) == pytest.approx(0, abs=1e-12)
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)


def test_correlation_input_errors():
    with pytest.raises(EmbtkError, match="at least 2"):
        pearson([1.0], [2.0])
    with pytest.raises(EmbtkError, match="equal length"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])


# --------------------------------------------------------------------- similarity data
def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_similarity_file_tab_space_comments(tmp_path):
    data = write(tmp_path / "d.tsv", "# a comment\n\ncat\tdog\t7.5\r\n  car  bus 3 \n"
                                     "tiger\tcat\t-1e0\n")
    pairs = read_similarity_pairs(data)
    assert pairs.first == [b"cat", b"car", b"tiger"]
    assert pairs.second == [b"dog", b"bus", b"cat"]
    assert pairs.human.tolist() == [7.5, 3.0, -1.0]


@pytest.mark.parametrize("text, message", [
    ("cat\tdog\t1\ncat dog\n", "line 2 of .* should be 'word1 word2 score'"),
    ("cat dog high\n", "line 1 of .*'cat dog high'"),
    ("cat dog nan\n", "line 1"),
    ("# only a comment\n\n", "has no word pairs"),
])
def test_similarity_file_errors(tmp_path, text, message):
    with pytest.raises(EmbtkError, match=message):
        read_similarity_pairs(write(tmp_path / "bad.tsv", text))


def test_missing_similarity_file(tmp_path):
    with pytest.raises(EmbtkError, match="no such file|cannot"):
        read_similarity_pairs(tmp_path / "nope.tsv")


# ---------------------------------------------------------------- hand-made vectors
WORDS = ["cat", "dog", "car", "bus", "Tiger", "tiger"]
VECTORS = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 2], [0, 1, 2], [1, 0, 1], [0, 3, 0]],
                   dtype=np.float32)


def write_vec(path: Path, header: bool) -> Path:
    lines = [f"{len(WORDS)} 3"] if header else []
    lines += [w + " " + " ".join(f"{x:g}" for x in v) for w, v in zip(WORDS, VECTORS)]
    return write(path, "\n".join(lines) + "\n")


def cosine(u, v):
    return float(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))


@pytest.fixture
def sim_data(tmp_path):
    return write(tmp_path / "sim.tsv", "cat\tdog\t8\ncar\tbus\t9\ncat\tcar\t1\n"
                                       "dog\tbus\t2\nTIGER\tcat\t6\nzebra\tcat\t5\n")


@pytest.mark.parametrize("header", [True, False])
def test_similarity_counts_and_values(tmp_path, sim_data, header):
    result = evaluate_similarity(str(write_vec(tmp_path / "v.vec", header)), sim_data)
    assert (result.pairs, result.in_vocab) == (6, 4)
    v = dict(zip(WORDS, VECTORS))
    cos = [cosine(v["cat"], v["dog"]), cosine(v["car"], v["bus"]), cosine(v["cat"], v["car"]),
           cosine(v["dog"], v["bus"])]
    human = [8, 9, 1, 2]
    assert result.pearson == pytest.approx(scipy.stats.pearsonr(human, cos)[0], abs=1e-6)
    assert result.spearman == pytest.approx(scipy.stats.spearmanr(human, cos)[0], abs=1e-9)
    assert result.subword_pairs is None  # a .vec cannot build unknown words
    assert result.coverage == pytest.approx(4 / 6)
    from_pair = evaluate_similarity((WORDS, VECTORS), sim_data)
    assert from_pair.spearman == result.spearman


def test_lower_maps_to_the_most_frequent_spelling(tmp_path, sim_data):
    vec = write_vec(tmp_path / "v.vec", True)
    plain = evaluate_similarity(str(vec), sim_data)
    lowered = evaluate_similarity(str(vec), sim_data, lower=True)
    assert lowered.in_vocab == plain.in_vocab + 1  # TIGER -> Tiger (row 4, before tiger)
    i = 4
    expected = cosine(VECTORS[4], VECTORS[0])  # Tiger, not tiger
    assert lowered.cosine[i] == pytest.approx(expected, abs=1e-6)


def test_empty_intersection_is_an_error(tmp_path):
    data = write(tmp_path / "other.tsv", "zebra\tlion\t3\nowl\tbat\t4\n")
    with pytest.raises(EmbtkError, match="0 of its 2 pairs have both words in the vocabulary"):
        evaluate_similarity((WORDS, VECTORS), data)


# ------------------------------------------------------------ trained models (subwords)
FRUIT = "apple banana cherry grape melon peach plum pear lemon lime".split()
VEHICLE = "car truck bus train bike boat plane tram van taxi".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("eval") / "corpus.txt"
    with open(path, "w") as f:
        for _ in range(300):
            group = rng.choice([FRUIT, VEHICLE])
            f.write(" ".join(rng.choice(group) for _ in range(8)) + "\n")
    return path


def skipgram(corpus, **options):
    settings = dict(model="skipgram", dim=8, epoch=2, minCount=1, bucket=2000, thread=1,
                    verbose=0, seed=1, minn=2, maxn=4)
    settings.update(options)
    return embtk.train_unsupervised(str(corpus), **settings)


@pytest.fixture(scope="module")
def sg_model(corpus, tmp_path_factory):
    model = skipgram(corpus)
    folder = tmp_path_factory.mktemp("sg")
    model.save_model(str(folder / "sg.bin"))
    model.save_vectors(str(folder / "sg.vec"))
    return model, folder / "sg.bin", folder / "sg.vec"


@pytest.fixture(scope="module")
def oov_data(tmp_path_factory):
    text = ("apple\tbanana\t9\napple\tcar\t1\nbus\ttruck\t8\npear\ttaxi\t2\n"
            "apples\tbanana\t8.5\ncars\tbuses\t7\nplumm\tvan\t1.5\n")
    return write(tmp_path_factory.mktemp("oov") / "oov.tsv", text)


def test_oov_pairs_scored_through_subwords(sg_model, oov_data):
    model, bin_path, vec_path = sg_model
    result = evaluate_similarity(str(bin_path), oov_data)
    assert (result.pairs, result.in_vocab, result.subword_pairs) == (7, 4, 7)
    pairs = read_similarity_pairs(oov_data)
    cos = [cosine(model.get_word_vector(a.decode()), model.get_word_vector(b.decode()))
           for a, b in zip(pairs.first, pairs.second)]
    np.testing.assert_allclose(result.subword_cosine, cos, atol=1e-5)
    assert result.subword_spearman == pytest.approx(
        scipy.stats.spearmanr(pairs.human, result.subword_cosine)[0], abs=1e-9)
    assert result.subword_pearson == pytest.approx(scipy.stats.pearsonr(pairs.human, cos)[0],
                                                   abs=1e-5)
    # In vocabulary, the .bin agrees with its .vec (printed with 5 digits) and the model.
    from_vec = evaluate_similarity(str(vec_path), oov_data)
    assert from_vec.in_vocab == 4 and from_vec.subword_pairs is None
    np.testing.assert_allclose(from_vec.cosine[:4], cos[:4], atol=1e-4)
    assert evaluate_similarity(model, oov_data).spearman == result.spearman


def test_no_subword_figures_without_char_ngrams(corpus, oov_data):
    result = evaluate_similarity(skipgram(corpus, maxn=0), oov_data)
    assert result.in_vocab == 4
    assert result.subword_pairs is None and result.subword_spearman is None


# --------------------------------------------------------------------------- analogies
def brute_force(words, vectors, questions, top, method):
    """A question at a time, in plain Python: the reference for the batched version."""
    unit = vectors[:top] / np.linalg.norm(vectors[:top], axis=1, keepdims=True)
    index = {w: i for i, w in enumerate(words[:top])}
    outcome = []
    for q in questions:
        if not all(w in index for w in q):
            outcome.append(None)
            continue
        a, b, c, d = (index[w] for w in q)
        best, best_score = -1, -np.inf
        for i in range(len(unit)):
            if i in (a, b, c):
                continue
            if method == "3cosadd":
                score = unit[i] @ (unit[b] - unit[a] + unit[c])
            else:
                sa, sb, sc = ((unit[i] @ unit[j] + 1) / 2 for j in (a, b, c))
                score = sb * sc / (sa + 1e-3)
            if score > best_score:
                best, best_score = i, score
        outcome.append(best == d)
    return outcome


@pytest.mark.parametrize("memory", [1 << 28, 3 * 4 * 50 * 7])  # one batch; batches of 7
@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogies_match_brute_force(tmp_path, method, memory, monkeypatch):
    monkeypatch.setattr("embtk.evaluation._ANALOGY_MEMORY", memory)
    rng = np.random.default_rng(7)
    words = [f"w{i}" for i in range(60)]
    vectors = rng.normal(size=(60, 6)).astype(np.float32)
    # Plant answers: w{i+1} - w{i} + w{j} = w{j+1} for a few pairs.
    offset = rng.normal(size=6).astype(np.float32)
    for i in range(0, 20, 2):
        vectors[i + 1] = vectors[i] + offset
    questions = [(f"w{i}", f"w{i + 1}", f"w{j}", f"w{j + 1}")
                 for i in range(0, 20, 2) for j in range(0, 20, 2) if i != j]
    questions += [("w0", "w1", "w2", "w59"), ("w58", "w1", "w2", "w3")]  # beyond top=50
    lines = [": first-section"] + [" ".join(q) for q in questions[:40]]
    lines += [": gram-second"] + [" ".join(q) for q in questions[40:]]
    path = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    result = evaluate_analogies((words, vectors), path, top=50, method=method)
    expected = brute_force(words, vectors, questions, 50, method)
    first, second = result.sections
    assert first.correct == sum(x is True for x in expected[:40])
    assert second.correct == sum(x is True for x in expected[40:])
    assert (first.skipped, second.skipped) == (0, 2)
    assert (result.semantic.answered, result.syntactic.answered) == (40, len(questions) - 42)
    assert result.total.correct == sum(x is True for x in expected) > 0
    assert result.total.questions == len(questions)


def test_analogy_by_hand(tmp_path):
    words = ["man", "woman", "king", "queen", "apple"]
    vectors = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, -1]], dtype=np.float32)
    path = write(tmp_path / "q.txt", ": family\nman woman king queen\nMan Woman King Queen\n")
    result = evaluate_analogies((words, vectors), path)
    assert (result.total.correct, result.total.answered, result.total.skipped) == (1, 1, 1)
    assert evaluate_analogies((words, vectors), path, lower=True).total.correct == 2
    assert result.total.accuracy == 1.0


@pytest.mark.parametrize("text, message", [
    (": s\na b c\n", "line 2 of .* should be ': section' or four words"),
    ("\n\n", "has no analogy questions"),
])
def test_analogy_file_errors(tmp_path, text, message):
    with pytest.raises(EmbtkError, match=message):
        evaluate_analogies((WORDS, VECTORS), write(tmp_path / "q.txt", text))


def test_analogy_option_errors(tmp_path):
    path = write(tmp_path / "q.txt", "cat dog car bus\n")
    with pytest.raises(EmbtkError, match="unknown analogy method"):
        evaluate_analogies((WORDS, VECTORS), path, method="cosine")
    with pytest.raises(EmbtkError, match="top must be"):
        evaluate_analogies((WORDS, VECTORS), path, top=0)


def test_huge_but_finite_vectors_are_scaled_without_warnings(tmp_path, sim_data):
    """Float32 values above ~1.8e19 are valid but their squares overflow float32: the
    lengths were inf, every cosine 0, and numpy's RuntimeWarnings reached stderr."""
    import warnings

    lines = ["cat 3e19 4e19 0", "dog 3e38 3e38 0", "car 0 0 1e20", "bus 0 1e-3 1e20"]
    path = write(tmp_path / "huge.vec", "\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unit = load_vectors(path).unit
        result = evaluate_similarity(path, sim_data)
    s = np.float32(np.sqrt(0.5))
    assert unit[:3].tolist() == [[0.6000000238418579, 0.800000011920929, 0.0], [s, s, 0.0],
                                 [0.0, 0.0, 1.0]]
    assert (result.pairs, result.in_vocab) == (6, 4)
    assert result.spearman == pytest.approx(scipy.stats.spearmanr(
        [8, 9, 1, 2], [float(unit[0] @ unit[1]), float(unit[2] @ unit[3]),
                       float(unit[0] @ unit[2]), float(unit[1] @ unit[3])])[0], abs=1e-9)


def test_load_vectors_rejects_mismatched_pair():
    with pytest.raises(EmbtkError, match="one row per word"):
        load_vectors((["a", "b"], np.zeros((3, 2))))


# --------------------------------------------------------------------------------- API
def test_module_api():
    assert {"evaluate_similarity", "evaluate_analogies"} <= set(embtk.__all__)
    assert embtk.evaluate_similarity.__module__ == "embtk.api"


def test_api_on_vectors(sim_data):
    result = embtk.evaluate_similarity((WORDS, VECTORS), sim_data)
    assert result.in_vocab == 4
    assert json.loads(json.dumps(result.to_dict()))["pairs"] == 6


# --------------------------------------------------------------------------------- CLI
def test_cli_similarity_table_and_json(sg_model, oov_data):
    _, bin_path, vec_path = sg_model
    code, out, err = run("eval-similarity", bin_path, oov_data)
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[0].split()[:5] == ["data", "pairs", "in", "vocab", "Pearson"]
    assert "OOV via subwords" in lines[0] and lines[-1].startswith("OOV via subwords:")
    result = evaluate_similarity(str(bin_path), oov_data)
    fields = lines[1].split()
    assert fields[:3] == ["oov.tsv", "7", "4"]
    assert fields[4:6] == [f"{result.pearson:.4f}", f"{result.spearman:.4f}"]
    assert fields[-3:] == ["7", f"{result.subword_pearson:.4f}", f"{result.subword_spearman:.4f}"]

    code, out, err = run("eval-similarity", vec_path, oov_data, oov_data, "-json")
    assert code == 0, err
    got = json.loads(out)
    assert [r["in_vocab"] for r in got["results"]] == [4, 4]
    assert got["results"][0]["subword_spearman"] is None
    code, out, _ = run("eval-similarity", vec_path, oov_data)
    assert b"OOV via subwords" not in out


def test_cli_analogies(tmp_path):
    vec = write_vec(tmp_path / "v.vec", True)
    questions = write(tmp_path / "q.txt", ": animals\ncat dog car bus\n: gram-x\ndog cat bus car\n"
                                         "cat zebra car bus\n")
    code, out, err = run("eval-analogies", vec, questions, "-json", "-method", "3cosmul")
    assert code == 0, err
    got = json.loads(out)
    assert got["method"] == "3cosmul" and got["total"]["skipped"] == 1
    assert [s["name"] for s in got["sections"]] == ["animals", "gram-x"]
    expected = evaluate_analogies(str(vec), questions, method="3cosmul").total.correct
    assert got["total"]["correct"] == expected
    code, out, err = run("eval-analogies", vec, questions, "-top", 3)
    assert code == 0, err
    text = out.decode()
    assert "semantic" in text and "syntactic" in text
    assert "3 of 3 questions skipped" in text  # bus (row 3) is outside the top 3


@pytest.mark.parametrize("args, message", [
    (["eval-similarity", "{vec}", "{missing}"], "no such file"),
    (["eval-similarity", "{missing}", "{data}"], "no such file"),
    (["eval-similarity", "{vec}", "{bad}"], "line 2 of"),
    (["eval-similarity", "{vec}", "{disjoint}"], "0 of its 1 pairs"),
    (["eval-analogies", "{vec}", "{bad}"], "should be ': section' or four words"),
    (["eval-analogies", "{vec}", "{data}", "-top", "0"], "-top must be"),
    (["eval-similarity", "{data}", "{data}"], "line 1 of"),  # not vectors
])
def test_cli_bad_input_is_one_line(tmp_path, sim_data, args, message):
    names = {"vec": write_vec(tmp_path / "v.vec", True), "missing": tmp_path / "missing.tsv",
             "data": sim_data, "bad": write(tmp_path / "bad.tsv", "cat\tdog\t1\ncat\tdog\n"),
             "disjoint": write(tmp_path / "dis.tsv", "zebra\tlion\t3\n")}
    code, out, err = run(*[a.format(**names) for a in args])
    assert_one_line_error(code, err)
    assert message in err or __import__("re").search(message, err), err


def test_plot_without_matplotlib_says_how_to_install(tmp_path, sim_data, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    vec = write_vec(tmp_path / "v.vec", True)
    for args in (["eval-similarity", vec, sim_data], ["eval-analogies", vec, sim_data]):
        code, out, err = run(*args, "-plot", tmp_path / "p.png")
        assert_one_line_error(code, err)
        assert "pip install 'embtk[plot]'" in err
        assert not (tmp_path / "p.png").exists() and out == b""


@pytest.mark.slow
def test_plots_are_written(tmp_path, sim_data, sg_model, oov_data):
    pytest.importorskip("matplotlib")
    vec = write_vec(tmp_path / "v.vec", True)
    questions = write(tmp_path / "q.txt", ": s\ncat dog car bus\n")
    _, bin_path, _ = sg_model
    for args in (["eval-similarity", bin_path, oov_data, oov_data],
                 ["eval-analogies", vec, questions]):
        png = tmp_path / f"{args[0]}.png"
        code, out, err = run(*args, "-plot", png)
        assert code == 0, err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------- classification
@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    model = embtk.train_supervised(str(DATA / "authors.train"), dim=10, epoch=5, lr=0.5,
                                   thread=1, verbose=0, seed=1)
    path = tmp_path_factory.mktemp("clf") / "clf.bin"
    model.save_model(str(path))
    return model, path


def gold_and_top(model, path):
    gold, top = [], []
    for line in Path(path).read_text().splitlines():
        labels = [t for t in line.split() if t.startswith("__label__")]
        words = " ".join(t for t in line.split() if not t.startswith("__label__"))
        gold.append(labels)
        top.append(model.predict([words])[0][0][0])
    return gold, top


def test_report_numbers(classifier):
    model, _ = classifier
    test = DATA / "authors.test"
    report = classification_report(model, str(test), confusion=True)
    n, p, r = model.test(str(test))
    assert report.examples == n
    assert report.micro.precision == pytest.approx(p) and report.micro.recall == pytest.approx(r)
    per_label = model.test_label(str(test))
    assert report.macro.f1 == pytest.approx(np.mean([v["f1score"] for v in per_label.values()]))
    assert report.macro.precision == pytest.approx(
        np.mean([v["precision"] for v in per_label.values()]))
    # The confusion matrix, against one prediction per line through the public API.
    gold, top = gold_and_top(model, test)
    names = model.labels
    expected = np.zeros((len(names), len(names) + 1), dtype=np.int64)
    for labels, predicted in zip(gold, top):
        for g in labels:
            expected[names.index(g), names.index(predicted)] += 1
    np.testing.assert_array_equal(report.confusion, expected)
    assert np.trace(report.confusion) == report.micro.correct
    supports = [s.support for s in report.sorted_labels("support")]
    assert supports == sorted(supports, reverse=True)
    f1s = [s.f1 for s in report.sorted_labels("f1")]
    assert f1s == sorted(f1s, reverse=True)


def test_cli_test_label_extras(classifier):
    model, path = classifier
    test = DATA / "authors.test"
    code, plain, err = run("test-label", path, test)
    assert code == 0, err
    report = classification_report(model, str(test), confusion=True)

    code, out, err = run("test-label", path, test, "-report", "-sort", "f1")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert lines[0].split() == ["label", "support", "predicted", "correct", "precision",
                                "recall", "F1"]
    rows = [line.split() for line in lines[1:len(model.labels) + 1]]
    assert [r[0] for r in rows] == [s.label for s in report.sorted_labels("f1")]
    micro = next(line for line in lines if line.startswith("micro avg")).split()
    assert micro[-3:] == [f"{report.micro.precision:.4f}", f"{report.micro.recall:.4f}",
                          f"{report.micro.f1:.4f}"]
    assert any(line.startswith("macro avg") for line in lines)

    code, out, err = run("test-label", path, test, "-confusion")
    assert code == 0, err
    assert out.startswith(plain)  # fastText's lines first, unchanged
    tsv = out[len(plain):].decode().strip().splitlines()[1:]
    assert tsv[0].split("\t")[1:] == model.labels + ["(none)"]
    matrix = [[int(x) for x in row.split("\t")[1:]] for row in tsv[1:]]
    np.testing.assert_array_equal(matrix, report.confusion)

    code, out, err = run("test-label", path, test, "2", "-json")
    assert code == 0, err
    got = json.loads(out)
    assert got["k"] == 2 and got["examples"] == 800 and len(got["labels"]) == 4
    assert got["micro"]["precision"] == pytest.approx(model.test(str(test), 2)[1])


def test_cli_test_label_plot(classifier, tmp_path, monkeypatch):
    _, path = classifier
    png = tmp_path / "labels.png"
    if sys.modules.get("matplotlib") is not None or _has_matplotlib():
        code, out, err = run("test-label", path, DATA / "authors.test", "-plot", png)
        assert code == 0, err
        assert png.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run("test-label", path, DATA / "authors.test", "-plot", tmp_path / "x.png")
    assert_one_line_error(code, err)
    assert "embtk[plot]" in err


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def test_subword_model_scores_a_set_outside_its_vocabulary(sg_model, tmp_path):
    _, bin_path, vec_path = sg_model
    data = write(tmp_path / "new.tsv", "apples\tbananas\t9\ncars\tpears\t1\ntrucks\tbuses\t8\n")
    result = evaluate_similarity(str(bin_path), data)
    assert result.in_vocab == 0 and math.isnan(result.spearman)
    assert result.subword_pairs == 3 and -1 <= result.subword_spearman <= 1
    code, out, err = run("eval-similarity", bin_path, data, "-json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["spearman"] is None
    with pytest.raises(EmbtkError, match="0 of its 3 pairs"):
        evaluate_similarity(str(vec_path), data)


def test_cli_test_label_report_from_stdin(classifier):
    _, path = classifier
    data = (DATA / "authors.test").read_bytes()
    code, out, err = run("test-label", path, "-", "-1", "-json", input=data)
    assert code == 0, err
    got = json.loads(out)
    assert got["data"] == "-" and got["k"] == -1 and got["examples"] == 800
    assert got["micro"]["recall"] == pytest.approx(1.0)  # every label predicted at k = -1


def test_lowered_known_words_keep_their_vector_in_the_subword_figures(sg_model, tmp_path):
    _, bin_path, _ = sg_model
    data = write(tmp_path / "upper.tsv", "APPLE\tBanana\t9\nCar\tbus\t8\nPear\tTAXIS\t1\n")
    result = evaluate_similarity(str(bin_path), data, lower=True)
    assert result.in_vocab == 2 and result.subword_pairs == 3
    np.testing.assert_allclose(result.subword_cosine[:2], result.cosine[:2], atol=1e-6)
