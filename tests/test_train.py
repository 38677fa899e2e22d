import numpy as np
import pytest
import torch

from aofl.data import make_synthetic
from aofl.evaluate import evaluate, linear_cka
from aofl.table import DISENTANGLEMENT_KEYS
from aofl.train import TrainConfig, model_config_for, train


@pytest.fixture(scope="module")
def small():
    return make_synthetic(
        n_dialogues=40, dims={"audio": 24, "text": 32, "visual": 20}, turns=(8, 20), noise=0.5
    )


@pytest.fixture(scope="module")
def trained(small):
    cfg = model_config_for(small, "full", width=32)
    return train(small, cfg, TrainConfig(epochs=12, patience=12, progress=False, batch_size=8, lr=3e-3))


def test_model_learns_the_synthetic_task(small, trained):
    res = evaluate(trained.model, small, "test")
    chance = max(np.bincount(np.concatenate([d.labels for d in small.split("test")]))) / small.num_utterances(
        "test"
    )
    assert res["weighted_f1"] > 0.40 and res["accuracy"] > chance + 0.15
    assert trained.history[-1]["loss_class"] < trained.history[0]["loss_class"]


def test_early_stopping_selects_best_validation_epoch(trained):
    best = max(h["valid_weighted_f1"] for h in trained.history)
    assert trained.best_valid["weighted_f1"] == best
    assert trained.history[trained.best_epoch - 1]["valid_weighted_f1"] == best


def test_training_is_deterministic(small):
    cfg = model_config_for(small, "full", width=16)
    tc = TrainConfig(epochs=2, progress=False, batch_size=8)
    a, b = train(small, cfg, tc), train(small, cfg, tc)
    assert [h["loss_total"] for h in a.history] == [h["loss_total"] for h in b.history]
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_evaluate_reports_disentanglement_in_unit_range(small, trained):
    d = evaluate(trained.model, small, "test")["disentanglement"]
    for k in DISENTANGLEMENT_KEYS:
        assert 0.0 <= d[k] <= 1.0


def test_linear_cka_hand_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert linear_cka(x, x @ q * 3.0) == pytest.approx(1.0, abs=1e-9)  # rotation + scale invariant
    assert linear_cka(x, rng.normal(size=(200, 5))) < 0.1


def test_min_epochs_delays_early_stopping(small):
    cfg = model_config_for(small, "baseline", width=8)
    stopped = train(small, cfg, TrainConfig(epochs=6, patience=1, progress=False, batch_size=8, lr=0.0))
    held = train(
        small, cfg, TrainConfig(epochs=6, patience=1, progress=False, batch_size=8, lr=0.0, min_epochs=5)
    )
    # lr 0: validation never improves after epoch 1, so patience 1 stops at epoch 2
    assert len(stopped.history) == 2
    assert len(held.history) == 5
