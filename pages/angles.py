"""Angles: theta (shared vs specific) and phi (shared vs shared across modalities), alpha, what-if."""

import streamlit as st

from aofl.app import caches, context, figures, widgets

ctx = context.context()
st.title("Angles")
sel, result = caches.selected_inference(ctx)
entry = sel.entry

st.caption(
    r"$\theta_{m,i}$: angle between the shared feature $g_{m,i}$ and the specific feature $h_{m,i}$ of "
    r"modality $m$; $\phi_{m,i}$: mean angle between $g_{m,i}$ and the other modalities' shared features. "
    r"$L_{CSR}$ asks for $\theta > \phi$."
)
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

    st.subheader("Learned alpha")
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
            "alpha is the target angle L_AAC pulls theta towards; it is learned per modality "
            "(variants without AAC keep their initial value)."
        )

st.subheader("Modality what-if")
widgets.whatif_section(sel, result, key="angles_whatif")
