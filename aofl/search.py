"""Find utterances in an inference table by words, speaker or id (the app's search boxes).

Pure pandas, no Streamlit, so the matching rules are testable and the same on every page:
a case-insensitive substring match (regex characters are plain characters: people paste ids
such as ``dia3#12`` or text with ``?`` and ``(``), the query trimmed of surrounding whitespace,
missing text never matching, and the hits kept in the table's order (the split's order:
dialogue by dialogue, turn by turn).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FIELDS", "FIELD_LABELS", "clean_query", "match_mask", "search_utterances", "matching_ids"]

# field -> the table columns it searches ("id" is the utterance id, `<dialogue>#<turn>`, so it finds
# a whole dialogue too)
FIELDS = {
    "any": ("text", "speaker", "utterance_id"),
    "text": ("text",),
    "speaker": ("speaker",),
    "id": ("utterance_id",),
}
FIELD_LABELS = {"any": "anything", "text": "words", "speaker": "speaker", "id": "utterance id"}


def clean_query(query) -> str:
    """The query as matched: str, surrounding whitespace removed ('' for None)."""
    return "" if query is None else str(query).strip()


def _column_matches(values: pd.Series, needle: str) -> np.ndarray:
    """Case-insensitive literal substring test of one column; NaN / None never match (not 'nan')."""
    present = values.notna().to_numpy()
    out = np.zeros(len(values), dtype=bool)
    if present.any():
        # casefold handles more than lower() (German sharp s); regex=False: '.', '(', '#' are literal
        text = values[present].astype(str).str.casefold()
        out[present] = text.str.contains(needle, regex=False).to_numpy(dtype=bool)
    return out


def match_mask(table: pd.DataFrame, query, field: str = "any") -> np.ndarray:
    """Boolean array, one per table row: does the row match? All False for an empty query.

    A column the table lacks (a dataset without text) simply matches nothing."""
    if field not in FIELDS:
        raise ValueError(f"unknown search field {field!r}; use one of {list(FIELDS)}")
    needle = clean_query(query).casefold()
    mask = np.zeros(len(table), dtype=bool)
    if not needle:
        return mask
    for column in FIELDS[field]:
        if column in table:
            mask |= _column_matches(table[column], needle)
    return mask


def search_utterances(
    table: pd.DataFrame, query, field: str = "any", limit: int | None = None
) -> pd.DataFrame:
    """The table's rows that match `query` in `field`, in table order (index kept), at most `limit`.

    An empty query gives an empty frame with the table's columns, so callers need no special case."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, not {limit}")
    rows = table[match_mask(table, query, field)]
    return rows.head(limit) if limit is not None else rows


def matching_ids(table: pd.DataFrame, query, field: str = "any") -> set[str]:
    """The utterance ids that match (for highlighting points; empty for an empty query)."""
    if "utterance_id" not in table:
        return set()
    return set(table["utterance_id"].to_numpy()[match_mask(table, query, field)].astype(str).tolist())
