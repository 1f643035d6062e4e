"""A command on a cold numba cache: its kernels compiled in child processes.

A fresh install has an empty numba cache, and a training command would compile its
kernels one after the other (about 10 s of CPU for the quickstart's `supervised`), each
at its first call. Instead, `compiled_ahead` starts a child process per core (two at
most) that compile the kernels the command will call, in the order it needs them, each
child taking the next one when done, and write them to the cache, while the command
reads its input; at its first call of a kernel, the command waits until it is compiled,
then loads it from the cache. On a warm cache (every kernel listed is cached) it starts
nothing and prints nothing. On 2 cores this halves the wait, not the CPU time.

Two things besides the wait:
- The command always runs kernels loaded from the cache, as it does on a warm cache. A
  kernel compiled in the running process can round differently from the same kernel
  loaded from the cache (its callees' code is bound differently), so a `-thread 1
  -seed S` model trained on a cold cache used to differ from the same run on a warm one.
- Which kernels a command calls, with which argument types, cannot be known before it
  calls them: `KERNELS_FILE` lists them for each kind of training run (the model, the
  loss, -batch, at the model's default subword scheme), callees before their callers,
  as recorded by `python -m embtk.coldstart --record` on tiny inputs (run it after
  changing a kernel's arguments or callees). A kernel the list misses is compiled where
  it is called, as without this module; a stale list costs time, never a wrong result
  (tests/test_coldstart.py checks that the list is current).

The note goes to stderr at -verbose 1 and above, terminal or not, as fastText's own
"Read NM words" does: a log then says why its first run took seconds longer; -verbose
0 silences it with everything else. Runs that can fail after the note for reasons
found late (-resume, -inputModel, -pretrainedVectors, autotune) compile as they go.
`test`, `predict` and `predict-prob` compile ahead too (`queried_ahead`: the kernels
listed for their model's kind, read from the file's header), the other commands (nn,
analogies...) as they go; on a terminal only, these print the same note when their
first kernel starts compiling (`announce_compiling`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .corpus import check_input
from .fileformat import peek_args
from .shell import start_numba

KERNELS_FILE = Path(__file__).with_name("coldstart.pickle")
NOTE = "Compiling kernels (first run only)"
NUMBA_KEY = "numba"  # in KERNELS_FILE: the numba version that recorded it
_PATIENCE = 300.0  # seconds a kernel waits for its child before compiling it here
_CHILDREN = 2  # the reading kernels are needed first, the training and saving ones after


def run_key(args) -> str:
    """The kind of training run, as the kernels list names it: "supervised softmax",
    "skipgram ns batch"... The kernels' types follow the subword scheme (the dictionary's
    tables class), so a run off its model's default (a classifier with -maxn, word vectors
    with -maxn 0, floret mode) has a key of its own; those are not listed: they compile
    as they go."""
    key = f"{args.model} {args.loss}" + (" batch" if getattr(args, "batch", 0) > 0 else "")
    if getattr(args, "floret", False):
        return key + " floret"
    if (args.maxn > 0) != (args.model != "supervised"):
        return key + (" n-grams" if args.maxn > 0 else " words only")
    return key


def recorded_with() -> str | None:
    """The numba version that recorded KERNELS_FILE (None if it cannot be read)."""
    try:
        with open(KERNELS_FILE, "rb") as f:
            return pickle.load(f).get(NUMBA_KEY)
    except Exception:
        return None


def listed_kernels(key: str) -> list:
    """[(module, function name, signature, callees)] of the run kind `key`, callees
    before their callers (`callees`: the indices of the listed entries compiled with it,
    which a child waits for rather than compiling them too); [] if none are listed, or
    the list was recorded by another numba (its types and compiled callees may differ)."""
    import numba

    try:
        with open(KERNELS_FILE, "rb") as f:
            kinds = pickle.load(f)
        if kinds.get(NUMBA_KEY) != numba.__version__:
            return []
        listed = kinds.get(key)  # each kind pickled apart: only its types are
        return pickle.loads(listed) if listed else []  # read (9 ms for all of them)
    except Exception:  # missing, or pickled numba types this numba cannot read
        return []


def _dispatcher(module: str, name: str):
    return getattr(importlib.import_module(module), name)


class _CacheIndexes:
    """Whether numba's cache holds a dispatcher compiled for a signature, from its index
    files (read once each; no code is loaded). 1-2 ms for a run's kernels: numba's own
    key would ask LLVM for the host's CPU features at every lookup (15 ms)."""

    def __init__(self):
        self.indexes = {}
        self.magic = None

    def magic_tuple(self):  # what numba's cache key asks of a codegen
        return self.magic

    def holds(self, disp, sig) -> bool:
        cache = disp._cache
        if not getattr(cache, "_enabled", False):
            return True  # not a cached function: nothing a child could do for it
        if self.magic is None:
            self.magic = disp.targetctx.codegen().magic_tuple()
        if disp not in self.indexes:
            self.indexes[disp] = cache._cache_file._load_index()
        return cache._index_key(sig, self) in self.indexes[disp]


