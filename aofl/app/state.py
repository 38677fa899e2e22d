"""What the app's pages share: the sidebar's selection, cached loaders and small page helpers.

Caching follows Streamlit's own demos: `st.cache_resource` for datasets and models (one object
per process; a model is keyed by its checkpoint file's sha256 and the device), `st.cache_data`
for inference results and metrics, backed by a disk cache under
`aofl.data.cache_dir()/inference/<key>/` (table.parquet + arrays.npz + meta.json, no pickle),
keyed by (checkpoint sha256, dataset fingerprint, split, dropped modalities). Pages never
mutate what these functions return.

Figures and the frames derived from a result are cached too (`cached_figure`, `cached_frame`,
`st.cache_resource` keyed by a `data_key` that names the data exactly, e.g. `inference_key` plus the
transformation), so revisiting a page with the same selection rebuilds no plotly figure.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import inspect
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from ..io.atomic import atomic_dir
from ..io.checkpoint import CheckpointError, file_sha256, load_checkpoint
from ..data import DataError, available_datasets, cache_dir, load_dataset
from ..errors import AOFLError
from ..inference import InferenceResult, run_inference
from ..io.registry import CheckpointEntry

__all__ = ["Context", "set_context", "context", "select_valid", "require_checkpoint", "require_checkpoints",
           "user_errors", "split_frame",
           "get_dataset", "dataset_fingerprint", "checkpoint_sha", "get_model", "get_inference", "get_evaluation",
           "show_figure", "download_csv", "start_up", "drop_key", "USER_ERRORS", "checkpoint_data_warning",
           "check_data", "inference_key", "cached_figure", "cached_frame", "derived_key", "embedding_key",
           "get_whatif_deltas", "get_slice_metrics"]

# AOFLError covers every project error (UnsafePickleError is no ValueError); OSError: unreadable paths
USER_ERRORS = (AOFLError, ValueError, OSError)
_CTX_KEY = "aofl_context"


@dataclass
class Context:
    """The sidebar's selection, set by app.py on every run and read by the pages."""
    dataset: str = "synthetic"
    split: str = "test"
    device: str = "cpu"
    checkpoint: CheckpointEntry | None = None  # the one checkpoint of single-checkpoint pages
    checkpoints: list[CheckpointEntry] = field(default_factory=list)  # Ablations
    problem: str | None = None  # why there is no checkpoint, and what to do


def set_context(ctx: Context) -> None:
    st.session_state[_CTX_KEY] = ctx


