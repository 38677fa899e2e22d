"""The pages' figures and the frames behind them, cached by what they are made from.

As in Streamlit's demo apps, a cached function takes the inputs that produce its data (a
`caches.Selection`: checkpoint, dataset, split, dropped modalities; or a checkpoint entry; or a
tuple of selections) and the widget values, and makes the data itself from them: the cache key is
exactly those arguments (Streamlit hashes them; a Selection by `Selection.key()`, a checkpoint
entry by its name and file sha256, see `HASH_FUNCS`), so no page hands in a key that could
disagree with the data. Another split, checkpoint or widget value is another key; the same
selection and widgets on a revisit are a hit and build no plotly figure.

A figure is kept once per process as its plain dict (`fig.to_dict()`, st.cache_resource, no copy
per hit) and handed out as a read-only `aofl.plots.ReadyFigure` over it: st.plotly_chart then
serialises that dict directly (and, with `plots.install_json_reuse`, which `caches.start_up`
installs, reuses its JSON) instead of rebuilding, deep-copying and re-validating a go.Figure on
every rerun. A frame is kept the same way and handed out as a shallow copy.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import streamlit as st

from .. import analysis, evidence, plots, table
from ..alpha import with_alpha_start
from ..embed import EmbedSpec
from ..store.registry import CheckpointEntry
from . import caches
from .caches import Selection, _keyword_call

__all__ = [
    "HASH_FUNCS",
    "angles_long",
    "angle_summary",
    "theta_gt_phi_share",
    "alpha_frame",
    "angle_distribution",
    "theta_phi_scatter",
    "alpha_bars",
    "whatif_summary",
    "whatif_confidence",
    "whatif_theta_shift",
    "dialogue",
    "dialogue_summary",
    "dialogue_timeline",
    "neighbours",
    "probabilities",
    "probability_bar",
    "embedding_panel",
    "embedding_scatter",
    "per_class",
    "per_class_f1",
    "confusion",
    "confusion_heatmap",
    "history",
    "training_curves",
    "dynamics",
    "training_dynamics",
    "disentanglement",
    "disentanglement_bars",
    "ablation_metrics_plot",
    "ablation_angles",
    "ablation_angle_summary",
    "angle_overlay",
    "slice_bars",
    "aligned_panel",
    "aligned_embedding_scatter",
]


def _entry_key(entry: CheckpointEntry) -> tuple:
    return entry.name, caches.checkpoint_sha(entry)


# a checkpoint is named by its file's content; aofl.app.files.FileEntry by name (no import cycle)
HASH_FUNCS = {**caches.HASH_FUNCS, CheckpointEntry: _entry_key, "aofl.app.files.FileEntry": _entry_key}

_FIGURES: dict = {}  # name -> function making a go.Figure from the hashed arguments
_FRAMES: dict = {}  # name -> function making a frame (or dict) from the hashed arguments


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=HASH_FUNCS)
def _figure_spec(name: str, args: tuple, kwargs: tuple) -> dict:
    return _FIGURES[name](*args, **dict(kwargs)).to_dict()


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=HASH_FUNCS)
def _frame_value(name: str, args: tuple, kwargs: tuple):
    return _FRAMES[name](*args, **dict(kwargs))


def _figure(make):
    """A cached figure: `make(*args, **kwargs) -> go.Figure` runs once per distinct arguments;
    every call returns a fresh ReadyFigure over the one cached spec."""
    _FIGURES[make.__name__] = make

    def figure(*args, **kwargs) -> plots.ReadyFigure:
        return plots.ReadyFigure(_figure_spec(make.__name__, args, tuple(sorted(kwargs.items()))))

    figure.__name__ = figure.__qualname__ = make.__name__
    figure.__doc__ = make.__doc__
    return figure


def _frame(make):
    """A cached frame: `make(*args, **kwargs)` runs once per distinct arguments; every call returns
    a shallow copy (the cached value is shared by every session)."""
    _FRAMES[make.__name__] = make

    def frame(*args, **kwargs):
        out = _frame_value(make.__name__, args, tuple(sorted(kwargs.items())))
        return out.copy(deep=False) if isinstance(out, pd.DataFrame) else copy.copy(out)

    frame.__name__ = frame.__qualname__ = make.__name__
    frame.__doc__ = make.__doc__
    return frame


def _angle_modalities(result) -> list[str]:
    return list(result.modalities) if result.has_split else []


# ------------------------------------------------------------------------------------------ Angles


@_frame
def angles_long(sel: Selection) -> pd.DataFrame:
    """`analysis.angles_long` of the selection's result (empty without the shared/specific split)."""
    result = caches.inference(sel)
    return analysis.angles_long(result.table, _angle_modalities(result))


@_frame
def angle_summary(sel: Selection, by) -> pd.DataFrame:
    return analysis.angle_summary_by(angles_long(sel), by)


