"""ELMo (embtk.elmo): the forward pass against a plain numpy reference written here, on
tiny random models in the published weights.hdf5 layout; batching and threads; the
`.elmo` file; the commands; bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import assert_one_line_error, run

h5py = pytest.importorskip("h5py")

import embtk  # noqa: E402
from embtk.elmo import ElmoModel, load_elmo, mix  # noqa: E402
from embtk.errors import EmbtkError  # noqa: E402

SENTENCES = [
    "the bank of the river",
    ["a", "bank", "loan", "naïve", "日本語"],
    "x",
    "",
    "supercalifragilisticexpialidocious words longer than the limit of characters here",
    "the river",
]


def tiny_options(**changes):
    opt = {"lstm": {"use_skip_connections": True, "projection_dim": 6, "cell_clip": 3,
                    "proj_clip": 3, "dim": 10, "n_layers": 2},
           "char_cnn": {"activation": "relu", "filters": [[1, 4], [2, 5], [3, 6]],
                        "n_highway": 2, "embedding": {"dim": 4}, "n_characters": 262,
                        "max_characters_per_token": 12}}
    for key, value in changes.items():
        section, name = key.split(".")
        opt[section][name] = value
    return opt


def random_arrays(opt, seed=0):
    """Random weights in bilm-tf's layout (names and shapes as in weights.hdf5)."""
    rng = np.random.default_rng(seed)
    lstm, cnn = opt["lstm"], opt["char_cnn"]
    d, p, c = cnn["embedding"]["dim"], lstm["projection_dim"], lstm["dim"]
    f = sum(n for _, n in cnn["filters"])

    def r(*shape, scale=None):
        fan_in = shape[0] if len(shape) > 1 else 4
        scale = scale or 1.5 / np.sqrt(fan_in)
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    arrays = {"char_embed": r(261, d, scale=1.0)}
    for i, (w, n) in enumerate(cnn["filters"]):
        arrays[f"CNN/W_cnn_{i}"] = r(1, w, d, n, scale=0.5)
        arrays[f"CNN/b_cnn_{i}"] = r(n, scale=0.2)
    for k in range(cnn["n_highway"]):
        arrays[f"CNN_high_{k}/W_carry"] = r(f, f)
        arrays[f"CNN_high_{k}/b_carry"] = r(f, scale=0.3)
        arrays[f"CNN_high_{k}/W_transform"] = r(f, f)
        arrays[f"CNN_high_{k}/b_transform"] = r(f, scale=0.3)
    arrays["CNN_proj/W_proj"] = r(f, p)
    arrays["CNN_proj/b_proj"] = r(p, scale=0.3)
    for direction in (0, 1):
        for layer in range(lstm["n_layers"]):
            prefix = f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"
            arrays[f"{prefix}/W_0"] = r(2 * p, 4 * c)
            arrays[f"{prefix}/B"] = r(4 * c, scale=0.3)
            arrays[f"{prefix}/W_P_0"] = r(c, p)
    return arrays


def write_model(directory, opt=None, arrays=None, seed=0, name="m"):
    opt = opt or tiny_options()
    arrays = random_arrays(opt, seed) if arrays is None else arrays
    options = directory / f"{name}.json"
    options.write_text(json.dumps(opt))
    weights = directory / f"{name}.hdf5"
    with h5py.File(weights, "w") as f:
        for key, value in arrays.items():
            f[key] = value
        f["softmax/W"] = np.zeros((3, 2), np.float32)  # extra datasets are ignored
    return options, weights


