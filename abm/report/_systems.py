"""Studies across economies in the report: the detailed sections show one economy, and
"Systems compared" sets each arrangement's paired effect against the baseline side by side in
every economy, with its 95% interval.

A run of an experiment with `economies:` stores an `economy` column in every table. `split`
keeps the report's other sections unchanged by giving them one economy (the first listed, the
*focus*), as a sweep's sections show its base point, and returns what the systems section needs.
Paired differences are always those of one economy (summary.csv's `diff_*`, paired by point and
replicate within the economy, or headline_table on that economy's runs alone): runs of different
economies are never paired.
"""
from __future__ import annotations

import dataclasses
import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import abm.report._figures as F
from abm.report._data import ReportData, _read_networks, headline_table
from abm.style import apply_style, arrangement_colour, format_value, metric_label, metric_unit

SECTION = ("systems", "Systems compared")
#: the comparisons shown, in order (the report's forest-plot metrics that the run has)
METRICS = F.FOREST_METRICS


@dataclass
class Systems:
    economies: list[str]                 # in the experiment's order
    info: dict[str, dict[str, Any]]      # name -> manifest entry (label, population, file, ...)
    focus: str
    tables: dict[str, pd.DataFrame]      # name -> headline_table of that economy alone
    baseline: str | None
    arrangements: list[str]
    label: Any                           # arrangement key -> label


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def economies_of(data: ReportData) -> list[str]:
    """The run's economies (manifest order, else as stored); [] for a single-economy run."""
    if "economy" not in data.results.columns:
        return []
    listed = [str(e["name"]) for e in data.manifest.get("economies") or [] if isinstance(e, dict)]
    present = list(dict.fromkeys(data.results["economy"].astype(str)))
    return [e for e in listed if e in present] + [e for e in present if e not in listed]


def _only(df: pd.DataFrame | None, name: str) -> pd.DataFrame | None:
    if df is None or "economy" not in df.columns:
        return df
    return df[df["economy"].astype(str) == name].drop(columns="economy").reset_index(drop=True)


def of_economy(data: ReportData, name: str) -> ReportData:
    """The report's data for one economy of a study across economies."""
    info = next((e for e in data.manifest.get("economies") or []
                 if isinstance(e, dict) and str(e.get("name")) == name), {})
    manifest = dict(data.manifest)
    if isinstance(manifest.get("config"), dict):  # the set-up section describes this economy
        manifest["config"] = {**manifest["config"], "economy": info.get("file") or "default"}
    return dataclasses.replace(
        data, results=_only(data.results, name), finance=_only(data.finance, name),
        summary=_only(data.summary, name), summary_all=_only(data.summary_all, name),
        runs=_only(data.runs, name), risk_runs=_only(data.risk_runs, name),
        risk_incidence=_only(data.risk_incidence, name), tail_risk=_only(data.tail_risk, name),
        sensitivity=_only(data.sensitivity, name), manifest=manifest,
        networks=_read_networks(data.results_dir / "networks" / name), notes=list(data.notes))


def split(data: ReportData) -> tuple[ReportData, Systems | None]:
    """(data for the report's sections, the systems comparison or None for one economy)."""
    names = economies_of(data)
    if not names:
        return data, None
    per = {n: of_economy(data, n) for n in names}
    focus = per[names[0]]
    info = {str(e.get("name")): e for e in data.manifest.get("economies") or [] if isinstance(e, dict)}
    focus.notes.insert(0, f"This study ran {len(names)} economies ({', '.join(names)}); sections "
                          f"1-7 show {_name(info, names[0])} and 'Systems compared' sets the "
                          "arrangements' effects side by side in every economy.")
    systems = Systems(economies=names, info=info, focus=names[0],
                      tables={n: headline_table(d) for n, d in per.items()}, baseline=data.baseline,
                      arrangements=list(data.arrangements), label=data.label)
    return focus, systems


def focus_rows(table: pd.DataFrame | None, data: ReportData) -> pd.DataFrame | None:
    """A table read from the results folder (e.g. robustness.csv) with an economy column: the
    focus economy's rows (the first economy the run lists)."""
    if table is None or "economy" not in table.columns:
        return table
    listed = [str(e["name"]) for e in data.manifest.get("economies") or [] if isinstance(e, dict)]
    focus = listed[0] if listed else str(table["economy"].iloc[0])
    return _only(table, focus)


