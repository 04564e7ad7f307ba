"""The published report (issue 5): structure, self-containment, house style and robustness.

These tests build reports from a small synthetic results directory in exactly the format
`abm run` writes (tests/synthetic.py), so they run in seconds without the model. The
browser rendering is checked in test_report_browser.py; a real `abm run` in
test_report_real.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from abm.report import SECTIONS, ReportInputError, build_report, export_static, render_html
from abm.report._data import final_values, headline_table, load
from abm.report._figures import network_layout
from abm.style import (
    ARRANGEMENT_COLOURS,
    ARRANGEMENTS,
    FONT_FAMILY,
    apply_style,
    arrangement_colour,
    arrangement_label,
    format_value,
)

try:  # tests/ as a package or as a plain directory on sys.path
    from tests.browser import require_chromium
    from tests.synthetic import synthetic_network, write_synthetic_results
except ImportError:  # pragma: no cover
    from browser import require_chromium
    from synthetic import synthetic_network, write_synthetic_results

ARRS = ("fragmented", "alliance", "icp_full")

# Written out here, not imported, so renaming a section or figure breaks a test on purpose.
SECTION_TITLES = ["Summary", "Set-up", "Contract networks", "Over time", "Risk sharing",
                  "GP participation", "Sensitivity"]
FIGURE_TITLES = [
    "Paired differences from Fragmented (95% CI)",
    "Contract value by payment kind",
    "Contract network: Fragmented",
    "Contract network: Alliance",
    "Contract network: ICP (full)",
    "Integration over time",
    "Fragmentation over time",
    "Risk over time",
    "Outcomes over time",
    "Who bears which risk: incidence by source",
    "Yearly surplus by party",
    "Provider failures and deficits",
    "GP practice participation over time",
]
SENSITIVITY_TITLES = ["Tornado: effect of each uncertain parameter", "Sobol sensitivity indices"]


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory) -> Path:
    """3 arrangements × 3 replicates × 24 months, no sweep."""
    return write_synthetic_results(tmp_path_factory.mktemp("plain"), arrangements=ARRS)


@pytest.fixture(scope="module")
def plain_report(plain_dir) -> str:
    return build_report(plain_dir).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """The same with a two-parameter Sobol sweep (points.csv, sensitivity.csv)."""
    return write_synthetic_results(tmp_path_factory.mktemp("sweep"), arrangements=ARRS,
                                   sensitivity=True)


@pytest.fixture(scope="module")
def sweep_report(sweep_dir) -> str:
    return build_report(sweep_dir).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def plain_figures(plain_dir, plain_report):
    """The figures of the plain report (rendered once for the tests that inspect them)."""
    return render_html(load(plain_dir))[1]


def _h2s(page: str) -> list[str]:
    return [re.sub(r"^\d+\.\s*", "", h) for h in re.findall(r"<h2>(.*?)</h2>", page)]


def test_build_report_writes_report_html_atomically(plain_dir, plain_report):
    """build_report returns results_dir/report.html and leaves no temporary file behind."""
    out = plain_dir / "report.html"
    assert out.read_text(encoding="utf-8") == plain_report
    assert out.stat().st_size > 1_000_000  # plotly.js is inside
    assert not [p for p in plain_dir.iterdir() if p.name.startswith(".report-")]
    assert oct(out.stat().st_mode & 0o777) == "0o644", "a published file must be readable"


def test_failed_build_keeps_previous_report(plain_dir, plain_report, monkeypatch):
    """A crash while rendering must not leave a truncated report.html or temp files."""
    before = (plain_dir / "report.html").read_bytes()

    def boom(data):
        raise RuntimeError("render failed")

    import abm.report as rep
    monkeypatch.setattr(rep, "render_html", boom)
    with pytest.raises(RuntimeError):
        rep.build_report(plain_dir)
    assert (plain_dir / "report.html").read_bytes() == before
    assert not [p for p in plain_dir.iterdir() if p.name.startswith(".report-")]


def test_sections_present_in_order(plain_report):
    """The seven sections appear once each, in the order the issue gives."""
    assert _h2s(plain_report) == SECTION_TITLES
    assert [t for _, t in SECTIONS] == SECTION_TITLES


def test_every_figure_title_present(plain_report):
    """Each expected figure is in the page, numbered, with its caption."""
    for title in FIGURE_TITLES:
        assert f". {title}.</b>" in plain_report, title
    n = plain_report.count('<figure class="plot"')
    assert n == len(FIGURE_TITLES)
    assert plain_report.count("Plotly.newPlot(") == n


def test_sensitivity_absent_says_so(plain_report):
    """Without uncertainties the Sensitivity section explains that nothing was swept."""
    sens = plain_report.split('<section id="sensitivity">', 1)[1]
    assert "No uncertainties were swept" in sens
    for title in SENSITIVITY_TITLES:
        assert title not in plain_report


def test_sensitivity_figures_when_swept(sweep_report):
    """A Sobol sweep gives a tornado (from per-point results) and Sobol indices."""
    sens = sweep_report.split('<section id="sensitivity">', 1)[1]
    for title in SENSITIVITY_TITLES:
        assert f". {title}.</b>" in sens, title
    assert "prevention.budget_share" in sens and "gp.integration_propensity" in sens
    assert "No uncertainties were swept" not in sens
    # the summary says which sweep point it shows
    assert "8 sweep points" in sweep_report


def test_plotlyjs_embedded_exactly_once(plain_report):
    """plotly.js is embedded once for the whole page, not per figure."""
    assert plain_report.count("* plotly.js v") == 1
    assert len(plain_report) < 2 * 5_000_000 + 3_000_000


def test_no_network_references(plain_report):
    """Nothing is loaded from the network: no external scripts, stylesheets or images."""
    assert '<script src="http' not in plain_report
    assert not re.search(r"<script[^>]*\ssrc=", plain_report), "only inline scripts"
    assert not re.search(r"<link[^>]*href=[\"']https?:", plain_report)
    assert not re.search(r"<img[^>]*src=[\"']https?:", plain_report)
    assert "cdn.plot.ly" not in plain_report.split("* plotly.js v", 1)[0]


def test_headline_table_shows_summary_values(plain_dir, plain_report):
    """The summary table carries summary.csv's means and paired differences."""
    s = pd.read_csv(plain_dir / "summary.csv")
    row = s[(s.arrangement == "icp_full") & (s.metric == "integrated_handoff_share")].iloc[0]
    assert format_value(row["mean"], "share") in plain_report
    assert "Δ\u00a0" + format_value(row["diff_mean"], "share", signed=True) in plain_report
    cost = s[(s.arrangement == "alliance") & (s.metric == "cost_per_capita")].iloc[0]
    assert format_value(cost["mean"], "gbp") in plain_report


