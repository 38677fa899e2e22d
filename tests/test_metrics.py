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


# ------------------------------------------------------------- Holm, the dialogue bootstrap, power


@pytest.mark.parametrize(
    "raw, adjusted",
    [
        # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
        ([0.5, 0.6], [1.0, 1.0]),  # 0.5 * 2 = 1.0; 0.6 * 1 is raised to it
        ([0.3, 0.4, 0.9], [0.9, 0.9, 0.9]),  # 0.9, 0.8 -> 0.9, 0.9
        ([0.4, 0.5, 0.6], [1.0, 1.0, 1.0]),  # 1.2 capped at 1
        ([0.01, 0.01], [0.02, 0.02]),  # ties
        ([0.02], [0.02]),  # one test: nothing to correct
        ([0.01, float("nan"), 0.02], [0.02, float("nan"), 0.02]),  # no test: NaN, not counted in m
        ([], []),
    ],
)
def test_holm_hand_cases(raw, adjusted):
    from aofl.metrics import holm

    assert np.allclose(holm(raw), adjusted, equal_nan=True)


def test_holm_is_monotone_and_capped():
    from aofl.metrics import holm

    p = np.random.default_rng(0).random(12) ** 3
    q = holm(p)
    order = np.argsort(p)
    assert (np.diff(q[order]) >= 0).all() and (q >= p).all() and (q <= 1).all()


def _clustered(n_dialogues=12, per=8, n_seeds=3, seed=0):
    """Labels, two models' predictions per seed and dialogue names; one dialogue per block of `per`."""
    rng = np.random.default_rng(seed)
    n = n_dialogues * per
    y = rng.integers(0, 4, n)
    a = [np.where(rng.random(n) < 0.85, y, rng.integers(0, 4, n)) for _ in range(n_seeds)]
    b = [np.where(rng.random(n) < 0.45, y, rng.integers(0, 4, n)) for _ in range(n_seeds)]
    dialogues = np.repeat([f"d{i}" for i in range(n_dialogues)], per)
    return y, a, b, dialogues


def test_dialogue_seed_bootstrap_is_the_loop_it_vectorises():
    """Each resample: seeds drawn with replacement, then dialogues; every drawn seed's WF1 difference
    on the drawn dialogues' utterances (sklearn), averaged. Same draws, same numbers."""
    from aofl.metrics import dialogue_seed_bootstrap, weighted_f1

    y, a, b, dialogues = _clustered()
    r = dialogue_seed_bootstrap(y, a, b, dialogues, n_boot=40, seed=3)
    rng = np.random.default_rng(3)
    seed_draw = rng.integers(0, 3, size=(40, 3))
    dialogue_draw = rng.integers(0, 12, size=(40, 12))
    names = np.unique(dialogues)
    stats = []
    for seeds, drawn in zip(seed_draw, dialogue_draw):
        idx = np.concatenate([np.flatnonzero(dialogues == names[d]) for d in drawn])
        stats.append(
            np.mean([weighted_f1(y[idx], a[s][idx]) - weighted_f1(y[idx], b[s][idx]) for s in seeds])
        )
    assert (r["low"], r["high"]) == pytest.approx(tuple(np.quantile(stats, [0.025, 0.975])), abs=1e-12)
    expect = [weighted_f1(y, pa) - weighted_f1(y, pb) for pa, pb in zip(a, b)]
    assert r["per_seed"] == pytest.approx(expect) and r["difference"] == pytest.approx(np.mean(expect))
    assert (r["n_seeds"], r["n_dialogues"], r["wins"]) == (3, 12, sum(e > 0 for e in expect))
    assert 0 < r["low"] < r["difference"] < r["high"] and r["p_bootstrap"] < 0.05


def test_identical_predictions_give_a_zero_width_interval():
    from aofl.metrics import dialogue_seed_bootstrap

    y, a, _, dialogues = _clustered()
    r = dialogue_seed_bootstrap(y, a, a, dialogues, n_boot=200)
    assert r["difference"] == r["low"] == r["high"] == 0.0 and r["p_bootstrap"] == 1.0 and r["wins"] == 0


def test_the_dialogue_is_the_unit_not_the_utterance():
    """A test split of one dialogue: drawing whole dialogues always draws that dialogue, so with one
    seed every resample is the full split and the interval has no width. Resampling utterances would
    give a wide one."""
    from aofl.metrics import dialogue_seed_bootstrap

    y, a, b, _ = _clustered(n_seeds=1)
    one = np.full(len(y), "only")
    r = dialogue_seed_bootstrap(y, a, b, one, n_boot=300)
    assert r["difference"] > 0.05 and r["n_dialogues"] == 1
    assert r["low"] == pytest.approx(r["difference"]) and r["high"] == pytest.approx(r["difference"])
    by_utterance = paired_bootstrap(y, a[0], b[0], n_boot=300)
    assert by_utterance["high"] - by_utterance["low"] > 0.05
    by_dialogue = paired_bootstrap(y, a[0], b[0], n_boot=300, groups=one)
    assert by_dialogue["high"] - by_dialogue["low"] == pytest.approx(0)


