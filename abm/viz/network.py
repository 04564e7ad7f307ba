"""The contract network as a Plotly figure: a fixed tiered layout (money flows downwards).

Tiers, top to bottom: funder; commissioners; the lead organisation; providers; GP practices (two
staggered rows). Positions are computed once per model and kept; organisations that appear later
(successors of failed providers) are placed beside the organisation they replace, so nothing
jumps between months.
"""
from __future__ import annotations

import math
from collections import defaultdict

from .. import style
from .figures import base_layout, figure

TIER_OF_ROLE = {"funder": 4.0, "commissioner": 3.0, "lead": 2.0, "practice": 0.0}
PROVIDER_TIER = 1.0
KIND_ORDER = {k: i for i, k in enumerate(style.ORG_KIND_STYLE)}
FAILED_COLOUR = style.OKABE_ITO["vermillion"]
ENDED_COLOUR = "#B0B0B0"
PAYMENT_LABELS = {"allocation": "allocation", "tariff": "tariff (payment by activity)", "block": "block",
                  "capitation": "capitation", "wpap": "whole population annual payment", "fee": "fee",
                  "none": "no payment (risk-sharing agreement)"}


def _tier(kind: str, role: str) -> float:
    if kind == "funder":
        return 4.0
    if kind in ("commissioner", "local_authority"):
        return 3.0
    if kind == "gp_practice":
        return 0.0
    return TIER_OF_ROLE.get(role, PROVIDER_TIER)


def _spread(n: int, lo: float = 0.05, hi: float = 0.95) -> list[float]:
    if n == 1:
        return [0.5]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def compute_layout(graph) -> dict[str, tuple[float, float]]:
    """Deterministic positions {node: (x, y)} from each node's kind and role (no randomness)."""
    tiers: dict[float, list] = defaultdict(list)
    for node, d in graph.nodes(data=True):
        tiers[_tier(d.get("kind", ""), d.get("role", ""))].append(node)
    pos: dict[str, tuple[float, float]] = {}
    for tier, nodes in tiers.items():
        nodes.sort(key=lambda n: (KIND_ORDER.get(graph.nodes[n].get("kind"), 99), str(n)))
        if tier == 0.0:  # practices: two staggered rows
            xs = _spread(len(nodes), 0.02, 0.98)
            for i, (n, x) in enumerate(zip(nodes, xs)):
                pos[n] = (x, -0.35 if i % 2 else 0.0)
        else:
            lo, hi = (0.3, 0.7) if len(nodes) <= 3 else (0.05, 0.95)
            for n, x in zip(nodes, _spread(len(nodes), lo, hi)):
                pos[n] = (x, tier)
    return pos


def layout_for(model) -> dict[str, tuple[float, float]]:
    """The model's layout, computed on first use and extended (never recomputed) as nodes appear."""
    graph = model.contracts
    pos = getattr(model, "_viz_pos", None)
    if pos is None:
        pos = compute_layout(graph)
    missing = [n for n in graph.nodes if n not in pos]
    for k, n in enumerate(missing):
        org = getattr(model, "org_by_id", {}).get(n)
        before = getattr(org, "successor_of", None) if org is not None else None
        if before in pos:
            x, y = pos[before]
            pos[n] = (min(x + 0.025, 1.0), y - 0.22)
        else:
            d = graph.nodes[n]
            pos[n] = (0.5 + 0.03 * (k + 1), _tier(d.get("kind", ""), d.get("role", "")) - 0.22)
    try:
        model._viz_pos = pos
    except AttributeError:  # pragma: no cover - models that forbid new attributes
        pass
    return pos


def _money(v: float) -> str:
    return style.format_value(v, "gbp")


def _node_size_values(model) -> dict[str, float]:
    """Yearly £ behind each organisation: its budget, or (funder, commissioners) what it pays out."""
    g = model.contracts
    out_value: dict[str, float] = defaultdict(float)
    for u, _v, d in g.edges(data=True):
        if d.get("status") == "active":
            out_value[u] += float(d.get("value", 0.0))
    sizes = {}
    for n, d in g.nodes(data=True):
        org = model.org_by_id.get(n) if hasattr(model, "org_by_id") else None
        budget = float(getattr(org, "expected_income", 0.0) or d.get("budget", 0.0) or 0.0)
        size = max(budget, out_value.get(n, 0.0))
        sizes[n] = size if math.isfinite(size) else 0.0
    return sizes


def _failed(model, node, data) -> bool:
    org = model.org_by_id.get(node) if hasattr(model, "org_by_id") else None
    return bool(getattr(org, "failed", False) or data.get("failed", False))


