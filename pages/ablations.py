"""Ablations: several checkpoints of one dataset side by side (the first is the reference)."""
import pandas as pd
import streamlit as st

from aofl import analysis, plots
from aofl.app import state as app_state
from aofl.slices import SLICE_HELP, SLICE_KINDS, SLICE_TITLES, skipped_slices

ctx = app_state.context()
st.title("Ablations")
entries = app_state.require_checkpoints(ctx, 2)
names = [e.name for e in entries]

results = {}
with app_state.user_errors("Cannot run the selected checkpoints"):
    for e in entries:
        _, meta = app_state.get_model(e, ctx.device)
        app_state.check_data(meta, ctx.dataset)
        results[e.name] = app_state.get_inference(e, ctx.dataset, ctx.split, device=ctx.device)
    tables = analysis.align_tables({n: r.table for n, r in results.items()})
st.caption(" · ".join(f"**{e.name}**: `{e.variant}`" for e in entries) + f" · {ctx.dataset} / {ctx.split}")

st.subheader("Metrics")
n_boot = st.select_slider("Bootstrap resamples", [100, 200, 500, 1000, 2000], value=200, key="abl_nboot",
                          help="more resamples: steadier intervals, slower (cached once computed)")
with app_state.user_errors("Metrics"):
    table = app_state.get_ablation_metrics(entries, ctx.dataset, ctx.split, tables, n_boot)
left, right = st.columns([3, 2])
with left:
    st.dataframe(table, hide_index=True, key="abl_metrics_table", column_config={
        c: st.column_config.NumberColumn(format="%.4f") for c in table.columns if c != "checkpoint"})
    st.caption(f"95% percentile bootstrap intervals over utterances ({n_boot} resamples). `diff_vs_first`: "
               f"weighted F1 minus {names[0]}'s on the same resamples (paired bootstrap), with its interval and "
               f"two-sided p-value.")
with right:
    app_state.show_figure(plots.ablation_metrics_plot(table), table, "ablation_metrics")

st.subheader("Angle distributions")
parts = [analysis.angles_long(r.table, r.modalities).assign(checkpoint=n) for n, r in results.items() if r.has_split]
long = pd.concat(parts, ignore_index=True) if parts else analysis.angles_long(tables[names[0]], [])
without = [n for n, r in results.items() if not r.has_split]
if without:
    st.caption(f"No angles for {', '.join(without)} (no shared/specific split).")
value = st.radio("Angle", ["theta", "phi"], horizontal=True, key="abl_angle")
summary = analysis.angle_summary_by(long, "checkpoint") if not long.empty else long
app_state.show_figure(plots.angle_overlay(long, value), summary, f"ablation_{value}_summary")

st.subheader("Predictions that flip")
flips = analysis.prediction_flips(tables)
n = len(tables[names[0]])
c = st.columns(3)
c[0].metric("Utterances with differing predictions", f"{len(flips)}", delta=f"{100 * len(flips) / n:.1f}% of {n}",
            delta_color="off")
c[1].metric(f"Fixed vs {names[0]}", str(int(flips["change_vs_first"].str.contains("fixed").sum())))
c[2].metric(f"Broken vs {names[0]}", str(int(flips["change_vs_first"].str.contains("broken").sum())))
st.dataframe(flips, hide_index=True, key="abl_flips")
app_state.download_csv(flips, "prediction_flips", key="dl_abl_flips")

evaluations = {}
if any(r.factors for r in results.values()):
    st.subheader("Disentanglement per variant (synthetic ground truth)")
    with app_state.user_errors("Disentanglement"):
        for e in entries:
            evaluations[e.name] = app_state.get_evaluation(e, ctx.dataset, ctx.split, ctx.device)
    dis = analysis.disentanglement_frame({n: ev.get("disentanglement") for n, ev in evaluations.items()})
    app_state.show_figure(plots.disentanglement_bars(dis), dis, "ablation_disentanglement")

slices_box = st.expander("Slices side by side: weighted F1 per slice of the split, one bar per checkpoint",
                         key="abl_slices", on_change="rerun")
