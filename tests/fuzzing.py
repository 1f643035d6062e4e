"""Mutation fuzzing of embtk's file readers (`.bin`, `.ftz`, `.vec`, `.elmo`), shared by
tests/test_fuzz.py (a short seeded run) and benchmarks/fuzz.py (long runs).

The parent plans variants of small seed files as byte edits ("splices") drawn from a
seeded RNG, so any finding is reproducible from its seed file and its edits. Worker
processes -- this file run as a script -- apply the edits, open each variant through the
Python API and through the command line (`embtk.cli.main` called in-process with its
streams captured), and report one JSON line per variant. Workers run under an
address-space limit; the parent watches for death by signal, hangs and peak memory, and
gives every variant one outcome (see OUTCOMES).
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

# What a variant can come to, best first. Only the first two are acceptable.
# "accepted bad header": a model loaded although training would refuse its options
# (Args.validate) or its dictionary has negative counts.
OUTCOMES = ("clean error", "loaded fine", "unclean output", "accepted bad header",
            "traceback", "internal error", "memory", "timeout", "signal", "crash")
ACCEPTABLE = {"clean error", "loaded fine"}

# Worker limits. A worker that has imported numba and run every query on every seed
# peaks near 180 MB resident and 700 MB of address space (LLVM, thread stacks). The
# largest allocation the readers allow a tiny file to cause is a pruned model's bucket
# map (fileformat.MAX_PRUNED_BUCKET: 256 MiB); the limits leave room for it and catch
# anything bigger.
ADDRESS_SPACE_MB = 2048
PEAK_RSS_MB = 768
VARIANT_TIMEOUT_S = 30.0
STARTUP_TIMEOUT_S = 600.0  # importing numba, and compiling its kernels if nothing is cached


# ------------------------------------------------------------------------ seed files
@dataclass
class Seed:
    """One seed file: its bytes, kind ('sup', 'sg' or 'vec') and where its parts are."""

    name: str
    kind: str
    data: bytes
    fields: list = field(default_factory=list)      # Field for .bin/.ftz, spans for .vec
    boundaries: list = field(default_factory=list)  # (section name, offset)
    words: list = field(default_factory=list)       # (start, end) of each dictionary word


@dataclass(frozen=True)
class Field:
    """A fixed-size value in a `.bin`: its name, where it is and its struct format."""

    name: str
    offset: int
    fmt: str


def _supervised_corpus(path: Path, lines: int = 700, labels: int = 260, seed: int = 5) -> Path:
    """Lines of words drawn from a topic per label: more than 256 labels, so that the
    output matrix can be quantized (-qout needs 256 rows)."""
    rng = random.Random(seed)
    vocab = [w.strip(".,;:!?\"'()").lower() for w in (DATA / "austen_small.txt").read_text(
        encoding="utf-8").split()[:4000]]
    vocab = sorted({w for w in vocab if w.isalpha()})[:400]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            label = i % labels
            words = [vocab[(label * 7 + rng.randrange(12)) % len(vocab)] for _ in range(6)]
            words += [rng.choice(vocab) for _ in range(3)]
            f.write(f"__label__l{label} " + " ".join(words) + "\n")
    return path


def make_seeds(directory) -> dict:
    """Train the seed models in `directory` and write the files the queries read.

    sup.bin (supervised, word bigrams), full.ftz (quantized), pruned.ftz (quantized with
    -cutoff, -qnorm and -qout), sg.bin (skipgram with character n-grams), sg.vec, and
    floret.bin, floret_sup.bin (floret mode, floret's .bin layout).
    All are tiny (dim 4, small buckets) so that one variant loads in milliseconds.
    """
    import embtk

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    corpus = _supervised_corpus(d / "labelled.txt")
    common = dict(dim=4, epoch=1, thread=1, verbose=0, seed=1)
    sup = embtk.train_supervised(str(corpus), minCount=2, wordNgrams=2, bucket=64, **common)
    sup.save_model(str(d / "sup.bin"))
    full = embtk.load_model(d / "sup.bin")
    full.quantize(dsub=2)
    full.save_model(str(d / "full.ftz"))
    pruned = embtk.load_model(d / "sup.bin")
    pruned.quantize(cutoff=280, qnorm=True, qout=True, dsub=2)
    pruned.save_model(str(d / "pruned.ftz"))

    text = d / "text.txt"
    text.write_bytes(b"".join((DATA / "austen_small.txt").read_bytes().splitlines(True)[:300]))
    sg = embtk.train_unsupervised(str(text), model="skipgram", minCount=5, minn=2, maxn=4,
                                  bucket=64, **common)
    sg.save_model(str(d / "sg.bin"))
    # floret's layout (two more options in the header), each query kind once
    floret = dict(common, mode="floret", hashCount=2, bucket=64)
    embtk.train_unsupervised(str(text), model="skipgram", minCount=5, minn=2, maxn=4,
                             **floret).save_model(str(d / "floret.bin"))
    embtk.train_supervised(str(corpus), minCount=2, wordNgrams=2, **floret).save_model(
        str(d / "floret_sup.bin"))
    words = sg.words[:40]
    rows = [w + " " + " ".join("%.5g" % v for v in sg.get_word_vector(w)) for w in words]
    (d / "sg.vec").write_text(f"{len(words)} 4\n" + "\n".join(rows) + "\n", encoding="utf-8")

    # Inputs of the queries.
    (d / "pairs.txt").write_text("".join(f"{words[i]}\t{words[i + 1]}\t{i % 10}\n"
                                         for i in range(1, 30, 2)), encoding="utf-8")
    (d / "test.txt").write_bytes(b"".join(corpus.read_bytes().splitlines(True)[:20]))
    (d / "corpus.txt").write_bytes(b"".join(text.read_bytes().splitlines(True)[:60]))
    make_elmo_seed(d / "lm.elmo")

    return load_seeds(d)


ELMO_OPTIONS = {"lstm": {"use_skip_connections": True, "projection_dim": 4, "cell_clip": 3,
                         "proj_clip": 3, "dim": 6, "n_layers": 2},
                "char_cnn": {"activation": "relu", "filters": [[1, 3], [2, 4]], "n_highway": 1,
                             "embedding": {"dim": 3}, "n_characters": 262,
                             "max_characters_per_token": 10}}


def make_elmo_seed(path) -> None:
    """A tiny ELMo model of random weights, saved as a `.elmo`."""
    import numpy as np

    from embtk.elmo.model import ElmoModel
    from embtk.elmo.options import options_from_dict
    from embtk.elmo.weights import expected_arrays

    opt = options_from_dict(ELMO_OPTIONS, "fuzz seed")
    rng = np.random.default_rng(3)
    arrays = {name: (rng.standard_normal(shape) * 0.5).astype(np.float32)
              for name, shape in expected_arrays(opt)}
    ElmoModel(opt, arrays).save(path)


# The seed files and their kinds (which queries a variant of each goes through).
SEED_FILES = {"sup.bin": "sup", "full.ftz": "sup", "pruned.ftz": "sup", "sg.bin": "sg",
              "sg.vec": "vec", "lm.elmo": "elmo", "floret.bin": "sg", "floret_sup.bin": "sup"}


def load_seeds(directory) -> dict:
    """The seeds that make_seeds wrote in `directory`, with their layouts."""
    seeds = {}
    for name, kind in SEED_FILES.items():
        data = (Path(directory) / name).read_bytes()
        if kind == "vec":
            seeds[name] = Seed(name, kind, data, *vec_layout(data))
        elif kind == "elmo":
            seeds[name] = Seed(name, kind, data, *elmo_layout(data))
        else:
            floret = name.startswith("floret")
            seeds[name] = Seed(name, kind, data, *bin_layout(data, floret),
                               words=word_spans(data, floret))
    return seeds


_ARG_NAMES = ("dim ws epoch minCount neg wordNgrams loss model bucket minn maxn "
              "lrUpdateRate").split()
_FLORET_ARG_NAMES = _ARG_NAMES[:-1] + ["mode", "hashCount", "lrUpdateRate"]


def bin_layout(data: bytes, floret: bool = False):
    """The fixed-size fields and section boundaries of a valid `.bin`/`.ftz` (in floret's
    layout if `floret`), found with a parser of our own (not the reader under test)."""
    fields, marks = [], []

    def add(name, offset, fmt):
        fields.append(Field(name, offset, fmt))

    add("magic", 0, "<i")
    add("version", 4, "<i")
    marks.append(("args", 8))
    names = _FLORET_ARG_NAMES if floret else _ARG_NAMES
    for i, name in enumerate(names):
        add(f"args.{name}", 8 + 4 * i, "<i")
    pos = 8 + 4 * len(names)
    add("args.t", pos, "<d")
    pos += 8
    marks.append(("dictionary header", pos))
    size, _nwords, _nlabels, _ntokens, prune = struct.unpack_from("<iiiqq", data, pos)
    for name, off, fmt in (("size", 0, "<i"), ("nwords", 4, "<i"), ("nlabels", 8, "<i"),
                           ("ntokens", 12, "<q"), ("pruneidx_size", 20, "<q")):
        add(f"dict.{name}", pos + off, fmt)
    pos += 28
    marks.append(("dictionary entries", pos))
    for i in range(size):
        end = data.index(b"\0", pos)
        if i in (0, size // 2, size - 1):
            marks.append((f"entry {i}", pos))
            add(f"entry[{i}].count", end + 1, "<q")
            add(f"entry[{i}].type", end + 9, "<B")
        pos = end + 10
    marks.append(("pruneidx", pos))
    if prune > 0:
        for i in (0, prune - 1):
            add(f"pruneidx[{i}].bucket", pos + 8 * i, "<i")
            add(f"pruneidx[{i}].row", pos + 8 * i + 4, "<i")
        pos += 8 * prune
    marks.append(("quant_input flag", pos))
    add("quant_input", pos, "<B")
    quant = data[pos] == 1
    pos = _matrix_layout(data, pos + 1, "input", quant, fields, marks)
    marks.append(("qout flag", pos))
    add("qout", pos, "<B")
    qout = data[pos] == 1
    pos = _matrix_layout(data, pos + 1, "output", quant and qout, fields, marks)
    marks.append(("end", pos))
    assert pos == len(data), (pos, len(data))
    return fields, marks


def word_spans(data: bytes, floret: bool = False) -> list:
    """(start, end) of every word of a `.bin`'s dictionary."""
    shift = 8 if floret else 0
    size, = struct.unpack_from("<i", data, 64 + shift)
    spans, pos = [], 92 + shift
    for _ in range(size):
        end = data.index(b"\0", pos)
        spans.append((pos, end))
        pos = end + 10
    return spans


def _matrix_layout(data, pos, name, quant, fields, marks):
    if not quant:
        m, n = struct.unpack_from("<qq", data, pos)
        marks.append((f"{name} matrix header", pos))
        fields += [Field(f"{name}.m", pos, "<q"), Field(f"{name}.n", pos + 8, "<q")]
        marks.append((f"{name} matrix values", pos + 16))
        if m * n:
            fields.append(Field(f"{name}.value[0]", pos + 16, "<f"))
            marks.append((f"{name} matrix middle", pos + 16 + 4 * (m * n // 2)))
        return pos + 16 + 4 * m * n
    marks.append((f"{name} quantized header", pos))
    qnorm, m, _n, codesize = struct.unpack_from("<?qqi", data, pos)
    fields += [Field(f"{name}.qnorm", pos, "<B"), Field(f"{name}.m", pos + 1, "<q"),
               Field(f"{name}.n", pos + 9, "<q"), Field(f"{name}.codesize", pos + 17, "<i")]
    pos += 21
    marks.append((f"{name} codes", pos))
    pos += codesize
    pos = _pq_layout(data, pos, f"{name}.pq", fields, marks)
    if qnorm:
        marks.append((f"{name} norm codes", pos))
        pos += m
        pos = _pq_layout(data, pos, f"{name}.npq", fields, marks)
    return pos


def _pq_layout(data, pos, name, fields, marks):
    dim = struct.unpack_from("<i", data, pos)[0]
    marks.append((f"{name} header", pos))
    for i, part in enumerate(("dim", "nsubq", "dsub", "lastdsub")):
        fields.append(Field(f"{name}.{part}", pos + 4 * i, "<i"))
    marks.append((f"{name} centroids", pos + 16))
    fields.append(Field(f"{name}.centroid[0]", pos + 16, "<f"))
    return pos + 16 + 4 * dim * 256


def elmo_layout(data: bytes):
    """The header fields of a `.elmo` and its boundaries (header, options, each array),
    found with a parser of our own (the layout in embtk/elmo/weights.py's docstring)."""
    import json

    n = struct.unpack_from("<I", data, 12)[0]
    fields = [Field("magic", 0, "<q"), Field("version", 8, "<i"), Field("options length", 12, "<i")]
    marks = [("header", 0), ("options", 16)]
    opt = json.loads(data[16:16 + n])
    lstm, cnn = opt["lstm"], opt["char_cnn"]
    p, c, d = lstm["projection_dim"], lstm["dim"], cnn["embedding"]["dim"]
    f = sum(count for _, count in cnn["filters"])
    sizes = [261 * d]
    for width, count in cnn["filters"]:
        sizes += [width * d * count, count]
    sizes += [f * f, f, f * f, f] * cnn["n_highway"] + [f * p, p]
    sizes += [2 * p * 4 * c, 4 * c, c * p] * (2 * lstm["n_layers"])
    pos = 16 + n
    for i, size in enumerate(sizes):
        pos = -(-pos // 64) * 64
        marks.append((f"array {i}", pos))
        if i in (0, len(sizes) - 1):
            fields.append(Field(f"array {i} value[0]", pos, "<f"))
        pos += 4 * size
    marks.append(("end", pos))
    assert pos == len(data), (pos, len(data))
    return fields, marks


_ELMO_ODD_VALUES = (0, -1, 1 << 31, 10 ** 9, 2.5, "x", None, True, [])


def elmo_option_variants(seed: Seed) -> list:
    """Each option of a `.elmo` set to odd values or removed, the options region kept at
    its length when the new text fits (padded with spaces, as the writer pads)."""
    import copy
    import json

    n = struct.unpack_from("<I", seed.data, 12)[0]
    opt = json.loads(seed.data[16:16 + n])
    edits = []
    for section in ("lstm", "char_cnn"):
        for key in opt[section]:
            for value in _ELMO_ODD_VALUES + ("<remove>",):
                edits.append((section, key, value))
    edits += [("char_cnn", "activation", "sigmoid"), ("char_cnn", "filters", [[0, 3]]),
              ("char_cnn", "filters", [[1, 3], [2, 5]]), ("char_cnn", "embedding", {"dim": 0}),
              ("lstm", "dim", 7)]
    out = []
    for section, key, value in edits:
        changed = copy.deepcopy(opt)
        if value == "<remove>":
            del changed[section][key]
        else:
            changed[section][key] = value
        text = json.dumps(changed).encode()
        text += b" " * max(0, n - len(text))
        out.append(Variant(seed.name, f"options {section}.{key}={value!r}",
                           [_splice(16, 16 + n, text)]))
    out.append(Variant(seed.name, "options not JSON", [_splice(16, 17, b"[")]))
    return out


def vec_layout(data: bytes):
    """Spans of a `.vec`: (name, start, end) of the header's two numbers, and of the
    word and the first value of a few rows; boundaries are line starts and row middles."""
    spans, marks = [], []
    lines = data.splitlines(True)
    pos = 0
    for i, line in enumerate(lines):
        parts = line.split(b" ")
        if i == 0:
            marks.append(("header", pos))
            spans.append(("header.count", pos, pos + len(parts[0])))
            start = pos + len(parts[0]) + 1
            spans.append(("header.dim", start, start + len(parts[1].rstrip())))
        elif i in (1, 2, len(lines) // 2, len(lines) - 1):
            marks += [(f"row {i}", pos), (f"row {i} middle", pos + len(line) // 2)]
            spans.append((f"row {i}.word", pos, pos + len(parts[0])))
            start = pos + len(parts[0]) + 1
            spans.append((f"row {i}.value", start, start + len(parts[1])))
        pos += len(line)
    marks.append(("end", pos))
    return spans, marks


# ------------------------------------------------------------------------ variants
@dataclass
class Variant:
    """A seed file and the edits that make the variant: [start, end, hex bytes] each,
    replacing data[start:end], applied in order."""

    seed: str
    label: str
    splices: list
    hang: bool = False  # the harness's own test: the worker sleeps instead of loading

    def to_json(self) -> dict:
        return {"seed": self.seed, "label": self.label, "splices": self.splices,
                "hang": self.hang}


def apply_splices(data: bytes, splices) -> bytes:
    out = bytearray(data)
    for start, end, hexbytes in splices:
        out[start:end] = bytes.fromhex(hexbytes)
    return bytes(out)


def _splice(start, end, payload: bytes) -> list:
    return [int(start), int(end), payload.hex()]


def _int_values(fmt: str, current: int) -> list:
    """Out-of-range and boundary values for an integer field, and flips of its bits
    24 and 30 (one flipped bit in a small number makes a huge one)."""
    if fmt == "<B":
        return [0, 1, 2, 255]
    bits = 32 if fmt == "<i" else 64
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = [low, -1, 0, 1, high, 1 << 30, current ^ (1 << 24), current - 1, current + 1]
    if bits == 64:
        values += [1 << 31, 1 << 40, current ^ (1 << 40)]
    wrap = 1 << bits
    return list(dict.fromkeys(((v - low) % wrap) + low for v in values if v != current))


_FLOAT_VALUES = {"<d": (math.nan, math.inf, -math.inf, 0.0, -1.0, 1e300, 5e-324),
                 "<f": (math.nan, math.inf, -math.inf, 0.0, -1.0, 3e38, 1e-45)}


def field_variants(seed: Seed, f: Field) -> list:
    """Every interesting value of one field, each a Variant."""
    if f.fmt in _FLOAT_VALUES:
        values = _FLOAT_VALUES[f.fmt]
    else:
        current = struct.unpack_from(f.fmt, seed.data, f.offset)[0]
        values = _int_values(f.fmt, current)
    size = struct.calcsize(f.fmt)
    return [Variant(seed.name, f"{f.name}={v!r}",
                    [_splice(f.offset, f.offset + size, struct.pack(f.fmt, v))])
            for v in values]


def truncation_variants(seed: Seed) -> list:
    """Cuts just before, at and after every section boundary."""
    cuts = sorted({c for _, at in seed.boundaries for c in (at - 1, at, at + 1)
                   if 0 <= c < len(seed.data)})
    names = {}
    for name, at in seed.boundaries:
        for delta in (-1, 0, 1):
            names.setdefault(at + delta, f"{name}{delta:+d}" if delta else name)
    return [Variant(seed.name, f"truncate at {c} ({names[c]})",
                    [_splice(c, len(seed.data), b"")]) for c in cuts]


# Replacements for a number of a .vec (header fields and values).
_VEC_NUMBERS = (b"0", b"-1", b"-3", b"1" * 30, b"9" * 400, b"2147483648", b"9223372036854775808",
                b"100001", b"1.5", b"0x10", b"abc", b"", b"inf", b"-inf", b"nan", b"1e999",
                b"-1e999", b"1e39", b"3.4e38", b"1e-50", b"--1", b"1,5", b"\xff\xfe")
_VEC_WORDS = (b"a\0b", b"\0", b"\xff\xfe\xfd", b"__label__x", b"a\x0bb", b"a\rb", b"",
              b"x" * 5000)


def vec_variants(seed: Seed) -> list:
    """Each header number, word and value replaced by odd text, plus structural edits."""
    out = []
    for name, start, end in seed.fields:
        choices = _VEC_WORDS if name.endswith(".word") else _VEC_NUMBERS
        out += [Variant(seed.name, f"{name}={c[:20]!r}", [_splice(start, end, c)])
                for c in choices]
    data = seed.data
    first_eol = data.index(b"\n") + 1
    count, dim = data[:first_eol].split()
    lines = data.splitlines(True)
    structural = {
        "no header (GloVe layout)": [_splice(0, first_eol, b"")],
        "header only": [_splice(first_eol, len(data), b"")],
        "count one more": [_splice(0, len(count), b"%d" % (int(count) + 1))],
        "count one less": [_splice(0, len(count), b"%d" % (int(count) - 1))],
        "dim one more": [_splice(len(count) + 1, first_eol - 1, b"%d" % (int(dim) + 1))],
        "a row duplicated": [_splice(first_eol, first_eol, lines[1])],
        "a value missing": [_splice(first_eol + len(lines[1]) - 2, first_eol + len(lines[1]) - 1,
                                    b"")],
        "an extra value": [_splice(first_eol + len(lines[1]) - 1, first_eol + len(lines[1]) - 1,
                                   b" 1.5")],
        "CR line ends": [_splice(0, len(data), data.replace(b"\n", b"\r"))],
        "CRLF line ends": [_splice(0, len(data), data.replace(b"\n", b"\r\n"))],
        "one line": [_splice(0, len(data), data.replace(b"\n", b" "))],
        "no final newline": [_splice(len(data) - 1, len(data), b"")],
        "blank lines": [_splice(first_eol, first_eol, b"\n \n\t\n")],
        "NUL bytes only": [_splice(0, len(data), b"\0" * 4096)],
        "UTF-16": [_splice(0, len(data), data.decode("utf-8").encode("utf-16"))],
        "tabs": [_splice(0, len(data), data.replace(b" ", b"\t"))],
    }
    out += [Variant(seed.name, name, splices) for name, splices in structural.items()]
    return out


def word_variants(seed: Seed, rng: random.Random | None = None) -> list:
    """Dictionary words edited so that the file stays well-formed (entries end at their
    NUL): a word made empty, a duplicate of another word, whitespace or a label prefix
    inside a word, a long word. Without `rng`, for the first and last words."""
    spans = seed.words
    picks = [0, len(spans) - 1] if rng is None else [rng.randrange(len(spans))]
    out = []
    for i in picks:
        start, end = spans[i]
        same = [j for j, (a, b) in enumerate(spans) if b - a == end - start and j != i]
        edits = {"empty": b"", "space inside": seed.data[start:end] + b" x",
                 "newline inside": b"a\nb", "label": b"__label__x", "long": b"w" * 3000}
        if same:
            a, b = spans[same[0]]
            edits["duplicate"] = seed.data[a:b]
        for name, text in edits.items():
            out.append(Variant(seed.name, f"word {i} {name}", [_splice(start, end, text)]))
    return out if rng is None else [rng.choice(out)]


def systematic_variants(seeds: dict) -> list:
    """Every field of every seed set to each interesting value, every truncation, words
    edited."""
    out = []
    for seed in seeds.values():
        if seed.kind == "vec":
            out += vec_variants(seed)
        elif seed.kind == "elmo":
            for f in seed.fields:
                out += field_variants(seed, f)
            out += elmo_option_variants(seed)
        else:
            for f in seed.fields:
                out += field_variants(seed, f)
            out += word_variants(seed)
        out += truncation_variants(seed)
    return out


def random_variant(seeds: dict, rng: random.Random) -> Variant:
    """1-3 random edits of a random seed: bit flips (anywhere, or in the headers), a
    field set to an odd value, runs of random bytes written, inserted or deleted, a run
    copied elsewhere, a cut."""
    seed = seeds[rng.choice(sorted(seeds))]
    data = seed.data
    splices, names = [], []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(("flip", "flip", "header flip", "field", "field", "word",
                           "overwrite", "insert", "delete", "copy", "truncate"))
        n = len(data)
        if kind == "word" and seed.kind in ("vec", "elmo"):
            kind = "field"
        if kind in ("field", "word") and n != len(seed.data):
            kind = "overwrite"  # offsets of the seed hold while the length is unchanged
        if kind in ("truncate", "delete", "copy", "flip", "header flip") and not n:
            kind = "insert"
        if kind in ("flip", "header flip"):
            pos = rng.randrange(min(n, 100) if kind == "header flip" else n)
            sp = _splice(pos, pos + 1, bytes([data[pos] ^ (1 << rng.randrange(8))]))
            names.append(f"{kind} @{pos}")
        elif kind == "field":
            choices = (vec_variants(seed) if seed.kind == "vec"
                       else elmo_option_variants(seed) if seed.kind == "elmo" and rng.random() < 0.5
                       else field_variants(seed, rng.choice(seed.fields)))
            v = rng.choice(choices)
            sp = v.splices[0]
            names.append(v.label)
        elif kind == "word":
            v = word_variants(seed, rng)[0]
            sp = v.splices[0]
            names.append(v.label)
        elif kind == "truncate":
            cut = rng.randrange(n)
            sp = _splice(cut, n, b"")
            names.append(f"truncate at {cut}")
        elif kind == "delete":
            pos = rng.randrange(n)
            sp = _splice(pos, min(n, pos + rng.randint(1, 64)), b"")
            names.append(f"delete @{pos}")
        elif kind == "copy":
            a, b = sorted(rng.randrange(n) for _ in range(2))
            b = min(b, a + 256)
            at = rng.randrange(n)
            sp = _splice(at, at, data[a:b])
            names.append(f"copy {a}:{b} to {at}")
        else:  # a run of random bytes, written over the data or inserted
            pos = rng.randrange(n + 1)
            payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
            end = pos if kind == "insert" else min(n, pos + len(payload))
            sp = _splice(pos, end, payload)
            names.append(f"{kind} {len(payload)} @{pos}")
        splices.append(sp)
        data = apply_splices(data, [sp])
    return Variant(seed.name, "; ".join(names) or "unchanged", splices)


def plan(seeds: dict, count: int, seed: int, systematic: bool = True) -> list:
    """`count` variants: the systematic ones first (in a seeded order, so that a smaller
    count still covers every seed and field family), then random ones."""
    rng = random.Random(seed)
    out = []
    if systematic:
        out = systematic_variants(seeds)
        rng.shuffle(out)
        out = out[:count]
    while len(out) < count:
        out.append(random_variant(seeds, rng))
    return out


# ------------------------------------------------------------------------ the worker
SUP_INPUT = b"the house and the garden\n\nof her sister\n"


class AcceptedBadHeader(Exception):
    """A model loaded that the reader should have refused."""


def _check_accepted(model) -> None:
    import copy

    from embtk.errors import EmbtkError

    try:
        copy.copy(model.args).validate()
    except EmbtkError as exc:
        raise AcceptedBadHeader(f"loaded, but training refuses its options: {exc}") from None
    counts = model.dictionary.counts
    if len(counts) and counts.min() < 0:
        raise AcceptedBadHeader(f"loaded with a negative word count {counts.min()}")


def _queries(kind: str, path: str, seeds_dir: str) -> list:
    """(name, call) pairs: an API call (a function) or a CLI run (argv, stdin)."""
    d = Path(seeds_dir)
    if kind == "sup":
        def api():
            import embtk

            m = embtk.load_model(path)
            _check_accepted(m)
            # 'strict' (the default, as the official module) raises UnicodeDecodeError for a
            # label that is not UTF-8, by design; the fuzzer asks for what cannot raise
            m.predict("the house and the garden", k=2, on_unicode_error="replace")
            m.get_sentence_vector("of her sister")
            m.test(str(d / "test.txt"))
        return [("api", api),
                ("predict-prob", (["predict-prob", path, "-", "2"], SUP_INPUT)),
                ("test", (["test", path, str(d / "test.txt")], b"")),
                ("dump dict", (["dump", path, "dict"], b"")),
                # (a quantized model has no matrix to dump: its dump is a clean error)
                ("dump", (["dump", path, "args" if path.endswith(".ftz") else "output"], b""))]
    if kind == "sg":
        def api():
            import embtk

            m = embtk.load_model(path)
            _check_accepted(m)
            m.get_word_vector("the")
            m.get_word_vector("zqxj")
            m.get_nearest_neighbors("the", k=3, on_unicode_error="replace")
        return [("api", api),
                ("print-word-vectors", (["print-word-vectors", path], b"the zqxj\n")),
                ("nn", (["nn", path, "3"], b"the\n")),
                ("analogies", (["analogies", path, "3"], b"the of and\n")),
                ("print-ngrams", (["print-ngrams", path, "house"], b"")),
                ("eval-similarity", (["eval-similarity", path, str(d / "pairs.txt")], b""))]

    if kind == "elmo":
        def api():
            import embtk

            m = embtk.load_elmo(path)
            m.embed(["the house and the garden", "", "of her sister"], thread=1)
            m.sentence_vectors(["of her sister"], thread=1)
        return [("api", api),
                ("elmo-vectors", (["elmo-vectors", path, "-thread", "1", "-layer", "all"],
                                  SUP_INPUT)),
                ("elmo-vectors -sentence", (["elmo-vectors", path, "-sentence"], SUP_INPUT)),
                ("dump", (["dump", path, "args"], b""))]

    def api():
        from embtk.evaluation import evaluate_similarity
        from embtk.vecformat import read_vec

        read_vec(path)
        evaluate_similarity(path, str(d / "pairs.txt"))
    out = Path(path).parent / "trained"
    train = ["skipgram", "-input", str(d / "corpus.txt"), "-output", str(out), "-dim", "4",
             "-epoch", "1", "-minCount", "3", "-bucket", "50", "-minn", "2", "-maxn", "3",
             "-thread", "1", "-verbose", "0", "-pretrainedVectors", path]
    return [("api", api),
            ("eval-similarity", (["eval-similarity", path, str(d / "pairs.txt")], b"")),
            ("skipgram -pretrainedVectors", (train, b""))]


def _run_api(call) -> dict:
    import warnings

    from embtk.errors import EmbtkError, UnknownWordWarning

    status, detail = "ok", ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except EmbtkError as exc:
            status, detail = "error", str(exc)
            if "\n" in detail or not detail:
                status = "unclean"
        except MemoryError as exc:
            status, detail = "memory", f"MemoryError: {exc}"
        except AcceptedBadHeader as exc:
            status, detail = "accepted", str(exc)
        except Exception:
            status, detail = "traceback", traceback.format_exc(limit=-3)[-1500:]
    leaked = [w for w in caught if not issubclass(w.category, UnknownWordWarning)]
    if leaked and status in ("ok", "error"):
        w = leaked[0]
        status = "unclean"
        detail = f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})"
    return {"status": status, "detail": detail[:1500]}


def _run_cli(argv, stdin: bytes) -> dict:
    import warnings
    from unittest import mock

    from embtk.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    streams = {"stdin": io.TextIOWrapper(io.BytesIO(stdin)),
               "stdout": io.TextIOWrapper(out, write_through=True),
               "stderr": io.TextIOWrapper(err, write_through=True)}
    with warnings.catch_warnings():  # each run sees the filters a fresh process has
        try:
            with mock.patch.multiple(sys, **streams):
                code = main(list(argv))
                sys.stdout.flush()
                sys.stderr.flush()
        except MemoryError as exc:
            return {"status": "memory", "detail": f"MemoryError escaped main: {exc}"}
        except BaseException:  # noqa: BLE001 - anything escaping main breaks the contract
            return {"status": "traceback", "detail": traceback.format_exc(limit=-3)[-1500:]}
    text = err.getvalue().decode("utf-8", "replace")
    lines = text.splitlines()
    status = classify_cli(code, text)
    return {"status": status, "detail": text[:1500] if status != "ok" or lines else "",
            "code": code}


def classify_cli(code: int, stderr: str) -> str:
    """ok (exit 0, stderr empty or warnings), error (one 'embtk: error:' line and a
    non-zero exit), or the way the contract was broken."""
    lines = stderr.splitlines()
    if "Traceback" in stderr:
        return "traceback"
    internal = [line for line in lines if line.startswith("embtk: internal error")]
    if internal:
        return "memory" if "MemoryError" in internal[0] else "internal"
    if code == 0:
        return "ok" if all(line.startswith("embtk: warning: ") for line in lines) else "unclean"
    if len(lines) == 1 and lines[0].startswith("embtk: error: "):
        return "error"
    return "unclean"


def _status_mb(field: str) -> float | None:
    """A size line of /proc/self/status (Linux) in MB; None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    """The worker's own peak resident size: VmHWM. Not ru_maxrss, which in a process
    started by fork and exec counts the parent's resident pages at the fork (the test
    suite's process passes 768 MB after enough tests, and every variant then looked like
    a memory blow-up)."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_address_space_mb() -> float:
    """VmPeak: how close the worker came to its address-space limit."""
    return _status_mb("VmPeak") or 0.0


def _run_queries(kind: str, path: str, seeds_dir: str, rotate: int | None = None) -> dict:
    """Every query's result; with `rotate`, the API and only the command number
    `rotate` (modulo their count), so that consecutive variants share out the commands."""
    queries = _queries(kind, path, seeds_dir)
    if rotate is not None:
        commands = queries[1:]
        queries = [queries[0], commands[rotate % len(commands)]]
    results = {}
    for name, call in queries:
        began = time.perf_counter()
        results[name] = _run_api(call) if callable(call) else _run_cli(*call)
        results[name]["seconds"] = round(time.perf_counter() - began, 4)
    return results


def worker(jobs_path: str, seeds_dir: str, start: int, peak_rss_mb: float, tmp: str) -> None:
    """Run the jobs from `start` on, one JSON line each on the original stdout; exit after
    a variant that pushed the peak resident size over `peak_rss_mb` (the peak cannot go
    down, so the next variants need a fresh process). Variants are written to `tmp`, a
    folder the parent made and removes: a worker killed in a hang cannot remove its own.

    First every seed file of the jobs goes through its queries untouched: that compiles
    or loads numba's kernels outside any variant's time, and proves that the queries
    themselves pass on a valid file."""
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints must not corrupt it
    jobs = json.loads(Path(jobs_path).read_text())
    kinds = {j["seed"]: j["kind"] for j in jobs[start:]}
    seeds = {name: (Path(seeds_dir) / name).read_bytes() for name in kinds}
    for name in sorted(seeds):
        path = os.path.join(tmp, "seed" + Path(name).suffix)
        Path(path).write_bytes(seeds[name])
        results = _run_queries(kinds[name], path, seeds_dir)
        if any(r["status"] != "ok" for r in results.values()):
            channel.write(json.dumps({"warmup_failed": name, "results": results}) + "\n")
            return
    channel.write(json.dumps({"ready": True}) + "\n")
    for i in range(start, len(jobs)):
        job = jobs[i]
        channel.write(json.dumps({"start": i}) + "\n")
        if job["hang"]:
            time.sleep(3600)
        path = os.path.join(tmp, "variant" + Path(job["seed"]).suffix)
        with open(path, "wb") as f:
            f.write(apply_splices(seeds[job["seed"]], job["splices"]))
        results = _run_queries(job["kind"], path, seeds_dir, job["rotate"])
        peak = _peak_rss_mb()
        channel.write(json.dumps({"index": i, "results": results, "peak_rss_mb": peak,
                                  "peak_address_space_mb": _peak_address_space_mb()})
                      + "\n")
        if peak > peak_rss_mb:
            return


# ------------------------------------------------------------------------ the parent
@dataclass
class Result:
    variant: Variant
    outcome: str
    detail: str = ""
    results: dict = field(default_factory=dict)


@dataclass
class Report:
    """A run: each variant's Result in order, and what the workers used."""

    results: list
    seconds: float
    workers_started: int
    peak_rss_mb: float            # the largest peak a worker reported (_peak_rss_mb)
    peak_address_space_mb: float  # the largest VmPeak a worker reported


def classify(results: dict, peak_rss_mb: float, limit_mb: float) -> tuple:
    """One outcome for a variant from its per-query statuses, the worst first."""
    order = {"memory": "memory", "traceback": "traceback", "internal": "internal error",
             "accepted": "accepted bad header", "unclean": "unclean output"}
    if peak_rss_mb > limit_mb:
        return "memory", f"peak resident size {peak_rss_mb:.0f} MB > {limit_mb:.0f} MB"
    for status in order:
        for name, r in results.items():
            if r["status"] == status:
                return order[status], f"{name}: {r['detail']}"
    if results.get("api", {}).get("status") == "ok":
        return "loaded fine", ""
    return "clean error", ""


def _limit_address_space(megabytes: int):
    def limit():
        size = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return limit


class _Lane:
    """Runs a share of the variants through successive worker processes: a worker that
    hangs is killed, one that dies is replaced, and the next starts after the variant
    that was running."""

    def __init__(self, variants, kinds, seeds_dir, workdir, *, address_space_mb,
                 peak_rss_mb, timeout, every_command):
        self.variants, self.seeds_dir, self.workdir = variants, str(seeds_dir), workdir
        self.address_space_mb, self.peak_rss_mb, self.timeout = (
            address_space_mb, peak_rss_mb, timeout)
        self.results = [None] * len(variants)
        fd, jobs = tempfile.mkstemp(suffix=".json", dir=workdir)
        os.close(fd)
        self.jobs = Path(jobs)
        self.jobs.write_text(json.dumps([
            dict(v.to_json(), kind=kinds[v.seed], rotate=None if every_command else i)
            for i, v in enumerate(variants)]))
        self.workers = 0
        self.worker_peaks = []  # peak resident MB the workers reported, variant by variant
        self.peak_address_space_mb = 0.0

    def run(self):
        start = 0
        while start < len(self.variants):
            start = self._one_worker(start)

    def _one_worker(self, start: int) -> int:
        """Start a worker at variant `start`; returns where the next one must start."""
        self.workers += 1
        name = os.path.join(self.workdir, f"worker-{id(self)}-{self.workers}")
        os.mkdir(name)  # the worker's files, and its TMPDIR: removed with workdir, by us
        env = dict(os.environ, TMPDIR=name)
        env.pop("EMBTK_DEBUG", None)  # tracebacks must show up as what they are
        with open(name + ".log", "w+b") as log:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__)), "--worker", str(self.jobs),
                 self.seeds_dir, str(start), str(self.peak_rss_mb), name],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env,
                preexec_fn=_limit_address_space(self.address_space_mb))
            try:
                return self._follow(proc, start, log)
            finally:
                if proc.returncode is None:  # an error in the parent: end our worker
                    os.kill(proc.pid, signal.SIGKILL)
                    self._reap(proc)

    def _follow(self, proc, start: int, log) -> int:
        running, pending = None, b""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        fd = proc.stdout.fileno()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                os.kill(proc.pid, signal.SIGKILL)  # the running variant hangs
                self._reap(proc)
                if running is None:
                    raise RuntimeError(f"a fuzz worker was silent outside any variant for "
                                       f"{STARTUP_TIMEOUT_S:.0f} s")
                self.results[running] = Result(self.variants[running], "timeout",
                                               f"no answer within {self.timeout:.0f} s")
                return running + 1
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                message = json.loads(line)
                if "warmup_failed" in message:
                    raise RuntimeError(f"a query fails on the valid seed file "
                                       f"{message['warmup_failed']}: "
                                       f"{json.dumps(message['results'], indent=1)}")
                if "ready" in message:
                    deadline = time.monotonic() + STARTUP_TIMEOUT_S
                elif "start" in message:  # only a variant's own time is limited
                    running = message["start"]
                    deadline = time.monotonic() + self.timeout
                else:
                    i = message["index"]
                    outcome, detail = classify(message["results"], message["peak_rss_mb"],
                                               self.peak_rss_mb)
                    self.results[i] = Result(self.variants[i], outcome, detail,
                                             message["results"])
                    self.peak_address_space_mb = max(self.peak_address_space_mb,
                                                     message["peak_address_space_mb"])
                    self.worker_peaks.append(message["peak_rss_mb"])
                    running, start = None, i + 1
                    deadline = time.monotonic() + STARTUP_TIMEOUT_S
        status, _ = self._reap(proc)
        if running is not None:  # it died during a variant
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-800:]
            if os.WIFSIGNALED(status):
                outcome = "signal"
                detail = f"killed by {signal.Signals(os.WTERMSIG(status)).name}: {tail}"
            else:
                outcome, detail = "crash", f"exit status {os.WEXITSTATUS(status)}: {tail}"
            if "MemoryError" in tail:
                outcome = "memory"
            self.results[running] = Result(self.variants[running], outcome, detail)
            return running + 1
        last = self.results[start - 1] if start else None
        if start < len(self.variants) and not (last and last.outcome == "memory"):
            log.seek(0)
            raise RuntimeError(f"a fuzz worker ended early (status {status}): "
                               f"{log.read().decode('utf-8', 'replace')[-2000:]}")
        return start

    def _reap(self, proc):
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = status  # reaped here: Popen must not wait for it again
        proc.stdout.close()
        return status, rusage


