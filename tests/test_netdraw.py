"""abm.netdraw, the one contract-network drawing of the report and the browser app: a layered,
deterministic layout, stable when organisations appear, and traces that style contract kinds,
payment and status the same way in both."""
from __future__ import annotations

import types

import networkx as nx
import plotly.graph_objects as go
import pytest

from abm import netdraw, style

try:  # tests/ as a package or as a plain directory on sys.path
    from tests.synthetic import synthetic_network
except ImportError:  # pragma: no cover
    from synthetic import synthetic_network


def _big(n_practices: int = 45) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    g.add_node("nhse", kind="funder", role="funder", label="NHS England", budget=0.0)
    g.add_node("icb", kind="commissioner", role="commissioner", label="ICB", budget=5e8)
    g.add_node("lead", kind="community", role="lead", label="Lead", budget=2e8)
    g.add_node("acute", kind="acute", role="subcontractor", label="Acute", budget=3e8)
    g.add_edge("nhse", "icb", kind="allocation", payment="allocation", value=6e8, start=0,
               end=-1, status="active")
    g.add_edge("icb", "lead", kind="icp", payment="wpap", value=4e8, start=0, end=120,
               status="active")
    g.add_edge("lead", "acute", kind="subcontract", payment="tariff", value=3e8, start=0,
               end=120, status="active")
    for k in range(n_practices):
        g.add_node(f"gp{k:02d}", kind="gp_practice", role="practice", label=f"P{k}", budget=1e6)
        g.add_edge("icb", f"gp{k:02d}", kind="gms_pms", payment="capitation", value=1e6, start=0,
                   end=-1, status="suspended" if k == 0 else "active")
    return g


def test_layers_run_money_downwards_and_wrap_into_balanced_rows():
    g = _big()
    pos = netdraw.layout(g)
    assert set(pos) == set(g.nodes)
    y = {n: p[1] for n, p in pos.items()}
    assert y["nhse"] > y["icb"] > y["lead"] > y["acute"] > max(y[f"gp{k:02d}"] for k in range(45))
    rows = sorted({y[f"gp{k:02d}"] for k in range(45)}, reverse=True)
    assert len(rows) == 3                                   # 45 > 16 per row: three rows of 15
    assert [sum(y[f"gp{k:02d}"] == r for k in range(45)) for r in rows] == [15, 15, 15]
    assert len(set(pos.values())) == len(pos)               # no two organisations on one spot
    assert all(-0.01 <= x <= 1.01 for x, _ in pos.values())
    assert [t for t, _ in netdraw.layer_labels(g, pos)] == [
        "Funder", "Commissioners", "Lead", "Subcontractors", "GP practices"]


def test_layout_does_not_depend_on_insertion_order():
    g = _big(20)
    h = nx.MultiDiGraph()
    h.add_nodes_from(reversed(list(g.nodes(data=True))))
    h.add_edges_from(reversed(list(g.edges(data=True))))
    assert netdraw.layout(g) == netdraw.layout(h)


@pytest.mark.parametrize("kind,role,layer", [
    ("funder", "funder", "funder"), ("local_authority", "commissioner", "commissioner"),
    ("prime_contractor", "lead", "lead"), ("acute", "member", "provider"),
    ("voluntary", "subcontractor", "subcontractor"), ("gp_federation", "provider", "provider"),
    ("gp_practice", "practice", "practice")])
def test_layer_of(kind, role, layer):
    assert netdraw.layer_of(kind, role) == layer


def test_new_organisations_never_move_the_others():
    g = _big(5)
    pos = netdraw.layout(g)
    g.add_node("acute~2", kind="acute", role="subcontractor", label="Successor", budget=1.0)
    g.add_node("orphan", kind="private", role="provider", label="New", budget=1.0)
    new = netdraw.extend_layout(pos, g, {"acute~2": "acute"})
    assert all(new[n] == xy for n, xy in pos.items())
    assert abs(new["acute~2"][0] - pos["acute"][0]) < 0.05 and new["acute~2"][1] < pos["acute"][1]
    assert "orphan" in new


