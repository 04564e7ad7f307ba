"""Directional tests: each mechanism moves what it should, by a clear margin, over several seeds
(issue 3; NHS England ICP contract documents, 2018-19, and the evidence in docs/references.md)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from abm import ContractingModel
from abm.params import SERVICES

NO_FAIL = {"failure__threshold": -100.0, "failure__hand_back_loss": 1.0}
SEEDS = (1, 2, 3)


def mean_metric(arr, metric, months, seeds=SEEDS, last=12, scale=0.03, **kw):
    vals = []
    for s in seeds:
        m = ContractingModel(arr, rng=s, population_scale=scale, **{**NO_FAIL, **kw}).run(months)
        vals.append(m.datacollector.get_model_vars_dataframe()[metric].iloc[-last:].mean())
    return float(np.mean(vals))


# ---------------------------------------------------------------- 1. prevention
def test_longer_contracts_invest_more_in_prevention():
    spend = {}
    for years in (3, 10):
        spend[years] = sum(ContractingModel("icp_full", rng=s, population_scale=0.02,
                                            arrangement__contract__contract_years=years, **NO_FAIL).run(36).results.cum["prevention"]
                           for s in SEEDS)
    assert spend[10] > 1.3 * spend[3] > 0


def test_a_ten_year_icp_still_invests_in_its_final_year():
    """Incumbents are usually renewed and NHS bodies are not short-term profit maximisers: prevention does
    not stop dead before the end of a 10-year term (it did when the horizon ended at the term)."""
    m = ContractingModel("icp_full", rng=1, population_scale=0.02, **NO_FAIL).run(120)
    df = m.datacollector.get_model_vars_dataframe()
    assert df["prevention_spend_share"].iloc[-12:].mean() > 0.3 * df["prevention_spend_share"].iloc[13:25].mean() > 0
    no_renewal = ContractingModel("icp_full", rng=1, population_scale=0.02, prevention__renewal_probability=0.0,
                                  prevention__nhs_mission_weight=0.0, **NO_FAIL).run(120)
    late = no_renewal.datacollector.get_model_vars_dataframe()["prevention_spend_share"].iloc[-12:].mean()
    assert late == 0.0                      # with neither, the old cliff: nothing in the final year


def test_poor_quality_lowers_the_expected_renewal():
    m = ContractingModel("icp_full", rng=1, population_scale=0.01, **NO_FAIL)
    good = m.prevention.renewal_chance(m.holder)
    m.holder.quality = m.p["oversight"]["quality_threshold"]
    assert good > 0.5 and m.prevention.renewal_chance(m.holder) == 0.0


def test_targeting_by_risk_beats_even_spread_at_equal_spend():
    out = {}
    for targeting in ("risk", "even"):
        ms = [ContractingModel("icp_full", rng=s, population_scale=0.05, prevention__budget_share=0.05,
                               prevention__targeting=targeting, **NO_FAIL).run(60) for s in SEEDS]
        out[targeting] = (np.mean([m.datacollector.get_model_vars_dataframe()["emergency_admissions_per_1000"].iloc[-24:].mean()
                                   for m in ms]), sum(m.results.cum["prevention"] for m in ms))
    assert out["risk"][1] == pytest.approx(out["even"][1], rel=1e-9)        # equal spend
    assert out["risk"][0] < out["even"][0] * 0.97                           # clearly fewer admissions


def test_prevention_works_with_a_lag():
    def adm(share):
        ms = [ContractingModel("icp_full", rng=s, population_scale=0.05, prevention__budget_share=share, **NO_FAIL).run(60)
              for s in SEEDS]
        return np.array([m.datacollector.get_model_vars_dataframe()["emergency_admissions_per_1000"].to_numpy() for m in ms]).mean(0)
    none, some = adm(0.0), adm(0.05)
    early = 1 - some[12] / none[12]
    late = 1 - some[60] / none[60]
    assert late > 0.03 and late > 3 * max(early, 0.0)


def test_tariff_paid_acute_has_no_prevention_incentive():
    m = ContractingModel("fragmented", rng=1, population_scale=0.01)
    acute = m.org_by_id["dgft"]
    assert m.prevention.kept_share(acute) < 0
    assert m.prevention.incentive(10.0, m.prevention.kept_share(acute)) == 0.0
    pp = ContractingModel("prime_provider", rng=1, population_scale=0.01)
    assert pp.prevention.kept_share(pp.org_by_id["dgft"]) > 0     # the same trust as capitated prime provider


def test_fragmented_prevention_is_only_the_small_public_health_line(run_model):
    frag, icp = run_model("fragmented", 7, 13), run_model("icp_full", 7, 13)
    assert 0 < frag.metrics["prevention_spend_share"] < icp.metrics["prevention_spend_share"]


# ---------------------------------------------------------------- 2. digital alternatives
def test_icp_contract_shifts_gp_contacts_to_digital_and_cuts_cost(run_model):
    frag, icp = run_model("fragmented", 7, 13), run_model("icp_partial", 7, 13)
    def digital_share(m):
        u = m.care.units[m.care.practice_idx]
        return u[:, 1].sum() / u[:, :2].sum()
    assert digital_share(icp) > digital_share(frag) + 0.08
    same = ContractingModel("icp_partial", rng=7, population_scale=0.02, digital__icp_share=0.10).run(13)
    cost = lambda m: sum(r["cost"] for r in m.finance_records() if r["org_kind"] == "gp_practice")
    assert cost(icp) < cost(same)


# ---------------------------------------------------------------- 3. volume response to payment
def test_tariff_raises_elective_activity_population_payment_lowers_it():
    def elective(arr, **kw):
        ms = [ContractingModel(arr, rng=s, population_scale=0.03, **NO_FAIL, **kw).run(12) for s in SEEDS]
        return np.mean([m.care.units[:, SERVICES.index("elective")].sum() for m in ms])
    frag = elective("fragmented")
    icp = elective("icp_full")
    flat = elective("fragmented", payment_response__tariff_activity=0.0)
    assert frag > flat * 1.03 and icp < flat * 0.99
    none = elective("icp_full", payment_response__population_avoidance=0.0)
    assert icp < none * 0.995                  # the population payment's avoidance, beside other effects


def test_rationing_when_capacity_binds():
    loose = ContractingModel("fragmented", rng=1, population_scale=0.03, **NO_FAIL).run(12)
    tight = ContractingModel("fragmented", rng=1, population_scale=0.03, costs__capacity_headroom=0.85, **NO_FAIL).run(12)
    assert tight.care.backlog.sum() > 10 * max(loose.care.backlog.sum(), 1.0)
    assert tight.metrics["health_index"] < loose.metrics["health_index"]


# ---------------------------------------------------------------- 4. GP participation and right to return
def test_willingness_raises_participation():
    keen = ContractingModel("icp_full", rng=1, population_scale=0.01, participation__autonomy_mean=0.15)
    wary = ContractingModel("icp_full", rng=1, population_scale=0.01, participation__autonomy_mean=0.7)
    assert keen.metrics["gp_practices_integrated"] > wary.metrics["gp_practices_integrated"] + 5
    assert sum(p.mode == "full" for p in keen.practices) > sum(p.mode == "full" for p in wary.practices)


def test_no_participation_outside_icp(run_model):
    for arr in ("fragmented", "alliance", "prime_contractor", "prime_provider"):
        assert run_model(arr, 7, 1).metrics["gp_practices_integrated"] == 0


def _low_trust_by_month_11(m):
    m.run(11)
    for pr in m.practices:
        if pr.mode == "full":
            m.network.practice_contract(pr.org_id).trust = 0.2
    return m


def test_returning_is_risky_when_patients_stay_with_the_icp():
    """Right to return (BMA 'no way back'; Pulse): patients stay with the ICP by default and funding beyond
    GMS/PMS does not come back, so a practice that returns anyway ends with much less income."""
    m = _low_trust_by_month_11(ContractingModel("icp_full", rng=3, population_scale=0.05,
                                                participation__return_hurdle=-5.0, **NO_FAIL))   # forced
    m.run(25)
    returned = [p for p in m.practices if p.returned]
    assert len(returned) >= 3
    income = {r["org_id"]: r["income"] for r in m.finance_records() if r["year"] == 3}
    for p in returned:
        assert income[p.org_id] < 0.8 * p.income_before, p
        assert m.network[f"gms:{p.org_id}"].status == "active"
        assert not p.failed                                      # its costs followed its smaller list
    assert m.metrics["gp_returned"] == len(returned)
    notices = [e["month"] for e in m.events if e["event"] == "notice"]
    assert notices and set(notices) == {12}                      # 12 months before the two-year point


def test_practices_weigh_return_on_their_own_economics():
    """At defaults returning is unviable (0 returns); where patients come back with their practice and
    trust in the lead has eroded, practices do return and survive it."""
    def returns(stay):
        out = []
        for seed in (1, 2):
            m = _low_trust_by_month_11(ContractingModel("icp_full", rng=seed, population_scale=0.05,
                                                        arrangement__practices__patients_stay_share=stay))
            m.run(37)
            out += [p for p in m.practices if p.returned]
        return out
    assert returns(0.7) == []
    back = returns(0.0)
    assert len(back) >= 3 and not any(p.failed for p in back)


# ---------------------------------------------------------------- 5. trust and governance
def test_trust_rises_with_surpluses_and_falls_with_losses():
    good = ContractingModel("alliance", rng=1, population_scale=0.03, shocks=[{"kind": "cost_inflation", "month": 1, "size": -0.04}],
                            **NO_FAIL).run(36)
    bad = ContractingModel("alliance", rng=1, population_scale=0.03, shocks=[{"kind": "cost_inflation", "month": 1, "size": 0.06}],
                           **NO_FAIL).run(36)
    t0 = good.p["trust"]["initial"]
    assert good.metrics["alliance_trust"] > t0 > bad.metrics["alliance_trust"]


def test_low_trust_raises_governance_cost_and_lowers_integration():
    hi = ContractingModel("icp_full", rng=1, population_scale=0.03, trust__initial=0.95, **NO_FAIL).run(12)
    lo = ContractingModel("icp_full", rng=1, population_scale=0.03, trust__initial=0.05, **NO_FAIL).run(12)
    assert hi.metrics["integrated_handoff_share"] > lo.metrics["integrated_handoff_share"] + 0.2
    ahi = ContractingModel("alliance", rng=1, population_scale=0.03, trust__initial=0.95, **NO_FAIL).run(12)
    alo = ContractingModel("alliance", rng=1, population_scale=0.03, trust__initial=0.05, **NO_FAIL).run(12)
    assert alo.metrics["transaction_cost_share"] > ahi.metrics["transaction_cost_share"]


def test_alliance_integration_develops_with_trust_and_erodes_without_it():
    """Alliances formalise joint working between partners through governance and relational trust; it
    takes years (Lambeth: nearly four) and falls away when trust erodes."""
    frag = ContractingModel("fragmented", rng=1, population_scale=0.02, **NO_FAIL).run(24)
    share = {}
    for tr in (0.45, 0.8):
        m = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=tr, **NO_FAIL).run(24)
        share[tr] = m.metrics["integrated_handoff_share"]
    assert share[0.45] > frag.metrics["integrated_handoff_share"] + 0.02
    assert share[0.8] > share[0.45] + 0.02                             # rises with trust
    hi = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.95, **NO_FAIL)
    start = hi.network.members()[0].maturity
    hi.run(24)
    assert hi.network.members()[0].maturity > start + 0.2              # develops over the years
    lo = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.3, **NO_FAIL).run(12)
    assert lo.network.members()[0].maturity < start                    # erodes below the trust floor


def test_a_gp_federation_member_brings_its_practices_into_the_alliance():
    kw = dict(rng=1, population_scale=0.02, trust__initial=0.8, **NO_FAIL)
    with_fed = ContractingModel("alliance", **kw).run(12)
    without = ContractingModel("alliance", trust__federation_reach=0.0, **kw).run(12)
    assert with_fed.metrics["integrated_handoff_share"] > 2 * without.metrics["integrated_handoff_share"]


def test_alliance_governance_is_shared_by_the_agreed_risk_shares():
    """The alliance's governance is a joint cost paid by the partners' agreed shares (commissioners
    included), not a flat sum per member that a small voluntary partner could not carry."""
    m = ContractingModel("alliance", rng=1, population_scale=0.02, **NO_FAIL)
    paid = collections.Counter()
    led = m.finance.ledger
    spend = led.spend

    def spy(payer, amount, sink="care"):
        if sink == "transaction":
            paid[payer] += amount
        return spend(payer, amount, sink)
    led.spend = spy
    total = m.finance._share_governance(1200.0)
    shares = m.arr["alliance"]["risk_shares"]
    assert total == pytest.approx(1200.0) and sum(paid.values()) == pytest.approx(1200.0)
    for oid in ("gpfed", "dgft", "ccg"):
        assert paid[m.org_by_id[oid].idx] == pytest.approx(1200.0 * shares[oid])


def test_a_failed_partners_successor_does_not_join_the_alliance():
    """When a partner fails, its services go to a new provider on its own contract: the alliance
    agreement is not handed on, so a successor does not inherit the failed partner's pooled losses.
    A year of 12% cost overrun across providers pushes two partners (the federation, social care) over."""
    m = ContractingModel("alliance", rng=1, population_scale=0.05,
                         shocks=[{"kind": "efficiency_shortfall", "month": 1, "size": 0.12, "duration": 12}]).run(60)
    left = [e["org"] for e in m.events if e["event"] == "left the alliance"]
    assert left
    members = {c.payee for c in m.network.members()}
    for oid in left:
        succ = [o.org_id for o in m.orgs if o.successor_of == oid]
        assert succ and not members & set(succ)
        assert m.network.query(payee=succ[0])          # it delivers on its own contract
    assert not any(o.failed and o.successor_of in left for o in m.orgs)   # no chain of failures


def test_alliance_decisions_need_unanimity():
    lo = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.3, **NO_FAIL).run(13)
    hi = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.6, **NO_FAIL).run(13)
    assert lo.results.cum["prevention"] == 0 and not lo.prevention.alliance_agreed
    assert hi.results.cum["prevention"] > 0
    anyway = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.3,
                              arrangement__alliance__unanimity=False, **NO_FAIL).run(13)
    assert anyway.results.cum["prevention"] > 0


# ---------------------------------------------------------------- 6. patient choice
def test_choice_moves_elective_activity_and_money_away_from_the_lead():
    def private_income(q):
        m = ContractingModel("prime_provider", rng=1, population_scale=0.03, **NO_FAIL)
        m.org_by_id["dgft"].quality = q
        m.run(12)
        return sum(r["income"] for r in m.finance_records() if r["org_id"] == "indep")
    assert private_income(0.3) > 1.2 * private_income(0.9)


def test_long_waits_push_choice_elsewhere():
    m = ContractingModel("fragmented", rng=1, population_scale=0.03, **NO_FAIL)
    before = m.care.choice_shares("elective").copy()
    m.care.backlog[m.org_by_id["dgft"].idx, 4] = 3 * m.care.capacity[m.org_by_id["dgft"].idx, 4]
    after = m.care.choice_shares("elective")
    i = list(m.care.routing["elective"]["idx"]).index(m.org_by_id["dgft"].idx)
    assert after[i] < before[i] - 0.2


# ---------------------------------------------------------------- 7. commissioner oversight
def test_sustained_quality_failure_terminates_and_reprocures():
    m = ContractingModel("fragmented", rng=1, population_scale=0.02, **NO_FAIL)
    mh = m.org_by_id["bcpft"]
    mh.quality = mh.quality0 = 0.3
    m.run(25)
    assert any(e["event"] == "terminated for quality" and e["org"] == "bcpft" for e in m.events)
    assert mh.failed and any(o.successor_of == "bcpft" for o in m.orgs)
    assert m.results.cum["procurement"] > 0
    assert all(d["status"] == "terminated" for _, v, d in m.contracts.in_edges("bcpft", data=True) if d["kind"] != "allocation")


def test_a_service_terminated_for_quality_goes_to_a_provider_of_its_own_quality():
    """The successor does not inherit the failed quality, so termination does not repeat forever."""
    m = ContractingModel("fragmented", rng=1, population_scale=0.02, **NO_FAIL)
    mh = m.org_by_id["bcpft"]
    mh.quality = mh.quality0 = 0.3
    m.run(72)
    terminations = [e for e in m.events if e["event"] == "terminated for quality"]
    assert len(terminations) == 1
    succ = next(o for o in m.orgs if o.successor_of == "bcpft")
    assert succ.quality0 == pytest.approx(m.p["oversight"]["new_provider_quality"])


def test_terminating_one_contract_leaves_the_providers_other_work():
    from abm.params import load_economy
    eco = load_economy(None)
    eco["service_providers"]["value"]["social_care"] = {"dasc": 0.75, "ageuk": 0.15, "dcvs": 0.10}
    m = ContractingModel("fragmented", economy=eco, rng=1, population_scale=0.02, **NO_FAIL).run(2)
    mh_contract = m.network["std:ccg:dcvs"]                     # community and mental health, from the CCG
    sc_contract = m.network["std:dmbc:dcvs"]                    # social care, from the council
    m.ccg.terminate_for_quality(mh_contract, m.month)
    dcvs = m.org_by_id["dcvs"]
    new = next(o for o in m.orgs if o.successor_of == "dcvs")
    assert not dcvs.failed and sc_contract.status == "active" and mh_contract.status == "terminated"
    assert m.care.services_of("dcvs") == ["social_care"]
    assert set(m.care.services_of(new.org_id)) == {"community", "mental_health"}
    assert m.network.query(payee=new.org_id, kind="standard")
    m.run(3)
    assert m.care.units[new.idx].sum() > 0 and m.metrics["money_balance_error"] < 1.0


def test_permission_is_withdrawn_when_a_subcontractors_quality_falls():
    base = ContractingModel("icp_partial", rng=1, population_scale=0.02, **NO_FAIL)
    m = ContractingModel("icp_partial", rng=1, population_scale=0.02, shocks=[{"kind": "quality_fall", "month": 2,
                         "size": 0.1}], **NO_FAIL)
    value = lambda x: x.network[x.network.holder_contracts[0]].value
    before = value(m)
    base.run(12)
    m.run(12)
    assert any(e["event"] == "subcontract permission withdrawn (quality)" and e["org"] == "bcpft" for e in m.events)
    assert m.network["sub:bcpft"].status == "terminated"
    assert m.network.funding("mental_health", "bcpft").kind == "standard"
    assert value(m) < before and value(m) < value(base)          # out of the ICP's budget
    assert not any("permission" in e["event"] for e in base.events)


def test_icp_subcontracting_needs_permission():
    ok = ContractingModel("icp_partial", rng=1, population_scale=0.01)
    refused = ContractingModel("icp_partial", rng=1, population_scale=0.01, oversight__permission_quality=0.69)
    # bcpft (quality 0.68) is refused: it keeps a direct contract with the commissioner
    assert "bcpft" not in ok.network.refused and "bcpft" in refused.network.refused
    assert refused.network.route[("mental_health", "bcpft")].startswith("std:")
    assert ok.network.route[("mental_health", "bcpft")].startswith("sub:")
    v = lambda m: m.network[m.network.holder_contracts[0]].value
    assert v(refused) < v(ok)


def test_permission_is_refused_where_the_holders_vat_position_would_leak_vat():
    """The UnitingCare lesson (NAO 2016): an LLP holder cannot recover VAT on contracted-out services.
    A commissioner that must permit each subcontract refuses them where the leakage passes its tolerance,
    so the providers stay on direct contracts and no VAT leaks; an NHS holder (prime provider) is not
    refused on VAT; a commissioner that tolerates the leakage permits the LLP's subcontracts."""
    kw = dict(rng=1, population_scale=0.02, arrangement__subcontract_permission=True, **NO_FAIL)
    llp = ContractingModel("prime_contractor", **kw)
    tolerant = ContractingModel("prime_contractor", oversight__permission_vat_share=0.05, **kw)
    nhs = ContractingModel("prime_provider", **kw)
    refused = lambda m: {e["org"] for e in m.events if e["event"] == "subcontract permission refused (VAT)"}
    assert {"dgft", "dchs", "bcpft"} <= refused(llp) and not refused(nhs) and not refused(tolerant)
    assert not llp.network.query(kind="subcontract") and tolerant.network.query(kind="subcontract")
    assert nhs.network.query(kind="subcontract")
    assert llp.network.funding("emergency", "dgft").kind == "standard"
    for m in (llp, tolerant):
        m.run(12)
    assert llp.results.cum["vat"] == 0 < tolerant.results.cum["vat"]


