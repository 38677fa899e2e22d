"""The training-recipe options of issue #13: each changes what it claims to change, and nothing else."""

import math

import pytest
import torch
from _tiny import tiny_dataset

from aofl.train import TrainConfig, _clipped_backward, aux_scale_at, lr_factor_at, model_config_for, train


@pytest.fixture(scope="module")
def data():
    return tiny_dataset(n_dialogues=24)


def _tc(**kw):
    kw.setdefault("epochs", 3)
    kw.setdefault("batch_size", 6)
    return TrainConfig(progress=False, **kw)


def _weights_equal(a, b) -> bool:
    return all(
        torch.equal(v, w) for v, w in zip(a.model.state_dict().values(), b.model.state_dict().values())
    )


def test_warmup_and_lr_factors_by_hand():
    assert [aux_scale_at(e, 0) for e in (1, 2)] == [1.0, 1.0]
    assert [aux_scale_at(e, 4) for e in (1, 2, 3, 4, 5, 9)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor_at(7, 10, "constant") == 1.0
    assert lr_factor_at(1, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor_at(10, 10, "cosine") == pytest.approx(0.01)
    assert lr_factor_at(5.5, 10, "cosine") == pytest.approx(0.01 + 0.99 * 0.5)  # the midpoint
    with pytest.raises(ValueError):
        lr_factor_at(1, 10, "linear")


def test_clipped_backward_by_hand():
    p = torch.tensor([3.0, 4.0], requires_grad=True)
    for mode, expect in (("ce", [2.0, 1.0]), ("per_term", [1.0 + 0.5**0.5, 0.5**0.5])):
        terms = {
            "class": (p * torch.tensor([10.0, 0.0])).sum(),
            "cen": p.sum(),
        }  # gradients [10, 0] and [1, 1]
        factor = _clipped_backward(terms, [p], 1.0, mode)
        assert factor == pytest.approx(0.1, rel=1e-5)  # CE's gradient, norm 10, clipped to 1
        assert p.grad.tolist() == pytest.approx(expect, rel=1e-5)
        p.grad = None


def test_variant_must_agree_with_a_given_config(data):
    cfg = model_config_for(data, "baseline", width=16)
    with pytest.raises(ValueError, match="contradicts config.variant='baseline'"):
        train(data, cfg, _tc(epochs=1), variant="full")  # was silently ignored: the config decided
    assert train(data, cfg, _tc(epochs=1), variant="baseline").model.config.variant == "baseline"
    assert train(data, None, _tc(epochs=1), variant="baseline").model.config.variant == "baseline"


def test_dynamics_probe_leaves_the_run_unchanged(data):
    cfg = model_config_for(data, "full", width=16)
    a = train(data, cfg, _tc(dynamics=True))
    b = train(data, cfg, _tc(dynamics=False))
    assert _weights_equal(a, b)
    assert [h["loss_total"] for h in a.history] == [h["loss_total"] for h in b.history]
    dyn = a.history[-1]["dynamics"]
    assert set(dyn["grad"]) == {"heads", "encoders"}
    assert set(dyn["grad"]["heads"]) == {"class", "cen", "aac", "csr"}
    assert dyn["grad"]["heads"]["class"]["cos_ce"] == 1.0
    assert all(-1.0 <= v["cos_ce"] <= 1.0 and v["norm"] >= 0 for v in dyn["grad"]["encoders"].values())
    assert all(0.0 <= t <= 180.0 for t in dyn["theta_deg"].values())
    assert "dynamics" not in b.history[-1]


def test_baseline_dynamics_have_no_heads(data):
    res = train(data, model_config_for(data, "baseline", width=16), _tc(epochs=1))
    dyn = res.history[0]["dynamics"]
    assert set(dyn["grad"]) == {"encoders"} and set(dyn["grad"]["encoders"]) == {"class"}
    assert "theta_deg" not in dyn


def test_clip_modes_change_the_update(data):
    # large auxiliary weights make the summed gradient large, so clipping is active
    cfg = model_config_for(data, "full", width=16, lambda_cen=5.0)
    runs = {
        m: train(data, cfg, _tc(epochs=2, clip_mode=m, grad_clip=0.5))
        for m in ("total", "ce", "per_term", "off")
    }
    assert runs["total"].history[0]["clip_factor"] < 1.0
    assert runs["off"].history[0]["clip_factor"] == 1.0
    for m in ("ce", "per_term", "off"):
        assert not _weights_equal(runs["total"], runs[m]), m
    assert not _weights_equal(runs["ce"], runs["per_term"])


def test_clip_mode_ce_with_one_term_equals_total(data):
    # baseline has CE alone: clipping CE's gradient is clipping the total
    cfg = model_config_for(data, "baseline", width=16)
    a = train(data, cfg, _tc(epochs=2, clip_mode="total", grad_clip=0.05))
    b = train(data, cfg, _tc(epochs=2, clip_mode="ce", grad_clip=0.05))
    for v, w in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.allclose(v, w, atol=1e-5)


def test_warmup_switches_the_auxiliary_terms_off_at_first(data):
    cfg = model_config_for(data, "full", width=16)
    res = train(data, cfg, _tc(epochs=3, warmup_epochs=2))
    first, second, third = res.history
    assert first["aux_scale"] == 0.0 and second["aux_scale"] == 0.5 and third["aux_scale"] == 1.0
    assert first["loss_total"] == pytest.approx(first["loss_class"], abs=1e-12)  # 0 x every auxiliary term
    assert third["loss_total"] > third["loss_class"] + 0.5 * third["loss_cen"]


def test_patience_counts_after_warmup(data):
    cfg = model_config_for(data, "baseline", width=8)
    # lr 0: validation never improves after epoch 1; patience 1 stops at epoch 2 unless the warm-up holds it
    plain = train(data, cfg, _tc(epochs=8, patience=1, lr=0.0, warmup_epochs=3))
    held = train(data, cfg, _tc(epochs=8, patience=1, lr=0.0, warmup_epochs=3, patience_after_warmup=True))
    assert len(plain.history) == 2
    assert len(held.history) == 4  # epochs 2-3 are in the warm-up; epoch 4 is the first bad one


def test_cosine_schedule_and_select_last(data):
    cfg = model_config_for(data, "full", width=16)
    res = train(data, cfg, _tc(epochs=4, lr=1e-2, lr_schedule="cosine", select="last", patience=1))
    assert [h["lr"] for h in res.history] == pytest.approx(
        [1e-2 * lr_factor_at(e, 4, "cosine") for e in (1, 2, 3, 4)]
    )
    assert len(res.history) == 4 and res.best_epoch == 4  # never stops early, keeps the last epoch
    assert res.best_valid["weighted_f1"] == res.history[-1]["valid_weighted_f1"]


def test_tau_and_delta_change_their_losses(data):
    from _tiny import tiny_model

    from aofl.data.conversation import collate

    batch = collate(data.split("train")[:4], list(data.modalities))
    vals = {}
    for tau, delta in ((0.1, 0.1), (0.5, 0.1), (0.1, 0.3)):
        model = tiny_model(data, tau=tau, delta=delta)
        _, parts = model.loss_terms(model(batch), batch)
        vals[(tau, delta)] = parts
    assert vals[(0.1, 0.1)]["cen"] != vals[(0.5, 0.1)]["cen"]
    assert vals[(0.1, 0.1)]["csr"] == vals[(0.5, 0.1)]["csr"]
    assert vals[(0.1, 0.3)]["csr"] >= vals[(0.1, 0.1)]["csr"]
    assert vals[(0.1, 0.3)]["cen"] == vals[(0.1, 0.1)]["cen"]


def test_unknown_options_are_refused(data):
    cfg = model_config_for(data, "full", width=8)
    for kw in (
        {"clip_mode": "half"},
        {"lr_schedule": "step"},
        {"select": "best_test"},
        {"warmup_epochs": -1},
    ):
        with pytest.raises(ValueError):
            train(data, cfg, _tc(epochs=1, **kw))


def test_loss_is_the_sum_of_its_terms(data):
    from _tiny import tiny_model

    from aofl.data.conversation import collate

    model = tiny_model(data)
    batch = collate(data.split("train")[:4], list(data.modalities))
    out = model(batch)
    total, parts = model.loss(out, batch, aux_scale=0.5)
    terms, logged = model.loss_terms(out, batch, aux_scale=0.5)
    assert total.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-6)
    assert terms["cen"].item() == pytest.approx(0.5 * model.config.lambda_cen * logged["cen"], rel=1e-6)
    assert math.isfinite(parts["total"])


def test_a_diverging_run_stops_with_finite_weights(data, monkeypatch):
    from aofl import losses

    real, calls = losses.class_loss, {"n": 0}

    def nan_after_six(
        *a, **kw
    ):  # non-finite from the 7th call on (training steps and the dynamics probe), in epoch 2
        calls["n"] += 1
        out = real(*a, **kw)
        return out * float("nan") if calls["n"] > 6 else out

    monkeypatch.setattr(losses, "class_loss", nan_after_six)
    cfg = model_config_for(data, "full", width=16)
    res = train(data, cfg, _tc(epochs=6, clip_mode="off", patience=10))
    assert [h.get("diverged", False) for h in res.history] == [False, True]
    assert all(torch.isfinite(v).all() for v in res.model.state_dict().values() if v.is_floating_point())
