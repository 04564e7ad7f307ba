"""The naive reference for `abm bench`: the model's monthly per-patient work written the classic
Mesa way, one `mesa.Agent` per patient, stepped by `model.agents.shuffle_do("step")`.

It exists only to measure how much the array formulation in `abm.patients` / `abm.care` /
`abm.metrics` buys. Each patient agent does, every month, what the vectorised code does for its
row: prevention maturing, demand draws per service (Poisson by inverse CDF from its yearly rate by
age band, conditions and frailty; emergency risk moved by prevention, health and continuity),
the digital/face-to-face and practice/federation split of GP contacts, provider choice by
(choice-adjusted) shares, discharge transitions after an emergency admission, hand-offs between
organisations (integrated or not), health recovery and losses, the reference health moving along its
expected path, the rolling 12-month contact window and its Bice-Boxerman continuity of care. Rates, routing, coverage and providers are copied
from a real `ContractingModel` built at the same size, so the per-patient inputs are the model's.

Not reproduced (they are per-organisation, not per-patient, work): money, contracts, capacity and
waiting lists, yearly population change. Draws come from `model.random` (Python's `random`), so
the reference is statistically, not bit-for-bit, equivalent.
"""
from __future__ import annotations

import math

import mesa

from . import care
from .patients import DEMAND, KMAX

ROUTED = ("community", "outpatient", "elective", "emergency", "mental_health", "social_care")


def poisson_inverse(lam: float, u: float, kmax: int) -> int:
    """The same inverse-CDF Poisson as `patients.poisson_levels` (K = #{j : u > P(K <= j)}), for one person."""
    p = math.exp(-lam)
    cdf = p
    k = 0
    if u > cdf:
        k = 1
        for j in range(1, kmax):
            p *= lam / j
            cdf += p
            if u > cdf:
                k += 1
            else:
                break
    return k


def pick(cum: list[float], u: float) -> int:
    """Index of the first cumulative share above u (a linear scan, as one would write it)."""
    for i, c in enumerate(cum):
        if u < c:
            return i
    return len(cum) - 1


