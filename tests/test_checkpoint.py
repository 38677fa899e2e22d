import json
import os
import pickle
import zipfile

import pytest
import torch

from aofl.io.checkpoint import (CheckpointError, load_checkpoint, load_foreign_state_dict, load_state_dict_into,
                             read_metadata, save_checkpoint)
from aofl.data import collate
from aofl.inference import run_inference

from _tiny import tiny_dataset, tiny_model


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