@_frame
def theta_gt_phi_share(sel: Selection) -> dict:
    """{modality: share of utterances with theta > phi}."""
    result = caches.inference(sel)
    return table.theta_gt_phi_share(result.table, result.modalities)


@_frame
def alpha_frame(sel: Selection) -> pd.DataFrame:
    """alpha per modality at the end, with its start from the config and whether it moved (`aofl.alpha`),
    next to the mean theta (`analysis.alpha_vs_theta`)."""
    frame = analysis.alpha_vs_theta(angles_long(sel), tuple(sorted(caches.inference(sel).alpha_deg.items())))
    return with_alpha_start(frame, caches.checkpoint_metadata(sel.entry).get("config") or {})


@_figure
def angle_distribution(
    sel: Selection, value: str, x: str = "label", color: str | None = "outcome", kind: str = "violin"
):
    return plots.angle_distribution(angles_long(sel), value, x=x, color=color, kind=kind)


@_figure
def theta_phi_scatter(sel: Selection, color: str = "label"):
    return plots.theta_phi_scatter(angles_long(sel), color=color)


@_figure
def alpha_bars(sel: Selection):
    return plots.alpha_bars(alpha_frame(sel))


# --------------------------------------------------------------------------------------- What-if
# drop: sorted (modality, mode) pairs (caches.drop_key); ids: a tuple of utterance ids or None


@_frame
def whatif_summary(sel: Selection, drop: tuple, ids: tuple | None = None) -> pd.DataFrame:
    return analysis.whatif_summary(caches.get_whatif_deltas(sel, drop, ids))


@_figure
def whatif_confidence(sel: Selection, drop: tuple, ids: tuple | None = None):
    ((dropped, mode),) = drop
    return plots.whatif_confidence(caches.get_whatif_deltas(sel, drop, ids), f"{dropped} ({mode})")


@_figure
def whatif_theta_shift(sel: Selection, drop: tuple, ids: tuple | None = None):
    return plots.whatif_theta_shift(caches.get_whatif_deltas(sel, drop, ids))


# ---------------------------------------------------------------------------------- Conversations


@_frame
def dialogue(sel: Selection, name) -> pd.DataFrame:
    """The dialogue's rows of the selection's table, in turn order."""
    table = caches.inference(sel).table
    return table[table["dialogue"] == name].sort_values("position").reset_index(drop=True)


@_frame
def dialogue_summary(sel: Selection) -> pd.DataFrame:
    """Per dialogue of the split, in table order: turns and accuracy (the dialogue selector's labels)."""
    table = caches.inference(sel).table
    return table.groupby("dialogue", sort=False).agg(turns=("position", "size"), accuracy=("correct", "mean"))


@_figure
def dialogue_timeline(sel: Selection, name):
    return plots.dialogue_timeline(dialogue(sel, name), _angle_modalities(caches.inference(sel)))


@_keyword_call
@st.cache_resource(show_spinner=False, max_entries=16, hash_funcs=HASH_FUNCS)
def _neighbour_space(sel: Selection):
    """The selection's shared features (context features without the split), each modality's scaled
    to unit length, concatenated [N, M*d]: one read-only array per selection, shared by every
    session (each session's every run had rebuilt it, tens of MB of temporaries on a real split)."""
    result = caches.inference(sel)
    space = result.shared if result.has_split else result.context
    feats = np.concatenate(
        [
            space[m] / np.maximum(np.linalg.norm(space[m], axis=1, keepdims=True), 1e-8)
            for m in result.modalities
        ],
        axis=1,
    )
    feats.setflags(write=False)
    return feats


@_frame
def neighbours(sel: Selection, utterance_id: str, k: int = 5, other_dialogues: bool = True) -> pd.DataFrame:
    """The k utterances nearest to one (`analysis.nearest_neighbours`: cosine similarity) in shared
    space, or context space without the split, on every modality's unit-scaled features."""
    return analysis.nearest_neighbours(
        caches.inference(sel).table,
        _neighbour_space(sel),
        utterance_id,
        k=k,
        exclude_same_dialogue=other_dialogues,
    )


@_frame
def probabilities(sel: Selection, utterance_id: str) -> pd.DataFrame:
    result = caches.inference(sel)
    row = result.table.loc[result.table["utterance_id"] == utterance_id].iloc[0]
    return analysis.probability_frame(row, result.label_names)


@_figure
def probability_bar(sel: Selection, utterance_id: str):
    return plots.probability_bar(probabilities(sel, utterance_id))


# ------------------------------------------------------------------------------------- Embeddings


@_frame
def embedding_panel(sel: Selection, spec: EmbedSpec, kind: str) -> pd.DataFrame:
    """The points of one feature kind in `caches.get_embedding(sel, spec)`."""
    coords, _ = caches.get_embedding(sel, spec)
    return coords[coords["kind"] == kind]


