"""Interop exports of embeddings (pure functions, no Streamlit).

- `projector_tsv`: the TensorBoard Embedding Projector's two files (https://projector.tensorflow.org,
  "Load" -> vectors TSV + optional metadata TSV). Vectors: one point per line, tab-separated
  floats, no header. Metadata: one line per point in the same order; with two or more columns the
  first line is a header of column names, with a single column there is NO header (the
  Projector's rule: "If working with a single column of metadata, do not include a header row").
  Tabs, carriage returns and newlines inside cells would break the format and are replaced by
  spaces.
- `feature_vectors`: the high-dimensional features (shared / specific / context, ...) behind the
  points of an embedding frame (`aofl.embed.embed_features`), in the frame's row order;
  `point_metadata`: those points' metadata (ids, label, prediction, modality, kind, text).
- `to_parquet_bytes`: a frame as Parquet bytes (for a download button).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

__all__ = [
    "projector_tsv",
    "projector_vectors_tsv",
    "projector_metadata_tsv",
    "feature_vectors",
    "point_metadata",
    "features_exportable",
    "to_parquet_bytes",
    "sanitize_cell",
]


def sanitize_cell(value) -> str:
    """A metadata cell as one line of text without tabs (tabs, CR and LF become spaces; None/NaN empty)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("\r\n", " ").replace("\t", " ").replace("\r", " ").replace("\n", " ")


def projector_vectors_tsv(vectors: np.ndarray, precision: int = 7) -> str:
    """[N, d] floats as the Projector's vectors TSV: one row per line, tab-separated, no header."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array [points, dims], got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("vectors contain NaN or infinite values: the Projector cannot read them")
    buf = io.StringIO()
    np.savetxt(buf, v, fmt=f"%.{precision}g", delimiter="\t", newline="\n")
    return buf.getvalue()


def projector_metadata_tsv(metadata: pd.DataFrame) -> str:
    """The Projector's metadata TSV: a header row when there are >= 2 columns, none for a single column."""
    if metadata.shape[1] == 0:
        raise ValueError("metadata needs at least one column")
    cells = [[sanitize_cell(v) for v in row] for row in metadata.itertuples(index=False, name=None)]
    lines = ["\t".join(row) for row in cells]
    if metadata.shape[1] > 1:
        lines.insert(0, "\t".join(sanitize_cell(c) for c in metadata.columns))
    return "\n".join(lines) + "\n" if lines else ""


def projector_tsv(vectors: np.ndarray, metadata: pd.DataFrame, precision: int = 7) -> tuple[str, str]:
    """(vectors TSV, metadata TSV) for the TensorBoard Embedding Projector; one metadata row per vector."""
    if len(vectors) != len(metadata):
        raise ValueError(f"{len(vectors)} vectors but {len(metadata)} metadata rows: one row per vector")
    return projector_vectors_tsv(vectors, precision), projector_metadata_tsv(metadata)


def feature_vectors(result, coords: pd.DataFrame) -> np.ndarray:
    """The features each row of an embedding frame was computed from: for row (utterance_id, modality,
    kind), `getattr(result, kind)[modality]` at that utterance's row of `result.table`.

    Raises ValueError when the rows' features differ in width (kinds of different sizes cannot share
    one Projector file) or an utterance / feature is missing."""
    table = result.table
    ids = (
        table["utterance_id"].astype(str)
        if "utterance_id" in table
        else table["dialogue"].astype(str) + "#" + table["position"].astype(str)
    )
    pos = pd.Index(ids).get_indexer(coords["utterance_id"].astype(str))
    if (pos < 0).any():
        raise ValueError("some points are not utterances of this inference result")
    out = None
    for (kind, m), idx in coords.groupby(["kind", "modality"], sort=False).indices.items():
        feats = getattr(result, kind, None) or {}
        if m not in feats:
            raise ValueError(f"the inference result has no {kind} features for {m}")
        block = np.asarray(feats[m], dtype=np.float32)[pos[idx]]
        if out is None:
            out = np.empty((len(coords), block.shape[1]), dtype=np.float32)
        if block.shape[1] != out.shape[1]:
            raise ValueError(
                f"{kind}/{m} features have {block.shape[1]} dimensions, others {out.shape[1]}: "
                f"export one feature kind at a time"
            )
        out[idx] = block
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def point_metadata(result, coords: pd.DataFrame, coordinates: bool = False) -> pd.DataFrame:
    """The metadata of an embedding frame's points (every column but x / y, or with them when
    coordinates=True), plus the utterance text from `result.table` when it has any."""
    keep = [c for c in coords.columns if coordinates or c not in ("x", "y")]
    out = coords[keep].reset_index(drop=True)
    table = result.table
    if (
        "text" in table
        and "utterance_id" in table
        and table["text"].fillna("").astype(str).str.strip().ne("").any()
    ):
        text = pd.Series(table["text"].to_numpy(), index=table["utterance_id"].astype(str))
        text = text[~text.index.duplicated()]
        out["text"] = text.reindex(out["utterance_id"].astype(str)).fillna("").to_numpy()
    return out


def features_exportable(result, coords: pd.DataFrame) -> bool:
    """Whether `feature_vectors(result, coords)` can build one matrix: every (kind, modality) of the
    points has features in the result, all of one width (cheap: looks at shapes only)."""
    widths = set()
    for kind, m in coords[["kind", "modality"]].drop_duplicates().itertuples(index=False, name=None):
        feats = getattr(result, kind, None) or {}
        if m not in feats:
            return False
        widths.add(np.shape(feats[m])[1])
    return len(widths) == 1


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """df as Parquet file bytes (no index; pyarrow)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()
