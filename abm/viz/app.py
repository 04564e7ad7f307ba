"""The browser page: Mesa's SolaraViz around :class:`abm.viz.model.VizModel`.

Run with `abm viz` (or `solara run abm/viz/app.py`). Inputs take effect on Reset, as in every
Mesa SolaraViz app: change them, then press RESET.
"""
from __future__ import annotations

import solara
from mesa.visualization import Slider, SolaraViz
from mesa.visualization import solara_viz as _solara_viz

from abm.params import ARRANGEMENTS
from abm.viz.components import COMPONENTS, grid_layout
from abm.viz.model import (CONFIGURED, CONTRACT_YEAR_CHOICES, DEFAULT_AUTONOMY, DEFAULT_PREVENTION, DEFAULT_SCALE,
                          DEFAULT_SEED, VizModel)

# Mesa lays components out two to a row at a fixed height; the network and the metric grid need more
# room, so the page's initial layout comes from components.grid_layout (users can still drag/resize).
_solara_viz.make_initial_grid_layout = grid_layout

# Play pauses this long between months. The server manages a month in ~0.1-0.2 s; the browser redraws
# the chart grid more slowly (seconds on a busy headless machine), and Mesa's Play does not wait for
# it, so a short interval lets updates pile up. Users can lower it with the Play Interval slider.
PLAY_INTERVAL_MS = 300

model_params = {
    "arrangement": {"type": "Select", "value": "icp_full", "values": list(ARRANGEMENTS),
                    "label": "Arrangement"},
    "population_scale": Slider("Population scale (share of people simulated)", DEFAULT_SCALE, 0.02, 0.5, 0.01),
    "prevention_budget_share": Slider("Prevention budget share (most of the holder's budget)",
                                      DEFAULT_PREVENTION, 0.0, 0.1, 0.005),
    "contract_years": {"type": "Select", "value": CONFIGURED, "values": list(CONTRACT_YEAR_CHOICES),
                       "label": "Lead contract length, years (arrangements with a lead or alliance)"},
    "autonomy_mean": Slider("Practices' autonomy preference (lower = more willing to integrate; ICP only)",
                            DEFAULT_AUTONOMY, 0.05, 0.95, 0.05),
    "shock": {"type": "Checkbox", "value": False, "label": "Demand surge +10% from month 13"},
    "rng": {"type": "InputText", "value": str(DEFAULT_SEED), "label": "Seed"},
}



def make_page(model=None):
    """A fresh SolaraViz element (tests render it; the server uses `page`)."""
    model = model if model is not None else VizModel()
    return SolaraViz(
        model,
        components=list(COMPONENTS),
        model_params=model_params,
        name="Contracting arrangements: contract network (scaled sample; change inputs, then Reset)",
        play_interval=PLAY_INTERVAL_MS,
    )


@solara.component
def Page():
    """What `solara run` serves: the page with a model of its own for each browser session (the
    module-level `page` below holds one model, which every open tab would share)."""
    model = solara.use_memo(VizModel, dependencies=[])
    return make_page(model)


page = make_page()
page  # noqa: B018  (Mesa examples end with the page expression)

__all__ = ["Page", "page", "make_page", "model_params", "PLAY_INTERVAL_MS"]
