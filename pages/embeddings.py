"""Embeddings: PCA / t-SNE / UMAP of shared and specific features (the paper's Figure 5)."""

import streamlit as st

from aofl import embed, export, search
from aofl.app import caches, context, figures, widgets
from aofl.app import link as app_link
from aofl.embed import EmbedSpec

ctx = context.context()
st.title("Embeddings")
sel, result = caches.selected_inference(ctx)

kinds_available = list(embed.SPLIT_KINDS) + ["context"] if result.has_split else ["context"]
default_kinds = ("shared", "specific") if result.has_split else ("context",)
# the page's settings: the EmbedSpec computed, and the form's subsample switch and size (kept while it is off)
settings = st.session_state.get("emb_settings")
if (
    settings is None
    or not set(settings["spec"].kinds) <= set(kinds_available)
    or not set(settings["spec"].modalities) <= set(result.modalities)
):
    # first visit (or another checkpoint family): a quick PCA, not EmbedSpec's default method
    settings = {
        "spec": EmbedSpec(
            method="pca", kinds=default_kinds, modalities=tuple(result.modalities), max_points=3000, seed=0
        ),
        "subsample": True,
        "max_points": 3000,
    }
spec = settings["spec"]
METHODS = list(embed.METHODS)
COLORS = ["label", "modality", "speaker", "correct"]
linked = app_link.take("emb", METHODS)
if linked is not None and linked != spec.method:  # a link's method: computed with the other settings
    spec = spec.replace(
        method=linked, **{name: None for names in embed.METHOD_PARAMS.values() for name in names}
    )
    settings = {**settings, "spec": spec}
    st.session_state["emb_settings"] = settings
    st.session_state.pop("emb_method", None)  # the form's selector starts from the linked method
linked = app_link.take("color", COLORS)
if linked is not None:
    st.session_state["emb_color"] = linked