def test_seeds_are_resampled_too():
    """One dialogue (its draw changes nothing) and two seeds whose differences are d1 < d2: a resample's
    mean is d1, (d1 + d2) / 2 or d2 with chances 1/4, 1/2, 1/4, so the 95% interval is [d1, d2]."""
    from aofl.metrics import dialogue_seed_bootstrap

    y, a, b, _ = _clustered(n_seeds=2)
    one = np.full(len(y), "only")
    r = dialogue_seed_bootstrap(y, a, b, one, n_boot=1000)
    d1, d2 = sorted(r["per_seed"])
    assert d1 < d2 and (r["low"], r["high"]) == pytest.approx((d1, d2))


def test_dialogue_seed_bootstrap_rejects_what_cannot_be_paired():
    from aofl.metrics import dialogue_seed_bootstrap

    y, a, b, dialogues = _clustered()
    with pytest.raises(ValueError, match="same number"):
        dialogue_seed_bootstrap(y, a, b[:2], dialogues)
    with pytest.raises(ValueError, match="dialogue names"):
        dialogue_seed_bootstrap(y, a, b, dialogues[:-1])


def test_detectable_difference_has_the_power_it_claims():
    """Simulated paired t-tests at the detectable difference reject 80% of the time; the difference
    scales with the sd, shrinks with more seeds and meets the normal approximation for many."""
    from scipy.stats import norm
    from scipy.stats import t as student

    from aofl.metrics import detectable_difference, t_test_power

    n, sd = 10, 1.3
    x = detectable_difference(sd, n)
    assert t_test_power(x / sd, n) == pytest.approx(0.8, abs=1e-8)
    rng = np.random.default_rng(0)
    d = rng.normal(x, sd, size=(200_000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
    assert (np.abs(t) > student.ppf(0.975, n - 1)).mean() == pytest.approx(0.8, abs=0.005)
    assert detectable_difference(2 * sd, n) == pytest.approx(2 * x)
    assert detectable_difference(sd, 5) > x > detectable_difference(sd, 20)
    z = (norm.ppf(0.975) + norm.ppf(0.8)) / np.sqrt(400)
    assert detectable_difference(1.0, 400) == pytest.approx(z, rel=0.01)
    assert np.isnan(detectable_difference(1.0, 1)) and detectable_difference(0.0, 5) == 0.0
    assert detectable_difference(1.0, 2) > 5  # one degree of freedom: only huge differences


def _explicit_group_resamples(y, pred, groups, n_boot, seed, metric):
    """The grouped bootstrap written out: draw groups with replacement (the same generator calls),
    concatenate their utterances, score with sklearn."""
    names, code = np.unique(groups, return_inverse=True)
    draw = np.random.default_rng(seed).integers(0, len(names), size=(n_boot, len(names)))
    out = []
    for row in draw:
        idx = np.concatenate([np.flatnonzero(code == g) for g in row])
        if metric == "accuracy":
            out.append((y[idx] == pred[idx]).mean())
        else:
            out.append(f1_score(y[idx], pred[idx], average="weighted", zero_division=0))
    return np.array(out)


@pytest.mark.parametrize("metric", ["weighted_f1", "accuracy"])
def test_a_grouped_bootstrap_equals_resampling_whole_dialogues_by_hand(metric):
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 9, 25)  # 25 dialogues of 1-8 utterances
    groups = np.repeat([f"dia{i}" for i in range(25)], sizes)
    y = rng.integers(0, 4, len(groups))
    a = np.where(rng.random(len(y)) < 0.7, y, (y + 1) % 4)
    b = np.where(rng.random(len(y)) < 0.5, y, (y + 2) % 4)
    stats_a = _explicit_group_resamples(y, a, groups, 60, 5, metric)
    stats_b = _explicit_group_resamples(y, b, groups, 60, 5, metric)

    ci = bootstrap_ci(y, a, metric, n_boot=60, seed=5, groups=groups)
    lo, hi = np.quantile(stats_a, [0.025, 0.975])
    assert (ci["low"], ci["high"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))

    pb = paired_bootstrap(y, a, b, metric, n_boot=60, seed=5, groups=groups)
    lo, hi = np.quantile(stats_a - stats_b, [0.025, 0.975])
    assert (pb["low"], pb["high"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))


def test_dialogues_that_move_together_widen_the_interval():
    # 40 dialogues of 10 utterances; a model is right or wrong on a whole dialogue at once
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 10)
    y = rng.integers(0, 3, 400)
    right = np.repeat(rng.random(40) < 0.7, 10)
    pred = np.where(right, y, (y + 1) % 3)
    by_utterance = bootstrap_ci(y, pred, n_boot=500)
    by_dialogue = bootstrap_ci(y, pred, n_boot=500, groups=groups)
    assert by_dialogue["value"] == by_utterance["value"]
    width = lambda ci: ci["high"] - ci["low"]  # noqa: E731
    assert width(by_dialogue) > 2 * width(by_utterance)


def test_group_names_must_match_the_utterances():
    with pytest.raises(ValueError, match="3 group names for 4 utterances"):
        bootstrap_ci([0, 1, 0, 1], [0, 1, 1, 1], groups=["a", "a", "b"])
