"""Running a model on a Dask cluster: collections of lines, files at scale, and the pool
of processes autotune's trials run on.

The model travels as the identity of its file (see model.FileIdentity): each worker
process loads it once, keeps it in a small cache keyed by that identity, and every task
on that worker uses it. A model that lives only in memory is sent once per worker as
its `.bin` bytes. Dask is an optional extra (`pip install 'embtk[dask]'`): it is
imported inside the functions here, never when embtk starts.

This module is `embtk.dask`; `import dask` below is the real Dask package (imports are
absolute in Python 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .args import as_path, check_k, check_text, check_threshold
from .autotune import TrialPool
from .errors import EmbtkError, one_line, progress_bar
from .safeio import atomic_write
from .model import FastText, FileIdentity, load

CONNECT_TIMEOUT = 10.0   # seconds to reach a scheduler (`-timeout`) before giving up
BLOCK_BYTES = 1 << 22    # predict-files reads inputs in blocks of about 4 MB
_CACHED_MODELS = 2       # models a worker process keeps loaded at once
_SUFFIX = ".pred"        # predict-files writes INPUT's name + this suffix


def require_dask(what: str) -> None:
    """Dask is there, or one line says how to install it."""
    try:
        import dask.bag  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise EmbtkError(f"{what} needs dask: pip install 'embtk[dask]'") from None


@contextlib.contextmanager
def _on_this_host():
    """An EmbtkError raised on a worker says which machine it comes from."""
    try:
        yield
    except EmbtkError as e:
        raise EmbtkError(f"on {platform.node()}: {e}") from None


# -------------------------------------------------------------- models on the workers
class _ModelCache:
    """The models this process has loaded, by file identity (least recently used out)."""

    def __init__(self, size: int):
        self.size = size
        self.models = OrderedDict()
        self.loads = 0
        self.lock = threading.Lock()

    def get(self, identity: FileIdentity) -> FastText:
        with self.lock:  # the threads of one worker wait for a single load
            if identity in self.models:
                self.models.move_to_end(identity)
                return self.models[identity]
            with _on_this_host():
                model = identity.load()
            self.loads += 1
            self.models[identity] = model
            while len(self.models) > self.size:
                self.models.popitem(last=False)
            return model


_CACHE = _ModelCache(_CACHED_MODELS)


def cache_info() -> dict:
    """How many models this process loaded for tasks, and the files it keeps loaded.
    On a cluster: `client.run(embtk.dask.cache_info)` asks every worker."""
    with _CACHE.lock:
        return {"loads": _CACHE.loads, "models": [i.path for i in _CACHE.models]}


def _model_of(ref) -> FastText:
    """A task's model: the object itself (sent once per worker), or a file identity
    loaded once per process."""
    return ref if isinstance(ref, FastText) else _CACHE.get(ref)


def _as_model(model, classifier: bool = False) -> FastText:
    """A model given as itself or as a path (loaded here, which checks the file)."""
    if not isinstance(model, FastText):
        model = load(as_path(model, "model"))
    if classifier:
        model.predictor  # refuses, in one line, a model that is not a classifier
    return model


def _model_ref(model: FastText):
    """What tasks carry: the file identity of a loaded model, else the model as one
    Dask value that the graph holds once."""
    if model.source is not None:
        return model.source
    import dask

    return dask.delayed(model, name=f"embtk-model-{os.urandom(8).hex()}", traverse=False)


# ----------------------------------------------------------------- collections
def _collection(lines, what: str):
    """'bag' or 'series' for a dask Bag or Series, else a TypeError."""
    require_dask(f"embtk.dask.{what}")
    import dask.bag

    if isinstance(lines, dask.bag.Bag):
        return "bag"
    try:
        import dask.dataframe
    except ImportError:  # no pandas: no Series can have been made
        pass
    else:
        if isinstance(lines, dask.dataframe.Series):
            return "series"
    raise TypeError(f"{what} takes a dask.bag.Bag or a dask.dataframe.Series, "
                    f"got {type(lines).__name__}")


def _predict_part(lines, ref, k, threshold):
    labels, probs = _model_of(ref).predict(list(lines), k, threshold)
    # what model.predict answers for one line: a tuple of labels, float64 probabilities
    return [(tuple(names), p.astype(np.float64)) for names, p in zip(labels, probs)]


def _predict_series(series, ref, k, threshold):
    import pandas as pd

    return pd.Series(_predict_part(series.tolist(), ref, k, threshold), index=series.index,
                     dtype=object, name=series.name)


def predict(lines, model, k=1, threshold=0.0):
    """(labels, probabilities) of each line of a dask Bag of str, or of a dask Series of
    str, in the same kind of collection and order: per line what `model.predict(line)`
    answers. `model`: a loaded model or the path of a `.bin`/`.ftz` that every worker
    can read. Lazy, as Dask collections are: `.compute()` runs it."""
    kind = _collection(lines, "predict")
    k, threshold = check_k(k), check_threshold(threshold)
    ref = _model_ref(_as_model(model, classifier=True))
    if kind == "bag":
        return lines.map_partitions(_predict_part, ref, k, threshold)
    return lines.map_partitions(_predict_series, ref, k, threshold,
                                meta=(lines.name, object))


def _sentence(text) -> bytes:
    data = check_text(text, "text")
    if b"\n" in data:  # as model.get_sentence_vector
        raise ValueError("sentence_vectors processes one line per element (remove '\\n')")
    return data + b"\n"


def _sentence_part(lines, ref):
    return _model_of(ref).sentence_vectors_bytes([_sentence(t) for t in lines])


def _word_part(words, ref):
    model = _model_of(ref)
    vectors = [model.get_word_vector(w) for w in words]
    return np.stack(vectors) if vectors else np.zeros((0, model.get_dimension()), np.float32)


def _as_list(series) -> list:
    return series.tolist()


def _stacked(collection, kind: str, part, model: FastText):
    """A dask Array (one row per element, float32) of `part` applied to each partition."""
    import dask
    import dask.array as da

    values = collection.to_delayed()
    if kind == "series":
        values = [dask.delayed(_as_list)(v) for v in values]
    ref = _model_ref(model)
    dim = model.get_dimension()
    blocks = [da.from_delayed(dask.delayed(part)(v, ref), shape=(np.nan, dim), dtype=np.float32)
              for v in values]
    return da.concatenate(blocks) if blocks else da.zeros((0, dim), dtype=np.float32)


def sentence_vectors(lines, model):
    """The sentence vector of each line of a dask Bag or Series of str, as a dask Array
    (lines x dim, one block per partition), as `model.get_sentence_vector` computes it."""
    kind = _collection(lines, "sentence_vectors")
    return _stacked(lines, kind, _sentence_part, _as_model(model))


def word_vectors(words, model):
    """The vector of each word of a dask Bag or Series of str, as a dask Array (words x
    dim, one block per partition), as `model.get_word_vector` computes it."""
    kind = _collection(words, "word_vectors")
    return _stacked(words, kind, _word_part, _as_model(model))


# ---------------------------------------------------------------------- the cluster
@contextlib.contextmanager
def connect(scheduler=None, what: str = "this", timeout: float = CONNECT_TIMEOUT):
    """A dask.distributed Client: on `scheduler` (an address such as tcp://host:8786, or a
    Client, used as it is), or on a new local cluster of one single-threaded worker
    process per core. An address that does not answer within `timeout` seconds, or a
    cluster without workers, is one EmbtkError."""
    require_dask(what)
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # the caller's own client
        return
    if scheduler is None:
        with LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=timeout)
    except (OSError, ValueError, TypeError) as e:  # TimeoutError is an OSError
        raise EmbtkError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
                         f"({one_line(e)})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise EmbtkError(f"the Dask scheduler at {scheduler} has no workers "
                             f"(waited {timeout:g} s)") from None
        yield client


def worker_count(client) -> int:
    return len(client.nthreads())


@contextlib.contextmanager
def trial_pool(scheduler, timeout: float = CONNECT_TIMEOUT):
    """Autotune's trials on the workers of `scheduler` (`-autotune-scheduler`): one trial
    per worker at a time, with as many threads as the worker has. The workers read the
    training and validation files at the paths given to autotune."""
    with connect(scheduler, "-autotune-scheduler", timeout) as client:
        threads = min(client.nthreads().values())
        yield TrialPool(client.get_executor(pure=False), worker_count(client), threads)


# --------------------------------------------------------------------- predict-files
@dataclass
class _InputFile:
    url: str       # what the workers open (with fsspec)
    name: str      # the file's name: the output is NAME.pred in the output folder
    output: str
    parts: list    # (start, stop, path of the part's output) of each block


@dataclass
class FilesSummary:
    """What a predict_files run did; `to_text()` is the CLI's summary line."""

    files: int           # input files
    complete: int        # of them, complete before this run (skipped)
    lines: int           # lines predicted by this run
    seconds: float
    workers: int         # 0: nothing was left to predict, no cluster was used

    def to_text(self) -> str:
        files = f"{self.files} file{'s' * (self.files != 1)}"
        if self.complete:
            files += f" ({self.complete} complete before)"
        if not self.workers:
            return f"{files}: nothing left to predict"
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        return (f"{files}: {self.lines} lines predicted in {self.seconds:.1f} s "
                f"({rate:,.0f} lines/s) on {self.workers} worker{'s' * (self.workers != 1)}")


