"""Models pickle: a loaded one as its file's identity, any other as its `.bin` bytes.

So they travel to other processes (multiprocessing, Dask, Ray, Spark) with no code for
each of them; a process pool started with `spawn` stands for all of them here.
"""

import multiprocessing
import os
import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import embtk
from embtk.errors import EmbtkError

LINES = ["apple banana cherry", "car truck bus the", "red blue green of", "plum taxi gold"]


def assert_same_predictions(model, expected, k=3):
    labels, probs = model.predict(LINES, k=k)
    want_labels, want_probs = expected.predict(LINES, k=k)
    assert labels == want_labels
    assert all(np.array_equal(a, b) for a, b in zip(probs, want_probs))


@pytest.fixture
def model_file(classifier, tmp_path):
    """A private copy of the CLI-trained classifier, free to be changed or removed."""
    path = tmp_path / "clf.bin"
    shutil.copy(classifier, path)
    return path


def test_a_loaded_model_pickles_as_a_reference_to_its_file(model_file):
    model = embtk.load_model(model_file)
    data = pickle.dumps(model)
    assert len(data) < 2000 < os.path.getsize(model_file)
    again = pickle.loads(data)
    assert again.source == model.source
    assert again.source.path == str(model_file)
    assert np.array_equal(again.get_input_matrix(), model.get_input_matrix())
    assert_same_predictions(again, model)


def test_a_model_in_memory_pickles_its_bin_bytes(corpus, tmp_path):
    model = embtk.train_supervised(str(corpus), dim=8, epoch=3, lr=0.5, thread=1, verbose=0)
    assert model.source is None
    data = pickle.dumps(model)
    model.save_model(tmp_path / "same.bin")
    size = os.path.getsize(tmp_path / "same.bin")
    assert size < len(data) < size + 2000
    again = pickle.loads(data)
    assert again.source is None
    assert (again.epoch, again.lr, again.final_loss) == (3, 0.5, model.final_loss)
    assert np.array_equal(again.get_output_matrix(), model.get_output_matrix())
    assert_same_predictions(again, model)
    # the matrices are views on the unpickled bytes, writable as a loaded file's are
    again.input_matrix[0, 0] += 1.0
    assert again.input_matrix[0, 0] == model.input_matrix[0, 0] + 1.0


def test_a_quantized_model_pickles_its_ftz_bytes(corpus):
    model = embtk.train_supervised(str(corpus), dim=8, epoch=3, lr=0.5, wordNgrams=2,
                                   bucket=1000, thread=1, verbose=0)
    model.quantize(dsub=2)
    assert model.source is None  # its matrices are no longer the file's
    again = pickle.loads(pickle.dumps(model))
    assert again.is_quantized()
    assert_same_predictions(again, model)


def test_replaced_matrices_are_pickled_not_referenced(model_file):
    model = embtk.load_model(model_file)
    model.set_matrices(model.get_input_matrix() * 2, model.get_output_matrix())
    again = pickle.loads(pickle.dumps(model))
    original = embtk.load_model(model_file).get_input_matrix()
    assert np.array_equal(again.get_input_matrix(), 2 * original)


def test_unpickling_refuses_a_changed_file(model_file):
    data = pickle.dumps(embtk.load_model(model_file))
    st = os.stat(model_file)
    os.utime(model_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(EmbtkError, match=r"clf.bin: the file changed since the model was pickled") as e:
        pickle.loads(data)
    assert "\n" not in str(e.value)


def test_unpickling_refuses_a_file_changed_within_the_same_second(model_file):
    # the size and time kept, the header changed (dim 10 -> 11): the checksum sees it
    data = pickle.dumps(embtk.load_model(model_file))
    st = os.stat(model_file)
    with open(model_file, "r+b") as f:
        f.seek(8)
        f.write((11).to_bytes(4, "little"))
    os.utime(model_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(EmbtkError, match="the file changed"):
        pickle.loads(data)


def test_unpickling_refuses_a_missing_file(model_file):
    data = pickle.dumps(embtk.load_model(model_file))
    os.unlink(model_file)
    with pytest.raises(EmbtkError, match=r"clf.bin: the file is missing or cannot be read here"):
        pickle.loads(data)


def _predict_in_child(model, lines):
    return os.getpid(), model.predict(lines, k=3)


@pytest.mark.slow
def test_models_travel_to_a_process_pool(model_file, corpus):
    loaded = embtk.load_model(model_file)
    trained = embtk.train_supervised(str(corpus), dim=8, epoch=3, lr=0.5, thread=1, verbose=0)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for model in (loaded, trained):
            pid, (labels, probs) = pool.submit(_predict_in_child, model, LINES).result()
            want_labels, want_probs = model.predict(LINES, k=3)
            assert pid != os.getpid()
            assert labels == want_labels
            assert all(np.array_equal(a, b) for a, b in zip(probs, want_probs))