def _surge(service, size=0.3, month=13):
    return [{"kind": "demand_surge", "month": month, "size": size, "service": service}]


def test_staff_pressure_lowers_quality_and_plans_catch_up():
    """Demand beyond staffed capacity (a sustained 20% rise in emergencies at the acute trust) presses on
    staff and quality falls; with `quality_pressure` 0 it does not fall from pressure. Capacity follows
    planned activity a year late, so the pressure eases once plans see the surge."""
    kw = dict(rng=2, population_scale=0.03, **NO_FAIL)
    base = ContractingModel("fragmented", **kw)
    hit = ContractingModel("fragmented", shocks=_surge("emergency", 0.2), **kw)
    flat = ContractingModel("fragmented", shocks=_surge("emergency", 0.2), oversight__quality_pressure=0.0, **kw)
    pressure = []
    for _ in range(4):
        for m in (base, hit, flat):
            m.run(12)
        pressure.append(hit.org_by_id["dgft"].pressure)
    assert base.org_by_id["dgft"].pressure == 0.0
    assert pressure[1] > 0.03                      # the first year of the surge: beyond staffed capacity
    assert pressure[3] < 0.5 * pressure[1]         # plans made during the surge restore capacity
    q = lambda m: m.org_by_id["dgft"].quality
    assert q(hit) < q(flat) - 0.01 and abs(q(flat) - q(base)) < abs(q(hit) - q(base))


