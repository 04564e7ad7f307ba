"""Money: baseline spend, allocations, monthly costs and payments, and settlement under each contract's
risk terms. The `Finance` part owns the ledger, per-organisation cost arrays (unit costs, fixed shares,
expected activity) and the running totals that settlement needs; every movement goes through the ledger.
"""
from __future__ import annotations

import numpy as np

from .contracts import Contract, ContractNetwork, build_network
from .kinds import CONTRACT_KINDS, PAYMENT_KINDS, ContractKind
from .money import Ledger
from .params import SERVICES, load_arrangement

S = {s: i for i, s in enumerate(SERVICES)}
# allocations are set from what the status quo spends, whatever the arrangement, so every arrangement
# gets the same money (the baseline a researcher compares against may be any arrangement)
STATUS_QUO = "fragmented"


def corridor_transfer(terms: dict, deviation: float, value: float) -> float:
    """Payer's share of a holder's deviation (positive = overspend) under its risk terms."""
    kind = terms.get("kind", "none") if terms else "none"
    x = abs(deviation)
    sign = 1.0 if deviation > 0 else -1.0
    if kind == "corridor":
        bands = list(terms["bands"]) + [(float("inf"), 0.0)]
        share_amount = 0.0
        for (lo, s), (hi, _) in zip(bands[:-1], bands[1:]):
            if x > lo:
                share_amount += s * (min(x, hi) - lo)
        return sign * share_amount * value
    if kind == "gain_loss":
        beyond = max(0.0, x - terms["min_rate"])
        side = "loss" if deviation > 0 else "gain"
        share = terms.get(f"{side}_share")
        cap = terms.get(f"{side}_cap")
        share = terms["share"] if share is None else share
        cap = terms["cap"] if cap is None else cap
        return sign * min(share * beyond, cap) * value
    return 0.0


def achievement(x: float, target: float, floor: float) -> float:
    """0 at the floor, 1 at the target, linear between and clipped (works in either direction)."""
    return float(np.clip((x - floor) / (target - floor), 0.0, 1.0))


