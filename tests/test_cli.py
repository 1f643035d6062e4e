"""The `embtk` command line: option spellings and defaults, output formats, streaming,
and the error contract (one line on stderr, exit status, never a traceback)."""

import math
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import embtk
from embtk.args import Args
from embtk.cli import cli

from conftest import assert_one_line_error, run

MODES = ("supervised", "skipgram", "cbow")
TRAIN_OPTIONS = ("input", "output", "lr", "lrUpdateRate", "dim", "ws", "epoch", "minCount",
                 "minCountLabel", "neg", "wordNgrams", "loss", "bucket", "minn", "maxn",
                 "thread", "t", "label", "verbose", "pretrainedVectors", "saveOutput", "seed")


def run_process(*args, input=b"", env=None, timeout=120):
    """Run `python -m embtk ARGS` as a real process."""
    full_env = {k: v for k, v in os.environ.items() if k != "EMBTK_DEBUG"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "embtk", *map(str, args)], input=input,
                          capture_output=True, env=full_env, timeout=timeout)


# --------------------------------------------------------------------------- help
def test_help_starts_fast_without_numba():
    # Importing the CLI must not pull in numba or numpy (slow); only the commands do.
    probe = ("import sys, embtk.cli; heavy = {'numba', 'numpy'} & set(sys.modules);"
             "print(sorted(heavy))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # the time itself is measured by benchmarks/speed.py
    done = subprocess.run([sys.executable, "-m", "embtk", "--help"], capture_output=True)
    assert done.returncode == 0 and b"supervised" in done.stdout


@pytest.mark.slow
def test_commands_start_numba_without_scipy_linalg(classifier, corpus):
    # SciPy's linear algebra costs ~0.2 s of start-up; the commands keep numba from
    # importing it, and numba still compiles np.dot (through BLAS) afterwards.
    pytest.importorskip("scipy")
    probe = ("import sys, numpy as np, numba; from embtk.cli import main;"
             f"code = main(['predict', {str(classifier)!r}, {str(corpus)!r}]);"
             "hidden = 'scipy.linalg' not in sys.modules;"
             "dot = numba.njit(lambda a: np.dot(a, a))(np.ones(3));"
             "print(code, hidden, dot, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.split() == ["0", "True", "3.0"]


def test_help_lists_commands_in_fasttext_order():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    names = ["supervised", "skipgram", "cbow", "test", "test-label", "predict", "predict-prob",
             "print-word-vectors", "print-sentence-vectors", "print-ngrams", "nn",
             "analogies", "dump"]
    positions = [re.search(rf"^  {re.escape(n)} ", result.output, re.M) for n in names]
    assert all(positions), result.output
    assert [p.start() for p in positions] == sorted(p.start() for p in positions)


@pytest.mark.parametrize("mode", MODES)
def test_help_lists_every_option_with_its_mode_default(mode):
    result = CliRunner().invoke(cli, [mode, "--help"])
    assert result.exit_code == 0
    flat = " ".join(result.output.split())
    command = cli.commands[mode]
    ctx = command.make_context(mode, ["-input", "x", "-output", "y"])
    records = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record and param.name != "help":
            records[param.name] = " ".join(record[1].split())
    defaults = Args.for_model(mode)
    for name in TRAIN_OPTIONS:
        assert f"-{name}, --{name}" in flat, name
        key = "input_" if name == "input" else name
        assert key in records, name
        if name in ("input", "output"):
            assert "[required]" in records[key]
        elif name == "saveOutput":
            assert "default" not in records[key]  # a flag: off unless given
        else:
            value = getattr(defaults, name)
            shown = '""' if value == "" else str(value)
            assert f"[default: {shown}]" in records[key], (name, records[key])
    assert f"[default: {max(1, os.cpu_count() or 1)}]" in records["thread"]
    assert "-loss, --loss [hs|ns|softmax|ova|one-vs-all]" in flat


# ------------------------------------------------------------------ train options
class _FakeModel:
    def __init__(self, args):
        self.args, self.saved = args, []

    def save_model(self, path):
        self.saved.append(path)

    def is_quantized(self):
        return False

    save_vectors = save_output = save_model


def _train_capturing(monkeypatch):
    seen = []

    def fake_train(args):
        seen.append(_FakeModel(args))
        return seen[-1]

    monkeypatch.setattr("embtk.api.train_with_args", fake_train)
    return seen


@pytest.mark.parametrize("dashes", ["-", "--"])
def test_only_given_options_override_mode_defaults(monkeypatch, corpus, tmp_path, dashes):
    seen = _train_capturing(monkeypatch)
    out = tmp_path / "m"
    code, _, err = run("skipgram", f"{dashes}input", corpus, f"{dashes}output", out,
                       f"{dashes}dim", 7, f"{dashes}lrUpdateRate", 50, f"{dashes}t", "0.001",
                       f"{dashes}loss", "one-vs-all", f"{dashes}saveOutput")
    assert code == 0, err
    (model,) = seen
    a = model.args
    assert (a.model, a.input, a.output) == ("skipgram", str(corpus), str(out))
    assert (a.dim, a.lrUpdateRate, a.t, a.loss) == (7, 50, 0.001, "ova")
    # not given: skipgram's defaults, not supervised's
    assert (a.lr, a.minCount, a.minn, a.maxn, a.epoch) == (0.05, 5, 3, 6, 5)
    assert a.thread == max(1, os.cpu_count() or 1)
    assert model.saved == [f"{out}.bin", f"{out}.vec", f"{out}.output"]


def test_supervised_defaults_and_no_output_file_without_save_output(monkeypatch, corpus,
                                                                      tmp_path):
    seen = _train_capturing(monkeypatch)
    code, _, err = run("supervised", "-input", corpus, "-output", tmp_path / "m",
                       "-thread", 1, "-seed", 9)
    assert code == 0, err
    a = seen[0].args
    assert (a.lr, a.minCount, a.loss, a.minn, a.maxn, a.thread, a.seed) == (
        0.1, 1, "softmax", 0, 0, 1, 9)
    assert not a.saveOutput
    assert seen[0].saved == [f"{tmp_path / 'm'}.bin", f"{tmp_path / 'm'}.vec"]


def test_training_writes_bin_vec_and_output(corpus, tmp_path):
    prefix = tmp_path / "model"
    code, out, err = run("supervised", "--input", corpus, "--output", prefix, "--dim", 10,
                         "--epoch", 5, "--thread", 1, "--verbose", 0, "--saveOutput")
    assert code == 0, err
    for ext in (".bin", ".vec", ".output"):
        assert (tmp_path / f"model{ext}").stat().st_size > 0
    assert (tmp_path / "model.vec").read_text().split("\n")[0].split()[1] == "10"
    assert embtk.load_model(prefix.with_suffix(".bin")).get_dimension() == 10


# --------------------------------------------------------------------- bad input
def test_missing_input_file_is_one_line_and_creates_nothing(tmp_path):
    code, out, err = run("supervised", "-input", tmp_path / "nope.txt", "-output",
                         tmp_path / "m")
    assert_one_line_error(code, err)
    assert "nope.txt" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad, expected", [
    (["-dim", "-5"], "-dim"),
    (["-minn", "5", "-maxn", "3"], "-minn"),
    (["-epoch", "0"], "-epoch"),
    (["-lr", "-1"], "-lr"),
])
def test_bad_values_are_one_line_errors(corpus, tmp_path, bad, expected):
    code, out, err = run("skipgram", "-input", corpus, "-output", tmp_path / "m", *bad)
    assert_one_line_error(code, err)
    assert expected in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [["-loss", "foo"], ["-dim", "abc"], ["-nosuch", "3"]])
