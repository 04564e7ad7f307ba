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
