"""Ablations: several checkpoints of one dataset side by side (the first is the reference)."""

import streamlit as st

from aofl import analysis
from aofl.app import caches, context, figures, seeds_view, slices_view, widgets
from aofl.embed import EmbedSpec

ctx = context.context()
st.title("Ablations")
view = st.radio(
    "Compare",
    ["Across seeds", "Single checkpoints"],
    horizontal=True,
    key="abl_view",
    help="Across seeds: every variant as all its runs (the default: one seed is not the method). "
    "Single checkpoints: the selected checkpoints, one seed each, side by side.",
)
if view == "Across seeds":
    st.subheader("Across seeds")
    if seeds_view.draw(ctx.dataset, key="abl", geometry_slot=True):
        st.stop()
    st.caption(
        f"No seed runs are kept for {ctx.dataset}: below are the selected checkpoints, one seed each "
        f"(a single-seed comparison)."
    )
entries = context.require_checkpoints(ctx, 2)
names = [e.name for e in entries]
sels = tuple(caches.selection(ctx, e) for e in entries)  # what every figure below is made from

results, metas = {}, {}
with context.user_errors("Cannot run the selected checkpoints"):
    for sel in sels:
        _, meta = caches.get_model(sel.entry, ctx.device)
        caches.check_data(meta, ctx.dataset)
        results[sel.entry.name] = caches.inference(sel)
        metas[sel.entry.name] = meta
    tables = caches.aligned_tables(sels)
st.caption(
    f"**Single-seed comparison** ({ctx.dataset} / {ctx.split}): each checkpoint is one seed of its variant. "
    + " · ".join(
        f"**{e.name}**: `{e.variant}`, {seeds_view.checkpoint_line(ctx.dataset, e.variant, e.seed, metas[e.name])}"
        for e in entries
    )
)

st.subheader("Metrics")
n_boot = st.select_slider(
    "Bootstrap resamples",
    [100, 200, 500, 1000, 2000],
    value=200,
    key="abl_nboot",
    help="more resamples: steadier intervals, slower (cached once computed)",
)
with context.user_errors("Metrics"):
    table = caches.get_ablation_metrics(sels, n_boot)
left, right = st.columns([3, 2])
with left:
    st.dataframe(
        table,
        hide_index=True,
        key="abl_metrics_table",
        column_config={
            c: st.column_config.NumberColumn(format="%.4f")
            for c in table.columns
            if c not in ("checkpoint", "resampled")
        },
    )
    st.caption(
        f"95% percentile bootstrap intervals, resampling whole {table['resampled'].iloc[0]} ({n_boot} "
        f"resamples; utterances of one dialogue move together). `diff_vs_first`: weighted F1 minus "
        f"{names[0]}'s on the same resamples (paired bootstrap), with its interval and two-sided p-value: "
        "the test-sampling noise of these single checkpoints, not the spread over seeds (Across seeds)."
    )
with right:
    widgets.show_figure(figures.ablation_metrics_plot(sels, n_boot), table, "ablation_metrics")

st.subheader("Angle distributions")
without = [n for n, r in results.items() if not r.has_split]
if without:
    st.caption(f"No angles for {', '.join(without)} (no shared/specific split).")
value = st.radio("Angle", ["theta", "phi"], horizontal=True, key="abl_angle")
widgets.show_figure(
    figures.angle_overlay(sels, value), figures.ablation_angle_summary(sels), f"ablation_{value}_summary"
)

st.subheader("Predictions that flip")
flips = analysis.prediction_flips(tables)
n = len(tables[names[0]])
c = st.columns(3)
c[0].metric(
    "Utterances with differing predictions",
    f"{len(flips)}",
    delta=f"{100 * len(flips) / n:.1f}% of {n}",
    delta_color="off",
)
c[1].metric(f"Fixed vs {names[0]}", str(int(flips["change_vs_first"].str.contains("fixed").sum())))
c[2].metric(f"Broken vs {names[0]}", str(int(flips["change_vs_first"].str.contains("broken").sum())))
st.dataframe(flips, hide_index=True, key="abl_flips")
widgets.download_csv(flips, "prediction_flips", key="dl_abl_flips")

if any(r.factors for r in results.values()):
    st.subheader("Disentanglement per variant (synthetic ground truth)")
    with context.user_errors("Disentanglement"):
        dis = figures.disentanglement(sels)
    widgets.show_figure(figures.disentanglement_bars(sels), dis, "ablation_disentanglement")

slices_view.draw(
    sels,
    "abl",
    "Slices side by side: weighted F1 per slice of the split, one bar per checkpoint",
    "ablation_slices",
    n_boot=n_boot,
)

st.subheader("Embeddings side by side")
mods = list(results[names[0]].modalities)
settings = st.session_state.get("abl_emb_settings") or {"method": "pca", "kind": "shared", "max_points": 1500}
with st.form("abl_emb_form"):
    c = st.columns(4)
    method = c[0].selectbox(
        "Method",
        ["pca", "tsne", "umap"],
        index=["pca", "tsne", "umap"].index(settings["method"]),
        format_func={"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}.get,
        key="abl_emb_method",
    )
    kind = c[1].selectbox(
        "Features",
        ["shared", "specific", "context"],
        index=["shared", "specific", "context"].index(settings["kind"]),
        key="abl_emb_kind",
    )
    max_points = c[2].number_input(
        "Max points per panel", 200, 20000, int(settings["max_points"]), step=500, key="abl_emb_max"
    )
    color = c[3].selectbox(
        "Colour by",
        ["label", "modality", "correct"],
        key="abl_emb_color",
        format_func={"label": "emotion", "modality": "modality", "correct": "correct / wrong"}.get,
    )
    if st.form_submit_button("Compute", type="primary"):
        settings = {"method": method, "kind": kind, "max_points": int(max_points)}
        st.session_state["abl_emb_settings"] = settings
spec = EmbedSpec(
    method=settings["method"],
    kinds=(settings["kind"],),
    modalities=tuple(mods),
    max_points=settings["max_points"],
)
with context.user_errors("Embedding failed"):
    coords, info = caches.get_aligned_embeddings(sels, spec)
st.caption(
    f"{info['method'].upper()} · {info['n_shown']:,} of {info['n_total']:,} points per panel"
    + (" (stratified subsample, the same utterances in every panel)" if info["subsampled"] else "")
    + f" · every panel starts from {names[0]}'s layout (aligned initialisation); checkpoints without a "
    f"shared/specific split show their context features"
)
per_row = min(3, len(names))
for start in range(0, len(names), per_row):
    cols = st.columns(per_row)
    for col, n in zip(cols, names[start : start + per_row]):
        with col:
            widgets.show_figure(
                figures.aligned_embedding_scatter(sels, spec, n, color=color),
                figures.aligned_panel(sels, spec, n),
                f"ablation_embedding_{n}",
                key=f"abl_emb_{n}",
            )
