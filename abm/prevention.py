"""Prevention and proactive care: who decides a yearly budget, how much, whom it reaches, and its monthly
spend. The `Prevention` part owns this year's plan (payers, people reached, budget) and whether the
alliance agreed; the effect on people lives in `Population` (pending and matured investment).

The decider depends on the arrangement (`prevention_holder`): the commissioner keeps a small public-health
line; a holder invests from the saving it keeps within its remaining term; an alliance needs unanimity.

The observed admission rates already contain the status quo's own public-health line (its effect is in
the data the rates come from), so prevention acts relative to that line: every year the line the status
quo would run (`prevention.observed_share` of each commissioner's allocation, on the people it would
reach) is planned as a shadow, and the population's emergency risk and health respond to the difference
(`Population.mature_prevention`). In the status quo at the defaults the two are the same and net to zero.
"""
from __future__ import annotations

import numpy as np


class Prevention:
    def __init__(self, model) -> None:
        self.model = model
        self.p = model.p
        self.plan = {"payers": [], "reached": np.empty(0, np.int64), "budget": 0.0}
        self.alliance_agreed = True
        self.spent_ytd: dict[int, float] = {}       # payer idx -> prevention spent this year
        self.shadow = {"reached": np.empty(0, np.int64), "budget": 0.0}
        pv = self.p["prevention"]
        # the arrangement runs the status quo's line itself: both lines are the same, the net effect zero
        # (skipping them gives the same numbers, bit for bit, as running both; a test holds it)
        self.shadow_same = self.SHORTCUT and model.arr["prevention_holder"] == "commissioner" \
            and pv["public_health_share"] == pv["observed_share"]

    #: skip both lines when they are the same (tests set it False to check the shortcut changes nothing)
    SHORTCUT = True

    # ------------------------------------------------------------------ incentives
    def kept_share(self, decider) -> float:
        """Share of the cost of an avoided emergency admission that lands on the decider (its incentive)."""
        m = self.model
        acute_org, variable = self._acute()
        c = m.network.funding("emergency", acute_org.org_id)
        if c is None:
            return 0.0
        if decider is acute_org:
            # paid per admission: losing an admission loses the tariff but saves only the variable cost
            return (variable - 1.0) if c.pay.per_activity else variable
        if c.payer == decider.org_id:
            if c.pay.per_activity:
                return 1.0
            return c.pass_through * variable
        return 0.0

    def alliance_kept(self) -> float:
        """Share of an avoided emergency admission's cost the alliance's partners keep between them. Against
        the target cost, the pool gains what the acute member no longer spends (its variable cost; fixed
        costs follow plans a year later); the tariff the commissioner saves it pays back in topping up the
        member's lost income, so the price itself is no gain. `pool_fraction` of it is pooled."""
        return self.model.arr["alliance"]["pool_fraction"] * self._acute()[1]

    def _acute(self):
        """The main emergency provider and the variable share of its cost (what an avoided admission saves)."""
        m = self.model
        acute = m.orgs[m.care.routing["emergency"]["idx"][0]]
        return acute, 1.0 - float(m.finance.fixed_share[acute.idx])

    def incentive(self, remaining_years: float, kept: float, mission: float = 0.0) -> float:
        """0-1: how much of the maximum budget a holder invests: the expected return it keeps inside its
        horizon, plus, for an NHS body, `mission` of the return that falls beyond it."""
        pv = self.p["prevention"]
        lag = pv["lag_months"] / 12.0
        life = 1.0 / max(pv["decay_per_year"], 1e-6)
        coverage = float(np.clip((remaining_years - lag) / life, 0.0, 1.0))
        coverage += mission * (1.0 - coverage)
        return float(np.clip(pv["expected_return"] * max(kept, 0.0) * coverage, 0.0, 1.0))

    def renewal_chance(self, holder) -> float:
        """The chance the holder expects renewal at term end: high for an incumbent in good standing, lower
        when its quality is near the commissioner's threshold or it is in intensive support."""
        m = self.model
        base = self.p["prevention"]["renewal_probability"]
        thr = self.p["oversight"]["quality_threshold"]
        standing = float(np.clip((holder.quality - thr) / max(holder.quality0 - thr, 0.05), 0.0, 1.0))
        if holder.oversight == "intensive":
            standing *= 0.5
        return base * standing

    @staticmethod
    def horizon(c, t: int, renewal: float) -> float:
        """Years a decider counts on: what remains of the term plus, with the chance of renewal, one more
        term."""
        if c.end is None:
            return 10.0
        return (c.end - t) / 12.0 + renewal * (c.end - c.start) / 12.0

    # ------------------------------------------------------------------ the yearly decision
    def decide(self, t: int) -> None:
        """Year start: the decider sets this year's budget; the people it reaches are chosen."""
        if t % 12:
            return
        m = self.model
        pv = self.p["prevention"]
        who = m.arr["prevention_holder"]
        payers: list[tuple[int, float]] = []
        budget = 0.0
        if who == "commissioner":          # each place's NHS commissioner keeps a public-health line
            payers = self._public_health_line(pv["public_health_share"])
            budget = sum(a for _, a in payers)
        elif who == "holder" and m.holder and not m.holder.failed:
            c = m.network[m.network.holder_contracts[0]]
            if c.status == "active":
                h = m.holder
                mission = pv["nhs_mission_weight"] if h.form.public else 0.0
                budget = pv["budget_share"] * c.value * self.incentive(self.horizon(c, t, self.renewal_chance(h)),
                                                                   self.kept_share(h), mission)
                payers = [(h.idx, budget)]
        elif who == "alliance":
            members = m.network.members()
            al = m.arr["alliance"]
            agree = all(c.trust >= al["unanimity_trust"] for c in members) if al["unanimity"] else True
            self.alliance_agreed = agree
            if members and agree:
                remaining = self.horizon(members[0], t, pv["renewal_probability"])
                total = sum(m.org_by_id[c.payee].expected_income for c in members)
                budget = pv["budget_share"] * total * self.incentive(remaining, self.alliance_kept())
                # the commissioner funds its risk share; members the rest, in proportion to their budgets
                s_c = al["risk_shares"].get(m.ccg.org_id, 0.0)
                payers = [(m.ccg.idx, budget * s_c)] + [
                    (m.org_by_id[c.payee].idx, budget * (1 - s_c) * m.org_by_id[c.payee].expected_income / total)
                    for c in members]
        reached = self._reach(t, budget)
        self.plan = {"payers": payers, "reached": reached, "budget": budget}
        # the shadow: the status quo's line this year (whom it reaches depends on the budget only through
        # whether there is one, so the same people as the plan's when both spend)
        shadow = sum(a for _, a in self._public_health_line(pv["observed_share"]))
        self.shadow = {"reached": reached if len(reached) and shadow > 0 else self._reach(t, shadow),
                       "budget": shadow}

    def _public_health_line(self, share: float) -> list[tuple[int, float]]:
        """(payer idx, yearly amount): `share` of each place's NHS commissioner's allocation."""
        m = self.model
        return [(m.org_by_id[oid].idx, share * m.network[f"alloc:{oid}"].value)
                for oid in dict.fromkeys(pl["commissioner"] for pl in m.eco["places"])]

    def _reach(self, t: int, budget: float) -> np.ndarray:
        """Population health analytics: the highest predicted risk first, or an even spread."""
        if budget <= 0:
            return np.empty(0, np.int64)
        m = self.model
        pv = self.p["prevention"]
        pop = m.pop
        k = max(1, int(pv["reach_share"] * pop.size))
        if pv["targeting"] == "risk":
            score = pop.risk_score()                 # zero for vacant rows (no demand)
            return np.argpartition(-score, k - 1)[:k]
        rng = m.stream("behaviour", 20_000 + t)
        if pop.size < pop.n:
            return rng.choice(np.flatnonzero(pop.present), size=k, replace=False)
        return rng.choice(pop.n, size=k, replace=False)

    # ------------------------------------------------------------------ the monthly spend
    def spend(self, t: int) -> None:
        """A twelfth of the budget each month, paid by whoever decided it, invested in the people reached."""
        m = self.model
        led = m.finance.ledger
        prev = 0.0
        if t % 12 == 0:
            self.spent_ytd = {}
        for idx, amount in self.plan["payers"]:
            led.spend(idx, amount / 12.0, "care")
            prev += amount / 12.0
            self.spent_ytd[idx] = self.spent_ytd.get(idx, 0.0) + amount / 12.0
        if not self.shadow_same:
            if prev:
                m.pop.invest(self.plan["reached"], prev)
            if self.shadow["budget"] > 0:
                m.pop.invest(self.shadow["reached"], self.shadow["budget"] / 12.0, shadow=True)
        m.results.add("prevention", prev)
        m.results.record("prevention", t, prev)
        m.results.record_add("cost", t, prev)