def _leave_legacy_pages() -> bool:
    """A deep link as a fresh server's first request (`/angles?...`) runs pages/angles.py alone:
    Streamlit treats a `pages/` folder as a legacy multipage app until some session has called
    st.navigation. Turn that mode off (what st.navigation itself does) so a rerun goes through
    app.py, with its sidebar, to the same page. True when the mode was on."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without it has no legacy mode to leave
        return False
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        return True
    return False


def context() -> Context:
    ctx = st.session_state.get(_CTX_KEY)
    if ctx is None and _leave_legacy_pages():
        st.rerun()  # the same page and query, now through app.py's st.navigation
    if ctx is None:
        st.info("Open the app through `streamlit run app.py`: the sidebar there selects dataset, split and checkpoint.")
        st.stop()
    return ctx


def select_valid(key: str, options) -> None:
    """Before a selector is drawn: its stored value, or the first option when that is not one of
    `options`. Set, not popped: a selector whose options changed (another dataset, dialogue) must be
    sent its new value, or the browser keeps showing the old one."""
    options = list(options)
    if options and st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def require_checkpoint(ctx: Context) -> CheckpointEntry:
    if ctx.checkpoint is None:
        st.info(ctx.problem or "Select a checkpoint in the sidebar.")
        st.stop()
    return ctx.checkpoint


def require_checkpoints(ctx: Context, minimum: int = 2) -> list[CheckpointEntry]:
    if ctx.problem and not ctx.checkpoints:
        st.info(ctx.problem)
        st.stop()
    if len(ctx.checkpoints) < minimum:
        st.info(f"Select at least {minimum} checkpoints of dataset {ctx.dataset} in the sidebar to compare them "
                f"(the first one is the reference).")
        st.stop()
    return ctx.checkpoints


@contextlib.contextmanager
def user_errors(what: str = ""):
    """Show a problem the user can fix as st.error (no traceback) and stop the page."""
    try:
        yield
    except USER_ERRORS as e:
        st.error(f"{what}: {e}" if what else str(e))
        st.stop()


def selected_inference(ctx: Context):
    """The pages' common start: the sidebar's checkpoint, checked against the dataset, and its
    (cached) inference on the chosen split. A problem the user can fix stops the page with a message."""
    entry = require_checkpoint(ctx)
    with user_errors(f"Cannot run {entry.name}"):
        _, meta = get_model(entry, ctx.device)
        check_data(meta, ctx.dataset)
        result = get_inference(entry, ctx.dataset, ctx.split, device=ctx.device)
    return entry, result


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
    """Once per process: thread and allocator policy, and a background UMAP warm-up (numba JIT) if available
    (skipped when $AOFL_NO_WARMUP is set)."""
    from ..device import configure_runtime
    info = configure_runtime()
    if os.environ.get("AOFL_NO_WARMUP"):  # tests: no background JIT competing for the CPU
        info["umap_warm_up"] = "disabled by AOFL_NO_WARMUP"
        return info
    try:
        from .. import embed
        embed.warm_up_umap(background=True)
        info["umap_warm_up"] = "started"
    except Exception as e:  # a missing or broken embed module must not take the app down
        info["umap_warm_up"] = f"skipped ({type(e).__name__})"
    return info


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


# keyed by the file's identity, so never stale; a plain lru_cache because pages ask for it several
# times per rerun and Streamlit's cache lookup (argument hashing) costs more than the stat
@functools.lru_cache(maxsize=256)
def _sha_of(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(path)


def checkpoint_sha(entry: CheckpointEntry) -> str:
    """sha256 of the checkpoint file (cached by path, mtime and size); checked against the manifest."""
    p = Path(entry.path)
    if not p.exists():
        raise CheckpointError(f"checkpoint file {p} of {entry.name!r} is missing: re-download or retrain it")
    stat = p.stat()
    sha = _sha_of(str(p), stat.st_mtime_ns, stat.st_size)
    if entry.sha256 and entry.sha256 != sha:
        raise CheckpointError(f"{p} does not match the sha256 in the manifest (file {sha[:12]}..., manifest "
                              f"{entry.sha256[:12]}...): the file changed; update MANIFEST.json or restore it")
    return sha


@_keyword_call
@st.cache_resource(show_spinner="Loading the checkpoint ...", max_entries=16)
def _load_model(sha256: str, path: str, device: str, _allow_unsafe: bool | None = None):
    # _allow_unsafe is not part of the key: a model that loaded is the same model either way
    return load_checkpoint(path, device=device, allow_unsafe=_allow_unsafe)


def get_model(entry: CheckpointEntry, device: str = "cpu"):
    """(model, metadata) of a checkpoint, one per (file sha256, device) and process. An entry with
    `allow_unsafe` (a file the user loaded and chose to trust, see app_files) passes it to the loader."""
    return _load_model(checkpoint_sha(entry), str(entry.path), device, getattr(entry, "allow_unsafe", None))


def drop_key(drop: dict[str, str] | None) -> tuple:
    return tuple(sorted((drop or {}).items()))


def _disk_key(sha: str, fingerprint: str, split: str, drop: tuple) -> str:
    raw = json.dumps([sha, fingerprint, split, list(map(list, drop))])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


_ARRAY_GROUPS = ("shared", "specific", "refined_shared", "refined_specific", "context", "factors")


def _disk_save(directory: Path, result: InferenceResult) -> None:
    try:
        if directory.exists():  # an entry that failed to load (corrupt): replace it
            shutil.rmtree(directory, ignore_errors=True)
        # built aside, fsynced, renamed in: readers see the whole entry or none, even after a crash;
        # a concurrent writer's finished entry (same key, same content) is kept
        with atomic_dir(directory) as tmp:
            result.table.to_parquet(tmp / "table.parquet", index=False)
            arrays = {"probabilities": result.probabilities}
            for group in _ARRAY_GROUPS:
                for m, a in getattr(result, group).items():
                    arrays[f"{group}/{m}"] = a
            np.savez(tmp / "arrays.npz", **arrays)
            (tmp / "meta.json").write_text(json.dumps({"alpha_deg": result.alpha_deg,
                                                       "label_names": result.label_names,
                                                       "modalities": result.modalities}))
    except OSError:
        pass  # a read-only cache only costs recomputation


def _disk_load(directory: Path) -> InferenceResult | None:
    try:
        table = pd.read_parquet(directory / "table.parquet")
        meta = json.loads((directory / "meta.json").read_text())
        groups: dict[str, dict] = {g: {} for g in _ARRAY_GROUPS}
        from ..io.file_checks import load_npz
        z = load_npz(directory / "arrays.npz")  # sizes checked, allow_pickle=False; a bad entry is rebuilt
        probabilities = z["probabilities"]
        for k in z:
            if "/" in k:
                g, m = k.split("/", 1)
                groups[g][m] = z[k]
    except (OSError, ValueError, KeyError):
        return None
    return InferenceResult(table=table, probabilities=probabilities, alpha_deg=meta["alpha_deg"],
                           label_names=meta["label_names"], modalities=meta["modalities"], **groups)


def _read_only(result: InferenceResult) -> InferenceResult:
    """Freeze the arrays of a result that every session shares (pages derive, never modify)."""
    for a in [result.probabilities] + [v for d in (result.shared, result.specific, result.refined_shared,
                                                   result.refined_specific, result.context, result.factors)
                                       for v in d.values()]:
        a.flags.writeable = False
    return result


# cache_resource, not cache_data: one shared object per process, where cache_data would unpickle a
# copy of the whole result (table + feature arrays) on every rerun of every page
@_keyword_call
@st.cache_resource(show_spinner="Running the model over the split ...", max_entries=64)
def _inference(sha: str, fingerprint: str, split: str, drop: tuple, path: str, dataset: str,
               device: str) -> InferenceResult:
    directory = cache_dir() / "inference" / _disk_key(sha, fingerprint, split, drop)
    hit = _disk_load(directory)
    if hit is not None:
        return _read_only(hit)
    model, _ = _load_model(sha, path, device)
    result = run_inference(model, get_dataset(dataset), split, drop=dict(drop) or None)
    _disk_save(directory, result)
    return _read_only(result)


def inference_key(entry: CheckpointEntry, dataset: str, split: str, drop: dict[str, str] | None = None) -> str:
    """The key of a checkpoint's inference result on a split: its disk cache key (checkpoint sha256,
    dataset fingerprint, split, dropped modalities). Figures and frames derived from the result
    extend it with their transformation (see `cached_figure`)."""
    return _disk_key(checkpoint_sha(entry), dataset_fingerprint(dataset), split, drop_key(drop))


def get_inference(entry: CheckpointEntry, dataset: str, split: str, drop: dict[str, str] | None = None,
                  device: str = "cpu") -> InferenceResult:
    """The inference result of a checkpoint on a split (memory cache, then disk cache, then the model)."""
    return _inference(checkpoint_sha(entry), dataset_fingerprint(dataset), split, drop_key(drop), str(entry.path),
                      dataset, device)


@_keyword_call
@st.cache_data(show_spinner="Scoring ...", max_entries=64)
def _evaluation(sha: str, fingerprint: str, split: str, path: str, dataset: str, device: str) -> dict:
    from ..evaluate import evaluate
    result = _inference(sha, fingerprint, split, (), path, dataset, device)
    model, _ = _load_model(sha, path, device)
    return evaluate(model, get_dataset(dataset), split, result=result)


def get_evaluation(entry: CheckpointEntry, dataset: str, split: str, device: str = "cpu") -> dict:
    """`aofl.evaluate.evaluate` of the checkpoint on the split (reuses the cached inference)."""
    return _evaluation(checkpoint_sha(entry), dataset_fingerprint(dataset), split, str(entry.path), dataset, device)


def checkpoint_data_warning(meta: dict, dataset: str) -> tuple[str, str] | None:
    """("error" | "warning", message) when the checkpoint was trained on other data than selected
    (`aofl.io.compatibility.check_compatible`: dataset, labels, modality dims; a data version is a warning)."""
    from ..io.compatibility import IncompatibleCheckpointError, check_compatible
    name = Path(meta.get("path", "?")).parent.name or "?"
    try:
        found = check_compatible(meta, get_dataset(dataset), source=name, fingerprint=dataset_fingerprint(dataset))
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


# ------------------------------------------------------------------------------ figure and frame caches
# A figure is cached once per process as its plain dict (`fig.to_dict()`) in st.cache_resource (no
# copy per hit) and handed out wrapped in a `ReadyFigure`: st.plotly_chart then serialises that
# dict directly instead of rebuilding, deep-copying and re-validating a go.Figure on every rerun
# (three quarters of a warm page run before, bench/bench_pages.py).


def _check_key(data_key: str) -> None:
    if not isinstance(data_key, str) or not data_key:
        raise TypeError("data_key must be a non-empty string that identifies the data exactly")


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=256)
def _figure_dict(builder_name: str, data_key: str, args: tuple, kwargs: tuple, _df) -> dict:
    from .. import plots
    return getattr(plots, builder_name)(_df, *args, **dict(kwargs)).to_dict()


def cached_figure(builder_name: str, data_key: str, df, *args, **kwargs):
    """`aofl.plots.<builder_name>(df, *args, **kwargs)`, built once per (data_key, arguments).

    df is not hashed (it can be large): `data_key` must identify it exactly, e.g.
    `inference_key(...)` plus the transformation that made df from the result (see
    `derived_key`). The arguments are hashed. Returns a read-only `ReadyFigure` (a fresh wrapper on
    every call over the one cached spec; `.to_figure()` gives a mutable go.Figure)."""
    _check_key(data_key)
    from ..plots import ReadyFigure
    return ReadyFigure(_figure_dict(builder_name, data_key, tuple(args), tuple(sorted(kwargs.items())), df))


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=256)
def _frame(func_name: str, data_key: str, args: tuple, kwargs: tuple, _df):
    from .. import analysis
    return getattr(analysis, func_name)(_df, *args, **dict(kwargs))


def cached_frame(func_name: str, data_key: str, df, *args, **kwargs):
    """`aofl.analysis.<func_name>(df, *args, **kwargs)` (a frame, dict, ...), computed once per (data_key, arguments);
    df is not hashed, `data_key` must identify it exactly (as for `cached_figure`)."""
    _check_key(data_key)
    # the cached value is shared by every session; a shallow copy keeps callers' edits off it
    out = _frame(func_name, data_key, tuple(args), tuple(sorted(kwargs.items())), df)
    return out.copy(deep=False) if isinstance(out, pd.DataFrame) else copy.copy(out)


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=64)
def _groups(data_key: str, column: str, _df: pd.DataFrame) -> dict:
    return {k: g for k, g in _df.groupby(column, sort=False)}


def split_frame(df: pd.DataFrame, column: str, data_key: str) -> dict:
    """{value: rows of df with that value in `column`} (rows in df's order), made once per data_key
    (which must identify df exactly); shallow copies, so callers' edits stay theirs."""
    _check_key(data_key)
    return {k: g.copy(deep=False) for k, g in _groups(data_key, column, df).items()}


def derived_key(data_key: str, func_name: str, *args, **kwargs) -> str:
    """The data key of `cached_frame(func_name, data_key, df, *args, **kwargs)`'s result."""
    raw = json.dumps([data_key, func_name, list(args), sorted(kwargs.items())], default=repr)
    return f"{func_name}:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def download_csv(df: pd.DataFrame, name: str, key: str | None = None, label: str = "Download CSV",
                 index: bool = False) -> None:
    """A CSV download of df, made only when the button is clicked (Streamlit calls `data` then, on
    another thread), so a rerun never serialises or registers the file."""
    st.download_button(label, lambda: df.to_csv(index=index).encode(), file_name=f"{name}.csv", mime="text/csv",
                       key=key or f"dl_{name}", on_click="ignore")


