"""Registered people as arrays, one row per person (as Starsim does): state, yearly population change,
monthly demand and the rolling 12-month contact history that continuity metrics need.

Rows are never removed: a death is replaced by a new registration in the same row, and growth appends
rows, identically under every arrangement, so replicate r is paired across arrangements (common random
numbers). Demand counts come from comparing the same uniforms with each arrangement's own rates.
"""
from __future__ import annotations

import numpy as np

BAND_LOW = np.array([0, 5, 18, 45, 65, 75, 85], dtype=np.float32)
BAND_WIDTH = np.array([5, 13, 27, 20, 10, 10, 15], dtype=np.float32)
DEMAND = ("gp_contacts", "community_contacts", "outpatient", "elective", "emergency", "mental_health", "social_care")
KMAX = {"gp_contacts": 5, "community_contacts": 4, "outpatient": 3, "elective": 2, "emergency": 2,
        "mental_health": 3, "social_care": 4}


def poisson_coupled(lam: np.ndarray | None, u: np.ndarray, kmax: int, p0: np.ndarray | None = None,
                    rate: np.ndarray | None = None, factor: float = 1.0,
                    lam_at=None, bound: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts by inverse CDF from given uniforms, returned sparsely as (people with any event,
    their counts). Monotone in the rate, so the same uniforms under two arrangements give counts that
    differ only where the rates differ.

    Rates can be given three ways: a full array `lam`; cached no-event probabilities `p0` (with
    `rate` x `factor` for the tail); or `rate` x `factor` x `lam_at(idx)` where the person-level
    multiplier `lam_at` is at most `bound`. In the last two cases only candidates with
    u > 1 - rate x factor x bound (a superset of events, since 1 - exp(-x) <= x) are examined, so the
    exponential and the multiplier are computed for a few per cent of people."""
    if p0 is not None:
        idx = np.flatnonzero(u > p0)
        ls = rate[idx] * np.float32(factor)
        p = p0[idx]
    else:
        if lam is None:
            cand = np.flatnonzero(u > np.float32(1.0 - 1e-6) - rate * np.float32(factor * bound))
            ls = rate[cand] * np.float32(factor)
            if lam_at is not None:
                ls = ls * lam_at(cand)
        else:
            cand = np.flatnonzero(u > np.float32(1.0 - 1e-6) - lam)
            ls = lam[cand]
        p = np.exp(-ls)
        hit = u[cand] > p
        idx, ls, p = cand[hit], ls[hit], p[hit]
    k = np.ones(len(idx), np.uint8)
    if kmax > 1 and len(idx):
        us = u[idx]
        cdf = p.copy()
        for j in range(1, kmax):
            p = p * ls / np.float32(j)
            cdf += p
            k += us > cdf
    return idx, k


def dense(n: int, idx: np.ndarray, k: np.ndarray) -> np.ndarray:
    out = np.zeros(n, np.uint8)
    out[idx] = k
    return out


class Population:
    """Per-person state as numpy arrays."""

    def __init__(self, economy: dict, params: dict, scale: float, rng: np.random.Generator, n_slots: int):
        pop = economy["population"]
        total = max(1, int(round(pop["total"]["value"] * scale)))
        self.params = params
        self.n_slots = n_slots
        self.age_share = np.asarray(pop["age_share"]["value"], dtype=float)
        self.ltc_mean = np.asarray(pop["ltc_mean"]["value"], dtype=float)
        lists = np.array([p["list_size"] for p in economy["practices"]["list"]], dtype=float)
        self.practice_weights = lists / lists.sum()
        self.n_practices = len(lists)
        self.age = np.empty(0, np.float32)
        self.band = np.empty(0, np.int8)
        self.ltc = np.empty(0, np.int8)
        self.frailty = np.empty(0, np.float32)
        self.practice = np.empty(0, np.int16)
        self.health = np.empty(0, np.float32)
        self.base_health = np.empty(0, np.float32)
        self.prev_pending = np.empty(0, np.float32)
        self.prev_stock = np.empty(0, np.float32)
        # contact history, organisation-major ([slot, person]) so per-person sums run over contiguous rows
        self.ring = np.zeros((12, n_slots, 0), np.uint8)
        self.window = np.zeros((n_slots, 0), np.uint16)
        self._append(total, rng)
        self.rate: dict[str, np.ndarray] = {}
        self.p0: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ construction and change
    @property
    def n(self) -> int:
        return self.age.shape[0]

    def _new_people(self, k: int, rng: np.random.Generator, band: np.ndarray | None = None):
        if band is None:
            band = rng.choice(7, size=k, p=self.age_share).astype(np.int8)
        age = (BAND_LOW[band] + rng.random(k, dtype=np.float32) * BAND_WIDTH[band]).astype(np.float32)
        ltc = np.minimum(rng.poisson(self.ltc_mean[band]), 8).astype(np.int8)
        sd = self.params["demand"]["frailty_sd"]
        frailty = rng.lognormal(-sd * sd / 2, sd, size=k).astype(np.float32) if sd > 0 else np.ones(k, np.float32)
        practice = rng.choice(self.n_practices, size=k, p=self.practice_weights).astype(np.int16)
        return band, age, ltc, frailty, practice

    def _append(self, k: int, rng: np.random.Generator) -> None:
        band, age, ltc, frailty, practice = self._new_people(k, rng)
        base = self._baseline_health(age, ltc)
        cat = np.concatenate
        self.band, self.age, self.ltc = cat([self.band, band]), cat([self.age, age]), cat([self.ltc, ltc])
        self.frailty, self.practice = cat([self.frailty, frailty]), cat([self.practice, practice])
        self.base_health, self.health = cat([self.base_health, base]), cat([self.health, base.copy()])
        z = np.zeros(k, np.float32)
        self.prev_pending, self.prev_stock = cat([self.prev_pending, z]), cat([self.prev_stock, z.copy()])
        self.ring = cat([self.ring, np.zeros((12, self.n_slots, k), np.uint8)], axis=2)
        self.window = cat([self.window, np.zeros((self.n_slots, k), np.uint16)], axis=1)

    @staticmethod
    def _baseline_health(age: np.ndarray, ltc: np.ndarray) -> np.ndarray:
        return np.clip(0.95 - 0.06 * ltc - 0.004 * np.maximum(age - 40, 0), 0.15, 1.0).astype(np.float32)

    def add_slots(self, k: int) -> None:
        """More organisations to count contacts with (a successor provider after a failure)."""
        self.ring = np.concatenate([self.ring, np.zeros((12, k, self.n), np.uint8)], axis=1)
        self.window = np.concatenate([self.window, np.zeros((k, self.n), np.uint16)], axis=0)
        self.n_slots += k

    def year_change(self, rng: np.random.Generator, growth: float, extra_ageing: float) -> None:
        """Ageing, deaths replaced by registrations in the same row, condition onset, practice moves, growth."""
        p = self.params["population"]
        n = self.n
        self.age += 1.0
        if extra_ageing > 0:  # demographic shock: a share of people move up a band
            up = rng.random(n) < extra_ageing
            self.age[up] = np.maximum(self.age[up], BAND_LOW[np.minimum(self.band[up] + 1, 6)])
        else:
            rng.random(n)
        self.band = (np.searchsorted(BAND_LOW, self.age, side="right") - 1).astype(np.int8)
        # condition onset: the rise in mean conditions between bands, spread over the band's years
        step = np.diff(np.append(self.ltc_mean, self.ltc_mean[-1] + 0.3)) / BAND_WIDTH
        onset = rng.random(n) < np.clip(step[self.band], 0, 1)
        self.ltc = np.minimum(self.ltc + onset, 8).astype(np.int8)
        # deaths -> newborn registrations at the same practice
        mort = np.asarray(p["mortality"], dtype=float)
        dead = (rng.random(n) < mort[self.band]) | (self.age > 105)
        k = int(dead.sum())
        if k:
            self.age[dead] = 0.0
            self.band[dead] = 0
            self.ltc[dead] = 0
            sd = self.params["demand"]["frailty_sd"]
            self.frailty[dead] = rng.lognormal(-sd * sd / 2, sd, size=k) if sd > 0 else 1.0
            self.prev_pending[dead] = 0.0
            self.prev_stock[dead] = 0.0
            self.ring[:, :, dead] = 0
            self.window[:, dead] = 0
        # registration moves between practices
        move = rng.random(n) < p["churn"]
        self.practice[move] = rng.choice(self.n_practices, size=int(move.sum()), p=self.practice_weights)
        self.ring[:, 0, move] = 0
        self.window[0, move] = 0
        self.base_health = self._baseline_health(self.age, self.ltc)
        self.health = np.minimum(self.health, 1.0)
        self.health[dead] = self.base_health[dead]
        self.fresh = dead
        add = int(round(n * growth))
        if add > 0:
            self._append(add, rng)

    # ------------------------------------------------------------------ demand
    def compute_rates(self) -> None:
        """Yearly per-person rates by service: the age-band rate times condition and frailty
        multipliers, renormalised within each band so band averages stay calibrated."""
        d = self.params["demand"]
        for key in DEMAND:
            base = np.asarray(d[key], dtype=np.float32)
            table = np.float32(d["ltc_multiplier"][key]) ** np.arange(9, dtype=np.float32)
            mult = table[self.ltc] * self.frailty
            sums = np.bincount(self.band, weights=mult, minlength=7)
            counts = np.bincount(self.band, minlength=7)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0).astype(np.float32)
            self.rate[key] = (base[self.band] * mult / mean[self.band]).astype(np.float32)
            self.p0[key] = np.exp(-self.rate[key] / np.float32(12.0))   # P(no event) in a month, cached yearly
        self.ref_health = self._reference_health()

    def _reference_health(self) -> np.ndarray:
        """Each person's equilibrium health under the status quo: baseline minus expected losses over
        the recovery rate. Emergency risk responds to health relative to this, so the model starts in
        equilibrium and only the mechanisms move it."""
        h = self.params["health"]
        monthly = (h["admission_loss"] * self.rate["emergency"]
                   + h["handoff_loss"] * (self.rate["outpatient"] + self.rate["elective"]
                             + self.params["transitions"]["gp_to_mental_health_referral"] * self.rate["mental_health"])) / 12.0
        return np.clip(self.base_health - monthly / max(h["recovery_rate"], 1e-6), 0.0, 1.0).astype(np.float32)
    def health_multiplier(self) -> np.ndarray:
        """Emergency risk rises as health falls below its reference, and falls above it."""
        g = np.float32(self.params["demand"]["health_risk_gradient"])
        return np.clip(1.0 + g * (self.ref_health - self.health), 0.5, 3.0)

    def risk_score(self) -> np.ndarray:
        """Predicted yearly emergency-admission risk (what population health analytics targets)."""
        return self.rate["emergency"] * self.health_multiplier()

    def prevention_effect(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Relative reduction of emergency risk from prevention (cached each month)."""
        if getattr(self, "_effect", None) is None or self._effect.shape[0] != self.n:
            self._update_effect()
        return self._effect if idx is None else self._effect[idx]

    def _update_effect(self) -> None:
        pv = self.params["prevention"]
        eff = np.zeros(self.n, np.float32)
        live = np.flatnonzero(self.prev_stock)
        eff[live] = pv["effect_max"] * (1.0 - np.exp(-self.prev_stock[live] / np.float32(pv["half_saturation"])))
        self._effect = eff

    def mature_prevention(self) -> None:
        """Investment becomes effective with a mean lag (exponential delay) and fades."""
        pv = self.params["prevention"]
        live = np.flatnonzero(self.prev_pending + self.prev_stock)
        if len(live):
            move = self.prev_pending[live] * np.float32(1.0 / max(pv["lag_months"], 1))
            self.prev_pending[live] -= move
            self.prev_stock[live] = self.prev_stock[live] * np.float32((1 - pv["decay_per_year"]) ** (1 / 12)) + move
        self._update_effect()

    def begin_month(self, month: int) -> np.ndarray:
        """Drop the month leaving the 12-month window and hand back its cleared slot to fill."""
        slot = self.ring[month % 12]
        self.window -= slot
        slot.fill(0)
        return slot

    def end_month(self, month: int) -> None:
        """Add the month just filled to the 12-month window."""
        self.window += self.ring[month % 12]
