"""Care: monthly demand, episodes routed to providers through the contract network and patient choice,
capacity and waiting, care transitions between organisations (coordinated or not), contact history,
continuity of care and health. All per-person work is vectorised over the population arrays.

The `Care` part owns: per organisation and service `units`, `backlog`, `capacity`, `extra_cost`; the
routing of each service (providers, shares, payment response); which organisation pairs a coordinating
contract covers (`coverage`) and which organisations are one entity (`entity`); each organisation's
contact slot; GP practices' digital shares; each person's continuity-of-care index.
"""
from __future__ import annotations

import numpy as np

from . import counter_rng as crng
from .counter_rng import uniform32_at
from .metrics import continuity as coc_index
from .dense_draws import LEVELS, SCREEN, DenseScan
from .dense_draws import kernel as dense_kernel
from .jit import enabled as _kernel_enabled
from .jit import jit as _jit
from .patients import DEMAND, KMAX, poisson_levels, poisson_screened, refine_levels, refine_screened
from .params import SERVICES

S = {s: i for i, s in enumerate(SERVICES)}
CHOICE_SERVICES = ("outpatient", "elective")
SERVICE_OF_DEMAND = {"gp_contacts": ("gp_f2f", "gp_digital"), "community_contacts": ("community",)}
SERVICE_OF_DEMAND.update({k: (k,) for k in DEMAND if k not in SERVICE_OF_DEMAND})   # others share the name
# purposes of the counter-based draws of a month (stream "demand"): 0-1 the dense hashes whose bytes decide
# counts, 10+ exact refinements per service, 100+ the splits and choices for people with care this month
DENSE_HASHES = 2
REFINE, CHOICE = 10, 100
U32_MAX = 1.0 - 2.0 ** -24     # the largest uniform of counter_rng.uniform32


def draw_key(m, t: int, purpose: int) -> np.uint32:
    """The counter key of one choice or split in month t."""
    return m.counter_key("demand", t, CHOICE + purpose)


def draw(m, t: int, purpose: int, rows: np.ndarray) -> np.ndarray:
    """Uniforms (float32) for `rows` in month t for one choice or split: the same whoever else draws."""
    return crng.uniform32(draw_key(m, t, purpose), rows)


@_jit
def _pick_by_place(TH, POS, place, x):
    """Care.pick for people in several places in one pass: POS[q, #{d: x >= TH[q, d]}] (the numpy path
    gathers each threshold per episode)."""
    out = np.empty(x.shape[0], POS.dtype)
    for i in range(x.shape[0]):
        q = place[i]
        c = 0
        for d in range(TH.shape[1]):
            if x[i] >= TH[q, d]:
                c += 1
        out[i] = POS[q, c]
    return out


@_jit
def _draw_pick(TH, POS, place, rows, key):
    """Care.pick with each episode's uniform drawn in the same pass (counter_rng.uniform32(key, rows): the
    same bits) and its place read from everyone's places (`place` empty: one place), so that no uniforms,
    hashes or places of the episodes are stored (a dozen passes over them in numpy)."""
    out = np.empty(rows.shape[0], POS.dtype)
    one = place.shape[0] == 0
    for e in range(rows.shape[0]):
        r = rows[e]
        x = uniform32_at(key, r)
        q = 0 if one else place[r]
        c = 0
        for d in range(TH.shape[1]):
            if x >= TH[q, d]:
                c += 1
        out[e] = POS[q, c]
    return out


_ONE_PLACE = np.zeros(0, np.int8)