def show_figure(fig, table: pd.DataFrame, name: str, key: str | None = None, index: bool = False, **kwargs):
    """st.plotly_chart plus a CSV download of the table behind it; returns the chart's selection."""
    event = st.plotly_chart(fig, key=key or f"fig_{name}", **kwargs)
    download_csv(table, name, key=f"dl_{key or name}", index=index)
    return event


def whatif_controls(modalities: list[str], key: str) -> dict[str, str] | None:
    """Widgets: which modality to drop and how; None when nothing is dropped."""
    c1, c2 = st.columns(2)
    dropped = c1.selectbox("Drop a modality", ["(none)"] + list(modalities), key=f"{key}_modality",
                           help="Replace one modality's input features and run the model again")
    mode = c2.radio("Replace it by", ["zero", "mean"], key=f"{key}_mode", horizontal=True,
                    format_func=lambda m: {"zero": "zeros", "mean": "its training mean"}[m])
    if dropped == "(none)":
        return None
    return {dropped: mode}


@_keyword_call
@st.cache_data(show_spinner=False, max_entries=64)
def _whatif_deltas(data_key: str, _base: pd.DataFrame, _after: pd.DataFrame, _ids) -> pd.DataFrame:
    from ..analysis import whatif_deltas
    deltas = whatif_deltas(_base, _after)
    if _ids is not None:
        deltas = deltas[deltas["utterance_id"].isin(_ids)].reset_index(drop=True)
    return deltas


