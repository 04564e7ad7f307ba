"""The published report: one self-contained HTML file that reads like a results section.

`build_report(results_dir)` reads what `abm run` stored (results.parquet, finance.parquet,
summary.csv, manifest.json, networks/*.graphml, optional sensitivity.csv) and writes
`results_dir/report.html`, with plotly.js embedded once and no network references, so the file
opens offline. With `static_dir` it also writes a PNG and an SVG of every figure (kaleido with
Debian's Chromium).
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from abm.report import _figures as F
from abm.report import _risk
from abm.report import _systems
from abm.report._data import ReportData, ReportInputError, headline_table, load
from abm.report._setup import (
    arrangement_definition,
    economy_definition,
    flatten_terms,
    organisations_rows,
    practices_summary,
)
from abm.style import (
    FONT_FAMILY,
    METRIC_GROUPS,
    METRIC_INFO,
    ORG_KIND_LABELS,
    arrangement_colour,
    format_value,
    metric_label,
    metric_unit,
    unit_words,
)

__all__ = ["build_report", "SECTIONS", "ReportInputError", "find_browser"]

# Section ids and titles, in the order the report shows them.
SECTIONS: list[tuple[str, str]] = [
    ("summary", "Summary"),
    ("setup", "Set-up"),
    ("networks", "Contract networks"),
    ("over-time", "Over time"),
    ("risk", "Risk sharing"),
    ("gp", "GP participation"),
    ("sensitivity", "Sensitivity"),
]

TABLE_GROUPS = ("integration", "fragmentation", "risk", "risk_sharing", "outcomes")

_CSS = f"""
body {{ font-family: {FONT_FAMILY}; color: #222; margin: 0; background: #fafafa; }}
main {{ max-width: 1120px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: white; }}
h1 {{ font-size: 1.9rem; margin: 0.5rem 0 0.3rem; }}
h2 {{ font-size: 1.45rem; border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem;
      margin-top: 2.6rem; }}
h3 {{ font-size: 1.12rem; margin-top: 1.6rem; }}
p, li {{ line-height: 1.5; }}
.lede {{ color: #444; font-size: 1.05rem; }}
nav ol {{ columns: 2; font-size: 0.95rem; }}
table {{ border-collapse: collapse; margin: 0.8rem 0; font-size: 0.88rem; max-width: 100%; }}
th, td {{ border-bottom: 1px solid #e3e3e3; padding: 0.3rem 0.55rem; text-align: left;
          vertical-align: top; overflow-wrap: anywhere; }}
th {{ background: #f3f3f3; }}
/* the results tables fill the column and wrap inside cells (numbers never break: their
   spaces are non-breaking), so any number of arrangements fits without sideways scrolling */
table.headline {{ width: 100%; table-layout: fixed; }}
table.headline > thead > tr > th:first-child {{ width: 13rem; }}
.nb {{ white-space: nowrap; }}
table.headline td.cell {{ text-align: right; overflow-wrap: normal; }}
table.headline th.arr {{ text-align: right; border-top: 4px solid var(--c); }}
tr.group th {{ background: #e9eef5; text-align: left; }}
.ci, .d {{ color: #666; font-size: 0.8rem; }}
.d.sig {{ color: #111; font-weight: 600; }}
figure.plot {{ margin: 1.2rem 0 2rem; }}
figcaption {{ font-size: 0.9rem; color: #333; margin-top: 0.3rem; line-height: 1.45; }}
.note {{ background: #fff8e1; border-left: 4px solid #E69F00; padding: 0.5rem 0.8rem; }}
.empty {{ color: #555; font-style: italic; }}
.arrangement-card {{ border-left: 5px solid var(--c); padding: 0.1rem 0 0.1rem 1rem;
                     margin: 1.2rem 0; }}
details pre {{ max-height: 28rem; overflow: auto; background: #f6f6f6; padding: 0.8rem;
               font-size: 0.78rem; }}
.swatch {{ display: inline-block; width: 0.8em; height: 0.8em; background: var(--c);
           margin-right: 0.3em; vertical-align: baseline; }}
footer {{ margin-top: 3rem; color: #777; font-size: 0.85rem; }}
table.sides th, table.tail th {{ text-align: right; font-size: 0.8rem; }}
ul.allocation li {{ margin-bottom: 0.5rem; }}
@media print {{ figure.plot, table {{ break-inside: avoid; }} main {{ max-width: none; }} }}
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


# ---------------------------------------------------------------------------------- lookups

def _get(d: dict[str, Any], *paths: str) -> Any:
    """First present value among dotted paths in a nested dict."""
    for path in paths:
        cur: Any = d
        for part in path.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur not in (None, "", [], {}):
            return cur
    return None


def _experiment_name(data: ReportData) -> str:
    name = _get(data.manifest, "config.name", "name", "experiment")
    if not name and "experiment" in data.results.columns and len(data.results):
        name = data.results["experiment"].iloc[0]
    return str(name or data.results_dir.name)


def _seeds_text(data: ReportData) -> str:
    seeds = _get(data.manifest, "seeds", "config.seeds")
    if isinstance(seeds, list) and seeds and isinstance(seeds[0], dict):
        # [{point, replicate, seed}, ...]: the seeds of the points the headlines pool
        at = {str(p) for p in (data.headline_points or [data.base_point])}
        at_base = [x.get("seed") for x in seeds if str(x.get("point", data.base_point)) in at]
        seeds = at_base or [x.get("seed") for x in seeds]
    if seeds is None and "seed" in data.results.columns:
        seeds = sorted(pd.unique(data.results["seed"]).tolist())
    if isinstance(seeds, dict):
        seeds = [x for v in seeds.values() for x in (v if isinstance(v, list) else [v])]
    if isinstance(seeds, list):
        shown = ", ".join(str(s) for s in seeds[:10])
        more = f", … ({len(seeds)} seeds)" if len(seeds) > 10 else ""
        base = _get(data.manifest, "config.seed")
        return shown + more + (f" (base seed {base})" if base is not None else "")
    base = _get(data.manifest, "config.seed", "seed")
    return str(seeds if seeds is not None else (base if base is not None else "—"))


def _package_version() -> str:
    try:
        from importlib.metadata import version
        return version("contracting-abm")
    except Exception:
        try:
            import abm
            return getattr(abm, "__version__", "unknown")
        except Exception:
            return "unknown"


# ------------------------------------------------------------------------------- HTML pieces

class _Figs:
    """Numbers figures in order and renders each into a <figure> (plotly.js not included)."""

    def __init__(self) -> None:
        self.items: list[F.Figure] = []

    def render(self, f: F.Figure | None) -> str:
        if f is None:
            return ""
        self.items.append(f)
        n = len(self.items)
        height = f.fig.layout.height or 450
        div = pio.to_html(f.fig, full_html=False, include_plotlyjs=False,
                          div_id=f"fig-{f.slug}", config=F.PLOT_CONFIG,
                          default_width="100%", default_height=f"{int(height)}px",
                          validate=False)
        return (f'<figure class="plot" id="figure-{esc(f.slug)}" data-figure="{n}">'
                f'{div}<figcaption><b>Figure {n}. {esc(f.title)}.</b> {esc(f.caption)}'
                '</figcaption></figure>\n')


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>\n'


def _nb(text: str) -> str:
    """A number that never breaks across lines (signs, £ and units stay with it)."""
    return f'<span class="nb">{text}</span>'


def _cell(row: pd.Series | None, metric: str, arrangement: str, baseline: str | None) -> str:
    if row is None:
        return '<td class="cell">—</td>'
    unit = metric_unit(metric)
    m = format_value(row["mean"], unit)
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ci = (f'<div class="ci">[{_nb(format_value(lo, unit))}, {_nb(format_value(hi, unit))}]</div>'
          if pd.notna(lo) and pd.notna(hi) else "")
    if arrangement == baseline:
        d = '<div class="d">baseline</div>'
    elif pd.notna(row.get("diff_mean")):
        dlo, dhi = row.get("diff_ci_low"), row.get("diff_ci_high")
        sig = pd.notna(dlo) and pd.notna(dhi) and (dlo > 0 or dhi < 0)
        rng = (f" [{_nb(format_value(dlo, unit, signed=True))}, "
               f"{_nb(format_value(dhi, unit, signed=True))}]"
               if pd.notna(dlo) and pd.notna(dhi) else "")
        d = (f'<div class="d{" sig" if sig else ""}">'
             f'{_nb("Δ\u00a0" + format_value(row["diff_mean"], unit, signed=True))}{rng}</div>')
    else:
        d = ""
    return f'<td class="cell"><div class="v">{_nb(m)}</div>{ci}{d}</td>'


def _covariance_cell(row: pd.Series | None) -> str:
    """A covariance share, or why it is not shown (too few runs for an interval)."""
    from abm.summary import MIN_BOOTSTRAP_N
    n = row.get("n") if row is not None else None
    if row is None or not pd.notna(n) or n < MIN_BOOTSTRAP_N:
        why = f"n = {int(n)}: too few" if row is not None and pd.notna(n) else "—"
        return f'<td class="cell">—<div class="ci">{esc(why)}</div></td>'
    return _cell(row, str(row.get("metric", "risk_share")), "", None)


def _headline_html(data: ReportData, table: pd.DataFrame) -> str:
    if table.empty:
        return _empty("No final-year values to summarise.")
    idx = {(r["arrangement"], r["metric"]): r for _, r in table.iterrows()}
    present = set(table["metric"].astype(str))
    arrs = data.arrangements
    head = "".join(f'<th class="arr" style="--c:{arrangement_colour(a)}">{esc(data.label(a))}'
                   "</th>" for a in arrs)
    out = [f'<table class="headline"><thead><tr><th>Metric</th>{head}</tr></thead><tbody>']
    for g in TABLE_GROUPS:
        if g == "risk_sharing":
            metrics = [f"risk_share.{p}" for p in F.PARTIES if f"risk_share.{p}" in present]
            title = ("Risk sharing: share of variation across the declared uncertainties "
                     "(covariance; who bears each source is in Risk sharing)")
        else:
            metrics = [m for m, info in METRIC_INFO.items() if info[2] == g and m in present]
            title = METRIC_GROUPS.get(g, g)
        if not metrics:
            continue
        out.append(f'<tr class="group"><th colspan="{len(arrs) + 1}">{esc(title)}</th></tr>')
        for m in metrics:
            cells = "".join(_covariance_cell(idx.get((a, m))) if g == "risk_sharing"
                            else _cell(idx.get((a, m)), m, a, data.baseline) for a in arrs)
            out.append(f"<tr><td>{esc(metric_label(m))}</td>{cells}</tr>")
    out.append("</tbody></table>")
    fy = _get(data.manifest, "final_year")
    fy = f" (final-year value: {esc(fy)})" if fy else ""
    where = f", {esc(data.scope_text)}" if data.scope_text else ""
    delta = (f", and Δ, the paired difference from the baseline, {esc(data.label(data.baseline))}"
             ", with its 95% interval (bold when the interval excludes zero)"
             if data.baseline else "; no baseline was compared, so there are no paired "
             "differences")
    out.append(
        f'<p class="ci">Each cell: mean of the final-year value{fy} over '
        f"{esc(data.runs_word)}{where}, its 95% t-interval in brackets (clipped to the "
        f"values the metric can take){delta}. Shares are in per cent and their differences "
        "in percentage points (pp).</p>")
    return "\n".join(out)


def _ci_text(row: pd.Series, unit: str) -> str:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if pd.notna(lo) and pd.notna(hi):
        return f"95% CI {format_value(lo, unit)} to {format_value(hi, unit)}"
    return "no interval: too few runs"


def _findings_html(data: ReportData, table: pd.DataFrame) -> str:
    """A sentence per headline metric: which arrangement did best, and by how much; each
    states the metric's unit, the 95% intervals and n (and, for sweeps, where in the design
    the values come from: the defaults, or every point when it has none there)."""
    items = []
    for m in F.FOREST_METRICS:
        info = METRIC_INFO.get(m)
        if not info or info[3] == 0:
            continue
        sub = table[(table["metric"] == m) & table["mean"].notna()]
        if len(sub) < 2:
            continue
        unit = metric_unit(m)
        ordered = sub.sort_values("mean", ascending=info[3] < 0)
        best = ordered.iloc[0]
        word = "highest" if info[3] > 0 else "lowest"
        a = str(best["arrangement"])
        n = int(best["n"]) if pd.notna(best.get("n")) else data.n_replicates
        head = (f"<b>{esc(metric_label(m))}</b> <span class=\"ci\">({esc(unit_words(m))}; "
                f"final-year mean, n = {n} runs per arrangement"
                + (f", {esc(data.scope_short)}" if data.scope_short else "") + ")</span>")
        # never name a winner the intervals do not separate: every arrangement whose 95% interval
        # overlaps the best one's (or has none) is tied with it
        tied = [r for _, r in ordered.iloc[1:].iterrows()
                if not (pd.notna(best.get("ci_low")) and pd.notna(best.get("ci_high"))
                        and pd.notna(r.get("ci_low")) and pd.notna(r.get("ci_high")))
                or (r["ci_low"] <= best["ci_high"] and best["ci_low"] <= r["ci_high"])]
        if tied:
            names = ", ".join(f"{esc(data.label(str(r['arrangement'])))} "
                              f"({format_value(r['mean'], unit)}; {_ci_text(r, unit)})"
                              for r in tied)
            s = (f"{head}: no arrangement is clearly {word}; {esc(data.label(a))} "
                 f"({format_value(best['mean'], unit)}; {_ci_text(best, unit)}) is not "
                 f"separated from {names}: their 95% intervals overlap")
            items.append(f"<li>{s}.</li>")
            continue
        s = (f"{head} was {word} under {esc(data.label(a))}: "
             f"{format_value(best['mean'], unit)} ({_ci_text(best, unit)}; separated from "
             "every other arrangement)")
        base = data.baseline
        if base is not None and a != base and pd.notna(best.get("diff_mean")):
            s += (f", {format_value(best['diff_mean'], unit, signed=True)} against "
                  f"{esc(data.label(base))}")
            lo, hi = best.get("diff_ci_low"), best.get("diff_ci_high")
            if pd.notna(lo) and pd.notna(hi):
                clear = lo > 0 or hi < 0
                s += (f" (paired 95% CI {format_value(lo, unit, signed=True)} to "
                      f"{format_value(hi, unit, signed=True)}; "
                      + ("the interval excludes zero)" if clear else "the interval includes zero)"))
        elif base is not None and a == base:
            s += f", so no arrangement improved on the baseline, {esc(data.label(base))}"
        items.append(f"<li>{s}.</li>")
    if not items:
        return ""
    lead = ""
    if data.scope == "all":
        lead = ('<p class="note"><b>Not at the defaults:</b> this design has no points at the '
                "default parameters, so each finding below pools every sweep point: "
                f"{esc(data.runs_word)}. Its interval includes the swept parameters' "
                "variation as well as chance. Add <code>defaults:</code> under "
                "<code>uncertainties</code> for findings at the defaults.</p>")
    return "<h3>Headline findings</h3>" + lead + "<ul>" + "".join(items) + "</ul>"


def _provenance_html(data: ReportData) -> str:
    man = data.manifest
    rows = [
        ("Experiment", _experiment_name(data)),
        ("Configuration sha256", _get(man, "config_sha256", "sha256", "config_hash", "hash")),
        ("Experiment file", _get(man, "source")),
        ("Experiment file sha256", _get(man, "source_sha256")),
        ("contracting-abm version", _get(man, "versions.contracting-abm", "versions.abm",
                                         "versions.package", "package_version", "version")),
        ("Mesa version", _get(man, "versions.mesa", "mesa_version")),
        ("Python version", _get(man, "versions.python", "python_version", "python")),
        ("Seeds", _seeds_text(data)),
        ("Engine", _get(man, "engine", "config.engine")),
        ("Workers", _get(man, "workers", "config.workers")),
        ("Started", _get(man, "started", "start", "start_time", "started_at", "timestamps.start",
                         "timestamps.started")),
        ("Finished", _get(man, "finished", "end", "end_time", "ended", "finished_at",
                          "timestamps.end", "timestamps.finished")),
        ("Wall time (s)", _get(man, "wall_seconds", "wall_time_s", "wall_time", "timestamps.wall")),
        ("Sweep points × replicates", f"{len(data.points)} × {data.n_replicates}"),
        ("Results directory", data.results_dir.name),
    ]
    if "money_balance_error" in data.metrics:
        err = float(data.results.loc[data.results["metric"] == "money_balance_error",
                                     "value"].abs().max())
        rows.append(("Accounting check (largest money balance error)", format_value(err, "gbp")))
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v if v is not None else '—')}</td></tr>"
                   for k, v in rows)
    full = json.dumps(man, indent=2, sort_keys=True, default=str) if man else "{}"
    return (f'<h3>Provenance</h3><table class="provenance">{body}</table>'
            f"<details><summary>Full run manifest (manifest.json)</summary><pre>{esc(full)}</pre>"
            "</details>")


def _summary_section(data: ReportData, table: pd.DataFrame, figs: _Figs) -> str:
    cfg = data.config
    arr_list = ", ".join(f'<span class="swatch" style="--c:{arrangement_colour(a)}"></span>'
                         f"{esc(data.label(a))}" for a in data.arrangements)
    months = data.n_steps
    years = months / 12
    scale = _get(cfg, "population_scale")
    eco = cfg.get("economy")
    eco_txt = eco if isinstance(eco, str) else (_get(cfg, "economy.name") or "the default economy")
    lead = (f"<p class=\"lede\">This report compares {len(data.arrangements)} contracting "
            f"arrangements ({arr_list}) on {esc(eco_txt if eco_txt != 'default' else 'the default economy')} "
            f"over {months} months ({years:g} years), with {data.n_replicates} replicates of each. "
            "Every arrangement is run with the same seeds (common random numbers), so each "
            "replicate meets the same patients and the same demand, and differences between "
            "arrangements come from the contracting mechanisms rather than from chance."
            + (f" The population is simulated at {float(scale):g} of full size, with money "
               "scaled to match." if scale not in (None, 1, 1.0) else "") + "</p>")
    parts = [lead]
    desc = _get(cfg, "description")
    if desc:
        parts.append(f"<p><i>Experiment:</i> {esc(desc)}</p>")
    for n in data.notes:
        parts.append(f'<p class="note">{esc(n)}</p>')
    parts.append(_findings_html(data, table))
    parts.append("<h3>Final-year results</h3>")
    parts.append(_headline_html(data, table))
    parts.append(figs.render(F.forest_figure(data, table)))
    parts.append(_provenance_html(data))
    return "\n".join(p for p in parts if p)


def _terms_table(rows: list[tuple[str, str, list[str]]]) -> str:
    if not rows:
        return ""
    has_src = any(s for _, _, s in rows)
    body = "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td>"
        + (f"<td>{esc('; '.join(s)) if s else ''}</td>" if has_src else "") + "</tr>"
        for k, v, s in rows)
    head = "<th>Source</th>" if has_src else ""
    return ('<table class="terms"><thead><tr><th>Term</th><th>Value</th>'
            f"{head}</tr></thead><tbody>{body}</tbody></table>")


def _network_facts(g) -> str:
    from collections import Counter
    kinds = Counter(str(d.get("kind", "other")) for _, _, d in g.edges(data=True))
    value = sum(float(d.get("value") or 0) for _, _, d in g.edges(data=True)
                if d.get("kind") != "allocation" and _finite(d.get("value")))
    leads = [str(d.get("label") or n) for n, d in g.nodes(data=True) if d.get("role") == "lead"]
    from abm.style import CONTRACT_KIND_LABELS
    kind_txt = ", ".join(f"{c} {CONTRACT_KIND_LABELS.get(k, k).lower()}"
                         for k, c in sorted(kinds.items(), key=lambda kv: -kv[1]))
    s = (f"{g.number_of_edges()} contracts ({kind_txt}) worth {format_value(value, 'gbp')} a year "
         "excluding allocations")
    s += f"; lead organisation: {', '.join(leads)}" if leads else "; no lead organisation"
    return s + "."


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _sources_list(sources: list[str], what: str) -> str:
    if not sources:
        return _empty(f"No source is recorded for {what} in the configuration.")
    return (f"<p><b>Sources for {esc(what)}:</b></p><ul class=\"sources\">"
            + "".join(f"<li>{esc(x)}</li>" for x in sources) + "</ul>")


def _setup_section(data: ReportData, figs: _Figs) -> str:
    parts = ["<h3>The health economy</h3>"]
    eco, where = economy_definition(data)
    g0 = next(iter(data.networks.values()), None)
    cfg = data.config
    if eco:
        desc, rows, sources = flatten_terms(eco, skip=("organisations", "practices", "name"))
        name = eco.get("name")
        if name or desc:
            parts.append(f"<p><b>{esc(name or '')}</b>{'. ' if name and desc else ''}"
                         f"{esc(desc)}</p>")
    facts = []
    if g0 is not None:
        from collections import Counter
        kinds = Counter(str(d.get("kind", "other")) for _, d in g0.nodes(data=True))
        budget = sum(float(d.get("budget") or 0) for _, d in g0.nodes(data=True)
                     if _finite(d.get("budget")) and d.get("kind") not in ("funder",))
        facts.append(f"{g0.number_of_nodes()} organisations in the contract network: " + ", ".join(
            f"{c} {ORG_KIND_LABELS.get(k, k).lower()}" for k, c in kinds.most_common()) + ".")
        if budget > 0:
            facts.append("Combined annual budget of the organisations other than the funder: "
                         f"{format_value(budget, 'gbp')}.")
    for label, path in (("Months simulated", "months"), ("Replications", "replications"),
                        ("Base seed", "seed"), ("Population scale", "population_scale")):
        v = _get(cfg, path)
        if v is not None:
            facts.append(f"{label}: {v}.")
    if facts:
        parts.append("<p>" + esc(" ".join(facts)) + "</p>")
    if eco:
        pr = practices_summary(eco)
        if pr:
            parts.append(f"<p>{esc(pr[0])}"
                         + (f" <span class=\"ci\">Source: {esc('; '.join(pr[1]))}</span>"
                            if pr[1] else "") + "</p>")
        orgs = organisations_rows(eco)
        if orgs:
            body = "".join(f"<tr><td><code>{esc(i)}</code></td><td>{esc(n)}</td>"
                           f"<td>{esc(ORG_KIND_LABELS.get(k, k))}</td><td>{esc(nhs)}</td>"
                           f"<td>{esc(src)}</td></tr>" for i, n, k, nhs, src in orgs)
            parts.append("<h4>Organisations</h4><table class=\"terms\"><thead><tr><th>Id</th>"
                         "<th>Name</th><th>Kind</th><th>NHS body</th><th>Source</th></tr>"
                         f"</thead><tbody>{body}</tbody></table>")
        parts.append("<h4>Economy parameters</h4>")
        parts.append(_terms_table(rows))
        parts.append(_sources_list(sources, "the economy as a whole") if sources else "")
        parts.append(f'<p class="ci">Economy from {esc(where)}.</p>')
    else:
        parts.append(_empty("The economy's parameters were not found with these results or in "
                            "the configuration files; the organisation counts above come from "
                            "the contract networks."))
    overrides = cfg.get("overrides")
    if isinstance(overrides, dict) and overrides:
        parts.append("<h4>Parameter overrides in this experiment</h4>")
        parts.append(_terms_table([(k, str(v), []) for k, v in overrides.items()]))
    shocks = cfg.get("shocks")
    if shocks:
        rows = []
        for sh in shocks if isinstance(shocks, list) else [shocks]:
            if isinstance(sh, dict):
                dur = sh.get("duration")
                rows.append((str(sh.get("kind", "shock")),
                             f"size {sh.get('size')} from month {sh.get('month')}"
                             + (f" for {dur} months" if dur else " to the end"), []))
        parts.append("<h4>Shocks</h4>" + _terms_table(rows))

    parts.append("<h3>Arrangements and their key terms</h3>")
    for a in data.arrangements:
        parts.append(f'<div class="arrangement-card" style="--c:{arrangement_colour(a)}">'
                     f"<h4>{esc(data.label(a))} <code>{esc(a)}</code></h4>")
        definition, where = arrangement_definition(data, a)
        if definition:
            desc, rows, sources = flatten_terms(definition, skip=("label",))
            if desc:
                parts.append(f"<p>{esc(desc)}</p>")
        if a in data.networks:
            parts.append(f"<p>{esc(_network_facts(data.networks[a]))}</p>")
        if definition:
            parts.append(_terms_table(rows))
            parts.append(_sources_list(sources, "these terms"))
            parts.append(f'<p class="ci">Terms from {esc(where)}.</p>')
        else:
            parts.append(_empty("This arrangement's definition was not found in the run "
                                "manifest or the configuration files."))
        parts.append("</div>")
    parts.append(figs.render(F.payment_mix_figure(data)))
    return "\n".join(p for p in parts if p)


def _networks_section(data: ReportData, figs: _Figs) -> str:
    arrs = [a for a in data.arrangements if a in data.networks]
    if not arrs:
        return _empty("No contract networks (networks/*.graphml) were stored with these results.")
    parts = ["<p>Each diagram shows the contracts in force at the start of the run. Organisations "
             "are placed in layers by their role in the arrangement (funder, commissioners, lead, "
             "providers, GP practices) and, within a layer, in a fixed order of kind and name: "
             "the layout involves no randomness, so every rebuild of the report draws the same "
             "diagrams.</p>"]
    for a in arrs:
        parts.append(figs.render(F.network_figure(a, data.networks[a], label=data.label(a))))
    return "\n".join(parts)


def _over_time_section(data: ReportData, figs: _Figs) -> str:
    parts = []
    for g in ("integration", "fragmentation", "risk", "outcomes"):
        f = F.over_time_figure(data, g)
        if f is None:
            parts.append(_empty(f"No {METRIC_GROUPS[g].lower()} metrics were recorded."))
        else:
            parts.append(figs.render(f))
    return "\n".join(parts)


def _risk_section(data: ReportData, table: pd.DataFrame, figs: _Figs) -> str:
    """Who bears which risk (incidence matrix, the sources' allocation, holder vs commissioner
    side), tail risk, the covariance shares with their caveat, then surpluses and failures."""
    parts = [_risk.risk_section(data, table, figs.render)]
    f = F.surplus_figure(data)
    parts.append(figs.render(f) if f else _empty(
        "No yearly finances (finance.parquet) were stored with these results."))
    f = F.failures_figure(data, table)
    parts.append(figs.render(f) if f else _empty("No provider failures were recorded."))
    return "\n".join(parts)


def _gp_section(data: ReportData, figs: _Figs) -> str:
    f = F.gp_figure(data)
    return figs.render(f) if f else _empty(
        "GP practice participation (gp_outside, gp_partial, gp_full, gp_returned) was not "
        "recorded in these results.")


def _sensitivity_section(data: ReportData, figs: _Figs) -> str:
    unc = data.config.get("uncertainties")
    unc = unc if isinstance(unc, dict) else {}
    if not unc and data.sensitivity is None and data.point_values is None:
        return _empty("No uncertainties were swept in this experiment, so there is no "
                      "sensitivity analysis.")
    method = str(unc.get("method", "")) or None
    params = list((unc.get("parameters") or {}).keys())
    if not params and data.sensitivity is not None and "parameter" in data.sensitivity:
        params = sorted(data.sensitivity["parameter"].astype(str).unique())
    if not params and data.point_values is not None:
        params = [c for c in data.point_values.columns if c != "point"]
    parts = []
    desc = (f"{len(params)} uncertain parameter{'s were' if len(params) != 1 else ' was'} swept"
            + (f" by {esc(method)} sampling" if method else "")
            + (f" over {len(data.points)} points" if len(data.points) > 1 else "") + ": ")
    ranges = unc.get("parameters") or {}
    items = []
    for p in params:
        r = ranges.get(p) if isinstance(ranges, dict) else None
        rng = ""
        if isinstance(r, dict):
            if r.get("values") is not None:
                rng = " (values " + ", ".join(map(str, r["values"])) + ")"
            elif r.get("low") is not None and r.get("high") is not None:
                rng = f" ({r['low']:g} to {r['high']:g})"
        items.append(f"<code>{esc(p)}</code>{esc(rng)}")
    parts.append(f"<p>{desc}{', '.join(items)}.</p>")
    t = F.tornado_figure(data)
    s = F.sobol_figure(data)
    if t is None:
        parts.append(_empty("No tornado plot: it needs per-point results (summary.csv with "
                            "several points and points.csv)."))
    else:
        parts.append(figs.render(t))
    if s is None:
        why = (f"this experiment sampled by {method}; Sobol indices need method: sobol"
               if method and method != "sobol" else "no Sobol indices (sensitivity.csv) were "
               "stored with these results")
        parts.append(_empty(f"No Sobol indices: {why}."))
    else:
        parts.append(_sobol_caveat(data, unc))
        parts.append(figs.render(s))
    parts.append(_robustness_html(data))
    return "\n".join(p for p in parts if p)


SOBOL_MIN_SAMPLES = 64     # below this many base samples Sobol estimates are mostly noise


def _sobol_caveat(data: ReportData, unc: dict) -> str:
    """A warning when a Sobol design is too small for its indices to mean much."""
    n = unc.get("samples")
    sens = data.sensitivity
    conf = float(np.nanmedian(sens["ST_conf"])) if sens is not None and "ST_conf" in sens and len(sens) else float("nan")
    small = isinstance(n, (int, float)) and n < SOBOL_MIN_SAMPLES
    wide = np.isfinite(conf) and conf > 0.3
    if not (small or wide):
        return ""
    why = []
    if small:
        why.append(f"the design has {int(n)} base samples (at least {SOBOL_MIN_SAMPLES} are needed for stable estimates)")
    if wide:
        why.append(f"the median 95% interval of the total indices is ±{conf:.2f}")
    return ('<p class="note"><b>Read these Sobol indices with care:</b> ' + "; ".join(why)
            + ". Indices outside 0–1 or with wide intervals are sampling noise, not findings.</p>")


def _robustness_html(data: ReportData) -> str:
    """Robustness of conclusions (robustness.csv, abm.robustness): each comparison with the share
    of the assumption space in which its sign at the defaults holds, and where it fails, the
    region responsible (PRIM)."""
    from abm.robustness import FILE, INCONCLUSIVE, ROBUST_SHARE, from_folder
    path = Path(data.results_dir) / FILE
    try:  # results stored before robustness.csv existed: rebuilt from summary.csv and points.csv
        t = pd.read_csv(path) if path.is_file() else from_folder(data.results_dir)
        t = _systems.focus_rows(t, data)
    except (OSError, ValueError, KeyError):
        t = None
    if t is None or t.empty:
        return ""
    sign_word = {1.0: "higher", -1.0: "lower", 0.0: "no difference"}
    rows = []
    for r in t.itertuples(index=False):
        share = f"{r.share_sign_holds:.0%}" if _finite(r.share_sign_holds) else "-"
        verdict = ("robust" if bool(r.robust) else "inconclusive" if isinstance(r.note, str)
                   and INCONCLUSIVE in r.note else "not robust")
        region = "" if not isinstance(r.region, str) else r.region
        if region:
            region += (f" (coverage {r.region_coverage:.0%}, density {r.region_density:.0%})"
                       if _finite(r.region_coverage) else "")
        d = (f"{r.default_diff:.3g} ({r.default_ci_low:.3g} to {r.default_ci_high:.3g})"
             if _finite(r.default_ci_low) else (f"{r.default_diff:.3g}" if _finite(r.default_diff) else "-"))
        rows.append(f"<tr><td>{esc(r.arrangement)}</td><td>{esc(r.metric)}</td>"
                    f"<td>{esc(sign_word.get(float(r.sign_at_default), '-') if _finite(r.sign_at_default) else '-')}"
                    f"</td><td>{esc(d)}</td><td>{esc(share)} of {int(r.n)}</td><td>{esc(verdict)}</td>"
                    f"<td>{esc(region or (r.note if isinstance(r.note, str) else ''))}</td></tr>")
    n_robust = int(t["robust"].astype(bool).sum())
    return (f"<h3>Robustness of conclusions</h3><p>For each arrangement against "
            f"<code>{esc(t['baseline'].iloc[0])}</code>: the sign of the paired difference at the "
            f"default parameters (mean over the points at the defaults, with its 95% interval) and "
            f"the share of the sampled assumption space (each assumption over its plausible range "
            f"in configs/parameters.yaml) in which that sign holds. {n_robust} of {len(t)} "
            f"conclusions are robust (sign holds in at least {ROBUST_SHARE:.0%} of points); where "
            f"one is not, the region is the box PRIM finds where the sign fails (Friedman &amp; "
            f"Fisher 1999). With one replicate per point, a small difference also fails by "
            f"noise. A difference whose 95% interval at the defaults includes no difference is "
            f"<i>inconclusive</i>: no sign is claimed, and it is never counted robust.</p>"
            "<table><thead><tr><th>arrangement</th><th>metric</th><th>sign at defaults</th>"
            "<th>difference at defaults</th><th>sign holds</th><th>verdict</th>"
            "<th>region where it fails</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def render_html(data: ReportData) -> tuple[str, list[F.Figure]]:
    """The whole report page and the figures in it (in order)."""
    data, systems = _systems.split(data)   # a study across economies: sections 1-7 show one
    table = headline_table(data)
    figs = _Figs()
    bodies = {
        "summary": _summary_section(data, table, figs),
        "setup": _setup_section(data, figs),
        "networks": _networks_section(data, figs),
        "over-time": _over_time_section(data, figs),
        "risk": _risk_section(data, table, figs),
        "gp": _gp_section(data, figs),
        "sensitivity": _sensitivity_section(data, figs),
    }
    shown = SECTIONS + ([_systems.SECTION] if systems is not None else [])
    if systems is not None:
        bodies[_systems.SECTION[0]] = _systems.section(systems, figs.render)
    name = _experiment_name(data)
    title = f"{name}: contracting arrangements compared"
    toc = "".join(f'<li><a href="#{sid}">{esc(t)}</a></li>' for sid, t in shown)
    sections = "\n".join(f'<section id="{sid}"><h2>{i}. {esc(t)}</h2>\n{bodies[sid]}\n</section>'
                         for i, (sid, t) in enumerate(shown, 1))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="contracting-abm {esc(_package_version())}">
<title>{esc(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body>
<main>
<header><h1>{esc(title)}</h1>
<p class="lede">Results of an agent-based model of NHS contracting arrangements for integrated
care. Figures are interactive: hover for values, click legend entries to hide or show series.</p>
<nav><b>Contents</b><ol>{toc}</ol></nav></header>
{sections}
<footer>Generated by contracting-abm {esc(_package_version())} from <code>{esc(data.results_dir.name)}</code>
({len(figs.items)} figures). This file is self-contained and opens without a network connection.</footer>
</main>
</body>
</html>
"""
    return page, figs.items


# ------------------------------------------------------------------------------ static export

def find_browser() -> str | None:
    """Path of a Chromium for kaleido: $BROWSER_PATH, /usr/bin/chromium, or one on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).exists():
        return env
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


def export_static(figures: list[F.Figure], static_dir: Path | str) -> list[Path]:
    """PNG and SVG of every figure in `static_dir` (one browser start for all); when no
    Chromium is found, or kaleido fails, says so in one line and returns what was written."""
    browser = find_browser()
    if browser is None:
        print("static export skipped: no Chromium found (install Debian's chromium or set "
              "BROWSER_PATH)", file=sys.stderr)
        return []
    out = Path(static_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, figs = [], []
    for i, f in enumerate(figures, 1):
        for ext in ("png", "svg"):
            files.append(out / f"{i:02d}-{f.slug}.{ext}")
            figs.append(f.fig)
    old = os.environ.get("BROWSER_PATH")
    os.environ["BROWSER_PATH"] = browser
    try:
        pio.write_images(figs, files, width=1100, height=[int(f.layout.height or 500)
                                                           for f in figs], scale=1)
    except Exception as exc:  # report is already written; images are optional
        print(f"static export failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return [p for p in files if p.exists()]
    finally:
        if old is None:
            os.environ.pop("BROWSER_PATH", None)
        else:
            os.environ["BROWSER_PATH"] = old
    return files


# ------------------------------------------------------------------------------------ entry

def build_report(results_dir: Path | str, static_dir: Path | str | None = None) -> Path:
    """Write results_dir/report.html (atomically: temp file, then rename) and return its path.

    Raises ReportInputError when results_dir has no usable results.parquet.
    """
    d = Path(results_dir)
    data = load(d)
    page, figures = render_html(data)
    target = d / "report.html"
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes it private; the report is published
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if static_dir is not None:
        export_static(figures, static_dir)
    return target
