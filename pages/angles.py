"""Angles: theta (shared vs specific) and phi (shared vs shared across modalities), alpha, what-if."""
import streamlit as st

from aofl.app import state as app_state

ctx = app_state.context()
st.title("Angles")
entry, result = app_state.selected_inference(ctx)
key = app_state.inference_key(entry, ctx.dataset, ctx.split)  # names the result: figures are cached by it

st.caption(r"$\theta_{m,i}$: angle between the shared feature $g_{m,i}$ and the specific feature $h_{m,i}$ of "
           r"modality $m$; $\phi_{m,i}$: mean angle between $g_{m,i}$ and the other modalities' shared features. "
           r"$L_{CSR}$ asks for $\theta > \phi$.")
split_mods = result.modalities if result.has_split else []
long = app_state.cached_frame("angles_long", key, result.table, split_mods)
long_key = app_state.derived_key(key, "angles_long", split_mods)
if long.empty:
    st.info(f"{entry.name} ({entry.variant}) has no shared/specific split, so it has no angles. Pick another "
            f"checkpoint for the angle plots; the what-if below still works.")
else:
    c1, c2 = st.columns(2)
    grouping = c1.radio("Group by", ["emotion and outcome", "emotion", "outcome"], horizontal=True,
                        key="angles_group")
    kind = c2.radio("Plot", ["violin", "histogram"], horizontal=True, key="angles_kind")
    x, color = {"emotion and outcome": ("label", "outcome"), "emotion": ("label", "label"),
                "outcome": ("outcome", "outcome")}[grouping]
    if kind == "histogram" and grouping == "emotion and outcome":
        x = "label"
    by = ["label", "outcome"] if grouping == "emotion and outcome" else x
    summary = app_state.cached_frame("angle_summary_by", long_key, long, by)

    st.subheader("theta per modality")
    app_state.show_figure(app_state.cached_figure("angle_distribution", long_key, long, "theta", x=x, color=color,
                                                  kind=kind), summary, "theta_summary")
    st.subheader("phi per modality")
    app_state.show_figure(app_state.cached_figure("angle_distribution", long_key, long, "phi", x=x, color=color,
                                                  kind=kind), summary, "phi_summary")

    st.subheader("theta vs phi")
    shares = app_state.cached_frame("csr_share", key, result.table, result.modalities)
    cols = st.columns(len(shares))
    for c, (m, s) in zip(cols, shares.items()):
        c.metric(f"theta > phi, {m}", f"{100 * s:.1f}%")
    scatter_color = st.radio("Colour by", ["label", "outcome"], horizontal=True, key="angles_scatter_color",
                             format_func=lambda v: {"label": "emotion", "outcome": "correct / wrong"}[v])
    app_state.show_figure(app_state.cached_figure("theta_phi_scatter", long_key, long, color=scatter_color), long,
                          "angles_per_utterance")

    st.subheader("Learned alpha")
    alpha_args = (tuple(sorted(result.alpha_deg.items())),)  # alpha_deg comes with the result
    alpha = app_state.cached_frame("alpha_vs_theta", long_key, long, *alpha_args)
    left, right = st.columns([2, 3])
    with left:
        alpha_key = app_state.derived_key(long_key, "alpha_vs_theta", *alpha_args)
        app_state.show_figure(app_state.cached_figure("alpha_bars", alpha_key, alpha), alpha, "alpha")
    with right:
        st.dataframe(summary, hide_index=True, key="angles_summary_table", column_config={
            c: st.column_config.NumberColumn(format="%.2f") for c in summary.columns if c not in ("modality", "n")})
        st.caption("alpha is the target angle L_AAC pulls theta towards; it is learned per modality "
                   "(variants without AAC keep their initial value).")

st.subheader("Modality what-if")
app_state.whatif_section(ctx, entry, result, key="angles_whatif")
