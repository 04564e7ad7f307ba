"""House style for every figure the project draws (report, static exports, browser viz).

One function, :func:`apply_style`, styles a Plotly figure; the palettes below give each
arrangement, organisation kind, contract kind, risk party and GP participation status a fixed
colour, so that a colour means the same thing in every figure and every report.

The arrangement palette is Okabe & Ito's colour-blind-safe set (distinguishable under the
common forms of colour-vision deficiency); `fragmented`, the usual baseline, is neutral grey.
Arrangement keys and labels are not defined here: they come from the arrangement files
(abm.catalogue), so a label is written once, in its file.
"""

from __future__ import annotations

from typing import Any

from abm.params import ARRANGEMENTS  # noqa: F401  (the shipped keys; re-exported)

# Okabe-Ito (2008), plus neutral grey for the baseline.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "grey": "#999999",
}

ARRANGEMENT_COLOURS: dict[str, str] = {
    "fragmented": OKABE_ITO["grey"],
    "alliance": OKABE_ITO["orange"],
    "prime_contractor": OKABE_ITO["sky_blue"],
    "prime_provider": OKABE_ITO["bluish_green"],
    "icp_partial": OKABE_ITO["reddish_purple"],
    "icp_full": OKABE_ITO["blue"],
}

# Colours for keys outside the six (experiments may define their own variants): fixed order,
# assigned by sorted key so the same set of keys always gets the same colours.
_EXTRA_COLOURS = (
    OKABE_ITO["vermillion"],
    OKABE_ITO["black"],
    OKABE_ITO["yellow"],
    "#882255",
    "#44AA99",
    "#117733",
    "#332288",
    "#AA4499",
)

# Paul Tol's "muted" scheme (colour-blind safe) for organisation kinds; marker symbols give a
# second, non-colour cue because twelve kinds exceed what colour alone can separate.
ORG_KIND_STYLE: dict[str, tuple[str, str]] = {
    "funder": ("#332288", "star"),
    "commissioner": ("#88CCEE", "diamond"),
    "local_authority": ("#44AA99", "diamond"),
    "prime_contractor": ("#117733", "square"),
    "acute": ("#882255", "circle"),
    "community": ("#DDCC77", "circle"),
    "mental_health": ("#AA4499", "circle"),
    "social_care": ("#CC6677", "circle"),
    "voluntary": ("#999933", "triangle-up"),
    "private": ("#661100", "triangle-up"),
    "gp_practice": ("#6699CC", "hexagon"),
    "gp_federation": ("#0072B2", "hexagon"),
}
ORG_KIND_LABELS: dict[str, str] = {
    "funder": "Funder",
    "commissioner": "Commissioner",
    "local_authority": "Local authority",
    "prime_contractor": "Prime contractor",
    "acute": "Acute trust",
    "community": "Community provider",
    "mental_health": "Mental health provider",
    "social_care": "Social care provider",
    "voluntary": "Voluntary sector",
    "private": "Private provider",
    "gp_practice": "GP practice",
    "gp_federation": "GP federation",
}

# Contract kinds: colour + dash, so line style alone also tells them apart.
CONTRACT_KIND_STYLE: dict[str, tuple[str, str]] = {
    "allocation": ("#332288", "dot"),
    "standard": ("#7F7F7F", "solid"),
    "gms_pms": ("#6699CC", "dash"),
    "alliance": (OKABE_ITO["orange"], "solid"),
    "prime": (OKABE_ITO["sky_blue"], "solid"),
    "subcontract": (OKABE_ITO["bluish_green"], "dashdot"),
    "icp": (OKABE_ITO["blue"], "solid"),
    "integration_agreement": (OKABE_ITO["reddish_purple"], "longdash"),
    "salaried": ("#882255", "longdashdot"),
}
CONTRACT_KIND_LABELS: dict[str, str] = {
    "allocation": "Allocation",
    "standard": "NHS Standard Contract",
    "gms_pms": "GMS/PMS (GP contract)",
    "alliance": "Alliance agreement",
    "prime": "Prime contract",
    "subcontract": "Subcontract",
    "icp": "Integrated care provider contract",
    "integration_agreement": "GP integration agreement",
    "salaried": "Salaried GP service",
}

