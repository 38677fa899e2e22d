"""Is this data usable? The checks of what the loaders read from files: every split present and
non-empty, no empty dialogue, finite features, labels inside the label set."""

from __future__ import annotations

import numpy as np

from .conversation import ConversationSet, DataError

__all__ = ["validate_dataset", "REQUIRED_SPLITS"]

REQUIRED_SPLITS = ("train", "valid", "test")


def validate_dataset(dataset: ConversationSet, source=None, splits=REQUIRED_SPLITS) -> ConversationSet:
    """Check what a loader built from files; DataError naming the file, the dialogue and the problem."""
    where = source or dataset.meta.get("source") or dataset.name
    for split in splits:
        if not dataset.splits.get(split):
            raise DataError(
                f"{where}: split {split!r} is empty or missing (splits found: "
                f"{ {s: len(d) for s, d in dataset.splits.items()} })"
            )
    n_classes = dataset.num_classes
    for split, dialogues in dataset.splits.items():
        for d in dialogues:
            if len(d) == 0:
                raise DataError(f"{where}: dialogue {d.dialogue_id} of split {split} has no utterances")
            bad = d.labels[(d.labels < -1) | (d.labels >= n_classes)]
            if bad.size:
                raise DataError(
                    f"{where}: dialogue {d.dialogue_id} has label {int(bad[0])}, expected -1 "
                    f"(unlabelled) or 0..{n_classes - 1} ({', '.join(dataset.label_names)})"
                )
            for m, x in d.features.items():
                if not np.isfinite(x).all():
                    rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
                    raise DataError(
                        f"{where}: modality {m!r} of dialogue {d.dialogue_id} has NaN or Inf "
                        f"features (utterances {rows[:5].tolist()}); expected finite numbers"
                    )
    return dataset