def test_provenance_in_summary(plain_dir, plain_report):
    """Config hash, versions, seeds and dates of the run are in the Summary section."""
    man = json.loads((plain_dir / "manifest.json").read_text())
    summary = plain_report.split('<section id="setup">', 1)[0]
    assert man["config_sha256"] in summary
    assert man["versions"]["mesa"] in summary
    assert man["started"] in summary
    assert ", ".join(str(x["seed"]) for x in man["seeds"][:3]) in summary


def test_setup_lists_each_arrangement_with_sources(plain_report):
    """Set-up names every arrangement with key terms and sources from configs/arrangements."""
    setup = plain_report.split('<section id="setup">', 1)[1].split('<section id="networks">')[0]
    for a in ARRS:
        assert f"<code>{a}</code>" in setup
    assert setup.count("Sources for these terms") == len(ARRS)
    assert "Organisations" in setup  # the economy's organisations table


def test_arrangement_colours_fixed_across_figures(plain_figures):
    """Every trace drawn for an arrangement uses that arrangement's palette colour."""
    figures = plain_figures
    checked = 0
    for f in figures:
        for tr in f.fig.data:
            for a in ARRS:
                if tr.name == arrangement_label(a) and tr.type in ("scatter", "box", "bar"):
                    colour = (tr.line.color if tr.type == "scatter" and tr.mode == "lines"
                              else tr.marker.color)
                    if isinstance(colour, str):
                        assert colour == ARRANGEMENT_COLOURS[a], (f.title, a, colour)
                        checked += 1
    assert checked >= 3 * len(ARRS)


def test_every_figure_uses_house_style(plain_figures):
    """All figures went through apply_style (house template and font)."""
    figures = plain_figures
    for f in figures:
        assert f.fig.layout.template.layout.font.family == FONT_FAMILY, f.title
        assert f.fig.layout.title.text == f.title


