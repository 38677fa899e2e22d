"""Training loop: mini-batches of whole dialogues, early stopping on the validation split only.

Deterministic for a given seed on CPU (seeded init, seeded shuffling, no nondeterministic
kernels). Model selection never looks at the test split.

With `state_path`, the state after every epoch is saved (aofl/resume.py) and `resume=True`
continues from it: a resumed run ends with the same weights, best epoch and metrics as an
uninterrupted one (on CPU), because the weights, AdamW moments and all RNG states are restored.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from .data.conversation import ConversationSet, Dialogue, collate
from .device import resolve_device
from .metrics import accuracy, weighted_f1
from .model import AOFL, AOFLConfig

__all__ = ["TrainConfig", "TrainResult", "train", "model_config_for", "predict_labels", "seed_everything",
           "class_weights"]


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 16  # dialogues per step
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 8  # epochs without a better validation WF1 before stopping
    # never stop before this epoch: on a tiny valid split an early lucky spike can otherwise end a
    # slow-starting run (seen on IEMOCAP: full seed 1 and orthogonal seed 0 stopped at epoch 13-14)
    min_epochs: int = 0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    eval_batch_size: int = 64


@dataclass
class TrainResult:
    model: AOFL
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict = field(default_factory=dict)
    seconds: float = 0.0
    train_config: dict = field(default_factory=dict)
    resumed_at: list[int] = field(default_factory=list)  # epochs after which a resumed run continued


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(dataset: ConversationSet, split: str = "train") -> list[float]:
    """Inverse-frequency weights normalised to mean 1 (for imbalanced real data)."""
    counts = np.bincount(np.concatenate([d.labels for d in dataset.split(split)]).clip(0),
                         minlength=dataset.num_classes).astype(float)
    w = 1.0 / np.maximum(counts, 1.0)
    return (w / w.mean()).round(6).tolist()


def model_config_for(dataset: ConversationSet, variant: str = "full", **overrides) -> AOFLConfig:
    return AOFLConfig(modalities=list(dataset.modalities), modality_dims=dataset.modality_dims,
                      num_classes=dataset.num_classes, variant=variant, label_names=list(dataset.label_names),
                      **overrides)


@torch.inference_mode()
def predict_labels(model: AOFL, dialogues: list[Dialogue], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, predicted labels) over the labelled utterances of the dialogues."""
    model.eval()
    ys, ps = [], []
    for i in range(0, len(dialogues), batch_size):
        batch = collate(dialogues[i:i + batch_size], model.modalities, model.config.max_speakers).to(model.device)
        logits = model(batch)["logits"]
        keep = batch.mask & (batch.labels >= 0)
        ys.append(batch.labels[keep].cpu().numpy())
        ps.append(logits[keep].argmax(-1).cpu().numpy())
    return np.concatenate(ys), np.concatenate(ps)


