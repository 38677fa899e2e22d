"""Classification metrics, bootstrap confidence intervals and paired tests.

Weighted F1 is the MERC convention (IEMOCAP, MELD). Bootstraps resample utterances with a
fixed seed, so the same predictions always give the same interval.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

__all__ = [
    "classification_metrics",
    "weighted_f1",
    "accuracy",
    "bootstrap_ci",
    "paired_bootstrap",
    "paired_seed_comparison",
    "paired_t_test",
]


def weighted_f1(y_true, y_pred) -> float:
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def accuracy(y_true, y_pred) -> float:
    return float(accuracy_score(y_true, y_pred))


def classification_metrics(y_true, y_pred, label_names: list[str]) -> dict:
    """weighted_f1, accuracy, macro_f1, per_class_f1 {name: f1}, confusion [true][pred], support."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("no labelled utterances to score")
    labels = list(range(len(label_names)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "weighted_f1": weighted_f1(y_true, y_pred),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class_f1": {name: float(v) for name, v in zip(label_names, per_class)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "support": {name: int((y_true == i).sum()) for i, name in enumerate(label_names)},
        "n": int(len(y_true)),
    }


_METRICS = {"weighted_f1": weighted_f1, "accuracy": accuracy}


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _batched(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> np.ndarray:
    """A metric for each row of [B, n] label arrays at once, via per-row confusion counts.

    Equals sklearn's weighted F1 (zero_division=0) and accuracy row by row, without a Python-level
    sklearn call per resample.
    """
    b, n = y_true.shape
    c = int(max(y_true.max(), y_pred.max())) + 1
    idx = (y_true * c + y_pred) + (np.arange(b) * c * c)[:, None]
    cm = np.bincount(idx.ravel(), minlength=b * c * c).reshape(b, c, c)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    if metric == "accuracy":
        return tp.sum(1) / n
    support, predicted = cm.sum(2), cm.sum(1)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape, dtype=float), where=denom > 0)
    return (f1 * support).sum(1) / support.sum(1)


def bootstrap_ci(
    y_true, y_pred, metric: str = "weighted_f1", n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict:
    """Point estimate and percentile bootstrap interval of a metric."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    fn = _METRICS[metric]
    idx = _resample_indices(len(y_true), n_boot, seed)
    stats = _batched(y_true[idx], y_pred[idx], metric)
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"value": fn(y_true, y_pred), "low": float(lo), "high": float(hi)}


def paired_bootstrap(
    y_true,
    pred_a,
    pred_b,
    metric: str = "weighted_f1",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """metric(a) - metric(b) on the same resampled utterances: difference, interval, two-sided p."""
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    fn = _METRICS[metric]
    idx = _resample_indices(len(y_true), n_boot, seed)
    diffs = _batched(y_true[idx], pred_a[idx], metric) - _batched(y_true[idx], pred_b[idx], metric)
    lo, hi, p = _interval_and_p(diffs, level)
    return {"difference": fn(y_true, pred_a) - fn(y_true, pred_b), "low": lo, "high": hi, "p_value": p}


def _interval_and_p(diffs: np.ndarray, level: float) -> tuple[float, float, float]:
    """Percentile interval of bootstrap differences and the two-sided p-value: the share of
    resamples on the other side of zero, doubled."""
    lo, hi = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    p = 2 * min((diffs <= 0).mean(), (diffs >= 0).mean())
    return float(lo), float(hi), float(min(1.0, p))


def paired_t_test(diffs, level: float = 0.95) -> tuple[float, float, float]:
    """(p, low, high): the two-sided one-sample t-test of per-seed differences against zero and the
    t-interval of their mean; NaN for fewer than 2 seeds. Differences without spread have no t
    statistic: p is 1 when they are all zero, 0 otherwise, and the interval is that value."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan, math.nan
    if np.allclose(d, d[0]):
        return (1.0 if d[0] == 0 else 0.0), float(d[0]), float(d[0])
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    return float(stats.ttest_1samp(d, 0.0).pvalue), float(d.mean() - half), float(d.mean() + half)


def paired_seed_comparison(
    y_true,
    preds_a: list,
    preds_b: list,
    metric: str = "weighted_f1",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Model a against model b over paired seeds (seed s of a with seed s of b, same test utterances).

    difference: the mean over seeds of metric(a_s) - metric(b_s); per_seed: each seed's difference;
    wins: seeds where a scored higher. low/high/p_bootstrap: percentile bootstrap of the seed-mean
    difference over resampled test utterances (test-sampling noise of the averaged models).
    t_p_value: two-sided paired t-test over the seeds' differences (seed-to-seed noise; None for < 2 seeds).
    """
    y_true = np.asarray(y_true)
    if len(preds_a) != len(preds_b) or not preds_a:
        raise ValueError("paired_seed_comparison needs the same number (>= 1) of seeds on both sides")
    fn = _METRICS[metric]
    per_seed = [fn(y_true, np.asarray(a)) - fn(y_true, np.asarray(b)) for a, b in zip(preds_a, preds_b)]
    idx = _resample_indices(len(y_true), n_boot, seed)
    yt = y_true[idx]
    diffs = np.mean(
        [
            _batched(yt, np.asarray(a)[idx], metric) - _batched(yt, np.asarray(b)[idx], metric)
            for a, b in zip(preds_a, preds_b)
        ],
        axis=0,
    )
    lo, hi, p = _interval_and_p(diffs, level)
    t_p = paired_t_test(per_seed, level)[0] if len(per_seed) > 1 else None
    return {
        "difference": float(np.mean(per_seed)),
        "per_seed": [float(x) for x in per_seed],
        "wins": int(sum(x > 0 for x in per_seed)),
        "n_seeds": len(per_seed),
        "low": lo,
        "high": hi,
        "p_bootstrap": p,
        "t_p_value": t_p,
    }
