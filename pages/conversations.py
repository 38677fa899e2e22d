"""Conversations: one dialogue as a timeline; an utterance's probabilities, angles and neighbours."""

import hashlib

import streamlit as st

from aofl import analysis, search
from aofl.app import caches, context, figures, widgets
from aofl.app import link as app_link

ctx = context.context()
st.title("Conversations")
sel, result = caches.selected_inference(ctx)
table = result.table
mods = result.modalities
angle_mods = mods if result.has_split else []

per_dialogue = figures.dialogue_summary(sel)
dialogues = list(per_dialogue.index)
if not dialogues:
    st.info(f"Split {ctx.split} has no dialogues; pick another split in the sidebar.")
    st.stop()

SEARCH_LIMIT = 200  # rows listed; the count above the list is of every match


def _search_box() -> None:
    """Find an utterance anywhere in the split; clicking a match jumps to its dialogue and turn.

    The jump happens in the selection callback, which runs before the script: both keys are set
    there, so the dialogue selector and the utterance check below already see the target."""
    c1, c2 = st.columns([3, 1])
    query = c1.text_input(
        "Find an utterance: words, speaker or id",
        key="conv_search",
        placeholder="e.g. a word of the transcript, a speaker, or an id like "
        f"{table['utterance_id'].iloc[0]}",
    )
    field = c2.selectbox(
        "Search in", list(search.FIELDS), key="conv_search_field", format_func=search.FIELD_LABELS.get
    )
    query = search.clean_query(query)
    if not query:
        return
    hits = search.search_utterances(table, query, field)
    if hits.empty:
        st.info(
            f"No utterance matches `{query.replace('`', '')}` in {search.FIELD_LABELS[field]} "
            f"(split {ctx.split})."
        )
        return
    shown = hits.head(SEARCH_LIMIT)
    st.caption(
        f"{len(hits)} match{'es' if len(hits) != 1 else ''}"
        + (f" (the first {SEARCH_LIMIT} listed)" if len(hits) > SEARCH_LIMIT else "")
        + ". Click one to open its dialogue at that turn."
    )
    rows = shown.rename(columns={"position": "turn", "label": "truth"})
    # a fresh selection for every query: a selected row of an earlier list would point into this one
    results_key = "conv_search_results_" + hashlib.sha1(f"{field}\n{query}".encode()).hexdigest()[:12]
    targets = list(zip(shown["dialogue"], shown["utterance_id"]))  # the rows as listed in this run

    def jump():
        picked = st.session_state[results_key].selection.rows
        if picked and picked[0] < len(targets):
            st.session_state["conv_dialogue"], st.session_state["conv_utterance"] = targets[picked[0]]

    st.dataframe(
        rows[["dialogue", "turn", "speaker", "text", "truth", "prediction"]],
        hide_index=True,
        key=results_key,
        on_select=jump,
        selection_mode="single-row",
        column_config={
            "turn": st.column_config.NumberColumn("turn", width="small"),
            "text": st.column_config.TextColumn("text", width="large"),
        },
        height=min(320, 38 + 35 * len(rows)),
    )


_search_box()
# a link's dialogue and utterance (an utterance alone opens its own dialogue)
linked_utt = app_link.take("utt", table["utterance_id"].tolist())
linked_dlg = app_link.take("dlg", dialogues)
if linked_utt is not None:
    linked_dlg = str(table.loc[table["utterance_id"] == linked_utt, "dialogue"].iloc[0])
    st.session_state["conv_utterance"] = linked_utt
if linked_dlg is not None:
    st.session_state["conv_dialogue"] = linked_dlg
context.select_valid("conv_dialogue", dialogues)
dialogue = st.selectbox(
    "Dialogue",
    dialogues,
    key="conv_dialogue",
    format_func=lambda d: (
        f"{d}  ({per_dialogue.at[d, 'turns']} turns, {100 * per_dialogue.at[d, 'accuracy']:.0f}% correct)"
    ),
)
dtable = figures.dialogue(sel, dialogue)
uids = dtable["utterance_id"].tolist()

st.subheader("Timeline")
widgets.show_figure(
    figures.dialogue_timeline(sel, dialogue), dtable, f"dialogue_{dialogue}", key="conv_timeline"
)


def _pick_row():
    rows = st.session_state["conv_transcript"].selection.rows
    if rows:
        st.session_state["conv_utterance"] = st.session_state["conv_uids"][rows[0]]


st.session_state["conv_uids"] = uids
cols = ["position", "speaker", "text", "label", "prediction", "confidence", "correct"] + [
    f"theta_{m}" for m in angle_mods
]
config = {
    "position": st.column_config.NumberColumn("turn", width="small"),
    "text": st.column_config.TextColumn("text", width="large"),
    "label": "truth",
    "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="%.2f"),
    "correct": st.column_config.CheckboxColumn("correct"),
}
for m in angle_mods:
    config[f"theta_{m}"] = st.column_config.ProgressColumn(
        f"theta {m}", min_value=0.0, max_value=180.0, format="%.0f°"
    )
st.caption("Click a row (or use the selector below) to inspect an utterance.")
st.dataframe(
    dtable[cols],
    hide_index=True,
    column_config=config,
    key="conv_transcript",
    on_select=_pick_row,
    selection_mode="single-row",
    height=min(420, 38 + 35 * len(dtable)),
)

context.select_valid("conv_utterance", uids)
uid = st.selectbox(
    "Utterance",
    uids,
    key="conv_utterance",
    format_func=lambda u: f"{u}: {str(dtable.loc[uids.index(u), 'text'])[:80]}",
)
row = dtable.loc[uids.index(uid)]
app_link.publish(dlg=dialogue, utt=uid)

st.subheader(f"Utterance {uid}")
st.markdown(
    f"**{row['speaker']}**: {row['text'] or '(no text)'}  \n"
    f"truth **{row['label']}**, predicted **{row['prediction']}** "
    f"({'correct' if row['correct'] else 'wrong'}, confidence {row['confidence']:.2f})"
)
left, right = st.columns(2)
with left:
    probs = figures.probabilities(sel, uid)
    widgets.show_figure(figures.probability_bar(sel, uid), probs, f"probabilities_{uid}", key="conv_probs")
with right:
    if angle_mods:
        angle_rows = analysis.utterance_angles(row, angle_mods, result.alpha_deg)
        mcols = st.columns(len(angle_mods))
        for c, a in zip(mcols, angle_rows):
            c.metric(
                f"theta {a['modality']}",
                f"{a['theta_deg']:.1f}°",
                delta=f"phi {a['phi_deg']:.1f}°",
                delta_color="off",
            )
        st.dataframe(angle_rows, hide_index=True, key="conv_angles")
    else:
        st.info("This checkpoint has no shared/specific split, so no angles.")

st.markdown(
    "**Nearest neighbours in shared space**"
    if result.has_split
    else "**Nearest neighbours in context space** (no shared space in this variant)"
)
n1, n2 = st.columns(2)
k = n1.slider("Neighbours", 1, 20, 5, key="conv_k")
other = n2.toggle("Only other dialogues", value=True, key="conv_other_dialogues")
with context.user_errors("Neighbours"):
    neighbours = figures.neighbours(sel, uid, k=k, other_dialogues=other)
st.dataframe(
    neighbours,
    hide_index=True,
    key="conv_neighbours",
    column_config={"similarity": st.column_config.NumberColumn(format="%.3f")},
)
widgets.download_csv(neighbours, f"neighbours_{uid}", key="dl_conv_neighbours")

st.subheader("Modality what-if (this dialogue)")
widgets.whatif_section(sel, result, key="conv_whatif", utterance_ids=uids)