class PatientAgent(mesa.Agent):
    """One registered person."""

    def __init__(self, model: "ReferenceModel", row: int):
        super().__init__(model)
        src = model.source.pop
        self.band = int(src.band[row])
        self.practice = int(src.practice[row])
        self.practice_org = int(model.source.care.practice_idx[self.practice])
        self.rates = {key: float(src.rate[key][row]) for key in DEMAND}
        self.ref_health = float(src.ref_health[row])
        self.exp_loss = float(src.exp_loss[row])      # the reference's expected monthly losses
        self.base_health = float(src.base_health[row])
        self.health = float(src.health[row])
        self.prev_pending = float(src.prev_pending[row])
        self.prev_stock = float(src.prev_stock[row])
        self.shadow_pending = float(src.shadow_pending[row])   # the status quo's line, as a shadow
        self.shadow_stock = float(src.shadow_stock[row])
        self.coc = math.nan
        self.ring = [dict() for _ in range(12)]   # contacts per slot, one dict per month
        self.window: dict[int, int] = {}           # contacts per slot over the last 12 months

    # ------------------------------------------------------------------ pieces of a month
    def prevention_effect(self) -> float:
        """Net of the status quo's line (as `Population.mature_prevention`)."""
        pv = self.model.p["prevention"]
        e = pv["effect_max"] * (1.0 - math.exp(-self.prev_stock / pv["half_saturation"]))
        e_s = pv["effect_max"] * (1.0 - math.exp(-self.shadow_stock / pv["half_saturation"]))
        return (e - e_s) / (1.0 - e_s)

    def emergency_multiplier(self) -> float:
        p = self.model.p
        mult = 1.0 - self.prevention_effect()
        g = p["demand"]["health_risk_gradient"]
        mult *= min(max(1.0 + g * (self.ref_health - self.health), 0.5), 3.0)
        c = p["continuity"]
        dev = 0.0 if math.isnan(self.coc) else self.coc - c["reference"]
        mult *= min(max(1.0 - c["acs_share"] * c["effect_per_0_2"] * dev / 0.2, 0.5), 1.5)
        return mult

    def step(self) -> None:
        m = self.model
        p = m.p
        rnd = m.random
        # prevention matures
        pv = p["prevention"]
        move = self.prev_pending / max(pv["lag_months"], 1)
        self.prev_pending -= move
        self.prev_stock = self.prev_stock * m.prev_decay + move
        move = self.shadow_pending / max(pv["lag_months"], 1)
        self.shadow_pending -= move
        self.shadow_stock = self.shadow_stock * m.prev_decay + move
        # demand
        counts = {}
        for key in DEMAND:
            lam = self.rates[key] * m.surge / 12.0
            if key == "emergency":
                lam *= self.emergency_multiplier()
            elif key in ("outpatient", "elective"):
                lam *= m.choice_factor[key]
            counts[key] = poisson_inverse(lam, rnd.random(), KMAX[key])
        gp = counts.pop("gp_contacts")
        dig = min(int(gp * m.digital_share[self.practice] + rnd.random()), gp)
        counts["gp_digital"] = dig
        counts["gp_f2f"] = gp - dig
        counts["community"] = counts.pop("community_contacts")
        month: dict[int, int] = {}
        # general practice: own practice, a share at the federation
        for s in ("gp_f2f", "gp_digital"):
            k = counts[s]
            if not k:
                continue
            r = m.routing[s]
            fed = 0
            if r["idx"]:
                fed = min(int(k * (1.0 - r["practice_share"]) + rnd.random()), k)
                if fed:
                    org = r["idx"][0]
                    m.units[org] = m.units.get(org, 0) + fed
                    slot = m.slot_of[org]
                    month[slot] = month.get(slot, 0) + fed
            own = k - fed
            if own:
                m.units[self.practice_org] = m.units.get(self.practice_org, 0) + own
                month[0] = month.get(0, 0) + own
        # other services: one provider per person-month by shares
        chosen = {}
        for s in ROUTED:
            k = counts[s]
            if not k:
                continue
            r = m.routing[s]
            org = r["idx"][pick(m.cum[s], rnd.random())]
            chosen[s] = org
            m.units[org] = m.units.get(org, 0) + k
            slot = m.slot_of[org]
            month[slot] = month.get(slot, 0) + k
        # discharges after an emergency admission
        handoffs = []  # (from org, to org, is_discharge)
        tr = p["transitions"]
        if counts["emergency"]:
            u = rnd.random()
            pc = tr["discharge_to_community"][self.band]
            ps = tr["discharge_to_social_care"][self.band]
            target = None
            if u < pc:
                target, per = "community", int(tr["community_contacts_per_discharge"])
            elif u < pc + ps:
                target, per = "social_care", int(tr["social_care_weeks_per_discharge"])
            if target:
                r = m.routing[target]
                org = r["idx"][pick(m.cum[target], rnd.random())]
                m.units[org] = m.units.get(org, 0) + per
                slot = m.slot_of[org]
                month[slot] = month.get(slot, 0) + min(per, 4)
                handoffs.append((m.acute, org, True))
        # referrals
        if "outpatient" in chosen:
            handoffs.append((self.practice_org, chosen["outpatient"], False))
        if "elective" in chosen:
            handoffs.append((chosen.get("outpatient", self.practice_org), chosen["elective"], False))
        if "mental_health" in chosen and rnd.random() < tr["gp_to_mental_health_referral"]:
            handoffs.append((self.practice_org, chosen["mental_health"], False))
        hp = p["health"]
        loss = 0.0
        for a, b, is_discharge in handoffs:
            if m.entity[a] != m.entity[b]:
                m.handoffs += 1
                cov = m.coverage[a][b]
                m.integrated += cov
                loss += hp["handoff_loss"] * (1.0 - cov)
                if is_discharge:
                    m.delayed += 1.0 - cov
        # health
        target_h = min(self.base_health + hp["prevention_gain"] / max(pv["effect_max"], 1e-9)
                       * self.prevention_effect(), 1.0)
        h = self.health + hp["recovery_rate"] * (target_h - self.health)
        h -= hp["admission_loss"] * counts["emergency"]
        m.admissions += counts["emergency"]
        for s in care.CHOICE_SERVICES:
            if s in chosen:
                h -= p["costs"]["waiting_health_loss"] * m.wait_frac[s].get(chosen[s], 0.0)
                h -= m.rationing[s]
        self.health = min(max(h - loss, 0.0), 1.0)
        ref = self.ref_health + hp["recovery_rate"] * (self.base_health - self.ref_health) - self.exp_loss
        self.ref_health = min(max(ref, 0.0), 1.0)
        # the rolling 12-month contact window and continuity of care
        slot_now = m.month % 12
        old = self.ring[slot_now]
        for slot, k in old.items():
            left = self.window[slot] - k
            if left:
                self.window[slot] = left
            else:
                del self.window[slot]
        self.ring[slot_now] = month
        for slot, k in month.items():
            self.window[slot] = self.window.get(slot, 0) + k
        n = sum(self.window.values())
        if n >= 4:
            self.coc = (sum(k * k for k in self.window.values()) - n) / (n * (n - 1))
        else:
            self.coc = math.nan