def get_whatif_deltas(entry: CheckpointEntry, dataset: str, split: str, base: InferenceResult,
                      after: InferenceResult, drop: dict[str, str], utterance_ids: list[str] | None = None):
    """(`analysis.whatif_deltas` of base vs after, restricted to utterance_ids when given, its data key)."""
    ids = None if utterance_ids is None else [str(u) for u in utterance_ids]
    dkey = derived_key(f"{inference_key(entry, dataset, split)}|{inference_key(entry, dataset, split, drop)}",
                       "whatif_deltas", ids)
    return _whatif_deltas(dkey, base.table, after.table, ids), dkey


def whatif_section(ctx: Context, entry: CheckpointEntry, base: InferenceResult, key: str,
                   utterance_ids: list[str] | None = None) -> None:
    """The modality what-if: aggregate and per-utterance changes when one modality is dropped.

    utterance_ids restricts the per-utterance table (e.g. to one dialogue); aggregates are over
    those utterances too when given."""
    drop = whatif_controls(base.modalities, key)
    if drop is None:
        st.caption("Pick a modality to see how predictions, confidences and angles move without it.")
        return
    (dropped, mode), = drop.items()
    with user_errors("What-if failed"):
        after = get_inference(entry, ctx.dataset, ctx.split, drop, ctx.device)
        deltas, dkey = get_whatif_deltas(entry, ctx.dataset, ctx.split, base, after, drop, utterance_ids)
    if deltas.empty:
        st.info("No utterances to compare.")
        return
    summary = cached_frame("whatif_summary", dkey, deltas)
    c = st.columns(4)
    c[0].metric("Predictions that flip", f"{100 * deltas['flipped'].mean():.1f}%")
    c[1].metric("Accuracy without " + dropped, f"{deltas['correct_after'].mean():.3f}",
                delta=f"{deltas['correct_after'].mean() - deltas['correct_before'].mean():+.3f}")
    c[2].metric("Mean confidence change", f"{deltas['confidence_delta'].mean():+.3f}")
    c[3].metric("Mean true-class prob. change", f"{np.nanmean(deltas['p_true_delta']):+.3f}")
    left, right = st.columns(2)
    with left:
        show_figure(cached_figure("whatif_confidence", dkey, deltas, f"{dropped} ({mode})"), deltas,
                    f"whatif_{key}_confidence", key=f"{key}_fig_conf")
    with right:
        show_figure(cached_figure("whatif_theta_shift", dkey, deltas), deltas, f"whatif_{key}_theta",
                    key=f"{key}_fig_theta")
    st.dataframe(summary, hide_index=True, key=f"{key}_summary")
    st.markdown("**Per utterance** (flipped predictions first)")
    shown = deltas.sort_values(["flipped", "confidence_delta"], ascending=[False, True])
    st.dataframe(shown, hide_index=True, key=f"{key}_table", column_config={
        "confidence_delta": st.column_config.NumberColumn(format="%+.3f"),
        "p_true_delta": st.column_config.NumberColumn(format="%+.3f")})
    download_csv(shown, f"whatif_{key}_per_utterance", key=f"dl_{key}_whatif_table")


