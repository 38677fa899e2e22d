"""The app's cached loaders: datasets, models, inference results, metrics and embeddings.

Caching follows Streamlit's own demos: `st.cache_resource` for datasets, models and inference
results (one shared object per process; pages never mutate them), `st.cache_data` for metrics.
A model is keyed by its checkpoint file's sha256 and the device; an inference result by a
`Selection` (checkpoint sha256, dataset fingerprint, split, dropped modalities), backed by the disk
store `aofl.store.inference_store` under `aofl.data.cache_dir()/inference/`.
"""

from __future__ import annotations

import functools
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from .. import embed as embedding
from ..data import DataError, available_datasets, cache_dir, load_dataset
from ..device import trims_after
from ..inference import InferenceResult, run_inference
from ..io.hashing import file_sha256_cached
from ..store import inference_store
from ..store.checkpoint import CheckpointError, load_checkpoint
from ..store.registry import CheckpointEntry
from .context import Context, require_checkpoint, user_errors

__all__ = [
    "start_up",
    "get_dataset",
    "dataset_fingerprint",
    "checkpoint_sha",
    "get_model",
    "checkpoint_metadata",
    "drop_key",
    "Selection",
    "selection",
    "HASH_FUNCS",
    "inference",
    "get_inference",
    "selected_inference",
    "get_evaluation",
    "aligned_tables",
    "checkpoint_data_warning",
    "check_data",
    "get_ablation_metrics",
    "get_slice_metrics",
    "get_embedding",
    "get_aligned_embeddings",
    "get_whatif_deltas",
]


def _keyword_call(cached):
    """A Streamlit-cached function, called with keyword arguments: Streamlit looks up each
    positional argument's name with inspect.signature on every call (tens of microseconds each,
    dozens per page run), and needs no lookup for a keyword."""
    names = list(inspect.signature(cached).parameters)

    @functools.wraps(cached)
    def call(*args, **kwargs):
        return cached(**dict(zip(names, args)), **kwargs)

    call.clear = cached.clear
    return call


@st.cache_resource(show_spinner=False)
def start_up() -> dict:
    """Once per process: thread and allocator policy, plotly's JSON reuse for cached figures
    (`aofl.plots.install_json_reuse`), the pages' libraries imported and frozen out of the garbage
    collector's walks (`_freeze_libraries`), UMAP moved to child processes (`aofl.embed_process`;
    $AOFL_UMAP_IN_PROCESS=1 keeps it here) and their numba code compiled by one child in the
    background (skipped when $AOFL_NO_WARMUP is set)."""
    from ..device import configure_threads, limit_malloc_arenas
    from ..plots import install_json_reuse

    # not configure_runtime's allocator policy: it keeps up to 256 MB of freed heap mapped per
    # process to spare a big inference its page faults, but the app runs each inference once (then
    # the memory and disk caches serve it) while every session's script run frees temporaries
    info = {"threads": configure_threads(), "allocator": "glibc defaults (the app)"}
    if limit_malloc_arenas(2):  # every session's script thread would otherwise keep a heap of its own
        info["allocator"] = "glibc defaults, 2 arenas (the app)"
    info["arrow_pool"] = _arrow_on_malloc()
    install_json_reuse()
    info["gc_frozen_objects"] = _freeze_libraries()
    # umap, numba and llvmlite with their compiled code: 402 -> 882 MB of a server that warmed UMAP
    # up in its own process, kept for good; a child gives it back when the embedding is done
    in_child = not os.environ.get("AOFL_UMAP_IN_PROCESS")
    if in_child:
        from ..embed_process import embed_in_subprocess

        embedding.set_umap_runner(embed_in_subprocess)
    info["umap"] = "child processes" if in_child else "in the server ($AOFL_UMAP_IN_PROCESS)"
    if os.environ.get("AOFL_NO_WARMUP"):  # tests: no background JIT competing for the CPU
        info["umap_warm_up"] = "disabled by AOFL_NO_WARMUP"
        return info
    try:
        if in_child:
            from ..embed_process import warm_up_in_background

            warm_up_in_background()  # fills numba's disk cache, then exits
        else:
            embedding.warm_up_umap(background=True)
        info["umap_warm_up"] = "started"
    except Exception as e:  # a broken umap install must not take the app down
        info["umap_warm_up"] = f"skipped ({type(e).__name__})"
    return info


