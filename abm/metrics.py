"""Every INTERFACE metric as a pure function of model state (metrics read state; they never change it,
except the per-person continuity cache that the next month's emergency risk uses).
"""
from __future__ import annotations

import numpy as np

from .behaviour import practice_counts

METRIC_NAMES = (
    # integration
    "integrated_handoff_share", "population_payment_share", "prevention_spend_share", "gp_practices_integrated",
    # fragmentation
    "commissioner_contracts", "contracts_total", "orgs_per_patient", "continuity_of_care", "handoffs_per_1000",
    "transaction_cost_share",
    # risk
    "provider_failures", "loss_gini", "lead_reserves",
    # outcomes
    "emergency_admissions_per_1000", "cost_per_capita", "vat_leakage", "health_index",
    # accounting
    "money_balance_error",
)
EXTRA_METRICS = ("gp_outside", "gp_partial", "gp_full", "gp_returned", "population", "commissioner_reserves",
                 "alliance_trust")
ALL_METRICS = METRIC_NAMES + EXTRA_METRICS


# ------------------------------------------------------------------ published definitions
def bice_boxerman(counts: np.ndarray, min_contacts: int = 4, axis: int = 1) -> np.ndarray:
    """COC = (sum n_i^2 - N) / (N (N - 1)) over providers i (along `axis`); NaN below min_contacts."""
    c = counts.astype(np.int64)
    n = c.sum(axis=axis)
    sq = (c * c).sum(axis=axis)
    return _coc(n, sq, min_contacts)


def _coc(n: np.ndarray, sq: np.ndarray, min_contacts: int = 4) -> np.ndarray:
    out = np.full(n.shape[0], np.nan)
    ok = n >= max(min_contacts, 2)
    nn = n[ok].astype(np.float64)
    out[ok] = (sq[ok] - nn) / (nn * (nn - 1))
    return out


def continuity(n: np.ndarray, sq: np.ndarray, min_contacts: int = 4) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-person Bice-Boxerman index (float32, 0 where undefined), where it is defined (N >= min_contacts),
    and its mean over those people, in a few dense passes with no boolean gathers or masked ufuncs."""
    ok = n >= max(min_contacts, 2)
    num = np.subtract(sq, n, dtype=np.float32)
    num *= ok
    den = n.astype(np.float32)
    den *= den - np.float32(1.0)
    den += ~ok                                   # 0 / 1 where undefined
    num /= den
    count = int(np.count_nonzero(ok))
    mean = float(num.sum(dtype=np.float64)) / count if count else 0.0
    return num, ok, mean


def upc(counts: np.ndarray) -> np.ndarray:
    """Usual Provider of Care: max n_i / N (NaN with no contacts)."""
    n = counts.sum(axis=1)
    out = np.full(counts.shape[0], np.nan)
    ok = n > 0
    out[ok] = counts.max(axis=1)[ok] / n[ok]
    return out


def secon_handoffs(sequence: list) -> int:
    """Organisational hand-offs in a sequence of contacts: consecutive contacts with different organisations."""
    return sum(1 for a, b in zip(sequence, sequence[1:]) if a != b)


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 when all are zero)."""
    x = np.sort(np.asarray(x, dtype=float))
    n = len(x)
    if n == 0 or x.sum() <= 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


