"""Registered people as arrays, one row per person (as Starsim does): state, yearly population change,
monthly demand and the rolling 12-month contact history that continuity metrics need.

Rows are never removed: a death is replaced by a new registration in the same row; people who move
away leave their row vacant (`present` False: no demand, not on any list), new registrations fill vacant
rows before growth appends rows; all identically under every arrangement, so replicate r is paired across
arrangements (common random numbers). Demand counts come from comparing the same uniforms with each
arrangement's own rates.
"""
from __future__ import annotations

import numpy as np

from .continuity import ContactWindow
from .counter_rng import spread, uniform
from .jit import enabled as _kernel_enabled
from .jit import jit as _jit

BAND_LOW = np.array([0, 5, 18, 45, 65, 75, 85], dtype=np.float32)
BAND_WIDTH = np.array([5, 13, 27, 20, 10, 10, 15], dtype=np.float32)
BAND_OF_YEAR = (np.searchsorted(BAND_LOW, np.arange(121), side="right") - 1).astype(np.int8)  # band of whole years
DEMAND = ("gp_contacts", "community_contacts", "outpatient", "elective", "emergency", "mental_health", "social_care")
KMAX = {"gp_contacts": 5, "community_contacts": 4, "outpatient": 3, "elective": 2, "emergency": 2,
        "mental_health": 3, "social_care": 4}


def poisson_cdf(rate: np.ndarray, factor: float, kmax: int, mult: np.ndarray | None = None) -> np.ndarray:
    """C[j] = P(K <= j), j < kmax, for K ~ Poisson(rate x factor x mult), float64, one column per person.
    Dense yearly levels and sparse refinements both use this, so they agree to the last bit."""
    lam = rate.astype(np.float64) * factor
    if mult is not None:
        lam *= mult
    out = np.empty((kmax, len(lam)))
    p = np.exp(-lam)
    out[0] = p
    for j in range(1, kmax):
        p *= lam
        p /= j
        np.add(out[j - 1], p, out=out[j])
    return out


def cdf_levels(rate: np.ndarray, factor: float, kmax: int) -> np.ndarray:
    """floor(256 C_j), j < kmax, as uint8 (255 where C_j = 1), equal to what `poisson_cdf` gives.

    Computed in float32 (numpy's float32 exp is ~4x faster than float64 here); people with 256 C_j
    within 2e-3 of an integer below 256, where float32 rounding (< 3e-4 here) could change the floor,
    are recomputed with `poisson_cdf` itself, so the levels always agree with the exact refinement.
    Elementwise, so computed chunk by chunk in cache."""
    out = np.empty((kmax, len(rate)), np.uint8)
    for a, b in chunks(len(rate)):
        out[:, a:b] = _cdf_levels(rate[a:b], factor, kmax)
    return out


def _cdf_levels(rate: np.ndarray, factor: float, kmax: int) -> np.ndarray:
    lam = rate.astype(np.float32, copy=False) * np.float32(factor)
    p = np.exp(-lam)
    c = p.copy()
    out = np.empty((kmax, len(lam)), np.uint8)
    near = np.zeros(len(lam), bool)
    x = np.empty_like(c)
    for j in range(kmax):
        if j:
            p *= lam
            p /= np.float32(j)
            c += p
        np.multiply(c, np.float32(256.0), out=x)
        np.minimum(x, np.float32(255.5), out=x)   # at or near 256 (C ~ 1) the level is 255 either way
        lv = x.astype(np.uint8)
        out[j] = lv
        x -= lv                                   # fractional part
        near |= x < np.float32(2e-3)
        near |= x > np.float32(1.0 - 2e-3)
    fix = np.flatnonzero(near)
    if len(fix):
        exact = poisson_cdf(rate[fix], factor, kmax)
        exact *= 256.0
        np.minimum(exact, 255.0, out=exact)       # C = 1 (a zero rate) never counts: U < 1
        out[:, fix] = exact.astype(np.uint8)
    return out