def _arrow_on_malloc() -> str:
    """Let pyarrow allocate through malloc (its "system" pool) instead of its bundled mimalloc.

    The pages read per-run Parquet tables (the seeds view reads 110 for the synthetic set); mimalloc
    kept their freed buffers per thread, while through malloc they go back to the 2 arenas the app
    shares: the server's RSS after the seeds view 480 -> 464 MB, its peak 493 -> 480 MB."""
    try:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
        return pa.default_memory_pool().backend_name
    except Exception as e:  # pragma: no cover - a pyarrow without the system pool: keep its own
        return f"unchanged ({type(e).__name__})"


def _freeze_libraries() -> int:
    """Import what the pages use, then move every object alive now into the garbage collector's
    permanent generation; returns how many.

    Streamlit runs a full `gc.collect(2)` after every script run of every session
    (`runner.postScriptGC`). It walked the ~450k objects of torch, pandas, scipy, scikit-learn and
    plotly every time: 0.2 CPU-seconds holding the GIL (most of a warm page's server time), paid
    again for each session and rerun while the other sessions wait. Collections skip frozen
    objects; reference counting still frees them."""
    import gc

    import plotly.express  # noqa: F401

    from .. import analysis, evaluate, slices  # noqa: F401
    from . import figures, widgets  # noqa: F401

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


# ---------------------------------------------------------------------------------- data and models


@_keyword_call
@st.cache_resource(show_spinner="Loading the dataset ...", max_entries=4)
def get_dataset(name: str):
    if name not in available_datasets():
        raise DataError(f"dataset {name!r} is not available here; see the README for how to prepare it")
    if name == "synthetic":
        return load_dataset("synthetic", seed=0)
    return load_dataset(name)


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=4)
def dataset_fingerprint(name: str) -> str:
    return get_dataset(name).fingerprint()


def checkpoint_sha(entry: CheckpointEntry) -> str:
    """sha256 of the checkpoint file (cached by path, mtime and size); checked against the manifest."""
    p = Path(entry.path)
    if not p.exists():
        raise CheckpointError(f"checkpoint file {p} of {entry.name!r} is missing: re-download or retrain it")
    # keyed by the file's identity, so never stale; not Streamlit's cache: pages ask several times
    # per rerun and its argument hashing costs more than the stat
    sha = file_sha256_cached(p)
    if entry.sha256 and entry.sha256 != sha:
        raise CheckpointError(
            f"{p} does not match the sha256 in the manifest (file {sha[:12]}..., manifest "
            f"{entry.sha256[:12]}...): the file changed; update MANIFEST.json or restore it"
        )
    return sha


@_keyword_call
@st.cache_resource(show_spinner="Loading the checkpoint ...", max_entries=16)
def _load_model(sha256: str, path: str, device: str, _allow_unsafe: bool | None = None):
    # _allow_unsafe is not part of the key: a model that loaded is the same model either way
    return load_checkpoint(path, device=device, allow_unsafe=_allow_unsafe)


def get_model(entry: CheckpointEntry, device: str = "cpu"):
    """(model, metadata) of a checkpoint, one per (file sha256, device) and process. An entry with
    `allow_unsafe` (a file the user loaded and chose to trust, see aofl.app.files) passes it to the loader."""
    return _load_model(checkpoint_sha(entry), str(entry.path), device, getattr(entry, "allow_unsafe", None))


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=64)
def _metadata(sha256: str, path: str) -> dict:
    from ..store.checkpoint import read_metadata

    return read_metadata(path)


def checkpoint_metadata(entry: CheckpointEntry) -> dict:
    """The checkpoint's JSON metadata (config, history, metrics), read without loading the weights;
    shared, so callers must not change it."""
    return _metadata(checkpoint_sha(entry), str(entry.path))


def drop_key(drop: dict[str, str] | None) -> tuple:
    return tuple(sorted((drop or {}).items()))


