"""Slices of a split: where does a checkpoint do well or badly? (pure functions, no Streamlit)

Every function takes the per-utterance inference table (`aofl.inference.run_inference(...).table`:
one row per utterance in split order with dialogue, position (0-based), speaker, text, label_id,
prediction_id and, for models with the shared/specific split, theta_<m> / phi_<m> in degrees).

The slice kinds (`SLICE_KINDS`), each a column of values per utterance (`slice_column`):

- ``emotion_shift``: ``"shift"`` when the utterance's label differs from the label of the same
  speaker's previous *labelled* turn in the same dialogue, ``"no shift"`` when it is the same,
  ``"first turn of speaker"`` when that speaker has no earlier labelled turn in the dialogue.
  Unlabelled utterances (label_id < 0) are ``"unlabelled"`` (and never scored).
- ``turn_position``: the 1-based position of the turn in its dialogue, bucketed by
  `TURN_POSITION_EDGES`: ``1-5``, ``6-10``, ``11-20``, ``21+``.
- ``dialogue_length``: the number of turns of the utterance's dialogue (every utterance of a dialogue
  falls in the same bucket), by `DIALOGUE_LENGTH_EDGES`: ``1-5``, ``6-10``, ``11-20``, ``21-40``,
  ``41+`` (MELD dialogues have ~10 turns, IEMOCAP's ~50).
- ``speaker``: the speaker id as in the data (IEMOCAP: M / F style ids; MELD: character names). The
  `top_k_speakers` most frequent keep their id (ties by name), the rest are grouped as ``"other"``
  (nothing is grouped when only one speaker would be).
- ``utterance_length``: the number of whitespace-separated words of ``text``, by
  `UTTERANCE_LENGTH_EDGES`: ``0-3``, ``4-6``, ``7-10``, ``11-20``, ``21+``. When the table has no text
  (no column, or every text empty) this slice is skipped: `skipped_slices` says why.

`slice_metrics` scores one table per slice value (n, weighted F1 and accuracy with percentile
bootstrap intervals over the slice's dialogues via `aofl.metrics.bootstrap_ci`, mean theta and phi per modality when the model
has them; a baseline simply has no angle columns); `compare_slices` does it for several
checkpoints side by side in one long frame. Values come out in a fixed order (buckets in order,
speakers by count with ``other`` last) so tables and charts read the same on every page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import bootstrap_ci
from .table import table_modalities

__all__ = [
    "SLICE_KINDS",
    "SLICE_TITLES",
    "SLICE_HELP",
    "TURN_POSITION_EDGES",
    "DIALOGUE_LENGTH_EDGES",
    "UTTERANCE_LENGTH_EDGES",
    "SHIFT",
    "NO_SHIFT",
    "FIRST_TURN",
    "UNLABELLED",
    "OTHER",
    "bucket",
    "bucket_labels",
    "emotion_shift",
    "turn_position",
    "dialogue_length",
    "speaker_slice",
    "utterance_length",
    "has_text",
    "skipped_slices",
    "slice_column",
    "slice_frame",
    "slice_metrics",
    "compare_slices",
]

SLICE_KINDS = ("emotion_shift", "turn_position", "dialogue_length", "speaker", "utterance_length")
SLICE_TITLES = {
    "emotion_shift": "Emotion shift",
    "turn_position": "Turn position",
    "dialogue_length": "Dialogue length (turns)",
    "speaker": "Speaker",
    "utterance_length": "Utterance length (words)",
}
SLICE_HELP = {
    "emotion_shift": "shift: the label differs from the same speaker's previous labelled turn in the dialogue; "
    "no shift: the same label; first turn of speaker: no earlier labelled turn of that speaker",
    "turn_position": "the turn's 1-based position in its dialogue",
    "dialogue_length": "the number of turns of the utterance's dialogue",
    "speaker": "the speaker id of the data; the most frequent speakers by name, the rest grouped as other",
    "utterance_length": "whitespace-separated words of the utterance's text",
}
TURN_POSITION_EDGES = (5, 10, 20)  # 1-5, 6-10, 11-20, 21+
DIALOGUE_LENGTH_EDGES = (5, 10, 20, 40)  # 1-5, 6-10, 11-20, 21-40, 41+
UTTERANCE_LENGTH_EDGES = (3, 6, 10, 20)  # 0-3, 4-6, 7-10, 11-20, 21+
SHIFT, NO_SHIFT, FIRST_TURN, UNLABELLED, OTHER = (
    "shift",
    "no shift",
    "first turn of speaker",
    "unlabelled",
    "other",
)
DEFAULT_TOP_K_SPEAKERS = 8


def bucket_labels(edges, start: int = 1) -> list[str]:
    """The labels of the buckets `bucket` makes: edges (5, 10), start 1 -> ['1-5', '6-10', '11+']."""
    labels, lo = [], start
    for hi in edges:
        labels.append(f"{lo}-{hi}" if hi > lo else str(hi))
        lo = hi + 1
    return labels + [f"{lo}+"]


def bucket(values, edges, start: int = 1) -> pd.Categorical:
    """Integer counts into ordered buckets: value v goes to the first bucket whose upper edge is >= v
    (edges are inclusive upper bounds), values above the last edge to '<last+1>+'."""
    values = np.asarray(values)
    edges = list(edges)
    if sorted(set(edges)) != edges:
        raise ValueError(f"bucket edges must be strictly increasing, got {edges}")
    labels = bucket_labels(edges, start)
    codes = np.searchsorted(np.asarray(edges), values, side="left")
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


def _positions(table: pd.DataFrame) -> np.ndarray:
    return np.asarray(table["position"], dtype=np.int64)


def emotion_shift(table: pd.DataFrame) -> pd.Categorical:
    """Per utterance: shift / no shift / first turn of speaker / unlabelled (see the module docstring).

    Turns are ordered by position within each dialogue; the table's row order is kept in the output."""
    labels = np.asarray(table["label_id"])
    order = pd.DataFrame(
        {
            "dialogue": table["dialogue"].to_numpy(),
            "speaker": table["speaker"].to_numpy(),
            "position": _positions(table),
            "label": labels,
            "row": np.arange(len(table)),
        }
    )
    labelled = order[order["label"] >= 0].sort_values(["dialogue", "speaker", "position"], kind="stable")
    previous = labelled.groupby(["dialogue", "speaker"], sort=False)["label"].shift(1)
    out = np.full(len(table), UNLABELLED, dtype=object)
    rows = labelled["row"].to_numpy()
    prev = previous.to_numpy()
    cur = labelled["label"].to_numpy()
    out[rows] = np.where(pd.isna(prev), FIRST_TURN, np.where(prev == cur, NO_SHIFT, SHIFT))
    cats = [SHIFT, NO_SHIFT, FIRST_TURN] + ([UNLABELLED] if (labels < 0).any() else [])
    return pd.Categorical(out, categories=cats, ordered=True)