_noted = threading.Event()  # NOTE was printed (or must not be) in this process
_listening = False  # announce_compiling's listener is registered


def note_compiling() -> None:
    """NOTE on stderr, once per process."""
    if not _noted.is_set():
        _noted.set()
        print(NOTE, file=sys.stderr, flush=True)


def announce_compiling() -> None:
    """NOTE when this process starts compiling a kernel of embtk (numba signals a compile
    only when its cache misses), if stderr is a terminal: for the commands other than
    training (test, predict, nn...), and training runs the list does not cover. Not on a
    pipe or file, where a failing command's error must stay the only line (a corrupt
    model is found while kernels compile) and a script wants the output alone."""
    global _listening
    if _listening or _noted.is_set() or not sys.stderr.isatty():
        return
    from numba.core import event

    class FirstCompile(event.Listener):
        def on_start(self, ev):
            if ev.data["dispatcher"].py_func.__module__.startswith("embtk."):
                note_compiling()

        def on_end(self, ev):
            pass

    event.register("numba:compile", FirstCompile())
    _listening = True


def still_needed_done(cached: list, callees: list) -> list:
    """`cached` with the entries no one needs counted as done: a callee missing from the
    cache whose listed callers are all cached (its source file changed alone; the cached
    callers hold their own copy of it), so a warm run does not fork children for it.
    One pass from the end: callers come after their callees."""
    done = list(cached)
    callers = [[] for _ in done]
    for k, ks in enumerate(callees):
        for c in ks:
            callers[c].append(k)
    for k in reversed(range(len(done))):
        if not done[k] and callers[k] and all(done[c] for c in callers[k]):
            done[k] = True
    return done


@contextlib.contextmanager
def compiled_ahead(args):
    """The block (a training command, its saving included) runs while child processes
    compile the kernels it will call that the cache lacks; prints NOTE on stderr first
    (unless -verbose 0) when there are any. The input is checked first, so that an empty
    or unreadable one is the only line. Children still at work when the block ends (on
    kernels this run did not call, or after an error) are stopped."""
    if args.resume or args.inputModel or args.pretrainedVectors or args.autotuneValidationFile:
        yield  # rarer runs, with more ways to fail after the note: compiled as they go
        return
    if args.input != "-":
        check_input(args.input)  # an empty input fails before the note, in one line
    if args.verbose == 0:
        _noted.set()  # silent, also for kernels the list misses
    else:
        announce_compiling()  # those: the note when one compiles here (on a terminal)
    with _compiling(run_key(args)):
        yield


@contextlib.contextmanager
def queried_ahead(command: str, model_path):
    """compiled_ahead for a command that reads a classifier (`command` "test" or
    "predict"): the kernels listed for its model's kind (read from the file's header; a
    `.ftz` taken for a quantized model) compiled by children while it loads the model.
    The note only on a terminal, as announce_compiling's."""
    announce_compiling()
    if not sys.stderr.isatty():
        _noted.set()
    args = peek_args(model_path)
    key = None
    if args is not None:
        key = f"{command} {run_key(args)}" + (" quantized" if os.fspath(model_path).endswith(".ftz") else "")
    with _compiling(key):
        yield


@contextlib.contextmanager
def _compiling(key):
    """Children compiling the kernels listed for `key` that the cache lacks, NOTE first."""
    try:
        entries = [(_dispatcher(m, n), sig, callees)
                   for m, n, sig, callees in (listed_kernels(key) if key else [])]
        cached = _CacheIndexes()
        done = still_needed_done([cached.holds(d, sig) for d, sig, _ in entries],
                                 [callees for _, _, callees in entries])
    except Exception:  # a kernel renamed since the list was made: compile as they come
        done = [True]
    if all(done):
        yield
        return
    note_compiling()  # before the children fork: they inherit that it was printed
    ahead = _Ahead(entries, done)
    try:
        yield
    finally:
        ahead.close()


