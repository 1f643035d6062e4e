"""The output layers' sampling tables: negatives drawn as fastText draws them."""

import numba as nb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from embtk.losses import NS, alias_table, draw_negative, make_loss_params, seed_rng


def implied_probabilities(keep, alias):
    """What an alias table draws: slot i kept, plus every slot that falls through to i."""
    n = len(keep)
    p = keep.astype(np.float64).copy()
    np.add.at(p, alias, 1.0 - keep.astype(np.float64))
    p -= np.where(alias == np.arange(n), 1.0 - keep, 0.0)  # a slot aliased to itself
    return p / n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=300))
def test_alias_table_draws_each_output_in_proportion_to_its_weight(counts):
    weights = np.sqrt(np.array(counts, dtype=np.float64))
    keep, alias = alias_table(weights)
    assert keep.dtype == np.float32 and alias.dtype == np.int32
    assert np.all((keep >= 0) & (keep <= 1)) and np.all((alias >= 0) & (alias < len(counts)))
    np.testing.assert_allclose(implied_probabilities(keep, alias), weights / weights.sum(),
                               rtol=1e-5, atol=1e-9)


@nb.njit
def _draw_counts(params, seed, draws):
    rng = seed_rng(seed)
    out = np.zeros(len(params.neg_keep), dtype=np.int64)
    for _ in range(draws):
        out[draw_negative(params, rng)] += 1
    return out


def test_negatives_follow_the_square_root_of_counts():
    counts = np.array([1, 4, 9, 16, 100, 10000], dtype=np.int64)
    params = make_loss_params(NS, counts, neg=5)
    drawn = _draw_counts(params, 7, 2_000_000)
    expected = np.sqrt(counts) / np.sqrt(counts).sum()
    np.testing.assert_allclose(drawn / drawn.sum(), expected, atol=2e-3)
    assert drawn[0] > 0  # the rarest output is still drawn


def test_a_single_output_has_no_negatives():
    assert make_loss_params(NS, np.array([5]), neg=5).neg == 0
