"""The geometry table (Evidence, Ablations): per arm, WF1, θ, φ, share θ > φ and α start/end over seeds,
and `full` − arm paired by seed. Draws `aofl.evidence.geometry_table`; `python -m aofl results --geometry`
prints the same."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .. import evidence
from . import context, widgets

__all__ = ["geometry", "draw"]


@st.cache_data(show_spinner=False, max_entries=16)
def geometry(dataset: str, reference: str, results_dir: str, stamp: str) -> pd.DataFrame:
    """`evidence.geometry_long` of the per-run tables; `stamp` (evidence.results_key) makes a new or
    rewritten table another key. Shared by every session."""
    return evidence.geometry_long(evidence.geometry_table(dataset, results_dir, reference))


def draw(dataset: str, key: str, reference: str = "full", results_dir: str | None = None) -> None:
    """The table with a quantity selector and a CSV download; an info line without per-run tables."""
    results_dir = str(evidence.resolve_results_dir(results_dir))
    try:
        geo = geometry(dataset, reference, results_dir, evidence.results_key(results_dir, dataset))
    except FileNotFoundError as e:  # no per-run tables yet: say what writes them
        st.info(str(e))
        return
    except context.USER_ERRORS as e:
        st.error(f"Cannot read the per-run tables: {e}")
        return
    quantities = list(dict.fromkeys(geo["quantity"]))
    context.select_valid(f"{key}_geo_quantity", quantities)
    quantity = st.segmented_control("Quantity", quantities, key=f"{key}_geo_quantity", required=True)
    shown = geo[geo["quantity"] == quantity].drop(columns=["quantity"])
    st.dataframe(
        shown,
        hide_index=True,
        key=f"{key}_geometry",
        column_config={
            c: st.column_config.NumberColumn(format="%+.2f" if c.startswith("diff") else "%.2f")
            for c in ("mean", "low", "high", "diff", "diff_low", "diff_high")
        },
    )
    widgets.download_csv(
        geo, f"{key}_{dataset}_geometry", key=f"dl_{key}_geometry", label="Download CSV (geometry)"
    )
    st.caption(
        f"Test split of each arm's final runs (per-run tables; only arms with them). `mean`: over seeds, with "
        f"its 95% t-interval (`low`, `high`); `diff`: `{reference}` − arm paired by seed over `n_paired` seeds, "
        "with its t-interval. wf1 in %, angles in degrees, theta_gt_phi_share the share of utterances with "
        "θ > φ; alpha_change = alpha_end − alpha_start. CLI: "
        f"`python -m aofl results --data {dataset} --geometry`."
    )
