"""Does this checkpoint fit this dataset? One implementation for CLI, app and library.

`check_compatible` compares a checkpoint's metadata with a dataset (name, labels, modalities and
their dimensions, class count) and raises `IncompatibleCheckpointError` naming what differs; a
different data version (fingerprint) is only a warning, returned.
"""

from __future__ import annotations

from .data.conversation import ConversationSet, DataError
from .errors import CheckpointError

__all__ = ["IncompatibleCheckpointError", "check_compatible"]


class IncompatibleCheckpointError(CheckpointError, DataError):
    """A checkpoint used with data it was not trained for (other dataset, labels or features)."""


def check_compatible(
    meta: dict, dataset: ConversationSet, source=None, fingerprint: str | None = None
) -> list[str]:
    """Raise IncompatibleCheckpointError when the checkpoint cannot run on `dataset`; return warnings.

    meta: a checkpoint's metadata (`read_metadata`), or {"config": model.config.to_dict()}.
    source: how to name the checkpoint in messages (default its recorded path).
    fingerprint: the dataset's fingerprint if already known (it hashes every id, label and transcript).
    """
    name = source or meta.get("path") or "the checkpoint"
    data = _dict(meta.get("data"))
    trained_on = data.get("name")
    if trained_on and trained_on != dataset.name:
        raise IncompatibleCheckpointError(
            f"checkpoint {name} was trained on {trained_on!r}, not {dataset.name!r}: use it with --data "
            f"{trained_on} (or select {trained_on!r}), or pick a checkpoint trained on {dataset.name!r}"
        )
    config = _dict(meta.get("config"))
    modalities = [str(m) for m in _list(config.get("modalities"))]
    dims = _dict(config.get("modality_dims")) or _dict(meta.get("modality_dims"))
    have = dataset.modality_dims
    missing = [m for m in modalities if m not in have]
    if missing:
        raise IncompatibleCheckpointError(
            f"checkpoint {name} expects modalities {modalities} but dataset {dataset.name} has "
            f"{dataset.modalities}: pick the checkpoint trained on {dataset.name}"
        )
    wrong = {m: (dims[m], have[m]) for m in modalities if m in dims and dims[m] != have[m]}
    if wrong:
        raise IncompatibleCheckpointError(
            f"modality dimensions differ (checkpoint, data): {wrong}; checkpoint {name} was trained on other "
            f"features than dataset {dataset.name}"
        )
    labels = _list(meta.get("label_names")) or _list(config.get("label_names"))
    if labels and labels != list(dataset.label_names):
        raise IncompatibleCheckpointError(
            f"checkpoint {name} predicts the labels {labels}, dataset {dataset.name} has "
            f"{list(dataset.label_names)}: the class indices would mean different emotions"
        )
    n_classes = config.get("num_classes")
    if n_classes is not None and n_classes != dataset.num_classes:
        raise IncompatibleCheckpointError(
            f"checkpoint {name} predicts {n_classes} classes, dataset {dataset.name} has {dataset.num_classes}"
        )
    warnings = []
    recorded = data.get("fingerprint")
    if recorded:
        current = fingerprint or dataset.fingerprint()
        if recorded != current:
            warnings.append(
                f"checkpoint {name} was trained on a different version of {dataset.name!r} (data "
                f"fingerprint {recorded} vs {current}): numbers may not match its manifest"
            )
    return warnings


def _dict(x) -> dict:  # metadata is JSON from a file: tolerate any shape, compare what is there
    return x if isinstance(x, dict) else {}


def _list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else []