def test_bad_option_or_type_is_a_usage_error(corpus, tmp_path, bad):
    code, out, err = run("supervised", "-input", corpus, "-output", tmp_path / "m", *bad)
    assert_one_line_error(code, err, expected_status=2)
    assert bad[0] in err and "embtk supervised --help" in err, err
    assert list(tmp_path.iterdir()) == []


def test_required_options(corpus, tmp_path):
    code, out, err = run("supervised", "-input", corpus)
    assert code == 2 and "-output" in err and "Traceback" not in err


@pytest.mark.parametrize("output, message", [
    ("no/m", "no directory"),         # the folder does not exist
    ("m", "m.bin: it is a directory"),  # the model file cannot be replaced
])
def test_unwritable_output_fails_before_training(monkeypatch, corpus, tmp_path, output,
                                                 message):
    (tmp_path / "m.bin").mkdir()
    seen = _train_capturing(monkeypatch)  # a training run would be recorded here
    code, out, err = run("supervised", "-input", corpus, "-output", tmp_path / output)
    assert seen == [], "training started: the output should have been refused up front"
    assert_one_line_error(code, err)
    assert message in err
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"]


def test_missing_model_is_one_line_error(tmp_path):
    for command in (["predict", tmp_path / "x.bin", "-"], ["dump", tmp_path / "x.bin", "args"],
                    ["nn", tmp_path / "x.bin"]):
        code, out, err = run(*command)
        assert_one_line_error(code, err)
        assert out == b""