# Payment kinds (how a contract pays): colours for the payment-mix figure, labels for every
# figure and hover text (the report and the browser app say the same thing).
PAYMENT_ORDER: tuple[str, ...] = ("allocation", "capitation", "wpap", "block", "tariff", "fee",
                                  "none")
PAYMENT_LABELS: dict[str, str] = {
    "allocation": "Allocation",
    "capitation": "Capitation",
    "wpap": "Whole-population annual payment",
    "block": "Block",
    "tariff": "Tariff (payment by activity)",
    "fee": "Fee",
    "none": "No payment (risk-sharing agreement)",
}
PAYMENT_COLOURS: dict[str, str] = {
    "allocation": "#332288",
    "capitation": "#0072B2",
    "wpap": "#56B4E9",
    "block": "#E69F00",
    "tariff": "#D55E00",
    "fee": "#CC79A7",
    "none": "#BBBBBB",
}

PARTY_COLOURS: dict[str, str] = {
    "funder": "#332288",
    "commissioner": "#88CCEE",
    "lead": OKABE_ITO["orange"],
    "providers": OKABE_ITO["bluish_green"],
    "gp_practices": OKABE_ITO["reddish_purple"],
}
PARTY_LABELS: dict[str, str] = {
    "funder": "Funder",
    "commissioner": "Commissioner",
    "lead": "Lead organisation",
    "providers": "Providers",
    "gp_practices": "GP practices",
}

GP_STATUS_COLOURS: dict[str, str] = {
    "outside": OKABE_ITO["grey"],
    "partial": OKABE_ITO["sky_blue"],
    "full": OKABE_ITO["blue"],
    "returned": OKABE_ITO["vermillion"],
}
GP_STATUS_LABELS: dict[str, str] = {
    "outside": "Outside",
    "partial": "Partial integration",
    "full": "Full integration",
    "returned": "Returned to GMS/PMS",
}

# Metric presentation: label, unit kind ("share", "count", "ratio", "gbp", "index", "rate"),
# group, and which direction is better (+1 higher, -1 lower, 0 neither).
METRIC_INFO: dict[str, tuple[str, str, str, int]] = {
    "integrated_handoff_share": ("Integrated handoff share", "share", "integration", +1),
    "population_payment_share": ("Population-based payment share", "share", "integration", +1),
    "prevention_spend_share": ("Prevention spend share", "share", "integration", +1),
    "gp_practices_integrated": ("GP practices integrated", "count", "integration", 0),
    "commissioner_contracts": ("Commissioner contracts", "count", "fragmentation", -1),
    "contracts_total": ("Contracts in force", "count", "fragmentation", -1),
    "orgs_per_patient": ("Organisations per patient", "ratio", "fragmentation", -1),
    "continuity_of_care": ("Continuity of care (COC)", "index", "fragmentation", +1),
    "handoffs_per_1000": ("Handoffs per 1,000 population", "rate", "fragmentation", -1),
    "transaction_cost_share": ("Transaction cost share", "share", "fragmentation", -1),
    "provider_failures": ("Provider failures (cumulative)", "count", "risk", -1),
    "loss_gini": ("Gini of provider deficits", "index", "risk", 0),
    "lead_reserves": ("Lead reserves", "gbp", "risk", 0),
    "emergency_admissions_per_1000": ("Emergency admissions per 1,000", "rate", "outcomes", -1),
    "cost_per_capita": ("Cost per capita", "gbp", "outcomes", -1),
    "vat_leakage": ("VAT leakage (cumulative)", "gbp", "outcomes", -1),
    "health_index": ("Population health index", "index", "outcomes", +1),
    "money_balance_error": ("Money balance error", "gbp", "accounting", -1),
    "gp_outside": ("GP practices outside", "count", "gp", 0),
    "gp_partial": ("GP practices partially integrated", "count", "gp", 0),
    "gp_full": ("GP practices fully integrated", "count", "gp", 0),
    "gp_returned": ("GP practices returned", "count", "gp", 0),
}
METRIC_GROUPS: dict[str, str] = {
    "integration": "Integration",
    "fragmentation": "Fragmentation",
    "risk": "Risk",
    "outcomes": "Outcomes",
}


