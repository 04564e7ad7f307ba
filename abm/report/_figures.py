"""Figures of the report. Each builder returns `Figure` records (slug, title, caption, plotly
figure); every plotly figure goes through `abm.style.apply_style`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from abm import netdraw
from abm.definitions import PARTIES
from abm.report._data import ReportData, quantile_bands, sweep_tornado
from abm.stats import mean_ci
from abm.style import (
    GP_STATUS_COLOURS,
    GP_STATUS_LABELS,
    METRIC_GROUPS,
    METRIC_INFO,
    PARTY_LABELS,
    PAYMENT_ORDER,
    apply_style,
    arrangement_colour,
    arrangement_label,
    format_value,
    hex_to_rgba,
    metric_label,
    metric_unit,
    party_colour,
    payment_colour,
    payment_label,
)

GP_STATUSES = ("outside", "partial", "full", "returned")
PLOT_CONFIG = {"displaylogo": False, "responsive": True,
               "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


@dataclass
class Figure:
    slug: str
    title: str
    caption: str
    fig: go.Figure


def _num(x: Any, default: float = math.nan) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v


def _grid(titles: list[str], cols: int, panel_h: float, *, gap: float = 95,
          hspace: float = 0.12, extra: float = 150, shared_yaxes: bool = False):
    """Subplot grid sized in pixels: (figure, rows, height). `gap` is the vertical room in
    pixels between panels for x-axis titles and the next subplot title, so they never overlap
    however many rows there are."""
    rows = max(1, math.ceil(len(titles) / cols))
    plot_h = rows * panel_h + (rows - 1) * gap
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=hspace,
                        vertical_spacing=(gap / plot_h) if rows > 1 else 0.0,
                        shared_yaxes=shared_yaxes)
    return fig, rows, int(plot_h + extra)


def _metrics_of_group(group: str, present: set[str]) -> list[str]:
    return [m for m, info in METRIC_INFO.items() if info[2] == group and m in present]


def _axis_title(metric: str) -> str:
    unit = metric_unit(metric)
    return {"share": "share", "gbp": "£", "count": "count", "rate": "per 1,000",
            "index": "index", "ratio": "ratio"}.get(unit, "")


# ------------------------------------------------------------------------------ summary: forest

FOREST_METRICS = ("integrated_handoff_share", "orgs_per_patient", "continuity_of_care",
                  "transaction_cost_share", "provider_failures", "emergency_admissions_per_1000",
                  "cost_per_capita", "health_index")


def forest_figure(data: ReportData, table: pd.DataFrame) -> Figure | None:
    """Paired differences from the run's baseline with 95% intervals, one panel per headline
    metric."""
    base = data.baseline
    others = [a for a in data.arrangements if a != base]
    if base is None or not others or table.empty:
        return None
    metrics = [m for m in FOREST_METRICS
               if not table[(table["metric"] == m) & table["diff_mean"].notna()
                            & table["arrangement"].isin(others)].empty]
    if not metrics:
        return None
    cols = 2
    labels = [data.label(a) for a in others]
    base_label = data.label(base)
    fig, rows, height = _grid([metric_label(m) for m in metrics], cols, 30 * len(others) + 30,
                              hspace=0.22, extra=110)
    for i, m in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        unit = metric_unit(m)
        sub = table[table["metric"] == m].set_index("arrangement")
        for a, lab in zip(others, labels):
            if a not in sub.index:
                continue
            row = sub.loc[a]
            dm, lo, hi = _num(row["diff_mean"]), _num(row["diff_ci_low"]), _num(row["diff_ci_high"])
            scale = 100.0 if unit == "share" else 1.0
            err_plus = (hi - dm) * scale if math.isfinite(hi) else None
            err_minus = (dm - lo) * scale if math.isfinite(lo) else None
            fig.add_trace(go.Scatter(
                x=[dm * scale], y=[lab], mode="markers",
                marker=dict(color=arrangement_colour(a), size=10, symbol="diamond"),
                error_x=dict(type="data", array=[err_plus], arrayminus=[err_minus],
                             color=arrangement_colour(a), thickness=2, width=4),
                name=lab, legendgroup=a, showlegend=False,
                hovertemplate=(f"{lab}<br>{metric_label(m)}<br>difference from {base_label}: "
                               f"{format_value(dm, unit, signed=True)}<br>95% CI "
                               f"{format_value(lo, unit, signed=True)} to "
                               f"{format_value(hi, unit, signed=True)}<extra></extra>")),
                row=r, col=c)
        fig.add_vline(x=0, line=dict(color="#555555", width=1, dash="dot"), row=r, col=c)
        fig.update_xaxes(title_text="percentage points" if unit == "share" else _axis_title(m),
                         row=r, col=c)
        fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], row=r, col=c)
    title = f"Paired differences from {base_label} (95% CI)"
    apply_style(fig, title=title, height=height, legend=False)
    return Figure("summary-differences", title,
                  f"Mean difference from the baseline arrangement ({base_label}) in the "
                  "final-year value, "
                  "paired by replicate (common random numbers), with its 95% confidence "
                  "interval. Shares are in percentage points. An interval that excludes the "
                  "dotted zero line marks a difference unlikely to be noise.", fig)


# ----------------------------------------------------------------------------- set-up: payments

def payment_mix_figure(data: ReportData) -> Figure | None:
    """Share of contract value by payment kind, per arrangement (from the networks)."""
    arrs = [a for a in data.arrangements if a in data.networks]
    if not arrs:
        return None
    totals: dict[str, dict[str, float]] = {}
    for a in arrs:
        t: dict[str, float] = {}
        for _, _, e in data.networks[a].edges(data=True):
            if e.get("kind") == "allocation":
                continue
            p = str(e.get("payment", "none"))
            t[p] = t.get(p, 0.0) + max(_num(e.get("value"), 0.0), 0.0)
        totals[a] = t
    kinds = [p for p in PAYMENT_ORDER if any(p in t for t in totals.values())]
    kinds += sorted({p for t in totals.values() for p in t} - set(kinds))
    if not kinds:
        return None
    fig = go.Figure()
    labels = [data.label(a) for a in arrs]
    for p in kinds:
        shares, values = [], []
        for a in arrs:
            tot = sum(totals[a].values())
            shares.append(100 * totals[a].get(p, 0.0) / tot if tot > 0 else 0.0)
            values.append(format_value(totals[a].get(p, 0.0), "gbp"))
        fig.add_trace(go.Bar(x=labels, y=shares, name=payment_label(p),
                             marker_color=payment_colour(p), customdata=values,
                             hovertemplate="%{x}<br>" + payment_label(p)
                             + ": %{y:.1f}% of contract value (%{customdata} a year)<extra></extra>"))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="% of contract value", range=[0, 100])
    title = "Contract value by payment kind"
    apply_style(fig, title=title, height=420)
    return Figure("setup-payments", title,
                  "Share of the annual value of contracts (allocations excluded) paid by each "
                  "payment mechanism in each arrangement's initial contract network.", fig)


# ------------------------------------------------------------------------------------ networks
# Layout, labels and styles are abm.netdraw's, shared with the browser app.

def network_layout(g: nx.MultiDiGraph) -> dict[Any, tuple[float, float]]:
    """Deterministic layered layout (abm.netdraw.layout): money flows down (funder,
    commissioners, lead, providers, subcontractors, practices)."""
    return netdraw.layout(g)


def network_figure(arrangement: str, g: nx.MultiDiGraph, label: str | None = None) -> Figure:
    """Contract network diagram (abm.netdraw): nodes by organisation kind (colour + symbol)
    sized by budget, edges by contract kind (colour + dash), hover with value, payment, term
    and status."""
    name = label or arrangement_label(arrangement)
    probe = netdraw.Drawing(y_range=netdraw.y_range(netdraw.layout(g)))
    plot_h = probe.plot_height(120)
    drawing = netdraw.draw(g, plot_px=(700.0, float(plot_h)))
    fig = go.Figure(data=drawing.traces)
    title = f"Contract network: {name}"
    n_nodes, n_edges = g.number_of_nodes(), g.number_of_edges()
    apply_style(fig, title=title, height=int(plot_h + 130))
    fig.update_layout(**drawing.axes(), annotations=drawing.annotations,
                      legend=dict(itemsizing="constant", orientation="v", y=1, x=1.01,
                                  yanchor="top", xanchor="left"),
                      margin=dict(l=20, r=230, t=60, b=20), hovermode="closest")
    return Figure(f"network-{arrangement}", title,
                  f"Initial contract network of the {name} arrangement "
                  f"({n_nodes} organisations, {n_edges} contracts). Money flows downwards: funder, "
                  "commissioners, lead organisation, providers, subcontractors, GP practices. "
                  "Node colour and shape give the organisation kind and area its annual budget; "
                  "line colour and dash give the contract kind and line width its annual value, "
                  "and the triangle on each line points from payer to payee (hover on it for the "
                  "contract's value and payment). Click a legend entry to hide that kind.", fig)


# ----------------------------------------------------------------------------------- over time

def over_time_figure(data: ReportData, group: str) -> Figure | None:
    """Median and 10–90% band across replicates of each metric in `group`, per arrangement."""
    metrics = _metrics_of_group(group, data.metrics)
    if not metrics:
        return None
    bands = quantile_bands(data.results, metrics)
    groups = {k: g.sort_values("step") for k, g in bands.groupby(["metric", "arrangement"])}
    cols = 2 if len(metrics) > 1 else 1
    fig, rows, height = _grid([metric_label(m) for m in metrics], cols, 220)
    traces, trows, tcols = [], [], []
    for i, m in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        unit = metric_unit(m)
        scale = 100.0 if unit == "share" else 1.0
        fmt = ".1f" if unit in ("share", "rate", "count") else (",.0f" if unit == "gbp"
                                                                else ".3f")
        for a in data.arrangements:
            b = groups.get((m, a))
            if b is None or b.empty:
                continue
            colour = arrangement_colour(a)
            x = (b["step"].to_numpy() / 12.0).round(4)
            lab = data.label(a)
            q10, q90 = b["q10"].to_numpy() * scale, b["q90"].to_numpy() * scale
            # plain dicts, added in one batch: far faster than validated objects one by one
            traces += [
                dict(type="scatter", x=x, y=q90, mode="lines", line=dict(width=0, color=colour),
                     legendgroup=a, showlegend=False, hoverinfo="skip", name=lab + " 90%"),
                dict(type="scatter", x=x, y=q10, mode="lines", line=dict(width=0, color=colour),
                     fill="tonexty", fillcolor=hex_to_rgba(colour, 0.18), legendgroup=a,
                     showlegend=False, hoverinfo="skip", name=lab + " 10%"),
                dict(type="scatter", x=x, y=b["median"].to_numpy() * scale, mode="lines",
                     name=lab, legendgroup=a, showlegend=(i == 0),
                     line=dict(color=colour, width=2), customdata=np.column_stack([q10, q90]),
                     hovertemplate=(f"{lab}<br>year %{{x:.2f}}<br>median %{{y:{fmt}}}"
                                    f" (10–90%: %{{customdata[0]:{fmt}}} to "
                                    f"%{{customdata[1]:{fmt}}})<extra></extra>")),
            ]
            trows += [r] * 3
            tcols += [c] * 3
        fig.update_yaxes(title_text="%" if unit == "share" else _axis_title(m), row=r, col=c)
        if r == rows or (r == rows - 1 and i + cols >= len(metrics)):
            fig.update_xaxes(title_text="year", row=r, col=c)
    if traces:
        fig.add_traces(traces, rows=trows, cols=tcols)
    name = METRIC_GROUPS.get(group, group.capitalize())
    title = f"{name} over time"
    apply_style(fig, title=title, height=height)
    fig.update_layout(hovermode="closest")
    return Figure(f"time-{group}", title,
                  f"{name} metrics by month (in years), per arrangement: the line is the median "
                  f"across {data.n_replicates} replicates and the shaded band their 10th to 90th "
                  "percentile. Shares are shown in per cent.", fig)


# -------------------------------------------------------------------------------- risk sharing

def _f2(x: float) -> str:
    """Two decimals, never "-0.00"."""
    return f"{round(x, 2) + 0.0:.2f}"


def _share_text(m: float, lo: float, hi: float) -> str:
    if not math.isfinite(m):
        return "undefined"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"<b>{_f2(m)}</b><br>[{_f2(lo)}, {_f2(hi)}]"
    return f"<b>{_f2(m)}</b>"


#: Diverging, light at both ends so black cell text stays readable on screen and in print
#: (blue: the party gains as cost rises; orange: it bears the cost).
INCIDENCE_SCALE = [[0.0, "#3A7DB8"], [0.25, "#A9CBE8"], [0.5, "#FFFFFF"], [0.75, "#F5C97A"],
                   [1.0, "#E08A00"]]


def risk_matrix_figure(data: ReportData) -> Figure | None:
    """Who bears which risk: per arrangement a heat-map of incidence, sources × parties."""
    inc = data.risk_incidence
    if inc is None or inc.empty or "share" not in inc.columns:
        return None
    up = inc[inc["direction"].astype(str) == "up"]
    arrs = [a for a in data.arrangements if a in set(up["arrangement"])]
    if not arrs:
        return None
    from abm.risk import SOURCES, SOURCE_NAMES
    sources = [x for x in SOURCE_NAMES if x in set(up["source"])]
    parties = [p for p in PARTIES if p in set(up["party"])]
    xlab = [PARTY_LABELS.get(p, p).replace(" organisation", "") for p in parties]
    ylab = [SOURCES[x]["label"] for x in sources]
    cols = 2 if len(arrs) > 1 else 1
    fig, rows, height = _grid([data.label(a) for a in arrs], cols, 60 + 46 * len(sources),
                              gap=70, hspace=0.04, extra=170)
    for i, a in enumerate(arrs):
        sub = up[up["arrangement"] == a].set_index(["source", "party"])
        z, text, hover = [], [], []
        for x in sources:
            zr, tr, hr = [], [], []
            for p in parties:
                row = sub.loc[(x, p)] if (x, p) in sub.index else None
                m = _num(row["share"]) if row is not None else math.nan
                lo = _num(row["ci_low"]) if row is not None else math.nan
                hi = _num(row["ci_high"]) if row is not None else math.nan
                zr.append(m if math.isfinite(m) else None)
                tr.append(_share_text(m, lo, hi))
                note = str(row["note"]) if row is not None and str(row["note"]) not in (
                    "", "nan") else ""
                n = int(_num(row["n"], 0)) if row is not None else 0
                hr.append(f"{PARTY_LABELS.get(p, p)} bears "
                          + (f"{m:.2f} of the cost change" if math.isfinite(m) else "—")
                          + (f" (95% CI {lo:.2f} to {hi:.2f})" if math.isfinite(lo) else "")
                          + f", n = {n}" + (f"<br>{note}" if note else ""))
            z.append(zr); text.append(tr); hover.append(hr)
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(go.Heatmap(z=z, x=xlab, y=ylab, text=text, texttemplate="%{text}",
                                 textfont=dict(size=11, color="#111111"), customdata=hover,
                                 coloraxis="coloraxis", xgap=2, ygap=2,
                                 hovertemplate="%{y}<br>%{customdata}<extra></extra>",
                                 name=data.label(a)), row=r, col=c)
        # the rows are the same sources in every panel: label them once, on the left
        fig.update_yaxes(autorange="reversed", row=r, col=c, showgrid=False,
                         showticklabels=c == 1)
        fig.update_xaxes(side="bottom", row=r, col=c, showgrid=False, tickangle=0)
    fig.update_layout(coloraxis=dict(colorscale=INCIDENCE_SCALE, cmin=-1.0, cmax=1.0, cmid=0.0,
                                     colorbar=dict(title=dict(text="share"), len=0.5,
                                                   thickness=12)))
    title = "Who bears which risk: incidence by source"
    apply_style(fig, title=title, height=height, legend=False)
    reps = int(up["n"].max()) if up["n"].notna().any() else 0
    return Figure("risk-incidence", title,
                  "Each cell: the share of a change in system cost that a party bears, −ΔRₚ/ΔC, "
                  "when one risk source moves up (more activity, more planned care, savings not "
                  "realised, higher unit cost, a quality fall, faster population growth, faster "
                  "ageing) in paired runs (same seeds, same people as the base run); mean over "
                  f"up to {reps} replicates with its 95% t-interval in brackets. Each row sums to "
                  "1 (money is conserved). Orange: the party bears the cost; blue: it gains as "
                  "cost rises; 'undefined': the source changed no money. The down direction is "
                  "in risk_incidence.csv.", fig)


def risk_share_figure(data: ReportData, table: pd.DataFrame) -> Figure | None:
    """Grouped bars with bootstrap intervals: each party's share of the variation in cost across
    the declared uncertainties, per arrangement; nothing drawn below the interval minimum."""
    rs = table[table["metric"].astype(str).str.startswith("risk_share.")]
    if rs.empty:
        return None
    from abm.summary import MIN_BOOTSTRAP_N
    rs = rs[pd.to_numeric(rs["n"], errors="coerce").fillna(0) >= MIN_BOOTSTRAP_N]
    if rs.empty:
        return None
    arrs = [a for a in data.arrangements if a in set(rs["arrangement"])]
    labels = [data.label(a) for a in arrs]
    parties = [p for p in PARTIES if f"risk_share.{p}" in set(rs["metric"])]
    fig = go.Figure()
    for p in parties:
        sub = rs[rs["metric"] == f"risk_share.{p}"].set_index("arrangement")
        ys, plus, minus, hover = [], [], [], []
        for a in arrs:
            row = sub.loc[a] if a in sub.index else None
            m = _num(row["mean"]) if row is not None else math.nan
            lo = _num(row.get("ci_low")) if row is not None else math.nan
            hi = _num(row.get("ci_high")) if row is not None else math.nan
            ys.append(m if math.isfinite(m) else None)
            plus.append(hi - m if math.isfinite(hi) and math.isfinite(m) else 0)
            minus.append(m - lo if math.isfinite(lo) and math.isfinite(m) else 0)
            hover.append(f"{PARTY_LABELS.get(p, p)}: {m:.2f}"
                         + (f" (95% CI {lo:.2f} to {hi:.2f})" if math.isfinite(lo) else ""))
        fig.add_trace(go.Bar(x=labels, y=ys, name=PARTY_LABELS.get(p, p),
                             marker_color=party_colour(p), customdata=hover,
                             error_y=dict(type="data", array=plus, arrayminus=minus,
                                          color="#333333", thickness=1.2),
                             hovertemplate="%{x}<br>%{customdata}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.add_hline(y=0, line=dict(color="#555555", width=1))
    fig.update_yaxes(title_text="−Cov(Rₚ, C)/Var(C)")
    title = "Share of variation across the declared uncertainties"
    apply_style(fig, title=title, height=440)
    return Figure("risk-shares", title,
                  "Each party's share of the variation in total cost across all runs of an "
                  "arrangement (every sweep point and replicate), −Cov(Rₚ, C)/Var(C), with "
                  "bootstrap 95% intervals; shares sum to 1 and a negative share means the party "
                  "gains when costs rise. This measures who absorbs whatever varies across the "
                  "runs, mostly each replicate's own sampled population unless uncertainties are "
                  "swept; it does not say who bears a given risk (see the incidence matrix).", fig)


def surplus_figure(data: ReportData) -> Figure | None:
    """Distribution of organisations' yearly surpluses, one panel per party with its own £ scale
    (the funder's sums dwarf a practice's, so on one shared axis every other party was a flat
    line), boxes per arrangement (box stats)."""
    f = data.finance
    if f is None or f.empty or not {"party", "surplus", "arrangement"} <= set(f.columns):
        return None
    parties = [p for p in PARTIES if p in set(f["party"].astype(str))]
    parties += sorted(set(f["party"].astype(str)) - set(parties))
    boxes: dict[str, list[dict]] = {}
    for p in parties:
        fp = f[f["party"].astype(str) == p]
        for a in data.arrangements:
            v = pd.to_numeric(fp.loc[fp["arrangement"] == a, "surplus"],
                              errors="coerce").dropna().to_numpy()
            if len(v) == 0:
                continue
            qs = np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95])
            boxes.setdefault(p, []).append(dict(a=a, q=qs, mean=float(v.mean()), n=len(v)))
    parties = [p for p in parties if p in boxes]
    if not parties:
        return None
    # each panel in the unit that suits its own size: £m, £k or £
    def unit_of(p: str) -> tuple[float, str]:
        big = max(max(abs(b["q"][0]), abs(b["q"][4])) for b in boxes[p])
        return (1e6, "£m") if big >= 1e6 else (1e3, "£k") if big >= 1e3 else (1.0, "£")
    cols = 3 if len(parties) > 2 else len(parties)
    titles = [PARTY_LABELS.get(p, p) for p in parties]
    fig, rows, height = _grid(titles, cols, 230, hspace=0.08)
    shown: set[str] = set()
    for i, p in enumerate(parties):
        r, c = i // cols + 1, i % cols + 1
        div, unit = unit_of(p)
        for b in boxes[p]:
            a = b["a"]
            colour = arrangement_colour(a)
            q = b["q"] / div
            fig.add_trace(go.Box(
                x=[data.label(a)], q1=[q[1]], median=[q[2]], q3=[q[3]], lowerfence=[q[0]],
                upperfence=[q[4]], mean=[b["mean"] / div], name=data.label(a), legendgroup=a,
                showlegend=a not in shown, marker_color=colour,
                fillcolor=hex_to_rgba(colour, 0.35), line=dict(color=colour), boxpoints=False),
                row=r, col=c)
            shown.add(a)
        fig.add_hline(y=0, line=dict(color="#555555", width=1, dash="dot"), row=r, col=c)
        fig.update_yaxes(title_text=f"yearly surplus, {unit}", row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
    for i in range(len(parties), rows * cols):  # cells of the grid with no party: no empty axes
        fig.update_xaxes(visible=False, row=i // cols + 1, col=i % cols + 1)
        fig.update_yaxes(visible=False, row=i // cols + 1, col=i % cols + 1)
    title = "Yearly surplus by party"
    apply_style(fig, title=title, height=height)
    return Figure("risk-surplus", title,
                  "Distribution of organisations' yearly surpluses (income minus cost) over all "
                  "years and runs, one panel per party, each on its own scale (£m, £k or £ as "
                  "its size needs: the funder's sums would flatten every other party on a shared "
                  "axis); within a panel one box per arrangement, spanning the 25th to 75th "
                  "percentile with the median as a line and the mean dashed; whiskers reach the "
                  "5th and 95th percentiles.", fig)


def failures_figure(data: ReportData, table: pd.DataFrame) -> Figure | None:
    """Provider failures by the end of the run, and the share of organisation-years in deficit."""
    have_fail = not table[table["metric"] == "provider_failures"].empty
    f = data.finance
    have_def = f is not None and not f.empty and {"surplus", "party"} <= set(f.columns)
    if not have_fail and not have_def:
        return None
    panels = (["Provider failures by the end of the run"] if have_fail else []) + (
        ["Share of organisation-years in deficit"] if have_def else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, horizontal_spacing=0.12)
    labels = {a: data.label(a) for a in data.arrangements}
    col = 1
    if have_fail:
        sub = table[table["metric"] == "provider_failures"].set_index("arrangement")
        arrs = [a for a in data.arrangements if a in sub.index]
        means = [_num(sub.loc[a, "mean"]) for a in arrs]
        plus = [max(_num(sub.loc[a, "ci_high"]) - m, 0) if math.isfinite(
            _num(sub.loc[a, "ci_high"])) else 0 for a, m in zip(arrs, means)]
        # failures cannot be negative: the interval's lower arm stops at zero
        minus = [min(max(m - _num(sub.loc[a, "ci_low"]), 0), m) if math.isfinite(
            _num(sub.loc[a, "ci_low"])) else 0 for a, m in zip(arrs, means)]
        fig.add_trace(go.Bar(x=[labels[a] for a in arrs], y=means,
                             marker_color=[arrangement_colour(a) for a in arrs],
                             error_y=dict(type="data", array=plus, arrayminus=minus,
                                          color="#333333"), name="provider failures",
                             hovertemplate="%{x}<br>mean failures %{y:.2f}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(title_text="failures (mean, 95% CI)", rangemode="tozero", row=1, col=col)
        col += 1
    if have_def:
        ff = f[~f["party"].astype(str).isin(["funder", "commissioner"])].copy()
        ff["deficit"] = pd.to_numeric(ff["surplus"], errors="coerce") < 0
        arrs, means, plus, minus = [], [], [], []
        for a in data.arrangements:
            fa = ff[ff["arrangement"] == a]
            if fa.empty:
                continue
            per_rep = fa.groupby("replicate")["deficit"].mean() * 100 if "replicate" in fa \
                else pd.Series([fa["deficit"].mean() * 100])
            m, lo, hi, _ = mean_ci(per_rep)
            arrs.append(a); means.append(m)
            plus.append(hi - m if math.isfinite(hi) else 0)
            minus.append(min(m - lo, m) if math.isfinite(lo) else 0)
        fig.add_trace(go.Bar(x=[labels[a] for a in arrs], y=means,
                             marker_color=[arrangement_colour(a) for a in arrs],
                             error_y=dict(type="data", array=plus, arrayminus=minus,
                                          color="#333333"), name="deficit share",
                             hovertemplate="%{x}<br>%{y:.1f}% of organisation-years in deficit"
                                           "<extra></extra>"), row=1, col=col)
        fig.update_yaxes(title_text="% of organisation-years", rangemode="tozero", row=1, col=col)
    title = "Provider failures and deficits"
    apply_style(fig, title=title, height=420, legend=False)
    return Figure("risk-failures", title,
                  "Left: providers that failed by the end of the run (mean over replicates, "
                  "95% CI). Right: share of provider, lead and GP practice organisation-years "
                  "that ended in deficit (mean of replicates, 95% CI).", fig)


# -------------------------------------------------------------------------------- GP practices

def gp_figure(data: ReportData) -> Figure | None:
    """GP practices outside / partial / full / returned over time, one panel per arrangement."""
    present = data.metrics
    metrics = [f"gp_{s}" for s in GP_STATUSES if f"gp_{s}" in present]
    fallback = False
    if not metrics and "gp_practices_integrated" in present:
        metrics, fallback = ["gp_practices_integrated"], True
    if not metrics:
        return None
    bands = quantile_bands(data.results, metrics)
    arrs = [a for a in data.arrangements if a in set(bands["arrangement"])]
    cols = min(3, len(arrs))
    rows = math.ceil(len(arrs) / cols)
    fig, rows, height = _grid([data.label(a) for a in arrs], cols, 220, hspace=0.06,
                              shared_yaxes=True)
    for i, a in enumerate(arrs):
        r, c = i // cols + 1, i % cols + 1
        for m in metrics:
            status = m[3:] if not fallback else "full"
            colour = GP_STATUS_COLOURS.get(status, "#777777") if not fallback \
                else arrangement_colour(a)
            name = GP_STATUS_LABELS.get(status, status) if not fallback \
                else "GP practices integrated"
            b = bands[(bands["metric"] == m) & (bands["arrangement"] == a)].sort_values("step")
            if b.empty:
                continue
            x = (b["step"].to_numpy() / 12.0).round(4)
            fig.add_trace(go.Scatter(x=x, y=b["q90"], mode="lines", line=dict(width=0),
                                     legendgroup=m, showlegend=False, hoverinfo="skip",
                                     name=name + " 90%"), row=r, col=c)
            fig.add_trace(go.Scatter(x=x, y=b["q10"], mode="lines", line=dict(width=0),
                                     fill="tonexty", fillcolor=hex_to_rgba(colour, 0.18),
                                     legendgroup=m, showlegend=False, hoverinfo="skip",
                                     name=name + " 10%"), row=r, col=c)
            fig.add_trace(go.Scatter(
                x=x, y=b["median"], mode="lines", name=name, legendgroup=m,
                showlegend=(i == 0), line=dict(color=colour, width=2),
                hovertemplate=f"{data.label(a)}<br>{name}<br>year %{{x:.2f}}: "
                              "median %{y:.1f} practices<extra></extra>"), row=r, col=c)
        if c == 1:
            fig.update_yaxes(title_text="practices", row=r, col=c)
        fig.update_xaxes(title_text="year", row=r, col=c)
    title = "GP practice participation over time"
    apply_style(fig, title=title, height=height)
    fig.update_layout(hovermode="closest")
    missing = [s for s in GP_STATUSES if f"gp_{s}" not in present]
    note = ("" if not missing or fallback else
            f" Not recorded in these results: {', '.join(missing)}.")
    if fallback:
        note = " Only the number of integrated practices (partial or full) was recorded."
    return Figure("gp-participation", title,
                  "Number of GP practices outside any integration agreement, partially "
                  "integrated, fully integrated, and returned to their GMS/PMS contract after "
                  "integrating, by year: median across replicates with a 10–90% band." + note,
                  fig)


# --------------------------------------------------------------------------------- sensitivity

def _sens_metrics(df: pd.DataFrame, limit: int = 6) -> list[str]:
    ms = [str(m) for m in df["metric"].dropna().unique()]
    order = {m: i for i, m in enumerate(METRIC_INFO)}
    return sorted(ms, key=lambda m: (order.get(m, 999), m))[:limit]


SENS_METRICS = ("integrated_handoff_share", "continuity_of_care", "provider_failures",
                "emergency_admissions_per_1000", "cost_per_capita", "health_index")


def tornado_figure(data: ReportData) -> Figure | None:
    """Tornado: each swept parameter's low and high effect on headline metrics."""
    t = sweep_tornado(data, list(SENS_METRICS))
    if t.empty:
        return None
    metrics = [m for m in SENS_METRICS if m in set(t["metric"])] + sorted(
        set(t["metric"]) - set(SENS_METRICS))
    metrics = metrics[:6]
    arrs = [a for a in data.arrangements if a in set(t["arrangement"].astype(str))] or ["all"]
    by_arr = arrs != ["all"]
    cols = 2 if len(metrics) > 1 else 1
    n_par = t["parameter"].nunique()
    fig, rows, height = _grid([metric_label(m) for m in metrics], cols,
                              30 + (12 * len(arrs) + 10) * n_par, hspace=0.25,
                              extra=150 + (50 if by_arr else 0))
    for i, m in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        unit = metric_unit(m)
        scale = 100.0 if unit == "share" else 1.0
        sm = t[t["metric"] == m].copy()
        sm["swing"] = (sm["high"] - sm["low"]).abs()
        params = sm.groupby("parameter")["swing"].max().sort_values().index.tolist()
        for a in arrs:
            sg = (sm[sm["arrangement"].astype(str) == a] if by_arr else sm)
            sg = sg.groupby("parameter")[["low", "high", "base"]].mean().reindex(params)
            lo = (sg["low"] - sg["base"]).to_numpy() * scale
            hi = (sg["high"] - sg["base"]).to_numpy() * scale
            colour = arrangement_colour(a) if by_arr else "#0072B2"
            name = data.label(a) if by_arr else "effect"
            custom = [[format_value(x, unit) for x in row] for row in
                      sg[["low", "high", "base"]].to_numpy()]
            fig.add_trace(go.Bar(
                y=params, x=hi - lo, base=lo, orientation="h", name=name, legendgroup=a,
                showlegend=by_arr and i == 0, marker_color=colour, customdata=custom,
                hovertemplate=(f"{name}<br>%{{y}}<br>low end: %{{customdata[0]}}, high end: "
                               "%{customdata[1]} (mean %{customdata[2]})<extra></extra>")),
                row=r, col=c)
        fig.add_vline(x=0, line=dict(color="#555555", width=1, dash="dot"), row=r, col=c)
        fig.update_xaxes(title_text="change, percentage points" if unit == "share"
                         else f"change ({_axis_title(m)})", row=r, col=c)
    fig.update_layout(barmode="group")
    title = "Tornado: effect of each uncertain parameter"
    apply_style(fig, title=title, height=height, legend=by_arr)
    return Figure("sensitivity-tornado", title,
                  "Each bar runs from the metric's final-year mean when the parameter is in the "
                  "lowest third of its swept range to its mean when in the highest third, "
                  "relative to the mean over all sweep points (dotted line); the other "
                  "parameters vary as the design set them. Parameters are sorted by the width "
                  "of their swing.", fig)


