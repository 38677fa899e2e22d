"""The on-disk form of an `InferenceResult` (no Streamlit, no pickle).

One directory per result: table.parquet (the per-utterance table), arrays.npz (probabilities and
the per-modality feature arrays, loaded with `file_checks.load_npz`: sizes checked,
allow_pickle=False) and meta.json (alpha, label names, modalities). A directory is written aside
and renamed in (`atomic_dir`), so a reader sees a whole entry or none. `key` names an entry by
what the result is made from: checkpoint sha256, dataset fingerprint, split, dropped modalities.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..inference import InferenceResult
from ..io.atomic import atomic_dir
from ..io.file_checks import load_npz

__all__ = ["ARRAY_GROUPS", "key", "save", "load", "read_only"]

ARRAY_GROUPS = ("shared", "specific", "refined_shared", "refined_specific", "context", "factors")
# bumped when the table's columns change (2: csr_ok_<m> became theta_gt_phi_<m>), so old entries are rebuilt
SCHEMA = 2


def key(sha: str, fingerprint: str, split: str, drop: tuple = ()) -> str:
    """The entry name of a result: the table schema, checkpoint sha256, dataset fingerprint, split and
    the dropped modalities as sorted (modality, mode) pairs."""
    raw = json.dumps([SCHEMA, sha, fingerprint, split, [list(d) for d in drop]])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def save(directory: Path, result: InferenceResult) -> bool:
    """Write `result` as the entry `directory` (replacing a corrupt one); False when it cannot be
    written (a read-only cache only costs recomputation)."""
    directory = Path(directory)
    try:
        if directory.exists():  # an entry that failed to load (corrupt): replace it
            shutil.rmtree(directory, ignore_errors=True)
        # built aside, fsynced, renamed in: readers see the whole entry or none, even after a crash;
        # a concurrent writer's finished entry (same key, same content) is kept
        with atomic_dir(directory) as tmp:
            result.table.to_parquet(tmp / "table.parquet", index=False)
            arrays = {"probabilities": result.probabilities}
            for group in ARRAY_GROUPS:
                for m, a in getattr(result, group).items():
                    arrays[f"{group}/{m}"] = a
            np.savez(tmp / "arrays.npz", **arrays)
            (tmp / "meta.json").write_text(
                json.dumps(
                    {
                        "alpha_deg": result.alpha_deg,
                        "label_names": result.label_names,
                        "modalities": result.modalities,
                    }
                )
            )
    except OSError:
        return False
    return True


def load(directory: Path) -> InferenceResult | None:
    """The result stored in `directory`, or None when it is missing, unreadable or corrupt."""
    directory = Path(directory)
    try:
        table = pd.read_parquet(directory / "table.parquet")
        meta = json.loads((directory / "meta.json").read_text())
        groups: dict[str, dict] = {g: {} for g in ARRAY_GROUPS}
        z = load_npz(directory / "arrays.npz")  # sizes checked, allow_pickle=False; a bad entry is rebuilt
        probabilities = z["probabilities"]
        for k in z:
            if "/" in k:
                g, m = k.split("/", 1)
                groups[g][m] = z[k]
        return InferenceResult(
            table=table,
            probabilities=probabilities,
            alpha_deg=meta["alpha_deg"],
            label_names=meta["label_names"],
            modalities=meta["modalities"],
            **groups,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_only(result: InferenceResult) -> InferenceResult:
    """Freeze the arrays of a result that several readers share (they derive, never modify)."""
    for a in [result.probabilities] + [v for g in ARRAY_GROUPS for v in getattr(result, g).values()]:
        a.flags.writeable = False
    return result
