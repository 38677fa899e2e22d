"""`python -m aofl bench --only class`: its pure parts in seconds, and one small real run (browser).

No timing is asserted: the figures depend on the machine's load; the bench reports them."""

import json
from pathlib import Path

import pytest

from aofl.bench import classroom
from aofl.bench.classroom import Visit, page_summary, summarise
from aofl.cli import main

ISSUE_PAGE_KEYS = {"single_settled_s", "all_settled_s", "slowest_first_paint_s", "exceptions"}


def _visits(*settled, paint=1.0):
    return [Visit(paint, s) for s in settled]


def test_page_summary_takes_the_slowest_session_and_the_ratio_to_one_alone():
    cold, single = Visit(1.5, 9.0), Visit(0.5, 4.0)
    everyone = [Visit(0.7, 5.0), Visit(2.5, 10.0), Visit(1.0, 6.0)]
    out = page_summary(cold, single, everyone)
    assert ISSUE_PAGE_KEYS <= set(out)
    assert out["single_settled_s"] == 4.0 and out["all_settled_s"] == 10.0
    assert out["slowest_first_paint_s"] == 2.5
    assert out["all_over_single"] == 2.5 and out["single_cold_s"] == 9.0
    assert out["exceptions"] == 0 and out["errors"] == []


def test_a_session_that_fails_counts_and_leaves_no_made_up_time():
    single = Visit(0.5, 4.0)
    everyone = [
        Visit(0.7, 5.0),
        Visit(3.0, 6.0, exceptions=1),
        Visit(None, None, error="TimeoutError: 180 s"),
    ]
    out = page_summary(Visit(1.0, 2.0), single, everyone)
    assert out["exceptions"] == 2  # the exception shown and the session that never settled
    assert out["all_settled_s"] is None and out["slowest_first_paint_s"] is None
    assert out["all_over_single"] is None
    assert out["errors"] == ["TimeoutError: 180 s"]


def test_summarise_has_exactly_the_issues_keys_and_the_worst_ratio():
    pages = {
        name: page_summary(Visit(1, 3), Visit(1, s), _visits(s, 2 * s * k))
        for name, s, k in (("angles", 2.0, 1.0), ("embeddings", 4.0, 1.5), ("conversations", 1.0, 0.5))
    }
    out = summarise(8, pages, 12.3456, 612.34, {"x": 1})
    assert {"sessions", "playground_train_s", "server_peak_rss_mb", "pages"} <= set(out)
    assert out["sessions"] == 8 and out["playground_train_s"] == 12.346 and out["server_peak_rss_mb"] == 612.3
    assert set(out["pages"]) == set(classroom.PAGES)
    for page in out["pages"].values():
        assert ISSUE_PAGE_KEYS <= set(page)
        assert isinstance(page["exceptions"], int)
    assert out["class_worst_all_over_single"] == 3.0  # embeddings: 2 * 4 * 1.5 / 4
    json.dumps(out)  # plain JSON
    assert summarise(1, pages, None, 0.0, {})["playground_train_s"] is None


def test_missing_chromium_is_a_clear_message(tmp_path):
    with pytest.raises(classroom.BrowserUnavailable, match="apt-get install -y chromium"):
        classroom.check_browser(str(tmp_path / "no-chromium"))


def test_cli_says_what_is_missing_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(classroom, "CHROMIUM", "/nonexistent/chromium")
    assert main(["bench", "--only", "class", "--sessions", "2", "--json"]) == 2
    err = capsys.readouterr().err
    assert "/nonexistent/chromium is absent" in err and "--only" in err


