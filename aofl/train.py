"""Training loop: mini-batches of whole dialogues, early stopping on the validation split only.

Deterministic for a given seed on CPU (seeded init, seeded shuffling, no nondeterministic
kernels). Model selection never looks at the test split.

With `state_path`, the state after every epoch is saved (aofl/resume.py) and `resume=True`
continues from it: a resumed run ends with the same weights, best epoch and metrics as an
uninterrupted one (on CPU), because the weights, AdamW moments and all RNG states are restored.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch

from . import angles
from .data.conversation import ConversationSet, Dialogue, collate
from .device import resolve_device
from .metrics import accuracy, weighted_f1
from .model import AOFL, AOFLConfig
from .settings import setting
from .store.resume import load_state, rng_snapshot, run_identity, save_state

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "model_config_for",
    "predict_labels",
    "seed_everything",
    "class_weights",
    "aux_scale_at",
    "lr_factor_at",
    "CLIP_MODES",
    "LR_SCHEDULES",
    "SELECT_MODES",
]

CLIP_MODES = ("total", "ce", "per_term", "off")
LR_SCHEDULES = ("constant", "cosine")
SELECT_MODES = ("best_valid", "last")


def aux_scale_at(epoch: int, warmup_epochs: int) -> float:
    """The factor on every auxiliary weight at `epoch` (1-based): 0, 1/W, ..., 1 from epoch W+1."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, (epoch - 1) / warmup_epochs)


