import json
import os
import pickle

import pytest
import torch
from _tiny import tiny_dataset, tiny_model

from aofl.data import collate
from aofl.inference import run_inference
from aofl.store.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_foreign_state_dict,
    load_state_dict_into,
    read_metadata,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.mark.parametrize("variant", ["full", "baseline", "orthogonal"])
def test_round_trip_gives_identical_outputs(ds, tmp_path, variant):
    model = tiny_model(ds, variant)
    path = save_checkpoint(tmp_path / "ck", model, {"variant": variant, "seed": 3, "command": "x"})
    assert path.name == "model.safetensors"
    loaded, meta = load_checkpoint(tmp_path / "ck")
    assert meta["variant"] == variant and meta["seed"] == 3 and meta["config"]["variant"] == variant
    a = run_inference(model, ds, "test")
    b = run_inference(loaded, ds, "test")
    assert a.table.drop(columns=[]).equals(b.table)


def test_half_precision_keeps_predictions(ds, tmp_path):
    model = tiny_model(ds, "full")
    save_checkpoint(tmp_path / "h.safetensors", model, half=True)
    loaded, meta = load_checkpoint(tmp_path / "h.safetensors")
    assert meta["dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    a, b = run_inference(model, ds, "test").table, run_inference(loaded, ds, "test").table
    assert (a["prediction_id"] == b["prediction_id"]).mean() > 0.98


def test_atomic_write_leaves_no_temp_files(ds, tmp_path):
    save_checkpoint(tmp_path / "a.safetensors", tiny_model(ds))
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_clear_errors(ds, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="corrupt|not a readable"):
        load_checkpoint(bad)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="without AO-FL metadata"):
        read_metadata(tmp_path / "foreign.safetensors")
    good = save_checkpoint(tmp_path / "t.safetensors", tiny_model(ds))
    data = good.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "trunc.safetensors")


def test_foreign_state_dict_with_prefixes(ds, tmp_path):
    model = tiny_model(ds, "full")
    state = {f"module._orig_mod.{k}": v for k, v in model.state_dict().items()}
    state["module.extra_head.weight"] = torch.zeros(3)
    del state["module._orig_mod.fuse.bias"]
    torch.save({"state_dict": state}, tmp_path / "foreign.pt")
    loaded_state = load_foreign_state_dict(tmp_path / "foreign.pt")
    fresh = tiny_model(ds, "full", seed=1)
    report = load_state_dict_into(fresh, loaded_state)
    assert report["missing"] == ["fuse.bias"]
    assert report["unexpected"] == ["extra_head.weight"]
    assert torch.equal(fresh.fuse.weight, model.fuse.weight)


def test_pickled_module_is_refused_naming_globals(ds, tmp_path):
    torch.save(tiny_model(ds), tmp_path / "whole.pt")
    with pytest.raises(CheckpointError, match="aofl.model.AOFL"):
        load_foreign_state_dict(tmp_path / "whole.pt")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/aofl_ckpt_pwned",))