def test_palette_is_fixed_and_distinct():
    """Six distinct colours for the six arrangement keys; unknown keys get a stable colour."""
    assert set(ARRANGEMENT_COLOURS) == set(ARRANGEMENTS)
    assert len(set(ARRANGEMENT_COLOURS.values())) == 6
    assert arrangement_colour("my_variant") == arrangement_colour("my_variant")
    assert arrangement_colour("my_variant") not in ARRANGEMENT_COLOURS.values()


def test_apply_style_is_idempotent():
    """Styling twice gives the same layout (figures may be restyled by other tools)."""
    import plotly.graph_objects as go
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    once = apply_style(fig, title="T", height=300).to_plotly_json()["layout"]
    twice = apply_style(fig, title="T", height=300).to_plotly_json()["layout"]
    assert once == twice


def test_network_layout_is_deterministic():
    """Node positions do not depend on insertion order (no random layout)."""
    g = synthetic_network("icp_full")
    h = nx.MultiDiGraph()
    h.add_nodes_from(reversed(list(g.nodes(data=True))))
    h.add_edges_from(reversed(list(g.edges(data=True))))
    assert network_layout(g) == network_layout(h)
    pos = network_layout(g)
    assert pos["nhse"][1] > pos["icb"][1] > pos["gp0"][1], "money flows downwards"


def test_network_hover_has_value_and_payment(plain_figures):
    """Contract hover text gives value and payment kind; node hover gives the budget."""
    figures = plain_figures
    net = next(f for f in figures if f.title == "Contract network: ICP (full)")
    hovers = [t for tr in net.fig.data if tr.hovertext is not None for t in tr.hovertext]
    assert any("payment: Whole-population annual payment" in t and "value: £650.00m" in t
               for t in hovers)
    assert any("budget: £600.00m" in t for t in hovers)
    legend = {tr.name for tr in net.fig.data if tr.showlegend is not False}
    assert {"Integrated care provider contract", "GP practice", "Acute trust"} <= legend


def test_missing_optional_inputs(tmp_path, plain_dir):
    """Only results.parquet is required: the rest missing gives notes, not a crash, and the
    headline differences are then computed from results.parquet."""
    d = tmp_path / "bare"
    d.mkdir()
    shutil.copy(plain_dir / "results.parquet", d)
    page = build_report(d).read_text(encoding="utf-8")
    assert _h2s(page) == SECTION_TITLES
    assert "No contract networks" in page
    assert "No yearly finances" in page
    assert "Δ\u00a0" in page  # paired differences computed here
    assert "Integration over time" in page


def test_missing_results_is_a_clear_error(tmp_path):
    """No results.parquet: ReportInputError naming the file."""
    with pytest.raises(ReportInputError, match="results.parquet"):
        build_report(tmp_path)


def test_missing_gp_metrics_handled(tmp_path):
    """Without gp_outside/... the GP section falls back to gp_practices_integrated."""
    d = write_synthetic_results(tmp_path / "nogp", arrangements=ARRS, gp_metrics=False)
    page = build_report(d).read_text(encoding="utf-8")
    gp = page.split('<section id="gp">', 1)[1].split("</section>")[0]
    assert "GP practice participation over time" in gp
    assert "Only the number of integrated practices" in gp


