"""2-D embeddings of learned features: PCA, t-SNE (openTSNE, FFT) and UMAP, with aligned init.

Pure functions, no Streamlit. The default path is built to be fast on a laptop CPU:

1. PCA to 50 dimensions (exact, via the covariance eigendecomposition) when the input has more;
2. k nearest neighbours: exact blocked matrix products (torch BLAS) up to `EXACT_KNN_MAX` points;
   above it NN-descent (pynndescent, numba) for UMAP and Annoy (C++, bundled
   with openTSNE, no compilation) for t-SNE;
3. UMAP (umap-learn, fed the precomputed kNN) or openTSNE (fed the kNN affinities), started from
   a PCA layout or from caller-given coordinates (`init`) so several panels can share one start.

`EmbedSpec` holds every setting of an embedding (method, feature kinds, modalities, subsample,
seed and the method's parameters), in the scikit-learn style: stored as given, `to_dict()` /
`key()` name it exactly; its defaults are the project's (`DEFAULT_METHOD`, t-SNE), used by the CLI,
the app and the functions here alike. `embed_features` lays out the paper's Figure 5: one panel per
feature kind (shared g, specific h, ...), each point one utterance x one modality;
`aligned_embeddings` lays out the same utterances of several checkpoints, each started from the
first one's layout. `embed_cached` / `embed_cached_many` keep results in memory and on disk,
keyed by the feature bytes and every parameter. `warm_up_umap` compiles umap's numba code into a
persistent cache directory. The app runs UMAP in a child process (`set_umap_runner`,
`aofl.embed_process`), so that its server never holds umap and numba.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .io.atomic import atomic_savez

__all__ = [
    "EmbedSpec",
    "embed",
    "embed_cached",
    "embed_cached_many",
    "set_umap_runner",
    "umap_runner",
    "embed_features",
    "embed_spec",
    "aligned_embeddings",
    "stratified_subsample",
    "warm_up_umap",
    "wait_for_warm_up",
    "warm_up_error",
    "trustworthiness",
    "pca",
    "knn",
    "METHODS",
    "FEATURE_KINDS",
    "SPLIT_KINDS",
    "embedding_cache_dir",
    "clear_memory_cache",
    "DEFAULT_PARAMS",
    "DEFAULT_METHOD",
    "METHOD_PARAMS",
    "TSNE_SCHEDULES",
]

METHODS = ("pca", "tsne", "umap")
SPLIT_KINDS = ("shared", "specific", "refined_shared", "refined_specific")
FEATURE_KINDS = SPLIT_KINDS + ("context",)
PCA_DIMS = 50  # pre-reduction before the kNN search
EXACT_KNN_MAX = 20_000  # above this, NN-descent (UMAP) or Annoy (t-SNE) instead of exact blocked products
CACHE_VERSION = "2"  # bump when the embedding code changes its output

# The one default method (EmbedSpec, the functions below, the embed CLI, bench). t-SNE, not UMAP: on 10k x 256-d clustered
# features UMAP's trustworthiness (k=10) stays at 0.950 whatever n_neighbors (10-30), min_dist,
# epochs or PCA width (bench runs), 0.017 below sklearn's TSNE; this t-SNE matches sklearn's.
DEFAULT_METHOD = "tsne"

# Defaults of the app's paths (callers override any through **params).
DEFAULT_PARAMS = {
    "umap": {"n_neighbors": 15, "min_dist": 0.1, "n_epochs": 200},
    # a short schedule from the PCA start keeps trustworthiness at sklearn's level (README, Performance)
    "tsne": {"perplexity": 30.0, "early_exaggeration_iter": 60, "n_iter": 100},
    "pca": {},
}
# t-SNE schedules the app offers (early exaggeration + normal iterations); "fast" is the default
TSNE_SCHEDULES = {
    "fast": {"early_exaggeration_iter": 60, "n_iter": 100},
    "thorough": {"early_exaggeration_iter": 125, "n_iter": 200},
}
# the EmbedSpec fields each method reads (pca_dims: the PCA pre-reduction before the kNN search)
METHOD_PARAMS = {
    "pca": (),
    "tsne": ("perplexity", "schedule", "early_exaggeration_iter", "n_iter", "pca_dims"),
    "umap": ("n_neighbors", "min_dist", "n_epochs", "pca_dims"),
}


@dataclasses.dataclass(frozen=True)
class EmbedSpec:
    """Every setting of an embedding of a result's features, stored as given (scikit-learn style:
    nothing is validated or converted here; `embed_features` checks them).

    method: "pca" | "tsne" | "umap" (default `DEFAULT_METHOD`); kinds: feature kinds, one panel
    each; modalities: None for all of the result's; max_points: stratified subsample per panel
    (None: every point); seed; init: "aligned" (every panel from one PCA layout) | "pca" | None.
    The method's parameters, None meaning the method's default (`DEFAULT_PARAMS`,
    `TSNE_SCHEDULES`): t-SNE perplexity, schedule ("fast" | "thorough"), early_exaggeration_iter,
    n_iter; UMAP n_neighbors, min_dist, n_epochs; both pca_dims. A parameter of another method
    is kept but not used (`method_params()` gives the ones `method` reads).
    """

    method: str = DEFAULT_METHOD
    kinds: tuple = ("shared", "specific")
    modalities: tuple | None = None
    max_points: int | None = None
    seed: int = 0
    init: str | None = "aligned"
    perplexity: float | None = None
    schedule: str | None = None
    early_exaggeration_iter: int | None = None
    n_iter: int | None = None
    n_neighbors: int | None = None
    min_dist: float | None = None
    n_epochs: int | None = None
    pca_dims: int | None = None

    def to_dict(self) -> dict:
        """Every field as given (sklearn's get_params); sequences as lists."""
        return {
            f.name: (list(v) if isinstance(v, (tuple, list)) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    def key(self) -> str:
        """A short stable hash of `to_dict()`: equal for equal specs, different when any field differs."""
        raw = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def replace(self, **changes) -> "EmbedSpec":
        """A copy with some fields changed (sklearn's set_params, without mutation)."""
        return dataclasses.replace(self, **changes)

    def method_params(self) -> dict:
        """The parameters `method` reads that were given (not None), for `embed(**params)`."""
        names = METHOD_PARAMS.get(str(self.method).lower(), ())
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


# --------------------------------------------------------------------------------------------- helpers


def _numba_cache_setup() -> None:
    """A persistent numba cache so compiled umap / pynndescent code survives app restarts.

    One folder per numba, umap-learn and pynndescent version: numba checks a cached function
    against its own source file only, not against the other modules' functions it compiled in."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        from .data import cache_dir

        path = cache_dir() / "numba" / _numba_versions()
        try:
            path.mkdir(parents=True, exist_ok=True)
            os.environ["NUMBA_CACHE_DIR"] = str(path)
        except OSError:  # read-only home: numba falls back to its default
            pass


def _numba_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("numba", "umap-learn", "pynndescent"):
        try:
            out.append(f"{pkg}-{version(pkg)}")
        except PackageNotFoundError:
            out.append(f"{pkg}-none")
    return "_".join(out)


_CACHED_PACKAGES = ("umap", "pynndescent")
_caching_lock = threading.Lock()
_caching_on: list[bool] = []  # filled once the dispatchers cache


def _import_umap():
    """umap, with numba's on-disk cache switched on for umap's and pynndescent's compiled functions.

    Most of them are declared without cache=True, so every new process compiled them again
    (~30 s). enable_caching() on each module-level dispatcher before its first call cuts a fresh
    process's warm-up to ~14 s once the cache is filled; what is left are the NN-descent functions
    that take the metric as a function argument, which numba cannot cache, and umap's layout epoch
    (see below). Caching changes no result: the same machine code is loaded instead of rebuilt."""
    _numba_cache_setup()
    import sys
    import warnings

    import umap
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher
    from numba.core.errors import NumbaWarning

    with _caching_lock:
        if _caching_on:
            return umap
        found: dict[int, Dispatcher] = {}
        for name, module in list(sys.modules.items()):
            if module is not None and name.split(".")[0] in _CACHED_PACKAGES:
                found.update(
                    (id(obj), obj) for obj in list(vars(module).values()) if isinstance(obj, Dispatcher)
                )
        by_function: dict[object, list[Dispatcher]] = {}
        for d in found.values():
            by_function.setdefault(d.py_func, []).append(d)
        for twins in by_function.values():
            # numba's cache key has no compile flags: two dispatchers of one function (umap's serial
            # and parallel layout epoch) would load each other's code, so those stay uncached
            if len(twins) == 1 and isinstance(getattr(twins[0], "_cache", None), NullCache):
                twins[0].enable_caching()
        # the uncacheable ones (function-typed arguments) would warn at every compile
        warnings.filterwarnings("ignore", message="Cannot cache compiled function", category=NumbaWarning)
        _caching_on.append(True)
    return umap


def _as_2d_float(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array [points, features], got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("the features contain NaN or infinite values")
    X = np.ascontiguousarray(X)
    # the app shares read-only result arrays; torch.from_numpy must not wrap those
    return X if X.flags.writeable else X.copy()


def pca(X: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Exact PCA scores [n, n_components] with a deterministic sign (largest loading positive).

    Through the d x d covariance (float64), which is fast for the feature widths here (<= a few
    thousand) and needs no random solver. Missing components (n or d too small) are zeros.
    """
    X = _as_2d_float(X)
    n, d = X.shape
    Xc = X - X.mean(0, dtype=np.float64).astype(np.float32)
    k = min(n_components, d, max(n - 1, 0))
    out = np.zeros((n, n_components), dtype=np.float32)
    if k <= 0:
        return out
    if d <= 4096:
        import torch

        xc = torch.from_numpy(Xc)
        cov = (xc.T @ xc).double().numpy()
        w, V = np.linalg.eigh(cov)
        V = V[:, ::-1][:, :k]
    else:
        _, _, Vt = np.linalg.svd(Xc, full_matrices=False)
        V = Vt[:k].T
    signs = np.sign(V[np.abs(V).argmax(0), np.arange(k)])
    signs[signs == 0] = 1.0
    V = (V * signs).astype(np.float32)
    out[:, :k] = Xc @ V
    return out


def knn(
    X: np.ndarray,
    k: int,
    include_self: bool = True,
    seed: int = 0,
    n_jobs: int | None = None,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """(indices [n, k], euclidean distances [n, k]) of the k nearest neighbours, numba-free.

    include_self: the point itself is neighbour 0 (umap's convention); else it is excluded
    (openTSNE's). method: "exact" (blocked torch products), "annoy", or "auto" (exact up to
    EXACT_KNN_MAX points).
    """
    X = _as_2d_float(X)
    n = X.shape[0]
    k = int(min(k, n if include_self else n - 1))
    if k < 1:
        raise ValueError(f"need at least 2 points for a neighbour graph, got {n}")
    if method == "auto":
        method = "exact" if n <= EXACT_KNN_MAX else "annoy"
    if method == "exact":
        import torch

        x = torch.from_numpy(X)
        sq = (x * x).sum(1)
        idx, dist = [], []
        block = max(256, min(4096, int(2e8 // max(n, 1))))
        for i in range(0, n, block):
            # |a|^2 - 2 a.b + |b|^2 in one fused GEMM (the block's own |a|^2 does not change its ranking)
            d2 = torch.addmm(sq[None, :], x[i : i + block], x.T, alpha=-2.0)
            rows = torch.arange(i, min(i + block, n))
            d2[rows - i, rows] = -float("inf") if include_self else float("inf")
            v, j = torch.topk(d2, k, dim=1, largest=False, sorted=True)
            idx.append(j)
            dist.append((v + sq[i : i + block, None]).clamp_min(0.0).sqrt())
        return torch.cat(idx).numpy().astype(np.int64), torch.cat(dist).numpy().astype(np.float32)
    if method == "annoy":
        from openTSNE.nearest_neighbors import Annoy

        kk = k - 1 if include_self else k
        jobs = n_jobs or os.cpu_count() or 1
        if kk < 1:
            ind = np.arange(n)[:, None]
            return ind.astype(np.int64), np.zeros((n, 1), np.float32)
        ind, dist = Annoy(X, kk, metric="euclidean", n_jobs=jobs, random_state=seed).build()
        ind, dist = np.asarray(ind, np.int64), np.asarray(dist, np.float32)
        if include_self:
            ind = np.hstack([np.arange(n, dtype=np.int64)[:, None], ind])
            dist = np.hstack([np.zeros((n, 1), np.float32), dist])
        return ind, dist
    if method == "nndescent":
        return _nndescent(X, k, include_self, seed)
    raise ValueError(f"unknown kNN method {method!r}; choose auto, exact, annoy or nndescent")


def _nndescent(X: np.ndarray, k: int, include_self: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Approximate kNN by NN-descent (pynndescent, umap's own; numba, compiled by the warm-up).
    Seeded and single-threaded, so deterministic; self is neighbour 0 or absent, as asked."""
    _import_umap()  # pynndescent's functions cached on disk too
    from pynndescent import NNDescent

    n = X.shape[0]
    kk = min(n, k + 1)  # one spare: self is dropped or moved to the front below
    ind, dist = NNDescent(
        X, n_neighbors=kk, metric="euclidean", random_state=seed, n_jobs=1, low_memory=True, verbose=False
    ).neighbor_graph
    rows = np.arange(n)[:, None]
    other = ind != rows
    # others by distance; self (or -1 padding) sorted to the end
    order = np.lexsort((dist, ~other), axis=1)
    ind, dist = np.take_along_axis(ind, order, 1), np.take_along_axis(dist, order, 1)
    if include_self:
        ind = np.hstack([rows, ind[:, : k - 1]])
        dist = np.hstack([np.zeros((n, 1), np.float32), dist[:, : k - 1]])
    else:
        ind, dist = ind[:, :k], dist[:, :k]
    return ind.astype(np.int64), dist.astype(np.float32)


def _reduce(X: np.ndarray, pca_dims: int | None) -> np.ndarray:
    if pca_dims and X.shape[1] > pca_dims:
        return pca(X, pca_dims)
    return X


def _check_init(init, n: int, n_components: int) -> np.ndarray | None:
    if init is None:
        return None
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (n, n_components):
        raise ValueError(f"init has shape {init.shape}, expected {(n, n_components)}")
    if not np.isfinite(init).all():
        raise ValueError("init contains NaN or infinite values")
    return init


# ------------------------------------------------------------------------------------------ embedding


def embed(
    X: np.ndarray,
    method: str = DEFAULT_METHOD,
    n_components: int = 2,
    seed: int = 0,
    init: np.ndarray | None = None,
    **params,
) -> np.ndarray:
    """Embed X [n, d] into [n, n_components] float32 coordinates.

    method: "pca" | "tsne" (openTSNE, FFT gradients) | "umap" (umap-learn).
    init: starting coordinates [n, n_components] (e.g. the same for several panels); default
    the PCA layout. params: `pca_dims` (pre-reduction, default 50, 0/None to skip), `knn`
    ("auto" | "exact" | "annoy"), `n_jobs`, and the method's own options (UMAP: n_neighbors,
    min_dist, n_epochs, ...; t-SNE: perplexity, n_iter, early_exaggeration_iter, ...).
    Deterministic for a given seed.
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"unknown embedding method {method!r}; choose one of {', '.join(METHODS)}")
    X = _as_2d_float(X)
    n = X.shape[0]
    if n == 0:
        return np.zeros((0, n_components), np.float32)
    init = _check_init(init, n, n_components)
    params = dict(params)
    pca_dims = params.pop("pca_dims", PCA_DIMS)
    knn_method = params.pop("knn", "auto")
    n_jobs = params.pop("n_jobs", None) or os.cpu_count() or 1
    if method == "pca" or n < 5:  # too few points for a neighbour graph
        return pca(X, n_components)
    Xr = _reduce(X, pca_dims)
    start = init if init is not None else pca(Xr, n_components).astype(np.float64)
    if method == "umap":
        return _umap(Xr, n_components, seed, start, knn_method, n_jobs, params)
    return _tsne(Xr, n_components, seed, start, knn_method, n_jobs, params)


def _umap(X, n_components, seed, start, knn_method, n_jobs, params) -> np.ndarray:
    import warnings

    umap = _import_umap()
    p = {**DEFAULT_PARAMS["umap"], **params}
    n = X.shape[0]
    k = int(min(p.pop("n_neighbors"), n - 1))
    k = max(k, 2)
    if knn_method == "auto" and n > EXACT_KNN_MAX:
        # UMAP compiles numba anyway (cached on disk), and its NN-descent beat Annoy here
        knn_method = "nndescent"
    ind, dist = knn(X, k, include_self=True, seed=seed, method=knn_method, n_jobs=n_jobs)
    # umap rescales an array init to [0, 10] itself; spread ties a little so none coincide
    span = start.max(0) - start.min(0)
    span[span == 0] = 1.0
    init = 10.0 * (start - start.min(0)) / span
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", precomputed-knn notes
        reducer = umap.UMAP(
            n_neighbors=k,
            n_components=n_components,
            init=init.astype(np.float32),
            random_state=seed,
            precomputed_knn=(ind, dist, None),
            n_jobs=n_jobs,
            **p,
        )
        Y = reducer.fit_transform(X)
    return np.asarray(Y, dtype=np.float32)


def _tsne(X, n_components, seed, start, knn_method, n_jobs, params) -> np.ndarray:
    import openTSNE
    from openTSNE import affinity
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    schedule = params.pop("schedule", "fast")
    if schedule not in TSNE_SCHEDULES:
        raise ValueError(f"unknown t-SNE schedule {schedule!r}; choose one of {', '.join(TSNE_SCHEDULES)}")
    p = {**DEFAULT_PARAMS["tsne"], **TSNE_SCHEDULES[schedule], **params}
    n = X.shape[0]
    perplexity = float(min(p.pop("perplexity"), max((n - 1) / 3.0, 1.0)))
    k = int(min(n - 1, max(1, round(3 * perplexity))))
    ind, dist = knn(X, k, include_self=False, seed=seed, method=knn_method, n_jobs=n_jobs)
    # openTSNE's threads spin: on a small loaded machine one thread is faster (measured by bench/)
    tsne_jobs = int(p.pop("tsne_jobs", 1))
    aff = affinity.PerplexityBasedNN(
        perplexity=perplexity,
        knn_index=PrecomputedNeighbors(ind, dist.astype(np.float64)),
        n_jobs=tsne_jobs,
        random_state=seed,
    )
    # openTSNE wants a small initial spread (std 1e-4 of the first axis), as its "pca" init does
    init = start - start.mean(0)
    sd = init[:, 0].std()
    init = init / (sd if sd > 0 else 1.0) * 1e-4
    p.setdefault("negative_gradient_method", "fft" if n >= 10_000 else "bh")  # openTSNE's own rule
    tsne = openTSNE.TSNE(n_components=n_components, random_state=seed, n_jobs=tsne_jobs, verbose=False, **p)
    Y = tsne.fit(affinities=aff, initialization=np.ascontiguousarray(init))
    return np.asarray(Y, dtype=np.float32)


# -------------------------------------------------------------------------------------------- caching


def embedding_cache_dir() -> Path:
    from .data import cache_dir

    return cache_dir() / "embeddings"


def _cache_key(X: np.ndarray, method: str, n_components: int, seed: int, init, params: dict) -> str:
    h = hashlib.sha256()
    h.update(f"aofl-embed/{CACHE_VERSION}|{method}|{n_components}|{seed}|".encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    h.update(str(X.shape).encode())
    h.update(X.tobytes())
    if init is not None:
        h.update(b"init")
        h.update(np.ascontiguousarray(init, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


_memory: dict[str, np.ndarray] = {}
_MEMORY_MAX = 32


def embed_cached(
    X: np.ndarray,
    method: str = DEFAULT_METHOD,
    n_components: int = 2,
    seed: int = 0,
    init: np.ndarray | None = None,
    cache: bool = True,
    **params,
) -> np.ndarray:
    """`embed`, memoised in memory and on disk (npz, no pickles) under cache_dir()/embeddings.

    Key: hash of the feature bytes, init, method, n_components, seed and params. A corrupt or
    unreadable cache file is recomputed and rewritten.
    """
    return embed_cached_many([X], method, n_components, seed, init, cache, **params)[0]


def embed_cached_many(
    Xs: list,
    method: str = DEFAULT_METHOD,
    n_components: int = 2,
    seed: int = 0,
    init: np.ndarray | None = None,
    cache: bool = True,
    **params,
) -> list[np.ndarray]:
    """`embed_cached` of each X with the same settings. What no cache holds is computed together: by
    the UMAP runner when one is set (`set_umap_runner`; the app's runs one child process), else here."""
    Xs = [_as_2d_float(X) for X in Xs]
    method = method.lower()
    keys = [_cache_key(X, method, n_components, seed, init, params) if cache else None for X in Xs]
    out = [_cached(k, X.shape[0], n_components) if cache else None for k, X in zip(keys, Xs)]
    missing = [i for i, Y in enumerate(out) if Y is None]
    if missing:
        todo = [Xs[i] for i in missing]
        runner = _umap_runner[0]
        if method == "umap" and runner is not None and min(len(X) for X in todo) >= 5:
            done = runner(todo, method, n_components, seed, init, params)
        else:
            done = [embed(X, method, n_components, seed, init, **params) for X in todo]
        for i, Y in zip(missing, done):
            out[i] = np.asarray(Y, dtype=np.float32)
            if cache:
                _store(keys[i], out[i])
    return [Y.copy() for Y in out]


def _cached(key: str, n: int, n_components: int) -> np.ndarray | None:
    """The coordinates under `key` from memory or disk, or None."""
    hit = _memory.get(key)
    if hit is not None:
        return hit
    path = embedding_cache_dir() / f"{key}.npz"
    if path.exists():
        try:
            from .io.file_checks import load_npz

            Y = np.asarray(load_npz(path)["coords"], dtype=np.float32)  # sizes checked, no pickles
            if Y.shape == (n, n_components):
                _remember(key, Y)
                return Y
        except (OSError, ValueError, KeyError):
            pass
    return None


def _store(key: str, Y: np.ndarray) -> None:
    _remember(key, Y)
    try:  # temp + fsync + rename: a crash never leaves half a cache file
        atomic_savez(embedding_cache_dir() / f"{key}.npz", coords=Y)
    except OSError:
        pass  # a read-only cache directory only costs the recomputation


_umap_runner: list = [None]


def set_umap_runner(runner=None):
    """Where `embed_cached_many` computes UMAP: `runner(Xs, method, n_components, seed, init, params)`
    returning one array per X, or None (the default) for this process. Returns the previous runner.

    The app sets `aofl.embed_process.embed_in_subprocess` at start (`aofl.app.caches.start_up`): its
    server then never imports umap and numba (~480 MB it would keep). The library and CLI compute here."""
    previous, _umap_runner[0] = _umap_runner[0], runner
    return previous


def umap_runner():
    """The runner `set_umap_runner` set (None: this process)."""
    return _umap_runner[0]


def _remember(key: str, Y: np.ndarray) -> None:
    if len(_memory) >= _MEMORY_MAX:
        _memory.pop(next(iter(_memory)))
    _memory[key] = Y.copy()


def clear_memory_cache() -> None:
    _memory.clear()


# ---------------------------------------------------------------------------------------- subsampling


def stratified_subsample(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of n items keeping the class proportions of `labels`.

    Every class gets at least one item when n >= number of classes; the allocation is the
    largest-remainder rounding of the proportions. n >= len(labels) returns all indices.
    """
    labels = np.asarray(labels)
    total = len(labels)
    n = int(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    exact = counts * n / total
    alloc = np.floor(exact).astype(int)
    if n >= len(classes):
        alloc = np.maximum(alloc, 1)
    alloc = np.minimum(alloc, counts)
    # fix the total: add to the largest remainders, take from the largest allocations (>1)
    while alloc.sum() < n:
        room = alloc < counts
        rem = np.where(room, exact - alloc, -np.inf)
        alloc[int(np.argmax(rem))] += 1
    while alloc.sum() > n:
        can = alloc > (1 if n >= len(classes) else 0)
        over = np.where(can, alloc - exact, -np.inf)
        alloc[int(np.argmax(over))] -= 1
    out = []
    for c in range(len(classes)):
        members = np.flatnonzero(inverse == c)
        if alloc[c]:
            out.append(rng.choice(members, size=alloc[c], replace=False))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


# --------------------------------------------------------------------------------- Figure 5 panels


def embed_features(
    result,
    kinds=EmbedSpec.kinds,
    modalities=None,
    method: str = EmbedSpec.method,
    max_points: int | None = None,
    seed: int = 0,
    params: dict | None = None,
    init: str | None = EmbedSpec.init,
    cache: bool = True,
) -> tuple[pd.DataFrame, dict]:
    """Embed an `InferenceResult`'s features, one panel per feature kind (the paper's Figure 5).

    Each point is one utterance x one modality; the chosen modalities' features of a kind are
    stacked and embedded together, each kind separately. max_points caps the points of a panel
    (utterances are subsampled stratified by label, the same utterances in every panel; the info
    dict reports the counts). init="aligned": every panel starts from the same PCA layout of the
    shared features (context for a baseline) so panels are comparable; "pca" / None: each panel
    from its own PCA.

    Returns (DataFrame with columns utterance_id, dialogue, position, speaker, label, prediction,
    correct, modality, kind, x, y; info {n_total, n_shown, subsampled, method, params, seconds, ...}).
    """
    start = time.perf_counter()
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    kinds = list(kinds)
    if not kinds:
        raise ValueError("choose at least one feature kind")
    unknown = [k for k in kinds if k not in FEATURE_KINDS]
    if unknown:
        raise ValueError(f"unknown feature kinds {unknown}; choose from {', '.join(FEATURE_KINDS)}")
    if not result.has_split:
        split_asked = [k for k in kinds if k in SPLIT_KINDS]
        if split_asked:
            raise ValueError(
                f"this is a baseline model without the shared/specific split: it has no "
                f"{', '.join(split_asked)} features; only 'context' can be embedded"
            )
    mods = list(result.modalities if modalities is None else modalities)
    if isinstance(modalities, str):
        mods = [m.strip() for m in modalities.split(",") if m.strip()]
    bad = [m for m in mods if m not in result.modalities]
    if bad or not mods:
        raise ValueError(f"unknown modalities {bad or mods}; the model has {', '.join(result.modalities)}")
    for k in kinds:
        feats = getattr(result, k)
        missing = [m for m in mods if m not in feats]
        if missing:
            raise ValueError(f"the inference result has no {k} features for {missing}")
    if init not in ("aligned", "pca", None):
        raise ValueError("init must be 'aligned', 'pca' or None")

    table = result.table
    n_utt = len(table)
    n_total = n_utt * len(mods)
    subsampled = max_points is not None and max_points < n_total
    if subsampled:
        per_mod = max(1, int(max_points) // len(mods))
        rows = stratified_subsample(table["label"].to_numpy(), per_mod, seed)
    else:
        rows = np.arange(n_utt)
    params = dict(params or {})

    def stacked(kind: str) -> np.ndarray:
        feats = getattr(result, kind)
        return np.concatenate([np.asarray(feats[m], np.float32)[rows] for m in mods], axis=0)

    start_coords = None
    if init == "aligned" and method != "pca":
        anchor = "shared" if result.has_split and result.shared else "context"
        start_coords = pca(_reduce(stacked(anchor), params.get("pca_dims", PCA_DIMS)), 2).astype(np.float64)

    base = table.iloc[rows]
    if "utterance_id" in base:
        uid = base["utterance_id"].astype(str).to_numpy()
    else:
        uid = (base["dialogue"].astype(str) + "#" + base["position"].astype(str)).to_numpy()
    meta = pd.DataFrame(
        {
            "utterance_id": uid,
            "dialogue": base["dialogue"].to_numpy(),
            "position": base["position"].to_numpy(),
            "speaker": base["speaker"].to_numpy(),
            "label": base["label"].to_numpy(),
            "prediction": base["prediction"].to_numpy(),
            "correct": base["correct"].to_numpy(),
        }
    )
    frames = []
    # every panel in one call: UMAP in the app then starts one child process, not one per panel
    coords = embed_cached_many([stacked(k) for k in kinds], method, 2, seed, start_coords, cache, **params)
    for kind, Y in zip(kinds, coords):
        for j, m in enumerate(mods):
            part = meta.copy()
            part["modality"] = m
            part["kind"] = kind
            part["x"] = Y[j * len(rows) : (j + 1) * len(rows), 0]
            part["y"] = Y[j * len(rows) : (j + 1) * len(rows), 1]
            frames.append(part)
    df = pd.concat(frames, ignore_index=True)
    info = {
        "n_total": int(n_total),
        "n_shown": int(len(rows) * len(mods)),
        "subsampled": bool(subsampled),
        "n_utterances_total": int(n_utt),
        "n_utterances_shown": int(len(rows)),
        "method": method,
        "params": {**DEFAULT_PARAMS.get(method, {}), **params},
        "seed": seed,
        "kinds": kinds,
        "modalities": mods,
        "init": init,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return df, info


def embed_spec(result, spec: EmbedSpec | None = None, cache: bool = True) -> tuple[pd.DataFrame, dict]:
    """`embed_features` of `result` with the settings of `spec` (default: `EmbedSpec()`)."""
    spec = EmbedSpec() if spec is None else spec
    return embed_features(
        result,
        kinds=spec.kinds,
        modalities=spec.modalities,
        method=spec.method,
        max_points=spec.max_points,
        seed=spec.seed,
        params=spec.method_params(),
        init=spec.init,
        cache=cache,
    )


def aligned_embeddings(results: dict, spec: EmbedSpec, cache: bool = True) -> tuple[pd.DataFrame, dict]:
    """One embedding per checkpoint of the same utterances, each started from the first's layout.

    results: {checkpoint name: InferenceResult} of one split, the first the reference. spec: one
    feature kind (`spec.kinds[0]`); a checkpoint without the shared/specific split shows its
    context features instead. Returns (the panels stacked, with columns `checkpoint` and `kind`
    added to `embed_features`' columns and each checkpoint's own prediction / correct; the
    reference's info). Clusters that stay put across checkpoints stay put on screen."""
    names = list(results)
    if not names:
        raise ValueError("no checkpoints to embed")
    kinds = [spec.kinds] if isinstance(spec.kinds, str) else list(spec.kinds)
    if len(kinds) != 1:
        raise ValueError(f"aligned embeddings take one feature kind, got {kinds}")
    kind = kinds[0]
    ref = results[names[0]]
    mods = list(ref.modalities if spec.modalities is None else spec.modalities)
    params = spec.method_params()

    def kind_of(r):
        return kind if (r.has_split or kind == "context") else "context"

    df, info = embed_features(
        ref,
        kinds=(kind_of(ref),),
        modalities=mods,
        method=spec.method,
        max_points=spec.max_points,
        seed=spec.seed,
        params=params,
        init=spec.init,
        cache=cache,
    )
    block = df[df["modality"] == mods[0]]["utterance_id"]
    init = df[["x", "y"]].to_numpy(np.float64) if spec.method != "pca" else None
    frames = [df.assign(checkpoint=names[0], kind=kind_of(ref))]
    positions, Xs = [], []
    for n in names[1:]:
        r = results[n]
        pos = pd.Index(r.table["utterance_id"].astype(str)).get_indexer(block)
        if (pos < 0).any():
            raise ValueError(f"{n!r} was run on other utterances than {names[0]!r}")
        feats = getattr(r, kind_of(r))
        positions.append(pos)
        Xs.append(np.concatenate([np.asarray(feats[m], np.float32)[pos] for m in mods]))
    # every checkpoint starts from the reference's layout (computed together: one child for UMAP)
    coords = embed_cached_many(Xs, spec.method, 2, spec.seed, init, cache, **params) if Xs else []
    for n, pos, Y in zip(names[1:], positions, coords):
        r = results[n]
        part = df.copy()
        part["x"], part["y"] = Y[:, 0], Y[:, 1]
        rows = r.table.iloc[np.tile(pos, len(mods))]
        part["prediction"] = rows["prediction"].to_numpy()
        part["correct"] = rows["correct"].to_numpy()
        frames.append(part.assign(checkpoint=n, kind=kind_of(r)))
    return pd.concat(frames, ignore_index=True), info


# ------------------------------------------------------------------------------------------- warm-up

_warm = {"thread": None, "done": threading.Event(), "error": None, "seconds": None}
_warm_lock = threading.Lock()


def _warm_up_work() -> None:
    start = time.perf_counter()
    try:
        import warnings

        umap = _import_umap()
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 8)).astype(np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the large-data path (pynndescent) and the layout, compiled into NUMBA_CACHE_DIR
            umap.UMAP(
                n_neighbors=5, n_epochs=5, force_approximation_algorithm=True, random_state=0, init="random"
            ).fit_transform(X)
        embed(X, "umap", n_epochs=5)  # our precomputed-kNN path, seeded and array init
        knn(X, 5, method="nndescent")  # our large-data kNN call
    except Exception as e:  # pragma: no cover - warm-up must never break the app
        _warm["error"] = repr(e)
    finally:
        _warm["seconds"] = time.perf_counter() - start
        _warm["done"].set()


def warm_up_umap(background: bool = True) -> threading.Thread | None:
    """Compile umap's numba code once (persistent NUMBA_CACHE_DIR), in a daemon thread by default.

    Idempotent: later calls return the running/finished thread. background=False blocks.
    """
    with _warm_lock:
        if _warm["thread"] is None:
            _numba_cache_setup()
            t = threading.Thread(target=_warm_up_work, name="aofl-umap-warmup", daemon=True)
            _warm["thread"] = t
            t.start()
        t = _warm["thread"]
    if not background:
        t.join()
        return None
    return t


def wait_for_warm_up(timeout: float | None = None) -> bool:
    """True once the warm-up finished (also when it was never started: nothing to wait for)."""
    if _warm["thread"] is None:
        return True
    return _warm["done"].wait(timeout)


def warm_up_error() -> str | None:
    """Why the finished warm-up failed (its exception's repr), or None (it worked, runs or never ran)."""
    return _warm["error"]


# ------------------------------------------------------------------------------------------- quality


def trustworthiness(X: np.ndarray, Y: np.ndarray, k: int = 10, n: int = 2000, seed: int = 0) -> float:
    """sklearn's trustworthiness on a fixed random subsample of n points (k neighbours)."""
    from sklearn.manifold import trustworthiness as _tw

    X, Y = np.asarray(X), np.asarray(Y)
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} points, Y {len(Y)}")
    idx = np.arange(len(X))
    if len(X) > n:
        idx = np.sort(np.random.default_rng(seed).choice(len(X), n, replace=False))
    k = min(k, max(1, len(idx) // 2 - 1))
    return float(_tw(X[idx], Y[idx], n_neighbors=k))
