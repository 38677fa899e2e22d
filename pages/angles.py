"""Angles: theta (shared vs specific) and phi (shared vs shared across modalities), alpha, what-if."""

import streamlit as st

from aofl.alpha import ALPHA_LEARNED_TOL_DEG, alpha_caption, alpha_start_deg, alpha_table
from aofl.app import caches, context, figures, seeds_view, widgets
from aofl.store import registry
from aofl.teaching import OPR_NOTE, OPR_NOTE_LATEX, THETA_PHI_NOTE

ctx = context.context()
st.title("Angles")
sel, result = caches.selected_inference(ctx)
entry = sel.entry

_, meta = caches.get_model(entry, ctx.device)
st.caption(
    r"$\theta_{m,i}$: angle between the shared feature $g_{m,i}$ and the specific feature $h_{m,i}$ of "
    r"modality $m$; $\phi_{m,i}$: mean angle between $g_{m,i}$ and the other modalities' shared features. "
    r"$L_{CSR}$ asks for $\theta > \phi$. "
    + f"This checkpoint: {seeds_view.checkpoint_line(ctx.dataset, entry.variant, entry.seed, meta)}."
)
with st.expander("What the classifier sees (OPR)"):
    st.latex(OPR_NOTE_LATEX)
    st.caption(OPR_NOTE)
long = figures.angles_long(sel)
if long.empty:
    st.info(
        f"{entry.name} ({entry.variant}) has no shared/specific split, so it has no angles. Pick another "
        f"checkpoint for the angle plots; the what-if below still works."
    )
else:
    c1, c2 = st.columns(2)
    grouping = c1.radio(
        "Group by", ["emotion and outcome", "emotion", "outcome"], horizontal=True, key="angles_group"
    )
    kind = c2.radio("Plot", ["violin", "histogram"], horizontal=True, key="angles_kind")
    x, color = {
        "emotion and outcome": ("label", "outcome"),
        "emotion": ("label", "label"),
        "outcome": ("outcome", "outcome"),
    }[grouping]
    if kind == "histogram" and grouping == "emotion and outcome":
        x = "label"
    by = ["label", "outcome"] if grouping == "emotion and outcome" else x
    summary = figures.angle_summary(sel, by)

    st.subheader("theta per modality")
    widgets.show_figure(
        figures.angle_distribution(sel, "theta", x=x, color=color, kind=kind), summary, "theta_summary"
    )
    st.subheader("phi per modality")
    widgets.show_figure(
        figures.angle_distribution(sel, "phi", x=x, color=color, kind=kind), summary, "phi_summary"
    )

    st.subheader("theta vs phi")
    shares = figures.theta_gt_phi_share(sel)
    cols = st.columns(len(shares))
    for c, (m, s) in zip(cols, shares.items()):
        c.metric(f"theta > phi, {m}", f"{100 * s:.1f}%")
    scatter_color = st.radio(
        "Colour by",
        ["label", "outcome"],
        horizontal=True,
        key="angles_scatter_color",
        format_func=lambda v: {"label": "emotion", "outcome": "correct / wrong"}[v],
    )
    widgets.show_figure(figures.theta_phi_scatter(sel, color=scatter_color), long, "angles_per_utterance")

    shares_box = st.expander(
        "θ > φ beside the variants without L_CSR (no_are, orthogonal)", key="angles_no_csr", on_change="rerun"
    )
    if shares_box.open:  # other checkpoints' inference runs only while the expander is open
        with shares_box:
            st.caption(THETA_PHI_NOTE)
            pooled = seeds_view.comparison(ctx.dataset)
            if pooled is not None and not pooled.shares.empty:
                st.dataframe(pooled.shares, hide_index=True, key="angles_no_csr_pooled")
                st.caption(f"Pooled over seeds ({pooled.source}).")
            else:
                rows = []
                with context.user_errors("θ > φ of the other variants"):
                    for other in [
                        entry,
                        *(
                            e
                            for e in registry.list_checkpoints(ctx.dataset)
                            if e.variant in seeds_view.NO_CSR
                        ),
                    ]:
                        other_sel = caches.selection(ctx, other)
                        for m, share in figures.theta_gt_phi_share(other_sel).items():
                            rows.append(
                                {
                                    "checkpoint": other.name,
                                    "variant": other.variant,
                                    "modality": m,
                                    "share": share,
                                }
                            )
                st.dataframe(rows, hide_index=True, key="angles_no_csr_single")
                st.caption("One checkpoint (one seed) each: a single-seed comparison.")

    st.subheader("alpha: start → end")
    start = alpha_start_deg(meta.get("config") or {}, list(result.alpha_deg))
    moved = alpha_table(start, result.alpha_deg)
    alpha = figures.alpha_frame(sel)
    left, right = st.columns([2, 3])
    with left:
        widgets.show_figure(figures.alpha_bars(sel), alpha, "alpha")
    with right:
        st.dataframe(
            summary,
            hide_index=True,
            key="angles_summary_table",
            column_config={
                c: st.column_config.NumberColumn(format="%.2f")
                for c in summary.columns
                if c not in ("modality", "n")
            },
        )
        st.caption(
            "alpha is the target angle L_AAC pulls theta towards; it starts at the config's "
            f"`alpha_init_deg` and is called learned only where it moved more than {ALPHA_LEARNED_TOL_DEG:g}°. "
            + (alpha_caption(moved) if entry.variant != "orthogonal" else "orthogonal fixes it at 90°.")
        )

st.subheader("Modality what-if")
widgets.whatif_section(sel, result, key="angles_whatif")
