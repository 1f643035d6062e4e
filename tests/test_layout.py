"""The package reads in one order: every module imports only modules above it.

The list below is the reading order of README.md's module table. An import of a module
further down (at the top of a file or inside a function) would close a cycle, and fails
here; so does a new module that is not placed in the list.

A subpackage's modules are named relative to the package, dotted ("elmo.options"), and
the subpackage itself ("elmo", its __init__.py) comes after its modules. Relative imports
are resolved by their level: in elmo/x.py, `from .y import Z` and `from . import y` are
"elmo.y", `from ..errors import E` is "errors", `from .. import jitting` is "jitting".
"""

import ast
from pathlib import Path

import pytest

import embtk

READING_ORDER = [
    "errors", "args", "jitting", "dictionary", "losses", "kernels", "predicting", "minibatch",
    "meter", "quantmatrix", "fileformat", "corpus", "continuation", "checkpoint", "trainer",
    "compress", "model", "cooccurrence",
    "glove", "autotune", "evaluation",
    "elmo.options", "elmo.weights", "elmo.charcnn", "elmo.lstm", "elmo.model", "elmo.output",
    "elmo",
    "plots", "dask", "api", "cli", "__main__", "__init__",
]
# Only the entry points import inside functions: so that `import embtk` and
# `embtk --help` start without numba (see test_cli's start-up test).
LAZY_IMPORTERS = {"cli", "__init__"}

PACKAGE = Path(embtk.__file__).parent


def _module_name(path: Path) -> str:
    """The reading-order name of a file of the package: "model", "elmo.lstm", "elmo"."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, level: int, target: str | None) -> str:
    """The reading-order name of what `from {"." * level}{target} import` names in
    `module`, relative to its package (a subpackage's __init__ is its package)."""
    is_package = module != "__init__" and (PACKAGE / module.replace(".", "/")).is_dir()
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[:len(package) - (level - 1)] if level > 1 else package
    return ".".join(base + ([target] if target else []))


def _internal_imports(path: Path, module: str | None = None):
    """(imported module, line, at top level?) for each relative import of the file at
    `path`, whose reading-order name is `module` (a top-level module when None)."""
    module = module or path.stem
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            if node.module:
                names = [_resolve(module, node.level, node.module)]
            else:
                names = [_resolve(module, node.level, alias.name) for alias in node.names]
            for name in names:
                yield _known(name), node.lineno, id(node) in top


def _known(name: str) -> str:
    """`name`, or the longest module of the reading order it is inside (`from .x.y
    import` where x.y is not itself listed)."""
    while name not in READING_ORDER and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_every_module_has_a_place_in_the_reading_order():
    modules = {_module_name(p) for p in PACKAGE.glob("**/*.py")}
    assert modules == set(READING_ORDER)


def _path(module: str) -> Path:
    path = PACKAGE / (module.replace(".", "/") + ".py")
    return path if path.exists() else PACKAGE / module.replace(".", "/") / "__init__.py"


@pytest.mark.parametrize("module", READING_ORDER)
def test_imports_point_only_up_the_reading_order(module):
    rank = READING_ORDER.index(module)
    for name, line, at_top in _internal_imports(_path(module), module):
        assert name in READING_ORDER, f"{module}:{line} imports {name}, not in the order"
        assert READING_ORDER.index(name) < rank, f"{module}:{line} imports {name}, below it"
        assert at_top or module in LAZY_IMPORTERS, \
            f"{module}:{line} imports {name} inside a function"


def test_the_checker_sees_a_cycle(tmp_path):
    # the check above must be able to fail: an upward import inside a function is seen
    source = tmp_path / "fake.py"
    source.write_text("def f():\n    from .model import FastText\n")
    assert list(_internal_imports(source)) == [("model", 2, False)]


@pytest.mark.parametrize("module,level,target,expected", [
    ("elmo.lstm", 2, "errors", "errors"),
    ("elmo.lstm", 1, "options", "elmo.options"),
    ("elmo.lstm", 1, None, "elmo"),
    ("elmo", 1, "model", "elmo.model"),
    ("elmo", 2, "fileformat", "fileformat"),
    ("cli", 1, "elmo.weights", "elmo.weights"),
    ("cli", 1, "elmo", "elmo"),
    ("__init__", 1, "api", "api"),
])
def test_relative_imports_resolve_by_level(module, level, target, expected):
    assert _resolve(module, level, target) == expected


def test_the_checker_sees_a_subpackage_import(tmp_path):
    """In elmo/x.py, `from . import model` and `from .. import cli` name elmo.model, cli."""
    source = tmp_path / "fake.py"
    source.write_text("from . import model\nfrom .. import cli\n")
    assert list(_internal_imports(source, "elmo.options")) == [
        ("elmo.model", 1, True), ("cli", 2, True)]
