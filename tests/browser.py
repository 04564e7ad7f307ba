"""Shared helper for browser tests: Debian's Chromium driven by Python Playwright.

Never runs `playwright install`: it uses the system browser at /usr/bin/chromium (or one on
PATH). When the browser or Playwright is missing the test is skipped with one line saying why,
except under ABM_REQUIRE_BROWSER=1 (set by .ci/run), where it fails, so CI never silently skips.

    from browser import open_page          # or: from tests.browser import open_page
    with open_page(url) as (page, errors):
        ...
        assert not errors
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

LOCAL_SCHEMES = {"file", "data", "blob", "about"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def browser_required() -> bool:
    """True when browser tests must run (CI): a missing browser is then a failure."""
    return os.environ.get("ABM_REQUIRE_BROWSER", "").strip() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if browser_required():
        pytest.fail(f"ABM_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """Debian's Chromium: /usr/bin/chromium, else the first `chromium` on PATH."""
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """Path of the browser, or skip (fail under ABM_REQUIRE_BROWSER=1) saying why."""
    path = chromium_path()
    if path is None:
        _unavailable("Debian chromium not found (apt-get install -y chromium); "
                     "browser test skipped")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Python playwright not installed (pip install -e '.[test]'); "
                     "browser test skipped")
    return path  # type: ignore[return-value]


@contextlib.contextmanager
def launch() -> Iterator[object]:
    """A headless Playwright Chromium browser using the system executable and PLATFORM flags."""
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(url: str, *, viewport=(1280, 900), block_network: bool = True,
              wait_until: str = "load", timeout_ms: int = 60_000):
    """Open `url` and yield (page, errors).

    `errors` collects console errors, uncaught page exceptions and, with `block_network`,
    every request that left the machine (anything but file:, data:, blob:, about: and
    loopback), which is aborted: a self-contained page must not need the network.
    """
    errors: list[str] = []
    with launch() as browser:
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        if block_network:
            def _route(route):
                u = route.request.url
                parsed = urlsplit(u)
                if parsed.scheme in LOCAL_SCHEMES or parsed.hostname in LOOPBACK:
                    route.continue_()
                else:
                    errors.append(f"network request: {u}")
                    route.abort()
            page.route("**/*", _route)
        page.goto(url, wait_until=wait_until, timeout=timeout_ms)
        yield page, errors
        page.close()


def artifact_path(name: str) -> Path:
    """Where to keep a test artifact (screenshots): <repo>/test-artifacts/<name>."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


# ----------------------------------------------------------------- pages of Plotly figures

ALL_RENDERED = """() => {
  const figs = [...document.querySelectorAll('figure.plot')];
  return figs.length > 0 && figs.every(f => f.querySelector('.js-plotly-plot svg.main-svg'));
}"""


def check_plotly_page(report: Path | str, screenshot: str | None = None) -> dict:
    """Open a page of Plotly figures (each in a <figure class="plot">) offline, wait until
    every figure has drawn its SVG, save a full-page screenshot under test-artifacts/, and
    return what was seen: figures, rendered, missing (ids), traces per figure, section
    headings, plotly version, errors (console, page, network)."""
    url = report if isinstance(report, str) else Path(report).resolve().as_uri()
    with open_page(url, viewport=(1280, 900)) as (page, errors):
        try:
            page.wait_for_function(ALL_RENDERED, timeout=60_000)
        except Exception:
            pass  # reported below with the per-figure detail
        seen = page.evaluate("""() => {
          const figs = [...document.querySelectorAll('figure.plot')];
          return {
            figures: figs.length,
            rendered: figs.filter(f => f.querySelector('.js-plotly-plot svg.main-svg')).length,
            missing: figs.filter(f => !f.querySelector('.js-plotly-plot svg.main-svg'))
                        .map(f => f.id),
            traces: figs.map(f => f.querySelectorAll('.js-plotly-plot .trace, .js-plotly-plot .scatterlayer .trace, .js-plotly-plot .barlayer .trace, .js-plotly-plot .heatmaplayer .hm').length),
            sections: [...document.querySelectorAll('section > h2')].map(h => h.textContent),
            plotly: typeof window.Plotly === 'object' ? window.Plotly.version : null,
          };
        }""")
        if screenshot:
            page.screenshot(path=str(artifact_path(screenshot)), full_page=True)
        seen["errors"] = list(errors)
    return seen
