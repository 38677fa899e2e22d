"""Resumable training state: what `train()` needs to continue after its last finished epoch
exactly as if it had never stopped, in one safetensors file (no pickle, no torch.save).

Layout of OUT/resume.safetensors (written atomically after every epoch, deleted by
`python -m aofl train` once the final OUT/model.safetensors is written):

    model/NAME            current weights (the state dict, incl. buffers)
    best/NAME             the best-so-far weights (selected on valid)
    optim/NAME/KEY        AdamW state per parameter: exp_avg, exp_avg_sq, step
    rng/torch, rng/shuffle, rng/cuda   torch generator states (uint8)
    rng/numpy, rng/python              numpy / Python `random` state words
    rng/rankR/...                      under torchrun: rank R's own torch/cuda/numpy/python states
                                       (R >= 1; rank 0's are the rng/ ones, the shuffle is shared)
    __metadata__["aofl_resume"]        JSON: format, epoch, best epoch / valid metrics, patience
                                       counter, history, and the run identity (model config,
                                       train config, data fingerprint, world size)

A resume whose identity differs from the saved one (other arguments or data) is refused. A state
written before the heads and OPR kept stacked weights is converted (`aofl.model.convert_state_dict`).
The metadata key is not the checkpoints' `aofl`, so the registry never lists this file.
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from ..errors import CheckpointError
from ..io.atomic import atomic_write_bytes
from ..io.file_checks import safetensors_header
from ..model import AOFLConfig, convert_state_dict

__all__ = [
    "ResumeError",
    "TrainState",
    "RESUME_FILENAME",
    "FORMAT",
    "run_identity",
    "rng_snapshot",
    "save_state",
    "load_state",
]

FORMAT = "aofl-resume/1"
RESUME_FILENAME = "resume.safetensors"
_META_KEY = "aofl_resume"
# train-config fields that do not change the numbers: a run may resume on another device or quietly
_NOT_IDENTITY = ("device", "progress")


class ResumeError(CheckpointError):
    """No resumable state, an unreadable one, or one written by a run with other settings."""


def run_identity(
    model_config: dict, train_config: dict, data_name: str, data_fingerprint: str, world_size: int = 1
) -> dict:
    """What must match for a resume to continue the same run (JSON-normalised)."""
    ident = {
        "model_config": model_config,
        "train_config": {k: v for k, v in train_config.items() if k not in _NOT_IDENTITY},
        "data": {"name": data_name, "fingerprint": data_fingerprint},
        "world_size": world_size,
    }
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

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        shuffle: torch.Generator,
        device: torch.device,
        rank: int = 0,
    ) -> None:
        """Load weights, optimizer state and every RNG into a freshly built model/optimizer.

        Under torchrun each rank takes back its own RNG states: the ranks draw dropout masks for
        local batches of different sizes, so their generators part after the first step."""
        model.load_state_dict(self.model)
        names = [n for n, _ in model.named_parameters()]
        unknown = sorted(set(self.optimizer) - set(names))
        if unknown:
            raise ResumeError(f"resume state has optimizer state for unknown parameters {unknown[:5]}")
        sd = optimizer.state_dict()  # keeps this run's param_groups (same settings, checked)
        sd["state"] = {i: dict(self.optimizer[n]) for i, n in enumerate(names) if n in self.optimizer}
        optimizer.load_state_dict(sd)
        shuffle.set_state(self.rng["shuffle"])
        rng, meta = self.rng, self.rng_meta
        if rank:
            prefix = f"rank{rank}/"
            ranks = self.rng_meta.get("ranks", {})
            if f"{prefix}torch" in self.rng and str(rank) in ranks:
                rng, meta = (
                    {k[len(prefix) :]: v for k, v in self.rng.items() if k.startswith(prefix)},
                    ranks[str(rank)],
                )
            else:  # written before states were kept per rank: this rank continues from rank 0's
                warnings.warn(
                    f"the resume state holds no RNG state for rank {rank}; it continues from rank 0's, "
                    "so dropout on this rank differs from an uninterrupted run",
                    stacklevel=2,
                )
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], device)
        np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), *meta["numpy"]))
        random.setstate(
            (meta["python_version"], tuple(int(x) for x in rng["python"].tolist()), meta["python_gauss"])
        )


def rng_snapshot(device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """This process's torch (and CUDA), numpy and Python RNG states: (tensors, JSON metadata).
    Under torchrun `train()` gathers every rank's snapshot for `save_state(rank_rngs=...)`."""
    tensors = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        tensors["cuda"] = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_version, py_words, py_gauss = random.getstate()
    tensors["python"] = torch.tensor(py_words, dtype=torch.int64)
    meta = {
        "numpy": [int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python_version": py_version,
        "python_gauss": py_gauss,
    }
    return tensors, meta


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().cpu().clone().contiguous()  # clone: safetensors refuses shared storage


def save_state(
    path,
    *,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    best_state: dict | None,
    shuffle: torch.Generator,
    device: torch.device,
    progress: dict,
    identity: dict,
    rank_rngs: list[tuple[dict, dict]] | None = None,
) -> Path:
    """rank_rngs: every rank's `rng_snapshot`, in rank order (torchrun); this process's alone without it."""
    tensors = {f"model/{k}": _cpu(v) for k, v in model.state_dict().items()}
    for k, v in (best_state or {}).items():
        tensors[f"best/{k}"] = _cpu(v)
    names = [n for n, _ in model.named_parameters()]
    for i, st in optimizer.state_dict()["state"].items():
        for key, v in st.items():
            if not isinstance(v, torch.Tensor):  # AdamW keeps only tensors; anything else: as a 0-d tensor
                v = torch.tensor(v)
            tensors[f"optim/{names[i]}/{key}"] = _cpu(v)
    tensors["rng/shuffle"] = shuffle.get_state()
    rank_rngs = rank_rngs or [rng_snapshot(device)]
    rng_meta = dict(rank_rngs[0][1])
    for rank, (rng, meta) in enumerate(rank_rngs):
        prefix = f"rng/rank{rank}/" if rank else "rng/"
        tensors.update({prefix + k: _cpu(v) for k, v in rng.items()})
        if rank:
            rng_meta.setdefault("ranks", {})[str(rank)] = meta
    meta = {"format": FORMAT, "epoch": epoch, "progress": progress, "identity": identity, "rng": rng_meta}
    return atomic_write_bytes(Path(path), save(tensors, metadata={_META_KEY: json.dumps(meta)}))


def _differences(saved, now, prefix: str = "") -> list[str]:
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for k in sorted(set(saved) | set(now)):
            out += _differences(saved.get(k), now.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if saved == now else [f"{prefix}: {saved!r} saved, {now!r} now"]


def _convert_layout(groups: dict, model_config: dict) -> None:
    """Weights and AdamW state of the former per-modality layout, in place, in the stacked one."""
    config = AOFLConfig.from_dict(model_config)
    for g in ("model", "best"):
        groups[g] = convert_state_dict(groups[g], config)
    by_key: dict[str, dict[str, torch.Tensor]] = {}  # AdamW state key -> {parameter name: tensor}
    for name, st in groups["optim"].items():
        for key, v in st.items():
            by_key.setdefault(key, {})[name] = v
    optim: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensors in by_key.items():
        for name, v in convert_state_dict(tensors, config).items():
            if key == "step" and v.dim():  # one step count per parameter, the same for every modality
                v = v[0]
            optim.setdefault(name, {})[key] = v
    groups["optim"] = optim


def load_state(path, identity: dict) -> TrainState:
    """The state at `path`, checked against this run's `identity`. Raises ResumeError."""
    p = Path(path)
    if not p.is_file():
        done = p.with_name("model.safetensors").is_file()
        raise ResumeError(
            f"nothing to resume: no {p} (it is written after each finished epoch"
            + (
                " and deleted when training finishes; "
                f"{p.with_name('model.safetensors')} holds a finished run's result)"
                if done
                else ")"
            )
            + "; train without --resume to start"
        )
    try:
        safetensors_header(p, ResumeError)  # sizes and offsets checked before any tensor is read
        with safe_open(str(p), framework="pt") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(raw) if raw is not None else None
    except (SafetensorError, OSError, ValueError) as e:
        raise ResumeError(
            f"{p} is not a readable resume state (corrupt?): {e}; "
            f"delete it and train without --resume to start over"
        ) from e
    whole = (
        isinstance(meta, dict)
        and {"epoch", "progress", "identity", "rng"} <= set(meta)
        and {"rng/torch", "rng/shuffle", "rng/numpy", "rng/python"} <= set(tensors)
    )
    if not whole or meta.get("format") != FORMAT:
        raise ResumeError(
            f"{p} is not a complete AO-FL resume state (format {FORMAT}); "
            f"train without --resume to start over"
        )
    diffs = _differences(meta["identity"], identity)
    if diffs:
        raise ResumeError(
            f"cannot resume from {p}: it was written by a run with other settings or data ("
            + "; ".join(diffs[:6])
            + "). Resume with the original arguments, or train "
            "without --resume to start over"
        )
    groups: dict[str, dict] = {"model": {}, "best": {}, "optim": {}, "rng": {}}
    for k, v in tensors.items():
        group, _, rest = k.partition("/")
        if group == "optim":
            name, _, key = rest.rpartition("/")
            groups["optim"].setdefault(name, {})[key] = v
        elif group in groups:
            groups[group][rest] = v
    model_config = meta["identity"].get("model_config") if isinstance(meta["identity"], dict) else None
    if isinstance(model_config, dict):  # train()'s identity holds the model config
        _convert_layout(groups, model_config)
    return TrainState(
        epoch=int(meta["epoch"]),
        progress=meta["progress"],
        model=groups["model"],
        best=groups["best"] or None,
        optimizer=groups["optim"],
        rng=groups["rng"],
        rng_meta=meta["rng"],
    )
