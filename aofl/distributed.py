"""Data-parallel training across processes, switched on by torchrun's environment.

`torchrun --nproc_per_node=2 -m aofl train ...` sets WORLD_SIZE / RANK / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `train()` then initialises the process group (gloo on CPU, nccl on
CUDA) and runs the forward through DistributedDataParallel (`wrap`). Per step every rank takes
its share of the same global batch (the seeded shuffle is identical on all ranks; global batch =
batch_size x world_size dialogues, rank r takes the r-th, (r+W)-th, ... dialogue of it). DDP
averages gradients equally over ranks, so each rank's loss is first scaled by its share of the
global batch's utterances (`weighted_share`): a step equals the single-process step over the
whole global batch (exactly for per-utterance losses; the batch-contrastive L_CEN sees only the
local part). Without WORLD_SIZE > 1 nothing changes: no wrapper, no scaling.

Only rank 0 should print or write files: `is_main_process()`; non-zero ranks' stdout is
silenced by `setup()` (quiet=True).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = [
    "DistInfo",
    "env_world",
    "setup",
    "is_main_process",
    "global_batches",
    "weighted_share",
    "wrap",
    "gather",
    "cleanup",
]


@dataclass
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> DistInfo:
    """World size, rank and local rank from torchrun's environment (1, 0, 0 without it)."""
    ws = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return DistInfo(ws, rank, local)


def setup(device: torch.device | None = None, quiet: bool = True) -> DistInfo:
    """Initialise the default process group when launched with WORLD_SIZE > 1 (idempotent)."""
    info = env_world()
    if not info.enabled:
        return info
    if not dist.is_initialized():
        cuda = device is not None and device.type == "cuda"
        if cuda:
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", rank=info.rank, world_size=info.world_size)
    if quiet and not info.is_main and not getattr(sys.stdout, "_aofl_silenced", False):
        sys.stdout = open(os.devnull, "w")
        sys.stdout._aofl_silenced = True  # type: ignore[attr-defined]
    return info


def is_main_process() -> bool:
    return env_world().rank == 0 if not dist.is_initialized() else dist.get_rank() == 0


def gather(obj) -> list:
    """Every rank's `obj` (picklable), in rank order, on every rank (a collective)."""
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def global_batches(order: list[int], batch_size: int, world_size: int) -> list[list[int]]:
    """The global batches of one epoch: batch_size x world_size consecutive items of `order`."""
    step = batch_size * world_size
    return [order[i : i + step] for i in range(0, len(order), step)]


def weighted_share(
    global_batch: list[int], sizes: list[int], rank: int, world_size: int
) -> tuple[list[int], float]:
    """Rank r's dialogues of a global batch and the factor its mean loss is scaled by before backward.

    sizes[i]: utterances of global_batch[i]. DDP averages gradients over the W ranks, so the factor
    n_local * W / n_global turns that average into the utterance-weighted sum of the ranks' mean
    losses. A rank with an empty share (short last batch) must still run forward and backward, as
    DDP's all-reduce needs every rank: it runs the batch's first dialogue with factor 0.
    """
    idx = range(rank, len(global_batch), world_size)
    if not idx:
        return [global_batch[0]], 0.0
    return [global_batch[i] for i in idx], sum(sizes[i] for i in idx) * world_size / sum(sizes)


def wrap(model: torch.nn.Module, device: torch.device):
    """`model` in DistributedDataParallel (device_ids for CUDA, none on CPU / gloo).

    static_graph=True because parameters receive gradients outside `forward` (alpha_logit and the
    `orthogonal` reconstruction layers in `model.loss`) and some variants leave parameters unused
    (alpha_logit without L_AAC): without it DDP waits for the unused ones ("Expected to have
    finished reduction"), and find_unused_parameters=True marks the loss-only ones ready at the end
    of forward, then fails when their gradient arrives ("mark a variable ready only once"). The set
    of parameters that get gradients is the same every step (it depends on the config only), which
    is what static_graph needs; unused parameters keep grad None, so AdamW skips them as in one process.
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, static_graph=True)