def test_cli_passes_sessions_to_the_class_section_only(monkeypatch, capsys):
    seen = {}

    def fake_run(quick=False, log=print, sessions=None):
        seen["sessions"] = sessions
        return summarise(sessions, {}, 1.0, 100.0, {})

    monkeypatch.setattr(classroom, "run", fake_run)
    assert main(["bench", "--only", "class", "--sessions", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert seen == {"sessions": 3} and out["sessions"] == 3 and out["pages"] == {}
    assert main(["bench", "--only", "class", "--sessions", "0"]) == 2


def test_the_default_bench_leaves_the_class_section_out():
    from aofl.cli import bench

    assert "class" in bench.SECTIONS and "class" not in bench.DEFAULT_SECTIONS


@pytest.mark.browser
@pytest.mark.app
def test_a_small_class_run(capsys):
    if not Path(classroom.CHROMIUM).exists():
        pytest.skip(f"{classroom.CHROMIUM} is absent (apt-get install -y chromium)")
    pytest.importorskip("playwright.async_api", reason="playwright for Python is not installed")
    assert main(["bench", "--only", "class", "--sessions", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sessions"] == 2 and set(out["pages"]) == set(classroom.PAGES)
    for name, page in out["pages"].items():
        assert page["exceptions"] == 0, (name, page["errors"])
        assert page["all_settled_s"] >= page["slowest_first_paint_s"] > 0
    assert out["playground_train_s"] > 0, out["class_details"]["playground_error"]
    assert out["server_peak_rss_mb"] > 100


def test_machine_bound_separates_the_browsers_floor_from_the_servers_share():
    from aofl.bench.classroom import machine_bound

    page = {"single_settled_s": 4.0}
    phase = {"all_browser_cpu_s": 60.0, "all_server_cpu_s": 2.0, "single_server_cpu_s": 0.5}
    out = machine_bound(page, phase, sessions=8, cpu_count=2)
    # 60 CPU-s of Chromium on 2 cores cannot finish before 30 s: 2 x 4 s is out of reach on this machine
    assert out == {
        "browser_floor_s": 30.0,
        "two_x_reachable_here": False,
        "server_cpu_per_session_over_single": 0.5,
    }
    roomy = machine_bound(page, phase, sessions=8, cpu_count=16)
    assert roomy["browser_floor_s"] == 3.75 and roomy["two_x_reachable_here"] is True
    assert machine_bound({}, {}, 8, 2) == {
        "browser_floor_s": None,
        "two_x_reachable_here": None,
        "server_cpu_per_session_over_single": None,
    }


def test_umap_server_bench_reports_child_over_in_process_ratios(monkeypatch):
    """The umap_server section: both modes measured, ratios child / in-process (no server here)."""
    from aofl.bench import umap_server

    monkeypatch.setattr(umap_server.C, "check_browser", lambda: None)
    monkeypatch.setattr("aofl.embed_process.warm_up_in_subprocess", lambda **k: {"seconds": 0.0})
    figures = {"in_process": (900.0, 5.0), "child": (600.0, 10.0)}

    def fake(mode, tmp, cache, wait_s, timeout_s, log):
        rss, first = figures[mode]
        return {
            "server_peak_rss_mb": rss,
            "first_umap_settled_s": first,
            "server_maps_llvmlite": mode == "in_process",
        }

    monkeypatch.setattr(umap_server, "_measure", fake)
    out = umap_server.run(quick=True, log=lambda m: None)
    assert out["umap_child_over_in_process_peak_rss"] == pytest.approx(600 / 900, abs=1e-3)
    assert out["umap_child_over_in_process_first_settled"] == pytest.approx(2.0)
    assert set(umap_server.MODES) <= set(out["umap_server_details"])
    from aofl.cli import bench

    assert "umap_server" in bench.SECTIONS and "umap_server" not in bench.DEFAULT_SECTIONS


def test_browser_cpu_leaves_out_the_server_it_is_told_of():
    """The bench starts the server too: its CPU must not count as the browsers'."""
    import subprocess
    import sys
    import time

    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\ntime.sleep(30)",
        ]
    )
    try:
        time.sleep(0.1)
        base_all = classroom._descendants_cpu_seconds()
        base_out = classroom._descendants_cpu_seconds(exclude=busy.pid)
        deadline = time.monotonic() + 20
        while classroom._descendants_cpu_seconds() - base_all < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert classroom._descendants_cpu_seconds() - base_all >= 0.4
        assert classroom._descendants_cpu_seconds(exclude=busy.pid) - base_out < 0.1
    finally:
        busy.kill()
        busy.wait()
