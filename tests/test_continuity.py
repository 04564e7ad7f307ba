"""The rolling 12-month contact window: running sums (N, sum of squares, organisations) always equal a
recount of the window; contacts leave exactly 12 months later; forgetting people clears them everywhere;
the compiled and the numpy updates agree exactly."""
from __future__ import annotations

import numpy as np
import pytest

from abm import ContractingModel
from abm import continuity
from abm.continuity import ContactWindow, kernel


def _recount(cw: ContactWindow):
    w = cw.window.astype(np.int64)
    return w.sum(0), (w * w).sum(0), (w > 0).sum(0)


def _assert_consistent(cw: ContactWindow):
    n, sq, orgs = _recount(cw)
    assert np.array_equal(cw.total, n)
    assert np.array_equal(cw.sumsq, sq)
    assert np.array_equal(cw.orgs, orgs)


@pytest.fixture(params=["compiled", "blocked", "numpy"])
def mode(request, monkeypatch):
    """The three ways updates are applied: compiled group by group, compiled by blocks of 7 people, numpy."""
    if request.param == "blocked":
        monkeypatch.setattr(continuity, "BLOCKED_FROM", 0)
        monkeypatch.setattr(continuity, "BLOCK", 7)
    if request.param != "numpy" and kernel() is None:
        pytest.skip("numba not installed")
    return request.param != "numpy"


def test_running_sums_equal_a_recount_through_moves_deaths_and_growth(mode):
    rng = np.random.default_rng(0)
    cw = ContactWindow(5, 400, use_kernel=mode)
    for t in range(30):
        cw.begin_month(t)
        for _ in range(4):   # several groups per month, repeating people and organisations across groups
            rows = np.flatnonzero(rng.random(cw.n) < 0.3)
            slot = rng.integers(0, cw.n_slots, len(rows)) if rng.random() < 0.5 else int(rng.integers(0, cw.n_slots))
            cw.add(slot, rows, rng.integers(0, 4, len(rows)).astype(np.uint8))
        _assert_consistent(cw)
        if t % 12 == 11:
            cw.forget(rng.random(cw.n) < 0.05, practice=rng.random(cw.n) < 0.1)
            cw.grow(20)
            _assert_consistent(cw)
        if t == 17:
            cw.add_slots(1)
    # everything leaves after 12 quiet months
    for t in range(30, 42):
        cw.begin_month(t)
    assert not cw.window.any() and not cw.total.any() and not cw.sumsq.any() and not cw.orgs.any()


def test_contacts_leave_exactly_twelve_months_later():
    cw = ContactWindow(3, 10)
    cw.begin_month(0)
    cw.add(2, np.array([4]), 3)
    for t in range(1, 12):
        cw.begin_month(t)
        assert cw.window[2, 4] == 3 and cw.total[4] == 3 and cw.sumsq[4] == 9 and cw.orgs[4] == 1
    cw.begin_month(12)
    assert cw.window[2, 4] == 0 and cw.total[4] == 0 and cw.orgs[4] == 0


def test_forgotten_people_are_not_removed_twice():
    """A person whose history was cleared (a death, then a newborn in the row) keeps the newborn's contacts
    when the old contacts would have left the window."""
    cw = ContactWindow(2, 3)
    cw.begin_month(0)
    cw.add(1, np.array([0, 1]), 2)
    cw.begin_month(1)
    dead = np.array([True, False, False])
    cw.forget(dead)
    cw.add(1, np.array([0]), 1)          # the newborn in row 0
    for t in range(2, 13):
        cw.begin_month(t)
    assert cw.window[1, 0] == 1 and cw.window[1, 1] == 0
    _assert_consistent(cw)
    cw.begin_month(13)                   # the newborn's contact, recorded after the death, leaves too
    assert not cw.window.any()
    _assert_consistent(cw)


def test_forget_one_slot_keeps_the_others():
    cw = ContactWindow(3, 2)
    cw.begin_month(0)
    cw.add(0, np.array([0, 1]), 2)
    cw.add(2, np.array([0]), 1)
    cw.forget(practice=np.array([True, False]))
    assert cw.window[0, 0] == 0 and cw.window[2, 0] == 1 and cw.window[0, 1] == 2
    _assert_consistent(cw)