def _expand(inputs) -> list:
    """(url, fsspec filesystem, path, info) of each input file, globs expanded."""
    import glob

    import fsspec.core

    found, seen = [], set()
    for given in inputs:
        given = as_path(given, "input")
        fs, path = fsspec.core.url_to_fs(given)
        if glob.has_magic(path):
            matches = [p for p in sorted(fs.glob(path)) if fs.isfile(p)]
            if not matches:
                raise EmbtkError(f"input {given}: no file matches")
        else:
            matches = [path]
        for path in matches:
            try:
                info = fs.info(path)
            except FileNotFoundError:
                raise EmbtkError(f"input {given}: no such file") from None
            except OSError as e:
                raise EmbtkError(f"cannot read input {given}: {one_line(e)}") from None
            if info.get("type") == "directory":
                raise EmbtkError(f"input {given} is a directory, not a text file")
            url = fs.unstrip_protocol(path)
            if url not in seen:
                seen.add(url)
                found.append((url, fs, path, info))
    if not found:
        raise EmbtkError("no input file given")
    return found


def _output_folder(path) -> str:
    folder = os.path.abspath(as_path(path, "output"))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise EmbtkError(f"-output {path} is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise EmbtkError(f"cannot create the output folder {path}: {e.strerror or e}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise EmbtkError(f"cannot write into the output folder {path}: permission denied")
    return folder


def _plan(found, folder: str, settings: str, blocksize: int) -> list:
    """The blocks of each input and where their outputs go. Part files are named after the
    input's identity, the model and the options (`settings`), so a rerun with the same ones
    reuses the parts already written, and any other run ignores them."""
    files, names = [], {}
    local = {os.path.abspath(path) for _, fs, path, _ in found if _is_local(fs)}
    for url, fs, path, info in found:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name in names:
            raise EmbtkError(f"two inputs are named {name} ({names[name]} and {url}): their "
                             f"outputs would both be {name}{_SUFFIX}")
        names[name] = url
        output = os.path.join(folder, name + _SUFFIX)
        if output in local:
            raise EmbtkError(f"the output of {path} would overwrite the input {output}")
        size = int(info.get("size") or 0)
        stamp = f"{url}|{size}|{info.get('mtime', info.get('LastModified', ''))}|{settings}"
        tag = hashlib.blake2b(stamp.encode(), digest_size=4).hexdigest()
        parts = [(start, min(start + blocksize, size),
                  os.path.join(folder, f".{name}{_SUFFIX}.{tag}.{i:06d}"))
                 for i, start in enumerate(range(0, size, blocksize))]
        files.append(_InputFile(url, name, output, parts))
    return files


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return "file" in protocols


def _read_block(url: str, start: int, stop: int) -> bytes:
    """The lines that begin in bytes [start, stop) of the file, the last one read to its
    end: consecutive blocks hold every line once."""
    import fsspec

    with fsspec.open(url, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the end of the line that began before the block
        begin = f.tell()
        if begin >= stop:
            return b""
        data = f.read(stop - begin)
        if data and not data.endswith(b"\n"):
            data += f.readline()
        return data


def _predict_block(ref, url, start, stop, part, k, threshold, prob) -> int:
    """One task: predict a block of an input file and write its part atomically."""
    model = _model_of(ref)
    data = _read_block(url, start, stop)
    lines = model.predictor.lines(data, k, threshold, prob, threads=1)
    with _on_this_host(), atomic_write(part, "wb") as f:
        f.write(b"".join(lines))
    return len(lines)


def _finish(file: _InputFile) -> None:
    """Join the parts of a file into its output (atomically), then remove them and what
    an earlier, killed run left beside them."""
    import glob
    import shutil

    paths = [part for _, _, part in file.parts]
    if len(paths) == 1:
        os.replace(paths[0], file.output)
    else:
        with atomic_write(file.output, "wb") as out:
            for path in paths:
                with open(path, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
    stem = os.path.join(os.path.dirname(file.output), "." + glob.escape(file.name + _SUFFIX))
    leftovers = paths + glob.glob(stem + ".????????.??????") + glob.glob(stem + ".tmp-*")
    leftovers += glob.glob(os.path.join(os.path.dirname(stem), "." + os.path.basename(stem)
                                        + ".????????.??????.tmp-*"))
    for path in leftovers:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def predict_files(model, inputs, output, k=1, threshold=0.0, prob=False, scheduler=None,
                  timeout=CONNECT_TIMEOUT, blocksize=BLOCK_BYTES, progress=False,
                  on_part=None) -> FilesSummary:
    """`embtk predict-files`: for each input file (paths, globs or fsspec URLs), the lines
    `embtk predict` (or with `prob`, `predict-prob`) prints for it, in OUTPUT/NAME.pred.

    Each block of about `blocksize` bytes is one task, whose part is written atomically;
    a file's parts are joined when all are there. A rerun skips complete outputs and the
    parts already written, so a killed job resumes. `scheduler`: see `connect`.
    `progress` shows a bar over the blocks on stderr; `on_part(done, total)` is called
    as each block of this run completes."""
    k, threshold = check_k(k), check_threshold(threshold)
    require_dask("predict-files")
    model = _as_model(model, classifier=True)
    if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize <= 0:
        raise EmbtkError(f"blocksize must be a positive number of bytes, got {blocksize!r}")
    folder = _output_folder(output)
    found = _expand([inputs] if isinstance(inputs, (str, bytes, os.PathLike)) else inputs)
    origin = model.source or os.urandom(8).hex()  # a model in memory: parts are not reused
    settings = f"{origin}|{k}|{threshold!r}|{bool(prob)}|{blocksize}"
    files = _plan(found, folder, settings, blocksize)

    started = time.perf_counter()
    pending = [f for f in files if not os.path.exists(f.output)]
    todo = [(f, part) for f in pending for part in f.parts if not os.path.exists(part[2])]
    summary = FilesSummary(len(files), len(files) - len(pending), 0, 0.0, 0)
    left = {id(f): sum(1 for g, _ in todo if g is f) for f in pending}
    for f in pending:
        if not left[id(f)]:
            _finish(f)  # complete before (or empty): only the joining was left
    if todo:
        total = sum(len(f.parts) for f in files)
        with connect(scheduler, "predict-files", timeout) as client, \
                _bar(total, total - len(todo), progress) as bar:
            summary.workers = worker_count(client)
            summary.lines = _run_blocks(client, model, todo, left, k, threshold, prob, bar,
                                        on_part)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_blocks(client, model, todo, left, k, threshold, prob, bar, on_part) -> int:
    """Submit one task per block; join each file as its last part arrives. Dask runs again
    the tasks of a worker that dies; a task's own error ends the run (the other tasks
    are cancelled, the parts written stay for the next run)."""
    from distributed import as_completed

    # a model in memory is sent once per worker (hash=False: not pickled twice)
    ref = model.source or client.scatter(model, hash=False)
    owner = {client.submit(_predict_block, ref, f.url, start, stop, part, k, threshold, prob,
                           pure=False): f
             for f, (start, stop, part) in todo}
    lines, done = 0, 0
    try:
        for future in as_completed(owner):
            lines += future.result()  # re-raises the task's error
            f = owner[future]
            left[id(f)] -= 1
            if not left[id(f)]:
                _finish(f)
            bar.update(1)
            done += 1
            if on_part is not None:
                on_part(done, len(owner))
    finally:
        client.cancel([future for future in owner if not future.done()])
    return lines


def _bar(total: int, done: int, shown: bool):
    return progress_bar(total=total, initial=done, unit="part", disable=not shown,
                        desc="predict-files")
