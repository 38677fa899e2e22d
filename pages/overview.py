"""Overview: how well the checkpoint does on the split, and how it was trained."""

import pandas as pd
import streamlit as st

from aofl.alpha import ALPHA_LEARNED_TOL_DEG, with_alpha_start
from aofl.app import caches, context, figures, seeds_view, slices_view, widgets
from aofl.dynamics_frame import gradient_part, has_dynamics
from aofl.model import VARIANT_HELP

ctx = context.context()
st.title("Overview")
entry = context.require_checkpoint(ctx)
sel = caches.selection(ctx, entry)

with context.user_errors(f"Cannot evaluate {entry.name}"):
    _, meta = caches.get_model(entry, ctx.device)
    caches.check_data(meta, ctx.dataset)
    metrics = caches.get_evaluation(entry, ctx.dataset, ctx.split, ctx.device)

st.caption(
    f"**{entry.name}** · variant `{entry.variant}` ({VARIANT_HELP.get(entry.variant, '')}) · "
    f"{seeds_view.checkpoint_line(ctx.dataset, entry.variant, entry.seed, meta)} · "
    f"{ctx.dataset} / {ctx.split} · {metrics['n']} utterances"
)
seeds_box = st.expander(
    "Every variant across its seeds (this checkpoint is one of them)", expanded=True, key="ov_seeds"
)
with seeds_box:
    if not seeds_view.draw(ctx.dataset, key="ov"):
        st.caption(f"No seed runs are kept for {ctx.dataset}: the numbers below are this one seed's.")

cols = st.columns(4)
cols[0].metric("Weighted F1", f"{metrics['weighted_f1']:.4f}")
cols[1].metric("Accuracy", f"{metrics['accuracy']:.4f}")
cols[2].metric("Macro F1", f"{metrics['macro_f1']:.4f}")
cols[3].metric("Best epoch (valid)", str(meta.get("best_epoch", "?")))

left, right = st.columns(2)
with left:
    widgets.show_figure(figures.per_class_f1(sel), figures.per_class(sel), "per_class_f1")
with right:
    normalize = st.toggle("Row-normalise", value=False, key="overview_normalize")
    widgets.show_figure(
        figures.confusion_heatmap(sel, normalize), figures.confusion(sel), "confusion", index=True
    )

st.subheader("Training")
history = figures.history(entry)
if history.empty:
    st.info("This checkpoint's metadata has no training history (trained outside `aofl.train`?).")
else:
    widgets.show_figure(figures.training_curves(entry), history, "training_history")
    st.caption(
        f"Command: `{meta.get('command') or entry.command or '?'}` · "
        f"{meta.get('train_seconds', '?')} s of training"
    )

st.subheader("Training dynamics")
dynamics = figures.dynamics(entry)
if not has_dynamics(dynamics):
    st.info(
        "This checkpoint was trained before training dynamics were recorded (or with `--no-dynamics`). "
        f"Retrain it to see them: `python -m aofl train --data {ctx.dataset} --variant {entry.variant} "
        "--out DIR` records them every epoch by default."
    )
else:
    heads = (
        "the shared/specific heads" if gradient_part(dynamics) == "heads" else "the encoders (no heads here)"
    )
    st.caption(
        "Measured once an epoch on a fixed batch of training dialogues. **Top left**: each loss term, "
        "unweighted. **Top right**: how much gradient clipping scaled the classifier's (CE) gradient "
        "(1 = untouched) and the warm-up factor on the auxiliary terms' weights. **Middle left**: each "
        f"term's share of the gradient on {heads} (the norms of the weighted terms' gradients, added up): "
        "when the auxiliary terms take most of it, the classifier barely steers that part of the model. "
        "**Middle right**: the cosine between a term's gradient and CE's; below 0 the term fights the "
        "classifier, pushing where classification gets worse. **Bottom**: per modality, the mean angle θ "
        "between its shared and specific features, the mean angle φ between its shared features and the "
        "other modalities', and the target α that L_AAC pulls θ towards (a trained parameter that moves "
        "a degree or two in a run; all in degrees)."
    )
    widgets.show_figure(figures.training_dynamics(entry), dynamics, "training_dynamics")

if metrics.get("angles"):
    st.subheader("Angles at a glance")
    angle_rows = pd.DataFrame([{"modality": m, **a} for m, a in metrics["angles"].items()])
    # alpha's start beside its end: it moves a degree or two in a run, so "learned" is earned per row
    angle_rows = with_alpha_start(angle_rows.rename(columns={"alpha": "alpha_deg"}), meta.get("config") or {})
    st.dataframe(
        angle_rows,
        hide_index=True,
        column_config={
            "theta_mean": st.column_config.NumberColumn("mean theta (deg)", format="%.1f"),
            "phi_mean": st.column_config.NumberColumn("mean phi (deg)", format="%.1f"),
            "theta_gt_phi": st.column_config.NumberColumn("share theta > phi", format="%.3f"),
            "alpha_start_deg": st.column_config.NumberColumn("alpha start (deg)", format="%.1f"),
            "alpha_deg": st.column_config.NumberColumn("alpha end (deg)", format="%.1f"),
            "learned": st.column_config.CheckboxColumn(f"alpha moved > {ALPHA_LEARNED_TOL_DEG:g}°"),
        },
    )
    st.caption(
        "alpha is the target angle L_AAC pulls theta towards. It starts at the searched `alpha_init_deg` and "
        f"counts as learned only where it moved more than {ALPHA_LEARNED_TOL_DEG:g}°. One checkpoint, seed 0; "
        "the Evidence page shows alpha start → end over every seed of each variant."
    )

if metrics.get("disentanglement"):
    st.subheader("Disentanglement (synthetic ground truth)")
    dis = metrics["disentanglement"]
    st.caption(
        "Linear CKA between the learned features and the planted factors: a well disentangled model "
        "has high *shared recovers shared* and *specific recovers specific*, low cross terms."
    )
    keys = [
        "shared_recovers_shared",
        "shared_recovers_specific",
        "specific_recovers_shared",
        "specific_recovers_specific",
    ]
    dcols = st.columns(4)
    for c, k in zip(dcols, keys):
        c.metric(k.replace("_", " "), f"{dis[k]:.3f}")
    widgets.show_figure(
        figures.disentanglement_bars((sel,)), figures.disentanglement((sel,)), "disentanglement"
    )

slices_view.draw(
    (sel,),
    "ov",
    "Slices: weighted F1, accuracy and angles per slice of the split",
    "slices",
    cli_hint=f" The same from the command line: `python -m aofl slices CHECKPOINT --data {ctx.dataset} "
    f"--split {ctx.split} --json`.",
)
