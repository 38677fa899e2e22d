"""A training run as stored: its checkpoint and the metadata that says what it is.

`run_metadata` and `trained_metadata` are the one place that assembles what a run records: variant,
seed, the data it saw (name, fingerprint, views, split sizes), the recipe, the command, and, once
trained, its metrics, history and training config. The registry, compatibility checks and the app read these keys back.
`save_run` writes the checkpoint with them; `python -m aofl train`, bench and tests call it.
The training result is taken as it comes (aofl.train.TrainResult): training sits above this layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import save_checkpoint

__all__ = ["run_metadata", "trained_metadata", "save_run"]


def run_metadata(
    dataset,
    variant: str,
    seed: int = 0,
    *,
    data_seed: int = 0,
    recipe: dict | None = None,
    command: str | None = None,
) -> dict:
    """What a run of `variant` on `dataset` (a ConversationSet) is, before it trains: computed once
    per run (the data fingerprint hashes every feature), then extended by `trained_metadata`."""
    meta: dict[str, Any] = {
        "variant": variant,
        "seed": seed,
        "label_names": list(dataset.label_names),
        "modality_dims": dataset.modality_dims,
    }
    if recipe is not None:
        meta["recipe"] = recipe
    meta["data"] = {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint(),
        "seed": data_seed,
        "views": list(dataset.modalities),
        "sizes": {s: dataset.num_utterances(s) for s in dataset.splits},
    }
    if command is not None:
        meta["command"] = command
    return meta


def trained_metadata(base: dict, result: Any, metrics: dict | None = None) -> dict:
    """`base` (`run_metadata`) with what training gave (`result`: a TrainResult): the metrics (default
    the best valid ones, while the test split is not yet scored), history, best epoch, config, time."""
    meta = {
        **base,
        "metrics": metrics if metrics is not None else {"valid": result.best_valid},
        "history": result.history,
        "best_epoch": result.best_epoch,
        "train_config": result.train_config,
        "train_seconds": round(result.seconds, 2),
    }
    if result.resumed_at:
        meta["resumed_at_epochs"] = result.resumed_at
    return meta


def save_run(out, model, metadata: dict, *, in_progress: bool = False, half: bool = False) -> Path:
    """Write OUT/model.safetensors (or the .safetensors path given) with `metadata` (`run_metadata`);
    in_progress marks the best model so far of a run still training."""
    if in_progress:
        metadata = {**metadata, "in_progress": True}
    return save_checkpoint(Path(out), model, metadata, half=half)
