"""Plotly figures as plain dicts, styled like the house template but light enough to send every step.

The house template (abm.style) is large; re-sending it with every month's figure made a step take
about a second, so the page's figures carry only the few style settings they need.
"""
from __future__ import annotations

import plotly.graph_objects as go

from .. import style


def axis_style(**extra) -> dict:
    """House axis settings (grid, line, ticks)."""
    return dict(showgrid=True, gridcolor=style.GRID_COLOUR, zeroline=False, linecolor="#888888",
                showline=True, ticks="outside", tickcolor="#888888", tickfont=dict(size=10), **extra)


def base_layout(height: int) -> dict:
    """House fonts, colours and hover labels, without the template."""
    return dict(
        height=height, autosize=True,
        font=dict(family=style.FONT_FAMILY, size=12, color=style.TEXT_COLOUR),
        paper_bgcolor="white", plot_bgcolor="white",
        hoverlabel=dict(font=dict(family=style.FONT_FAMILY, size=12), namelength=-1),
    )


def figure(fig: dict, validate: bool = True) -> go.Figure:
    """A plotly Figure from a figure dict (validated unless asked not to: the page skips it for speed)."""
    return go.Figure(fig) if validate else go.Figure(fig, _validate=False)


__all__ = ["axis_style", "base_layout", "figure"]
