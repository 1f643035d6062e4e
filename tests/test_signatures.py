"""Each hot kernel compiles once per kind of run, never once more for a literal or a layout.

A fresh install's first commands spend most of their time compiling, and numba compiles a
function again for every new set of argument types: a literal (`0`, `False`) where a typed
value (`np.int64(0)`) is meant, a non-contiguous array, an int32 where an int64 was
passed before. One child process with an empty numba cache trains every kind of model on
tiny data and predicts, then reports every compiled signature of the kernels and of the
helpers they call; each count below is the number of argument types the run really has.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

CHILD = r"""
import json, sys
import embtk
from embtk import kernels, losses, minibatch, predicting, primitives, vectors

austen, authors = sys.argv[1], sys.argv[2]
small = dict(dim=10, epoch=1, bucket=2000, minCount=1, thread=1, seed=3, verbose=0)
embtk.train_unsupervised(austen, model="skipgram", **small)
embtk.train_unsupervised(austen, model="cbow", **small)
embtk.train_unsupervised(austen, model="cbow", loss="hs", **small)
embtk.train_unsupervised(austen, model="skipgram", batch=8, **small)
embtk.train_unsupervised(austen, model="cbow", batch=8, **small)
for loss in ("softmax", "ns", "hs", "ova"):
    clf = embtk.train_supervised(authors, loss=loss, wordNgrams=2, lr=0.5, **small)
    clf.predict(["to be or not to be", "it is a truth universally acknowledged"], k=2)
    clf.test(authors, k=1)

functions = {
    "kernels": ["train_unsupervised", "train_supervised", "_skipgram_line", "_cbow_line",
                "_update", "_enter", "_leave", "_shared_rows", "learns_privately",
                "share_output", "init_uniform"],
    "vectors": ["predict_lines"],
    "minibatch": ["_batched_line", "skipgram_step", "cbow_step"],
    "losses": ["forward_any", "_forward_ns", "_forward_hs", "_forward_softmax",
               "_forward_ova", "binary_logistic", "_contains"],
    "primitives": ["seed_rng", "alias_table", "huffman_tree", "heap_offer", "sort_heap"],
    "predicting": ["predict_text"],
}
modules = dict(kernels=kernels, minibatch=minibatch, losses=losses, predicting=predicting,
               primitives=primitives, vectors=vectors)
print(json.dumps({f"{m}.{f}": [str(s) for s in getattr(modules[m], f).signatures]
                  for m, names in functions.items() for f in names}))
"""

# How many signatures each function has after the child's runs, and why.
EXPECTED = {
    # one per (how a line is learned, loss) pair trained: skipgram-ns, cbow-ns, cbow-hs,
    # -batch (ns; skipgram or cbow is a field of the step, not its class)
    "kernels.train_unsupervised": 4,
    # one per loss class (losses.for_kernels)
    "kernels.train_supervised": 4,
    "kernels._skipgram_line": 1,
    "kernels._cbow_line": 2,  # ns, hs
    "kernels._update": 4,  # one per loss
    "kernels._enter": 1,
    "kernels._leave": 1,
    "kernels._shared_rows": 1,
    "kernels.learns_privately": 1,
    "kernels.share_output": 1,  # typed into train_supervised, run at several threads only
    "kernels.init_uniform": 1,
    # prediction too: one per loss class, each compiling its loss's search alone
    "vectors.predict_lines": 4,
    "minibatch._batched_line": 1,
    "minibatch.skipgram_step": 1,
    "minibatch.cbow_step": 1,
    # training passes each loss its own class, so the run-time dispatcher never compiles
    "losses.forward_any": 0,
    "losses._forward_ns": 1,
    "losses._forward_hs": 1,
    "losses._forward_softmax": 1,
    "losses._forward_ova": 1,
    "losses.binary_logistic": 1,
    "losses._contains": 1,
    "primitives.seed_rng": 1,
    "primitives.alias_table": 1,
    "primitives.huffman_tree": 1,
    "primitives.heap_offer": 1,
    "primitives.sort_heap": 1,
    "predicting.predict_text": 4,
}


# One cold compile of every kernel in a child process: a minute or more.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def signatures(tmp_path_factory):
    cache = tmp_path_factory.mktemp("numba-cache")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", CHILD, str(DATA / "austen_small.txt"),
                           str(DATA / "authors.train")],
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_each_kernel_compiles_once_per_kind_of_run(signatures):
    counts = {name: len(sigs) for name, sigs in signatures.items()}
    wrong = {name: signatures[name] for name in EXPECTED if counts[name] != EXPECTED[name]}
    assert not wrong, f"unexpected signatures: {json.dumps(wrong, indent=1)}"


def test_training_kernels_take_their_thread_state_in_one_type(signatures):
    # the State, step and Schedule of every training signature are the same few types:
    # a field whose type varied (an rng of another layout, an int32 tid) would show here
    for name in ("kernels.train_unsupervised", "kernels.train_supervised"):
        states = {sig.split(", Model(")[0] for sig in signatures[name]}
        assert len(states) == 1, states
