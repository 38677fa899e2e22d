"""aofl.embed: shapes, determinism, subsampling, aligned init, disk cache, baseline errors."""

import os

import numpy as np
import pytest
from _tiny import tiny_dataset, tiny_model

from aofl import embed as E
from aofl.inference import run_inference

pytestmark = pytest.mark.usefixtures("fresh_embedding_cache")


def _blobs(n=300, d=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    centers = rng.normal(scale=4.0, size=(k, d))
    return (centers[labels] + rng.normal(size=(n, d))).astype(np.float32), labels


@pytest.fixture(scope="module")
def results():
    ds = tiny_dataset(n_dialogues=24)
    full = run_inference(tiny_model(ds, "full"), ds, "train")
    base = run_inference(tiny_model(ds, "baseline"), ds, "train")
    return full, base


@pytest.mark.parametrize(
    "method",
    ["pca", "tsne", pytest.param("umap", marks=pytest.mark.app)],  # umap: numba compiles for tens of seconds
)
def test_embed_shape_and_determinism(method):
    X, labels = _blobs()
    Y1 = E.embed(X, method, seed=3)
    Y2 = E.embed(X, method, seed=3)
    assert Y1.shape == (len(X), 2) and Y1.dtype == np.float32
    assert np.isfinite(Y1).all()
    np.testing.assert_array_equal(Y1, Y2)
    # well separated blobs stay separated: local structure is kept
    assert E.trustworthiness(X, Y1, k=10) > 0.8


def test_embed_rejects_bad_input():
    X, _ = _blobs(n=50)
    with pytest.raises(ValueError, match="unknown embedding method"):
        E.embed(X, "mds")
    with pytest.raises(ValueError, match="init has shape"):
        E.embed(X, "umap", init=np.zeros((3, 2)))
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        E.embed(bad, "pca")


def test_tsne_schedules_and_knn_distances():
    X, _ = _blobs(n=200)
    fast = E.embed(X, "tsne", seed=0)
    np.testing.assert_array_equal(fast, E.embed(X, "tsne", seed=0, schedule="fast"))
    thorough = E.embed(X, "tsne", seed=0, schedule="thorough")
    assert not np.array_equal(fast, thorough)  # the schedule reaches openTSNE
    with pytest.raises(ValueError, match="unknown t-SNE schedule"):
        E.embed(X, "tsne", schedule="forever")
    # the fused-GEMM kNN returns true euclidean distances, self first
    ind, dist = E.knn(X[:50], 4, include_self=True)
    full = np.linalg.norm(X[:50, None] - X[None, :50], axis=-1)
    np.testing.assert_array_equal(ind[:, 0], np.arange(50))
    np.testing.assert_allclose(dist, np.take_along_axis(full, ind, 1), atol=1e-3)
    np.testing.assert_array_equal(ind, np.argsort(full, 1, kind="stable")[:, :4])


def test_tiny_inputs_do_not_crash():
    X = np.arange(8, dtype=np.float32).reshape(4, 2)
    assert E.embed(X, "umap").shape == (4, 2)
    assert E.embed(np.zeros((0, 5), np.float32), "tsne").shape == (0, 2)


def test_pca_is_deterministic_and_centred():
    X, _ = _blobs(d=80)
    P = E.pca(X, 5)
    np.testing.assert_array_equal(P, E.pca(X, 5))
    assert np.allclose(P.mean(0), 0, atol=1e-3)
    var = P.var(0)
    assert np.all(np.diff(var) <= 1e-3)  # sorted by explained variance


def test_knn_exact_matches_bruteforce_and_annoy_is_close():
    X, _ = _blobs(n=200, d=10)
    ind, dist = E.knn(X, 5, include_self=True)
    assert (ind[:, 0] == np.arange(len(X))).all() and np.allclose(dist[:, 0], 0, atol=1e-3)
    d2 = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    ind2, _ = E.knn(X, 5, include_self=False)
    np.testing.assert_array_equal(np.sort(ind2, 1), np.sort(np.argsort(d2, 1)[:, :5], 1))
    ia, da = E.knn(X, 5, include_self=False, method="annoy")
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ia, ind2)])
    assert overlap > 0.9


