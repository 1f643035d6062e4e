"""GloVe: co-occurrence counts checked by hand, the shard merge against the in-memory
path, the weighting and one AdaGrad step against hand computations, determinism, the
.bin/.vec outputs, bad input and the temporary folder."""

import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import assert_one_line_error, run

import embtk
import embtk.glove.cooccurrence
from embtk.args import GloveArgs
from embtk.glove.cooccurrence import (cooccurrence_matrix, count_shards, count_to_file, load_records,
                                merge_shards, plan_memory)
from embtk.errors import EmbtkError, UnknownWordWarning
from embtk.glove.training import GloveParams, adagrad_step, build_vocabulary, weighting

DATA = Path(__file__).parent / "data"
AUSTEN = DATA / "austen_small.txt"
BIG = 1 << 30


def as_dict(rows, cols, counts):
    return {(int(r), int(c)): float(x) for r, c, x in zip(rows, cols, counts)}


def counts_of(ids, nwords, window, symmetric, memory, folder):
    return as_dict(*cooccurrence_matrix(np.asarray(ids, dtype=np.int32), nwords, window,
                                        symmetric, memory, str(folder)))


def brute_force(ids, window, symmetric):
    """The definition, pair by pair: X[w, c] += 1/d for c up to `window` words left of w
    on the same line (and X[c, w] too when symmetric)."""
    out = defaultdict(float)
    for i, w in enumerate(ids):
        if w < 0:
            continue
        for k in range(i - 1, max(-1, i - window - 1), -1):
            if ids[k] < 0:
                break
            out[(w, ids[k])] += 1.0 / (i - k)
            if symmetric:
                out[(ids[k], w)] += 1.0 / (i - k)
    return dict(out)


# ----------------------------------------------------------------- counts by hand
# "a b c" / "b a" / "a x a"; ids a=0 b=1 c=2 x=3, -1 ends a line.
LINES = [0, 1, 2, -1, 1, 0, -1, 0, 3, 0, -1]


def test_symmetric_counts_by_hand(tmp_path):
    got = counts_of(LINES, 4, 2, True, BIG, tmp_path)
    # a-b: distance 1 in "a b c" and in "b a"; a-c: distance 2; b-c: 1;
    # "a x a": a-x twice at distance 1, a-a once at distance 2, counted in both directions
    assert got == {(0, 1): 2.0, (1, 0): 2.0, (0, 2): 0.5, (2, 0): 0.5, (1, 2): 1.0,
                   (2, 1): 1.0, (0, 3): 2.0, (3, 0): 2.0, (0, 0): 1.0}


def test_asymmetric_counts_by_hand(tmp_path):
    got = counts_of(LINES, 4, 2, False, BIG, tmp_path)
    # row = a word, column = a word on its left
    assert got == {(1, 0): 1.0, (2, 1): 1.0, (2, 0): 0.5, (0, 1): 1.0, (3, 0): 1.0,
                   (0, 3): 1.0, (0, 0): 0.5}


def test_window_limits_the_distance(tmp_path):
    got = counts_of(LINES, 4, 1, True, BIG, tmp_path)
    assert got == {(0, 1): 2.0, (1, 0): 2.0, (1, 2): 1.0, (2, 1): 1.0, (0, 3): 2.0, (3, 0): 2.0}


def test_vocabulary_and_line_ends(tmp_path):
    (tmp_path / "c.txt").write_bytes(b"b a c\na b\n\nb d\n")
    dictionary, ids = build_vocabulary(str(tmp_path / "c.txt"), GloveArgs(minCount=2))
    assert dictionary.words == [b"b", b"a"]  # by count; </s> is no word; c, d are rare
    assert ids.tolist() == [0, 1, -1, 1, 0, -1, -1, 0, -1]


# ------------------------------------------------------------------ shards, merge


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-1, 29), min_size=0, max_size=300), st.integers(1, 6), st.booleans(),
       st.sampled_from([64, 2000, BIG]))
