"""Charts over time (one Plotly figure: metrics, reserves, GP participation) and the status text."""
from __future__ import annotations

import html
import math

from .. import style
from .figures import axis_style, base_layout, figure

# (metric, group) in reading order: four rows of four small panels
PANELS: tuple[tuple[str, str], ...] = (
    ("integrated_handoff_share", "integration"), ("population_payment_share", "integration"),
    ("prevention_spend_share", "integration"), ("gp_practices_integrated", "integration"),
    ("commissioner_contracts", "fragmentation"), ("orgs_per_patient", "fragmentation"),
    ("continuity_of_care", "fragmentation"), ("handoffs_per_1000", "fragmentation"),
    ("transaction_cost_share", "fragmentation"), ("provider_failures", "risk"),
    ("loss_gini", "risk"), ("vat_leakage", "outcomes"),
    ("emergency_admissions_per_1000", "outcomes"), ("cost_per_capita", "outcomes"),
    ("health_index", "outcomes"), ("contracts_total", "fragmentation"),
)
GROUP_COLOURS = {"integration": style.OKABE_ITO["blue"], "fragmentation": style.OKABE_ITO["orange"],
                 "risk": style.OKABE_ITO["vermillion"], "outcomes": style.OKABE_ITO["bluish_green"]}
COLS = 4
SHORT = {"integrated_handoff_share": "Integrated handoffs", "population_payment_share": "Population-based payment",
         "prevention_spend_share": "Prevention spend", "gp_practices_integrated": "Practices integrated",
         "commissioner_contracts": "Commissioner contracts", "orgs_per_patient": "Organisations per patient",
         "continuity_of_care": "Continuity of care", "handoffs_per_1000": "Handoffs per 1,000",
         "transaction_cost_share": "Transaction cost share", "provider_failures": "Failures (cumulative)",
         "loss_gini": "Gini of deficits", "vat_leakage": "VAT leakage (cumulative)",
         "emergency_admissions_per_1000": "Emergency admissions /1,000", "cost_per_capita": "Cost per head",
         "health_index": "Health index", "contracts_total": "Contracts in force"}
TICKFORMAT = {"share": ".2~%", "gbp": "~s", "index": ".4~r"}


def finite(values) -> list:
    """Floats with every NaN or infinity as None: widgets send strict JSON, which has no NaN."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(f if math.isfinite(f) else None)
    return out


def metrics_frame(model):
    """The DataCollector's model variables (one row per month, month 0 first)."""
    return model.datacollector.get_model_vars_dataframe()


def metrics_figure(model, height: int = 820):
    """The metric grid as a validated plotly Figure (see :func:`metrics_dict`)."""
    return figure(metrics_dict(model, height))


