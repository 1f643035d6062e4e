"""embtk on a Dask cluster: collections, predict-files, faults.

One real LocalCluster (2 worker processes, one thread each) serves the whole file. Each
test that uses it starts with both workers up: after the test that kills a worker, Dask's
nanny starts a new one, and the next test waits for it, in whatever order they run.
"""

import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import embtk
from embtk.errors import EmbtkError

from conftest import assert_one_line_error, run

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
dask_bag = pytest.importorskip("dask.bag")
import embtk.dask as edask  # noqa: E402 (after the skip: it needs no dask to import, its tests do)

DATA = Path(__file__).parent / "data"
# bytes that test the edges of predict: blank lines, invalid UTF-8, NUL, an end-of-sentence
# token inside a line (fastText answers it as two lines), no newline at the very end
ODD_LINES = (b"__label__austen the whale and the sea\n\n   \ncaf\xc3\xa9 \xff\xfe broken\n"
             b"one </s> two\ntab\tsep\x00nul\n" + b"long " * 300 + b"\nno newline at the end")


@pytest.fixture(scope="module")
def cluster_client(tmp_path_factory):
    # the scheduler's and the workers' scratch space here, not left in TMPDIR
    folder = str(tmp_path_factory.mktemp("dask-scratch"))
    with dask.config.set({"temporary-directory": folder}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None, silence_logs=40,
                                     local_directory=folder) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def client(cluster_client):
    cluster_client.wait_for_workers(2, timeout=120)
    return cluster_client


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "authors.bin"
    embtk.train_supervised(str(DATA / "authors.train"), dim=10, epoch=3, lr=0.5, wordNgrams=2,
                           bucket=20000, thread=1, verbose=0).save_model(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    shutil.copy(DATA / "authors.test", folder / "authors.txt")
    (folder / "odd.txt").write_bytes(ODD_LINES)
    (folder / "empty.txt").write_bytes(b"")
    return folder


def expected_output(model_path, path, k=1, prob=False):
    code, out, err = run("predict-prob" if prob else "predict", model_path, path, k)
    assert code == 0, err
    return out


@pytest.mark.slow  # the cluster
@pytest.mark.parametrize("pattern, blocksize", [("[eo]*.txt", 7), ("*.txt", 4096),
                                                 ("*.txt", 1 << 22)])
def test_outputs_are_what_predict_prints(client, model_path, inputs, tmp_path, pattern, blocksize):
    summary = edask.predict_files(model_path, [inputs / pattern], tmp_path, k=2, prob=True,
                                  scheduler=client, blocksize=blocksize)
    names = sorted(p.name for p in inputs.glob(pattern))
    assert sorted(os.listdir(tmp_path)) == [name + ".pred" for name in names]
    for name in names:
        got = (tmp_path / (name + ".pred")).read_bytes()
        assert got == expected_output(model_path, inputs / name, k=2, prob=True), name
    lines = ODD_LINES.count(b"\n") + 2 + 800 * ("authors.txt" in names)  # </s> ends a line too
    assert (summary.files, summary.complete, summary.lines, summary.workers) == \
        (len(names), 0, lines, 2)


@pytest.mark.slow  # the cluster
def test_the_command_writes_the_same_files(client, model_path, inputs, tmp_path):
    address = client.scheduler.address
    code, out, err = run("predict-files", model_path, inputs / "authors.txt", inputs / "odd.txt",
                         "-output", tmp_path / "out", "-scheduler", address, "-verbose", 1)
    assert code == 0, err
    assert out == b""
    assert err.startswith("embtk: 2 files: ") and err.endswith(" on 2 workers\n"), err
    for name in ("authors.txt", "odd.txt"):
        got = (tmp_path / "out" / (name + ".pred")).read_bytes()
        assert got == expected_output(model_path, inputs / name), name
    # run again: complete outputs are skipped, no cluster is needed
    code, out, err = run("predict-files", model_path, inputs / "authors.txt", inputs / "odd.txt",
                         "-output", tmp_path / "out", "-scheduler", "tcp://127.0.0.1:1")
    assert (code, err) == (0, "embtk: 2 files (2 complete before): nothing left to predict\n")


@pytest.mark.slow  # the cluster
def test_a_killed_job_resumes(client, model_path, inputs, tmp_path):
    (tmp_path / "odd.txt.pred").write_bytes(b"complete before\n")  # a finished output is kept

    class Killed(Exception):
        pass

    def stop_after_five(done, total):
        if done == 5:
            raise Killed

    with pytest.raises(Killed):
        edask.predict_files(model_path, [inputs / "authors.txt", inputs / "odd.txt"], tmp_path,
                            scheduler=client, blocksize=4096, on_part=stop_after_five)
    def busy(dask_worker):  # a cancelled task still runs to its end; a queued one may start
        done = ("memory", "released", "forgotten", "error")
        return sum(ts.state not in done for ts in dask_worker.state.tasks.values())

    def written_parts():
        return sorted(p for p in os.listdir(tmp_path) if p.startswith(".authors.txt.pred."))

    parts, seen = None, written_parts()
    while parts != seen or any(client.run(busy).values()):  # until nothing moves
        time.sleep(0.2)
        parts, seen = seen, written_parts()
    assert len(parts) >= 5 and not (tmp_path / "authors.txt.pred").exists()
    written = sum((tmp_path / p).read_bytes().count(b"\n") for p in parts)
    # what a worker killed while writing leaves: a temporary file beside a part
    (tmp_path / ("." + parts[0] + ".tmp-0badf00d")).write_bytes(b"half a li")

    summary = edask.predict_files(model_path, [inputs / "authors.txt", inputs / "odd.txt"],
                                  tmp_path, scheduler=client, blocksize=4096)
    expected = expected_output(model_path, inputs / "authors.txt")
    assert (tmp_path / "authors.txt.pred").read_bytes() == expected
    assert (tmp_path / "odd.txt.pred").read_bytes() == b"complete before\n"
    assert summary.complete == 1
    assert summary.lines == 800 - written  # the parts written before are not predicted again
    assert sorted(os.listdir(tmp_path)) == ["authors.txt.pred", "odd.txt.pred"]


@pytest.mark.slow  # the cluster
def test_a_model_is_loaded_once_per_worker(client, model_path, tmp_path):
    private = tmp_path / "private.bin"  # a file no worker has seen: its own identity
    shutil.copy(model_path, private)
    lines = (DATA / "authors.test").read_text().splitlines()
    bag = dask_bag.from_sequence(lines, npartitions=16)
    before = client.run(edask.cache_info)
    results = client.compute(edask.predict(bag, str(private), k=2)).result()
    after = client.run(edask.cache_info)
    loads = [after[w]["loads"] - before[w]["loads"] for w in after]
    assert sorted(loads) in ([0, 1], [1, 1])  # 16 partitions, at most one load per worker
    assert all(str(private) in after[w]["models"] for w, n in zip(after, loads) if n)
    assert len(results) == len(lines)


@pytest.mark.slow  # the cluster
def test_predict_keeps_the_order_of_a_bag(client, model_path):
    model = embtk.load_model(model_path)
    lines = (DATA / "authors.test").read_text().splitlines()
    results = client.compute(edask.predict(dask_bag.from_sequence(lines, npartitions=7), model,
                                           k=3, threshold=0.1)).result()
    labels, probs = model.predict(lines, k=3, threshold=0.1)
    assert [r[0] for r in results] == [tuple(x) for x in labels]
    assert all(np.array_equal(r[1], p) and r[1].dtype == np.float64 for r, p in zip(results, probs))
    one = model.predict(lines[5], k=3, threshold=0.1)  # the answer for one line
    assert results[5][0] == one[0] and np.array_equal(results[5][1], one[1])


@pytest.mark.slow  # the cluster
def test_predict_on_a_series_gives_a_series(client, model_path):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    model = embtk.load_model(model_path)
    lines = (DATA / "authors.test").read_text().splitlines()[:100]
    series = dd.from_pandas(pd.Series(lines, name="text"), npartitions=4)
    result = client.compute(edask.predict(series, model)).result()
    assert isinstance(result, pd.Series) and list(result.index) == list(range(100))
    assert [r[0] for r in result] == [tuple(x) for x in model.predict(lines)[0]]


@pytest.mark.slow  # the cluster
def test_a_model_in_memory_travels_once(client, model_path):
    model = embtk.train_supervised(str(DATA / "authors.train"), dim=5, epoch=1, thread=1,
                                   verbose=0)
    lines = (DATA / "authors.test").read_text().splitlines()[:50]
    results = client.compute(edask.predict(dask_bag.from_sequence(lines, npartitions=5),
                                           model)).result()
    assert [r[0] for r in results] == [tuple(x) for x in model.predict(lines)[0]]


@pytest.mark.slow  # the cluster
def test_sentence_and_word_vectors(client, model_path):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    model = embtk.load_model(model_path)
    lines = (DATA / "authors.test").read_text().splitlines()[:60]
    vectors = client.compute(edask.sentence_vectors(dask_bag.from_sequence(lines, npartitions=3),
                                                    model_path)).result()
    assert vectors.shape == (60, 10)
    assert np.array_equal(vectors, np.stack([model.get_sentence_vector(t) for t in lines]))
    words = ["whale", "the", "unknownword", "Elizabeth"]
    series = dd.from_pandas(pd.Series(words), npartitions=2)
    vectors = client.compute(edask.word_vectors(series, model)).result()
    assert np.array_equal(vectors, np.stack([model.get_word_vector(w) for w in words]))


def test_collections_only(model_path):
    with pytest.raises(TypeError, match="dask.bag.Bag or a dask.dataframe.Series, got list"):
        edask.predict(["a line"], model_path)


@pytest.mark.slow  # the cluster
def test_a_model_file_gone_from_the_workers_is_one_error(client, model_path, inputs, tmp_path):
    private = tmp_path / "gone.bin"
    shutil.copy(model_path, private)
    model = embtk.load_model(private)
    os.unlink(private)  # the workers load by path: they cannot
    with pytest.raises(EmbtkError, match=r"^on .*: cannot load the pickled model .*gone.bin: "
                                         r"the file is missing"):
        edask.predict_files(model, [inputs / "odd.txt"], tmp_path / "out", scheduler=client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line(model_path, inputs, tmp_path, monkeypatch):
    timeouts = []

    def client(*args, **kwargs):  # distributed's Client, noting the timeout it is given
        timeouts.append(kwargs.get("timeout"))
        return real_client(*args, **kwargs)
    real_client = distributed.Client
    monkeypatch.setattr(distributed, "Client", client)
    code, out, err = run("predict-files", model_path, inputs / "odd.txt", "-output", tmp_path,
                         "-scheduler", f"tcp://127.0.0.1:{free_port()}", "-timeout", 1)
    assert_one_line_error(code, err)
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in err and "within 1 s" in err
    assert timeouts == [1.0]  # -timeout is the client's: it gives up then, not at its default


@pytest.mark.parametrize("args, message", [
    (["-output", "{file}"], "is a file, not a folder"),
    (["-output", "{file}/sub"], "cannot create the output folder"),
    (["-output", "{dir}", "-k", "0"], "k must be a positive integer"),
])
def test_bad_arguments_are_one_line(model_path, inputs, tmp_path, args, message):
    args = [a.format(file=inputs / "odd.txt", dir=tmp_path) for a in args]
    code, out, err = run("predict-files", model_path, inputs / "odd.txt", *args)
    assert_one_line_error(code, err)
    assert message in err


def test_missing_inputs_are_one_line(model_path, tmp_path):
    code, out, err = run("predict-files", model_path, tmp_path / "none*.txt", "-output", tmp_path)
    assert_one_line_error(code, err)
    assert "no file matches" in err


def test_inputs_are_never_overwritten(model_path, inputs, tmp_path):
    shutil.copy(inputs / "odd.txt", tmp_path / "odd.txt.pred")  # an input named like an output
    code, out, err = run("predict-files", model_path, inputs / "odd.txt", tmp_path / "odd.txt.pred",
                         "-output", tmp_path)
    assert_one_line_error(code, err)
    assert "would overwrite the input" in err
    assert (tmp_path / "odd.txt.pred").read_bytes() == ODD_LINES


def test_without_dask_the_error_says_what_to_install(model_path, inputs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    code, out, err = run("predict-files", model_path, inputs / "odd.txt", "-output", tmp_path)
    assert_one_line_error(code, err)
    assert err.strip() == "embtk: error: predict-files needs dask: pip install 'embtk[dask]'"


def _train_a_little():
    embtk.train_supervised(str(DATA / "authors.train"), dim=2, epoch=1, thread=1, verbose=0)


@pytest.mark.slow  # the cluster
def test_autotune_runs_its_trials_on_the_workers(client):
    # the training kernels loaded (or compiled) on each worker first, not in the budget
    client.run(_train_a_little)
    # bucket and dim fixed: no trial allocates gigabytes (which no deadline interrupts)
    model = embtk.train_supervised(str(DATA / "authors.train"), verbose=0, thread=2, dim=20,
                                   bucket=100000, autotuneValidationFile=str(DATA / "authors.test"),
                                   autotuneDuration=4, autotuneScheduler=client.scheduler.address)
    searches = client.run(lambda: list(__import__("embtk.autotune").autotune._COUNTED))
    assert any(searches.values())  # a worker read the corpus for this search
    assert (model.thread, model.args.autotuneScheduler, model.args.autotuneValidationFile) == \
        (2, "", "")
    assert model.test(str(DATA / "authors.test"))[1] > 0.6


@pytest.mark.slow  # the cluster
def test_a_killed_worker_is_survived(client, model_path, inputs, tmp_path):
    """The killed worker's tasks run again elsewhere; every output is complete."""
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(done, total):
        if killed:
            return
        worker, tasks = max(client.processing().items(), key=lambda item: len(item[1]))
        killed.append((pids[worker], len(tasks)))
        os.kill(pids[worker], signal.SIGKILL)

    summary = edask.predict_files(model_path, [inputs / "authors.txt", inputs / "odd.txt"],
                                  tmp_path, scheduler=client, blocksize=2048,
                                  on_part=kill_a_busy_worker)
    (pid, tasks), = killed
    assert tasks > 0  # it was killed in the middle of its work
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    for name in ("authors.txt", "odd.txt"):
        got = (tmp_path / (name + ".pred")).read_bytes()
        assert got == expected_output(model_path, inputs / name), name
    assert summary.lines == 800 + ODD_LINES.count(b"\n") + 2
    assert sorted(os.listdir(tmp_path)) == ["authors.txt.pred", "odd.txt.pred"]
    client.wait_for_workers(2, timeout=30)  # the nanny has started a new one
