"""Small page widgets: a figure with its CSV, a lazy CSV download, the modality what-if, chart selections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ..inference import InferenceResult
from . import caches, figures
from .caches import Selection
from .context import user_errors

__all__ = ["download_csv", "show_figure", "whatif_controls", "whatif_section", "selected_ids"]


def download_csv(
    df: pd.DataFrame, name: str, key: str | None = None, label: str = "Download CSV", index: bool = False
) -> None:
    """A CSV download of df, made only when the button is clicked (Streamlit calls `data` then, on
    another thread), so a rerun never serialises or registers the file."""
    st.download_button(
        label,
        lambda: df.to_csv(index=index).encode(),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=key or f"dl_{name}",
        on_click="ignore",
    )


def show_figure(
    fig,
    table: pd.DataFrame | None,
    name: str,
    key: str | None = None,
    index: bool = False,
    download_key: str | None = None,
    **kwargs,
):
    """The one way pages draw a figure: st.plotly_chart (key `key`, default `fig_<name>`) plus a
    CSV download `<name>.csv` of the table behind it (key `download_key`, default `dl_<key or name>`;
    none when table is None). Returns the chart's selection."""
    event = st.plotly_chart(fig, key=key or f"fig_{name}", **kwargs)
    if table is not None:
        download_csv(table, name, key=download_key or f"dl_{key or name}", index=index)
    return event


def slice_table(frame: pd.DataFrame, key: str) -> None:
    """The per-slice metrics table (Overview, Ablations): angles to 0.1 degree, scores to 4 places."""
    st.dataframe(
        frame,
        hide_index=True,
        key=key,
        column_config={
            col: st.column_config.NumberColumn(
                format="%.1f" if col.startswith(("theta_", "phi_")) else "%.4f"
            )
            for col in frame.columns
            if col not in ("checkpoint", "slice", "value", "n", "n_dialogues")
        },
    )


def whatif_controls(modalities: list[str], key: str) -> dict[str, str] | None:
    """Widgets: which modality to drop and how; None when nothing is dropped."""
    c1, c2 = st.columns(2)
    dropped = c1.selectbox(
        "Drop a modality",
        ["(none)"] + list(modalities),
        key=f"{key}_modality",
        help="Replace one modality's input features and run the model again",
    )
    mode = c2.radio(
        "Replace it by",
        ["zero", "mean"],
        key=f"{key}_mode",
        horizontal=True,
        format_func=lambda m: {"zero": "zeros", "mean": "its training mean"}[m],
    )
    if dropped == "(none)":
        return None
    return {dropped: mode}


def whatif_section(
    sel: Selection, base: InferenceResult, key: str, utterance_ids: list[str] | None = None
) -> None:
    """The modality what-if of a selection (base: its result): aggregate and per-utterance changes
    when one modality is dropped.

    utterance_ids restricts the per-utterance table (e.g. to one dialogue); aggregates are over
    those utterances too when given."""
    drop = whatif_controls(base.modalities, key)
    if drop is None:
        st.caption("Pick a modality to see how predictions, confidences and angles move without it.")
        return
    ((dropped, mode),) = drop.items()
    drop = caches.drop_key(drop)
    ids = None if utterance_ids is None else tuple(str(u) for u in utterance_ids)
    with user_errors("What-if failed"):
        caches.inference(sel.dropping(dict(drop)))  # a problem running it is shown here
        deltas = caches.get_whatif_deltas(sel, drop, ids)
    if deltas.empty:
        st.info("No utterances to compare.")
        return
    summary = figures.whatif_summary(sel, drop, ids)
    c = st.columns(4)
    c[0].metric("Predictions that flip", f"{100 * deltas['flipped'].mean():.1f}%")
    c[1].metric(
        "Accuracy without " + dropped,
        f"{deltas['correct_after'].mean():.3f}",
        delta=f"{deltas['correct_after'].mean() - deltas['correct_before'].mean():+.3f}",
    )
    c[2].metric("Mean confidence change", f"{deltas['confidence_delta'].mean():+.3f}")
    c[3].metric("Mean true-class prob. change", f"{np.nanmean(deltas['p_true_delta']):+.3f}")
    left, right = st.columns(2)
    with left:
        show_figure(
            figures.whatif_confidence(sel, drop, ids),
            deltas,
            f"whatif_{key}_confidence",
            key=f"{key}_fig_conf",
        )
    with right:
        show_figure(
            figures.whatif_theta_shift(sel, drop, ids), deltas, f"whatif_{key}_theta", key=f"{key}_fig_theta"
        )
    st.dataframe(summary, hide_index=True, key=f"{key}_summary")
    st.markdown("**Per utterance** (flipped predictions first)")
    shown = deltas.sort_values(["flipped", "confidence_delta"], ascending=[False, True])
    st.dataframe(
        shown,
        hide_index=True,
        key=f"{key}_table",
        column_config={
            "confidence_delta": st.column_config.NumberColumn(format="%+.3f"),
            "p_true_delta": st.column_config.NumberColumn(format="%+.3f"),
        },
    )
    download_csv(shown, f"whatif_{key}_per_utterance", key=f"dl_{key}_whatif_table")


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