@pytest.mark.skipif(kernel() is None, reason="numba not installed")
def test_compiled_and_numpy_updates_agree_on_a_model_run():
    """A model run with the compiled window update and one with the numpy update give identical windows and
    metrics (through a year change, with deaths, moves and growth)."""
    runs = []
    for use_kernel in (True, False):
        m = ContractingModel("icp_full", rng=4, population_scale=0.02)
        m.pop.contacts.use_kernel = use_kernel
        m.run(14)
        runs.append(m)
    a, b = runs
    assert np.array_equal(a.pop.window, b.pop.window)
    assert np.array_equal(a.pop.contacts.sumsq, b.pop.contacts.sumsq)
    assert a.metrics == b.metrics
    _assert_consistent(a.pop.contacts)


def test_counts_past_a_byte_widen_the_window_and_stay_exact(mode):
    """Counts are stored in a byte until one would pass 255; then the window widens and nothing is clipped,
    in the middle of a group too."""
    cw = ContactWindow(3, 4, use_kernel=mode)
    assert cw.window.dtype == np.uint8
    for t in range(12):
        cw.begin_month(t)
        cw.add(np.array([1, 2, 1]), np.array([0, 1, 3]), np.array([20, 3, 25], np.uint8))
        cw.add(1, np.array([0]), 2)
    assert cw.window.dtype == np.uint16
    assert cw.window[1, 0] == 12 * 22 and cw.window[1, 3] == 12 * 25 and cw.window[2, 1] == 36
    _assert_consistent(cw)
    cw.grow(3)
    cw.add_slots(1)
    assert cw.window.dtype == np.uint16 and cw.window.shape == (4, 7)
    for t in range(12, 24):
        cw.begin_month(t)
    assert not cw.window.any() and not cw.total.any()


def test_updates_apply_the_same_in_any_order_and_by_any_blocks(monkeypatch):
    """Queued groups applied by blocks of people (rows in no particular order within some groups, a count
    passing a byte in the middle of a block) leave the same window and sums as group by group with numpy."""
    if kernel() is None:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(5)
    windows = []
    for block in (None, 1, 5, 64):
        if block is not None:
            monkeypatch.setattr(continuity, "BLOCKED_FROM", 0)
            monkeypatch.setattr(continuity, "BLOCK", block)
        cw = ContactWindow(4, 50, use_kernel=block is not None)
        g = np.random.default_rng(5)
        for t in range(30):
            cw.begin_month(t)
            for _ in range(5):
                rows = np.flatnonzero(g.random(cw.n) < 0.5)
                if g.random() < 0.3:
                    g.shuffle(rows)                       # not ascending
                k = g.integers(0, 3, len(rows)).astype(np.uint8)
                if t >= 24:
                    k[len(k) // 2:] = 120                 # past a byte within the window, mid-group
                cw.add(g.integers(0, 4, len(rows)).astype(np.int16), rows, k)
            if t % 10 == 9:
                cw.forget(g.random(cw.n) < 0.1, practice=g.random(cw.n) < 0.1)
        _assert_consistent(cw)
        windows.append((cw.window.astype(np.int64), cw.total.copy(), cw.sumsq.copy(), cw.orgs.copy()))
    assert windows[0][0].max() > 255
    for w in windows[1:]:
        for a, b in zip(windows[0], w):
            assert np.array_equal(a, b)


def test_more_groups_than_one_blocked_call_takes(monkeypatch):
    """A month with more groups than one blocked call takes (continuity.GROUPS) is applied in several
    calls, with the same result."""
    if kernel() is None:
        pytest.skip("numba not installed")
    monkeypatch.setattr(continuity, "BLOCKED_FROM", 0)
    monkeypatch.setattr(continuity, "BLOCK", 16)
    out = []
    for use_kernel in (True, False):
        g = np.random.default_rng(9)
        cw = ContactWindow(6, 200, use_kernel=use_kernel)
        for t in range(14):
            cw.begin_month(t)
            for _ in range(continuity.GROUPS + 7):
                rows = np.flatnonzero(g.random(cw.n) < 0.2)
                cw.add(int(g.integers(0, 6)), rows, g.integers(0, 3, len(rows)).astype(np.uint8))
            _assert_consistent(cw)
        out.append(cw.window.copy())
    assert np.array_equal(out[0], out[1]) and out[0].any()