def test_permission_is_withdrawn_from_a_subcontractor_without_capacity():
    """Under the ICP a subcontractor whose new demand runs well beyond its staffed capacity for a year (a
    30% rise in elective and outpatient referrals) loses permission: the commissioner contracts it
    directly, outside the ICP's budget."""
    kw = dict(rng=1, population_scale=0.05, **NO_FAIL)
    hit = ContractingModel("icp_full", shocks=_surge(["elective", "outpatient"]), **kw).run(24)
    base = ContractingModel("icp_full", **kw).run(24)
    gone = {e["org"] for e in hit.events if e["event"] == "subcontract permission withdrawn (capacity)"}
    assert gone and not any("permission" in e["event"] for e in base.events)
    for oid in gone:
        assert hit.network.funding("elective", oid).kind == "standard"


def test_another_systems_provider_is_paid_by_the_commissioner_after_the_holder_fails():
    """Out-of-area activity does not stop when a holder fails: the commissioner pays for it again, and the
    outside provider's quality is not made by this economy's money."""
    m = ContractingModel("prime_contractor", rng=1, population_scale=0.03,
                         arrangement__contract__value_factor=0.85).run(36)
    assert m.org_by_id["prime"].failed
    live = [c for c in m.network.query(payee="ooa") if c.status == "active"]
    assert live and all(c.kind == "non_contract" and c.payer == "ccg" for c in live)
    assert m.org_by_id["ooa"].quality == m.org_by_id["ooa"].quality0
    assert m.org_by_id["ooa"].last_income > 0


