"""Corpora in bounded memory: text read in pieces, encoded to a temporary file, read back
piece by piece by each training thread; the result must not depend on the pieces."""

import errno
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import embtk
from embtk import corpus
from embtk.args import Args
from embtk.dictionary import Dictionary
from embtk.errors import EmbtkError
from embtk.kernels import RECORD_HEADER

DATA = Path(__file__).parent / "data"
TRAIN = DATA / "authors.train"
CORPUS = DATA / "austen_small.txt"


def _matrices(model):
    return model.get_input_matrix(), model.get_output_matrix()


# ------------------------------------------------------------------------ text pieces


@pytest.mark.parametrize("whole_lines", [False, True])
@pytest.mark.parametrize("piece", [1, 7, 64, 1 << 20])
def test_text_pieces_cut_only_after_separators(whole_lines, piece):
    text = b"one two\tthree\n\nfour  five-is-a-long-token six\r\nseven\x00eight\n" \
           b"no final newline here"
    pieces = [p.tobytes() for p in corpus.text_pieces(io.BytesIO(text), whole_lines, piece)]
    assert b"".join(pieces) == text
    for p in pieces[:-1]:
        if whole_lines:
            assert p.endswith(b"\n")
        else:
            assert p[-1:] in [bytes((c,)) for c in b" \n\r\t\v\f\0"]
    if piece == 1 << 20:
        assert len(pieces) == 1


def test_counting_in_pieces_gives_the_same_dictionary(monkeypatch):
    data = CORPUS.read_bytes()
    args = Args.for_model("skipgram", minCount=2)
    whole = Dictionary.from_buffer(np.frombuffer(data, dtype=np.uint8), args)
    monkeypatch.setattr(corpus, "PIECE_BYTES", 333)
    pieces = corpus.count_vocabulary(args, str(CORPUS))
    assert pieces.words == whole.words
    assert np.array_equal(pieces.counts, whole.counts)
    assert pieces.ntokens == whole.ntokens


def test_pruning_past_the_vocabulary_limit_works_across_pieces():
    # 40 frequent types then 12 rare ones, room for 48 (0.75 x 64): the 49th type prunes
    # the ones seen once, as fastText does, whether the text comes whole or in pieces
    rare = b" ".join(b"r%d" % i for i in range(12))
    text = b" ".join(b"w%d" % (i % 40) for i in range(4000)) + b" " + rare + b"\n"
    args = Args.for_model("skipgram", minCount=1)
    split = Dictionary.from_pieces(corpus.text_pieces(io.BytesIO(text), False, 50), args,
                                   max_vocab=64)
    whole = Dictionary.from_buffer(np.frombuffer(text, dtype=np.uint8), args, max_vocab=64)
    assert split.words == whole.words
    assert b"r0" not in split.words and b"r11" in split.words and b"w39" in split.words
    assert split.ntokens == whole.ntokens == 4013


# --------------------------------------------------------------- the encoded corpus


def _encoded(args, path):
    dictionary = corpus.count_vocabulary(args, str(path))
    return dictionary, corpus.encode_corpus(args, dictionary, str(path))


def _values(encoded):
    values = np.empty(encoded.size, dtype=np.int32)
    encoded.read_at(values, 0)
    return values, encoded.nlines, np.asarray(encoded.line_index).tolist()


MIXED = (b"__label__a one two three one\n\n__label__b one </s> two unseen\tfour  five\n"
         b"__label__a __label__c only rare-word\r\n   \n__label__b two two two one " * 40
         + b"\x00zero one __label__d \xff\xfe bytes\nno final newline one")


@pytest.mark.parametrize("model,options", [
    ("skipgram", dict(minCount=2)),
    ("cbow", dict(minCount=1, maxn=0)),
    ("supervised", dict(minCount=2, wordNgrams=2)),
    ("supervised", dict(minCount=3, minCountLabel=2, wordNgrams=3, minn=2, maxn=4, bucket=1000)),
])
@pytest.mark.parametrize("piece", [64, 1 << 20])
@pytest.mark.parametrize("nthreads", [1, 2, 5])
def test_encoding_from_the_counted_ids_is_encoding_the_text(monkeypatch, tmp_path, model,
                                                            options, piece, nthreads):
    """The second pass from the ids counting wrote gives the very values of the pass
    over the text (OOV words and their char n-grams, labels, a literal </s>, blank lines,
    NUL and non-UTF-8 bytes, no final newline), whatever the pieces and threads."""
    from embtk import counting
    monkeypatch.setattr(corpus, "PIECE_BYTES", piece)
    monkeypatch.setattr(corpus, "LINE_INDEX_STRIDE", 4)
    monkeypatch.setattr(counting, "ID_BLOCK", 17)
    monkeypatch.setattr(corpus, "PARALLEL_BYTES", 0)  # ranges counted at once from 2 threads
    path = tmp_path / "mixed.txt"
    path.write_bytes(MIXED)
    args = Args.for_model(model, input=str(path), tmpdir=str(tmp_path), thread=nthreads, **options)
    kept = corpus.count_vocabulary(args, str(path), keep_ids=True)
    assert kept.first_pass is not None and len(kept.first_pass[1]) == nthreads
    text = corpus.count_vocabulary(args, str(path))
    whole = Dictionary.from_buffer(np.frombuffer(MIXED, dtype=np.uint8), args)
    assert text.first_pass is None and kept.words == text.words == whole.words
    assert np.array_equal(kept.counts, whole.counts) and kept.ntokens == whole.ntokens
    with corpus.encode_corpus(args, kept, str(path)) as a, \
            corpus.encode_corpus(args, text, str(path)) as b:
        assert kept.first_pass is None
        va, vb = _values(a), _values(b)
        assert np.array_equal(va[0], vb[0]) and va[1:] == vb[1:]