def _curve(p0, p1, bend: float, n: int = 9):
    """Points on a quadratic curve from p0 to p1 bowed sideways by `bend` (0: straight)."""
    (x0, y0), (x1, y1) = p0, p1
    if bend == 0:
        return [x0, x1], [y0, y1], ((x0 + x1) / 2, (y0 + y1) / 2)
    dx, dy = x1 - x0, (y1 - y0) / 4.5  # y spans ~4.5 units, x ~1: bend in screen-like units
    length = math.hypot(dx, dy) or 1.0
    cx = (x0 + x1) / 2 - dy / length * bend
    cy = (y0 + y1) / 2 + dx / length * bend * 4.5
    xs, ys = [], []
    for i in range(n):
        t = i / (n - 1)
        xs.append((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1)
        ys.append((1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1)
    return xs, ys, (xs[n // 2], ys[n // 2])


def network_figure(model, height: int = 620):
    """The contract network as a validated plotly Figure (see :func:`network_dict`)."""
    return figure(network_dict(model, height))


def network_dict(model, height: int = 620) -> dict:
    """The contract network now, as a plotly figure dict: organisations coloured by kind and sized by
    budget; contracts styled by kind; failed organisations and ended contracts marked; hover gives
    value and payment kind."""
    g = model.contracts
    pos = layout_for(model)
    scale = float(getattr(model, "scale", 1.0)) or 1.0
    traces: list[dict] = []
    annotations: list[dict] = []

    # ---- contracts: one trace per (kind, live/suspended/ended) so the legend explains the styles
    seen_pairs: dict[tuple, int] = defaultdict(int)
    lines: dict[tuple[str, str], tuple[list, list]] = defaultdict(lambda: ([], []))
    mids: dict[str, tuple[list, list, list, list]] = defaultdict(lambda: ([], [], [], []))
    for u, v, key, d in sorted(g.edges(keys=True, data=True), key=lambda e: (str(e[0]), str(e[1]), str(e[2]))):
        if u not in pos or v not in pos:
            continue
        pair = (u, v) if str(u) < str(v) else (v, u)
        k = seen_pairs[pair]
        seen_pairs[pair] += 1
        bend = 0.0 if k == 0 else 0.06 * ((k + 1) // 2) * (1 if k % 2 else -1)
        xs, ys, mid = _curve(pos[u], pos[v], bend)
        status = d.get("status", "active")
        kind = d.get("kind", "?")
        group = "ended" if status == "terminated" else ("suspended" if status == "suspended" else "live")
        lx, ly = lines[(kind if group == "live" else group, group)]
        lx.extend(xs + [None])
        ly.extend(ys + [None])
        mx, my, text, cols = mids[group]
        mx.append(mid[0])
        my.append(mid[1])
        cols.append(style.contract_kind_style(kind)[0])
        end = d.get("end", -1)
        text.append(
            f"<b>{style.CONTRACT_KIND_LABELS.get(kind, kind)}</b><br>"
            f"{g.nodes[u].get('label', u)} → {g.nodes[v].get('label', v)}<br>"
            f"value {_money(float(d.get('value', 0.0)) / scale)} a year<br>"
            f"payment: {PAYMENT_LABELS.get(d.get('payment'), d.get('payment'))}<br>"
            f"status: {status}; from month {d.get('start', 0)}"
            + (f" to {end}" if isinstance(end, (int, float)) and end >= 0 else ""))
    for (kind, group), (lx, ly) in sorted(lines.items(), key=lambda kv: (kv[0][1] != "live", kv[0][0])):
        if group == "live":
            colour, dash = style.contract_kind_style(kind)
            name, width, opacity = style.CONTRACT_KIND_LABELS.get(kind, kind), 1.6, 0.75
        elif group == "suspended":
            colour, dash, name, width, opacity = ENDED_COLOUR, "dot", "Suspended contract", 1.2, 0.7
        else:
            colour, dash, name, width, opacity = FAILED_COLOUR, "dot", "Ended contract", 1.4, 0.8
        traces.append(dict(type="scatter", x=lx, y=ly, mode="lines", name=name, legendgroup="contracts",
                           legendgrouptitle=dict(text="Contracts"), opacity=opacity, hoverinfo="skip",
                           line=dict(color=colour, dash=dash, width=width)))
    for group, (mx, my, text, cols) in mids.items():
        traces.append(dict(
            type="scatter", x=mx, y=my, mode="markers", showlegend=False, hovertext=text, hoverinfo="text",
            name=f"contracts ({group})",
            marker=dict(size=7, color=cols if group == "live" else ENDED_COLOUR, opacity=0.35,
                        symbol="x" if group == "ended" else "circle")))

    # ---- organisations: one trace per kind (colour + symbol), sized by £ budget
    sizes = _node_size_values(model)
    biggest = max(sizes.values(), default=1.0) or 1.0
    by_kind: dict[str, list] = defaultdict(list)
    for n, d in g.nodes(data=True):
        if n in pos:
            by_kind[d.get("kind", "?")].append(n)
    failed_x, failed_y, failed_text = [], [], []
    for kind in sorted(by_kind, key=lambda k: KIND_ORDER.get(k, 99)):
        nodes = sorted(by_kind[kind])
        colour, symbol = style.org_kind_style(kind)
        xs, ys, sz, text, line_col = [], [], [], [], []
        for n in nodes:
            d = g.nodes[n]
            org = model.org_by_id.get(n) if hasattr(model, "org_by_id") else None
            failed = _failed(model, n, d)
            xs.append(pos[n][0])
            ys.append(pos[n][1])
            sz.append(8 + 30 * math.sqrt(max(sizes.get(n, 0.0), 0.0) / biggest))
            line_col.append(FAILED_COLOUR if failed else "white")
            role = d.get("role", "")
            if org is not None and getattr(model, "holder", None) is org:
                role = "lead"
            mode = getattr(org, "mode", None)
            text.append(
                f"<b>{d.get('label', n)}</b> ({style.ORG_KIND_LABELS.get(kind, kind)})<br>"
                f"role: {role}" + (f"; participation: {mode}" if mode else "") + "<br>"
                f"budget {_money(sizes.get(n, 0.0) / scale)} a year"
                + ("<br><b>FAILED</b>" if failed else ""))
            if failed:
                failed_x.append(pos[n][0])
                failed_y.append(pos[n][1])
                failed_text.append(text[-1])
        traces.append(dict(
            type="scatter", x=xs, y=ys, mode="markers", name=style.ORG_KIND_LABELS.get(kind, kind),
            legendgroup="orgs",
            legendgrouptitle=dict(text="Organisations"), hovertext=text, hoverinfo="text",
            marker=dict(color=colour, symbol=symbol, size=sz, line=dict(color=line_col, width=1.5),
                        opacity=0.95)))
    traces.append(dict(
        type="scatter", x=failed_x, y=failed_y, mode="markers", name="Failed organisation", legendgroup="orgs",
        hovertext=failed_text, hoverinfo="text",
        marker=dict(symbol="x-thin", size=16, color=FAILED_COLOUR, line=dict(color=FAILED_COLOUR, width=3))))

    # ---- tier labels and the lead's name
    labels = [(4.0, "Funder"), (3.0, "Commissioners"), (2.0, "Lead"), (1.0, "Providers"), (-0.17, "GP practices")]
    ys_used = {round(p[1]) for p in pos.values()}
    for y, text in labels:
        if round(y) in ys_used or y < 0:
            annotations.append(dict(x=-0.13, y=y, xref="x", yref="y", text=text, showarrow=False,
                                    xanchor="left", yanchor="middle", font=dict(size=11, color="#666")))
    holder = getattr(model, "holder", None)
    if holder is not None and holder.org_id in pos:
        x, y = pos[holder.org_id]
        annotations.append(dict(x=x, y=y, text=g.nodes[holder.org_id].get("label", holder.org_id), showarrow=False,
                                yshift=22, font=dict(size=11)))

    n_failed = len(failed_x)
    active = sum(1 for *_e, d in g.edges(data=True) if d.get("status") == "active")
    layout = base_layout(height)
    layout.update(
        title=dict(text=f"Contract network, month {getattr(model, 'month', 0)}: {active} contracts in force, "
                        f"{n_failed} failed organisation{'s' if n_failed != 1 else ''}",
                   x=0.01, xanchor="left", font=dict(size=14)),
        margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
        legend=dict(orientation="v", x=1.01, y=1, xanchor="left", yanchor="top", font=dict(size=10),
                    groupclick="toggleitem", tracegroupgap=6),
        xaxis=dict(visible=False, range=[-0.14, 1.03], fixedrange=True),
        yaxis=dict(visible=False, range=[-0.6, 4.4], fixedrange=True),
        hovermode="closest", uirevision="network", annotations=annotations,
    )
    return {"data": traces, "layout": layout}


__all__ = ["compute_layout", "layout_for", "network_figure", "network_dict"]
