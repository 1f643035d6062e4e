"""Training ELMo (embtk.elmo.training): every layer's gradient against finite differences
on tiny sizes, the sampled softmax against the full one, training that lowers held-out
perplexity, reproducibility, the .elmo round trip with the softmax and Adagrad's state,
continued training, the commands and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from embtk.elmo.bilm import BiLM
from embtk.elmo.charcnn import char_ids
from embtk.elmo.options import sized_options
from embtk.elmo.softmax import draw_samples, full_loss, sampled_loss
from embtk.elmo.training import initial_arrays, initial_softmax

WORDS = [b"ab", b"c", b"abc", b"dd", b"e", b"abcdefghij", b"x", "naïve".encode()]


def _tiny_network(activation, clip, seed=1):
    opt = sized_options(char_dim=3, filters=((1, 2), (2, 3), (3, 2)), n_highway=2,
                        projection_dim=4, cell_dim=5, n_layers=2, max_chars=8, cell_clip=clip,
                        proj_clip=clip, activation=activation)
    rng = np.random.default_rng(seed)
    arrays = initial_arrays(opt, rng)
    for name in arrays:  # away from the initial values: gates and biases not at 0
        arrays[name] += rng.normal(0, 0.3, arrays[name].shape).astype(np.float32)
    arrays["softmax/W"], arrays["softmax/b"] = initial_softmax(11, 4, rng)
    return opt, arrays, rng


class _Problem:
    """The summed sampled-softmax loss of one window of both directions, from states
    that are not zero, with dropout: a function of the arrays, and its gradient."""

    def __init__(self, activation, clip, dropout):
        self.opt, self.arrays, rng = _tiny_network(activation, clip)
        self.chars = char_ids(WORDS, 8)
        batch, steps = 2, 3
        self.fwd = rng.integers(0, len(WORDS), (batch, steps + 1))
        self.bwd = rng.integers(0, len(WORDS), (batch, steps + 1))
        self.of_type = rng.integers(0, 11, len(WORDS))
        self.samples = draw_samples(np.random.default_rng(5), 11, 5)
        self.states = [[(rng.normal(0, 0.5, (batch, 4)).astype(np.float32),
                         rng.normal(0, 1.0, (batch, 5)).astype(np.float32))
                        for _ in range(2)] for _ in (0, 1)]
        self.dropout = dropout

    def run(self, gradient=False):
        states = [[(h.copy(), c.copy()) for h, c in layers] for layers in self.states]
        bilm = BiLM(self.opt, self.arrays)
        window = bilm.forward(self.chars, self.fwd, self.bwd, states, np.random.default_rng(9),
                              self.dropout)
        targets = self.of_type[np.stack([self.fwd[:, 1:].T, self.bwd[:, 1:].T])].ravel()
        tops = window.tops.reshape(len(targets), -1)
        loss, d_tops, softmax = sampled_loss(tops, targets, self.arrays["softmax/W"],
                                             self.arrays["softmax/b"], self.samples, 1.0)
        if not gradient:
            return loss
        grads = {name: np.zeros_like(a) for name, a in self.arrays.items()}
        bilm.backward(window, d_tops.reshape(window.tops.shape), grads)
        grads["softmax/W"][softmax.rows] += softmax.d_w
        grads["softmax/b"][softmax.rows] += softmax.d_b
        return grads


def _difference(problem, a, i, eps):
    flat = a.reshape(-1)
    old = flat[i]
    flat[i] = old + eps
    up = problem.run()
    flat[i] = old - eps
    down = problem.run()
    flat[i] = old
    return (up - down) / (2 * eps)


@pytest.mark.parametrize("activation,clip,dropout", [("relu", 3.0, 0.3), ("tanh", 0.4, 0.0)])
def test_every_gradient_matches_finite_differences(activation, clip, dropout):
    """Char embedding, convolutions (max over time, activation), highway, projection,
    both directions' LSTMs (projection, cell and output clips; small clips make many
    cells clip), the residual, dropout and the sampled softmax: float32 forward passes,
    central differences. A max or a relu may switch inside a step: the check passes
    when either step size agrees."""
    problem = _Problem(activation, clip, dropout)
    grads = problem.run(gradient=True)
    picker = np.random.default_rng(0)
    checked = 0
    for name, a in problem.arrays.items():
        for i in picker.choice(a.size, min(5, a.size), replace=False):
            analytic = float(grads[name].reshape(-1)[i])
            errors = []
            for eps in (1e-2, 2e-3):
                numeric = _difference(problem, a, i, eps)
                errors.append(abs(numeric - analytic) / max(3e-2, abs(numeric) + abs(analytic)))
            assert min(errors) < 2e-2, (name, i, analytic, numeric)
            checked += 1
    assert checked > 100
    nonzero = [name for name, g in grads.items() if np.abs(g).max() > 0]
    assert len(nonzero) == len(grads)


def test_sampled_softmax_with_every_word_is_the_full_softmax():
    rng = np.random.default_rng(3)
    h = rng.normal(size=(7, 4)).astype(np.float32)
    w = rng.normal(size=(9, 4)).astype(np.float32)
    b = rng.normal(size=9).astype(np.float32)
    targets = rng.integers(0, 9, 7)
    every = draw_samples(rng, 9, 9)
    loss, d_h, softmax = sampled_loss(h, targets, w, b, every, 1.0)
    assert loss == pytest.approx(full_loss(h, targets, w, b), rel=1e-5)
    logits = h.astype(np.float64) @ w.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(7), targets] -= 1
    np.testing.assert_allclose(d_h, p @ w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(softmax.d_w, (p.T @ h)[softmax.rows], rtol=1e-4, atol=1e-5)


def test_log_uniform_samples_are_distinct_frequent_first_and_corrected():
    rng = np.random.default_rng(0)
    counts = np.zeros(1000)
    for _ in range(200):
        s = draw_samples(rng, 1000, 50)
        assert len(np.unique(s.words)) == 50 and s.words.min() >= 0 and s.words.max() < 1000
        counts[s.words] += 1
        assert s.tries >= 50
        # Q, the expected count of a word in `tries` draws, is below 1 and falls with rank
        q = np.exp(s.log_q_of(np.array([0, 10, 999])))
        assert 1 >= q[0] > q[1] > q[2] > 0
    assert counts[:10].sum() > counts[-500:].sum()


# ------------------------------------------------------------------ training
import embtk  # noqa: E402
from conftest import assert_one_line_error, run  # noqa: E402
from embtk.elmo import load_elmo  # noqa: E402
from embtk.elmo.bilm import read_text, softmax_ids  # noqa: E402
from embtk.errors import EmbtkError  # noqa: E402

from pathlib import Path  # noqa: E402

AUSTEN = Path(__file__).parent / "data" / "austen_small.txt"
SMALL = dict(charDim=8, filters="1:8,2:8,3:16", highway=1, projDim=16, lstmDim=32,
             batchSize=16, bptt=10, thread=1, verbose=0, minCount=2, samples=200)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """Austen: 1,200 lines to train on, the next 200 held out."""
    lines = AUSTEN.read_bytes().splitlines(keepends=True)
    folder = tmp_path_factory.mktemp("elmo_training")
    (folder / "train.txt").write_bytes(b"".join(lines[:1200]))
    (folder / "held.txt").write_bytes(b"".join(lines[1200:1400]))
    return folder


@pytest.fixture(scope="module")
def trained(split):
    lm = embtk.train_elmo(split / "train.txt", seed=3, **SMALL)
    lm.save(split / "lm.elmo")
    return lm


def _unigram_perplexity(train, held, min_count):
    text = read_text(str(train), 50)
    of_type, vocab = softmax_ids(text, min_count)
    counts = np.bincount(of_type[text.stream], minlength=len(vocab)) + 0.5
    at = {w: i for i, w in enumerate(vocab)}
    held_text = read_text(str(held), 50)
    ids = np.array([0, 1] + [at.get(w, 2) for w in held_text.words[2:]])[held_text.stream]
    return float(np.exp(-np.log(counts[ids] / counts.sum()).mean()))


@pytest.mark.slow
def test_one_epoch_beats_the_unigram_model_on_held_out_text(split, trained):
    result = trained.perplexity(split / "held.txt")
    unigram = _unigram_perplexity(split / "train.txt", split / "held.txt", 2)
    assert result.forward < 0.9 * unigram and result.backward < 0.9 * unigram
    assert result.mean == pytest.approx(np.sqrt(result.forward * result.backward), rel=1e-6)
    assert result.dict()["tokens"] == result.tokens > 5000


@pytest.mark.slow
def test_saved_model_loads_with_the_same_vectors_softmax_and_state(split, trained):
    loaded = load_elmo(split / "lm.elmo")
    sentences = ["Elinor was the eldest daughter", "a b c", "unseenwordzzz ."]
    for before, after in zip(trained.embed(sentences, thread=1), loaded.embed(sentences, thread=1)):
        np.testing.assert_array_equal(before, after)
    assert loaded.vocabulary == trained.vocabulary
    assert loaded.vocabulary[:3] == [b"<S>", b"</S>", b"<UNK>"] and b"Elinor" in loaded.vocabulary
    for name, a in trained.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[name], a)
    assert any(name.startswith("adagrad/") for name in loaded.arrays)
    assert loaded.perplexity(split / "held.txt") == trained.perplexity(split / "held.txt")


@pytest.mark.slow
def test_thread_1_and_a_seed_reproduce_the_file(split, trained, tmp_path):
    again = embtk.train_elmo(split / "train.txt", seed=3, **SMALL)
    again.save(tmp_path / "again.elmo")
    assert (tmp_path / "again.elmo").read_bytes() == (split / "lm.elmo").read_bytes()
    other = embtk.train_elmo(split / "train.txt", seed=4, **SMALL)
    assert not np.array_equal(other.arrays["softmax/W"], again.arrays["softmax/W"])


@pytest.mark.slow
def test_input_model_continues_training(split, trained, tmp_path):
    before = trained.perplexity(split / "held.txt")
    more = embtk.train_elmo(split / "train.txt", inputModel=split / "lm.elmo", seed=5,
                            **{k: v for k, v in SMALL.items() if k not in ("charDim", "lstmDim")})
    assert more.options.raw["training"]["tokens"] == 2 * trained.options.raw["training"]["tokens"]
    assert more.perplexity(split / "held.txt").mean < before.mean
    with pytest.raises(EmbtkError, match="lstmDim 32; -lstmDim 64 cannot change it"):
        embtk.train_elmo(split / "train.txt", inputModel=split / "lm.elmo", **{**SMALL,
                                                                              "lstmDim": 64})


@pytest.mark.slow
def test_a_model_without_softmax_gets_a_new_one(split, trained, tmp_path):
    """As a converted published model: the network's weights, no softmax."""
    network = {k: v for k, v in trained.arrays.items()
               if not k.startswith(("softmax/", "adagrad/"))}
    raw = {k: v for k, v in trained.options.raw.items() if k in ("lstm", "char_cnn")}
    from embtk.elmo.options import options_from_dict
    from embtk.elmo.model import ElmoModel

    ElmoModel(options_from_dict(raw, "x"), network).save(tmp_path / "published.elmo")
    with pytest.raises(EmbtkError, match="no softmax"):
        load_elmo(tmp_path / "published.elmo").perplexity(split / "held.txt")
    lines = (split / "held.txt").read_bytes()
    lm = embtk.train_elmo(lines.decode().splitlines(), inputModel=tmp_path / "published.elmo",
                          **{k: v for k, v in SMALL.items() if k != "lstmDim"})
    assert lm.vocabulary[:3] == [b"<S>", b"</S>", b"<UNK>"]
    np.testing.assert_array_equal(lm.arrays["softmax/W"].shape, (len(lm.vocabulary), 16))


