"""Money: conservation to the penny, and who bears which risk."""
from __future__ import annotations

import collections

import pytest

from abm import ARRANGEMENTS, ContractingModel
from abm.finance import corridor_transfer

NO_FAIL = {"failure__threshold": -100.0, "failure__hand_back_loss": 1.0}   # isolate risk incidence from failure cascades


def party_results(m) -> dict[str, float]:
    r = collections.defaultdict(float)
    for row in m.finance_records():
        r[row["party"]] += row["surplus"]
    return r


@pytest.mark.parametrize("arr", ARRANGEMENTS)
def test_money_is_conserved_every_month(arr, run_model):
    m = run_model(arr, 7, 37)
    err = m.datacollector.get_model_vars_dataframe()["money_balance_error"]
    assert (err < 1.0).all(), err.max()
    # the books close: sum of every party's result (funder = -allocations) = -(system cost)
    total = sum(row["surplus"] for row in m.finance_records())
    assert total == pytest.approx(-m.system_cost_total(), rel=1e-9, abs=1.0)


def test_conservation_survives_failures_and_successors():
    # force failures: a thin threshold and a large cost shock
    m = ContractingModel("prime_contractor", rng=2, population_scale=0.02, failure__threshold=0.0,
                         shocks=[{"kind": "cost_inflation", "month": 2, "size": 0.15}]).run(30)
    assert m.results.failures >= 1
    assert m.ledger.balance_error() < 1.0


def shock_incidence(arr: str, kind: str = "demand_surge", size: float = 0.1) -> dict[str, float]:
    """Share of the extra system cost of a shock that each party bears (common random numbers)."""
    base = ContractingModel(arr, rng=3, population_scale=0.03, **NO_FAIL).run(24)
    hit = ContractingModel(arr, rng=3, population_scale=0.03, shocks=[{"kind": kind, "month": 1, "size": size}],
                           **NO_FAIL).run(24)
    rb, rh = party_results(base), party_results(hit)
    dc = hit.system_cost_total() - base.system_cost_total()
    assert dc > 0
    return {p: -(rh[p] - rb[p]) / dc for p in ("funder", "commissioner", "lead", "providers", "gp_practices")}


