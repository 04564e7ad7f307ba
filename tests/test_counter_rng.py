"""Counter-based per-person draws and the Poisson samplers built on them: uniform, independent across
purposes, months and neighbouring people, and exactly the inverse-CDF counts they claim to be."""
from __future__ import annotations

import numpy as np
import pytest

from abm import counter_rng as crng
from abm.patients import cdf_levels, poisson_cdf, poisson_levels, poisson_screened, screen_level
from abm.reference import poisson_inverse

N = 200_000
ROWS = np.arange(N)


def _bits(key: int) -> np.ndarray:
    return crng.bits(np.uint32(key), crng.spread(ROWS))


def test_bytes_are_uniform():
    """Every byte of the hash is uniform on 0..255 (chi-square, 255 df: 99.9% point is 330)."""
    h = _bits(12345)
    for j in range(4):
        b = ((h >> np.uint32(8 * j)) & np.uint32(255)).astype(np.int64)
        obs = np.bincount(b, minlength=256)
        chi2 = ((obs - N / 256) ** 2 / (N / 256)).sum()
        assert chi2 < 330, (j, chi2)


@pytest.mark.parametrize("other", ["purpose", "month", "neighbour"])
def test_draws_are_uncorrelated(other):
    """Draws for another purpose, another month or the next person are uncorrelated with these, and their
    joint distribution over 16 x 16 cells is uniform (chi-square, 255 df)."""
    keys = crng.keys(7, 2, 30)
    a = crng.uniform(keys[10], ROWS)
    if other == "purpose":
        b = crng.uniform(keys[11], ROWS)
    elif other == "month":
        b = crng.uniform(crng.keys(7, 2, 31)[10], ROWS)
    else:
        b = crng.uniform(keys[10], ROWS + 1)
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(N)
    cells = (a * 16).astype(int) * 16 + (b * 16).astype(int)
    obs = np.bincount(cells, minlength=256)
    assert ((obs - N / 256) ** 2 / (N / 256)).sum() < 330


def test_draws_depend_only_on_row_and_key():
    """A person's draw is the same whoever else is drawn for (what lets sparse steps draw for few people)."""
    k = crng.keys(3, 2, 5)[100]
    sub = np.array([5, 17, 199_999, 42])
    assert np.array_equal(crng.uniform(k, sub), crng.uniform(k, ROWS)[sub])
    assert np.array_equal(crng.uniform32(k, sub), crng.uniform32(k, ROWS)[sub])
    assert not np.array_equal(crng.uniform(k, ROWS), crng.uniform(crng.keys(4, 2, 5)[100], ROWS))


def _rates(seed=1):
    rng = np.random.default_rng(seed)
    return (rng.gamma(0.8, 2.0, N) * np.where(rng.random(N) < 0.05, 0.0, 1.0)).astype(np.float32)


def _uniforms(byte, vkey):
    """The full uniform U = (B + V) / 256 of every person."""
    return (byte + crng.uniform(vkey, ROWS)) / 256.0


@pytest.mark.parametrize("kmax", [1, 3, 5])
def test_levels_give_exact_inverse_cdf_counts(kmax):
    """Counts from byte levels equal the inverse-CDF count of each person's full uniform, including people
    whose byte equals a level (refined with V) and zero rates."""
    rate = _rates()
    byte = _bits(99).astype(np.uint8)
    vkey = np.uint32(31337)
    cdf = poisson_cdf(rate, 1 / 12, kmax)
    levels = np.minimum(cdf * 256.0, 255.0).astype(np.uint8)
    idx, k = poisson_levels(byte, levels, vkey, rate, 1 / 12)
    dense = np.zeros(N, int)
    dense[idx] = k
    u = _uniforms(byte, vkey)
    expect = np.array([poisson_inverse(float(rate[i]) / 12, float(u[i]), kmax) for i in range(0, N, 7)])
    assert np.array_equal(dense[::7], expect)
    assert (k > 0).all() and np.all(np.diff(idx) > 0)


def test_screened_counts_match_levels_and_any_valid_bound():
    """The screened sampler gives the same counts as the levels sampler, whatever (valid) screening bound
    is used, so the bound only decides how many people are examined."""
    rate = _rates(2)
    byte = _bits(5).astype(np.uint8)
    vkey = np.uint32(77)
    cdf = poisson_cdf(rate, 1 / 12, 3)
    levels = np.minimum(cdf * 256.0, 255.0).astype(np.uint8)
    ref = poisson_levels(byte, levels, vkey, rate, 1 / 12)
    for bound in (1 / 12, 1 / 6, 1.0):
        got = poisson_screened(byte, screen_level(rate, bound), 3, vkey, rate, 1 / 12)
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    # a bound below the rates misses events: the check above can fail
    low = poisson_screened(byte, screen_level(rate, 1 / 48), 3, vkey, rate, 1 / 12)
    assert len(low[0]) < len(ref[0])


def test_counts_are_poisson_and_monotone_in_the_rate():
    """Mean and variance match a Poisson at a common rate; a higher rate never gives fewer events to the
    same person (common random numbers)."""
    lam = 0.4
    rate = np.full(N, lam * 12, np.float32)
    byte = _bits(8).astype(np.uint8)
    vkey = np.uint32(9)
    levels = np.minimum(poisson_cdf(rate, 1 / 12, 8) * 256.0, 255.0).astype(np.uint8)
    idx, k = poisson_levels(byte, levels, vkey, rate, 1 / 12)
    dense = np.zeros(N)
    dense[idx] = k
    se = np.sqrt(lam / N)
    assert abs(dense.mean() - lam) < 4 * se
    assert abs(dense.var() - lam) < 0.02
    hi_idx, hi_k = poisson_screened(byte, screen_level(rate, 1.3 / 12), 8, vkey, rate, 1.25 / 12)
    hi = np.zeros(N)
    hi[hi_idx] = hi_k
    assert (hi >= dense).all() and hi.mean() > dense.mean()


@pytest.mark.parametrize("kmax", [1, 2, 5, 8])
def test_float32_levels_equal_the_exact_floor(kmax):
    """The yearly byte levels, computed in float32 with an exact fix near integers, equal
    floor(256 C) from the float64 CDF the refinement uses (zero and very small rates included)."""
    rng = np.random.default_rng(kmax)
    rate = (rng.gamma(0.7, 4.0, N) * (rng.random(N) > 0.02)).astype(np.float32)
    rate[:100] = np.float32(1e-9)
    ref = np.minimum(poisson_cdf(rate, 1 / 12, kmax) * 256.0, 255.0).astype(np.uint8)
    assert np.array_equal(cdf_levels(rate, 1 / 12, kmax), ref)