@_keyword_call
@st.cache_data(show_spinner="Bootstrapping confidence intervals ...", max_entries=32)
def _ablation_metrics(shas: tuple, fingerprint: str, split: str, n_boot: int, _tables: dict) -> pd.DataFrame:
    from ..analysis import ablation_metrics
    return ablation_metrics(_tables, n_boot=n_boot)


def get_ablation_metrics(entries: list[CheckpointEntry], dataset: str, split: str, tables: dict[str, pd.DataFrame],
                         n_boot: int = 200) -> pd.DataFrame:
    """`analysis.ablation_metrics` cached by the checkpoints' hashes, data, split and n_boot."""
    shas = tuple((e.name, checkpoint_sha(e)) for e in entries)
    return _ablation_metrics(shas, dataset_fingerprint(dataset), split, n_boot, tables)


@_keyword_call
@st.cache_data(show_spinner="Scoring the slices ...", max_entries=32)
def _slice_metrics(shas: tuple, fingerprint: str, split: str, n_boot: int, _tables: dict) -> pd.DataFrame:
    from ..slices import compare_slices
    return compare_slices(_tables, n_boot=n_boot)


def get_slice_metrics(entries: list[CheckpointEntry], dataset: str, split: str, tables: dict[str, pd.DataFrame],
                      n_boot: int = 200) -> tuple[pd.DataFrame, str]:
    """(`slices.compare_slices` of the checkpoints' inference tables {name: table}, its data key for
    `cached_figure`), cached by the checkpoints' hashes, data, split and n_boot."""
    shas = tuple((e.name, checkpoint_sha(e)) for e in entries)
    fingerprint = dataset_fingerprint(dataset)
    key = derived_key(json.dumps([[list(s) for s in shas], fingerprint, split]), "compare_slices", n_boot)
    return _slice_metrics(shas, fingerprint, split, n_boot, tables), key


