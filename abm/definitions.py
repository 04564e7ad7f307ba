"""Names shared by the experiment runner, the summary statistics and the report.

A leaf module (standard library only), so that `abm.experiment`, `abm.summary` and `abm.report`
can all use these without importing one another.
"""
from __future__ import annotations

#: The parties whose net results the risk shares split (finance.parquet `party`).
PARTIES = ("funder", "commissioner", "lead", "providers", "gp_practices")

#: Metrics whose final-year value is the last step (they accumulate); all others use the mean
#: of the last FINAL_YEAR_STEPS steps, which smooths month-to-month noise in flows and windows.
CUMULATIVE_METRICS = frozenset({"provider_failures", "vat_leakage", "money_balance_error"})
FINAL_YEAR_STEPS = 12

#: The arrangement paired differences are taken from when an experiment does not say
#: (its `baseline:` key).
DEFAULT_BASELINE = "fragmented"

#: The range each recorded metric can take, from its definition (abm.metrics): (lowest,
#: highest), None where there is no bound. Shares, indices on 0-1 (continuity of care, the Gini
#: of deficits, the health index) and trust lie in 0-1; counts, rates, costs and ratios are
#: never negative; reserves and the accounting check are signed or unbounded. Intervals shown
#: for a metric are clipped to its range (`clip_interval`): a t-interval reaching below zero
#: failures, or a Gini above 1, says nothing the data could show.
METRIC_RANGES: dict[str, tuple[float | None, float | None]] = {
    "integrated_handoff_share": (0.0, 1.0), "population_payment_share": (0.0, 1.0),
    "prevention_spend_share": (0.0, 1.0), "gp_practices_integrated": (0.0, None),
    "commissioner_contracts": (0.0, None), "contracts_total": (0.0, None),
    "orgs_per_patient": (0.0, None), "continuity_of_care": (0.0, 1.0),
    "handoffs_per_1000": (0.0, None), "transaction_cost_share": (0.0, 1.0),
    "provider_failures": (0.0, None), "loss_gini": (0.0, 1.0), "lead_reserves": (None, None),
    "emergency_admissions_per_1000": (0.0, None), "cost_per_capita": (0.0, None),
    "vat_leakage": (0.0, None), "health_index": (0.0, 1.0), "money_balance_error": (0.0, None),
    "gp_outside": (0.0, None), "gp_partial": (0.0, None), "gp_full": (0.0, None),
    "gp_returned": (0.0, None), "population": (0.0, None), "commissioner_reserves": (None, None),
    "alliance_trust": (0.0, 1.0),
}


def metric_range(metric: str) -> tuple[float | None, float | None]:
    """(lowest, highest) a metric can take; (None, None) for names without a declared range
    (risk shares, for one, can be negative or above 1)."""
    return METRIC_RANGES.get(metric, (None, None))


def clip_interval(metric: str, low: float, high: float) -> tuple[float, float]:
    """An interval's ends clipped to the metric's range (NaN ends stay NaN)."""
    lo_b, hi_b = metric_range(metric)
    def clip(x: float) -> float:
        if x != x:  # NaN
            return x
        if lo_b is not None and x < lo_b:
            x = lo_b
        if hi_b is not None and x > hi_b:
            x = hi_b
        return x
    return clip(low), clip(high)