def test_bad_k(classifier, corpus):
    code, out, err = run("predict", classifier, corpus, 0)
    assert_one_line_error(code, err)
    code, out, err = run("test", classifier, corpus, -2)
    assert_one_line_error(code, err)


# ------------------------------------------------------------------ test / predict
def test_test_output_format(classifier, corpus):
    code, out, err = run("test", classifier, corpus)
    assert code == 0, err
    model = embtk.load_model(classifier)
    n, p, r = model.test(str(corpus))
    # fastText prints these with std::setprecision(3): 3 significant digits
    assert out.decode() == f"N\t{n}\nP@1\t{p:.3g}\nR@1\t{r:.3g}\n"
    assert n == 200

    code, out, err = run("test", classifier, "-", 2, 0.0, input=corpus.read_bytes())
    assert code == 0, err
    n, p, r = model.test(str(corpus), 2)
    assert out.decode() == f"N\t{n}\nP@2\t{p:.3g}\nR@2\t{r:.3g}\n"


def test_test_label_output_format(classifier, corpus):
    code, out, err = run("test-label", classifier, "-", input=corpus.read_bytes())
    assert code == 0, err
    lines = out.decode().splitlines()
    model = embtk.load_model(classifier)
    assert len(lines) == len(model.labels) + 3
    number = r"(\d+\.\d{6}|--------)"
    pattern = re.compile(rf"^F1-Score : {number}  Precision : {number}  Recall : {number}   (\S+)$")
    scores = model.test_label(str(corpus))
    for line in lines[:-3]:
        m = pattern.match(line)
        assert m, line
        expected = scores[m.group(4)]
        for got, key in zip(m.groups()[:3], ("f1score", "precision", "recall")):
            if math.isfinite(expected[key]):
                assert got == f"{expected[key]:.6f}"
            else:
                assert got == "--------"
    n, p, r = model.test(str(corpus))
    # after test-label, fastText's stream is in fixed notation: 3 decimals
    assert "\n".join(lines[-3:]) == f"N\t{n}\nP@1\t{p:.3f}\nR@1\t{r:.3f}"


def test_predict_and_predict_prob(classifier, tmp_path):
    data = tmp_path / "in.txt"
    data.write_bytes(b"apple banana cherry\ncar bus train\n\nred blue")
    code, out, err = run("predict", classifier, data)
    assert code == 0, err
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5  # one answer per input line
    assert lines[:2] == [b"__label__fruit", b"__label__vehicle"]
    assert lines[2].startswith(b"__label__")  # as in fastText: predicted from EOS alone
    assert lines[3] == b"__label__colour"

    code, out, err = run("predict-prob", classifier, data, 2)
    assert code == 0, err
    first = out.split(b"\n")[0].split(b" ")
    assert first[0] == b"__label__fruit" and len(first) == 4
    p1, p2 = float(first[1]), float(first[3])
    assert 1.0001 >= p1 >= p2 >= 0
    assert first[1].decode() == "%g" % p1  # C++ default stream format


def test_k_minus_one_gives_every_label(classifier):
    code, out, err = run("predict-prob", classifier, "-", -1, input=b"apple car\nred\n")
    assert code == 0, err
    for line in out.decode().splitlines():
        fields = line.split()
        labels, probs = fields[::2], [float(x) for x in fields[1::2]]
        assert sorted(labels) == ["__label__colour", "__label__fruit", "__label__vehicle"]
        assert probs == sorted(probs, reverse=True)
        assert sum(probs) == pytest.approx(1.0, abs=1e-3)
    code, out, err = run("predict", classifier, "-", -1, 0.99, input=b"apple car\n")
    assert code == 0 and len(out.split()) <= 1  # threshold applies with K=-1 too


