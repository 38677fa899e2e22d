"""Every use of Streamlit's private internals, in one guarded place (pyproject pins streamlit below 2).

The app needs one (`leave_legacy_pages`); AppTest runs, in aofl.bench.pages and the tests, need the
others. Each looks its internals up through `_internal`, so a Streamlit that moved one fails with a
message naming what is missing instead of an AttributeError deep in a page, and `check()` (run by
tests/test_layout.py) finds such a release before any page does.

- `PagesManager.uses_pages_directory`: Streamlit runs a `pages/` folder as a legacy multipage app
  until some session has called st.navigation.
- `app_test.ScriptCache`, `local_script_runner.ScriptCache`: AppTest compiles every script anew
  per run; a server keeps one cache.
- `AppTest._tree`, `._tree._runner._run`: AppTest has no interaction for a dataframe's row selection.
"""

from __future__ import annotations

import contextlib
import importlib
import json

__all__ = [
    "StreamlitInternalsChanged",
    "check",
    "leave_legacy_pages",
    "navigation_like_the_server",
    "one_script_cache",
    "select_dataframe_row",
]

# what this module reaches into: (module, attribute path)
_USED = (
    ("streamlit.runtime.pages_manager", "PagesManager.uses_pages_directory"),
    ("streamlit.runtime.scriptrunner.script_cache", "ScriptCache"),
    ("streamlit.testing.v1.app_test", "ScriptCache"),
    ("streamlit.testing.v1.local_script_runner", "ScriptCache"),
)


class StreamlitInternalsChanged(RuntimeError):
    """The installed Streamlit lacks an internal this module relies on."""


def _internal(module: str, path: str = ""):
    """`module` or its attribute `path` (dotted), or StreamlitInternalsChanged naming it."""
    try:
        obj = importlib.import_module(module)
        for name in filter(None, path.split(".")):
            obj = getattr(obj, name)
    except (ImportError, AttributeError) as e:
        import streamlit

        raise StreamlitInternalsChanged(
            f"Streamlit {streamlit.__version__} has no {module}{'.' + path if path else ''} ({e}); "
            "aofl/app/internals.py needs updating for it"
        ) from e
    return obj


def check() -> None:
    """Raise StreamlitInternalsChanged when the installed Streamlit lacks a module-level internal this
    module uses (AppTest's element tree, an instance attribute, is checked where it is used)."""
    for module, path in _USED:
        _internal(module, path)


def leave_legacy_pages() -> bool:
    """Turn Streamlit's legacy `pages/` mode off, as st.navigation itself does; True when it was on.

    A deep link as a fresh server's first request (`/angles?...`) runs pages/angles.py alone until
    some session has called st.navigation; after this, a rerun goes through app.py."""
    try:
        manager = _internal("streamlit.runtime.pages_manager", "PagesManager")
    except StreamlitInternalsChanged:  # a Streamlit without it has no legacy mode to leave
        return False
    if getattr(manager, "uses_pages_directory", False):
        manager.uses_pages_directory = False
        return True
    return False


@contextlib.contextmanager
def navigation_like_the_server():
    """Inside the block, AppTest stops re-detecting the legacy `pages/` directory before every run
    (and then running a page file without app.py); the server stops once st.navigation was called."""
    manager = _internal("streamlit.runtime.pages_manager", "PagesManager")
    original = manager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        manager.uses_pages_directory = False

    manager.__init__ = init
    try:
        yield
    finally:
        manager.__init__ = original


@contextlib.contextmanager
def one_script_cache():
    """Inside the block, every AppTest run shares one ScriptCache, as a server process does (a rerun
    reuses the compiled app.py and page); yields it, so a caller can empty it."""
    script_cache = _internal("streamlit.runtime.scriptrunner.script_cache", "ScriptCache")
    _internal("streamlit.testing.v1.app_test", "ScriptCache")
    _internal("streamlit.testing.v1.local_script_runner", "ScriptCache")
    app_test = _internal("streamlit.testing.v1.app_test")
    local_script_runner = _internal("streamlit.testing.v1.local_script_runner")
    shared = script_cache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared
    try:
        yield shared
    finally:
        app_test.ScriptCache = local_script_runner.ScriptCache = script_cache


def select_dataframe_row(at, element_id: str, row: int):
    """Click row `row` of a keyed `st.dataframe(on_select=..., selection_mode="single-row")` in AppTest
    and rerun; returns the new AppTest. AppTest has no interaction for dataframe selections (and
    writing the key in session state fires no callback), so this sends the selection as the browser
    would: one more widget state, the JSON of the selection, under the frame's element id."""
    try:
        tree = at._tree
        states = tree.get_widget_states()
        rerun = tree._runner._run
    except AttributeError as e:
        raise StreamlitInternalsChanged(f"AppTest's element tree changed: {e}") from e
    state = states.widgets.add()
    state.id = element_id
    state.string_value = json.dumps({"selection": {"rows": [row], "columns": [], "cells": []}})
    return rerun(states)