# ---------------------------------------------------------------- 8. financial failure
def test_failure_ends_contracts_and_holder_failure_cascades():
    m = ContractingModel("prime_contractor", rng=1, population_scale=0.03, arrangement__contract__value_factor=0.85).run(24)
    prime = m.org_by_id["prime"]
    assert prime.failed
    live_subs = [d for u, v, d in m.contracts.out_edges("prime", data=True) if d["status"] == "active"]
    assert not live_subs
    # the commissioner now contracts the providers directly
    direct = {v for u, v, d in m.contracts.out_edges(m.ccg.org_id, data=True)
              if d["status"] == "active" and d["kind"] == "standard"}
    assert {"dchs", "bcpft"} <= direct or any(o.successor_of for o in m.orgs)
    assert m.metrics["provider_failures"] >= 1 and m.metrics["lead_reserves"] == 0.0
    assert m.ledger.balance_error() < 1.0


def test_failure_disrupts_continuity():
    m = ContractingModel("fragmented", rng=1, population_scale=0.02, **NO_FAIL).run(12)
    before = m.metrics["orgs_per_patient"]
    m.org_by_id["dchs"].fail(m.month)
    m.run(6)
    assert m.metrics["orgs_per_patient"] > before      # patients now also see the successor


# ---------------------------------------------------------------- 9. shocks
@pytest.mark.parametrize("kind", ["demand_surge", "cost_inflation", "efficiency_shortfall", "population_growth", "ageing"])
def test_every_shock_raises_system_cost(kind):
    base = ContractingModel("icp_full", rng=2, population_scale=0.02, **NO_FAIL).run(25)
    hit = ContractingModel("icp_full", rng=2, population_scale=0.02, shocks=[{"kind": kind, "month": 1, "size": 0.1}],
                           **NO_FAIL).run(25)
    assert hit.system_cost_total() > base.system_cost_total() * 1.005


