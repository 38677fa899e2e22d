"""Conversations: one dialogue as a timeline; an utterance's probabilities, angles and neighbours."""
import numpy as np
import streamlit as st

from aofl import analysis, app_state, plots

ctx = app_state.context()
st.title("Conversations")
entry, result = app_state.selected_inference(ctx)
table = result.table
mods = result.modalities
angle_mods = mods if result.has_split else []

per_dialogue = table.groupby("dialogue", sort=False).agg(turns=("position", "size"), accuracy=("correct", "mean"))
dialogues = list(per_dialogue.index)
if not dialogues:
    st.info(f"Split {ctx.split} has no dialogues; pick another split in the sidebar.")
    st.stop()
if st.session_state.get("conv_dialogue") not in dialogues:
    st.session_state.pop("conv_dialogue", None)
dialogue = st.selectbox("Dialogue", dialogues, key="conv_dialogue",
                        format_func=lambda d: f"{d}  ({per_dialogue.at[d, 'turns']} turns, "
                                              f"{100 * per_dialogue.at[d, 'accuracy']:.0f}% correct)")
dtable = table[table["dialogue"] == dialogue].sort_values("position").reset_index(drop=True)
uids = dtable["utterance_id"].tolist()

st.subheader("Timeline")
app_state.show_figure(plots.dialogue_timeline(dtable, angle_mods), dtable, f"dialogue_{dialogue}", key="conv_timeline")


def _pick_row():
    rows = st.session_state["conv_transcript"].selection.rows
    if rows:
        st.session_state["conv_utterance"] = st.session_state["conv_uids"][rows[0]]


st.session_state["conv_uids"] = uids
cols = ["position", "speaker", "text", "label", "prediction", "confidence", "correct"] + \
       [f"theta_{m}" for m in angle_mods]
config = {
    "position": st.column_config.NumberColumn("turn", width="small"),
    "text": st.column_config.TextColumn("text", width="large"),
    "label": "truth",
    "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
    "correct": st.column_config.CheckboxColumn("correct"),
}
for m in angle_mods:
    config[f"theta_{m}"] = st.column_config.ProgressColumn(f"theta {m}", min_value=0.0, max_value=180.0,
                                                           format="%.0f°")
st.caption("Click a row (or use the selector below) to inspect an utterance.")
st.dataframe(dtable[cols], hide_index=True, column_config=config, key="conv_transcript", on_select=_pick_row,
             selection_mode="single-row", height=min(420, 38 + 35 * len(dtable)))

if st.session_state.get("conv_utterance") not in uids:
    st.session_state["conv_utterance"] = uids[0]
uid = st.selectbox("Utterance", uids, key="conv_utterance",
                   format_func=lambda u: f"{u}: {str(dtable.loc[uids.index(u), 'text'])[:80]}")
row = dtable.loc[uids.index(uid)]

st.subheader(f"Utterance {uid}")
st.markdown(f"**{row['speaker']}**: {row['text'] or '(no text)'}  \n"
            f"truth **{row['label']}**, predicted **{row['prediction']}** "
            f"({'correct' if row['correct'] else 'wrong'}, confidence {row['confidence']:.2f})")
left, right = st.columns(2)
with left:
    probs = analysis.probability_frame(row, result.label_names)
    app_state.show_figure(plots.probability_bar(probs), probs, f"probabilities_{uid}", key="conv_probs")
with right:
    if angle_mods:
        angle_rows = [{"modality": m, "theta_deg": float(row[f"theta_{m}"]), "phi_deg": float(row[f"phi_{m}"]),
                       "theta_gt_phi": bool(row[f"csr_ok_{m}"]), "alpha_deg": result.alpha_deg.get(m, np.nan)}
                      for m in angle_mods]
        mcols = st.columns(len(angle_mods))
        for c, a in zip(mcols, angle_rows):
            c.metric(f"theta {a['modality']}", f"{a['theta_deg']:.1f}°", delta=f"phi {a['phi_deg']:.1f}°",
                     delta_color="off")
        st.dataframe(angle_rows, hide_index=True, key="conv_angles")
    else:
        st.info("This checkpoint has no shared/specific split, so no angles.")

st.markdown("**Nearest neighbours in shared space**" if result.has_split else
            "**Nearest neighbours in context space** (no shared space in this variant)")
n1, n2 = st.columns(2)
k = n1.slider("Neighbours", 1, 20, 5, key="conv_k")
other = n2.toggle("Only other dialogues", value=True, key="conv_other_dialogues")
space = result.shared if result.has_split else result.context
# cosine on the concatenation of the per-modality features, each scaled to unit length first
feats = np.concatenate([space[m] / np.maximum(np.linalg.norm(space[m], axis=1, keepdims=True), 1e-8)
                        for m in mods], axis=1)
with app_state.user_errors("Neighbours"):
    neighbours = analysis.nearest_neighbours(table, feats, uid, k=k, exclude_same_dialogue=other)
st.dataframe(neighbours, hide_index=True, key="conv_neighbours",
             column_config={"similarity": st.column_config.NumberColumn(format="%.3f")})
app_state.download_csv(neighbours, f"neighbours_{uid}", key="dl_conv_neighbours")

st.subheader("Modality what-if (this dialogue)")
app_state.whatif_section(ctx, entry, result, key="conv_whatif", utterance_ids=uids)
