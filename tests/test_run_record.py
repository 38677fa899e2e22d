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
