"""Overview: how well the checkpoint does on the split, and how it was trained."""
import streamlit as st

from aofl import analysis, app_state, plots
from aofl.dynamics_frame import dynamics_frame, gradient_part, has_dynamics
from aofl.model import VARIANT_HELP

ctx = app_state.context()
st.title("Overview")
entry = app_state.require_checkpoint(ctx)

with app_state.user_errors(f"Cannot evaluate {entry.name}"):
    model, meta = app_state.get_model(entry, ctx.device)
    app_state.check_data(meta, ctx.dataset)
    metrics = app_state.get_evaluation(entry, ctx.dataset, ctx.split, ctx.device)

st.caption(f"**{entry.name}** · variant `{entry.variant}` ({VARIANT_HELP.get(entry.variant, '')}) · "
           f"seed {entry.seed} · {ctx.dataset} / {ctx.split} · {metrics['n']} utterances")

cols = st.columns(4)
cols[0].metric("Weighted F1", f"{metrics['weighted_f1']:.4f}")
cols[1].metric("Accuracy", f"{metrics['accuracy']:.4f}")
cols[2].metric("Macro F1", f"{metrics['macro_f1']:.4f}")
cols[3].metric("Best epoch (valid)", str(meta.get("best_epoch", "?")))

left, right = st.columns(2)
with left:
    per_class = analysis.per_class_frame(metrics)
    app_state.show_figure(plots.per_class_f1_bar(per_class), per_class, "per_class_f1")
with right:
    normalize = st.toggle("Row-normalise", value=False, key="overview_normalize")
    confusion = analysis.confusion_frame(metrics["confusion"], metrics["labels"])
    app_state.show_figure(plots.confusion_heatmap(confusion, normalize), confusion, "confusion", index=True)

st.subheader("Training")
history = analysis.history_frame(meta.get("history") or [])
if history.empty:
    st.info("This checkpoint's metadata has no training history (trained outside `aofl.train`?).")
else:
    app_state.show_figure(plots.training_curves(history), history, "training_history")
    st.caption(f"Command: `{meta.get('command') or entry.command or '?'}` · "
               f"{meta.get('train_seconds', '?')} s of training")

st.subheader("Training dynamics")
dynamics = dynamics_frame(meta.get("history") or [], list(meta.get("modality_dims") or model.modalities))
if not has_dynamics(dynamics):
    st.info("This checkpoint was trained before training dynamics were recorded (or with `--no-dynamics`). "
            f"Retrain it to see them: `python -m aofl train --data {ctx.dataset} --variant {entry.variant} "
            "--out DIR` records them every epoch by default.")
else:
    heads = "the shared/specific heads" if gradient_part(dynamics) == "heads" else "the encoders (no heads here)"
    st.caption("Measured once an epoch on a fixed batch of training dialogues. **Top left**: each loss term, "
               "unweighted. **Top right**: how much gradient clipping scaled the classifier's (CE) gradient "
               "(1 = untouched) and the warm-up factor on the auxiliary terms' weights. **Middle left**: each "
               f"term's share of the gradient on {heads} (the norms of the weighted terms' gradients, added up): "
               "when the auxiliary terms take most of it, the classifier barely steers that part of the model. "
               "**Middle right**: the cosine between a term's gradient and CE's; below 0 the term fights the "
               "classifier, pushing where classification gets worse. **Bottom**: per modality, the mean angle θ "
               "between its shared and specific features, the mean angle φ between its shared features and the "
               "other modalities', and the learned target α that L_AAC pulls θ towards (all in degrees).")
    # the history is in the checkpoint file: its sha256 identifies the frame exactly
    app_state.show_figure(app_state.cached_figure("training_dynamics", f"{app_state.checkpoint_sha(entry)}|dynamics",
                                                  dynamics), dynamics, "training_dynamics")

if metrics.get("angles"):
    st.subheader("Angles at a glance")
    angle_rows = [{"modality": m, **a} for m, a in metrics["angles"].items()]
    st.dataframe(angle_rows, hide_index=True, column_config={
        "theta_mean": st.column_config.NumberColumn("mean theta (deg)", format="%.1f"),
        "phi_mean": st.column_config.NumberColumn("mean phi (deg)", format="%.1f"),
        "theta_gt_phi": st.column_config.NumberColumn("share theta > phi", format="%.3f"),
        "alpha": st.column_config.NumberColumn("learned alpha (deg)", format="%.1f")})

if metrics.get("disentanglement"):
    st.subheader("Disentanglement (synthetic ground truth)")
    dis = metrics["disentanglement"]
    st.caption("Linear CKA between the learned features and the planted factors: a well disentangled model "
               "has high *shared recovers shared* and *specific recovers specific*, low cross terms.")
    keys = ["shared_recovers_shared", "shared_recovers_specific", "specific_recovers_shared",
            "specific_recovers_specific"]
    dcols = st.columns(4)
    for c, k in zip(dcols, keys):
        c.metric(k.replace("_", " "), f"{dis[k]:.3f}")
    dframe = analysis.disentanglement_frame({entry.name: dis})
    app_state.show_figure(plots.disentanglement_bars(dframe), dframe, "disentanglement")