@pytest.mark.parametrize("nthreads", [2, 3, 8])
@pytest.mark.parametrize("max_vocab", [64, 180, 200, 10 ** 6])
@pytest.mark.parametrize("halves", [False, True])
def test_counting_ranges_at_once_gives_the_one_thread_dictionary(monkeypatch, tmp_path,
                                                                  nthreads, max_vocab, halves):
    """Ranges counted on several threads and merged: the entries, counts and order of
    counting from start to end, ties (equal counts) in first-seen order, and the
    pruning fastText does when the vocabulary passes the limit, whether one range alone
    or only the merge passes it (`halves`: two halves of different words, 103 entries
    each, and max_vocab 180)."""
    from embtk import counting
    rng = np.random.default_rng(5)
    if halves:
        words = [b"w%d" % i for i in rng.integers(0, 100, 1500)]
        words += [b"v%d" % i for i in rng.integers(0, 100, 1500)]
    else:
        words = [b"w%d" % i for i in rng.integers(0, 120, 3000)]
        words += [b"r%d" % i for i in range(60)] + [b"w%d" % i for i in range(120, 0, -1)]
    lines = [b" ".join(words[i:i + 13]) for i in range(0, len(words), 13)]
    text = b"__label__x " + b"\n__label__y ".join(lines) + b"\n"
    path = tmp_path / "t.txt"
    path.write_bytes(text)
    monkeypatch.setattr(corpus, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(corpus, "MAX_VOCAB_SIZE", max_vocab)
    for model in ("skipgram", "supervised"):
        args = Args.for_model(model, input=str(path), tmpdir=str(tmp_path), minCount=1,
                              thread=nthreads)
        whole = Dictionary.from_buffer(np.frombuffer(text, dtype=np.uint8), args,
                                       max_vocab=max_vocab)
        ranges = corpus.count_vocabulary(args, str(path), keep_ids=True)
        assert ranges.words == whole.words
        assert np.array_equal(ranges.counts, whole.counts) and ranges.ntokens == whole.ntokens
        prunes = counting.count_state([np.frombuffer(text, dtype=np.uint8)], b"__label__",
                                      max_vocab)[1]
        assert (ranges.first_pass is None) == prunes
        if ranges.first_pass is not None:
            one = Args.for_model(model, input=str(path), tmpdir=str(tmp_path), minCount=1)
            reference = corpus.count_vocabulary(one, str(path))
            with corpus.encode_corpus(args, ranges, str(path)) as a, \
                    corpus.encode_corpus(args, reference, str(path)) as b:
                va, vb = _values(a), _values(b)
                assert np.array_equal(va[0], vb[0]) and va[1:] == vb[1:]


def test_no_counted_ids_when_counting_prunes_or_labels_look_like_eos(monkeypatch, tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b" ".join(b"w%d" % (i % 40) for i in range(400)) + b" r1 r2 r3\n")
    args = Args.for_model("skipgram", input=str(path), tmpdir=str(tmp_path), minCount=1)
    monkeypatch.setattr(corpus, "MAX_VOCAB_SIZE", 48)
    pruned = corpus.count_vocabulary(args, str(path), keep_ids=True)
    assert pruned.first_pass is None
    text = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    assert pruned.words == Dictionary.from_buffer(text, args, max_vocab=48).words
    monkeypatch.setattr(corpus, "MAX_VOCAB_SIZE", 10 ** 6)
    args = Args.for_model("supervised", input=str(path), tmpdir=str(tmp_path), label="</")
    assert corpus.count_vocabulary(args, str(path), keep_ids=True).first_pass is None


def test_records_hold_each_line_and_thread_starts_point_at_lines(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "LINE_INDEX_STRIDE", 4)
    lines = [f"__label__{i % 3} " + " ".join(f"w{j}" for j in range(i % 5)) for i in range(50)]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    args = Args.for_model("supervised", input=str(path), tmpdir=str(tmp_path))
    dictionary, encoded = _encoded(args, path)
    with encoded:
        values = np.empty(encoded.size, dtype=np.int32)
        encoded.read_at(values, 0)
        starts, pos = [], 0
        while pos < len(values):
            starts.append(pos)
            pos += RECORD_HEADER + values[pos + 1] + values[pos + 2]
        assert encoded.nlines == len(starts) == 50
        for i in (0, 7, 49):
            s = starts[i]
            assert values[s] == 1 + i % 5 + 1  # label, words, EOS
            assert values[s + 2] == 1
            assert values[s + RECORD_HEADER + values[s + 1]] == dictionary.get_id(
                f"__label__{i % 3}".encode()) - dictionary.nwords
        for nthreads in (1, 2, 3, 7, 50):
            for tid in range(nthreads):
                assert encoded.thread_start(tid, nthreads) == starts[tid * 50 // nthreads]


def test_the_encoded_corpus_has_no_name(tmp_path):
    args = Args.for_model("skipgram", input=str(CORPUS), tmpdir=str(tmp_path))
    _, encoded = _encoded(args, CORPUS)
    with encoded:
        assert encoded.size > 50000
        assert list(tmp_path.iterdir()) == []  # nothing to leave behind, even if killed


def test_no_space_left_is_one_clear_line(monkeypatch, tmp_path):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corpus, "_encode_words", full)
    args = Args.for_model("skipgram", input=str(CORPUS), tmpdir=str(tmp_path))
    dictionary = corpus.count_vocabulary(args, str(CORPUS))
    with pytest.raises(EmbtkError, match=f"no space left in {tmp_path}.*-tmpdir"):
        corpus.encode_corpus(args, dictionary, str(CORPUS))
    assert list(tmp_path.iterdir()) == []


def test_a_missing_tmpdir_is_refused(tmp_path):
    with pytest.raises(EmbtkError, match="-tmpdir .*: no such directory"):
        Args.for_model("skipgram", input=str(CORPUS), output=str(tmp_path / "m"),
                       tmpdir=str(tmp_path / "nope")).check_paths()


# ----------------------------------------------- training does not depend on the pieces


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_word_vectors_do_not_depend_on_the_pieces(monkeypatch, model):
    kw = dict(model=model, dim=8, epoch=1, bucket=5000, thread=1, seed=5, verbose=0)
    whole = _matrices(embtk.train_unsupervised(CORPUS, **kw))
    # 1200 bytes of text; 300 ids a piece: lines and tokens cut everywhere, and lines of
    # up to MAX_LINE_SIZE + 1 tokens still fit a piece once it has grown
    monkeypatch.setattr(corpus, "PIECE_BYTES", 1200)
    cut = _matrices(embtk.train_unsupervised(CORPUS, **kw))
    assert np.array_equal(whole[0], cut[0]) and np.array_equal(whole[1], cut[1])


@pytest.mark.parametrize("loss", ["softmax", "ova"])
def test_classifiers_do_not_depend_on_the_pieces(monkeypatch, loss, tmp_path):
    # one line far longer than a piece: the reader's buffer grows to hold it
    path = tmp_path / "train.txt"
    long_line = "__label__long " + " ".join(f"x{i}" for i in range(3000)) + "\n"
    path.write_text(TRAIN.read_text()[:200000] + long_line + TRAIN.read_text()[200000:400000])
    kw = dict(dim=8, epoch=2, wordNgrams=2, bucket=5000, thread=1, seed=5, verbose=0, loss=loss)
    whole = _matrices(embtk.train_supervised(path, **kw))
    monkeypatch.setattr(corpus, "PIECE_BYTES", 1000)
    cut = _matrices(embtk.train_supervised(path, **kw))
    assert np.array_equal(whole[0], cut[0]) and np.array_equal(whole[1], cut[1])


# ------------------------------------------------------------- memory stays bounded

_PEAK = """
import json, resource, sys
import embtk
embtk.train_supervised(sys.argv[1], dim=4, epoch=1, bucket=1000, minn=0, maxn=0, thread=1,
                       verbose=0)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def _peak_rss_kb(path):
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out.decode().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_corpus(tmp_path):
    # the same 400 words and 4 labels in 8 MB and in 32 MB of text (both bigger than the
    # pieces read at a time): before the corpus was read in pieces, the big one cost
    # ~50 MB more (the text mapped, its lines encoded in memory)
    rng = np.random.default_rng(0)
    words = np.array([f"word{i}" for i in range(400)] + [f"__label__{i}" for i in range(4)])

    def write(path, nlines):
        with open(path, "w") as f:
            for _ in range(nlines // 1000):
                picks = words[rng.integers(0, 404, size=(1000, 6))]
                f.write("\n".join(" ".join(row) for row in picks) + "\n")
        return path

    medium = write(tmp_path / "medium.txt", 190000)
    big = write(tmp_path / "big.txt", 760000)
    assert medium.stat().st_size > 2 * corpus.PIECE_BYTES and big.stat().st_size > 32e6
    growth_mb = (_peak_rss_kb(big) - _peak_rss_kb(medium)) / 1024
    assert growth_mb < 10, growth_mb