@_figure
def embedding_scatter(
    sel: Selection, spec: EmbedSpec, kind: str, color: str = "label", highlight: tuple | None = None
):
    return plots.embedding_scatter(
        embedding_panel(sel, spec, kind), color=color, title=kind, highlight=highlight
    )


# ---------------------------------------------------------------------------------------- Overview


def _evaluation(sel: Selection) -> dict:
    return caches.get_evaluation(sel.entry, sel.dataset, sel.split, sel.device)


@_frame
def per_class(sel: Selection) -> pd.DataFrame:
    return analysis.per_class_frame(_evaluation(sel))


@_figure
def per_class_f1(sel: Selection):
    return plots.per_class_f1_bar(per_class(sel))


@_frame
def confusion(sel: Selection) -> pd.DataFrame:
    metrics = _evaluation(sel)
    return analysis.confusion_frame(metrics["confusion"], metrics["labels"])


@_figure
def confusion_heatmap(sel: Selection, normalize: bool = False):
    return plots.confusion_heatmap(confusion(sel), normalize)


@_frame
def history(entry: CheckpointEntry) -> pd.DataFrame:
    """The training history in the checkpoint's metadata (`analysis.history_frame`)."""
    return analysis.history_frame(caches.checkpoint_metadata(entry).get("history") or [])


@_figure
def training_curves(entry: CheckpointEntry, title: str | None = None):
    return plots.training_curves(history(entry), *([title] if title else []))


@_frame
def dynamics(entry: CheckpointEntry) -> pd.DataFrame:
    """The training dynamics recorded in the checkpoint's metadata (`aofl.dynamics_frame`)."""
    from ..dynamics_frame import dynamics_frame

    meta = caches.checkpoint_metadata(entry)
    modalities = list(meta.get("modality_dims") or caches.get_model(entry)[0].modalities)
    return dynamics_frame(meta.get("history") or [], modalities)


@_figure
def training_dynamics(entry: CheckpointEntry):
    return plots.training_dynamics(dynamics(entry))


@_frame
def disentanglement(sels: tuple) -> pd.DataFrame:
    """`analysis.disentanglement_frame` of the selections' evaluations (synthetic ground truth)."""
    return analysis.disentanglement_frame({s.entry.name: _evaluation(s).get("disentanglement") for s in sels})


@_figure
def disentanglement_bars(sels: tuple):
    return plots.disentanglement_bars(disentanglement(sels))


# --------------------------------------------------------------------------------------- Ablations


@_figure
def ablation_metrics_plot(sels: tuple, n_boot: int = 200):
    return plots.ablation_metrics_plot(caches.get_ablation_metrics(sels, n_boot))


@_frame
def ablation_angles(sels: tuple) -> pd.DataFrame:
    """The long angle tables of the selections with a shared/specific split, a `checkpoint` column added."""
    results = [(s.entry.name, caches.inference(s)) for s in sels]
    parts = [
        analysis.angles_long(r.table, r.modalities).assign(checkpoint=n) for n, r in results if r.has_split
    ]
    return pd.concat(parts, ignore_index=True) if parts else analysis.angles_long(results[0][1].table, [])


@_frame
def ablation_angle_summary(sels: tuple) -> pd.DataFrame:
    long = ablation_angles(sels)
    return analysis.angle_summary_by(long, "checkpoint") if not long.empty else long


@_figure
def angle_overlay(sels: tuple, value: str = "theta"):
    return plots.angle_overlay(ablation_angles(sels), value)


@_figure
def slice_bars(sels: tuple, n_boot: int, slice_kind: str):
    """Weighted F1 per slice, one bar per selection (`caches.get_slice_metrics`)."""
    return plots.slice_bars(caches.get_slice_metrics(sels, n_boot), slice_kind)


@_frame
def aligned_panel(sels: tuple, spec: EmbedSpec, name: str) -> pd.DataFrame:
    """One checkpoint's points of `caches.get_aligned_embeddings(sels, spec)`."""
    coords, _ = caches.get_aligned_embeddings(sels, spec)
    return coords[coords["checkpoint"] == name]


@_figure
def aligned_embedding_scatter(sels: tuple, spec: EmbedSpec, name: str, color: str = "label"):
    panel = aligned_panel(sels, spec, name)
    kind = panel["kind"].iat[0] if len(panel) else (spec.kinds[0] if spec.kinds else "?")
    return plots.embedding_scatter(panel, color=color, title=f"{name} ({kind})")


# ---------------------------------------------------------------------------------------- Evidence
# Made from a results directory (str), a dataset or a study name. The public builders add the
# directory's `evidence.results_key` (a digest of the name, mtime, size of every file read) to the arguments, so
# a rewritten summary or a newly exported study is another key, not a stale hit; pages pass only
# what they chose.