class Finance:
    """Ledger, costs, payments and settlement.

    Owns: `ledger`; per organisation (rows = agent idx) `exp_units`, `fixed_share`, `cost_scale`,
    `var_unit`, `year_care`, `settle_in/out`; per service `price`, `unit_cost`; `spend` (baseline £ by
    provider and service); `uplift`; per contract `paid_ytd` and `settled_ytd`; the alliance pool to date.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.p = model.p
        self.ledger: Ledger | None = None
        self.uplift = 1.0
        self.paid_ytd: dict[str, float] = {}
        self._practice_need0 = None
        self._practice_key = None
        self._places_of: dict[str, list[int] | None] = {}
        self.settled_ytd: dict[str, float] = {}
        self.pool_ytd: dict[str, float] = {}
        self.pool_rate = 0.0
        self.alliance_budget: dict[str, float] = {}     # member -> this year's target cost
        self._alliance_heads0: dict[str, float] = {}

    # ------------------------------------------------------------------ baseline
    def expected_units(self, by_place: bool = False, surge: bool = True) -> np.ndarray:
        """Expected yearly activity [organisation, service] of the people registered now, at the rates of
        this year and each provider's share of each service ([place, organisation, service] by place:
        each place's people at the providers they use)."""
        m = self.model
        care = m.care
        P = care.n_places
        if P == 1:
            e = self._expected_units(None, 0, surge)
            return e[None] if by_place else e
        shared = self.place_totals()
        per = np.stack([self._expected_units(q, q, surge, shared) for q in range(P)])
        return per if by_place else per.sum(axis=0)

    def place_totals(self) -> dict:
        """Each place's expected yearly totals at this year's rates: emergencies planned ("em"), the
        discharges to community and social care they lead to ("disc"), every other service's rate sum
        ("rate"), and GP contacts per practice ("gp"), from one pass of sums by practice and cell
        (Population.practice_cell_sums; a practice is in one place)."""
        m = self.model
        pop, P = m.pop, m.care.n_places
        tr = self.p["transitions"]
        frailty, em = pop.practice_cell_sums(self._planned_emergency_rate())
        of = m.care.place_of_practice
        frailty_q, em_q = np.zeros((P, 63)), np.zeros((P, 7))
        np.add.at(frailty_q, of, frailty)
        np.add.at(em_q, of, em)
        coef = lambda k: pop.coef[k].astype(np.float64).ravel() * pop.trend.get(k, 1.0)
        keys = ("community_contacts", "outpatient", "elective", "mental_health", "social_care")
        disc = [em_q @ np.asarray(tr[k], np.float64) for k in ("discharge_to_community", "discharge_to_social_care")]
        return {"em": em_q.sum(axis=1), "rate": {k: frailty_q @ coef(k) for k in keys}, "disc": disc,
                "gp": frailty @ coef("gp_contacts")}

    def _planned_emergency_rate(self) -> np.ndarray:
        """Emergencies are planned from the population's current risk (health and prevention included),
        as a trust plans from the admissions it sees, not from rates of a healthier or sicker population."""
        pop = self.model.pop
        return pop.rate["emergency"] * pop.health_multiplier() * (1.0 - pop.prevention_effect())

    def _expected_units(self, place: int | None, q: int, surge: bool = True,
                        shared: dict | None = None) -> np.ndarray:
        m, p = self.model, self.p
        pop = m.pop
        n_orgs = len(m.orgs)
        d0 = p["digital"]["baseline_share"]
        tr = p["transitions"]
        tariff_resp = 1 + p["payment_response"]["tariff_activity"]
        status_quo = m.arr["standard_payment"]
        if place is None:
            em_rate = self._planned_emergency_rate()
            disc = [float((em_rate * np.asarray(tr[k])[pop.band]).sum())
                    for k in ("discharge_to_community", "discharge_to_social_care")]
            total_of = lambda k: float(pop.rate[k].sum())
            em_total = float(em_rate.sum())
        else:       # the place's sums (expected_units)
            disc = [float(d[place]) for d in shared["disc"]]
            total_of = lambda k: float(shared["rate"][k][place])
            em_total = float(shared["em"][place])
        disc_comm = disc[0] * tr["community_contacts_per_discharge"]
        disc_sc = disc[1] * tr["social_care_weeks_per_discharge"]
        total = {
            "gp_f2f": None, "gp_digital": None,
            "community": total_of("community_contacts") + disc_comm,
            "outpatient": total_of("outpatient"),
            "elective": total_of("elective"),
            "emergency": em_total,
            "mental_health": total_of("mental_health"),
            "social_care": total_of("social_care") + disc_sc,
        }
        practice_idx = np.array([pr.idx for pr in m.practices])
        if place is None:
            gp_by_practice = np.bincount(pop.practice, weights=pop.rate["gp_contacts"], minlength=len(m.practices))
        else:
            gp_by_practice = np.where(m.care.place_of_practice == q, shared["gp"], 0.0)
        if surge:           # plans see a demand surge under way (the baseline spend does not)
            for s in total:
                if total[s] is not None:
                    total[s] *= 1.0 + m.shock_level("demand_surge", m.month, (s,))
            gp_by_practice = gp_by_practice * (1.0 + m.shock_level("demand_surge", m.month, ("gp_f2f", "gp_digital")))
        exp_units = np.zeros((n_orgs, len(SERVICES)))
        for s in m.care.service_providers:
            for oid, sh in m.care.place_shares(s, q).items():
                if oid == "practice":
                    split = (1 - d0) if s == "gp_f2f" else d0
                    exp_units[practice_idx, S[s]] += gp_by_practice * split * sh
                    continue
                o = m.org_by_id[oid]
                if s in ("gp_f2f", "gp_digital"):
                    split = (1 - d0) if s == "gp_f2f" else d0
                    exp_units[o.idx, S[s]] += gp_by_practice.sum() * split * sh
                else:
                    resp = tariff_resp if s in ("outpatient", "elective") and status_quo.get(o.kind) == "tariff" else 1.0
                    exp_units[o.idx, S[s]] += total[s] * sh * resp
        return exp_units

    def set_baseline(self) -> None:
        """Expected yearly activity, current spend (at tariff) and costs of every organisation.

        Contract values are set from current spend (WPAP from population and current spend: NHS England,
        Draft ICP Contract, 2018), and the allocation from the status quo's spend, so it is the same
        whatever the arrangement."""
        m, p = self.model, self.p
        n_orgs = len(m.orgs)
        unit = p["costs"]["unit_cost"]
        price = {s: unit[s] * p["tariff"]["price_to_cost"] for s in SERVICES}
        status_quo = m.arr["standard_payment"]
        exp_units = self.expected_units(surge=False)
        self.exp_units = exp_units          # this year's planning basis (last year's estimate: a lag)
        self.exp_units0 = exp_units.copy()  # at the start
        self._estimate = self.expected_units()  # the estimate made at the latest year start (for next year)
        self.activity = np.ones(n_orgs)     # planned activity (at cost) relative to the start, per organisation
        self.uplift = 1.0
        fixed_share = p["costs"]["fixed_cost_share"]
        self.fixed_share = np.array([fixed_share.get(o.kind, 0.5) for o in m.orgs])
        self.spend: dict[str, dict[str, float]] = {}
        unit_arr = np.array([unit[s] for s in SERVICES])
        price_arr = np.array([price[s] for s in SERVICES])
        cap = p["funding"]["gp_capitation"]
        billing = p["transaction"]["billing_share"]
        delay = self._status_quo_delay_cost()
        self.cost_scale = np.ones(n_orgs)
        self.full_cost_ratio = np.ones(n_orgs)
        for o in m.orgs:
            row = exp_units[o.idx]
            delivery = float((row * unit_arr).sum())
            practice = o.side == "practice"
            if practice:
                o.expected_income = cap * o.list_size
            else:
                self.spend[o.org_id] = {s: float(row[S[s]] * price_arr[S[s]]) for s in SERVICES if row[S[s]] > 0}
                o.expected_income = float(sum(self.spend[o.org_id].values()))
            # status quo in balance: costs other than delivery are met from the same income
            extras = billing.get(status_quo.get(o.kind, "capitation" if practice else "block"), 0.0) \
                * o.expected_income + delay.get(o.idx, 0.0)
            if delivery > 0:
                self.cost_scale[o.idx] = float(np.clip((o.expected_income - extras) / delivery, 0.5, 1.5))
            o.expected_cost = delivery * self.cost_scale[o.idx] * o.cost_ratio
            o.fixed_cost = float(self.fixed_share[o.idx] * o.expected_cost)
            # everything it costs to provide what it is paid for now (delivery, billing, delays)
            self.full_cost_ratio[o.idx] = (o.expected_cost + extras) / o.expected_income if o.expected_income > 0 else 1.0
            if practice:
                self.spend[o.org_id] = {"gp_total_cost": o.expected_cost}
        self.price = price_arr
        self.unit_cost = unit_arr
        # spend on each place's people (several places: contracts are held place by place)
        if m.care.n_places == 1:
            self.spend_place = [self.spend]
        else:
            per = self.expected_units(by_place=True, surge=False)
            self.spend_place = [{o.org_id: {s: float(per[q, o.idx, S[s]] * price_arr[S[s]]) for s in SERVICES
                                            if per[q, o.idx, S[s]] > 0} for o in m.orgs if o.side != "practice"}
                                for q in range(m.care.n_places)]
        self.year_care = np.zeros(n_orgs)
        self.loans = np.zeros(n_orgs)          # cash support outstanding (NHS trusts)
        self.support_ytd = np.zeros(n_orgs)    # net cash support this year
        self.settle_in = np.zeros(n_orgs)
        self.settle_out = np.zeros(n_orgs)
        self.refresh_var_unit()

    def _status_quo_delay_cost(self) -> dict[int, float]:
        """Expected yearly cost of discharges delayed at uncovered hand-offs under the status quo (acute only)."""
        m, p = self.model, self.p
        pop = m.pop
        tr = p["transitions"]
        share = np.asarray(tr["discharge_to_community"]) + np.asarray(tr["discharge_to_social_care"])
        n = float((pop.rate["emergency"] * share[pop.band]).sum())
        out = {}
        for oid, sh in m.care.service_providers["emergency"].items():
            if oid != "practice":
                out[m.org_by_id[oid].idx] = n * sh * p["costs"]["delayed_discharge_days"] * p["costs"]["excess_bed_day_cost"]
        return out

    def refresh_var_unit(self) -> None:
        """Variable cost per unit of each service at each organisation (after cost-ratio changes)."""
        ratio = np.array([o.cost_ratio for o in self.model.orgs]) * self.cost_scale
        self.var_unit = (1 - self.fixed_share)[:, None] * self.unit_cost[None, :] * ratio[:, None]

    def cost_share(self, org, services) -> float:
        """Share of an organisation's expected cost that `services` account for."""
        cols = [S[s] for s in services]
        total = float(self.exp_units0[org.idx] @ self.unit_cost)
        return float(self.exp_units0[org.idx, cols] @ self.unit_cost[cols]) / total if total > 0 else 1.0

    def add_organisation(self, org, like, services: list[str] | None = None) -> None:
        """A new organisation takes over `like`'s cost structure and expected activity (only for
        `services` when given: those columns move from `like` to it)."""
        self.ledger.grow(1)
        i = like.idx
        self.fixed_share = np.append(self.fixed_share, self.fixed_share[i])
        self.cost_scale = np.append(self.cost_scale, self.cost_scale[i])
        self.full_cost_ratio = np.append(self.full_cost_ratio, self.full_cost_ratio[i])
        self.exp_units = np.vstack([self.exp_units, self.exp_units[i]])
        self.exp_units0 = np.vstack([self.exp_units0, self.exp_units0[i]])
        self._estimate = np.vstack([self._estimate, self._estimate[i]])
        self.activity = np.append(self.activity, self.activity[i])
        if services is not None:
            keep = np.ones(len(SERVICES), bool)
            keep[[S[s] for s in services]] = False
            for a in (self.exp_units, self.exp_units0, self._estimate):
                a[org.idx, keep] = 0.0
                a[i, ~keep] = 0.0
        self.year_care = np.append(self.year_care, 0.0)
        self.loans = np.append(self.loans, 0.0)
        self.support_ytd = np.append(self.support_ytd, 0.0)
        self.settle_in = np.append(self.settle_in, 0.0)
        self.settle_out = np.append(self.settle_out, 0.0)
        self.refresh_var_unit()

    def lend(self, org, amount: float, t: int) -> None:
        """Repayable cash support from the funder (NHS revenue support): a transfer, so money is conserved."""
        if amount <= 0:
            return
        self.ledger.lend(self.model.funder.idx, org.idx, amount)
        self.loans[org.idx] += amount
        self.support_ytd[org.idx] += amount

    def repay(self, org, amount: float) -> None:
        if amount <= 0:
            return
        self.ledger.lend(self.model.funder.idx, org.idx, -amount)
        self.loans[org.idx] -= amount
        self.support_ytd[org.idx] -= amount

    def cost_floor(self, oid: str, services: list[str]) -> float:
        """A provider's full yearly cost of delivering `services` at current activity (delivery, billing,
        delays): its reservation price, below which it would rather not sign."""
        o = self.model.org_by_id[oid]
        return sum(self.spend[oid].get(s, 0.0) for s in services) * float(self.full_cost_ratio[o.idx])

    def vat_rate(self, holder) -> float:
        """Irrecoverable VAT as a share of subcontracted value, for a holder of this VAT position."""
        vat = self.p["vat"]
        return vat["rate"] * vat["vatable_share"] * (vat["nhs_residual_share"] if holder.vat_recovers else 1.0)

    def contract_admin_cost(self, c: Contract, info: ContractKind | None = None) -> float:
        """Yearly cost to the payer of managing a contract (transaction cost)."""
        tx = self.p["transaction"]
        info = info or CONTRACT_KINDS[c["kind"]]
        if info.funding or c["status"] != "active":
            return 0.0
        key = info.admin_key or f"standard_{'tariff' if PAYMENT_KINDS[c['payment']].per_activity else 'block'}"
        return tx["contract_cost"].get(key, 0.0) * self.model.scale + tx["monitoring_share"].get(c["payment"], 0.0) * c["value"]

    def open_reserves(self) -> None:
        """Opening reserves: a share of expected income by kind (the holder: of its contract value)."""
        m = self.model
        self.ledger = Ledger(len(m.orgs), np.zeros(len(m.orgs)), m.funder.idx)
        rs = self.p["funding"]["reserve_share"]
        holder_value = sum(m.network[c].value for c in m.network.holder_contracts)
        for o in m.orgs:
            if o.side == "funder":
                continue
            income = o.expected_income
            if m.holder is o:
                income = max(income, holder_value)
            self.ledger.balance[o.idx] = rs.get(o.kind, 0.03) * income
        self.ledger.opening = self.ledger.balance.copy()

    def set_allocations(self) -> None:
        """Allocations from the status quo's spend plus running and contracting costs, per head."""
        m, p = self.model, self.p
        frag = load_arrangement(STATUS_QUO, economy=m.eco)
        modes = {pr.org_id: "outside" for pr in m.practices}
        lists = {pr.org_id: pr.list_size for pr in m.practices}
        status_quo = build_network(ContractNetwork(), m.eco, frag, p, self.spend, modes, {}, float(m.pop.size), lists,
                                   spend_place=self.spend_place, place_population=m.place_sizes())
        need = {o.org_id: 0.0 for o in m.orgs if o.side == "commissioner"}   # every commissioner is funded
        for pl, n in zip(m.eco["places"], m.place_sizes()):
            need[pl["commissioner"]] += p["funding"]["running_cost_per_head"] * n
        for c in status_quo:
            if c.payer in need and not c.info.funding:
                need[c.payer] += c.value + self.contract_admin_cost(c)
        margin = 1 + p["funding"]["allocation_margin"]
        sizes = m.place_sizes()
        for oid, amount in need.items():
            c = m.network[f"alloc:{oid}"]
            c.value = amount * margin
            qs = self.places_of_commissioner(oid)
            c.places = "" if qs is None else ",".join(m.eco["places"][q]["id"] for q in qs)
            c.per_capita = c.value / (m.pop.size if qs is None else float(sum(sizes[q] for q in qs)))
            m.org_by_id[oid].expected_income = c.value

    def direct_contracts(self, org, services, value: float, t: int, kind: str = "standard") -> list[Contract]:
        """Standard contracts (or non-contract activity at tariff, for another system's provider) from each
        payer that commissions `services` for the places `org` serves, together worth `value` a year (split
        in proportion to current spend), routed to `org`."""
        m = self.model
        places = m.eco["places"]
        comm_of = m.eco["commissioned_by"]["value"]
        oid = org.org_id.split("~")[0] if org.org_id not in self.spend else org.org_id
        split: dict[str, dict] = {}
        for q, sp in enumerate(self.spend_place):
            for s in services:
                who = comm_of[s]
                payer = places[q][who] if who in ("commissioner", "local_authority") else who
                x = sp.get(org.org_id, sp.get(oid, {})).get(s, 0.0)
                d = split.setdefault(payer, {"services": [], "spend": 0.0, "places": set()})
                if s not in d["services"]:
                    d["services"].append(s)
                d["spend"] += x
                if x > 0:
                    d["places"].add(q)
        total = sum(d["spend"] for d in split.values()) or 1.0
        out = []
        pay = "tariff" if kind == "non_contract" else m.arr["standard_payment"].get(org.kind, "block")
        prefix = "nca2" if kind == "non_contract" else "std2"
        for payer, d in split.items():
            if d["spend"] <= 0 and len(split) > 1:
                continue
            qs = sorted(d["places"])
            c = m.network.add(Contract(cid=f"{prefix}:{payer}:{org.org_id}:{t}", kind=kind, payment=pay, payer=payer,
                                       payee=org.org_id, value=value * d["spend"] / total, start=t,
                                       services=d["services"],
                                       places=",".join(places[q]["id"] for q in qs) if len(places) > 1 else ""))
            m.network.set_route(d["services"], org.org_id, c.cid)
            out.append(c)
        return out

    def places_of_commissioner(self, oid: str) -> list[int] | None:
        """The places whose people a commissioner or council pays for (None: all of them)."""
        places = self.model.eco["places"]
        qs = [q for q, pl in enumerate(places) if oid in (pl["commissioner"], pl["local_authority"])]
        return None if not qs or len(qs) == len(places) else qs

    def contract_places(self, c: Contract) -> list[int] | None:
        """The place indices a contract pays for (None: every place), parsed once per places string."""
        key = c.places
        if not key:
            return None
        if key not in self._places_of:
            pos = {pl["id"]: q for q, pl in enumerate(self.model.eco["places"])}
            qs = [pos[x] for x in key.split(",")]
            self._places_of[key] = None if len(qs) == len(pos) else qs
        return self._places_of[key]

    # ------------------------------------------------------------------ procurement
    def procurement_cost(self, value: float) -> float:
        """One-off cost of procuring a contract above the Public Contracts Regulations threshold, at
        population scale."""
        tx = self.p["transaction"]
        scale = self.model.scale
        full_value = value / scale
        if full_value <= tx["procurement_threshold"]:
            return 0.0
        pc = tx["procurement_cost"]
        return min(pc["max"], pc["base"] + pc["per_million"] * full_value / 1e6) * scale

    def procure(self, c: Contract) -> None:
        m = self.model
        cost = self.procurement_cost(c.value)
        if cost:
            self.ledger.spend(m.org_by_id[c.payer].idx, cost, "transaction")
            m.results.add("procurement", cost)
            m.results.record_add("transaction", m.month, cost)
            m.results.record_add("cost", m.month, cost)
        c.procured = True

    def initial_procurement(self, t: int) -> None:
        """Month 0: new holder contracts are procured, and the alliance agreement once."""
        if t != 0:
            return
        m = self.model
        seen_agreement = False
        for c in list(m.network):
            if c.info.holder_population:
                self.procure(c)
            elif c.info.agreement and not seen_agreement:
                # an agreement over existing contracts: set up, not procured
                cost = self.p["transaction"]["alliance_setup_cost"] * m.scale
                self.ledger.spend(m.org_by_id[c.payer].idx, cost, "transaction")
                m.results.add("procurement", cost)
                m.results.record_add("transaction", t, cost)
                m.results.record_add("cost", t, cost)
                seen_agreement = True

    # ------------------------------------------------------------------ yearly contract upkeep
    def renew_contracts(self, t: int) -> None:
        """Contracts at the end of their term are re-procured (holder) or renewed for another term."""
        for c in self.model.network.active():
            if c.end is not None and c.end <= t:
                term = c.end - c.start
                c.start, c.end = t, t + term
                if c.info.holder_population:
                    self.procure(c)

    def plan_activity(self, t: int) -> None:
        """Year start: the activity organisations plan for (capacity, fixed costs, block values) is last
        year's estimate from the registered population (a lag of a year); this year's estimate is made for
        next year. The cost tables of weighted capitation are re-based from this year's rates."""
        if t % 12:
            return
        m = self.model
        if t > 0:
            self.exp_units = self._estimate
            self._estimate = self.expected_units()
        now, base = self.exp_units @ self.unit_cost, self.exp_units0 @ self.unit_cost
        self.activity = np.divide(now, base, out=np.ones_like(now), where=base > 0)
        p = self.p
        self._tables = m.pop.service_cost_tables(p["costs"]["unit_cost"], p["digital"]["baseline_share"], p["transitions"])
        self._counts = m.pop.cell_counts()
        if m.care.n_places > 1:
            by_practice = m.pop.cell_counts(by_practice=True)
            self._counts_place = np.zeros((m.care.n_places, 63))
            np.add.at(self._counts_place, m.care.place_of_practice, by_practice)
        if t == 0:
            self._tables0, self._counts0, self._size0 = self._tables, self._counts, float(m.pop.size)
            self._place_factor = {}
        # a practice staffs to its list weighted for need, the measure its capitation follows (GMS global
        # sum per weighted patient), not to its own patients' modelled activity: in a scaled-down run a
        # few frail patients would otherwise swing a small practice's fixed costs against its income
        if m.practices:
            need = self.weighted_lists()
            if t == 0:
                self._practice_list0 = np.maximum(need, 1.0)
            idx = np.array([pr.idx for pr in m.practices])
            self.activity[idx] = need / self._practice_list0

    def replan(self, org, ratio: float) -> None:
        """An organisation's planned activity (and so its fixed costs and capacity) changes now by `ratio`
        (a practice most of whose patients stayed with the ICP when it returned)."""
        for a in (self.exp_units, self._estimate):
            a[org.idx] *= ratio
        now, base = float(self.exp_units[org.idx] @ self.unit_cost), float(self.exp_units0[org.idx] @ self.unit_cost)
        self.activity[org.idx] = now / base if base > 0 else 1.0

    def weighted_heads(self, services, places: list[int] | None = None) -> float:
        """Registered population weighted for need (weighted capitation): each person counts as their
        cell's expected cost of `services` relative to the average person at the start, so a population
        that ages or grows sicker counts for more. The logic of NHS England's ICB allocation formula (age
        and additional-need weights; "Technical guide to the formulae for ICB revenue allocations"), with
        the weights from the model's own expected costs. `funding.weighting: flat` counts heads."""
        m = self.model
        if places is not None:
            heads = float(sum(m.place_sizes()[q] for q in places))
        else:
            heads = float(m.pop.size)
        if self.p["funding"]["weighting"] == "flat" or not services:
            return heads
        k_now = sum(self._tables[s] for s in services)
        k_base = sum(self._tables0[s] for s in services)
        mean0 = float(self._counts0 @ k_base) / self._size0
        if mean0 <= 0:
            return heads
        if places is None:
            return float(self._counts @ k_now) / mean0
        w = float(self._counts_place[places].sum(axis=0) @ k_now) / mean0
        key = (tuple(sorted(services)), tuple(places))
        if key not in self._place_factor:           # at the start, these places count as their heads
            self._place_factor[key] = heads / w if w > 0 else 1.0
        return w * self._place_factor[key]

    def weighted_lists(self) -> np.ndarray:
        """Every practice's list weighted for the need for general practice, so its capitation follows
        changes in its patients' age and conditions (the global sum is paid per weighted patient: NHS
        England GMS contract, Carr-Hill formula); normalised to its own list at the start, where contract
        values were set from what it was paid. `funding.weighting: flat` counts heads."""
        lists = np.array([pr.list_size for pr in self.model.practices], dtype=float)
        if self.p["funding"]["weighting"] == "flat":
            return lists
        gp = ("gp_f2f", "gp_digital")
        pop = self.model.pop
        if self._practice_key != pop.registrations:      # lists change at year start and on returns/closures
            self._practice_counts = pop.cell_counts(by_practice=True)
            self._practice_key = pop.registrations
        need = self._practice_counts @ sum(self._tables[s] for s in gp)
        if self._practice_need0 is None:
            self._practice_need0 = need / np.maximum(self._practice_counts.sum(axis=1), 1.0)
        base = self._practice_need0
        return np.where(base > 0, need / np.where(base > 0, base, 1.0), lists)

    def weighted_list(self, practice_idx: int) -> float:
        """One practice's weighted list (weighted_lists)."""
        return float(self.weighted_lists()[practice_idx])

    def capitation_value(self, c: Contract, practice_idx: int) -> float:
        """This year's value of a practice's GMS/PMS contract: per weighted patient, with the uplift."""
        return c.per_capita * self.weighted_list(practice_idx) * self.uplift

    def contract_activity(self, c: Contract) -> float:
        """Planned activity of a contract's services at its payee, relative to the start (at prices)."""
        o = self.model.org_by_id[c.payee]
        cols = [S[s] for s in c.services] or list(range(len(SERVICES)))
        base = float(self.exp_units0[o.idx, cols] @ self.price[cols])
        return float(self.exp_units[o.idx, cols] @ self.price[cols]) / base if base > 0 else 1.0

    def funded_services(self, c: Contract) -> list[str]:
        """The services whose weighted population sets a per-head contract: a commissioner's allocation
        funds what it commissions; a holder contract its services other than core general practice."""
        if c.info.funding:
            return [s for s, who in self.model.eco["commissioned_by"]["value"].items() if who == c.payee]
        return [s for s in c.services if s not in ("gp_f2f", "gp_digital")] if c.gp_per_head else list(c.services)

    def update_contract_values(self, t: int) -> None:
        """Yearly values: allocations and population payments follow the weighted population; capitation
        follows lists; block and fee contracts, and tariff contracts' indicative plans, follow planned
        activity; all with the real-terms uplift."""
        m = self.model
        grow = self.p["funding"]["growth_with_population"]
        self.uplift = (1 + self.p["funding"]["real_growth"]) ** (t // 12)
        up = self.uplift
        lists = {pr.org_id: pr.list_size for pr in m.practices}
        prac = {pr.org_id: k for k, pr in enumerate(m.practices)}
        full_list = sum(pr.list_size for pr in m.practices if pr.mode == "full" and not pr.failed)
        self.paid_ytd = {}
        for c in m.network.active():
            if not c.base_value:
                c.base_value = c.value
            info, pay = c.info, c.pay
            if info.funding or info.holder_population:
                if grow and c.per_capita:
                    qs = self.contract_places(c)
                    gp_list = full_list if qs is None else sum(
                        pr.list_size for k, pr in enumerate(m.practices) if pr.mode == "full" and not pr.failed
                        and m.care.place_of_practice[k] in qs)
                    c.value = (c.per_capita * self.weighted_heads(self.funded_services(c), qs)
                               + c.gp_per_head * gp_list) * up
                else:
                    c.value = c.base_value * up
            elif c.payee in lists and c.per_capita:
                c.value = (self.capitation_value(c, prac[c.payee]) if c.kind == "gms_pms"
                           else c.per_capita * lists[c.payee] * up)
            elif info.employment:
                pr = m.org_by_id[c.payee]
                c.value = (pr.fixed_cost * self.activity[pr.idx]
                           + float((self.exp_units[pr.idx] * self.var_unit[pr.idx]).sum())) * up
            elif pay.fixed_value or pay.per_activity:
                # a tariff contract's value is its indicative activity plan (planned activity at prices):
                # what the commissioner expects to pay, and an alliance member's share of the budget
                c.value = c.base_value * up * self.contract_activity(c)
        self.set_alliance_budget()

    def set_alliance_budget(self) -> None:
        """Year start: the alliance's target cost per member. Agreed at the start from what each member's
        service contracts were worth, it then grows with the weighted population those services serve
        (age, conditions and the expected rise in emergencies, as a population payment does) and with the
        real-terms uplift, but not with the members' own activity: what the alliance avoids by prevention
        and joint working is an underspend the partners share, not a smaller budget next year. The
        gain/pain share against an agreed target cost of alliance contracting (NHS England IPC, "About
        contracting for integrated care"; King's Fund 2015)."""
        m = self.model
        self.alliance_budget = {}
        members = {c.payee for c in m.network.members()}
        if not members:
            return
        for c in m.network.active():
            if c.payee not in members or c.info.agreement or c.info.funding:
                continue
            qs = self.contract_places(c)
            heads = self.weighted_heads(list(c.services), qs)
            heads0 = self._alliance_heads0.setdefault(c.cid, heads)
            growth = heads / heads0 if heads0 > 0 else 1.0
            self.alliance_budget[c.payee] = self.alliance_budget.get(c.payee, 0.0) + (
                (c.base_value or c.value) * self.uplift * growth)

    def start_settlement_year(self) -> None:
        self.settled_ytd = {}
        self.pool_ytd = {}
        self.settle_in = np.zeros(len(self.model.orgs))
        self.settle_out = np.zeros(len(self.model.orgs))

    # ------------------------------------------------------------------ monthly costs and payments
    def delivery_costs(self, t: int) -> None:
        """Providers' and practices' delivery costs (fixed and variable, shocks applied) and the interim
        premium of running a failed provider's services, to the care sink."""
        m, p = self.model, self.p
        led = self.ledger
        infl = 1.0 + m.shock_level("cost_inflation", t)
        shortfall = 1.0 + m.shock_level("efficiency_shortfall", t)
        n_orgs = len(m.orgs)
        # fixed costs (staff, estate) follow planned activity, so with a year's lag; practices' their lists.
        # Real cost growth (pay drift, dearer inputs) raises every cost, not the fixed part alone: prices
        # carry the same uplift, so margins do not drift upward year by year
        fixed = np.array([o.fixed_cost for o in m.orgs]) * self.activity / 12.0
        var = (m.care.units * self.var_unit).sum(axis=1)
        care = ((fixed + var) * infl + m.care.extra_cost) * self.uplift
        is_provider = np.array([o.side == "provider" for o in m.orgs])
        care = np.where(is_provider, care * shortfall, care)
        alive = np.array([not o.failed for o in m.orgs])
        care = care * alive
        led.spend_many(np.arange(n_orgs), care, "care")
        self.year_care += care
        month_cost = float(care.sum())
        # interim running of a failed provider's services costs extra; the commissioner re-procuring pays it
        interim = sum(care[o.idx] for o in m.orgs if o.interim_until > t) * p["failure"]["interim_premium"]
        if interim:
            led.spend(m.ccg.idx, interim, "care")
            month_cost += interim
        m.results.record_add("cost", t, month_cost)

    def transaction_costs(self, t: int) -> None:
        """Contract management, alliance governance, subcontract management and commissioner running costs."""
        m, p = self.model, self.p
        led = self.ledger
        tx = p["transaction"]
        orgs = m.org_by_id
        trans = 0.0
        governance = 0.0
        for c in m.network.active():
            info = CONTRACT_KINDS[c["kind"]]
            if info.funding:
                continue
            payer = orgs[c["payer"]]
            if payer.failed:
                continue
            cost = self.contract_admin_cost(c, info) / 12.0
            if info.agreement:
                mult = 1 + (p["trust"]["governance_multiplier"] - 1) * (1 - c["trust"])
                governance += tx["alliance_governance_per_member"] * m.scale * mult / 12.0
            if info.under_holder:
                cost += tx["subcontract_management"] * c["value"] / 12.0
            led.spend(payer.idx, cost, "transaction")
            trans += cost
        if governance:
            trans += self._share_governance(governance)
        running = 0.0
        for pl, n in zip(m.eco["places"], m.place_sizes()):
            r = p["funding"]["running_cost_per_head"] * n / 12.0
            led.spend(m.org_by_id[pl["commissioner"]].idx, r, "running")
            running += r
        m.results.record_add("transaction", t, trans)
        m.results.record_add("cost", t, trans + running)

    def _share_governance(self, total: float) -> float:
        """The alliance's governance (board, alliance director, shared data) is a joint cost: the partners
        pay it by their agreed risk shares, commissioners included, as they share the pooled result (so
        a small voluntary partner does not carry a large trust's share); a failed partner has left the
        agreement, and the others' shares cover its part. Returns what was charged."""
        m = self.model
        paid = {}
        for oid, share in m.arr["alliance"]["risk_shares"].items():
            who = m.org_by_id.get(oid)
            if who is not None and not who.failed and share > 0:
                paid[who.idx] = paid.get(who.idx, 0.0) + share
        norm = sum(paid.values())
        for idx, share in paid.items():
            self.ledger.spend(idx, total * share / norm, "transaction")
        return total if norm > 0 else 0.0

    def payments(self, t: int) -> None:
        """Each active contract pays by its payment kind; billing costs and VAT leakage follow payments."""
        m = self.model
        led = self.ledger
        tx = self.p["transaction"]
        vat = self.p["vat"]
        units = m.care.units
        holder = m.holder
        orgs = m.org_by_id
        paid = self.paid_ytd
        billing_share = tx["billing_share"]
        billing = 0.0
        leak = 0.0
        for c in m.network.active():
            payer, payee = orgs[c["payer"]], orgs[c["payee"]]
            if payee.failed:
                continue
            payment = c["payment"]
            pay = PAYMENT_KINDS[payment]
            if pay.per_activity:
                cols = [S[s] for s in c.services]
                u = units if not c["places"] or m.care.units_place is None else \
                    m.care.units_place[self.contract_places(c) or slice(None)].sum(axis=0)
                amount = c["price_factor"] * self.uplift * float((u[payee.idx, cols] * self.price[cols]).sum())
            elif not pay.pays:
                continue
            else:
                amount = c["value"] / 12.0 * (1.0 - c["outcome_share"])   # the outcome share is paid at year end
            info = CONTRACT_KINDS[c["kind"]]
            if payer.failed:
                # the holder has failed: the commissioner covers part of what it owed this month
                if info.under_holder:
                    share = self.p["failure"]["cover_share"]
                    led.transfer(m.ccg.idx, payee.idx, amount * share, "settlement")
                continue
            led.transfer(payer.idx, payee.idx, amount, payment)
            paid[c["cid"]] = paid.get(c["cid"], 0.0) + amount
            b = billing_share.get(payment, 0.0) * amount
            if b:
                led.spend(payee.idx, b, "transaction")
                billing += b
            if info.under_holder and holder is payer:
                v = self.vat_rate(payer) * amount
                led.spend(payer.idx, v, "vat")
                leak += v
        m.results.add("vat", leak)
        m.results.record_add("transaction", t, billing)
        m.results.record_add("cost", t, billing + leak)

    # ------------------------------------------------------------------ settlement
    def attributable_cost(self, c: Contract) -> float:
        """The part of the payee's yearly delivery cost that the contract's services account for."""
        o = self.model.org_by_id[c.payee]
        if o.side == "practice":
            return float(self.year_care[o.idx])
        cols = [S[s] for s in c.services]
        exp_all = float((self.exp_units[o.idx] * self.unit_cost).sum())
        exp_c = float((self.exp_units[o.idx, cols] * self.unit_cost[cols]).sum())
        return float(self.year_care[o.idx]) * (exp_c / exp_all if exp_all > 0 else 0.0)

    def _settle(self, payer: int, payee: int, amount: float) -> None:
        """A settlement transfer, remembered so pre-settlement positions can be recovered."""
        self.ledger.transfer(payer, payee, amount, "settlement")
        if amount > 0:
            self.settle_in[payee] += amount
            self.settle_out[payer] += amount
        elif amount < 0:
            self.settle_in[payer] -= amount
            self.settle_out[payee] -= amount

    def settle_to_date(self, t: int) -> None:
        """Risk sharing trued up monthly in arrears on year-to-date figures, so partners carry their shared
        position as the year unfolds (and a failure test sees it); by year end it equals an annual settlement.

        1. Subcontracts and salaried practices: the holder absorbs `pass_through` of the payee's variance.
        2. Alliance pool: the members' overspend against the alliance's target cost (`set_alliance_budget`)
           is shared by agreed shares, the commissioners included.
        """
        m = self.model
        led = self.ledger
        for c in m.network.active():
            if c.pass_through <= 0 or c.pay.per_activity:
                continue
            if m.org_by_id[c.payer].failed or m.org_by_id[c.payee].failed:
                continue
            target = c.pass_through * (self.attributable_cost(c) - self.paid_ytd.get(c.cid, 0.0))
            before = self.settled_ytd.get(c.cid, 0.0)
            self._settle(m.org_by_id[c.payer].idx, m.org_by_id[c.payee].idx, target - before)
            m.results.add("pass_through", abs(target - before))
            self.settled_ytd[c.cid] = target
        members = [c for c in m.network.members() if not m.org_by_id[c.payee].failed]
        if members:
            al = m.arr["alliance"]
            f = al["pool_fraction"]
            ids = sorted({c.payee for c in members})
            part = (t % 12 + 1) / 12.0
            budget = {i: self.alliance_budget.get(i, 0.0) * part for i in ids}
            idx = {i: m.org_by_id[i].idx for i in ids}
            cost = {i: led.year_cost[idx[i]] - self.settle_out[idx[i]] for i in ids}
            income = {i: led.year_income[idx[i]] - self.settle_in[idx[i]] for i in ids}
            over = sum(cost[i] - budget[i] for i in ids)                      # pool overspend D to date
            # the shared result the partners judge: against their plan, in which the prevention they agreed
            # to fund this year is an investment, not an overspend
            invested = sum(m.prevention.spent_ytd.get(idx[i], 0.0) for i in ids)
            self.pool_rate = (over - invested) / max(sum(budget.values()), 1.0)
            shares = {c.payee: c.share for c in members}
            for i in ids:
                x = f * ((cost[i] - income[i]) - shares.get(i, 0.0) * over)
                self._settle(m.ccg.idx, idx[i], x - self.pool_ytd.get(i, 0.0))
                self.pool_ytd[i] = x
            # other commissioners party to the pooled budget (a council) bear their share with the CCG
            for oid, share in al["risk_shares"].items():
                o = m.org_by_id.get(oid)
                if o is None or o is m.ccg or o.side != "commissioner" or oid in budget:
                    continue
                y = f * share * over
                self._settle(o.idx, m.ccg.idx, y - self.pool_ytd.get(oid, 0.0))
                self.pool_ytd[oid] = y

    def set_outcome_baselines(self) -> None:
        """At award: the expected emergency-admission rate and the holder network's quality, against which
        outcome-linked payments are measured."""
        m = self.model
        pop = m.pop
        self.outcome_base = {
            "emergency_admissions": float(pop.rate["emergency"].sum()) / max(pop.size, 1) * 1000.0,
            "quality": self.network_quality(),
            "continuity": None,                    # set at the end of the first year
        }

    def network_quality(self) -> float:
        """Quality of the holder and the providers it pays, weighted by what it pays them."""
        m = self.model
        h = m.holder
        if h is None:
            return float(np.mean([o.quality for o in m.orgs if o.side == "provider" and not o.failed]))
        parts = [(h, max(h.expected_cost, 1.0))] + [
            (m.org_by_id[c.payee], c.value) for c in m.network.query(payer=h.org_id) if m.org_by_id[c.payee].side == "provider"]
        w = sum(v for _, v in parts)
        return float(sum(o.quality * v for o, v in parts) / w) if w > 0 else 0.0

    def outcome_measures(self) -> dict[str, float]:
        m = self.model
        base = self.outcome_base
        if base["continuity"] is None:
            base["continuity"] = m.care.coc_mean
        rate = m.results.rolling("admissions") / max(m.pop.size, 1) * 1000.0
        return {"emergency_admissions": rate / base["emergency_admissions"] - 1.0 if base["emergency_admissions"] else 0.0,
                "continuity": m.care.coc_mean - base["continuity"],
                "quality": self.network_quality() - base["quality"]}

    def pay_outcomes(self, t: int) -> None:
        """Year end: the withheld outcome share of each holder contract is paid in proportion to measured
        achievement (the payer keeps the rest), as in outcomes-based contracts (Oxfordshire mental health:
        20% of value on outcomes; Health Service Journal [ref: hsj-oxfordshire-mh])."""
        m = self.model
        measured = None
        for cid in m.network.holder_contracts:
            c = m.network[cid]
            if c.status != "active" or c.outcome_share <= 0 or m.org_by_id[c.payee].failed:
                continue
            measured = measured or self.outcome_measures()
            terms = c.outcome_terms["measures"]
            score = sum(v["weight"] * achievement(measured[k], v["target"], v["floor"]) for k, v in terms.items())
            months = min(12, t - c.start + 1)
            withheld = c.value * c.outcome_share * months / 12.0
            earned = withheld * score
            self.ledger.transfer(m.org_by_id[c.payer].idx, m.org_by_id[c.payee].idx, earned, c.payment)
            m.results.add("outcome_withheld", withheld)
            m.results.add("outcome_paid", earned)
            m.results.event(t, f"outcome payment {score:.0%}", c.payee, contract=cid)

    def settle_year(self, t: int) -> None:
        """Year end: risk corridors / gain-loss shares on the holder's population contract, on the year's result."""
        m = self.model
        led = self.ledger
        for cid in m.network.holder_contracts:
            c = m.network[cid]
            if c.status != "active" or not c.risk_terms or c.risk_terms.get("kind", "none") == "none":
                continue
            h = m.org_by_id[c.payee]
            if h.failed or c.value <= 0:
                continue
            income = led.year_income[h.idx]
            deviation = (led.year_cost[h.idx] - income) / max(income, 1.0)
            amt = corridor_transfer(c.risk_terms, deviation, income)
            self._settle(m.org_by_id[c.payer].idx, h.idx, amt)

    def close_year(self) -> tuple[np.ndarray, np.ndarray]:
        """This year's income and cost per organisation; a new year starts in the ledger and cost totals."""
        inc, cost = self.ledger.close_year()
        self.year_care[:] = 0.0
        return inc, cost

    def new_support_year(self) -> None:
        self.support_ytd[:] = 0.0
