import pytest
import torch
from _tiny import tiny_dataset, tiny_model

from aofl.data import collate
from aofl.model import AOFL, VARIANTS, AOFLConfig


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
            b2.features[m] = torch.cat(
                [b2.features[m], torch.randn(b2.features[m].shape[0], extra, b2.features[m].shape[2])], 1
            )
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
        AOFLConfig.from_dict(
            {"modalities": ["a", "b"], "modality_dims": {"a": 1, "b": 1}, "num_classes": 2, "bogus": 1}
        )


def test_opr_specific_is_orthogonal_to_shared(ds):
    model = tiny_model(ds, "full")
    with torch.no_grad():
        out = model(collate(ds.split("train")[:2], model.modalities))
    for m in model.modalities:
        g, h = out["shared"][m], out["refined_specific"][m]
        cos = (g * h).sum(-1) / (g.norm(dim=-1) * h.norm(dim=-1) + 1e-9)
        assert cos.abs().max() < 1e-3


def _model(ds, variant, fast, **kw):
    """`tiny_model` on the fast or the plain code path."""
    from aofl.train import model_config_for

    torch.manual_seed(0)
    return AOFL(model_config_for(ds, variant, width=16, **kw), fast=fast).eval()


def _torch_attention(att, k, width):
    """LayerNorm + nn.MultiheadAttention holding modality k's weights of `att` (ContextAttention)."""
    norm = torch.nn.LayerNorm(width)
    mha = torch.nn.MultiheadAttention(width, att.heads, batch_first=True)
    with torch.no_grad():
        norm.weight.copy_(att.norm_weight[k])
        norm.bias.copy_(att.norm_bias[k])
        mha.in_proj_weight.copy_(att.in_proj_weight[k])
        mha.in_proj_bias.copy_(att.in_proj_bias[k])
        mha.out_proj.weight.copy_(att.out_proj_weight[k])
        mha.out_proj.bias.copy_(att.out_proj_bias[k])
    return lambda g, mask: mha(norm(g), norm(g), norm(g), key_padding_mask=~mask, need_weights=False)[0]


def test_opr_attention_matches_multihead_attention():
    """OPR's attention, on both paths, computes what LayerNorm + nn.MultiheadAttention compute with
    the same weights (modality k's slices of the stacked parameters)."""
    from aofl.model import ContextAttention

    torch.manual_seed(0)
    att = ContextAttention(2, 32, dropout=0.0)
    with torch.no_grad():  # every parameter away from its initial value (zero biases, unit norm)
        for p in att.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.randn(2, 3, 7, 32)  # [M, B, T, w]
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3, [True] + [False] * 6])
    rows = mask.reshape(-1).nonzero().squeeze(1)
    with torch.no_grad():
        stacked = att.train().forward_stacked(g.reshape(2, -1, 32)[:, rows], rows, mask)  # [M, N, w]
        for k in range(2):
            ref = _torch_attention(att, k, 32)(g[k], mask)
            one = att.eval().forward_one(k, g[k], mask)
            torch.testing.assert_close(one[mask], ref[mask], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(stacked[k], ref[mask], atol=1e-6, rtol=1e-5)


def _torch_head(mlp, k, width):
    """nn.Sequential(Linear, GELU, Linear) holding modality k's weights of `mlp` (StackedMLP)."""
    seq = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, width))
    with torch.no_grad():
        for layer, w, b in ((seq[0], mlp.w1, mlp.b1), (seq[2], mlp.w2, mlp.b2)):
            layer.weight.copy_(w[k])
            layer.bias.copy_(b[k])
    return seq


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_split_equals_each_modality_in_torch_modules(ds, fast, train):
    """The heads and OPR compute, per modality, what torch's own modules compute with its weights."""
    model = _model(ds, "full", fast, dropout=0.0).train(train)
    batch = collate(ds.split("train")[:3], model.modalities)
    w = model.config.width
    with torch.no_grad():
        out = model(batch)
        mask = batch.mask
        for k, m in enumerate(model.modalities):
            ctx = out["context"][m][mask]  # [N, w], the valid turns in order
            g = _torch_head(model.shared_head, k, w)(ctx)
            h = _torch_head(model.specific_head, k, w)(ctx)
            torch.testing.assert_close(out["shared"][m], g, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out["specific"][m], h, atol=1e-5, rtol=1e-5)
            padded = torch.zeros(*mask.shape, w)
            padded[mask] = g
            att = _torch_attention(model.refine, k, w)(padded, mask)
            torch.testing.assert_close(out["refined_shared"][m], g + att[mask], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out["stacked"]["shared"][k], out["shared"][m])
        assert out["rows"].tolist() == mask.reshape(-1).nonzero().squeeze(1).tolist()