__all__ += [
    "evidence_datasets",
    "evidence_seeds",
    "evidence_summary",
    "evidence_seed_differences",
    "evidence_paired",
    "evidence_studies",
    "evidence_trials",
    "evidence_study_best",
    "evidence_seed_strip",
    "evidence_paired_chart",
    "evidence_study_history",
    "evidence_fold_curves",
    "evidence_fold_curves_chart",
]


def _stamped(cached):
    """`cached(..., results_dir=..., stamp=...)` called with the directory's current stamp. The other
    arguments go positionally (and the builders above call each other with the same keywords), so
    one table is one cache key however it is reached."""

    def call(*args, results_dir: str, **kwargs):
        return cached(*args, results_dir=results_dir, stamp=evidence.results_key(results_dir), **kwargs)

    call.__name__ = call.__qualname__ = cached.__name__.lstrip("_")
    call.__doc__ = cached.__doc__
    return call


@_frame
def _evidence_datasets(results_dir: str, stamp: str) -> list:
    return evidence.datasets(results_dir)


@_frame
def _evidence_seeds(dataset: str, results_dir: str, stamp: str) -> pd.DataFrame:
    """`evidence.seed_scores`: variant, seed, test_wf1 (%)."""
    return evidence.seed_scores(dataset, results_dir)


@_frame
def _evidence_summary(dataset: str, results_dir: str, stamp: str) -> pd.DataFrame:
    """`evidence.variant_summary`: mean, std, n and CV WF1 per variant."""
    return evidence.variant_summary(dataset, results_dir)


@_frame
def _evidence_seed_differences(dataset: str, reference: str, results_dir: str, stamp: str) -> pd.DataFrame:
    return evidence.seed_differences(dataset, reference, results_dir)


@_frame
def _evidence_paired(dataset: str, reference: str, results_dir: str, stamp: str) -> pd.DataFrame:
    """`evidence.paired_differences` (the bootstrap runs once per key)."""
    return evidence.paired_differences(dataset, reference, results_dir)


@_frame
def _evidence_studies(dataset: str, results_dir: str, stamp: str) -> pd.DataFrame:
    return evidence.list_studies(results_dir, dataset=dataset)


@_frame
def _evidence_trials(study: str, results_dir: str, stamp: str) -> pd.DataFrame:
    return evidence.study_trials(study, results_dir)


@_frame
def _evidence_study_best(study: str, results_dir: str, stamp: str) -> dict | None:
    return evidence.study_best(study, results_dir)


@_frame
def _evidence_fold_curves(study: str, results_dir: str, stamp: str) -> pd.DataFrame:
    best = _evidence_study_best(study, results_dir=results_dir, stamp=stamp)
    return evidence.fold_curves_frame(best["fold_curves"] if best else [])


@_figure
def _evidence_fold_curves_chart(study: str, results_dir: str, stamp: str):
    best = _evidence_study_best(study, results_dir=results_dir, stamp=stamp)
    return plots.fold_curves(
        _evidence_fold_curves(study, results_dir=results_dir, stamp=stamp),
        best["final_epochs"] if best else None,
        f"{study}: the chosen trial's held-out curves",
    )


@_figure
def _evidence_seed_strip(dataset: str, results_dir: str, stamp: str):
    return plots.seed_strip(
        _evidence_seeds(dataset, results_dir=results_dir, stamp=stamp),
        f"{dataset}: test weighted F1 per seed",
    )


@_figure
def _evidence_paired_chart(dataset: str, reference: str, results_dir: str, stamp: str):
    return plots.paired_difference_chart(
        _evidence_paired(dataset, reference, results_dir=results_dir, stamp=stamp),
        _evidence_seed_differences(dataset, reference, results_dir=results_dir, stamp=stamp),
        reference,
    )


@_figure
def _evidence_study_history(study: str, results_dir: str, stamp: str):
    return plots.study_history(
        _evidence_trials(study, results_dir=results_dir, stamp=stamp), f"{study}: CV score per trial"
    )


evidence_datasets = _stamped(_evidence_datasets)
evidence_seeds = _stamped(_evidence_seeds)
evidence_summary = _stamped(_evidence_summary)
evidence_seed_differences = _stamped(_evidence_seed_differences)
evidence_paired = _stamped(_evidence_paired)
evidence_studies = _stamped(_evidence_studies)
evidence_trials = _stamped(_evidence_trials)
evidence_study_best = _stamped(_evidence_study_best)
evidence_seed_strip = _stamped(_evidence_seed_strip)
evidence_paired_chart = _stamped(_evidence_paired_chart)
evidence_study_history = _stamped(_evidence_study_history)
evidence_fold_curves = _stamped(_evidence_fold_curves)
evidence_fold_curves_chart = _stamped(_evidence_fold_curves_chart)
