"""write_vec's numba formatter: byte for byte what Python's b"%.5g" prints for each float32
(widened to double), which is what fastText's setprecision(5) prints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from embtk.vecformat import _format_vec_lines, _vec_block_python, read_vec, write_vec


def _kernel_text(values) -> list:
    """Each value's text from the kernel (a row of one value), None where it falls back."""
    bits = np.asarray(values, dtype=np.float32).reshape(-1, 1).view(np.uint32)
    n = len(bits)
    out = np.empty(n * 14, dtype=np.uint8)
    ends, bad = _format_vec_lines(bits, np.zeros(0, np.uint8), np.zeros(n, np.int64), out)
    starts = np.concatenate([[0], ends[:-1]])
    texts = []
    for i in range(n):
        line = bytes(out[starts[i]:ends[i]])
        assert (line == b"") == bad[i]
        texts.append(None if bad[i] else line[1:-2])  # " text \n"
    return texts


def _python_text(value) -> bytes:
    return b"%.5g" % float(np.float32(value))


EDGES = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 0.1, 1e-5, 1e-4, 0.0001,
         0.000099999, 0.00009999951, 9.99995, 9.99994, 99999.5, 99999.4, 100000.0, 99995.0,
         12344.5, 12345.5, 123456.0, 1.5e-06, 2.5e10, 3.14159265, 1e-12, 1.2e-12, 9.9e21,
         1e22, 3.4028235e38, 1.17549435e-38, 1e-45, 65504.0, 1e5 - 0.5, 0.5, 5e-5]


def test_edge_cases_match_python():
    texts = _kernel_text(EDGES)
    for value, text in zip(EDGES, texts):
        if text is not None:
            assert text == _python_text(value), value
    # the exact path covers trained vectors' range: only extremes go back to Python
    fallen = [v for v, t in zip(EDGES, texts) if t is None]
    assert fallen == [1e-12, 3.4028235e38, 1.17549435e-38, 1e-45]  # float32(1e-12) < 1e-12
    assert _kernel_text([-0.0, np.nan, -np.inf]) == [b"-0", b"nan", b"-inf"]


@given(st.lists(st.floats(width=32, allow_subnormal=True), min_size=1, max_size=50))
@example([9.99995, 99999.5, 0.000099999, -0.0, 1e-5])
@settings(max_examples=300, deadline=None)
def test_any_float32_matches_python(values):
    for value, text in zip(values, _kernel_text(values)):
        if text is not None:
            assert text == _python_text(value), value


@pytest.mark.parametrize("decade", range(-12, 22))
def test_every_decade_and_its_ties_match_python(decade):
    rng = np.random.default_rng(decade + 100)
    values = (rng.uniform(1, 10, 2000) * 10.0 ** decade).astype(np.float32)
    values[::2] *= -1
    # the float32s nearest a 5-digit tie, on both sides, and carries to a new power of ten
    ties = ((rng.integers(10000, 100000, 1000) + 0.5) * 10.0 ** (decade - 4)).astype(np.float32)
    values = np.concatenate([values, ties, np.nextafter(ties, np.float32(np.inf)),
                             np.nextafter(ties, np.float32(0)),
                             np.float32([9.99995 * 10.0 ** decade, 9.99996 * 10.0 ** decade])])
    texts = _kernel_text(values)
    assert None not in texts
    assert texts == [_python_text(v) for v in values]


def _old_write_vec(words, vectors) -> bytes:
    return b"%d %d\n" % vectors.shape + _vec_block_python(words, vectors.shape[1], vectors)


@pytest.mark.parametrize("seed", range(4))
def test_write_vec_is_byte_identical_to_python_formatting(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n, dim = int(rng.integers(1, 3000)), int(rng.integers(0, 40))
    vectors = (rng.standard_normal((n, dim)) * 10.0 ** rng.uniform(-6, 6, (n, 1))).astype(np.float32)
    if dim:
        # rows the kernel hands back to Python, between rows it formats
        vectors[rng.integers(0, n, 5), 0] = [1e-30, -1e30, 1e-40, 3e38, -1e-13]
        vectors[rng.integers(0, n, 3), -1] = [0.0, -0.0, 99999.5]
    words = [b"w%d" % i for i in range(n - 1)] + ["naïve".encode()]
    write_vec(tmp_path / "v.vec", words, vectors)
    assert (tmp_path / "v.vec").read_bytes() == _old_write_vec(words, vectors)
    got_words, got = read_vec(tmp_path / "v.vec")
    assert got_words == words and got.shape == (n, dim)


def test_write_vec_of_float64_keeps_python_formatting(tmp_path):
    vectors = np.array([[0.1, 1 / 3], [1e-300, -2.0]])  # not float32: formatted as doubles
    write_vec(tmp_path / "d.vec", [b"a", b"b"], vectors)
    assert (tmp_path / "d.vec").read_bytes() == b"2 2\na 0.1 0.33333 \nb 1e-300 -2 \n"