def test_counts_match_the_definition_for_any_budget(tmp_path_factory, ids, window, symmetric, memory):
    folder = tmp_path_factory.mktemp("c")
    got = counts_of(ids, 30, window, symmetric, memory, folder)
    want = brute_force(ids, window, symmetric)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    assert os.listdir(folder) == []


@pytest.mark.parametrize("max_open", [256, 3])
def test_shard_merge_equals_in_memory(tmp_path, monkeypatch, max_open):
    monkeypatch.setattr(embtk.glove.cooccurrence, "MAX_OPEN_FILES", max_open)  # 3: merged in passes
    rng = np.random.default_rng(1)
    ids = rng.zipf(1.3, 5000).astype(np.int64) % 200
    ids[rng.random(5000) < 0.05] = -1
    ids = ids.astype(np.int32)
    for symmetric in (True, False):
        plan = plan_memory(200, symmetric, 4000, 5, len(ids) * 5)
        shards = count_shards(ids, 200, 5, symmetric, plan, str(tmp_path))
        assert len(shards) > 5  # the tiny budget really spilled
        merged = []
        merge_shards(shards, 7, lambda k, c: merged.append((k.copy(), c.copy())))
        keys = np.concatenate([k for k, _ in merged])
        assert np.all(np.diff(keys) > 0)  # sorted, each key once
        for p in shards:
            os.remove(p)
        assert os.listdir(tmp_path) == []  # intermediate merges removed too
        small = counts_of(ids, 200, 5, symmetric, 4000, tmp_path)
        whole = counts_of(ids, 200, 5, symmetric, BIG, tmp_path)
        assert small.keys() == whole.keys()
        assert all(small[k] == pytest.approx(whole[k], rel=1e-12) for k in whole)


@pytest.mark.parametrize("max_open", [256, 2])
def test_records_file_is_a_shuffle_of_the_counts(tmp_path, monkeypatch, max_open):
    monkeypatch.setattr(embtk.glove.cooccurrence, "MAX_OPEN_FILES", max_open)  # 2: buckets capped
    rng = np.random.default_rng(2)
    ids = (rng.zipf(1.5, 3000) % 100).astype(np.int32)
    want = counts_of(ids, 100, 4, True, BIG, tmp_path)
    counted = count_to_file(ids, 100, 4, True, 3000, str(tmp_path), seed=5)
    assert counted.buckets > 1 and counted.shards > 1
    records = np.array(load_records(counted.path, counted.count))
    os.remove(counted.path)
    assert os.listdir(tmp_path) == []
    keys = records[:, 0].astype(np.int64) * 100 + records[:, 1]
    assert len(np.unique(keys)) == len(keys) == len(want)
    assert np.any(np.diff(keys) < 0)  # shuffled, not in key order
    got = {(int(r), int(c)): float(x) for (r, c), x in zip(records[:, :2], records.view(np.float32)[:, 2])}
    assert all(got[k] == pytest.approx(v, rel=1e-6) for k, v in want.items())


# -------------------------------------------------------------- weighting, AdaGrad


def test_weighting():
    assert weighting(np.float32(10.0), np.float32(10.0), np.float32(0.75)) == 1.0
    assert weighting(np.float32(250.0), np.float32(100.0), np.float32(0.75)) == 1.0
    assert weighting(np.float32(1.0), np.float32(100.0), np.float32(0.75)) == pytest.approx(0.01 ** 0.75, rel=1e-6)
    assert weighting(np.float32(5.0), np.float32(10.0), np.float32(1.0)) == pytest.approx(0.5, rel=1e-6)
    assert weighting(np.float32(3.0), np.float32(10.0), np.float32(0.0)) == pytest.approx(1.0)


