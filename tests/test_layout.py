"""The package reads in one order: every module imports only modules above it.

The list below is the reading order of README.md's module table. An import of a module
further down (at the top of a file or inside a function) would close a cycle, and fails
here; so does a new module that is not placed in the list.

A subpackage (a model family of its own, such as `glove/` or `elmo/`) is placed module by module,
named with a dot ("glove.training"), and its `__init__.py` by the package's name after its
modules; its modules import the core with `from ..x import` and each other with
`from .y import`.
"""

import ast
import re
from pathlib import Path

import pytest

import embtk

READING_ORDER = [
    "errors", "safeio", "args", "jitting", "primitives", "tokens", "introsort", "counting", "dictionary",
    "losses", "kernels", "vectors", "minibatch", "meter", "predicting", "quantmatrix", "fileformat",
    "vecformat", "recounting", "corpus", "continuation", "checkpoint", "trainer",
    "compress", "model", "glove.cooccurrence", "glove.training", "glove", "autotune",
    "evaluation",
    "elmo.options", "elmo.weights", "elmo.charcnn", "elmo.lstm", "elmo.softmax", "elmo.bilm",
    "elmo.model", "elmo.training", "elmo.output",
    "elmo",
    "plots", "dask", "api", "shell", "coldstart", "cli", "__main__", "__init__",
]
# Only the entry points import inside functions: so that `import embtk` and
# `embtk --help` start without numba (see test_cli's start-up test).
LAZY_IMPORTERS = {"cli", "__init__"}

PACKAGE = Path(embtk.__file__).parent


def _module_name(path: Path) -> str:
    """READING_ORDER's name of a source file: "model", "glove.training", "glove"."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _internal_imports(path: Path, package: tuple = ()):
    """(imported module, line, at top level?) for each relative import of the file at
    `path`, which lies in `package` (the subpackage's parts, () for embtk itself)."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = list(package[:len(package) - (node.level - 1)])
            names = ([node.module.split(".")[0]] if node.module
                     else [alias.name for alias in node.names])
            for name in names:
                yield _resolve(base, name), node.lineno, id(node) in top


def _resolve(base: list, name: str) -> str:
    """The module that `from <base>.name import ...` or `from <base> import name` reads:
    a module of that name, else the package itself (a name its __init__ defines)."""
    dotted = ".".join([*base, name])
    return dotted if dotted in READING_ORDER else ".".join(base) or "__init__"


def _sources():
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_has_a_place_in_the_reading_order():
    assert set(_sources()) == set(READING_ORDER)


def _path(module: str) -> Path:
    path = PACKAGE / (module.replace(".", "/") + ".py")
    return path if path.exists() else PACKAGE / module.replace(".", "/") / "__init__.py"


@pytest.mark.parametrize("module", READING_ORDER)
def test_imports_point_only_up_the_reading_order(module):
    rank = READING_ORDER.index(module)
    path = _sources()[module]
    package = path.parent.relative_to(PACKAGE).parts
    for name, line, at_top in _internal_imports(path, package):
        assert READING_ORDER.index(name) < rank, f"{module}.py:{line} imports {name}, below it"
        assert at_top or module in LAZY_IMPORTERS, \
            f"{module}:{line} imports {name} inside a function"


def _readme_modules() -> list:
    """The modules of README.md's table in "How it is built", in its order, as
    READING_ORDER names them (`glove/x.py` is "glove.x", a package's `__init__.py` its name)."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    table = text[text.index("| module | concept |"):]
    table = table[:table.index("\n\n")]
    names = re.findall(r"^\| `([\w/]+)\.py` \|", table, re.M)
    return [name.removesuffix("/__init__").replace("/", ".") for name in names]


def test_the_readme_table_is_the_reading_order():
    assert _readme_modules() == [m for m in READING_ORDER if m not in ("__main__", "__init__")]


def test_the_checker_sees_a_cycle(tmp_path):
    # the check above must be able to fail: an upward import inside a function is seen
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from .model import FastText\n")
    assert list(_internal_imports(source)) == [("model", 2, False)]


def test_the_checker_resolves_a_subpackage_s_imports(tmp_path):
    source = tmp_path / "fake.py"
    source.write_text("from ..errors import EmbtkError\nfrom .cooccurrence import x\n"
                      "from . import training\nfrom .. import jitting\n")
    assert [name for name, _, _ in _internal_imports(source, ("glove",))] == [
        "errors", "glove.cooccurrence", "glove.training", "jitting"]
