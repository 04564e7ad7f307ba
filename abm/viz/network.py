"""The live contract network of the browser page, drawn by abm.netdraw (as the report's are).

Positions are computed once per model and kept: organisations that appear later (successors of
failed providers) are placed beside the organisation they replace, so nothing jumps between
months. What the model adds to the drawing: each organisation's expected income as its size,
its failed flag and GP participation, and money shown at full population scale. The page is
narrow, so only the lead is named on the diagram; hover names every organisation.
"""
from __future__ import annotations

import math
import weakref

from .. import netdraw
from .figures import base_layout, figure

PLOT_PX = (820.0, 570.0)   # the page's network cell, less legend and margins (arrow angles)

# Positions per model, kept outside the model (nothing here sets attributes on it).
_LAYOUTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def compute_layout(graph) -> dict:
    """Deterministic positions {node: (x, y)} from each node's kind and role (no randomness)."""
    return netdraw.layout(graph)


def layout_for(model) -> dict:
    """The model's layout, computed on first use and extended (never recomputed) as nodes appear."""
    graph = model.contracts
    try:
        pos = _LAYOUTS.get(model)
    except TypeError:  # pragma: no cover - an unhashable model: no cache
        pos = None
    if pos is None:
        pos = compute_layout(graph)
    if any(n not in pos for n in graph.nodes):
        orgs = getattr(model, "org_by_id", {}) or {}
        predecessors = {n: getattr(orgs.get(n), "successor_of", None) for n in graph.nodes
                        if n not in pos}
        pos = netdraw.extend_layout(pos, graph, predecessors)
    try:
        _LAYOUTS[model] = pos
    except TypeError:  # pragma: no cover
        pass
    return pos


def _sizes(model) -> dict:
    """Yearly £ behind each organisation: its expected income (else the node's budget), or what
    it pays out in active contracts if that is more (the funder, commissioners)."""
    base = netdraw.default_sizes(model.contracts)
    orgs = getattr(model, "org_by_id", {}) or {}
    out = {}
    for n, value in base.items():
        income = float(getattr(orgs.get(n), "expected_income", 0.0) or 0.0)
        v = max(income, value)
        out[n] = v if math.isfinite(v) else 0.0
    return out


def _failed(model) -> set:
    orgs = getattr(model, "org_by_id", {}) or {}
    return {n for n, d in model.contracts.nodes(data=True)
            if getattr(orgs.get(n), "failed", False) or d.get("failed") is True}


def _notes(model) -> dict:
    orgs = getattr(model, "org_by_id", {}) or {}
    return {n: f"participation: {org.mode}" for n, org in orgs.items()
            if getattr(org, "mode", None)}


def network_figure(model, height: int = 620):
    """The contract network as a validated plotly Figure (see :func:`network_dict`)."""
    return figure(network_dict(model, height))


def network_dict(model, height: int = 620) -> dict:
    """The contract network now, as a plotly figure dict: organisations coloured by kind and sized by
    budget; contracts styled by kind; failed organisations and ended contracts marked; hover gives
    value and payment kind (in full-population £)."""
    g = model.contracts
    leads = [n for n, d in g.nodes(data=True) if d.get("role") == "lead"]
    drawing = netdraw.draw(g, layout_for(model), sizes=_sizes(model), failed=_failed(model),
                           notes=_notes(model), money_scale=float(getattr(model, "scale", 1.0)),
                           node_text=leads, plot_px=PLOT_PX)
    n_failed = drawing.n_failed
    layout = base_layout(height)
    layout.update(
        title=dict(text=f"Contract network, month {getattr(model, 'month', 0)}: {drawing.n_active} "
                        f"contracts in force, {n_failed} failed organisation{'s' if n_failed != 1 else ''}",
                   x=0.01, xanchor="left", font=dict(size=14)),
        margin=dict(l=10, r=10, t=40, b=10), showlegend=True,
        legend=dict(orientation="v", x=1.01, y=1, xanchor="left", yanchor="top", font=dict(size=10),
                    itemsizing="constant", tracegroupgap=2),
        hovermode="closest", uirevision="network", annotations=drawing.annotations,
        **drawing.axes(),
    )
    return {"data": drawing.traces, "layout": layout}


__all__ = ["compute_layout", "layout_for", "network_figure", "network_dict"]
