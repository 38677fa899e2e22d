"""Classification metrics, bootstrap confidence intervals, paired tests and their power.

Weighted F1 is the MERC convention (IEMOCAP, MELD). `bootstrap_ci` and `paired_bootstrap` resample
utterances, or whole dialogues when given each utterance's (`groups=`); `dialogue_seed_bootstrap`
resamples test dialogues and seeds (utterances of one dialogue are not independent). Every bootstrap draws from a fixed seed, so
the same predictions always give the same interval. `holm` corrects a family of p-values;
`detectable_difference` is the smallest difference a paired t-test over seeds finds at a given power.
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
    "paired_t_test",
    "dialogue_seed_bootstrap",
    "holm",
    "t_test_power",
    "detectable_difference",
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
    if metric == "accuracy":
        return np.diagonal(cm, axis1=1, axis2=2).sum(1) / n
    return _weighted_f1_of_confusion(cm)


def _weighted_f1_of_confusion(cm: np.ndarray) -> np.ndarray:
    """Weighted F1 (sklearn's, zero_division=0) of confusion counts [..., true, predicted]. Counts may
    be weights: an utterance drawn k times counts k times, as in the resampled list itself."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape, dtype=float), where=denom > 0)
    return (f1 * support).sum(-1) / support.sum(-1)


def _group_codes(groups, n: int, what: str = "group") -> tuple[np.ndarray, int]:
    """(group index of each of n items, number of groups) from any group names (`what` names them in the
    error)."""
    if len(groups) != n:
        raise ValueError(f"{len(groups)} {what} names for {n} utterances")
    _, code = np.unique(np.asarray(groups), return_inverse=True)
    return code, int(code.max()) + 1 if n else 0


def _per_group_confusions(y: np.ndarray, preds: np.ndarray, group: np.ndarray, n_groups: int, c: int):
    """Confusion counts of each prediction row per group: [rows, groups, c * c]."""
    k = preds.shape[0]
    cell = (np.arange(k)[:, None] * n_groups + group[None, :]) * c * c + y[None, :] * c + preds
    counts = np.bincount(cell.ravel(), minlength=k * n_groups * c * c).astype(float)
    return counts.reshape(k, n_groups, c * c)


def _group_draws(rng: np.random.Generator, n_boot: int, n_groups: int) -> np.ndarray:
    """How often each group is drawn in each of n_boot resamples of n_groups with replacement:
    [n_boot, n_groups]."""
    draw = rng.integers(0, n_groups, size=(n_boot, n_groups))
    return np.bincount(
        (draw + np.arange(n_boot)[:, None] * n_groups).ravel(), minlength=n_boot * n_groups
    ).reshape(n_boot, n_groups)


def _grouped_stats(y, preds, groups, metric: str, n_boot: int, seed: int) -> np.ndarray:
    """The metric of each prediction row on n_boot resamples of whole groups: [n_boot, rows]. A
    resample's confusion is its group draw counts times the per-group confusions (one product)."""
    y, preds = np.asarray(y), np.atleast_2d(np.asarray(preds))
    group, n_groups = _group_codes(groups, len(y))
    c = int(max(y.max(), preds.max())) + 1
    per_group = _per_group_confusions(y, preds, group, n_groups, c)
    times = _group_draws(np.random.default_rng(seed), n_boot, n_groups)
    cm = (times @ per_group.transpose(1, 0, 2).reshape(n_groups, -1)).reshape(n_boot, len(preds), c, c)
    if metric == "accuracy":
        return np.diagonal(cm, axis1=-2, axis2=-1).sum(-1) / cm.sum((-2, -1))
    return _weighted_f1_of_confusion(cm)


def _resampled_stats(y, preds: np.ndarray, metric: str, n_boot: int, seed: int, groups=None) -> np.ndarray:
    """The metric of each prediction row [rows, n] on the same n_boot resamples, of utterances or (with
    `groups`) of whole groups: [n_boot, rows]."""
    if groups is not None:
        return _grouped_stats(y, preds, groups, metric, n_boot, seed)
    idx = _resample_indices(len(y), n_boot, seed)
    return np.stack([_batched(y[idx], p[idx], metric) for p in preds], axis=1)


def bootstrap_ci(
    y_true,
    y_pred,
    metric: str = "weighted_f1",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    groups=None,
) -> dict:
    """Point estimate and percentile bootstrap interval of a metric. `groups` (e.g. each utterance's
    dialogue): resample whole groups instead of single utterances."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    fn = _METRICS[metric]
    stats = _resampled_stats(y_true, y_pred[None], metric, n_boot, seed, groups)[:, 0]
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
    groups=None,
) -> dict:
    """metric(a) - metric(b) on the same resampled utterances (`groups`: the same resampled groups,
    e.g. dialogues): difference, interval, two-sided p."""
    y_true, pred_a, pred_b = map(np.asarray, (y_true, pred_a, pred_b))
    fn = _METRICS[metric]
    stats = _resampled_stats(y_true, np.stack([pred_a, pred_b]), metric, n_boot, seed, groups)
    diffs = stats[:, 0] - stats[:, 1]
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


def dialogue_seed_bootstrap(
    y_true,
    preds_a: list,
    preds_b: list,
    dialogues,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """Weighted F1 of a minus b, averaged over paired seeds, with a bootstrap over test dialogues and seeds.

    preds_a[s] and preds_b[s] are seed s of each model on the same utterances; dialogues[i] names the
    dialogue of utterance i. Each resample draws the seeds with replacement, then the dialogues with
    replacement (in that order from `np.random.default_rng(seed)`: seeds [n_boot, n_seeds], then
    dialogues [n_boot, n_dialogues]), scores every drawn seed's difference on the drawn dialogues'
    utterances and averages. Utterances of one dialogue share a speaker pair and a topic, so they move
    together: resampling them one by one would understate the test-sampling noise.

    difference, per_seed, wins, n_seeds, n_dialogues, low/high (percentile interval) and p_bootstrap
    (two-sided: the share of resamples on the other side of zero, doubled). Fractions, not points.
    """
    y = np.asarray(y_true)
    a, b = np.asarray(preds_a), np.asarray(preds_b)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0 or a.shape[1] != len(y):
        raise ValueError(
            "dialogue_seed_bootstrap needs the same number (>= 1) of seeds on both sides, each predicting "
            f"every one of the {len(y)} utterances"
        )
    n_seeds = a.shape[0]
    dialogue, n_dialogues = _group_codes(dialogues, len(y), "dialogue")
    c = int(max(y.max(), a.max(), b.max())) + 1
    # confusion counts per model-seed and dialogue: [2 * seeds, dialogues, c * c]; a resample's
    # confusion is then its dialogue draw counts times these, one matrix product for every resample
    per_dialogue = _per_group_confusions(y, np.concatenate([a, b]), dialogue, n_dialogues, c)

    full = _weighted_f1_of_confusion(per_dialogue.sum(1).reshape(2 * n_seeds, c, c))
    per_seed = full[:n_seeds] - full[n_seeds:]

    rng = np.random.default_rng(seed)
    seed_draw = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    times = _group_draws(rng, n_boot, n_dialogues)  # after the seeds' draw: the order is documented
    cm = times @ per_dialogue.transpose(1, 0, 2).reshape(n_dialogues, -1)  # [n_boot, 2 * seeds * c * c]
    wf1 = _weighted_f1_of_confusion(cm.reshape(n_boot, 2 * n_seeds, c, c))
    diff = wf1[:, :n_seeds] - wf1[:, n_seeds:]  # [n_boot, seeds]
    stats = np.take_along_axis(diff, seed_draw, axis=1).mean(1)
    lo, hi, p = _interval_and_p(stats, level)
    return {
        "difference": float(per_seed.mean()),
        "per_seed": [float(x) for x in per_seed],
        "wins": int((per_seed > 0).sum()),
        "n_seeds": n_seeds,
        "n_dialogues": n_dialogues,
        "low": lo,
        "high": hi,
        "p_bootstrap": p,
    }


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input's order: the i-th smallest of m p-values times
    (m - i + 1), made non-decreasing in that order and capped at 1. Rejecting where the adjusted value
    is below alpha keeps the chance of any false claim in the family at most alpha. NaN (no test)
    stays NaN and does not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = ~np.isnan(p)
    q = p[tested]
    order = np.argsort(q, kind="stable")
    m = len(q)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    result = np.empty(m)
    result[order] = adjusted
    out[tested] = result
    return out


def t_test_power(effect: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample (paired) t-test at `alpha` with n samples when the true mean
    is `effect` standard deviations from zero (exact, via the noncentral t distribution)."""
    from scipy import stats

    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    shift = effect * math.sqrt(n)
    # the lower tail as sf(crit) at -shift: scipy's nct.cdf returns NaN far out in the tail
    lower = float(np.nan_to_num(stats.nct.sf(crit, df, -shift)))
    return float(stats.nct.sf(crit, df, shift)) + lower


def detectable_difference(sd: float, n: int, power: float = 0.8, alpha: float = 0.05) -> float:
    """The smallest true mean difference that the two-sided paired t-test over n seeds detects with
    probability `power` at `alpha`, when the per-seed differences have standard deviation sd (same
    unit as sd). NaN for fewer than 2 seeds or an unknown sd; 0 when the differences have no spread."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    from scipy.optimize import brentq

    high = 1.0
    while t_test_power(high, n, alpha) < power:  # power grows with the effect: bracket, then solve
        high *= 2
    effect = brentq(lambda e: t_test_power(e, n, alpha) - power, 0.0, high, xtol=1e-10)
    return float(effect * sd)
