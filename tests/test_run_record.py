"""One writer of a run's checkpoint and metadata (aofl.store.run_record), used by `train`, bench and tests."""

import torch
from _tiny import tiny_dataset, tiny_model

from aofl.store.checkpoint import load_checkpoint, read_metadata
from aofl.store.registry import checkpoint_dataset
from aofl.store.run_record import run_metadata, save_run, trained_metadata
from aofl.train import TrainResult


def test_a_run_records_its_data_recipe_and_command(tmp_path):
    data = tiny_dataset(n_dialogues=8)
    base = run_metadata(data, "full", 3, data_seed=5, recipe={"name": "r"}, command="python -m aofl train")
    assert list(base) == ["variant", "seed", "label_names", "modality_dims", "recipe", "data", "command"]
    assert base["data"]["fingerprint"] == data.fingerprint() and base["data"]["seed"] == 5
    assert base["data"]["sizes"] == {s: data.num_utterances(s) for s in data.splits}
    path = save_run(tmp_path / "run", tiny_model(data), base)
    meta = read_metadata(path)
    assert {k: meta[k] for k in base} == base
    assert checkpoint_dataset(meta) == data.name


def test_a_trained_run_adds_its_result_and_a_killed_one_says_it_is_in_progress(tmp_path):
    data = tiny_dataset(n_dialogues=8)
    model = tiny_model(data)
    result = TrainResult(
        model=model, history=[{"epoch": 1}], best_epoch=1, best_valid={"weighted_f1": 0.5}, seconds=1.234
    )
    result.resumed_at = [1]
    base = run_metadata(data, "full")
    so_far = trained_metadata(base, result)
    assert so_far["metrics"] == {"valid": {"weighted_f1": 0.5}} and so_far["train_seconds"] == 1.23
    assert so_far["resumed_at_epochs"] == [1]
    meta = read_metadata(save_run(tmp_path / "a", model, so_far, in_progress=True))
    assert meta["in_progress"] is True and "in_progress" not in so_far
    final = trained_metadata(base, result, {"test": {"weighted_f1": 0.4}})
    path = save_run(tmp_path / "b", model, final, half=True)
    loaded, meta = load_checkpoint(path)
    assert "in_progress" not in meta and meta["metrics"]["test"] == {"weighted_f1": 0.4}
    assert meta["dtype"] == "float16" and isinstance(loaded, torch.nn.Module)


def test_the_manifest_writer_lists_a_saved_run_for_the_registry(tmp_path):
    from aofl.store.registry import list_checkpoints, manifest_entry, write_manifest

    data = tiny_dataset(n_dialogues=8)
    path = save_run(tmp_path / "tiny" / "full", tiny_model(data), run_metadata(data, "full", 2, command="c"))
    entry = manifest_entry(tmp_path, path, read_metadata(path), metrics={"weighted_f1": 0.5}, command="c")
    assert list(entry) == ["name", "dataset", "variant", "seed", "file", "sha256", "metrics", "command"]
    assert entry["name"] == f"{data.name}-full-seed2" and entry["file"] == "tiny/full/model.safetensors"
    write_manifest(tmp_path, [entry])
    (listed,) = list_checkpoints(data.name, tmp_path)
    assert (listed.name, listed.seed, listed.sha256, listed.path) == (entry["name"], 2, entry["sha256"], path)


def test_the_shipped_manifest_is_what_the_writer_makes_of_the_shipped_files():
    """tools/build_manifest.py writes its entries with manifest_entry: the entries it would write for the
    shipped checkpoints (the measured metrics aside) are the shipped MANIFEST.json's, key order included."""
    import json
    from pathlib import Path

    import pytest

    from aofl.store.registry import manifest_entry

    ck = Path(__file__).resolve().parents[1] / "checkpoints"
    if not (ck / "MANIFEST.json").is_file():
        pytest.skip("no shipped checkpoints in this checkout")
    shipped = {e["file"]: e for e in json.loads((ck / "MANIFEST.json").read_text())}
    for path in sorted(ck.glob("*/*/model.safetensors")):
        meta = read_metadata(path)
        old = shipped[str(path.relative_to(ck))]
        measured = {k: old[k] for k in ("metrics", "disentanglement") if k in old}
        new = manifest_entry(
            ck, path, meta, metrics=measured["metrics"], command=meta["command"], dtype=meta.get("dtype"),
            bytes=path.stat().st_size,
        )  # fmt: skip
        if "disentanglement" in measured:
            new["disentanglement"] = measured["disentanglement"]
        assert json.dumps(new) == json.dumps(old), path
