"""`abm viz` in headless Chromium: the server starts on a free local port, the contract network
renders with no network access and no console errors, switching the arrangement and pressing Step
moves the month counter and the charts, and a screenshot is kept as test-artifacts/viz.png.

Skipped with one line when Debian chromium or playwright is missing, except under
ABM_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from abm.viz import server_command, server_env

try:  # tests/ as a package or as a plain directory on sys.path
    from tests.browser import artifact_path, open_page, require_chromium
except ImportError:  # pragma: no cover
    from browser import artifact_path, open_page, require_chromium

pytestmark = pytest.mark.browser

START_TIMEOUT_S = 120    # solara needs ~5 s on an idle machine; CI has 2 busy cores
RENDER_TIMEOUT_MS = 180_000
STEP_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_http(url: str, proc: subprocess.Popen, log_path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"viz server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"viz server not ready after {timeout_s} s:\n{log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server by its process id: SIGINT (Ctrl+C), then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def viz_url(tmp_path_factory):
    """The page served by the same command `abm viz` runs, on a free loopback port."""
    require_chromium()  # skip before paying for a server start
    port = _free_port()
    log_path = tmp_path_factory.mktemp("viz") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_command("127.0.0.1", port), env=server_env(), stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, log_path, START_TIMEOUT_S)
        yield url
    finally:
        _stop(proc)
    assert proc.poll() is not None, "viz server still running after the test"


def _month(page) -> int:
    return int(page.locator("h3.abm-month").inner_text().split()[-1])


def _chart_paths(page) -> str:
    return "|".join(page.locator(".abm-metrics path.js-line").evaluate_all("els => els.map(e => e.getAttribute('d'))"))


def test_viz_page_switch_arrangement_and_step(viz_url):
    """Network renders; choosing 'alliance' + Reset rebuilds it; Step x3 moves the month to 3 and
    changes the charts; Play/pause work; no console errors or off-machine requests; screenshot saved."""
    with open_page(viz_url, viewport=(1400, 1750), timeout_ms=RENDER_TIMEOUT_MS) as (page, errors):
        page.set_default_timeout(STEP_TIMEOUT_MS)
        # the contract network has drawn its organisations
        page.wait_for_selector(".abm-network .main-svg", timeout=RENDER_TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelectorAll('.abm-network .scatterlayer .point').length > 50",
            timeout=RENDER_TIMEOUT_MS)
        # month 0 is the set-up: the metric panels show it as dots, not as the start of a line
        page.wait_for_selector(".abm-metrics .scatterlayer path.point", state="attached",
                               timeout=RENDER_TIMEOUT_MS)
        assert _month(page) == 0
        assert "ICP (full)" in page.locator(".abm-status").inner_text()

        # switch the arrangement: pick it in the drop-down, then Reset (Mesa applies inputs on Reset)
        page.locator(".v-select:has(label:text-is('Arrangement'))").click()
        page.get_by_role("option", name="alliance", exact=True).click()
        page.get_by_role("button", name="Reset", exact=True).click()
        page.wait_for_selector(".abm-status code:text-is('alliance')")
        page.wait_for_selector(".abm-network .legendtext:text-is('Alliance agreement')")

        charts_before = _chart_paths(page)
        for k in range(1, 4):
            page.get_by_role("button", name="Step", exact=True).click()
            page.wait_for_selector(f"h3.abm-month:text-is('Month {k}')")
        page.wait_for_selector(".abm-network .gtitle:has-text('month 3')")
        page.wait_for_function(
            "before => [...document.querySelectorAll('.abm-metrics path.js-line')]"
            ".map(e => e.getAttribute('d')).join('|') !== before", arg=charts_before)
        assert _month(page) == 3
        assert "Time: 3" in page.locator("body").inner_text()  # Mesa's own step counter agrees
        assert _chart_paths(page) != charts_before
        # figures fill their grid cells (plotly would otherwise stay at its default 700 px)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.js-plotly-plot')].every("
            "gd => Math.abs(gd._fullLayout.width - gd.clientWidth) < 5)")
        page.wait_for_timeout(500)  # let plotly finish its transition before the picture
        page.screenshot(path=str(artifact_path("viz.png")), full_page=True)

        # Play runs on by itself; pause stops it and gives Step back
        page.get_by_role("button", name="▶", exact=True).click()
        page.wait_for_function(
            "() => parseInt(document.querySelector('h3.abm-month').innerText.split(' ').pop()) >= 5")
        # (dispatched: the button is redrawn every month, which Playwright's click waits out)
        page.get_by_role("button", name="❚❚", exact=True).dispatch_event("click")
        page.wait_for_selector("button:has-text('Step'):not([disabled])")
        assert _month(page) >= 5
        assert not errors, "\n".join(errors)


SLIDERS = {  # label (as the page shows it) -> (minimum, where on the track to drag to)
    "Population scale": (0.02, 0.3),          # 16%: a model small enough to rebuild quickly
    "Prevention budget share": (0.0, 0.75),
    "Practices' autonomy preference": (0.05, 0.75),
}


def _slider(page, label: str):
    return page.locator(".v-input__slider", has=page.locator(f"label:has-text(\"{label}\")"))


def test_model_sliders_have_a_track_show_their_value_and_follow_the_mouse(viz_url):
    """Each of the three model sliders has a visible track as wide as most of the sidebar, shows
    its value on the thumb, and a mouse drag along the track sets a value there (not the
    minimum); after Reset the model runs with the dragged population scale."""
    with open_page(viz_url, viewport=(1400, 1000), timeout_ms=RENDER_TIMEOUT_MS) as (page, errors):
        page.set_default_timeout(STEP_TIMEOUT_MS)
        page.wait_for_selector(".abm-network .main-svg", timeout=RENDER_TIMEOUT_MS)
        dragged = {}
        for label, (minimum, to) in SLIDERS.items():
            box = _slider(page, label)
            box.scroll_into_view_if_needed()
            track = box.locator(".v-slider__track-container").bounding_box()
            whole = box.bounding_box()
            assert track and track["width"] > 0.6 * whole["width"] > 100, (label, track, whole)
            value_text = box.locator(".v-slider__thumb-label")
            assert value_text.is_visible(), label
            before = float(value_text.inner_text())
            assert before == pytest.approx(float(box.locator("input").get_attribute("value")))
            thumb = box.locator(".v-slider__thumb").bounding_box()
            y = thumb["y"] + thumb["height"] / 2
            page.mouse.move(thumb["x"] + thumb["width"] / 2, y)
            page.mouse.down()
            page.mouse.move(track["x"] + to * track["width"], y, steps=8)
            page.mouse.up()
            page.wait_for_function(
                "([el, before]) => parseFloat(el.innerText) !== before",
                arg=[value_text.element_handle(), before])
            after = float(value_text.inner_text())
            assert after != pytest.approx(minimum) and after > before, (label, before, after)
            dragged[label] = after
        # the dragged value reaches the model: Reset rebuilds it at that population scale
        scale = dragged["Population scale"]
        page.get_by_role("button", name="Reset", exact=True).click()
        page.wait_for_selector(f".abm-scale:has-text('{scale:.0%} sample')")
        assert not errors, "\n".join(errors)
