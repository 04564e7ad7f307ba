"""Metric definitions on hand-computed cases and on model state."""
from __future__ import annotations

import numpy as np
import pytest

from abm import ARRANGEMENTS, ContractingModel
from abm.metrics import METRIC_NAMES, bice_boxerman, gini, secon_handoffs, upc


def test_bice_boxerman_hand_computed():
    counts = np.array([
        [4, 0, 0],    # all with one provider -> 1
        [2, 2, 0],    # (4 + 4 - 4) / (4 * 3) = 1/3
        [1, 1, 1],    # fewer than 4 contacts -> undefined
        [3, 1, 1],    # (9 + 1 + 1 - 5) / (5 * 4) = 0.3
    ])
    coc = bice_boxerman(counts)
    assert coc[0] == pytest.approx(1.0)
    assert coc[1] == pytest.approx(1 / 3)
    assert np.isnan(coc[2])
    assert coc[3] == pytest.approx(0.3)
    spread = bice_boxerman(np.array([[1, 1, 1, 1]]))
    assert spread[0] == pytest.approx(0.0)


def test_upc_and_secon_handoffs():
    assert upc(np.array([[3, 1, 0]]))[0] == pytest.approx(0.75)
    assert secon_handoffs(["gp", "gp", "acute", "community", "community", "gp"]) == 3
    assert secon_handoffs(["gp"]) == 0


def test_gini():
    assert gini(np.zeros(5)) == 0.0
    assert gini(np.array([1, 1, 1, 1.0])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 10.0])) == pytest.approx(0.75)   # (n-1)/n for one bearer
    assert gini(np.array([1, 2, 3, 4.0])) == pytest.approx(0.25)


def test_every_interface_metric_collected_every_step(run_model):
    m = run_model("icp_full", 7, 13)
    df = m.datacollector.get_model_vars_dataframe()
    assert set(METRIC_NAMES) <= set(df.columns)
    assert len(df) == 14 and not df[list(METRIC_NAMES)].isna().any().any()
    row = df.iloc[-1]
    for share in ("integrated_handoff_share", "population_payment_share", "prevention_spend_share",
                  "transaction_cost_share", "continuity_of_care", "health_index", "loss_gini"):
        assert 0.0 <= row[share] <= 1.0, share


def test_model_continuity_matches_definition_on_its_own_window(run_model):
    m = run_model("fragmented", 7, 13)
    w = m.pop.window.T                      # stored organisation-major
    coc = bice_boxerman(w)
    assert m.metrics["continuity_of_care"] == pytest.approx(np.nanmean(coc))
    with_contact = w.sum(axis=1) > 0
    assert m.metrics["orgs_per_patient"] == pytest.approx((w[with_contact] > 0).sum(axis=1).mean())


@pytest.mark.parametrize("growth,months", [(0.003, 13), (0.0, 26)])
def test_salaried_practices_count_as_the_holder_in_continuity(growth, months):
    """Contacts with a salaried practice and with its ICP are contacts with one organisation (also after
    a year's practice moves in a population that does not grow)."""
    m = ContractingModel("icp_full", rng=3, population_scale=0.02, arrangement__practices__salaried_share=1.0,
                         population__growth_rate=growth).run(months)
    w = m.pop.window.T.astype(np.int64).copy()
    merged = np.array([m.care.entity[p.idx] != p.idx for p in m.practices])[m.pop.practice]
    assert merged.any()
    h = m.care.slot_of[m.holder.idx]
    w[merged, h] += w[merged, 0]
    w[merged, 0] = 0
    assert m.metrics["continuity_of_care"] == pytest.approx(np.nanmean(bice_boxerman(w)))
    with_contact = w.sum(axis=1) > 0
    assert m.metrics["orgs_per_patient"] == pytest.approx((w[with_contact] > 0).sum(axis=1).mean())