@pytest.mark.slow
def test_commands_train_and_measure(split, tmp_path):
    text = b"".join((split / "train.txt").read_bytes().splitlines(keepends=True)[:200])
    code, _, err = run("elmo", "-input", "-", "-output", tmp_path / "cli", "-charDim", "4",
                       "-filters", "1:4,2:4", "-projDim", "8", "-lstmDim", "8", "-batchSize",
                       "4", "-thread", "1", "-verbose", "1", input=text)
    assert code == 0, err
    assert "tokens/s" in err
    code, out, err = run("elmo-perplexity", tmp_path / "cli.elmo", split / "held.txt",
                         "-thread", "1")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["forward", "backward", "mean", "tokens"]
    assert all(float(line.split()[-1]) > 1 for line in lines)


def _train_lines(tmp_path, content: bytes, **options):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    return embtk.train_elmo(path, **{**SMALL, "batchSize": 2, "bptt": 5, **options})


@pytest.mark.slow
def test_long_lines_long_words_and_foreign_bytes_are_trained_on(tmp_path, capsys):
    words = [b"w%d" % (i % 37) for i in range(400)]
    words[10] = b"x" * 300                   # longer than -maxChars: its first bytes
    words[20] = b"caf\xe9 \xff\xfe"          # not UTF-8: bytes, as the encoder reads them
    lm = _train_lines(tmp_path, b" ".join(words) + b"\n", verbose=1, maxChars=20)
    assert "longer than -maxChars" in capsys.readouterr().err
    # one line of 400 tokens (403 with <S>, </S> and the extra byte token) in 2 streams:
    # every position but the first of each stream is a target, none lost to the windows
    assert lm.options.raw["training"]["tokens"] == 403 // 2 * 2 - 2
    assert len(lm.embed([words[:30]], thread=1)[0]) == 30


