"""The sidebar's selection: set by app.py on every run, read by the pages.

Also the session keys behind it, so that no other module reads or writes them: a sidebar
selector's value is copied to a kept key when it changes (`keep`) and put back on pages that do
not draw the selector (`restore`); `select` sets a selector and its kept copy at once (a link's
value, a newly loaded checkpoint file). And the pages' small stop-with-a-message helpers.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import streamlit as st

from ..errors import AOFLError
from ..store.registry import CheckpointEntry
from .internals import leave_legacy_pages

__all__ = [
    "Context",
    "set_context",
    "context",
    "current",
    "select_valid",
    "require_checkpoint",
    "require_checkpoints",
    "user_errors",
    "USER_ERRORS",
    "SIDEBAR_KEYS",
    "keep",
    "restore",
    "select",
    "kept",
]

# AOFLError covers every project error (UnsafePickleError is no ValueError); OSError: unreadable paths
USER_ERRORS = (AOFLError, ValueError, OSError)
_CTX_KEY = "aofl_context"
SIDEBAR_KEYS = (
    "dataset",
    "split",
    "checkpoint",
    "checkpoints",
    "device",
)  # the sidebar selectors' widget keys


@dataclass
class Context:
    """The sidebar's selection, set by app.py on every run and read by the pages."""

    dataset: str = "synthetic"
    split: str = "test"
    device: str = "cpu"
    checkpoint: CheckpointEntry | None = None  # the one checkpoint of single-checkpoint pages
    checkpoints: list[CheckpointEntry] = field(default_factory=list)  # Ablations
    problem: str | None = None  # why there is no checkpoint, and what to do


def set_context(ctx: Context) -> None:
    st.session_state[_CTX_KEY] = ctx


def current() -> Context | None:
    """The selection of this run, or None when the page runs without app.py (nothing stops)."""
    return st.session_state.get(_CTX_KEY)


def context() -> Context:
    """The selection; a page opened without app.py reruns through it, or stops with a message."""
    ctx = current()
    # a deep link as a fresh server's first request ran this page alone: leave the legacy pages/
    # mode and rerun the same page and query through app.py's st.navigation
    if ctx is None and leave_legacy_pages():
        st.rerun()
    if ctx is None:
        st.info(
            "Open the app through `streamlit run app.py`: the sidebar there selects dataset, split and checkpoint."
        )
        st.stop()
    return ctx


# ------------------------------------------------------------------------------ the selectors' keys


def _kept_key(key: str) -> str:
    return f"_keep_{key}"


def keep(key: str) -> None:
    """on_change of a sidebar selector: copy its value to a plain key, so it survives pages where
    the selector is not drawn (Streamlit forgets an undrawn widget's value)."""
    st.session_state[_kept_key(key)] = st.session_state[key]


def restore(keys=SIDEBAR_KEYS) -> None:
    """Before the selectors are drawn: put back each kept value whose widget was forgotten."""
    for key in keys:
        if key not in st.session_state and _kept_key(key) in st.session_state:
            st.session_state[key] = st.session_state[_kept_key(key)]


def select(key: str, value) -> None:
    """Make `value` the selector's value, now and on later pages (a link's value, a loaded file)."""
    st.session_state[key] = st.session_state[_kept_key(key)] = value


def kept(key: str, default=None):
    """The selector's last kept value (e.g. the single checkpoint while Ablations shows several)."""
    return st.session_state.get(_kept_key(key), default)


def select_valid(key: str, options) -> None:
    """Before a selector is drawn: its stored value, or the first option when that is not one of
    `options`. Set, not popped: a selector whose options changed (another dataset, dialogue) must be
    sent its new value, or the browser keeps showing the old one."""
    options = list(options)
    if options and st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


# ------------------------------------------------------------------------------ stop with a message


def require_checkpoint(ctx: Context) -> CheckpointEntry:
    if ctx.checkpoint is None:
        st.info(ctx.problem or "Select a checkpoint in the sidebar.")
        st.stop()
    return ctx.checkpoint


def require_checkpoints(ctx: Context, minimum: int = 2) -> list[CheckpointEntry]:
    if ctx.problem and not ctx.checkpoints:
        st.info(ctx.problem)
        st.stop()
    if len(ctx.checkpoints) < minimum:
        st.info(
            f"Select at least {minimum} checkpoints of dataset {ctx.dataset} in the sidebar to compare them "
            f"(the first one is the reference)."
        )
        st.stop()
    return ctx.checkpoints


@contextlib.contextmanager
def user_errors(what: str = ""):
    """Show a problem the user can fix as st.error (no traceback) and stop the page."""
    try:
        yield
    except USER_ERRORS as e:
        st.error(f"{what}: {e}" if what else str(e))
        st.stop()