def test_integration_raises_continuity_and_covers_handoffs(run_model):
    """Integration raises continuity of care and lowers unintegrated hand-offs (issue 8 pattern)."""
    frag, full = run_model("fragmented", 7, 13), run_model("icp_full", 7, 13)
    assert full.metrics["continuity_of_care"] > frag.metrics["continuity_of_care"]
    assert frag.metrics["integrated_handoff_share"] == 0.0
    assert full.metrics["integrated_handoff_share"] > 0.5


def test_contract_counts(run_model):
    frag = run_model("fragmented", 7, 1)
    full = run_model("icp_full", 7, 1)
    n_prac = len(frag.practices)
    assert frag.metrics["commissioner_contracts"] == n_prac + 8     # 6 CCG + 2 local authority
    assert full.metrics["commissioner_contracts"] < frag.metrics["commissioner_contracts"]
    assert frag.metrics["contracts_total"] == frag.metrics["commissioner_contracts"]


@pytest.mark.parametrize("arr", ARRANGEMENTS)
def test_lead_reserves_only_where_there_is_a_lead(arr, run_model):
    m = run_model(arr, 7, 13)
    if m.holder is None:
        assert m.metrics["lead_reserves"] == 0.0
    else:
        assert m.metrics["lead_reserves"] == pytest.approx(m.holder.reserves / m.scale)


def test_cost_per_capita_is_the_ledgers_system_cost(run_model):
    m = run_model("icp_full", 7, 12)
    assert m.results.window12["cost"].sum() == pytest.approx(m.system_cost_total(), rel=1e-9)
    assert m.metrics["cost_per_capita"] == pytest.approx(m.system_cost_total() / m.pop.n, rel=1e-9)


def test_continuity_by_chunks_and_corrected_rows_equals_whole_arrays(monkeypatch):
    """Large populations are computed chunk by chunk, and merged people's sums replaced afterwards: the
    same values to the last bit as one pass over corrected arrays."""
    import abm.metrics as M
    rng = np.random.default_rng(5)
    n = rng.poisson(4, 5000).astype(np.int32)
    sq = (n * rng.integers(1, 5, 5000)).astype(np.int32)
    rows = np.flatnonzero(rng.random(5000) < 0.1)
    sq_rows = sq[rows] + 2 * rng.integers(0, 3, len(rows)).astype(np.int32)
    fixed = sq.copy()
    fixed[rows] = sq_rows
    whole = M.continuity(n, fixed)
    monkeypatch.setattr(M, "CHUNK", 700)
    monkeypatch.setattr(M, "CHUNK_ABOVE", 1000)
    parts = M.continuity(n, sq, rows=rows, sq_rows=sq_rows)
    assert np.array_equal(whole[0], parts[0]) and np.array_equal(whole[1], parts[1]) and whole[2] == parts[2]


def test_large_populations_in_chunks_give_the_same_run(monkeypatch):
    """Above their thresholds the contact window's updates go block by block and the yearly rates, levels
    and health references chunk by chunk: a run with small blocks and chunks (a multi-place economy,
    through a year end with deaths, moves and growth) equals one without, to the last bit."""
    import abm.continuity as CW
    import abm.patients as PAT
    eco = "configs/economies/black_country.yaml"
    runs = []
    for small in (False, True):
        if small:
            monkeypatch.setattr(CW, "BLOCKED_FROM", 0)
            monkeypatch.setattr(CW, "BLOCK", 999)
            monkeypatch.setattr(PAT, "CHUNK", 777)
        m = ContractingModel("icp_full", economy=eco, rng=8, population_scale=0.006)
        assert m.pop.n > 4 * 999
        m.run(14)
        runs.append(m)
    a, b = runs
    assert a.metrics == b.metrics
    assert np.array_equal(a.pop.window, b.pop.window) and np.array_equal(a.pop.health, b.pop.health)
    assert np.array_equal(a.care.coc_patient, b.care.coc_patient)
    for s in a.care.needs:
        assert all(np.array_equal(x, y) for x, y in zip(a.care.needs[s], b.care.needs[s]))
