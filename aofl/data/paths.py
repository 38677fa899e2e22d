"""Where files live: the real datasets' directory and the derived caches (environment-overridable)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "cache_dir"]


def data_dir() -> Path:
    """Where the real IEMOCAP / MELD files live: $AOFL_DATA_DIR or ~/.cache/aofl/data."""
    return Path(os.environ.get("AOFL_DATA_DIR") or Path.home() / ".cache" / "aofl" / "data").expanduser()


def cache_dir() -> Path:
    """Derived caches (text views, inference tables, embeddings): $AOFL_CACHE_DIR or ~/.cache/aofl/cache."""
    return Path(os.environ.get("AOFL_CACHE_DIR") or Path.home() / ".cache" / "aofl" / "cache").expanduser()