with st.form("emb_form"):
    c = st.columns(4)
    method = c[0].selectbox(
        "Method",
        METHODS,
        index=METHODS.index(spec.method),
        format_func={"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}.get,
        key="emb_method",
    )
    kinds = c[1].multiselect(
        "Feature kinds (one panel each)", kinds_available, default=list(spec.kinds), key="emb_kinds"
    )
    mods = c[2].multiselect("Modalities", result.modalities, default=list(spec.modalities), key="emb_mods")
    seed = c[3].number_input("Seed", 0, 9999, int(spec.seed), key="emb_seed")
    c = st.columns(4)
    subsample = c[0].toggle(
        "Stratified subsample",
        value=settings["subsample"],
        key="emb_subsample",
        help="keep the emotion proportions; the same utterances in every panel",
    )
    max_points = c[1].number_input(
        "Max points per panel", 200, 50000, int(settings["max_points"]), step=500, key="emb_max_points"
    )
    n_neighbors = c[2].slider(
        "UMAP n_neighbors",
        5,
        100,
        int(spec.n_neighbors or embed.DEFAULT_PARAMS["umap"]["n_neighbors"]),
        key="emb_nn",
    )
    perplexity = c[3].slider(
        "t-SNE perplexity",
        5,
        100,
        int(spec.perplexity or embed.DEFAULT_PARAMS["tsne"]["perplexity"]),
        key="emb_perplexity",
    )
    schedule = c[3].radio(
        "t-SNE schedule",
        list(embed.TSNE_SCHEDULES),
        horizontal=True,
        key="emb_schedule",
        index=list(embed.TSNE_SCHEDULES).index(spec.schedule or "fast"),
        help="fast: 60 + 100 iterations (as trustworthy as sklearn's TSNE on our bench); thorough: 125 + 200",
    )
    submitted = st.form_submit_button("Compute", type="primary")
if submitted:
    params = {
        "umap": {"n_neighbors": int(n_neighbors)},
        "pca": {},
        "tsne": {"perplexity": float(perplexity), "schedule": schedule},
    }[method]
    spec = EmbedSpec(
        method=method,
        kinds=tuple(kinds),
        modalities=tuple(mods),
        max_points=int(max_points) if subsample else None,
        seed=int(seed),
        **params,
    )
    settings = {"spec": spec, "subsample": subsample, "max_points": int(max_points)}
    st.session_state["emb_settings"] = settings
if not spec.kinds or not spec.modalities:
    st.info("Choose at least one feature kind and one modality, then press Compute.")
    st.stop()

with context.user_errors("Embedding failed"):
    coords, info = caches.get_embedding(sel, spec)
shown = f"{info['n_shown']:,} of {info['n_total']:,} points"
st.caption(
    f"**{info['method'].upper()}** of {', '.join(info['kinds'])} features · {', '.join(info['modalities'])} · "
    f"{shown}"
    + (" (stratified subsample)" if info["subsampled"] else "")
    + f" · {info['seconds']:.1f} s · each point is one utterance in one modality"
)

color = st.radio(
    "Colour by",
    COLORS,
    horizontal=True,
    key="emb_color",
    format_func={
        "label": "emotion",
        "modality": "modality",
        "speaker": "speaker",
        "correct": "correct / wrong",
    }.get,
)
app_link.publish(emb=spec.method, color=color)
c = st.columns([3, 1])
query = search.clean_query(
    c[0].text_input(
        "Highlight utterances",
        key="emb_highlight",
        placeholder="words, a speaker or an utterance id",
        help="matching points are drawn opaque and outlined in every panel, the others dimmed",
    )
)
field = c[1].selectbox(
    "Search in", list(search.FIELDS), key="emb_highlight_field", format_func=search.FIELD_LABELS.get
)
highlight = None  # None: no search, every point drawn alike
if query:
    matched = search.matching_ids(result.table, query, field)
    on_panels = matched & set(coords["utterance_id"].astype(str))
    if not matched:
        st.info(
            f"No utterance matches `{query.replace('`', '')}` in {search.FIELD_LABELS[field]}; "
            "nothing is highlighted."
        )
    elif not on_panels:
        st.info(
            f"{len(matched)} utterance{'s' if len(matched) != 1 else ''} match, but none of them is among "
            "the shown points (the subsample left them out); nothing is highlighted."
        )
    else:
        highlight = tuple(sorted(on_panels))  # sorted and a tuple: the figure cache hashes it
        st.caption(
            f"**{len(on_panels)} utterance{'s' if len(on_panels) != 1 else ''} match**"
            + (
                f" ({len(matched) - len(on_panels)} more in the split are not among the shown points)"
                if len(matched) > len(on_panels)
                else ""
            )
            + ", highlighted in every panel"
        )
selected = []
cols = st.columns(min(2, len(spec.kinds)))
for i, kind in enumerate(spec.kinds):
    with cols[i % len(cols)]:
        event = widgets.show_figure(
            figures.embedding_scatter(sel, spec, kind, color=color, highlight=highlight),
            figures.embedding_panel(sel, spec, kind),
            f"embedding_{kind}",
            key=f"emb_fig_{kind}",
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
        )
        selected += widgets.selected_ids(event)

# the same points as the panels, for other tools: the Projector gets the features they were embedded from
projector_features = export.features_exportable(result, coords)
vector_help = (
    "the high-dimensional features of the shown points (one row per point, the panels' rows), "
    "for projector.tensorflow.org: Load, then the vectors and the metadata file"
    if projector_features
    else "the feature kinds differ in width, so these are the 2-D coordinates of the shown points, "
    "not their features (choose kinds of one width for the features)"
)
c = st.columns(3)
c[0].download_button(
    "Projector vectors (TSV)",
    lambda: export.projector_vectors_tsv(
        export.feature_vectors(result, coords) if projector_features else coords[["x", "y"]].to_numpy()
    ).encode(),
    file_name="embedding_vectors.tsv",
    mime="text/tab-separated-values",
    key="dl_emb_projector_vectors",
    on_click="ignore",
    help=vector_help,
)
c[1].download_button(
    "Projector metadata (TSV)",
    lambda: export.projector_metadata_tsv(export.point_metadata(result, coords)).encode(),
    file_name="embedding_metadata.tsv",
    mime="text/tab-separated-values",
    key="dl_emb_projector_metadata",
    on_click="ignore",
    help="one row per point in the vectors' order, with a header row (ids, emotion, "
    "prediction, modality, feature kind, text)",
)
c[2].download_button(
    "Parquet",
    lambda: export.to_parquet_bytes(export.point_metadata(result, coords, coordinates=True)),
    file_name="embedding.parquet",
    mime="application/vnd.apache.parquet",
    key="dl_emb_parquet",
    on_click="ignore",
    help="the 2-D coordinates and metadata of the shown points (every panel)",
)

st.subheader("Selected utterances")
selected = list(dict.fromkeys(selected))
if not selected:
    st.caption("Draw a lasso or a box on a panel (or click points) to list those utterances here.")
else:
    table = result.table
    cols = [
        c
        for c in (
            "utterance_id",
            "dialogue",
            "position",
            "speaker",
            "text",
            "label",
            "prediction",
            "confidence",
            "correct",
        )
        if c in table
    ] + [f"theta_{m}" for m in result.modalities if f"theta_{m}" in table]
    picked = table[table["utterance_id"].isin(selected)][cols]
    st.caption(f"{len(picked)} utterances, {int(picked['correct'].sum())} predicted correctly")
    st.dataframe(picked, hide_index=True, key="emb_selected")
    widgets.download_csv(picked, "selected_utterances", key="dl_emb_selected")
