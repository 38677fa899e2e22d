"""End to end: `streamlit run app.py` in a subprocess, every page in headless Debian Chromium.

Saves screenshots under test-artifacts/screenshots/; with AOFL_UPDATE_SCREENSHOTS=1 it also copies
Angles and Embeddings to docs/screenshots/ for the README (off by default, so a test run does not
change tracked files). Skips when /usr/bin/chromium or playwright is missing
(`apt-get install -y chromium`; Playwright's own browser download is not used).
"""

import contextlib
import os
import re
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from aofl.bench import classroom as _classroom

pytestmark = [pytest.mark.browser, pytest.mark.app]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = _classroom.CHROMIUM
FLAGS = list(_classroom.CHROMIUM_FLAGS)  # the class bench's: one list of the flags this machine needs
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
PAGES = ["Overview", "Angles", "Conversations", "Embeddings", "Ablations", "Evidence", "Playground"]


@contextlib.contextmanager
def _streamlit_server(log_name: str = "streamlit.log"):
    """`streamlit run app.py` on a free port (aofl.bench.classroom.serve_app); yields its URL once
    /_stcore/health answers."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            url, _ = stack.enter_context(
                _classroom.serve_app(dict(os.environ), ROOT / "test-artifacts" / log_name)
            )
        except RuntimeError as e:  # did not start: the log's tail says why
            pytest.fail(str(e))
        yield url


@pytest.fixture(scope="module")
def server(app_env):
    with _streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (a new page, i.e. a new session, per test)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def wait_for_app(page, timeout_ms: int = 180_000, plot: bool = True) -> None:
    """The script finished (stApp not running, no running status widget) and a plot is drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => { const w = document.querySelector('[data-testid="stStatusWidget"]');
                   return !w || !/Running/i.test(w.innerText); }""",
        timeout=timeout_ms,
    )
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


# ---- issue #16: the sidebar shows what the pages use; links; search; lasso -------------------------------------


def _selectbox(page, label: str, sidebar: bool = True):
    root = '[data-testid="stSidebar"] ' if sidebar else '[data-testid="stMain"] '
    return (
        page.locator(root + '[data-testid="stSelectbox"]')
        .filter(has=page.locator('[data-testid="stWidgetLabel"]', has_text=label))
        .first
    )


def shown_value(page, label: str, sidebar: bool = True) -> str:
    """What the browser displays in a select box (not what the server believes)."""
    return _selectbox(page, label, sidebar).locator("input[role=combobox]").input_value()


def expect_shown(page, label: str, prefix: str, sidebar: bool = True, timeout_ms: int = 120_000) -> None:
    """Wait until the select box displays a value starting with `prefix` (a rerun is asynchronous)."""
    from playwright.sync_api import expect

    expect(_selectbox(page, label, sidebar).locator("input[role=combobox]")).to_have_value(
        re.compile("^" + re.escape(prefix)), timeout=timeout_ms
    )


def choose(page, label: str, option: str, sidebar: bool = True) -> None:
    _selectbox(page, label, sidebar).locator("input[role=combobox]").click()
    page.get_by_role("option", name=re.compile("^" + re.escape(option))).first.click()
    page.wait_for_timeout(300)


def _second_dataset(app_env) -> str | None:
    """A real dataset whose files are here and that has checkpoints in the app's manifest."""
    from aofl.data import available_datasets
    from aofl.store import registry

    for name in available_datasets():
        if name != "synthetic":
            try:
                if registry.list_checkpoints(name, app_env["dir"]):
                    return name
            except registry.RegistryError:
                pass
    return None


def test_sidebar_shows_the_checkpoint_the_pages_use(server, browser, app_env):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server, timeout=120_000)
    wait_for_app(page)
    names = [e.name for e in app_env["entries"]]
    assert shown_value(page, "Checkpoint").startswith(names[0])
    choose(page, "Checkpoint", names[1])
    expect_shown(page, "Checkpoint", names[1])
    wait_for_app(page)
    assert (
        page.locator('[data-testid="stMain"]').get_by_text(names[1], exact=True).count() >= 1
    )  # the page's own
    assert f"ckpt={names[1]}" in page.url
    other = _second_dataset(app_env)
    if other is None:
        pytest.skip(
            "no second dataset with checkpoints here (the IEMOCAP/MELD files and their manifest entries)"
        )
    # the reported bug: the box kept showing the synthetic checkpoint after the dataset changed
    choose(page, "Dataset", other)
    expect_shown(page, "Checkpoint", f"{other}-")
    wait_for_app(page, plot=False)
    assert shown_value(page, "Dataset") == other
    shown = shown_value(page, "Checkpoint")
    assert shown.startswith(f"{other}-"), shown
    assert f"data={other}" in page.url and f"ckpt={shown.split(' ')[0]}" in page.url
    page.close()


