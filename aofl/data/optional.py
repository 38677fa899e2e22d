"""Optional dependencies of the text views (the `text` extra) and a progress bar that degrades to nothing."""

from __future__ import annotations

import sys

from .conversation import DataError

__all__ = ["MissingExtraError", "require", "progress_bar"]


class MissingExtraError(DataError):
    """An optional dependency of the text views is not installed."""


def require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(
            f"computing text views needs the optional package {package!r} (import {module!r} failed: {e}). "
            f'Install the text extra with `pip install -e ".[text]"`, or use prepared caches '
            f"(`python -m aofl data prepare NAME` on a machine that has it; set AOFL_CACHE_DIR to share them)."
        ) from e


def progress_bar(total: int, desc: str, progress: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional too: a no-op bar

        class _Null:
            def update(self, n=1):
                pass

            def close(self):
                pass

        return _Null()
    return tqdm(total=total, desc=desc, unit="utt", file=sys.stderr, disable=not progress, leave=False)
