"""floret mode: its hash, its rows, its files both ways with the `floret` package, and its
`.floret` table as spaCy reads it."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embtk
from conftest import assert_one_line_error, run
from embtk.dictionary import Dictionary
from embtk.tokens import FLORET_SEED, floret_keys, murmur3_128

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "austen_small.txt"
# known words (frequent in the corpus), an unknown one, a UTF-8 one, EOS
WORDS = ["the", "and", "Elizabeth", "marriage", "xyzzyq", "naïveté", "</s>"]
SMALL = dict(dim=12, epoch=1, minn=3, maxn=5, bucket=3000, minCount=3, thread=1)


def _murmur(data: bytes, seed: int):
    h1, h2 = murmur3_128(np.frombuffer(data, dtype=np.uint8), np.int64(0), np.int64(len(data)),
                         np.uint64(seed))
    return int(h1), int(h2)


def test_murmur3_x64_128_reference_values():
    # the reference implementation's published values (seed 0), and the empty input
    assert _murmur(b"", 0) == (0, 0)
    assert _murmur(b"The quick brown fox jumps over the lazy dog", 0) == (
        0xE34BBC7BBC071B6C, 0x7A433CA9C49A9347)
    # floret's keys: the low, then high, 32 bits of each 64-bit word, seed 2166136261
    h1, h2 = _murmur(b"<hello>", FLORET_SEED)
    assert floret_keys(b"<hello>") == [h1 & 0xFFFFFFFF, h1 >> 32, h2 & 0xFFFFFFFF, h2 >> 32]
    assert floret_keys(b"<hello>") == [1385578124, 2574877558, 4183053785, 2593240881]
    assert floret_keys(b"hello", 2) == [2278740777, 3647351999]
    # every tail length 0..15 past a 16-byte block goes through its own branch
    assert len({tuple(floret_keys(b"x" * n)) for n in range(40)}) == 40


def _dictionary(hash_count, minn=3, maxn=4, bucket=1000):
    words = [b"the", b"</s>", b"cat"]
    return Dictionary(words, [9, 5, 2], [0, 0, 0], 16, minn=minn, maxn=maxn, bucket=bucket,
                      word_ngrams=1, hash_count=hash_count)


def test_floret_rows_from_the_definition():
    """Entry 0 keeps its own row; the others only their hashed rows; EOS (not entry 0) has
    none; each of '<word>' and its n-grams gives hash_count rows nwords + key % bucket."""
    d = _dictionary(2)
    t = d.tables

    def rows_of(word):
        return t.subword_ids[t.subword_offsets[word]:t.subword_offsets[word + 1]].tolist()

    def hashed(piece):
        return [3 + k % 1000 for k in floret_keys(piece, 2)]

    grams = [b"<ca", b"<cat", b"cat", b"cat>", b"at>"]
    assert rows_of(2) == sum((hashed(g) for g in [b"<cat>"] + grams), [])
    assert rows_of(0)[0] == 0 and rows_of(0)[1:] == sum(
        (hashed(g) for g in [b"<the>", b"<th", b"<the", b"the", b"the>", b"he>"]), [])
    assert rows_of(1) == []
    names, ids = d.subwords(b"cat")
    assert names == [b"<cat>"] + grams and ids.tolist() == rows_of(2)
    # maxn 0: floret still hashes the whole word
    assert _dictionary(3, minn=0, maxn=0).word_rows(b"dog").tolist() == [
        3 + k % 1000 for k in floret_keys(b"<dog>", 3)]
    # fastText mode is unchanged: the entry's own row first
    assert _dictionary(0).word_rows(b"cat").tolist()[0] == 2


@pytest.fixture(scope="module")
def floret_module():
    return pytest.importorskip("floret")


@pytest.fixture(scope="module")
def floret_files(floret_module, tmp_path_factory):
    """A floret-mode skipgram and a fastText-mode one trained by the floret package."""
    folder = tmp_path_factory.mktemp("floret")
    paths = {}
    for mode, hash_count in (("floret", 2), ("fasttext", 1)):
        model = floret_module.train_unsupervised(
            str(CORPUS), model="skipgram", mode=mode, hashCount=hash_count, verbose=0, **SMALL)
        paths[mode] = str(folder / f"{mode}.bin")
        model.save_model(paths[mode])
    model = floret_module.load_model(paths["floret"])
    paths["table"] = str(folder / "floret.floret")
    model.save_floret_vectors(paths["table"])
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["floret", "fasttext"])
def test_floret_bin_loads_in_embtk(floret_module, floret_files, tmp_path, mode):
    theirs = floret_module.load_model(floret_files[mode])
    ours = embtk.load_model(floret_files[mode])
    assert ours.args.mode == mode and ours.words == theirs.words
    for word in WORDS:
        assert np.array_equal(ours.get_word_vector(word), theirs.get_word_vector(word)), word
        names, ids = theirs.get_subwords(word)
        our_names, our_ids = ours.get_subwords(word)
        assert our_names == names and np.array_equal(our_ids, ids), word
    ours.save_model(tmp_path / "again.bin")
    same = Path(floret_files[mode]).read_bytes() == (tmp_path / "again.bin").read_bytes()
    assert same == (mode == "floret")  # a fastText-mode model is written in fastText's layout


@pytest.mark.slow
def test_floret_table_byte_for_byte(floret_files, tmp_path):
    embtk.load_model(floret_files["floret"]).save_floret_vectors(tmp_path / "ours.floret")
    assert (tmp_path / "ours.floret").read_bytes() == Path(floret_files["table"]).read_bytes()
    header = (tmp_path / "ours.floret").read_bytes().split(b"\n", 1)[0]
    assert header == b"3000 12 3 5 2 2166136261 < >"


@pytest.fixture(scope="module")
def embtk_floret(tmp_path_factory):
    """An embtk floret-mode skipgram trained by the CLI, with its .bin, .vec and .floret."""
    prefix = tmp_path_factory.mktemp("ours") / "model"
    code, _, err = run("skipgram", "-input", CORPUS, "-output", prefix, "-mode", "floret",
                       "-hashCount", "2", "-verbose", "0",
                       *[x for k, v in SMALL.items() for x in (f"-{k}", v)])
    assert code == 0, err
    return prefix


@pytest.mark.slow
def test_embtk_floret_bin_loads_in_floret(floret_module, embtk_floret, tmp_path):
    path = f"{embtk_floret}.bin"
    theirs, ours = floret_module.load_model(path), embtk.load_model(path)
    assert theirs.f.getArgs().mode == floret_module.floret.mode_name.floret
    for word in WORDS:
        assert np.array_equal(ours.get_word_vector(word), theirs.get_word_vector(word)), word
    # and the table floret writes from our .bin is the one we wrote beside it
    theirs.save_floret_vectors(str(tmp_path / "theirs.floret"))
    assert Path(f"{embtk_floret}.floret").read_bytes() == (tmp_path / "theirs.floret").read_bytes()
    assert os.path.getsize(f"{embtk_floret}.floret") > 0 and os.path.exists(f"{embtk_floret}.vec")


@pytest.mark.slow
def test_spacy_reads_the_floret_table(embtk_floret, tmp_path):
    """spaCy's own reader of the table (no network: a blank pipeline) gives every word the
    mean of its hashed rows, as embtk does; entry 0's own row is not in the table."""
    pytest.importorskip("spacy")
    out = tmp_path / "spacy"
    done = subprocess.run([sys.executable, "-m", "spacy", "init", "vectors", "en",
                           f"{embtk_floret}.floret", str(out), "--mode", "floret"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import spacy

    nlp = spacy.load(out)
    ours = embtk.load_model(f"{embtk_floret}.bin")
    for word in WORDS[1:-1]:  # not the entry 0 ("the") and not EOS (spaCy hashes it)
        theirs = nlp.vocab[word].vector
        assert np.allclose(theirs, ours.get_word_vector(word), rtol=1e-4, atol=1e-6), word


@pytest.mark.slow
def test_supervised_floret_predicts_as_floret(floret_module, tmp_path):
    ours = embtk.train_supervised(str(DATA / "authors.train"), mode="floret", hashCount=2,
                                  bucket=20000, wordNgrams=2, epoch=10, thread=1, verbose=0)
    assert ours.test(str(DATA / "authors.test"))[1] > 0.6  # fastText mode: 0.635
    ours.save_model(tmp_path / "sup.bin")
    theirs = floret_module.load_model(str(tmp_path / "sup.bin"))
    lines = (DATA / "authors.test").read_text().splitlines()[:50]
    lines = [" ".join(w for w in line.split() if not w.startswith("__label__")) for line in lines]
    assert theirs.predict(lines, k=2)[0] == ours.predict(lines, k=2)[0]
    for word in ("the", "unheardofword"):
        assert np.array_equal(ours.get_word_vector(word), theirs.get_word_vector(word))


@pytest.mark.parametrize("options, message", [
    (("-hashCount", "0"), "-hashCount must be between 1 and 4"),
    (("-hashCount", "5"), "-hashCount must be between 1 and 4"),
    (("-mode", "floert"), "unknown mode 'floert'"),
    (("-mode", "floret", "-bucket", "0"), "-bucket must be positive in floret mode"),
])
def test_bad_floret_options(tmp_path, options, message):
    code, _, err = run("skipgram", "-input", CORPUS, "-output", tmp_path / "m", *options)
    assert_one_line_error(code, err)
    assert message in err


def test_python_keywords():
    args = embtk.args.Args.for_model("skipgram", mode="floret", hashCount=2).validate()
    assert args.floret_hashes == 2 and args.effective_bucket() == args.bucket
    assert embtk.args.Args.for_model("skipgram", hashCount=3).validate().floret_hashes == 0
    with pytest.raises(embtk.EmbtkError, match="unknown mode"):
        embtk.args.Args.for_model("skipgram", mode="flroet").validate()


@pytest.mark.slow
def test_print_ngrams_lists_each_subwords_rows(embtk_floret):
    path = f"{embtk_floret}.bin"
    model = embtk.load_model(path)
    names, ids = model.get_subwords("marriage")
    code, out, err = run("print-ngrams", path, "marriage")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert [line.split()[0] for line in lines] == names
    for i, line in enumerate(lines):
        fields = line.split()
        rows = [int(r) for r in fields[1].split(",")]
        assert rows == ids[2 * i:2 * i + 2].tolist()
        expected = model.get_input_matrix()[rows].sum(axis=0)
        assert np.allclose([float(x) for x in fields[2:]], expected, rtol=1e-4, atol=1e-6)
    # entry 0 keeps its own row: listed first, as the word itself
    first = model.words[0]
    code, out, _ = run("print-ngrams", path, first)
    assert out.decode().split()[:2] == [first, "0"]
    code, out, _ = run("dump", path, "args")
    assert b"\nmode floret\nhashCount 2\n" in out
    assert model.get_subword_id("<ma") == -1  # as floret: n-grams have hashCount rows
    code, _, err = run("quantize", "-output", embtk_floret)  # as floret: classifiers only
    assert_one_line_error(code, err)
    assert "only supervised models can be quantized" in err


@pytest.mark.slow
def test_continued_and_resumed_floret_training(embtk_floret, tmp_path, floret_module):
    """-inputModel keeps floret mode and its hash count; a resumed checkpoint too."""
    out = tmp_path / "more"
    code, _, err = run("skipgram", "-input", CORPUS, "-output", out, "-inputModel",
                       f"{embtk_floret}.bin", "-epoch", "1", "-thread", "1", "-verbose", "0")
    assert code == 0, err
    more = embtk.load_model(f"{out}.bin")
    assert (more.args.mode, more.args.hashCount, more.args.bucket) == ("floret", 2, 3000)
    theirs = floret_module.load_model(f"{out}.bin")
    assert np.array_equal(theirs.get_word_vector("xyzzyq"), more.get_word_vector("xyzzyq"))
    code, _, err = run("skipgram", "-input", CORPUS, "-output", out, "-inputModel",
                       f"{embtk_floret}.bin", "-hashCount", "3", "-verbose", "0")
    assert_one_line_error(code, err)
    assert "-hashCount 3 cannot apply" in err

    ck = tmp_path / "run.ckpt"
    args = ["skipgram", "-input", CORPUS, "-output", tmp_path / "ck", "-mode", "floret",
            "-hashCount", "3", "-verbose", "0", "-checkpoint", ck,
            *[x for k, v in SMALL.items() for x in (f"-{k}", v)]]
    assert run(*args)[0] == 0
    os.remove(tmp_path / "ck.bin")
    assert run("skipgram", "-input", CORPUS, "-output", tmp_path / "ck", "-resume", ck,
               "-verbose", "0")[0] == 0
    resumed = embtk.load_model(tmp_path / "ck.bin")
    assert (resumed.args.mode, resumed.args.hashCount) == ("floret", 3)
    assert resumed.dictionary.hash_count == 3


def test_floret_bin_corrupt_or_truncated(tmp_path):
    """A floret .bin cut short or with a bad header is one clear line, in its own layout's
    terms."""
    model = embtk.train_unsupervised(str(DATA / "authors.test"), mode="floret", hashCount=2,
                                     bucket=200, dim=4, epoch=1, minCount=5, thread=1, verbose=0)
    path = tmp_path / "m.bin"
    model.save_model(path)
    data = path.read_bytes()
    assert embtk.load_model(path).args.floret
    (tmp_path / "cut.bin").write_bytes(data[:-7])
    with pytest.raises(embtk.EmbtkError, match="truncated or corrupt .*output matrix"):
        embtk.load_model(tmp_path / "cut.bin")
    (tmp_path / "long.bin").write_bytes(data + b"\0" * 8)
    with pytest.raises(embtk.EmbtkError, match="8 unexpected bytes after the output matrix"):
        embtk.load_model(tmp_path / "long.bin")
    bad = bytearray(data)
    bad[56:60] = (7).to_bytes(4, "little")  # hashCount
    (tmp_path / "bad.bin").write_bytes(bad)
    code, _, err = run("print-word-vectors", tmp_path / "bad.bin", input=b"the\n")
    assert_one_line_error(code, err)
    assert "hashCount must be between 1 and 4 (floret's range), got 7" in err


def _table(tmp_path, text: bytes):
    path = tmp_path / "t.floret"
    path.write_bytes(text)
    return path


def test_floret_table_loads_as_a_model_without_vocabulary(tmp_path):
    """A .floret alone answers every word as spaCy does: the mean of its hashed rows."""
    model = embtk.train_unsupervised(str(DATA / "authors.test"), mode="floret", hashCount=2,
                                     bucket=300, dim=4, epoch=1, minCount=5, thread=1, verbose=0)
    model.save_floret_vectors(tmp_path / "m.floret")
    table = embtk.load_model(tmp_path / "m.floret")
    assert table.words == [] and table.args.hashCount == 2
    for word in ("shakespeare", "zzzunknown"):
        rows = table.dictionary.word_rows(word.encode())
        expected = model.get_input_matrix()[model.dictionary.nwords + rows].mean(axis=0)
        assert np.allclose(table.get_word_vector(word), expected, rtol=1e-4, atol=1e-6)
    code, _, err = run("nn", tmp_path / "m.floret", input=b"the\n")
    assert_one_line_error(code, err)
    assert "has no vocabulary to search" in err


@pytest.mark.parametrize("text, message", [
    (b"3 2 3 5 7 2166136261 < >\n0 1 2\n1 1 2\n2 1 2\n", "hashCount must be between 1 and 4"),
    (b"3 2 3 5 2 12345 < >\n0 1 2\n1 1 2\n2 1 2\n", "embtk hashes as floret does"),
    (b"3 2 3 5 2 2166136261\n", "should be floret's header"),
    (b"300 2 3 5 2 2166136261 < >\n0 1 2\n", "more than its 33 bytes can hold"),
    (b"3 2 3 5 2 2166136261 < >\n0 1 2\n1 1 2\n", "truncated: its header declares 3 rows"),
    (b"3 2 3 5 2 2166136261 < >\n0 1 2\n2 1 2\n1 1 2\n", "should be row 1, got '2'"),
    (b"3 2 3 5 2 2166136261 < >\n0 1 2\n1 1\n2 1 2\n", "has 1 values, expected 2"),
    (b"2 2 3 5 2 2166136261 < >\n0 1 2\n1 1 2\n2 1 2\n", "more rows than the 2 buckets"),
])
def test_bad_floret_tables(tmp_path, text, message):
    code, _, err = run("print-word-vectors", _table(tmp_path, text), input=b"word\n")
    assert_one_line_error(code, err)
    assert message in err


@pytest.mark.slow
def test_quantized_floret_classifier_in_floret(floret_module, tmp_path):
    """quantize -cutoff on a floret-mode classifier: the .ftz (floret's layout, pruned
    buckets) predicts in floret as in embtk; word vectors stay the models' own."""
    model = embtk.train_supervised(str(DATA / "authors.train"), mode="floret", hashCount=2,
                                   bucket=5000, wordNgrams=2, epoch=3, thread=1, verbose=0)
    model.quantize(cutoff=3000, dsub=2)
    model.save_model(tmp_path / "q.ftz")
    theirs, ours = floret_module.load_model(str(tmp_path / "q.ftz")), embtk.load_model(tmp_path / "q.ftz")
    lines = (DATA / "authors.test").read_text().splitlines()[:40]
    lines = [" ".join(w for w in line.split() if not w.startswith("__label__")) for line in lines]
    assert theirs.predict(lines, k=1)[0] == ours.predict(lines, k=1)[0]