# ---------------------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class Selection:
    """What one inference result is made from: a checkpoint, a dataset, a split, the dropped
    modalities (sorted (modality, mode) pairs, see `drop_key`) and the device it runs on.

    Cached functions that take a Selection are keyed by `key()` (HASH_FUNCS): the checkpoint's
    name and file sha256, the dataset's fingerprint, the split and the drop; not the device (a
    result is the same result on any device)."""

    entry: CheckpointEntry
    dataset: str
    split: str
    device: str = "cpu"
    drop: tuple = ()

    def key(self) -> tuple:
        return (
            self.entry.name,
            checkpoint_sha(self.entry),
            dataset_fingerprint(self.dataset),
            self.split,
            self.drop,
        )

    def dropping(self, drop: dict[str, str] | None) -> "Selection":
        """The same selection with these modalities dropped (the what-if)."""
        return Selection(self.entry, self.dataset, self.split, self.device, drop_key(drop))


def selection(
    ctx: Context, entry: CheckpointEntry | None = None, drop: dict[str, str] | None = None
) -> Selection:
    """The Selection of `entry` (default: the sidebar's checkpoint) on the sidebar's dataset and split."""
    return Selection(
        entry if entry is not None else ctx.checkpoint, ctx.dataset, ctx.split, ctx.device, drop_key(drop)
    )


# Streamlit hashes a Selection (also inside tuples) by what names its data, not by its fields
HASH_FUNCS = {Selection: Selection.key}


# cache_resource, not cache_data: one shared object per process, where cache_data would unpickle a
# copy of the whole result (table + feature arrays) on every rerun of every page
@_keyword_call
@st.cache_resource(show_spinner="Running the model over the split ...", max_entries=64)
@trims_after
def _inference(
    sha: str, fingerprint: str, split: str, drop: tuple, path: str, dataset: str, device: str
) -> InferenceResult:
    directory = cache_dir() / "inference" / inference_store.key(sha, fingerprint, split, drop)
    hit = inference_store.load(directory)
    if hit is not None:
        return inference_store.read_only(hit)
    model, _ = _load_model(sha, path, device)
    result = run_inference(model, get_dataset(dataset), split, drop=dict(drop) or None)
    inference_store.save(directory, result)
    return inference_store.read_only(result)


def inference(sel: Selection) -> InferenceResult:
    """The inference result of a selection (memory cache, then disk cache, then the model)."""
    return _inference(
        checkpoint_sha(sel.entry),
        dataset_fingerprint(sel.dataset),
        sel.split,
        tuple(sel.drop),
        str(sel.entry.path),
        sel.dataset,
        sel.device,
    )


def get_inference(
    entry: CheckpointEntry, dataset: str, split: str, drop: dict[str, str] | None = None, device: str = "cpu"
) -> InferenceResult:
    """The inference result of a checkpoint on a split (memory cache, then disk cache, then the model)."""
    return inference(Selection(entry, dataset, split, device, drop_key(drop)))


def selected_inference(ctx: Context) -> tuple[Selection, InferenceResult]:
    """The pages' common start: the sidebar's checkpoint, checked against the dataset, and its
    (cached) inference on the chosen split. A problem the user can fix stops the page with a message."""
    entry = require_checkpoint(ctx)
    with user_errors(f"Cannot run {entry.name}"):
        _, meta = get_model(entry, ctx.device)
        check_data(meta, ctx.dataset)
        sel = selection(ctx, entry)
        result = inference(sel)
    return sel, result


@_keyword_call
@st.cache_data(show_spinner="Scoring ...", max_entries=64)
def _evaluation(sha: str, fingerprint: str, split: str, path: str, dataset: str, device: str) -> dict:
    from ..evaluate import evaluate

    result = _inference(sha, fingerprint, split, (), path, dataset, device)
    model, _ = _load_model(sha, path, device)
    return evaluate(model, get_dataset(dataset), split, result=result)


def get_evaluation(entry: CheckpointEntry, dataset: str, split: str, device: str = "cpu") -> dict:
    """`aofl.evaluate.evaluate` of the checkpoint on the split (reuses the cached inference)."""
    return _evaluation(
        checkpoint_sha(entry), dataset_fingerprint(dataset), split, str(entry.path), dataset, device
    )


