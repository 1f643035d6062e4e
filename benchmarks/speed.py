#!/usr/bin/env python
"""Speed of embtk next to the official fastText (and gensim), same data and settings, one run.

Every measurement runs in a fresh process, tools alternating A B A B, so each gets the same
share of a noisy machine; the table shows medians, peak RSS (of that process) and the ratio
embtk / fastText. Quality columns stay in the table so a speed-up that costs accuracy shows.

    python benchmarks/speed.py                        # everything the speed issue lists
    python benchmarks/speed.py --reps 1 --corpus ../shared/data/corpus/en_small.txt
    python benchmarks/speed.py --cases 'supervised|predict' --threads 2 --json out.json
    python benchmarks/speed.py --cases 'whole|predict' --threads 2 --fasttext-cli /tmp/ft-native/fasttext

Needs the official `fasttext` module (`pip install '.[test]'`); gensim is timed when it is
installed. `--fasttext-cli PATH` (a native build of fastText) adds whole commands beside
embtk's: skipgram/cbow and supervised training (reading, training, writing the model;
words/sec/thread as each tool prints it), `predict` and `--help`.

The `whole` cases time a supervised run from start to saved model (the speed issue's
`-wordNgrams 2 -epoch 5`, a 1 GB .bin), through the API and through the command line;
`predict CLI` runs on the test file repeated 5 times and checks that embtk's output is
byte for byte the native binary's. CPU time (user + sys) is shown beside wall time: on a
shared machine it moves less.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[0].parent / "shared" / "data"
UNSUPERVISED = dict(dim=100, epoch=5, minn=3, maxn=6, lr=0.05, ws=5, neg=5, minCount=5)
SUPERVISED = dict(dim=50, epoch=10, lr=0.5, wordNgrams=2)
SUPERVISED_LOSSES = ("softmax", "hs", "ova")
SUPERVISED_WHOLE = dict(wordNgrams=2, epoch=5)  # the speed issue's train-and-save run
PREDICT_REPEATS = 5  # the CLI predict case reads the test file this many times over
TIME = os.path.exists("/usr/bin/time")  # GNU time, for each command's own peak RSS
NN_QUERIES = ("king", "water", "love", "house", "ship", "night", "gold", "city", "war", "child")


# ---------------------------------------------------------------- worker (one measurement)

class _GensimVectors:
    """Just enough of the fastText API to score a gensim model."""

    def __init__(self, model):
        self.wv = model.wv
        self.words = list(self.wv.key_to_index)

    def get_word_vector(self, word):
        return self.wv[word]


def _train(job: dict) -> dict:
    tool, mode, thread = job["tool"], job["mode"], job["thread"]
    params = dict(job["params"])
    start = time.perf_counter()
    if tool == "gensim":
        from gensim.models import FastText as GensimFastText

        start = time.perf_counter()
        # fastText's settings in gensim's words: negatives drawn by count^0.5 (gensim's
        # default is 0.75), the rate falling to 0 (default 1e-4), subsampling t = 1e-4, the
        # same dynamic window, bucket count and mean of the context rows (cbow_mean=1).
        model = _GensimVectors(GensimFastText(
            corpus_file=job["input"], sg=int(mode == "skipgram"), vector_size=params["dim"],
            window=params["ws"], min_count=params["minCount"], negative=params["neg"],
            ns_exponent=0.5, sample=1e-4, min_n=params["minn"], max_n=params["maxn"],
            bucket=2_000_000, alpha=params["lr"], min_alpha=0.0, cbow_mean=1,
            shrink_windows=True, epochs=params["epoch"], workers=thread))
    else:
        module = __import__(tool)
        start = time.perf_counter()
        if mode == "supervised":
            model = module.train_supervised(job["input"], thread=thread, verbose=0, **params)
        else:
            model = module.train_unsupervised(job["input"], model=mode, thread=thread,
                                              verbose=0, **params)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds}
    if job.get("save"):
        model.save_model(job["save"])
        if job.get("whole"):  # training and saving, timed together
            result.update(train_seconds=seconds, seconds=time.perf_counter() - start)
            result["save_seconds"] = result["seconds"] - seconds
    if mode == "supervised":
        n, p1, _ = model.test(job["test"])
        result["quality"] = {"P@1": p1}
    else:
        sys.path.insert(0, str(HERE))
        from quality import similarity_scores

        sets = {Path(p).stem: Path(p) for p in job["similarity"]}
        result["quality"] = {name: rho for name, (rho, _) in similarity_scores(model, sets).items()}
    return result


def _load(job: dict) -> dict:
    module = __import__(job["tool"])
    start = time.perf_counter()
    model = module.load_model(job["model"])
    loaded = time.perf_counter() - start
    result = {"seconds": loaded}
    if job.get("nn"):
        start = time.perf_counter()
        model.get_nearest_neighbors(NN_QUERIES[0], k=10)
        result["first_query"] = time.perf_counter() - start
        times = []
        for word in NN_QUERIES[1:]:
            start = time.perf_counter()
            model.get_nearest_neighbors(word, k=10)
            times.append(time.perf_counter() - start)
        result["seconds"] = statistics.median(times)
        result["load"] = loaded
    return result


def _score(job: dict) -> dict:
    """Similarity scores of a saved .bin (whichever tool wrote it), read by embtk."""
    import embtk

    sys.path.insert(0, str(HERE))
    from quality import similarity_scores

    model = embtk.load_model(job["model"])
    sets = {Path(p).stem: Path(p) for p in job["similarity"]}
    return {"seconds": 0.0, "quality": {name: rho for name, (rho, _) in
                                        similarity_scores(model, sets).items()}}


def _predict_in_process(job: dict) -> dict:
    module = __import__(job["tool"])
    model = module.load_model(job["model"])
    with open(job["input"], encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    start = time.perf_counter()
    model.predict(lines, k=1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "lines": len(lines)}


def worker(job: dict) -> dict:
    return {"train": _train, "load": _load, "predict-api": _predict_in_process,
            "score": _score}[job["kind"]](job)


# ---------------------------------------------------------------- parent (runs the workers)

def _run(argv: list, stdout=subprocess.PIPE) -> tuple:
    """Wall seconds, peak RSS (MB) of the command alone, and its stdout."""
    measured = _run_measured(argv, stdout)
    return measured["seconds"], measured["rss_mb"], measured["stdout"]


LOCK = None  # --lock


@contextlib.contextmanager
def _machine_lock():
    """Hold --lock (flock) for one measurement, so that benchmarks sharing a machine take
    turns run by run rather than one whole benchmark at a time."""
    if not LOCK:
        yield
        return
    import fcntl

    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_measured(argv: list, stdout=subprocess.PIPE) -> dict:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + sys) of the command alone, and
    its stdout and stderr.

    A child's peak RSS includes its parent's at fork time, so the command is started by
    /usr/bin/time (a tiny process), which reports the peak of the command itself."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file, _machine_lock():
        timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", rss_file.name] if TIME else []
        start = time.perf_counter()
        proc = subprocess.Popen(timer + argv, stdout=stdout, stderr=subprocess.PIPE)
        out, err = proc.communicate()
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
                               f"{err.decode(errors='replace')[-2000:]}")
        fields = rss_file.read().split()[-3:] if TIME else ["nan"] * 3
    rss_kb, user, system = map(float, fields)
    return {"seconds": wall, "rss_mb": rss_kb / 1024.0, "cpu_seconds": user + system,
            "stdout": out, "stderr": err}


def _run_job(job: dict) -> dict:
    measured = _run_measured([sys.executable, __file__, "--worker", json.dumps(job)])
    result = json.loads(measured["stdout"].decode().strip().splitlines()[-1])
    result.update(wall=measured["seconds"], rss_mb=measured["rss_mb"],
                  cpu_seconds=measured["cpu_seconds"])
    return result


def _time_to_progress(argv: list) -> float:
    """Seconds from launch until the command prints its first `Progress:` (training began)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, elapsed = b"", None
    while chunk := proc.stderr.read1(4096):
        seen += chunk
        if elapsed is None and b"Progress:" in seen:
            elapsed = time.perf_counter() - start
    if proc.wait() != 0 or elapsed is None:
        raise RuntimeError(f"{' '.join(argv)} failed or printed no progress:\n{seen[-2000:]}")
    return elapsed