def test_a_service_limited_surge_moves_only_that_service():
    kw = dict(rng=2, population_scale=0.03, **NO_FAIL)
    base = ContractingModel("fragmented", **kw).run(6)
    mix = ContractingModel("fragmented", shocks=[{"kind": "demand_surge", "month": 1, "size": 0.3,
                                                  "service": "emergency"}], **kw).run(6)
    col = {s: SERVICES.index(s) for s in ("emergency", "mental_health", "gp_f2f")}
    assert mix.care.units[:, col["emergency"]].sum() > 1.15 * base.care.units[:, col["emergency"]].sum()
    assert mix.care.units[:, col["mental_health"]].sum() == base.care.units[:, col["mental_health"]].sum()
    with pytest.raises(Exception, match="service"):
        ContractingModel("fragmented", rng=1, population_scale=0.01,
                         shocks=[{"kind": "demand_surge", "month": 1, "size": 0.1, "service": "dentistry"}])


def test_a_quality_fall_lowers_provider_quality_then_recovers():
    m = ContractingModel("fragmented", rng=2, population_scale=0.02,
                         shocks=[{"kind": "quality_fall", "month": 3, "size": 0.2}], **NO_FAIL)
    q0 = m.org_by_id["bcpft"].quality
    m.run(3)
    assert m.org_by_id["bcpft"].quality == pytest.approx(q0 - 0.2)
    m.run(33)
    assert q0 - 0.2 < m.org_by_id["bcpft"].quality < q0