def _name(info: dict, name: str) -> str:
    label = (info.get(name) or {}).get("label")
    return f"{name} ({label})" if label and label != name else name


def _separated(lo: float, hi: float) -> bool:
    return math.isfinite(lo) and math.isfinite(hi) and (lo > 0 or hi < 0)


def _row(systems: Systems, econ: str, arr: str, metric: str) -> tuple[float, float, float, float]:
    t = systems.tables[econ]
    r = t[(t["arrangement"] == arr) & (t["metric"] == metric)]
    if r.empty:
        return (math.nan,) * 4
    r = r.iloc[0]
    return (float(r["diff_mean"]), float(r["diff_ci_low"]), float(r["diff_ci_high"]), float(r["n"]))


def comparison_table(systems: Systems) -> pd.DataFrame:
    """Per (metric, arrangement, economy): the paired difference from the baseline within that
    economy (diff_mean, diff_ci_low, diff_ci_high, n) and whether its interval excludes zero."""
    rows = []
    others = [a for a in systems.arrangements if a != systems.baseline]
    for m in METRICS:
        for a in others:
            for e in systems.economies:
                d, lo, hi, n = _row(systems, e, a, m)
                if math.isfinite(d):
                    rows.append({"metric": m, "arrangement": a, "economy": e, "diff_mean": d,
                                 "diff_ci_low": lo, "diff_ci_high": hi, "n": n,
                                 "separated": _separated(lo, hi)})
    return pd.DataFrame(rows, columns=["metric", "arrangement", "economy", "diff_mean", "diff_ci_low",
                                       "diff_ci_high", "n", "separated"])


def agreement(rows: pd.DataFrame) -> str:
    """How far the economies agree on one comparison."""
    k, n = int(rows["separated"].sum()), len(rows)
    signs = set(np.sign(rows.loc[rows["separated"], "diff_mean"]).astype(int))
    if n == 0:
        return ""
    if k == n and len(signs) == 1:
        return f"same direction, separated from zero in all {n}"
    if len(signs) > 1:
        return f"opposite directions ({k} of {n} separated)"
    if k == 0:
        return f"not separated from zero in any of {n}"
    return f"separated in {k} of {n}, same direction"


def _cell(d: float, lo: float, hi: float, unit: str) -> str:
    if not math.isfinite(d):
        return '<td class="cell">—</td>'
    rng = (f'<div class="ci">[{format_value(lo, unit, signed=True)}, {format_value(hi, unit, signed=True)}]</div>'
           if math.isfinite(lo) and math.isfinite(hi) else "")
    cls = ' class="d sig"' if _separated(lo, hi) else ' class="d"'
    return f'<td class="cell"><div{cls}>Δ {format_value(d, unit, signed=True)}</div>{rng}</td>'


def figure(systems: Systems, table: pd.DataFrame) -> F.Figure | None:
    """One panel per metric: each economy's paired difference (95% CI) per arrangement."""
    metrics = [m for m in METRICS if (table["metric"] == m).any()]
    if not metrics:
        return None
    cols = 2
    others = [a for a in systems.arrangements if a != systems.baseline]
    fig, _, height = F._grid([metric_label(m) for m in metrics], cols,
                             22 * len(systems.economies) * len(others) + 40, hspace=0.22, extra=130)
    for i, m in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        unit = metric_unit(m)
        scale = 100.0 if unit == "share" else 1.0
        for a in others:
            sub = table[(table["metric"] == m) & (table["arrangement"] == a)]
            if sub.empty:
                continue
            fig.add_trace(go.Scatter(
                x=sub["diff_mean"] * scale, y=sub["economy"], mode="markers",
                marker=dict(color=arrangement_colour(a), size=9, symbol="diamond"),
                error_x=dict(type="data", array=(sub["diff_ci_high"] - sub["diff_mean"]) * scale,
                             arrayminus=(sub["diff_mean"] - sub["diff_ci_low"]) * scale,
                             color=arrangement_colour(a), thickness=2, width=3),
                name=systems.label(a), legendgroup=a, showlegend=i == 0,
                hovertemplate=f"{systems.label(a)}, %{{y}}<br>{metric_label(m)}: %{{x}}<extra></extra>"),
                row=r, col=c)
        fig.add_vline(x=0, line=dict(color="#555555", width=1, dash="dot"), row=r, col=c)
        fig.update_xaxes(title_text="percentage points" if unit == "share" else F._axis_title(m),
                         row=r, col=c)
        fig.update_yaxes(categoryorder="array", categoryarray=systems.economies[::-1], row=r, col=c)
    base = systems.label(systems.baseline)
    title = f"Each arrangement's difference from {base}, economy by economy (95% CI)"
    apply_style(fig, title=title, height=height, legend=True)
    return F.Figure("systems-differences", title,
                    f"Mean paired difference from {base} in the final-year value, within each "
                    "economy (runs paired by replicate and seed in the same economy; economies are "
                    "never paired with each other), with its 95% confidence interval. Shares are in "
                    "percentage points.", fig)