def count_tokens(path: Path) -> int:
    """Tokens as fastText counts them: whitespace-separated words plus one `</s>` per line.

    Read in chunks: the children's peak RSS includes this process's RSS when they are forked.
    """
    import numpy as np

    space = np.zeros(256, dtype=bool)
    space[list(b" \n\r\t\v\f\0")] = True
    tokens, previous_is_space = 0, True
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            is_space = space[np.frombuffer(chunk, dtype=np.uint8)]
            before = np.concatenate(([previous_is_space], is_space[:-1]))
            tokens += int(np.count_nonzero(before & ~is_space)) + chunk.count(b"\n")
            previous_is_space = bool(is_space[-1])
    return tokens


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.rows = []  # one dict per case
        self.work = Path(tempfile.mkdtemp(prefix="embtk-speed-"))

    def log(self, text: str, end="\n"):
        print(text, end=end, file=sys.stderr, flush=True)

    def alternate(self, case: str, make_job, tools, unit: str, per_run=None) -> dict:
        """Run each tool `reps` times, interleaved; record medians under `case`."""
        runs = {tool: [] for tool in tools}
        for rep in range(self.opts.reps):
            for tool in tools:
                self.log(f"  {case:34s} {tool:8s} rep {rep + 1} ...", end="")
                result = make_job(tool, rep)
                runs[tool].append(result)
                self.log(f" {result['seconds']:8.3f}s  rss {result.get('rss_mb', 0):7.0f} MB")
        summary = {}
        for tool, results in runs.items():
            entry = {"seconds": statistics.median(r["seconds"] for r in results),
                     "all_seconds": [r["seconds"] for r in results], "unit": unit}
            if any("rss_mb" in r for r in results):
                entry["rss_mb"] = max(r.get("rss_mb", 0) for r in results)
            if "quality" in results[0]:
                entry["quality"] = {k: statistics.median(r["quality"][k] for r in results)
                                    for k in results[0]["quality"]}
            for extra in ("cpu_seconds", "train_seconds", "save_seconds"):
                if all(extra in r for r in results):
                    entry[extra] = statistics.median(r[extra] for r in results)
            if per_run:
                entry.update(per_run(results))
            summary[tool] = entry
        self.rows.append({"case": case, "tools": summary})
        return summary

    # -- cases
    def training(self):
        o = self.opts
        sims = [str(o.data / "similarity" / f) for f in ("wordsim353.tsv", "simlex999.tsv")]
        langid = o.data / "classify" / "langid_gettext"
        cases = []
        for mode in ("skipgram", "cbow"):
            for thread in o.threads:
                cases.append((f"{mode} {o.corpus.name} t{thread}", mode, thread,
                              dict(UNSUPERVISED, epoch=o.epoch), o.corpus))
        for loss in SUPERVISED_LOSSES:
            for thread in o.threads:
                cases.append((f"supervised langid {loss} t{thread}", "supervised", thread,
                              dict(SUPERVISED, loss=loss), langid / "train.txt"))
        tokens_of = {}
        for case, mode, thread, params, source in cases:
            if not re.search(o.cases, case):
                continue
            if source not in tokens_of:
                tokens_of[source] = count_tokens(source)
            tokens = tokens_of[source]
            tools = [t for t in o.tools if t != "gensim" or mode != "supervised"]
            save = {"embtk": self.work / "skipgram.bin"} if mode == "skipgram" else {}
            save.update({"embtk": self.work / "supervised.bin"}
                        if mode == "supervised" and params["loss"] == "softmax" else {})

            def job(tool, rep, mode=mode, thread=thread, params=params, save=save):
                spec = {"kind": "train", "tool": tool, "mode": mode, "thread": thread,
                        "params": params, "similarity": sims}
                if mode == "supervised":
                    spec.update(input=str(langid / "train.txt"), test=str(langid / "test.txt"))
                else:
                    spec["input"] = str(o.corpus)
                if rep == 0 and tool in save:
                    spec["save"] = str(save[tool])
                return _run_job(spec)

            def words_per_sec(results, tokens=tokens, params=params, thread=thread):
                secs = statistics.median(r["seconds"] for r in results)
                return {"words_per_sec_thread": tokens * params["epoch"] / secs / thread}

            if not (o.cli_only and o.fasttext_cli and mode != "supervised"):
                self.alternate(case, job, tools, "s", words_per_sec)
            if o.fasttext_cli and mode != "supervised":
                self.command_line_training(case, mode, thread, params, sims)

    def command_line_training(self, case, mode, thread, params, sims):
        """The same training as two whole commands, embtk's CLI and the native fastText
        binary (reading, training, writing .bin and .vec); words/sec/thread as each prints
        it at the end of training."""
        o = self.opts
        flags = [str(x) for k, v in params.items() for x in (f"-{k}", v)]
        commands = {"embtk": [sys.executable, "-m", "embtk"], "fasttext": [o.fasttext_cli]}

        def run(tool, rep):
            out = self.work / f"cli-{tool}"
            measured = _run_measured(commands[tool] + [
                mode, "-input", str(o.corpus), "-output", str(out), "-thread", str(thread),
                "-verbose", "2"] + flags)
            rates = re.findall(rb"words/sec/thread:\s*([0-9]+)", measured.pop("stderr"))
            measured.pop("stdout")
            # both models scored by the same code, in a fresh process
            quality = _run_job({"kind": "score", "model": f"{out}.bin", "similarity": sims})
            return {**measured, "quality": quality["quality"],
                    "reported_words_per_sec_thread": float(rates[-1]) if rates else 0.0}

        def reported(results):
            return {"words_per_sec_thread": statistics.median(
                r["reported_words_per_sec_thread"] for r in results)}

        self.alternate(f"{case} CLI vs native", run, ["fasttext", "embtk"], "s", reported)

    def supervised_whole(self):
        """Supervised training plus saving, start to end: API and command line."""
        o = self.opts
        langid = o.data / "classify" / "langid_gettext"
        train = str(langid / "train.txt")
        for thread in o.threads:
            case = f"whole: supervised+save langid API t{thread}"
            if re.search(o.cases, case):
                self.alternate(case, lambda tool, rep, thread=thread: _run_job(
                    {"kind": "train", "tool": tool, "mode": "supervised", "thread": thread,
                     "params": SUPERVISED_WHOLE, "input": train, "test": str(langid / "test.txt"),
                     "save": str(self.work / f"whole-{tool}.bin"), "whole": True}),
                    [t for t in o.tools if t != "gensim"], "s")
            case = f"whole: supervised+save langid CLI t{thread}"
            if not re.search(o.cases, case):
                continue
            options = ["supervised", "-input", train, "-thread", str(thread), "-verbose", "0"]
            for name, value in SUPERVISED_WHOLE.items():
                options += [f"-{name}", str(value)]
            commands = {"embtk": [sys.executable, "-m", "embtk"]}
            if o.fasttext_cli:
                commands["fasttext"] = [o.fasttext_cli]

            def cli(tool, rep):
                output = self.work / f"whole-cli-{tool}"
                measured = _run_measured(commands[tool] + options + ["-output", str(output)])
                for suffix in (".bin", ".vec"):
                    Path(f"{output}{suffix}").unlink(missing_ok=True)
                return measured

            self.alternate(case, cli, list(commands), "s")

    def predict(self):
        o = self.opts
        model = next((m for m in (self.work / "supervised.bin", self.work / "whole-embtk.bin")
                      if m.exists()), None)
        test = o.data / "classify" / "langid_gettext" / "test.txt"
        if not re.search(o.cases, "predict") or model is None:
            if re.search(o.cases, "predict"):
                self.log("  predict: no supervised model was trained (see --cases)")
            return
        lines = test.read_bytes().count(b"\n")
        repeated = self.work / "test-repeated.txt"
        repeated.write_bytes(test.read_bytes() * PREDICT_REPEATS)
        rate = lambda results, lines=lines: {"lines_per_sec": lines / statistics.median(
            r["seconds"] for r in results)}
        commands = {"embtk": [sys.executable, "-m", "embtk", "predict", str(model), str(repeated)]}
        if o.fasttext_cli:
            commands["fasttext"] = [o.fasttext_cli, "predict", str(model), str(repeated)]
        outputs = {tool: self.work / f"predicted-{tool}.txt" for tool in commands}

        def cli(tool, rep):
            with open(outputs[tool], "wb") as sink:
                return _run_measured(commands[tool], stdout=sink)

        size = model.stat().st_size / 1e6
        summary = self.alternate(f"predict CLI {PREDICT_REPEATS}x test, whole process "
                                 f"({size:.0f} MB model)", cli, list(commands), "s",
                                 lambda results: rate(results, lines * PREDICT_REPEATS))
        if "fasttext" in outputs:
            same = outputs["embtk"].read_bytes() == outputs["fasttext"].read_bytes()
            summary["embtk"]["identical"] = same
            self.log(f"  predict CLI output {'identical to' if same else 'DIFFERS from'} "
                     "the native binary's")
        self.alternate("predict API, list of lines", lambda tool, rep: _run_job(
            {"kind": "predict-api", "tool": tool, "model": str(model), "input": str(test)}),
            [t for t in o.tools if t != "gensim"], "s", rate)

    def loading(self):
        o = self.opts
        model = self.work / "skipgram.bin"
        if not model.exists():
            if re.search(o.cases, "load|nn"):
                self.log("  load/nn: no skipgram model was trained (see --cases)")
            return
        tools = [t for t in o.tools if t != "gensim"]
        size = model.stat().st_size / 1e6
        if re.search(o.cases, "load"):
            self.alternate(f"load .bin ({size:.0f} MB)", lambda tool, rep: _run_job(
                {"kind": "load", "tool": tool, "model": str(model)}), tools, "s")
        if re.search(o.cases, "nn"):
            self.alternate("nn query (median, after first)", lambda tool, rep: _run_job(
                {"kind": "load", "tool": tool, "model": str(model), "nn": True}), tools, "s",
                lambda results: {"first_query": statistics.median(
                    r["first_query"] for r in results)})

    def startup(self):
        o = self.opts
        if not re.search(o.cases, "help|start"):
            return
        commands = {"embtk": ["embtk", "--help"]}
        if o.fasttext_cli:  # its usage text exits non-zero: wrap it
            commands["fasttext"] = ["sh", "-c", f"'{o.fasttext_cli}' help >/dev/null 2>&1; true"]

        def run(tool, rep):
            wall, rss, _ = _run(commands[tool])
            return {"seconds": wall, "rss_mb": rss}

        self.alternate("--help", run, list(commands), "s")

        small = HERE.parent / "examples" / "authors.train"
        out = self.work / "small_model"
        train = ["embtk", "supervised", "-input", str(small), "-output", str(out),
                 "-epoch", "5", "-verbose", "2", "-thread", "1"]
        _run(train)  # warm numba's cache once, untimed
        commands = {"embtk": train}
        if o.fasttext_cli:
            commands["fasttext"] = [o.fasttext_cli] + train[1:]
        self.alternate("launch -> first training step (warm)",
                       lambda tool, rep: {"seconds": _time_to_progress(commands[tool])},
                       list(commands), "s")


