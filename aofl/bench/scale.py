"""Inference + PCA + UMAP on growing synthetic splits, in one fresh process, smallest size first."""

from __future__ import annotations

import argparse
import json
import time

from .common import peak_rss_mb, r, run_json_subprocess

SIZES = (12_500, 25_000, 50_000, 100_000)
SMALL_DIMS = {"audio": 32, "text": 48, "visual": 64}


def one_size(n_utterances: int, seed: int = 0, repeats: int = 2, warm_up: bool = True) -> dict:
    import torch

    from aofl import embed as E
    from aofl.data import make_synthetic
    from aofl.device import configure_runtime
    from aofl.inference import run_inference
    from aofl.model import AOFL
    from aofl.train import model_config_for

    configure_runtime(1)  # the app's policy: one thread, allocator tuned
    if warm_up:
        E.warm_up_umap(background=False)  # compile first, as the app does at start
    turns = (20, 40)
    n_dialogues = int(round(n_utterances / 30))
    t0 = time.perf_counter()
    ds = make_synthetic(
        n_dialogues=n_dialogues, seed=seed, dims=SMALL_DIMS, turns=turns, split_fractions=(0.0, 0.0)
    )
    ds.splits = {"train": [], "valid": [], "test": ds.splits["test"]}
    gen_s = time.perf_counter() - t0
    torch.manual_seed(0)
    model = AOFL(model_config_for(ds, "full", width=64)).eval()
    runs = []
    for _ in range(repeats):  # the same deterministic work again: the best run is the least disturbed one
        t = time.perf_counter()
        res = run_inference(model, ds, "test", batch_size=256)
        inf_s = time.perf_counter() - t
        X = res.shared[ds.modalities[0]]
        t = time.perf_counter()
        P = E.pca(X, 50 if X.shape[1] > 50 else X.shape[1])
        pca_s = time.perf_counter() - t
        t = time.perf_counter()
        E.embed(P, "umap", pca_dims=None)
        umap_s = time.perf_counter() - t
        runs.append((inf_s + pca_s + umap_s, inf_s, pca_s, umap_s))
    total, inf_s, pca_s, umap_s = min(runs)
    return {
        "utterances": int(len(res.table)),
        "generate_s": r(gen_s, 2),
        "inference_s": r(inf_s, 2),
        "pca_s": r(pca_s, 2),
        "umap_s": r(umap_s, 2),
        "total_s": r(total, 2),
        "runs_total_s": [r(x[0], 2) for x in runs],
        "peak_rss_mb": r(peak_rss_mb(), 1),
    }


def all_sizes(sizes) -> list[dict]:
    """Every size in this process after one warm-up (numba compiles umap's code in each new process,
    about 40 s here), smallest first, so a size's peak RSS (the process's high-water mark when it
    ends) is an upper bound of its own."""
    from aofl import embed as E
    from aofl.device import configure_runtime

    configure_runtime(1)  # before the warm-up, as the app's start-up does
    E.warm_up_umap(background=False)
    return [one_size(n, warm_up=False) for n in sorted(sizes)]


def run(quick: bool = False, log=print, sizes=None) -> dict:
    sizes = sizes or ((1500, 3000) if quick else SIZES)
    rows = run_json_subprocess(["aofl.bench.scale", "--sizes", ",".join(str(n) for n in sizes)], timeout=900)
    for row in rows:
        log(
            f"scale: {row['utterances']} utterances {row['total_s']:.1f} s (umap {row['umap_s']:.1f} s), "
            f"peak RSS so far {row['peak_rss_mb']:.0f} MiB"
        )
    ratios = [rows[i + 1]["total_s"] / rows[i]["total_s"] for i in range(len(rows) - 1)]
    return {
        "scale": {
            "sizes": rows,
            "time_ratio_per_doubling": [r(x, 2) for x in ratios],
            "max_time_ratio_per_doubling": r(max(ratios), 2) if ratios else None,
            "peak_rss_mb_max": max(x["peak_rss_mb"] for x in rows),
            "note": f"small input dims {SMALL_DIMS}, width 64, untrained model; UMAP of one modality's "
            f"shared features (one point per utterance), kNN exact up to 20k points then NN-descent; "
            f"times exclude data generation and are the best of 2 runs of the same work; all sizes in one "
            f"fresh process after one numba warm-up, smallest first: a size's peak RSS is the process's "
            f"high-water mark when it ends (an upper bound of its own)",
        }
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=None, help="comma-separated sizes, all in this process")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(json.dumps(all_sizes([int(n) for n in a.sizes.split(",")]) if a.sizes else run(a.quick)))