class _Ahead:
    """Child processes compiling `entries` [(dispatcher, signature, callees)] (those not
    `done` already), each taking the next one whose callees are compiled, so that two
    children do not compile the same callee; the dispatchers wait for their entry
    before compiling (then they find it in the cache)."""

    def __init__(self, entries, done):
        self.entries = entries
        self.done = [threading.Event() for _ in entries]
        self.free = [not d for d in done]  # not cached, not given to a child yet
        self.changed = threading.Condition()
        for k in range(len(entries)):
            if done[k]:
                self.done[k].set()
        count = min(_CHILDREN, os.cpu_count() or 1, sum(self.free))
        self.children = []
        for _ in range(count):
            try:
                self.children.append(_Child([(d, sig) for d, sig, _ in entries]))
            except OSError:
                break
        # only now: a forked child must not inherit the waiting dispatchers
        self.waiting = {}
        for k, (disp, sig, _) in enumerate(entries):
            if not done[k]:
                self.waiting.setdefault(disp, {})[tuple(sig)] = self.done[k]
        for disp, events in self.waiting.items():
            disp.compile = self._waiting_compile(disp, events)
        self.feeding = len(self.children)
        if not self.children:
            self._release_all()
        for child in self.children:
            threading.Thread(target=self._feed, args=(child,), daemon=True).start()

    @staticmethod
    def _waiting_compile(disp, events):
        compile_here = type(disp).compile

        def compile(sig):
            event = events.get(tuple(sig))
            if event is not None:
                event.wait(_PATIENCE)
            return compile_here(disp, sig)

        return compile

    def _take(self):
        """The first free entry whose callees are compiled (waiting while all free ones
        wait for callees another child compiles); None when none is left."""
        with self.changed:
            while True:
                waiting = False
                for k, free in enumerate(self.free):
                    if not free:
                        continue
                    if all(self.done[c].is_set() for c in self.entries[k][2]):
                        self.free[k] = False
                        return k
                    waiting = True
                if not waiting:
                    return None
                self.changed.wait(1.0)

    def _finished(self, k) -> None:
        with self.changed:
            self.done[k].set()
            self.changed.notify_all()

    def _feed(self, child) -> None:
        """Give `child` the next entry whenever it has compiled one; when it fails or
        ends, the entries not done are compiled where they are called."""
        try:
            while (k := self._take()) is not None:
                child.requests.write(b"%d\n" % k)
                child.requests.flush()
                answer = child.answers.readline().strip()
                self._finished(k)
                if answer != b"%d" % k:
                    break
        except (OSError, ValueError):
            pass
        finally:
            # nothing more to ask: the child ends (a long `predict` on stdin keeps no
            # idle process)
            with contextlib.suppress(OSError):
                child.requests.close()
            with self.changed:
                self.feeding -= 1
                last = self.feeding == 0
            if last:  # no child left: what is not done is compiled where it is called
                self._release_all()

    def _release_all(self) -> None:
        with self.changed:
            for event in self.done:
                event.set()
            self.changed.notify_all()

    def close(self) -> None:
        for disp in self.waiting:
            disp.__dict__.pop("compile", None)
        with self.changed:
            self.free = [False] * len(self.entries)  # hand out nothing more
        for child in self.children:
            child.stop()  # what it compiles now, this run did not call
        self._release_all()


class _Child:
    """A process that compiles the entries it is asked for (`serve`): forked when this
    process runs one thread (it has numba and the kernels' modules imported already,
    0.5-1 s of a child's start), else a new interpreter (forking a process with other
    threads can copy a lock another thread holds)."""

    def __init__(self, entries):
        if hasattr(os, "fork") and threading.active_count() == 1:
            self._fork(entries)
        else:
            names = [(d.py_func.__module__, d.py_func.__name__, sig) for d, sig in entries]
            self.proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self.pid, self.requests, self.answers = self.proc.pid, self.proc.stdin, self.proc.stdout
            self.requests.write(pickle.dumps(names))
            self.requests.flush()

    def _fork(self, entries) -> None:
        self.proc = None
        to_child, requests = os.pipe()
        answers, from_child = os.pipe()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: nothing of the parent's runs here but serve
            try:
                os.close(requests)
                os.close(answers)
                quiet = os.open(os.devnull, os.O_WRONLY)
                os.dup2(quiet, 1)
                os.dup2(quiet, 2)
                serve(os.fdopen(to_child, "rb"), os.fdopen(from_child, "wb"), entries)
            finally:
                os._exit(0)
        os.close(to_child)
        os.close(from_child)
        self.requests = os.fdopen(requests, "wb")
        self.answers = os.fdopen(answers, "rb")

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        for stream in (self.requests, self.answers):
            with contextlib.suppress(OSError):
                stream.close()


# A new interpreter's child: reads the pickled [(module, name, signature)], then serves.
_CHILD = """
import sys
from embtk.coldstart import serve
serve(sys.stdin.buffer, sys.stdout.buffer)
"""


