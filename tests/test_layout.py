"""The package reads in one order: every module imports only modules above it.

The list below is the reading order of README.md's module table. An import of a module
further down (at the top of a file or inside a function) would close a cycle, and fails
here; so does a new module that is not placed in the list.
"""

import ast
from pathlib import Path

import pytest

import embtk

READING_ORDER = [
    "errors", "args", "jitting", "primitives", "dictionary", "losses", "kernels", "predicting", "minibatch",
    "meter", "quantmatrix", "fileformat", "corpus", "continuation", "checkpoint", "trainer",
    "compress", "model", "cooccurrence",
    "glove", "autotune", "evaluation", "plots", "dask", "api", "cli", "__main__", "__init__",
]
# Only the entry points import inside functions: so that `import embtk` and
# `embtk --help` start without numba (see test_cli's start-up test).
LAZY_IMPORTERS = {"cli", "__init__"}

PACKAGE = Path(embtk.__file__).parent


def _internal_imports(path: Path):
    """(imported module, line, at top level?) for each `from . import` / `from .x import`."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            for name in names:
                yield name.split(".")[0], node.lineno, id(node) in top


def test_every_module_has_a_place_in_the_reading_order():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(READING_ORDER)


@pytest.mark.parametrize("module", READING_ORDER)
def test_imports_point_only_up_the_reading_order(module):
    rank = READING_ORDER.index(module)
    for name, line, at_top in _internal_imports(PACKAGE / f"{module}.py"):
        assert READING_ORDER.index(name) < rank, f"{module}.py:{line} imports {name}, below it"
        assert at_top or module in LAZY_IMPORTERS, \
            f"{module}.py:{line} imports {name} inside a function"


def test_the_checker_sees_a_cycle(tmp_path):
    # the check above must be able to fail: an upward import inside a function is seen
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from .model import FastText\n")
    assert list(_internal_imports(source)) == [("model", 2, False)]
