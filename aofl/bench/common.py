"""Shared helpers of the benchmarks: timers, synthetic inputs, subprocess runs with peak RSS."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..io.child_env import importable_env

ROOT = Path(__file__).resolve().parents[2]  # the source checkout (app.py, checkpoints/), when there is one


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def best_of(fn, repeats: int = 1, *args, **kwargs) -> float:
    return min(timed(fn, *args, **kwargs)[0] for _ in range(max(1, repeats)))


def shared_like(n: int = 10_000, d: int = 256, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features that look like learned shared features: k emotion clusters in a 16-d latent,
    mapped nonlinearly into d dimensions, plus noise. Returns (X float32 [n, d], labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, 16)) * 3.0
    labels = rng.integers(0, k, n)
    z = centers[labels] + rng.normal(size=(n, 16))
    W = rng.normal(size=(16, d)) / 4.0
    X = np.tanh(z @ W) + 0.3 * rng.normal(size=(n, d))
    return X.astype(np.float32), labels


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_json_subprocess(args: list[str], timeout: float = 600, env: dict | None = None) -> dict | list:
    """Run `python -m <args>` (this interpreter), parse its last JSON line (an object or a list)."""
    full_env = importable_env({**os.environ, **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", *args], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith(("{", "["))]
    if not lines:
        raise RuntimeError(f"{' '.join(args)} printed no JSON: {proc.stdout[-500:]} {proc.stderr[-1000:]}")
    return json.loads(lines[-1])


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def r(x: float, nd: int = 3) -> float:
    return float(round(x, nd))
