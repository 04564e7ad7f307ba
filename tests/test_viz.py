"""The browser visualisation without a browser: the page renders and steps, the inputs reach the
model, and the figures show what the issue asks for (kinds, budgets, failures, ended contracts)."""
from __future__ import annotations

import json
import signal
import statistics
import time

import ipyvuetify as v
import plotly.graph_objects as go
import pytest
import solara
from solara.widgets.widgets import HTML

from abm.viz import model as vm
from abm.viz import network, serve, server_command, server_env
from abm.viz.charts import PANELS, exposed_providers, metrics_dict, metrics_figure, status_html
from abm.viz.model import VizModel, model_kwargs


def _render(page):
    """Render a SolaraViz page inside an AppLayout (its sidebar holds the controls)."""
    @solara.component
    def Wrapped():
        with solara.AppLayout():
            solara.Column(children=[page])

    return solara.render(Wrapped(), handle_error=False)


def _button(rc, label):
    found = rc.find(v.Btn, children=[label])
    found.assert_single()
    return found.widget


def _figures(rc) -> dict[str, go.FigureWidget]:
    """The page's plotly widgets keyed by the first word of their title ('Contract', 'Metrics')."""
    return {w.layout.title.text.split()[0]: w for w in rc.find(go.FigureWidget).widgets}


def _status(rc) -> str:
    return " ".join(w.unsafe_innerHTML or "" for w in rc.find(HTML).widgets)


# ------------------------------------------------------------------ the page
def test_app_page_builds_and_runs_24_steps():
    """app.page renders; 24 presses of Step advance its model 24 months and every panel follows."""
    from abm.viz import app

    model = app.page.args[0]
    assert isinstance(model, VizModel) and model.month == 0
    _box, rc = _render(app.page)
    figs = _figures(rc)
    assert set(figs) == {"Contract", "Metrics"}
    assert all(len(t.y) == 1 for t in figs["Metrics"].data[:len(PANELS)])
    step = _button(rc, "Step")
    for _ in range(24):
        step.click()
    assert model.month == 24
    figs = _figures(rc)
    assert "month 24" in figs["Contract"].layout.title.text
    after = [list(t.y) for t in figs["Metrics"].data[:len(PANELS)]]
    assert all(len(a) == 24 for a in after), "each metric panel should show months 1..24"
    assert any(len(set(a)) > 1 for a in after), "no metric moved in 24 months"
    assert "Month 24" in _status(rc)
    assert model.datacollector.get_model_vars_dataframe().shape[0] == 25


def test_each_session_gets_its_own_model():
    """`Page` (what the server serves) builds a fresh model per session: stepping one tab leaves a
    newly opened tab at month 0."""
    from abm.viz import app

    _box, first = _render(app.Page())
    _button(first, "Step").click()
    assert "Month 1" in _status(first)
    _box, second = _render(app.Page())
    assert "Month 0" in _status(second)
    assert "Month 1" in _status(first)


def test_reset_applies_the_chosen_arrangement_and_inputs():
    """Changing the Arrangement input then pressing Reset builds a new model under that arrangement."""
    from abm.viz.app import make_page

    _box, rc = _render(make_page(VizModel(population_scale=0.02)))
    select = rc.find(v.Select, label="Arrangement")
    select.assert_single()
    select.widget.v_model = "alliance"
    _button(rc, "Reset").click()
    assert "<code>alliance</code>" in _status(rc)
    assert "Month 0" in _status(rc)
    _button(rc, "Step").click()
    assert "Month 1" in _status(rc)
    net = _figures(rc)["Contract"]
    kinds = {t.name for t in net.data}
    assert "Alliance agreement" in kinds


