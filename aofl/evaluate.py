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

__all__ = ["linear_cka", "disentanglement_scores", "evaluate", "angle_summary"]


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
        per[m] = {
            "shared_recovers_shared": linear_cka(shared_feats[m], result.factors["shared"]),
            "shared_recovers_specific": linear_cka(shared_feats[m], result.factors[m]),
            "specific_recovers_shared": linear_cka(specific_feats[m], result.factors["shared"]),
            "specific_recovers_specific": linear_cka(specific_feats[m], result.factors[m]),
        }
    keys = ["shared_recovers_shared", "shared_recovers_specific", "specific_recovers_shared",
            "specific_recovers_specific"]
    out = {k: float(np.mean([per[m][k] for m in per])) for k in keys}
    out["method"] = "linear CKA"
    out["features"] = "g, h" if result.has_split else "context (no split)"
    out["per_modality"] = per
    return out


def angle_summary(result: InferenceResult) -> dict | None:
    """Mean theta / phi per modality (degrees), share meeting theta > phi, learned alpha."""
    if not result.has_split:
        return None
    t = result.table
    return {m: {"theta_mean": float(t[f"theta_{m}"].mean()), "phi_mean": float(t[f"phi_{m}"].mean()),
                "theta_gt_phi": float(t[f"csr_ok_{m}"].mean()), "alpha": result.alpha_deg.get(m)}
            for m in result.modalities}


def evaluate(model: AOFL, dataset: ConversationSet, split: str = "test", result: InferenceResult | None = None,
             batch_size: int = 64) -> dict:
    """Metrics dict: weighted_f1, accuracy, per_class_f1, confusion, angles, disentanglement."""
    result = result or run_inference(model, dataset, split, batch_size=batch_size)
    t = result.table
    labelled = t[t["label_id"] >= 0]
    out = classification_metrics(labelled["label_id"].to_numpy(), labelled["prediction_id"].to_numpy(),
                                 result.label_names)
    out["labels"] = list(result.label_names)
    out["split"] = split
    out["dataset"] = dataset.name
    out["variant"] = model.config.variant
    out["angles"] = angle_summary(result)
    dis = disentanglement_scores(result)
    if dis is not None:
        out["disentanglement"] = dis
    return out
