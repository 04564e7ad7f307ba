"""Calibration of the default economy under `fragmented` to the reference figures (DOMAIN.md §3, §5).

`calibrate()` runs the status quo and returns target vs model; experiments/calibrate.py prints it and
tests/test_calibration.py holds the model inside the stated tolerances.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .model import ContractingModel
from .patients import dense

# Hospital length of stay by age band (days), for the bed-day share of people with long-term conditions.
LOS_BY_BAND = np.array([1.5, 1.5, 2.5, 4.0, 5.5, 7.5, 9.5])
SOURCE_LOS = "HES Admitted Patient Care 2019/20, mean length of stay by age (rounded)"

TARGETS = [
    # metric, low, high, source
    ("emergency_admissions_per_1000", 90.0, 110.0, "DOMAIN.md §3/§5: ~90-105 per 1,000 a year (NAO 2018; Health Foundation)"),
    ("cost_per_capita", 1000.0, 1500.0, "DOMAIN.md §3: Dudley ICP stage £360m of services / 318,492 people = £1,130, plus adult social care"),
    ("gp_contacts_per_person", 4.6, 5.8, "DOMAIN.md §5: ~5.2 GP consultations per person a year"),
    ("outpatient_per_person", 1.4, 2.0, "DOMAIN.md §5: ~1.7 outpatient attendances per person a year"),
    ("ltc_share_of_population", 0.24, 0.36, "DOMAIN.md §3: about 29% of people have a long-term condition (DH)"),
    ("ltc_share_of_gp_contacts", 0.40, 0.60, "DOMAIN.md §3: people with LTCs use about 50% of GP appointments (DH)"),
    ("ltc_share_of_bed_days", 0.60, 0.80, "DOMAIN.md §3: people with LTCs use about 70% of bed days (DH)"),
    ("top20_share_of_admissions", 0.50, 0.75, "DOMAIN.md §5: the top 20% by risk account for ~62% of emergency admissions (HSJ)"),
]


def calibrate(months: int = 12, scale: float = 0.25, seed: int = 1) -> pd.DataFrame:
    """Run the status quo and compare with the reference figures."""
    m = ContractingModel("fragmented", rng=seed, population_scale=scale)
    pop = m.pop
    risk = pop.risk_score()
    top20 = risk >= np.quantile(risk, 0.8)
    ltc = pop.ltc > 0
    gp = gp_ltc = adm = adm_top = bed = bed_ltc = op = 0.0
    for _ in range(months):
        t = m.month
        counts = m.care.demand(t)
        n = pop.n
        g = (dense(n, *counts["gp_f2f"]) + dense(n, *counts["gp_digital"])).astype(float)
        e = dense(n, *counts["emergency"]).astype(float)
        gp += g.sum(); gp_ltc += g[ltc].sum()
        adm += e.sum(); adm_top += e[top20].sum()
        days = e * LOS_BY_BAND[pop.band]
        bed += days.sum(); bed_ltc += days[ltc].sum()
        op += counts["outpatient"][1].sum()
        m.step()
    years = months / 12.0
    model = {
        "emergency_admissions_per_1000": m.metrics["emergency_admissions_per_1000"],
        "cost_per_capita": m.metrics["cost_per_capita"],
        "gp_contacts_per_person": gp / pop.n / years,
        "outpatient_per_person": op / pop.n / years,
        "ltc_share_of_population": float(ltc.mean()),
        "ltc_share_of_gp_contacts": gp_ltc / gp,
        "ltc_share_of_bed_days": bed_ltc / bed,
        "top20_share_of_admissions": adm_top / adm,
    }
    rows = [{"metric": k, "model": model[k], "low": lo, "high": hi, "ok": lo <= model[k] <= hi, "source": src}
            for k, lo, hi, src in TARGETS]
    return pd.DataFrame(rows)