# ------------------------------------------------------------------ inputs -> model
def test_model_kwargs_map_page_inputs():
    """Contract length goes to the holder's contract or the alliance, and nowhere for fragmented."""
    assert model_kwargs("icp_full", contract_years="5")["arrangement__contract__contract_years"] == 5
    assert model_kwargs("prime_contractor", contract_years=7)["arrangement__contract__contract_years"] == 7
    assert model_kwargs("alliance", contract_years="3")["arrangement__alliance__contract_years"] == 3
    frag = model_kwargs("fragmented", contract_years="3")
    assert not any("contract_years" in k for k in frag)
    assert not any("contract_years" in k for k in model_kwargs("icp_full", contract_years=vm.CONFIGURED))
    kw = model_kwargs("icp_partial", shock=True, rng="17", prevention_budget_share=0.05, autonomy_mean=0.6)
    assert kw["shocks"] == [{"kind": "demand_surge", "month": 13, "size": 0.10}]
    assert kw["rng"] == 17 and kw["prevention__budget_share"] == 0.05
    assert kw["participation__autonomy_mean"] == 0.6
    assert model_kwargs(shock=False)["shocks"] == []
    assert vm.seed_of("abc") == vm.seed_of("abc") != vm.seed_of("abd")


def test_inputs_take_effect_in_the_model():
    """The page's inputs change the model: contract length, willingness to integrate, shock, scale."""
    m = VizModel("prime_contractor", population_scale=0.02, contract_years="3", shock=True)
    assert m.arr["contract"]["contract_years"] == 3
    assert m.shocks and m.shocks[0]["month"] == 13 and m.scale == 0.02
    willing = VizModel("icp_full", population_scale=0.02, autonomy_mean=0.05).practices_integrated_at_start
    reluctant = VizModel("icp_full", population_scale=0.02, autonomy_mean=0.95).practices_integrated_at_start
    assert willing > reluctant
    a = VizModel("alliance", population_scale=0.02, contract_years="15")
    assert a.arr["alliance"]["contract_years"] == 15


def test_default_scale_keeps_a_step_quick():
    """At the page's default scale a month runs well under the ~100 ms target (loose bound for CI)."""
    assert vm.DEFAULT_SCALE <= 0.1
    m = VizModel()
    times = []
    for _ in range(6):
        t = time.perf_counter()
        m.step()
        times.append(time.perf_counter() - t)
    assert statistics.median(times) < 0.3, times


# ------------------------------------------------------------------ the network figure
def test_network_layout_is_deterministic_and_stable():
    """Same network, same positions; positions do not move as months pass; tiers run money-downwards."""
    m1, m2 = VizModel(population_scale=0.02), VizModel(population_scale=0.02, rng=7)
    p1 = dict(network.layout_for(m1))
    assert p1 == network.compute_layout(m2.contracts)
    for _ in range(3):
        m1.step()
    assert all(network.layout_for(m1)[n] == xy for n, xy in p1.items())
    g = m1.contracts
    y = {n: p1[n][1] for n in g.nodes}
    assert y["nhse"] > y["ccg"] > y[m1.holder.org_id] > y["dgft"] > y[m1.practices[0].org_id]


def test_new_organisation_is_placed_beside_its_predecessor():
    """A successor organisation appears next to the one it replaces; nothing else moves."""
    m = VizModel(population_scale=0.02)
    pos = dict(network.layout_for(m))
    m.contracts.add_node("dgft~2", kind="acute", role="provider", label="successor", budget=1.0, failed=False)

    class Succ:
        successor_of = "dgft"
        failed = False
    m.org_by_id["dgft~2"] = Succ()
    try:
        new = network.layout_for(m)
    finally:
        del m.org_by_id["dgft~2"]
    assert all(new[n] == xy for n, xy in pos.items())
    assert abs(new["dgft~2"][0] - pos["dgft"][0]) < 0.05 and new["dgft~2"][1] < pos["dgft"][1]


def _trace(fig, name):
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


