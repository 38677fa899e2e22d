"""The app run headless under `streamlit.testing.v1.AppTest` as a server runs it (for aofl.bench.pages).

Two things AppTest does per run that a real server does once per process are undone here:
* it re-detects the legacy pages/ directory; the server stops once st.navigation was called;
* it compiles app.py and the page from source (a new ScriptCache per run); the server keeps
  one ScriptCache, so a rerun reuses the bytecode. Here all runs share one, emptied with the
  other caches by `clear_caches`.
Both reach into Streamlit's internals, which only aofl.app.internals does.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from . import internals

__all__ = ["like_the_server", "clear_caches", "new_app"]

_SCRIPT_CACHE = None  # the one ScriptCache of a server process (set inside like_the_server)


@contextlib.contextmanager
def like_the_server():
    """AppTest runs as the server runs them (see above), inside the block."""
    global _SCRIPT_CACHE
    with internals.navigation_like_the_server(), internals.one_script_cache() as shared:
        _SCRIPT_CACHE = shared
        try:
            yield
        finally:
            _SCRIPT_CACHE = None


def clear_caches(cache: Path) -> None:
    """Empty Streamlit's caches, aofl.embed's memory cache, the shared ScriptCache and the disk cache dir."""
    import streamlit as st

    from .. import embed

    st.cache_data.clear()
    st.cache_resource.clear()
    embed.clear_memory_cache()
    if _SCRIPT_CACHE is not None:
        _SCRIPT_CACHE.clear()
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)


def new_app(script: Path, timeout: float = 600):
    """An AppTest of `script` (app.py)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(script), default_timeout=timeout)