def train(dataset: ConversationSet, config: AOFLConfig | None = None, train_config: TrainConfig | None = None,
          callback: Callable[[dict], None] | None = None, variant: str = "full", *,
          state_path=None, resume: bool = False,
          on_best: Callable[[TrainResult], None] | None = None) -> TrainResult:
    """Train on `train`, select the epoch with the best `valid` weighted F1, return that model.

    callback(info) is called after each epoch with the history row plus `epochs` (the maximum).
    state_path: write the resumable state there after every epoch; resume=True continues from it
    (ResumeError when it is missing or from a run with other settings or data).
    on_best(result) is called when validation improves, with the model at that epoch.
    """
    tc = train_config or TrainConfig()
    config = config or model_config_for(dataset, variant)
    device = resolve_device(tc.device)
    from . import distributed
    dinfo = distributed.setup(device)  # WORLD_SIZE > 1 (torchrun): data-parallel, else a no-op
    if dinfo.enabled and device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
    train_set, valid_set = dataset.split("train"), dataset.split("valid")
    seed_everything(tc.seed)
    model = AOFL(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    shuffle = torch.Generator().manual_seed(tc.seed)
    history: list[dict] = []
    best_state, best_wf1, best_epoch, best_valid, bad = None, -1.0, 0, {}, 0
    first_epoch, stopped, resumed_at = 1, False, []
    identity = None
    if state_path is not None:
        from .resume import load_state, run_identity
        identity = run_identity(config.to_dict(), asdict(tc), dataset.name, dataset.fingerprint(), dinfo.world_size)
        if resume:
            # after the fresh init above (which used the seeded RNG), every state is overwritten
            state = load_state(state_path, identity)
            state.restore(model, opt, shuffle, device, rank=dinfo.rank)
            prog = state.progress
            history, best_wf1, best_epoch = prog["history"], prog["best_wf1"], prog["best_epoch"]
            best_valid, bad, stopped = prog["best_valid"], prog["bad"], prog["stopped"]
            best_state = {k: v.to(device) for k, v in state.best.items()} if state.best else None
            first_epoch, resumed_at = state.epoch + 1, prog["resumed_at"] + [state.epoch]
    elif resume:
        raise ValueError("resume=True needs state_path")
    # under torchrun the forward runs through DDP, whose reducer averages the gradients; the loss,
    # evaluation, checkpoints and resume state use the bare model (no `module.` prefix)
    forward = distributed.wrap(model, device) if dinfo.enabled else model
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    bar = None
    if tc.progress and dinfo.is_main:
        from tqdm.auto import tqdm
        bar = tqdm(total=tc.epochs, initial=first_epoch - 1, desc=f"train {config.variant}", unit="epoch",
                   leave=False)

    def snapshot() -> TrainResult:
        return TrainResult(model=model, history=list(history), best_epoch=best_epoch, best_valid=dict(best_valid),
                           seconds=time.perf_counter() - start, train_config=asdict(tc), resumed_at=resumed_at)

    try:
        for epoch in range(first_epoch, tc.epochs + 1):
            if stopped:  # the resumed run had already stopped early
                break
            model.train()
            order = torch.randperm(len(train_set), generator=shuffle).tolist()
            sums: dict[str, float] = {}
            steps = 0
            for gbatch in distributed.global_batches(order, tc.batch_size, dinfo.world_size):
                opt.zero_grad(set_to_none=True)
                local, scale = gbatch, 1.0
                if dinfo.enabled:  # scale 0: an empty share's stand-in dialogue (see weighted_share)
                    local, scale = distributed.weighted_share(gbatch, [len(train_set[j]) for j in gbatch],
                                                              dinfo.rank, dinfo.world_size)
                batch = collate([train_set[j] for j in local], model.modalities, config.max_speakers).to(device)
                loss, parts = model.loss(forward(batch), batch)
                (loss * scale if dinfo.enabled else loss).backward()
                if tc.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                opt.step()
                if scale:  # an empty share's stand-in step is not logged
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v
                    steps += 1
            y, p = predict_labels(model, valid_set, tc.eval_batch_size)
            row = {"epoch": epoch, **{f"loss_{k}": v / steps for k, v in sums.items()},
                   "valid_weighted_f1": weighted_f1(y, p), "valid_accuracy": accuracy(y, p),
                   "alpha_deg": [round(float(a), 3) for a in torch.rad2deg(model.alpha().detach().cpu())],
                   "seconds": round(time.perf_counter() - start, 3)}
            history.append(row)
            improved = row["valid_weighted_f1"] > best_wf1
            if improved:
                best_wf1, best_epoch, bad = row["valid_weighted_f1"], epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_valid = {"weighted_f1": row["valid_weighted_f1"], "accuracy": row["valid_accuracy"]}
            else:
                bad += 1
            stopped = bad >= tc.patience and epoch >= tc.min_epochs
            if bar is not None:
                bar.set_postfix(loss=f"{row['loss_total']:.3f}", valid_wf1=f"{row['valid_weighted_f1']:.3f}")
                bar.update(1)
            if callback is not None:
                callback({**row, "epochs": tc.epochs})
            if improved and on_best is not None:
                on_best(snapshot())
            if identity is not None:
                # after the best checkpoint: a kill between the two redoes this epoch, identically
                from .resume import rng_snapshot, save_state
                # every rank's own RNG states (a collective: all ranks call it), written by rank 0
                rngs = distributed.gather(rng_snapshot(device)) if dinfo.enabled else None
                if dinfo.is_main:
                    save_state(state_path, epoch=epoch, model=model, optimizer=opt, best_state=best_state,
                               shuffle=shuffle, device=device, identity=identity, rank_rngs=rngs,
                               progress={"best_wf1": best_wf1, "best_epoch": best_epoch, "best_valid": best_valid,
                                         "bad": bad, "stopped": stopped, "history": history,
                                         "resumed_at": resumed_at})
            if stopped:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is None:  # pragma: no cover - at least one epoch always runs
        best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model=model, history=history, best_epoch=best_epoch, best_valid=best_valid,
                       seconds=time.perf_counter() - start, train_config=asdict(tc), resumed_at=resumed_at)
