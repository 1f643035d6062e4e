"""fileformat: .bin and .vec compatibility with the official fastText, and clear errors."""

from __future__ import annotations

import os
import random
import re
import resource
import struct
import subprocess
import sys

import numpy as np
import pytest

from embtk.args import Args
from embtk.dictionary import PackedWords
from embtk.errors import EmbtkError
from embtk.fileformat import ModelFile, load_bin, save_bin
from embtk.safeio import atomic_write
from embtk.vecformat import read_vec, write_vec

from conftest import assert_one_line_error, run

VOCAB = ("the cat dog sat on mat ran fast slow red blue green big small house tree "
         "river mountain über naïve café x").split()
LABELS = ["sport", "news", "tech"]

# Byte offsets of the fixed-size parts of a .bin.
ARGS_AT = 8                # 12 int32 + float64 after magic and version
LOSS_AT = ARGS_AT + 6 * 4
MODEL_AT = ARGS_AT + 7 * 4
BUCKET_AT = ARGS_AT + 8 * 4
DICT_AT = ARGS_AT + 56     # size, nwords, nlabels (int32), ntokens, pruneidx_size (int64)
ENTRIES_AT = DICT_AT + 28


def _corpus(path, n, labelled, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n):
            words = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(3, 12)))
            if labelled:
                words = f"__label__{rng.choice(LABELS)} {words}"
            f.write(words + "\n")
    return str(path)


def _official(model):
    """Official words (with labels for supervised models), counts and matrices."""
    words, counts = model.get_words(include_freq=True)
    words = [w.encode("utf-8") for w in words]
    counts = list(counts)
    if model.f.getArgs().model.name == "supervised":
        labels, label_counts = model.get_labels(include_freq=True)
        words += [w.encode("utf-8") for w in labels]
        counts += list(label_counts)
    return words, np.array(counts, dtype=np.int64)


@pytest.fixture(scope="module")
def models(tmp_path_factory, official_fasttext):
    fasttext = official_fasttext  # every test using these models needs the module
    d = tmp_path_factory.mktemp("ft")
    text = _corpus(d / "text.txt", 300, False, 1)
    labelled = _corpus(d / "labelled.txt", 300, True, 2)
    out = {}
    sg = fasttext.train_unsupervised(text, model="skipgram", dim=10, epoch=1, minCount=1,
                                     minn=2, maxn=3, bucket=1000, thread=1, verbose=0)
    sg.save_model(str(d / "sg.bin"))
    out["sg"] = (str(d / "sg.bin"), sg)
    cbow = fasttext.train_unsupervised(text, model="cbow", dim=8, epoch=1, minCount=1,
                                       minn=2, maxn=3, bucket=500, loss="hs", thread=1, verbose=0)
    cbow.save_model(str(d / "cbow.bin"))
    out["cbow"] = (str(d / "cbow.bin"), cbow)
    sup = fasttext.train_supervised(labelled, dim=10, epoch=1, minCount=1, wordNgrams=2,
                                    bucket=1000, thread=1, verbose=0)
    sup.save_model(str(d / "sup.bin"))
    out["sup"] = (str(d / "sup.bin"), sup)
    # wordNgrams 1 and no subwords: fastText stores bucket 0 and nwords input rows.
    sup1 = fasttext.train_supervised(labelled, dim=6, epoch=1, minCount=1, loss="ova",
                                     thread=1, verbose=0)
    sup1.save_model(str(d / "sup1.bin"))
    out["sup1"] = (str(d / "sup1.bin"), sup1)
    return out


ALL = ["sg", "cbow", "sup", "sup1"]


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


# ---------------------------------------------------------------------------
# load_bin / save_bin against the official fastText


@pytest.mark.parametrize("name", ALL)
def test_load_bin_matches_official(models, name):
    path, model = models[name]
    mf = load_bin(path)
    assert isinstance(mf, ModelFile)
    words, counts = _official(model)
    assert mf.words == words
    assert mf.counts.dtype == np.int64 and np.array_equal(mf.counts, counts)
    nlabels = len(model.get_labels()) if name.startswith("sup") else 0
    assert mf.types.dtype == np.int8
    assert list(mf.types) == [0] * (len(words) - nlabels) + [1] * nlabels
    assert mf.input.dtype == np.float32 and mf.output.dtype == np.float32
    assert np.array_equal(mf.input, model.get_input_matrix())
    assert np.array_equal(mf.output, model.get_output_matrix())
    assert mf.pruneidx is None and not mf.quant_input and not mf.quant_output
    assert mf.ntokens > 0

    fa = model.f.getArgs()
    a = mf.args
    assert isinstance(a, Args)
    assert (a.model, a.loss) == (fa.model.name, fa.loss.name)
    assert (a.dim, a.ws, a.epoch, a.minCount, a.neg, a.wordNgrams, a.bucket, a.minn, a.maxn,
            a.lrUpdateRate) == (fa.dim, fa.ws, fa.epoch, fa.minCount, fa.neg, fa.wordNgrams,
                                fa.bucket, fa.minn, fa.maxn, fa.lrUpdateRate)
    assert a.t == fa.t


@pytest.mark.parametrize("name", ALL)
def test_save_bin_of_loaded_model_is_byte_identical(models, name, tmp_path):
    path, _ = models[name]
    mf = load_bin(path)
    out = tmp_path / "copy.bin"
    save_bin(out, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, mf.pruneidx,
             mf.input, mf.output)
    assert _read(out) == _read(path)


