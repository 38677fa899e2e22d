"""Evaluation of a model on a split: metrics, angle summaries, disentanglement scores.

Disentanglement (synthetic data only, where the planted factors are known): linear CKA
(Kornblith et al. 2019) between learned features and a planted factor, in [0, 1]. 1 means
the feature geometry is a linear image of the factor's; ~0 means unrelated.
"""

from __future__ import annotations

import numpy as np

from .data.conversation import ConversationSet
from .inference import InferenceResult, run_inference
from .metrics import classification_metrics
from .model import AOFL
from .table import DISENTANGLEMENT_KEYS, theta_gt_phi_share

__all__ = ["linear_cka", "disentanglement_scores", "evaluate", "angle_summary"]

# the scores of `disentanglement_scores` (keys of evaluate()["disentanglement"]), in display order;
# <features>_recovers_<factor>: CKA of the g (shared) / h (specific) features with a planted factor


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA between [N, p] and [N, q] (centred): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(0)
    y = y - y.mean(0)
    num = np.linalg.norm(y.T @ x) ** 2
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(num / den) if den > 0 else 0.0


def disentanglement_scores(result: InferenceResult) -> dict | None:
    """Four CKA scores averaged over modalities, plus per-modality detail; None without factors.

    For a model without a split (baseline) both "shared" and "specific" are its context features.
    """
    if "shared" not in result.factors:
        return None
    mods = result.modalities
    shared_feats = result.shared if result.has_split else result.context
    specific_feats = result.specific if result.has_split else result.context
    per = {}
    for m in mods:
        if m not in result.factors:
            continue
        feats = {"shared": shared_feats[m], "specific": specific_feats[m]}
        factors = {"shared": result.factors["shared"], "specific": result.factors[m]}
        per[m] = {}
        for k in DISENTANGLEMENT_KEYS:
            feature, factor = k.split("_recovers_")
            per[m][k] = linear_cka(feats[feature], factors[factor])
    out = {k: float(np.mean([per[m][k] for m in per])) for k in DISENTANGLEMENT_KEYS}
    out["method"] = "linear CKA"
    out["features"] = "g, h" if result.has_split else "context (no split)"
    out["per_modality"] = per
    return out


def angle_summary(result: InferenceResult) -> dict | None:
    """Per modality: mean theta / phi (degrees), learned alpha, and under the key "theta_gt_phi" (kept
    for the JSON output) the share of utterances with theta > phi, `table.theta_gt_phi_share`."""
    if not result.has_split:
        return None
    t = result.table
    shares = theta_gt_phi_share(t, result.modalities)
    return {
        m: {
            "theta_mean": float(t[f"theta_{m}"].mean()),
            "phi_mean": float(t[f"phi_{m}"].mean()),
            "theta_gt_phi": shares[m],
            "alpha": result.alpha_deg.get(m),
        }
        for m in result.modalities
    }


def evaluate(
    model: AOFL,
    dataset: ConversationSet,
    split: str = "test",
    result: InferenceResult | None = None,
    batch_size: int = 64,
) -> dict:
    """Metrics dict: weighted_f1, accuracy, per_class_f1, confusion, angles, disentanglement."""
    result = result or run_inference(model, dataset, split, batch_size=batch_size)
    t = result.table
    labelled = t[t["label_id"] >= 0]
    out = classification_metrics(
        labelled["label_id"].to_numpy(), labelled["prediction_id"].to_numpy(), result.label_names
    )
    out["labels"] = list(result.label_names)
    out["split"] = split
    out["dataset"] = dataset.name
    out["variant"] = model.config.variant
    out["angles"] = angle_summary(result)
    dis = disentanglement_scores(result)
    if dis is not None:
        out["disentanglement"] = dis
    return out