def embed_module():
    """`aofl.embed`, or None (with an st.info) while it is not installed."""
    try:
        from .. import embed
        return embed
    except ImportError as e:
        st.info(f"Embeddings need `aofl.embed`, which cannot be imported here ({e}).")
        return None


@_keyword_call
@st.cache_data(show_spinner="Embedding the features ...", max_entries=32)
def _embedding(sha: str, fingerprint: str, split: str, settings: tuple, _result: InferenceResult):
    from .. import embed
    s = dict(settings)
    return embed.embed_features(_result, kinds=s["kinds"], modalities=s["modalities"], method=s["method"],
                                max_points=s["max_points"], seed=s["seed"], params=dict(s["params"]),
                                init="aligned")


def get_embedding(entry: CheckpointEntry, dataset: str, split: str, result: InferenceResult, *, kinds, modalities,
                  method: str, max_points: int | None, seed: int = 0, params: dict | None = None):
    """`aofl.embed.embed_features` of a checkpoint's result (memory cache here, disk cache in embed)."""
    return _embedding(checkpoint_sha(entry), dataset_fingerprint(dataset), split,
                      _embedding_settings(kinds, modalities, method, max_points, seed, params), result)


def _embedding_settings(kinds, modalities, method, max_points, seed, params) -> tuple:
    return (("kinds", tuple(kinds)), ("modalities", tuple(modalities)), ("method", method),
            ("max_points", max_points), ("seed", int(seed)), ("params", tuple(sorted((params or {}).items()))))


