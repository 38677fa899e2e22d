"""Build a real dataset's `ConversationSet`: text views or MultiEMO features, then validated."""

from __future__ import annotations

from . import textviews
from .conversation import ConversationSet, DataError, Dialogue
from .multiemo import load_multiemo, multiemo_dir
from .real import DEFAULT_VIEWS, DESCRIPTIONS, SPLITS, TEXT_VIEWS, _check_name, _root, load_transcripts
from .validation import validate_dataset

__all__ = ["load"]


def load(
    name: str,
    views=DEFAULT_VIEWS,
    data_dir=None,
    features: str = "text",
    progress: bool = True,
    prepare: bool = True,
    limit: int | None = None,
    allow_unsafe: bool | None = None,
) -> ConversationSet:
    """Load IEMOCAP or MELD as a `ConversationSet` with splits train / valid / test.

    features="text": modalities are the text views `views` (computed and cached on first use by
      `aofl.data.textviews.prepare`, which needs the optional extra ``.[text]`` for the
      ``sentence``/``lexicon`` views; with `prepare=False` a missing cache is an error). The
      ``tuned`` view is never computed here: `python -m aofl data prepare NAME --views tuned` first.
    features="multiemo": modalities text/audio/visual from MultiEMO's pickles in
      ``<data dir>/multiemo/<IEMOCAP|MELD>/`` (see `aofl.data.multiemo`).
    limit: keep only the first `limit` dialogues of each split (quick looks and tests).
    allow_unsafe: let the pickles name code objects (see `safe_pickle.unsafe_load_allowed`; warns).
    The result is checked by `validation.validate_dataset` (non-empty splits, finite features).
    """
    _check_name(name)
    root = _root(data_dir)
    if features == "multiemo":
        return load_multiemo(name, multiemo_dir(name, root), data_dir=root, allow_unsafe=allow_unsafe)
    if features != "text":
        raise DataError(f"unknown features {features!r}; choose 'text' or 'multiemo'")
    views = tuple(views)
    bad = [v for v in views if v not in TEXT_VIEWS]
    if bad or not views:
        raise DataError(f"unknown text views {bad or views}; choose from {', '.join(TEXT_VIEWS)}")
    t = load_transcripts(name, root, allow_unsafe)
    if limit is not None:
        t = textviews.limit_transcripts(t, limit)
    arrays = textviews.load_views(t, views, progress=progress, prepare=prepare)
    splits: dict[str, list[Dialogue]] = {}
    row = 0
    for split in SPLITS:
        out = []
        for d in t.splits[split]:
            n = len(d)
            feats = {v: arrays[v][row : row + n] for v in views}
            out.append(
                Dialogue(
                    d.dialogue_id, list(d.speakers), d.labels.copy(), feats, list(d.text), dict(d.extras)
                )
            )
            row += n
        splits[split] = out
    meta = dict(t.meta)
    meta.update({"source": "text-views", "data_dir": str(root), "views": list(views), "limit": limit})
    # each view is computed from the transcripts by a versioned recipe: the fingerprint hashes these,
    # not the floats (which differ in the last bits between machines)
    meta["view_recipes"] = {v: textviews.VIEW_VERSIONS[v] for v in views}
    cs = ConversationSet(name, list(t.label_names), list(views), splits, DESCRIPTIONS[name], meta)
    return validate_dataset(cs, f"{name} text views in {root}")