class Care:
    def __init__(self, model) -> None:
        self.model = model
        self.p = model.p
        m = model
        n_orgs = len(m.orgs)
        # contact slots: 0 = own practice, then one per non-practice organisation (+ spare for successors)
        self.slot_of = np.zeros(n_orgs + 16, dtype=np.int16)
        nonprac = [o for o in m.orgs if o.side != "practice"]
        for k, o in enumerate(nonprac, start=1):
            self.slot_of[o.idx] = k
        self.n_slots = len(nonprac) + 1                      # columns of the contact window at start
        # service -> {provider id or "practice": share}; successors take over a failed provider's shares
        self.service_providers: dict[str, dict[str, float]] = {
            s: dict(v) for s, v in m.eco["service_providers"]["value"].items()}
        self.practice_idx = np.array([pr.idx for pr in m.practices])
        # places: each practice's place; a place's own providers (those its aliases name; providers no place
        # names are shared by all), so people use their own place's providers
        self.place_ids = [pl["id"] for pl in m.eco["places"]]
        self.n_places = len(self.place_ids)
        pos = {pid: i for i, pid in enumerate(self.place_ids)}
        self.place_of_practice = np.array([pos[pr["place"]] for pr in m.eco["practices"]["list"]], dtype=np.intp)
        named = [set((pl.get("aliases") or {}).values()) for pl in m.eco["places"]]
        everyone = set().union(*named) if named else set()
        self.place_own = [own if own else None for own in named]
        self.shared = everyone
        self.backlog = np.zeros((n_orgs, len(SERVICES)))
        self.units = np.zeros((n_orgs, len(SERVICES)))
        self.capacity = np.zeros((n_orgs, len(SERVICES)))
        self.load = np.zeros((n_orgs, 2))      # this year's demand and capacity, at unit cost (staff pressure)
        self.extra_cost = np.zeros(n_orgs)
        self.shares: dict[str, np.ndarray] = {}
        self.needs: dict = {}
        self.units_place = None                 # [place, organisation, service] this month (several places)
        self._place_key = None
        self._practice_org_key = None
        self.coc_patient = np.zeros(0, dtype=np.float32)     # Bice-Boxerman index, 0 where undefined
        self.coc_valid = np.zeros(0, dtype=bool)
        self.coc_mean = 0.0
        self.orgs_per_patient = 0.0
        self._merged = (None, None)

    def same_provider_share(self, first: str, then: str) -> float:
        """Chance that two services drawn independently by the economy's shares go to the same provider
        (an elective after an outpatient attendance at the same trust is no hand-off)."""
        a, b = self.service_providers.get(first, {}), self.service_providers.get(then, {})
        return float(sum(share * b.get(org, 0.0) for org, share in a.items()))

    # ------------------------------------------------------------------ structure
    def add_organisation(self, org, like, services: list[str] | None = None) -> None:
        """A successor: its own contact slot, `like`'s capacity, and the waiting list it inherits (for
        `services` only, when given)."""
        n = len(self.model.orgs)
        self.capacity = np.vstack([self.capacity, self.capacity[like.idx]])
        self.load = np.vstack([self.load, np.zeros((1, 2))])
        self.backlog = np.vstack([self.backlog, self.backlog[like.idx]])
        if services is None:
            self.backlog[like.idx] = 0
        else:
            moved = np.zeros(len(SERVICES), bool)
            moved[[S[s] for s in services]] = True
            for a in (self.capacity, self.backlog):
                a[org.idx, ~moved] = 0
                a[like.idx, moved] = 0
        self.units = np.vstack([self.units, np.zeros(len(SERVICES))])
        self.extra_cost = np.append(self.extra_cost, 0.0)
        if self.slot_of.shape[0] < n:
            self.slot_of = np.append(self.slot_of, np.zeros(16, np.int16))
        self.slot_of[org.idx] = self.model.pop.n_slots - 1     # the column the population just added

    def population_grew(self) -> None:
        """New people have no continuity index yet (undefined, so no effect on their risk)."""
        n = self.model.pop.n
        if self.coc_patient.shape[0] < n:
            k = n - self.coc_patient.shape[0]
            self.coc_patient = np.concatenate([self.coc_patient, np.zeros(k, np.float32)])
            self.coc_valid = np.concatenate([self.coc_valid, np.zeros(k, bool)])

    def available(self, oid: str, q: int) -> bool:
        """Whether people of place q use provider `oid` (its own place's, or one no place names)."""
        own = self.place_own[q]
        base = oid.split("~")[0]
        return own is None or oid in own or base in own or base not in self.shared

    def place_shares(self, s: str, q: int) -> dict[str, float]:
        """Service s's provider shares for people of place q: the economy's shares among the providers
        they use, renormalised (the registered practice's share kept)."""
        shares = self.service_providers[s]
        if self.n_places == 1:
            return dict(shares)
        prac = shares.get("practice", 0.0)
        avail = {o: x for o, x in shares.items() if o != "practice" and self.available(o, q)}
        total = sum(avail.values())
        if total <= 0:
            avail = {o: x for o, x in shares.items() if o != "practice"}
            total = sum(avail.values())
        out = {o: x * (1 - prac) / total for o, x in avail.items()} if total > 0 else {}
        if "practice" in shares:
            out["practice"] = prac
        return out

    def transfer_services(self, old: str, new: str, services: list[str] | None = None) -> list[str]:
        """`new` takes over `old`'s share of every service (or of `services`); returns the services moved."""
        moved = [s for s, sh in self.service_providers.items() if old in sh and (services is None or s in services)]
        for s in moved:
            self.service_providers[s][new] = self.service_providers[s].pop(old)
        return moved

    def services_of(self, oid: str) -> list[str]:
        return [s for s, sh in self.service_providers.items() if oid in sh]

    def plan_capacity(self, exp_units: np.ndarray) -> None:
        """Monthly capacity: planned activity (a year late) with headroom. The real-terms uplift pays for
        real cost growth (it raises prices and fixed costs), not for more capacity than planned, so demand
        that grows faster than planned presses on staff. Another system's providers have room for more of
        the patients who choose them."""
        self.capacity = exp_units * self.p["costs"]["capacity_headroom"] / 12.0
        self.load[:] = 0.0
        outside = [o.idx for o in self.model.orgs if o.outside_network]
        if outside:
            self.capacity[outside] *= self.p["choice"]["outside_capacity_multiple"]

    def pressure(self, idx: int) -> float:
        """This year's new demand beyond staffed capacity, as a share of capacity (0 when within it):
        referrals and emergencies above what the provider planned and staffed for, at unit cost."""
        demand, cap = self.load[idx]
        return max(demand / cap - 1.0, 0.0) if cap > 0 else 0.0

    def refresh(self) -> None:
        """Recompute what depends on the contract network (after any change to it)."""
        self.refresh_routing()
        self.refresh_coordination()

    def refresh_routing(self) -> None:
        """Per service: providers (org indices), starting shares, and the payment response of each route."""
        m = self.model
        pr = self.p["payment_response"]
        self.routing = {}
        for s, shares in self.service_providers.items():
            provs = [(o, sh) for o, sh in shares.items() if o != "practice" and sh > 0]
            idx = np.array([m.org_by_id[o].idx for o, _ in provs], dtype=np.int64)
            base = np.array([sh for _, sh in provs], dtype=float)
            resp = np.ones(len(provs))
            for k, (o, _) in enumerate(provs):
                c = m.network.funding(s, o)
                if c is None:
                    continue
                if c.pay.per_activity:
                    resp[k] = 1 + pr["tariff_activity"]
                elif c.pay.avoids_activity or c.info.holder_population:
                    resp[k] = 1 - pr["population_avoidance"]
            mask = np.ones((self.n_places, len(provs)), bool)
            for p_, own in enumerate(self.place_own):
                if own is not None:
                    row = np.array([self.available(o, p_) for o, _ in provs], bool)
                    mask[p_] = row if row.any() else True
            self.routing[s] = {"idx": idx, "share": base, "resp": resp, "mask": mask,
                               "practice_share": shares.get("practice", 0.0)}
        modes = np.array([p_.mode for p_ in m.practices])
        self.practice_integrated = (modes == "partial") | (modes == "full")
        digital = self.p["digital"]
        share = np.full(len(m.practices), digital["baseline_share"], dtype=np.float32)
        if m.arr["digital_required"]:
            share[self.practice_integrated] = digital["icp_share"]
        self.practice_digital = share

    def data_sharing(self, trust: float) -> float:
        lo = self.p["trust"]["data_sharing_min"]
        return lo + (1 - lo) * trust

    def refresh_coordination(self) -> None:
        """Which organisation pairs a coordinating contract covers, and how well (trust -> data sharing).
        `entity` maps employed (salaried) practices onto the holder: a hand-off inside one organisation
        is no hand-off."""
        m = self.model
        n = len(m.orgs)
        ent = np.arange(n)
        cov = np.zeros((n, n))
        holder = m.holder
        if holder and not holder.failed:
            h = holder.idx
            inside = {h: 1.0}
            for c in m.network.active():
                if c.payer == holder.org_id and c.info.holder_network:
                    o = m.org_by_id[c.payee]
                    if o.failed:
                        continue
                    inside[o.idx] = self.data_sharing(c.trust)
                    if c.info.employment:
                        ent[o.idx] = h
            idx = np.array(list(inside))
            q = np.array([inside[i] for i in idx])
            cov[np.ix_(idx, idx)] = np.minimum.outer(q, q)
        members = m.network.members()
        if members:
            live = [m.org_by_id[c.payee] for c in members if not m.org_by_id[c.payee].failed]
            idx = np.array([o.idx for o in live], dtype=np.int64)
            # joint working among members, as far as the alliance has developed and trust allows
            ds = self.data_sharing(float(np.mean([c.trust for c in members]))) * members[0].maturity
            if len(idx):
                cov[np.ix_(idx, idx)] = np.maximum(cov[np.ix_(idx, idx)], ds)
                # a GP federation member brings its practices in part (their referrals to members)
                if any(o.kind == "gp_federation" for o in live):
                    prac = np.array([pr.idx for pr in m.practices if not pr.failed and pr.idx not in set(idx)], dtype=np.int64)
                    if len(prac):
                        reach = ds * self.p["trust"]["federation_reach"]
                        cov[np.ix_(prac, idx)] = np.maximum(cov[np.ix_(prac, idx)], reach)
                        cov[np.ix_(idx, prac)] = np.maximum(cov[np.ix_(idx, prac)], reach)
        self.entity = ent
        self.coverage = cov

    # ------------------------------------------------------------------ choice and demand
    def choice_shares(self, s: str) -> np.ndarray:
        """Patient choice among eligible providers by waiting and quality (elective and outpatient)."""
        m = self.model
        r = self.routing[s]
        if s not in CHOICE_SERVICES or len(r["idx"]) < 2:
            return r["share"]
        ch = self.p["choice"]
        q = np.array([m.orgs[i].quality for i in r["idx"]])
        cap = np.maximum(self.capacity[r["idx"], S[s]], 1e-9)
        pressure = self.backlog[r["idx"], S[s]] / cap
        alive = np.array([0.0 if m.orgs[i].failed else 1.0 for i in r["idx"]])
        logit = np.log(np.maximum(r["share"], 1e-12)) - ch["wait_sensitivity"] * pressure + ch["quality_sensitivity"] * (q - q.mean())
        w = np.exp(logit - logit.max()) * alive
        return w / w.sum() if w.sum() > 0 else r["share"]

    def demand(self, t: int) -> dict:
        """This month's needs per service as (people with any, their counts), from draws shared by every
        arrangement (common random numbers): one byte per person and service of two dense 32-bit hashes,
        refined for the few candidates (see patients.poisson_screened)."""
        m = self.model
        pop = m.pop
        month_key = lambda purpose: m.counter_key("demand", t, purpose)
        self.shares = {s: self.choice_shares(s) for s in self.routing}     # once per month
        # how each service's byte is read this month: at the base rate against the yearly CDF levels,
        # else (a surge, a payment's volume response, the emergency multiplier) against a screening level
        plan = []
        for k, key in enumerate(DEMAND):
            surge = 1.0 + m.shock_level("demand_surge", t, SERVICE_OF_DEMAND[key])
            factor = bound = surge / 12.0
            if key in CHOICE_SERVICES:      # volume response of the chosen providers' payment;
                # the screening bound uses the largest response, so it stays valid as choice moves shares
                resp = self.routing[key]["resp"]
                factor *= float((self.shares[key] * resp).sum())
                bound *= float(resp.max(initial=1.0))
            if key == "emergency":
                thr, lam_at = pop.get_screen(key, bound * self.emergency_bound()), self.emergency_multiplier
            elif factor == 1.0 / 12.0:
                thr, lam_at = pop.get_levels(key), None
            else:
                thr, lam_at = pop.get_screen(key, max(bound, factor)), None
            plan.append((key, thr, factor, lam_at, pop.rate[key], KMAX[key], month_key(REFINE + k)))
        hkeys = [month_key(j) for j in range(DENSE_HASHES)]
        if dense_kernel():
            counts = self._demand_compiled(plan, hkeys)
        else:
            counts = self._demand_numpy(plan, hkeys)
        idx, gp = counts.pop("gp_contacts")
        d = self.practice_digital[pop.practice[idx]]
        dig = np.minimum(np.floor(gp * d + draw(m, t, 0, idx)).astype(np.uint8), gp)
        counts["gp_digital"] = (idx, dig)
        counts["gp_f2f"] = (idx, gp - dig)
        counts["community"] = counts.pop("community_contacts")
        self.needs = counts
        return counts

    def _demand_compiled(self, plan: list, hkeys: list) -> dict:
        """The dense part in one compiled pass (dense_draws), then the exact refinements."""
        scan = getattr(self, "_scan", None)
        if scan is None:
            scan = self._scan = DenseScan()
        found = scan.scan(self.model.pop.rows_spread, hkeys, [thr for _, thr, *_ in plan],
                          [LEVELS if thr.ndim == 2 else SCREEN for _, thr, *_ in plan])
        counts = {}
        for (key, thr, factor, lam_at, rate, kmax, vkey), (rows, byte, code) in zip(plan, found):
            if thr.ndim == 2:
                counts[key] = refine_levels(rows, byte, code, vkey, rate, factor, kmax)
            else:
                counts[key] = refine_screened(rows, byte, vkey, rate, factor, kmax, lam_at)
        return counts

    def _demand_numpy(self, plan: list, hkeys: list) -> dict:
        """The dense part with numpy: each hash, byte and comparison a pass over everyone."""
        pop = self.model.pop
        buf = self._dense_buffers(pop.n)
        hashes = [crng.bits(hk, pop.rows_spread, out=buf["hash"][j], tmp=buf["tmp"]) for j, hk in enumerate(hkeys)]
        counts = {}
        byte = buf["byte"]
        for k, (key, thr, factor, lam_at, rate, kmax, vkey) in enumerate(plan):
            h = hashes[k // 4]
            if k % 4:                                  # byte k of the hashes
                h = np.right_shift(h, np.uint32(8 * (k % 4)), out=buf["tmp"])
            np.copyto(byte, h, casting="unsafe")       # (the low byte, as astype)
            if thr.ndim == 2:
                counts[key] = poisson_levels(byte, thr, vkey, rate, factor, buf["bool"])
            else:
                counts[key] = poisson_screened(byte, thr, kmax, vkey, rate, factor, lam_at=lam_at)
        return counts

    def _dense_buffers(self, n: int) -> dict:
        """Scratch arrays for the month's dense draws, kept from month to month: at 1.3 M people fresh
        5 MB temporaries each month cost page faults (the allocator returns them to the system)."""
        buf = getattr(self, "_dense", None)
        if buf is None or buf["byte"].shape[0] != n:
            buf = self._dense = {"hash": np.empty((DENSE_HASHES, n), np.uint32), "tmp": np.empty(n, np.uint32),
                                 "byte": np.empty(n, np.uint8), "bool": tuple(np.empty(n, bool) for _ in range(3))}
        return buf

    def _f32_buffer(self, n: int) -> np.ndarray:
        """A float32 scratch array of everyone, kept from month to month (as _dense_buffers)."""
        buf = getattr(self, "_f32", None)
        if buf is None or buf.shape[0] != n:
            buf = self._f32 = np.empty(n, np.float32)
        return buf

    def emergency_multiplier(self, idx: np.ndarray) -> np.ndarray:
        """Prevention, health relative to reference, continuity of care and digital substitution acting on
        the emergency risk of people `idx`."""
        m = self.model
        pop, p = m.pop, self.p
        mult = 1.0 - pop.prevention_effect(idx)
        g = np.float32(p["demand"]["health_risk_gradient"])
        mult *= np.clip(1.0 + g * (pop.ref_health[idx] - pop.health[idx]), 0.5, 3.0)
        c = p["continuity"]
        if self.coc_patient.shape[0] >= pop.n:
            dev = np.where(self.coc_valid[idx], self.coc_patient[idx] - np.float32(c["reference"]), np.float32(0.0))
        else:
            dev = np.zeros(len(idx), np.float32)
        mult *= np.clip(1.0 - c["acs_share"] * c["effect_per_0_2"] * dev / 0.2, 0.5, 1.5)
        eff = p["digital"]["health_effect"]
        if eff:
            mult *= 1.0 + eff * self.practice_digital[pop.practice[idx]]
        return mult.astype(np.float32)

    def emergency_bound(self) -> float:
        """Largest possible emergency multiplier (the clip limits above and, where prevention falls short
        of the status quo's line, 1 / (1 - effect_max)), for candidate screening."""
        eff = self.p["digital"]["health_effect"]
        prevention = 1.0 if self.model.prevention.shadow_same else 1.0 / (1.0 - self.p["prevention"]["effect_max"])
        return 3.0 * 1.5 * (1.0 + max(eff, 0.0)) * prevention

    def person_practice_org(self) -> np.ndarray:
        """Each person's registered practice as an organisation index, cached until registrations change."""
        pop = self.model.pop
        key = (pop.registrations, pop.n)
        if self._practice_org_key != key:
            self._practice_org = self.practice_idx.astype(np.int32)[pop.practice]   # (int32: half the memory)
            self._practice_org_key = key
        return self._practice_org

    def person_place(self) -> np.ndarray:
        """Each person's place (their practice's) in the smallest integer type (cheaper to gather), cached
        until registrations change."""
        pop = self.model.pop
        key = (pop.registrations, pop.n)
        if self._place_key != key:
            small = self.place_of_practice.astype(np.int8 if self.n_places < 128 else np.int16)
            self._person_place = small[pop.practice]
            self._place_key = key
        return self._person_place

    @staticmethod
    def pick_tables(r: dict, shares: np.ndarray, several: bool) -> tuple[np.ndarray, np.ndarray]:
        """Provider choice as small lookup tables: per place q, float32 thresholds TH[q] and flat positions
        POS[q] (q * providers + column), so that the episode with uniform u goes to
        POS[q, #{d: u >= TH[q, d]}].

        The rule is the cumulative shares of each place's own providers (renormalised), searched as one
        sorted array with place q's row offset by 2q (what `np.searchsorted` on that array gives,
        exactly): only row values strictly inside (2q, 2q + the largest uniform] can fall either side of
        a key u + 2q, so they are the thresholds (shifted back by 2q, which is exact) and the rest is a
        constant count per place. A place with one provider needs no threshold, and no draw."""
        k = len(shares)
        if several:
            mask = r["mask"]
            sh = shares[None, :] * mask
            tot = sh.sum(axis=1, keepdims=True)
            sh = np.where(tot > 0, sh / np.where(tot > 0, tot, 1.0), shares[None, :])
            cum = np.cumsum(sh, axis=1)
            cum[:, -1] = 1.0 + 1e-6
            F = cum + (2.0 * np.arange(mask.shape[0]))[:, None]
        else:
            cum = np.cumsum(shares)
            cum[-1] = 1.0 + 1e-6
            F = cum[None, :]
        P = F.shape[0]
        th, pos = [], []
        for q in range(P):
            lo, f = 2.0 * q, F[q]
            base = q * k + int(np.count_nonzero(f <= lo))         # at or below every key u + 2q
            vals, mult = np.unique(f[(f > lo) & (f <= lo + U32_MAX)], return_counts=True)
            t = (vals - lo).astype(np.float32)                      # the least float32 >= each threshold
            up = t.astype(np.float64) < vals - lo
            t[up] = np.nextafter(t[up], np.float32(np.inf))
            th.append(t)
            pos.append(base + np.concatenate([[0], np.cumsum(mult)]))
        D = max(len(t) for t in th)
        TH = np.full((P, D), np.inf, np.float32)
        POS = np.zeros((P, D + 1), np.intp)
        for q in range(P):
            TH[q, :len(th[q])] = th[q]
            POS[q, :] = pos[q][-1]
            POS[q, :len(pos[q])] = pos[q]
        return TH, POS

    @staticmethod
    def pick(tables: tuple[np.ndarray, np.ndarray], place: np.ndarray | None, n: int, u) -> np.ndarray:
        """Flat positions (place * providers + column) of `n` episodes of people in `place` (None: one
        place); `u()` gives their uniforms, drawn only when some place has a choice."""
        TH, POS = tables
        D = TH.shape[1]
        if D == 0:
            return POS[place, 0] if place is not None else np.full(n, POS[0, 0])
        x = u()
        if place is None:
            if D == 1:
                return np.where(x >= TH[0, 0], POS[0, 1], POS[0, 0])
            cnt = np.zeros(len(x), np.intp)
            for d in range(D):
                cnt += x >= TH[0, d]
            return POS[0][cnt]
        if _kernel_enabled():
            return _pick_by_place(TH, POS, place, x)
        # flat position in POS, q * (D + 1) + count, in the smallest integer (2-D fancy indexing is slower)
        code = np.multiply(place, D + 1, dtype=np.int8 if TH.shape[0] * (D + 1) < 128 else np.intp)
        for d in range(D):
            code += x >= TH[:, d][place]
        return POS.ravel()[code]

    @staticmethod
    def pick_drawn(tables: tuple[np.ndarray, np.ndarray], place: np.ndarray | None, rows: np.ndarray,
                   key: np.uint32) -> np.ndarray:
        """pick() for episodes of people `rows`, their uniforms crng.uniform32(key, rows) and their places
        place[rows] (`place`: everyone's, None for one place); compiled, one pass draws, looks up and picks."""
        TH, POS = tables
        if TH.shape[1] and _kernel_enabled():
            pl = _ONE_PLACE if place is None else place
            return _draw_pick(TH, POS, pl, rows, np.uint32(key))
        return Care.pick(tables, None if place is None else place[rows], len(rows),
                         lambda: crng.uniform32(key, rows))

    # ------------------------------------------------------------------ delivery
    def deliver(self, t: int, counts: dict | None = None) -> None:
        """Route this month's needs (`demand`), apply capacity, record transitions, contact history and health."""
        m = self.model
        counts = self.needs if counts is None else counts
        pop, p = m.pop, self.p
        n_orgs = len(m.orgs)
        units = np.zeros((n_orgs, len(SERVICES)))
        window = pop.contacts
        window.begin_month(t)            # contacts of 12 months ago leave the window
        chosen: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        extra_cost = np.zeros(n_orgs)
        slot_of = self.slot_of

        # general practice: the registered practice, with a share at the GP federation (extended access),
        # the federation of the person's place
        n_prac = len(m.practices)
        P = self.n_places
        place = self.person_place() if P > 1 else None
        units_place = np.zeros((P, n_orgs, len(SERVICES))) if P > 1 else None
        gp_idx = counts["gp_f2f"][0]                   # the same people for both GP kinds
        own_all = np.zeros(len(gp_idx), np.uint8)
        fed_all = np.zeros(len(gp_idx), np.uint8)
        prac = pop.practice[gp_idx]
        r_gp = self.routing["gp_f2f"]
        fed_of_place = None
        if len(r_gp["idx"]) and P > 1:                 # each place's first available federation
            fed_of_place = np.array([r_gp["idx"][np.argmax(r_gp["mask"][q])] for q in range(P)])
        fed_by_kind = {}
        for j, s in enumerate(("gp_f2f", "gp_digital")):
            idx, k = counts[s]
            r = self.routing[s]
            fed = np.zeros(len(idx), np.uint8)
            if len(r["idx"]):
                g = np.float32(1.0 - r["practice_share"])
                fed = np.minimum(np.floor(k * g + draw(m, t, 1 + j, idx)).astype(np.uint8), k)
                if fed_of_place is None:
                    units[r["idx"][0], S[s]] += fed.sum()
                else:
                    fed_by_kind[s] = fed
                fed_all += fed
            own = k - fed
            units[self.practice_idx, S[s]] += np.bincount(prac, weights=own, minlength=n_prac)
            own_all += own
        window.add(0, gp_idx, own_all)
        if len(r_gp["idx"]):
            if fed_of_place is None:
                window.add(int(slot_of[r_gp["idx"][0]]), gp_idx, fed_all, sparse=True)
            else:       # only the few with federation contacts, each at their place's federation
                nz = np.flatnonzero(fed_all != 0)            # (on a bool mask: ~4x faster than on uint8)
                rows = gp_idx[nz]
                place_nz = place[rows]
                fed_org = fed_of_place[place_nz]
                for s, fed in fed_by_kind.items():     # (zero weights add nothing: the same sums)
                    units[:, S[s]] += np.bincount(fed_org, weights=fed[nz], minlength=n_orgs)
                window.add(slot_of[fed_of_place][place_nz], rows, fed_all[nz])

        # other services: provider per person-month by (choice-adjusted) shares, each place's people among
        # its own providers; positions in [place, provider] give the provider, its slot and the units
        disc = p["transitions"]
        em_idx, em_k = counts["emergency"]
        band = pop.band[em_idx]
        u_d = draw(m, t, 3, em_idx)
        pc = np.asarray(disc["discharge_to_community"], np.float32)[band]
        ps = np.asarray(disc["discharge_to_social_care"], np.float32)[band]
        comm_mask = u_d < pc
        sc_mask = (u_d >= pc) & (u_d < pc + ps)
        to_comm = em_idx[comm_mask]
        to_sc = em_idx[sc_mask]
        add = {"community": (to_comm, int(disc["community_contacts_per_discharge"])),
               "social_care": (to_sc, int(disc["social_care_weeks_per_discharge"]))}
        for j, s in enumerate(("community", "outpatient", "elective", "emergency", "mental_health", "social_care")):
            idx, kk = counts[s]
            r = self.routing[s]
            shares = self.shares[s]
            if len(shares) == 1 and units_place is None:   # one provider: no choice to draw
                prov = np.full(len(idx), r["idx"][0])
                units[r["idx"][0], S[s]] += kk.sum()
                window.add(int(slot_of[r["idx"][0]]), idx, kk)
                chosen[s] = (idx, prov, kk)
                if s in add:
                    didx, per = add[s]
                    units[r["idx"][0], S[s]] += len(didx) * per
                    window.add(int(slot_of[r["idx"][0]]), didx, min(per, 4))
                    chosen["disc_" + s] = (didx, np.full(len(didx), r["idx"][0]), np.full(len(didx), per))
                continue
            tables = r.get("tables")
            if tables is None or not np.array_equal(tables[0], shares):   # shares move with choice only
                tables = r["tables"] = (shares.copy(), *self.pick_tables(r, shares, units_place is not None))
            tables = tables[1:]
            prov_at = np.tile(r["idx"], P)              # flat position -> organisation, and its slot
            slot_at = np.tile(slot_of[r["idx"]], P)
            for rows, per, purpose, key in ((idx, kk, 10 + j, s), add.get(s, (None,) * 2) + (20 + j, "disc_" + s)):
                if rows is None:
                    continue
                at = self.pick_drawn(tables, place, rows, draw_key(m, t, purpose))
                prov = prov_at[at]
                if np.ndim(per):
                    n_at = np.bincount(at, weights=per, minlength=len(prov_at))
                    window.add(slot_at[at], rows, per)
                else:
                    n_at = np.bincount(at, minlength=len(prov_at)) * per
                    window.add(slot_at[at], rows, min(per, 4))
                    per = np.full(len(rows), per)
                if units_place is None:
                    units[r["idx"], S[s]] += n_at
                else:
                    n_at = n_at.reshape(P, -1)
                    units[r["idx"], S[s]] += n_at.sum(axis=0)
                    units_place[:, r["idx"], S[s]] += n_at
                chosen[key] = (rows, prov, per)

        # capacity: elective and outpatient wait; emergency overflow costs more
        wait_frac = {}
        cost = m.finance.unit_cost
        for s in CHOICE_SERVICES:
            col = S[s]
            demand_ = units[:, col] + self.backlog[:, col]
            self.load[:, 0] += units[:, col] * cost[col]     # new demand (a waiting list is its result)
            self.load[:, 1] += self.capacity[:, col] * cost[col]
            served = np.minimum(demand_, self.capacity[:, col])
            self.backlog[:, col] = demand_ - served
            if units_place is not None:                 # who was served, by place, in proportion
                ratio = np.divide(served, units[:, col], out=np.ones(n_orgs), where=units[:, col] > 0)
                units_place[:, :, col] *= ratio[None, :]
            units[:, col] = served
            wait_frac[s] = np.divide(self.backlog[:, col], demand_, out=np.zeros(n_orgs), where=demand_ > 0)
        col = S["emergency"]
        self.load[:, 0] += units[:, col] * cost[col]
        self.load[:, 1] += self.capacity[:, col] * cost[col]
        over = np.maximum(units[:, col] - self.capacity[:, col], 0)
        extra_cost += over * (p["costs"]["overflow_cost_ratio"] - 1) * m.finance.var_unit[:, col]

        # care transitions between organisations
        org_of_person = self.person_practice_org()

        def prac_org(people: np.ndarray) -> np.ndarray:
            return org_of_person[people]
        a_list, b_list, who, kind = [], [], [], []
        op_idx, op_prov, _ = chosen["outpatient"]
        a_list.append(prac_org(op_idx)); b_list.append(op_prov); who.append(op_idx); kind.append(np.zeros(len(op_idx), np.int8))
        el_idx, el_prov, _ = chosen["elective"]
        pos = np.minimum(np.searchsorted(op_idx, el_idx), max(len(op_idx) - 1, 0))   # both sorted
        had_op = (op_idx[pos] == el_idx) if len(op_idx) else np.zeros(len(el_idx), bool)
        src = np.where(had_op, op_prov[pos] if len(op_idx) else 0, prac_org(el_idx))
        a_list.append(src); b_list.append(el_prov); who.append(el_idx); kind.append(np.zeros(len(el_idx), np.int8))
        mh_idx, mh_prov, _ = chosen["mental_health"]
        ref = draw(m, t, 30, mh_idx) < disc["gp_to_mental_health_referral"]
        a_list.append(prac_org(mh_idx[ref])); b_list.append(mh_prov[ref]); who.append(mh_idx[ref]); kind.append(np.zeros(int(ref.sum()), np.int8))
        em_prov = chosen["emergency"][1]
        admitted_by = {"community": em_prov[comm_mask], "social_care": em_prov[sc_mask]}
        first_discharge = sum(len(x) for x in a_list)   # discharges (kind 1) come last
        for s in ("community", "social_care"):
            didx, dprov, _ = chosen["disc_" + s]
            a_list.append(admitted_by[s]); b_list.append(dprov); who.append(didx); kind.append(np.ones(len(didx), np.int8))
        a = np.concatenate(a_list); b = np.concatenate(b_list); w = np.concatenate(who); kd = np.concatenate(kind)
        ent = self.entity
        handoff = ent[a] != ent[b]
        cov = self.coverage[a, b] * handoff
        n_handoffs = float(handoff.sum())
        integrated = float(cov.sum())
        unint = handoff * (1.0 - cov)
        # uncovered discharges wait in hospital; any uncovered hand-off costs a little health
        delay = p["costs"]["delayed_discharge_days"] * p["costs"]["excess_bed_day_cost"]
        if len(em_prov) and (em_prov == em_prov[0]).all():     # one admitting provider
            extra_cost[em_prov[0]] += float((unint * kd).sum()) * delay
        elif len(em_prov):
            tail = slice(first_discharge, None)     # (the hand-offs before add zero to every bin)
            extra_cost += np.bincount(a[tail], weights=unint[tail], minlength=n_orgs) * delay
        res = m.results
        res.record("handoffs", t, n_handoffs)
        res.record("integrated", t, integrated)
        res.record("admissions", t, float(em_k.sum()))

        # health: recovery towards baseline (moved by prevention's net effect), losses from admissions, waits
        # and hand-offs
        h = pop.health
        hp = p["health"]
        r_rec = np.float32(hp["recovery_rate"])
        step = np.subtract(pop.base_health, h, out=self._f32_buffer(pop.n))   # recovery towards baseline ...
        step *= r_rec
        h += step
        live = pop.prev_live                          # ... moved by prevention where either line reached
        if len(live):
            base = pop.base_health[live]
            gain = np.float32(hp["prevention_gain"] / max(p["prevention"]["effect_max"], 1e-9))
            h[live] += r_rec * (np.minimum(base + gain * pop.prevention_effect(live), 1.0) - base)
        h[em_idx] -= np.float32(hp["admission_loss"]) * em_k
        wl = p["costs"]["waiting_health_loss"]
        for s in CHOICE_SERVICES:
            idx, prov, _ = chosen[s]
            h[idx] -= np.float32(wl) * wait_frac[s][prov].astype(np.float32)
        np.subtract.at(h, w, (hp["handoff_loss"] * unint).astype(np.float32))
        avoid = p["payment_response"]["rationing_health_loss"]
        for s in CHOICE_SERVICES:
            r = self.routing[s]
            gap = float(((1.0 - r["resp"]).clip(0) * self.shares[s]).sum())
            if gap > 0:
                idx, _, _ = chosen[s]
                h[idx] -= np.float32(avoid * gap)
        np.clip(h, 0.0, 1.0, out=h)
        pop.follow_reference()                        # the expected path health is measured against

        self.units = units
        self.units_place = units_place
        self.extra_cost = extra_cost

    # ------------------------------------------------------------------ continuity
    def contact_summary(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per person over the 12-month window: contacts N, sum of squared counts per organisation, and the
        number of distinct organisations, with employed (salaried) practices counted as the holder (one
        organisation)."""
        n, sq, orgs, rows, sq_rows, orgs_rows = self._contact_sums()
        if rows is not None:
            sq, orgs = sq.copy(), orgs.copy()
            sq[rows], orgs[rows] = sq_rows, orgs_rows
        return n, sq, orgs

    def _contact_sums(self):
        """contact_summary() as the window's own sums plus the corrected values of the people whose
        practice is merged into the holder, (rows, sums of squares, organisations) or Nones, so that no
        copy of the whole arrays is needed. N and the sums are kept up to date by the contact window
        (abm.continuity); only the people of salaried practices are corrected, merging their practice
        column into the holder's."""
        m = self.model
        cw = m.pop.contacts
        n, sq, orgs = cw.total, cw.sumsq, cw.orgs
        ent = self.entity
        holder = m.holder
        if holder is not None and not (ent == np.arange(len(ent))).all():
            key = (m.pop.registrations, m.network.version, cw.n)
            if self._merged[0] != key:   # registrations change yearly (moves) or on events (returns, closures)
                merged = np.array([ent[pr.idx] != pr.idx for pr in m.practices])
                self._merged = (key, np.flatnonzero(merged[m.pop.practice]))
            rows = self._merged[1]
            if len(rows):
                w = cw.window
                h = w[self.slot_of[holder.idx]].take(rows).astype(np.int32)
                p = w[0].take(rows).astype(np.int32)
                sq_rows = sq[rows] + 2 * h * p
                orgs_rows = orgs[rows] - ((h > 0) & (p > 0))
                return n, sq, orgs, rows, sq_rows.astype(sq.dtype, copy=False), orgs_rows.astype(orgs.dtype)
        return n, sq, orgs, None, None, None

    def update_continuity(self) -> None:
        """Each person's Bice-Boxerman continuity index over the last 12 months (next month's emergency
        risk responds to it), its mean, and distinct organisations per patient with contact."""
        tot, sq, orgs, rows, sq_rows, orgs_rows = self._contact_sums()
        # last month's arrays are overwritten (only next month's emergency risk reads them)
        out = (self.coc_patient, self.coc_valid) if self.coc_patient.shape == tot.shape else None
        self.coc_patient, self.coc_valid, self.coc_mean = coc_index(tot, sq, rows=rows, sq_rows=sq_rows, out=out)
        with_contact = int(np.count_nonzero(tot))
        orgs_total = int(orgs.sum(dtype=np.int64))
        if rows is not None:
            orgs_total += int(orgs_rows.sum(dtype=np.int64)) - int(orgs[rows].sum(dtype=np.int64))
        self.orgs_per_patient = float(orgs_total) / with_contact if with_contact else 0.0
