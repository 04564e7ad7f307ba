"""The report opened in headless Chromium (Debian chromium + Python playwright): every figure
renders an SVG, nothing is requested from the network, the console stays clean, and a
screenshot is kept in test-artifacts/ for a human to look at.

Skipped with one line when chromium is missing, except under ABM_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from abm.report import build_report

try:  # tests/ as a package or as a plain directory on sys.path
    from tests.browser import artifact_path, check_plotly_page, open_page
    from tests.synthetic import write_synthetic_results
except ImportError:  # pragma: no cover
    from browser import artifact_path, check_plotly_page, open_page
    from synthetic import write_synthetic_results

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory) -> Path:
    d = write_synthetic_results(tmp_path_factory.mktemp("browser"),
                                arrangements=("fragmented", "alliance", "prime_contractor",
                                              "icp_full"), sensitivity=True)
    return build_report(d)


def test_report_renders_offline_without_errors(sweep_report):
    """Every figure (all seven sections populated) draws an SVG with no console errors and no
    network request; the full-page screenshot is saved as test-artifacts/report.png."""
    seen = check_plotly_page(sweep_report, "report.png")
    assert seen["plotly"], "plotly.js did not load from the embedded copy"
    assert seen["figures"] >= 16
    assert seen["rendered"] == seen["figures"], f"figures without SVG: {seen['missing']}"
    assert all(n > 0 for n in seen["traces"]), seen["traces"]
    assert seen["errors"] == []
    assert [s.split(". ", 1)[1] for s in seen["sections"]] == [
        "Summary", "Set-up", "Contract networks", "Over time", "Risk sharing",
        "GP participation", "Sensitivity"]
    assert artifact_path("report.png").stat().st_size > 50_000


SIX = ("fragmented", "alliance", "prime_contractor", "prime_provider", "icp_partial", "icp_full")

LAYOUT_CHECK = """() => {
  const main = document.querySelector('main');
  const cs = getComputedStyle(main);
  const right = main.getBoundingClientRect().right - parseFloat(cs.paddingRight);
  const tables = [...document.querySelectorAll('main table')].map(t => ({
    cls: t.className, width: t.getBoundingClientRect().width,
    right: t.getBoundingClientRect().right, scroll: t.scrollWidth, client: t.clientWidth}));
  const cells = [...document.querySelectorAll('table.headline td, table.headline th')]
    .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.slice(0, 40));
  const heads = [...document.querySelectorAll('table.headline:not(.tail):not(.sides) thead th.arr')]
    .map(th => { const r = th.getBoundingClientRect(); return {text: th.textContent, right: r.right}; });
  const labels = [];
  document.querySelectorAll('figure.plot[id^="figure-network"]').forEach(f => {
    const gd = f.querySelector('.js-plotly-plot'), s = gd._fullLayout._size;
    const svg = gd.querySelector('svg.main-svg').getBoundingClientRect();
    const box = {l: svg.left + s.l, t: svg.top + s.t, r: svg.left + s.l + s.w, b: svg.top + s.t + s.h};
    gd.querySelectorAll('.scatterlayer .textpoint text').forEach(tx => {
      if (!tx.textContent) return;
      const bb = tx.getBoundingClientRect();
      labels.push({text: tx.textContent, inside: bb.left >= box.l - 1 && bb.right <= box.r + 1
                   && bb.top >= box.t - 1 && bb.bottom <= box.b + 1});
    });
  });
  return {window: window.innerWidth, page: document.scrollingElement.scrollWidth, right,
          tables, cells, heads, labels};
}"""


def test_tables_fit_a_1280_px_window_and_network_labels_stay_in_frame(tmp_path):
    """Six arrangements at a 1,280 px window: the page does not scroll sideways, every table
    (the final-year table above all) fits the text column, no cell of it overflows, every
    arrangement's column is on screen, and every name on a network diagram lies inside its
    plot area."""
    d = write_synthetic_results(tmp_path / "six", arrangements=SIX, risk_sources=True)
    report = build_report(d)
    with open_page(report.resolve().as_uri(), viewport=(1280, 900)) as (page, errors):
        page.wait_for_function(
            "() => [...document.querySelectorAll('figure.plot')].every("
            "f => f.querySelector('.js-plotly-plot svg.main-svg'))", timeout=120_000)
        seen = page.evaluate(LAYOUT_CHECK)
        page.locator("table.headline").first.screenshot(path=str(artifact_path("report-table.png")))
    assert seen["page"] <= seen["window"] == 1280, seen["page"]
    headline = [t for t in seen["tables"] if t["cls"] == "headline"]
    assert len(headline) == 1
    for t in seen["tables"]:
        assert t["right"] <= seen["right"] + 1 and t["scroll"] <= t["client"] + 1, t
    assert seen["cells"] == []
    assert len(seen["heads"]) == len(SIX)
    assert all(h["right"] <= seen["right"] + 1 for h in seen["heads"]), seen["heads"]
    assert seen["labels"] and all(x["inside"] for x in seen["labels"]), [
        x["text"] for x in seen["labels"] if not x["inside"]]
    assert errors == []