@pytest.mark.parametrize("name", ALL)
def test_save_bin_from_packed_words_is_byte_identical(models, name, tmp_path):
    # what a model saves from: its entries packed in one array, no bytes object per entry
    path, _ = models[name]
    mf = load_bin(path)
    packed = PackedWords(mf.word_bytes, mf.word_offsets)
    out = tmp_path / "copy.bin"
    save_bin(out, mf.args, packed, mf.counts, mf.types, mf.ntokens, mf.pruneidx,
             mf.input, mf.output)
    assert _read(out) == _read(path)
    bad = PackedWords(np.concatenate([[0], mf.word_bytes]).astype(np.uint8),
                      mf.word_offsets + (np.arange(len(mf.word_offsets)) > 0))
    with pytest.raises(ValueError, match="NUL"):
        save_bin(out, mf.args, bad, mf.counts, mf.types, mf.ntokens, mf.pruneidx,
                 mf.input, mf.output)


@pytest.mark.parametrize("name", ["sg", "sup"])
def test_save_bin_loads_in_official_fasttext(models, name, tmp_path, official_fasttext):
    path, _ = models[name]
    mf = load_bin(path)
    rng = np.random.default_rng(0)
    new_input = rng.standard_normal(mf.input.shape).astype(np.float32)
    new_output = rng.standard_normal(mf.output.shape).astype(np.float32)
    out = str(tmp_path / "ours.bin")
    save_bin(out, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, None,
             new_input, new_output)
    theirs = official_fasttext.load_model(out)
    assert np.array_equal(theirs.get_input_matrix(), new_input)
    assert np.array_equal(theirs.get_output_matrix(), new_output)
    assert _official(theirs)[0] == mf.words
    again = load_bin(out)
    assert np.array_equal(again.input, new_input) and again.words == mf.words


def test_save_bin_writes_non_contiguous_and_float64_matrices(models, tmp_path):
    path, _ = models["sg"]
    mf = load_bin(path)
    wide = np.asfortranarray(np.array(mf.input, dtype=np.float64))
    out = tmp_path / "f64.bin"
    save_bin(out, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, None, wide, mf.output)
    assert _read(out) == _read(path)


@pytest.mark.parametrize("rows", [0, 1, 5242, 5243, 20000])
def test_dense_matrices_are_written_whole_in_pieces(rows):
    """Big matrices go out in 1 MB writes (see _write_dense); every byte, in order."""
    import io

    from embtk.fileformat import _WRITE_CHUNK, _write_dense

    matrix = np.random.default_rng(rows).standard_normal((rows, 50)).astype(np.float32)
    out = io.BytesIO()
    _write_dense(out, matrix)
    assert out.getvalue() == struct.pack("<qq", rows, 50) + matrix.tobytes()
    assert 4 * 50 * 20000 > 3 * _WRITE_CHUNK  # the largest case takes several writes


def test_save_bin_rejects_inconsistent_arguments(models, tmp_path):
    mf = load_bin(models["sg"][0])
    out = tmp_path / "bad.bin"
    with pytest.raises(ValueError):
        save_bin(out, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, None,
                 mf.input[:-1], mf.output)
    with pytest.raises(ValueError):
        save_bin(out, mf.args, mf.words[:-1], mf.counts, mf.types, mf.ntokens, None,
                 mf.input, mf.output)
    assert not out.exists()


def test_loaded_matrices_are_copy_on_write_maps(models, tmp_path):
    path = _write(tmp_path / "m.bin", _read(models["sg"][0]))
    before = _read(path)
    mf = load_bin(path)
    assert not mf.input.flags.owndata and mf.input.flags.writeable
    mf.input[:] += 1.0
    mf.output[0, 0] = 42.0
    assert _read(path) == before
    # Saving over the file it was loaded from is safe (the temp file is renamed over it).
    save_bin(path, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, None, mf.input, mf.output)
    again = load_bin(path)
    assert again.output[0, 0] == 42.0
    assert np.array_equal(again.input, mf.input)


def test_loaded_matrices_work_in_numba(models):
    numba = pytest.importorskip("numba")

    @numba.njit(cache=False)
    def bump_row(m, i, x):
        for j in range(m.shape[1]):
            m[i, j] += x
        return m[i].sum()

    mf = load_bin(models["sup"][0])
    before = np.array(mf.input[3])
    total = bump_row(mf.input, 3, np.float32(1.0))
    assert np.array_equal(mf.input[3], before + np.float32(1.0))
    assert total == pytest.approx(float(mf.input[3].sum()), rel=1e-5)


def test_version_11_supervised_forces_maxn_zero(models, tmp_path):
    data = bytearray(_read(models["sup"][0]))
    struct.pack_into("<i", data, 4, 11)
    struct.pack_into("<i", data, ARGS_AT + 10 * 4, 6)  # maxn 6 in the file
    mf = load_bin(_write(tmp_path / "v11.bin", data))
    assert mf.args.maxn == 0