def sobol_figure(data: ReportData) -> Figure | None:
    """Sobol first-order (S1) and total (ST) indices with confidence intervals per metric."""
    s = data.sensitivity
    if s is None or not ({"parameter", "metric"} <= set(s.columns)) or not (
            {"S1", "ST"} & set(s.columns)):
        return None
    s = s.copy()
    for c in ("S1", "S1_conf", "ST", "ST_conf"):
        s[c] = pd.to_numeric(s[c], errors="coerce") if c in s.columns else np.nan
    s = s[s["S1"].notna() | s["ST"].notna()]
    if s.empty:
        return None
    present = set(s["metric"].astype(str))
    metrics = ([m for m in SENS_METRICS if m in present] or _sens_metrics(s))[:6]
    by_arr = bool("arrangement" in s.columns and s["arrangement"].notna().any())
    cols = 2 if len(metrics) > 1 else 1
    n_par = s["parameter"].nunique()
    n_grp = s["arrangement"].nunique() if by_arr else 1
    fig, rows, height = _grid([metric_label(m) for m in metrics], cols,
                              30 + (12 * n_grp + 10) * n_par, hspace=0.25,
                              extra=150 + (50 if by_arr else 0))
    shown: set[str] = set()
    for i, m in enumerate(metrics):
        r, c = i // cols + 1, i % cols + 1
        sm = s[s["metric"] == m]
        params = sm.groupby("parameter")["ST"].max().fillna(0).sort_values().index.tolist()
        groups = ([(a, sm[sm["arrangement"].astype(str) == a]) for a in data.arrangements
                   if a in set(sm["arrangement"].astype(str))] if by_arr else [("all", sm)])
        for a, sg in groups:
            sg = sg.groupby("parameter")[["S1", "S1_conf", "ST", "ST_conf"]].mean().reindex(
                params)
            colour = arrangement_colour(a) if by_arr else "#0072B2"
            lab = data.label(a) if by_arr else "Sobol index"
            # Same offsetgroup: the solid S1 bar is drawn over the pale ST bar of its group.
            fig.add_trace(go.Bar(
                y=params, x=sg["ST"], orientation="h", name=lab, legendgroup=a, offsetgroup=a,
                showlegend=False, marker_color=hex_to_rgba(colour, 0.35),
                marker_line=dict(color=colour, width=1),
                error_x=dict(type="data", array=sg["ST_conf"].fillna(0), color=colour,
                             thickness=1),
                hovertemplate=f"{lab}<br>%{{y}}: total ST %{{x:.3f}}<extra></extra>"),
                row=r, col=c)
            fig.add_trace(go.Bar(
                y=params, x=sg["S1"], orientation="h", name=lab, legendgroup=a, offsetgroup=a,
                showlegend=a not in shown and by_arr, marker_color=colour,
                error_x=dict(type="data", array=sg["S1_conf"].fillna(0), color="#333333",
                             thickness=1),
                hovertemplate=f"{lab}<br>%{{y}}: first-order S1 %{{x:.3f}}<extra></extra>"),
                row=r, col=c)
            shown.add(a)
        fig.update_xaxes(title_text="Sobol index", rangemode="tozero", row=r, col=c)
    fig.update_layout(barmode="group")
    title = "Sobol sensitivity indices"
    apply_style(fig, title=title, height=height, legend=by_arr)
    return Figure("sensitivity-sobol", title,
                  "Share of the variance of each metric's final-year value explained by each "
                  "uncertain parameter alone (first-order index S1, solid bar) and including "
                  "its interactions with the others (total index ST, pale bar behind it), with "
                  "95% bootstrap confidence intervals (SALib).", fig)
