"""Data sources and the canonical `ConversationSet`.

`load_dataset(name)` is the one entry point: `synthetic` needs no files; `iemocap` and `meld`
read the data directory (`AOFL_DATA_DIR`, default `~/.cache/aofl/data`, see README).
"""

from __future__ import annotations

import functools

from ..io.safe_pickle import UnsafePickleError, safe_load, safe_loads
from . import loaders, real
from .conversation import Batch, ConversationSet, DataError, Dialogue, collate
from .paths import cache_dir, data_dir
from .synthetic import make_synthetic

__all__ = [
    "Batch",
    "ConversationSet",
    "DataError",
    "Dialogue",
    "collate",
    "UnsafePickleError",
    "safe_load",
    "safe_loads",
    "make_synthetic",
    "load_dataset",
    "data_dir",
    "available_datasets",
    "cache_dir",
]

REAL_DATASETS = ("iemocap", "meld")


def available_datasets() -> list[str]:
    """`synthetic` always; a real dataset when its files are in the data directory."""
    return ["synthetic"] + [name for name in REAL_DATASETS if real.is_available(name)]


@functools.lru_cache(maxsize=8)
def _synthetic_cached(seed: int) -> ConversationSet:
    return make_synthetic(seed=seed)


def load_dataset(name: str, **kwargs) -> ConversationSet:
    """Load a dataset by name. `synthetic` accepts make_synthetic's keyword arguments; the real
    ones `real.load`'s, including `allow_unsafe` (synthetic reads no file and ignores it)."""
    if name == "synthetic":
        kwargs.pop("allow_unsafe", None)
        if set(kwargs) <= {"seed"}:
            return _synthetic_cached(int(kwargs.get("seed", 0)))
        return make_synthetic(**kwargs)
    if name in REAL_DATASETS:
        return loaders.load(name, **kwargs)
    base, _, features = name.partition("-")
    if base in REAL_DATASETS and features == "multiemo":
        # the full MultiEMO audio/text/visual features (python -m aofl data download multiemo-<name>)
        return loaders.load(base, features="multiemo", **kwargs)
    raise DataError(
        f"unknown dataset {name!r}; choose one of synthetic, {', '.join(REAL_DATASETS)}, "
        f"{', '.join(n + '-multiemo' for n in REAL_DATASETS)}"
    )
