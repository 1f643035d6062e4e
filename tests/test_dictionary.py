"""Tokenizer, hashing, vocabulary and feature ids, checked by hand and against fastText."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embtk.args import Args
from embtk.dictionary import Dictionary, file_entries
from embtk.introsort import sort_keys, sort_order
from embtk.tokens import EOS, hash_bytes
from embtk.errors import EmbtkError


def reference_hash(data: bytes) -> int:
    """FNV-1a 32 with fastText's sign-extended bytes, written out plainly."""
    h = 2166136261
    for b in data:
        signed = b - 256 if b > 127 else b
        h = ((h ^ (signed & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def test_known_hashes():
    assert hash_bytes(b"") == 2166136261
    assert hash_bytes(b"a") == 0xE40C292C  # published FNV-1a test vector
    assert hash_bytes(b"foobar") == 0xBF9CF968  # published FNV-1a test vector
    # a byte above 127 is sign-extended, so it differs from plain FNV-1a
    assert hash_bytes("é".encode()) == reference_hash("é".encode())
    assert hash_bytes(b"\xff") != ((2166136261 ^ 0xFF) * 16777619) & 0xFFFFFFFF


@given(st.binary(max_size=40))
@settings(max_examples=200, deadline=None)
def test_hash_matches_reference(data):
    assert hash_bytes(data) == reference_hash(data)


def build(text: bytes, **options):
    args = Args.for_model(options.pop("model", "skipgram"), **options)
    args.bucket = args.effective_bucket()
    return Dictionary.from_buffer(np.frombuffer(text, dtype=np.uint8), args)


def test_packed_dictionary_is_the_same_dictionary():
    # A loaded model builds its Dictionary from packed bytes, never listing the words.
    d = build(b"__label__x a bb ccc a\n__label__y bb e\xcc\x81\n", minCount=1, minn=2, maxn=3)
    packed = Dictionary.from_packed(d.tables.word_bytes, d.tables.word_offsets, d.counts,
                                    d.types, d.ntokens, minn=d.minn, maxn=d.maxn,
                                    bucket=d.bucket, word_ngrams=d.word_ngrams)
    assert packed._words is None
    assert packed.labels == [b"__label__x", b"__label__y"] == d.labels
    assert packed.entries(1, 3) == d.words[1:3]
    assert packed._words is None
    assert packed.words == d.words and packed.size == d.size == len(d.words)
    for name in d.tables._fields:
        assert np.array_equal(getattr(packed.tables, name), getattr(d.tables, name)), name
    with pytest.raises(EmbtkError, match="2 counts"):
        Dictionary.from_packed(d.tables.word_bytes, d.tables.word_offsets, d.counts[:2],
                               d.types, d.ntokens, minn=2, maxn=3, bucket=10, word_ngrams=1)


def test_tokenizer_counts_and_order():
    text = b"b a\tb\vc\fa\rb\x00c\n\nb a\n"
    d = build(text, minCount=1)
    # every separator splits; each newline is an EOS token
    assert d.ntokens == 12
    counts = dict(zip(d.words, d.counts))
    assert counts == {b"b": 4, b"a": 3, b"c": 2, EOS: 3}
    # by count, descending; EOS (3) and a (3) tie and keep first-seen order
    assert d.words == [b"b", b"a", EOS, b"c"]


def test_min_count_and_labels_last():
    text = b"__label__x w w\n__label__y w v\n__label__x u\n"
    d = build(text, model="supervised", minCount=2)
    assert d.words[: d.nwords] == [b"w", EOS]
    assert d.words[d.nwords:] == [b"__label__x", b"__label__y"]
    d = build(text, model="supervised", minCount=1, minCountLabel=2)
    assert d.words[d.nwords:] == [b"__label__x"]


def test_no_eos_without_final_newline():
    d = build(b"a a a", minCount=1)
    assert d.words == [b"a"] and d.ntokens == 3


def test_non_utf8_bytes_are_tokens():
    d = build(b"\xff\xfe ok \xc3\x28\n", minCount=1)
    assert b"\xff\xfe" in d.words and b"\xc3\x28" in d.words


def test_empty_vocabulary_is_an_error():
    with pytest.raises(EmbtkError, match="minCount"):
        build(b"a b c\n", minCount=5)


def test_pruning_keeps_frequent_words():
    text = b" ".join(b"w%d" % i for i in range(3000)) + b" common" * 50 + b"\n"
    args = Args.for_model("skipgram", minCount=1)
    d = Dictionary.from_buffer(np.frombuffer(text, dtype=np.uint8), args, max_vocab=1000)
    assert b"common" in d.words
    assert len(d.words) < 1000
    assert d.ntokens == 3000 + 50 + 1


def test_char_ngrams_by_hand():
    d = build(b"ab ab\n", minCount=1, minn=2, maxn=3, bucket=1000)
    strings, _ = d.subwords(b"ab")
    assert strings == [b"ab", b"<a", b"<ab", b"ab", b"ab>", b"b>"]
    rows = d.word_rows(b"ab")
    expected = [d.get_id(b"ab")] + [d.nwords + reference_hash(s) % 1000 for s in strings[1:]]
    assert rows.tolist() == expected
    # EOS gets no n-grams; an unknown word gets n-grams only
    assert d.word_rows(EOS).tolist() == [d.get_id(EOS)]
    assert d.word_rows(b"zz").tolist() == [d.nwords + reference_hash(s) % 1000
                                         for s in (b"<z", b"<zz", b"zz", b"zz>", b"z>")]


def test_char_ngrams_count_utf8_characters():
    d = build(b"x\n", minCount=1, minn=1, maxn=1, bucket=100)
    # single characters: '<' and '>' are skipped at the boundaries; 'é' is one character
    assert d.subwords("é".encode())[0] == ["é".encode()]


def test_word_ngrams_by_hand():
    d = build(b"__label__a x y\n", model="supervised", wordNgrams=2, bucket=1000)
    feat_off, feats, lab_off, labels, ntok = d.encode(np.frombuffer(b"x y\n", dtype=np.uint8))
    hx, hy, he = (reference_hash(w) for w in (b"x", b"y", EOS))

    def ext(h):  # int32 -> uint64 with sign extension
        return h | 0xFFFFFFFF00000000 if h >= 1 << 31 else h

    mask = (1 << 64) - 1
    bigrams = [((ext(a) * 116049371 + ext(b)) & mask) % 1000 for a, b in ((hx, hy), (hy, he))]
    ids = [d.get_id(b"x"), d.get_id(b"y"), d.get_id(EOS)] + [d.nwords + b for b in bigrams]
    assert feats.tolist() == ids
    assert ntok.tolist() == [3]


def test_encode_lines_labels_and_oov():
    d = build(b"__label__a x\n__label__b y\n", model="supervised")
    data = b"__label__b __label__zzz x unknown\nno newline at end"
    feat_off, feats, lab_off, labels, ntok = d.encode(np.frombuffer(data, dtype=np.uint8))
    assert ntok.tolist() == [5, 4]
    assert labels[lab_off[0]:lab_off[1]].tolist() == [d.get_id(b"__label__b") - d.nwords]
    assert feats[feat_off[0]:feat_off[1]].tolist() == [d.get_id(b"x"), d.get_id(EOS)]
    assert feat_off[2] == feat_off[1]  # nothing known on the second line


def test_eos_hash_constant():
    from embtk.tokens import EOS, EOS_HASH, hash_bytes
    assert EOS_HASH == hash_bytes(EOS)


def test_record_header_is_the_kernels():
    from embtk import dictionary, kernels
    assert dictionary.RECORD_HEADER == kernels.RECORD_HEADER


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=12), st.integers(0, 2**62), st.integers(0, 1)),
                max_size=60), st.integers(0, 3), st.integers(1, 9))
