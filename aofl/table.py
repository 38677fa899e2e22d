"""The per-utterance inference table's concepts, each defined once (pandas/numpy only, no torch).

`aofl.inference.run_inference` writes the table; analysis, slices, the CLI and the pages read it
through these. theta > phi (L_CSR's condition) is decided only here: per utterance the bool
column `theta_gt_phi_<m>` (`theta_gt_phi`), over a table the fraction meeting it
(`theta_gt_phi_share`). `DISENTANGLEMENT_KEYS` names the linear-CKA scores `evaluate` reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "table_modalities",
    "theta_gt_phi_column",
    "theta_gt_phi_flags",
    "theta_gt_phi",
    "theta_gt_phi_share",
    "DISENTANGLEMENT_KEYS",
]

DISENTANGLEMENT_KEYS = (
    "shared_recovers_shared",
    "shared_recovers_specific",
    "specific_recovers_shared",
    "specific_recovers_specific",
)


def table_modalities(table: pd.DataFrame) -> list[str]:
    """Modalities with per-utterance angles in an inference table (a theta_<m> column), in table
    order; [] for a baseline model. A modality's theta_gt_phi_<m> column is not one."""
    thetas = [str(c)[len("theta_") :] for c in table.columns if str(c).startswith("theta_")]
    flags = {theta_gt_phi_column(m) for m in thetas}
    return [m for m in thetas if f"theta_{m}" not in flags]


def theta_gt_phi_column(modality: str) -> str:
    """The table column of the per-utterance bool theta_<m> > phi_<m>."""
    return f"theta_gt_phi_{modality}"


def theta_gt_phi_flags(theta, phi) -> np.ndarray:
    """The rule itself, on angle arrays (degrees or radians alike)."""
    return np.asarray(theta, dtype=float) > np.asarray(phi, dtype=float)


def theta_gt_phi(table: pd.DataFrame | pd.Series, modality: str):
    """Per utterance: does `modality` meet L_CSR's condition theta > phi? The table's
    `theta_gt_phi_<m>` column (a bool array; a bool for one row, a Series); tables without it
    (hand-made, or cached before the column existed) get it from theta_<m> and phi_<m> by the same rule."""
    col = theta_gt_phi_column(modality)
    if col in table:
        v = table[col]
        return bool(v) if np.ndim(v) == 0 else np.asarray(v, dtype=bool)
    v = theta_gt_phi_flags(table[f"theta_{modality}"], table[f"phi_{modality}"])
    return bool(v) if np.ndim(v) == 0 else v


def theta_gt_phi_share(table: pd.DataFrame, modalities: list[str] | None = None) -> dict[str, float]:
    """{modality: share of the table's utterances with theta > phi} (0-1), for the modalities with angles."""
    mods = table_modalities(table) if modalities is None else modalities
    return {
        m: float(np.mean(theta_gt_phi(table, m))) if len(table) else float("nan")
        for m in mods
        if f"theta_{m}" in table
    }
