"""Resumable training state: what `train()` needs to continue after its last finished epoch
exactly as if it had never stopped, in one safetensors file (no pickle, no torch.save).

Layout of OUT/resume.safetensors (written atomically after every epoch, deleted by
`python -m aofl train` once the final OUT/model.safetensors is written):

    model/NAME            current weights (the state dict, incl. buffers)
    best/NAME             the best-so-far weights (selected on valid)
    optim/NAME/KEY        AdamW state per parameter: exp_avg, exp_avg_sq, step
    rng/torch, rng/shuffle, rng/cuda   torch generator states (uint8)
    rng/numpy, rng/python              numpy / Python `random` state words
    __metadata__["aofl_resume"]        JSON: format, epoch, best epoch / valid metrics, patience
                                       counter, history, and the run identity (model config,
                                       train config, data fingerprint, world size)

A resume whose identity differs from the saved one (other arguments or data) is refused.
The metadata key is not the checkpoints' `aofl`, so the registry never lists this file.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .atomic import atomic_write_bytes
from .checkpoint import CheckpointError

__all__ = ["ResumeError", "TrainState", "RESUME_FILENAME", "FORMAT", "run_identity", "save_state", "load_state"]

FORMAT = "aofl-resume/1"
RESUME_FILENAME = "resume.safetensors"
_META_KEY = "aofl_resume"
# train-config fields that do not change the numbers: a run may resume on another device or quietly
_NOT_IDENTITY = ("device", "progress")


class ResumeError(CheckpointError):
    """No resumable state, an unreadable one, or one written by a run with other settings."""


def run_identity(model_config: dict, train_config: dict, data_name: str, data_fingerprint: str,
                 world_size: int = 1) -> dict:
    """What must match for a resume to continue the same run (JSON-normalised)."""
    ident = {"model_config": model_config,
             "train_config": {k: v for k, v in train_config.items() if k not in _NOT_IDENTITY},
             "data": {"name": data_name, "fingerprint": data_fingerprint}, "world_size": world_size}
    return json.loads(json.dumps(ident))


@dataclass
class TrainState:
    """A finished epoch's state. `progress` holds best_wf1, best_epoch, best_valid, bad (the
    patience counter), history, stopped (early stopping fired) and resumed_at (epochs)."""
    epoch: int
    progress: dict
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict[str, dict[str, torch.Tensor]]  # parameter name -> AdamW state
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    rng_meta: dict = field(default_factory=dict)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
                device: torch.device) -> None:
        """Load weights, optimizer state and every RNG into a freshly built model/optimizer."""
        model.load_state_dict(self.model)
        names = [n for n, _ in model.named_parameters()]
        unknown = sorted(set(self.optimizer) - set(names))
        if unknown:
            raise ResumeError(f"resume state has optimizer state for unknown parameters {unknown[:5]}")
        sd = optimizer.state_dict()  # keeps this run's param_groups (same settings, checked)
        sd["state"] = {i: dict(self.optimizer[n]) for i, n in enumerate(names) if n in self.optimizer}
        optimizer.load_state_dict(sd)
        torch.set_rng_state(self.rng["torch"])
        shuffle.set_state(self.rng["shuffle"])
        if "cuda" in self.rng and device.type == "cuda":
            torch.cuda.set_rng_state(self.rng["cuda"], device)
        np.random.set_state(("MT19937", self.rng["numpy"].numpy().astype(np.uint32), *self.rng_meta["numpy"]))
        random.setstate((self.rng_meta["python_version"], tuple(int(x) for x in self.rng["python"].tolist()),
                         self.rng_meta["python_gauss"]))


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().clone().contiguous()  # clone: safetensors refuses shared storage


def save_state(path, *, epoch: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               best_state: dict | None, shuffle: torch.Generator, device: torch.device, progress: dict,
               identity: dict) -> Path:
    tensors = {f"model/{k}": _cpu(v) for k, v in model.state_dict().items()}
    for k, v in (best_state or {}).items():
        tensors[f"best/{k}"] = _cpu(v)
    names = [n for n, _ in model.named_parameters()]
    for i, st in optimizer.state_dict()["state"].items():
        for key, v in st.items():
            if not isinstance(v, torch.Tensor):  # AdamW keeps only tensors; anything else: as a 0-d tensor
                v = torch.tensor(v)
            tensors[f"optim/{names[i]}/{key}"] = _cpu(v)
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/shuffle"] = shuffle.get_state()
    if device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_version, py_words, py_gauss = random.getstate()
    tensors["rng/python"] = torch.tensor(py_words, dtype=torch.int64)
    meta = {"format": FORMAT, "epoch": epoch, "progress": progress, "identity": identity,
            "rng": {"numpy": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
                    "python_version": py_version, "python_gauss": py_gauss}}
    return atomic_write_bytes(Path(path), save(tensors, metadata={_META_KEY: json.dumps(meta)}))


def _differences(saved, now, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(saved) | set(now)):
            out += _differences(saved.get(k), now.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if saved == now else [f"{prefix}: {saved!r} saved, {now!r} now"]


def load_state(path, identity: dict) -> TrainState:
    """The state at `path`, checked against this run's `identity`. Raises ResumeError."""
    p = Path(path)
    if not p.is_file():
        done = p.with_name("model.safetensors").is_file()
        raise ResumeError(f"nothing to resume: no {p} (it is written after each finished epoch"
                          + (" and deleted when training finishes; "
                             f"{p.with_name('model.safetensors')} holds a finished run's result)" if done else ")")
                          + "; train without --resume to start")
    try:
        from .file_checks import safetensors_header
        safetensors_header(p, ResumeError)  # sizes and offsets checked before any tensor is read
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(raw) if raw is not None else None
    except (SafetensorError, OSError, ValueError) as e:
        raise ResumeError(f"{p} is not a readable resume state (corrupt?): {e}; "
                          f"delete it and train without --resume to start over") from e
    whole = (isinstance(meta, dict) and {"epoch", "progress", "identity", "rng"} <= set(meta)
             and {"rng/torch", "rng/shuffle", "rng/numpy", "rng/python"} <= set(tensors))
    if not whole or meta.get("format") != FORMAT:
        raise ResumeError(f"{p} is not a complete AO-FL resume state (format {FORMAT}); "
                          f"train without --resume to start over")
    diffs = _differences(meta["identity"], identity)
    if diffs:
        raise ResumeError(f"cannot resume from {p}: it was written by a run with other settings or data ("
                          + "; ".join(diffs[:6]) + "). Resume with the original arguments, or train "
                          "without --resume to start over")
    groups: dict[str, dict] = {"model": {}, "best": {}, "optim": {}, "rng": {}}
    for k, v in tensors.items():
        group, _, rest = k.partition("/")
        if group == "optim":
            name, _, key = rest.rpartition("/")
            groups["optim"].setdefault(name, {})[key] = v
        elif group in groups:
            groups[group][rest] = v
    return TrainState(epoch=int(meta["epoch"]), progress=meta["progress"], model=groups["model"],
                      best=groups["best"] or None, optimizer=groups["optim"], rng=groups["rng"],
                      rng_meta={"numpy": meta["rng"]["numpy"], "python_version": meta["rng"]["python_version"],
                                "python_gauss": meta["rng"]["python_gauss"]})