def section(systems: Systems, render) -> str:
    """The 'Systems compared' section (render: the report's figure renderer)."""
    parts = [f"<p>The same {len(systems.arrangements)} arrangements ran in {len(systems.economies)} "
             "economies with the same seeds. Each difference below is paired within one economy "
             "(same sweep point, replicate and seed), never across economies, so it measures the "
             "arrangement's effect in that system; the economies differ in size, practices and "
             "places, and the comparison shows where a conclusion carries over from one system to "
             "another.</p>"]
    rows = ["<table><thead><tr><th>economy</th><th>name</th><th>registered people</th>"
            "<th>practices</th><th>file</th></tr></thead><tbody>"]
    for e in systems.economies:
        i = systems.info.get(e) or {}
        pop = i.get("population")
        rows.append(f"<tr><td>{esc(e)}{' (shown in sections 1-7)' if e == systems.focus else ''}</td>"
                    f"<td>{esc(i.get('label') or '')}</td>"
                    f"<td>{f'{pop:,}' if isinstance(pop, (int, float)) else ''}</td>"
                    f"<td>{esc(i.get('practices') or '')}</td>"
                    f"<td><code>{esc(i.get('file') or 'default')}</code></td></tr>")
    parts.append("".join(rows) + "</tbody></table>")
    if systems.baseline is None:
        parts.append('<p class="empty">No baseline was compared, so there are no paired differences '
                     "to set side by side.</p>")
        return "\n".join(parts)
    table = comparison_table(systems)
    if table.empty:
        parts.append('<p class="empty">No paired differences were stored.</p>')
        return "\n".join(parts)
    head = "".join(f"<th>{esc(e)}</th>" for e in systems.economies)
    out = [f'<table class="headline systems"><thead><tr><th>metric</th><th>arrangement</th>{head}'
           "<th>across economies</th></tr></thead><tbody>"]
    for m in METRICS:
        sub_m = table[table["metric"] == m]
        if sub_m.empty:
            continue
        unit = metric_unit(m)
        for a in dict.fromkeys(sub_m["arrangement"]):
            sub = sub_m[sub_m["arrangement"] == a].set_index("economy")
            cells = "".join(_cell(*(sub.loc[e, ["diff_mean", "diff_ci_low", "diff_ci_high"]]
                                    if e in sub.index else (math.nan,) * 3), unit)
                            for e in systems.economies)
            out.append(f"<tr><td>{esc(metric_label(m))}</td><td>{esc(systems.label(a))}</td>{cells}"
                       f"<td>{esc(agreement(sub.reset_index()))}</td></tr>")
    out.append("</tbody></table>")
    n = int(table["n"].max())
    parts.append("\n".join(out))
    parts.append(f'<p class="ci">Each cell: Δ, the mean paired difference from '
                 f"{esc(systems.label(systems.baseline))} in that economy over {n} replicates, with "
                 "its 95% t-interval (bold when it excludes zero). Shares are in percentage points.</p>")
    parts.append(render(figure(systems, table)))
    return "\n".join(p for p in parts if p)
