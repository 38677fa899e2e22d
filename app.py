"""AO-FL Explorer: `streamlit run app.py`.

The entry page: page config, the sidebar (dataset, split, checkpoint(s), a user's own checkpoint
file via `aofl.app.files`, device) and the navigation. Each page in pages/ reads the sidebar's
selection from `aofl.app.context.context()`.
Checkpoints come from `$AOFL_CHECKPOINT_DIR/MANIFEST.json` (default: the repository's checkpoints/).
"""

import streamlit as st
import torch

from aofl.app import caches, context, seeds_view
from aofl.app import files as app_files
from aofl.app import link as app_link
from aofl.data import available_datasets
from aofl.store import registry

# the first Streamlit command of every run (importing aofl.app draws nothing)
st.set_page_config(page_title="AO-FL Explorer", page_icon=":material/architecture:", layout="wide")

caches.start_up()

PAGES = {
    "Inspect": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("pages/angles.py", title="Angles", icon=":material/architecture:"),
        st.Page("pages/conversations.py", title="Conversations", icon=":material/forum:"),
        st.Page("pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    ],
    "Compare": [
        st.Page("pages/ablations.py", title="Ablations", icon=":material/compare:"),
        st.Page("pages/evidence.py", title="Evidence", icon=":material/query_stats:"),
    ],
    "Learn": [st.Page("pages/playground.py", title="Playground", icon=":material/school:")],
}
app_link.read_once()  # a link's dataset, split, checkpoint(s), ... (checked as each is drawn)
page = st.navigation(PAGES)
app_link.set_page(page.url_path)
multi = page.url_path == "ablations"


def _provenance(dataset: str, entry: registry.CheckpointEntry) -> None:
    """Under the checkpoint: its rank among its variant's seeds and how its setting was chosen."""
    try:
        meta = caches.checkpoint_metadata(entry)
    except context.USER_ERRORS:
        meta = {}
    st.caption(seeds_view.checkpoint_line(dataset, entry.variant, entry.seed, meta))


def _from_link(param: str, key: str, options) -> None:
    """A link's value for this selector, when it is one of `options` (see aofl.app.link)."""
    linked = app_link.take(param, options)
    if linked:
        context.select(key, linked)


_keep = context.keep  # on_change of the sidebar's selectors: their values survive pages that do not draw them
ctx = context.Context()
with st.sidebar:
    st.markdown("### AO-FL Explorer")
    datasets = available_datasets()
    context.restore(context.SIDEBAR_KEYS)
    _from_link("data", "dataset", datasets)
    ctx.dataset = st.selectbox(
        "Dataset",
        datasets,
        key="dataset",
        on_change=_keep,
        args=("dataset",),
        help="synthetic needs no files; IEMOCAP / MELD appear once prepared (see README)",
    )
    try:
        splits = [s for s in ("test", "valid", "train") if caches.get_dataset(ctx.dataset).splits.get(s)]
    except context.USER_ERRORS as e:
        st.error(f"Cannot load dataset {ctx.dataset}: {e}")
        splits = []
    if splits:
        _from_link("split", "split", splits)
        context.select_valid("split", splits)
        ctx.split = st.selectbox("Split", splits, key="split", on_change=_keep, args=("split",))

    entries: list[registry.CheckpointEntry] = []
    try:
        entries = registry.list_checkpoints(ctx.dataset)
    except registry.RegistryError as e:
        ctx.problem = f"The checkpoint manifest cannot be read: {e}"
    # the selector is drawn above the loader but filled after it: a newly loaded file selects itself
    checkpoint_slot = st.container()
    # checked with a CPU load (the device does not change whether it fits); pages use ctx.device
    user_entry = app_files.sidebar_loader(ctx.dataset, "cpu")
    if user_entry is not None:
        entries.append(user_entry)
    if not entries and ctx.problem is None:
        where = registry.checkpoint_dir()
        ctx.problem = (
            f"No checkpoint for dataset **{ctx.dataset}** in `{where}`. Train one with "
            f"`python -m aofl train --data {ctx.dataset} --out {where}/{ctx.dataset}-full` "
            f"(or set `AOFL_CHECKPOINT_DIR`), then reload."
        )
    # "full" first: it is the reference the other variants are compared with
    entries.sort(key=lambda e: (e.variant != "full", e.name))
    by_name = {e.name: e for e in entries}
    with checkpoint_slot:
        if entries:
            _from_link("ckpt", "checkpoint", list(by_name))
        if entries and not multi:
            context.select_valid("checkpoint", by_name)  # the browser must not keep another dataset's
            name = st.selectbox(
                "Checkpoint",
                list(by_name),
                key="checkpoint",
                on_change=_keep,
                args=("checkpoint",),
                format_func=lambda n: by_name[n].label,
            )
            ctx.checkpoint = by_name[name]
            ctx.checkpoints = [ctx.checkpoint]
            _provenance(ctx.dataset, ctx.checkpoint)
        elif entries:
            chosen = app_link.take_many("ckpts", list(by_name)) or [
                n for n in st.session_state.get("checkpoints", []) if n in by_name
            ]
            if not chosen:
                first = context.kept("checkpoint")
                chosen = ([first] if first in by_name else []) + [n for n in by_name if n != first]
                chosen = chosen[:2]
            st.session_state["checkpoints"] = chosen
            names = st.multiselect(
                "Checkpoints (the first is the reference)",
                list(by_name),
                key="checkpoints",
                on_change=_keep,
                args=("checkpoints",),
                format_func=lambda n: by_name[n].label,
            )
            ctx.checkpoints = [by_name[n] for n in names]
            ctx.checkpoint = ctx.checkpoints[0] if ctx.checkpoints else None
    if ctx.problem:
        st.warning(ctx.problem)

    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    choice = st.selectbox(
        "Device",
        devices,
        key="device",
        on_change=_keep,
        args=("device",),
        help="auto: CUDA when a GPU is visible, else CPU",
    )
    ctx.device = ("cuda" if torch.cuda.is_available() else "cpu") if choice == "auto" else choice
    st.caption(f"running on **{ctx.device}** · checkpoints from `{registry.checkpoint_dir()}`")
    link_slot = st.empty()

context.set_context(ctx)
checkpoint_names = [e.name for e in ctx.checkpoints]
app_link.publish(
    data=ctx.dataset,
    split=ctx.split if splits else None,
    ckpt=None if multi or ctx.checkpoint is None else ctx.checkpoint.name,
    ckpts=checkpoint_names if multi else None,
)
try:
    page.run()
finally:  # also when a page stops early: the link then names what the page did show
    app_link.share_box(link_slot)