def turn_position(table: pd.DataFrame, edges=TURN_POSITION_EDGES) -> pd.Categorical:
    """The 1-based turn position (position + 1), bucketed."""
    return bucket(_positions(table) + 1, edges, start=1)


def dialogue_length(table: pd.DataFrame, edges=DIALOGUE_LENGTH_EDGES) -> pd.Categorical:
    """The number of turns of each utterance's dialogue (rows of the dialogue in the table), bucketed."""
    sizes = table.groupby("dialogue", sort=False)["dialogue"].transform("size").to_numpy()
    return bucket(sizes, edges, start=1)


def speaker_slice(table: pd.DataFrame, top_k: int = DEFAULT_TOP_K_SPEAKERS) -> pd.Categorical:
    """The speaker id for the top_k most frequent speakers (ties: by name), "other" for the rest."""
    speakers = table["speaker"].astype(str)
    counts = speakers.value_counts()
    ranked = sorted(counts.index, key=lambda s: (-counts[s], s))
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    keep = ranked if len(ranked) <= top_k + 1 else ranked[:top_k]  # never an "other" of one speaker
    rest = len(ranked) > len(keep)
    values = speakers.where(speakers.isin(keep), OTHER).to_numpy() if rest else speakers.to_numpy()
    categories = keep + ([OTHER] if rest and OTHER not in keep else [])
    return pd.Categorical(values, categories=categories, ordered=True)


def has_text(table: pd.DataFrame) -> bool:
    """Whether the table carries utterance text (a text column with at least one non-blank cell)."""
    if "text" not in table:
        return False
    return bool(table["text"].fillna("").astype(str).str.strip().ne("").any())


def utterance_length(table: pd.DataFrame, edges=UTTERANCE_LENGTH_EDGES) -> pd.Categorical:
    """Words (whitespace-separated) of each utterance's text, bucketed; raises without text."""
    if not has_text(table):
        raise ValueError("the table has no utterance text: no utterance-length slice")
    words = table["text"].fillna("").astype(str).str.split().str.len().to_numpy()
    return bucket(words, edges, start=0)


def skipped_slices(table: pd.DataFrame, kinds=SLICE_KINDS) -> dict[str, str]:
    """{kind: why it cannot be computed on this table} for the kinds that are skipped."""
    out = {}
    if "utterance_length" in kinds and not has_text(table):
        out["utterance_length"] = (
            "skipped: this dataset carries no utterance text (prepare the text view, "
            "see the README), so words cannot be counted"
        )
    return out


def slice_column(
    table: pd.DataFrame, kind: str, top_k_speakers: int = DEFAULT_TOP_K_SPEAKERS
) -> pd.Categorical:
    """The value of slice `kind` for every utterance (an ordered Categorical in the table's row order)."""
    if kind == "emotion_shift":
        return emotion_shift(table)
    if kind == "turn_position":
        return turn_position(table)
    if kind == "dialogue_length":
        return dialogue_length(table)
    if kind == "speaker":
        return speaker_slice(table, top_k_speakers)
    if kind == "utterance_length":
        return utterance_length(table)
    raise ValueError(f"unknown slice kind {kind!r}; choose from {', '.join(SLICE_KINDS)}")


