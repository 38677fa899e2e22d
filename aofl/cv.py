"""Grouped k-fold cross-validation over the training dialogues: the one fold rule of studies and of
the cross-fitted `tuned` view. It lives in `aofl.data.folds` (the data layer uses it); this is its
public name, as the docs and tools cite it.
"""

from __future__ import annotations

from .data.folds import (
    cross_fit_folds,
    default_folds,
    fold_dataset,
    group_of,
    grouped_folds,
    session_of,
)

__all__ = ["session_of", "group_of", "grouped_folds", "fold_dataset", "default_folds", "cross_fit_folds"]
