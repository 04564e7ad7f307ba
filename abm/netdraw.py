"""Drawing a contract network: one layered layout, one set of labels and styles, Plotly traces.

Shared by the report (abm.report's network figures, from the stored month-0 networks) and the
browser app (abm.viz.network, the live network each month), so a diagram means the same in both.

Pure: it reads a `networkx.MultiDiGraph` whose nodes carry `kind`, `role`, `label`, `budget`,
`nhs_body` and `failed`, and whose edges (payer -> payee) carry `kind`, `payment`, `value`,
`start`, `end`, `status` (and optionally `services`), and returns positions and plain-dict Plotly
traces. Nothing here needs the model.

Layout: money flows downwards in layers (funder; commissioners; the lead; providers;
subcontractors; GP practices). Within a layer, organisations are sorted by kind then id and
spread across the width, wrapped into balanced rows when there are many; nothing is random, so
the same network is always drawn the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable

from abm import style

Pos = dict[Hashable, tuple[float, float]]

LAYERS: tuple[tuple[str, str], ...] = (
    ("funder", "Funder"), ("commissioner", "Commissioners"), ("lead", "Lead"),
    ("provider", "Providers"), ("subcontractor", "Subcontractors"), ("practice", "GP practices"))
LAYER_INDEX = {name: i for i, (name, _) in enumerate(LAYERS)}
KIND_ORDER = {k: i for i, k in enumerate(style.ORG_KIND_STYLE)}
MAX_PER_ROW = 16
LAYER_GAP = 1.0          # vertical distance between layers (data units)
ROW_GAP = 0.42           # between the rows of one wrapped layer
LABEL_X = -0.2           # where layer names sit, left of the organisations (x runs 0..1)
X_RANGE = (-0.22, 1.08)
FAILED_COLOUR = style.OKABE_ITO["vermillion"]
SUSPENDED_COLOUR = "#B0B0B0"
LINE_WIDTHS = (0.9, 1.8, 3.2)   # contract value below the first tercile, middle, top


# --------------------------------------------------------------------------- layout
def layer_of(kind: str, role: str) -> str:
    """The layer an organisation is drawn in, from its kind and its role in the arrangement."""
    from .kinds import ORG_KINDS
    side = ORG_KINDS[kind].side if kind in ORG_KINDS else None
    if side == "funder" or role == "funder":
        return "funder"
    if side == "commissioner" or role == "commissioner":
        return "commissioner"
    if side == "practice" or role == "practice":
        return "practice"
    if role in ("lead", "subcontractor"):
        return role
    return "provider"


def _layer(g, n) -> str:
    d = g.nodes[n]
    return layer_of(str(d.get("kind", "")), str(d.get("role", "")))


def layout(g, max_per_row: int = MAX_PER_ROW) -> Pos:
    """Deterministic positions {node: (x, y)}: x in [0, 1], y = 0 for the top layer and more
    negative further down. Independent of the order nodes were added."""
    layers: dict[int, list] = {}
    for n in g.nodes:
        layers.setdefault(LAYER_INDEX[_layer(g, n)], []).append(n)
    pos: Pos = {}
    y = 0.0
    for li in sorted(layers):
        nodes = sorted(layers[li], key=lambda n: (KIND_ORDER.get(str(g.nodes[n].get("kind")), 99),
                                                  str(g.nodes[n].get("kind", "")), str(n)))
        n_rows = math.ceil(len(nodes) / max_per_row)
        per_row = math.ceil(len(nodes) / n_rows)
        for r in range(n_rows):
            row = nodes[r * per_row:(r + 1) * per_row]
            k = len(row)
            # wide rows use the width; short ones are centred with natural spacing
            step = min(0.9 / (k - 1), 0.22) if k > 1 else 0.0
            shift = step / 2 if n_rows > 1 and r % 2 else 0.0   # stagger wrapped rows
            x0 = 0.5 - step * (k - 1) / 2 + shift - (step / 4 if n_rows > 1 else 0.0)
            for i, n in enumerate(row):
                pos[n] = (round(x0 + i * step, 6), round(y, 6))
            if r < n_rows - 1:
                y -= ROW_GAP
        y -= LAYER_GAP
    return pos


def extend_layout(pos: Pos, g, predecessors: dict[Hashable, Hashable] | None = None) -> Pos:
    """`pos` plus places for nodes of `g` it lacks (organisations created later), never moving
    the others: beside and just below their predecessor when known (a successor of a failed
    provider), else below the middle of their layer."""
    out = dict(pos)
    missing = [n for n in g.nodes if n not in out]
    predecessors = predecessors or {}
    layer_y: dict[str, float] = {}
    for n, (x, y) in pos.items():
        if n in g:
            name = _layer(g, n)
            layer_y[name] = max(layer_y.get(name, y), y)
    for k, n in enumerate(sorted(missing, key=str)):
        before = predecessors.get(n)
        if before in out:
            x, y = out[before]
            out[n] = (min(x + 0.025, 1.0), y - 0.22)
        else:
            y = layer_y.get(_layer(g, n), min((p[1] for p in out.values()), default=0.0))
            out[n] = (min(0.5 + 0.03 * (k + 1), 1.0), y - 0.22)
    return out


def layer_labels(g, pos: Pos) -> list[tuple[str, float]]:
    """(layer name, y of its first row) for every layer with an organisation in `pos`."""
    ys: dict[str, float] = {}
    for n, (_, y) in pos.items():
        if n in g:
            name = _layer(g, n)
            ys[name] = max(ys.get(name, y), y)
    return [(title, ys[name]) for name, title in LAYERS if name in ys]


def y_range(pos: Pos) -> tuple[float, float]:
    ys = [p[1] for p in pos.values()] or [0.0]
    return (min(ys) - 0.45, max(ys) + 0.4)


# --------------------------------------------------------------------------- text
def _num(x: Any, default: float = 0.0) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _truthy(x: Any) -> bool:
    return x is True or str(x).lower() in ("true", "1", "yes")


def node_label(g, n) -> str:
    return str(g.nodes[n].get("label") or n)


def _term(d: dict) -> str:
    start, end = d.get("start"), d.get("end")
    term = f"from month {int(_num(start))}" if start not in (None, "") else ""
    if end not in (None, "") and _num(end, -1) >= 0:
        term += f" to {int(_num(end))}"
    return term


def contract_hover(g, u, v, d: dict, money_scale: float = 1.0) -> str:
    """Hover text of one contract: who pays whom, kind, payment, value, services, term, status."""
    kind = str(d.get("kind", "other"))
    services = str(d.get("services") or "").replace(",", ", ")
    term = _term(d)
    return (f"<b>{node_label(g, u)} → {node_label(g, v)}</b><br>"
            f"{style.CONTRACT_KIND_LABELS.get(kind, kind)}<br>"
            f"payment: {style.payment_label(str(d.get('payment', 'none')))}<br>"
            f"value: {style.format_value(_num(d.get('value')) / money_scale, 'gbp')} a year<br>"
            + (f"services: {services}<br>" if services else "")
            + (f"term: {term}<br>" if term else "")
            + f"status: {d.get('status', 'active')}")


def organisation_hover(g, n, size_value: float, failed: bool, note: str = "",
                       money_scale: float = 1.0) -> str:
    """Hover text of one organisation: name, kind, role, budget, NHS body, contracts."""
    d = g.nodes[n]
    kind = str(d.get("kind", "other"))
    return (f"<b>{node_label(g, n)}</b> ({style.ORG_KIND_LABELS.get(kind, kind)})<br>"
            f"role: {d.get('role', '—')}<br>"
            + (f"{note}<br>" if note else "")
            + f"budget: {style.format_value(size_value / money_scale, 'gbp')} a year<br>"
            f"NHS body: {'yes' if _truthy(d.get('nhs_body')) else 'no'}<br>"
            f"contracts: {g.in_degree(n)} in, {g.out_degree(n)} out"
            + ("<br><b>FAILED</b>" if failed else ""))


# --------------------------------------------------------------------------- traces
def default_sizes(g) -> dict[Hashable, float]:
    """Yearly £ behind each organisation: its budget, or what it pays out in active contracts
    if that is more (the funder and commissioners)."""
    out_value: dict[Hashable, float] = {}
    for u, _v, d in g.edges(data=True):
        if d.get("status", "active") == "active":
            out_value[u] = out_value.get(u, 0.0) + max(_num(d.get("value")), 0.0)
    return {n: max(_num(d.get("budget")), out_value.get(n, 0.0)) for n, d in g.nodes(data=True)}


def _bezier(p0, p2, bulge: float, n: int = 13) -> tuple[list[float], list[float]]:
    """Points of a quadratic curve from p0 to p2, bowed sideways by `bulge` (× its length)."""
    (x0, y0), (x2, y2) = p0, p2
    dx, dy = x2 - x0, y2 - y0
    mx, my = (x0 + x2) / 2 - dy * bulge, (y0 + y2) / 2 + dx * bulge
    xs, ys = [], []
    for i in range(n):
        t = i / (n - 1)
        xs.append((1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t * t * x2)
        ys.append((1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t * t * y2)
    return xs, ys


@dataclass
class Drawing:
    """What :func:`draw` returns: Plotly trace dicts (contracts first, then organisations),
    annotations (layer names), axis ranges and counts for titles."""
    traces: list[dict] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    x_range: tuple[float, float] = X_RANGE
    y_range: tuple[float, float] = (-1.0, 1.0)
    n_failed: int = 0
    n_active: int = 0

    def axes(self) -> dict:
        """Hidden x and y axes over the drawing's ranges (for a layout)."""
        return dict(xaxis=dict(visible=False, showgrid=False, zeroline=False, range=list(self.x_range),
                               fixedrange=True),
                    yaxis=dict(visible=False, showgrid=False, zeroline=False, range=list(self.y_range),
                               fixedrange=True))

    def plot_height(self, px_per_unit: float = 110) -> int:
        return int(px_per_unit * (self.y_range[1] - self.y_range[0]))


