"""A page revisit over its first render, for the Angles and Embeddings pages, as a user gets them.

The app runs under `streamlit.testing.v1.AppTest` (the real app.py and pages, no browser; driven
through aofl.app.apptest, so Streamlit is imported only inside aofl.app) with
$AOFL_CACHE_DIR in a fresh temp dir, $AOFL_NO_WARMUP=1 and the synthetic checkpoint "full" of
checkpoints/MANIFEST.json (an untrained one saved in the temp dir when the repository has none).
Cold: the first render of the page with empty caches (Streamlit's cache_data / cache_resource
cleared, the disk cache dir emptied, aofl.embed's memory cache cleared): dataset and checkpoint
loading, inference, analysis frames, figures (the process's start-up, `caches.start_up`, runs before
it, untimed, as it runs once per server process). Warm: the page run again in the same process and
session with the same checkpoint, split and widgets (Streamlit's in-memory caches hit). Each
timing is the wall time of one `AppTest.run()` (app.py's sidebar plus the page script), the
median of several. Embeddings is timed with its first-visit settings (a quick PCA of shared and
specific features).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .common import ROOT, r

PAGES = ("angles", "embeddings")
_ENV = ("AOFL_CACHE_DIR", "AOFL_NO_WARMUP", "AOFL_CHECKPOINT_DIR")


@contextlib.contextmanager
def _app_env(tmp: Path):
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ["AOFL_CACHE_DIR"] = str(tmp / "cache")
    os.environ["AOFL_NO_WARMUP"] = "1"
    os.environ["AOFL_CHECKPOINT_DIR"] = str(_checkpoint_dir(tmp))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _checkpoint_dir(tmp: Path) -> Path:
    """The repository's checkpoints/ when its manifest lists a synthetic checkpoint, else one
    untrained synthetic checkpoint in tmp (the pages' cost does not depend on the weights)."""
    from aofl.store import registry

    try:
        if any(e.variant == "full" for e in registry.list_checkpoints("synthetic", ROOT / "checkpoints")):
            return ROOT / "checkpoints"
    except registry.RegistryError:
        pass
    import torch

    from aofl.data import load_dataset
    from aofl.model import AOFL
    from aofl.store.checkpoint import read_metadata
    from aofl.store.run_record import run_metadata, save_run
    from aofl.train import model_config_for

    ds = load_dataset("synthetic", seed=0)
    torch.manual_seed(0)
    directory = tmp / "checkpoints"
    path = Path(
        save_run(
            directory / "synthetic" / "full", AOFL(model_config_for(ds, "full")), run_metadata(ds, "full")
        )
    )
    registry.write_manifest(
        directory,
        [registry.manifest_entry(directory, path, read_metadata(path), name="synthetic-full-bench")],
    )
    return directory


def _timed_run(at) -> float:
    t = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - t
    if at.exception or at.error:
        raise RuntimeError(f"the page failed: {[e.value for e in list(at.exception) + list(at.error)]}")
    return seconds


def _one_page(page: str, cache: Path, warm_runs: int) -> tuple[float, list[float], int]:
    from ..app import apptest, caches

    at = apptest.new_app(ROOT / "app.py")
    at.run()  # the landing page (Overview): imports done, as in a running server
    apptest.clear_caches(cache)
    # the process's start-up (threads, gc.freeze of the libraries) runs once per server, not per
    # page: untimed here, so the cold figure is the page's first render and nothing else
    caches.start_up()
    at.switch_page(f"pages/{page}.py")
    cold = _timed_run(at)
    warm = [_timed_run(at) for _ in range(warm_runs)]
    return cold, warm, len(at.get("plotly_chart"))


def run(quick: bool = False, log=print) -> dict:
    if not (ROOT / "app.py").is_file():
        raise FileNotFoundError(
            f"the pages bench drives app.py, which is not next to the package ({ROOT}): "
            f"run it from a source checkout, or leave it out with --only"
        )
    rounds, warm_runs = (1, 3) if quick else (3, 8)
    tmp = Path(tempfile.mkdtemp(prefix="aofl-bench-pages-"))
    out = {}
    try:
        from ..app import apptest  # Streamlit stays inside aofl.app

        with _app_env(tmp), apptest.like_the_server():
            for page in PAGES:
                colds, warms = [], []
                for _ in range(rounds):
                    cold, warm, charts = _one_page(page, tmp / "cache", warm_runs)
                    colds.append(cold)
                    warms += warm
                cold, warm = statistics.median(colds), statistics.median(warms)
                out[page] = {
                    "cold_s": r(cold),
                    "warm_s": r(warm, 4),
                    "ratio": r(warm / cold, 4),
                    "cold_runs_s": [r(c) for c in colds],
                    "warm_runs_s": [r(w, 4) for w in warms],
                    "charts": charts,
                }
                log(f"pages: {page} cold {cold:.2f} s, warm {warm:.3f} s ({charts} charts)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "warm_over_cold_page": max(v["ratio"] for v in out.values()),
        "pages_details": {
            **out,
            "method": (
                "streamlit.testing.v1.AppTest of app.py (sidebar + page script, no browser; one ScriptCache per process "
                "as in the server), synthetic 'full' "
                "checkpoint, test split, default widgets (Embeddings: its first-visit PCA of shared+specific). "
                "cold_s: median wall time of the page's first run() after clearing st.cache_data, "
                "st.cache_resource, the disk cache ($AOFL_CACHE_DIR, a temp dir) and aofl.embed's memory cache "
                f"({rounds} rounds, each in a fresh AppTest session after an untimed Overview run); warm_s: median "
                f"of {warm_runs} re-runs per round of the same page in the same process and session (same "
                "checkpoint, split, parameters: Streamlit's in-memory caches hit)"
            ),
        },
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run("--quick" in sys.argv)))
