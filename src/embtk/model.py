"""A trained or loaded model: the query side of the API (vectors, neighbours, prediction).

Method names and return shapes follow the official `fasttext` Python module, so code
written for it ports by changing the import.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from . import compress, trainer
from .args import Args, as_path, check_index, check_k, check_text
from .dictionary import Dictionary, WordOnlyTables
from .tokens import BOW, EOS, EOW, FLORET_SEED
from .errors import EmbtkError, UnknownWordWarning
from .fileformat import ModelFile, load_bin, save_bin
from .safeio import open_for_reading
from .vecformat import read_floret, write_vec, write_vec_rows
from .vectors import (add_unit, line_means, nearest_words, rows_mean,
                      unit_word_vectors, word_vector_means, word_vectors)
from .meter import Meter
from .predicting import Predictor, first_example


def _encode(text, name: str = "word") -> bytes:
    return check_text(text, name)


def _decode(data: bytes, errors: str = "replace") -> str:
    """Text of dictionary bytes, which need not be UTF-8. `errors` is a codec error
    handler: the official module's on_unicode_error ('strict' raises UnicodeDecodeError)."""
    return data.decode("utf-8", errors=errors)


# The training options that the official module copies onto a model it trained.
_OPTION_ATTRIBUTES = frozenset((
    "lr", "dim", "ws", "epoch", "minCount", "minCountLabel", "minn", "maxn", "neg", "wordNgrams",
    "loss", "bucket", "thread", "lrUpdateRate", "t", "label", "verbose", "pretrainedVectors",
    "mode", "hashCount"))