def metrics_dict(model, height: int = 820) -> dict:
    """The page's chart grid as a figure dict: small multiples of the INTERFACE metrics over time
    (coloured by group), then the reserves of the lead and the most exposed providers, and GP
    practices by participation status."""
    df = metrics_frame(model)
    rows = (len(PANELS) + COLS - 1) // COLS
    months = list(range(len(df)))
    # Month 0 is the set-up: flows and rolling windows are still zero there, so drawing it made
    # every line leap at month 1. The metric panels start at month 1; before any month is
    # simulated they show the set-up values as dots, labelled as such.
    first = 1 if len(df) > 1 else 0
    when = [f"month {k}" if k else "set-up (month 0, before any month is simulated)"
            for k in months]
    gap_x, gap_y = 0.06, 0.075
    w = (1 - gap_x * (COLS - 1)) / COLS
    weights = [1.0] * rows + [1.7]
    unit_h = (1 - gap_y * rows) / sum(weights)
    tops = [1 - sum(weights[:r]) * unit_h - r * gap_y for r in range(rows + 1)]
    layout = base_layout(height)
    traces, annotations, shown = [], [], set()

    def title(text, x0, y1):
        annotations.append(dict(text=text, x=x0, y=y1, xref="paper", yref="paper", xanchor="left",
                                yanchor="bottom", showarrow=False, font=dict(size=12)))

    for i, (metric, group) in enumerate(PANELS):
        r, c = divmod(i, COLS)
        ax = "" if i == 0 else str(i + 1)
        x0, y1 = c * (w + gap_x), tops[r]
        y = (finite(df[metric]) if metric in df else [None] * len(months))[first:]
        unit = style.metric_unit(metric)
        traces.append(dict(
            type="scatter", x=months[first:], y=y, xaxis=f"x{ax}", yaxis=f"y{ax}",
            mode="lines" if first else "markers",
            name=style.METRIC_GROUPS.get(group, group), legendgroup=group, showlegend=group not in shown,
            line=dict(color=GROUP_COLOURS[group], width=2), marker=dict(color=GROUP_COLOURS[group], size=6),
            customdata=[[when[k], style.format_value(v, unit)] for k, v in zip(months[first:], y)],
            hovertemplate=(f"{style.metric_label(metric)}<br>%{{customdata[0]}}: %{{customdata[1]}}"
                           "<extra></extra>")))
        shown.add(group)
        layout[f"xaxis{ax}"] = axis_style(domain=[x0, x0 + w], anchor=f"y{ax}", nticks=5,
                                          autorangeoptions=dict(include=[first, 12]))
        layout[f"yaxis{ax}"] = axis_style(domain=[y1 - unit_h, y1], anchor=f"x{ax}", nticks=4,
                                          tickformat=TICKFORMAT.get(unit, "~g"))
        title(SHORT.get(metric, style.metric_label(metric)), x0, y1)

    # bottom row: two wide panels, lines labelled at their ends (no legend entries)
    y1 = tops[rows]
    wide = 2 * w + gap_x
    # these two are stocks, real at the set-up too: they start at month 0, the opening position
    panels = (("Reserves, £ (full scale; month 0 = opening): the lead and the most exposed providers"
               if _lead(model) is not None else
               "Reserves, £ (full scale; month 0 = opening): the most exposed providers",
               reserve_lines(model), "gbp", "~s"),
              ("GP practices by participation (month 0 = set-up)", gp_lines(df), "count", "~g"))
    for k, (panel_title, series, unit, fmt) in enumerate(panels):
        ax = str(len(PANELS) + 1 + k)
        legend = f"legend{k + 2}"
        x0 = k * (wide + gap_x)
        bottom = y1 - weights[-1] * unit_h
        for name, ys, colour, dash in series:
            traces.append(dict(
                type="scatter", x=months[:len(ys)], y=ys, xaxis=f"x{ax}", yaxis=f"y{ax}", mode="lines",
                name=name, legend=legend, line=dict(color=colour, width=2, dash=dash),
                customdata=[[when[k] if k < len(when) else f"month {k}", style.format_value(v, unit)]
                            for k, v in enumerate(ys)],
                hovertemplate=f"{name}<br>%{{customdata[0]}}: %{{customdata[1]}}<extra></extra>"))
        layout[f"xaxis{ax}"] = axis_style(domain=[x0, x0 + wide * 0.56], anchor=f"y{ax}", nticks=8,
                                          autorangeoptions=dict(include=[0, 12]))
        layout[f"yaxis{ax}"] = axis_style(domain=[bottom, y1], anchor=f"x{ax}", nticks=5, tickformat=fmt,
                                          rangemode="tozero" if unit == "count" else "normal")
        layout[legend] = dict(x=x0 + wide * 0.58, y=y1, xanchor="left", yanchor="top", xref="paper",
                              yref="paper", font=dict(size=10), bgcolor="rgba(255,255,255,0)")
        title(panel_title, x0, y1)
    layout.update(
        title=dict(text=f"Metrics by month: {style.arrangement_label(model.arrangement)}", x=0.01,
                   xanchor="left", font=dict(size=14)),
        margin=dict(l=50, r=20, t=75, b=30), showlegend=True, annotations=annotations,
        legend=dict(orientation="h", x=1, xanchor="right", y=1.04, yanchor="bottom", font=dict(size=11)),
        uirevision="metrics", hovermode="closest",
    )
    return {"data": traces, "layout": layout}


def gp_lines(df) -> list[tuple[str, list[float], str, str]]:
    """(label, counts by month, colour, dash) per GP participation status."""
    out = []
    for status in ("outside", "partial", "full", "returned"):
        col = f"gp_{status}"
        if col in df:
            out.append((style.GP_STATUS_LABELS[status], finite(df[col]),
                        style.GP_STATUS_COLOURS[status], "solid"))
    return out


def reserve_lines(model) -> list[tuple[str, list[float], str, str]]:
    """(label, reserves by month in full-scale £, colour, dash) for the lead and the exposed providers;
    failed organisations are dashed."""
    holder = _lead(model)
    palette = [style.OKABE_ITO[k] for k in ("vermillion", "sky_blue", "reddish_purple", "orange")]
    out, k = [], 0
    for oid, ys in reserves_series(model).items():
        org = model.org_by_id[oid]
        is_lead = holder is not None and oid == holder.org_id
        colour = style.OKABE_ITO["black"] if is_lead else palette[k % len(palette)]
        k += 0 if is_lead else 1
        name = org.name if len(org.name) <= 30 else org.name[:29] + "…"
        label = f"{name}{' (lead)' if is_lead else ''}{' (failed)' if org.failed else ''}"
        out.append((label, finite(ys), colour, "dash" if org.failed else "solid"))
    return out


def _lead(model):
    """The lead organisation now, or the one that held the lead contract at the start."""
    return getattr(model, "holder", None) or getattr(model, "initial_holder", None)


def exposed_providers(model, n: int = 4) -> list:
    """Providers (not the lead, not practices) with the lowest reserves relative to their budget now."""
    holder = getattr(model, "holder", None)
    cands = [o for o in model.orgs
             if getattr(o, "side", None) == "provider" and o is not holder]

    def exposure(o):
        return (o.reserves / max(o.expected_income, 1.0), o.org_id)
    return sorted(cands, key=exposure)[:n]


