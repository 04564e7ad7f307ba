"""The rolling 12-month contact window per person and organisation, with the sums continuity of care needs
(contacts N, sum of squared counts per organisation, distinct organisations) kept up to date incrementally.

Why incremental: the Bice-Boxerman index needs, per person, sum_i n_i^2 over organisations i in the last 12
months. Recomputing it from the whole [organisation, person] window every month costs a dozen passes over
everyone; updating it only where contacts were added this month or leave the window (12 months on) touches
the people with contacts. Each month's contacts are kept as sparse groups (organisation slot, person rows,
counts) so they can be removed exactly when they leave the window.

A group's person rows are unique (one count per person per group), so each group is applied with plain
gathers and scatters; groups are applied one after another, so two groups may touch the same person and
organisation.
"""
from __future__ import annotations

import os

import numpy as np

_KERNEL = None


def _apply_loop(window, total, sumsq, orgs, slots, rows, counts, sign):
    """Add (sign +1) or remove (-1) contacts entry by entry. Compiled with numba: each entry reads and
    writes four arrays at a data-dependent place, and entries may repeat a (slot, person), the scatter
    pattern numpy can only do group by group (see ContactWindow._apply_numpy)."""
    for e in range(rows.shape[0]):
        r = rows[e]
        s = slots[e]
        c = np.int32(counts[e]) * sign
        old = np.int32(window[s, r])
        new = old + c
        window[s, r] = new
        total[r] += c
        sumsq[r] += new * new - old * old
        if old == 0 and new > 0:
            orgs[r] += 1
        elif old > 0 and new == 0:
            orgs[r] -= 1


def kernel():
    """The compiled window update, or None where numba is missing or ABM_KERNEL=numpy."""
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = False
        if os.environ.get("ABM_KERNEL", "numba") != "numpy":
            try:
                import numba
            except ImportError:        # pragma: no cover - numba is a dependency
                pass
            else:
                _KERNEL = numba.njit(cache=True, nogil=True)(_apply_loop)
    return _KERNEL or None


class ContactWindow:
    """Per person: counts per organisation slot over the last 12 months, and their running sums."""

    def __init__(self, n_slots: int, n: int = 0, use_kernel: bool = True):
        self.use_kernel = use_kernel
        self.window = np.zeros((n_slots, n), np.uint16)     # organisation-major: [slot, person]
        self.total = np.zeros(n, np.int32)                   # N: contacts in the window
        self.sumsq = np.zeros(n, np.int32)                   # sum over slots of count^2
        self.orgs = np.zeros(n, np.int16)                    # slots with any contact
        self.months: list[list[tuple]] = [[] for _ in range(12)]
        self.current = 0

    @property
    def n(self) -> int:
        return self.window.shape[1]

    @property
    def n_slots(self) -> int:
        return self.window.shape[0]

    # ------------------------------------------------------------------ size
    def grow(self, k: int) -> None:
        """k more people (rows appended), with empty histories."""
        self.window = np.concatenate([self.window, np.zeros((self.n_slots, k), np.uint16)], axis=1)
        self.total = np.concatenate([self.total, np.zeros(k, np.int32)])
        self.sumsq = np.concatenate([self.sumsq, np.zeros(k, np.int32)])
        self.orgs = np.concatenate([self.orgs, np.zeros(k, np.int16)])

    def add_slots(self, k: int) -> None:
        """k more organisations (successor providers)."""
        self.window = np.concatenate([self.window, np.zeros((k, self.n), np.uint16)], axis=0)

    # ------------------------------------------------------------------ the month
    def begin_month(self, month: int) -> None:
        """Remove the contacts of 12 months ago, leaving their month free for this month's."""
        self.current = month % 12
        for slot, rows, k in self.months[self.current]:
            self._apply(slot, rows, k, -1)
        self.months[self.current] = []

    def add(self, slot, rows: np.ndarray, k) -> None:
        """Record contacts this month: `rows` unique; `slot` and `k` scalars or per-row arrays."""
        if np.ndim(k):
            keep = k > 0
            if not keep.all():
                rows, k = rows[keep], k[keep]
                if np.ndim(slot):
                    slot = slot[keep]
        if len(rows) == 0:
            return
        if np.ndim(slot):
            slot = np.asarray(slot, np.intp)
        k = np.asarray(k, np.int32) if np.ndim(k) else int(k)
        if not np.ndim(k) and k <= 0:
            return
        self._apply(slot, rows, k, +1)
        self.months[self.current].append((slot, rows, k))

    def _apply(self, slot, rows, k, sign: int) -> None:
        run = kernel() if self.use_kernel else None
        if run is None:
            return self._apply_numpy(slot, rows, k, sign)
        m = len(rows)
        slots = slot.astype(np.int64, copy=False) if np.ndim(slot) else np.full(m, slot, np.int64)
        counts = k.astype(np.int32, copy=False) if np.ndim(k) else np.full(m, k, np.int32)
        run(self.window, self.total, self.sumsq, self.orgs, slots, rows.astype(np.int64, copy=False),
                    counts, np.int32(sign))

    def _apply_numpy(self, slot, rows, k, sign: int) -> None:
        """The same update vectorised over one group (rows unique within a group)."""
        w = self.window
        if np.ndim(slot):
            old = w[slot, rows].astype(np.int32)
        else:
            old = w[slot].take(rows).astype(np.int32)     # contiguous row of the window
        new = old + k if sign > 0 else old - k
        if np.ndim(slot):
            w[slot, rows] = new
        else:
            w[slot][rows] = new
        self.total[rows] += k if sign > 0 else -k
        self.sumsq[rows] += new * new - old * old
        if sign > 0:
            self.orgs[rows] += (old == 0) & (new > 0)
        else:
            self.orgs[rows] -= (old > 0) & (new == 0)

    # ------------------------------------------------------------------ people leaving or moving
    def forget(self, people: np.ndarray, slot: int | None = None, practice_moves: np.ndarray | None = None) -> None:
        """Clear the history of `people` (a boolean mask over rows): every organisation, or only `slot`.
        `practice_moves` (a mask) also clears slot 0, the registered practice, for people who moved.
        Their past contacts are dropped from every stored month too, in one pass over the months."""
        whole = people if slot is None else np.zeros_like(people)
        one = {} if slot is None else {slot: people}
        if practice_moves is not None:
            one[0] = practice_moves | one[0] if 0 in one else practice_moves
        if not whole.any() and not any(v.any() for v in one.values()):
            return
        for mth in self.months:
            for j, (s, rows, k) in enumerate(mth):
                drop = whole[rows]
                for sl, mask in one.items():
                    drop |= mask[rows] & (s == sl)
                if drop.any():
                    keep = ~drop
                    mth[j] = (s[keep] if np.ndim(s) else s, rows[keep], k[keep] if np.ndim(k) else k)
        self.window[:, whole] = 0
        touched = whole.copy()
        for sl, mask in one.items():
            self.window[sl, mask] = 0
            touched |= mask
        self._recount(np.flatnonzero(touched))

    def _recount(self, rows: np.ndarray) -> None:
        w = self.window[:, rows].astype(np.int32)
        self.total[rows] = w.sum(axis=0)
        self.sumsq[rows] = (w * w).sum(axis=0)
        self.orgs[rows] = (w > 0).sum(axis=0)
