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
    from tests.browser import artifact_path, check_plotly_page
    from tests.synthetic import write_synthetic_results
except ImportError:  # pragma: no cover
    from browser import artifact_path, check_plotly_page
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