def reserves_series(model) -> dict[str, list[float]]:
    """{org_id: reserves by month (full-scale £)} for the lead and the most exposed providers."""
    hist = getattr(model, "reserve_history", None)
    scale = float(model.scale) or 1.0
    lead = _lead(model)
    orgs = ([lead] if lead is not None else []) + [o for o in exposed_providers(model) if o is not lead]
    if not hist:
        return {o.org_id: [o.reserves / scale] for o in orgs}
    return {o.org_id: finite(h[o.org_id] / scale if o.org_id in h else None for h in hist) for o in orgs}


def lead_surplus(model) -> tuple[float | None, float | None]:
    """(this year so far, last full year) surplus of the lead, full-scale £; None without a lead."""
    h = getattr(model, "holder", None)
    if h is None:
        return None, None
    scale = float(model.scale) or 1.0
    ytd = float(model.ledger.year_income[h.idx] - model.ledger.year_cost[h.idx]) / scale
    last = float(h.last_surplus) / scale if model.month >= 12 else None
    return ytd, last


def status_html(model) -> str:
    """The text panel as plain HTML (no scripts; Solara's Markdown needs KaTeX, absent offline):
    month, arrangement, the lead's surplus, failures so far, the inputs, and that the run is scaled."""
    e = html.escape
    month = int(getattr(model, "month", 0))
    arr = style.arrangement_label(model.arrangement)
    holder = getattr(model, "holder", None)
    ytd, last = lead_surplus(model)
    gbp = lambda v: e(style.format_value(v, "gbp", signed=True))  # noqa: E731
    when = (f"year {(month - 1) // 12 + 1}, month {(month - 1) % 12 + 1} done" if month
            else "start: no months simulated yet")
    out = [f'<h3 class="abm-month">Month {month}</h3>',
           f"<p>{when}<br><b>{e(arr)}</b> (<code>{e(model.arrangement)}</code>)</p>"]
    if holder is not None:
        out.append(f"<p><b>Lead:</b> {e(holder.name)}<br>"
                   f"Lead's surplus this year so far: <b class=\"abm-surplus\">{gbp(ytd)}</b>"
                   + (f"<br>Lead's surplus last year: {gbp(last)}" if last is not None else "")
                   + f"<br>Lead's reserves: {e(style.format_value(holder.reserves / model.scale, 'gbp'))}</p>")
    elif getattr(model, "initial_holder", None) is not None:
        lead0 = model.initial_holder
        out.append(f"<p><b>Lead:</b> none now; {e(lead0.name)} held the contract"
                   + (" and failed" if lead0.failed else "") + "</p>")
    else:
        out.append("<p><b>Lead:</b> none (no single organisation holds the population budget)</p>")
    events = getattr(model, "events", [])
    failures = [ev for ev in events if "failure" in str(ev.get("event", ""))]
    out.append(f'<p><b class="abm-failures">Failures so far: {int(getattr(model, "failures", len(failures)))}</b>')
    if failures:
        items = []
        for ev in failures[-5:]:
            org = model.org_by_id.get(ev.get("org"))
            items.append(f"<li>month {ev['month']}: {e(org.name if org else str(ev.get('org')))}, "
                         f"{e(str(ev['event']))}</li>")
        out.append(f'</p><ul style="margin:0 0 8px 0">{"".join(items)}</ul>')
    else:
        out.append("</p>")
    other = [ev for ev in events if "failure" not in str(ev.get("event", ""))]
    if other:
        ev = other[-1]
        out.append(f"<p>Other events: {len(other)} (latest: month {ev['month']}, {e(str(ev['event']))}, "
                   f"{e(str(ev.get('org')))})</p>")
    inputs = getattr(model, "inputs", None)
    facts = []
    integrated = getattr(model, "practices_integrated_at_start", None)
    if integrated is not None:
        facts.append(f"Practices integrated at the start: {integrated} of {len(model.practices)}")
    if inputs:
        years = inputs["contract_years"]
        facts.append(f"Prevention budget share {float(inputs['prevention_budget_share']):.1%}; "
                     f"practices' autonomy {float(inputs['autonomy_mean']):.2f}; "
                     f"lead contract {e(str(years))}{' years' if str(years).isdigit() else ''}; "
                     f"seed {inputs['rng']}")
    shocks = getattr(model, "shocks", [])
    facts.append("Shock: " + (f"{s['kind'].replace('_', ' ')} {s['size']:+.0%} from month {s['month']}"
                              if (s := (shocks[0] if shocks else None)) else "none"))
    out.append("<p>" + "<br>".join(facts) + "</p>")
    pop = getattr(getattr(model, "pop", None), "n", None)
    out.append(f'<p class="abm-scale"><i>Scaled run: {model.scale:.0%} sample of the population'
               + (f" ({pop:,} people)" if pop else "") + "; money is shown at full population scale.</i></p>")
    return "\n".join(out)


__all__ = ["PANELS", "metrics_figure", "metrics_dict", "reserve_lines", "gp_lines", "reserves_series",
           "exposed_providers", "lead_surplus", "status_html"]