def lr_factor_at(epoch: int, epochs: int, schedule: str) -> float:
    """The learning rate's factor at `epoch` (1-based) of `epochs`."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        t = (epoch - 1) / max(epochs - 1, 1)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))
    raise ValueError(f"unknown lr schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def _check(tc: "TrainConfig") -> None:
    for name, value, allowed in (
        ("clip_mode", tc.clip_mode, CLIP_MODES),
        ("lr_schedule", tc.lr_schedule, LR_SCHEDULES),
        ("select", tc.select, SELECT_MODES),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    if tc.warmup_epochs < 0:
        raise ValueError("warmup_epochs must be >= 0")


@dataclass
class TrainConfig:
    """The training settings; a field with a flag is a `python -m aofl train` option (aofl/settings.py)."""

    epochs: int = setting(30, "--epochs")
    batch_size: int = setting(16, "--batch-size", "dialogues per step")
    lr: float = setting(2e-3, "--lr")
    weight_decay: float = setting(1e-4, "--weight-decay")
    # epochs without a better validation WF1 before stopping
    patience: int = setting(8, "--patience")
    # never stop before this epoch: on a tiny valid split an early lucky spike can otherwise end a
    # slow-starting run (seen on IEMOCAP: full seed 1 and orthogonal seed 0 stopped at epoch 13-14)
    min_epochs: int = setting(0, "--min-epochs", "never stop early before this epoch")
    grad_clip: float = setting(1.0, "--grad-clip", "gradient-norm clipping threshold (0: none)")
    # "total" is the original recipe. With "total", a large L_CEN shrinks CE's step (see docs/method.md).
    clip_mode: str = setting(
        "total",
        "--clip-mode",
        "what is clipped: the summed gradient (total), CE's gradient alone (ce), each loss "
        "term's gradient on its own (per_term), or nothing (off)",
        choices=CLIP_MODES,
    )
    warmup_epochs: int = setting(
        0,
        "--warmup-epochs",
        "ramp the auxiliary loss weights linearly from 0 over this many epochs",
    )
    patience_after_warmup: bool = setting(
        False,
        "--patience-after-warmup",
        "early stopping's patience counts only epochs after the warm-up",
        kind="on",
    )
    lr_schedule: str = setting(
        "constant",
        "--lr-schedule",
        "per-epoch learning-rate schedule (cosine: down to lr/100 at the last epoch)",
        choices=LR_SCHEDULES,
    )
    # "last" is for a number of epochs chosen by cross-validation (aofl/tune.py)
    select: str = setting(
        "best_valid",
        "--select",
        "keep the epoch with the best valid WF1 (best_valid) or train all --epochs and keep the "
        "last (last: for an epoch count chosen by cross-validation)",
        choices=SELECT_MODES,
    )
    # measure the training dynamics on a probe batch every epoch (aofl/dynamics.py)
    dynamics: bool = setting(
        True,
        "--no-dynamics",
        "skip the per-epoch training-dynamics probe (gradient norms and cosines per loss term)",
        kind="off",
    )
    probe_dialogues: int = 8
    seed: int = setting(0, "--seed")
    device: str = "auto"  # the command line's --device goes through aofl.device first
    progress: bool = setting(True, "--no-progress", kind="off")
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


def param_groups(model: AOFL, tc: "TrainConfig") -> list[dict]:
    """AdamW's parameter groups: one for everything, unless alpha has its own learning rate
    (`AOFLConfig.alpha_lr`): then alpha's logit is a group of its own, without weight decay
    (decay would pull alpha toward 90 deg, the logit's zero)."""
    alpha_lr = model.config.alpha_lr
    alpha = getattr(model, "alpha_logit", None)
    if alpha_lr is None or alpha is None:
        return [{"params": list(model.parameters()), "base_lr": tc.lr}]
    rest = [p for p in model.parameters() if p is not alpha]
    return [
        {"params": rest, "base_lr": tc.lr},
        {"params": [alpha], "lr": alpha_lr, "base_lr": alpha_lr, "weight_decay": 0.0},
    ]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(dataset: ConversationSet, split: str = "train") -> list[float]:
    """Inverse-frequency weights normalised to mean 1 (for imbalanced real data)."""
    counts = np.bincount(
        np.concatenate([d.labels for d in dataset.split(split)]).clip(0), minlength=dataset.num_classes
    ).astype(float)
    w = 1.0 / np.maximum(counts, 1.0)
    return (w / w.mean()).round(6).tolist()


def model_config_for(dataset: ConversationSet, variant: str = "full", **overrides) -> AOFLConfig:
    return AOFLConfig(
        modalities=list(dataset.modalities),
        modality_dims=dataset.modality_dims,
        num_classes=dataset.num_classes,
        variant=variant,
        label_names=list(dataset.label_names),
        **overrides,
    )


@torch.inference_mode()
def predict_labels(
    model: AOFL, dialogues: list[Dialogue], batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(true labels, predicted labels) over the labelled utterances of the dialogues."""
    model.eval()
    ys, ps = [], []
    for i in range(0, len(dialogues), batch_size):
        batch = collate(dialogues[i : i + batch_size], model.modalities, model.config.max_speakers).to(
            model.device
        )
        logits = model(batch)["logits"]
        keep = batch.mask & (batch.labels >= 0)
        ys.append(batch.labels[keep].cpu().numpy())
        ps.append(logits[keep].argmax(-1).cpu().numpy())
    return np.concatenate(ys), np.concatenate(ps)


def train(
    dataset: ConversationSet,
    config: AOFLConfig | None = None,
    train_config: TrainConfig | None = None,
    callback: Callable[[dict], None] | None = None,
    variant: str | None = None,
    *,
    state_path=None,
    resume: bool = False,
    on_best: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train on `train`, select the epoch with the best `valid` weighted F1, return that model.

    The model is `config`, else `model_config_for(dataset, variant)` (variant "full" when not given);
    a `variant` given with a `config` must be the config's own (ValueError otherwise).

    callback(info) is called after each epoch with the history row plus `epochs` (the maximum).
    state_path: write the resumable state there after every epoch; resume=True continues from it
    (ResumeError when it is missing or from a run with other settings or data).
    on_best(result) is called when validation improves, with the model at that epoch.
    """
    tc = train_config or TrainConfig()
    _check(tc)
    if config is None:
        config = model_config_for(dataset, variant or "full")
    elif variant is not None and variant != config.variant:
        raise ValueError(
            f"train(variant={variant!r}) contradicts config.variant={config.variant!r}: "
            f"the config decides the model; leave variant out or build the config with "
            f"model_config_for(dataset, {variant!r})"
        )
    device = resolve_device(tc.device)
    from . import distributed

    dinfo = distributed.setup(device)  # WORLD_SIZE > 1 (torchrun): data-parallel, else a no-op
    if dinfo.enabled and device.type == "cuda":
        device = torch.device("cuda", dinfo.local_rank)
    train_set, valid_set = dataset.split("train"), dataset.split("valid")
    seed_everything(tc.seed)
    model = AOFL(config).to(device)
    opt = torch.optim.AdamW(param_groups(model, tc), lr=tc.lr, weight_decay=tc.weight_decay)
    shuffle = torch.Generator().manual_seed(tc.seed)
    history: list[dict] = []
    best_state, best_wf1, best_epoch, best_valid, bad = None, -1.0, 0, {}, 0
    first_epoch, stopped, resumed_at = 1, False, []
    identity = None
    if state_path is not None:
        identity = run_identity(
            config.to_dict(), asdict(tc), dataset.name, dataset.fingerprint(), dinfo.world_size
        )
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
    if dinfo.enabled and tc.clip_mode in ("ce", "per_term"):
        raise ValueError(
            f"clip_mode {tc.clip_mode!r} takes per-term gradients, which DDP's reducer does not "
            "average; use total or off under torchrun"
        )
    probe = None
    if tc.dynamics and dinfo.is_main:  # a fixed batch: the first training dialogues, in dataset order
        probe = collate(train_set[: tc.probe_dialogues], model.modalities, config.max_speakers).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    # under torchrun the forward runs through DDP, whose reducer averages the gradients; the loss,
    # evaluation, checkpoints and resume state use the bare model (no `module.` prefix)
    forward = distributed.wrap(model, device) if dinfo.enabled else model
    start = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    bar = None
    if tc.progress and dinfo.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=tc.epochs,
            initial=first_epoch - 1,
            desc=f"train {config.variant}",
            unit="epoch",
            leave=False,
        )

    def snapshot() -> TrainResult:
        return TrainResult(
            model=model,
            history=list(history),
            best_epoch=best_epoch,
            best_valid=dict(best_valid),
            seconds=time.perf_counter() - start,
            train_config=asdict(tc),
            resumed_at=resumed_at,
        )

    try:
        for epoch in range(first_epoch, tc.epochs + 1):
            if stopped:  # the resumed run had already stopped early
                break
            model.train()
            aux_scale = aux_scale_at(epoch, tc.warmup_epochs)
            lr_now = tc.lr * lr_factor_at(epoch, tc.epochs, tc.lr_schedule)
            factor = lr_factor_at(epoch, tc.epochs, tc.lr_schedule)
            for group in opt.param_groups:  # each group keeps its own base lr (alpha's may differ)
                group["lr"] = group.get("base_lr", tc.lr) * factor
            order = torch.randperm(len(train_set), generator=shuffle).tolist()
            sums: dict[str, float] = {}
            steps, clip_sum, diverged = 0, 0.0, False
            for gbatch in distributed.global_batches(order, tc.batch_size, dinfo.world_size):
                opt.zero_grad(set_to_none=True)
                local, scale = gbatch, 1.0
                if dinfo.enabled:  # scale 0: an empty share's stand-in dialogue (see weighted_share)
                    local, scale = distributed.weighted_share(
                        gbatch, [len(train_set[j]) for j in gbatch], dinfo.rank, dinfo.world_size
                    )
                batch = collate([train_set[j] for j in local], model.modalities, config.max_speakers).to(
                    device
                )
                out = forward(batch)
                if tc.clip_mode in ("ce", "per_term") and tc.grad_clip:
                    terms, parts = model.loss_terms(out, batch, aux_scale)
                    parts["total"] = float(sum(t.item() for t in terms.values()))
                    if _diverged(parts["total"], dinfo.enabled):
                        diverged = True
                        break
                    ce_factor = _clipped_backward(terms, params, tc.grad_clip, tc.clip_mode)
                else:
                    loss, parts = model.loss(out, batch, aux_scale)
                    if _diverged(parts["total"], dinfo.enabled):
                        diverged = True
                        break
                    (loss * scale if dinfo.enabled else loss).backward()
                    ce_factor = 1.0
                    if tc.grad_clip and tc.clip_mode == "total":
                        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip))
                        ce_factor = min(1.0, tc.grad_clip / (norm + 1e-6))
                opt.step()
                if scale:  # an empty share's stand-in step is not logged
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v
                    steps += 1
                    clip_sum += ce_factor
            y, p = predict_labels(model, valid_set, tc.eval_batch_size)
            row = {
                "epoch": epoch,
                **{f"loss_{k}": v / max(steps, 1) for k, v in sums.items()},
                "valid_weighted_f1": weighted_f1(y, p),
                "valid_accuracy": accuracy(y, p),
                "alpha_deg": [round(float(a), 3) for a in angles.to_degrees(model.alpha().detach().cpu())],
                # the factor clipping put on CE's gradient, mean over the epoch's steps (1 = unclipped)
                "clip_factor": round(clip_sum / max(steps, 1), 6),
                "aux_scale": aux_scale,
                "lr": lr_now,
            }
            if probe is not None:
                from .dynamics import probe_dynamics

                row["dynamics"] = probe_dynamics(model, probe, aux_scale)
            if diverged:  # the step that would have applied a non-finite loss was skipped; training ends here
                row["diverged"] = True
            row["seconds"] = round(time.perf_counter() - start, 3)
            history.append(row)
            if tc.select == "last":  # every epoch replaces the last: the run ends with the final weights
                improved = True
            else:
                improved = row["valid_weighted_f1"] > best_wf1
            if improved:
                best_wf1, best_epoch, bad = row["valid_weighted_f1"], epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_valid = {"weighted_f1": row["valid_weighted_f1"], "accuracy": row["valid_accuracy"]}
            elif not tc.patience_after_warmup or epoch > tc.warmup_epochs:
                bad += 1
            stopped = (bad >= tc.patience and epoch >= tc.min_epochs) or diverged
            if bar is not None:
                bar.set_postfix(loss=f"{row['loss_total']:.3f}", valid_wf1=f"{row['valid_weighted_f1']:.3f}")
                bar.update(1)
            if callback is not None:
                callback({**row, "epochs": tc.epochs})
            if improved and on_best is not None:
                on_best(snapshot())
            if identity is not None:
                # after the best checkpoint: a kill between the two redoes this epoch, identically
                # every rank's own RNG states (a collective: all ranks call it), written by rank 0
                rngs = distributed.gather(rng_snapshot(device)) if dinfo.enabled else None
                if dinfo.is_main:
                    save_state(
                        state_path,
                        epoch=epoch,
                        model=model,
                        optimizer=opt,
                        best_state=best_state,
                        shuffle=shuffle,
                        device=device,
                        identity=identity,
                        rank_rngs=rngs,
                        progress={
                            "best_wf1": best_wf1,
                            "best_epoch": best_epoch,
                            "best_valid": best_valid,
                            "bad": bad,
                            "stopped": stopped,
                            "history": history,
                            "resumed_at": resumed_at,
                        },
                    )
            if stopped:
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is None:  # pragma: no cover - at least one epoch always runs
        best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        best_valid=best_valid,
        seconds=time.perf_counter() - start,
        train_config=asdict(tc),
        resumed_at=resumed_at,
    )


