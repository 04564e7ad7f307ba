"""The model's structure: one contract network with a small API, parts that own their state and grow
together when an organisation is added, kinds as data, and no attribute set on the model from outside
abm/model.py."""
from __future__ import annotations

import sys

import networkx as nx
import numpy as np
import pytest

from abm import ContractingModel
from abm.contracts import Contract, ContractNetwork, new_contract
from abm.kinds import CONTRACT_KINDS, ORG_KINDS, PAYMENT_KINDS
from abm.params import ORG_KINDS as SCHEMA_ORG_KINDS, PAYMENTS

NO_FAIL = {"failure__threshold": -100.0, "failure__hand_back_loss": 1.0}


# ---------------------------------------------------------------- the contract network
def small_network() -> ContractNetwork:
    net = ContractNetwork()
    for oid, kind in (("ccg", "commissioner"), ("lead", "community"), ("a", "acute"), ("b", "mental_health")):
        net.add_node(oid, kind, True, oid)
    net.add(new_contract("icp:ccg", "icp", "wpap", "ccg", "lead", value=100.0, end=120, services=("community",)))
    net.holder_contracts.append("icp:ccg")
    sub = net.add(new_contract("sub:a", "subcontract", "block", "lead", "a", value=40.0, end=120,
                               services=("elective", "emergency"), trust=0.6))
    net.set_route(sub.services, "a", sub.cid)
    net.add(new_contract("std:ccg:b", "standard", "block", "ccg", "b", value=10.0, services=("mental_health",)))
    return net


def test_edges_are_the_contracts_no_second_copy():
    net = small_network()
    g = net.graph
    assert isinstance(g, nx.MultiDiGraph)
    c = net["sub:a"]
    assert g.edges["lead", "a", "sub:a"] is c
    c.value = 55.0                                   # a change is visible in the graph at once
    assert g.edges["lead", "a", "sub:a"]["value"] == 55.0
    assert g.edges["lead", "a", "sub:a"]["services"] == "elective,emergency" and c.services == ("elective", "emergency")
    open_ended = net["std:ccg:b"]
    assert open_ended.end is None and g.edges["ccg", "b", "std:ccg:b"]["end"] == -1
    with pytest.raises(AttributeError):
        c.not_a_field = 1
    with pytest.raises(ValueError):
        net.add(new_contract("sub:a", "subcontract", "block", "lead", "a"))


def test_terminate_suspend_reactivate_and_query():
    net = small_network()
    assert [c.cid for c in net.query(payer="lead")] == ["sub:a"]
    assert [c.cid for c in net.query(kind="standard")] == ["std:ccg:b"]
    v0 = net.version
    net.suspend(net["std:ccg:b"])
    assert net.query(kind="standard") == [] and len(net.query(kind="standard", status="suspended")) == 1
    net.reactivate(net["std:ccg:b"], 7)
    assert net["std:ccg:b"].status == "active" and net["std:ccg:b"].start == 7
    net.terminate(net["sub:a"], 9)
    d = net.graph.edges["lead", "a", "sub:a"]
    assert d["status"] == "terminated" and d["end"] == 9
    assert "sub:a" not in {c.cid for c in net.active()}
    assert net.version > v0                          # structural changes are versioned


def test_hand_over_moves_terms_routes_and_holder_contracts():
    net = small_network()
    net.add_node("a~2", "acute", True, "a successor")
    new = net.hand_over(net["sub:a"], 30, payee="a~2", trust=0.48)
    old = net["sub:a"]
    assert old.status == "terminated" and old.end == 30
    assert new.cid == "sub:a~30" and new.payer == "lead" and new.payee == "a~2"
    assert new.start == 30 and new.end == 120 and new.services == old.services and new.value == old.value
    assert new.trust == 0.48 and not new.procured
    assert net.route[("elective", "a~2")] == new.cid and net.funding("emergency", "a~2") is new
    # a successor holder takes over the population contract
    net.add_node("lead~2", "community", True, "successor lead")
    icp = net.hand_over(net["icp:ccg"], 31, payee="lead~2")
    assert net.holder_contracts == [icp.cid]


def test_agreements_count_once_and_trust_learns_asymmetrically():
    net = small_network()
    for mem in ("lead", "a", "b"):
        net.add(new_contract(f"alliance:{mem}", "alliance", "none", "ccg", mem, trust=0.6))
    assert net.count_contracts() == 3 + 1            # three contracts plus one alliance agreement
    assert net.count_contracts({"ccg"}) == 2 + 1
    outcome = {"lead": 0.9, "a": 0.1, "b": 0.5}
    net.learn_trust(outcome.get, rho=0.5)
    assert net["alliance:lead"].trust > 0.6 > net["alliance:a"].trust
    assert net["sub:a"].trust < 0.6                  # coordinating contracts learn
    assert net["std:ccg:b"].trust == 0.6             # a standard contract does not coordinate