if slices_box.open:  # computed only while the expander is open
    with slices_box:
        slice_kind = st.selectbox("Slice by", SLICE_KINDS, format_func=SLICE_TITLES.get, key="abl_slice_kind")
        with app_state.user_errors("Slices"):
            slice_all, slice_key = app_state.get_slice_metrics(entries, ctx.dataset, ctx.split, tables, n_boot)
        slice_part = slice_all[slice_all["slice"] == slice_kind]
        if slice_part.empty:
            why = skipped_slices(tables[names[0]], [slice_kind]).get(slice_kind, "no labelled utterances")
            st.info(f"{SLICE_TITLES[slice_kind]}: {why}.")
        else:
            app_state.show_figure(app_state.cached_figure("slice_bars", slice_key, slice_all, slice_kind), slice_part,
                                  f"ablation_slices_{slice_kind}", key="abl_slices_fig")
            st.dataframe(slice_part, hide_index=True, key="abl_slices_table", column_config={
                col: st.column_config.NumberColumn(format="%.1f" if col.startswith(("theta_", "phi_")) else "%.4f")
                for col in slice_part.columns if col not in ("checkpoint", "slice", "value", "n")})
        st.caption(f"**{SLICE_TITLES[slice_kind]}**: {SLICE_HELP[slice_kind]}. Labelled utterances only; 95% "
                   f"percentile bootstrap intervals over each slice's utterances ({n_boot} resamples, the "
                   f"Metrics section's setting); angle columns are empty for checkpoints without the "
                   f"shared/specific split. Definitions: `aofl.slices`.")
        app_state.download_csv(slice_all, "ablation_slices_all", key="dl_abl_slices_all",
                               label="Download CSV (all slices)")

st.subheader("Embeddings side by side")
embed = app_state.embed_module()
if embed is None:
    st.stop()
mods = list(results[names[0]].modalities)
settings = st.session_state.get("abl_emb_settings") or {"method": "pca", "kind": "shared", "max_points": 1500}
with st.form("abl_emb_form"):
    c = st.columns(4)
    method = c[0].selectbox("Method", ["pca", "tsne", "umap"], index=["pca", "tsne", "umap"].index(settings["method"]),
                            format_func={"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}.get, key="abl_emb_method")
    kind = c[1].selectbox("Features", ["shared", "specific", "context"],
                          index=["shared", "specific", "context"].index(settings["kind"]), key="abl_emb_kind")
    max_points = c[2].number_input("Max points per panel", 200, 20000, int(settings["max_points"]), step=500,
                                   key="abl_emb_max")
    color = c[3].selectbox("Colour by", ["label", "modality", "correct"], key="abl_emb_color",
                           format_func={"label": "emotion", "modality": "modality", "correct": "correct / wrong"}.get)
    if st.form_submit_button("Compute", type="primary"):
        settings = {"method": method, "kind": kind, "max_points": int(max_points)}
        st.session_state["abl_emb_settings"] = settings
with app_state.user_errors("Embedding failed"):
    coords, info = app_state.get_aligned_embeddings(entries, ctx.dataset, ctx.split, results, kind=settings["kind"],
                                                    modalities=mods, method=settings["method"],
                                                    max_points=settings["max_points"])
st.caption(f"{info['method'].upper()} · {info['n_shown']:,} of {info['n_total']:,} points per panel"
           + (" (stratified subsample, the same utterances in every panel)" if info["subsampled"] else "")
           + f" · every panel starts from {names[0]}'s layout (aligned initialisation); checkpoints without a "
             f"shared/specific split show their context features")
per_row = min(3, len(names))
for start in range(0, len(names), per_row):
    cols = st.columns(per_row)
    for col, n in zip(cols, names[start:start + per_row]):
        with col:
            panel = coords[coords["checkpoint"] == n]
            app_state.show_figure(plots.embedding_scatter(panel, color=color, title=f"{n} ({panel['kind'].iat[0]})"),
                                  panel, f"ablation_embedding_{n}", key=f"abl_emb_{n}")
