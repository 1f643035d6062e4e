"""predicting.predict_text (encoding and prediction in one kernel, what predict and the
CLI's predict use) against the two-step path it replaces: Dictionary.encode, then
vectors.predict_lines (what evaluate and test still use)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import embtk

DATA = Path(__file__).resolve().parent / "data"


def _reference(model, data: bytes, k, threshold):
    parts = model.predictor.chunks(data, k, threshold, then=lambda p: p[:3], threads=1)
    if not parts:
        return None
    return tuple(np.concatenate(column) for column in zip(*parts))


def _tricky_text(model, seed=0) -> bytes:
    """Lines of known words, labels, unknown words, literal `</s>` tokens, odd bytes and
    separators, empty lines, and lines longer than the kernel's first buffers."""
    rng = random.Random(seed)
    words = [w.encode() for w in model.words[:300]] + [w.encode() for w in model.labels]
    odd = [b"</s>", b"__label__nope", b"\xff\xfe", b"zzqx", "\u00e9t\u00e9".encode(),
           b"</s>x", b"x</s>", b"\x00", b"\xe4\xb8\xad\xe6\x96\x87"]
    seps = [b" ", b"  ", b"\t", b"\r", b"\v", b"\f", b"\x00"]
    lines = []
    for i in range(400):
        n = rng.choice([0, 1, 2, 5, 10, 70, 300]) if i % 7 else rng.randint(0, 3)
        tokens = [rng.choice(odd) if rng.random() < 0.15 else rng.choice(words)
                  for _ in range(n)]
        line = b""
        for t in tokens:
            line += rng.choice(seps) + t
        lines.append(line + rng.choice([b"", b" ", b"\t"]))
    return b"\n".join(lines)  # no newline after the last line


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small classifiers covering the kernel's branches: word rows only, char n-grams,
    each loss, and a quantized (pruned) model."""
    out = tmp_path_factory.mktemp("predicting")
    train = str(DATA / "authors.train")
    common = dict(dim=8, epoch=1, thread=1, verbose=0, wordNgrams=2, bucket=5000)
    built = {
        "softmax": embtk.train_supervised(train, **common),
        "ngrams-hs": embtk.train_supervised(train, loss="hs", minn=2, maxn=4, **common),
        "ova": embtk.train_supervised(train, loss="ova", wordNgrams=3, dim=8, epoch=1,
                                      thread=1, verbose=0, bucket=5000),
        "no-buckets": embtk.train_supervised(train, dim=8, epoch=1, thread=1, verbose=0,
                                             bucket=0),
    }
    quantized = embtk.train_supervised(train, **common)
    quantized.quantize(input=train, cutoff=500, retrain=False, qnorm=True)
    path = out / "q.ftz"
    quantized.save_model(str(path))
    built["quantized"] = embtk.load_model(str(path))
    return built


@pytest.mark.parametrize("name", ["softmax", "ngrams-hs", "ova", "no-buckets", "quantized"])
@pytest.mark.parametrize("k,threshold", [(1, 0.0), (1, 0.6), (3, 0.0), (-1, 0.0), (2, 0.3)])
def test_predict_text_is_encode_then_predict_lines(models, name, k, threshold):
    model = models[name]
    data = _tricky_text(model) + b"\n" + (DATA / "authors.test").read_bytes()
    expected = _reference(model, data, k, threshold)
    for threads in (1, 3):
        got = model.predictor.arrays(data, k, threshold, threads=threads)
        assert len(got[0]) == len(expected[0])
        for a, b in zip(got, expected):
            assert a.dtype == b.dtype
            assert np.array_equal(a, b)


def test_predict_text_edge_buffers(models):
    model = models["softmax"]
    for data in (b"", b"\n", b"\n\n\n", b"   ", b"</s>", b"a", b"a </s> b </s>\n </s>",
                 b"\xff" * 10, b"x " * 5000):
        expected = _reference(model, data, 2, 0.0)
        got = model.predictor.arrays(data, 2, 0.0)
        if expected is None:
            assert len(got[0]) == 0
            continue
        for a, b in zip(got, expected):
            assert np.array_equal(a, b), data[:20]


def test_predict_list_matches_arrays(models):
    model = models["softmax"]
    lines = (DATA / "authors.test").read_text().splitlines()[:200]
    labels, probs = model.predict(lines, k=2)
    counts, p, ids = model.predictor.arrays(("\n".join(lines) + "\n").encode(), 2)
    assert [len(x) for x in labels] == counts.tolist()
    assert all(np.array_equal(a, b[:n]) for a, b, n in zip(probs, p, counts))
    assert labels[0] == [model.labels[i] for i in ids[0, :counts[0]]]


@pytest.mark.parametrize("k,threshold", [(1, 0.0), (2, 0.0), (-1, 0.2), (1, 0.7)])
def test_long_list_in_groups_is_the_single_buffer_answer(models, k, threshold, monkeypatch):
    from embtk import predicting as model_module

    model = models["softmax"]
    lines = (DATA / "authors.test").read_text().splitlines() * 6 + ["", "zzqx"]  # > _MANY_LINES
    labels, probs = model.predict(lines, k=k, threshold=threshold)  # in groups
    monkeypatch.setattr(model_module, "_MANY_LINES", 10 ** 9)
    expected_labels, expected_probs = model.predict(lines, k=k, threshold=threshold)
    assert labels == expected_labels
    assert len(probs) == len(expected_probs)
    for a, b in zip(probs, expected_probs):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    # a line that needs care (a newline, </s>, bytes) sends the whole list the old way
    with pytest.raises(ValueError):
        model.predict(lines + ["a\nb"])
    assert model.predict(lines[:-1] + ["whale </s> ship"])[0][-1] == model.predict(["whale"])[0][0]
    escaped = b"caf\xe9 whale".decode("utf-8", "surrogateescape")  # not UTF-8: the old way too
    assert model.predict(lines[:-1] + [escaped])[0][-1] == model.predict([b"caf\xe9 whale"])[0][0]
