"""Pure analysis functions behind the app's pages: DataFrames in, DataFrames or dicts out.

Everything here works on inference tables (`aofl.inference.run_inference(...).table`) and
feature arrays, never on Streamlit, so the tests can call it with small hand-made frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import bootstrap_ci, paired_bootstrap
from .table import DISENTANGLEMENT_KEYS, table_modalities, theta_gt_phi

__all__ = [
    "utterance_angles",
    "angles_long",
    "angle_summary_by",
    "alpha_frame",
    "per_class_frame",
    "confusion_frame",
    "history_frame",
    "whatif_deltas",
    "whatif_summary",
    "prediction_flips",
    "nearest_neighbours",
    "ablation_metrics",
    "disentanglement_frame",
    "probability_frame",
    "align_tables",
]


def angles_long(table: pd.DataFrame, modalities: list[str] | None = None) -> pd.DataFrame:
    """One row per (utterance, modality): utterance_id, dialogue, label, prediction, correct,
    modality, theta, phi, theta_gt_phi (bool, the table's `theta_gt_phi_<m>`). Empty (with those
    columns) when there are no angles."""
    mods = modalities if modalities is not None else table_modalities(table)
    cols = ["utterance_id", "dialogue", "label", "prediction", "correct"]
    parts = []
    for m in mods:
        if f"theta_{m}" not in table:
            continue
        part = table[cols].copy()
        part["modality"] = m
        part["theta"] = table[f"theta_{m}"].to_numpy(dtype=float)
        part["phi"] = table[f"phi_{m}"].to_numpy(dtype=float)
        part["theta_gt_phi"] = theta_gt_phi(table, m)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=cols + ["modality", "theta", "phi", "theta_gt_phi"])
    out = pd.concat(parts, ignore_index=True)
    out["outcome"] = np.where(out["correct"], "correct", "wrong")
    return out


def angle_summary_by(long: pd.DataFrame, by: str | list[str] = "label") -> pd.DataFrame:
    """Per modality x group (`label`, `outcome`, or a list of columns): n, theta mean/median/std,
    phi mean, theta_gt_phi_share (share with theta > phi)."""
    keys = [by] if isinstance(by, str) else list(by)
    stats = ["n", "theta_mean", "theta_median", "theta_std", "phi_mean", "theta_gt_phi_share"]
    if long.empty:
        return pd.DataFrame(columns=["modality", *keys, *stats])
    g = long.groupby(["modality", *keys], sort=False, observed=True)
    out = g.agg(
        n=("theta", "size"),
        theta_mean=("theta", "mean"),
        theta_median=("theta", "median"),
        theta_std=("theta", "std"),
        phi_mean=("phi", "mean"),
        theta_gt_phi_share=("theta_gt_phi", "mean"),
    ).reset_index()
    out["theta_std"] = out["theta_std"].fillna(0.0)
    return out


def alpha_frame(alpha_deg: dict[str, float], theta_mean: dict[str, float] | None = None) -> pd.DataFrame:
    """modality, alpha_deg (L_AAC's target angle at the end of training), theta_mean_deg when given."""
    rows = [{"modality": m, "alpha_deg": float(a)} for m, a in alpha_deg.items()]
    out = pd.DataFrame(rows, columns=["modality", "alpha_deg"])
    if theta_mean is not None:
        out["theta_mean_deg"] = out["modality"].map(theta_mean).astype(float)
    return out


def alpha_vs_theta(long: pd.DataFrame, alpha_deg: tuple[tuple[str, float], ...]) -> pd.DataFrame:
    """`alpha_frame` with each modality's mean theta from the long angle table (`angles_long`);
    alpha_deg as (modality, degrees) pairs so it can be a cache key."""
    return alpha_frame(dict(alpha_deg), long.groupby("modality")["theta"].mean().to_dict())


def per_class_frame(metrics: dict) -> pd.DataFrame:
    """emotion, f1, support from an `evaluate()` dict."""
    f1 = metrics["per_class_f1"]
    support = metrics.get("support", {})
    return pd.DataFrame(
        {
            "emotion": list(f1),
            "f1": [float(v) for v in f1.values()],
            "support": [int(support.get(k, 0)) for k in f1],
        }
    )


def confusion_frame(confusion, labels: list[str]) -> pd.DataFrame:
    """Square DataFrame, rows = true emotion, columns = predicted emotion (counts)."""
    arr = np.asarray(confusion, dtype=int)
    if arr.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {arr.shape} does not match {len(labels)} labels")
    return pd.DataFrame(arr, index=pd.Index(labels, name="true"), columns=pd.Index(labels, name="predicted"))


def history_frame(history: list[dict]) -> pd.DataFrame:
    """Long form of a training history: epoch, series, value, kind (loss | valid).

    Scalars only: `loss_*` rows become kind "loss", `valid_*` rows kind "valid"; lists
    (alpha per modality) are left out."""
    rows = []
    for row in history or []:
        epoch = row.get("epoch")
        for k, v in row.items():
            if k == "epoch" or not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if k.startswith("loss_"):
                rows.append({"epoch": epoch, "series": k[len("loss_") :], "value": float(v), "kind": "loss"})
            elif k.startswith("valid_"):
                rows.append(
                    {"epoch": epoch, "series": k[len("valid_") :], "value": float(v), "kind": "valid"}
                )
    return pd.DataFrame(rows, columns=["epoch", "series", "value", "kind"])


def align_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same utterances in the same order in every table, or a ValueError that says why."""
    names = list(tables)
    if not names:
        raise ValueError("no tables to compare")
    ref = tables[names[0]].set_index("utterance_id")
    out = {names[0]: tables[names[0]].reset_index(drop=True)}
    for n in names[1:]:
        t = tables[n]
        if len(t) != len(ref) or set(t["utterance_id"]) != set(ref.index):
            raise ValueError(
                f"{n!r} was run on other utterances than {names[0]!r}: compare checkpoints of the "
                f"same dataset and split"
            )
        out[n] = t.set_index("utterance_id").loc[ref.index].reset_index()
    return out


def whatif_deltas(base: pd.DataFrame, dropped: pd.DataFrame) -> pd.DataFrame:
    """Per utterance: how prediction, confidence, true-class probability and theta move when a
    modality is dropped. Columns: utterance_id, dialogue, position, speaker, label,
    prediction_before/after, flipped, confidence_before/after/delta, p_true_before/after/delta,
    correct_before/after, theta_<m>_before/after/delta for each modality with angles."""
    tables = align_tables({"before": base, "after": dropped})
    b, a = tables["before"], tables["after"]
    out = b[["utterance_id", "dialogue", "position", "speaker", "label"]].copy()
    out["prediction_before"] = b["prediction"].to_numpy()
    out["prediction_after"] = a["prediction"].to_numpy()
    out["flipped"] = out["prediction_before"] != out["prediction_after"]
    out["correct_before"] = b["correct"].to_numpy(dtype=bool)
    out["correct_after"] = a["correct"].to_numpy(dtype=bool)
    out["confidence_before"] = b["confidence"].to_numpy(dtype=float)
    out["confidence_after"] = a["confidence"].to_numpy(dtype=float)
    out["confidence_delta"] = out["confidence_after"] - out["confidence_before"]

    def p_true(t):
        vals = np.full(len(t), np.nan)
        for i, lab in enumerate(t["label"].to_numpy()):
            col = f"prob_{lab}"
            if lab and col in t:
                vals[i] = t[col].iat[i]
        return vals

    out["p_true_before"], out["p_true_after"] = p_true(b), p_true(a)
    out["p_true_delta"] = out["p_true_after"] - out["p_true_before"]
    for m in table_modalities(b):
        if f"theta_{m}" in a:
            out[f"theta_{m}_before"] = b[f"theta_{m}"].to_numpy(dtype=float)
            out[f"theta_{m}_after"] = a[f"theta_{m}"].to_numpy(dtype=float)
            out[f"theta_{m}_delta"] = out[f"theta_{m}_after"] - out[f"theta_{m}_before"]
    return out


def whatif_summary(deltas: pd.DataFrame) -> pd.DataFrame:
    """Aggregates of `whatif_deltas` as a two-column table (quantity, value)."""
    rows = [
        ("utterances", float(len(deltas))),
        ("share of predictions that flip", float(deltas["flipped"].mean()) if len(deltas) else 0.0),
        ("accuracy before", float(deltas["correct_before"].mean()) if len(deltas) else 0.0),
        ("accuracy after", float(deltas["correct_after"].mean()) if len(deltas) else 0.0),
        ("mean confidence change", float(deltas["confidence_delta"].mean()) if len(deltas) else 0.0),
        (
            "mean true-class probability change",
            float(np.nanmean(deltas["p_true_delta"])) if len(deltas) else 0.0,
        ),
    ]
    for c in deltas.columns:
        if c.startswith("theta_") and c.endswith("_delta"):
            m = c[len("theta_") : -len("_delta")]
            rows.append((f"mean theta change, {m} (deg)", float(deltas[c].mean())))
    return pd.DataFrame(rows, columns=["quantity", "value"])


def prediction_flips(tables: dict[str, pd.DataFrame], only_flips: bool = True) -> pd.DataFrame:
    """Utterances whose prediction differs between checkpoints.

    Columns: utterance_id, dialogue, position, speaker, text, label, pred_<name>, correct_<name>
    per checkpoint, n_distinct (distinct predictions), winner (names that are right when the
    first is wrong: 'fixed by' ...)."""
    tables = align_tables(tables)
    names = list(tables)
    first = tables[names[0]]
    cols = [c for c in ("utterance_id", "dialogue", "position", "speaker", "text", "label") if c in first]
    out = first[cols].copy()
    for n in names:
        out[f"pred_{n}"] = tables[n]["prediction"].to_numpy()
        out[f"correct_{n}"] = tables[n]["correct"].to_numpy(dtype=bool)
    preds = out[[f"pred_{n}" for n in names]]
    out["n_distinct"] = preds.nunique(axis=1)
    ref_ok = out[f"correct_{names[0]}"].to_numpy()
    change = []
    for i in range(len(out)):
        fixed = [n for n in names[1:] if out[f"correct_{n}"].iat[i] and not ref_ok[i]]
        broken = [n for n in names[1:] if not out[f"correct_{n}"].iat[i] and ref_ok[i]]
        parts = ([f"fixed by {', '.join(fixed)}"] if fixed else []) + (
            [f"broken by {', '.join(broken)}"] if broken else []
        )
        change.append("; ".join(parts))
    out["change_vs_first"] = change
    if only_flips:
        out = out[out["n_distinct"] > 1].reset_index(drop=True)
    return out


def nearest_neighbours(
    table: pd.DataFrame,
    features: np.ndarray,
    utterance_id: str,
    k: int = 5,
    exclude_same_dialogue: bool = False,
) -> pd.DataFrame:
    """The k utterances nearest (cosine similarity) to one utterance in a feature space.

    `features` is [N, d] in table order (e.g. the concatenated shared features). Returns the
    neighbours' table rows plus `similarity`, most similar first, the query itself excluded."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.shape[0] != len(table):
        raise ValueError(f"{feats.shape[0]} feature rows for {len(table)} utterances")
    hits = np.flatnonzero(table["utterance_id"].to_numpy() == utterance_id)
    if hits.size == 0:
        raise ValueError(f"unknown utterance {utterance_id!r}")
    i = int(hits[0])
    norm = np.linalg.norm(feats, axis=1)
    norm[norm == 0] = 1.0
    unit = feats / norm[:, None]
    sim = unit @ unit[i]
    sim[i] = -np.inf
    if exclude_same_dialogue and "dialogue" in table:
        sim[table["dialogue"].to_numpy() == table["dialogue"].iat[i]] = -np.inf
    k = int(min(k, np.isfinite(sim).sum()))
    order = np.argsort(-sim, kind="stable")[:k]
    cols = [
        c
        for c in ("utterance_id", "dialogue", "position", "speaker", "text", "label", "prediction", "correct")
        if c in table
    ]
    out = table.iloc[order][cols].reset_index(drop=True)
    out.insert(1, "similarity", sim[order])
    return out


def ablation_metrics(
    tables: dict[str, pd.DataFrame],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    by: str | None = "dialogue",
) -> pd.DataFrame:
    """Weighted F1 and accuracy with bootstrap CIs per checkpoint, and a paired bootstrap of
    weighted F1 against the first checkpoint (difference, CI, two-sided p).

    The bootstrap resamples whole dialogues (the tables' `by` column) when the tables have it, else
    single utterances; the column `resampled` names the unit. Utterances of one dialogue move together,
    so resampling them one by one would make the intervals too narrow."""
    tables = align_tables(tables)
    names = list(tables)
    ref = tables[names[0]]
    keep = ref["label_id"].to_numpy() >= 0 if "label_id" in ref else np.ones(len(ref), bool)
    y = ref["label_id"].to_numpy()[keep]
    groups = ref[by].to_numpy()[keep] if by is not None and by in ref else None
    unit = f"{by}s" if groups is not None else "utterances"
    boot = {"n_boot": n_boot, "level": level, "seed": seed, "groups": groups}
    rows = []
    for n in names:
        pred = tables[n]["prediction_id"].to_numpy()[keep]
        wf1 = bootstrap_ci(y, pred, "weighted_f1", **boot)
        acc = bootstrap_ci(y, pred, "accuracy", **boot)
        row = {
            "checkpoint": n,
            "weighted_f1": wf1["value"],
            "wf1_low": wf1["low"],
            "wf1_high": wf1["high"],
            "accuracy": acc["value"],
            "acc_low": acc["low"],
            "acc_high": acc["high"],
        }
        if n == names[0]:
            row.update(diff_vs_first=0.0, diff_low=np.nan, diff_high=np.nan, p_value=np.nan)
        else:
            ref_pred = ref["prediction_id"].to_numpy()[keep]
            d = paired_bootstrap(y, pred, ref_pred, "weighted_f1", **boot)
            row.update(
                diff_vs_first=d["difference"], diff_low=d["low"], diff_high=d["high"], p_value=d["p_value"]
            )
        row["resampled"] = unit
        rows.append(row)
    return pd.DataFrame(rows)


def disentanglement_frame(scores: dict[str, dict | None]) -> pd.DataFrame:
    """checkpoint, score, value (linear CKA) from evaluate()['disentanglement'] per checkpoint."""
    rows = [
        {"checkpoint": n, "score": k, "value": float(s[k])}
        for n, s in scores.items()
        if s
        for k in DISENTANGLEMENT_KEYS
        if k in s
    ]
    return pd.DataFrame(rows, columns=["checkpoint", "score", "value"])


def probability_frame(row: pd.Series, label_names: list[str] | None = None) -> pd.DataFrame:
    """emotion, probability of one table row (its `prob_<class>` columns), with truth/prediction flags."""
    names = label_names or [c[len("prob_") :] for c in row.index if c.startswith("prob_")]
    out = pd.DataFrame({"emotion": names, "probability": [float(row[f"prob_{n}"]) for n in names]})
    out["is_truth"] = out["emotion"] == row.get("label")
    out["is_prediction"] = out["emotion"] == row.get("prediction")
    return out


def utterance_angles(row, modalities, alpha_deg: dict) -> list[dict]:
    """One utterance's angles per modality (Conversations): θ, φ, whether θ > φ, and the model's α."""
    return [
        {
            "modality": m,
            "theta_deg": float(row[f"theta_{m}"]),
            "phi_deg": float(row[f"phi_{m}"]),
            "theta_gt_phi": theta_gt_phi(row, m),
            "alpha_deg": alpha_deg.get(m, np.nan),
        }
        for m in modalities
    ]