def metric_label(metric: str) -> str:
    """Readable name of a metric (risk shares and unknown names handled too)."""
    if metric in METRIC_INFO:
        return METRIC_INFO[metric][0]
    if metric.startswith("risk_share."):
        party = metric.split(".", 1)[1]
        return f"Risk share: {PARTY_LABELS.get(party, party)}"
    return metric.replace("_", " ").capitalize()


def metric_unit(metric: str) -> str:
    if metric in METRIC_INFO:
        return METRIC_INFO[metric][1]
    if metric.startswith("risk_share."):
        return "ratio"
    return "number"


#: What a value of each unit kind is measured in, in words (headline findings state it).
UNIT_WORDS: dict[str, str] = {
    "share": "per cent", "gbp": "£ a year", "count": "number", "rate": "per 1,000 population",
    "index": "index, 0 to 1", "ratio": "ratio", "number": "value",
}


def unit_words(metric: str) -> str:
    """The unit a metric's values are in, in words ("per cent", "£ a year", ...)."""
    if metric == "vat_leakage":
        return "£, cumulative"
    if metric in ("provider_failures",):
        return "number, cumulative"
    if metric == "cost_per_capita":
        return "£ per person a year"
    if metric == "orgs_per_patient":
        return "organisations per patient"
    return UNIT_WORDS.get(metric_unit(metric), "value")


def format_value(value: float, unit: str, *, signed: bool = False) -> str:
    """Format a number for tables and hover text according to its unit kind."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if v != v:  # NaN
        return "—"
    sign = "+" if signed and v > 0 else ""
    if unit == "share":
        return f"{sign}{v * 100:.1f}{'\u00a0pp' if signed else '%'}"
    if unit == "gbp":
        a = abs(v)
        neg = "−" if v < 0 else sign
        if a >= 1e9:
            return f"{neg}£{a / 1e9:.2f}bn"
        if a >= 1e6:
            return f"{neg}£{a / 1e6:.2f}m"
        if a >= 1e5:
            return f"{neg}£{a / 1e3:,.0f}k"
        if a >= 100:
            return f"{neg}£{a:,.0f}"
        return f"{neg}£{a:.2f}"
    if unit == "count":
        return f"{sign}{v:,.1f}" if abs(v - round(v)) > 1e-9 else f"{sign}{v:,.0f}"
    if unit in ("index", "ratio"):
        return f"{sign}{v:.3f}"
    if unit == "rate":
        return f"{sign}{v:,.1f}"
    return f"{sign}{v:,.4g}"


FONT_FAMILY = "Source Sans Pro, Helvetica Neue, Arial, sans-serif"
TEXT_COLOUR = "#222222"
GRID_COLOUR = "#E5E5E5"
_FALLBACK = "#777777"


def _stable_index(key: str, n: int) -> int:
    """Position of `key` in a fixed table, independent of Python's hash randomisation."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(key)) % n


def arrangement_colour(key: str) -> str:
    """Fixed colour of an arrangement key (unknown keys get a stable extra colour)."""
    if key in ARRANGEMENT_COLOURS:
        return ARRANGEMENT_COLOURS[key]
    return _EXTRA_COLOURS[_stable_index(str(key), len(_EXTRA_COLOURS))]