def run(variants: list, seeds: dict, seeds_dir, *, workers: int = 2,
        address_space_mb: int = ADDRESS_SPACE_MB, peak_rss_mb: float = PEAK_RSS_MB,
        timeout: float = VARIANT_TIMEOUT_S, every_command: bool = True) -> Report:
    """Open every variant in worker processes, `workers` at a time: through the API and
    every command of its kind, or (every_command=False, twice as fast) through the API
    and one command, taken in turn."""
    began = time.monotonic()
    kinds = {name: s.kind for name, s in seeds.items()}
    workers = max(1, min(workers, len(variants)))
    with tempfile.TemporaryDirectory(prefix="embtk-fuzz-parent-") as workdir:
        lanes = [_Lane(variants[i::workers], kinds, seeds_dir, workdir,
                       address_space_mb=address_space_mb, peak_rss_mb=peak_rss_mb,
                       timeout=timeout, every_command=every_command)
                 for i in range(workers)]
        errors = []

        def go(lane):
            try:
                lane.run()
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller
                errors.append(exc)
        threads = [threading.Thread(target=go, args=(lane,)) for lane in lanes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    results = [None] * len(variants)
    for i, lane in enumerate(lanes):
        results[i::workers] = lane.results
    return Report(results, time.monotonic() - began,
                  sum(lane.workers for lane in lanes),
                  max((p for lane in lanes for p in lane.worker_peaks), default=0.0),
                  max(lane.peak_address_space_mb for lane in lanes))


def table(results: list) -> str:
    """Counts per outcome, overall and per seed file."""
    seeds = sorted({r.variant.seed for r in results})
    header = ["outcome", "all"] + seeds
    rows = [header]
    for outcome in OUTCOMES:
        counts = [sum(1 for r in results if r.outcome == outcome and (s is None or r.variant.seed == s))
                  for s in [None] + seeds]
        rows.append([outcome] + [str(c) for c in counts])
    rows.append(["total"] + [str(sum(1 for r in results if s is None or r.variant.seed == s))
                             for s in [None] + seeds])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in rows)


def failures(results: list) -> list:
    return [r for r in results if r.outcome not in ACCEPTABLE]


def describe(result: Result) -> str:
    v = result.variant
    return f"[{result.outcome}] {v.seed}: {v.label}\n    {result.detail.strip()[:600]}"


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--worker":
    worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