def test_one_adagrad_step_by_hand():
    # w_0 = (0.1, -0.2), b_0 = 0.05; c_1 = (0.3, 0.4), b~_1 = -0.1; squared gradients
    # start at (1, 4, 1) and (1, 1, 9); X_01 = 2, xmax 10, alpha 0.75, lr 0.05
    wv = np.array([[0.1, -0.2, 0.05], [0.0, 0.0, 0.0]], dtype=np.float32)
    cv = np.array([[0.0, 0.0, 0.0], [0.3, 0.4, -0.1]], dtype=np.float32)
    wsq = np.array([[1.0, 4.0, 1.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    csq = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 9.0]], dtype=np.float32)
    cost = adagrad_step(GloveParams(wv, cv, wsq, csq), 0, 1, np.float32(2.0), 0.05, np.float32(10.0),
                        np.float32(0.75))

    diff = 0.1 * 0.3 - 0.2 * 0.4 + 0.05 - 0.1 - math.log(2.0)  # -0.74314718
    f = 0.2 ** 0.75                                            # 0.29906976
    g = 0.05 * f * diff
    assert cost == pytest.approx(0.5 * f * diff * diff, rel=1e-5)
    gw = [g * 0.3, g * 0.4]   # gradient of w_0: g * c_1
    gc = [g * 0.1, g * -0.2]  # gradient of c_1: g * w_0 (the old one)
    gb = f * diff  # the biases' step is 1, not lr
    want_w = [0.1 - gw[0] / 1.0, -0.2 - gw[1] / 2.0, 0.05 - gb / 1.0]
    want_c = [0.3 - gc[0] / 1.0, 0.4 - gc[1] / 1.0, -0.1 - gb / 3.0]
    np.testing.assert_allclose(wv[0], want_w, rtol=1e-5)
    np.testing.assert_allclose(cv[1], want_c, rtol=1e-5)
    np.testing.assert_allclose(wsq[0], [1 + gw[0] ** 2, 4 + gw[1] ** 2, 1 + gb * gb], rtol=1e-6)
    np.testing.assert_allclose(csq[1], [1 + gc[0] ** 2, 1 + gc[1] ** 2, 9 + gb * gb], rtol=1e-6)
    assert not wv[1].any() and not cv[0].any()  # other rows untouched


# ---------------------------------------------------------------------- training

SMALL = dict(dim=16, ws=5, epoch=10, minCount=3, xmax=10.0, thread=1, verbose=0)


@pytest.fixture(scope="module")
def glove(tmp_path_factory):
    return embtk.train_glove(AUSTEN, seed=3, **SMALL)


@pytest.mark.slow
def test_deterministic_with_one_thread_and_a_seed(glove):
    again = embtk.train_glove(AUSTEN, seed=3, **SMALL)
    np.testing.assert_array_equal(glove.get_input_matrix(), again.get_input_matrix())
    other = embtk.train_glove(AUSTEN, seed=4, **SMALL)
    assert not np.array_equal(glove.get_input_matrix(), other.get_input_matrix())


def test_training_lowers_the_cost_and_learns_neighbours(glove):
    costs = glove.glove.epoch_costs
    assert len(costs) == 10 and all(a > b for a, b in zip(costs, costs[1:])) and costs[-1] > 0
    assert glove.glove.cooccurrences > 10000
    assert "Elinor" in [w for _, w in glove.get_nearest_neighbors("Marianne", k=10)]
    assert len(glove.get_analogies("he", "him", "she", k=3)) == 3


def test_saved_vectors_choice(glove):
    words_only = embtk.train_glove(AUSTEN, seed=3, vectors="w", **SMALL)
    # same training; the sum is w + w~, and w~ is the output matrix of both
    np.testing.assert_array_equal(glove.get_output_matrix(), words_only.get_output_matrix())
    np.testing.assert_allclose(glove.get_input_matrix(),
                               words_only.get_input_matrix() + words_only.get_output_matrix(),
                               rtol=1e-6)


def test_unknown_words_have_no_vector(glove):
    with pytest.warns(UnknownWordWarning, match="not in the vocabulary"):
        vec = glove.get_word_vector("zzqqx")
    assert not vec.any()


