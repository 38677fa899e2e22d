import numpy as np
import pytest
from sklearn.metrics import f1_score

from aofl.metrics import _batched, bootstrap_ci, classification_metrics, paired_bootstrap


def test_batched_metrics_equal_sklearn_row_by_row():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, size=(50, 80))
    p = np.where(rng.random((50, 80)) < 0.6, y, rng.integers(0, 6, size=(50, 80)))
    p[0] = 5  # a row predicting one class only
    wf1 = _batched(y, p, "weighted_f1")
    acc = _batched(y, p, "accuracy")
    for i in range(50):
        assert wf1[i] == pytest.approx(f1_score(y[i], p[i], average="weighted", zero_division=0), abs=1e-12)
        assert acc[i] == pytest.approx((y[i] == p[i]).mean())


def test_bootstrap_interval_brackets_value_and_paired_test():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 400)
    good = np.where(rng.random(400) < 0.8, y, (y + 1) % 4)
    bad = np.where(rng.random(400) < 0.5, y, (y + 1) % 4)
    ci = bootstrap_ci(y, good)
    assert ci["low"] <= ci["value"] <= ci["high"]
    pb = paired_bootstrap(y, good, bad)
    assert pb["difference"] > 0 and pb["low"] > 0 and pb["p_value"] < 0.01
    same = paired_bootstrap(y, good, good)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_classification_metrics_hand_case():
    m = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], ["a", "b"])
    assert m["accuracy"] == 0.75
    assert m["per_class_f1"]["a"] == pytest.approx(2 / 3)
    assert m["per_class_f1"]["b"] == pytest.approx(0.8)
    assert m["confusion"] == [[1, 1], [0, 2]]
    with pytest.raises(ValueError):
        classification_metrics([], [], ["a"])


def test_paired_seed_comparison_by_hand():
    import numpy as np

    from aofl.metrics import paired_seed_comparison, weighted_f1

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    good = [np.where(rng.random(300) < 0.8, y, rng.integers(0, 3, 300)) for _ in range(3)]
    bad = [np.where(rng.random(300) < 0.5, y, rng.integers(0, 3, 300)) for _ in range(3)]
    r = paired_seed_comparison(y, good, bad, n_boot=300)
    expect = np.mean([weighted_f1(y, g) - weighted_f1(y, b) for g, b in zip(good, bad)])
    assert r["difference"] == pytest.approx(expect)
    assert r["wins"] == 3 and r["n_seeds"] == 3
    assert 0 < r["low"] < r["difference"] < r["high"]
    assert r["p_bootstrap"] < 0.01 and r["t_p_value"] < 0.05
    same = paired_seed_comparison(y, good, good, n_boot=100)
    assert same["difference"] == 0.0 and same["wins"] == 0 and same["t_p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_seed_comparison(y, good, bad[:2])


def test_paired_t_test_by_hand():
    """t = mean / (sd / sqrt(n)); no spread has no t statistic; one seed has no test."""
    import math

    from scipy.stats import t as student

    from aofl.metrics import paired_t_test

    d = [1.0, 2.0, 3.0]  # mean 2, sd 1, t = 2 * sqrt(3)
    p, low, high = paired_t_test(d)
    assert p == pytest.approx(2 * student.sf(2 * math.sqrt(3), 2))
    half = student.ppf(0.975, 2) / math.sqrt(3)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert paired_t_test([0.0, 0.0]) == (1.0, 0.0, 0.0)
    assert paired_t_test([0.5, 0.5, 0.5]) == (0.0, 0.5, 0.5)
    assert all(math.isnan(x) for x in paired_t_test([1.0]))
