"""Fixtures of the app tests (test_app.py, test_browser.py): a checkpoint directory and env."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/_tiny.py and friends


@pytest.fixture(autouse=True)
def _umap_where_the_test_left_it():
    """An AppTest runs app.py in this process, and its start-up sends UMAP to child processes
    (`aofl.embed.set_umap_runner`): every test gets back the runner it started with, so a library test
    after an app test computes in-process as the library does."""
    from aofl import embed

    before = embed.umap_runner()
    yield
    embed.set_umap_runner(before)


@pytest.fixture
def fresh_embedding_cache(tmp_path, monkeypatch):
    """An empty AOFL_CACHE_DIR and aofl.embed's memory cache cleared before and after the test."""
    from aofl import embed

    monkeypatch.setenv("AOFL_CACHE_DIR", str(tmp_path / "cache"))
    embed.clear_memory_cache()
    yield
    embed.clear_memory_cache()


def _repo_entries():
    from aofl.store import registry

    try:
        return [
            e
            for e in registry.list_checkpoints("synthetic", ROOT / "checkpoints")
            if (ROOT / "checkpoints" / registry.MANIFEST_NAME).exists()
        ]
    except registry.RegistryError:
        return []


def _train_quick(directory: Path, variants=("full", "no_aao"), extra=()) -> None:
    """Two quickly trained synthetic checkpoints and a MANIFEST.json (about 20 s each on 2 cores)."""
    from aofl.cli import main
    from aofl.store.checkpoint import read_metadata
    from aofl.store.registry import manifest_entry, write_manifest

    entries = []
    for v in variants:
        out = directory / "synthetic" / v
        assert (
            main(
                [
                    "train",
                    "--data",
                    "synthetic",
                    "--variant",
                    v,
                    "--out",
                    str(out),
                    "--epochs",
                    "1",
                    "--no-progress",
                    *extra,
                ]
            )
            == 0
        )
        path = out / "model.safetensors"
        meta = read_metadata(path)
        metrics = {k: meta["metrics"]["test"][k] for k in ("weighted_f1", "accuracy")}
        entries.append(
            manifest_entry(
                directory, path, meta, name=f"synthetic-{v}", metrics=metrics, command=meta["command"]
            )
        )
    write_manifest(directory, entries)


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    # module scope: the env changes below are undone after each test module, so later modules
    # (real-data tests, shipped checkpoints) see the user's cache dir with its prepared text views
    """Env for the app: AOFL_CHECKPOINT_DIR (the repo's manifest when it lists synthetic
    checkpoints, else two quick ones in a temp dir), a fresh AOFL_CACHE_DIR, no UMAP warm-up."""
    saved = {k: os.environ.get(k) for k in ("AOFL_CHECKPOINT_DIR", "AOFL_CACHE_DIR", "AOFL_NO_WARMUP")}
    fresh = tmp_path_factory.mktemp("aofl-cache")
    # fresh inference caches, but the user's prepared text views (recomputing IEMOCAP's or MELD's takes minutes)
    users = (
        Path(saved["AOFL_CACHE_DIR"] or Path.home() / ".cache" / "aofl" / "cache").expanduser() / "textviews"
    )
    if users.is_dir():
        (fresh / "textviews").symlink_to(users, target_is_directory=True)
    os.environ["AOFL_CACHE_DIR"] = str(fresh)
    if _repo_entries():
        ckdir = ROOT / "checkpoints"
    else:
        ckdir = tmp_path_factory.mktemp("checkpoints")
        _train_quick(ckdir)
    os.environ["AOFL_CHECKPOINT_DIR"] = str(ckdir)
    os.environ["AOFL_NO_WARMUP"] = "1"
    from aofl.store import registry

    entries = registry.list_checkpoints("synthetic", ckdir)
    entries.sort(key=lambda e: (e.variant != "full", e.name))  # the app's order
    yield {"dir": ckdir, "entries": entries}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
