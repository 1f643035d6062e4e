"""What a new user tripped over (issue 25): the Dask example, finished checkpoints, silent
stretches, memory held twice, fastText's options on every command, the Python API's
errors, the order of test-label's report."""

import json
import mmap
import os
import pty
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run

import embtk
from embtk.args import FASTTEXT_OPTIONS, Args
from embtk.counting import count_pieces
from embtk.fileformat import release_pages
from embtk.meter import ClassificationReport, LabelScore
from embtk.trainer import Reading

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
TRAIN, TEST = DATA / "authors.train", DATA / "authors.test"
SMALL = ["-dim", 10, "-epoch", 2, "-lr", 0.5, "-wordNgrams", 2, "-bucket", 5000, "-thread", 1]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clf")
    code, _, err = run("supervised", "-input", TRAIN, "-output", folder / "clf", *SMALL,
                       "-verbose", 0)
    assert code == 0, err
    return folder / "clf.bin"


# ------------------------------------------------------------ 3. finished checkpoints
def test_resuming_a_finished_run_says_so_and_leaves_the_model(tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "m"
    code, _, err = run("supervised", "-input", TRAIN, "-output", out, *SMALL,
                       "-checkpoint", ckpt)
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    assert str(ckpt) in last and "can be deleted" in last
    before = (out.with_suffix(".bin").read_bytes(), os.stat(out.with_suffix(".bin")).st_mtime_ns)

    code, _, err = run("supervised", "-input", TRAIN, "-output", out, *SMALL, "-resume", ckpt)
    assert code == 0, err
    assert err.splitlines() == [f"embtk: checkpoint {ckpt} holds a complete run: nothing to "
                                f"resume, {out}.bin is left as it is"]
    assert (out.with_suffix(".bin").read_bytes(),
            os.stat(out.with_suffix(".bin")).st_mtime_ns) == before


def test_a_finished_checkpoint_gives_the_finished_model(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    model = embtk.train_supervised(TRAIN, dim=10, epoch=2, lr=0.5, wordNgrams=2, bucket=5000,
                                   thread=1, verbose=0, checkpoint=str(ckpt))
    again = embtk.train_supervised(TRAIN, verbose=0, resume=str(ckpt))
    assert np.array_equal(again.get_input_matrix(), model.get_input_matrix())
    assert np.array_equal(again.get_output_matrix(), model.get_output_matrix())
    # the command line writes a missing model from it, without training
    code, _, err = run("supervised", "-input", TRAIN, "-output", tmp_path / "m",
                       "-resume", ckpt, "-verbose", 1)
    assert code == 0 and "nothing to train" in err, err
    written = embtk.load_model(tmp_path / "m.bin")
    assert np.array_equal(written.get_input_matrix(), model.get_input_matrix())


def test_a_finished_checkpoint_still_checks_input_and_options(tmp_path):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "m"
    assert run("supervised", "-input", TRAIN, "-output", out, *SMALL, "-checkpoint", ckpt,
               "-verbose", 0)[0] == 0
    code, _, err = run("supervised", "-input", TRAIN, "-output", out, "-epoch", 3,
                       "-resume", ckpt)
    assert_one_line_error(code, err)
    assert "-epoch 3 differs from checkpoint" in err
    code, _, err = run("supervised", "-input", TEST, "-output", out, "-resume", ckpt)
    assert_one_line_error(code, err)
    assert "written for another input" in err


# ------------------------------------------------------------ 4. silent stretches
def test_read_words_is_updated_while_counting(capsys):
    args = Args.for_model("skipgram", verbose=2)
    reading = Reading(args)
    for n in (0, 400_000, 1_200_000, 1_900_000, 2_300_000):
        reading.update(n)

    class Counted:
        nwords, nlabels = 7, 0

    reading.done(2_300_000, Counted)
    err = capsys.readouterr().err
    assert err.startswith("\rRead 1M words\rRead 2M words\rRead 2M words\n")
    quiet = Reading(Args.for_model("skipgram", verbose=1))
    quiet.update(5_000_000)
    quiet.done(5_000_000, Counted)
    assert capsys.readouterr().err.startswith("Read 5M words\n")


def test_counting_reports_the_tokens_read_before_each_piece():
    heard = []
    pieces = [b"a b c\n", b"d e\n", b"f\n"]
    *_, ntokens = count_pieces([np.frombuffer(p, dtype=np.uint8) for p in pieces],
                               b"__label__", on_tokens=heard.append)
    assert heard == [0, 4, 7] and ntokens == 9  # each line ends with </s>


def test_training_says_what_happens_before_the_first_bar(tmp_path):
    code, _, err = run("supervised", "-input", TRAIN, "-output", tmp_path / "m", *SMALL)
    assert code == 0, err
    lines = err.replace("\r", "\n").splitlines()
    labels = next(i for i, line in enumerate(lines) if line.startswith("Number of labels"))
    assert lines[labels + 1].startswith("Encoding the corpus into a temporary file of ids")


def test_quantize_shows_a_bar_per_sub_quantizer(classifier, tmp_path, capfd):
    model = embtk.load_model(classifier)
    model.quantize(dsub=2, verbose=2)
    err = capfd.readouterr().err
    assert "Quantizing the input matrix (k-means)" in err
    assert "5/5" in err  # dim 10, dsub 2: five sub-quantizers, each a step
    model = embtk.load_model(classifier)
    model.quantize(verbose=0)
    assert "Quantizing" not in capfd.readouterr().err


def _in_a_terminal(code: str, columns: int) -> str:
    """stderr of `python -c code` run in a pseudo-terminal `columns` wide."""
    import fcntl
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    child = subprocess.Popen([sys.executable, "-c", code], stdout=follower, stderr=follower,
                             env=env)
    child.wait(timeout=60)
    os.close(follower)
    out = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    os.close(leader)
    return out.decode("utf-8", "replace")


BAR = """
from embtk.errors import progress_bar
bar = progress_bar(total=4, bar_format="Progress: {percentage:5.1f}% |{bar}| {desc} ETA")
bar.set_description_str("lr: 0.1", refresh=False)
for _ in range(4):
    bar.update(1)
bar.close()
"""


def test_a_terminal_of_zero_columns_still_gets_a_bar():
    final = _in_a_terminal(BAR, 0).split("\r")[-2]
    assert final.startswith("Progress: 100.0% |") and final.endswith("| lr: 0.1 ETA")
    assert final.count("\u2588") >= 10, final  # a bar that has a width
    narrow = _in_a_terminal(BAR, 50).split("\r")[-2]
    assert len(narrow) <= 50  # a terminal that has a width: followed as before


# ------------------------------------------------------------ 5. memory held twice
def _resident_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * mmap.PAGESIZE // 1024


@pytest.mark.skipif(not hasattr(mmap, "MADV_DONTNEED"), reason="no madvise here")
def test_release_pages_gives_back_a_mapped_matrix(tmp_path):
    path = tmp_path / "matrix"
    path.write_bytes(np.ones(16 << 20, dtype=np.float32).tobytes())  # 64 MB
    with open(path, "rb") as f:
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    matrix = np.ndarray((1 << 16, 256), dtype=np.float32, buffer=mapping)
    before = _resident_kb()
    assert matrix.sum() == 16 << 20
    touched = _resident_kb()
    assert touched - before > 50_000
    for start in range(0, matrix.shape[0], 4096):
        release_pages(matrix[start:start + 4096])
    assert touched - _resident_kb() > 50_000
    assert matrix[12345, 7] == 1.0  # read from the file again
    release_pages(np.ones(10))  # not a mapping: nothing happens


def test_quantize_decodes_into_the_matrix_it_quantized(classifier):
    model = embtk.load_model(classifier)
    original = model.input_matrix
    expected = embtk.load_model(classifier)
    expected.quantize(verbose=0)
    model.quantize(verbose=0)
    assert model.input_matrix is original  # no second matrix of that size
    assert np.array_equal(model.input_matrix, expected.quant_input.decode())
    (labels, probs), (labels2, probs2) = (m.predict("the whale", k=2) for m in (model, expected))
    assert labels == labels2 and np.array_equal(probs, probs2)


# ------------------------------------------------------------ 6. options across commands
def test_quantize_takes_fasttexts_training_options_with_a_warning(classifier, tmp_path):
    prefix = tmp_path / "q"
    (tmp_path / "q.bin").write_bytes(classifier.read_bytes())
    code, _, err = run("quantize", "-output", prefix, "-dim", 50, "-wordNgrams", 3,
                       "-saveOutput", "-verbose", 0)
    assert code == 0, err
    assert err.splitlines() == ["embtk: warning: -dim has no effect on quantize",
                                "embtk: warning: -wordNgrams has no effect on quantize",
                                "embtk: warning: -saveOutput has no effect on quantize"]
    assert (tmp_path / "q.ftz").exists()


def test_every_fasttext_option_is_taken_by_every_command_that_has_options(tmp_path):
    for command in ("supervised", "skipgram", "cbow", "quantize"):
        for name in FASTTEXT_OPTIONS:
            f = Args.__dataclass_fields__[name]
            flag = "-" + f.metadata.get("flag_name", name)
            value = [] if f.type == "bool" else ["ns" if name == "loss" else "1"]
            code, _, err = run(command, flag, *value, "--help")
            assert code == 0 and err == "", (command, flag, err)


def test_misspelt_options_are_still_refused_with_a_suggestion(tmp_path):
    code, _, err = run("quantize", "-output", tmp_path / "q", "-qnrom")
    assert_one_line_error(code, err, 2)
    assert "No such option '-qnrom'" in err and "-qnorm" in err
    code, _, err = run("skipgram", "-input", TRAIN, "-output", tmp_path / "s", "-dimm", 5)
    assert_one_line_error(code, err, 2)
    assert "-dim" in err
    code, _, err = run("quantize", "-output", tmp_path / "q", "-dim", "abc")
    assert_one_line_error(code, err, 2)  # the value of an ignored option is still checked


def test_skipgram_warns_of_quantization_options_and_supervised_takes_dsub(tmp_path):
    code, _, err = run("skipgram", "-input", DATA / "austen_small.txt", "-output",
                       tmp_path / "s", "-dim", 5, "-epoch", 1, "-bucket", 1000, "-qnorm",
                       "-dsub", 4, "-verbose", 0)
    assert code == 0, err
    assert err.splitlines() == ["embtk: warning: -qnorm has no effect on skipgram",
                                "embtk: warning: -dsub has no effect on skipgram"]
    code, out, _ = run("supervised", "--help")
    assert b"-dsub" in out and b"-qnorm" not in out  # hidden where it has no effect


# ------------------------------------------------------------ 7. small ones
def test_python_type_errors_name_the_argument_as_python_spells_it():
    with pytest.raises(TypeError, match=r"^epoch must be an integer, got '5'$"):
        embtk.train_supervised(str(TRAIN), epoch="5")
    with pytest.raises(TypeError, match=r"^word_ngrams must be an integer"):
        embtk.train_supervised(str(TRAIN), word_ngrams=2.5)
    with pytest.raises(TypeError, match=r"^lr must be a number, got True$"):
        embtk.train_unsupervised(str(TRAIN), lr=True)
    with pytest.raises(TypeError, match=r"^xmax must be a number"):
        embtk.train_glove(str(TRAIN), xmax="10")


def test_python_suggests_the_option_it_did_not_know():
    with pytest.raises(TypeError, match=r"'wordNgram' \(did you mean 'wordNgrams'"):
        embtk.train_supervised(str(TRAIN), wordNgram=2)
    with pytest.raises(embtk.EmbtkError, match=r"'dimm' \(did you mean 'dim'\?\)"):
        embtk.train_glove(str(TRAIN), dimm=5)


def test_report_orders_equal_supports_as_the_confusion_matrix():
    def score(label, support):
        return LabelScore(label, support, support, support, 1.0, 1.0, 1.0)

    labels = [score("__label__zeta", 5), score("__label__alpha", 5), score("__label__mid", 9)]
    report = ClassificationReport("-", 1, 0.0, 19, labels, score("micro avg", 19),
                                  score("macro avg", 19), np.zeros((3, 4), dtype=np.int64))
    order = [s.label for s in report.sorted_labels("support")]
    assert order == ["__label__mid", "__label__zeta", "__label__alpha"]
    columns = report.confusion_text().splitlines()[1].split("\t")[1:-1]
    assert [c for c in columns if c in order[1:]] == order[1:]


def test_quickstart_shows_the_query_words_and_where_it_writes():
    script = (ROOT / "examples" / "quickstart.sh").read_text()
    assert 'nearest neighbours of' in script and "sed 's/^Query word? //'" in script
    assert 'writing the models to $out' in script
    commands = script.replace("\\\n", " ").splitlines()
    training = [c for c in commands if c.startswith(("embtk skipgram", "embtk supervised"))]
    assert len(training) == 2
    assert all("-bucket 200000" in c for c in training)  # every model of the example is small


# ------------------------------------------------------------ 1. the Dask example
@pytest.mark.slow
def test_the_dask_example_runs():
    pytest.importorskip("distributed")
    pytest.importorskip("pandas")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "dask_predict.py")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    accuracy = float(next(line for line in out if line.startswith("bag: 1600 lines")).split()[-1])
    assert accuracy > 0.8
    series = [line for line in out if line.startswith("series: __label__")]
    assert len(series) == 3 and "let my people go" in series[2]
    assert "sentence vectors: (1600, 20)" in out
    assert out[-1].startswith("workers: 2")


def test_the_readme_shows_the_main_guard_with_a_local_cluster():
    readme = (ROOT / "README.md").read_text()
    dask_part = readme.split("## Beyond one machine", 1)[1].split("\n## ", 1)[0]
    assert 'if __name__ == "__main__":' in dask_part
    assert "examples/dask_predict.py" in dask_part
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dask = ["dask[distributed,dataframe]' in pyproject



@pytest.mark.slow
def test_the_memory_benchmark_runs_on_a_tiny_copy_of_the_data(tmp_path):
    pytest.importorskip("fasttext")
    data = tmp_path / "data"
    (data / "classify" / "langid_gettext").mkdir(parents=True)
    (data / "corpus").mkdir()
    (data / "classify" / "langid_gettext" / "train.txt").write_bytes(TRAIN.read_bytes())
    (data / "corpus" / "en_small.txt").write_bytes((DATA / "austen_small.txt").read_bytes())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    argv = ["--data", data, "--bucket", 5000, "--dim", 4, "--thread", 1, "--work",
            tmp_path / "work", "--json", tmp_path / "out.json"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "memory.py"),
                           *map(str, argv)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out.json").read_text())
    for part, names in (("quantize", ("fastText", "embtk")), ("continued", ("fresh", "continued"))):
        peaks = [results[part][name]["peak_mb"] for name in names]
        assert all(p > 10 for p in peaks)
        assert results[part]["ratio"] == pytest.approx(peaks[1] / peaks[0], abs=0.01)