# ---------------------------------------------------------------- report

def _seconds(t: float) -> str:
    return f"{t * 1000:.1f} ms" if t < 0.1 else f"{t:.2f}" if t < 10 else f"{t:.1f}"


def table(rows: list, baseline: str = "fasttext") -> str:
    tools = []
    for row in rows:
        tools += [t for t in row["tools"] if t not in tools]
    head = ["case"]
    for t in tools:
        head += [f"{t} time (s)", f"{t} RSS MB", f"{t} quality"]
    head += ["w/s/thread embtk / fastText", "embtk / fastText", "embtk / gensim",
             "RSS embtk / fastText", "CPU embtk / fastText"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["case"]]
        res = row["tools"]
        for t in tools:
            r = res.get(t)
            if not r:
                cells += ["", "", ""]
                continue
            q = r.get("quality", {})
            extra = ""
            if "lines_per_sec" in r:
                extra = f"{r['lines_per_sec']:,.0f} lines/s"
            if "first_query" in r:
                extra = f"first query {_seconds(r['first_query'])}"
            if "save_seconds" in r:
                extra = f"train {_seconds(r['train_seconds'])} + save {_seconds(r['save_seconds'])}"
            if "identical" in r:
                extra += ", output identical" if r["identical"] else ", OUTPUT DIFFERS"
            if "cpu_seconds" in r:
                extra += f" (CPU {_seconds(r['cpu_seconds'])})"
            cells += [_seconds(r["seconds"]),
                      f"{r['rss_mb']:.0f}" if "rss_mb" in r else "",
                      " ".join([f"{k} {v:.4f}" for k, v in q.items()] + [extra]).strip()]
        e = res.get("embtk", {})
        rates = [f"{res[t]['words_per_sec_thread']:,.0f}" for t in ("embtk", baseline)
                 if "words_per_sec_thread" in res.get(t, {})]
        cells.append(" / ".join(rates))
        for other in (baseline, "gensim"):
            o = res.get(other)
            cells.append(f"×{e['seconds'] / o['seconds']:.2f}" if e and o else "")
        o = res.get(baseline)
        cells.append(f"×{e['rss_mb'] / o['rss_mb']:.2f}"
                     if e and o and "rss_mb" in e and "rss_mb" in o else "")
        cells.append(f"×{e['cpu_seconds'] / o['cpu_seconds']:.2f}"
                     if e and o and "cpu_seconds" in e and "cpu_seconds" in o else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def thread_scaling(rows: list) -> str:
    """Each tool's words/sec/thread at 2 threads over its own at 1 (1.0: perfect scaling)."""
    by_case = {row["case"]: row["tools"] for row in rows}
    lines = []
    for case, tools in by_case.items():
        twin = by_case.get(re.sub(r"\bt1\b", "t2", case)) if re.search(r"\bt1\b", case) else None
        if not twin:
            continue
        cells = [f"{tool} {twin[tool]['words_per_sec_thread'] / r['words_per_sec_thread']:.2f}"
                 for tool, r in tools.items()
                 if r.get("words_per_sec_thread") and twin.get(tool, {}).get(
                     "words_per_sec_thread")]
        if cells:
            name = re.sub(r" *\bt1\b *", " ", case).strip()
            lines.append(f"- {name}: " + ", ".join(cells))
    return ("2-thread efficiency (words/sec/thread at 2 threads / at 1):\n" + "\n".join(lines)
            if lines else "")


def main(argv=None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    ap.add_argument("--corpus", type=Path, help="unsupervised corpus (default: "
                    "DATA/corpus/en_corpus.txt)")
    ap.add_argument("--reps", type=int, default=3, help="runs per tool and case (default 3)")
    ap.add_argument("--epoch", type=int, default=UNSUPERVISED["epoch"],
                    help="epochs of the skipgram/cbow cases (default 5; 1 for a quicker "
                    "table on a big corpus)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--cases", default=".", help="regex on case names (default: all)")
    ap.add_argument("--tools", nargs="+", default=["fasttext", "embtk", "gensim"])
    ap.add_argument("--fasttext-cli", help="a native fastText binary: adds whole-command "
                    "skipgram/cbow training, CLI predict and --help beside embtk's")
    ap.add_argument("--cli-only", action="store_true",
                    help="with --fasttext-cli: skipgram/cbow as whole commands only, no "
                    "train calls through the Python modules")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--lock", help="a file to flock around each timed command, to take "
                    "turns with other benchmarks on a shared machine")
    opts = ap.parse_args(argv)
    global LOCK
    LOCK = opts.lock
    opts.corpus = opts.corpus or opts.data / "corpus" / "en_corpus.txt"
    needed = [opts.corpus, opts.data / "similarity" / "wordsim353.tsv",
              opts.data / "classify" / "langid_gettext" / "train.txt"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(f"error: benchmark data not found: {', '.join(missing)} (use --data DIR)")
    try:
        import gensim  # noqa: F401
    except ImportError:
        if "gensim" in opts.tools:
            print("gensim is not installed: its column stays empty", file=sys.stderr)
            opts.tools.remove("gensim")
    if not shutil.which("embtk"):
        sys.exit("error: the embtk command is not on PATH (pip install . first)")

    bench = Bench(opts)
    try:
        # Compile or load numba's cache before anything is timed.
        _run([sys.executable, "-c", "import embtk, sys; embtk.train_supervised(sys.argv[1], "
              "epoch=1, verbose=0).predict(['x'])",
              str(opts.data / "classify" / "langid_gettext" / "test.txt")])
        bench.training()
        bench.supervised_whole()
        bench.predict()
        bench.loading()
        bench.startup()
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    print(f"\nembtk vs fastText {_version('fasttext-wheel')}"
          f"{', gensim ' + _version('gensim') if 'gensim' in opts.tools else ''}; "
          f"{opts.reps} runs each, alternating; medians; {os.cpu_count()} CPUs\n")
    print(table(bench.rows))
    print("\n" + thread_scaling(bench.rows))
    if opts.json:
        opts.json.write_text(json.dumps({"options": {k: str(v) for k, v in vars(opts).items()},
                                         "rows": bench.rows}, indent=2) + "\n")
        print(f"\nwrote {opts.json}")
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
