"""Per-run tables: one compact Parquet file per final run and split, enough to recompute every figure.

Layout (owned here; `aofl.finals` writes it, `aofl.evidence` and the app read it):

    <results>/runs/<dataset>/<arm>/s<seed>_<split>.parquet

One row per utterance of the split, in split order:

    utterance_id (str), dialogue (str), label_id (int16), prediction_id (int16), confidence (float32),
    theta_<m>, phi_<m> (float32 degrees, one pair per modality; absent for `baseline`, which has no split)

The run's facts sit in the file's key-value metadata under ``aofl`` (JSON): dataset, arm, variant,
seed, split, wf1 and accuracy (percent), modalities, label_names, alpha_start / alpha_end
({modality: degrees}, empty without L_AAC's target), epochs, setting (how the arm's setting was chosen:
``cv`` | ``defaults`` | ``test-informed``), study (the study whose best trial set it, or null) and
train_args (the exact flags). An *arm* is an experiment arm: a variant with a setting and flags, e.g.
``full``, ``fixed_alpha`` or ``orthogonal_recon0``.

Pure pandas/pyarrow: no torch, no Streamlit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "RUNS_SUBDIR",
    "META_KEY",
    "SETTINGS",
    "run_path",
    "write_run_table",
    "read_run_table",
    "read_run_meta",
    "list_runs",
]

RUNS_SUBDIR = "runs"
META_KEY = b"aofl"
SETTINGS = ("cv", "defaults", "test-informed")  # how an arm's setting was chosen
_NAME = re.compile(r"^s(\d+)_(train|valid|test)\.parquet$")
_BASE_COLUMNS = ("utterance_id", "dialogue", "label_id", "prediction_id", "confidence")


def run_path(results_dir: str | os.PathLike, dataset: str, arm: str, seed: int, split: str) -> Path:
    """Where one run's table for one split lives."""
    return Path(results_dir) / RUNS_SUBDIR / dataset / arm / f"s{int(seed)}_{split}.parquet"


def _compact(table: pd.DataFrame, modalities: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "utterance_id": table["utterance_id"].astype(str).to_numpy(),
            "dialogue": table["dialogue"].astype(str).to_numpy(),
            "label_id": table["label_id"].to_numpy().astype(np.int16),
            "prediction_id": table["prediction_id"].to_numpy().astype(np.int16),
            "confidence": table["confidence"].to_numpy().astype(np.float32),
        }
    )
    for m in modalities:
        for kind in ("theta", "phi"):
            col = f"{kind}_{m}"
            if col in table:
                out[col] = table[col].to_numpy().astype(np.float32)
    return out


def write_run_table(path: str | os.PathLike, table: pd.DataFrame, meta: dict) -> Path:
    """Write one run's per-utterance table (an inference table or its compact form) atomically.

    `meta` must name at least dataset, arm, variant, seed and split; it is stored as JSON in the file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [k for k in ("dataset", "arm", "variant", "seed", "split") if k not in meta]
    if missing:
        raise ValueError(f"run metadata lacks {missing}")
    if meta.get("setting") is not None and meta["setting"] not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, not {meta['setting']!r}")
    modalities = list(meta.get("modalities") or [])
    compact = _compact(table, modalities)
    arrow = pa.Table.from_pandas(compact, preserve_index=False)
    schema_meta = dict(arrow.schema.metadata or {})
    schema_meta.pop(b"pandas", None)  # pandas' own block doubles the footer; the columns are plain
    schema_meta[META_KEY] = json.dumps(meta, sort_keys=True).encode()
    arrow = arrow.replace_schema_metadata(schema_meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(arrow, tmp, compression="zstd")
    os.replace(tmp, path)  # a killed writer leaves a hidden temp file, never half a table
    return path


def read_run_meta(path: str | os.PathLike) -> dict:
    """The run's metadata, without reading its rows."""
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise ValueError(f"{path} is not a readable per-run table ({exc})") from exc
    if raw is None:
        raise ValueError(f"{path} has no '{META_KEY.decode()}' metadata: not written by aofl.runs")
    return json.loads(raw)


def read_run_table(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """(rows, metadata) of one run's table."""
    import pyarrow.parquet as pq

    meta = read_run_meta(path)
    table = pq.read_table(path).to_pandas()
    missing = [c for c in _BASE_COLUMNS if c not in table]
    if missing:
        raise ValueError(f"{path} lacks columns {missing}")
    return table, meta


def list_runs(results_dir: str | os.PathLike, dataset: str | None = None) -> pd.DataFrame:
    """One row per run table under <results>/runs: dataset, arm, seed, split, path and its metadata
    fields (variant, wf1, accuracy, setting, alpha_start, alpha_end, ...). Sorted; empty if none."""
    root = Path(results_dir) / RUNS_SUBDIR
    rows = []
    if root.is_dir():
        for ds_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            if dataset is not None and ds_dir.name != dataset:
                continue
            for arm_dir in sorted(p for p in ds_dir.iterdir() if p.is_dir()):
                for f in sorted(arm_dir.glob("s*_*.parquet")):
                    m = _NAME.match(f.name)
                    if not m:
                        continue
                    meta = read_run_meta(f)
                    rows.append(
                        {
                            **meta,
                            "dataset": ds_dir.name,
                            "arm": arm_dir.name,
                            "seed": int(m.group(1)),
                            "split": m.group(2),
                            "path": str(f),
                        }
                    )
    cols = ["dataset", "arm", "variant", "seed", "split", "wf1", "accuracy", "setting", "path"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=cols)
    return frame.sort_values(["dataset", "arm", "split", "seed"]).reset_index(drop=True)
