"""The canonical in-memory dataset: splits -> dialogues -> utterances.

Every source (synthetic, IEMOCAP/MELD text views, MultiEMO pickles) produces a
`ConversationSet`; the model, inference and the app only ever see this form.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import AOFLError

__all__ = [
    "Dialogue",
    "ConversationSet",
    "Batch",
    "collate",
    "DataError",
    "FINGERPRINT_DECIMALS",
    "rounded_feature_bytes",
]


# Features hashed by value (no recipe) are rounded to this many decimals first: a difference below
# 1e-4 on standardised features is float noise, not other data. Bump the scheme when the hash changes.
FINGERPRINT_DECIMALS = 4
FINGERPRINT_SCHEME = "aofl-data-fingerprint/2"


def rounded_feature_bytes(x: np.ndarray) -> bytes:
    """The bytes of `x` rounded to FINGERPRINT_DECIMALS (-0.0 folded into 0.0)."""
    return (np.round(np.asarray(x, dtype=np.float64), FINGERPRINT_DECIMALS) + 0.0).tobytes()


class DataError(AOFLError, ValueError):
    """A dataset that cannot be used as asked (wrong path, empty split, bad layout)."""


@dataclass
class Dialogue:
    """One conversation. Arrays are indexed by utterance position."""

    dialogue_id: str
    speakers: list[str]
    labels: np.ndarray  # [n] int64, -1 = unlabelled
    features: dict[str, np.ndarray]  # modality -> [n, d_m] float32
    text: list[str] | None = None
    # Optional per-utterance arrays that are not model inputs, e.g. the planted
    # ground-truth factors of the synthetic source ("factor:shared", "factor:audio").
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        n = len(self.labels)
        if len(self.speakers) != n:
            raise DataError(f"dialogue {self.dialogue_id}: {len(self.speakers)} speakers for {n} labels")
        for m, x in list(self.features.items()):
            x = np.asarray(x, dtype=np.float32)
            if x.ndim != 2 or x.shape[0] != n:
                raise DataError(
                    f"dialogue {self.dialogue_id}: modality {m!r} has shape {x.shape}, expected [{n}, d]"
                )
            self.features[m] = x
        if self.text is not None and len(self.text) != n:
            raise DataError(f"dialogue {self.dialogue_id}: {len(self.text)} texts for {n} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def utterance_ids(self) -> list[str]:
        return [f"{self.dialogue_id}#{i}" for i in range(len(self))]

    def speaker_index(self, max_speakers: int) -> np.ndarray:
        """Speaker slot inside the dialogue, by order of first appearance (capped)."""
        order: dict[str, int] = {}
        slots = np.array([order.setdefault(s, len(order)) for s in self.speakers], dtype=np.int64)
        return np.minimum(slots, max_speakers - 1)


@dataclass
class ConversationSet:
    name: str
    label_names: list[str]
    modalities: list[str]
    splits: dict[str, list[Dialogue]]
    description: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.modalities) < 1:
            raise DataError(f"dataset {self.name}: no modalities")
        for split, dialogues in self.splits.items():
            for d in dialogues:
                missing = [m for m in self.modalities if m not in d.features]
                if missing:
                    raise DataError(
                        f"dataset {self.name}, split {split}, dialogue {d.dialogue_id}: missing modalities {missing}"
                    )
        dims = self.modality_dims
        for split, dialogues in self.splits.items():
            for d in dialogues:
                for m in self.modalities:
                    if d.features[m].shape[1] != dims[m]:
                        raise DataError(
                            f"dataset {self.name}: modality {m!r} is {d.features[m].shape[1]}-d in "
                            f"dialogue {d.dialogue_id} but {dims[m]}-d elsewhere"
                        )

    @property
    def modality_dims(self) -> dict[str, int]:
        for dialogues in self.splits.values():
            if dialogues:
                return {m: int(dialogues[0].features[m].shape[1]) for m in self.modalities}
        raise DataError(f"dataset {self.name} has no dialogues")

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def split(self, name: str) -> list[Dialogue]:
        if name not in self.splits:
            raise DataError(f"dataset {self.name} has no split {name!r}; it has {sorted(self.splits)}")
        dialogues = self.splits[name]
        if not dialogues:
            raise DataError(f"split {name!r} of dataset {self.name} is empty")
        return dialogues

    def num_utterances(self, split: str) -> int:
        return sum(len(d) for d in self.splits.get(split, []))

    def has_ground_truth(self) -> bool:
        for dialogues in self.splits.values():
            for d in dialogues:
                return "factor:shared" in d.extras
        return False

    def modality_means(self, split: str = "train") -> dict[str, np.ndarray]:
        """Mean feature vector of each modality over a split (for 'replace by mean' what-ifs)."""
        out = {}
        for m in self.modalities:
            x = np.concatenate([d.features[m] for d in self.split(split)])
            out[m] = x.mean(0).astype(np.float32)
        return out

    def fingerprint(self) -> str:
        """Content hash of what makes "the same data": ties a checkpoint to the data it saw.

        Hashes the names, dialogue ids, speakers, labels and transcripts, and for each modality its
        recipe (`meta["view_recipes"][m]`: the text view's version string, the synthetic generator's
        arguments) rather than its floats, which differ in the last bits between machines (BLAS,
        sentence-encoder kernels). A modality without a recipe (MultiEMO pickles, hand-built sets)
        is hashed from its features rounded to `FINGERPRINT_DECIMALS` decimals.
        """
        h = hashlib.sha256()
        recipes = self.meta.get("view_recipes") or {}

        def put(text: str) -> None:  # length-prefixed: "ab"+"c" never hashes as "a"+"bc"
            b = text.encode()
            h.update(len(b).to_bytes(8, "little") + b)

        put(FINGERPRINT_SCHEME)
        put(self.name)
        put("|".join(self.label_names))
        for m in self.modalities:
            put(f"{m}={recipes.get(m, '')}")
        for split in sorted(self.splits):
            put(split)
            for d in self.splits[split]:
                put(d.dialogue_id)
                h.update(d.labels.tobytes())
                put("\x1f".join(d.speakers))
                put("\x1f".join(d.text) if d.text is not None else "\x00no text")
                for m in self.modalities:
                    if not recipes.get(m):
                        h.update(rounded_feature_bytes(d.features[m]))
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        return {
            "name": self.name,
            "modalities": {m: d for m, d in self.modality_dims.items()},
            "classes": list(self.label_names),
            "splits": {
                s: {"dialogues": len(ds), "utterances": sum(len(d) for d in ds)}
                for s, ds in self.splits.items()
            },
            "description": self.description,
        }


@dataclass
class Batch:
    """Dialogues padded to a common length. Padding positions have mask False and label -1."""

    features: dict[str, torch.Tensor]  # modality -> [batch, turns, d_m]
    mask: torch.Tensor  # [batch, turns] bool
    labels: torch.Tensor  # [batch, turns] int64
    speakers: torch.Tensor  # [batch, turns] int64
    lengths: torch.Tensor  # [batch] int64 (on CPU, as pack_padded_sequence wants)

    def to(self, device) -> "Batch":
        return Batch(
            {m: x.to(device, non_blocking=True) for m, x in self.features.items()},
            self.mask.to(device),
            self.labels.to(device),
            self.speakers.to(device),
            self.lengths,
        )


def collate(
    dialogues: list[Dialogue],
    modalities: list[str],
    max_speakers: int = 9,
    replace: dict[str, np.ndarray | None] | None = None,
) -> Batch:
    """Pad a list of dialogues into a Batch.

    `replace` maps a modality to a vector that replaces all its features (a what-if
    "drop this modality"); None means zeros.
    """
    if not dialogues:
        raise DataError("cannot build a batch from zero dialogues")
    lengths = [len(d) for d in dialogues]
    b, t = len(dialogues), max(lengths)
    feats = {}
    for m in modalities:
        dim = dialogues[0].features[m].shape[1]
        x = np.empty((b, t, dim), dtype=np.float32)  # every element written once: rows, then padding
        for i, d in enumerate(dialogues):
            x[i, : len(d)] = d.features[m]
            x[i, len(d) :] = 0.0
        if replace and m in replace:
            v = replace[m]
            for i, n in enumerate(lengths):
                x[i, :n] = 0.0 if v is None else v
        feats[m] = torch.from_numpy(x)
    mask = np.zeros((b, t), dtype=bool)
    labels = np.full((b, t), -1, dtype=np.int64)
    speakers = np.zeros((b, t), dtype=np.int64)
    for i, d in enumerate(dialogues):
        mask[i, : len(d)] = True
        labels[i, : len(d)] = d.labels
        speakers[i, : len(d)] = d.speaker_index(max_speakers)
    return Batch(
        feats,
        torch.from_numpy(mask),
        torch.from_numpy(labels),
        torch.from_numpy(speakers),
        torch.tensor(lengths, dtype=torch.int64),
    )