def test_unsafe_globals_refused_without_running(tmp_path):
    marker = "/tmp/aofl_ckpt_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    torch.save({"w": torch.zeros(2), "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="system"):
        load_foreign_state_dict(tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(CheckpointError, match="system"):
        load_foreign_state_dict(tmp_path / "evil.pkl")
    assert not os.path.exists(marker)


SHIPPED = os.path.join(
    os.path.dirname(__file__), "..", "checkpoints", "synthetic", "full", "model.safetensors"
)


def test_shipped_old_layout_checkpoint_loads_and_resaves_stacked(tmp_path):
    """The shipped checkpoints hold the former per-modality keys: they load through
    convert_state_dict, and a re-saved checkpoint holds the stacked layout with the same weights."""
    from safetensors import safe_open

    with safe_open(SHIPPED, framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    assert "shared_head.audio.0.weight" in stored and "refine.text.attn.in_proj_weight" in stored
    model, meta = load_checkpoint(SHIPPED)
    mods = model.modalities

    def stacked(old_key):
        return torch.stack([stored[old_key.format(m=m)] for m in mods]).float()

    assert torch.equal(model.shared_head.w1, stacked("shared_head.{m}.0.weight"))
    assert torch.equal(model.specific_head.b2, stacked("specific_head.{m}.3.bias"))
    assert torch.equal(model.refine.out_proj_weight, stacked("refine.{m}.attn.out_proj.weight"))
    assert torch.equal(model.refine.norm_bias, stacked("refine.{m}.norm.bias"))
    path = save_checkpoint(tmp_path / "new", model, {"variant": meta["variant"]}, half=True)
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert {"shared_head.w1", "specific_head.w2", "refine.in_proj_weight"} <= keys
    assert not any(k.startswith(("shared_head.audio", "refine.audio")) for k in keys)
    again, _ = load_checkpoint(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def _old_layout(state: dict, modalities: list[str]) -> dict:
    """A stacked-layout state dict in the former per-modality layout (the keys shipped checkpoints use)."""
    parts = {
        "w1": "0.weight",
        "b1": "0.bias",
        "w2": "3.weight",
        "b2": "3.bias",
        "norm_weight": "norm.weight",
        "norm_bias": "norm.bias",
        "in_proj_weight": "attn.in_proj_weight",
        "in_proj_bias": "attn.in_proj_bias",
        "out_proj_weight": "attn.out_proj.weight",
        "out_proj_bias": "attn.out_proj.bias",
    }
    out = {}
    for key, v in state.items():
        module, _, name = key.rpartition(".")
        if module in ("shared_head", "specific_head", "refine"):
            out.update({f"{module}.{m}.{parts[name]}": t.clone() for m, t in zip(modalities, v.unbind(0))})
        else:
            out[key] = v
    return out


def test_old_layout_checkpoint_gives_identical_outputs(ds, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_model(ds, "full")
    path = save_checkpoint(tmp_path / "ck", model, {"variant": "full"})
    with open(path, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    save_file(_old_layout(load_file(str(path)), model.modalities), str(path), metadata=header["__metadata__"])
    loaded, meta = load_checkpoint(path)
    assert meta["load_report"]["missing"] == meta["load_report"]["unexpected"] == []
    a, b = run_inference(model, ds, "test"), run_inference(loaded, ds, "test")
    assert a.table.equals(b.table)
    # a foreign state dict in the old layout, through load_state_dict_into
    fresh = tiny_model(ds, "full", seed=1)
    report = load_state_dict_into(fresh, _old_layout(model.state_dict(), model.modalities), strict=True)
    assert report["missing"] == report["unexpected"] == []
    assert torch.equal(fresh.refine.in_proj_weight, model.refine.in_proj_weight)


def test_old_layout_resume_state_is_converted(ds, tmp_path):
    """A resume state written before the stacked layout continues: weights, best weights and AdamW state."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from aofl.store.resume import load_state, save_state

    model = tiny_model(ds, "full").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = collate(ds.split("train")[:3], model.modalities)
    model.loss(model(batch), batch)[0].backward()
    opt.step()
    identity = {"model_config": model.config.to_dict(), "run": 1}
    path = save_state(
        tmp_path / "resume.safetensors",
        epoch=1,
        model=model,
        optimizer=opt,
        best_state=model.state_dict(),
        shuffle=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        progress={},
        identity=identity,
    )
    new = load_state(path, identity)
    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    old = {}
    for group in ("model", "best"):
        sub = {k.partition("/")[2]: v for k, v in tensors.items() if k.startswith(group + "/")}
        old.update({f"{group}/{k}": v for k, v in _old_layout(sub, model.modalities).items()})
    for key in ("exp_avg", "exp_avg_sq", "step"):
        sub = {
            k[len("optim/") : -len("/" + key)]: v
            for k, v in tensors.items()
            if k.startswith("optim/") and k.endswith("/" + key)
        }
        if key == "step":  # one count per parameter, also per modality before
            stacked = ("shared_head", "specific_head", "refine")
            sub = {
                k: v.expand(len(model.modalities)) if k.rpartition(".")[0] in stacked else v
                for k, v in sub.items()
            }
        for k, v in _old_layout(sub, model.modalities).items():
            old[f"optim/{k}/{key}"] = v.contiguous()
    old.update({k: v for k, v in tensors.items() if k.startswith("rng/")})
    save_file(old, str(path), metadata=metadata)
    converted = load_state(path, identity)
    assert converted.model.keys() == new.model.keys() and converted.best.keys() == new.best.keys()
    assert all(
        torch.equal(converted.model[k], new.model[k]) and torch.equal(converted.best[k], new.best[k])
        for k in new.model
    )
    assert converted.optimizer.keys() == new.optimizer.keys()
    for name, st in new.optimizer.items():
        assert st.keys() == converted.optimizer[name].keys()
        assert all(torch.equal(st[k], converted.optimizer[name][k]) for k in st), name


def test_convert_shapes_agrees_with_convert_state_dict():
    """The loader checks shapes with `convert_shapes`; it must give convert_state_dict's shapes."""
    from aofl.model import AOFL, convert_shapes, convert_state_dict

    model = tiny_model(tiny_dataset(), "full")
    state = model.state_dict()
    old = {}  # the former per-modality layout, rebuilt from the stacked one
    for k, v in state.items():
        head, _, name = k.partition(".")
        renames = {"w1": "0.weight", "b1": "0.bias", "w2": "3.weight", "b2": "3.bias"}
        if head in ("shared_head", "specific_head") and name in renames:
            for i, m in enumerate(model.modalities):
                old[f"{head}.{m}.{renames[name]}"] = v[i]
        else:
            old[k] = v
    want = {k: tuple(v.shape) for k, v in convert_state_dict(old, model.config).items()}
    assert convert_shapes({k: tuple(v.shape) for k, v in old.items()}, model.config) == want
    assert want == {k: tuple(v.shape) for k, v in state.items()}
    assert isinstance(model, AOFL)
    bad = dict(old)
    first = next(k for k in bad if k.startswith("shared_head.") and k.endswith(".0.weight"))
    bad[first] = bad[first][:1]
    with pytest.raises(ValueError, match="shapes differ"):
        convert_shapes({k: tuple(v.shape) for k, v in bad.items()}, model.config)


def test_loading_a_shipped_checkpoint_imports_no_compiler(tmp_path):
    """Checking an old-layout file's shapes must not run torch's Python references (stack on meta
    tensors imports torch._dynamo and sympy: +80 MB in every app process)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys; from aofl.store.checkpoint import load_checkpoint; "
        "load_checkpoint('checkpoints/synthetic/full'); "
        "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