class FastText:
    """Matrices, dictionary and options of one model.

    A quantized model (.ftz) keeps its quantized matrices for saving (`quant_input`,
    `quant_output`) and uses their decoded rows (input_matrix / output_matrix) for
    everything else. `glove` holds what GloVe training measured (see glove.GloveInfo).

    A model loaded from a file remembers it (`source`, a FileIdentity) until its matrices
    are replaced: pickling it then carries the file's identity, not its matrices, and
    unpickling maps the file again. Any other model pickles as the bytes of its `.bin`.
    """

    def __init__(self, args: Args, dictionary: Dictionary, input_matrix, output_matrix, *,
                 quant_input=None, quant_output=None, final_loss=float("nan"), glove=None):
        self.args = args
        self.final_loss = final_loss
        self.glove = glove
        self._set_parts(dictionary, input_matrix, output_matrix, quant_input, quant_output)

    @classmethod
    def train(cls, args: Args, deadline: float | None = None, counted=None) -> "FastText":
        """Train a model on args.input (see trainer.train for the keywords)."""
        trained = trainer.train(args, deadline=deadline, counted=counted)
        return cls(trained.args, trained.dictionary, trained.input, trained.output,
                   final_loss=trained.loss)

    def set_matrices(self, input_matrix, output_matrix) -> None:
        """Replace both matrices by float32 copies, as the official module does (the
        dimension may change, not the number of rows, which the dictionary fixes); a
        quantized model becomes dense."""
        wi = np.array(input_matrix, dtype=np.float32)
        wo = np.array(output_matrix, dtype=np.float32)
        if wi.ndim != 2 or wo.ndim != 2 or wi.shape[1] != wo.shape[1]:
            raise EmbtkError(f"set_matrices needs two matrices with as many columns, got "
                             f"shapes {wi.shape} and {wo.shape}")
        for name, new, old in (("input", wi, self.input_matrix),
                               ("output", wo, self.output_matrix)):
            if new.shape[0] != old.shape[0]:
                raise EmbtkError(f"this model's {name} matrix has {old.shape[0]} rows, "
                                 f"not {new.shape[0]}")
        self.args.dim = int(wi.shape[1])
        self._set_parts(self.dictionary, wi, wo)

    def _set_parts(self, dictionary: Dictionary, input_matrix, output_matrix,
                   quant_input=None, quant_output=None) -> None:
        """Replace the dictionary and matrices, and forget everything derived from them."""
        self.dictionary = dictionary
        self.input_matrix = input_matrix
        self.output_matrix = output_matrix
        self.quant_input = quant_input
        self.quant_output = quant_output
        self._unit_vectors = None
        self._predictor = None
        self.source = None  # the matrices no longer come from a file as they are in it

    def __reduce__(self):
        """Pickle as the file's identity when the model is a loaded file (a few hundred
        bytes; see FileIdentity), else as the bytes of its `.bin`. The options go along
        (the file stores only some of them), but no cached vectors."""
        state = {"args": self.args, "final_loss": self.final_loss, "glove": self.glove}
        if self.source is not None:
            return _load_again, (self.source,), state
        buffer = io.BytesIO()
        save_bin(buffer, *self._bin_parts())
        # a bytearray unpickles writable: the matrices are views on it, as on a loaded file
        return _from_bin_bytes, (bytearray(buffer.getbuffer()),), state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __getattr__(self, name):
        """model.dim, model.epoch...: the options in `args`, which code written for the
        official module reads as attributes (loss is a name here, not an enum)."""
        if name in _OPTION_ATTRIBUTES:
            return getattr(self.args, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    # ---------------------------------------------------------------- vocabulary
    @property
    def words(self) -> list:
        """get_words(), with bytes that are not UTF-8 replaced rather than raising."""
        return self.get_words(on_unicode_error="replace")

    @property
    def labels(self) -> list:
        """get_labels(), with bytes that are not UTF-8 replaced rather than raising."""
        return self.get_labels(on_unicode_error="replace")

    def get_words(self, include_freq=False, on_unicode_error="strict"):
        """The words, most frequent first, and with include_freq their counts."""
        d = self.dictionary
        words = [_decode(w, on_unicode_error) for w in d.entries(0, d.nwords)]
        if include_freq:
            return words, d.counts[: d.nwords].copy()
        return words

    def get_labels(self, include_freq=False, on_unicode_error="strict"):
        """A classifier's labels; a word-vector model's words, which are its outputs (as
        the official module answers)."""
        if not self.args.supervised:
            return self.get_words(include_freq, on_unicode_error)
        d = self.dictionary
        labels = [_decode(w, on_unicode_error) for w in d.labels]
        if include_freq:
            return labels, d.counts[d.nwords:].copy()
        return labels

    def get_dimension(self) -> int:
        return int(self.input_matrix.shape[1])

    def get_word_id(self, word) -> int:
        return self.dictionary.get_id(_encode(word))

    def get_label_id(self, label) -> int:
        i = self.dictionary.get_id(_encode(label))
        return i - self.dictionary.nwords if i >= self.dictionary.nwords else -1

    def get_subword_id(self, subword) -> int:
        return self.dictionary.subword_rows(_encode(subword))

    def get_subwords(self, word, on_unicode_error="strict"):
        names, ids = self.dictionary.subwords(_encode(word))
        return [_decode(s, on_unicode_error) for s in names], ids

    def is_quantized(self) -> bool:
        return self.quant_input is not None

    def __contains__(self, word) -> bool:
        return 0 <= self.get_word_id(word) < self.dictionary.nwords

    def __getitem__(self, word):
        return self.get_word_vector(word)

    # -------------------------------------------------------------------- vectors
    def _require_dense(self):
        if self.is_quantized():
            raise EmbtkError("this model is quantized: its matrices cannot be exported")

    def get_input_matrix(self) -> np.ndarray:
        """A copy, as the official module returns: writing to it leaves the model as it is."""
        self._require_dense()
        return np.array(self.input_matrix, dtype=np.float32)

    def get_output_matrix(self) -> np.ndarray:
        """A copy, as the official module returns: writing to it leaves the model as it is."""
        self._require_dense()
        return np.array(self.output_matrix, dtype=np.float32)

    def get_input_vector(self, ind: int) -> np.ndarray:
        ind = check_index(ind, self.input_matrix.shape[0], "ind")
        return np.array(self.input_matrix[ind], dtype=np.float32)

    def lacks_vector(self, word) -> bool:
        """True for a word that a word-vector model without subwords (GloVe's, or fastText
        trained with -maxn 0) does not know: it has no vector, only zeros."""
        return (not self.args.supervised and self.args.maxn == 0 and not self.args.floret
                and word not in self)

    def get_word_vector(self, word) -> np.ndarray:
        """Mean of the word's own row and its char n-gram rows (n-grams only if unknown).

        A model without subwords has nothing for an unknown word: the zero vector comes
        with an UnknownWordWarning."""
        if self.lacks_vector(word):
            warnings.warn(f"{_decode(_encode(word))!r} is not in the vocabulary and the model has "
                          "no subword information: its vector is all zeros",
                          UnknownWordWarning, stacklevel=2)
        rows = self.dictionary.word_rows(_encode(word))
        # a label's own row lies past the words: a hash bucket, or nothing in a model
        # without buckets (fastText reads past its matrix there; embtk leaves it out)
        return rows_mean(self.input_matrix, rows[rows < self.input_matrix.shape[0]])

    def get_sentence_vector(self, text) -> np.ndarray:
        data = _encode(text, "text")
        if b"\n" in data:
            raise ValueError("get_sentence_vector processes one line at a time (remove '\\n')")
        return self.get_sentence_vector_bytes(data + b"\n")

    def get_sentence_vector_bytes(self, line: bytes) -> np.ndarray:
        return self.sentence_vectors_bytes([line])[0]

    def sentence_vectors_bytes(self, lines) -> np.ndarray:
        """One vector per raw line, as fastText computes them (float32, in its order).

        Classifiers: the mean of the input rows of the line's first example (up to its
        first EOS, included), as in prediction.
        Word vectors: the mean of the unit-normalised vectors of the line's words.
        """
        if not self.args.supervised:
            buf = np.frombuffer(b"".join(lines), dtype=np.uint8)
            return word_vector_means(self.input_matrix, self.dictionary.tables, buf, len(lines))
        buf = np.frombuffer(b"".join(map(first_example, lines)), dtype=np.uint8)
        feat_off, feats, *_ = self.dictionary.encode(buf)
        out = np.zeros((len(lines), self.get_dimension()), dtype=np.float32)
        means = line_means(self.input_matrix, feat_off, feats)
        out[: len(means)] = means
        return out

    def unit_word_vectors(self) -> np.ndarray:
        """Every vocabulary word's vector at unit length, one row per word (computed once;
        `nn`, analogies and the similarity evaluation share it)."""
        if self._unit_vectors is None:
            t = self.dictionary.tables
            self._unit_vectors = unit_word_vectors(self.input_matrix, t.subword_offsets,
                                                   t.subword_ids, self.dictionary.nwords)
        return self._unit_vectors

    def _nearest(self, query: np.ndarray, k: int, banned_words, on_unicode_error):
        ids = [self.dictionary.get_id(_encode(w)) for w in banned_words]
        banned = np.array([i for i in ids if 0 <= i < self.dictionary.nwords], dtype=np.int64)
        # no more answers than words: a huge k allocates nothing more (official: the vocabulary)
        k = min(k, self.dictionary.nwords)
        scores, rows = nearest_words(self.unit_word_vectors(), query, k, banned)
        words = self.dictionary.words
        return [(float(s), _decode(words[i], on_unicode_error)) for s, i in zip(scores, rows)]

    def get_nearest_neighbors(self, word, k=10, on_unicode_error="strict"):
        """[(cosine similarity, word)] of the k words closest to `word`, itself excluded."""
        k = check_k(k, allow_all=False)
        return self._nearest(self.get_word_vector(word), k, [word], on_unicode_error)

    def get_analogies(self, wordA, wordB, wordC, k=10, on_unicode_error="strict"):
        """Words closest to A - B + C (each term unit-normalised first)."""
        k = check_k(k, allow_all=False)
        query = np.zeros(self.get_dimension(), dtype=np.float32)
        for word, sign in ((wordA, 1.0), (wordB, -1.0), (wordC, 1.0)):
            add_unit(query, self.get_word_vector(word), sign)
        return self._nearest(query, k, [wordA, wordB, wordC], on_unicode_error)

    # ---------------------------------------------------------------- prediction
    @property
    def predictor(self) -> Predictor:
        """The prediction engine on this model's current dictionary and matrices."""
        if self._predictor is None:
            self._predictor = Predictor(self.args, self.dictionary, self.input_matrix,
                                        self.output_matrix)
        return self._predictor

    def predict(self, text, k=1, threshold=0.0, on_unicode_error="strict"):
        """Labels and probabilities for a line (a tuple and a float64 array), or for each
        line of a list (a list of lists and a list of float32 arrays), as the official
        module answers."""
        return self.predictor.predict(text, k, threshold, on_unicode_error)

    def evaluate(self, path, k=1, threshold=0.0, confusion=False, log=False) -> Meter:
        """Score a labelled file (path, binary file object or '-'), a few MB at a time:
        a Meter of per-label counts; see meter.Meter for `confusion` and `log`."""
        meter = Meter(self.labels, confusion=confusion, log=log)
        for chunk in self.predictor.chunks(_read_all(path), k, threshold):
            meter.add(chunk)
        return meter

    def test(self, path, k=1, threshold=0.0):
        """(number of examples, precision at k, recall at k), as fastText's `test`."""
        result = self.evaluate(path, k, threshold)
        return result.examples, result.precision, result.recall

    def test_label(self, path, k=1, threshold=0.0):
        """{label: {precision, recall, f1score}} for every label of the model."""
        return self.evaluate(path, k, threshold).per_label()

    def get_line(self, text, on_unicode_error="strict"):
        """The words and the known labels of one line, up to and including its EOS."""
        if isinstance(text, (list, tuple)):
            pairs = [self.get_line(t, on_unicode_error) for t in text]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        data = _encode(text)
        if b"\n" in data:
            raise ValueError("get_line processes one line at a time (remove '\\n')")
        d = self.dictionary
        words, labels = [], []
        # bytes.split() cuts at fastText's separators but the NUL byte, which is one too
        for token in data.replace(b"\0", b" ").split() + [EOS]:
            wid = d.get_id(token)
            if (wid >= d.nwords) if wid >= 0 else token.startswith(d.label):
                if wid >= 0:
                    labels.append(_decode(token, on_unicode_error))
            else:
                words.append(_decode(token, on_unicode_error))
            if token == EOS:
                break
        return words, labels

    # ----------------------------------------------------------------------- files
    def save_model(self, path):
        """A `.bin`, or the `.ftz` layout once the model is quantized."""
        save_bin(as_path(path), *self._bin_parts())

    def _bin_parts(self) -> tuple:
        """save_bin's arguments after the path."""
        d = self.dictionary
        wi = self.input_matrix if self.quant_input is None else self.quant_input
        wo = self.output_matrix if self.quant_output is None else self.quant_output
        return self.args, d.packed_words(), d.counts, d.types, d.ntokens, d.pruneidx, wi, wo

    def quantize(self, input=None, qout=False, cutoff=0, retrain=False, epoch=None, lr=None,
                 thread=None, verbose=None, dsub=2, qnorm=False):
        """Product-quantize this classifier in place (see `embtk quantize`); then save it
        with save_model, usually as an `.ftz`."""
        if self.is_quantized():
            raise EmbtkError("the model is already quantized; quantize its .bin instead")
        small = compress.quantize(self.args, self.dictionary, self.input_matrix,
                                  self.output_matrix, input=input, qout=qout, cutoff=cutoff,
                                  retrain=retrain, epoch=epoch, lr=lr, thread=thread,
                                  verbose=verbose, dsub=dsub, qnorm=qnorm)
        self.args = small.args
        self._set_parts(small.dictionary, small.input, small.output, small.quant_input,
                        small.quant_output)

    def save_vectors(self, path):
        """The `.vec` file: every word (EOS included) with its getWordVector vector."""
        t = self.dictionary.tables
        if isinstance(t, WordOnlyTables):
            # a word's vector is its one row (the mean of one row turns -0.0 into 0.0)
            rows = lambda start, stop: self.input_matrix[start:stop] + np.float32(0.0)
        else:
            rows = lambda start, stop: word_vectors(self.input_matrix, t.subword_offsets,
                                                    t.subword_ids, start, stop)
        write_vec_rows(as_path(path), self.dictionary.entries(0, self.dictionary.nwords),
                       self.get_dimension(), rows)

    def save_floret_vectors(self, path):
        """The `.floret` table spaCy loads (`spacy init vectors LANG X.floret OUT --mode
        floret`): a header "bucket dim minn maxn hashCount hashSeed BOW EOW", then each
        hash bucket's input row, numbered from 0, as floret's saveFloretVectors writes it."""
        if not self.args.floret:
            raise EmbtkError("save_floret_vectors needs a floret-mode model (-mode floret); "
                             "this one was trained in fastText mode")
        if self.is_quantized():
            raise EmbtkError("save_floret_vectors: a quantized model has no table of rows; "
                             "save the table of the .bin it was quantized from")
        d = self.dictionary
        header = b"%d %d %d %d %d %d %s %s\n" % (d.bucket, self.get_dimension(), d.minn, d.maxn,
                                                 d.hash_count, FLORET_SEED, BOW, EOW)
        # + 0: floret prints each row added to a zeroed vector, so -0.0 comes out as 0
        rows = lambda start, stop: self.input_matrix[d.nwords + start:d.nwords + stop] + np.float32(0)
        write_vec_rows(as_path(path), [b"%d" % i for i in range(d.bucket)], self.get_dimension(),
                       rows, header=header)

    def save_output(self, path):
        """The `.output` file: output rows, named by label (classifiers) or word."""
        if self.is_quantized():
            raise EmbtkError("-saveOutput is not supported for quantized models")
        d = self.dictionary
        names = d.labels if self.args.supervised else d.entries(0, d.nwords)
        write_vec(as_path(path), names, np.asarray(self.output_matrix))

    def __repr__(self):
        d = self.dictionary
        return (f"<embtk.FastText {self.args.model} dim={self.get_dimension()} "
                f"words={d.nwords} labels={d.nlabels} loss={self.args.loss}>")


def _read_all(path_or_file) -> bytes:
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()
        return data.encode("utf-8") if isinstance(data, str) else data
    path = as_path(path_or_file)
    if path == "-":
        return sys.stdin.buffer.read()
    with open_for_reading(path, "test file") as f:
        return f.read()


def from_floret_table(path) -> FastText:
    """A model of a `.floret` table alone, as spaCy uses it: no vocabulary, and every word's
    vector the mean of its hashed rows (its n-grams' and its own, hashCount each)."""
    table = read_floret(path)
    args = Args.for_model("skipgram", dim=table.dim, minn=table.minn, maxn=table.maxn,
                          bucket=table.bucket, mode="floret", hashCount=table.hash_count)
    dictionary = Dictionary([], [], [], 0, minn=table.minn, maxn=table.maxn,
                            bucket=table.bucket, word_ngrams=1, hash_count=table.hash_count)
    return FastText(args, dictionary, table.matrix, np.zeros((0, table.dim), np.float32))


def from_model_file(contents: ModelFile) -> FastText:
    """Build a model from what `fileformat.load_bin` read."""
    a = contents.args
    dictionary = Dictionary.from_packed(
        contents.word_bytes, contents.word_offsets, contents.counts, contents.types,
        contents.ntokens, minn=a.minn, maxn=a.maxn, bucket=a.bucket, word_ngrams=a.wordNgrams,
        label=a.label, pruneidx=contents.pruneidx, t=a.t, hash_count=a.floret_hashes)
    if not contents.quant_input:
        return FastText(a, dictionary, contents.input, contents.output)
    quant_output = contents.output if contents.quant_output else None
    wo = contents.output.decode_for_scoring() if quant_output else contents.output
    return FastText(a, dictionary, contents.input.decode(), wo, quant_input=contents.input,
                    quant_output=quant_output)


# ------------------------------------------------------------------- loading, pickling
_CHECKSUM_BYTES = 1 << 16  # the header, the options and the start of the dictionary


@dataclass(frozen=True)
class FileIdentity:
    """A model file as it was when it was loaded: its absolute path, size, modification
    time and a checksum of its first 64 KB. Enough to tell, cheaply, that a file found at
    the same path later (in another process or on another machine) is the same one."""

    path: str
    size: int
    mtime_ns: int
    checksum: str

    @classmethod
    def of(cls, path) -> "FileIdentity | None":
        """The identity of a regular file; None for anything else (a pipe, a device)."""
        path = os.path.abspath(as_path(path))
        try:
            # stat first: opening a FIFO would wait for a writer
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    return None
                head = f.read(_CHECKSUM_BYTES)
        except OSError:
            return None
        checksum = hashlib.blake2b(head, digest_size=16).hexdigest()
        return cls(path, st.st_size, st.st_mtime_ns, checksum)

    def load(self) -> FastText:
        """The model in this file, refused with one line if the file is missing or is no
        longer the same (pickles must not silently pick up a retrained model)."""
        now = FileIdentity.of(self.path)
        if now is None:
            raise EmbtkError(f"cannot load the pickled model {self.path}: the file is missing "
                             "or cannot be read here")
        if now == self:
            model = load(self.path)
            if model.source == self:
                return model
        raise EmbtkError(f"cannot load the pickled model {self.path}: the file changed since "
                         "the model was pickled (size, modification time or first 64 KB differ)")


def load(path) -> FastText:
    """A `.bin` or `.ftz` file as a model that remembers the file (see FastText.source).
    The identity is taken before reading: if the file is replaced meanwhile, the identity
    is the older one and a later unpickling refuses rather than mixing the two.
    A `.floret` table gives a model without vocabulary (from_floret_table)."""
    path = as_path(path)
    if path.endswith(".floret"):
        return from_floret_table(path)
    identity = FileIdentity.of(path)
    model = from_model_file(load_bin(path))
    model.source = identity
    return model


def _load_again(identity: FileIdentity) -> FastText:
    return identity.load()


def _from_bin_bytes(data: bytearray) -> FastText:
    # pickle protocols before 5 give bytes back: read-only, so copied
    data = data if isinstance(data, bytearray) else bytearray(data)
    return from_model_file(load_bin("<pickled model>", data))
