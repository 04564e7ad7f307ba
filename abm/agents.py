"""The organisations, as Mesa agents that make their own decisions (patients stay as arrays).

- A GP practice decides whether and how to take part in an ICP, gives notice and returns at break points,
  and closes when it fails.
- A provider (or the lead) checks its own viability each month and, at year end, recovers costs when in
  deficit, with quality drifting with its finances.
- A commissioner reviews quality and ends contracts for sustained failure, grants subcontract permission,
  and re-procures the services of an organisation that failed.
What each kind *is* (side, party, whether it delivers care) comes from `abm.kinds`.
"""
from __future__ import annotations

import mesa
import numpy as np

from .kinds import LEGAL_FORMS, ORG_KINDS, LegalForm, OrgKind, default_legal_form
from .contracts import new_contract


class Organisation(mesa.Agent):
    """Any party to a contract."""

    def __init__(self, model: "mesa.Model", org_id: str, kind: str, name: str, nhs_body: bool, idx: int,
                 cost_ratio: float = 1.0, quality: float = 0.7, vat_recovers: bool | None = None,
                 legal_form: str | None = None, outside_network: bool = False):
        super().__init__(model)
        self.org_id = org_id
        self.kind = kind
        self.info: OrgKind = ORG_KINDS[kind]
        self.side = self.info.side          # funder, commissioner, provider or practice
        self.legal_form = legal_form or default_legal_form(kind, nhs_body)
        self.form: LegalForm = LEGAL_FORMS[self.legal_form]
        self.outside_network = bool(outside_network)   # another system's provider (non-contract activity)
        self.oversight = "none"             # NHS trusts: none, recovery (segment 3), intensive (segment 4)
        self.intensive_years = 0
        self.name = name
        self.nhs_body = bool(nhs_body)
        self.vat_recovers = self.nhs_body if vat_recovers is None else bool(vat_recovers)
        self.idx = idx                      # account index in the ledger and row in per-organisation arrays
        self.cost_ratio = float(cost_ratio)  # unit cost relative to the average (efficiency)
        self.quality = float(quality)
        self.pressure = 0.0                     # last year's demand beyond staffed capacity (share)
        self.quality0 = float(quality)
        self.failed = False
        self.failed_month: int | None = None
        self.successor_of: str | None = None
        self.interim_until = -1             # month until which an interim premium applies
        self.expected_cost = 0.0            # £ a year at baseline activity
        self.expected_income = 0.0          # £ a year at baseline (node size in network views)
        self.fixed_cost = 0.0               # £ a year
        self.last_income = 0.0
        self.last_surplus = 0.0

    @property
    def reserves(self) -> float:
        return self.model.finance.ledger.reserves(self.idx)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.org_id!r})"

    # ---------------------------------------------------------------- failure
    def check_viability(self, t: int) -> None:
        """Monthly, by legal form: an NHS trust whose cash runs out borrows from the centre and carries on;
        a council carries its deficit; a company, LLP, social enterprise, charity or GP partnership becomes
        insolvent when reserves and its owners' support run out, and the owners of a loss-making holder
        hand its contract back first once the year's loss passes what they will bear."""
        if self.failed or self.side in ("funder", "commissioner") or self.outside_network:
            return                  # another system's provider (as in financial_year_end)
        income = max(self.last_income, self.expected_income)
        if income <= 0:
            return
        m = self.model
        f = m.p["failure"]
        if self.form.cash_support:
            floor = f["cash_support_floor"] * income
            if self.reserves < floor:
                m.finance.lend(self, floor - self.reserves, t)
            return
        if self.form.public:
            return
        floor = f["threshold"] - (f["partner_drawings_cut"] if self.form.partners_absorb else 0.0)
        if self.reserves < floor * income:
            self.fail(t)
            return
        if self.form.owners_hand_back and m.holder is self:
            led = m.finance.ledger
            loss = led.year_cost[self.idx] - led.year_income[self.idx]
            if loss > f["hand_back_loss"] * income:
                self.hand_back(t)

    def hand_back(self, t: int) -> None:
        """The owners end the population contract: its services revert to the commissioner."""
        m = self.model
        m.results.failure(t, self.org_id, "contract handed back")
        m.ccg.take_back_holder_contracts(t)
        m.refresh_structure()

    def financial_year_end(self, t: int) -> None:
        """Year end for an NHS trust: repay cash support from a surplus; the oversight segment from the
        year's deficit and the support outstanding. Not for another system's provider: this economy's
        non-contract activity is a sliver of its income, so its segment is not made by our flows."""
        if not self.form.cash_support or self.failed or self.outside_network:
            return
        m = self.model
        f = m.p["failure"]
        fin = m.finance
        income = max(self.last_income, self.expected_income, 1.0)
        owed = fin.loans[self.idx]
        if owed > 0 and self.last_surplus > 0:
            fin.repay(self, min(owed, f["loan_repayment_share"] * self.last_surplus, max(self.reserves, 0.0)))
        before = self.oversight
        if fin.loans[self.idx] > f["intensive_support_loans"] * income:
            self.oversight = "intensive"
            self.intensive_years += 1
        else:
            self.intensive_years = 0
            self.oversight = "recovery" if (-self.last_surplus > f["recovery_deficit"] * income
                                            or fin.loans[self.idx] > 0) else "none"
        if self.oversight != before:
            m.results.event(t, f"oversight: {self.oversight}", self.org_id)

    def fail(self, t: int, reason: str = "financial", successor_quality: float | None = None) -> None:
        """Stop trading: the commissioner takes back or re-procures what this organisation held."""
        m = self.model
        self.failed = True
        self.failed_month = t
        m.results.failure(t, self.org_id, reason)
        m.ccg.handle_failure(self, t, successor_quality)
        m.network.mark_failed(self.org_id)
        m.refresh_structure()

    def year_review(self) -> bool:
        """Year end: a provider in deficit cuts costs (at a quality cost); quality drifts with finances
        (resources), falls with staff pressure (new demand beyond staffed capacity: referrals and emergencies
        above plan) and reverts towards its starting level. Returns whether unit costs changed."""
        if self.failed or self.side in ("funder", "commissioner") or self.outside_network:
            return False            # another system's provider: its quality is not made by our flows
        m = self.model
        ov = m.p["oversight"]
        rate = self.last_surplus / max(abs(self.last_income), 1.0)
        changed = False
        if rate < 0 and self.side != "practice":
            self.cost_ratio = max(0.85, self.cost_ratio + ov["recovery_rate"] * rate)
            changed = True
        self.pressure = m.care.pressure(self.idx)
        self.quality = float(np.clip(self.quality + ov["quality_drift"] * rate - ov["quality_pressure"] * self.pressure
                                     + ov["quality_reversion"] * (self.quality0 - self.quality), 0, 1))
        return changed


