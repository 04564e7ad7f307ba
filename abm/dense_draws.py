"""The month's dense demand draws in one compiled pass over everyone.

Each person's monthly counts of the seven demand services start from the bytes of two 32-bit hashes of
their row (patients.poisson_levels and poisson_screened): a byte above all of the person's CDF levels
is a count from bytes alone, a byte equal to a level (or, for rates that move month to month, above a
screening level) marks the person for an exact draw. With numpy every hash step, byte and comparison
is a pass over the whole population, about sixty a month (a third of a run's time, and more per person
as the economy outgrows the cache). Here one loop takes 2,048 people at a time, whose hashes, bytes and
codes stay in L1, and writes out only the people who may have an event (about a third of people for GP
contacts, a few per cent for the rest).

Same bits (counter_rng.bits), same comparisons, rows ascending: what goes on to the exact refinement is
exactly what the numpy path gives, so the counts are identical (ABM_KERNEL=numpy runs the numpy path;
tests compare the two).
"""
from __future__ import annotations

import numpy as np

from . import counter_rng as crng
from .jit import enabled, jit
from .patients import AMBIGUOUS, DEMAND

LEVELS, SCREEN = 0, 1          # how a service's byte is read: against CDF levels, or a screening level
_CANDIDATE = np.uint8(0x40)    # in the scan only: a screened person kept (cleared in the output code)
_KEEP_CODE = np.uint8(~_CANDIDATE)  # the output code: the candidate mark cleared
CHUNK = 2048                   # people scanned together: their hashes, bytes and codes stay in L1


@jit
def _scan(spread, hkeys, thr, mode, out_idx, out_byte, out_code, found):
    """For each person: the bytes of the two hashes (key hkeys[k >> 2], byte k & 3 for service k), read
    against thr[k] (levels [kmax, n] or a screening level [1, n]); people who may have an event are
    appended to out_*[k] (row, byte, code = count from bytes | AMBIGUOUS). `found[k]` counts them, also
    beyond the buffers' length (nothing is written there: the caller grows the buffers and scans again).

    A chunk of people at a time, each step a loop over contiguous slices that the compiler vectorises
    (an index like t[j, a + i] would not be); the appends first list the kept positions without a
    branch (a third of people are kept for GP contacts, at random: a branch per person mispredicts),
    then gather them (2-4 times faster than either a branch or a branch-free write of every field)."""
    n = spread.shape[0]
    n_keys = mode.shape[0]
    h0 = np.empty(CHUNK, np.uint32)
    h1 = np.empty(CHUNK, np.uint32)
    byte = np.empty(CHUNK, np.uint8)
    code = np.zeros(CHUNK, np.uint8)
    pos = np.empty(CHUNK, np.int32)
    k0, k1 = np.uint64(hkeys[0]), np.uint64(hkeys[1])
    for k in range(n_keys):
        found[k] = 0
    for a in range(0, n, CHUNK):
        e = min(a + CHUNK, n)
        m = e - a
        sp = spread[a:e]
        for i in range(m):             # both hashes of each person
            s = np.uint64(sp[i])
            h0[i] = crng.bits_at(s, k0)
            h1[i] = crng.bits_at(s, k1)
        for k in range(n_keys):
            hk = h0 if k < 4 else h1
            shift = np.uint32(8 * (k & 3))
            for i in range(m):
                byte[i] = np.uint8((hk[i] >> shift) & np.uint32(255))
            t = thr[k]
            if mode[k] == LEVELS:
                code[:m] = 0
                for j in range(t.shape[0]):
                    tj = t[j, a:e]
                    for i in range(m):
                        x, y = byte[i], tj[i]
                        code[i] += np.uint8(1) if x > y else np.uint8(0)
                        code[i] |= AMBIGUOUS if x == y else np.uint8(0)
            else:
                t0 = t[0, a:e]
                for i in range(m):
                    code[i] = _CANDIDATE if byte[i] >= t0[i] else np.uint8(0)
            oi, ob, oc = out_idx[k], out_byte[k], out_code[k]
            f = found[k]
            kept = 0
            for i in range(m):                      # positions of the people kept, branch-free
                pos[kept] = i
                kept += code[i] != 0
            if f + kept <= oi.shape[0]:
                for q in range(kept):
                    i = pos[q]
                    oi[f + q] = a + i
                    ob[f + q] = byte[i]
                    oc[f + q] = code[i] & _KEEP_CODE
            f += kept
            found[k] = f


class DenseScan:
    """The compiled scan with its output buffers, kept from month to month (grown when a month finds more
    people than they hold; the scan is then repeated, which changes nothing)."""

    def __init__(self) -> None:
        self._bufs: tuple | None = None

    def scan(self, spread: np.ndarray, hkeys: np.ndarray, thr: list[np.ndarray], mode: list[int]) -> list:
        """Per service k: (rows, bytes, codes) of the people who may have an event, ascending by row;
        views into the buffers, valid until the next scan."""
        n_keys = len(mode)
        if len(hkeys) != 2 or n_keys > 8:
            raise ValueError("the scan reads up to 8 services from two hashes")
        thr = tuple(np.ascontiguousarray(a, np.uint8).reshape(-1, len(spread)) for a in thr)
        mode = np.asarray(mode, np.int8)
        hkeys = np.asarray(hkeys, np.uint32)
        found = np.zeros(n_keys, np.int64)
        bufs = self._bufs
        if bufs is None or len(bufs[0]) != n_keys:
            bufs = self._grow([max(1024, len(spread) // 16)] * n_keys)
        while True:
            _scan(spread, hkeys, thr, mode, *bufs, found)
            caps = [len(a) for a in bufs[0]]
            if all(f <= c for f, c in zip(found, caps)):
                break
            bufs = self._grow([max(c, int(f * 1.25) + 1024) for f, c in zip(found, caps)])
        return [(bufs[0][k][:f], bufs[1][k][:f], bufs[2][k][:f]) for k, f in enumerate(found)]

    def _grow(self, caps: list[int]) -> tuple:
        self._bufs = (tuple(np.empty(c, np.intp) for c in caps), tuple(np.empty(c, np.uint8) for c in caps),
                      tuple(np.empty(c, np.uint8) for c in caps))
        return self._bufs


def kernel() -> bool:
    """Whether the compiled scan is used (numba present and ABM_KERNEL is not "numpy")."""
    return enabled()


def warm() -> None:
    """Load the compiled scan from numba's cache before a run (or compile it once)."""
    if not kernel():
        return
    n = len(DEMAND)                        # the compiled version is per number of services
    DenseScan().scan(np.arange(4, dtype=np.uint32), np.arange(2, dtype=np.uint32),
                     [np.zeros((1 + k % 2, 4), np.uint8) for k in range(n)], [k % 2 for k in range(n)])
