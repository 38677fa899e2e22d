"""Data-parallel training across processes, switched on by torchrun's environment.

`torchrun --nproc_per_node=2 -m aofl train ...` sets WORLD_SIZE / RANK / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; `train()` then initialises the process group (gloo on CPU, nccl on
CUDA), and per step every rank takes its share of the same global batch (the seeded shuffle is
identical on all ranks; global batch = batch_size x world_size dialogues, rank r takes the
r-th, (r+W)-th, ... dialogue of it). Gradients are averaged across ranks after each backward,
weighted by each rank's number of labelled utterances, so a step equals the single-process
step over the whole global batch (exactly for per-utterance losses; the batch-contrastive L_CEN
sees only the local part). Without WORLD_SIZE > 1 nothing changes.

Only rank 0 should print or write files: `is_main_process()`; non-zero ranks' stdout is
silenced by `setup()` (quiet=True).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "env_world", "setup", "is_main_process", "global_batches", "local_share",
           "all_reduce_gradients", "cleanup"]


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


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def global_batches(order: list[int], batch_size: int, world_size: int) -> list[list[int]]:
    """The global batches of one epoch: batch_size x world_size consecutive items of `order`."""
    step = batch_size * world_size
    return [order[i:i + step] for i in range(0, len(order), step)]


def local_share(global_batch: list[int], rank: int, world_size: int) -> list[int]:
    """Rank r's dialogues of a global batch (may be empty for a short last batch)."""
    return global_batch[rank::world_size]


def all_reduce_gradients(params, weight: float) -> None:
    """grad <- sum over ranks (weight_r * grad_r); weights are local share of the global batch."""
    params = [p for p in params if p.requires_grad]
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    flat = torch.cat([g.reshape(-1) for g in grads]) * weight
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n