def serve(requests, answers, entries=None) -> None:
    """A child's loop: compile each entry whose index it reads, answer with the index
    (numba writes it to the cache). `entries` [(dispatcher, signature)], or read from
    `requests` as pickled [(module, name, signature)]."""
    if entries is None:
        entries = [(_dispatcher(m, n), sig) for m, n, sig in pickle.load(requests)]
        start_numba()
    for line in requests:
        k = int(line)
        disp, sig = entries[k]
        try:
            type(disp).compile(disp, sig)
        except Exception:
            answers.write(b"failed\n")
            answers.flush()
            return
        answers.write(b"%d\n" % k)
        answers.flush()


# ----------------------------------------------------------------------------- recording
RECORDED_RUNS = [
    ("supervised", loss, []) for loss in ("softmax", "ns", "hs", "ova")
] + [
    (model, loss, []) for model in ("skipgram", "cbow") for loss in ("ns", "hs", "softmax", "ova")
] + [(model, "ns", ["-batch", "8"]) for model in ("skipgram", "cbow")]

_RECORDER = """
import pickle, sys
import numba.core.event as event

calls, nested = [], [[]]

class Recorder(event.Listener):
    def on_start(self, ev):
        nested.append([])  # the listed entries compiled inside this one

    def on_end(self, ev):  # callees before their callers: a child then compiles a caller
        disp = ev.data["dispatcher"]  # with its callees in the cache
        inner = nested.pop()
        module = sys.modules.get(disp.py_func.__module__)
        # the functions a child can find by name: not numba's own, nor local closures
        if getattr(module, disp.py_func.__name__, None) is disp:
            entry = (disp.py_func.__module__, disp.py_func.__name__, ev.data["args"])
            names = [c[:3] for c in calls]
            if entry not in names:
                calls.append((*entry, tuple(sorted(set(inner)))))
            inner = inner + [names.index(entry) if entry in names else len(calls) - 1]
        nested[-1].extend(inner)

event.register("numba:compile", Recorder())
import embtk.coldstart
embtk.coldstart.listed_kernels = lambda key: []  # this run compiles everything itself
from embtk.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "wb") as out:
    pickle.dump(calls, out)
sys.exit(code)
"""


def _tiny_corpus(path: Path, supervised: bool) -> None:
    """A few hundred lines of made-up text (labelled for a classifier), enough for every
    word to pass the default -minCount."""
    words = [f"w{i}" for i in range(40)]
    with open(path, "w") as out:
        for n in range(400):
            line = " ".join(words[(n * 7 + k * 3) % 40] for k in range(12))
            out.write((f"__label__{n % 3} " if supervised else "") + line + "\n")


def record(work: Path, runs=RECORDED_RUNS) -> dict:
    """Run each kind of training command (`runs`: (model, loss, more options)) on tiny
    inputs, each in a child process with an empty numba cache, and list the kernels it
    compiles, callees before their callers: {run_key: [(module, name, signature)]}."""
    import tempfile

    listed = {}
    for model, loss, more in runs:
        supervised = model == "supervised"
        data = work / ("labelled.txt" if supervised else "text.txt")
        _tiny_corpus(data, supervised)
        with tempfile.TemporaryDirectory(dir=work) as cache:
            calls = work / "calls.pickle"
            argv = [model, "-input", str(data), "-output", str(work / "model"), "-loss", loss,
                    "-dim", "10", "-epoch", "1", "-bucket", "1000", "-thread", "2", "-verbose", "0",
                    *more]  # -thread 2: the same kernels on any machine
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            subprocess.run([sys.executable, "-c", _RECORDER, str(calls), *argv], env=env,
                           check=True)
            with open(calls, "rb") as f:
                key = f"{model} {loss}" + (" batch" if more else "")
                listed[key] = pickle.load(f)
        if supervised:  # what test and predict-prob call on that model, from empty caches
            for command, name in (("test", "test"), ("predict-prob", "predict")):
                with tempfile.TemporaryDirectory(dir=work) as cache:
                    argv = [command, str(work / "model.bin"), str(data), "2"]
                    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
                    subprocess.run([sys.executable, "-c", _RECORDER, str(calls), *argv],
                                   env=env, check=True, stdout=subprocess.DEVNULL)
                    with open(calls, "rb") as f:
                        listed[f"{name} {key}"] = pickle.load(f)
    return listed


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m embtk.coldstart --record   (rewrites " + KERNELS_FILE.name + ")")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        kernels = record(Path(folder))
    with open(KERNELS_FILE, "wb") as out:
        import numba

        kinds = {key: pickle.dumps(calls) for key, calls in kernels.items()}
        pickle.dump({**kinds, NUMBA_KEY: numba.__version__}, out)
    for key, calls in kernels.items():
        print(f"{key}: {len(calls)} kernels")
