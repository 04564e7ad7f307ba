"""The report's risk section: who bears which risk (the incidence matrix and what the sources
state), tail risk as finance directors read it, then the covariance shares with their caveat.

Everything is computed from the stored CSVs by abm.risk and abm.stats (the same path as
risk_incidence.csv and tail_risk.csv), so the report and the files never disagree.
"""
from __future__ import annotations

import html
import math
from typing import Any, Callable

import pandas as pd

from abm import risk
from abm.definitions import PARTIES
from abm.report._figures import risk_matrix_figure, risk_share_figure
from abm.report._data import ReportData
from abm.report._setup import arrangement_definition
from abm.style import PARTY_LABELS, format_value

SIDE_LABELS = {"holder side": "holder side (lead and providers)",
               "commissioner side": "commissioner side (funder and commissioner)",
               "GP practices": "GP practices"}
# what "up" means for each source, in a sentence ("... of an activity rise")
UP_WORDS = {"activity": "a rise in activity", "usage_mix": "a shift in usage towards planned care",
            "efficiency": "efficiency savings not realised", "unit_cost": "unit costs above the uplift",
            "quality": "a quality fall", "population": "faster population growth",
            "demography": "faster ageing"}


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>\n'


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _f2(x: float) -> str:
    return f"{round(x, 2) + 0.0:.2f}"  # never "-0.00"


