"""A page revisit over its first render, for the Angles and Embeddings pages.

Measured at the aofl level the pages call (method note in the output): the inference table
through app_state's disk cache, the analysis frames and plotly figure builds, and for
Embeddings `embed_features` through `embed_cached`. Cold: empty caches (inference runs, UMAP
runs). Warm: a revisit served from the caches (the disk entry; Streamlit's in-memory cache
would be faster still), figures rebuilt as the page does.
"""
from __future__ import annotations

import json
import os
import tempfile
import time

from .common import r


def _angles_figures(result):
    from aofl import analysis, plots
    long = analysis.angles_long(result.table, result.modalities)
    figs = [plots.angle_distribution(long, "theta", x="label", color="outcome"),
            plots.angle_distribution(long, "phi", x="label", color="outcome"),
            plots.theta_phi_scatter(long, color="label")]
    analysis.csr_share(result.table, result.modalities)
    return figs


def _embedding_figures(coords):
    from aofl import plots
    return [plots.embedding_scatter(coords[coords["kind"] == k], color="label", title=k)
            for k in coords["kind"].unique()]


def run(quick: bool = False, log=print) -> dict:
    import torch

    from aofl import embed as E
    from aofl.inference import run_inference
    from aofl.model import AOFL
    from aofl.train import model_config_for

    from .bench_inference import iemocap_like_test_split

    old_cache = os.environ.get("AOFL_CACHE_DIR")
    tmp = tempfile.mkdtemp(prefix="aofl-bench-pages-")
    os.environ["AOFL_CACHE_DIR"] = tmp
    try:
        from aofl import app_state  # imports streamlit; its cache functions work outside a server
        E.warm_up_umap(background=False)
        ds = iemocap_like_test_split(n_utterances=300 if quick else 1623, n_dialogues=8 if quick else 31)
        torch.manual_seed(0)
        model = AOFL(model_config_for(ds, "full")).eval()
        key_dir = app_state.cache_dir() / "inference" / "bench"

        def inference(cold: bool):
            if not cold:
                hit = app_state._disk_load(key_dir)
                if hit is not None:
                    return hit
            res = run_inference(model, ds, "test")
            app_state._disk_save(key_dir, res)
            return res

        def angles_page(cold):
            return _angles_figures(inference(cold))

        def embeddings_page(cold):
            res = inference(cold)
            if cold:
                E.clear_memory_cache()
            coords, _ = E.embed_features(res, ("shared", "specific"), method="umap", max_points=3000, seed=0)
            return _embedding_figures(coords)

        out = {}
        for name, page in (("angles", angles_page), ("embeddings", embeddings_page)):
            t = time.perf_counter()
            page(True)
            cold = time.perf_counter() - t
            E.clear_memory_cache()  # the revisit reads the disk caches (as after an app restart)
            t = time.perf_counter()
            page(False)
            warm = time.perf_counter() - t
            out[name] = {"cold_s": r(cold), "warm_s": r(warm), "ratio": r(warm / cold, 4)}
            log(f"pages: {name} cold {cold:.2f} s, warm {warm:.3f} s")
    finally:
        if old_cache is None:
            os.environ.pop("AOFL_CACHE_DIR", None)
        else:
            os.environ["AOFL_CACHE_DIR"] = old_cache
    return {"warm_over_cold_page": max(v["ratio"] for v in out.values()),
            "pages_details": {**out, "method": "aofl-level compute of the page (inference via app_state's disk "
                                               "cache + analysis + plotly figure builds; Embeddings: embed_features "
                                               "UMAP, shared+specific, 3000 points, via embed_cached), cold caches vs a "
                                               "revisit from the disk caches; not a browser render"}}


if __name__ == "__main__":
    import sys
    print(json.dumps(run("--quick" in sys.argv)))