@pytest.mark.parametrize("content,options,message", [
    (b"", {}, "is empty"),
    (b"a\n", {"batchSize": 4}, "fewer than one window of -batchSize 4"),
    (b"a b c d\n" * 3, {"batchSize": 4}, "fewer than one window"),
    (b"a b c\n" * 50, {"lstmDim": 30000, "projDim": 30000}, "GB of memory"),
    (b"a b c\n" * 50, {"resume": "no-such-checkpoint"}, "no such file"),
    (b"a b c\n" * 50, {"checkpointEvery": 0.0}, "-checkpointEvery"),
    (b"a b c\n" * 50, {"filters": "1:8,x"}, "width:count pairs"),
    (b"a b c\n" * 50, {"dropout": 1.0}, "-dropout"),
    (b"a b c\n" * 50, {"filters": "1:8,60:4"}, "-maxChars"),
])
def test_bad_input_is_one_line(tmp_path, content, options, message):
    with pytest.raises(EmbtkError, match=message) as info:
        _train_lines(tmp_path, content, **options)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_bad_input_on_the_command_line(tmp_path, split):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    code, _, err = run("elmo", "-input", empty, "-output", tmp_path / "x")
    assert_one_line_error(code, err)
    code, _, err = run("elmo", "-input", split / "held.txt", "-output", tmp_path / "x",
                       "-lstmDim", "30000", "-projDim", "30000")
    assert_one_line_error(code, err)
    assert "GB" in err and not (tmp_path / "x.elmo").exists()
    code, _, err = run("elmo-perplexity", tmp_path / "missing.elmo", split / "held.txt")
    assert_one_line_error(code, err)


