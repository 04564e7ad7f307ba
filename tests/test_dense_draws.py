"""The compiled dense scan of a month's demand draws keeps exactly the people, bytes and byte counts the
numpy passes give (hashes, bytes, level comparisons, screening), whatever the population's length, its
levels (ties, 255s) or the buffers' size; and a model run with it equals one with the numpy path."""
from __future__ import annotations

import numpy as np
import pytest

from abm import ContractingModel
from abm import counter_rng as crng
from abm import dense_draws
from abm.dense_draws import LEVELS, SCREEN, DenseScan

pytestmark = pytest.mark.skipif(not dense_draws.kernel(), reason="numba not installed")


def _numpy_scan(spread, hkeys, thr, mode):
    """What patients.poisson_levels / poisson_screened see, pass by pass."""
    hashes = [crng.bits(np.uint32(k), spread) for k in hkeys]
    out = []
    for k, (t, md) in enumerate(zip(thr, mode)):
        byte = ((hashes[k // 4] >> np.uint32(8 * (k % 4))) & np.uint32(255)).astype(np.uint8)
        if md == LEVELS:
            count = (byte[None, :] > t).sum(axis=0)
            amb = (byte[None, :] == t).any(axis=0)
            rows = np.flatnonzero((count > 0) | amb)
            code = (count[rows] | np.where(amb[rows], 0x80, 0)).astype(np.uint8)
        else:
            rows = np.flatnonzero(byte >= t.reshape(-1))
            code = np.zeros(len(rows), np.uint8)
        out.append((rows, byte[rows], code))
    return out


def _inputs(n, rng):
    """Seven services as the model has them: four read against sorted levels (some at 255, the level of
    a zero rate), three against screening levels."""
    spread = crng.spread(rng.permutation(n + 3)[:n])
    thr, mode = [], []
    for k, kmax in enumerate((5, 4, 3, 2, 2, 3, 4)):
        if k in (2, 3, 4):
            thr.append(rng.integers(0, 256, n).astype(np.uint8))
            mode.append(SCREEN)
        else:
            lv = np.sort(rng.integers(0, 256, (kmax, n)), axis=0).astype(np.uint8)
            lv[:, rng.random(n) < 0.1] = 255
            thr.append(lv)
            mode.append(LEVELS)
    return spread, thr, mode


@pytest.mark.parametrize("n", [1, 7, dense_draws.CHUNK, dense_draws.CHUNK + 1, 3 * dense_draws.CHUNK - 5, 20_011])
def test_scan_keeps_what_the_numpy_passes_keep(n):
    rng = np.random.default_rng(n)
    spread, thr, mode = _inputs(n, rng)
    hkeys = [crng.key(3, n, 0), crng.key(3, n, 1)]
    got = DenseScan().scan(spread, hkeys, thr, mode)
    want = _numpy_scan(spread, hkeys, thr, mode)
    for (r, b, c), (r2, b2, c2) in zip(got, want):
        assert np.array_equal(r, r2) and np.array_equal(b, b2) and np.array_equal(c, c2)
    if n > 1000:                                                    # (enough people for both cases)
        assert any((c >= 0x80).any() for _, _, c in got)            # ties with a level are marked
        assert all(0 < len(r) < n for r, _, _ in got)


def test_buffers_too_small_grow_and_give_the_same_scan():
    rng = np.random.default_rng(1)
    spread, thr, mode = _inputs(30_000, rng)
    hkeys = [np.uint32(11), np.uint32(12)]
    small = DenseScan()
    small._grow([1] * 7)                                            # every service overflows
    first = [tuple(a.copy() for a in x) for x in small.scan(spread, hkeys, thr, mode)]
    again = DenseScan().scan(spread, hkeys, thr, mode)
    for x, y in zip(first, again):
        assert all(np.array_equal(a, b) for a, b in zip(x, y))
    # a later, sparser month reuses the grown buffers
    sparse = [np.full_like(t, 255) for t in thr]
    for (r, _, c), (r2, _, c2) in zip(small.scan(spread, hkeys, sparse, mode), _numpy_scan(spread, hkeys, sparse, mode)):
        assert np.array_equal(r, r2) and np.array_equal(c, c2)


def test_too_many_services_for_two_hashes_are_refused():
    spread = crng.spread(np.arange(10))
    with pytest.raises(ValueError, match="8 services"):
        DenseScan().scan(spread, [1, 2], [np.zeros(10, np.uint8)] * 9, [SCREEN] * 9)


@pytest.mark.parametrize("economy", [None, "configs/economies/black_country.yaml"])
def test_compiled_and_numpy_demand_give_the_same_run(monkeypatch, economy):
    """A run with the compiled kernels equals one with the numpy passes: metrics, finance and every
    person's health, through a year change and a surge that moves GP contacts off their yearly levels, in
    one place and in four (provider choice by place, per-place sums)."""
    shocks = [{"kind": "demand_surge", "month": 5, "size": 0.2, "service": "gp_f2f"}]
    eco = {} if economy is None else {"economy": economy}
    runs = []
    for engine in ("numba", "numpy"):
        monkeypatch.setenv("ABM_KERNEL", engine)
        m = ContractingModel("icp_full", rng=5, population_scale=0.02, shocks=shocks, **eco)
        m.run(14)
        runs.append(m)
    a, b = runs
    assert a.metrics == b.metrics
    assert a.finance_records() == b.finance_records()
    assert np.array_equal(a.pop.health, b.pop.health)
    assert a.metrics["emergency_admissions_per_1000"] > 0


@pytest.mark.parametrize("n", [0, 1, 9, 70_001])
def test_cell_sums_match_bincount(n, monkeypatch):
    """The yearly weighted counts per (band, conditions) cell and people present per band: the compiled
    loop gives np.bincount's float64 sums to the last bit (the same order of additions), vacant rows
    left out of the counts."""
    from abm.patients import cell_sums
    rng = np.random.default_rng(n)
    band = rng.integers(0, 7, n).astype(np.int8)
    ltc = rng.integers(0, 9, n).astype(np.int8)
    present = rng.random(n) < 0.8
    w = (rng.lognormal(0, 0.5, n) * present).astype(np.float32)
    got = cell_sums(band, ltc, w, present)
    monkeypatch.setenv("ABM_KERNEL", "numpy")
    want = cell_sums(band, ltc, w, present)
    assert got[0].shape == (63,) and got[1].shape == (7,)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert got[1].sum() == present.sum()
    assert np.isclose(got[0].sum(), w.sum(dtype=np.float64))


def test_provider_pick_by_place_matches_numpy(monkeypatch):
    """Choosing providers for episodes in several places: the compiled pass gives the numpy path's flat
    positions exactly, uniforms on the thresholds included, and places with one provider never move."""
    from abm.care import Care
    rng = np.random.default_rng(4)
    shares = np.array([0.5, 0.2, 0.2, 0.1])
    mask = np.array([[1, 1, 0, 1], [0, 1, 0, 0], [1, 1, 1, 1]], float)
    tables = Care.pick_tables({"mask": mask}, shares, True)
    place = rng.integers(0, 3, 50_000).astype(np.int8)
    x = rng.random(50_000).astype(np.float32)
    x[:300] = tables[0][place[:300], 0].clip(0, 1)            # exactly on a threshold
    got = Care.pick(tables, place, len(x), lambda: x)
    monkeypatch.setenv("ABM_KERNEL", "numpy")
    want = Care.pick(tables, place, len(x), lambda: x)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    k = len(shares)
    assert set(np.unique(got[place == 1])) == {1 * k + 1}     # one provider in place 1
    assert set(np.unique(got[place == 0] - 0)) == {0, 1, 3}   # place 0 never uses provider 2
    assert len(np.unique(got[place == 2])) == 4


@pytest.mark.parametrize("several", [False, True])
def test_provider_pick_with_its_draws_matches_numpy(monkeypatch, several):
    """Drawing the uniforms inside the compiled pick (pick_drawn) gives the flat positions of drawing them
    first (counter_rng.uniform32) and picking with numpy, in one place and several, for one provider
    (no draw), two and four; rows repeat and skip, as episodes do."""
    from abm.care import Care
    rng = np.random.default_rng(7)
    key = np.uint32(0x51A7E)
    everyone = rng.integers(0, 3, 200_000).astype(np.int8)          # each person's place
    rows = np.sort(rng.choice(200_000, 60_000))
    for shares in (np.array([1.0]), np.array([0.6, 0.4]), np.array([0.5, 0.2, 0.2, 0.1])):
        mask = np.ones((3 if several else 1, len(shares)))
        if several and len(shares) > 1:
            mask[1, 1:] = 0                                          # place 1 has one provider
        tables = Care.pick_tables({"mask": mask}, shares, several)
        place = everyone if several else None
        monkeypatch.setenv("ABM_KERNEL", "numba")
        got = Care.pick_drawn(tables, place, rows, key)
        monkeypatch.setenv("ABM_KERNEL", "numpy")
        want = Care.pick(tables, None if place is None else place[rows], len(rows),
                         lambda: crng.uniform32(key, rows))
        assert np.array_equal(got, want)
        k = len(shares)
        if several:                     # places 0 and 2 use every provider, place 1 one (or k = 1)
            assert np.unique(got[place[rows] == 1]).tolist() == [k]
            assert len(np.unique(got)) == (2 * k + 1 if k > 1 else 3)
        else:
            assert len(np.unique(got)) == k


def test_compiled_uniform_equals_numpy_bits():
    """counter_rng.uniform32_at, used inside compiled loops, gives uniform32's float32 for every row: high
    rows, keys with the top bit set, and row 0 (a changed constant or a missing mask fails this)."""
    import numba

    @numba.njit
    def at(k, rows):
        out = np.empty(rows.shape[0], np.float32)
        for i in range(rows.shape[0]):
            out[i] = crng.uniform32_at(k, rows[i])
        return out
    rows = np.concatenate([[0, 1, 2**31 - 1], np.random.default_rng(3).integers(0, 2**31 - 1, 5000)])
    for k in (np.uint32(0), np.uint32(0xFFFFFFFF), np.uint32(0x9E3779B1)):
        assert np.array_equal(at(k, rows), crng.uniform32(k, rows))


def test_compiled_uniforms_equal_numpy(monkeypatch):
    """uniform and uniform32 in one compiled pass give numpy's floats for rows of any integer type,
    strided views and no rows."""
    rows = np.random.default_rng(8).integers(0, 2**31 - 1, 20_001)
    cases = [rows, rows.astype(np.int32), rows.astype(np.uint32), rows[::3], rows[:0]]
    for f in (crng.uniform, crng.uniform32):
        for k in (np.uint32(0), np.uint32(0xFFFFFFFF), np.uint32(12345)):
            monkeypatch.setenv("ABM_KERNEL", "numba")
            got = [f(k, r) for r in cases]
            monkeypatch.setenv("ABM_KERNEL", "numpy")
            want = [f(k, r) for r in cases]
            for g, w in zip(got, want):
                assert g.dtype == w.dtype and np.array_equal(g, w)

