"""The rolling 12-month contact window per person and organisation, with the sums continuity of care needs
(contacts N, sum of squared counts per organisation, distinct organisations) kept up to date incrementally.

Why incremental: the Bice-Boxerman index needs, per person, sum_i n_i^2 over organisations i in the last 12
months. Recomputing it from the whole [organisation, person] window every month costs a dozen passes over
everyone; updating it only where contacts were added this month or leave the window (12 months on) touches
only the people with contacts. Each month's contacts are kept as sparse groups (organisation slot, person
rows, counts) so they can be removed exactly when they leave the window.

People whose history ends (a death, the row reused by a newborn; a move, which ends the history with the
old practice) are not searched for in the stored months: every recorded group carries a sequence number,
each row records the first sequence number of its current history (and of its practice history), and
older contacts are skipped when they leave.
"""
from __future__ import annotations

import os

import numpy as np

_KERNEL = None


def _apply_loop(window, total, sumsq, orgs, slots, rows, counts, sign, seq, reset_at, moved_at):
    """Add (sign +1) or remove (sign -1) one group of contacts, entry by entry; `slots` and `counts` of
    length 1 apply to every entry. On removal, the group's entries (sequence number `seq`) are skipped for
    rows whose history restarted after it (all slots) or whose practice history did (slot 0).

    Compiled with numba: each entry reads and writes four arrays at a data-dependent place and entries may
    repeat a (slot, person), a scatter numpy can only do group by group (ContactWindow._apply_numpy)."""
    one_slot = slots.shape[0] == 1
    one_count = counts.shape[0] == 1
    for e in range(rows.shape[0]):
        r = rows[e]
        s = slots[0] if one_slot else slots[e]
        if sign < 0 and (reset_at[r] > seq or (s == 0 and moved_at[r] > seq)):
            continue
        c = np.int32(counts[0] if one_count else counts[e]) * sign
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
        # organisation-major: [slot, person], a view of the first n columns of a buffer with room to grow
        self._buf = np.zeros((n_slots, n), np.uint16)
        self.window = self._buf
        self.total = np.zeros(n, np.int32)                   # N: contacts in the window
        self.sumsq = np.zeros(n, np.int32)                   # sum over slots of count^2
        self.orgs = np.zeros(n, np.int16)                    # slots with any contact
        self.reset_at = np.zeros(n, np.int32)                # first group number of the row's history
        self.moved_at = np.zeros(n, np.int32)                # ... and of its practice (slot 0) history
        self.months: list[list[tuple]] = [[] for _ in range(12)]
        self.month = 0                                       # the month being recorded
        self.seq = 0                                         # groups recorded so far

    @property
    def n(self) -> int:
        return self.window.shape[1]

    @property
    def n_slots(self) -> int:
        return self.window.shape[0]

    # ------------------------------------------------------------------ size
    def grow(self, k: int) -> None:
        """k more people (rows appended), with empty histories. The window's buffer grows by 10% at a
        time (its unused columns stay zero), so yearly growth does not copy [slots x people] every year."""
        cat = np.concatenate
        n = self.n + k
        if n > self._buf.shape[1]:
            # room for 10% more: untouched zero pages cost no memory (np.zeros maps them lazily)
            buf = np.zeros((self.n_slots, int(n * 1.1) + 1024), np.uint16)
            buf[:, :self.n] = self.window
            self._buf = buf
        self.window = self._buf[:, :n]
        self.total = cat([self.total, np.zeros(k, np.int32)])
        self.sumsq = cat([self.sumsq, np.zeros(k, np.int32)])
        self.orgs = cat([self.orgs, np.zeros(k, np.int16)])
        self.reset_at = cat([self.reset_at, np.zeros(k, np.int32)])
        self.moved_at = cat([self.moved_at, np.zeros(k, np.int32)])

    def add_slots(self, k: int) -> None:
        """k more organisations (successor providers)."""
        self._buf = np.concatenate([self._buf, np.zeros((k, self._buf.shape[1]), np.uint16)], axis=0)
        self.window = self._buf[:, :self.n]

    # ------------------------------------------------------------------ the month
    def begin_month(self, month: int) -> None:
        """Remove the contacts of 12 months ago, leaving their month free for this month's."""
        self.month = month
        old = self.months[month % 12]
        for seq, slots, rows, counts in old:
            self._apply(slots, rows, counts, -1, seq)
        self.months[month % 12] = []

    def add(self, slot, rows: np.ndarray, k, sparse: bool = False) -> None:
        """Record contacts this month: `rows` unique within the call; `slot` and `k` scalars or per-row
        arrays (zero counts are no-ops). Different calls may repeat people and organisations. With
        `sparse`, zero counts are dropped first (worth it when most are zero)."""
        if sparse and np.ndim(k):
            keep = np.flatnonzero(k != 0)                # (on a bool mask: ~4x faster than on uint8)
            rows, k = rows[keep], k[keep]
            if np.ndim(slot):
                slot = slot[keep]
        if not np.ndim(k) and k <= 0 or len(rows) == 0:
            return
        slots = np.asarray(slot).reshape(-1)
        counts = np.asarray(k).reshape(-1)
        self.seq += 1
        self._apply(slots, rows, counts, +1, self.seq)
        self.months[self.month % 12].append((self.seq, slots, rows, counts))

    def _apply(self, slots, rows, counts, sign: int, seq: int) -> None:
        run = kernel() if self.use_kernel else None
        if run is None:
            self._apply_numpy(slots, rows, counts, sign, seq)
        else:
            run(self._buf, self.total, self.sumsq, self.orgs, slots, rows, counts, np.int32(sign),
                np.int32(seq), self.reset_at, self.moved_at)

    def _apply_numpy(self, slots, rows, counts, sign: int, seq: int) -> None:
        """The same update vectorised over one group (rows unique within a group)."""
        counts = counts.astype(np.int32)
        if sign < 0:
            live = self.reset_at[rows] <= seq
            live &= ~((slots == 0) & (self.moved_at[rows] > seq))
            if not live.all():
                rows = rows[live]
                slots = slots[live] if len(slots) > 1 else slots
                counts = counts[live] if len(counts) > 1 else counts
        w = self.window
        if len(slots) == 1:
            old = w[slots[0]].take(rows).astype(np.int32)   # contiguous row of the window
        else:
            old = w[slots, rows].astype(np.int32)
        new = old + counts if sign > 0 else old - counts
        if len(slots) == 1:
            w[slots[0]][rows] = new
        else:
            w[slots, rows] = new
        self.total[rows] += counts if sign > 0 else -counts
        self.sumsq[rows] += new * new - old * old
        if sign > 0:
            self.orgs[rows] += (old == 0) & (new > 0)
        else:
            self.orgs[rows] -= (old > 0) & (new == 0)

    # ------------------------------------------------------------------ people leaving or moving
    def forget(self, people: np.ndarray | None = None, practice: np.ndarray | None = None) -> None:
        """End histories (boolean masks over rows): all of `people`'s (a death: the row is reused), and the
        registered-practice history (slot 0) of `practice` (a move). Contacts recorded so far are skipped
        when they leave the window; later ones count."""
        now = self.seq + 1
        touched = np.zeros(self.n, bool)
        if people is not None:
            self.window[:, np.flatnonzero(people)] = 0
            self.reset_at[people] = now
            touched |= people
        if practice is not None:
            self.window[0, practice] = 0
            self.moved_at[practice] = now
            touched |= practice
        self._recount(np.flatnonzero(touched))

    def _recount(self, rows: np.ndarray) -> None:
        w = self.window[:, rows].astype(np.int32)
        self.total[rows] = w.sum(axis=0)
        self.sumsq[rows] = (w * w).sum(axis=0)
        self.orgs[rows] = (w > 0).sum(axis=0)