def _kinds(kinds) -> list[str]:
    if kinds is None:
        return list(SLICE_KINDS)
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    bad = [k for k in kinds if k not in SLICE_KINDS]
    if bad:
        raise ValueError(f"unknown slice kinds {bad}; choose from {', '.join(SLICE_KINDS)}")
    return list(kinds)


def slice_frame(
    table: pd.DataFrame, kinds=None, top_k_speakers: int = DEFAULT_TOP_K_SPEAKERS
) -> pd.DataFrame:
    """One column per (computable) slice kind, one row per utterance, index as the table's."""
    skipped = skipped_slices(table, _kinds(kinds))
    return pd.DataFrame(
        {k: slice_column(table, k, top_k_speakers) for k in _kinds(kinds) if k not in skipped},
        index=table.index,
    )


def slice_metrics(
    table: pd.DataFrame,
    kinds=None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    top_k_speakers: int = DEFAULT_TOP_K_SPEAKERS,
) -> pd.DataFrame:
    """Per slice value: n (labelled utterances), weighted F1 and accuracy (0-1) with their percentile
    bootstrap intervals (`bootstrap_ci`, n_boot resamples of the slice's dialogues, fixed seed), the
    number of dialogues the slice's utterances come from, and the mean theta_<m> / phi_<m> (degrees)
    per modality when the table has angles.

    Utterances of one dialogue move together, so the bootstrap draws whole dialogues (their utterances
    in this slice); a slice value from a single dialogue has no interval (NaN): its spread over
    dialogues cannot be estimated. A table without a `dialogue` column resamples utterances.

    Columns: slice, value, n, weighted_f1, weighted_f1_low, weighted_f1_high, accuracy, accuracy_low,
    accuracy_high, n_dialogues, then theta_<m>, phi_<m> per modality. Unlabelled utterances are left
    out; slice values without labelled utterances get no row; skipped kinds (`skipped_slices`) get no
    rows.
    """
    kinds = _kinds(kinds)
    frame = slice_frame(table, kinds, top_k_speakers)
    labelled = np.asarray(table["label_id"]) >= 0
    y = np.asarray(table["label_id"])
    p = np.asarray(table["prediction_id"])
    dialogue = np.asarray(table["dialogue"]) if "dialogue" in table else None
    mods = table_modalities(table)
    angles = {
        f"{a}_{m}": np.asarray(table[f"{a}_{m}"], dtype=np.float64) for m in mods for a in ("theta", "phi")
    }
    rows = []
    for kind in frame.columns:
        col = frame[kind]
        for value in col.cat.categories:
            keep = (col == value).to_numpy() & labelled
            n = int(keep.sum())
            if n == 0:
                continue
            row = {"slice": kind, "value": str(value), "n": n}
            groups = dialogue[keep] if dialogue is not None else None
            n_dialogues = len(set(groups)) if groups is not None else None
            for metric in ("weighted_f1", "accuracy"):
                ci = bootstrap_ci(
                    y[keep], p[keep], metric=metric, n_boot=n_boot, level=level, seed=seed, groups=groups
                )
                if n_dialogues == 1:
                    ci["low"] = ci["high"] = float("nan")
                row.update({metric: ci["value"], f"{metric}_low": ci["low"], f"{metric}_high": ci["high"]})
            row["n_dialogues"] = n_dialogues
            for name, a in angles.items():
                row[name] = float(np.nanmean(a[keep])) if np.isfinite(a[keep]).any() else float("nan")
            rows.append(row)
    columns = [
        "slice",
        "value",
        "n",
        "weighted_f1",
        "weighted_f1_low",
        "weighted_f1_high",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "n_dialogues",
    ] + list(angles)
    return pd.DataFrame(rows, columns=columns)


def compare_slices(
    tables: dict[str, pd.DataFrame],
    kinds=None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    top_k_speakers: int = DEFAULT_TOP_K_SPEAKERS,
) -> pd.DataFrame:
    """`slice_metrics` of several checkpoints (name -> inference table) in one long frame, a leading
    `checkpoint` column, checkpoints in the dict's order. A checkpoint without angles (baseline) has
    NaN in the angle columns that others have."""
    parts = [
        slice_metrics(t, kinds, n_boot=n_boot, level=level, seed=seed, top_k_speakers=top_k_speakers).assign(
            checkpoint=name
        )
        for name, t in tables.items()
    ]
    if not parts:
        raise ValueError("compare_slices needs at least one table")
    out = pd.concat(parts, ignore_index=True)
    return out[["checkpoint"] + [c for c in out.columns if c != "checkpoint"]]