def test_network_colours_kinds_sizes_budgets_and_styles_contracts():
    """One trace per organisation kind in its house colour, marker size growing with budget, and
    contract kinds drawn in their own colour and dash."""
    from abm import style

    m = VizModel(population_scale=0.02)
    fig = network.network_figure(m)
    acute = _trace(fig, style.ORG_KIND_LABELS["acute"])
    assert acute.marker.color == style.ORG_KIND_STYLE["acute"][0]
    practices = _trace(fig, style.ORG_KIND_LABELS["gp_practice"])
    assert max(acute.marker.size) > max(practices.marker.size)  # the trust's budget dwarfs a practice's
    vol = _trace(fig, style.ORG_KIND_LABELS["voluntary"])
    assert max(acute.marker.size) > max(vol.marker.size)
    for kind in ("icp", "gms_pms", "integration_agreement", "subcontract"):
        t = _trace(fig, style.CONTRACT_KIND_LABELS[kind])
        assert (t.line.color, t.line.dash) == style.CONTRACT_KIND_STYLE[kind]
    frag = network.network_figure(VizModel("fragmented", population_scale=0.02))
    assert _trace(frag, style.CONTRACT_KIND_LABELS["standard"])
    assert not [t for t in frag.data if t.name == style.CONTRACT_KIND_LABELS["icp"]]


def test_network_hover_shows_value_and_payment():
    """Hovering a contract shows its yearly value and payment kind; hovering a node its budget."""
    m = VizModel(population_scale=0.02)
    fig = network.network_figure(m)
    hovers = [h for t in fig.data if t.hovertext for h in t.hovertext]
    contract = [h for h in hovers if "payment:" in h]
    assert len(contract) == sum(1 for _ in m.contracts.edges)
    assert any("payment: Whole-population annual payment" in h and "£" in h and "a year" in h
               for h in contract)
    assert any("payment: Capitation" in h for h in contract)
    assert any("NHS England" in h and "budget" in h for h in hovers)


def test_network_marks_failed_organisations_and_ended_contracts():
    """A failed organisation gets a cross (and a red outline); ended contracts get their own style."""
    m = VizModel(population_scale=0.02)
    fig = network.network_figure(m)
    assert len(_trace(fig, "Failed organisation").x) == 0
    assert not [t for t in fig.data if t.name == "Ended contract"]
    org = m.org_by_id["bcpft"]
    org.failed = True
    u, w, k = next((u, w, k) for u, w, k, d in m.contracts.edges(keys=True, data=True) if w == "bcpft")
    m.contracts.edges[u, w, k]["status"] = "terminated"
    fig = network.network_figure(m)
    failed = _trace(fig, "Failed organisation")
    pos = network.layout_for(m)["bcpft"]
    assert list(zip(failed.x, failed.y)) == [pos]
    assert "FAILED" in failed.hovertext[0]
    ended = _trace(fig, "Ended contract")
    assert ended.line.dash == "dot" and len(ended.x) > 0
    assert "1 failed organisation" in fig.layout.title.text


# ------------------------------------------------------------------ charts and text
def test_metric_grid_covers_every_group_and_the_reserves():
    """The chart grid has integration, fragmentation, risk and outcome panels, the lead's and the
    most exposed providers' reserves, and GP participation; series grow with the months."""
    m = VizModel(population_scale=0.02)
    for _ in range(5):
        m.step()
    fig = metrics_figure(m)
    legend_groups = {t.name for t in fig.data if t.showlegend is not False and t.legend in (None, "legend")}
    assert {"Integration", "Fragmentation", "Risk", "Outcomes"} <= legend_groups
    reserve_traces = [t for t in fig.data if t.legend == "legend2"]
    assert reserve_traces[0].name.endswith("(lead)") and len(reserve_traces) == 5
    # metric panels leave out month 0 (the set-up, where flows are still zero); the reserves and
    # GP panels are stocks and start at the opening position, month 0
    panels = [t for t in fig.data if t.legend in (None, "legend")]
    assert len(panels) == len(PANELS)
    assert all(list(t.x) == [1, 2, 3, 4, 5] and len(t.y) == 5 for t in panels)
    assert all(len(t.y) == 6 and t.x[0] == 0 for t in fig.data if t.legend in ("legend2", "legend3"))
    gp = {t.name for t in fig.data if t.legend == "legend3"}
    assert {"Outside", "Partial integration", "Full integration"} <= gp
    lead = m.holder
    assert reserve_traces[0].y[-1] == pytest.approx(lead.reserves / m.scale)
    assert lead not in exposed_providers(m)


