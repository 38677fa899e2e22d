"""The environment of a `python -m aofl ...` child process (the Playground's training, the benches)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["importable_env"]


def importable_env(env: dict | None = None) -> dict:
    """`env` (default this process's environment) with the folder `aofl` imports from first on
    PYTHONPATH: the child then runs this same code, from a checkout that is not installed as well as
    from site-packages. Torch-free, so a bench driver that never imports torch can use it."""
    env = dict(os.environ if env is None else env)
    parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
    return env