def _edge_group(d: dict) -> str:
    status = d.get("status", "active")
    if status == "terminated":
        return "ended"
    if status == "suspended":
        return "suspended"
    return str(d.get("kind", "other"))


def draw(g, pos: Pos | None = None, *, sizes: dict | None = None,
         failed: Iterable[Hashable] | None = None, notes: dict[Hashable, str] | None = None,
         money_scale: float = 1.0, node_text: bool | Iterable[Hashable] = True,
         plot_px: tuple[float, float] = (700.0, 560.0)) -> Drawing:
    """The network as Plotly traces (plain dicts).

    - Contracts: a line trace per contract kind (its colour and dash from abm.style, width by
      value tercile; allocations widest) and, on top, a triangle at each contract's middle
      pointing from payer to payee that carries the hover text. Suspended and terminated
      contracts are drawn in their own grey and red dotted styles.
    - Organisations: a trace per kind (colour and marker symbol from abm.style), area growing
      with `sizes` (default :func:`default_sizes`), names beside all but GP practices (or,
      when `node_text` is a collection, beside those organisations only); failed
      ones (`failed`, default the nodes whose `failed` attribute is true) outlined in red and
      crossed in a "Failed organisation" trace (always present, empty when none failed).
    - `notes` adds a line to an organisation's hover; `money_scale` divides every £ shown (a
      scaled population shown at full size); `plot_px` is the plot area's (width, height) in
      pixels, so the triangles point the right way.
    """
    pos = layout(g) if pos is None else pos
    sizes = default_sizes(g) if sizes is None else sizes
    failed_set = ({n for n, d in g.nodes(data=True) if _truthy(d.get("failed"))}
                  if failed is None else set(failed))
    notes = notes or {}
    named = None if isinstance(node_text, bool) else set(node_text)
    money_scale = float(money_scale) or 1.0
    drawing = Drawing(y_range=y_range(pos))
    sx = plot_px[0] / (drawing.x_range[1] - drawing.x_range[0])
    sy = plot_px[1] / (drawing.y_range[1] - drawing.y_range[0])

    # ---- contracts
    edges = sorted(((u, v, k, d) for u, v, k, d in g.edges(keys=True, data=True)
                    if u in pos and v in pos), key=lambda e: (str(e[0]), str(e[1]), str(e[2])))
    values = sorted(_num(d.get("value")) for *_e, d in edges if d.get("kind") != "allocation")
    cuts = (values[len(values) // 3], values[2 * len(values) // 3]) if values else (0.0, 0.0)
    lines: dict[tuple[str, int], tuple[list, list]] = {}
    arrows: dict[str, tuple[list, list, list, list]] = {}
    pair_count: dict[tuple[str, str], int] = {}
    for u, v, _k, d in edges:
        group = _edge_group(d)
        value = _num(d.get("value"))
        width = 2 if d.get("kind") == "allocation" else (0 if value <= cuts[0] else
                                                           1 if value <= cuts[1] else 2)
        pair = (min(str(u), str(v)), max(str(u), str(v)))
        k = pair_count.get(pair, 0)
        pair_count[pair] = k + 1
        same_row = abs(pos[u][1] - pos[v][1]) < 1e-9
        bulge = (0.18 if same_row else 0.0) + 0.12 * ((k + 1) // 2) * (1 if k % 2 else -1)
        xs, ys = _bezier(pos[u], pos[v], bulge)
        lx, ly = lines.setdefault((group, width), ([], []))
        lx += xs + [None]
        ly += ys + [None]
        mid = len(xs) // 2
        ax, ay, angles, texts = arrows.setdefault(group, ([], [], [], []))
        ax.append(xs[mid])
        ay.append(ys[mid])
        angles.append(round(math.degrees(math.atan2((xs[mid + 1] - xs[mid - 1]) * sx,
                                                    (ys[mid + 1] - ys[mid - 1]) * sy)), 2))
        texts.append(contract_hover(g, u, v, d, money_scale))
        drawing.n_active += d.get("status", "active") == "active"

    def group_style(group: str) -> tuple[str, str, str, float]:
        if group == "ended":
            return "Ended contract", FAILED_COLOUR, "dot", 0.8
        if group == "suspended":
            return "Suspended contract", SUSPENDED_COLOUR, "dot", 0.7
        colour, dash = style.contract_kind_style(group)
        return style.CONTRACT_KIND_LABELS.get(group, group), colour, dash, 0.75

    order = [k for k in style.CONTRACT_KIND_STYLE if k in arrows]
    order += sorted(k for k in arrows if k not in order and k not in ("suspended", "ended"))
    order += [k for k in ("suspended", "ended") if k in arrows]
    for group in order:
        name, colour, dash, opacity = group_style(group)
        widths = sorted(w for g_, w in lines if g_ == group)
        for j, w in enumerate(widths):
            lx, ly = lines[(group, w)]
            drawing.traces.append(dict(
                type="scatter", x=lx, y=ly, mode="lines", name=name, legendgroup="c-" + group,
                showlegend=j == 0, hoverinfo="skip", opacity=opacity,
                line=dict(color=colour, dash=dash, width=LINE_WIDTHS[w])))
    for group in order:
        name, colour, _dash, _opacity = group_style(group)
        ax, ay, angles, texts = arrows[group]
        drawing.traces.append(dict(
            type="scatter", x=ax, y=ay, mode="markers", name=name, legendgroup="c-" + group,
            showlegend=False, hovertext=texts, hoverinfo="text",
            marker=dict(symbol="triangle-up", size=9, color=colour, angle=angles,
                        line=dict(width=0))))

    # ---- organisations
    biggest = max((max(_num(s), 0.0) for s in sizes.values()), default=0.0)
    in_row: dict[float, list] = {}
    for n, (x, y) in pos.items():
        in_row.setdefault(y, []).append(n)
    rank = {n: i for ns in in_row.values() for i, n in enumerate(sorted(ns, key=lambda n: pos[n][0]))}
    kinds: dict[str, list] = {}
    for n in g.nodes:
        if n in pos:
            kinds.setdefault(str(g.nodes[n].get("kind", "other")), []).append(n)
    korder = [k for k in style.ORG_KIND_STYLE if k in kinds] + sorted(
        k for k in kinds if k not in style.ORG_KIND_STYLE)
    crossed: tuple[list, list, list] = ([], [], [])
    for kind in korder:
        colour, symbol = style.org_kind_style(kind)
        nodes = sorted(kinds[kind], key=str)
        xs, ys, size, texts, labels, tpos, outline = [], [], [], [], [], [], []
        for n in nodes:
            value = max(_num(sizes.get(n)), 0.0)
            is_failed = n in failed_set
            xs.append(pos[n][0])
            ys.append(pos[n][1])
            size.append(round(8 + 30 * math.sqrt(value / biggest), 3) if biggest > 0 else 12)
            texts.append(organisation_hover(g, n, value, is_failed, notes.get(n, ""), money_scale))
            shown = (n in named) if named is not None else (node_text and kind != "gp_practice")
            labels.append(node_label(g, n) if shown else "")
            tpos.append("top center" if rank.get(n, 0) % 2 else "bottom center")
            outline.append(FAILED_COLOUR if is_failed else "white")
            if is_failed:
                crossed[0].append(pos[n][0])
                crossed[1].append(pos[n][1])
                crossed[2].append(texts[-1])
        drawing.traces.append(dict(
            type="scatter", x=xs, y=ys, mode="markers+text" if node_text is not False else "markers",
            name=style.ORG_KIND_LABELS.get(kind, kind), legendgroup="o-" + kind,
            text=labels, textposition=tpos, textfont=dict(size=10), hovertext=texts,
            hoverinfo="text", marker=dict(size=size, color=colour, symbol=symbol, opacity=0.95,
                                          line=dict(color=outline, width=1.5))))
    drawing.n_failed = len(crossed[0])
    drawing.traces.append(dict(
        type="scatter", x=crossed[0], y=crossed[1], mode="markers", name="Failed organisation",
        legendgroup="o-failed", showlegend=bool(crossed[0]), hovertext=crossed[2],
        hoverinfo="text", marker=dict(symbol="x-thin", size=16, color=FAILED_COLOUR,
                                      line=dict(color=FAILED_COLOUR, width=3))))

    # ---- layer names
    for title, y in layer_labels(g, pos):
        drawing.annotations.append(dict(x=LABEL_X, y=y, xref="x", yref="y", text=title,
                                        showarrow=False, xanchor="left", yanchor="middle",
                                        font=dict(size=11, color="#666666")))
    return drawing


__all__ = ["LAYERS", "layer_of", "layout", "extend_layout", "layer_labels", "y_range",
           "contract_hover", "organisation_hover", "default_sizes", "draw", "Drawing"]