def _names(traces):
    return [t["name"] for t in traces]


def test_draw_styles_kinds_and_status_and_gives_every_contract_a_hover():
    g = _big(6)
    g.add_edge("icb", "acute", kind="standard", payment="block", value=1e7, start=0, end=12,
               status="terminated")
    g.nodes["acute"]["failed"] = True
    d = netdraw.draw(g)
    hovers = [h for t in d.traces if t["mode"] == "markers" and t["name"] != "Failed organisation"
              and t.get("hovertext") for h in t["hovertext"] if "payment:" in h]
    assert len(hovers) == g.number_of_edges()              # one triangle per contract
    assert any("payment: Whole-population annual payment" in h and "value: £400.00m a year" in h
               and "term: from month 0 to 120" in h for h in hovers)
    first = {t["name"]: t for t in reversed(d.traces)}       # first trace of each name
    icp = first[style.CONTRACT_KIND_LABELS["icp"]]
    assert (icp["line"]["color"], icp["line"]["dash"]) == style.CONTRACT_KIND_STYLE["icp"]
    assert first["Ended contract"]["line"]["dash"] == "dot"
    assert first["Suspended contract"]["line"]["color"] == netdraw.SUSPENDED_COLOUR
    acute = first[style.ORG_KIND_LABELS["acute"]]
    assert acute["marker"]["color"] == style.ORG_KIND_STYLE["acute"][0]
    assert acute["marker"]["line"]["color"] == [netdraw.FAILED_COLOUR]
    crossed = first["Failed organisation"]
    assert crossed["x"] == [netdraw.layout(g)["acute"][0]] and "FAILED" in crossed["hovertext"][0]
    assert d.n_failed == 1 and d.n_active == g.number_of_edges() - 2
    practices = first[style.ORG_KIND_LABELS["gp_practice"]]
    assert set(practices["text"]) == {""}                   # practices unlabelled; others named
    assert "ICB" in first[style.ORG_KIND_LABELS["commissioner"]]["text"]
    go.Figure(data=d.traces)                                 # valid plotly
    only = {t["name"]: t for t in netdraw.draw(g, node_text=["lead"]).traces}
    assert only[style.ORG_KIND_LABELS["community"]]["text"] == ["Lead"]
    assert only[style.ORG_KIND_LABELS["commissioner"]]["text"] == [""]


def test_money_scale_and_sizes():
    g = _big(3)
    d = netdraw.draw(g, money_scale=0.5, sizes={n: (1e9 if n == "lead" else 1.0) for n in g})
    hovers = [h for t in d.traces if t.get("hovertext") for h in t["hovertext"]]
    assert any("value: £800.00m a year" in h for h in hovers)   # £400m at half scale
    sizes = {t["name"]: max(t["marker"]["size"]) for t in d.traces
             if t["name"] in style.ORG_KIND_LABELS.values()}
    assert sizes[style.ORG_KIND_LABELS["community"]] == 38.0            # the largest: 8 + 30
    assert sizes[style.ORG_KIND_LABELS["acute"]] < 8.01                  # the smallest


def test_report_and_browser_app_draw_with_netdraw():
    """The same network gives the same positions and the same contract hovers in the report's
    figure and the browser app's (one drawing path, not two)."""
    from abm.report._figures import network_figure, network_layout
    from abm.viz import network as viz
    g = synthetic_network("icp_full")
    assert network_layout(g) == netdraw.layout(g) == viz.compute_layout(g)
    fake = types.SimpleNamespace(contracts=g, org_by_id={}, scale=1.0, month=0)
    live = viz.network_dict(fake)
    report = network_figure("icp_full", g).fig

    def contract_hovers(traces):
        return sorted(h for t in traces if (t.get("hovertext") if isinstance(t, dict)
                      else t.hovertext) for h in (t["hovertext"] if isinstance(t, dict)
                      else t.hovertext) if "payment:" in h)
    assert contract_hovers(live["data"]) == contract_hovers(report.data)
    assert len(contract_hovers(report.data)) == g.number_of_edges()
    assert _names(live["data"]) == [t.name for t in report.data]