def test_final_values_follow_experiment_definition():
    """Fallback final-year values: last step for cumulative metrics, else the mean of the
    last 12 months (step 0, the initial state, excluded) — as abm.experiment defines them."""
    rows = []
    for step in range(0, 25):
        rows.append(("fragmented", 0, 1, step, "cost_per_capita", float(step)))
        rows.append(("fragmented", 0, 1, step, "provider_failures", float(step // 5)))
    r = pd.DataFrame(rows, columns=["arrangement", "replicate", "seed", "step", "metric",
                                    "value"])
    fv = final_values(r).set_index("metric")["value"]
    assert fv["cost_per_capita"] == pytest.approx(sum(range(13, 25)) / 12)
    assert fv["provider_failures"] == 4.0


def test_headline_table_pairs_by_seed(tmp_path, plain_dir):
    """Computed differences are paired by replicate seed, not pooled."""
    d = tmp_path / "pair"
    d.mkdir()
    shutil.copy(plain_dir / "results.parquet", d)
    data = load(d)
    t = headline_table(data).set_index(["arrangement", "metric"])
    fin = final_values(data.results)
    a = fin[(fin.arrangement == "icp_full") & (fin.metric == "health_index")].sort_values("seed")
    b = fin[(fin.arrangement == "fragmented") & (fin.metric == "health_index")].sort_values("seed")
    diff = a["value"].to_numpy() - b["value"].to_numpy()
    assert t.loc[("icp_full", "health_index"), "diff_mean"] == pytest.approx(diff.mean())
    assert t.loc[("fragmented", "health_index"), "diff_mean"] == 0.0


def test_static_export_without_browser_says_so(plain_figures, tmp_path, monkeypatch, capsys):
    """No Chromium: one line saying so, no exception, no files."""
    import abm.report as rep
    monkeypatch.setattr(rep, "find_browser", lambda: None)
    assert rep.export_static(plain_figures, tmp_path / "static") == []
    assert not (tmp_path / "static").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Chromium" in err[0]


@pytest.mark.browser
def test_static_export_png_and_svg(plain_figures, tmp_path):
    """With Debian's Chromium, figures are written as PNG and SVG (kaleido, one browser)."""
    require_chromium()
    few = plain_figures[:2]
    files = export_static(few, tmp_path / "static")
    assert len(files) == 2 * len(few)
    for f in files:
        assert f.exists() and f.stat().st_size > 1000, f
    svg = next(f for f in files if f.suffix == ".svg").read_text()
    assert "<svg" in svg
    png = next(f for f in files if f.suffix == ".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_report_passes_static_dir(plain_dir, tmp_path, monkeypatch):
    """build_report(static_dir=...) exports every figure of the page it wrote."""
    import abm.report as rep
    seen = {}
    monkeypatch.setattr(rep, "export_static",
                        lambda figs, d: seen.update(n=len(figs), d=Path(d)) or [])
    page = rep.build_report(plain_dir, static_dir=tmp_path / "img").read_text(encoding="utf-8")
    assert seen == {"n": page.count('<figure class="plot"'), "d": tmp_path / "img"}


def test_browser_helper_skips_or_fails_when_chromium_missing(monkeypatch):
    """tests/browser.py: no chromium means skip with a reason, or fail under
    ABM_REQUIRE_BROWSER=1 (CI must never silently skip browser tests)."""
    try:
        import tests.browser as b
    except ImportError:  # pragma: no cover
        import browser as b
    monkeypatch.setattr(b, "chromium_path", lambda: None)
    monkeypatch.delenv("ABM_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium not found"):
        b.require_chromium()
    monkeypatch.setenv("ABM_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="ABM_REQUIRE_BROWSER=1"):
        b.require_chromium()
    monkeypatch.setenv("ABM_REQUIRE_BROWSER", "0")
    with pytest.raises(pytest.skip.Exception):
        b.require_chromium()


def test_report_uses_the_recorded_baseline_and_labels(tmp_path):
    """The baseline and the labels of user-written arrangements come from the run's manifest:
    differences are shown from that baseline, and the user's label names its arrangement."""
    d = write_synthetic_results(tmp_path / "b", arrangements=("fragmented", "alliance",
                                                              "my_variant"),
                                baseline="alliance", labels={"my_variant": "My variant"})
    data = load(d)
    assert data.baseline == "alliance" and data.label("my_variant") == "My variant"
    page = build_report(d).read_text(encoding="utf-8")
    assert ". Paired differences from Alliance (95% CI).</b>" in page
    assert ". Contract network: My variant.</b>" in page
    assert "paired difference from the baseline, Alliance" in page
    t = headline_table(data).set_index(["arrangement", "metric"])
    s = pd.read_csv(d / "summary.csv").set_index(["arrangement", "metric"])
    key = ("fragmented", "health_index")
    assert t.loc[key, "diff_mean"] == pytest.approx(s.loc[key, "diff_mean"])
    assert pd.isna(s.loc[("alliance", "health_index"), "diff_mean"])
    # computed from results.parquet alone (no summary.csv), still from the recorded baseline
    (d / "summary.csv").unlink()
    bare = load(d)
    t2 = headline_table(bare).set_index(["arrangement", "metric"])
    assert t2.loc[("alliance", "health_index"), "diff_mean"] == 0.0
    fin = final_values(bare.results)
    fin = fin[fin.metric == "health_index"].set_index(["arrangement", "seed"])["value"]
    expected = (fin["fragmented"] - fin["alliance"]).mean()
    assert t2.loc[key, "diff_mean"] == pytest.approx(expected)
    assert abs(expected) > 1e-6                        # not trivially zero


# ------------------------------------------------------------------------- who bears which risk
def _risk_text(page: str) -> str:
    sec = page[page.index('<section id="risk">'):page.index('<section id="gp">')]
    return re.sub(r"\s+", " ", re.sub(r'<div id="fig-.*?</script>\s*</div>', "", sec, flags=re.S))


def test_risk_section_leads_with_incidence_then_tail_then_covariance(plain_report):
    """The matrix first, then the sources' allocation, tail risk, and the covariance shares last
    with their caveat (3 replicates: too few to show them at all)."""
    sec = _risk_text(plain_report)
    order = [sec.index(x) for x in ("Who bears which risk</h3>", "Figure 10. Who bears which risk",
                                    "Against the allocation the sources state", "Tail risk</h3>",
                                    "Share of variation across the declared uncertainties</h3>")]
    assert order == sorted(order)
    assert "The covariance shares are not shown: with 3 runs" in sec
    assert "−4.63" not in sec


def test_matrix_cells_intervals_and_undefined_sources(plain_dir, plain_figures):
    fig = next(f for f in plain_figures if f.slug == "risk-incidence").fig
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == len(ARRS)                            # one matrix per arrangement
    icp = next(t for t in heat if t.name == arrangement_label("icp_full"))
    rows = {y: list(t) for y, t in zip(icp.y, icp.text)}
    assert all(c == "undefined" for c in rows["Quality change"])   # changed no money
    assert all(re.match(r"<b>-?\d\.\d\d</b><br>\[", c) for c in rows["Activity change"])
    inc = pd.read_csv(plain_dir / "risk_incidence.csv")
    sums = inc[inc["share"].notna()].groupby(["arrangement", "source", "direction"])["share"].sum()
    assert sums.to_numpy() == pytest.approx(1.0)


def test_allocation_sentences_compare_with_the_sources(plain_report):
    sec = _risk_text(plain_report)
    icp = sec[sec.index(f"<b>{arrangement_label('icp_full')}</b>"):]
    icp = icp[:icp.index("</li>")]
    assert "The sources state that under an ICP contract" in icp
    assert "Health Service Journal" in icp and "the holder side bears" in icp
    assert "Undefined here (the source changed no money): a quality fall" in icp
    frag = sec[sec.index("<b>Fragmented</b>"):]
    assert "the commissioner bears activity risk on tariff" in frag[:frag.index("</li>")]


def test_covariance_shares_shown_with_intervals_from_five_runs(tmp_path):
    out = write_synthetic_results(tmp_path / "six", arrangements=ARRS, replicates=6)
    figs = render_html(load(out))[1]
    cov = next(f for f in figs if f.slug == "risk-shares")
    assert cov.title == "Share of variation across the declared uncertainties"
    assert all(t.error_y.array is not None for t in cov.fig.data)
    page = build_report(out).read_text(encoding="utf-8")
    assert "sampled baseline" in _risk_text(page)


def test_no_risk_sources_says_so(tmp_path):
    out = write_synthetic_results(tmp_path / "none", arrangements=ARRS, risk_sources=False)
    sec = _risk_text(build_report(out).read_text(encoding="utf-8"))
    assert "No risk sources were declared" in sec and "Tail risk" in sec


def test_headline_findings_never_name_a_winner_the_intervals_do_not_separate():
    import pandas as pd
    from abm.report import _findings_html
    from abm.report import _figures as F

    class D:
        baseline = "fragmented"
        label = staticmethod(lambda a: a)
        scope, scope_short, n_replicates, runs_word = "single", "", 10, "10 replicates"
    m = "cost_per_capita"
    assert m in F.FOREST_METRICS
    tied = pd.DataFrame([
        {"arrangement": "fragmented", "metric": m, "mean": 1360.0, "ci_low": 1350.0, "ci_high": 1370.0, "n": 10},
        {"arrangement": "icp_full", "metric": m, "mean": 1359.0, "ci_low": 1349.0, "ci_high": 1369.0, "n": 10}])
    html = _findings_html(D(), tied)
    assert "no arrangement is clearly lowest" in html and "was lowest under" not in html
    # a tie still states the unit, both intervals and n
    assert "£ per person a year" in html and "n = 10" in html
    assert "95% CI £1,349 to £1,369" in html and "95% CI £1,350 to £1,370" in html
    clear = tied.assign(mean=[1360.0, 1300.0], ci_low=[1350.0, 1290.0], ci_high=[1370.0, 1310.0])
    html = _findings_html(D(), clear)
    assert "was lowest under icp_full" in html and "separated from every other arrangement" in html


def test_small_sobol_designs_carry_a_warning():
    import pandas as pd
    from abm.report import _sobol_caveat

    class D:
        sensitivity = pd.DataFrame({"ST_conf": [1.5, 2.0, 0.9]})
    assert "Read these Sobol indices with care" in _sobol_caveat(D(), {"method": "sobol", "samples": 2})
    D.sensitivity = pd.DataFrame({"ST_conf": [0.05, 0.04]})
    assert _sobol_caveat(D(), {"method": "sobol", "samples": 256}) == ""


# ------------------------------------------------------------ headline findings at the defaults

def _with_defaults(src: Path, dst: Path, k: int) -> Path:
    """A copy of a synthetic sweep whose last `k` points are at the defaults (as
    `uncertainties.defaults: k` makes them: no parameter changed, blank in points.csv)."""
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man["config"]["uncertainties"]["defaults"] = k
    (dst / "manifest.json").write_text(json.dumps(man))
    pts = pd.read_csv(dst / "points.csv")
    pts.loc[pts.index[-k:], [c for c in pts.columns if c != "point"]] = np.nan
    pts.to_csv(dst / "points.csv", index=False)
    (dst / "report.html").unlink(missing_ok=True)
    return dst


def _final_mean(results: pd.DataFrame, arrangement: str, metric: str, points) -> float:
    r = results[(results.arrangement == arrangement) & (results.metric == metric)
                & results.point.isin(list(points)) & (results.step > 0)]
    last = r.sort_values("step").groupby(["point", "replicate"]).tail(12)
    return float(last.groupby(["point", "replicate"])["value"].mean().mean())


def test_headlines_of_a_sweep_are_at_the_defaults(tmp_path, sweep_dir):
    """With points at the defaults, the table and findings pool exactly those points (their
    replicates pooled, paired by point and replicate), not sample 0, and say so."""
    d = _with_defaults(sweep_dir, tmp_path / "defaults", k=2)
    data = load(d)
    assert data.scope == "defaults" and data.headline_points == [6, 7]
    reps = pd.read_parquet(d / "results.parquet")["replicate"].nunique()
    assert data.n_replicates == 2 * reps
    t = headline_table(data).set_index(["arrangement", "metric"])
    raw = pd.read_parquet(d / "results.parquet")
    at_defaults = _final_mean(raw, "icp_full", "cost_per_capita", [6, 7])
    sample0 = _final_mean(raw, "icp_full", "cost_per_capita", [0])
    assert abs(at_defaults - sample0) > 1.0          # the test can tell the two apart
    assert t.loc[("icp_full", "cost_per_capita"), "mean"] == pytest.approx(at_defaults)
    assert t.loc[("icp_full", "cost_per_capita"), "n"] == 2 * reps
    diff = at_defaults - _final_mean(raw, "fragmented", "cost_per_capita", [6, 7])
    assert t.loc[("icp_full", "cost_per_capita"), "diff_mean"] == pytest.approx(diff)
    page = build_report(d).read_text(encoding="utf-8")
    findings = page.split("<h3>Headline findings</h3>", 1)[1].split("</ul>", 1)[0]
    assert f"n = {2 * reps} runs per arrangement, at the defaults" in findings
    assert "Not at the defaults" not in findings


def test_headlines_of_a_sweep_without_defaults_pool_every_point_and_say_so(sweep_dir):
    """No point at the defaults: the findings pool every point, labelled as such, and never
    silently show sample 0."""
    data = load(sweep_dir)
    assert data.scope == "all" and len(data.headline_points) == 8
    reps = pd.read_parquet(sweep_dir / "results.parquet")["replicate"].nunique()
    t = headline_table(data).set_index(["arrangement", "metric"])
    raw = pd.read_parquet(sweep_dir / "results.parquet")
    assert t.loc[("icp_full", "cost_per_capita"), "mean"] == pytest.approx(
        _final_mean(raw, "icp_full", "cost_per_capita", range(8)))
    assert t.loc[("icp_full", "cost_per_capita"), "n"] == 8 * reps
    page = build_report(sweep_dir).read_text(encoding="utf-8")
    findings = page.split("<h3>Headline findings</h3>", 1)[1].split("</ul>", 1)[0]
    assert "Not at the defaults" in findings and "all sweep points pooled" in findings
    assert f"n = {8 * reps} runs" in findings


def test_every_headline_states_unit_interval_and_n(plain_report):
    findings = plain_report.split("<h3>Headline findings</h3>", 1)[1].split("</ul>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", findings)
    assert len(items) >= 5
    for item in items:
        assert "95% CI" in item and re.search(r"n = \d+ runs", item), item
        assert re.search(r"\((per cent|£[^;]*|number[^;]*|index, 0 to 1|per 1,000 population|"
                         r"organisations per patient);", item), item


def test_intervals_are_clipped_to_each_metric_range(tmp_path, plain_dir):
    """A t-interval of a 0-1 metric never leaves 0-1, and a count's never goes below zero."""
    from abm.definitions import METRIC_RANGES
    d = tmp_path / "wide"
    shutil.copytree(plain_dir, d)
    (d / "summary.csv").unlink()                    # the table computes every interval itself
    r = pd.read_parquet(d / "results.parquet")
    spread = r["replicate"].map({0: -1.0, 1: 0.0, 2: 1.0}).fillna(0.0)
    for metric, k in (("loss_gini", 0.6), ("provider_failures", 3.0)):
        m = r["metric"] == metric
        r.loc[m, "value"] = (0.3 if metric == "loss_gini" else 1.0) + k * spread[m]
    r.loc[r["metric"] == "loss_gini", "value"] = r.loc[r["metric"] == "loss_gini", "value"].clip(0, 1)
    r.loc[r["metric"] == "provider_failures", "value"] = r.loc[
        r["metric"] == "provider_failures", "value"].clip(0)
    r.to_parquet(d / "results.parquet")
    t = headline_table(load(d))
    for metric in ("loss_gini", "provider_failures"):
        lo_b, hi_b = METRIC_RANGES[metric]
        sub = t[t.metric == metric]
        assert (sub["ci_low"] >= lo_b).all(), sub
        assert lo_b in set(sub["ci_low"])             # the raw interval did reach past it
        if hi_b is not None:
            assert (sub["ci_high"] <= hi_b).all()


def test_every_recorded_metric_declares_its_range():
    from abm.definitions import METRIC_RANGES
    from abm.metrics import ALL_METRICS
    assert set(ALL_METRICS) <= set(METRIC_RANGES)


def test_surplus_by_party_gives_each_party_its_own_scale(plain_dir):
    """One panel per party, each with its own y axis (not shared), in a unit that suits its
    size, so a practice's surplus is readable beside the funder's."""
    from abm.report._figures import surplus_figure
    data = load(plain_dir)
    f = surplus_figure(data).fig
    parties = list(dict.fromkeys(data.finance["party"].astype(str)))
    axes = {}
    for t in f.data:
        axes.setdefault(t.yaxis, set()).add(t.name)
    assert len(axes) == len(parties) >= 3
    labels = {data.label(a) for a in data.arrangements}
    assert all(names <= labels for names in axes.values())
    used = [f.layout["yaxis" + ref[1:]] for ref in axes]
    assert all(ax.matches is None for ax in used)           # independent scales
    assert all(ax.title.text.startswith("yearly surplus, £") for ax in used)
    assert len({ax.title.text for ax in used}) >= 2          # £m for the big parties, £k for small
    # each panel's boxes span a good part of their own axis: no flat lines
    for yref, names in axes.items():
        boxes = [t for t in f.data if t.yaxis == yref]
        spread = max(max(b.upperfence) for b in boxes) - min(min(b.lowerfence) for b in boxes)
        assert spread > 0
