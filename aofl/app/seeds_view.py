"""The seeds view (Ablations, Overview): variants as all their seeds, and one checkpoint's place
among them. Draws what `aofl.seeds` computes; `python -m aofl compare --seeds` prints the same."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .. import evidence, plots, seeds
from ..alpha import ALPHA_LEARNED_TOL_DEG
from ..device import trims_after
from ..teaching import OPR_NOTE, THETA_PHI_NOTE, setting_label
from . import geometry_view, widgets

__all__ = ["comparison", "checkpoint_line", "draw", "NO_CSR"]

NO_CSR = ("no_are", "orthogonal")  # the variants without L_CSR, shown beside the others' θ > φ


@st.cache_data(show_spinner=False, max_entries=16)
@trims_after  # it reads every per-run table: ~30 MB of freed buffers
def _comparison(dataset: str, arms: tuple | None, stamp: str, angles: bool = True) -> seeds.SeedComparison:
    return seeds.compare_seeds(dataset, arms, angles=angles)


def comparison(dataset: str, arms=None, angles: bool = True) -> seeds.SeedComparison | None:
    """The seeds comparison of `dataset` (None when no seed runs are kept for it). angles=False skips the
    pooled θ/φ, which reads every per-run table (the sidebar's rank line needs the scores alone)."""
    try:
        key = evidence.results_key(dataset=dataset)
        c = _comparison(dataset, tuple(arms) if arms else None, key, angles)
    except (ValueError, OSError):
        return None
    return c if not c.runs.empty else None


def checkpoint_line(dataset: str, variant: str, seed: int, meta: dict | None = None) -> str:
    """ "seed k, i-th of n seeds of this variant by test WF1 · <setting>" for one checkpoint: its
    setting from its recorded recipe, else from its variant's seed runs."""
    c = comparison(dataset, angles=False)
    runs = c.runs if c is not None else pd.DataFrame(columns=["arm", "seed", "wf1", "setting"])
    rank = seeds.seed_rank(runs, variant, seed) if not runs.empty else None
    recipe = (meta or {}).get("recipe") or {}
    setting = recipe.get("setting")
    if setting is None and not runs.empty and variant in set(runs["arm"]):
        setting = runs.loc[runs["arm"] == variant, "setting"].iloc[0]
    return f"{seeds.rank_sentence(seed, rank)} (shown, never used to choose) · {setting_label(setting)}"


def draw(dataset: str, key: str, arms=None, geometry_slot: bool = False) -> bool:
    """Draw the seeds view; False (and nothing drawn) when no seed runs are kept for `dataset`."""
    c = comparison(dataset, arms)
    if c is None:
        return False
    st.caption(
        f"Every variant as all its runs ({c.source}). One checkpoint is one seed of these; test WF1 "
        f"per seed, mean and 95% t-interval over seeds. Each row says how its setting was chosen: "
        f"**CV-chosen** (cross-validation on the training dialogues), **defaults**, or **test-informed** "
        f"(preferred after seeing test)."
        + (" **Single-seed comparison**: one run per variant." if c.single_seed else "")
    )
    left, right = st.columns([3, 2])
    with left:
        widgets.show_figure(
            plots.seed_wf1(c.runs, c.summary),
            c.runs.drop(columns=["path"], errors="ignore"),
            f"{key}_seed_wf1",
            key=f"{key}_seed_wf1",
        )
    with right:
        st.dataframe(
            c.summary,
            hide_index=True,
            key=f"{key}_seeds_table",
            column_config={
                k: st.column_config.NumberColumn(format="%.2f")
                for k in ("wf1_mean", "wf1_sd", "ci_low", "ci_high")
            },
        )
    if c.source == seeds.MIXED:
        st.caption(
            "θ, φ and α per seed are shown for the variants whose final runs are complete; the others "
            "show the kept predictions' WF1 per seed until theirs are in."
        )
    if c.source == seeds.KEPT_PREDICTIONS:
        st.info(
            "θ, φ and α per seed are not available yet: only the kept predictions' WF1 per seed is. "
            "They appear here once the per-run tables (results/runs/) are in."
        )
    else:
        value = st.radio(
            "Angle (pooled over seeds)", ["theta", "phi"], horizontal=True, key=f"{key}_seed_angle"
        )
        widgets.show_figure(
            plots.pooled_angles(c.pooled, c.medians, value),
            c.medians,
            f"{key}_seed_medians",
            key=f"{key}_seed_angles",
        )
        shares = c.shares.assign(without_csr=c.shares["arm"].isin(NO_CSR))
        st.markdown("**θ > φ per variant, pooled over seeds** (variants without L_CSR marked)")
        st.dataframe(shares, hide_index=True, key=f"{key}_seed_shares")
        st.caption(THETA_PHI_NOTE + " " + OPR_NOTE)
        if not c.alpha.empty:
            st.markdown(
                f'**α start → end per seed** ("learned" only where it moved more than {ALPHA_LEARNED_TOL_DEG:g}°)'
            )
            st.dataframe(c.alpha, hide_index=True, key=f"{key}_seed_alpha")
    if geometry_slot:  # θ, φ, share θ > φ, α start → end, full − variant with CIs
        st.markdown("**Geometry per arm over seeds** (the Evidence page has the paired tests)")
        with st.container(key=f"{key}_geometry_slot"):
            geometry_view.draw(dataset, key)
    return True
