"""Data sources and the canonical `ConversationSet`.

`load_dataset(name)` is the one entry point: `synthetic` needs no files; `iemocap` and `meld`
read the data directory (`AOFL_DATA_DIR`, default `~/.cache/aofl/data`, see README).
A real dataset with other text views than the default ones is named `<name>+<view>+<view>...`,
e.g. `iemocap+sentence+lexicon+tfidf+tuned` (`dataset_name`, `split_dataset_name`).
"""

from __future__ import annotations

import functools

from ..io.safe_pickle import UnsafePickleError, safe_load, safe_loads
from . import loaders, real, textviews
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
    "dataset_name",
    "split_dataset_name",
    "TUNED_VIEWS",
]

REAL_DATASETS = ("iemocap", "meld")
VIEW_SEPARATOR = "+"
TUNED_VIEWS = (*real.DEFAULT_VIEWS, "tuned")  # the view set the app lists once `tuned` is prepared


# ----------------------------------------------------------------------------- names with views


def _check_views(base: str, views: tuple[str, ...]) -> None:
    valid = f"valid views: {', '.join(real.TEXT_VIEWS)}"
    if base not in REAL_DATASETS:
        raise DataError(f"text views apply to {' and '.join(REAL_DATASETS)} only, not {base!r}; {valid}")
    if not views:
        raise DataError(f"no text view after {base!r}; {valid}")
    unknown = [v for v in views if v not in real.TEXT_VIEWS]
    if unknown:
        raise DataError(f"unknown text view(s) {', '.join(map(repr, unknown))} for {base}; {valid}")
    repeated = sorted({v for v in views if views.count(v) > 1})
    if repeated:
        raise DataError(f"text view(s) {', '.join(repeated)} named twice for {base}; {valid}")


def split_dataset_name(name: str) -> tuple[str, tuple[str, ...] | None]:
    """`iemocap+sentence+tuned` -> ("iemocap", ("sentence", "tuned")); a name without views -> (name, None).

    Raises DataError for views that `load_dataset` could not load (unknown, none, repeated, or on
    a dataset that has no text views). The plain name itself is not checked here.
    """
    base, sep, rest = name.partition(VIEW_SEPARATOR)
    if not sep:
        return name, None
    views = tuple(rest.split(VIEW_SEPARATOR)) if rest else ()
    _check_views(base, views)
    return base, views


def dataset_name(base: str, views=None) -> str:
    """The inverse of `split_dataset_name`: `base` alone for the default views (None or spelled out)."""
    if views is None or tuple(views) == real.DEFAULT_VIEWS:
        return base
    views = tuple(views)
    _check_views(base, views)
    return VIEW_SEPARATOR.join((base, *views))


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
                out.append(dataset_name(name, TUNED_VIEWS))
    return out


@functools.lru_cache(maxsize=8)
def _synthetic_cached(seed: int) -> ConversationSet:
    return make_synthetic(seed=seed)


def _load_with_views(name: str, kwargs: dict) -> ConversationSet:
    """A `<real>+<view>...` name: the real dataset with exactly those views (named as the real one,
    which is what checkpoints record and `aofl.compatibility` compares)."""
    base, views = split_dataset_name(name)
    given = kwargs.pop("views", None)
    if given is not None and tuple(given) != views:
        raise DataError(f"dataset {name!r} names the views {list(views)}, but views={list(given)} was passed")
    if kwargs.get("features", "text") != "text":
        raise DataError(f"dataset {name!r} names text views; features={kwargs['features']!r} has none")
    return loaders.load(base, views=views, **kwargs)


def _unknown_dataset(name: str) -> DataError:
    return DataError(
        f"unknown dataset {name!r}; choose one of synthetic, {', '.join(REAL_DATASETS)}, "
        f"{', '.join(n + '-multiemo' for n in REAL_DATASETS)}, or a real one with its text views, "
        f"e.g. {dataset_name(REAL_DATASETS[0], TUNED_VIEWS)} (views: {', '.join(real.TEXT_VIEWS)})"
    )


def load_dataset(name: str, **kwargs) -> ConversationSet:
    """Load a dataset by name. `synthetic` accepts make_synthetic's keyword arguments; the real
    ones `real.load`'s, including `allow_unsafe` (synthetic reads no file and ignores it).
    `<real>+<view>+...` is the real dataset with those text views (`split_dataset_name`)."""
    if name == "synthetic":
        kwargs.pop("allow_unsafe", None)
        if set(kwargs) <= {"seed"}:
            return _synthetic_cached(int(kwargs.get("seed", 0)))
        return make_synthetic(**kwargs)
    if name in REAL_DATASETS:
        return loaders.load(name, **kwargs)
    if VIEW_SEPARATOR in name:
        return _load_with_views(name, kwargs)
    base, _, features = name.partition("-")
    if base in REAL_DATASETS and features == "multiemo":
        # the full MultiEMO audio/text/visual features (python -m aofl data download multiemo-<name>)
        return loaders.load(base, features="multiemo", **kwargs)
    raise _unknown_dataset(name)