def test_a_deep_link_is_a_fresh_servers_first_request_and_survives_a_reload(app_env, browser):
    from aofl.data import load_dataset

    dialogue = load_dataset("synthetic", seed=0).split("test")[2].dialogue_id
    uid = f"{dialogue}#3"
    name = app_env["entries"][1].name
    with _streamlit_server("streamlit-fresh.log") as url:  # nobody has opened this server yet
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        link = f"{url}/conversations?split=test&ckpt={name}&utt={urllib.parse.quote(uid)}"
        page.goto(link, timeout=120_000)
        for attempt in ("first request", "reload"):
            wait_for_app(page)
            assert page.locator("h1").first.inner_text().strip() == "Conversations", attempt
            nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
            assert "Overview" in nav and "Playground" in nav, (
                attempt,
                nav,
            )  # the app's navigation, not pages/
            assert shown_value(page, "Checkpoint").startswith(name), attempt
            assert shown_value(page, "Dialogue", sidebar=False).startswith(dialogue), attempt
            assert shown_value(page, "Utterance", sidebar=False).startswith(uid), attempt
            check_page(page, attempt)
            if attempt == "first request":
                page.reload()
        page.close()


def test_the_playground_as_a_fresh_servers_first_request_has_the_apps_sidebar(app_env, browser):
    """The Playground needs no checkpoint, so it had no reason to read the context: opened first on a
    fresh server it ran alone, with pages/' own navigation and no sidebar."""
    with _streamlit_server("streamlit-fresh-playground.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/playground", timeout=120_000)
        wait_for_app(page, plot=False)
        assert page.locator("h1").first.inner_text().strip() == "Playground"
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Overview" in nav and "Evidence" in nav and "app" not in nav.split(), nav
        assert shown_value(page, "Dataset")  # app.py's sidebar ran
        page.close()


def test_search_finds_an_utterance_and_jumps_to_it(server, browser):
    from aofl.data import load_dataset

    test = load_dataset("synthetic", seed=0).split("test")
    dialogue = test[3].dialogue_id
    uid = f"{dialogue}#2"
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{server}/conversations", timeout=120_000)
    wait_for_app(page)
    box = page.locator('[data-testid="stTextInput"]').filter(has_text="Find an utterance").locator("input")
    box.fill(uid.upper())  # case-insensitive
    box.press("Enter")
    # ids are matched as substrings (d#2 also finds d#20, ...), listed in turn order: ours is the first row
    page.get_by_text(re.compile(r"^\d+ match(es)?\b")).first.wait_for(timeout=120_000)
    wait_for_app(page)
    # click the first result row (the grid is a canvas: click where its first row is)
    grid = page.locator('[data-testid="stDataFrame"]').first
    b = grid.bounding_box()
    page.mouse.click(b["x"] + 15, b["y"] + 35 + 17)  # the row marker of the first row
    expect_shown(page, "Dialogue", dialogue, sidebar=False)
    expect_shown(page, "Utterance", uid, sidebar=False)
    wait_for_app(page)
    assert page.get_by_role("heading", name=f"Utterance {uid}").count() == 1
    page.close()


def test_a_lasso_on_an_embedding_panel_lists_the_selected_utterances(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{server}/embeddings", timeout=120_000)
    wait_for_app(page)
    assert page.get_by_text("Draw a lasso or a box").count() == 1
    drag = page.locator(".js-plotly-plot .nsewdrag").first
    b = drag.bounding_box()
    cx, cy, rx, ry = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, b["width"] * 0.3, b["height"] * 0.3
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in ((cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry + 2)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    caption = page.get_by_text(re.compile(r"^\d+ utterances, \d+ predicted correctly"))
    caption.first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert caption.count() == 1
    assert int(caption.inner_text().split()[0]) > 0
    page.locator('[data-testid="stDataFrame"]').first.wait_for(
        timeout=60_000
    )  # the selected utterances' table
    page.close()


def test_a_stale_link_names_what_is_missing_and_shows_the_default(server, browser, app_env):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{server}/angles?ckpt=gone-checkpoint&split=valid", timeout=120_000)
    wait_for_app(page)
    alert = page.locator('[data-testid="stSidebar"] [data-testid="stAlert"]')
    expect(alert.first).to_contain_text("gone-checkpoint", timeout=60_000)
    assert shown_value(page, "Checkpoint").startswith(app_env["entries"][0].name)
    assert shown_value(page, "Split") == "valid"  # what was valid in the link is kept
    check_page(page, "stale link")
    page.close()