def _diverged(total: float, distributed_run: bool) -> bool:
    """True when the loss is no longer finite (seen with clipping off at a high learning rate: one
    exploding step, then NaN weights). The step is skipped and the run ends, keeping the last finite
    weights; the epoch's history row says `diverged`."""
    if math.isfinite(total):
        return False
    if distributed_run:  # the ranks must stop together; a clear error beats a hang
        raise RuntimeError("the training loss became non-finite")
    return True


def _clipped_backward(
    terms: dict[str, torch.Tensor], params: list[torch.Tensor], max_norm: float, mode: str
) -> float:
    """Set each parameter's .grad to the sum of the terms' gradients, clipped per `mode`:
    "ce" clips CE's gradient alone to max_norm (the others add unclipped), "per_term" clips each
    term's gradient on its own. Returns the factor applied to CE's gradient."""
    from .losses import term_gradients

    summed: list[torch.Tensor | None] = [None] * len(params)
    ce_factor = 1.0
    for name, grads in term_gradients(terms, params):
        factor = 1.0
        if name == "class" or mode == "per_term":
            norm = float(
                torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g) for g in grads if g is not None])
                )
            )
            factor = min(1.0, max_norm / (norm + 1e-6))
        if name == "class":
            ce_factor = factor
        for k, g in enumerate(grads):
            if g is None:
                continue
            g = g * factor if factor < 1.0 else g
            summed[k] = g if summed[k] is None else summed[k] + g
    for p, g in zip(params, summed):
        p.grad = g
    return ce_factor
