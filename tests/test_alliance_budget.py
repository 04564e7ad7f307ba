"""The alliance's target cost, what partners judge it by, and the money that sets it: budgets that grow
with the population the partners serve (not with their own activity), real cost growth on every cost,
tariff contracts valued at their activity plan, and an alliance that at the defaults integrates,
keeps investing and survives (NHS England IPC, "About contracting for integrated care"; King's Fund
2015 and 2019)."""
from __future__ import annotations

import numpy as np
import pytest

from abm import ContractingModel

NO_FAIL = {"failure__threshold": -100.0, "failure__hand_back_loss": 1.0}


def test_a_tariff_contract_is_valued_at_its_activity_plan():
    """A tariff contract's value is what its planned activity costs at this year's prices, so it grows
    with planned activity and the uplift instead of staying at its first year's value."""
    m = ContractingModel("fragmented", rng=1, population_scale=0.03).run(25)
    f = m.finance
    tariff = [c for c in m.network.active() if c.pay.per_activity and c.base_value > 0]
    assert tariff
    for c in tariff:
        assert c.value == pytest.approx(c.base_value * f.uplift * f.contract_activity(c))
    assert any(c.value > c.base_value * 1.02 for c in tariff)


def test_real_cost_growth_does_not_widen_providers_margins():
    """Prices and costs carry the same real uplift: with 2% a year, providers' margins after ten years are
    what they are with none (when only fixed costs carried it, margins widened by several points)."""
    margin = {}
    for g in (0.0, 0.02):
        m = ContractingModel("fragmented", rng=1, population_scale=0.03, funding__real_growth=g, **NO_FAIL).run(120)
        rows = [r for r in m.results.year_records if r["year"] == 10 and m.org_by_id[r["org_id"]].side == "provider"]
        margin[g] = float(np.mean([r["surplus"] / r["income"] for r in rows]))
    assert margin[0.02] == pytest.approx(margin[0.0], abs=0.005)


def test_the_target_cost_follows_the_population_not_the_partners_activity():
    """What the alliance avoids stays an underspend the partners share: its target cost is the same
    whether or not it invests in prevention (the same people, the same allocation formula), while the
    activity it plans for differs."""
    a = ContractingModel("alliance", rng=1, population_scale=0.03, **NO_FAIL).run(37)
    b = ContractingModel("alliance", rng=1, population_scale=0.03, prevention__budget_share=0.0, **NO_FAIL).run(37)
    assert a.finance.alliance_budget and a.finance.alliance_budget == b.finance.alliance_budget
    acute = a.org_by_id["dgft"].idx
    assert a.finance.exp_units[acute].sum() != b.finance.exp_units[acute].sum()
    # and it grows with the weighted population and the uplift from what the contracts were worth
    first = ContractingModel("alliance", rng=1, population_scale=0.03, **NO_FAIL).run(1)
    assert a.finance.alliance_budget["dgft"] > first.finance.alliance_budget["dgft"] * a.finance.uplift


def test_agreed_prevention_is_an_investment_not_an_overspend():
    """The partners judge their shared result against their plan: the first year's prevention, not yet
    paying back, does not count as failure (it did, and trust fell in year one in every run)."""
    kw = dict(rng=1, population_scale=0.03, **NO_FAIL)
    invest = ContractingModel("alliance", **kw).run(12)
    none = ContractingModel("alliance", prevention__budget_share=0.0, **kw).run(12)
    spent = sum(invest.prevention.spent_ytd.values())
    assert spent > 0
    budget = sum(invest.finance.alliance_budget.values())
    assert abs(invest.finance.pool_rate - none.finance.pool_rate) < 0.25 * spent / budget
    assert min(c.trust for c in invest.network.members()) >= invest.p["trust"]["initial"] - 0.02


def test_alliance_pace_is_measured_against_a_fixed_trust():
    """The trust at which an alliance matures at Lambeth's pace is a parameter of its own: starting trust
    at the floor gives a slow start, not a jump (it was divided by zero and matured half-way in a year)."""
    floor = ContractingModel("alliance", rng=1, population_scale=0.02).p["trust"]["trust_floor"]
    m = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=floor + 0.01, **NO_FAIL)
    start = m.network.members()[0].maturity
    m.run(12)
    assert m.network.members()[0].maturity < start + 0.1
    ref = ContractingModel("alliance", rng=1, population_scale=0.02, trust__initial=0.6, **NO_FAIL).run(12)
    assert ref.network.members()[0].maturity > m.network.members()[0].maturity + 0.1