def test_model_contracts_graph_is_current_after_a_failure():
    m = ContractingModel("prime_provider", rng=1, population_scale=0.02, **NO_FAIL).run(12)
    m.org_by_id["bcpft"].fail(m.month)
    g = m.contracts
    assert g.nodes["bcpft"]["failed"]
    old = g.edges["dgft", "bcpft", "sub:bcpft"]
    assert old["status"] == "terminated" and old["end"] == 12
    succ = [v for _, v, d in g.out_edges("dgft", data=True) if v.startswith("bcpft~") and d["status"] == "active"]
    assert succ and g.nodes[succ[0]]["role"] == "subcontractor"


def test_failed_holder_is_no_longer_lead_in_the_graph():
    m = ContractingModel("prime_contractor", rng=1, population_scale=0.03, arrangement__contract__value_factor=0.85).run(24)
    assert m.org_by_id["prime"].failed and m.holder is None
    assert m.contracts.nodes["prime"]["role"] == "provider"
    assert m.party(m.org_by_id["prime"]) == "providers"


# ---------------------------------------------------------------- add_organisation
def test_add_organisation_grows_every_part():
    m = ContractingModel("icp_full", rng=2, population_scale=0.02, **NO_FAIL).run(3)
    like = m.org_by_id["bcpft"]
    n0, slots0 = len(m.orgs), m.pop.n_slots
    org = m.add_organisation("bcpft~9", like.kind, "test successor", like.nhs_body, 1.0, like.quality0,
                             like.vat_recovers, like=like, role="subcontractor")
    n = n0 + 1
    assert org.idx == n0 and m.org_by_id["bcpft~9"] is org and len(m.orgs) == n
    f, c = m.finance, m.care
    assert f.ledger.n_orgs == n and f.ledger.balance.shape[0] == n + len(f.ledger.sink_index)
    for arr in (f.fixed_share, f.cost_scale, f.year_care, f.settle_in, f.settle_out):
        assert arr.shape[0] == n
    assert f.exp_units.shape[0] == n and f.var_unit.shape[0] == n
    np.testing.assert_array_equal(f.exp_units[org.idx], f.exp_units[like.idx])
    assert c.capacity.shape[0] == n and c.backlog.shape[0] == n and c.units.shape[0] == n
    assert c.extra_cost.shape[0] == n
    assert m.pop.n_slots == slots0 + 1 and c.slot_of[org.idx] == slots0
    assert len(set(c.slot_of[[o.idx for o in m.orgs if o.side != "practice"]])) == n - len(m.practices)
    assert m.contracts.nodes["bcpft~9"]["role"] == "subcontractor"
    assert org.expected_income == like.expected_income and org.fixed_cost == like.fixed_cost
    m.refresh_structure()
    assert c.coverage.shape == (n, n) and c.entity.shape[0] == n
    m.run(3)                                          # the model runs on with the new organisation
    assert m.metrics["money_balance_error"] < 1.0


def test_a_successor_records_contacts_in_its_own_slot():
    m = ContractingModel("fragmented", rng=4, population_scale=0.02, **NO_FAIL).run(6)
    m.org_by_id["dchs"].fail(m.month)
    succ = next(o for o in m.orgs if o.successor_of == "dchs")
    m.run(2)
    slot = m.care.slot_of[succ.idx]
    assert m.pop.window[slot].sum() > 0               # patients now see the successor
    assert m.care.units[succ.idx].sum() > 0 and m.care.units[m.org_by_id["dchs"].idx].sum() == 0


# ---------------------------------------------------------------- kinds as data
def test_kind_tables_cover_the_vocabulary():
    assert set(ORG_KINDS) == set(SCHEMA_ORG_KINDS)
    assert set(PAYMENT_KINDS) == set(PAYMENTS)
    assert {"allocation", "standard", "gms_pms", "alliance", "prime", "subcontract", "icp",
            "integration_agreement"} <= set(CONTRACT_KINDS)
    from abm.agents import agent_class
    for kind in ORG_KINDS:
        assert agent_class(kind).__name__ == ORG_KINDS[kind].agent
    # one flag per question: the holder's own contracts are the population contracts
    assert {k for k, v in CONTRACT_KINDS.items() if v.holder_population} == {"prime", "icp"}


def test_no_attribute_is_set_on_the_model_outside_model_py(monkeypatch):
    """Parts own their state: during a run with failures, a successor, notices and returns, only
    abm/model.py assigns attributes of the model."""
    writers: dict[str, set] = {}
    original = ContractingModel.__setattr__

    def spy(self, name, value):
        fn = sys._getframe(1).f_code.co_filename
        if "mesa" not in fn.replace("\\", "/").split("/site-packages/")[-1].split("/")[0]:
            writers.setdefault(fn.replace("\\", "/").rsplit("/", 2)[-1], set()).add(name)
        original(self, name, value)

    monkeypatch.setattr(ContractingModel, "__setattr__", spy)
    m = ContractingModel("icp_full", rng=3, population_scale=0.05, participation__return_hurdle=-5.0,
                         participation__autonomy_mean=0.15, **NO_FAIL).run(25)
    m.org_by_id["bcpft"].fail(m.month)                # a successor joins every part
    m.holder.fail(m.month)                            # the holder's contracts revert to the commissioner
    m.run(12)
    assert m.results.failures > 0 and any(e["event"] == "return" for e in m.events)
    assert set(writers) == {"model.py"}, writers
