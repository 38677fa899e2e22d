"""The slices section (Overview: one checkpoint; Ablations: checkpoints side by side): weighted F1,
accuracy and angles per slice of the split, computed only while its expander is open. Draws what
`aofl.slices` computes (through the app's caches); `python -m aofl slices` prints the same."""

from __future__ import annotations

import streamlit as st

from ..slices import SLICE_HELP, SLICE_KINDS, SLICE_TITLES, skipped_slices
from . import caches, context, figures, widgets

__all__ = ["draw"]

BOOT_CHOICES = [100, 200, 500, 1000, 2000]


def draw(sels: tuple, key: str, title: str, name: str, n_boot: int | None = None, cli_hint: str = "") -> None:
    """The expander for `sels` (one selection or several, side by side). n_boot None: a slider sets the
    bootstrap resamples; a number: the page's own setting. `name` prefixes the download file names."""
    box = st.expander(title, key=f"{key}_slices", on_change="rerun")
    if not box.open:  # computed only while the expander is open
        return
    with box:
        c = st.columns(2)
        kind = c[0].selectbox("Slice by", SLICE_KINDS, format_func=SLICE_TITLES.get, key=f"{key}_slice_kind")
        if n_boot is None:
            n_boot = c[1].select_slider(
                "Bootstrap resamples",
                BOOT_CHOICES,
                value=200,
                key=f"{key}_slice_nboot",
                help="more resamples: steadier intervals, slower",
            )
        with context.user_errors("Slices"):
            first = caches.inference(sels[0])
            every = caches.get_slice_metrics(sels, n_boot)
        if len(sels) == 1:
            every = every.drop(columns=["checkpoint"])
        part = every[every["slice"] == kind]
        if part.empty:
            why = skipped_slices(first.table, [kind]).get(kind, "no labelled utterances")
            st.info(f"{SLICE_TITLES[kind]}: {why}.")
        else:
            widgets.show_figure(
                figures.slice_bars(sels, n_boot, kind), part, f"{name}_{kind}", key=f"{key}_slices_fig"
            )
            widgets.slice_table(part, key=f"{key}_slices_table")
        st.caption(
            f"**{SLICE_TITLES[kind]}**: {SLICE_HELP[kind]}. Labelled utterances only; weighted F1 and accuracy "
            f"in 0-1 with 95% percentile bootstrap intervals over each slice's dialogues ({n_boot} resamples; "
            f"none for a slice from one dialogue, `n_dialogues` says how many); "
            f"theta/phi: mean angles in degrees (none without the shared/specific split). Definitions: "
            f"`aofl.slices`.{cli_hint}"
        )
        widgets.download_csv(
            every, f"{name}_all", key=f"dl_{key}_slices_all", label="Download CSV (all slices)"
        )
