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

Why deferred: groups are queued and applied together when the window or its sums are next read. Above
about a million people (where the sums and the slots no longer fit in cache) they are applied block of
people by block: every group's entries for those people at once, while their cells are in cache (the rows
of a group ascend, so each group resumes where it stopped). The result does not depend on the order:
counts end the same, the running sums telescope (N and the sum of squares add differences; organisations
count 0 -> positive steps minus the reverse), and no count goes below zero (a removal only takes what was
added a year before).

Counts are bytes (one person's contacts with one organisation in 12 months: a few dozen at most), which
halves the memory each month's updates touch; a count that would pass 255 widens the window to 16 bits
before it is written, so nothing is ever clipped.
"""
from __future__ import annotations

import numpy as np

from .jit import enabled
from .jit import jit as _jit
BLOCKED_FROM = 1 << 20   # people from which groups are applied block by block
BLOCK = 8192             # people per block: their sums and slots (~50 bytes a person) stay in L2
GROUPS = 32              # groups per blocked call (tuples of this length: one compiled, cached version)


@_jit
def _apply_range(window, total, sumsq, orgs, slots, rows, counts, sign, seq, reset_at, moved_at, start, stop,
                 top):
    """Add (sign +1) or remove (sign -1) one group's entries start..stop-1; `slots` and `counts` of length 1
    apply to every entry. On removal, the group's entries (sequence number `seq`) are skipped for rows whose
    history restarted after it (all slots) or whose practice history did (slot 0). Returns -1, or the first
    entry whose count would pass `top` (the window's largest value), unwritten.

    Compiled with numba: each entry reads and writes four arrays at a data-dependent place and entries may
    repeat a (slot, person), a scatter numpy can only do group by group (ContactWindow._apply_numpy)."""
    one_slot = slots.shape[0] == 1
    one_count = counts.shape[0] == 1
    for e in range(start, stop):
        r = rows[e]
        s = slots[0] if one_slot else slots[e]
        if sign < 0 and (reset_at[r] > seq or (s == 0 and moved_at[r] > seq)):
            continue
        c = np.int32(counts[0] if one_count else counts[e]) * sign
        old = np.int32(window[s, r])
        new = old + c
        if new > top:
            return e
        window[s, r] = new
        total[r] += c
        sumsq[r] += new * new - old * old
        orgs[r] += np.int16(new > 0) - np.int16(old > 0)   # (branch-free: a branch mispredicts here)
    return -1


@_jit
def _apply_groups(window, total, sumsq, orgs, slots_l, rows_l, counts_l, signs, seqs, reset_at, moved_at, cur,
                  end, block, top):
    # (the groups come as tuples of GROUPS arrays, padded with empty ones: numba's typed lists would be
    # compiled again in every process, about a second)
    """_apply_range for several groups, block of rows by block: in the block ending at `end`, each group's
    entries from cur[g] (its next entry) while their rows are below `end`, then the next block. A group whose
    rows do not ascend is finished in the last block. Returns -1 when all are applied, or, if a count would
    pass `top`, the end of the block it stopped in (cur[g] at the entry; call again to resume)."""
    n = total.shape[0]
    while True:
        for g in range(len(rows_l)):
            rows = rows_l[g]
            lo = cur[g]
            hi = lo
            if end >= n:
                hi = rows.shape[0]
            else:
                while hi < rows.shape[0] and rows[hi] < end:
                    hi += 1
            if hi > lo:
                stop = _apply_range(window, total, sumsq, orgs, slots_l[g], rows, counts_l[g], signs[g], seqs[g],
                                    reset_at, moved_at, lo, hi, top)
                if stop >= 0:
                    cur[g] = stop
                    return end
                cur[g] = hi
        if end >= n:
            return -1
        end = min(end + block, n)


def kernel():
    """The compiled window updates (_apply_range, _apply_groups), or None where numba is missing or
    ABM_KERNEL=numpy."""
    if not enabled():
        return None
    return _apply_range, _apply_groups


_EMPTY = {t: np.zeros(0, t) for t in (np.int16, np.intp, np.uint8, np.int32)}   # padding groups


def warm() -> None:
    """Load both compiled updates from numba's cache (the blocked one takes ~0.4 s to load), so a worker
    that forks after this never pays it inside a run."""
    global BLOCKED_FROM
    if kernel() is None:
        return
    cw = ContactWindow(2, 4)
    for blocked_from in (0, 1 << 62):
        saved, BLOCKED_FROM = BLOCKED_FROM, blocked_from
        try:
            cw.add(1, np.arange(2), 1)
            cw.flush()
        finally:
            BLOCKED_FROM = saved


def _flushed(name: str, doc: str) -> property:
    """A read of the window or a running sum, after the queued updates are applied."""
    def get(self):
        self.flush()
        return getattr(self, name)
    return property(get, doc=doc)


def _typed(a: np.ndarray, dtype) -> np.ndarray:
    """`a` as a writeable contiguous array of `dtype` (one type per tuple), copied only if needed (counts
    that do not fit a byte make flush pass all counts as int32)."""
    a = a.astype(dtype, copy=False)
    return a if a.flags.writeable and a.flags.c_contiguous else np.array(a, dtype)


class ContactWindow:
    """Per person: counts per organisation slot over the last 12 months, and their running sums. Updates are
    queued and applied when the window or its sums are read (`flush`)."""

    def __init__(self, n_slots: int, n: int = 0, use_kernel: bool = True):
        self.use_kernel = use_kernel
        # organisation-major: [slot, person], a view of the first n columns of a buffer with room to grow
        self._buf = np.zeros((n_slots, n), np.uint8)
        self._window = self._buf
        self._total = np.zeros(n, np.int32)                  # N: contacts in the window
        self._sumsq = np.zeros(n, np.int32)                  # sum over slots of count^2
        self._orgs = np.zeros(n, np.int16)                   # slots with any contact
        self.reset_at = np.zeros(n, np.int32)                # first group number of the row's history
        self.moved_at = np.zeros(n, np.int32)                # ... and of its practice (slot 0) history
        self.months: list[list[tuple]] = [[] for _ in range(12)]
        self.month = 0                                       # the month being recorded
        self.seq = 0                                         # groups recorded so far
        self._pending: list[tuple] = []                      # (seq, slots, rows, counts, sign) not yet applied

    # ------------------------------------------------------------------ reading applies what is queued
    window = _flushed("_window", "Counts [slot, person].")
    total = _flushed("_total", "N: contacts in the window, per person.")
    sumsq = _flushed("_sumsq", "Sum over slots of count^2, per person.")
    orgs = _flushed("_orgs", "Slots with any contact, per person.")

    @property
    def n(self) -> int:
        return self._window.shape[1]

    @property
    def n_slots(self) -> int:
        return self._window.shape[0]

    # ------------------------------------------------------------------ size
    def grow(self, k: int) -> None:
        """k more people (rows appended), with empty histories. The window's buffer grows by 10% at a
        time (its unused columns stay zero), so yearly growth does not copy [slots x people] every year."""
        self.flush()
        cat = np.concatenate
        n = self.n + k
        if n > self._buf.shape[1]:
            # room for 10% more: untouched zero pages cost no memory (np.zeros maps them lazily)
            buf = np.zeros((self.n_slots, int(n * 1.1) + 1024), self._buf.dtype)
            buf[:, :self.n] = self._window
            self._buf = buf
        self._window = self._buf[:, :n]
        self._total = cat([self._total, np.zeros(k, np.int32)])
        self._sumsq = cat([self._sumsq, np.zeros(k, np.int32)])
        self._orgs = cat([self._orgs, np.zeros(k, np.int16)])
        self.reset_at = cat([self.reset_at, np.zeros(k, np.int32)])
        self.moved_at = cat([self.moved_at, np.zeros(k, np.int32)])

    def add_slots(self, k: int) -> None:
        """k more organisations (successor providers)."""
        self.flush()
        self._buf = np.concatenate([self._buf, np.zeros((k, self._buf.shape[1]), self._buf.dtype)], axis=0)
        self._window = self._buf[:, :self.n]

    def _widen(self) -> None:
        """Counts of 16 bits from now on (a count was about to pass 255)."""
        if self._buf.dtype == np.uint16:          # pragma: no cover - 65,535 contacts in 12 months
            raise OverflowError("more than 65,535 contacts with one organisation in 12 months")
        self._buf = self._buf.astype(np.uint16)
        self._window = self._buf[:, :self.n]

    # ------------------------------------------------------------------ the month
    def begin_month(self, month: int) -> None:
        """Queue the removal of the contacts of 12 months ago, leaving their month free for this month's."""
        self.month = month
        for seq, slots, rows, counts in self.months[month % 12]:
            self._pending.append((seq, slots, rows, counts, -1))
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
        self._pending.append((self.seq, slots, rows, counts, +1))
        self.months[self.month % 12].append((self.seq, slots, rows, counts))

    def flush(self) -> None:
        """Apply the queued updates: compiled, group by group, or from BLOCKED_FROM people all groups at once
        by blocks of people; else group by group with numpy."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        run = kernel() if self.use_kernel else None
        if run is None:
            for seq, slots, rows, counts, sign in pending:
                self._apply_numpy(slots, rows, counts, sign, seq)
            return
        apply_range, apply_groups = run
        if self.n < BLOCKED_FROM:       # group by group (in cache already)
            for seq, slots, rows, counts, sign in pending:
                start = 0
                while True:
                    start = apply_range(self._buf, self._total, self._sumsq, self._orgs, slots, rows, counts,
                                        np.int32(sign), np.int32(seq), self.reset_at, self.moved_at, start,
                                        len(rows), np.iinfo(self._buf.dtype).max)
                    if start < 0:
                        break
                    self._widen()
            return
        wide = any(c.dtype != np.uint8 and (len(c) > 1 or not 0 <= int(c[0]) <= 255) for *_, c, _ in pending)
        for i in range(0, len(pending), GROUPS):
            part = pending[i:i + GROUPS]
            pad = GROUPS - len(part)
            slots_t = tuple(_typed(x[1], np.int16) for x in part) + (_EMPTY[np.int16],) * pad
            rows_t = tuple(_typed(x[2], np.intp) for x in part) + (_EMPTY[np.intp],) * pad
            ct = np.int32 if wide else np.uint8
            counts_t = tuple(_typed(x[3], ct) for x in part) + (_EMPTY[ct],) * pad
            signs = np.array([x[4] for x in part] + [1] * pad, np.int32)
            seqs = np.array([x[0] for x in part] + [0] * pad, np.int32)
            cur = np.zeros(GROUPS, np.int64)
            end = min(BLOCK, self.n)
            while True:
                end = apply_groups(self._buf, self._total, self._sumsq, self._orgs, slots_t, rows_t, counts_t,
                                   signs, seqs, self.reset_at, self.moved_at, cur, end, BLOCK,
                                   np.iinfo(self._buf.dtype).max)
                if end < 0:
                    break
                self._widen()

    def _apply_numpy(self, slots, rows, counts, sign: int, seq: int) -> None:
        """One group's update vectorised (rows unique within a group)."""
        counts = counts.astype(np.int32)
        if sign < 0:
            live = self.reset_at[rows] <= seq
            live &= ~((slots == 0) & (self.moved_at[rows] > seq))
            if not live.all():
                rows = rows[live]
                slots = slots[live] if len(slots) > 1 else slots
                counts = counts[live] if len(counts) > 1 else counts
        w = self._window
        if len(slots) == 1:
            old = w[slots[0]].take(rows).astype(np.int32)   # contiguous row of the window
        else:
            old = w[slots, rows].astype(np.int32)
        new = old + counts if sign > 0 else old - counts
        if len(new) and new.max() > np.iinfo(w.dtype).max:
            self._widen()
            w = self._window
        if len(slots) == 1:
            w[slots[0]][rows] = new
        else:
            w[slots, rows] = new
        self._total[rows] += counts if sign > 0 else -counts
        self._sumsq[rows] += new * new - old * old
        if sign > 0:
            self._orgs[rows] += (old == 0) & (new > 0)
        else:
            self._orgs[rows] -= (old > 0) & (new == 0)

    # ------------------------------------------------------------------ people leaving or moving
    def forget(self, people: np.ndarray | None = None, practice: np.ndarray | None = None) -> None:
        """End histories (boolean masks over rows): all of `people`'s (a death: the row is reused), and the
        registered-practice history (slot 0) of `practice` (a move). Contacts recorded so far are skipped
        when they leave the window; later ones count."""
        self.flush()
        now = self.seq + 1
        if practice is not None:       # the practice column leaves the sums (dead people's rows go whole)
            rows = np.flatnonzero(practice if people is None else practice & ~people)
            old = self._window[0].take(rows).astype(np.int32)
            self._total[rows] -= old
            self._sumsq[rows] -= old * old
            self._orgs[rows] -= (old > 0).astype(self._orgs.dtype)
            self._window[0, rows] = 0
            self.moved_at[practice] = now
        if people is not None:
            rows = np.flatnonzero(people)
            self._window[:, rows] = 0
            self._total[rows] = 0
            self._sumsq[rows] = 0
            self._orgs[rows] = 0
            self.reset_at[people] = now