def checkpoint_data_warning(meta: dict, dataset: str) -> tuple[str, str] | None:
    """("error" | "warning", message) when the checkpoint was trained on other data than selected
    (`aofl.compatibility.check_compatible`: dataset, labels, modality dims; a data version is a warning)."""
    from ..compatibility import IncompatibleCheckpointError, check_compatible

    name = Path(meta.get("path", "?")).parent.name or "?"
    try:
        found = check_compatible(
            meta, get_dataset(dataset), source=name, fingerprint=dataset_fingerprint(dataset)
        )
    except IncompatibleCheckpointError as e:
        return "error", f"{e}. Pick a checkpoint of {dataset} or switch the dataset in the sidebar."
    return ("warning", found[0]) if found else None


def check_data(meta: dict, dataset: str) -> None:
    """Stop the page with an error for a checkpoint of another dataset; warn for other data versions."""
    found = checkpoint_data_warning(meta, dataset)
    if found and found[0] == "error":
        st.error(found[1])
        st.stop()
    if found:
        st.warning(found[1])


# ----------------------------------------------------------------------- metrics of several results


def aligned_tables(sels: tuple[Selection, ...]) -> dict[str, pd.DataFrame]:
    """{checkpoint name: inference table} of the selections, on their common utterances."""
    from ..analysis import align_tables

    return align_tables({s.entry.name: inference(s).table for s in sels})


@_keyword_call
@st.cache_data(show_spinner="Bootstrapping confidence intervals ...", max_entries=32, hash_funcs=HASH_FUNCS)
def get_ablation_metrics(sels: tuple[Selection, ...], n_boot: int = 200) -> pd.DataFrame:
    """`analysis.ablation_metrics` of the selections' aligned tables (the first is the reference)."""
    from ..analysis import ablation_metrics

    return ablation_metrics(aligned_tables(tuple(sels)), n_boot=n_boot)


@_keyword_call
@st.cache_data(show_spinner="Scoring the slices ...", max_entries=32, hash_funcs=HASH_FUNCS)
def get_slice_metrics(sels: tuple[Selection, ...], n_boot: int = 200) -> pd.DataFrame:
    """`slices.compare_slices` of the selections' aligned tables {name: table}."""
    from ..slices import compare_slices

    sels = tuple(sels)
    tables = aligned_tables(sels) if len(sels) > 1 else {s.entry.name: inference(s).table for s in sels}
    return compare_slices(tables, n_boot=n_boot)


@_keyword_call
@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=HASH_FUNCS)
def get_whatif_deltas(sel: Selection, drop: tuple, utterance_ids: tuple | None = None) -> pd.DataFrame:
    """`analysis.whatif_deltas` of the selection's result vs the same with `drop` (sorted (modality,
    mode) pairs), restricted to utterance_ids when given."""
    from ..analysis import whatif_deltas

    deltas = whatif_deltas(inference(sel).table, inference(sel.dropping(dict(drop))).table)
    if utterance_ids is not None:
        deltas = deltas[deltas["utterance_id"].isin(list(utterance_ids))].reset_index(drop=True)
    return deltas


# ------------------------------------------------------------------------------------------- embeddings


@_keyword_call
@st.cache_data(show_spinner="Embedding the features ...", max_entries=32, hash_funcs=HASH_FUNCS)
@trims_after
def get_embedding(sel: Selection, spec: embedding.EmbedSpec):
    """`aofl.embed.embed_spec` of the selection's result: (coordinates, info); memory cache here,
    disk cache in aofl.embed."""
    return embedding.embed_spec(inference(sel), spec)


@_keyword_call
@st.cache_data(show_spinner="Embedding the checkpoints ...", max_entries=16, hash_funcs=HASH_FUNCS)
@trims_after
def get_aligned_embeddings(sels: tuple[Selection, ...], spec: embedding.EmbedSpec):
    """`aofl.embed.aligned_embeddings` of the selections' results (the first is the reference)."""
    return embedding.aligned_embeddings({s.entry.name: inference(s) for s in sels}, spec)
