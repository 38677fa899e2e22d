"""Device, thread and allocator policy: CUDA when present, CPU otherwise."""

from __future__ import annotations

import ctypes
import functools
import os
import sys

import torch

__all__ = [
    "resolve_device",
    "configure_runtime",
    "configure_threads",
    "configure_allocator",
    "limit_malloc_arenas",
    "release_free_memory",
    "trims_after",
]

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 << 20


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


def configure_allocator() -> str:
    """Let glibc's malloc keep freed blocks up to 32 MB (and up to 256 MB of free heap) for reuse.

    With glibc's defaults, many of a forward pass's temporaries (0.1-30 MB) are mmap'ed fresh and
    unmapped when freed, so every call pays page faults on new memory (README, Performance: how many,
    and what they cost). The cost is memory that stays mapped after a peak. Returns "tuned", "off"
    ($AOFL_MALLOC_TUNING=0) or "default" (not glibc: nothing to tune).
    """
    if os.environ.get("AOFL_MALLOC_TUNING", "1") == "0":
        return "off"
    ok = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return "tuned" if ok else "default"


def _glibc(name: str):
    """A C library function by name (the caller sets its argtypes); None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def _mallopt(param: int, value: int) -> bool:
    """glibc's mallopt(param, value); True when applied (it returns 1 on success, musl's stub 0)."""
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(param, int(value)) == 1


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at `n` for the threads created from now on (True when applied).

    A server runs each session's script in a thread of its own, and glibc gives threads that contend
    for the heap arenas of their own (up to 8 per core), each keeping what its thread freed. Measured
    in the app's process when the Playground still trained in a session's thread (it trains in a child
    process now, `aofl.playground_process`): a second training in a new thread added 50 MB with the
    default arenas and 12 MB with two. Every session's script run (inference, figures, tables) allocates
    in such threads still."""
    return _mallopt(_M_ARENA_MAX, n)


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's malloc_trim); True when it released any.
    For after a large temporary peak that will not come back soon (a Playground training)."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim(0) == 1


def trims_after(fn):
    """Decorate a function whose call leaves a large freed peak (a cold page's inference, embedding or
    seeds view): after it returns, `release_free_memory`. The app puts it under its caches, so it runs
    on a miss only (a trim takes 2-7 ms). Without it the next session's peak stacks on the last one's
    free pages: measured in one process, the heap kept 30-40 MB after each of these (RSS 486 -> 452 after
    the synthetic seeds view, 580 -> 550 after inference, 605 -> 566 after the default embedding)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_free_memory()

    return wrapper


def configure_runtime(threads: int | None = None) -> dict:
    """The process's performance policy, applied at start by the CLI, the app and the bench."""
    return {"threads": configure_threads(threads), "allocator": configure_allocator()}
