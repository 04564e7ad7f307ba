"""A small synthetic results directory in exactly the format `abm run` writes.

A test helper (it lives under tests/, not in the package): the report tests build reports
from it in seconds without the model, and it is handy for trying report changes by hand
(`python -c "import sys; sys.path.insert(0, 'tests'); import synthetic; ..."`). Numbers are
made up; only their shape matters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

METRICS = [
    "integrated_handoff_share", "population_payment_share", "prevention_spend_share",
    "gp_practices_integrated", "commissioner_contracts", "contracts_total", "orgs_per_patient",
    "continuity_of_care", "handoffs_per_1000", "transaction_cost_share", "provider_failures",
    "loss_gini", "lead_reserves", "emergency_admissions_per_1000", "cost_per_capita",
    "vat_leakage", "health_index", "money_balance_error", "gp_outside", "gp_partial", "gp_full",
    "gp_returned",
]
from abm import catalogue, stats
from abm.definitions import PARTIES
from abm.params import ARRANGEMENTS
N_PRACTICES = 6


def synthetic_network(arrangement: str) -> nx.MultiDiGraph:
    """A tiny contract network with the node and edge attributes of docs/interface.md."""
    g = nx.MultiDiGraph()

    def org(i, kind, role, label, budget, nhs=True):
        g.add_node(i, kind=kind, role=role, nhs_body=nhs, label=label, budget=float(budget))

    org("nhse", "funder", "funder", "NHS England", 2.0e9)
    org("icb", "commissioner", "commissioner", "Integrated care board", 1.5e9)
    org("la", "local_authority", "commissioner", "County council", 3.0e8, nhs=False)
    lead_role = "lead" if arrangement != "fragmented" else "provider"
    org("acute", "acute", lead_role if arrangement in ("prime_provider", "icp_full", "icp_partial")
        else "provider", "General hospital", 6.0e8)
    org("comm", "community", "member" if arrangement != "fragmented" else "provider",
        "Community trust", 1.5e8)
    org("mh", "mental_health", "provider", "Mental health trust", 1.2e8)
    org("vol", "voluntary", "subcontractor", "Carers' charity", 2.0e6, nhs=False)
    if arrangement == "prime_contractor":
        org("pc", "prime_contractor", "lead", "Prime contractor Ltd", 4.0e8, nhs=False)
    for k in range(N_PRACTICES):
        org(f"gp{k}", "gp_practice", "practice", f"Practice {k + 1}", 1.5e6 + 1e5 * k, nhs=False)

    def con(u, v, kind, payment, value, start=0, end=120, status="active"):
        g.add_edge(u, v, kind=kind, payment=payment, value=float(value), start=start, end=end,
                   status=status)

    con("nhse", "icb", "allocation", "allocation", 1.5e9)
    con("icb", "la", "allocation", "allocation", 5.0e7)
    if arrangement == "fragmented":
        con("icb", "acute", "standard", "tariff", 5.5e8)
        con("icb", "comm", "standard", "block", 1.4e8)
        con("icb", "mh", "standard", "block", 1.1e8)
        con("la", "vol", "standard", "fee", 2.0e6)
    elif arrangement == "prime_contractor":
        con("icb", "pc", "prime", "capitation", 7.0e8)
        con("pc", "acute", "subcontract", "tariff", 4.5e8)
        con("pc", "comm", "subcontract", "block", 1.3e8)
        con("pc", "vol", "subcontract", "fee", 2.0e6)
        con("icb", "mh", "standard", "block", 1.1e8)
    else:
        kind = "alliance" if arrangement == "alliance" else "icp"
        pay = "wpap" if kind == "icp" else "capitation"
        con("icb", "acute", kind, pay, 6.5e8)
        con("acute", "comm", "subcontract", "block", 1.3e8)
        con("acute", "mh", "subcontract", "block", 1.0e8)
        con("acute", "vol", "subcontract", "fee", 2.0e6)
        con("comm", "mh", "integration_agreement", "none", 0.0)  # same-level edge
    for k in range(N_PRACTICES):
        con("icb", f"gp{k}", "gms_pms", "capitation", 1.4e6)
        if arrangement.startswith("icp") and k < (N_PRACTICES if arrangement == "icp_full" else 3):
            con("acute", f"gp{k}", "integration_agreement", "capitation", 2.0e5)
    return g


def write_synthetic_results(out: Path | str, arrangements=("fragmented", "alliance", "icp_full"),
                            replicates: int = 3, steps: int = 24, seed: int = 7,
                            sensitivity: bool = False, name: str = "synthetic-test",
                            risk_shares: bool = True, gp_metrics: bool = True,
                            baseline: str | None = "fragmented",
                            labels: dict[str, str] | None = None,
                            risk_sources: bool = True) -> Path:
    """Write results.parquet, finance.parquet, summary.csv, manifest.json, networks/*.graphml
    into `out`, shaped as abm.experiment writes them. With `sensitivity`, the experiment also
    sweeps two uncertain parameters by Sobol sampling: 8 sweep points, points.csv and a
    sensitivity.csv of Sobol indices (arrangement, metric, parameter, S1, S1_conf, ST, ST_conf).
    `baseline` is the arrangement paired differences are taken from and `labels` gives labels
    (as a run records them for user-written arrangement files) for keys outside the six.
    With `risk_sources`, also runs.csv, risk_runs.csv, risk_incidence.csv and tail_risk.csv as
    paired runs of three sources would give (made-up money, conserved: Σ results = −C)."""
    n_points = 8 if sensitivity else 1
    sweep = np.random.default_rng(seed + 1).random((n_points, 2))
    out = Path(out)
    (out / "networks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    seeds = [seed * 1000 + r for r in range(replicates)]
    metrics = [m for m in METRICS if gp_metrics or not m.startswith("gp_")
               or m == "gp_practices_integrated"]
    rows = []
    for ai, arr in enumerate(arrangements):
      for point in range(n_points):
        # the swept parameters nudge integration (first) and cost (second)
        effect = ai / max(len(arrangements) - 1, 1) * (1 + 0.4 * (sweep[point, 0] - 0.5))
        for r, s in enumerate(seeds):
            noise = np.random.default_rng(s)                 # common random numbers
            for mi, metric in enumerate(metrics):
                walk = np.cumsum(noise.normal(0, 0.01, steps))
                t = np.arange(steps) / steps
                base = {
                    "integrated_handoff_share": 0.2 + 0.5 * effect * t,
                    "population_payment_share": 0.1 + 0.6 * effect,
                    "prevention_spend_share": 0.02 + 0.02 * effect * t,
                    "orgs_per_patient": 2.6 - 0.6 * effect * t,
                    "continuity_of_care": 0.4 + 0.2 * effect * t,
                    "transaction_cost_share": 0.05 - 0.01 * effect,
                    "loss_gini": 0.5 - 0.1 * effect + 0 * t,
                    "health_index": 0.7 + 0.02 * effect * t,
                    "handoffs_per_1000": 300 - 60 * effect * t,
                    "emergency_admissions_per_1000": 100 - 8 * effect * t,
                    "cost_per_capita": 2400 - 50 * effect * t + 60 * (sweep[point, 1] - 0.5),
                    "lead_reserves": 0 * t + (5e6 * effect),
                    "vat_leakage": 1e5 * t * (1 + effect),
                    "money_balance_error": 0 * t,
                    "commissioner_contracts": 0 * t + round(12 - 8 * effect),
                    "contracts_total": 0 * t + round(20 - 5 * effect),
                    "provider_failures": np.floor(t * 2 * (1 - effect) + noise.random()),
                }.get(metric)
                if metric.startswith("gp_"):
                    full = np.round(N_PRACTICES * effect * t)
                    vals = {"gp_full": full, "gp_partial": np.round(effect * t * 2),
                            "gp_returned": np.floor(t * effect * 1.5),
                            "gp_practices_integrated": full + np.round(effect * t * 2)}
                    vals["gp_outside"] = np.maximum(
                        N_PRACTICES - vals["gp_full"] - vals["gp_partial"], 0)
                    v = vals[metric]
                elif metric in ("money_balance_error", "commissioner_contracts",
                                "contracts_total", "provider_failures", "lead_reserves"):
                    v = base
                else:
                    v = base * (1 + walk)
                for step in range(steps):
                    rows.append((name, arr, point, r, s, step, metric, float(v[step])))
    res = pd.DataFrame(rows, columns=["experiment", "arrangement", "point", "replicate", "seed",
                                      "step", "metric", "value"])
    res.to_parquet(out / "results.parquet", index=False)

    # finance: per (arrangement, replicate, year, organisation)
    frows = []
    years = max(1, steps // 12)
    for arr in arrangements:
        g = synthetic_network(arr)
        for r in range(replicates):
            for y in range(1, years + 1):
                reserves = {}
                for n, d in g.nodes(data=True):
                    party = {"funder": "funder", "commissioner": "commissioner",
                             "lead": "lead", "practice": "gp_practices"}.get(d["role"],
                                                                              "providers")
                    income = d["budget"]
                    cost = income * (1 + rng.normal(0, 0.03))
                    reserves[n] = reserves.get(n, 0.05 * income) + income - cost
                    frows.append((arr, 0, r, y, n, d["kind"], party, income, cost,
                                  income - cost, reserves[n]))
    pd.DataFrame(frows, columns=["arrangement", "point", "replicate", "year", "org_id",
                                 "org_kind", "party", "income", "cost", "surplus", "reserves"]
                 ).to_parquet(out / "finance.parquet", index=False)

    # summary.csv: final-step value over replicates, paired difference from the baseline
    last = res[res["step"] == res["step"].max()]
    srows = []
    for (arr, point, metric), grp in last.groupby(["arrangement", "point", "metric"]):
        v = grp.sort_values("replicate")["value"].to_numpy()
        b = last[(last["arrangement"] == baseline) & (last["metric"] == metric)
                 & (last["point"] == point)].sort_values("replicate")["value"].to_numpy()
        base = arr == baseline or len(b) != len(v)
        d = stats.paired_difference(v, v if base else b)
        d.pop("n")
        if base:
            d = dict.fromkeys(d, np.nan)
        srows.append(dict(arrangement=arr, point=point, metric=metric, **stats.describe(v), **d,
                          note=""))
    if risk_shares:
        for ai, arr in enumerate(arrangements):
            effect = ai / max(len(arrangements) - 1, 1)
            shares = {"funder": 0.1, "commissioner": 0.6 - 0.4 * effect, "lead": 0.3 * effect,
                      "providers": 0.25 + 0.05 * effect, "gp_practices": 0.05 + 0.05 * effect}
            total = sum(shares.values())
            for p in PARTIES:
                m = shares[p] / total
                srows.append(dict(arrangement=arr, point=0, metric=f"risk_share.{p}", mean=m,
                                  sd=0.02, ci_low=m - 0.03, ci_high=m + 0.03, n=replicates,
                                  diff_mean=np.nan, diff_ci_low=np.nan, diff_ci_high=np.nan,
                                  note="share of variation across the declared uncertainties, "
                                       "pooled over replicates; bootstrap 95% interval; Var(C) is "
                                       "100% sampled baseline"))
    pd.DataFrame(srows).to_csv(out / "summary.csv", index=False)

    config = {"name": name, "description": "Synthetic results for testing the report",
              "economy": "default", "arrangements": list(arrangements),
              "replications": replicates, "seed": seed, "months": steps,
              "population_scale": 0.01, "overrides": {"prevention.budget_share": 0.03},
              "baseline": baseline,
              "shocks": [], "uncertainties": None}
    params = ["prevention.budget_share", "gp.integration_propensity"]
    if sensitivity:
        config["uncertainties"] = {"method": "sobol", "samples": 2, "seed": None, "parameters": {
            params[0]: {"low": 0.01, "high": 0.05, "values": None, "levels": None,
                        "integer": False},
            params[1]: {"low": 0.1, "high": 0.9, "values": None, "levels": None,
                        "integer": False}}}
    specs = []
    if risk_sources:
        config["risk_sources"] = ["activity", "population", "quality"]
        specs = _write_risk_files(out, arrangements, seeds, steps, config["population_scale"],
                                  config["risk_sources"])
    text = json.dumps(config, sort_keys=True)
    manifest = {"experiment": name, "config": config,
                "config_sha256": hashlib.sha256(text.encode()).hexdigest(),
                "source": "<synthetic>", "source_sha256": None,
                "versions": {"abm": "0.1.0", "mesa": "3.5.1", "python": "3.12.1"},
                "seeds": [{"point": p, "replicate": r, "seed": sd} for p in range(n_points)
                          for r, sd in enumerate(seeds)],
                "engine": "local", "workers": 1, "scheduler": None, "points": n_points,
                "tasks": n_points * replicates * len(arrangements), "resumed_tasks": 0,
                "started": "2026-11-23T10:00:00+00:00", "finished": "2026-11-23T10:00:02+00:00",
                "wall_seconds": 1.5, "task_cpu_seconds": 3.0,
                "final_year": "last step (synthetic)", "baseline": baseline,
                "arrangements": [{"key": a, "label": (labels or {}).get(a) or catalogue.label(a),
                                  "file": f"{a}.yaml", "shipped": a in ARRANGEMENTS,
                                  "sha256": None} for a in arrangements],
                "arrangement_definitions": {},
                **({"risk_sources": specs, "risk_replications": len(seeds)} if specs else {})}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for arr in arrangements:
        nx.write_graphml(synthetic_network(arr), out / "networks" / f"{arr}.graphml")

    if sensitivity:
        lo = np.array([0.01, 0.1])
        hi = np.array([0.05, 0.9])
        pts = lo + sweep * (hi - lo)
        pd.DataFrame({"point": range(n_points), params[0]: pts[:, 0], params[1]: pts[:, 1]}
                     ).to_csv(out / "points.csv", index=False)
        srows = []
        for arr in arrangements:
            for metric in ("cost_per_capita", "integrated_handoff_share", "health_index"):
                for i, p in enumerate(params):
                    srows.append(dict(arrangement=arr, metric=metric, parameter=p,
                                      S1=0.2 + 0.3 * i, S1_conf=0.05, ST=0.3 + 0.35 * i,
                                      ST_conf=0.06))
        pd.DataFrame(srows).to_csv(out / "sensitivity.csv", index=False)
    return out


def _write_risk_files(out: Path, arrangements, seeds, steps: int, scale: float,
                      sources: list[str]) -> list[dict]:
    """runs.csv and risk_runs.csv with conserved money, and the incidence and tail risk that
    abm.risk computes from them (and from per-run failure records)."""
    from abm import risk
    specs = risk.resolve(sources)
    base, pert, metas = [], [], []
    for ai, arr in enumerate(arrangements):
        holder_share = ai / max(len(arrangements) - 1, 1)   # 0 (fragmented) .. 1
        for r, sd in enumerate(seeds):
            rng = np.random.default_rng(sd)
            c0 = 1e9 * (1 + 0.02 * rng.standard_normal())

            def money(c, pop_dc=0.0):
                dc = c - c0
                res = {p: 0.0 for p in PARTIES}
                res["funder"] = -c0 - pop_dc                     # allocations follow population
                res["commissioner"] = c0 + pop_dc - (c - dc * holder_share) * 1.0
                res["lead"] = -dc * holder_share * 0.6
                res["providers"] = -dc * holder_share * 0.4
                res["gp_practices"] = 0.0
                return res

            ids = {"arrangement": arr, "point": 0, "replicate": r, "seed": sd}
            res = money(c0)
            base.append({**ids, "system_cost": c0, **{f"result.{p}": v for p, v in res.items()}})
            metas.append({**ids, "system_cost": c0, "party_results": res,
                          "holder": "icp" if holder_share > 0 else None, "term_months": steps,
                          "failures": ([{"month": 5, "org": "icp", "party": "lead"}]
                                       if holder_share > 0 and r == 0 else [])})
            for spec in specs:
                for d in spec["directions"]:
                    sign = 1 if d == "up" else -1
                    if spec["source"] == "quality":
                        c, pop = c0, 0.0                         # a quality fall moves no money
                    elif spec["source"] == "population":
                        c = c0 * (1 + sign * 0.01)
                        pop = c - c0
                    else:
                        c, pop = c0 * (1 + sign * 0.03 * (1 + 0.1 * rng.random())), 0.0
                    res = money(c, pop) if spec["source"] != "population" else {
                        **{p: 0.0 for p in PARTIES}, "funder": -c0 - pop, "commissioner": c0 + pop - c}
                    pert.append({**ids, "source": spec["source"], "direction": d,
                                 "system_cost": c, **{f"result.{p}": v for p, v in res.items()}})
    runs, risk_runs = pd.DataFrame(base), pd.DataFrame(pert)
    runs.to_csv(out / "runs.csv", index=False)
    risk_runs.to_csv(out / "risk_runs.csv", index=False)
    risk.incidence(runs, risk_runs, specs, steps, scale).to_csv(out / "risk_incidence.csv",
                                                                index=False)
    risk.tail_risk(metas, steps, scale).to_csv(out / "tail_risk.csv", index=False)
    return specs
