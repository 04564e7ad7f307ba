"""Who bears which risk: risk sources as paired perturbations, their incidence, and tail risk.

A *risk source* (experiment key `risk_sources:`) is one thing that can move a health economy's
costs: the level of activity, the mix of usage, efficiency savings not realised, unit costs, a
quality fall, population size and the age mix. For each source the runner adds paired runs: the
same seed (so the same people and the same demand draws) as a base replicate, with the source
perturbed up (the direction that raises cost) and, where the model has one, down.

Incidence of source s on party p, per replicate r (Δ = perturbed run − base run):

    share_p = −ΔR_p / ΔC

where R_p is the party's net result (income − cost) over the run and C the system cost. Money is
conserved (Σ_p R_p = −C), so the shares of one (arrangement, point, source, direction) sum to 1.
A source that changes no money (|ΔC| ≤ UNDEFINED_TOLERANCE · C) has undefined incidence: NaN with
a note, never a division by zero. The mean and its 95% t-interval over replicates come from
abm.stats (the differences are paired by construction).

Tail risk, as finance directors read it: per arrangement and party, the probability that the
holder (party `lead`), any other provider (`providers`) or any GP practice (`gp_practices`) fails
within the term, and the 5% expected shortfall of each party's result, across replicates and the
declared uncertainties (every sweep point), from the base runs only.

Standard library, numpy and pandas only (no model import): the runner, summary, report and CLI
all use this module.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from abm import stats
from abm.definitions import PARTIES

#: The fixed vocabulary in display order.
SOURCE_NAMES = ("activity", "usage_mix", "efficiency", "unit_cost", "quality", "population",
                "demography")

#: Year-start kinds: they act only at the start of years 2, 3, ... (months 13, 25, ...).
YEAR_START_KINDS = ("population_growth", "ageing")

#: Relative size of |ΔC| below which a source "changes nothing" (floating-point noise).
UNDEFINED_TOLERANCE = 1e-6

DIRECTIONS = ("up", "down")

#: Each source: the model shock that realises it, a default size (in the shock's unit), the
#: month it starts, the directions the model can represent, and the public source of the size.
SOURCES: dict[str, dict[str, Any]] = {
    "activity": {
        "kind": "demand_surge", "size": 0.03, "month": 2, "directions": DIRECTIONS,
        "label": "Activity change",
        "unit": "relative change in demand for every service",
        "basis": "about one year's growth in NHS hospital activity in the 2010s (finished admission "
                 "episodes grew about 2-4% a year: NHS Digital, Hospital Admitted Patient Care "
                 "Activity, yearly, https://digital.nhs.uk/data-and-information/publications/"
                 "statistical/hospital-admitted-patient-care-activity), as a level change "
                 "sustained to the end of the run [ref: nhsd-hospital-apc]",
    },
    "usage_mix": {
        "kind": "demand_surge", "size": 0.10, "month": 2, "directions": DIRECTIONS,
        "service": ["elective", "outpatient"],
        "label": "Variation in usage",
        "unit": "relative change in demand for the named services only",
        "basis": "assumption: planned care (elective and outpatient) shifts by 10% against the "
                 "other services, of the order of year-to-year swings in elective activity "
                 "(NHS England, Consultant-led Referral to Treatment Waiting Times statistics, "
                 "https://www.england.nhs.uk/statistics/statistical-work-areas/rtt-waiting-times/) [ref: nhse-rtt]",
    },
    "efficiency": {
        "kind": "efficiency_shortfall", "size": 0.02, "month": 2, "directions": DIRECTIONS,
        "label": "Efficiency savings not realised",
        "unit": "share of providers' delivery cost not saved",
        "basis": "the 2% a year efficiency factor of the 2017/18 and 2018/19 National Tariff "
                 "Payment System (NHS Improvement and NHS England, 2016): one year's required "
                 "saving not realised (down: realised twice over) [ref: nhsi-ntps-2017]",
    },
    "unit_cost": {
        "kind": "cost_inflation", "size": 0.02, "month": 2, "directions": DIRECTIONS,
        "label": "Unit cost above the uplift",
        "unit": "relative rise in every organisation's delivery cost above the funded uplift",
        "basis": "assumption: pay and prices 2 percentage points above the uplift funded in "
                 "allocations and prices, the order of recent NHS pay awards above the planning "
                 "assumption (NHS Pay Review Body reports, yearly, https://www.gov.uk/government/"
                 "organisations/nhs-pay-review-body) [ref: nhs-prb]",
    },
    "quality": {
        "kind": "quality_fall", "size": 0.10, "month": 2, "directions": ("up",),
        "label": "Quality change",
        "unit": "fall in providers' quality on the model's 0-1 scale (it then drifts back)",
        "basis": "assumption: a fall of 0.1 in every provider's quality; it moves money only "
                 "where quality carries money (outcome-linked payments on quality, quality "
                 "terminations)",
        "no_down": "the model's quality shock is a fall only",
    },
    "population": {
        "kind": "population_growth", "size": 0.005, "month": 13, "directions": DIRECTIONS,
        "label": "Population size",
        "unit": "extra yearly growth of the registered population, applied at year starts",
        "basis": "ONS 2018-based subnational population projections (Dudley about 0.3% a year); "
                 "the ONS high and low migration variants of the 2018-based national projections "
                 "differ from the principal by a few tenths of a percentage point a year (ONS, "
                 "National population projections: 2018-based, 2019, https://www.ons.gov.uk/"
                 "peoplepopulationandcommunity/populationandmigration/populationprojections) "
                 "[ref: ons-snpp-2018; ons-npp-2018]",
    },
    "demography": {
        "kind": "ageing", "size": 0.02, "month": 13, "directions": ("up",),
        "label": "Demographic change",
        "unit": "share of people moving up an age band at each year start, on top of ageing",
        "basis": "assumption: faster ageing than projected (the share aged 65 and over in England "
                 "rises by about 0.2-0.3 percentage points a year in the ONS 2018-based national "
                 "projections, ONS 2019) [ref: ons-npp-2018]",
        "no_down": "the model's ageing shock moves people up an age band only",
    },
}

#: The allocation the public sources state, used by the report's comparison sentences.
ALLOCATION_SOURCES = {
    "icp": ("Health Service Journal, analysis of the NHS England Integrated Care Provider "
            "contract (about 2019); NHS England, Draft Integrated Care Provider Contract: "
            "consultation (2018) [ref: hsj-icp-2019; nhse-icp-qa-2018]"),
    "tariff": ("Department of Health, A simple guide to Payment by Results (2012), "
               "https://www.gov.uk/government/publications/simple-guide-to-payment-by-results [ref: dh-pbr-2012]"),
}

#: Holder side and commissioner side (the terminal summary and the report's side table).
SIDES = {"holder side": ("lead", "providers"), "commissioner side": ("funder", "commissioner"),
         "GP practices": ("gp_practices",)}

INCIDENCE_COLUMNS = ["arrangement", "point", "source", "direction", "party", "share", "ci_low",
                     "ci_high", "n", "delta_cost", "note"]
RISK_RUN_IDS = ["arrangement", "point", "replicate", "seed", "source", "direction"]
TAIL_COLUMNS = ["arrangement", "party", "measure", "value", "ci_low", "ci_high", "n", "note"]
ES_ALPHA = 0.05
MIN_ES_BOOTSTRAP_N = 20  # below 1/alpha runs the 5% tail is the single worst run


# --------------------------------------------------------------------------- sources
def resolve(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """Experiment entries (names or {source, size, service, month, duration, directions}) as full specs,
    in the order given. Assumes entries were validated (abm.experiment)."""
    out = []
    for entry in entries or []:
        e = {"source": entry} if isinstance(entry, str) else dict(entry)
        d = SOURCES[e["source"]]
        spec = {"source": e["source"], "kind": d["kind"], "size": float(e.get("size", d["size"])),
                "month": int(e.get("month", d["month"])), "duration": e.get("duration"),
                "service": e.get("service", d.get("service")),
                "directions": [x for x in d["directions"] if x in e.get("directions", d["directions"])],
                "label": d["label"], "unit": d["unit"],
                "basis": d["basis"] if "size" not in e else "size set in the experiment file"}
        if isinstance(spec["service"], str):
            spec["service"] = [spec["service"]]
        out.append(spec)
    return out


def acts_within(spec: dict, months: int) -> tuple[bool, str]:
    """Whether the source can move anything within a horizon of `months`, and why not."""
    if spec["kind"] in YEAR_START_KINDS:
        first = max(13, 12 * math.ceil((spec["month"] - 1) / 12) + 1)
        if first > months:
            return False, (f"{spec['source']} acts at year starts (months 13, 25, ...): a horizon "
                           f"of {months} months has none from month {spec['month']}; use at "
                           "least 2 years")
    elif spec["month"] > months:
        return False, f"the source starts in month {spec['month']}, after the {months}-month horizon"
    return True, ""


def shock(spec: dict, direction: str) -> dict:
    """The model shock realising a source in one direction (down = the negative size)."""
    sign = 1.0 if direction == "up" else -1.0
    s = {"kind": spec["kind"], "month": spec["month"], "size": sign * spec["size"]}
    if spec.get("duration") is not None:
        s["duration"] = spec["duration"]
    if spec.get("service"):
        s["service"] = list(spec["service"])
    return s


def runnable(specs: list[dict], months: int) -> list[tuple[dict, str]]:
    """(spec, direction) pairs the runner runs: directions the model has, sources that act."""
    return [(s, d) for s in specs if acts_within(s, months)[0] for d in s["directions"]]


# --------------------------------------------------------------------------- incidence
def _undefined_note(spec: dict, direction: str, months: int) -> str | None:
    if direction not in SOURCES[spec["source"]]["directions"]:
        return f"undefined: no downward shock ({SOURCES[spec['source']].get('no_down', '')})"
    if direction not in spec["directions"]:
        return f"not run: the experiment lists only {', '.join(spec['directions'])} for this source"
    ok, why = acts_within(spec, months)
    return None if ok else f"undefined: {why}"


def incidence(base: pd.DataFrame, risk: pd.DataFrame, specs: list[dict], months: int,
              scale: float, groups: dict[str, tuple[str, ...]] | None = None) -> pd.DataFrame:
    """risk_incidence.csv: per (arrangement, point, source, direction, party) the mean share
    −ΔR_p/ΔC over replicates with its 95% t-interval, n (replicates with a defined share) and
    delta_cost (mean ΔC, £ at full scale). `groups` sums parties (e.g. SIDES) instead."""
    groups = groups or {p: (p,) for p in PARTIES}
    cols = {g: [f"result.{p}" for p in ps] for g, ps in groups.items()}
    rows: list[dict] = []
    ids = ["arrangement", "point", "replicate"]
    b = base.set_index(ids).sort_index() if len(base) else base
    r_all = risk.set_index(["source", "direction"] + ids).sort_index() if len(risk) else risk
    combos = list(dict.fromkeys(zip(base["arrangement"], base["point"]))) if len(base) else []
    stored = set(r_all.index.droplevel("replicate")) if len(risk) else set()
    for arr, point in combos:
        for spec in specs:
            for direction in DIRECTIONS:
                why = _undefined_note(spec, direction, months)
                key = (spec["source"], direction, arr, point)
                have = why is None and key in stored
                if not have:
                    note = why or "undefined: no paired runs stored"
                    rows += [_row(arr, point, spec, direction, g, stats.describe([]), math.nan,
                                  note) for g in groups]
                    continue
                pert = r_all.loc[key]
                base_at = b.loc[(arr, point)].reindex(pert.index)
                dc = (pert["system_cost"] - base_at["system_cost"]).to_numpy(float)
                c0 = base_at["system_cost"].abs().to_numpy(float)
                defined = np.isfinite(dc) & (np.abs(dc) > UNDEFINED_TOLERANCE * np.maximum(c0, 1.0))
                k, n_all = int(defined.sum()), len(dc)
                delta_cost = float(np.nanmean(dc)) / scale if n_all else math.nan
                if k == 0:
                    note = ("undefined: the source changed system cost by nothing (|ΔC| ≤ "
                            f"{UNDEFINED_TOLERANCE:g} of C) in every replicate"
                            + ("; quality carries no money here (no outcome payments on quality, "
                               "no quality termination)" if spec["kind"] == "quality_fall" else ""))
                else:
                    note = "" if k == n_all else (f"{n_all - k} of {n_all} replicates left out: "
                                                  "the source changed no money in them")
                    if k < 2:
                        note = "; ".join(x for x in (note, "no interval with 1 replicate") if x)
                for g, gcols in cols.items():
                    dr = (pert[gcols].sum(axis=1) - base_at[gcols].sum(axis=1)).to_numpy(float)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        share = np.where(defined, -dr / np.where(defined, dc, 1.0), np.nan)
                    d = stats.describe(np.round(share, 12) + 0.0)  # no 1e-18 noise or -0.0
                    rows.append(_row(arr, point, spec, direction, g, d, delta_cost, _beyond(note, d["mean"])))
    return pd.DataFrame(rows, columns=INCIDENCE_COLUMNS)


BEYOND = ("share beyond 0-1: this party's result moved by more than the system's cost, and other parties' "
          "the other way (as when the change alters a decision: a termination, a prevention budget)")


def _beyond(note: str, share: float) -> str:
    """A share outside 0-1 is not an error (the shares still sum to 1) but needs reading: say so."""
    if math.isfinite(share) and not (-0.005 <= share <= 1.005):
        return "; ".join(x for x in (note, BEYOND) if x)
    return note


def _row(arr, point, spec, direction, party, d, delta_cost, note) -> dict:
    return {"arrangement": arr, "point": int(point), "source": spec["source"],
            "direction": direction, "party": party, "share": d["mean"], "ci_low": d["ci_low"],
            "ci_high": d["ci_high"], "n": int(d["n"]), "delta_cost": delta_cost, "note": note}


# --------------------------------------------------------------------------- tail risk
def _failed(meta: dict, party: str, term: int) -> bool:
    fails = [f for f in meta.get("failures") or [] if int(f.get("month", 0)) < term]
    if party == "lead":
        holder = meta.get("holder")
        return holder is not None and any(f.get("org") == holder for f in fails)
    return any(f.get("party") == party and f.get("org") != meta.get("holder") for f in fails)


FAILING = {"lead": "the holder fails", "providers": "any other provider fails",
           "gp_practices": "any GP practice fails or closes"}


def tail_risk(metas: list[dict], months: int, scale: float, seed: int = 0) -> pd.DataFrame:
    """tail_risk.csv from the base runs (every replicate and sweep point):

    - `failure_probability`: share of runs in which the holder (party lead), another provider
      (providers) or a GP practice (gp_practices) fails within the term (the holder contract's
      term, else an alliance agreement's, else the horizon), with its exact 95% interval;
    - `mean_result`, `expected_shortfall_5`: each party's mean result and the mean of its worst
      5% of results, in £ a year at full scale (run total / years / population scale); the
      shortfall's interval is a bootstrap from 20 runs.
    """
    rows = []
    years = months / 12.0
    arrangements = list(dict.fromkeys(m["arrangement"] for m in metas))
    for k, arr in enumerate(arrangements):
        ms = [m for m in metas if m["arrangement"] == arr]
        n = len(ms)
        has_holder = any(m.get("holder") for m in ms)
        term = min(months, int(ms[0].get("term_months") or months)) if ms else months
        for party in PARTIES:
            if party == "lead" and not has_holder:
                rows.append({"arrangement": arr, "party": party, "measure": "failure_probability",
                             "value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": n,
                             "note": "no holder: nobody holds a population contract"})
            elif party in FAILING:  # the funder and the commissioner cannot fail in the model
                hits = sum(_failed(m, party, term) for m in ms)
                p = stats.proportion(hits, n)
                note = (f"{FAILING[party]} within {term} months ({hits} of {n} runs); exact 95% "
                        "interval" + ("" if n >= 2 else "; no interval with 1 run"))
                rows.append({"arrangement": arr, "party": party, "measure": "failure_probability",
                             "value": p["mean"], "ci_low": p["ci_low"], "ci_high": p["ci_high"],
                             "n": n, "note": note})
            x = np.array([m["party_results"][party] for m in ms], float) / scale / years
            d = stats.describe(x)
            rows.append({"arrangement": arr, "party": party, "measure": "mean_result",
                         "value": d["mean"], "ci_low": d["ci_low"], "ci_high": d["ci_high"],
                         "n": d["n"], "note": "£ a year at full scale; 95% t-interval"})
            es = stats.expected_shortfall(x, ES_ALPHA) if n else math.nan
            lo = hi = math.nan
            if n >= MIN_ES_BOOTSTRAP_N and np.ptp(x) > 0:
                lo, hi, _ = stats.expected_shortfall_interval(x, seed=[seed, k, PARTIES.index(party)],
                                                              alpha=ES_ALPHA)
            note = ("£ a year at full scale: mean of the worst 5% of runs"
                    + (f"; with fewer than {MIN_ES_BOOTSTRAP_N} runs this is the worst run, "
                       "no interval" if n < MIN_ES_BOOTSTRAP_N else "; bootstrap 95% interval"))
            rows.append({"arrangement": arr, "party": party, "measure": "expected_shortfall_5",
                         "value": es, "ci_low": lo, "ci_high": hi, "n": n, "note": note})
    return pd.DataFrame(rows, columns=TAIL_COLUMNS)


# --------------------------------------------------------------------------- stated allocation
def stated_allocation(contract_kind: str | None, holder: bool, alliance: bool) -> dict | None:
    """What the public sources say each side bears, for the report's comparison sentence:
    {source: side} with the citation, or None where the sources state nothing."""
    if holder and contract_kind == "icp":
        return {"sides": {"activity": "holder side", "usage_mix": "holder side",
                          "efficiency": "holder side", "quality": "holder side",
                          "population": "commissioner side", "demography": "commissioner side"},
                "text": "under an ICP contract the ICP bears activity change, variation in "
                        "usage, efficiency savings not realised and quality change, and the "
                        "commissioner bears population-size and demographic risk through yearly "
                        "allocations", "cite": ALLOCATION_SOURCES["icp"]}
    if not holder and not alliance:
        return {"sides": {"activity": "commissioner side"},
                "text": "under fragmented contracts the commissioner bears activity risk on "
                        "tariff (payment by results) contracts, paying for each unit of activity",
                "cite": ALLOCATION_SOURCES["tariff"]}
    return None


__all__ = ["SOURCE_NAMES", "SOURCES", "SIDES", "INCIDENCE_COLUMNS", "TAIL_COLUMNS", "resolve",
           "acts_within", "shock", "runnable", "incidence", "tail_risk", "stated_allocation",
           "UNDEFINED_TOLERANCE"]