@pytest.fixture(scope="module")
def ten_years():
    """Paired ten-year runs at the defaults (failure rules on), the alliance at three starting trusts."""
    out = {}
    for seed in (1, 2):
        out["fragmented", seed] = ContractingModel("fragmented", rng=seed, population_scale=0.05).run(120)
        for tr in (0.45, 0.6, 0.8):
            out["alliance", seed, tr] = ContractingModel("alliance", rng=seed, population_scale=0.05,
                                                        trust__initial=tr).run(120)
    return out


def _df(m):
    return m.datacollector.get_model_vars_dataframe()


def test_at_the_defaults_the_alliance_integrates_and_more_with_more_trust(ten_years):
    for seed in (1, 2):
        frag = _df(ten_years["fragmented", seed])["integrated_handoff_share"].iloc[-12:].mean()
        al = _df(ten_years["alliance", seed, 0.6])["integrated_handoff_share"].iloc[-12:].mean()
        assert al > frag + 0.2                                     # final year, clearly above
        early = [_df(ten_years["alliance", seed, tr])["integrated_handoff_share"].iloc[1:61].mean()
                 for tr in (0.45, 0.6, 0.8)]
        assert early[0] + 0.02 < early[1] and early[1] + 0.02 < early[2]   # rises with trust


def test_at_the_defaults_the_alliance_keeps_investing_and_its_partners_survive(ten_years):
    for seed in (1, 2):
        m = ten_years["alliance", seed, 0.6]
        assert _df(m)["prevention_spend_share"].iloc[-12:].mean() > 0
        members = set(m.arr["alliance"]["members"])
        assert not [e for e in m.events if e["event"] == "left the alliance" and e["org"] in members]


def test_a_practice_staffs_to_its_weighted_list():
    """A practice's fixed costs follow its list weighted for need, as its capitation does, not its own
    patients' modelled activity; so the status quo's practices stay near balance for ten years (they
    drifted into deficit in scaled-down runs, where a few frail patients decide a small list's activity)."""
    m = ContractingModel("fragmented", rng=1, population_scale=0.1).run(37)
    f = m.finance
    for k, pr in enumerate(m.practices):
        assert f.activity[pr.idx] == pytest.approx(f.weighted_list(k) / f._practice_list0[k])
    m.run(120 - 37)
    rows = [r for r in m.results.year_records if m.org_by_id[r["org_id"]].side == "practice" and r["income"] > 0]
    by_year = {}
    for r in rows:
        by_year.setdefault(r["year"], []).append(r["surplus"] / r["income"])
    assert all(abs(np.mean(v)) < 0.01 for v in by_year.values())


def test_gp_partners_absorb_losses_in_their_drawings_before_the_practice_fails():
    """A GP partnership's partners are paid what is left (expenses are about 70% of earnings, NHS
    Digital), so a loss a company could not survive cuts their drawings first."""
    for cut, fails in ((0.1, False), (0.0, True)):
        m = ContractingModel("fragmented", rng=1, population_scale=0.05, failure__partner_drawings_cut=cut).run(13)
        pr = m.practices[0]
        income = max(pr.last_income, pr.expected_income)
        m.finance.ledger.spend(pr.idx, pr.reserves + 0.08 * income, "care")     # reserves at -8% of income
        pr.check_viability(m.month)
        assert pr.failed is fails


def test_a_closing_practices_patients_bring_their_capitation_with_them():
    """The global sum follows the registered list, so when a practice closes, the practices that take its
    patients are paid for them at once (before, the commissioner kept the money to the year end while the
    receivers carried the patients' care, and closures cascaded)."""
    m = ContractingModel("fragmented", rng=1, population_scale=0.05).run(14)
    gms = lambda: {c.payee: c.value for c in m.network.active() if c.kind == "gms_pms"}
    before = gms()
    closing = m.practices[0]
    closing.fail(m.month)
    after = gms()
    assert closing.org_id not in after
    others = [k for k in after if k in before]
    gained = sum(after[k] - before[k] for k in others)
    assert gained == pytest.approx(before[closing.org_id], rel=0.15)
    assert all(after[k] >= before[k] for k in others)
