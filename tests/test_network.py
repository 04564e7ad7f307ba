"""Contract-network structure per arrangement (NHS England, Draft ICP Contract and its consultation, 2018-19; King's Fund on alliances)."""
from __future__ import annotations

import pytest

from abm import ARRANGEMENTS, ContractingModel
from abm.params import ORG_KINDS, PAYMENTS

EDGE_KINDS = {"allocation", "standard", "gms_pms", "alliance", "prime", "subcontract", "icp",
              "integration_agreement", "salaried", "non_contract"}
ROLES = {"funder", "commissioner", "lead", "member", "subcontractor", "provider", "practice"}


def edges(m, **match):
    return [(u, v, d) for u, v, d in m.contracts.edges(data=True)
            if all(d.get(k) == val for k, val in match.items())]


def providers(m):
    """The economy's own providers (another system's, paid as non-contract activity, are not contracted)."""
    return [o for o in m.orgs if o.side == "provider" and not o.outside_network]


@pytest.mark.parametrize("arr", ARRANGEMENTS)
def test_attributes_use_interface_vocabulary(arr):
    m = ContractingModel(arr, rng=1, population_scale=0.01)
    for n, d in m.contracts.nodes(data=True):
        assert d["kind"] in ORG_KINDS, (n, d)
        assert d["role"] in ROLES, (n, d)
        assert isinstance(d["nhs_body"], bool)
    for u, v, d in m.contracts.edges(data=True):
        assert d["kind"] in EDGE_KINDS and d["payment"] in PAYMENTS, d
        assert d["status"] in ("active", "suspended", "terminated")
        assert d["value"] >= 0


def test_fragmented_one_contract_per_provider_and_practice():
    m = ContractingModel("fragmented", rng=1, population_scale=0.01)
    ccg, la = m.ccg.org_id, m.la.org_id
    for o in providers(m):
        held = edges(m, kind="standard")
        payers = {u for u, v, d in held if v == o.org_id}
        assert len(payers) == 1 and payers <= {ccg, la}, o
    for pr in m.practices:
        gms = [e for e in edges(m, kind="gms_pms") if e[1] == pr.org_id]
        assert len(gms) == 1 and gms[0][0] == ccg and gms[0][2]["status"] == "active"
    assert not edges(m, kind="subcontract") and not edges(m, kind="alliance")
    # the acute trust is paid by tariff, community and mental health by block
    pay = {v: d["payment"] for u, v, d in edges(m, kind="standard")}
    assert pay["dgft"] == "tariff" and pay["dchs"] == "block" and pay["bcpft"] == "block"


def test_alliance_has_no_subcontracts_and_members_keep_contracts():
    m = ContractingModel("alliance", rng=1, population_scale=0.01)
    assert not edges(m, kind="subcontract")
    members = {v for u, v, d in edges(m, kind="alliance")}
    assert members == set(m.arr["alliance"]["members"])
    for mem in members:
        assert any(v == mem for u, v, d in edges(m, kind="standard")), mem
    shares = sum(m.arr["alliance"]["risk_shares"].values())
    assert shares == pytest.approx(1.0)


@pytest.mark.parametrize("arr", ["prime_contractor", "prime_provider"])
def test_prime_holds_every_in_scope_providers_subcontract(arr):
    m = ContractingModel(arr, rng=1, population_scale=0.01)
    holder = m.holder.org_id
    scope = set(m.arr["contract"]["scope"])
    subs = {v for u, v, d in edges(m, kind="subcontract") if u == holder}
    for o in providers(m):
        if o.org_id == holder:
            continue
        services = {s for s, sh in m.care.service_providers.items() if o.org_id in sh}
        commissioned_by_ccg = {s for s in services if m.eco["commissioned_by"]["value"][s] == m.ccg.org_id}
        if services & scope & commissioned_by_ccg:
            assert o.org_id in subs, o
    prime = [e for e in edges(m, kind="prime")]
    assert len(prime) == 1 and prime[0][0] == m.ccg.org_id and prime[0][1] == holder


