"""Batched inference over a split: one table row per utterance plus the feature arrays.

Everything the app shows per utterance (prediction, probabilities, theta, phi) comes from
`run_inference`. Angles are reported in degrees.
The table's derived columns and their names (theta > phi, ...) are defined in `aofl.table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import angles
from .compatibility import check_compatible
from .data.conversation import ConversationSet, collate
from .model import AOFL
from .table import theta_gt_phi_column, theta_gt_phi_flags

__all__ = [
    "InferenceResult",
    "run_inference",
    "DROP_MODES",
]

DROP_MODES = ("zero", "mean")


@dataclass
class InferenceResult:
    table: pd.DataFrame  # one row per utterance, in split order
    probabilities: np.ndarray  # [N, C]
    shared: dict[str, np.ndarray] = field(default_factory=dict)  # modality -> [N, w] g
    specific: dict[str, np.ndarray] = field(default_factory=dict)  # h
    refined_shared: dict[str, np.ndarray] = field(default_factory=dict)  # g~ (OPR)
    refined_specific: dict[str, np.ndarray] = field(default_factory=dict)  # h~ (OPR)
    context: dict[str, np.ndarray] = field(default_factory=dict)  # c_m, the encoder output
    factors: dict[str, np.ndarray] = field(default_factory=dict)  # planted ground truth (synthetic)
    alpha_deg: dict[str, float] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    modalities: list[str] = field(default_factory=list)

    @property
    def has_split(self) -> bool:
        return bool(self.shared)


def _check_compatible(model: AOFL, dataset: ConversationSet) -> None:
    # the one checkpoint-vs-data check (CLI, app, here)
    check_compatible({"config": model.config.to_dict()}, dataset, source="the model")


def _joined(parts: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat without the copy when a split fits in one batch (the common case)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@torch.inference_mode()
def run_inference(
    model: AOFL,
    dataset: ConversationSet,
    split: str = "test",
    batch_size: int = 64,
    drop: dict[str, str] | None = None,
    progress: bool = False,
) -> InferenceResult:
    """Run the model over every dialogue of a split.

    drop: {modality: "zero" | "mean"} replaces that modality's input by zeros or by its
    training-split mean (a what-if: how much does the prediction rely on it?).
    """
    _check_compatible(model, dataset)
    dialogues = dataset.split(split)
    replace = None
    if drop:
        bad = {m: v for m, v in drop.items() if m not in model.modalities or v not in DROP_MODES}
        if bad:
            raise ValueError(f"cannot drop {bad}: modalities are {model.modalities}, modes {DROP_MODES}")
        means = dataset.modality_means("train") if "mean" in drop.values() else {}
        replace = {m: (means[m] if mode == "mean" else None) for m, mode in drop.items()}
    if any(m.training for m in model.modules()):  # eval() walks every module; skip it when already set
        model.eval()
    mods = model.modalities
    keys = ("shared", "specific", "refined_shared", "refined_specific", "context")
    arrays: dict[str, dict[str, list]] = {k: {m: [] for m in mods} for k in keys}
    probs, thetas, pair_phis = [], {m: [] for m in mods}, {}
    chunks = range(0, len(dialogues), batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"inference {split}", unit="batch", leave=False)
    for i in chunks:
        batch = collate(dialogues[i : i + batch_size], mods, model.config.max_speakers, replace).to(
            model.device
        )
        out = model(batch)
        # the valid turns' rows, found once: index_select is cheaper than a boolean mask per output
        rows_of = batch.mask.reshape(-1).nonzero().squeeze(1)

        def valid(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, t.shape[-1]).index_select(0, rows_of).float()

        probs.append(torch.softmax(valid(out["logits"]), -1).cpu())
        # the split's outputs are already the valid turns ([N, w], model.forward); context is padded
        valid_out = {
            k: {m: (valid(out[k][m]) if k == "context" else out[k][m].float()) for m in mods}
            for k in keys
            if k in out
        }
        for k, per_mod in valid_out.items():
            for m in mods:
                arrays[k][m].append(per_mod[m].cpu())
        if "shared" in out:
            g = valid_out["shared"]
            for m in mods:
                thetas[m].append(angles.to_degrees(angles.theta(g[m], valid_out["specific"][m])).cpu())
            for pair, a in angles.phi_pairs(g).items():
                pair_phis.setdefault(pair, []).append(angles.to_degrees(a).cpu())
    p = _joined(probs).numpy()
    feats = {k: {m: _joined(v).numpy() for m, v in arrays[k].items() if v} for k in keys}

    labels = np.concatenate([d.labels for d in dialogues])
    pred = p.argmax(1)
    names = list(dataset.label_names)
    rows = {
        "utterance_id": [u for d in dialogues for u in d.utterance_ids],
        "split": split,
        "dialogue": [d.dialogue_id for d in dialogues for _ in range(len(d))],
        "position": np.concatenate([np.arange(len(d)) for d in dialogues]),
        "speaker": [s for d in dialogues for s in d.speakers],
        "text": [t for d in dialogues for t in (d.text or [""] * len(d))],
        "label_id": labels,
        "label": [names[y] if y >= 0 else "" for y in labels],
        "prediction_id": pred,
        "prediction": [names[y] for y in pred],
        "confidence": p.max(1),
        "correct": pred == labels,
    }
    for c, name in enumerate(names):
        rows[f"prob_{name}"] = p[:, c]
    alpha = {}
    if feats["shared"]:
        pairs = {pair: _joined(v) for pair, v in pair_phis.items()}
        phis = angles.phi_from_pairs(pairs, mods)
        for m in mods:
            rows[f"theta_{m}"] = _joined(thetas[m]).numpy()
            rows[f"phi_{m}"] = phis[m].numpy()
            rows[theta_gt_phi_column(m)] = theta_gt_phi_flags(rows[f"theta_{m}"], rows[f"phi_{m}"])
        for (x, y), a in pairs.items():
            rows[f"phi_{x}_{y}"] = a.numpy()
        alpha = {m: float(a) for m, a in zip(mods, angles.to_degrees(model.alpha().detach().cpu()).tolist())}
    table = pd.DataFrame(rows)
    factors = {}
    if dialogues and dialogues[0].extras:
        for key in dialogues[0].extras:
            if key.startswith("factor:"):
                factors[key.split(":", 1)[1]] = np.concatenate([d.extras[key] for d in dialogues])
    return InferenceResult(
        table=table,
        probabilities=p,
        shared=feats["shared"],
        specific=feats["specific"],
        refined_shared=feats["refined_shared"],
        refined_specific=feats["refined_specific"],
        context=feats["context"],
        factors=factors,
        alpha_deg=alpha,
        label_names=names,
        modalities=list(mods),
    )
