"""End to end: `streamlit run app.py` in a subprocess, every page in headless Debian Chromium.

Saves screenshots under test-artifacts/screenshots/; with AOFL_UPDATE_SCREENSHOTS=1 it also copies
Angles and Embeddings to docs/screenshots/ for the README (off by default, so a test run does not
change tracked files). Skips when /usr/bin/chromium or playwright is missing
(`apt-get install -y chromium`; Playwright's own browser download is not used).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
PAGES = ["Overview", "Angles", "Conversations", "Embeddings", "Ablations", "Playground"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(app_env):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    port = _free_port()
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"streamlit did not start (exit {proc.poll()}); see test-artifacts/streamlit.log")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_for_app(page, timeout_ms: int = 180_000, plot: bool = True) -> None:
    """The script finished (stApp not running, no running status widget) and a plot is drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => { const w = document.querySelector('[data-testid="stStatusWidget"]');
                   return !w || !/Running/i.test(w.innerText); }""", timeout=timeout_ms)
    if plot:
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=timeout_ms)
    page.wait_for_timeout(800)  # let plotly finish its transitions before a screenshot


def check_page(page, name: str) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{name}: {exceptions.first.inner_text()}"
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()}"
    assert page.locator(".js-plotly-plot").count() >= 1, f"{name}: no plot"


def test_every_page_in_chromium(server):
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    update_docs = os.environ.get("AOFL_UPDATE_SCREENSHOTS") == "1"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2000})
            page.goto(server, timeout=120_000)
            for name in PAGES:
                if name != "Overview":
                    page.locator('[data-testid="stSidebarNav"] a', has_text=name).first.click()
                    page.wait_for_timeout(500)
                if name == "Playground":
                    wait_for_app(page, plot=False)
                    page.get_by_role("button", name="Train").click()
                    page.wait_for_timeout(500)
                wait_for_app(page)
                check_page(page, name)
                assert page.locator("h1").first.inner_text().strip() == name
                shot = SHOTS / f"{name.lower()}.png"
                page.screenshot(path=str(shot), full_page=True)
                if update_docs and name in ("Angles", "Embeddings"):
                    DOCS.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(shot, DOCS / f"{name.lower()}.png")
        finally:
            browser.close()
    for name in PAGES:
        assert (SHOTS / f"{name.lower()}.png").stat().st_size > 10_000
