"""Several places in one economy: each place's commissioner and council hold their own contracts for their
own people, are funded by their own weighted population, and an ICP or alliance may span the places."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from abm import ARRANGEMENTS, ContractingModel
from abm.params import SERVICES, load_economy, default_economy_path, config_dir

BLACK_COUNTRY = config_dir() / "economies" / "black_country.yaml"


def two_place_dudley() -> dict:
    """The default economy split into two places (practices alternate), each with its own commissioner and
    council; no aliases, so every provider serves both places."""
    eco = copy.deepcopy(load_economy(None))
    eco["organisations"].insert(2, {"id": "ccg2", "kind": "commissioner", "name": "Second place commissioner",
                                    "nhs_body": True, "legal_form": None, "vat_recovers": None, "cost_ratio": 1.0,
                                    "quality": 0.7, "source": "test"})
    eco["organisations"].insert(4, {"id": "la2", "kind": "local_authority", "name": "Second council",
                                    "nhs_body": False, "legal_form": None, "vat_recovers": True, "cost_ratio": 1.0,
                                    "quality": 0.7, "source": "test"})
    eco["places"] = [{"id": "a", "name": "A", "commissioner": "ccg", "local_authority": "dmbc", "source": None,
                      "aliases": None},
                     {"id": "b", "name": "B", "commissioner": "ccg2", "local_authority": "la2", "source": None,
                      "aliases": None}]
    for k, pr in enumerate(eco["practices"]["list"]):
        pr["place"] = "a" if k % 2 == 0 else "b"
    cb = eco["commissioned_by"]["value"]
    for s in cb:
        cb[s] = "local_authority" if s == "social_care" else "commissioner"
    return eco


def test_each_place_is_funded_for_its_own_people():
    m = ContractingModel("fragmented", economy=two_place_dudley(), rng=1, population_scale=0.02).run(24)
    sizes = m.place_sizes()
    a, b = m.network["alloc:ccg"], m.network["alloc:ccg2"]
    assert a.places == "a" and b.places == "b"
    assert a.value / b.value == pytest.approx(sizes[0] / sizes[1], rel=0.1)      # money follows people
    assert m.network["alloc:la2"].value > 0
    # the acute trust holds one contract per place commissioner, paid for that place's activity only
    tariffs = m.network.query(payee="dgft", kind="standard")
    assert {c.payer for c in tariffs} == {"ccg", "ccg2"}
    for o in ("ccg", "ccg2", "dmbc", "la2"):
        org = m.org_by_id[o]
        assert abs(org.reserves) < 0.1 * m.network[f"alloc:{o}"].value, o
    assert m.metrics["money_balance_error"] < 1.0
    assert {c.payer for c in m.network.query(kind="gms_pms")} == {"ccg", "ccg2"}


def test_tariff_contracts_pay_for_their_own_places_activity():
    m = ContractingModel("fragmented", economy=two_place_dudley(), rng=1, population_scale=0.02).run(3)
    col = [SERVICES.index(s) for s in ("outpatient", "elective", "emergency")]
    dgft = m.org_by_id["dgft"].idx
    up = m.care.units_place
    assert up is not None and up[:, :, col].sum() == pytest.approx(m.care.units[:, col].sum())
    share_a = up[0, dgft, col].sum() / up[:, dgft, col].sum()
    assert 0.3 < share_a < 0.7                    # both places use the trust, each pays its own part


def test_black_country_has_four_funded_places_and_people_use_their_own_providers():
    m = ContractingModel("fragmented", economy=BLACK_COUNTRY, rng=1, population_scale=0.01).run(3)
    assert len(m.practices) == 169 and m.eco["population"]["total"]["value"] == 1_337_739
    assert len(m.care.place_ids) == 4
    for pl in m.eco["places"]:
        assert m.network[f"alloc:{pl['commissioner']}"].value > 0
        assert m.network[f"alloc:{pl['local_authority']}"].value > 0
    col = SERVICES.index("emergency")
    up = m.care.units_place
    for q, pl in enumerate(m.eco["places"]):
        own = m.org_by_id[pl["aliases"]["dgft"]].idx
        assert up[q, own, col] == pytest.approx(up[q, :, col].sum())      # admitted to their own trust
    mh = {c.payer for c in m.network.query(payee="mh", kind="standard")}
    assert mh == {pl["commissioner"] for pl in m.eco["places"]}          # a shared trust, one contract per place


@pytest.mark.parametrize("arr", ARRANGEMENTS)
def test_every_arrangement_runs_on_black_country_and_conserves_money(arr):
    m = ContractingModel(arr, economy=BLACK_COUNTRY, rng=2, population_scale=0.005).run(13)
    assert m.metrics["money_balance_error"] < 1.0
    total = sum(r["surplus"] for r in m.finance_records())
    assert total == pytest.approx(-m.system_cost_total(), rel=1e-9, abs=1.0)
    if m.arr["contract"] and m.arr["contract"]["kind"] == "icp":
        icp = m.network.query(kind="icp")
        assert len({c.payer for c in icp}) == 8          # one holder, a contract with each commissioner and council
        assert len({c.payee for c in icp}) == 1


def test_an_alliance_spans_the_places():
    m = ContractingModel("alliance", economy=BLACK_COUNTRY, rng=1, population_scale=0.005).run(2)
    members = {c.payee for c in m.network.members()}
    assert {"dudley_acute", "sandwell_acute", "walsall_acute", "wolverhampton_acute", "mh"} <= members
    assert sum(m.arr["alliance"]["risk_shares"].values()) == pytest.approx(1.0)


def test_practices_own_age_structures_shape_their_lists():
    eco = copy.deepcopy(load_economy(None))
    young = [0.2, 0.3, 0.4, 0.1, 0.0, 0.0, 0.0]
    old = [0.0, 0.0, 0.1, 0.2, 0.3, 0.25, 0.15]
    for k, pr in enumerate(eco["practices"]["list"]):
        pr["age_share"] = young if k % 2 == 0 else old
    m = ContractingModel("fragmented", economy=eco, rng=1, population_scale=0.05)
    pop = m.pop
    even = (pop.practice % 2 == 0)
    assert pop.band[even].max() <= 3 and (pop.band[~even] >= 2).all()
    assert pop.age[~even].mean() > pop.age[even].mean() + 30
    # an older list costs more: its weighted capitation is higher per head
    m.run(13)
    k_old = next(k for k in range(len(m.practices)) if k % 2 == 1)
    k_young = next(k for k in range(len(m.practices)) if k % 2 == 0)
    assert pop.rate["emergency"][pop.practice == k_old].mean() > 3 * pop.rate["emergency"][pop.practice == k_young].mean()


def test_place_totals_equal_sums_over_each_places_people(monkeypatch):
    """Each place's expected totals, from sums by practice and cell, equal the per-person rates summed over
    the place's people (to float rounding), with vacant rows after people move away, rows grown and
    people moved between places; the compiled pass and np.bincount give the same sums bit for bit."""
    m = ContractingModel("icp_full", economy=str(BLACK_COUNTRY), rng=3, population_scale=0.02,
                         population__growth_rate=-0.01)
    m.run(13)
    pop, care = m.pop, m.care
    assert pop.size < pop.n                                   # vacant rows
    place = care.person_place()
    assert len(np.unique(place)) == 4
    got = m.finance.place_totals()
    em = m.finance._planned_emergency_rate().astype(np.float64)
    tr = m.p["transitions"]
    for q in range(4):
        here = place == q
        assert got["em"][q] == pytest.approx(em[here].sum(), rel=1e-6)
        for k, v in got["rate"].items():
            assert v[q] == pytest.approx(pop.rate[k][here].astype(np.float64).sum(), rel=1e-6), k
        for t, key in enumerate(("discharge_to_community", "discharge_to_social_care")):
            want = (em * np.asarray(tr[key])[pop.band])[here].sum()
            assert got["disc"][t][q] == pytest.approx(want, rel=1e-6)
    gp = np.bincount(pop.practice, weights=pop.rate["gp_contacts"], minlength=len(m.practices))
    assert np.allclose(got["gp"], gp, rtol=1e-6)
    monkeypatch.setenv("ABM_KERNEL", "numpy")
    again = m.finance.place_totals()
    assert np.array_equal(again["em"], got["em"]) and np.array_equal(again["gp"], got["gp"])
    assert all(np.array_equal(again["rate"][k], got["rate"][k]) for k in got["rate"])