# ----------------------------------------------------------------- the reference
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_encode(token, opt, a):
    """bilm-tf's token encoder, step by step, in float64."""
    cnn = opt["char_cnn"]
    maxc = cnn["max_characters_per_token"]
    if token in ("<S>", "</S>"):
        body = [256 if token == "<S>" else 257]
    else:
        body = list(token.encode("utf-8"))[:maxc - 2]
    chars = [258] + body + [259]
    chars = [ch + 1 for ch in chars + [260] * (maxc - len(chars))]
    table = np.vstack([np.zeros((1, a["char_embed"].shape[1])), a["char_embed"]])
    emb = table[chars].astype(np.float64)
    features = []
    for i, (w, n) in enumerate(cnn["filters"]):
        kernel = a[f"CNN/W_cnn_{i}"][0].astype(np.float64)
        conv = np.array([sum(emb[p + k] @ kernel[k] for k in range(w))
                         for p in range(maxc - w + 1)]) + a[f"CNN/b_cnn_{i}"]
        pooled = conv.max(axis=0)
        features.append(np.maximum(pooled, 0) if cnn["activation"] == "relu" else np.tanh(pooled))
    x = np.concatenate(features)
    for k in range(cnn["n_highway"]):
        g = _sigmoid(x @ a[f"CNN_high_{k}/W_carry"] + a[f"CNN_high_{k}/b_carry"])
        h = np.maximum(x @ a[f"CNN_high_{k}/W_transform"] + a[f"CNN_high_{k}/b_transform"], 0)
        x = g * h + (1 - g) * x
    return x @ a["CNN_proj/W_proj"] + a["CNN_proj/b_proj"]


def ref_lstm(xs, prefix, opt, a):
    lstm = opt["lstm"]
    w, b, wp = (a[f"{prefix}/W_0"].astype(np.float64), a[f"{prefix}/B"],
                a[f"{prefix}/W_P_0"].astype(np.float64))
    cells = lstm["dim"]
    h, c, out = np.zeros(wp.shape[1]), np.zeros(cells), []
    for x in xs:
        z = np.concatenate([x, h]) @ w + b
        i, j, f, o = (z[q * cells:(q + 1) * cells] for q in range(4))
        c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(j)
        if lstm.get("cell_clip"):
            c = np.clip(c, -lstm["cell_clip"], lstm["cell_clip"])
        h = (_sigmoid(o) * np.tanh(c)) @ wp
        if lstm.get("proj_clip"):
            h = np.clip(h, -lstm["proj_clip"], lstm["proj_clip"])
        out.append(h)
    return np.array(out)


def ref_elmo(tokens, opt, a):
    """(tokens, L + 1, 2P) in float64, each sentence from zero states."""
    xs = np.array([ref_encode(t, opt, a) for t in ["<S>"] + tokens + ["</S>"]])
    layers = [np.concatenate([xs, xs], axis=1)]
    directions = []
    for d, seq in ((0, xs), (1, xs[::-1])):
        outs, inp = [], seq
        for layer in range(opt["lstm"]["n_layers"]):
            h = ref_lstm(inp, f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell", opt, a)
            if layer > 0 and opt["lstm"]["use_skip_connections"]:
                h = h + inp
            outs.append(h if d == 0 else h[::-1])
            inp = h
        directions.append(outs)
    for fw, bw in zip(*directions):
        layers.append(np.concatenate([fw, bw], axis=1))
    return np.stack(layers, axis=1)[1:-1]


def _tokens(s):
    return s.split() if isinstance(s, str) else s


def assert_close(got, ref):
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))


# ----------------------------------------------------------------- correctness
@pytest.mark.parametrize("changes", [
    {},
    {"char_cnn.activation": "tanh"},
    {"lstm.use_skip_connections": False, "char_cnn.n_highway": 1},
    {"char_cnn.n_highway": 0, "lstm.n_layers": 1, "lstm.cell_clip": None,
     "lstm.proj_clip": None},
])
def test_forward_pass_equals_the_numpy_reference(tmp_path, changes):
    opt = tiny_options(**changes)
    arrays = random_arrays(opt, seed=len(changes))
    lm = load_elmo(*write_model(tmp_path, opt, arrays))
    got = lm.embed(SENTENCES, thread=1)
    for sentence, vectors in zip(SENTENCES, got):
        assert vectors.dtype == np.float32
        if not _tokens(sentence):
            assert vectors.shape == (0, opt["lstm"]["n_layers"] + 1, 12)
            continue
        assert_close(vectors, ref_elmo(_tokens(sentence), opt, arrays))