def test_demand_surge_lands_on_commissioner_under_fragmented():
    s = shock_incidence("fragmented")
    assert s["commissioner"] > 0.7 and s["lead"] == pytest.approx(0.0, abs=1e-9)
    assert sum(s.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("arr", ["icp_partial", "icp_full"])
def test_demand_surge_lands_mostly_on_the_icp(arr):
    s = shock_incidence(arr)
    assert s["lead"] == max(s.values()) and s["commissioner"] < 0.05


def test_demand_surge_spread_by_alliance_shares():
    s = shock_incidence("alliance")
    frag = shock_incidence("fragmented")
    assert s["commissioner"] < frag["commissioner"] - 0.3      # the pool spreads it
    assert s["providers"] > frag["providers"] + 0.3             # members carry their shares


@pytest.mark.parametrize("arr", ["prime_contractor", "prime_provider"])
def test_demand_surge_split_between_prime_and_subcontractors(arr):
    """The prime bears most of a surge; the commissioner side only the part outside the prime's scope (the
    council's social care, whose block follows planned activity, and so the surge, a year late)."""
    s = shock_incidence(arr)
    assert s["lead"] > 0.5 and s["commissioner"] < 0.1


def test_pass_through_moves_risk_from_prime_to_subcontractors():
    """Higher pass-through: the prime absorbs more of its subcontractors' variance."""
    lo = ContractingModel("prime_provider", rng=4, population_scale=0.03, arrangement__pass_through=0.0,
                          shocks=[{"kind": "cost_inflation", "month": 1, "size": 0.05}], **NO_FAIL).run(24)
    hi = ContractingModel("prime_provider", rng=4, population_scale=0.03, arrangement__pass_through=1.0,
                          shocks=[{"kind": "cost_inflation", "month": 1, "size": 0.05}], **NO_FAIL).run(24)
    rl, rh = party_results(lo), party_results(hi)
    assert rh["lead"] < rl["lead"] and rh["providers"] > rl["providers"]


def test_corridor_shares_deviation_beyond_bands():
    terms = {"kind": "corridor", "bands": [(0.03, 0.5), (0.08, 0.8)]}
    assert corridor_transfer(terms, 0.02, 100.0) == 0.0
    assert corridor_transfer(terms, 0.05, 100.0) == pytest.approx(0.5 * 2.0)
    assert corridor_transfer(terms, 0.10, 100.0) == pytest.approx(0.5 * 5.0 + 0.8 * 2.0)
    assert corridor_transfer(terms, -0.10, 100.0) == pytest.approx(-(0.5 * 5.0 + 0.8 * 2.0))
    gl = {"kind": "gain_loss", "min_rate": 0.02, "share": 0.5, "cap": 0.01}
    assert corridor_transfer(gl, 0.03, 100.0) == pytest.approx(0.5)
    assert corridor_transfer(gl, 0.30, 100.0) == pytest.approx(1.0)       # capped


def test_risk_corridor_on_icp_contract_moves_loss_to_commissioner():
    kw = dict(rng=5, population_scale=0.03, shocks=[{"kind": "cost_inflation", "month": 1, "size": 0.08}], **NO_FAIL)
    none = ContractingModel("icp_partial", **kw).run(12)
    cor = ContractingModel("icp_partial", arrangement__contract__risk_terms={"kind": "corridor",
                           "bands": [[0.0, 0.5]]}, **kw).run(12)
    assert party_results(cor)["lead"] > party_results(none)["lead"]
    assert party_results(cor)["commissioner"] < party_results(none)["commissioner"]


def test_vat_leaks_only_where_a_non_nhs_holder_subcontracts(run_model):
    """UCP: an LLP holder cannot recover VAT on contracted-out services (002 §25; NAO)."""
    vat = {a: run_model(a, 7, 13).metrics["vat_leakage"] for a in ARRANGEMENTS}
    assert vat["fragmented"] == 0 and vat["alliance"] == 0
    assert vat["prime_contractor"] > 10 * max(vat["prime_provider"], vat["icp_partial"])
    assert vat["prime_provider"] > 0


def test_population_payment_share_reflects_payment_kinds(run_model):
    share = {a: run_model(a, 7, 13).metrics["population_payment_share"] for a in ARRANGEMENTS}
    assert share["icp_full"] > 0.4 > share["fragmented"]
    assert share["prime_provider"] > share["fragmented"]


def test_transaction_costs_include_procurement_of_new_contracts(run_model):
    frag, icp = run_model("fragmented", 7, 13), run_model("icp_full", 7, 13)
    assert frag.results.cum["procurement"] == 0 and icp.results.cum["procurement"] > 0


def test_capitation_holder_absorbs_activity_growth_tariff_commissioner_does():
    """Under capitation the holder, not the commissioner, absorbs activity growth; under tariff the
    commissioner does (Health Service Journal on the ICP contract, about 2019: the ICP bears activity risk, the commissioner population risk)."""
    out = {}
    for arr in ("fragmented", "prime_provider"):
        base = ContractingModel(arr, rng=6, population_scale=0.03, **NO_FAIL).run(24)
        hit = ContractingModel(arr, rng=6, population_scale=0.03, shocks=[{"kind": "demand_surge", "month": 1, "size": 0.08}],
                               **NO_FAIL).run(24)
        out[arr] = {p: party_results(hit)[p] - party_results(base)[p] for p in ("commissioner", "lead")}
    assert out["fragmented"]["commissioner"] < out["prime_provider"]["commissioner"]
    assert out["prime_provider"]["lead"] < 0 == out["fragmented"]["lead"]


def test_population_growth_absorbed_through_allocations():
    """Yearly allocations move with population size (001): growth raises the funder's allocation."""
    base = ContractingModel("icp_full", rng=6, population_scale=0.03, **NO_FAIL).run(25)
    grow = ContractingModel("icp_full", rng=6, population_scale=0.03, shocks=[{"kind": "population_growth", "month": 1,
                            "size": 0.05}], **NO_FAIL).run(25)
    assert grow.pop.n > base.pop.n
    assert party_results(grow)["funder"] < party_results(base)["funder"]   # funder pays more
    icp_b = base.network[base.network.holder_contracts[0]].value
    icp_g = grow.network[grow.network.holder_contracts[0]].value
    assert icp_g / icp_b == pytest.approx(grow.pop.n / base.pop.n, rel=0.02)