def poisson_levels(byte: np.ndarray, levels: np.ndarray, vkey: np.uint32, rate: np.ndarray, factor: float,
                   scratch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts K = #{j : U > C_j} (inverse CDF), returned sparsely as (people with any, counts).

    Each person's uniform is U = (B + V) / 256: B is a byte of this month's dense hash and V a fresh
    uniform drawn only where needed. `levels` holds floor(256 C_j) per person (cached yearly): where B
    differs from every level the count follows from bytes alone; only people with B equal to a level (about
    kmax / 256 of them) draw V and compare exactly. The counts are monotone in the rate given U, so two
    arrangements with the same draws differ only where their rates differ (common random numbers).
    `scratch`: three bool arrays like `byte` to work in (none of them is returned)."""
    kmax = levels.shape[0]
    kb, amb, t = scratch if scratch is not None else (None, None, None)
    k = np.greater(byte, levels[0], out=kb).view(np.uint8)
    amb = np.equal(byte, levels[0], out=amb)
    for j in range(1, kmax):
        t = np.greater(byte, levels[j], out=t)
        k += t
        amb |= np.equal(byte, levels[j], out=t)
    a = np.flatnonzero(amb)
    if len(a):
        k[a] = _exact(byte[a], a, vkey, rate, factor, kmax)
    idx = np.flatnonzero(np.greater(k, 0, out=amb))   # (nonzero on a bool mask is ~5x faster than on uint8)
    return idx, k[idx]


def poisson_screened(byte: np.ndarray, lo: np.ndarray, kmax: int, vkey: np.uint32, rate: np.ndarray,
                     factor: float, lam_at=None) -> tuple[np.ndarray, np.ndarray]:
    """The same counts for rates that change month to month (rate x factor x `lam_at(idx)`): candidates are
    people with B >= lo, where lo = floor(256 q) for a lower bound q on their P(no event); since U > P(no
    event) needs B >= floor(256 P(no event)) >= lo, every person with an event is a candidate, and the
    multiplier, the exponential and the CDF run on candidates only."""
    cand = np.flatnonzero(byte >= lo)
    return refine_screened(cand, byte[cand], vkey, rate, factor, kmax, lam_at)


def refine_screened(cand: np.ndarray, byte: np.ndarray, vkey: np.uint32, rate: np.ndarray, factor: float,
                    kmax: int, lam_at=None) -> tuple[np.ndarray, np.ndarray]:
    """The exact counts of screened candidates `cand` (ascending rows, their bytes `byte`), kept where > 0."""
    mult = lam_at(cand) if lam_at is not None else None
    k = _exact(byte, cand, vkey, rate, factor, kmax, mult)
    hit = k > 0
    return cand[hit], k[hit]


AMBIGUOUS = np.uint8(0x80)     # in a levels code (dense_draws): the byte equals one of the person's levels


def refine_levels(rows: np.ndarray, byte: np.ndarray, code: np.ndarray, vkey: np.uint32, rate: np.ndarray,
                  factor: float, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """poisson_levels from a compiled scan's output (dense_draws): people whose byte is above a level or
    equals one (`code`: the count from bytes, AMBIGUOUS set where it equals one), ascending; the ambiguous ones
    draw exactly. The same (people with any, counts) as poisson_levels."""
    k = code & ~AMBIGUOUS
    a = np.flatnonzero(code >= AMBIGUOUS)
    if len(a):
        k[a] = _exact(byte[a], rows[a], vkey, rate, factor, kmax)
    keep = k > 0
    return rows[keep], k[keep]


def _exact(byte: np.ndarray, rows: np.ndarray, vkey: np.uint32, rate: np.ndarray, factor: float, kmax: int,
           mult: np.ndarray | None = None) -> np.ndarray:
    """Counts #{j : U > C_j} of people `rows` with U = (B + V) / 256, V their fresh uniform (uint8)."""
    u = (byte + uniform(vkey, rows)) * (1.0 / 256.0)
    return (u > poisson_cdf(rate[rows], factor, kmax, mult)).view(np.uint8).sum(axis=0, dtype=np.uint8)   # no cast


def screen_level(rate: np.ndarray, bound: float) -> np.ndarray:
    """Byte thresholds lo = floor(256 (1 - rate x bound)) for people whose monthly rate is at most
    rate x bound (1 - e^-x <= x, so 1 - rate x bound is below their P(no event)); a small margin absorbs
    float32 rounding."""
    q = rate * np.float32(-256.0 * bound)
    q += np.float32(256.0 - 0.01)
    np.maximum(q, 0.0, out=q)
    return q.astype(np.uint8)


CHUNK = 1 << 16     # people per chunk of a yearly elementwise pass: its temporaries stay in cache


@_jit
def _cell_sums(band, ltc, weights, present):
    sums = np.zeros(63)
    counts = np.zeros(7)
    for i in range(band.shape[0]):
        sums[band[i] * 9 + ltc[i]] += np.float64(weights[i])
        if present[i]:
            counts[band[i]] += 1.0
    return sums, counts


def cell_sums(band: np.ndarray, ltc: np.ndarray, weights: np.ndarray, present: np.ndarray):
    """Sums of `weights` per (band, conditions) cell (63) and people present per band (7), float64: what
    np.bincount gives (it adds in row order, as this loop does), in one compiled pass without the
    full-length index and float64 copies bincount makes (30 ms a year at 1.34 M people)."""
    if _kernel_enabled():
        return _cell_sums(band, ltc, weights, present)
    cell = band.astype(np.intp) * 9 + ltc
    return (np.bincount(cell, weights=weights, minlength=63),
            np.bincount(band, weights=present, minlength=7))


@_jit
def _practice_cell_sums(band, ltc, practice, here, em, n_practices):
    frailty = np.zeros((n_practices, 63))
    emergency = np.zeros((n_practices, 7))
    for i in range(band.shape[0]):
        k, b = practice[i], band[i]
        frailty[k, b * 9 + ltc[i]] += np.float64(here[i])
        emergency[k, b] += np.float64(em[i])
    return frailty, emergency


@_jit
def _follow(ref, base, loss, r):
    for i in range(ref.shape[0]):
        v = ref[i] + ((base[i] - ref[i]) * r - loss[i])
        ref[i] = min(max(v, np.float32(0.0)), np.float32(1.0))


def chunks(n: int, size: int | None = None):
    """[start, end) ranges covering 0..n-1, `size` (CHUNK) at a time."""
    size = size or CHUNK
    return ((a, min(a + size, n)) for a in range(0, n, size))


def dense(n: int, idx: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.zeros(n, np.uint8)
    out[idx] = k
    return out


class Population:
    """Per-person state as numpy arrays."""

    def __init__(self, economy: dict, params: dict, scale: float, rng: np.random.Generator, n_slots: int,
                 place_of_practice: np.ndarray | None = None):
        """`place_of_practice`: each practice's place (people are laid out place by place)."""
        pop = economy["population"]
        total = max(1, int(round(pop["total"]["value"] * scale)))
        self.params = params
        self.n_slots = n_slots
        self.age_share = np.asarray(pop["age_share"]["value"], dtype=float)
        self.ltc_mean = np.asarray(pop["ltc_mean"]["value"], dtype=float)
        lists = np.array([p["list_size"] for p in economy["practices"]["list"]], dtype=float)
        self.list_weights = lists / lists.sum()
        # practices' own age structures (from the five-year age file), else the economy's for all
        own = [pr.get("age_share") for pr in economy["practices"]["list"]]
        self.practice_age = None if all(a is None for a in own) else np.array(
            [a if a is not None else pop["age_share"]["value"] for a in own], dtype=float)
        self.practice_open = np.ones(len(lists), bool)
        self.practice_weights = self.list_weights.copy()  # where new registrations go (open practices)
        self.n_practices = len(lists)
        self.place_of_practice = None if place_of_practice is None or len(set(np.asarray(place_of_practice).tolist())) < 2 \
            else np.asarray(place_of_practice)
        self.age = np.empty(0, np.float32)
        self.band = np.empty(0, np.int8)
        self.ltc = np.empty(0, np.int8)
        self.frailty = np.empty(0, np.float32)
        self.practice = np.empty(0, np.int16)
        self.health = np.empty(0, np.float32)
        self.base_health = np.empty(0, np.float32)
        self.prev_pending = np.empty(0, np.float32)
        self.prev_stock = np.empty(0, np.float32)
        # the status quo's public-health line run as a shadow on the same people (prevention.observed_share):
        # the observed rates contain its effect, so prevention acts relative to it
        self.shadow_pending = np.empty(0, np.float32)
        self.shadow_stock = np.empty(0, np.float32)
        self._effect = np.empty(0, np.float32)         # net prevention effect, updated monthly
        # contact history: the rolling 12-month window and the continuity sums kept up to date
        self.contacts = ContactWindow(n_slots)
        self.registrations = 0                        # bumped whenever anyone's practice changes
        self.year = 0                                 # years simulated (the secular trend's clock)
        self.prev_live = np.empty(0, np.int64)        # rows ever reached by prevention (sorted)
        self.present = np.empty(0, bool)
        self.rows_spread = np.empty(0, np.uint32)     # spread(row) of every row (counter_rng)
        self._append(total, rng)
        self.rate: dict[str, np.ndarray] = {}
        self.levels: dict[str, np.ndarray] = {}         # byte levels of the monthly counts at the base rate

    # ------------------------------------------------------------------ construction and change
    @property
    def n(self) -> int:
        """Rows (people ever registered, vacant rows included): the length of every per-person array."""
        return self.age.shape[0]

    @property
    def size(self) -> int:
        """Registered people now."""
        return self._size

    @property
    def window(self) -> np.ndarray:
        """Contacts per organisation slot over the last 12 months, [slot, person]."""
        return self.contacts.window

    def _new_people(self, k: int, rng: np.random.Generator, band: np.ndarray | None = None):
        if self.practice_age is not None and band is None:
            return self._new_people_by_practice(k, rng)
        if band is None:
            band = rng.choice(7, size=k, p=self.age_share).astype(np.int8)
        age = (BAND_LOW[band] + rng.random(k, dtype=np.float32) * BAND_WIDTH[band]).astype(np.float32)
        ltc = np.minimum(rng.poisson(self.ltc_mean[band]), 8).astype(np.int8)
        sd = self.params["demand"]["frailty_sd"]
        frailty = rng.lognormal(-sd * sd / 2, sd, size=k).astype(np.float32) if sd > 0 else np.ones(k, np.float32)
        practice = self._by_place(rng.choice(self.n_practices, size=k, p=self.practice_weights).astype(np.int16))
        return band, age, ltc, frailty, practice

    def _new_people_by_practice(self, k: int, rng: np.random.Generator):
        """People registered first, then aged by their practice's own age structure."""
        practice = self._by_place(rng.choice(self.n_practices, size=k, p=self.practice_weights).astype(np.int16))
        cum = np.cumsum(self.practice_age, axis=1)
        cum[:, -1] = 1.0 + 1e-9
        u = rng.random(k)
        band = (u[:, None] >= cum[practice]).sum(axis=1).astype(np.int8)
        age = (BAND_LOW[band] + rng.random(k, dtype=np.float32) * BAND_WIDTH[band]).astype(np.float32)
        ltc = np.minimum(rng.poisson(self.ltc_mean[band]), 8).astype(np.int8)
        sd = self.params["demand"]["frailty_sd"]
        frailty = rng.lognormal(-sd * sd / 2, sd, size=k).astype(np.float32) if sd > 0 else np.ones(k, np.float32)
        return band, age, ltc, frailty, practice

    def _by_place(self, practice: np.ndarray) -> np.ndarray:
        """New people's practices in place order (stable; unchanged with one place). People are numbered
        place by place because a month's contacts then land in one quarter of each provider's column of
        the contact window, not spread across all of it (fewer cache lines per contact); who is drawn
        where is the same."""
        if self.place_of_practice is None:
            return practice
        return practice[np.argsort(self.place_of_practice[practice], kind="stable")]

    def _append(self, k: int, rng: np.random.Generator) -> None:
        band, age, ltc, frailty, practice = self._new_people(k, rng)
        base = self._baseline_health(age, ltc)
        cat = np.concatenate
        self.band, self.age, self.ltc = cat([self.band, band]), cat([self.age, age]), cat([self.ltc, ltc])
        self.frailty, self.practice = cat([self.frailty, frailty]), cat([self.practice, practice])
        self.base_health, self.health = cat([self.base_health, base]), cat([self.health, base.copy()])
        z = np.zeros(k, np.float32)
        self.prev_pending, self.prev_stock = cat([self.prev_pending, z]), cat([self.prev_stock, z.copy()])
        self.shadow_pending, self.shadow_stock = cat([self.shadow_pending, z.copy()]), cat([self.shadow_stock, z.copy()])
        self.contacts.grow(k)
        # per-row input of the counter-based draws, for the new rows only (elementwise: the same values)
        self.rows_spread = cat([self.rows_spread, spread(np.arange(self.n - k, self.n))])
        self._effect = cat([self._effect, z.copy()])
        self.present = cat([self.present, np.ones(k, bool)])
        self._size = int(self.present.sum())

    def _fill(self, rows: np.ndarray, rng: np.random.Generator) -> None:
        """New registrations in vacant rows."""
        band, age, ltc, frailty, practice = self._new_people(len(rows), rng)
        self.band[rows], self.age[rows], self.ltc[rows] = band, age, ltc
        self.frailty[rows], self.practice[rows] = frailty, practice
        base = self._baseline_health(age, ltc)
        self.base_health[rows], self.health[rows] = base, base
        self._forget_prevention(rows)
        self.present[rows] = True
        self._size = int(self.present.sum())

    def close_practice(self, k: int) -> None:
        """A closed practice takes no new registrations."""
        self.practice_open[k] = False
        w = self.list_weights * self.practice_open
        self.practice_weights = w / w.sum() if w.sum() > 0 else self.list_weights

    @staticmethod
    def _baseline_health(age: np.ndarray, ltc: np.ndarray) -> np.ndarray:
        out = np.empty(len(age), np.float32)
        for a, b in chunks(len(age)):        # elementwise, chunk by chunk in cache
            out[a:b] = np.clip(0.95 - 0.06 * ltc[a:b] - 0.004 * np.maximum(age[a:b] - 40, 0), 0.15, 1.0)
        return out

    def add_organisation(self, org=None, like=None) -> None:
        """A new organisation (a successor) gets its own column in the contact window."""
        self.add_slots(1)

    def reregister(self, rows: np.ndarray, practices: np.ndarray, forget: bool) -> None:
        """People `rows` register with `practices` (indices); `forget` ends their history with the old one."""
        self.practice[rows] = practices
        self.registrations += 1
        if forget:
            moved = np.zeros(self.n, bool)
            moved[rows] = True
            self.contacts.forget(practice=moved)

    def list_sizes(self) -> np.ndarray:
        """Registered people per practice."""
        if self._size < self.n:
            return np.bincount(self.practice, weights=self.present, minlength=self.n_practices).astype(float)
        return np.bincount(self.practice, minlength=self.n_practices).astype(float)

    def add_slots(self, k: int) -> None:
        """More organisations to count contacts with (a successor provider after a failure)."""
        self.contacts.add_slots(k)
        self.n_slots += k

    def year_change(self, rng: np.random.Generator, growth: float, extra_ageing: float) -> None:
        """Ageing, deaths replaced by registrations in the same row, condition onset, practice moves, growth."""
        p = self.params["population"]
        n = self.n
        self.year += 1
        self.age += 1.0
        u = np.empty(n)                                # one buffer for the year's uniforms (the same stream)
        if extra_ageing > 0:  # demographic shock: a share of people move up a band
            up = rng.random(n, out=u) < extra_ageing
            self.age[up] = np.maximum(self.age[up], BAND_LOW[np.minimum(self.band[up] + 1, 6)])
        else:
            rng.random(n, out=u)
        for a, b in chunks(n):                         # in place, chunk by chunk in cache
            np.take(BAND_OF_YEAR, np.minimum(self.age[a:b], 120).astype(np.intp), out=self.band[a:b])
        # condition onset: the rise in mean conditions between bands, spread over the band's years
        onset = rng.random(n, out=u) < self._onset_chance()[self.band]
        self.ltc = np.minimum(self.ltc + onset, 8).astype(np.int8)
        # deaths -> newborn registrations at the same practice
        mort = np.asarray(p["mortality"], dtype=float)
        dead = ((rng.random(n, out=u) < mort[self.band]) | (self.age > 105)) & self.present
        k = int(dead.sum())
        if k:
            self.age[dead] = 0.0
            self.band[dead] = 0
            self.ltc[dead] = 0
            sd = self.params["demand"]["frailty_sd"]
            self.frailty[dead] = rng.lognormal(-sd * sd / 2, sd, size=k) if sd > 0 else 1.0
            self._forget_prevention(dead)
        # registration moves between practices
        self.registrations += 1
        move = (rng.random(n, out=u) < p["churn"]) & self.present
        self.practice[move] = rng.choice(self.n_practices, size=int(move.sum()), p=self.practice_weights)
        self.contacts.forget(dead, practice=move)      # histories end; a move ends the practice's
        self.base_health = self._baseline_health(self.age, self.ltc)
        self.health = np.minimum(self.health, 1.0)
        self.health[dead] = self.base_health[dead]
        self.fresh = dead
        change = int(round(self._size * growth))
        if change < 0:                                 # people move away: their rows fall vacant
            left = rng.choice(np.flatnonzero(self.present), size=min(-change, self._size - 1), replace=False)
            gone = np.zeros(n, bool)
            gone[left] = True
            self.present[gone] = False
            self._forget_prevention(gone)
            self.contacts.forget(gone)
            self._size = int(self.present.sum())
        elif change > 0:                               # new registrations fill vacant rows, then new rows
            vacant = np.flatnonzero(~self.present)[:change]
            if len(vacant):
                self._fill(vacant, rng)
                self.fresh = self.fresh.copy()
                self.fresh[vacant] = True
            if change > len(vacant):
                self._append(change - len(vacant), rng)

    # ------------------------------------------------------------------ demand
    def compute_rates(self) -> None:
        """Yearly per-person rates by service: the age-band rate times condition and frailty
        multipliers, renormalised within each band so band averages stay calibrated.

        A person's rate is coef[band, conditions] x frailty, so one weighted count of frailty per
        (band, conditions) cell gives every service's band means without a pass per service."""
        d = self.params["demand"]
        vacant = self._size < self.n
        here = self.frailty * self.present if vacant else self.frailty
        frailty_sum, counts = cell_sums(self.band, self.ltc, here, self.present)
        frailty_sum = frailty_sum.reshape(7, 9)
        self.coef: dict[str, np.ndarray] = {}
        # the national rise in emergency admissions beyond age and conditions, compounding yearly
        self.trend = {"emergency": (1.0 + d["emergency_secular_growth"]) ** self.year}
        for key in DEMAND:
            table = np.float32(d["ltc_multiplier"][key]) ** np.arange(9, dtype=np.float32)
            sums = (frailty_sum * table).sum(axis=1)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
            coef = (np.asarray(d[key], np.float64)[:, None] * table[None, :] / mean[:, None]).astype(np.float32)
            self.coef[key] = coef
        # rate = coef[cell] x frailty (x trend), chunk by chunk: every service's rates from one pass of the
        # cells in cache, not a full-length gather and product per service (the same numbers)
        flat = {key: (self.coef[key].ravel(), self.trend.get(key, 1.0)) for key in DEMAND}
        for key in DEMAND:
            self.rate[key] = np.empty(self.n, np.float32)
        for a, b in chunks(self.n):
            c, h = self.band[a:b].astype(np.intp) * 9 + self.ltc[a:b], here[a:b]
            for key, (coef, trend) in flat.items():
                out = self.rate[key][a:b]
                np.multiply(coef[c], h, out=out)
                if trend != 1.0:
                    out *= np.float32(trend)
        self.levels = {}                                # byte levels, computed when first needed this year
        self.slow_lo = {}                               # screening levels at other factors, this year
        self._update_reference()

    def get_levels(self, key: str) -> np.ndarray:
        """Byte levels floor(256 P(K <= j)) of this year's monthly counts at the base rate (poisson_levels)."""
        lv = self.levels.get(key)
        if lv is None:
            lv = self.levels[key] = cdf_levels(self.rate[key], 1.0 / 12.0, KMAX[key])
        return lv

    def get_screen(self, key: str, bound: float) -> np.ndarray:
        """Screening levels for monthly rates up to rate x bound (poisson_screened), cached within the year.
        The level only decides who is examined exactly, never the counts, so callers pass a loose bound
        that stays the same from month to month."""
        cached = self.slow_lo.get(key)
        if cached is None or cached[0] != bound:
            cached = self.slow_lo[key] = (bound, screen_level(self.rate[key], bound * (1.0 + 1e-6)))
        return cached[1]

    def _onset_chance(self) -> np.ndarray:
        """Chance of a new condition in a year, by age band: the rise in mean conditions between bands,
        spread over the band's years."""
        return np.clip(np.diff(np.append(self.ltc_mean, self.ltc_mean[-1] + 0.3)) / BAND_WIDTH, 0, 1)

    #: share of electives after an outpatient attendance in the same month that stay with the same
    #: provider (no hand-off); set by the model from the status quo's routing shares
    same_provider_elective = 0.0

    def _monthly_losses(self, r: dict, band: np.ndarray) -> np.ndarray:
        """Expected monthly health losses at yearly rates `r` in the status quo, counted as care delivery
        counts them: each admission (at most KMAX a month) and, a month, one hand-off for an outpatient
        referral, for an elective not following an outpatient attendance at the same provider, for a
        referral to mental health, and for each discharge to community or social care."""
        h = self.params["health"]
        tr = self.params["transitions"]
        none = {k: np.exp(-r[k] / np.float32(12.0)) for k in ("emergency", "outpatient", "elective", "mental_health")}
        lam_e = r["emergency"] / np.float32(12.0)
        any_e = 1.0 - none["emergency"]
        admissions = any_e + (1.0 - none["emergency"] * (1.0 + lam_e)) if KMAX["emergency"] >= 2 else any_e
        any_op = 1.0 - none["outpatient"]
        discharge = (np.asarray(tr["discharge_to_community"], np.float32)
                     + np.asarray(tr["discharge_to_social_care"], np.float32))[band]
        handoffs = (any_op + (1.0 - none["elective"]) * (1.0 - any_op * np.float32(self.same_provider_elective))
                    + np.float32(tr["gp_to_mental_health_referral"]) * (1.0 - none["mental_health"])
                    + any_e * discharge)
        return (np.float32(h["admission_loss"]) * admissions + np.float32(h["handoff_loss"]) * handoffs).astype(np.float32)

    def _update_reference(self) -> None:
        """Yearly, after the rates: each person's reference health and the expected monthly losses it
        follows. A new person (and everyone at the start) starts at the equilibrium `_reference_health`;
        everyone else's reference carries on from where it is, as their expected path (`follow_reference`),
        so a person who has just gained a condition, whose rate jumps while health takes months to follow,
        has a reference that lags as their health does."""
        keys = ("emergency", "outpatient", "elective", "mental_health")
        self.exp_loss = np.empty(self.n, np.float32)
        for a, b in chunks(self.n):
            self.exp_loss[a:b] = self._monthly_losses({k: self.rate[k][a:b] for k in keys}, self.band[a:b])
        eq = self._reference_health()
        old = getattr(self, "ref_health", None)
        if old is not None and len(old):
            keep = np.zeros(self.n, bool)
            keep[:len(old)] = True
            fresh = getattr(self, "fresh", None)
            if fresh is not None:
                keep[:len(fresh)] &= ~fresh
            eq[keep] = old[keep[:len(old)]]
        self.ref_health = eq

    def follow_reference(self) -> None:
        """Monthly: the reference moves as health would in the status quo without its chance events,
        closing recovery_rate of its gap to the baseline and losing the expected losses. So the emergency
        risk responds to each person's health against their own expected path, and the risk-weighted
        health multiplier stays at one in the status quo as the population ages and gains conditions."""
        r = np.float32(self.params["health"]["recovery_rate"])
        ref = self.ref_health
        if _kernel_enabled():                          # one pass (the same float32 steps as below)
            _follow(ref, self.base_health, self.exp_loss, r)
            return
        step = np.subtract(self.base_health, ref)
        step *= r
        step -= self.exp_loss
        ref += step
        np.clip(ref, 0.0, 1.0, out=ref)

    def _reference_health(self) -> np.ndarray:
        """Each person's equilibrium health under the status quo, which emergency risk responds to (so the
        model starts in equilibrium and only the mechanisms move it).

        Health closes a share r of its gap to the baseline each month and loses L (expected losses from
        admissions and hand-offs) a month, so with a fixed baseline it settles at baseline - L / r. But
        people age and gain conditions: their baseline falls and their losses rise, so the static level
        falls by D a month, and health, following with a lag, settles D / r above it (the mean of the
        yearly sawtooth is the same). D is this year's static level less next year's expected one (a
        year older, the band's chance of a new condition, the secular rise in emergencies), over 12."""
        rec = max(self.params["health"]["recovery_rate"], 1e-6)
        onset = self._onset_chance().astype(np.float32)
        here = self.frailty * self.present if self._size < self.n else self.frailty
        growth = np.float32(1.0 + self.params["demand"]["emergency_secular_growth"])
        keys = ("emergency", "outpatient", "elective", "mental_health")
        out = np.empty(self.n, np.float32)
        for a, b in chunks(self.n):          # elementwise, chunk by chunk in cache
            static = np.clip(self.base_health[a:b] - self.exp_loss[a:b] / rec, 0.0, 1.0)   # (_update_reference)
            # next year's expected self
            age = self.age[a:b] + np.float32(1.0)
            band = BAND_OF_YEAR[np.minimum(age, 120).astype(np.intp)]
            ltc = self.ltc[a:b].astype(np.intp)
            p_new = onset[self.band[a:b]]
            cell = band * 9 + ltc                     # flat [band, conditions] (2-D fancy indexing is slower)
            cell_up = cell + (ltc < 8)                # ... with one condition more (at most 8)
            nxt = {}
            for k in keys:
                c = self.coef[k].ravel()
                lo, hi = c[cell], c[cell_up]
                nxt[k] = (lo + p_new * (hi - lo)) * here[a:b] * np.float32(self.trend.get(k, 1.0))
            nxt["emergency"] *= growth
            base1 = self._baseline_health(age, self.ltc[a:b] + p_new)
            static1 = np.clip(base1 - self._monthly_losses(nxt, band) / rec, 0.0, 1.0)
            out[a:b] = np.clip(static + (static - static1) / (12.0 * rec), 0.0, 1.0)
        return out

    def health_multiplier(self) -> np.ndarray:
        """Emergency risk rises as health falls below its reference, and falls above it."""
        g = np.float32(self.params["demand"]["health_risk_gradient"])
        return np.clip(1.0 + g * (self.ref_health - self.health), 0.5, 3.0)

    def cell_counts(self, by_practice: bool = False) -> np.ndarray:
        """Registered people per (age band, conditions) cell, flattened to 63 (per practice: [practice, 63])."""
        size = 63 * self.n_practices if by_practice else 63
        vacant = self._size < self.n
        out = np.zeros(size, np.int64)
        for a, b in chunks(self.n):          # counts are integers: summing chunk by chunk is exact
            key = self.band[a:b].astype(np.intp) * 9 + self.ltc[a:b]
            if by_practice:
                key += self.practice[a:b].astype(np.intp) * 63
            out += np.bincount(key[self.present[a:b]] if vacant else key, minlength=size)
        out = out.astype(float)
        return out.reshape(self.n_practices, 63) if by_practice else out

    def practice_cell_sums(self, em: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per practice: the frailty of its registered people summed by (band, conditions) cell, [practice,
        63], and `em` (a per-person value) summed by band, [practice, 7], float64, added in row order.

        A person's rate of a service is coef[cell] x frailty (compute_rates), so any group's expected
        activity is sum_cell coef[cell] x these sums: one pass gives every service's totals by practice
        and by place (a practice is in one place), where summing each rate per place is a pass per
        service. One compiled loop, or np.bincount (the same order, so the same sums)."""
        here = self.frailty * self.present if self._size < self.n else self.frailty
        if _kernel_enabled():
            return _practice_cell_sums(self.band, self.ltc, self.practice, here, em, self.n_practices)
        key = self.practice.astype(np.intp) * 63 + self.band.astype(np.intp) * 9 + self.ltc
        frailty = np.bincount(key, weights=here, minlength=63 * self.n_practices).reshape(self.n_practices, 63)
        key = self.practice.astype(np.intp) * 7 + self.band
        emergency = np.bincount(key, weights=em, minlength=7 * self.n_practices).reshape(self.n_practices, 7)
        return frailty, emergency

    def service_cost_tables(self, unit_cost: dict, digital_share: float, transitions: dict) -> dict[str, np.ndarray]:
        """Expected yearly cost of one person in each (band, conditions) cell, by service, from this year's
        rates at unit cost (individual frailty left out: it averages to one and no formula sees it).
        Discharge-led community and social care follow emergency admissions. The expected secular rise in
        emergency rates is included: it has run for decades, so the national settlement funds it and the
        yearly values of allocations and population payments carry it (as contract values carry expected
        growth); what no one expected (a surge) stays with whoever bears activity risk."""
        c = {k: v.astype(np.float64).ravel() * self.trend.get(k, 1.0) for k, v in self.coef.items()}
        band = np.repeat(np.arange(7), 9)
        em = c["emergency"]
        comm = em * np.asarray(transitions["discharge_to_community"])[band] * transitions["community_contacts_per_discharge"]
        sc = em * np.asarray(transitions["discharge_to_social_care"])[band] * transitions["social_care_weeks_per_discharge"]
        return {
            "gp_f2f": c["gp_contacts"] * (1 - digital_share) * unit_cost["gp_f2f"],
            "gp_digital": c["gp_contacts"] * digital_share * unit_cost["gp_digital"],
            "community": (c["community_contacts"] + comm) * unit_cost["community"],
            "outpatient": c["outpatient"] * unit_cost["outpatient"],
            "elective": c["elective"] * unit_cost["elective"],
            "emergency": em * unit_cost["emergency"],
            "mental_health": c["mental_health"] * unit_cost["mental_health"],
            "social_care": (c["social_care"] + sc) * unit_cost["social_care"],
        }

    def mean_health(self) -> float:
        """Mean health of the people registered now."""
        if self._size < self.n:
            return float(self.health[self.present].mean())
        return float(self.health.mean())

    def risk_score(self) -> np.ndarray:
        """Predicted yearly emergency-admission risk (what population health analytics targets)."""
        return self.rate["emergency"] * self.health_multiplier()

    def prevention_effect(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Net relative reduction of emergency risk from prevention against the status quo's public-health
        line, whose effect the observed rates contain (updated monthly; negative where the arrangement does
        less than that line would; zero for people neither line has reached)."""
        return self._effect if idx is None else self._effect[idx]

    def _forget_prevention(self, rows: np.ndarray) -> None:
        """A death, a departure or a new registration: the row carries no prevention stock on either line."""
        for a in (self.prev_pending, self.prev_stock, self.shadow_pending, self.shadow_stock, self._effect):
            a[rows] = 0.0

    def invest(self, reached: np.ndarray, amount: float, shadow: bool = False) -> None:
        """Prevention spending on the people reached, shared equally (on the shadow line: what the status
        quo's public-health line would spend on them); they join the tracked set."""
        if len(reached) == 0:
            return
        pending = self.shadow_pending if shadow else self.prev_pending
        pending[reached] += np.float32(amount / len(reached))
        if getattr(self, "_last_reached", None) is not reached:
            live = np.zeros(self.n, bool)          # the sorted union, without a sort
            live[self.prev_live] = True
            live[reached] = True
            self.prev_live = np.flatnonzero(live).astype(np.int64, copy=False)
            self._last_reached = reached

    def mature_prevention(self) -> None:
        """Investment becomes effective with a mean lag (exponential delay) and fades, on both lines. The
        net effect is the relative change in emergency risk against the shadow, (e - e_s) / (1 - e_s): the
        risk is (1 - e) / (1 - e_s) times the observed one, so the status quo's own line nets to zero
        and an arrangement that stops it loses its effect (a negative net effect)."""
        pv = self.params["prevention"]
        live = self.prev_live
        if len(live):
            keep = np.float32((1 - pv["decay_per_year"]) ** (1 / 12))
            lag = np.float32(1.0 / max(pv["lag_months"], 1))
            half = np.float32(pv["half_saturation"])
            effect = []
            for pending, stock in ((self.prev_pending, self.prev_stock), (self.shadow_pending, self.shadow_stock)):
                pend = pending[live]
                move = pend * lag
                pending[live] = pend - move
                st = stock[live] * keep + move
                stock[live] = st
                effect.append(np.float32(pv["effect_max"]) * (np.float32(1.0) - np.exp(-st / half)))
            e, e_s = effect
            self._effect[live] = (e - e_s) / (np.float32(1.0) - e_s)