def test_metric_panels_before_any_month_show_the_set_up_as_such():
    """At month 0 nothing is simulated yet: each metric panel shows its set-up value as a dot
    whose hover says it is the set-up, not a month's result."""
    m = VizModel(arrangement="fragmented", population_scale=0.02)
    fig = metrics_dict(m)
    panels = [t for t in fig["data"] if t.get("legend") is None]
    assert len(panels) == len(PANELS)
    assert all(t["x"] == [0] and t["mode"] == "markers" for t in panels)
    assert all(t["customdata"][0][0].startswith("set-up") for t in panels)


def test_status_panel_says_month_arrangement_surplus_failures_and_scale():
    """The text panel gives the month, arrangement, the lead's surplus, failures and the scaling."""
    m = VizModel("prime_provider", population_scale=0.02, shock=True)
    for _ in range(13):
        m.step()
    text = status_html(m)
    assert "Month 13" in text and "Prime provider" in text and "<code>prime_provider</code>" in text
    assert "Lead's surplus this year so far" in text and "Lead's surplus last year" in text
    assert "Failures so far: " in text and "2% sample of the population" in text
    assert "demand surge +10% from month 13" in text
    frag = status_html(VizModel("fragmented", population_scale=0.02))
    assert "Lead:</b> none" in frag and "Month 0" in frag
    m.org_by_id["dgft"].name = "<script>x</script>"
    assert "<script>" not in status_html(m)


@pytest.mark.parametrize("arrangement", ["fragmented", "alliance", "prime_contractor", "icp_full"])
def test_figures_are_strict_json_even_with_gaps(arrangement):
    """Widgets send strict JSON (no NaN): an organisation that appears mid-run (a successor) has no
    reserves before it existed, and that gap must go out as null, not NaN."""
    m = VizModel(arrangement, population_scale=0.02, shock=True)
    for _ in range(4):
        m.step()
    late = exposed_providers(m)[0].org_id
    for h in m.reserve_history[:2]:
        h.pop(late)  # as if it had been created in month 2
    fig = metrics_dict(m)
    json.dumps(fig, allow_nan=False)
    json.dumps(network.network_dict(m), allow_nan=False)
    gap = next(t for t in fig["data"] if t.get("legend") == "legend2" and t["name"].startswith(
        m.org_by_id[late].name[:20]))
    assert gap["y"][:2] == [None, None] and gap["y"][2] is not None


# ------------------------------------------------------------------ serve()
def test_server_command_and_environment():
    """`abm viz` runs `solara run app.py` on the given address, offline-safe and without opening a browser."""
    cmd = server_command("0.0.0.0", 9001)
    assert cmd[1:4] == ["-m", "solara", "run"] and cmd[4].endswith("abm/viz/app.py")
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "9001"
    assert "--no-open" in cmd
    assert server_env()["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"


def test_serve_prints_the_address_and_stops_on_ctrl_c(monkeypatch, capsys):
    """serve() prints the URL, blocks on the server and, on Ctrl+C, interrupts it and returns 0."""
    calls = {}

    class FakeServer:
        def __init__(self, cmd, env):
            calls["cmd"], calls["env"] = cmd, env
            self.waits = 0

        def wait(self, timeout=None):
            self.waits += 1
            if self.waits == 1:
                raise KeyboardInterrupt
            return -2

        def send_signal(self, sig):
            calls["signal"] = sig

    monkeypatch.setattr("abm.viz.subprocess.Popen", FakeServer)
    assert serve("127.0.0.1", 8123) == 0
    assert "http://127.0.0.1:8123/" in capsys.readouterr().out
    assert calls["signal"] == signal.SIGINT and "--port" in calls["cmd"]
