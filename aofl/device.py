"""Device and thread policy: CUDA when present, CPU otherwise."""
from __future__ import annotations

import os

import torch

__all__ = ["resolve_device", "configure_threads"]


def resolve_device(name: str | None = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is a clear error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads: n, else $AOFL_THREADS, else 1.

    One thread is the default: on small shared machines it was faster and steadier than two
    (OpenMP spin under contention); `python -m aofl bench` measures it.
    """
    if n is None:
        n = int(os.environ.get("AOFL_THREADS", "1"))
    if n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
