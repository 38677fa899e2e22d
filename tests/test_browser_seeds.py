"""End to end: Ablations on IEMOCAP opens on the seeds view (every variant as all its seeds)."""

import pytest
from _real_data import require_real
from test_browser import browser, check_page, server, shown_value, wait_for_app  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.app, pytest.mark.real_data]


def test_ablations_on_iemocap_shows_the_seeds_view(server, browser):  # noqa: F811
    require_real("iemocap")
    from aofl import seeds

    expected = seeds.compare_seeds("iemocap")
    if expected.runs.empty:
        pytest.skip("no seed runs of iemocap in results/ (per-run tables or kept predictions)")
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(f"{server}/ablations?data=iemocap", timeout=120_000)
    wait_for_app(page)
    assert shown_value(page, "Dataset") == "iemocap"
    main = page.locator('[data-testid="stMain"]')
    assert main.get_by_text("Across seeds", exact=True).count() >= 1
    assert main.get_by_text("Every variant as all its runs", exact=False).count() == 1
    text = main.inner_text()
    assert f"{expected.summary['n_seeds'].iloc[0]}" in text and "CV-chosen" in text
    check_page(page, "Ablations (seeds)")
    page.close()