class ReferenceModel(mesa.Model):
    """`n_patients` patient agents of a `ContractingModel` of the same size."""

    def __init__(self, n_patients: int = 10_000, arrangement: str = "fragmented", rng: int = 1,
                 source=None):
        super().__init__(rng=rng)
        if source is None:
            source = build_source(n_patients, arrangement, rng)
        self.source = source
        self.p = source.p
        self.month = 0
        pv = self.p["prevention"]
        self.prev_decay = (1 - pv["decay_per_year"]) ** (1 / 12)
        self.surge = 1.0
        # routing as plain lists
        self.routing = {s: {"idx": [int(i) for i in r["idx"]], "practice_share": float(r["practice_share"])}
                        for s, r in source.care.routing.items()}
        self.slot_of = [int(x) for x in source.care.slot_of]
        self.entity = [int(x) for x in source.care.entity]
        self.coverage = [[float(x) for x in row] for row in source.care.coverage]
        self.acute = int(source.care.routing["emergency"]["idx"][0])
        self.digital_share = [float(x) for x in source.care.practice_digital]
        self.cum, self.choice_factor, self.rationing, self.wait_frac = {}, {}, {}, {}
        self._month_inputs()
        for row in range(source.pop.n):
            PatientAgent(self, row)
        self.continuity = math.nan

    def _month_inputs(self) -> None:
        """Per-service (not per-patient) inputs, as the array model computes them each month."""
        src = self.source
        avoid = self.p["payment_response"]["rationing_health_loss"]
        for s in care.S:
            if s not in self.routing or not self.routing[s]["idx"] or s.startswith("gp_"):
                continue
            shares = src.care.choice_shares(s)
            cum, acc = [], 0.0
            for x in shares:
                acc += float(x)
                cum.append(acc)
            cum[-1] = 1.0 + 1e-6
            self.cum[s] = cum
            resp = src.care.routing[s]["resp"]
            self.choice_factor[s] = float((shares * resp).sum())
            if s in care.CHOICE_SERVICES:
                self.rationing[s] = avoid * float(((1.0 - resp).clip(0) * shares).sum())
                self.wait_frac[s] = {}

    def step(self) -> None:
        self.units: dict[int, int] = {}
        self.handoffs = 0
        self.integrated = 0.0
        self.delayed = 0.0
        self.admissions = 0
        self._month_inputs()
        self.agents.shuffle_do("step")
        # the continuity metric, gathered from the agents
        vals = [a.coc for a in self.agents if not math.isnan(a.coc)]
        self.continuity = sum(vals) / len(vals) if vals else 0.0
        self.month += 1


def build_source(n_patients: int, arrangement: str = "fragmented", rng: int = 1):
    """A `ContractingModel` whose population has about n_patients people (inputs for the agents)."""
    from .model import ContractingModel
    from .params import load_economy
    total = float(load_economy(None)["population"]["total"]["value"])
    if n_patients <= total:
        return ContractingModel(arrangement=arrangement, rng=rng, population_scale=n_patients / total)
    return ContractingModel(arrangement=arrangement, rng=rng, economy__population__total=int(n_patients))


__all__ = ["ReferenceModel", "PatientAgent", "build_source", "poisson_inverse"]
