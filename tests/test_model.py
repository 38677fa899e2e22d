import numpy as np
import pytest
import torch

from aofl.data import collate
from aofl.model import AOFL, AOFLConfig, VARIANTS

from _tiny import tiny_dataset, tiny_model


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_runs_forward_and_backward(ds, variant):
    model = tiny_model(ds, variant).train()
    batch = collate(ds.split("train")[:4], model.modalities)
    out = model(batch)
    assert out["logits"].shape == (*batch.mask.shape, ds.num_classes)
    loss, parts = model.loss(out, batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    assert ("shared" in out) == (variant != "baseline")
    if variant == "full":
        assert {"class", "cen", "aac", "csr"} <= set(parts)
    if variant == "orthogonal":
        assert {"orthogonal", "reconstruction"} <= set(parts)


@pytest.mark.parametrize("variant", ["full", "baseline", "no_opr"])
@pytest.mark.parametrize("context", ["gru", "transformer"])
def test_padding_changes_nothing(ds, variant, context):
    """A dialogue's outputs are the same alone or padded next to a longer dialogue."""
    model = tiny_model(ds, variant, context=context, fusion=context)
    dialogues = sorted(ds.split("train"), key=len)
    short, long_ = dialogues[0], dialogues[-1]
    assert len(short) < len(long_)
    with torch.no_grad():
        alone = model(collate([short], model.modalities))
        padded = model(collate([short, long_], model.modalities))
    n = len(short)
    assert torch.allclose(alone["logits"][0, :n], padded["logits"][0, :n], atol=1e-5)
    if "shared" in alone:
        for m in model.modalities:
            # the split's outputs are the valid turns in order: the short dialogue's come first
            assert torch.allclose(alone["refined_shared"][m][:n], padded["refined_shared"][m][:n], atol=1e-5)


def test_padding_does_not_change_loss(ds):
    model = tiny_model(ds, "full")
    dialogues = ds.split("train")[:3]
    with torch.no_grad():
        b1 = collate(dialogues, model.modalities)
        l1, _ = model.loss(model(b1), b1)
        # the same dialogues plus a padding-only tail: pad every dialogue to a longer length
        b2 = collate(dialogues, model.modalities)
        extra = 5
        for m in b2.features:
            b2.features[m] = torch.cat([b2.features[m], torch.randn(b2.features[m].shape[0], extra, b2.features[m].shape[2])], 1)
        b2.mask = torch.cat([b2.mask, torch.zeros(b2.mask.shape[0], extra, dtype=torch.bool)], 1)
        b2.labels = torch.cat([b2.labels, torch.full((b2.labels.shape[0], extra), -1)], 1)
        b2.speakers = torch.cat([b2.speakers, torch.zeros(b2.speakers.shape[0], extra, dtype=torch.long)], 1)
        l2, _ = model.loss(model(b2), b2)
    assert float(l1) == pytest.approx(float(l2), rel=1e-5)


def test_two_modalities_and_four_modalities_work():
    from aofl.data import make_synthetic
    for dims in ({"a": 6, "b": 7}, {"a": 6, "b": 7, "c": 5, "d": 9}):
        ds = make_synthetic(n_dialogues=6, dims=dims, turns=(3, 6))
        model = tiny_model(ds, "full")
        batch = collate(ds.split("train"), model.modalities)
        loss, _ = model.loss(model(batch), batch)
        assert torch.isfinite(loss)


def test_alpha_init_is_config_value_and_not_90(ds):
    model = tiny_model(ds, "full", alpha_init_deg=30.0)
    assert torch.rad2deg(model.alpha()).tolist() == pytest.approx([30.0] * 3, abs=1e-4)
    assert AOFLConfig.__dataclass_fields__["alpha_init_deg"].default != 90.0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown variant"):
        AOFLConfig(["a", "b"], {"a": 1, "b": 1}, 2, variant="nope")
    with pytest.raises(ValueError, match="at least two modalities"):
        AOFLConfig(["a"], {"a": 1}, 2)
    with pytest.raises(ValueError, match="unknown config keys"):
        AOFLConfig.from_dict({"modalities": ["a", "b"], "modality_dims": {"a": 1, "b": 1}, "num_classes": 2, "bogus": 1})


def test_opr_specific_is_orthogonal_to_shared(ds):
    model = tiny_model(ds, "full")
    with torch.no_grad():
        out = model(collate(ds.split("train")[:2], model.modalities))
    for m in model.modalities:
        g, h = out["shared"][m], out["refined_specific"][m]
        cos = (g * h).sum(-1) / (g.norm(dim=-1) * h.norm(dim=-1) + 1e-9)
        assert cos.abs().max() < 1e-3


def test_eval_attention_matches_multihead_attention():
    """OPR's eval path (fused QKV + SDPA) computes what nn.MultiheadAttention computes."""
    from aofl.model import ContextAttention
    torch.manual_seed(0)
    att = ContextAttention(32, dropout=0.3).eval()
    g = torch.randn(3, 7, 32)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] + [False] * 6])
    with torch.no_grad():
        fast = att(g, mask)
        q = att.norm(g)
        ref = att.attn(q, q, q, key_padding_mask=~mask, need_weights=False)[0] * mask.unsqueeze(-1)
    torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-5)
    assert (fast[~mask] == 0).all()


def test_stacked_split_equals_each_modality_module(ds):
    """The batched heads and OPR compute what each modality's own modules compute."""
    model = tiny_model(ds, "full")
    batch = collate(ds.split("train")[:3], model.modalities)
    with torch.no_grad():
        out = model(batch)
        mask = batch.mask
        for m in model.modalities:
            ctx = out["context"][m][mask]  # [N, w], the valid turns in order
            g = model.shared_head[m](ctx)
            h = model.specific_head[m](ctx)
            torch.testing.assert_close(out["shared"][m], g, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out["specific"][m], h, atol=1e-5, rtol=1e-5)
            padded = torch.zeros(*mask.shape, g.shape[-1])
            padded[mask] = g
            q = model.refine[m].norm(padded)
            att = model.refine[m].attn(q, q, q, key_padding_mask=~mask, need_weights=False)[0]
            torch.testing.assert_close(out["refined_shared"][m], g + att[mask], atol=1e-5, rtol=1e-5)
        assert out["rows"].tolist() == mask.reshape(-1).nonzero().squeeze(1).tolist()


def test_dropout_keeps_the_mean_and_drops_p():
    from aofl.model import Dropout
    torch.manual_seed(0)
    x = torch.ones(200_000)
    d = Dropout(0.3).train()
    y = d(x)
    assert float((y == 0).float().mean()) == pytest.approx(0.3, abs=0.01)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.02)
    assert torch.equal(d.eval()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))
