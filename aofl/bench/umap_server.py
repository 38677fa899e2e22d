"""`python -m aofl bench --only umap_server`: what UMAP costs a real server, in its own process or in
a child (`aofl.embed_process`, the app's default).

For each mode, one `streamlit run app.py` as the README starts it (warm-up on; `$AOFL_UMAP_IN_PROCESS=1`
for the in-process mode), with numba's disk cache shared by both modes and filled first (as on any
machine that ran the app before) and a fresh embedding cache: one headless-Chromium session opens
Overview (the app's start-up and warm-up run at a server's first session), the bench waits `wait_s`
for the warm-up, then one session opens ``embeddings?emb=umap`` and a second session the same link.
Reported per mode: the server's RSS after the warm-up, its peak through the UMAP visits and after
them, whether it maps llvmlite, and the two sessions' settled times; then child over in-process
ratios, measured in the same run. Needs Chromium and playwright, like `class`."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..io.child_env import importable_env
from . import classroom as C
from .common import ROOT, r

__all__ = ["run", "MODES"]

MODES = ("in_process", "child")


def _maps(pid: int, library: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(library in line for line in f)
    except OSError:
        return False


async def _visits(url: str, n: int, timeout_ms: int) -> list:
    """n sessions, one after the other, each alone (`classroom._together` with one session)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=C.CHROMIUM, headless=True, args=list(C.CHROMIUM_FLAGS)
        )
        try:
            return [(await C._together(browser, url, 1, timeout_ms))[0] for _ in range(n)]
        finally:
            await browser.close()


def _measure(mode: str, tmp: Path, cache: Path, wait_s: float, timeout_s: float, log) -> dict:
    from .pages import _checkpoint_dir

    shutil.rmtree(cache / "embeddings", ignore_errors=True)  # every UMAP computed, numba's code cached
    env = {**os.environ, "AOFL_CACHE_DIR": str(cache), "AOFL_CHECKPOINT_DIR": str(_checkpoint_dir(tmp))}
    env.pop("AOFL_NO_WARMUP", None)
    env.pop("AOFL_UMAP_IN_PROCESS", None)
    if mode == "in_process":
        env["AOFL_UMAP_IN_PROCESS"] = "1"
    timeout_ms = int(timeout_s * 1000)
    with C.serve_app(importable_env(env), tmp / f"streamlit_{mode}.log", timeout_s) as (url, proc):
        asyncio.run(_visits(url, 1, timeout_ms))  # a server's first session runs its start-up
        time.sleep(wait_s)  # the warm-up (a child, or a thread of the server)
        after_warm_up = C._proc_status(proc.pid, "VmRSS")
        sampler = C._RssSampler(proc.pid)
        first, second = asyncio.run(_visits(f"{url}/embeddings?emb=umap", 2, timeout_ms))
        out = {
            "server_rss_after_warm_up_mb": r(after_warm_up, 1),
            "server_peak_rss_mb": r(sampler.finish(), 1),
            "server_rss_after_mb": r(C._proc_status(proc.pid, "VmRSS"), 1),
            "server_maps_llvmlite": _maps(proc.pid, "llvmlite"),
            "first_umap_settled_s": first.settled_s and r(first.settled_s, 2),
            "second_session_settled_s": second.settled_s and r(second.settled_s, 2),
            "exceptions": first.exceptions + second.exceptions,
            "errors": [v.error for v in (first, second) if v.error],
        }
    log(
        f"umap_server: {mode}: RSS {out['server_rss_after_warm_up_mb']} MB after the warm-up, peak "
        f"{out['server_peak_rss_mb']} MB; first UMAP page {out['first_umap_settled_s']} s, "
        f"second {out['second_session_settled_s']} s"
    )
    return out


def run(quick: bool = False, log=print, wait_s: float | None = None, timeout_s: float = 300.0) -> dict:
    if not (ROOT / "app.py").is_file():
        raise FileNotFoundError(
            f"the umap_server bench drives app.py, which is not next to the package ({ROOT})"
        )
    C.check_browser()
    wait_s = float(wait_s if wait_s is not None else (20 if quick else 60))
    tmp = Path(tempfile.mkdtemp(prefix="aofl-bench-umap-"))
    cache = tmp / "cache"
    try:
        from ..embed_process import warm_up_in_subprocess

        t = time.perf_counter()
        # numba's disk cache filled once, for both modes
        warm_up_in_subprocess(env={**os.environ, "AOFL_CACHE_DIR": str(cache)})
        log(f"umap_server: numba's disk cache filled in {time.perf_counter() - t:.1f} s")
        modes = {m: _measure(m, tmp, cache, wait_s, timeout_s, log) for m in MODES}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    inp, child = modes["in_process"], modes["child"]

    def ratio(key):
        return C._ratio(child[key], inp[key])

    return {
        "umap_child_over_in_process_peak_rss": ratio("server_peak_rss_mb"),
        "umap_child_over_in_process_first_settled": ratio("first_umap_settled_s"),
        "umap_server_details": {
            **modes,
            "wait_s": wait_s,
            "method": "one `streamlit run app.py` per mode (warm-up on, shared numba disk cache filled first, "
            "fresh embedding cache); one session on Overview, wait_s for the warm-up, then two sessions one "
            "after the other on embeddings?emb=umap. in_process: AOFL_UMAP_IN_PROCESS=1.",
        },
    }