class Funder(Organisation):
    """National funder: pays yearly allocations that move with population size."""


class Provider(Organisation):
    """Trusts, the GP federation, voluntary, private and social-care providers, and a prime contractor."""


class Commissioner(Organisation):
    """Holds contracts, grants subcontract permission, reviews quality, terminates and re-procures."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.strikes: dict[str, int] = {}   # contract id -> consecutive years failing quality review

    def permission_refused(self, oid: str) -> str | None:
        """Why the commissioner would refuse (or withdraw) permission to subcontract a provider, or None:
        its quality is below the bar; it lacks capacity (in intensive financial support, or last year's
        demand beyond its staffed capacity above the bar); or the holder's VAT position would leave more
        irrecoverable VAT on the price than the commissioner tolerates (a holder that is not an NHS body
        loses VAT recovery on contracted-out services: NAO on UnitingCare, 2016)."""
        m = self.model
        o = m.org_by_id.get(oid)
        if o is None or o.side != "provider":
            return None
        ov = m.p["oversight"]
        if o.quality < ov["permission_quality"]:
            return "quality"
        if o.oversight == "intensive" or o.pressure > ov["permission_pressure"]:
            return "capacity"
        spec = m.holder or m.holder_spec()
        if spec is not None and m.finance.vat_rate(spec) > ov["permission_vat_share"]:
            return "VAT"
        return None

    def permits_subcontract(self, oid: str) -> bool:
        """Permission to subcontract a provider at award (the yearly review is `review_permissions`)."""
        why = self.permission_refused(oid)
        if why is not None:
            self.model.results.event(self.model.month, f"subcontract permission refused ({why})", oid)
        return why is None

    def review_permissions(self, t: int) -> None:
        """Year end: where subcontracting needs permission, a subcontractor that no longer meets it (quality
        below the bar, or without the capacity: in intensive financial support, or last year's demand well
        beyond its staffed capacity) loses it: its subcontract ends, the commissioner contracts it
        directly, and the holder's population payment no longer covers those services."""
        m = self.model
        net = m.network
        h = m.holder
        if h is None or not m.arr.get("subcontract_permission"):
            return
        for c in net.query(payer=h.org_id, kind="subcontract"):
            o = m.org_by_id[c.payee]
            why = None if o.failed else self.permission_refused(o.org_id)   # None for practices
            if why is None:
                continue
            m.results.event(t, f"subcontract permission withdrawn ({why})", o.org_id, contract=c.cid)
            net.terminate(c, t)
            current = c.value / max(c.price_factor, 1e-9)
            for new in m.finance.direct_contracts(o, c.services, current, t):
                m.finance.procure(new)
            vf = m.arr["contract"]["value_factor"]
            total = sum(net[x].value for x in net.holder_contracts)
            for x in net.holder_contracts:             # out of the holder's budget, in proportion
                hc = net[x]
                cut = current * vf * hc.value / total if total > 0 else 0.0
                if hc.value > 0:
                    hc.per_capita *= max(hc.value - cut, 0.0) / hc.value
                    hc.base_value *= max(hc.value - cut, 0.0) / hc.value
                hc.value = max(hc.value - cut, 0.0)
        m.refresh_structure()

    def review_quality(self, t: int) -> None:
        """Sustained quality failure ends the contract and the service is re-procured."""
        m = self.model
        ov = m.p["oversight"]
        for c in list(m.network.active()):
            if not c.info.quality_reviewed:
                continue
            o = m.org_by_id[c.payee]
            if o.failed:
                continue
            strikes = self.strikes
            strikes[c.cid] = strikes.get(c.cid, 0) + 1 if o.quality < ov["quality_threshold"] else 0
            if strikes[c.cid] >= ov["sustained_years"]:
                m.results.event(t, "terminated for quality", o.org_id, contract=c.cid)
                self.terminate_for_quality(c, t)

    def _successor_id(self, o: Organisation) -> str:
        return f"{o.org_id}~{sum(1 for x in self.model.orgs if x.successor_of is not None) + 2}"

    def terminate_for_quality(self, c, t: int) -> None:
        """The commissioner ends the failing contract (or subcontract) and re-procures its services from a
        new provider of the market's quality (NHS England ICP Q&A §22: termination of the contract, a
        service or a subcontract); the provider keeps any other work. When the contract was all it did,
        it stops trading and the new provider succeeds it."""
        m = self.model
        net = m.network
        o = m.org_by_id[c.payee]
        q_new = m.p["oversight"]["new_provider_quality"]
        mine = m.care.services_of(o.org_id)
        services = [s for s in c.services if s in mine]
        if not services:
            net.terminate(c, t)
            m.refresh_structure()
            return
        if set(services) >= set(mine) or o.side == "practice":
            o.fail(t, reason="quality", successor_quality=q_new)
            return
        new_id = self._successor_id(o)
        new = m.add_organisation(new_id, o.kind, f"{o.name} (new provider)", o.nhs_body, 1.0, q_new, o.vat_recovers,
                                 like=o, role=net.role(o.org_id), services=services)
        new.successor_of = o.org_id
        new.interim_until = t + m.p["failure"]["reprocurement_months"]
        m.care.transfer_services(o.org_id, new_id, services)
        for x in list(net.active()):
            if x.payee == o.org_id and x.services and set(x.services) <= set(services):
                h = net.hand_over(x, t, payee=new_id, trust=m.p["trust"]["initial"] * 0.8)
                if not m.org_by_id[h.payer].failed:
                    m.finance.procure(h)
        for s in services:
            net.route.pop((s, o.org_id), None)
        m.refresh_structure()

    def handle_failure(self, o: Organisation, t: int, successor_quality: float | None = None) -> None:
        """What a failure means for the contracts: a practice closes; a holder's contracts revert to the
        commissioner; a provider's services move to a successor after re-procurement."""
        if o.side == "practice":
            o.close(t)
            return
        if self.model.holder is o:
            self.take_back_holder_contracts(t)
        self._appoint_successor(o, t, successor_quality)

    def review_holder_finances(self, t: int) -> None:
        """Year end: an NHS holder kept in intensive support for `failure.termination_years` loses its
        population contract (the commissioner's decision; the trust itself carries on)."""
        m = self.model
        h = m.holder
        if h is None or h.failed or not h.form.cash_support:
            return
        if h.intensive_years >= m.p["failure"]["termination_years"]:
            m.results.failure(t, h.org_id, "holder contract terminated")
            self.take_back_holder_contracts(t)
            m.refresh_structure()

    def take_back_holder_contracts(self, t: int) -> None:
        """The holder has gone: its contracts end and the commissioner contracts with each provider
        directly (re-procuring them, with the costs that implies)."""
        m = self.model
        net = m.network
        h = m.holder
        for cid in net.holder_contracts:
            net.terminate(net[cid], t)
        for c in net.query(payer=h.org_id):
            net.terminate(c, t)
            payee = m.org_by_id[c.payee]
            if payee.side == "practice":
                payee.back_to_gms(t)
                continue
            if c.kind == "non_contract":    # another system's provider: the commissioners pay for its activity
                m.finance.direct_contracts(payee, c.services, c.value, t, kind="non_contract")
                continue
            if not c.info.under_holder or c.info.employment:
                continue
            # the same value as before the holder took it (its price at current spend), contract by payer
            for new in m.finance.direct_contracts(payee, c.services, c.value / max(c.price_factor, 1e-9), t):
                m.finance.procure(new)
        # the holder's own services go back on a standard contract (a successor takes them if it failed)
        own = [s for s in m.care.services_of(h.org_id)
               if (f := net.funding(s, h.org_id)) is not None and f.status == "terminated"]
        if own:
            value = sum(m.finance.spend[h.org_id].get(s, 0.0) for s in own) * m.finance.uplift
            m.finance.direct_contracts(h, own, value, t)
        net.release_holder()

    def _appoint_successor(self, o: Organisation, t: int, quality: float | None = None) -> None:
        """Services of a failed provider move to a successor after re-procurement (interim cost, new
        contact slot, working capital from the funder); the successor takes the same terms for the rest of
        the term, with trust to rebuild (but not a failed partner's place in an alliance agreement);
        fixed-value contracts it receives are re-priced at what the service was costing."""
        m = self.model
        net = m.network
        if not m.care.services_of(o.org_id):
            return
        new_id = self._successor_id(o)
        q = o.quality0 if quality is None else quality        # staff transfer (TUPE) vs a new provider
        succ = m.add_organisation(new_id, o.kind, f"{o.name} (successor)", o.nhs_body, 1.0, q,
                                  o.vat_recovers, like=o, role=net.role(o.org_id))
        succ.successor_of = o.org_id
        succ.interim_until = t + m.p["failure"]["reprocurement_months"]
        support = m.p["funding"]["reserve_share"].get(o.kind, 0.03) * o.expected_income
        m.finance.ledger.transfer(m.funder.idx, succ.idx, support, "support")
        m.care.transfer_services(o.org_id, new_id)
        last_cost = o.last_income - o.last_surplus
        reprice = float(np.clip(last_cost / o.last_income, 1.0, 1.3)) if o.last_income > 0 else 1.0
        trust = m.p["trust"]["initial"] * 0.8
        for c in list(net.active()):
            if o.org_id not in (c.payer, c.payee):
                continue
            if c.info.agreement:
                # a failed partner's alliance agreement ends with it: the provider procured for its
                # services has not signed the agreement, so it delivers them on its own contract and
                # the partners' pooled result is shared without it (the commissioner bears its share)
                net.terminate(c, t)
                m.results.event(t, "left the alliance", o.org_id, contract=c.cid)
                continue
            receives = c.payee == o.org_id
            value = c.value * (reprice if receives and c.pay.repriced else 1.0)
            new = net.hand_over(c, t, payer=None if receives else new_id, payee=new_id if receives else None,
                                value=value, trust=trust)
            if receives and not m.org_by_id[c.payer].failed:
                m.finance.procure(new)
        net.drop_routes(o.org_id)
        if m.holder is o:
            net.appoint_holder(new_id)