def embedding_key(entry: CheckpointEntry, dataset: str, split: str, *, kinds, modalities, method: str,
                  max_points: int | None, seed: int = 0, params: dict | None = None) -> str:
    """The data key of `get_embedding(...)`'s coordinates with the same arguments (for `cached_figure`)."""
    return derived_key(inference_key(entry, dataset, split), "embedding",
                       _embedding_settings(kinds, modalities, method, max_points, seed, params))


def selected_ids(event) -> list[str]:
    """Utterance ids (customdata[0]) of the points selected on a plotly chart, in order, unique."""
    if not event:
        return []
    try:
        points = event.selection.points
    except AttributeError:
        points = (event.get("selection") or {}).get("points", []) if isinstance(event, dict) else []
    out = []
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            out.append(str(cd))
    return list(dict.fromkeys(out))


@_keyword_call
@st.cache_data(show_spinner="Embedding the checkpoints ...", max_entries=16)
def _aligned_embeddings(shas: tuple, fingerprint: str, split: str, settings: tuple, _results: dict):
    from .. import embed
    s = dict(settings)
    kind, mods, method, params = s["kind"], list(s["modalities"]), s["method"], dict(s["params"])
    names = list(_results)

    def kind_of(r):
        return kind if (r.has_split or kind == "context") else "context"

    ref = _results[names[0]]
    df, info = embed.embed_features(ref, kinds=(kind_of(ref),), modalities=mods, method=method,
                                    max_points=s["max_points"], seed=s["seed"], params=params, init="aligned")
    block = df[df["modality"] == mods[0]]["utterance_id"]
    init = df[["x", "y"]].to_numpy(np.float64) if method != "pca" else None
    frames = [df.assign(checkpoint=names[0], kind=kind_of(ref))]
    for n in names[1:]:
        r = _results[n]
        pos = pd.Index(r.table["utterance_id"]).get_indexer(block)
        if (pos < 0).any():
            raise ValueError(f"{n!r} was run on other utterances than {names[0]!r}")
        feats = getattr(r, kind_of(r))
        X = np.concatenate([np.asarray(feats[m], np.float32)[pos] for m in mods])
        # every checkpoint starts from the reference's layout: clusters that stay put stay put
        Y = embed.embed_cached(X, method, 2, s["seed"], init, **params)
        part = df.copy()
        part["x"], part["y"] = Y[:, 0], Y[:, 1]
        rows = r.table.iloc[np.tile(pos, len(mods))]
        part["prediction"] = rows["prediction"].to_numpy()
        part["correct"] = rows["correct"].to_numpy()
        frames.append(part.assign(checkpoint=n, kind=kind_of(r)))
    return pd.concat(frames, ignore_index=True), info


def get_aligned_embeddings(entries: list[CheckpointEntry], dataset: str, split: str, results: dict, *, kind: str,
                           modalities, method: str, max_points: int | None, seed: int = 0,
                           params: dict | None = None):
    """One embedding per checkpoint of the same utterances, each started from the first's layout."""
    shas = tuple((e.name, checkpoint_sha(e)) for e in entries)
    settings = (("kind", kind), ("modalities", tuple(modalities)), ("method", method), ("max_points", max_points),
                ("seed", int(seed)), ("params", tuple(sorted((params or {}).items()))))
    return _aligned_embeddings(shas, dataset_fingerprint(dataset), split, settings, results)