def test_shock_timing_and_duration():
    m = ContractingModel("fragmented", rng=2, population_scale=0.01, shocks=[{"kind": "demand_surge", "month": 5,
                                                                             "size": 0.2, "duration": 3}])
    assert [m.shock_level("demand_surge", t) for t in range(3, 9)] == [0, 0.2, 0.2, 0.2, 0, 0]


def test_successor_takes_over_the_rest_of_the_term():
    """A re-procured contract runs to the original end date, not one cut short at the failure."""
    m = ContractingModel("prime_provider", rng=1, population_scale=0.02, **NO_FAIL).run(12)
    old = m.network["sub:bcpft"]
    end = old.end
    m.org_by_id["bcpft"].fail(m.month)
    new = next(c for c in m.network if c.payee.startswith("bcpft~") and c.kind == "subcontract")
    assert old.status == "terminated" and old.end == 12
    assert new.status == "active" and new.end == end == 60 and new.start == 12
    assert new.pass_through == old.pass_through and new.services == old.services
    m.run(13)   # through a year start: no spurious renewal or re-procurement
    assert new.end == 60 and new.status == "active"


def test_choice_takes_volume_and_money_out_of_the_leads_network():
    """Patients may choose another system's hospital (non-contract activity): when the local trust's waits
    grow, elective volume and the ICP's money leave its network."""
    kw = dict(rng=1, population_scale=0.03, **NO_FAIL)
    base = ContractingModel("icp_full", **kw)
    squeezed = ContractingModel("icp_full", **kw)
    for m in (base, squeezed):
        assert m.network.funding("elective", "ooa").kind == "non_contract"
        assert m.network.funding("elective", "ooa").payer == m.holder.org_id      # the ICP pays
    dgft = squeezed.org_by_id["dgft"].idx
    squeezed.care.capacity[dgft] *= 0.8
    squeezed.finance.exp_units[dgft] *= 0.8          # planned capacity stays short at year starts
    base.run(12)
    squeezed.run(12)
    paid = lambda m: sum(r["income"] for r in m.finance_records() if r["org_id"] == "ooa")
    assert paid(squeezed) > 1.2 * paid(base) > 0
    assert "ooa" not in {c.payee for c in squeezed.network.query(payer="dchs", kind="subcontract")}


def test_another_systems_provider_is_not_put_in_oversight_by_our_flows():
    """An out-of-area provider (non-contract activity) is not lent to, segmented or failed on this
    economy's flows, even when an ICP moves activity away from it (it went into recovery in year 1 and
    intensive support by year 10 before)."""
    m = ContractingModel("icp_full", rng=1, population_scale=0.1).run(120)
    outside = [o for o in m.orgs if o.outside_network]
    assert outside
    for o in outside:
        assert o.oversight == "none" and not o.failed and m.finance.loans[o.idx] == 0
        assert not [e for e in m.results.events if e.get("org") == o.org_id]