def _share(m: float, lo: float = math.nan, hi: float = math.nan) -> str:
    if not math.isfinite(m):
        return "undefined"
    return _f2(m) + (f" [{_f2(lo)}, {_f2(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "")


# ----------------------------------------------------------------------------- inputs
def source_specs(data: ReportData) -> list[dict]:
    """The risk sources the run used: the manifest's resolved list, else the config's."""
    specs = data.manifest.get("risk_sources")
    if isinstance(specs, list) and specs and all(isinstance(s, dict) and "kind" in s for s in specs):
        return [{**risk.SOURCES.get(s["source"], {}), **s} for s in specs]
    entries = data.config.get("risk_sources") or []
    try:
        return risk.resolve(entries)
    except (KeyError, TypeError, ValueError):
        return []


def side_incidence(data: ReportData) -> pd.DataFrame | None:
    """Incidence on the holder side, the commissioner side and practices (base point), computed
    from runs.csv and risk_runs.csv as risk_incidence.csv is."""
    if data.runs is None or data.risk_runs is None or data.risk_runs.empty:
        return None
    specs = source_specs(data)
    if not specs:
        return None
    base = data.runs[data.runs["point"].astype(str) == str(data.base_point)]
    pert = data.risk_runs[data.risk_runs["point"].astype(str) == str(data.base_point)]
    scale = _num(data.config.get("population_scale")) or 1.0
    return risk.incidence(base, pert, specs, int(data.n_steps), scale if scale > 0 else 1.0,
                          groups=risk.SIDES)


# ----------------------------------------------------------------------------- sentences
def _stated(data: ReportData, arrangement: str) -> dict | None:
    definition, _ = arrangement_definition(data, arrangement)
    if not isinstance(definition, dict):
        definition = {}
    contract = definition.get("contract") if isinstance(definition.get("contract"), dict) else {}
    holder = bool(definition.get("holder"))
    alliance = bool(definition.get("alliance"))
    if not definition:  # no definition found: infer from the shipped key
        holder = arrangement.startswith(("icp", "prime"))
        alliance = arrangement == "alliance"
        contract = {"kind": "icp" if arrangement.startswith("icp") else "prime"}
    return risk.stated_allocation(contract.get("kind"), holder, alliance)


def allocation_sentences(data: ReportData, sides: pd.DataFrame) -> str:
    """One sentence per arrangement comparing its matrix with the allocation the sources state."""
    up = sides[sides["direction"] == "up"]
    items = []
    for a in data.arrangements:
        sub = up[up["arrangement"] == a].set_index(["source", "party"])
        if sub.empty:
            continue
        srcs = list(dict.fromkeys(up.loc[up["arrangement"] == a, "source"]))

        def cell(src: str, side: str) -> tuple[float, float, float]:
            if (src, side) not in sub.index:
                return math.nan, math.nan, math.nan
            r = sub.loc[(src, side)]
            return _num(r["share"]), _num(r["ci_low"]), _num(r["ci_high"])

        stated = _stated(data, a)
        label = esc(data.label(a))
        undefined = [s for s in srcs if not math.isfinite(cell(s, "holder side")[0])]
        if stated is None:
            bits = [f"{UP_WORDS.get(s, s)}: holder side {_share(*cell(s, 'holder side'))}, "
                    f"commissioner side {_share(*cell(s, 'commissioner side'))}"
                    for s in srcs if s not in undefined]
            text = (f"<b>{label}</b>: the sources cited state no allocation for this "
                    "arrangement. Here " + "; ".join(bits) + ".")
        else:
            agree, differ, unclear, parts = [], [], [], []
            for s, side in stated["sides"].items():
                if s not in srcs:
                    continue
                m, lo, hi = cell(s, side)
                if not math.isfinite(m):
                    continue
                parts.append(f"the {SIDE_LABELS[side].split(' (')[0]} bears "
                             f"{_share(m, lo, hi)} of {UP_WORDS.get(s, s)}")
                (agree if m >= 0.5 else differ).append(s)
                if math.isfinite(lo) and lo < 0.5 <= hi:
                    unclear.append(s)
            verdict = ("consistent with the sources for every source measured"
                       if agree and not differ else
                       "at odds with the sources for " + ", ".join(UP_WORDS[s] for s in differ)
                       + (" (consistent for " + ", ".join(UP_WORDS[s] for s in agree) + ")"
                          if agree else "") if differ else "not comparable (no source measured)")
            if unclear:
                verdict += ("; the interval includes one half for "
                            + ", ".join(UP_WORDS[s] for s in unclear))
            text = (f"<b>{label}</b>: " + "; ".join(parts) + f". The sources state that "
                    f"{esc(stated['text'])} ({esc(stated['cite'])}): the model is {verdict}.")
        if undefined:
            text += (" Undefined here (the source changed no money): "
                     + ", ".join(UP_WORDS.get(s, s) for s in undefined) + ".")
        items.append(f"<li>{text}</li>")
    return "<ul class=\"allocation\">" + "".join(items) + "</ul>" if items else ""


def side_table(data: ReportData, sides: pd.DataFrame) -> str:
    """Sources × arrangements, holder side and commissioner side (as the terminal summary)."""
    up = sides[sides["direction"] == "up"]
    arrs = [a for a in data.arrangements if a in set(up["arrangement"])]
    srcs = [s for s in risk.SOURCE_NAMES if s in set(up["source"])]
    idx = up.set_index(["arrangement", "source", "party"])
    head = "".join(f'<th colspan="2">{esc(data.label(a))}</th>' for a in arrs)
    sub = "".join("<th>holder</th><th>commissioner</th>" for _ in arrs)
    body = []
    for s in srcs:
        cells = []
        for a in arrs:
            for side in ("holder side", "commissioner side"):
                r = idx.loc[(a, s, side)] if (a, s, side) in idx.index else None
                m = _num(r["share"]) if r is not None else math.nan
                lo = _num(r["ci_low"]) if r is not None else math.nan
                hi = _num(r["ci_high"]) if r is not None else math.nan
                ci = (f'<div class="ci">[{_f2(lo)}, {_f2(hi)}]</div>'
                      if math.isfinite(lo) and math.isfinite(hi) else "")
                strong = math.isfinite(m) and m >= 0.5
                v = _f2(m) if math.isfinite(m) else "—"
                cells.append(f'<td class="cell">{"<b>" + v + "</b>" if strong else v}{ci}</td>')
        body.append(f"<tr><td>{esc(risk.SOURCES[s]['label'])}</td>{''.join(cells)}</tr>")
    return ('<table class="headline sides"><thead><tr><th rowspan="2">Source (up)</th>'
            f"{head}</tr><tr>{sub}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            '<p class="ci">Holder side: the lead and the providers (subcontracted or contracted '
            "directly); commissioner side: the funder and the commissioner; GP practices bear "
            "the rest, so the two columns need not sum to 1. Bold: at least half. Mean share "
            "over replicates, 95% t-interval in brackets; — where the source changed no "
            "money.</p>")


def sources_table(specs: list[dict]) -> str:
    rows = []
    for s in specs:
        svc = f" ({', '.join(s['service'])})" if s.get("service") else ""
        dirs = "up and down" if len(s.get("directions", ())) > 1 else "up only"
        rows.append(f"<tr><td>{esc(s.get('label', s['source']))} <code>{esc(s['source'])}</code>"
                    f"</td><td><code>{esc(s['kind'])}</code>{esc(svc)}</td>"
                    f"<td>±{s['size']:g} ({esc(s.get('unit', ''))})</td>"
                    f"<td>{s['month']}</td><td>{dirs}</td><td>{esc(s.get('basis', ''))}</td></tr>")
    return ('<details><summary>The risk sources, their sizes and where the sizes come from'
            '</summary><table class="terms"><thead><tr><th>Source</th><th>Model shock</th>'
            "<th>Size</th><th>From month</th><th>Directions</th><th>Basis</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></details>")


# ----------------------------------------------------------------------------- tail risk
def tail_table(data: ReportData) -> str:
    t = data.tail_risk
    if t is None or t.empty:
        return _empty("No tail-risk table (tail_risk.csv) was stored with these results.")
    idx = t.set_index(["arrangement", "party", "measure"])
    arrs = [a for a in data.arrangements if a in set(t["arrangement"])]
    fail_cols = [("lead", "holder fails"), ("providers", "another provider fails"),
                 ("gp_practices", "a GP practice fails")]
    head = ("".join(f"<th>P({esc(w)})</th>" for _, w in fail_cols)
            + "".join(f"<th>ES 5%: {esc(PARTY_LABELS.get(p, p))}</th>" for p in PARTIES))
    body = []
    for a in arrs:
        cells = []
        for p, _ in fail_cols:
            r = idx.loc[(a, p, "failure_probability")] if (a, p, "failure_probability") in idx.index else None
            v = _num(r["value"]) if r is not None else math.nan
            lo = _num(r["ci_low"]) if r is not None else math.nan
            hi = _num(r["ci_high"]) if r is not None else math.nan
            txt = (f"{v:.0%}" if math.isfinite(v) else "no holder" if p == "lead" else "—")
            ci = (f'<div class="ci">[{lo:.0%}, {hi:.0%}]</div>'
                  if math.isfinite(lo) and math.isfinite(hi) else "")
            cells.append(f'<td class="cell">{txt}{ci}</td>')
        for p in PARTIES:
            r = idx.loc[(a, p, "expected_shortfall_5")] if (a, p, "expected_shortfall_5") in idx.index else None
            v = _num(r["value"]) if r is not None else math.nan
            lo = _num(r["ci_low"]) if r is not None else math.nan
            hi = _num(r["ci_high"]) if r is not None else math.nan
            ci = (f'<div class="ci">[{format_value(lo, "gbp")}, {format_value(hi, "gbp")}]</div>'
                  if math.isfinite(lo) and math.isfinite(hi) else "")
            mr = idx.loc[(a, p, "mean_result")] if (a, p, "mean_result") in idx.index else None
            mean = (f'<div class="ci">mean {format_value(_num(mr["value"]), "gbp")}</div>'
                    if mr is not None and math.isfinite(_num(mr["value"])) else "")
            cells.append(f'<td class="cell">{format_value(v, "gbp")}{ci}{mean}</td>')
        body.append(f"<tr><td>{esc(data.label(a))}</td>{''.join(cells)}</tr>")
    n = int(pd.to_numeric(t["n"], errors="coerce").max())
    term = ("the holder contract's term (else the horizon)")
    few = (f" With {n} runs the 5% tail is the single worst run, so the shortfall has no "
           "interval (20 or more runs give a bootstrap interval)." if n < risk.MIN_ES_BOOTSTRAP_N
           else " Shortfall intervals: bootstrap over runs.")
    return ('<table class="headline tail"><thead><tr><th>Arrangement</th>' + head
            + f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<p class="ci">Over {n} runs per arrangement (every replicate and sweep point, base '
            f"runs only). P(…): share of runs in which the organisation fails within {term}, "
            "with its exact (Clopper-Pearson) 95% interval. ES 5%: the expected shortfall, the "
            "mean of the worst 5% of the party's results, in £ a year at full scale (a negative "
            "number is a deficit; the funder's result is minus what it pays out), with the mean "
            f"result beneath.{few}</p>")


# ----------------------------------------------------------------------------- covariance
def covariance_note(data: ReportData, table: pd.DataFrame) -> tuple[str, bool]:
    """(HTML note, whether the shares are worth drawing) for the risk_share.* rows."""
    from abm.summary import MIN_BOOTSTRAP_N
    rs = table[table["metric"].astype(str).str.startswith("risk_share.")]
    if rs.empty:
        return _empty("No covariance shares (risk_share.* rows of summary.csv) were stored."), False
    n = int(pd.to_numeric(rs["n"], errors="coerce").max())
    s = data.summary
    noted = (s[s["metric"].astype(str).str.startswith("risk_share.")]
             if s is not None and {"metric", "note"} <= set(s.columns) else rs.iloc[0:0])
    notes = sorted({str(x) for x in noted.get("note", []) if str(x) not in ("", "nan")})
    if n < MIN_BOOTSTRAP_N:
        return (f'<p class="note">The covariance shares are not shown: with {n} run'
                f'{"s" if n != 1 else ""} per arrangement they have no interval (a bootstrap '
                f"needs {MIN_BOOTSTRAP_N} or more) and swing wildly from one set of replicates "
                "to another. Who bears which risk is in the incidence matrix above.</p>"), False
    caveat = ""
    if any("sampled baseline" in x for x in notes):
        caveat = (" In these runs Var(C) is mostly <b>sampled baseline</b>: each replicate's "
                  "own population and demand, which yearly allocations already price in, "
                  "rather than the declared uncertainties; so these shares say who absorbs that "
                  "noise, not who bears a given risk.")
    detail = "".join(f"<li>{esc(x)}</li>" for x in notes[:3])
    return (f'<p class="note">−Cov(Rₚ, C)/Var(C) pooled over every run of an arrangement (all '
            f"sweep points and replicates): the share of variation across the declared "
            f"uncertainties.{caveat}</p>" + (f'<ul class="ci">{detail}</ul>' if detail else "")), True


# ----------------------------------------------------------------------------- section
def risk_section(data: ReportData, table: pd.DataFrame, render: Callable[[Any], str]) -> str:
    parts = ["<h3>Who bears which risk</h3>"]
    specs = source_specs(data)
    f = risk_matrix_figure(data)
    if f is None:
        parts.append(_empty("No risk sources were declared in this experiment (risk_sources:), "
                            "so there is no incidence matrix: add e.g. risk_sources: [activity, "
                            "population] to measure who bears each source in paired runs."))
    else:
        reps = data.manifest.get("risk_replications")
        parts.append(
            "<p>Each risk source is perturbed in paired runs: the same seeds and the same people "
            "as a base run, with the source moved up (and down where the model can) from a month "
            "after contract values are set (month 2; population and demography act at year "
            "starts, so from month 13). A party's share of the source is −ΔRₚ/ΔC, its change in "
            "result over the change in system cost, per replicate"
            + (f" ({int(reps)} replicates)" if isinstance(reps, (int, float)) and reps else "")
            + "; shares sum to 1 because money is conserved.</p>")
        if specs:
            parts.append(sources_table(specs))
        parts.append(render(f))
        sides = side_incidence(data)
        if sides is not None and not sides.empty:
            parts.append("<h4>Against the allocation the sources state</h4>")
            parts.append(allocation_sentences(data, sides))
            parts.append("<h4>Holder side and commissioner side</h4>")
            parts.append(side_table(data, sides))
    parts.append("<h3>Tail risk</h3>")
    parts.append(tail_table(data))
    parts.append("<h3>Share of variation across the declared uncertainties</h3>")
    note, draw = covariance_note(data, table)
    parts.append(note)
    if draw:
        fig = risk_share_figure(data, table)
        parts.append(render(fig) if fig else "")
    parts.append("<h3>Surpluses and failures</h3>")
    return "\n".join(p for p in parts if p)