# ------------------------------------------------------------------ model metrics
def contact_summary(m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per person over the 12-month window: contacts N, sum of squared counts per organisation, and the
    number of distinct organisations, with salaried practices counted as the holder (one organisation).
    N and the sums are kept up to date by the contact window (abm.continuity); only the people of
    salaried practices are corrected here, merging their practice column into the holder's."""
    cw = m.pop.contacts
    n, sq, orgs = cw.total, cw.sumsq, cw.orgs
    ent = m.entity
    if m.holder is not None and not (ent == np.arange(len(ent))).all():
        key = (m.month // 12, m.structure_version, cw.n)
        if getattr(m, "_merged_rows", (None, None))[0] != key:   # registrations change yearly or on events
            merged = np.array([ent[pr.idx] != pr.idx for pr in m.practices])
            m._merged_rows = (key, np.flatnonzero(merged[m.pop.practice]))
        rows = m._merged_rows[1]
        if len(rows):
            w = cw.window
            h = w[m.slot_of[m.holder.idx]].take(rows).astype(np.int32)
            p = w[0].take(rows).astype(np.int32)
            sq = sq.copy()
            orgs = orgs.copy()
            sq[rows] += 2 * h * p
            orgs[rows] -= (h > 0) & (p > 0)
    return n, sq, orgs


def _rolling(m, name: str) -> float:
    """Sum over the last 12 months, annualised while fewer than 12 have passed."""
    months = min(m.month, 12)
    if months == 0:
        return 0.0
    return float(m.window12[name].sum()) * 12.0 / months


def commissioner_contracts(m) -> int:
    comms = {m.ccg.org_id} | ({m.la.org_id} if m.la else set())
    ids = set()
    for c in m.active_contracts():
        if c.payer in comms and c.kind != "allocation":
            ids.add("alliance" if c.kind == "alliance" else c.cid)
    return len(ids)


def contracts_total(m) -> int:
    ids = set()
    for c in m.active_contracts():
        if c.kind != "allocation":
            ids.add("alliance" if c.kind == "alliance" else c.cid)
    return len(ids)


def compute(m) -> dict:
    pop = m.pop
    n = pop.n
    tot, sq, orgs = contact_summary(m)
    m.coc_patient, m.coc_valid, coc_mean = continuity(tot, sq)
    with_contact = int(np.count_nonzero(tot))
    orgs_pp = float(orgs.sum(dtype=np.int64)) / with_contact if with_contact else 0.0
    handoffs = _rolling(m, "handoffs")
    integrated = _rolling(m, "integrated")
    cost12 = _rolling(m, "cost")
    flow = m.ledger.month_flow
    contract_flow = sum(v for k, v in flow.items() if k not in ("allocation", "support", "settlement"))
    pc = practice_counts(m)
    provider_side = [o for o in m.orgs if o.kind not in ("funder", "commissioner", "local_authority", "gp_practice")]
    deficits = np.array([max(-o.last_surplus, 0.0) for o in provider_side])
    alliance = [c.trust for c in m.active_contracts() if c.kind == "alliance"]
    out = {
        "integrated_handoff_share": integrated / handoffs if handoffs > 0 else 0.0,
        "population_payment_share": (flow["capitation"] + flow["wpap"]) / contract_flow if contract_flow > 0 else 0.0,
        "prevention_spend_share": _rolling(m, "prevention") / cost12 if cost12 > 0 else 0.0,
        "gp_practices_integrated": pc["partial"] + pc["full"],
        "commissioner_contracts": commissioner_contracts(m),
        "contracts_total": contracts_total(m),
        "orgs_per_patient": orgs_pp,
        "continuity_of_care": coc_mean,
        "handoffs_per_1000": handoffs / n * 1000.0,
        "transaction_cost_share": _rolling(m, "transaction") / cost12 if cost12 > 0 else 0.0,
        "provider_failures": m.failures,
        "loss_gini": gini(deficits),
        "lead_reserves": m.holder.reserves / m.scale if m.holder else 0.0,
        "emergency_admissions_per_1000": _rolling(m, "admissions") / n * 1000.0,
        "cost_per_capita": cost12 / n,
        "vat_leakage": m.cum["vat"] / m.scale,
        "health_index": float(pop.health.mean()),
        "money_balance_error": m.ledger.balance_error(),
        "gp_outside": pc["outside"], "gp_partial": pc["partial"], "gp_full": pc["full"],
        "gp_returned": pc["returned"],
        "population": n / m.scale,
        "commissioner_reserves": m.ccg.reserves / m.scale,
        "alliance_trust": float(np.mean(alliance)) if alliance else 0.0,
    }
    return out


def reporters() -> dict:
    """DataCollector model reporters: one per metric, reading the values computed this step."""
    return {name: (lambda mdl, k=name: mdl.metrics[k]) for name in ALL_METRICS}