def test_prime_contractor_delivers_nothing_prime_provider_delivers_some():
    pc = ContractingModel("prime_contractor", rng=1, population_scale=0.01)
    pp = ContractingModel("prime_provider", rng=1, population_scale=0.01)
    assert not any(pc.holder.org_id in sh for sh in pc.care.service_providers.values())
    assert pc.holder.kind == "prime_contractor" and not pc.holder.nhs_body
    own = [s for s, sh in pp.care.service_providers.items() if pp.holder.org_id in sh]
    assert own and all(pp.network.route[(s, pp.holder.org_id)] == pp.network.holder_contracts[0] for s in own
                       if s in pp.arr["contract"]["scope"])


def test_icp_partial_keeps_gms_and_signs_integration_agreements():
    m = ContractingModel("icp_partial", rng=1, population_scale=0.01)
    icp = [e for e in edges(m, kind="icp") if e[0] == m.ccg.org_id]
    assert len(icp) == 1 and icp[0][2]["payment"] == "wpap"
    assert "gp_f2f" not in icp[0][2]["services"]           # core general practice excluded
    for pr in m.practices:
        gms = [e for e in edges(m, kind="gms_pms") if e[1] == pr.org_id]
        assert gms[0][2]["status"] == "active"
        ia = [e for e in edges(m, kind="integration_agreement") if e[1] == pr.org_id]
        assert len(ia) == (1 if pr.mode == "partial" else 0)
        assert pr.mode in ("outside", "partial")
    assert sum(pr.mode == "partial" for pr in m.practices) > 0


def test_icp_full_suspends_gms_of_fully_integrated_practices():
    m = ContractingModel("icp_full", rng=1, population_scale=0.01)
    full = [pr for pr in m.practices if pr.mode == "full"]
    assert full, "no practice chose full integration under the defaults"
    for pr in m.practices:
        gms = [e for e in edges(m, kind="gms_pms") if e[1] == pr.org_id][0][2]
        inside = [e for e in m.contracts.in_edges(pr.org_id, data=True)
                  if e[0] == m.holder.org_id and e[2]["kind"] in ("subcontract", "salaried")]
        if pr.mode == "full":
            assert gms["status"] == "suspended" and len(inside) == 1
        else:
            assert gms["status"] == "active" and not inside
    icp = [e for e in edges(m, kind="icp") if e[0] == m.ccg.org_id][0][2]
    assert "gp_f2f" in icp["services"]                     # WPAP covers GP services too


def test_single_holder_collapses_commissioners_provider_contracts():
    """Bedfordshire MSK: 20 contracts became 1 (Health Service Journal)."""
    def non_gp(m):  # contracts for services other than core general practice (extended access stays out)
        return [e for e in m.contracts.out_edges(m.ccg.org_id, data=True)
                if e[2]["kind"] not in ("gms_pms", "allocation") and e[2]["status"] == "active"
                and not set(e[2]["services"].split(",")) <= {"gp_f2f", "gp_digital"}]
    frag = ContractingModel("fragmented", rng=1, population_scale=0.01)
    for arr in ("prime_contractor", "prime_provider", "icp_partial", "icp_full"):
        m = ContractingModel(arr, rng=1, population_scale=0.01)
        assert len(non_gp(m)) == 1 < len(non_gp(frag)), arr


def test_arrangement_builder_has_no_arrangement_branches():
    """Arrangements are data: the builder and model never test an arrangement's name."""
    import inspect
    import abm.agents, abm.care, abm.contracts, abm.finance, abm.model, abm.prevention
    for mod in (abm.contracts, abm.care, abm.finance, abm.agents, abm.prevention, abm.model):
        src = inspect.getsource(mod)
        for key in ("\"icp_full\"", "\"prime_contractor\"", "\"alliance\" ==", "== \"fragmented\""):
            assert key not in src.replace("arrangement: str = \"icp_full\"", ""), (mod.__name__, key)