@pytest.mark.parametrize("variant", ["full", "no_opr", "orthogonal", "baseline"])
@pytest.mark.parametrize("train", [True, False])
def test_fast_and_plain_paths_agree(ds, variant, train):
    """Same weights, both code paths: the same outputs, losses and gradients (dropout 0 in training)."""
    fast = _model(ds, variant, True, dropout=0.0).train(train)
    plain = _model(ds, variant, False, dropout=0.0).train(train)
    assert (fast.fast, plain.fast) == (True, False)
    plain.load_state_dict(fast.state_dict())
    batch = collate(ds.split("train")[:4], fast.modalities)
    outs, losses, grads = [], [], []
    for model in (fast, plain):
        out = model(batch)
        loss, parts = model.loss(out, batch)
        loss.backward()
        outs.append(out)
        losses.append(parts)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    a, b = outs
    assert a.keys() == b.keys()
    torch.testing.assert_close(a["logits"], b["logits"], atol=1e-5, rtol=1e-5)
    for key in ("shared", "specific", "refined_shared", "refined_specific"):
        for m in fast.modalities if key in a else []:
            torch.testing.assert_close(a[key][m], b[key][m], atol=1e-5, rtol=1e-5)
    assert losses[0].keys() == losses[1].keys()
    for term in losses[0]:
        assert losses[0][term] == pytest.approx(losses[1][term], abs=1e-5, rel=1e-5), term
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fast", [True, False])
def test_forward_has_the_same_keys_in_training_and_inference(ds, fast):
    model = _model(ds, "full", fast)
    batch = collate(ds.split("train")[:2], model.modalities)
    train_out = model.train()(batch)
    with torch.no_grad():
        eval_out = model.eval()(batch)
    keys = {
        "context",
        "rows",
        "shared",
        "specific",
        "refined_shared",
        "refined_specific",
        "stacked",
        "logits",
    }
    assert set(train_out) == set(eval_out) == keys
    n = int(batch.mask.sum())
    for out in (train_out, eval_out):
        assert set(out["stacked"]) == {"shared", "specific"}
        shape = (3, n, model.config.width)
        assert out["stacked"]["shared"].shape == out["stacked"]["specific"].shape == shape


def test_fast_path_switch_reads_the_environment(ds, monkeypatch):
    cfg = tiny_model(ds).config
    monkeypatch.delenv("AOFL_FAST_PATH", raising=False)
    assert AOFL(cfg).fast
    monkeypatch.setenv("AOFL_FAST_PATH", "0")
    assert not AOFL(cfg).fast
    assert AOFL(cfg, fast=True).fast  # an explicit argument wins
    monkeypatch.setenv("AOFL_FAST_PATH", "1")
    assert AOFL(cfg).fast and not AOFL(cfg, fast=False).fast


def test_fast_path_off_runs_the_per_modality_path(ds, monkeypatch):
    """With AOFL_FAST_PATH=0 a training forward never reaches the batched kernels."""
    from aofl import model as model_module

    monkeypatch.setenv("AOFL_FAST_PATH", "0")
    model = tiny_model(ds, "full").train()
    assert not model.fast
    calls = []
    real = model_module.split_stacked
    monkeypatch.setattr(model_module, "split_stacked", lambda *a: calls.append(1) or real(*a))
    batch = collate(ds.split("train")[:2], model.modalities)
    model(batch)
    assert calls == []
    model.fast = True
    model(batch)
    assert calls == [1]


def _old_layout(model):
    """`model`'s state dict in the per-modality layout of checkpoints written before the heads and
    OPR held stacked weights (nn.Sequential heads, LayerNorm + nn.MultiheadAttention per modality)."""
    state = model.state_dict()
    old = {k: v for k, v in state.items() if not k.startswith(("shared_head.", "specific_head.", "refine."))}
    for k, m in enumerate(model.modalities):
        for head in ("shared_head", "specific_head") if "shared_head.w1" in state else ():
            old[f"{head}.{m}.0.weight"] = state[f"{head}.w1"][k].clone()
            old[f"{head}.{m}.0.bias"] = state[f"{head}.b1"][k].clone()
            old[f"{head}.{m}.3.weight"] = state[f"{head}.w2"][k].clone()
            old[f"{head}.{m}.3.bias"] = state[f"{head}.b2"][k].clone()
        if "refine.in_proj_weight" in state:
            old[f"refine.{m}.norm.weight"] = state["refine.norm_weight"][k].clone()
            old[f"refine.{m}.norm.bias"] = state["refine.norm_bias"][k].clone()
            old[f"refine.{m}.attn.in_proj_weight"] = state["refine.in_proj_weight"][k].clone()
            old[f"refine.{m}.attn.in_proj_bias"] = state["refine.in_proj_bias"][k].clone()
            old[f"refine.{m}.attn.out_proj.weight"] = state["refine.out_proj_weight"][k].clone()
            old[f"refine.{m}.attn.out_proj.bias"] = state["refine.out_proj_bias"][k].clone()
    return old


@pytest.mark.parametrize("variant", ["full", "no_opr", "orthogonal", "baseline"])
def test_convert_state_dict_loads_the_old_layout(ds, variant):
    from aofl.model import convert_state_dict

    model = tiny_model(ds, variant)
    with torch.no_grad():  # non-trivial values everywhere (zero biases would hide a wrong mapping)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    old = _old_layout(model)
    if variant != "baseline":
        assert "shared_head.audio.0.weight" in old and "shared_head.w1" not in old
    fresh = tiny_model(ds, variant, seed=1)
    fresh.load_state_dict(convert_state_dict(old, model.config), strict=True)
    batch = collate(ds.split("train")[:3], model.modalities)
    with torch.no_grad():
        assert torch.equal(fresh(batch)["logits"], model(batch)["logits"])
    # the current layout passes through unchanged
    now = model.state_dict()
    converted = convert_state_dict(now, model.config)
    assert converted.keys() == now.keys() and all(converted[k] is now[k] for k in now)


def test_convert_state_dict_leaves_incomplete_old_keys(ds):
    """Old keys missing for some modality stay as they are, for strict loading to name them."""
    from aofl.model import convert_state_dict

    model = tiny_model(ds, "full")
    old = _old_layout(model)
    del old["shared_head.text.0.weight"]
    converted = convert_state_dict(old, model.config)
    assert "shared_head.w1" not in converted and "shared_head.audio.0.weight" in converted
    assert "shared_head.b1" in converted and "refine.in_proj_weight" in converted


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