def test_stratified_subsample_counts_and_proportions():
    rng = np.random.default_rng(0)
    labels = rng.choice(6, size=1000, p=[0.4, 0.3, 0.15, 0.1, 0.049, 0.001])
    idx = E.stratified_subsample(labels, 200, seed=1)
    assert len(idx) == 200 and len(set(idx)) == 200 and np.all(np.diff(idx) > 0)
    full, sub = np.bincount(labels, minlength=6), np.bincount(labels[idx], minlength=6)
    assert (sub >= 1).all()  # the rare class survives
    assert np.all(np.abs(sub / 200 - full / 1000) < 0.01)
    np.testing.assert_array_equal(idx, E.stratified_subsample(labels, 200, seed=1))
    assert len(E.stratified_subsample(labels, 5000)) == 1000
    assert len(E.stratified_subsample(labels, 3)) == 3
    assert len(E.stratified_subsample(labels, 0)) == 0
    assert len(E.stratified_subsample(["a", "b", "b", "c"], 3)) == 3


def test_embed_features_layout(results):
    full, _ = results
    df, info = E.embed_features(full, ("shared", "specific"), method="pca")
    n, m = len(full.table), len(full.modalities)
    assert len(df) == 2 * n * m
    assert list(df.columns) == [
        "utterance_id",
        "dialogue",
        "position",
        "speaker",
        "label",
        "prediction",
        "correct",
        "modality",
        "kind",
        "x",
        "y",
    ]
    assert info["n_total"] == info["n_shown"] == n * m and not info["subsampled"]
    assert set(df["kind"]) == {"shared", "specific"} and set(df["modality"]) == set(full.modalities)
    first = df.iloc[0]
    assert first["utterance_id"] == f"{first['dialogue']}#{first['position']}"
    for key in ("method", "params", "seconds"):
        assert key in info


@pytest.mark.app  # UMAP: numba compiles for tens of seconds in a new process
def test_embed_features_subsample_is_reported(results):
    full, _ = results
    df, info = E.embed_features(full, ["shared"], modalities=["audio", "text"], method="umap", max_points=120)
    assert info["subsampled"] and info["n_shown"] == 120 and info["n_total"] == 2 * len(full.table)
    assert len(df) == 120
    # the same utterances in every modality
    ids = df.groupby("modality")["utterance_id"].apply(lambda s: tuple(s))
    assert ids["audio"] == ids["text"]


@pytest.mark.app  # UMAP: numba compiles for tens of seconds in a new process
def test_aligned_init_gives_the_same_start(results, monkeypatch):
    full, _ = results
    seen = []
    real = E.embed

    def spy(X, method="umap", n_components=2, seed=0, init=None, **params):
        seen.append(None if init is None else np.array(init))
        return real(X, method, n_components, seed, init, **params)

    monkeypatch.setattr(E, "embed", spy)
    E.embed_features(
        full, ("shared", "specific", "refined_specific"), method="umap", max_points=150, cache=False
    )
    assert len(seen) == 3 and all(s is not None for s in seen)
    for s in seen[1:]:
        np.testing.assert_array_equal(s, seen[0])
    seen.clear()
    E.embed_features(full, ("shared", "specific"), method="umap", max_points=150, init=None, cache=False)
    assert seen == [None, None]