def test_threads_share_a_window_and_sum_to_its_gradient(split, monkeypatch):
    """-thread 2 splits a window's streams in two pieces, one a thread: their summed
    gradients are the whole window's, up to float rounding (no dropout: its masks are
    drawn per piece). Compared window by window from the same weights and states, as
    whole runs drift apart from rounding differences of 1e-7 within a few windows."""
    from concurrent.futures import ThreadPoolExecutor

    from embtk.args import ElmoArgs
    from embtk.elmo import training
    from embtk.elmo.bilm import windows

    lines = (split / "train.txt").read_bytes().splitlines(keepends=True)[:20]
    path = split / "few.txt"
    path.write_bytes(b"".join(lines))
    text = read_text(str(path), 50)
    of_type, vocab = softmax_ids(text, 2)
    seen = {}
    monkeypatch.setattr(training._Run, "_update",
                        lambda run, grads, softmax: seen.__setitem__(run.args.thread,
                                                                     (grads, softmax)))
    runs = []
    with ThreadPoolExecutor(2) as pool:
        for thread in (1, 2):
            args = ElmoArgs.from_options(input="x", **{**SMALL, "thread": thread,
                                                       "dropout": 0.0}).validate()
            opt = training._network_options(args, None, set())
            arrays, accumulated = training._starting_weights(opt, None, vocab,
                                                             np.random.default_rng(2))
            runs.append(training._Run(opt, arrays, accumulated, text, of_type, args, pool))
        whole, halves = runs[0].new_states(), runs[1].new_states()
        for i, (start, steps) in enumerate(windows(len(text.stream) // 16, 10)[:3]):
            losses = [runs[0].step(np.random.default_rng(i), start, steps, whole),
                      runs[1].step(np.random.default_rng(i), start, steps, halves)]
            assert losses[1] == pytest.approx(losses[0], rel=1e-5)
            (one, s1), (two, s2) = seen[1], seen[2]
            for name, g in one.items():
                np.testing.assert_allclose(two[name], g, rtol=1e-4, atol=1e-6 * np.abs(g).max())
            np.testing.assert_array_equal(s1.rows, s2.rows)
            np.testing.assert_allclose(s2.d_w, s1.d_w, atol=1e-5)
            for d in (0, 1):
                for layer in range(2):
                    for k in (0, 1):
                        joined = np.concatenate([halves[0][d][layer][k], halves[1][d][layer][k]])
                        np.testing.assert_allclose(joined, whole[0][d][layer][k], atol=1e-5)


# ------------------------------------------------------------------- -checkpoint, -resume
_TINY = ["-charDim", "4", "-filters", "1:4,2:4", "-projDim", "8", "-lstmDim", "8",
         "-maxChars", "10", "-bptt", "5", "-batchSize", "4", "-samples", "8", "-minCount", "1",
         "-thread", "1", "-seed", "3", "-verbose", "0"]


def _tiny_corpus(path, lines=80, seed=0):
    words = "the cat sat on a mat and the dog ran to the cat while a bird sang".split()
    rng = np.random.default_rng(seed)
    path.write_text("".join(" ".join(rng.choice(words, 12)) + "\n" for _ in range(lines)))
    return path


def _embtk(*args):
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-m", "embtk", *map(str, args)],
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_interrupted_and_resumed_run_gives_the_same_model(tmp_path):
    import signal
    import time
    corpus = _tiny_corpus(tmp_path / "c.txt")
    command = ["elmo", "-input", corpus, *_TINY, "-epoch", "80"]
    whole = _embtk(*command, "-output", tmp_path / "whole")
    assert whole.wait(300) == 0, whole.stderr.read()
    ckpt = tmp_path / "run.ckpt"
    killed = _embtk(*command, "-output", tmp_path / "cut", "-checkpoint", ckpt,
                    "-checkpointEvery", "0.001")
    deadline = time.time() + 120
    while not ckpt.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGTERM)
    assert killed.wait(60) == 143, killed.stderr.read()
    assert not (tmp_path / "cut.elmo").exists()
    from embtk.checkpoint import read_state
    state, _ = read_state(str(ckpt), "elmo", ())
    assert not state["complete"] and state["position"]["done"] > 0
    resumed = _embtk(*command, "-output", tmp_path / "cut", "-resume", ckpt, "-checkpoint",
                     ckpt)
    assert resumed.wait(300) == 0, resumed.stderr.read()
    assert (tmp_path / "cut.elmo").read_bytes() == (tmp_path / "whole.elmo").read_bytes()
    again = _embtk(*command, "-output", tmp_path / "cut", "-resume", ckpt)
    assert again.wait(60) == 0
    err = again.stderr.read().decode()
    assert "holds a complete run" in err and err.count("\n") == 1
    other = _embtk(*command, "-epoch", "81", "-output", tmp_path / "cut", "-resume", ckpt)
    assert other.wait(60) == 1
    err = other.stderr.read().decode()
    assert "-epoch 81 differs from checkpoint" in err and err.count("\n") == 1


@pytest.mark.slow
def test_a_resumed_checkpoint_finishes_as_the_uninterrupted_run(tmp_path):
    corpus = _tiny_corpus(tmp_path / "c.txt")
    options = {"charDim": 4, "filters": "1:4,2:4", "projDim": 8, "lstmDim": 8, "maxChars": 10,
               "bptt": 5, "batchSize": 4, "samples": 8, "minCount": 1, "thread": 1, "seed": 3,
               "verbose": 0, "epoch": 2}
    whole = embtk.train_elmo(corpus, **options)
    ckpt = tmp_path / "run.ckpt"
    with_ckpt = embtk.train_elmo(corpus, checkpoint=ckpt, **options)
    again = embtk.train_elmo(corpus, resume=ckpt, **options)  # complete: trains nothing
    files = []
    for k, lm in enumerate((whole, with_ckpt, again)):
        lm.save(tmp_path / f"{k}.elmo")
        files.append((tmp_path / f"{k}.elmo").read_bytes())
    assert files[0] == files[1] == files[2]


@pytest.mark.slow
@pytest.mark.parametrize("change, message", [
    ({"lr": 0.5}, "differs from checkpoint"),
    ({"corpus": 2}, "another input"),
    ({"corrupt": True}, "not an embtk checkpoint"),
])
def test_bad_resumption_is_one_line(tmp_path, change, message):
    corpus = _tiny_corpus(tmp_path / "c.txt")
    options = {"charDim": 4, "filters": "1:4,2:4", "projDim": 8, "lstmDim": 8, "maxChars": 10,
               "bptt": 5, "batchSize": 4, "samples": 8, "minCount": 1, "thread": 1,
               "verbose": 0}
    ckpt = tmp_path / "run.ckpt"
    embtk.train_elmo(corpus, checkpoint=ckpt, **options)
    if "corpus" in change:
        corpus = _tiny_corpus(tmp_path / "other.txt", seed=change["corpus"])
    if "corrupt" in change:
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 2])
    given = {**options, **{k: v for k, v in change.items() if k in options or k == "lr"}}
    with pytest.raises(EmbtkError, match=message) as info:
        embtk.train_elmo(corpus, resume=ckpt, **given)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_checkpoint_resumes_with_its_own_command_only(tmp_path):
    corpus = _tiny_corpus(tmp_path / "c.txt")
    ckpt = tmp_path / "run.ckpt"
    embtk.train_elmo(corpus, checkpoint=ckpt, **{"charDim": 4, "filters": "1:4", "projDim": 8,
                                                 "lstmDim": 8, "batchSize": 4, "bptt": 5,
                                                 "samples": 8, "thread": 1, "verbose": 0})
    code, _, err = run("skipgram", "-input", corpus, "-output", tmp_path / "s", "-resume", ckpt)
    assert code == 1 and "is of an elmo run: resume it with `embtk elmo`" in err
    assert err.count("\n") == 1