def test_official_quantized_model_loads_and_truncations_are_reported(models, tmp_path,
                                                                     official_fasttext):
    path, _ = models["sup"]
    model = official_fasttext.load_model(path)
    model.quantize(input=None, retrain=False)
    ftz = tmp_path / "q.ftz"
    model.save_model(str(ftz))
    assert load_bin(ftz).quant_input
    data = ftz.read_bytes()
    for end in (len(data) - 1, len(data) - 1030, len(data) // 2):
        cut = tmp_path / "cut.ftz"
        cut.write_bytes(data[:end])
        with pytest.raises(EmbtkError, match="truncated or corrupt"):
            load_bin(cut)


@pytest.fixture(scope="module")
def ftz_files(models, tmp_path_factory, official_fasttext):
    """Official quantized models: plain, and pruned (-cutoff) with quantized norms."""
    d = tmp_path_factory.mktemp("ftz")
    out = {}
    for name, options in (("full", {}), ("pruned", {"cutoff": 300, "qnorm": True})):
        model = official_fasttext.load_model(models["sup"][0])
        model.quantize(input=None, retrain=False, **options)
        model.save_model(str(d / f"{name}.ftz"))
        out[name] = str(d / f"{name}.ftz")
    return out


def _input_codesize_at(data):
    """Offset of the input matrix's int32 codesize in an .ftz."""
    prune_size, = struct.unpack_from("<q", data, DICT_AT + 20)
    quant_flag = _dict_end(data) + 8 * max(0, prune_size)
    assert data[quant_flag] == 1
    return quant_flag + 1 + 1 + 8 + 8  # quant_input, qnorm, m, n


@pytest.mark.parametrize("name", ["full", "pruned"])
@pytest.mark.parametrize("codesize,problem", [
    (-2 ** 31, "the input codes: a negative size -2147483648"),
    (-1, "the input codes: a negative size -1"),
])
def test_negative_code_size_is_reported(ftz_files, tmp_path, name, codesize, problem):
    data = bytearray(_read(ftz_files[name]))
    struct.pack_into("<i", data, _input_codesize_at(data), codesize)
    path = _write(tmp_path / "codes.ftz", data)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    assert str(info.value) == f"{path} is truncated or corrupt: {problem}"


def test_code_size_beyond_the_file_is_reported(ftz_files, tmp_path):
    data = bytearray(_read(ftz_files["full"]))
    at = _input_codesize_at(data)
    struct.pack_into("<i", data, at, 2 ** 31 - 1)
    path = _write(tmp_path / "codes.ftz", data)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    left = len(data) - (at + 4)
    assert str(info.value) == (f"{path} is truncated or corrupt (the file ends at byte {len(data)} "
                               f"while reading the input codes (2147483647 bytes, {left} left) "
                               f"at byte {at + 4})")


def test_pruned_model_bucket_is_limited(ftz_files, tmp_path):
    """A pruned model's bucket is backed by no bytes of the file, but the n-gram lookup
    allocates 4 bytes per bucket: 2^31-1 buckets would take 8 GiB."""
    data = bytearray(_read(ftz_files["pruned"]))
    struct.pack_into("<i", data, BUCKET_AT, 2 ** 31 - 1)
    path = _write(tmp_path / "bucket.ftz", data)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    assert str(info.value) == (f"{path}: corrupt or foreign model file: bucket is 2147483647 "
                               f"in a pruned model (expected at most 67108864)")
    from embtk.fileformat import MAX_PRUNED_BUCKET

    assert MAX_PRUNED_BUCKET == 2 ** 26
    struct.pack_into("<i", data, BUCKET_AT, MAX_PRUNED_BUCKET)
    assert load_bin(_write(tmp_path / "edge.ftz", data)).args.bucket == MAX_PRUNED_BUCKET


def test_pruned_model_beyond_the_bucket_limit_is_not_saved(ftz_files, tmp_path):
    """What the reader refuses, the writer does not write."""
    mf = load_bin(ftz_files["pruned"])
    mf.args.bucket = 2 ** 26 + 1
    out = tmp_path / "big.ftz"
    with pytest.raises(EmbtkError) as info:
        save_bin(out, mf.args, mf.words, mf.counts, mf.types, mf.ntokens, mf.pruneidx,
                 mf.input, mf.output)
    assert str(info.value) == (f"cannot save {out}: a pruned model's bucket must be at most "
                               "67108864 to load again, this one has 67108865")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Malformed .bin files: one EmbtkError each, never anything else


def _layout_offsets(path):
    """Interesting truncation points of a real .bin."""
    data = _read(path)
    size, = struct.unpack_from("<i", data, DICT_AT)
    pos = ENTRIES_AT
    entry_starts = []
    for _ in range(size):
        entry_starts.append(pos)
        pos = data.index(b"\0", pos) + 10
    dict_end = pos
    m, n = struct.unpack_from("<qq", data, dict_end + 1)
    out_header = dict_end + 1 + 16 + 4 * m * n + 1
    return sorted({0, 1, 4, 7, 8, 20, ARGS_AT + 55, DICT_AT, DICT_AT + 10, ENTRIES_AT,
                   ENTRIES_AT + 1, entry_starts[len(entry_starts) // 2] + 1,
                   entry_starts[-1] + 3, dict_end - 1, dict_end, dict_end + 1, dict_end + 9,
                   dict_end + 17, dict_end + 17 + 4 * m * n // 2, out_header - 1,
                   out_header, out_header + 8, out_header + 16, len(data) - 4, len(data) - 1})


@pytest.mark.parametrize("name", ["sg", "sup"])
def test_truncated_files(models, name, tmp_path):
    data = _read(models[name][0])
    for cut in _layout_offsets(models[name][0]):
        path = _write(tmp_path / f"cut{cut}.bin", data[:cut])
        with pytest.raises(EmbtkError) as info:
            load_bin(path)
        message = str(info.value)
        assert path in message and "\n" not in message
        if cut >= 8:
            assert "truncated" in message, (cut, message)


def _patched(models, tmp_path, fmt, offset, value, name="sg"):
    data = bytearray(_read(models[name][0]))
    struct.pack_into(fmt, data, offset, value)
    return _write(tmp_path / "patched.bin", data)


@pytest.mark.parametrize("fmt,offset,value,match", [
    ("<i", 0, 793712315, "bad magic number"),
    ("<i", 4, 13, "version 13"),
    ("<i", 4, 10, "version 10"),
    ("<i", LOSS_AT, 7, r"loss is 7 \(expected 1-4"),
    ("<i", MODEL_AT, 0, r"model is 0 \(expected 1-3"),
    ("<i", ARGS_AT, 0, "dim must be a positive integer, got 0"),
    ("<i", ARGS_AT, 11, "columns but the model's dim is 11"),
    ("<i", BUCKET_AT, 999, r"input matrix has \d+ rows, expected nwords \+ bucket = \d+ \+ 999"),
    ("<i", BUCKET_AT, -1, "bucket must be zero or positive, got -1"),
    ("<i", DICT_AT, 1000, "invalid dictionary sizes"),
    ("<i", DICT_AT, -5, "invalid dictionary sizes"),
    ("<i", DICT_AT + 4, 5, "invalid dictionary sizes"),
    ("<q", DICT_AT + 12, -3, "invalid token count"),
    ("<q", DICT_AT + 20, -2, "invalid pruned-index size"),
    ("<i", DICT_AT, 2 ** 31 - 1, "invalid dictionary sizes"),
])
def test_corrupt_header_fields(models, tmp_path, fmt, offset, value, match):
    with pytest.raises(EmbtkError, match=match):
        load_bin(_patched(models, tmp_path, fmt, offset, value))


def _arg_at(name):
    names = ("dim ws epoch minCount neg wordNgrams loss model bucket minn maxn "
             "lrUpdateRate").split()
    return ARGS_AT + 4 * names.index(name)


@pytest.mark.parametrize("name,value,problem", [
    ("dim", -3, "dim must be a positive integer, got -3"),
    ("dim", 2 ** 31 - 1, "dim 2147483647 is unreasonably large"),
    ("ws", 0, "ws must be a positive integer, got 0"),
    ("epoch", -2, "epoch must be a positive integer, got -2"),
    ("minCount", -1, "minCount must be zero or positive, got -1"),
    ("neg", 0, "neg must be a positive integer, got 0"),
    ("wordNgrams", 0, "wordNgrams must be a positive integer, got 0"),
    ("wordNgrams", -5, "wordNgrams must be a positive integer, got -5"),
    ("wordNgrams", 2 ** 30, "wordNgrams must be at most 100, got 1073741824"),
    ("loss", 0, "loss is 0 (expected 1-4: hs, ns, softmax, one-vs-all)"),
    ("model", 4, "model is 4 (expected 1-3: cbow, skipgram, supervised)"),
    ("bucket", 0, "bucket must be positive when subwords or word n-grams are used"),
    ("minn", -7, "minn must be zero or positive, got -7"),
    ("minn", 5, "minn (5) must not exceed maxn (3)"),
    ("maxn", -1, "maxn must be zero or positive, got -1"),
    ("maxn", 2 ** 31 - 1, "maxn must be at most 100, got 2147483647"),
    ("maxn", 3 ^ (1 << 24), "maxn must be at most 100, got 16777219"),  # one flipped bit
    ("lrUpdateRate", 0, "lrUpdateRate must be a positive integer, got 0"),
])
def test_header_options_are_range_checked(models, tmp_path, name, value, problem):
    """Every option in the header obeys training's rules and the loader's memory
    limits; the one-line error names the option and its value."""
    path = _patched(models, tmp_path, "<i", _arg_at(name), value)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    assert str(info.value) == f"{path}: corrupt or foreign model file: {problem}"


@pytest.mark.parametrize("value,shown", [(0.0, "0.0"), (-1.0, "-1.0"), (float("nan"), "nan")])
def test_header_sampling_threshold_is_checked(models, tmp_path, value, shown):
    path = _patched(models, tmp_path, "<d", ARGS_AT + 48, value)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    assert str(info.value) == f"{path}: corrupt or foreign model file: t must be positive, got {shown}"


def test_header_limits_admit_their_boundaries(models, tmp_path):
    data = bytearray(_read(models["sup"][0]))
    struct.pack_into("<i", data, _arg_at("wordNgrams"), 100)
    struct.pack_into("<ii", data, _arg_at("minn"), 1, 100)
    mf = load_bin(_write(tmp_path / "edge.bin", data))
    assert (mf.args.wordNgrams, mf.args.minn, mf.args.maxn) == (100, 1, 100)


@pytest.mark.parametrize("option,value", [("maxn", 101), ("wordNgrams", 101)])
def test_training_refuses_what_loading_would(option, value):
    """The limits live in Args.validate: a model that trains also loads."""
    with pytest.raises(EmbtkError) as info:
        Args.for_model("skipgram", **{option: value}).validate()
    assert str(info.value) == f"-{option} must be at most 100, got {value}"
    Args.for_model("skipgram", **{option: 100}).validate()


def test_negative_word_count_is_rejected(models, tmp_path):
    data = bytearray(_read(models["sg"][0]))
    count_at = data.index(b"\0", ENTRIES_AT) + 1
    struct.pack_into("<q", data, count_at, -4)
    path = _write(tmp_path / "count.bin", data)
    with pytest.raises(EmbtkError) as info:
        load_bin(path)
    assert str(info.value) == f"{path} is truncated or corrupt: dictionary entry 0 has a negative count -4"


def test_pruned_but_unquantized_is_rejected(models, tmp_path):
    data = bytearray(_read(models["sg"][0]))
    dict_end = _dict_end(data)
    struct.pack_into("<q", data, DICT_AT + 20, 2)
    data[dict_end:dict_end] = struct.pack("<4i", 5, 0, 9, 1)
    with pytest.raises(EmbtkError, match="pruned"):
        load_bin(_write(tmp_path / "p.bin", data))


def _dict_end(data):
    size, = struct.unpack_from("<i", data, DICT_AT)
    pos = ENTRIES_AT
    for _ in range(size):
        pos = data.index(b"\0", pos) + 10
    return pos


def test_absurd_sizes_are_reported_not_allocated(models, tmp_path):
    data = bytearray(_read(models["sg"][0]))
    struct.pack_into("<iii", data, DICT_AT, 2 ** 31 - 1, 2 ** 31 - 2, 1)
    with pytest.raises(EmbtkError, match="truncated"):
        load_bin(_write(tmp_path / "a.bin", data))


def test_matrix_headers_checked(models, tmp_path):
    path, _ = models["sup"]
    data = _read(path)
    mf = load_bin(path)
    in_header = len(data) - (16 + mf.output.nbytes) - 1 - (16 + mf.input.nbytes)
    out_header = len(data) - (16 + mf.output.nbytes)
    cases = [
        (in_header, (-1, 10), "negative size"),
        (in_header, (10 ** 12, 10), "rows"),
        (out_header, (4, 10), "output matrix has 4 rows, expected the number of labels, 3"),
        (out_header, (3, 9), "columns"),
    ]
    for offset, (m, n), match in cases:
        bad = bytearray(data)
        struct.pack_into("<qq", bad, offset, m, n)
        with pytest.raises(EmbtkError, match=match):
            load_bin(_write(tmp_path / "m.bin", bad))
    bad = bytearray(data)
    bad[in_header - 1] = 7  # the quant_input flag must be a boolean
    with pytest.raises(EmbtkError, match="not a boolean"):
        load_bin(_write(tmp_path / "m.bin", bad))
    bad = bytearray(data)
    bad[in_header - 1] = 1  # a dense matrix read as a quantized one
    with pytest.raises(EmbtkError, match="truncated or corrupt"):
        load_bin(_write(tmp_path / "m.bin", bad))


def test_label_type_mismatch(models, tmp_path):
    data = bytearray(_read(models["sup"][0]))
    nwords, nlabels = struct.unpack_from("<ii", data, DICT_AT + 4)
    struct.pack_into("<ii", data, DICT_AT + 4, nwords - 1, nlabels + 1)
    with pytest.raises(EmbtkError, match="types do not match"):
        load_bin(_write(tmp_path / "t.bin", data))


def test_trailing_garbage(models, tmp_path):
    path = _write(tmp_path / "g.bin", _read(models["sg"][0]) + b"\0\0\0junk")
    with pytest.raises(EmbtkError, match="7 unexpected bytes after the output matrix"):
        load_bin(path)


def _embtk_in_1gb(*args, stdin=b"", timeout=60):
    """`python -m embtk ARGS` with 1 GB of address space (a normal run needs about a
    third of it) and a timeout: a reader that does not bound its reads fails fast."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    env = {k: v for k, v in os.environ.items() if k != "EMBTK_DEBUG"}
    return subprocess.run([sys.executable, "-m", "embtk", *args], input=stdin, env=env,
                          capture_output=True, timeout=timeout, preexec_fn=limit)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_is_refused_as_a_model():
    done = _embtk_in_1gb("predict", "/dev/zero", "-")
    assert done.returncode == 1
    assert done.stderr.decode() == ("embtk: error: cannot read /dev/zero as a model: it is a "
                                    "device, not a regular file (save the model to a file "
                                    "first)\n")
    with pytest.raises(EmbtkError, match="it is a device, not a regular file"):
        load_bin("/dev/zero")


@pytest.mark.slow
def test_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    """Opening a FIFO blocks until something writes to it: the check comes first."""
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    try:
        done = _embtk_in_1gb("dump", str(fifo), "args", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("embtk waited for a writer on a FIFO")
    assert done.returncode == 1
    assert done.stderr.decode() == (f"embtk: error: cannot read {fifo} as a model: it is a "
                                    "pipe, not a regular file (save the model to a file "
                                    "first)\n")


def test_not_model_files(tmp_path):
    cases = {
        "empty.bin": b"",
        "tiny.bin": b"\xba\x16",
        "random.bin": np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "text.bin": b"hello world\n" * 10,
        "magic_only.bin": struct.pack("<i", 793712314),
    }
    for name, data in cases.items():
        with pytest.raises(EmbtkError) as info:
            load_bin(_write(tmp_path / name, data))
        assert name in str(info.value)
    with pytest.raises(EmbtkError, match="empty"):
        load_bin(tmp_path / "empty.bin")
    with pytest.raises(EmbtkError, match="bad magic"):
        load_bin(tmp_path / "random.bin")
    with pytest.raises(EmbtkError, match="directory"):
        load_bin(tmp_path)
    with pytest.raises(EmbtkError, match="no such file"):
        load_bin(tmp_path / "missing.bin")


def test_random_corruption_is_one_clear_error_or_a_consistent_model(models, tmp_path):
    # The contract (README, fileformat): a corrupt model file is one EmbtkError naming the
    # file, in one line; on the command line, one line on stderr and exit status 1.
    # Random bytes in the header and first dictionary entries; two files in three are
    # also cut short, which must always be an error. A whole-length file may still be a
    # valid model (a changed count, say): then it must be self-consistent and usable.
    data = _read(models["sup"][0])
    rng = np.random.default_rng(7)
    path = str(tmp_path / "fuzz.bin")
    outcomes = {"error": 0, "loaded": 0}
    for i in range(150):
        bad = bytearray(data)
        for pos in rng.integers(0, ENTRIES_AT + 40, rng.integers(1, 4)):
            bad[pos] = int(rng.integers(0, 256))
        end = len(bad) if i % 3 == 0 else int(rng.integers(len(bad) // 2, len(bad)))
        _write(path, bytes(bad[:end]))
        code, out, err = run("dump", path, "args")
        try:
            mf = load_bin(path)
        except EmbtkError as e:
            outcomes["error"] += 1
            assert path in str(e) and "\n" not in str(e), (i, str(e))
            assert_one_line_error(code, err)
            assert out == b"" and path in err, (i, err)
            continue
        outcomes["loaded"] += 1
        assert end == len(data), f"case {i}: a file cut at byte {end} of {len(data)} loaded"
        nwords = int(np.count_nonzero(mf.types == 0))
        assert len(mf.words) == len(mf.counts) == len(mf.types)
        outputs = len(mf.types) - nwords if mf.args.model == "supervised" else nwords
        assert mf.pruneidx is None and mf.input.shape == (nwords + mf.args.bucket, mf.args.dim)
        assert mf.output.shape == (outputs, mf.args.dim)
        assert code == 0 and err == "" and f"dim {mf.args.dim}\n".encode() in out, (i, err)
    assert outcomes["error"] >= 100 and outcomes["loaded"] >= 5, outcomes  # both paths ran


# ---------------------------------------------------------------------------
# .vec


def _expected_vec(words, vectors):
    lines = [b"%d %d\n" % vectors.shape]
    for w, row in zip(words, vectors):
        lines.append(w + b" " + b"".join(b"%.5g " % float(v) for v in row) + b"\n")
    return b"".join(lines)


def test_write_vec_matches_fasttext_text(models, tmp_path):
    path, model = models["sg"]
    words = [w.encode("utf-8") for w in model.get_words()]
    vectors = np.array([model.get_word_vector(w) for w in model.get_words()])
    out = tmp_path / "sg.vec"
    write_vec(out, words, vectors)
    data = _read(out)
    assert data == _expected_vec(words, vectors)
    assert data.startswith(b"%d 10\n</s> " % len(words))
    assert "über".encode() in data  # raw UTF-8 bytes, not escaped


@pytest.mark.parametrize("value,text", [
    (0.00012345, b"0.00012345"), (1.5e-06, b"1.5e-06"), (-0.5, b"-0.5"), (1.0, b"1"),
    (0.0, b"0"), (-0.0, b"-0"), (123456.0, b"1.2346e+05"), (0.1, b"0.1"),
    (12345.0, b"12345"), (3.14159265, b"3.1416"), (1e-5, b"1e-05"), (2.5e10, b"2.5e+10"),
])
def test_write_vec_number_format(tmp_path, value, text):
    write_vec(tmp_path / "n.vec", [b"w"], np.array([[value]], dtype=np.float32))
    expected = b"%.5g" % float(np.float32(value))
    assert expected == text
    assert _read(tmp_path / "n.vec") == b"1 1\nw " + text + b" \n"


def test_write_vec_empty_and_str_words(tmp_path):
    write_vec(tmp_path / "e.vec", [], np.zeros((0, 4), np.float32))
    assert _read(tmp_path / "e.vec") == b"0 4\n"
    write_vec(tmp_path / "s.vec", ["é", b"b"], np.ones((2, 2), np.float32))
    assert _read(tmp_path / "s.vec") == "2 2\né 1 1 \nb 1 1 \n".encode()
    with pytest.raises(ValueError):
        write_vec(tmp_path / "x.vec", [b"a"], np.ones((2, 2), np.float32))


def test_read_vec_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    vectors = (rng.standard_normal((300, 7)) * 0.3).astype(np.float32)
    vectors[0, :3] = [1e-30, -2.5e12, 0]
    words = [b"w%d" % i for i in range(299)] + ["naïve".encode()]
    write_vec(tmp_path / "r.vec", words, vectors)
    got_words, got = read_vec(tmp_path / "r.vec")
    assert got_words == words
    assert got.dtype == np.float32 and got.shape == (300, 7)
    expected = np.array([[float(b"%.5g" % float(v)) for v in row] for row in vectors], np.float32)
    assert np.array_equal(got, expected)
    w5, v5 = read_vec(tmp_path / "r.vec", max_words=5)
    assert w5 == words[:5] and np.array_equal(v5, expected[:5])
    w0, v0 = read_vec(tmp_path / "r.vec", max_words=0)
    assert w0 == [] and v0.shape == (0, 7)


def test_read_vec_of_official_model(models, tmp_path):
    path, model = models["cbow"]
    words = model.get_words()
    vectors = np.array([model.get_word_vector(w) for w in words])
    write_vec(tmp_path / "c.vec", [w.encode() for w in words], vectors)
    got_words, got = read_vec(tmp_path / "c.vec")
    assert got_words == [w.encode() for w in words]
    assert np.allclose(got, vectors, rtol=1e-4, atol=1e-9)


def test_read_vec_glove_layout(tmp_path):
    path = _write(tmp_path / "g.txt", b"the 0.1 -0.2 3\nof 4 5 6e-1\r\n\nand 1 1 1\n")
    words, vectors = read_vec(path)
    assert words == [b"the", b"of", b"and"]
    assert np.array_equal(vectors, np.array([[0.1, -0.2, 3], [4, 5, 0.6], [1, 1, 1]], np.float32))
    words, vectors = read_vec(path, max_words=2)
    assert words == [b"the", b"of"] and vectors.shape == (2, 3)


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"\n\n  \n", "empty"),
    (b"2 3\na 1 2 3\nb 1 2\n", "line 3 of .* has 2 values, expected 3"),
    (b"2 3\na 1 2 3\nb 1 2 3 4\n", "line 3 of .* has 4 values, expected 3"),
    (b"2 3\na 1 2 3\nb 1 zz 3\n", "line 3 of .* not a number: 'zz'"),
    (b"2 3\na 1 2 3\nb\n", "line 3 of .* has 0 values, expected 3"),
    (b"3 3\na 1 2 3\nb 1 2 3\n", "truncated"),
    (b"1 3\na 1 2 3\nb 1 2 3\n", "more lines"),
    (b"x y\na 1 2\n", "header"),
    (b"2 0\n", "invalid header"),
    (b"-1 3\n", "invalid header"),
    (b"word\n", "header"),
    (b"a 1 2\nb 1 2 3\n", "line 2 of .* has 3 values, expected 2"),
    (b"a 1 2\nb 1 nan2\n", "line 2 of .* not a number"),
])
def test_read_vec_errors(tmp_path, content, match):
    path = _write(tmp_path / "bad.vec", content)
    with pytest.raises(EmbtkError, match=match):
        read_vec(path)


def test_read_vec_missing_and_directory(tmp_path):
    with pytest.raises(EmbtkError, match="no such file"):
        read_vec(tmp_path / "nope.vec")
    with pytest.raises(EmbtkError, match="directory"):
        read_vec(tmp_path)


def test_read_vec_header_does_not_allocate_blindly(tmp_path):
    path = _write(tmp_path / "huge.vec", b"1000000000000 100000\n")
    with pytest.raises(EmbtkError, match="truncated"):
        read_vec(path)


@pytest.mark.parametrize("header,dim", [
    (b"2 100000000000\n", "100000000000"),
    (b"2 " + b"9" * 30 + b"\n", "9" * 30),  # was numpy's 'Maximum allowed dimension exceeded'
    (b"2 100001\n", "100001"),
])
def test_read_vec_dimension_is_one_training_accepts(tmp_path, header, dim):
    path = _write(tmp_path / "dim.vec", header + b"a 1\nb 2\n")
    with pytest.raises(EmbtkError) as info:
        read_vec(path)
    assert str(info.value) == (f"line 1 of {path} has an invalid dimension: dim {dim} is "
                               "unreasonably large")


@pytest.mark.parametrize("row,value", [
    (b"b 1 inf 3", "inf"), (b"b -inf 2 3", "-inf"), (b"b 1 2 nan", "nan"),
    (b"b 1e999 2 3", "inf"),   # beyond double
    (b"b 1 -1e39 3", "-inf"),  # beyond float32
])
def test_read_vec_refuses_non_finite_values(tmp_path, row, value):
    """A vector with inf or nan has no length or direction: it would make training with
    -pretrainedVectors diverge and similarities NaN (with numpy warnings on stderr)."""
    path = _write(tmp_path / "inf.vec", b"2 3\na 1 2 3\n" + row + b"\n")
    with pytest.raises(EmbtkError) as info:
        read_vec(path)
    assert str(info.value) == (f"{path}: the vector of 'b' (row 2) has the value {value}: values "
                               "must be finite and within float32's range (about 3.4e38)")


def test_read_vec_keeps_the_largest_float32_values(tmp_path):
    path = _write(tmp_path / "big.vec", b"1 3\na 3.4e38 -3.4e38 1e-45\n")
    words, vectors = read_vec(path)
    assert words == [b"a"]
    assert vectors.tolist() == [[np.float32(3.4e38), np.float32(-3.4e38), np.float32(1e-45)]]


@pytest.mark.parametrize("content,line", [
    (b"2 3\na\0x 1 2 3\nb 1 2 3\n", 2),
    (b"2 3\na 1 2 3\nb 1 2 3\0\n", 3),
    ("2 3\na 1 2 3\n".encode("utf-16"), 1),
])
def test_read_vec_refuses_nul_bytes(tmp_path, content, line):
    """No word can hold a NUL (fastText's tokenizer splits on it, a .bin ends words with
    it): a -pretrainedVectors word with one trained to the end, then failed to save."""
    path = _write(tmp_path / "nul.vec", content)
    with pytest.raises(EmbtkError) as info:
        read_vec(path)
    assert str(info.value) == (f"line {line} of {path} contains a NUL byte: not a word-vector "
                               "text file (or a word that no model can hold)")


def test_pretrained_vectors_with_a_nul_fail_before_training(tmp_path, capsys):
    from embtk.cli import main

    corpus = _write(tmp_path / "c.txt", b"a b c d e\n" * 50)
    vec = _write(tmp_path / "p.vec", b"2 3\na\0x 1 2 3\nb 1 2 3\n")
    code = main(["skipgram", "-input", corpus, "-output", str(tmp_path / "m"), "-dim", "3",
                 "-minCount", "1", "-verbose", "0", "-thread", "1", "-pretrainedVectors", vec])
    assert code == 1
    assert capsys.readouterr().err == (f"embtk: error: line 2 of {vec} contains a NUL byte: not "
                                       "a word-vector text file (or a word that no model can "
                                       "hold)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt", "p.vec"]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_read_vec_bounds_a_line_without_end(tmp_path):
    """Run in a child with 1 GB of address space: an unbounded read fails fast there."""
    pairs = _write(tmp_path / "pairs.txt", b"a b 1\nc d 2\n")
    done = _embtk_in_1gb("eval-similarity", "/dev/zero", pairs)
    assert done.returncode == 1
    assert done.stderr.decode() == ("embtk: error: line 1 of /dev/zero is longer than 16 MiB: "
                                    "not a word-vector text file\n")


# ---------------------------------------------------------------------------
# atomic_write


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_success(tmp_path):
    target = tmp_path / "out.bin"
    with atomic_write(target) as f:
        f.write(b"abc")
        assert not target.exists()
        assert len(_leftovers(tmp_path)) == 1 and _leftovers(tmp_path)[0].startswith(".out.bin.tmp-")
    assert _read(target) == b"abc"
    assert _leftovers(tmp_path) == ["out.bin"]
    with atomic_write(target, "w") as f:
        f.write("é\n")
    assert _read(target) == "é\n".encode()
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not 0600
    target.chmod(0o640)
    with atomic_write(target) as f:
        f.write(b"x")
    assert target.stat().st_mode & 0o777 == 0o640  # an overwritten file keeps its mode


@pytest.mark.parametrize("durable", [False, True])
def test_atomic_write_fsyncs_only_when_durable(tmp_path, monkeypatch, durable):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    with atomic_write(tmp_path / "out.bin", durable=durable) as f:
        f.write(b"abc")
    assert _read(tmp_path / "out.bin") == b"abc"
    assert len(synced) == (2 if durable else 0)  # the file, then its directory


def test_atomic_write_through_symlink(tmp_path):
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    with atomic_write(link) as f:
        f.write(b"new")
    assert link.is_symlink() and _read(real) == b"new"


@pytest.mark.parametrize("exc", [ValueError("boom"), KeyboardInterrupt()])
def test_atomic_write_failure_leaves_nothing(tmp_path, exc):
    target = tmp_path / "out.bin"
    with pytest.raises(type(exc)):
        with atomic_write(target) as f:
            f.write(b"partial")
            raise exc
    assert _leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"new")
            raise RuntimeError
    assert _read(target) == b"old"
    assert _leftovers(tmp_path) == ["out.bin"]


def test_atomic_write_bad_locations(tmp_path):
    with pytest.raises(EmbtkError, match="cannot write .*missing.*No such file"):
        with atomic_write(tmp_path / "missing" / "out.bin") as f:
            f.write(b"x")
    with pytest.raises(EmbtkError, match="cannot write .*directory"):
        with atomic_write(tmp_path) as f:
            f.write(b"x")
    args = Args.for_model("skipgram", dim=2, bucket=0)
    with pytest.raises(EmbtkError, match="cannot write"):
        save_bin(tmp_path / "no" / "m.bin", args, [], [], [], 0, None,
                 np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))
    with pytest.raises(EmbtkError, match="cannot write"):
        write_vec(tmp_path / "no" / "m.vec", [b"a"], np.zeros((1, 2), np.float32))


def test_atomic_write_unwritable_directory(tmp_path, monkeypatch):
    """A folder the user may not write in: one line naming the target and the reason.
    The refusal is the operating system's; root ignores permissions (and CI runs as
    root), so it is given by the call that creates the temporary file beside the target."""
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if os.path.dirname(os.fsdecode(path)) == str(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", refusing_open)
    message = f"cannot write {locked / 'out.bin'}: Permission denied"
    with pytest.raises(EmbtkError, match="^" + re.escape(message) + "$"):
        with atomic_write(locked / "out.bin") as f:
            f.write(b"x")
    monkeypatch.undo()
    assert list(locked.iterdir()) == []


def test_empty_model_round_trip(tmp_path):
    args = Args.for_model("supervised", dim=3, bucket=0)
    path = tmp_path / "empty_model.bin"
    save_bin(path, args, [], np.zeros(0), np.zeros(0), 0, None,
             np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32))
    mf = load_bin(path)
    assert mf.words == [] and mf.input.shape == (0, 3) and mf.output.shape == (0, 3)