def test_cli_outputs_load_everywhere(tmp_path):
    prefix = tmp_path / "g"
    code, out, err = run("glove", "-input", AUSTEN, "-output", prefix, "-dim", 6, "-ws", 4,
                         "-epoch", 2, "-minCount", 5, "-thread", 2, "-memory", 0.0001,
                         "-asymmetric", "-tmpdir", tmp_path, "-verbose", 2, "-seed", -5)
    assert code == 0, err
    assert "Counting:" in err and "Training:" in err and "epoch 2/2 cost" in err
    assert sorted(os.listdir(tmp_path)) == ["g.bin", "g.vec"]  # temporary folder gone
    model = embtk.load_model(prefix.with_suffix(".bin"))
    words, vectors = embtk.vecformat.read_vec(prefix.with_suffix(".vec"))
    assert [w.decode() for w in words] == model.words and b"</s>" not in words
    np.testing.assert_allclose(vectors, model.get_input_matrix(), rtol=1e-4, atol=1e-5)

    fasttext = pytest.importorskip("fasttext")
    official = fasttext.load_model(str(prefix.with_suffix(".bin")))
    for word in model.words[:20]:
        np.testing.assert_array_equal(official.get_word_vector(word), model.get_word_vector(word))

    code, out, err = run("print-word-vectors", prefix.with_suffix(".bin"), input=b"the zzqqx\n")
    assert code == 0
    lines = out.decode().splitlines()
    assert lines[1] == "zzqqx " + "0 " * 6
    assert err.splitlines() == ["embtk: warning: 'zzqqx' is not in the vocabulary (the model "
                                "has no subword information): its vector is all zeros"]


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("options, message", [
    (["-dim", "0"], "-dim must be a positive integer"),
    (["-ws", "-2"], "-ws must be a positive integer"),
    (["-xmax", "0"], "-xmax must be a positive number"),
    (["-alpha", "-1"], "-alpha must be zero or positive"),
    (["-memory", "0"], "-memory must be a positive number"),
    (["-lr", "nan"], "-lr must be a positive number"),
    (["-vectors", "sum"], "'sum' is not one of"),
    (["-epoch", "x"], "'x' is not a valid integer"),
    (["-minCount", "100000"], "no word occurs -minCount"),
])
def test_bad_options_one_line(tmp_path, options, message):
    code, out, err = run("glove", "-input", AUSTEN, "-output", tmp_path / "g", *options)
    assert_one_line_error(code, err, 2 if "valid" in message or "one of" in message else 1)
    assert message in err
    assert os.listdir(tmp_path) == []


def test_bad_input_files_one_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    lonely = tmp_path / "lonely.txt"
    lonely.write_bytes(b"one\ntwo\n" * 10)
    for path, message in ((tmp_path / "missing.txt", "no such file"), (empty, "is empty"),
                          (lonely, "no pair of words")):
        code, out, err = run("glove", "-input", path, "-output", tmp_path / "g", "-minCount", 1,
                             "-tmpdir", tmp_path, "-verbose", 0)
        assert_one_line_error(code, err)
        assert message in err
        assert not (tmp_path / "g.bin").exists() and not (tmp_path / "g.vec").exists()
        assert not [p for p in os.listdir(tmp_path) if p.startswith("embtk-glove")]
    with pytest.raises(EmbtkError, match="unknown option"):
        embtk.train_glove(AUSTEN, neg=5)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["count_to_file", "_run_epochs"])
def test_temporary_folder_removed_on_interrupt(tmp_path, monkeypatch, phase):
    import embtk.glove.training

    real = getattr(embtk.glove.training, phase)

    def interrupted(*args, **kwargs):
        if phase == "count_to_file":
            real(*args, **kwargs)  # shards, buckets and records written, then Ctrl-C
        [folder] = os.listdir(tmp_path)
        assert folder.startswith("embtk-glove-") and os.listdir(tmp_path / folder)
        raise KeyboardInterrupt

    monkeypatch.setattr(embtk.glove.training, phase, interrupted)
    code, out, err = run("glove", "-input", AUSTEN, "-output", tmp_path / "g", "-tmpdir", tmp_path,
                         "-verbose", 0, "-memory", 0.0001)
    assert code == 130 and err == "embtk: interrupted\n"
    assert os.listdir(tmp_path) == []
