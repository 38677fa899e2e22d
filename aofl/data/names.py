"""Dataset names: the one place they are parsed and printed.

A name is `<base>[-<source>][+<view>+<view>...]`, one meaning per separator:

* `-` names a feature source other than the transcripts: `iemocap-multiemo` is IEMOCAP with
  MultiEMO's audio/text/visual features (also the download key of those files);
* `+` names the text views of a real dataset, in order: `iemocap+sentence+lexicon+tfidf+tuned`;
  the default views (`real.DEFAULT_VIEWS`) print as the plain name.

A study name appends the experiment arm after the dataset's name, `<dataset>-<arm>[-curve]`
(`study_name`); the arm is always the part after the last `-` but the `-curve` suffix, so it reads
back unambiguously (`parse_study_name`), even for a dataset with a feature source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import real
from .conversation import DataError

__all__ = [
    "DatasetName",
    "REAL_DATASETS",
    "FEATURE_SOURCES",
    "VIEW_SEPARATOR",
    "SOURCE_SEPARATOR",
    "study_name",
    "parse_study_name",
]

REAL_DATASETS = ("iemocap", "meld")
FEATURE_SOURCES = ("multiemo",)
VIEW_SEPARATOR = "+"
SOURCE_SEPARATOR = "-"
CURVE_SUFFIX = "-curve"


@dataclass(frozen=True)
class DatasetName:
    """`base` (synthetic, iemocap, meld), an optional feature `source`, and the text `views` as
    written (`()`: none written, i.e. the dataset's default ones).

    `parse` checks the views; it leaves an unknown base or source to `load_dataset`, which says
    which names it loads."""

    base: str
    source: str | None = None
    views: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> DatasetName:
        """`iemocap+sentence+tuned` -> DatasetName("iemocap", None, ("sentence", "tuned")).

        Raises DataError for views `load_dataset` could not load (unknown, none, repeated, or on a
        dataset that has no text views)."""
        plain, sep, rest = str(text).partition(VIEW_SEPARATOR)
        base, dash, source = plain.partition(SOURCE_SEPARATOR)
        name = cls(base, source if dash else None)
        if not sep:
            return name
        return name._with_checked_views(tuple(rest.split(VIEW_SEPARATOR)) if rest else ())

    @classmethod
    def from_parts(cls, plain: str, views=None) -> DatasetName:
        """A dataset named without its views (`iemocap`, `iemocap-multiemo`, as checkpoints and
        study exports record it) with `views` (None: the default ones). `plain` is not split at `+`:
        a name that has views already cannot take more (DataError when `views` are given)."""
        base, dash, source = str(plain).partition(SOURCE_SEPARATOR)
        return cls(base, source if dash else None).with_views(views)

    @property
    def plain(self) -> str:
        """The name without its views: `iemocap`, `iemocap-multiemo`."""
        return self.base if self.source is None else f"{self.base}{SOURCE_SEPARATOR}{self.source}"

    @property
    def default_views(self) -> bool:
        return not self.views or self.views == real.DEFAULT_VIEWS

    def with_views(self, views=None) -> DatasetName:
        """The same dataset with `views` (None: the default ones); checked unless they are the default."""
        if views is None:
            return replace(self, views=())
        views = tuple(views)
        if views == real.DEFAULT_VIEWS:
            return replace(self, views=views)
        return self._with_checked_views(views)

    def _with_checked_views(self, views: tuple[str, ...]) -> DatasetName:
        valid = f"valid views: {', '.join(real.TEXT_VIEWS)}"
        if self.source is not None or self.base not in REAL_DATASETS:
            raise DataError(
                f"text views apply to {' and '.join(REAL_DATASETS)} only, not {self.plain!r}; {valid}"
            )
        if not views:
            raise DataError(f"no text view after {self.plain!r}; {valid}")
        unknown = [v for v in views if v not in real.TEXT_VIEWS]
        if unknown:
            raise DataError(f"unknown text view(s) {', '.join(map(repr, unknown))} for {self.plain}; {valid}")
        repeated = sorted({v for v in views if views.count(v) > 1})
        if repeated:
            raise DataError(f"text view(s) {', '.join(repeated)} named twice for {self.plain}; {valid}")
        return replace(self, views=views)

    def __str__(self) -> str:
        if self.default_views:
            return self.plain
        return VIEW_SEPARATOR.join((self.plain, *self.views))


def study_name(data: DatasetName | str, arm: str, curve: bool = False) -> str:
    """`<dataset>-<arm>`, and `-curve` for a study scored by the curve rule (another study of the pair)."""
    return f"{data}{SOURCE_SEPARATOR}{arm}" + (CURVE_SUFFIX if curve else "")


def parse_study_name(name: str) -> tuple[str, str | None, bool]:
    """`iemocap+tuned-full-curve` -> ("iemocap+tuned", "full", True); a name without `-` -> (name, None, False).

    The dataset part is returned as written (not checked): a study export may name views this
    version does not know."""
    curve = name.endswith(CURVE_SUFFIX) and name.count(SOURCE_SEPARATOR) > 1
    stem = name[: -len(CURVE_SUFFIX)] if curve else name
    data, dash, arm = stem.rpartition(SOURCE_SEPARATOR)
    if not dash:
        return name, None, False
    return data, arm, curve