class LocalAuthority(Commissioner):
    """Co-commissioner of adult social care."""


class GPPractice(Organisation):
    """A practice: GMS/PMS by default; under an ICP it chooses outside, partial (Integration Agreement)
    or full (GMS/PMS suspended, salaried or subcontracted), and may return at break points."""

    INVOLVEMENT = {"outside": 0.0, "partial": 0.5, "full": 1.0}

    def __init__(self, *args, list_size: float = 0.0, contract: str = "gms", **kwargs):
        super().__init__(*args, **kwargs)
        self.list_size = float(list_size)
        self.contract_type = contract
        self.mode = "outside"
        self.autonomy = 0.5
        self.salaried = False
        self.returned = False
        self.notice_month: int | None = None
        self.income_before = 0.0            # yearly income in the year before integrating

    def decide_participation(self, autonomy: float, u_salaried: float) -> None:
        """Pick the mode with the best utility: income gain, trust in the lead, cost to autonomy."""
        m = self.model
        terms = m.arr["practices"]
        pp = m.p["participation"]
        cap = m.p["funding"]["gp_capitation"]
        trust = m.p["trust"]["initial"]
        gain = {"outside": 0.0, "partial": terms["integration_fee_per_head"] / cap, "full": terms["full_uplift"]}
        self.autonomy = float(autonomy)
        best, best_u = "outside", 0.0
        for mode in terms["allowed"]:
            util = (pp["income_weight"] * gain[mode] + pp["trust_weight"] * (trust - 0.5) * self.INVOLVEMENT[mode]
                    - pp["autonomy_cost"][mode] * self.autonomy)
            if util > best_u:
                best, best_u = mode, util
        self.mode = best
        self.salaried = bool(best == "full" and u_salaried < terms["salaried_share"])

    def consider_return(self, t: int) -> None:
        """Right to return: notice 12 months before a break point, once, when integrated income beats
        GMS/PMS by too little or trust in the lead is low; the return itself at the break point."""
        m = self.model
        terms = m.arr["practices"]
        if self.failed or m.holder is None or not terms["break_points_months"]:
            return
        if self.mode == "full" and not self.returned and self.notice_month is None:
            for bp in terms["break_points_months"]:
                if bp - terms["notice_months"] == t and self.return_utility() > m.p["participation"]["return_hurdle"]:
                    self.notice_month = bp
                    m.results.event(t, "notice", self.org_id)
        if self.notice_month is not None and self.notice_month == t:
            self.return_to_gms(t)

    def return_utility(self) -> float:
        """Returning against staying, on the utility practices joined by (BMA: the right to return; Pulse:
        patients stay with the ICP unless they ask to move): the income the practice would keep under
        GMS/PMS on the patients who come back with it, relative to its income now; the autonomy it regains;
        the trust in the lead it gives up."""
        m = self.model
        pp = m.p["participation"]
        terms = m.arr["practices"]
        k = m.practices.index(self)
        now = max(self.last_income, self.income_before, 1.0)
        back = m.p["funding"]["gp_capitation"] * m.finance.weighted_list(k) * (1 - terms["patients_stay_share"]) \
            * m.finance.uplift
        trust = m.network.practice_contract(self.org_id).trust
        return (pp["income_weight"] * (back - now) / now + pp["autonomy_cost"]["full"] * self.autonomy
                - pp["trust_weight"] * (trust - 0.5))

    def back_to_gms(self, t: int):
        """GMS/PMS in force again (after a return, or when the holder has gone): outside the ICP."""
        net = self.model.network
        gms = net[f"gms:{self.org_id}"]
        net.reactivate(gms, t)
        net.fund_practice(self.org_id, gms)
        self.mode = "outside"
        return gms

    def return_to_gms(self, t: int) -> None:
        """GMS/PMS reactivated; most patients stay with the ICP (moved to practices still fully integrated)
        and funding beyond core GMS/PMS does not come back."""
        m = self.model
        net = m.network
        rng = m.stream("behaviour", 10_000 + t)
        net.terminate(net.practice_contract(self.org_id), t)
        gms = self.back_to_gms(t)
        self.returned = True
        self.notice_month = None
        # patients stay with the ICP: with its fully integrated practices, else those in an Integration Agreement
        others = np.array([q.idx for q in m.practices if q.mode == "full" and not q.failed and q.notice_month is None])
        if not len(others):
            others = np.array([q.idx for q in m.practices if q.mode == "partial" and not q.failed])
        k = m.practices.index(self)
        rows = np.flatnonzero((m.pop.practice == k) & m.pop.present)
        stay = rows[rng.random(len(rows)) < m.arr["practices"]["patients_stay_share"]]
        if len(others) and len(stay):
            pos = {q.idx: i for i, q in enumerate(m.practices)}
            m.pop.reregister(stay, rng.choice(np.array([pos[i] for i in others]), size=len(stay)), forget=False)
        before = self.list_size
        m.update_list_sizes()
        # staff follow the patients who stay with the ICP: the practice's costs follow its list now
        m.finance.replan(self, self.list_size / before if before > 0 else 1.0)
        gms.value = m.finance.capitation_value(gms, k)
        m.results.event(t, "return", self.org_id)
        m.refresh_structure()

    def close(self, t: int) -> None:
        """A failed practice closes: its contracts end and its patients register elsewhere."""
        m = self.model
        net = m.network
        for c in net.query(status=None, where=lambda c: self.org_id in (c.payer, c.payee) and c.status != "terminated"):
            net.terminate(c, t)
        rng = m.stream("behaviour", 30_000 + t)
        k = m.practices.index(self)
        m.pop.close_practice(k)
        rows = np.flatnonzero((m.pop.practice == k) & m.pop.present)
        alive = np.array([i for i, q in enumerate(m.practices) if not q.failed])
        if len(alive) and len(rows):
            w = np.array([m.pop.practice_weights[i] for i in alive])
            m.pop.reregister(rows, rng.choice(alive, size=len(rows), p=w / w.sum()), forget=True)
        m.update_list_sizes()
        self.list_size = 0.0
        # the global sum is paid on the registered list (updated each quarter, not each year): the
        # practices that take the patients are paid for them from now, so the money follows the
        # patients instead of staying with the commissioner while the receivers carry their care
        pos = {pr.org_id: i for i, pr in enumerate(m.practices)}
        for c in net.active():
            if c.kind == "gms_pms" and c.per_capita and c.payee in pos and not m.practices[pos[c.payee]].failed:
                c.value = m.finance.capitation_value(c, pos[c.payee])


AGENT_CLASS = {"Funder": Funder, "Commissioner": Commissioner, "LocalAuthority": LocalAuthority,
               "Provider": Provider, "GPPractice": GPPractice}


def agent_class(kind: str) -> type[Organisation]:
    return AGENT_CLASS[ORG_KINDS[kind].agent]