@pytest.mark.slow
def test_predict_streams_answers_from_a_live_pipe(classifier):
    proc = subprocess.Popen([sys.executable, "-m", "embtk", "predict", str(classifier), "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        answers = []
        for line in (b"apple banana cherry\n", b"car bus train\n"):
            proc.stdin.write(line)
            proc.stdin.flush()  # stdin stays open: the answer must come anyway
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, "no answer while stdin is still open"
            answers.append(proc.stdout.readline())
        assert answers == [b"__label__fruit\n", b"__label__vehicle\n"]
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------ vectors
def _check_vector_text(text: str, expected: np.ndarray):
    assert text.endswith(" ")  # fastText writes a space after every value
    values = text.split(" ")[:-1]
    assert len(values) == len(expected)
    for shown, value in zip(values, expected):
        assert shown == "%.5g" % value


def test_print_word_vectors(vectors):
    code, out, err = run("print-word-vectors", vectors, input=b"apple car\n\n  zzzq\tred")
    assert code == 0, err
    model = embtk.load_model(vectors)
    lines = out.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 5
    for line, word in zip(lines, ["apple", "car", "zzzq", "red"]):
        head, _, rest = line.partition(" ")
        assert head == word
        _check_vector_text(rest, model.get_word_vector(word))


def test_print_sentence_vectors(vectors, classifier):
    for path in (vectors, classifier):
        code, out, err = run("print-sentence-vectors", path, input=b"apple car\n\nred blue\n")
        assert code == 0, err
        model = embtk.load_model(path)
        lines = out.decode().split("\n")
        assert len(lines) == 4 and lines[-1] == ""
        _check_vector_text(lines[0], model.get_sentence_vector("apple car"))
        _check_vector_text(lines[2], model.get_sentence_vector("red blue"))


def test_print_ngrams(vectors):
    code, out, err = run("print-ngrams", vectors, "apple")
    assert code == 0, err
    model = embtk.load_model(vectors)
    subwords, ids = model.get_subwords("apple")
    lines = out.decode().splitlines()
    assert [line.split(" ")[0] for line in lines] == list(subwords)
    assert "<ap" in subwords
    for line, row in zip(lines, ids):
        _check_vector_text(line.partition(" ")[2], model.get_input_vector(int(row)))


def test_nn_reads_queries_until_eof(vectors):
    code, out, err = run("nn", vectors, 3, input=b"apple\ncar red\n")
    assert code == 0, err
    text = out.decode()
    chunks = text.split("Query word? ")
    assert chunks[0] == "" and chunks[-1] == ""  # a prompt before each query and at the end
    answers = chunks[1:-1]
    assert len(answers) == 3
    model = embtk.load_model(vectors)
    expected = model.get_nearest_neighbors("apple", k=3)
    assert answers[0] == "".join(f"{w} {s:g}\n" for s, w in expected)


def test_analogies(vectors):
    code, out, err = run("analogies", vectors, 2, input=b"apple car\nred\nbanana")
    assert code == 0, err
    chunks = out.decode().split("Query triplet (A - B + C)? ")
    assert len(chunks) == 3 and chunks[0] == "" and chunks[2] == ""  # incomplete triplet
    answer = chunks[1].splitlines()
    assert len(answer) == 2
    for line in answer:
        word, score = line.split(" ")
        assert word not in ("apple", "car", "red") and -1.01 <= float(score) <= 1.01
    code, out, err = run("analogies", vectors, 0)
    assert_one_line_error(code, err)


def test_dump(classifier, vectors):
    code, out, err = run("dump", vectors, "args")
    assert code == 0, err
    lines = out.decode().splitlines()
    assert [line.split(" ")[0] for line in lines] == [
        "dim", "ws", "epoch", "minCount", "neg", "wordNgrams", "loss", "model", "bucket",
        "minn", "maxn", "lrUpdateRate", "t"]
    assert "dim 5" in lines and "model sg" in lines and "t 0.0001" in lines

    code, out, err = run("dump", classifier, "dict")
    assert code == 0, err
    lines = out.decode().splitlines()
    model = embtk.load_model(classifier)
    assert int(lines[0]) == len(lines) - 1 == len(model.words) + len(model.labels)
    assert lines[1].split(" ")[0] == "</s>" and lines[1].endswith(" word")
    assert sum(line.endswith(" label") for line in lines[1:]) == 3

    for what, matrix in (("input", model.get_input_matrix()),
                         ("output", model.get_output_matrix())):
        code, out, err = run("dump", classifier, what)
        assert code == 0, err
        lines = out.decode().splitlines()
        assert lines[0] == f"{matrix.shape[0]} {matrix.shape[1]}"
        assert len(lines) == matrix.shape[0] + 1
        assert lines[1] == " ".join("%g" % x for x in matrix[0])

    code, out, err = run("dump", classifier, "nonsense")
    assert code == 2 and "Traceback" not in err


# ------------------------------------------------------------ the error contract
@pytest.mark.slow
def test_process_user_error_is_one_line_on_stderr(tmp_path):
    done = run_process("supervised", "-input", tmp_path / "missing.txt", "-output",
                       tmp_path / "m", "-dim", 10)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert done.stdout == b""
    assert_one_line_error(done.returncode, err)
    assert list(tmp_path.iterdir()) == []

    done = run_process("predict", tmp_path / "missing.bin", "-")
    assert_one_line_error(done.returncode, done.stderr.decode())

    done = run_process("skipgram", "-input", tmp_path / "x", "-output", tmp_path / "m",
                       "-minn", 5, "-maxn", 3)
    assert_one_line_error(done.returncode, done.stderr.decode())


def test_process_usage_error_has_no_traceback(tmp_path):
    done = run_process("supervised", "-input", "a", "-output", "b", "-loss", "foo")
    err = done.stderr.decode()
    assert_one_line_error(done.returncode, err, expected_status=2)
    assert "-loss" in err and "one-vs-all" in err
    done = run_process("no-such-command")
    assert_one_line_error(done.returncode, done.stderr.decode(), expected_status=2)


@pytest.mark.slow
def test_process_broken_pipe_exits_quietly(classifier, tmp_path):
    data = tmp_path / "many.txt"
    data.write_bytes(b"apple car red\n" * 100000)  # far more output than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "embtk", "predict", str(classifier),
                             str(data)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith(b"__label__")
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert err == ""
    assert code == 141


def test_unexpected_exception_is_one_line_unless_debugging(monkeypatch, classifier):
    def broken(path):
        raise RuntimeError("something\nwent wrong")

    monkeypatch.setattr("embtk.cli._load", broken)
    monkeypatch.delenv("EMBTK_DEBUG", raising=False)
    code, out, err = run("predict", classifier, "-")
    assert code == 1
    assert err == ("embtk: internal error: RuntimeError: something went wrong "
                   "(set EMBTK_DEBUG=1 for a traceback)\n")
    monkeypatch.setenv("EMBTK_DEBUG", "1")
    with pytest.raises(RuntimeError):
        run("predict", classifier, "-")


def test_keyboard_interrupt(monkeypatch, classifier):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr("embtk.cli._load", interrupted)
    code, out, err = run("nn", classifier)
    assert (code, err) == (130, "embtk: interrupted\n")


def test_console_script_entry_point_is_declared():
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^embtk\s*=\s*"embtk\.cli:main"', text, re.M)


# ------------------------------------------------------------ bad input, end to end
def _bad_inputs(tmp_path, classifier):
    """(name, argv) pairs that must each fail with one line on stderr and no new files."""
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\n\n   \n")
    unlabelled = tmp_path / "unlabelled.txt"
    unlabelled.write_text("words without any label\nmore words\n")
    model = classifier.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(model[: len(model) // 2])
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(model[:40] + b"\xff" * 64 + model[104:])
    foreign = tmp_path / "foreign.bin"
    foreign.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    out = tmp_path / "out" / "model"
    out.parent.mkdir()
    return [
        ("empty input", ["skipgram", "-input", empty, "-output", out]),
        ("whitespace only", ["supervised", "-input", blank, "-output", out]),
        ("no labels", ["supervised", "-input", unlabelled, "-output", out]),
        ("negative dim", ["supervised", "-input", unlabelled, "-output", out, "-dim", "-5"]),
        ("minn > maxn", ["cbow", "-input", unlabelled, "-output", out, "-minn", 5, "-maxn", 3]),
        ("truncated model", ["predict", truncated, "-"]),
        ("corrupt model", ["test", corrupt, unlabelled]),
        ("foreign model", ["print-word-vectors", foreign]),
        ("model is a directory", ["nn", tmp_path]),
    ], out.parent


@pytest.mark.slow
def test_every_bad_input_is_one_line_and_writes_nothing(tmp_path, classifier):
    cases, out_dir = _bad_inputs(tmp_path, classifier)
    for name, argv in cases:
        done = run_process(*argv, input=b"some text\n")
        err = done.stderr.decode()
        assert done.returncode != 0, name
        assert "Traceback" not in err, (name, err)
        assert len(err.splitlines()) == 1 and err.startswith("embtk: error: "), (name, err)
        assert list(out_dir.iterdir()) == [], name  # not even a temporary file


@pytest.mark.slow
def test_non_utf8_input_trains_and_predicts(tmp_path):
    data = tmp_path / "latin1.txt"
    data.write_bytes(b"__label__fr caf\xe9 cr\xe8me br\xfbl\xe9e\n__label__en coffee cream\n" * 50)
    done = run_process("supervised", "-input", data, "-output", tmp_path / "m", "-dim", 5,
                       "-epoch", 2, "-verbose", 0, "-thread", 1)
    assert done.returncode == 0, done.stderr.decode()
    done = run_process("predict", tmp_path / "m.bin", "-", input=b"caf\xe9 cr\xe8me\n\xff\xfe\n")
    assert done.returncode == 0 and done.stdout.splitlines()[0] == b"__label__fr"