def arrangement_label(key: str, labels: dict[str, str] | None = None) -> str:
    """Readable name of an arrangement key: from `labels` (a run's record) when given, else
    the `label:` of its shipped file (see abm.catalogue.label)."""
    from abm import catalogue
    return catalogue.label(key, labels)


def arrangement_order(keys) -> list[str]:
    """Arrangement keys in canonical order (the six first, then the rest sorted)."""
    keys = list(dict.fromkeys(str(k) for k in keys))
    known = [k for k in ARRANGEMENTS if k in keys]
    return known + sorted(k for k in keys if k not in ARRANGEMENTS)


def org_kind_style(kind: str) -> tuple[str, str]:
    """(colour, marker symbol) of an organisation kind."""
    return ORG_KIND_STYLE.get(kind, (_FALLBACK, "circle-open"))


def contract_kind_style(kind: str) -> tuple[str, str]:
    """(colour, dash) of a contract kind."""
    return CONTRACT_KIND_STYLE.get(kind, (_FALLBACK, "dot"))


def payment_label(payment: str) -> str:
    """Readable name of a payment kind (unknown kinds as given)."""
    return PAYMENT_LABELS.get(payment, str(payment))


def payment_colour(payment: str) -> str:
    return PAYMENT_COLOURS.get(payment, _FALLBACK)


def party_colour(party: str) -> str:
    return PARTY_COLOURS.get(party, _FALLBACK)


def hex_to_rgba(colour: str, alpha: float) -> str:
    """'#RRGGBB' -> 'rgba(r,g,b,alpha)' (for translucent bands)."""
    c = colour.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:g})"


_TEMPLATE = None


def house_template():
    """The house Plotly template (built once): plotly_white with the project's fonts, axes,
    hover labels and arrangement colourway. Axis defaults here reach every subplot axis."""
    global _TEMPLATE
    if _TEMPLATE is None:
        import plotly.graph_objects as go
        import plotly.io as pio

        t = go.layout.Template(pio.templates["plotly_white"])
        axis = dict(showgrid=True, gridcolor=GRID_COLOUR, zeroline=False, linecolor="#888888",
                    showline=True, ticks="outside", tickcolor="#888888",
                    title=dict(font=dict(size=13)), automargin=True)
        t.layout.update(
            font=dict(family=FONT_FAMILY, size=13, color=TEXT_COLOUR),
            paper_bgcolor="white", plot_bgcolor="white",
            hoverlabel=dict(font=dict(family=FONT_FAMILY, size=12), namelength=-1),
            colorway=[ARRANGEMENT_COLOURS[k] for k in ARRANGEMENTS],
            xaxis=axis, yaxis=axis,
        )
        _TEMPLATE = t
    return _TEMPLATE


def apply_style(fig: Any, *, title: str | None = None, height: int | None = None,
                legend: bool = True) -> Any:
    """Apply the house style to a Plotly figure in place and return it.

    Every figure in the project goes through this function, so fonts, margins, gridlines,
    legend placement and hover labels are the same everywhere.
    """
    # A horizontal legend under the plot, placed a fixed number of pixels below the plot
    # area (below the x-axis title) whatever the figure's height.
    h = height or getattr(fig.layout, "height", None) or 450
    plot_h = max(h - 140, 100)
    layout: dict[str, Any] = dict(
        template=house_template(),
        margin=dict(l=70, r=30, t=80, b=60),
        showlegend=legend,
        legend=dict(orientation="h", yanchor="top", y=-75 / plot_h, xanchor="left", x=0,
                    font=dict(size=12), title_text=""),
    )
    if title is not None:
        layout["title"] = dict(text=title, x=0, xanchor="left", font=dict(size=17))
    if height is not None:
        layout["height"] = height
    fig.update_layout(**layout)
    # Subplot titles are annotations: keep them in the house font, slightly smaller.
    for ann in fig.layout.annotations or ():
        if ann.font.size is None or ann.font.size == 16:  # 16 is make_subplots' default
            ann.font.size = 13
    return fig