@pytest.mark.app  # UMAP: numba compiles for tens of seconds in a new process
def test_cache_hit_does_not_recompute(monkeypatch, tmp_path):
    X, _ = _blobs(n=300)
    Y1 = E.embed_cached(X, "umap", seed=0)
    files = list(E.embedding_cache_dir().glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:
        np.testing.assert_array_equal(z["coords"], Y1)

    def boom(*a, **k):
        raise AssertionError("recomputed despite a cache hit")

    monkeypatch.setattr(E, "embed", boom)
    np.testing.assert_array_equal(E.embed_cached(X, "umap", seed=0), Y1)  # memory
    E.clear_memory_cache()
    np.testing.assert_array_equal(E.embed_cached(X, "umap", seed=0), Y1)  # disk (an app restart)
    # a different parameter, seed or feature is a different key
    monkeypatch.setattr(E, "embed", lambda X, *a, **k: np.zeros((len(X), 2), np.float32))
    assert not np.array_equal(E.embed_cached(X, "umap", seed=1), Y1)
    assert not np.array_equal(E.embed_cached(X, "umap", seed=0, n_neighbors=5), Y1)
    assert not np.array_equal(E.embed_cached(X + 1, "umap", seed=0), Y1)


def test_corrupt_cache_file_is_recomputed():
    X, _ = _blobs(n=100)
    Y1 = E.embed_cached(X, "pca")
    (f,) = E.embedding_cache_dir().glob("*.npz")
    f.write_bytes(b"not an npz")
    E.clear_memory_cache()
    np.testing.assert_array_equal(E.embed_cached(X, "pca"), Y1)


def test_baseline_offers_context_only(results):
    _, base = results
    with pytest.raises(ValueError, match="baseline.*context"):
        E.embed_features(base, ("shared", "specific"))
    df, info = E.embed_features(base, ("context",), method="pca")
    assert set(df["kind"]) == {"context"} and info["n_shown"] == len(base.table) * len(base.modalities)
    with pytest.raises(ValueError, match="unknown feature kinds"):
        E.embed_features(base, ("shard",))


def test_a_failed_warm_up_says_why(monkeypatch):
    monkeypatch.setattr(
        E, "_warm", {"thread": None, "done": __import__("threading").Event(), "error": None, "seconds": None}
    )
    assert E.warm_up_error() is None

    def no_umap():
        raise ImportError("no umap here")

    monkeypatch.setattr(E, "_import_umap", no_umap)
    E.warm_up_umap(background=False)
    assert E.wait_for_warm_up(0) and "no umap here" in E.warm_up_error()


def test_warm_up_runs_once_and_sets_numba_cache(monkeypatch):
    monkeypatch.setattr(
        E, "_warm", {"thread": None, "done": __import__("threading").Event(), "error": None, "seconds": None}
    )
    calls = []
    monkeypatch.setattr(E, "_warm_up_work", lambda: (calls.append(1), E._warm["done"].set()))
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    t = E.warm_up_umap(background=True)
    t.join(5)
    assert E.warm_up_umap(background=True) is t and calls == [1]
    assert E.wait_for_warm_up(1)
    from pathlib import Path

    cache = Path(os.environ["NUMBA_CACHE_DIR"])
    # one folder per library versions: numba does not notice a change in another module it compiled in
    assert cache.parent.name == "numba" and cache.name.startswith("numba-") and "umap-learn-" in cache.name


@pytest.mark.app  # importing umap compiles numba code for ~20 s of CPU
def test_umap_and_pynndescent_functions_cache_on_disk():
    """Most of umap's numba functions are declared without cache=True: `_import_umap` switches the
    disk cache on for them, so a new process loads them instead of compiling for ~30 s."""
    umap = E._import_umap()
    import pynndescent.utils
    from numba.core.caching import NullCache

    for fn in (
        umap.umap_.smooth_knn_dist,
        umap.umap_.compute_membership_strengths,
        pynndescent.utils.deheap_sort,
    ):
        assert not isinstance(fn._cache, NullCache), fn
    # numba's cache key has no compile flags: the serial and parallel twins of one function stay uncached
    twins = [
        getattr(umap.layouts, f"_nb_optimize_layout_euclidean_single_epoch{s}", None)
        for s in ("", "_parallel")
    ]
    for fn in twins if all(twins) else []:  # where umap holds both at module level (0.5.12 does)
        assert isinstance(fn._cache, NullCache)


def test_trustworthiness_wrapper():
    X, _ = _blobs(n=500)
    assert E.trustworthiness(X, X[:, :2], k=5, n=200) <= 1.0
    assert E.trustworthiness(X, X, k=5, n=200) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        E.trustworthiness(X, X[:10])


@pytest.mark.app  # compiles NN-descent with numba: tens of seconds of CPU
def test_nndescent_knn_matches_exact_on_clusters():
    X, _ = _blobs(n=400, d=20)
    exact_i, exact_d = E.knn(X, 6, include_self=True, method="exact")
    ind, dist = E.knn(X, 6, include_self=True, method="nndescent", seed=0)
    assert ind.shape == (400, 6) and (ind[:, 0] == np.arange(400)).all() and (dist[:, 0] == 0).all()
    recall = np.mean([len(set(a) & set(b)) / 6 for a, b in zip(ind, exact_i)])
    assert recall > 0.95
    assert (np.diff(dist, axis=1) >= -1e-5).all()  # sorted by distance
    ind2, _ = E.knn(X, 5, include_self=False, method="nndescent", seed=0)
    assert ind2.shape == (400, 5) and not (ind2 == np.arange(400)[:, None]).any()
    np.testing.assert_array_equal(
        ind, E.knn(X, 6, include_self=True, method="nndescent", seed=0)[0]
    )  # seeded


def test_read_only_features_embed_without_warnings():
    """The app shares inference arrays read-only; embedding them must not warn or write."""
    import warnings

    X, _ = _blobs(n=120)
    X.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert E.knn(X, 5)[0].shape == (120, 5)
        assert E.embed(X, "pca").shape == (120, 2)


# ------------------------------------------------------------------------------------------- EmbedSpec


def test_embed_spec_defaults_are_the_modules():
    spec = E.EmbedSpec()
    assert spec.method == E.DEFAULT_METHOD == "tsne"
    assert spec.kinds == ("shared", "specific") and spec.modalities is None and spec.max_points is None
    assert spec.seed == 0 and spec.init == "aligned"
    assert spec.method_params() == {}  # the methods' own defaults (DEFAULT_PARAMS) apply
    # one default everywhere: the functions default to the spec's method and kinds
    import inspect

    for fn in (E.embed, E.embed_cached):
        assert inspect.signature(fn).parameters["method"].default == spec.method
    params = inspect.signature(E.embed_features).parameters
    assert params["method"].default == spec.method and tuple(params["kinds"].default) == spec.kinds
    import argparse

    from aofl.cli import embed as cli_embed

    parser = argparse.ArgumentParser()
    cli_embed.add_parser(parser.add_subparsers())
    args = parser.parse_args(["embed", "ckpt", "--out", "x.csv"])
    assert cli_embed.spec_from_args(args) == spec


def test_embed_spec_stores_as_given_and_keys_every_field():
    spec = E.EmbedSpec(method="umap", kinds=["shared"], n_neighbors=7, perplexity=12)
    assert spec.kinds == ["shared"] and spec.perplexity == 12  # stored as given, no conversion
    assert spec.to_dict()["kinds"] == ["shared"] and spec.to_dict()["n_neighbors"] == 7
    assert spec.method_params() == {"n_neighbors": 7}  # perplexity is t-SNE's: kept, not used by UMAP
    assert spec.replace(method="tsne").method_params() == {"perplexity": 12}
    assert spec.key() == E.EmbedSpec(method="umap", kinds=("shared",), n_neighbors=7, perplexity=12).key()
    keys = {spec.key()} | {
        spec.replace(**{f: v}).key()
        for f, v in (
            ("method", "pca"),
            ("kinds", ("specific",)),
            ("modalities", ("audio",)),
            ("max_points", 100),
            ("seed", 1),
            ("init", None),
            ("perplexity", 13),
            ("schedule", "thorough"),
            ("n_neighbors", 8),
            ("min_dist", 0.5),
            ("n_epochs", 10),
            ("n_iter", 50),
            ("early_exaggeration_iter", 20),
            ("pca_dims", 10),
        )
    }
    assert len(keys) == 15


def test_embed_spec_matches_embed_features(results):
    full, _ = results
    spec = E.EmbedSpec(method="pca", kinds=("shared",), modalities=("audio",), max_points=40, seed=2)
    df, info = E.embed_spec(full, spec)
    df2, info2 = E.embed_features(full, ["shared"], modalities=["audio"], method="pca", max_points=40, seed=2)
    assert df.equals(df2) and info["n_shown"] == info2["n_shown"]


def test_aligned_embeddings_share_the_reference_points(results):
    full, base = results
    coords, info = E.aligned_embeddings(
        {"a": full, "b": base}, E.EmbedSpec(method="pca", kinds=("shared",), max_points=60)
    )
    a, b = coords[coords["checkpoint"] == "a"], coords[coords["checkpoint"] == "b"]
    assert len(a) == len(b) == info["n_shown"]
    assert list(a["utterance_id"]) == list(b["utterance_id"])
    assert set(a["kind"]) == {"shared"} and set(b["kind"]) == {"context"}  # the baseline has no split
    with pytest.raises(ValueError, match="one feature kind"):
        E.aligned_embeddings({"a": full}, E.EmbedSpec(kinds=("shared", "specific")))


def test_the_app_warms_umap_up_in_a_child_once_and_never_raises(monkeypatch):
    from aofl import embed_process

    monkeypatch.setattr(embed_process, "_warm", {"thread": None, "result": None})
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("no umap here")

    monkeypatch.setattr(embed_process, "warm_up_in_subprocess", broken)
    t = embed_process.warm_up_in_background()
    t.join(5)
    assert embed_process.warm_up_in_background() is t and calls == [1]
    assert embed_process._warm["result"] == {"error": "RuntimeError: no umap here"}


def test_several_inputs_are_embedded_and_cached_like_one_each():
    X1, _ = _blobs(n=80, d=10, seed=1)
    X2, _ = _blobs(n=90, d=10, seed=2)
    both = E.embed_cached_many([X1, X2], "tsne", seed=0, n_iter=20, early_exaggeration_iter=10)
    E.clear_memory_cache()
    assert [Y.shape for Y in both] == [(80, 2), (90, 2)]
    np.testing.assert_array_equal(
        E.embed_cached(X2, "tsne", 2, 0, n_iter=20, early_exaggeration_iter=10), both[1]
    )
    assert E.umap_runner() is None  # the library computes in its own process unless told