def test_file_entries_are_the_model_files_layout(entries, skip, block):
    """word bytes, NUL, int64 count (little-endian), int8 type; packed bytes may start late"""
    words = [w for w, _, _ in entries]
    offsets = np.cumsum([skip] + [len(w) for w in words]).astype(np.int64)
    packed = np.frombuffer(b"x" * skip + b"".join(words), dtype=np.uint8)
    counts = np.array([c for _, c, _ in entries], dtype=np.int64)
    types = np.array([t for _, _, t in entries], dtype=np.int8)
    expected = b"".join(w + b"\0" + c.to_bytes(8, "little") + bytes([t]) for w, c, t in entries)
    assert file_entries(packed, offsets, counts, types, block=block).tobytes() == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 6)), max_size=200))
def test_sort_keys_order_words_first_then_the_higher_count(entries):
    types = np.array([t for t, _ in entries], dtype=np.int8)
    counts = np.array([c for _, c in entries], dtype=np.int64)
    order = sort_order(types, counts)
    assert sorted(order.tolist()) == list(range(len(entries)))
    ranked = [(types[i], -counts[i]) for i in order]
    assert ranked == sorted(ranked)
    keys = sort_keys(types, counts)
    assert all((keys[a] < keys[b]) == ((types[a], -counts[a]) < (types[b], -counts[b]))
               for a in range(len(entries)) for b in range(min(len(entries), 20)))
