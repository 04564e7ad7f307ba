"""Results: every INTERFACE metric computed from model state (metrics read state; they never change it),
the rolling 12-month and cumulative quantities the parts record, events, and the yearly finance records.
Also the published definitions (Bice-Boxerman continuity, UPC, SECON hand-offs, Gini).
"""
from __future__ import annotations

import numpy as np

from collections import defaultdict

from .kinds import PAYMENT_KINDS

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


CHUNK = 1 << 15           # people per chunk of `continuity` above ...
CHUNK_ABOVE = 1 << 19     # ... this many people (below, whole arrays stay in cache anyway)


def _coc_into(n, sq, lim: int, num, ok, den, tmp, nok) -> None:
    """Bice-Boxerman numerators / denominators of one chunk, into `num` and `ok` (0 where undefined)."""
    np.greater_equal(n, lim, out=ok)
    np.subtract(sq, n, out=num, dtype=np.float32)
    num *= ok
    den[:] = n
    np.subtract(den, np.float32(1.0), out=tmp)
    den *= tmp
    np.logical_not(ok, out=nok)
    den += nok                                   # 0 / 1 where undefined
    num /= den


def continuity(n: np.ndarray, sq: np.ndarray, min_contacts: int = 4, rows: np.ndarray | None = None,
               sq_rows: np.ndarray | None = None, out: tuple | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-person Bice-Boxerman index (float32, 0 where undefined), where it is defined (N >= min_contacts),
    and its mean over those people, in a few dense passes with no boolean gathers or masked ufuncs; for
    more people than the caches hold, chunk by chunk (each person's value is the same). `sq_rows`, when
    given, replaces the sums of squares of people `rows`; `out` (float32, bool) receives the results."""
    N = len(n)
    lim = max(min_contacts, 2)
    num, ok = out if out is not None else (np.empty(N, np.float32), np.empty(N, bool))
    chunk = CHUNK if N > CHUNK_ABOVE else max(N, 1)
    scratch = (np.empty(chunk, np.float32), np.empty(chunk, np.float32), np.empty(chunk, bool))
    for s in range(0, N, chunk):
        e = min(s + chunk, N)
        _coc_into(n[s:e], sq[s:e], lim, num[s:e], ok[s:e], *(a[:e - s] for a in scratch))
    if rows is not None and len(rows):
        k = len(rows)
        fix_num, fix_ok = np.empty(k, np.float32), np.empty(k, bool)
        _coc_into(n[rows], sq_rows, lim, fix_num, fix_ok, np.empty(k, np.float32), np.empty(k, np.float32),
                  np.empty(k, bool))
        num[rows], ok[rows] = fix_num, fix_ok
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


# ------------------------------------------------------------------ the Results part
POPULATION_PAYMENTS = tuple(k for k, v in PAYMENT_KINDS.items() if v.population_based)
NON_CONTRACT_FLOWS = ("allocation", "support", "settlement", "loan")


class Results:
    """What the parts record as the month runs, and the metrics read from the state at month end.

    Owns: rolling 12-month windows (`record`, `record_add`), cumulative totals (`add`, `cum`), `events`,
    the count of `failures`, the yearly finance records and the latest metrics."""

    def __init__(self, model) -> None:
        self.model = model
        self.window12: dict[str, np.ndarray] = {}
        self.cum: defaultdict[str, float] = defaultdict(float)
        self.events: list[dict] = []
        self.failures = 0
        self.year_records: list[dict] = []
        self.latest: dict = {}

    # ------------------------------------------------------------------ recording
    def _window(self, name: str) -> np.ndarray:
        w = self.window12.get(name)
        if w is None:
            w = self.window12[name] = np.zeros(12)
        return w

    def record(self, name: str, t: int, value: float) -> None:
        """Store this month's value of a rolling 12-month quantity."""
        self._window(name)[t % 12] = value

    def record_add(self, name: str, t: int, value: float) -> None:
        self._window(name)[t % 12] += value

    def add(self, name: str, value: float) -> None:
        """Add to a cumulative total (VAT leaked, procurement, prevention, pass-through)."""
        self.cum[name] += value

    def total(self, name: str) -> float:
        return self.cum[name]

    def rolling(self, name: str) -> float:
        """Sum over the last 12 months, annualised while fewer than 12 have passed."""
        months = min(self.model.month, 12)
        if months == 0:
            return 0.0
        return float(self._window(name).sum()) * 12.0 / months

    def open_month(self, t: int) -> None:
        for name in ("transaction", "cost"):
            self._window(name)[t % 12] = 0.0

    def event(self, t: int, event: str, org: str, **extra) -> None:
        self.events.append({"month": t, "event": event, "org": org, **extra})

    def failure(self, t: int, org: str, reason: str) -> None:
        self.failures += 1
        self.event(t, f"failure ({reason})", org)

    def close_year(self, t: int, income: np.ndarray, cost: np.ndarray) -> None:
        """One finance record per organisation for the year just closed."""
        m = self.model
        year = t // 12 + 1
        for o in m.orgs:
            self.year_records.append({
                "year": year, "org_id": o.org_id, "org_kind": o.kind, "party": m.party(o),
                "income": float(income[o.idx]), "cost": float(cost[o.idx]),
                "surplus": float(income[o.idx] - cost[o.idx]), "reserves": o.reserves,
                "cash_support": float(m.finance.support_ytd[o.idx]), "loans": float(m.finance.loans[o.idx]),
                "legal_form": o.legal_form, "oversight": o.oversight})

    # ------------------------------------------------------------------ metrics
    def practice_counts(self) -> dict[str, int]:
        out = {"outside": 0, "partial": 0, "full": 0, "returned": 0}
        for pr in self.model.practices:
            if pr.failed:
                continue
            out[pr.mode] += 1
            out["returned"] += pr.returned
        return out

    def compute(self) -> dict:
        """Every metric from the current state (nothing here is read back by the model)."""
        m = self.model
        n = m.pop.size
        care = m.care
        handoffs = self.rolling("handoffs")
        integrated = self.rolling("integrated")
        cost12 = self.rolling("cost")
        flow = m.finance.ledger.month_flow
        contract_flow = sum(v for k, v in flow.items() if k not in NON_CONTRACT_FLOWS)
        pc = self.practice_counts()
        deficits = np.array([max(-o.last_surplus, 0.0) for o in m.orgs if o.side == "provider"])
        alliance = [c.trust for c in m.network.members()]
        commissioners = {o.org_id for o in m.orgs if o.side == "commissioner"}
        self.latest = {
            "integrated_handoff_share": integrated / handoffs if handoffs > 0 else 0.0,
            "population_payment_share": sum(flow[k] for k in POPULATION_PAYMENTS) / contract_flow if contract_flow > 0 else 0.0,
            "prevention_spend_share": self.rolling("prevention") / cost12 if cost12 > 0 else 0.0,
            "gp_practices_integrated": pc["partial"] + pc["full"],
            "commissioner_contracts": m.network.count_contracts(commissioners),
            "contracts_total": m.network.count_contracts(),
            "orgs_per_patient": care.orgs_per_patient,
            "continuity_of_care": care.coc_mean,
            "handoffs_per_1000": handoffs / n * 1000.0,
            "transaction_cost_share": self.rolling("transaction") / cost12 if cost12 > 0 else 0.0,
            "provider_failures": self.failures,
            "loss_gini": gini(deficits),
            "lead_reserves": m.holder.reserves / m.scale if m.holder else 0.0,
            "emergency_admissions_per_1000": self.rolling("admissions") / n * 1000.0,
            "cost_per_capita": cost12 / n,
            "vat_leakage": self.total("vat") / m.scale,
            "health_index": m.pop.mean_health(),
            "money_balance_error": m.finance.ledger.balance_error(),
            "gp_outside": pc["outside"], "gp_partial": pc["partial"], "gp_full": pc["full"],
            "gp_returned": pc["returned"],
            "population": n / m.scale,
            "commissioner_reserves": sum(o.reserves for o in m.orgs if o.kind == "commissioner") / m.scale,
            "alliance_trust": float(np.mean(alliance)) if alliance else 0.0,
        }
        return self.latest


def reporters() -> dict:
    """DataCollector model reporters: one per metric, reading the values computed this step."""
    return {name: (lambda mdl, k=name: mdl.metrics[k]) for name in ALL_METRICS}
