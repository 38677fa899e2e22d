"""Embedding benchmarks: our default UMAP path and t-SNE option against sklearn's TSNE() defaults,
trustworthiness of each, and the first UMAP request after app start (background warm-up) over a
warm one."""
from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from .common import r, run_json_subprocess, shared_like, timed


def run(quick: bool = False, log=print) -> dict:
    from sklearn.manifold import TSNE

    from aofl import embed as E

    n = 600 if quick else 10_000
    X, _ = shared_like(n=n, d=256, k=6, seed=0)
    E.warm_up_umap(background=False)  # the app warms numba at start; compile time is not what we compare
    E.pca(X[:100], 2)
    log(f"embed: sklearn TSNE on {n} x 256 ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_sk, Y_sk = timed(TSNE(random_state=0).fit_transform, X)
    log(f"embed: sklearn {t_sk:.1f} s; our UMAP ...")
    t_umap, Y_umap = timed(E.embed, X, "umap", seed=0)
    log(f"embed: UMAP {t_umap:.1f} s; our t-SNE ...")
    t_tsne, Y_tsne = timed(E.embed, X, "tsne", seed=0)
    log(f"embed: t-SNE {t_tsne:.1f} s")
    tw = {name: E.trustworthiness(X, Y, k=10, n=2000, seed=0)
          for name, Y in (("sklearn_tsne", Y_sk), ("umap", Y_umap), ("tsne", Y_tsne))}
    deltas = {"umap": tw["sklearn_tsne"] - tw["umap"], "tsne": tw["sklearn_tsne"] - tw["tsne"]}
    first = run_json_subprocess(["bench.bench_embed", "--first-vs-warm", str(600 if quick else 5000)])
    return {
        "embed_speedup_vs_sklearn_tsne": r(t_sk / t_umap, 2),
        "tsne_speedup_vs_sklearn": r(t_sk / t_tsne, 2),
        "embed_trustworthiness_delta": r(max(deltas.values()), 4),
        "umap_first_over_warm": r(first["ratio"], 3),
        "embed_details": {
            "points": n, "dims": 256, "clusters": 6,
            "seconds": {"sklearn_tsne": r(t_sk, 2), "umap_default": r(t_umap, 2), "tsne": r(t_tsne, 2)},
            "trustworthiness": {k: r(v, 4) for k, v in tw.items()},
            "trustworthiness_delta": {k: r(v, 4) for k, v in deltas.items()},
            "default_path": "PCA-50 (exact) + exact kNN (torch BLAS) + umap-learn with precomputed kNN, "
                            "PCA init, 200 epochs, seeded",
            "tsne_path": "PCA-50 + exact kNN + openTSNE (FFT gradients, 1 thread), PCA init",
            "first_vs_warm": first,
        },
    }


def _first_vs_warm(n: int) -> dict:
    """In a fresh process: start the app's background warm-up, then serve a first and a second
    UMAP request of n points (different data, so no cache)."""
    import time
    t0 = time.perf_counter()
    from aofl import embed as E
    E.warm_up_umap(background=True)
    X1, _ = shared_like(n=n, d=128, seed=1)
    X2, _ = shared_like(n=n, d=128, seed=2)
    E.wait_for_warm_up()
    warm_up_s = time.perf_counter() - t0
    t_first, _ = timed(E.embed, X1, "umap")
    t_warm, _ = timed(E.embed, X2, "umap")
    return {"ratio": t_first / t_warm, "first_s": r(t_first), "warm_s": r(t_warm),
            "start_to_warm_s": r(warm_up_s, 2), "points": n, "warm_up_error": E._warm["error"]}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--first-vs-warm", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(json.dumps(_first_vs_warm(a.first_vs_warm) if a.first_vs_warm else run(a.quick)))
