"""Solara components of the page; each redraws when Mesa's update counter moves (Step, Play, Reset)."""
from __future__ import annotations

import ipyvuetify as v
import plotly.graph_objects as go
import solara
import traitlets
from mesa.visualization.utils import update_counter

from .charts import metrics_dict, status_html
from .network import network_dict


class ResizeNudge(v.VuetifyTemplate):
    """Fires window resize events for a few seconds after the page appears. Plotly draws each figure
    before Mesa's grid has sized its cell (so at plotly's default 700 px); responsive figures
    re-fit their cells on a window resize."""

    template = traitlets.Unicode("""
<template><span style="display: none"></span></template>
<script>
module.exports = {
  mounted() {
    [500, 1500, 3000, 6000].forEach(function (ms) {
      setTimeout(function () { window.dispatchEvent(new Event('resize')); }, ms);
    });
  }
}
</script>
""").tag(sync=True)


@solara.component
def LivePlotly(build, dependencies):
    """A Plotly FigureWidget updated in place from `build()` (a figure dict) whenever `dependencies`
    change: traces restyled in place when the same traces come back (else replaced), the layout
    re-sent only when it changed (apart from the title).

    Like solara.FigurePlotly, but the figure is built inside the effect (a large figure passed as a
    component argument is walked by the renderer on every update), an unchanged layout is not
    re-sent each step, and the plot is responsive (re-fits its cell on window resize; see
    ResizeNudge)."""
    element = go.FigureWidget.element()

    def update():
        fig = build()
        widget = solara.get_widget(element)
        if not widget._config.get("responsive"):
            widget._config = {"responsive": True, "displaylogo": False}
        layout = {k: v for k, v in fig["layout"].items() if k != "title"}
        data = fig["data"]
        if getattr(widget, "_abm_layout", None) != layout:
            widget.layout = fig["layout"]
            widget._abm_layout = layout
        same_traces = len(widget.data) == len(data) and all(
            t.type == d.get("type", "scatter") and t.name == d.get("name") for t, d in zip(widget.data, data))
        if same_traces:  # one restyle message with only what changed
            with widget.batch_update():
                widget.layout.title.text = fig["layout"].get("title", {}).get("text")
                for trace, new in zip(widget.data, data):
                    trace.update({k: v for k, v in new.items() if k != "type"})
        else:  # traces appeared or went: replace them all
            widget.layout.title.text = fig["layout"].get("title", {}).get("text")
            n = len(widget.data)
            widget.add_traces(data)
            widget.data = widget.data[n:]

    solara.use_effect(update, dependencies)
    return element


#: Page-wide CSS for Mesa's sliders. Vuetify puts a slider's label and its track side by side in one
#: flex row, so a long label (ours explain what the input means) squeezed the track to zero width:
#: nothing to see or drag, and a click landed on the minimum. Here the label takes a line of its own
#: above a full-width track, and the thumb always shows the value (Vuetify draws it only while
#: dragging; an input that never shows its value cannot be read).
SLIDER_CSS = """
.v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-input__slider .v-input__slot > .v-label {
  flex: 1 0 100%; max-width: 100%; white-space: normal; height: auto; line-height: 1.3;
  margin: 0 0 34px 0 !important; }
.v-input__slider .v-slider { flex: 1 0 calc(100% - 16px); min-width: 120px; margin: 0 8px; }
.v-input__slider .v-slider__thumb-label-container { display: block !important; }
.v-input__slider { margin-bottom: 6px; }
"""


@solara.component
def StatusPanel(model):
    """Month, arrangement, the lead's surplus, failures so far; says that the run is scaled. Also
    carries the page's slider CSS (SLIDER_CSS): this panel is on every page."""
    update_counter.get()
    solara.Style(SLIDER_CSS)
    with solara.Column(style={"padding": "4px 12px", "overflow-y": "auto", "height": "100%"},
                       classes=["abm-status"]):
        solara.HTML(tag="div", unsafe_innerHTML=status_html(model), style="font-size: 13px; line-height: 1.4")


@solara.component
def ContractNetwork(model):
    """The contract network as a Plotly figure (fixed layout, restyled every step)."""
    update_counter.get()
    with solara.Column(classes=["abm-network"], style={"width": "100%"}):
        LivePlotly(lambda: network_dict(model), dependencies=[model, update_counter.value])


@solara.component
def MetricCharts(model):
    """Metrics over time, reserves of the lead and the most exposed providers, GP participation."""
    update_counter.get()
    with solara.Column(classes=["abm-metrics"], style={"width": "100%"}):
        LivePlotly(lambda: metrics_dict(model), dependencies=[model, update_counter.value])
        ResizeNudge.element()


COMPONENTS = [StatusPanel, ContractNetwork, MetricCharts]

# Grid positions (12 columns; a row is 30 px plus a 10 px gap) for COMPONENTS, in the same order.
GRID = [
    {"x": 0, "y": 0, "w": 3, "h": 16},    # status (650 px)
    {"x": 3, "y": 0, "w": 9, "h": 16},    # network
    {"x": 0, "y": 16, "w": 12, "h": 21},  # charts (830 px)
]


def grid_layout(num_components: int) -> list[dict]:
    """Initial grid layout: ours for our components, Mesa's two-column default otherwise."""
    if num_components == len(GRID):
        return [{"i": i, "moved": False, **g} for i, g in enumerate(GRID)]
    return [{"i": i, "w": 6, "h": 10, "moved": False, "x": 6 * (i % 2), "y": 16 * (i - i % 2)}
            for i in range(num_components)]


__all__ = ["SLIDER_CSS", "ResizeNudge", "LivePlotly", "StatusPanel", "ContractNetwork", "MetricCharts", "COMPONENTS", "GRID",
           "grid_layout"]
