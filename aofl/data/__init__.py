"""Data sources and the canonical `ConversationSet`.

`load_dataset(name)` is the one entry point: `synthetic` needs no files; `iemocap` and `meld`
read the data directory (`AOFL_DATA_DIR`, default `~/.cache/aofl/data`, see README).
A real dataset with other text views than the default ones is named `<name>+<view>+<view>...`,
e.g. `iemocap+sentence+lexicon+tfidf+tuned`, and one with another feature source `<name>-<source>`,
e.g. `iemocap-multiemo` (`DatasetName` parses and prints them).
"""

from __future__ import annotations

import functools

from ..io.safe_pickle import UnsafePickleError, safe_load, safe_loads
from . import loaders, real, textviews
from .conversation import Batch, ConversationSet, DataError, Dialogue, collate
from .names import FEATURE_SOURCES, REAL_DATASETS, DatasetName
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
    "listed_names",
    "cache_dir",
    "dataset_name",
    "split_dataset_name",
    "DatasetName",
    "TUNED_VIEWS",
]

TUNED_VIEWS = (*real.DEFAULT_VIEWS, "tuned")  # the view set the app lists once `tuned` is prepared


# ----------------------------------------------------------------------------- names with views
# Thin aliases of `DatasetName` (aofl/data/names.py), the one place names are parsed and printed.


def split_dataset_name(name: str) -> tuple[str, tuple[str, ...] | None]:
    """`iemocap+sentence+tuned` -> ("iemocap", ("sentence", "tuned")); a name without views -> (name, None).

    Raises DataError for views that `load_dataset` could not load (unknown, none, repeated, or on
    a dataset that has no text views). The plain name itself is not checked here.
    """
    parsed = DatasetName.parse(name)
    return parsed.plain, parsed.views or None


def dataset_name(base: str, views=None) -> str:
    """The inverse of `split_dataset_name`: `base` alone for the default views (None or spelled out)."""
    return str(DatasetName.from_parts(base, views))


# ----------------------------------------------------------------------------- listing and loading


def _tuned_view_prepared(name: str) -> bool:
    """Whether `python -m aofl data prepare NAME --views tuned` has run for the files here.

    The cache path `data list` checks (`textviews.cache_paths`), keyed by the source files alone:
    the stand-in transcripts skip parsing them (MELD's CSVs take 0.2 s), and their hashes are
    remembered per file identity, so an app rerun costs a few stat calls.
    """
    files = real.required_files(name)  # the files, in the order `load_transcripts` records them
    stand_in = real.Transcripts(name, [], {}, files)
    return textviews.cache_paths(stand_in, ("tuned",))["tuned"].is_file()


def available_datasets() -> list[str]:
    """`synthetic` always; a real dataset when its files are in the data directory, followed by
    its `TUNED_VIEWS` name when its `tuned` view is prepared."""
    out = ["synthetic"]
    for name in REAL_DATASETS:
        if real.is_available(name):
            out.append(name)
            if _tuned_view_prepared(name):
                out.append(str(DatasetName(name, views=TUNED_VIEWS)))
    return out


@functools.lru_cache(maxsize=8)
def _synthetic_cached(seed: int) -> ConversationSet:
    return make_synthetic(seed=seed)


def _load_with_views(parsed: DatasetName, name: str, kwargs: dict) -> ConversationSet:
    """A `<real>+<view>...` name: the real dataset with exactly those views (named as the real one,
    which is what checkpoints record and `aofl.compatibility` compares)."""
    views = parsed.views
    given = kwargs.pop("views", None)
    if given is not None and tuple(given) != views:
        raise DataError(f"dataset {name!r} names the views {list(views)}, but views={list(given)} was passed")
    if kwargs.get("features", "text") != "text":
        raise DataError(f"dataset {name!r} names text views; features={kwargs['features']!r} has none")
    return loaders.load(parsed.base, views=views, **kwargs)


def _unknown_dataset(name: str) -> DataError:
    sources = [str(DatasetName(n, s)) for n in REAL_DATASETS for s in FEATURE_SOURCES]
    return DataError(
        f"unknown dataset {name!r}; choose one of synthetic, {', '.join(REAL_DATASETS)}, "
        f"{', '.join(sources)}, or a real one with its text views, "
        f"e.g. {DatasetName(REAL_DATASETS[0], views=TUNED_VIEWS)} (views: {', '.join(real.TEXT_VIEWS)})"
    )


def listed_names(data_dir=None) -> list[str]:
    """What `data list` shows: synthetic, the real datasets (there or not), and each real dataset
    with a feature source (`iemocap-multiemo`) whose files are here, since those load without the
    transcripts."""
    from .multiemo import multiemo_available

    root = real._root(data_dir)
    sourced = [str(DatasetName(n, "multiemo")) for n in REAL_DATASETS if multiemo_available(n, root)]
    return ["synthetic", *REAL_DATASETS, *sourced]


def load_dataset(name: str, **kwargs) -> ConversationSet:
    """Load a dataset by name. `synthetic` accepts make_synthetic's keyword arguments; the real
    ones `real.load`'s, including `allow_unsafe` (synthetic reads no file and ignores it).
    `<real>+<view>+...` is the real dataset with those text views, `<real>-multiemo` the real
    dataset with MultiEMO's features (`DatasetName`)."""
    if name == "synthetic":
        kwargs.pop("allow_unsafe", None)
        if set(kwargs) <= {"seed"}:
            return _synthetic_cached(int(kwargs.get("seed", 0)))
        return make_synthetic(**kwargs)
    if name in REAL_DATASETS:
        return loaders.load(name, **kwargs)
    parsed = DatasetName.parse(name)
    if parsed.views:
        return _load_with_views(parsed, name, kwargs)
    if parsed.base in REAL_DATASETS and parsed.source == "multiemo":
        # the full MultiEMO audio/text/visual features (python -m aofl data download <name>-multiemo)
        return loaders.load(parsed.base, features="multiemo", **kwargs)
    raise _unknown_dataset(name)