def test_layers_average_top_and_mix(tmp_path):
    lm = load_elmo(*write_model(tmp_path))
    full = lm.embed(SENTENCES, thread=1)
    for layer in (0, 1, 2):
        for a, b in zip(lm.embed(SENTENCES, layer=layer, thread=1), full):
            np.testing.assert_array_equal(a, b[:, layer])
    for a, b in zip(lm.embed(SENTENCES, layer="top"), full):
        np.testing.assert_array_equal(a, b[:, 2])
    for a, b in zip(lm.embed(SENTENCES, layer="average"), full):
        np.testing.assert_allclose(a, b.mean(axis=1), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(mix(b, [0, 0, 0]), b.mean(axis=1), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(mix(b, [-50, -50, 50], gamma=2.0), 2 * b[:, 2], rtol=1e-5,
                                   atol=1e-6)
    # layer 0 is the token encoding twice, the same for a word in any sentence
    assert np.array_equal(full[0][:, 0, :6], full[0][:, 0, 6:])
    assert np.array_equal(full[0][1, 0], full[1][1, 0])  # "bank"
    assert not np.allclose(full[0][1, 2], full[1][1, 2])  # in context: not the same
    vectors = lm.sentence_vectors(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 12) and not vectors[3].any()
    np.testing.assert_allclose(vectors[0], full[0].mean(axis=(0, 1)), rtol=1e-5, atol=1e-6)


def test_batching_and_threads_change_nothing(tmp_path):
    lm = load_elmo(*write_model(tmp_path))
    many = [s for _ in range(7) for s in SENTENCES]
    alone = [lm.embed([s], thread=1)[0] for s in SENTENCES]
    for thread, batch in ((1, 64), (2, 3), (2, 1)):
        together = lm.embed(many, thread=thread, batch_size=batch)
        for i, v in enumerate(together):
            np.testing.assert_allclose(v, alone[i % len(SENTENCES)], rtol=1e-6, atol=1e-6)


def test_thread_is_the_number_of_threads_used(tmp_path):
    import threading
    import time

    lm = load_elmo(*write_model(tmp_path))
    seen = set()
    packed = lm._embed_packed

    def recording(*args):
        seen.add(threading.current_thread().name)
        time.sleep(0.002)  # long enough for another thread to take the next batch
        return packed(*args)
    lm._embed_packed = recording
    many = [s for _ in range(40) for s in SENTENCES]
    for thread in (1, 2):
        seen.clear()
        lm.embed(many, thread=thread, batch_size=2)
        assert len(seen) == thread


def test_elmo_file_round_trip_and_dump(tmp_path):
    options, weights = write_model(tmp_path)
    lm = load_elmo(options, weights=weights)
    code, _, err = run("elmo-convert", options, weights, "-output", tmp_path / "lm")
    assert code == 0, err
    mapped = load_elmo(tmp_path / "lm.elmo")
    assert isinstance(mapped, ElmoModel) and mapped.options == lm.options
    for a, b in zip(mapped.embed(SENTENCES), lm.embed(SENTENCES)):
        assert np.array_equal(a, b)
    assert embtk.load_elmo(str(tmp_path / "lm.elmo")).dim == 12
    code, out, err = run("dump", tmp_path / "lm.elmo", "args")
    assert code == 0, err
    assert b"lstm.projection_dim 6\n" in out and b"char_cnn.activation relu\n" in out
    code, out, err = run("dump", tmp_path / "lm.elmo", "dict")
    assert_one_line_error(code, err)


# ----------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("elmo")
    options, weights = write_model(directory)
    lm = load_elmo(options, weights=weights)
    lm.save(directory / "lm.elmo")
    return directory, options, weights, lm


INPUT = "the bank of the river\n\nnaïve x\n".encode() + b"caf\xe9 au lait\n"


def _sentences(out: bytes) -> list:
    """The token lines of each sentence: every sentence ends with an empty line."""
    assert out.endswith(b"\n")
    blocks, current = [], []
    for line in out[:-1].split(b"\n"):
        if line:
            current.append(line)
        else:
            blocks.append(current)
            current = []
    assert not current
    return blocks


def test_elmo_vectors_prints_tokens_and_values(model_files):
    directory, options, weights, lm = model_files
    code, out, err = run("elmo-vectors", options, "-weights", weights, "-layer", "top",
                         "-thread", "1", input=INPUT)
    assert code == 0, err
    blocks = _sentences(out)
    assert [len(b) for b in blocks] == [5, 0, 2, 3]
    lines = blocks[0]
    assert [line.split(b" ")[0] for line in lines] == b"the bank of the river".split()
    expected = lm.embed(["the bank of the river"], layer="top")[0]
    for line, row in zip(lines, expected):
        assert line.endswith(b" ") and line[:-1].split(b" ")[1:] == \
            [b"%.5g" % v for v in row.tolist()]
    # bytes that are not UTF-8 go to the model as they are, and are printed back
    assert blocks[3][0].startswith(b"caf\xe9 ")
    raw = lm.embed([[b"caf\xe9", b"au", b"lait"]], layer="top")[0]
    assert blocks[3][0].split(b" ")[1] == b"%.5g" % raw[0, 0]

    code, out2, err = run("elmo-vectors", directory / "lm.elmo", "-layer", "all", input=INPUT)
    assert code == 0, err
    first = out2.split(b"\n")[0].split(b" ")
    assert first[0] == b"the" and len(first) == 1 + 36 + 1  # 3 layers x 12, trailing ""


def test_elmo_vectors_sentence_mode(model_files):
    directory, _, _, lm = model_files
    code, out, err = run("elmo-vectors", directory / "lm.elmo", "-sentence", input=INPUT)
    assert code == 0, err
    lines = out.split(b"\n")
    assert len(lines) == 5 and lines[-1] == b""
    expected = lm.sentence_vectors(["the bank of the river", ""])
    assert lines[0] == b"".join(b"%.5g " % v for v in expected[0].tolist())
    assert lines[1] == b"0 " * 12


def test_elmo_vectors_hdf5_output_is_allennlp_layout(model_files, tmp_path):
    directory, _, _, lm = model_files
    target = tmp_path / "out.hdf5"
    code, out, err = run("elmo-vectors", directory / "lm.elmo", "-layer", "all", "-output",
                         target, input=INPUT)
    assert code == 0 and out == b"", err
    with h5py.File(target, "r") as f:
        assert sorted(f) == ["0", "1", "2", "3", "sentence_to_index"]
        index = json.loads(f["sentence_to_index"][0])
        assert index["the bank of the river"] == "0" and index["naïve x"] == "2"
        expected = lm.embed(["the bank of the river"])[0]
        assert f["0"].shape == (3, 5, 12) and f["1"].shape == (3, 0, 12)
        np.testing.assert_array_equal(f["0"][()], expected.transpose(1, 0, 2))
    code, _, err = run("elmo-vectors", directory / "lm.elmo", "-output", target, input=INPUT)
    with h5py.File(target, "r") as f:
        assert f["0"].shape == (5, 12)


@pytest.mark.parametrize("mutate,message", [
    (lambda o, a: a.pop("CNN/W_cnn_1"), "has no dataset CNN/W_cnn_1"),
    (lambda o, a: a.update({"CNN_proj/W_proj": np.zeros((3, 3), np.float32)}),
     "dataset CNN_proj/W_proj has shape (3, 3), the options need (15, 6)"),
    (lambda o, a: a.update({"char_embed": np.zeros((261, 4), np.int32)}),
     "dataset char_embed holds int32, not floating-point numbers"),
    (lambda o, a: o["lstm"].pop("dim"), "lstm.dim is missing"),
    (lambda o, a: o["char_cnn"].update(activation="sigmoid"),
     "char_cnn.activation 'sigmoid' is not supported (only relu and tanh)"),
    (lambda o, a: o.pop("char_cnn"), "the options have no char_cnn section"),
    (lambda o, a: o["char_cnn"].update(filters=[[1, -4]]), "a char_cnn filter count is -4"),
    (lambda o, a: a["CNN/b_cnn_0"].__setitem__(0, np.nan), "holds NaN or infinite values"),
])
def test_bad_models_are_one_line_errors(tmp_path, mutate, message):
    opt = tiny_options()
    arrays = random_arrays(opt)
    mutate(opt, arrays)
    options, weights = write_model(tmp_path, opt, arrays)
    with pytest.raises(EmbtkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_elmo(options, weights=weights)
    code, _, err = run("elmo-convert", options, weights, "-output", tmp_path / "x")
    assert_one_line_error(code, err)
    assert message in err and not (tmp_path / "x.elmo").exists()


def test_bad_elmo_files_are_one_line_errors(model_files, tmp_path):
    directory, options, weights, _ = model_files
    data = (directory / "lm.elmo").read_bytes()
    cases = {"truncated": data[:-5], "header": data[:10], "foreign": b"hello world\n" * 20,
             "extended": data + b"\0" * 64, "version": data[:8] + b"\3" + data[9:]}
    for name, content in cases.items():
        path = tmp_path / f"{name}.elmo"
        path.write_bytes(content)
        with pytest.raises(EmbtkError):
            load_elmo(path)
        code, _, err = run("elmo-vectors", path, input=b"a b\n")
        assert_one_line_error(code, err)
    fifo = tmp_path / "pipe.elmo"
    os.mkfifo(fifo)  # never opened: opening would wait for a writer
    with pytest.raises(EmbtkError, match="not a regular file"):
        load_elmo(fifo)
    code, _, err = run("dump", fifo, "args")
    assert_one_line_error(code, err)
    code, _, err = run("elmo-vectors", options, input=b"a b\n")
    assert_one_line_error(code, err)
    assert "give its weights too" in err
    code, _, err = run("elmo-vectors", weights, input=b"a b\n")
    assert_one_line_error(code, err)
    code, _, err = run("elmo-vectors", directory / "lm.elmo", "-layer", "7", input=b"a\n")
    assert_one_line_error(code, err)


def test_bad_sentences(model_files):
    _, _, _, lm = model_files
    from embtk.elmo import MAX_SENTENCE_TOKENS

    with pytest.raises(EmbtkError, match="more than the limit of 10,000"):
        lm.embed(["a " * (MAX_SENTENCE_TOKENS + 1)])
    with pytest.raises(TypeError):
        lm.embed("a single string")
    with pytest.raises(TypeError):
        lm.embed([3])
    with pytest.raises(EmbtkError):
        lm.embed(["a"], layer=3)
    assert lm.embed([]) == []


def test_without_h5py_one_line_says_what_to_install(model_files, monkeypatch):
    import sys

    directory, options, weights, _ = model_files
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` raises ImportError
    with pytest.raises(EmbtkError, match=r"needs h5py: pip install 'embtk\[elmo\]'"):
        load_elmo(options, weights=weights)
    code, _, err = run("elmo-vectors", directory / "lm.elmo", "-output", directory / "o.hdf5",
                       input=b"a\n")
    assert_one_line_error(code, err)
    assert "pip install 'embtk[elmo]'" in err
    assert len(load_elmo(directory / "lm.elmo").embed(["a b"])[0]) == 2  # .elmo needs no h5py
